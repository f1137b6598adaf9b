"""Numba kernels for LiDAR sweep deskew (motion compensation).

Kernels take arrays and scalars only, trust their inputs (checked by :mod:`edgefuse.fusion.deskew`),
never raise and never index outside their arrays.

The motion is a table of K segments (see :class:`edgefuse.fusion.deskew.Motion`).  Segment ``k``
starts at ``seg_t[k]`` seconds (relative to the motion origin) and holds a constant angular rate
``w_k`` (rad/s, axis ``seg_u[k]``, norm ``seg_wn[k]``) and a constant acceleration.  A point taken
at ``tau`` seconds (same origin) falls in the last segment with ``seg_t[k] <= tau`` (segment 0 before
the first start).  With ``s = tau - seg_t[k]`` and ``y = R_il @ x + t_il`` (the point in the IMU frame
at its own time), the deskewed point is::

    out = A_k @ Exp(w_k * s) @ y + b_k + c_k * s + d_k * s**2

where the per-segment ``A_k`` (3×3), ``b_k``, ``c_k``, ``d_k`` already fold the reference pose and
the LiDAR↔IMU extrinsic (see ``Motion._fold``).  ``Exp`` is the SO(3) exponential (Rodrigues).
"""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit


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
    seg_A: np.ndarray,
    seg_b: np.ndarray,
    seg_c: np.ndarray,
    seg_d: np.ndarray,
    Ril: np.ndarray,
    til: np.ndarray,
    t_lo: float,
    t_hi: float,
    nan_outside: bool,
    out: np.ndarray,
) -> tuple[int, int]:
    """Deskew ``pts`` (N, 3) float32/float64 into ``out`` (N, 3) (may alias ``pts``).

    Point time in seconds from the motion origin: ``tau = (t[i] - t_sub) * scale_s + offset_s``,
    where the difference is taken in int64 when ``is_int`` (exact for absolute ns stamps) and in
    float64 otherwise.  Points with ``tau`` outside ``[t_lo, t_hi]`` are counted; they are
    extrapolated with the end segments, or set to NaN when ``nan_outside``.  Points with a
    non-finite time are set to NaN and counted.  Non-finite coordinates stay non-finite.

    Returns ``(n_outside, n_nonfinite_time)``.
    """
    n = pts.shape[0]
    k_count = seg_t.shape[0]
    n_out = 0
    n_bad = 0
    r00 = Ril[0, 0]
    r01 = Ril[0, 1]
    r02 = Ril[0, 2]
    r10 = Ril[1, 0]
    r11 = Ril[1, 1]
    r12 = Ril[1, 2]
    r20 = Ril[2, 0]
    r21 = Ril[2, 1]
    r22 = Ril[2, 2]
    t0 = til[0]
    t1 = til[1]
    t2 = til[2]
    nan = np.nan
    # cache of the last point's time: points of one firing share a stamp (Ouster: 128 per column)
    last_tau = nan
    k = 0
    s = 0.0
    cs = 1.0
    sn = 0.0
    ux = 0.0
    uy = 0.0
    uz = 0.0
    for i in range(n):
        if is_int:
            tau = float(np.int64(t[i]) - t_sub_i) * scale_s + offset_s
        else:
            tau = (float(t[i]) - t_sub_f) * scale_s + offset_s
        if not (tau == last_tau):  # also true for NaN
            if not math.isfinite(tau):
                n_bad += 1
                out[i, 0] = nan
                out[i, 1] = nan
                out[i, 2] = nan
                continue
            if tau < t_lo or tau > t_hi:
                n_out += 1
                if nan_outside:
                    out[i, 0] = nan
                    out[i, 1] = nan
                    out[i, 2] = nan
                    continue
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
            s = tau - seg_t[k]
            ang = seg_wn[k] * s
            cs = math.cos(ang)
            sn = math.sin(ang)
            ux = seg_u[k, 0]
            uy = seg_u[k, 1]
            uz = seg_u[k, 2]
            last_tau = tau
        elif tau < t_lo or tau > t_hi:
            n_out += 1
            if nan_outside:
                out[i, 0] = nan
                out[i, 1] = nan
                out[i, 2] = nan
                continue
        x = float(pts[i, 0])
        y = float(pts[i, 1])
        z = float(pts[i, 2])
        # into the IMU frame
        yx = r00 * x + r01 * y + r02 * z + t0
        yy = r10 * x + r11 * y + r12 * z + t1
        yz = r20 * x + r21 * y + r22 * z + t2
        # Rodrigues: Exp(w s) y = y cos + (u x y) sin + u (u . y)(1 - cos)
        dot = (ux * yx + uy * yy + uz * yz) * (1.0 - cs)
        zx = yx * cs + (uy * yz - uz * yy) * sn + ux * dot
        zy = yy * cs + (uz * yx - ux * yz) * sn + uy * dot
        zz = yz * cs + (ux * yy - uy * yx) * sn + uz * dot
        s2 = s * s
        out[i, 0] = (seg_A[k, 0, 0] * zx + seg_A[k, 0, 1] * zy + seg_A[k, 0, 2] * zz
                     + seg_b[k, 0] + seg_c[k, 0] * s + seg_d[k, 0] * s2)
        out[i, 1] = (seg_A[k, 1, 0] * zx + seg_A[k, 1, 1] * zy + seg_A[k, 1, 2] * zz
                     + seg_b[k, 1] + seg_c[k, 1] * s + seg_d[k, 1] * s2)
        out[i, 2] = (seg_A[k, 2, 0] * zx + seg_A[k, 2, 1] * zy + seg_A[k, 2, 2] * zz
                     + seg_b[k, 2] + seg_c[k, 2] * s + seg_d[k, 2] * s2)
    return n_out, n_bad


@njit()
def _time_range(t: np.ndarray, is_int: bool) -> tuple[int, int, float, float, int]:
    """One pass over point times: ``(min_i, max_i, min_f, max_f, n_nonfinite)``.

    For integer ``t`` the int64 extremes are returned in ``min_i``/``max_i``; for float ``t`` the
    finite extremes in ``min_f``/``max_f``.  With no usable time, ``min > max``.
    """
    n = t.shape[0]
    mn_i = np.iinfo(np.int64).max
    mx_i = np.iinfo(np.int64).min
    mn_f = np.inf
    mx_f = -np.inf
    n_bad = 0
    for i in range(n):
        if is_int:
            v = np.int64(t[i])
            mn_i = min(mn_i, v)
            mx_i = max(mx_i, v)
        else:
            f = float(t[i])
            if not math.isfinite(f):
                n_bad += 1
                continue
            mn_f = min(mn_f, f)
            mx_f = max(mx_f, f)
    return mn_i, mx_i, mn_f, mx_f, n_bad


@njit()
def _integrate_imu(
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
    (``f`` = ``accel`` specific force).  Writes ``R`` (M, 3, 3), ``p`` (M, 3), ``v`` (M, 3),
    ``w`` (M-1, 3), ``a`` (M-1, 3).
    """
    m = gyro.shape[0]
    for r in range(3):
        for c in range(3):
            R[0, r, c] = 1.0 if r == c else 0.0
        p[0, r] = 0.0
        v[0, r] = v0[r] if use_accel else 0.0
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
