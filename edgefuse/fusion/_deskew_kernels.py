"""Numba kernels for LiDAR sweep deskew (motion compensation).

Kernels take arrays and scalars only, trust their inputs (checked by :mod:`edgefuse.fusion.deskew`),
never raise, never allocate and never index outside their arrays.

The motion is a table of K segments (see :class:`edgefuse.fusion.deskew.Motion`), folded by
:func:`_fold_segments` into one row of ``seg_tab`` (K, SEG_WIDTH) per segment.  Segment ``k`` starts
at ``seg_t[k]`` seconds (relative to the motion origin) and holds a constant angular rate (unit axis
``u_k``, rate ``wn_k``) and a constant acceleration.  A point taken at ``tau`` seconds (same origin)
falls in the last segment with ``seg_t[k] <= tau`` (segment 0 before the first start).  With
``s = tau - seg_t[k]``, the deskewed point is::

    out = G_k @ Exp(u_k * wn_k * s) @ (x + tp) + b_k + c_k * s + d_k * s**2

where ``G_k`` (3×3), ``b_k``, ``c_k``, ``d_k`` fold the reference pose and the LiDAR↔IMU extrinsic.
``Exp`` is the SO(3) exponential (Rodrigues).

Layout of the hot path (:func:`_deskew_points`): the sweep is cut into chunks of ``B`` points.  A
scalar pass loads a chunk into structure-of-arrays float64 scratch rows (point + ``tp``, and ``s``)
and splits it into runs of one segment; a branch-free loop per run (:func:`_rotate_run`), which LLVM
vectorises, applies the formula above to every point; a scalar pass stores the chunk.  Every point
gets its own exact rotation, so the cost is the same whatever the time layout (one time per point,
or a LiDAR column of 128 points sharing one).  The scratch rows are rows of one array whose row
stride is not a multiple of 4 KiB (loads and stores of different rows would otherwise alias in the
CPU's store forwarding and run ≈ 2.5× slower).
"""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit

# Taylor coefficients of sin and cos (|x| <= 0.5: truncation error below 1e-16)
_S3 = -1.0 / 6.0
_S5 = 1.0 / 120.0
_S7 = -1.0 / 5040.0
_S9 = 1.0 / 362880.0
_S11 = -1.0 / 39916800.0
_S13 = 1.0 / 6227020800.0
_C2 = -0.5
_C4 = 1.0 / 24.0
_C6 = -1.0 / 720.0
_C8 = 1.0 / 40320.0
_C10 = -1.0 / 3628800.0
_C12 = 1.0 / 479001600.0
_C14 = -1.0 / 87178291200.0
#: the Taylor polynomials are used for rotation angles up to this (rad); libm beyond
POLY_MAX_ANGLE = 0.5

#: columns of one folded segment row: u (3), wn, G (9, row-major), b (3), c (3), d (3), seg start
SEG_WIDTH = 24
_U, _WN, _G, _B, _C, _D, _SK = 0, 3, 4, 13, 16, 19, 22
#: scratch rows: x + tp, y + tp, z + tp, s, out x, out y, out z, largest |s| of each run
SCRATCH_ROWS = 8


def scratch_shape(chunk: int) -> tuple[int, int]:
    """Shape of the float64 scratch for chunks of ``chunk`` points (row stride not a multiple of 4 KiB)."""
    width = chunk + 24
    while (width * 8) % 4096 == 0 or (width * 8) % 4096 < 256 or (width * 8) % 4096 > 4096 - 256:
        width += 8
    return (SCRATCH_ROWS, width)


