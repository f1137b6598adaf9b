"""Numba kernels for LiDAR sweep deskew (motion compensation).

Kernels take arrays and scalars only, trust their inputs (checked by :mod:`edgefuse.fusion.deskew`),
never raise and never index outside their arrays.

The motion is a table of K segments (see :class:`edgefuse.fusion.deskew.Motion`).  Segment ``k``
starts at ``seg_t[k]`` seconds (relative to the motion origin) and holds a constant angular rate
``w_k`` (rad/s, axis ``seg_u[k]``, norm ``seg_wn[k]``) and a constant acceleration.  A point taken
at ``tau`` seconds (same origin) falls in the last segment with ``seg_t[k] <= tau`` (segment 0 before
the first start).  With ``s = tau - seg_t[k]``, the deskewed point is::

    out = G_k @ Exp(u_k * wn_k * s) @ (x + tp) + b_k + c_k * s + d_k * s**2

where the per-segment ``G_k`` (3×3), unit axis ``u_k``, rate ``wn_k`` and ``b_k``, ``c_k``, ``d_k``
fold the reference pose and the LiDAR↔IMU extrinsic (see ``Deskewer._fold``).  ``Exp`` is the SO(3)
exponential (Rodrigues).
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


@njit()
def _sincos(ang: float) -> tuple[float, float]:
    """``(sin, cos)`` of ``ang``: a Taylor polynomial for ``|ang| <= 0.5`` (within 2 ulp of libm,
    several times faster), libm beyond."""
    if abs(ang) > 0.5:
        return math.sin(ang), math.cos(ang)
    a2 = ang * ang
    sn = ang * (1.0 + a2 * (_S3 + a2 * (_S5 + a2 * (_S7 + a2 * (_S9 + a2 * (_S11 + a2 * _S13))))))
    cs = 1.0 + a2 * (_C2 + a2 * (_C4 + a2 * (_C6 + a2 * (_C8 + a2 * (_C10 + a2 * (_C12 + a2 * _C14))))))
    return sn, cs


@njit()
def _deskew_points(  # noqa: PLR0915, PLR0917 (one flat kernel; scalar arguments by design)
    pts: np.ndarray,
    t: np.ndarray,
    is_int: bool,
    t_sub_i: int,
    t_sub_f: float,
    scale_s: float,
    offset_s: float,
    seg_t: np.ndarray,
    seg_u: np.ndarray,
    seg_wn: np.ndarray,
    seg_G: np.ndarray,
    seg_b: np.ndarray,
    seg_c: np.ndarray,
    seg_d: np.ndarray,
    tp: np.ndarray,
    t_lo: float,
    t_hi: float,
    nan_outside: bool,
    out: np.ndarray,
) -> tuple[int, int]:
    """Deskew ``pts`` (N, 3) float32/float64 into ``out`` (N, 3) (may alias ``pts``).

    Point time in seconds from the motion origin: ``tau = (t[i] - t_sub) * scale_s + offset_s``,
    where the difference is taken in int64 when ``is_int`` (exact for absolute ns stamps) and in
    float64 otherwise.  Segment ``k`` maps a point ``x`` (LiDAR frame, its own time) to
    ``M x + q`` with ``M = G_k Exp(u_k wn_k s)`` and ``q = M tp + b_k + c_k s + d_k s^2``
    (``s = tau - seg_t[k]``; the wrapper folds the reference pose and the extrinsic into ``G``,
    ``u``, ``tp``, ``b``, ``c``, ``d``).  ``M`` and ``q`` are recomputed only when the time changes:
    consecutive points of one firing (an Ouster column: 128 points) share them.

    Points with ``tau`` outside ``[t_lo, t_hi]`` are counted; they are extrapolated with the end
    segments, or set to NaN when ``nan_outside``.  Points with a non-finite time are set to NaN and
    counted.  Non-finite coordinates stay non-finite.

    Returns ``(n_outside, n_nonfinite_time)``.
    """
    n = pts.shape[0]
    k_count = seg_t.shape[0]
    n_out = 0
    n_bad = 0
    tp0 = tp[0]
    tp1 = tp[1]
    tp2 = tp[2]
    nan = np.nan
    last_tau = nan
    outside = False
    k = 0
    seg_lo = np.inf
    seg_hi = -np.inf
    m00 = m01 = m02 = m10 = m11 = m12 = m20 = m21 = m22 = 0.0
    g00 = g01 = g02 = g10 = g11 = g12 = g20 = g21 = g22 = 0.0
    ux = uy = uz = 0.0
    b0 = b1 = b2 = c0 = c1 = c2 = d0 = d1 = d2 = 0.0
    wn = sk = 0.0
    q0 = q1 = q2 = 0.0
    for i in range(n):
        if is_int:
            tau = float(np.int64(t[i]) - t_sub_i) * scale_s + offset_s
        else:
            tau = (float(t[i]) - t_sub_f) * scale_s + offset_s
        if tau != last_tau:  # also true for NaN
            if not math.isfinite(tau):
                n_bad += 1
                out[i, 0] = nan
                out[i, 1] = nan
                out[i, 2] = nan
                continue
            outside = tau < t_lo or tau > t_hi
            if not (seg_lo <= tau < seg_hi):
                # segment: last k with seg_t[k] <= tau (binary search), clamped to [0, K-1]
                lo = 0
                hi = k_count - 1
                while lo < hi:
                    mid = (lo + hi + 1) >> 1
                    if seg_t[mid] <= tau:
                        lo = mid
                    else:
                        hi = mid - 1
                k = lo
                seg_lo = -np.inf if k == 0 else seg_t[k]
                seg_hi = np.inf if k == k_count - 1 else seg_t[k + 1]
                ux = seg_u[k, 0]
                uy = seg_u[k, 1]
                uz = seg_u[k, 2]
                g00 = seg_G[k, 0, 0]
                g01 = seg_G[k, 0, 1]
                g02 = seg_G[k, 0, 2]
                g10 = seg_G[k, 1, 0]
                g11 = seg_G[k, 1, 1]
                g12 = seg_G[k, 1, 2]
                g20 = seg_G[k, 2, 0]
                g21 = seg_G[k, 2, 1]
                g22 = seg_G[k, 2, 2]
                b0 = seg_b[k, 0]
                b1 = seg_b[k, 1]
                b2 = seg_b[k, 2]
                c0 = seg_c[k, 0]
                c1 = seg_c[k, 1]
                c2 = seg_c[k, 2]
                d0 = seg_d[k, 0]
                d1 = seg_d[k, 1]
                d2 = seg_d[k, 2]
                wn = seg_wn[k]
                sk = seg_t[k]
            s = tau - sk
            s2 = s * s
            sn, cs = _sincos(wn * s)
            oc = 1.0 - cs
            h0 = b0 + c0 * s + d0 * s2
            h1 = b1 + c1 * s + d1 * s2
            h2 = b2 + c2 * s + d2 * s2
            last_tau = tau
            # does the next point share this time?  Then build the affine map once for the run.
            shared = False
            if i + 1 < n:
                shared = np.int64(t[i + 1]) == np.int64(t[i]) if is_int else float(t[i + 1]) == float(t[i])
            if shared:
                # E = Exp(u theta) (Rodrigues), M = G E, q = M tp + h
                e00 = cs + ux * ux * oc
                e01 = ux * uy * oc - uz * sn
                e02 = ux * uz * oc + uy * sn
                e10 = uy * ux * oc + uz * sn
                e11 = cs + uy * uy * oc
                e12 = uy * uz * oc - ux * sn
                e20 = uz * ux * oc - uy * sn
                e21 = uz * uy * oc + ux * sn
                e22 = cs + uz * uz * oc
                m00 = g00 * e00 + g01 * e10 + g02 * e20
                m01 = g00 * e01 + g01 * e11 + g02 * e21
                m02 = g00 * e02 + g01 * e12 + g02 * e22
                m10 = g10 * e00 + g11 * e10 + g12 * e20
                m11 = g10 * e01 + g11 * e11 + g12 * e21
                m12 = g10 * e02 + g11 * e12 + g12 * e22
                m20 = g20 * e00 + g21 * e10 + g22 * e20
                m21 = g20 * e01 + g21 * e11 + g22 * e21
                m22 = g20 * e02 + g21 * e12 + g22 * e22
                q0 = m00 * tp0 + m01 * tp1 + m02 * tp2 + h0
                q1 = m10 * tp0 + m11 * tp1 + m12 * tp2 + h1
                q2 = m20 * tp0 + m21 * tp1 + m22 * tp2 + h2
            elif not (outside and nan_outside):
                if outside:
                    n_out += 1
                # a point of its own: rotate the vector directly (cheaper than forming M)
                yx = float(pts[i, 0]) + tp0
                yy = float(pts[i, 1]) + tp1
                yz = float(pts[i, 2]) + tp2
                dot = (ux * yx + uy * yy + uz * yz) * oc
                zx = yx * cs + (uy * yz - uz * yy) * sn + ux * dot
                zy = yy * cs + (uz * yx - ux * yz) * sn + uy * dot
                zz = yz * cs + (ux * yy - uy * yx) * sn + uz * dot
                out[i, 0] = g00 * zx + g01 * zy + g02 * zz + h0
                out[i, 1] = g10 * zx + g11 * zy + g12 * zz + h1
                out[i, 2] = g20 * zx + g21 * zy + g22 * zz + h2
                # the next point has another time: M/q are not needed
                last_tau = nan
                continue
        if outside:
            n_out += 1
            if nan_outside:
                out[i, 0] = nan
                out[i, 1] = nan
                out[i, 2] = nan
                continue
        x = float(pts[i, 0])
        y = float(pts[i, 1])
        z = float(pts[i, 2])
        out[i, 0] = m00 * x + m01 * y + m02 * z + q0
        out[i, 1] = m10 * x + m11 * y + m12 * z + q1
        out[i, 2] = m20 * x + m21 * y + m22 * z + q2
    return n_out, n_bad


@njit()
def _time_range(t: np.ndarray, is_int: bool) -> tuple[np.int64, np.int64, float, float, int]:
    """One pass over point times: ``(min_i, max_i, min_f, max_f, n_nonfinite)``.

    For integer ``t`` the int64 extremes are returned in ``min_i``/``max_i``; for float ``t`` the
    finite extremes in ``min_f``/``max_f``.  With no usable time, ``min > max``.
    """
    n = t.shape[0]
    mn_i = np.int64(np.iinfo(np.int64).max)
    mx_i = np.int64(np.iinfo(np.int64).min)
    mn_f = np.inf
    mx_f = -np.inf
    n_bad = 0
    for i in range(n):
        if is_int:
            v = np.int64(t[i])
            if v < mn_i:  # noqa: PLR1730 (keeps the int64 type for numba and mypy)
                mn_i = v
            if v > mx_i:  # noqa: PLR1730
                mx_i = v
        else:
            f = float(t[i])
            if not math.isfinite(f):
                n_bad += 1
                continue
            mn_f = min(mn_f, f)
            mx_f = max(mx_f, f)
    return mn_i, mx_i, mn_f, mx_f, n_bad


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
        # E = Exp(w h)
        th = math.sqrt(wx * wx + wy * wy + wz * wz) * h
        E = np.eye(3)
        if th > 0.0:
            nrm = th / h
            ux = wx / nrm
            uy = wy / nrm
            uz = wz / nrm
            cs = math.cos(th)
            sn = math.sin(th)
            oc = 1.0 - cs
            E[0, 0] = cs + ux * ux * oc
            E[0, 1] = ux * uy * oc - uz * sn
            E[0, 2] = ux * uz * oc + uy * sn
            E[1, 0] = uy * ux * oc + uz * sn
            E[1, 1] = cs + uy * uy * oc
            E[1, 2] = uy * uz * oc - ux * sn
            E[2, 0] = uz * ux * oc - uy * sn
            E[2, 1] = uz * uy * oc + ux * sn
            E[2, 2] = cs + uz * uz * oc
        for r in range(3):
            for c in range(3):
                R[k + 1, r, c] = R[k, r, 0] * E[0, c] + R[k, r, 1] * E[1, c] + R[k, r, 2] * E[2, c]
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