@njit()
def _point_tau(  # noqa: PLR0917 (kernel: scalar arguments by design)
    t: np.ndarray, is_int: bool, t_sub_i: int, t_sub_f: float, scale_s: float, tau: np.ndarray,
) -> tuple[np.int64, np.int64, float, float, int]:
    """Point times to float64 seconds, and their range, in one pass.

    ``tau[i] = (t[i] - t_sub) * scale_s``, the difference taken in int64 when ``is_int`` (exact for
    absolute ns stamps) and in float64 otherwise.  Returns ``(min_i, max_i, min_f, max_f,
    n_nonfinite)``: for integer ``t`` the raw int64 extremes in ``min_i``/``max_i``; for float ``t``
    the finite raw extremes in ``min_f``/``max_f``.  With no usable time, ``min > max``.
    """
    n = t.shape[0]
    mn_i = np.int64(np.iinfo(np.int64).max)
    mx_i = np.int64(np.iinfo(np.int64).min)
    mn_f = np.inf
    mx_f = -np.inf
    n_bad = 0
    if is_int:
        sub = np.int64(t_sub_i)
        for i in range(n):
            v = np.int64(t[i])
            mn_i = min(mn_i, v)
            mx_i = max(mx_i, v)
            tau[i] = float(v - sub) * scale_s
    else:
        for i in range(n):
            f = float(t[i])
            tau[i] = (f - t_sub_f) * scale_s
            if not math.isfinite(f):
                n_bad += 1
                continue
            mn_f = min(mn_f, f)
            mx_f = max(mx_f, f)
    return mn_i, mx_i, mn_f, mx_f, n_bad


@njit()
def _rotate_run(  # noqa: PLR0917 (vectorised inner loop: rows as separate arrays)
    sx: np.ndarray, sy: np.ndarray, sz: np.ndarray, ss: np.ndarray, ox: np.ndarray, oy: np.ndarray,
    oz: np.ndarray, row: np.ndarray, poly: bool,
) -> None:
    """``(ox, oy, oz)[j] = G Exp(u wn s) y + b + c s + d s²`` for every ``j`` of ``ss``, with ``y =
    (sx, sy, sz)[j]``, ``s = ss[j]`` and one folded segment ``row``.  Branch-free (vectorised);
    ``poly``: every ``|wn s| <= POLY_MAX_ANGLE`` (Taylor sin/cos), else libm.  The rows are passed
    as separate arrays starting at the run's first point: taken from one 2-D array inside this
    function, or indexed from a run start read from memory, LLVM does not vectorise the loops."""
    n = ss.shape[0]
    ux = row[_U]
    uy = row[_U + 1]
    uz = row[_U + 2]
    wn = row[_WN]
    g00 = row[_G]
    g01 = row[_G + 1]
    g02 = row[_G + 2]
    g10 = row[_G + 3]
    g11 = row[_G + 4]
    g12 = row[_G + 5]
    g20 = row[_G + 6]
    g21 = row[_G + 7]
    g22 = row[_G + 8]
    b0 = row[_B]
    b1 = row[_B + 1]
    b2 = row[_B + 2]
    c0 = row[_C]
    c1 = row[_C + 1]
    c2 = row[_C + 2]
    d0 = row[_D]
    d1 = row[_D + 1]
    d2 = row[_D + 2]
    # sin and cos first, into the output rows (a branch inside the rotation loop would keep LLVM
    # from vectorising it)
    if poly:
        for j in range(n):
            ang = wn * ss[j]
            a2 = ang * ang
            ox[j] = ang * (1.0 + a2 * (_S3 + a2 * (_S5 + a2 * (_S7 + a2 * (_S9 + a2 * (_S11 + a2 * _S13))))))
            oy[j] = 1.0 + a2 * (_C2 + a2 * (_C4 + a2 * (_C6 + a2 * (_C8 + a2 * (_C10 + a2 * (_C12 + a2 * _C14))))))
    else:
        for j in range(n):
            ang = wn * ss[j]
            ox[j] = math.sin(ang)
            oy[j] = math.cos(ang)
    for j in range(n):
        s = ss[j]
        sn = ox[j]
        cs = oy[j]
        oc = 1.0 - cs
        yx = sx[j]
        yy = sy[j]
        yz = sz[j]
        dot = (ux * yx + uy * yy + uz * yz) * oc
        zx = yx * cs + (uy * yz - uz * yy) * sn + ux * dot
        zy = yy * cs + (uz * yx - ux * yz) * sn + uy * dot
        zz = yz * cs + (ux * yy - uy * yx) * sn + uz * dot
        s2 = s * s
        ox[j] = g00 * zx + g01 * zy + g02 * zz + (b0 + c0 * s + d0 * s2)
        oy[j] = g10 * zx + g11 * zy + g12 * zz + (b1 + c1 * s + d1 * s2)
        oz[j] = g20 * zx + g21 * zy + g22 * zz + (b2 + c2 * s + d2 * s2)


@njit()
def _deskew_points(  # noqa: PLR0915, PLR0917 (one flat kernel; scalar arguments by design)
    pts: np.ndarray,
    tau: np.ndarray,
    offset_s: float,
    seg_t: np.ndarray,
    seg_tab: np.ndarray,
    tp: np.ndarray,
    t_lo: float,
    t_hi: float,
    nan_outside: bool,
    scr: np.ndarray,
    runs: np.ndarray,
    out: np.ndarray,
) -> tuple[int, int]:
    """Deskew ``pts`` (N, 3) float32/float64 into ``out`` (N, 3) (may alias ``pts``).

    ``tau`` (N,) float64: point times [s] from the motion origin, minus ``offset_s``.  ``seg_t``
    (K,) segment starts, ``seg_tab`` (K, SEG_WIDTH) folded segments, ``tp`` (3,) the translation
    added to every point before rotating.  Scratch: ``scr`` (SCRATCH_ROWS, >= B) float64 and
    ``runs`` (B + 1, 2) int64 (run start, segment), with ``B`` the chunk size.

    Points with a time outside ``[t_lo, t_hi]`` are counted; they are extrapolated with the end
    segments, or set to NaN when ``nan_outside``.  Points with a non-finite time are set to NaN and
    counted.  Non-finite coordinates stay non-finite.  Returns ``(n_outside, n_nonfinite_time)``.
    """
    n = pts.shape[0]
    k_count = seg_t.shape[0]
    chunk = runs.shape[0] - 1
    tp0 = tp[0]
    tp1 = tp[1]
    tp2 = tp[2]
    nan = np.nan
    n_out = 0
    n_bad = 0
    k = 0
    sk = seg_t[0]
    seg_lo = -np.inf
    seg_hi = np.inf if k_count == 1 else seg_t[1]
    sx = scr[0]
    sy = scr[1]
    sz = scr[2]
    ss = scr[3]
    ox = scr[4]
    oy = scr[5]
    oz = scr[6]
    smax = scr[7]
    # times in [fast_lo, fast_hi) are finite, inside the window and in the current segment
    fast_lo = max(seg_lo, t_lo)
    fast_hi = min(seg_hi, t_hi)
    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        # -- load the chunk's points (a loop of its own: LLVM vectorises it)
        for j in range(m):
            i = c0 + j
            sx[j] = float(pts[i, 0]) + tp0
            sy[j] = float(pts[i, 1]) + tp1
            sz[j] = float(pts[i, 2]) + tp2
        # -- split the chunk into runs of one segment, with the largest |s| of each
        runs[0, 0] = 0
        runs[0, 1] = k
        r = 0
        sm = 0.0
        for j in range(m):
            tt = tau[c0 + j] + offset_s
            if fast_lo <= tt < fast_hi:
                s = tt - sk
                ss[j] = s
                sm = max(sm, abs(s))
                continue
            if not math.isfinite(tt):  # NaN s: a NaN point, in whatever run
                n_bad += 1
                ss[j] = nan
                continue
            if not (seg_lo <= tt < seg_hi):
                # segment: last k with seg_t[k] <= tt (binary search), clamped to [0, K-1]
                lo = 0
                hi = k_count - 1
                while lo < hi:
                    mid = (lo + hi + 1) >> 1
                    if seg_t[mid] <= tt:
                        lo = mid
                    else:
                        hi = mid - 1
                k = lo
                sk = seg_t[k]
                seg_lo = -np.inf if k == 0 else sk
                seg_hi = np.inf if k == k_count - 1 else seg_t[k + 1]
                fast_lo = max(seg_lo, t_lo)
                fast_hi = min(seg_hi, t_hi)
                if j > runs[r, 0]:
                    smax[r] = sm
                    r += 1
                    sm = 0.0
                runs[r, 0] = j
                runs[r, 1] = k
            s = tt - sk
            sm = max(sm, abs(s))
            if tt < t_lo or tt > t_hi:
                n_out += 1
                if nan_outside:
                    s = nan
            ss[j] = s
        smax[r] = sm
        n_runs = r + 1
        runs[n_runs, 0] = m
        # -- rotate every run (vectorised), then store the chunk
        for q in range(n_runs):
            kk = runs[q, 1]
            row = seg_tab[kk]
            j0 = runs[q, 0]
            j1 = runs[q + 1, 0]
            _rotate_run(sx[j0:j1], sy[j0:j1], sz[j0:j1], ss[j0:j1], ox[j0:j1], oy[j0:j1], oz[j0:j1], row,
                        row[_WN] * smax[q] <= POLY_MAX_ANGLE)
        for j in range(m):
            i = c0 + j
            out[i, 0] = ox[j]
            out[i, 1] = oy[j]
            out[i, 2] = oz[j]
    return n_out, n_bad


@njit()
def _exp_rows(wx: float, wy: float, wz: float, s: float) -> tuple[float, float, float, float, float, float,
                                                                   float, float, float]:
    """``Exp(w s)`` (3×3 row-major, Rodrigues with libm sin/cos)."""
    wn = math.sqrt(wx * wx + wy * wy + wz * wz)
    th = wn * s
    if th == 0.0:
        return 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0
    ux = wx / wn
    uy = wy / wn
    uz = wz / wn
    cs = math.cos(th)
    sn = math.sin(th)
    oc = 1.0 - cs
    return (cs + ux * ux * oc, ux * uy * oc - uz * sn, ux * uz * oc + uy * sn,
            uy * ux * oc + uz * sn, cs + uy * uy * oc, uy * uz * oc - ux * sn,
            uz * ux * oc - uy * sn, uz * uy * oc + ux * sn, cs + uz * uz * oc)


@njit()
def _fold_segments(  # noqa: PLR0917 (kernel: arrays in, arrays out)
    seg_t: np.ndarray,
    R: np.ndarray,
    p: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    tau_ref: float,
    Ril: np.ndarray,
    tp: np.ndarray,
    seg_tab: np.ndarray,
) -> None:
    """Fold the reference pose (at ``tau_ref`` s from the motion origin) and the extrinsic
    ``Ril = R_imu_from_lidar``, ``tp = Ril^T t_imu_from_lidar`` into ``seg_tab`` (K, SEG_WIDTH).

    With the reference pose ``(R_ref, p_ref) = (R_k Exp(w_k s), p_k + v_k s + a_k s² / 2)`` (k the
    segment of ``tau_ref``): ``M0 = Ril^T R_ref^T``, ``G_k = M0 R_k Ril``, ``u_k = Ril^T w_k / |w_k|``
    (0 when ``w_k = 0``), ``b_k = M0 (p_k - p_ref) - tp``, ``c_k = M0 v_k``, ``d_k = M0 a_k / 2``.
    """
    kc = seg_t.shape[0]
    kr = 0  # last k with seg_t[k] <= tau_ref, clamped
    for k in range(1, kc):
        if seg_t[k] <= tau_ref:
            kr = k
    s = tau_ref - seg_t[kr]
    e = _exp_rows(w[kr, 0], w[kr, 1], w[kr, 2], s)
    # A = R_ref Ril = R_kr E Ril; M0 = A^T
    m00 = m01 = m02 = m10 = m11 = m12 = m20 = m21 = m22 = 0.0
    for r in range(3):
        re0 = R[kr, r, 0] * e[0] + R[kr, r, 1] * e[3] + R[kr, r, 2] * e[6]
        re1 = R[kr, r, 0] * e[1] + R[kr, r, 1] * e[4] + R[kr, r, 2] * e[7]
        re2 = R[kr, r, 0] * e[2] + R[kr, r, 1] * e[5] + R[kr, r, 2] * e[8]
        a0 = re0 * Ril[0, 0] + re1 * Ril[1, 0] + re2 * Ril[2, 0]
        a1 = re0 * Ril[0, 1] + re1 * Ril[1, 1] + re2 * Ril[2, 1]
        a2 = re0 * Ril[0, 2] + re1 * Ril[1, 2] + re2 * Ril[2, 2]
        if r == 0:
            m00, m10, m20 = a0, a1, a2
        elif r == 1:
            m01, m11, m21 = a0, a1, a2
        else:
            m02, m12, m22 = a0, a1, a2
    pr = (p[kr, 0] + v[kr, 0] * s + 0.5 * a[kr, 0] * s * s,
          p[kr, 1] + v[kr, 1] * s + 0.5 * a[kr, 1] * s * s,
          p[kr, 2] + v[kr, 2] * s + 0.5 * a[kr, 2] * s * s)
    M = ((m00, m01, m02), (m10, m11, m12), (m20, m21, m22))
    for k in range(kc):
        row = seg_tab[k]
        for r in range(3):
            mr0, mr1, mr2 = M[r]
            # (M0 R_k)[r, :]
            n0 = mr0 * R[k, 0, 0] + mr1 * R[k, 1, 0] + mr2 * R[k, 2, 0]
            n1 = mr0 * R[k, 0, 1] + mr1 * R[k, 1, 1] + mr2 * R[k, 2, 1]
            n2 = mr0 * R[k, 0, 2] + mr1 * R[k, 1, 2] + mr2 * R[k, 2, 2]
            for c in range(3):
                row[_G + r * 3 + c] = n0 * Ril[0, c] + n1 * Ril[1, c] + n2 * Ril[2, c]
            row[_B + r] = mr0 * (p[k, 0] - pr[0]) + mr1 * (p[k, 1] - pr[1]) + mr2 * (p[k, 2] - pr[2]) - tp[r]
            row[_C + r] = mr0 * v[k, 0] + mr1 * v[k, 1] + mr2 * v[k, 2]
            row[_D + r] = 0.5 * (mr0 * a[k, 0] + mr1 * a[k, 1] + mr2 * a[k, 2])
        wx = w[k, 0]
        wy = w[k, 1]
        wz = w[k, 2]
        wn = math.sqrt(wx * wx + wy * wy + wz * wz)
        row[_WN] = wn
        for c in range(3):
            row[_U + c] = (Ril[0, c] * wx + Ril[1, c] * wy + Ril[2, c] * wz) / wn if wn > 0.0 else 0.0
        row[_SK] = seg_t[k]
        row[_SK + 1] = 0.0


@njit()
def _check_imu(stamps: np.ndarray, gyro: np.ndarray) -> int:
    """0 when the IMU samples are usable; 1: a non-finite gyro value; 2: stamps not strictly increasing."""
    m = stamps.shape[0]
    for i in range(m):
        for c in range(3):
            if not math.isfinite(gyro[i, c]):
                return 1
    for i in range(1, m):
        if stamps[i] <= stamps[i - 1]:
            return 2
    return 0


@njit()
def _gyro_at(stamps: np.ndarray, gyro: np.ndarray, t: int) -> tuple[float, float, float]:
    """Gyro linearly interpolated at ``t`` (``stamps[0] <= t <= stamps[-1]``; stamps increasing)."""
    lo = 0
    hi = stamps.shape[0] - 1
    while lo < hi:  # last j with stamps[j] <= t
        mid = (lo + hi + 1) >> 1
        if stamps[mid] <= t:
            lo = mid
        else:
            hi = mid - 1
    j = lo
    if stamps[j] == t or j + 1 >= stamps.shape[0]:
        return gyro[j, 0], gyro[j, 1], gyro[j, 2]
    f = float(t - stamps[j]) / float(stamps[j + 1] - stamps[j])
    return (gyro[j, 0] + f * (gyro[j + 1, 0] - gyro[j, 0]), gyro[j, 1] + f * (gyro[j + 1, 1] - gyro[j, 1]),
            gyro[j, 2] + f * (gyro[j + 1, 2] - gyro[j, 2]))


@njit()
def _gyro_motion(  # noqa: PLR0917 (kernel: arrays in, arrays out)
    stamps: np.ndarray, gyro: np.ndarray, t0: int, t1: int,
    seg_t: np.ndarray, R: np.ndarray, p: np.ndarray, v: np.ndarray, w: np.ndarray, a: np.ndarray,
) -> int:
    """Gyro-only integration over ``[t0, t1]`` into preallocated tables; returns K (segments).

    The same as ``imu_window`` + :func:`_integrate_imu` without accelerometer and with zero
    velocity: samples at ``t0`` (interpolated), the stamps strictly inside, ``t1`` (interpolated).
    ``stamps`` must be strictly increasing and cover ``[t0, t1]``, ``t0 < t1``; the tables must
    hold at least ``2 + (number of stamps inside)`` rows.  Writes ``seg_t``, ``R``, ``p``, ``v``,
    ``w``, ``a`` rows ``[0, K)``.
    """
    m_all = stamps.shape[0]
    i0 = 0
    while i0 < m_all and stamps[i0] <= t0:
        i0 += 1
    i1 = i0
    while i1 < m_all and stamps[i1] < t1:
        i1 += 1
    kc = i1 - i0 + 1
    g_prev = _gyro_at(stamps, gyro, t0)
    t_prev = t0
    for r in range(3):
        for c in range(3):
            R[0, r, c] = 1.0 if r == c else 0.0
        p[0, r] = 0.0
        v[0, r] = 0.0
    for k in range(kc):
        if k < kc - 1:
            t_next = stamps[i0 + k]
            g_next = (gyro[i0 + k, 0], gyro[i0 + k, 1], gyro[i0 + k, 2])
        else:
            t_next = t1
            g_next = _gyro_at(stamps, gyro, t1)
        seg_t[k] = float(t_prev - t0) * 1e-9
        h = float(t_next - t_prev) * 1e-9
        wx = 0.5 * (g_prev[0] + g_next[0])
        wy = 0.5 * (g_prev[1] + g_next[1])
        wz = 0.5 * (g_prev[2] + g_next[2])
        w[k, 0] = wx
        w[k, 1] = wy
        w[k, 2] = wz
        for r in range(3):
            a[k, r] = 0.0
        if k + 1 < R.shape[0] and k < kc - 1:
            e = _exp_rows(wx, wy, wz, h)
            for r in range(3):
                for c in range(3):
                    R[k + 1, r, c] = R[k, r, 0] * e[c] + R[k, r, 1] * e[3 + c] + R[k, r, 2] * e[6 + c]
                p[k + 1, r] = p[k, r] + v[k, r] * h
                v[k + 1, r] = v[k, r]
        t_prev = t_next
        g_prev = g_next
    return kc


@njit()
def _integrate_imu(  # noqa: PLR0917 (kernel: arrays in, arrays out)
    dt_s: np.ndarray,
    gyro: np.ndarray,
    accel: np.ndarray,
    use_accel: bool,
    v0: np.ndarray,
    g0: np.ndarray,
    R: np.ndarray,
    p: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
) -> None:
    """Integrate M IMU samples (M-1 segments of length ``dt_s[k]``) from the identity pose.

    Segment k has the constant rate ``w[k] = (gyro[k] + gyro[k+1]) / 2`` and, with ``use_accel``,
    the constant acceleration ``a[k] = (R[k] f[k] + R[k+1] f[k+1]) / 2 + g0`` in the start frame
    (``f`` = ``accel`` specific force); without it ``a = 0`` (constant velocity ``v0``).
    Writes ``R`` (M, 3, 3), ``p`` (M, 3), ``v`` (M, 3), ``w`` (M-1, 3), ``a`` (M-1, 3).
    """
    m = gyro.shape[0]
    for r in range(3):
        for c in range(3):
            R[0, r, c] = 1.0 if r == c else 0.0
        p[0, r] = 0.0
        v[0, r] = v0[r]
    for k in range(m - 1):
        h = dt_s[k]
        wx = 0.5 * (gyro[k, 0] + gyro[k + 1, 0])
        wy = 0.5 * (gyro[k, 1] + gyro[k + 1, 1])
        wz = 0.5 * (gyro[k, 2] + gyro[k + 1, 2])
        w[k, 0] = wx
        w[k, 1] = wy
        w[k, 2] = wz
        e = _exp_rows(wx, wy, wz, h)
        for r in range(3):
            for c in range(3):
                R[k + 1, r, c] = R[k, r, 0] * e[c] + R[k, r, 1] * e[3 + c] + R[k, r, 2] * e[6 + c]
        if use_accel:
            for r in range(3):
                fa = R[k, r, 0] * accel[k, 0] + R[k, r, 1] * accel[k, 1] + R[k, r, 2] * accel[k, 2]
                fb = (R[k + 1, r, 0] * accel[k + 1, 0] + R[k + 1, r, 1] * accel[k + 1, 1]
                      + R[k + 1, r, 2] * accel[k + 1, 2])
                a[k, r] = 0.5 * (fa + fb) + g0[r]
        else:
            for r in range(3):
                a[k, r] = 0.0
        for r in range(3):
            p[k + 1, r] = p[k, r] + v[k, r] * h + 0.5 * a[k, r] * h * h
            v[k + 1, r] = v[k, r] + a[k, r] * h
