"""Numba kernels of the 15-state EKF / UKF (state layout: :mod:`edgefuse.estimation.state`).

Kernels take arrays and scalars only, never raise, and mutate preallocated state in place.  The public
wrappers (:mod:`edgefuse.estimation.filter`) validate inputs and build the measurement rows.

A *measurement row* observes ``m <= 6`` state variables: ``z[:m]`` values at state indices ``idx[:m]``
with covariance ``R[:m, :m]``, Mahalanobis gate ``thresh`` (distance, not squared; ``inf`` = off) and a
``kind``:

- ``KIND_DIRECT``: ``h(x) = x[idx]``;
- ``KIND_ACCEL_GRAVITY``: raw body-frame specific force; ``h(x) = a + R(rpy)ᵀ·[0, 0, g]`` with the
  state's orientation taken as known (``g`` = ``slot_params[slot, 0]``);
- ``KIND_GNSS``: local ENU antenna position relative to the navsat datum; the kernel maps it into the
  world frame through the navsat transform (set at the first such row from the current state: world
  position and yaw at the datum, and the ENU heading ``aux`` (NaN: the world frame is ENU-aligned)),
  then subtracts the antenna lever arm ``slot_params[slot, 0:3]`` rotated by the state's orientation.

Motion model (robot_localization's omnidirectional model; velocities, angular velocities and
accelerations are in the body frame)::

    p'   = p + R(rpy)·(v·dt + a·dt²/2)      rpy' = rpy + E(roll, pitch)·ω·dt
    v'   = v + a·dt                          ω' = ω,  a' = a

``E`` maps body rates to Euler-angle rates.  Process noise is ``Q·dt``.

History (out-of-order measurements): each accepted row is stored with the state after it; a row older
than the newest one is inserted in stamp order, the state is restored from the entry before it and every
later row is replayed.  Rows older than the oldest entry or than ``history_ns`` before the newest are
rejected (``ST_TOO_OLD``).
"""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit
from edgefuse._kernels_linalg import cholesky_lower, lower_inverse, sandwich, wrap_pi

N_STATE = 15

KIND_DIRECT = 0
KIND_ACCEL_GRAVITY = 1
KIND_GNSS = 2

ST_OK = 0
ST_MAHALANOBIS = 1
ST_NUMERICAL = 2
ST_OUT_OF_ORDER = 3
ST_DUPLICATE = 4
ST_TOO_OLD = 5
ST_FUTURE = 6
ST_NONFINITE = 7
ST_NOT_PSD = 8

# ctr (int64 work array) layout
C_T = 0  # filter time [ns]
C_INIT = 1  # 1 once the first row set the time
C_N = 2  # history entries held
C_FUTURE_STREAK = 3  # consecutive rows rejected as from the future
C_REPLAYED = 4  # total rows replayed because of out-of-order inserts
C_TIME_JUMPS = 5  # accepted time jumps (future streak reached the limit)
C_LEN = 8

# cfg (float64 parameters) layout
G_TWO_D = 0
G_HISTORY_NS = 1  # <= 0: no history (older rows are rejected as out of order)
G_FUTURE_NS = 2  # a row more than this ahead of the filter time is "future" (<= 0: off)
G_FUTURE_RESET = 3  # after this many consecutive future rows, accept the jump
G_MODE = 4  # 0 EKF, 1 UKF
G_ALPHA = 5
G_BETA = 6
G_KAPPA = 7
G_LEN = 8

# navsat (float64) layout: [set, rot, p0x, p0y, p0z]
NAV_LEN = 5

INT64_MIN = -(2**63)
MIN_VARIANCE = 1e-9


_wrap = wrap_pi  # angle into [-π, π)
_chol = cholesky_lower  # Cholesky A[:n, :n] = L·Lᵀ; False when not positive definite


@njit()
def _rot(r: float, p: float, y: float, out: np.ndarray) -> None:
    """R = Rz(y)·Ry(p)·Rx(r) into ``out`` (3×3)."""
    cr, sr = math.cos(r), math.sin(r)
    cp, sp = math.cos(p), math.sin(p)
    cy, sy = math.cos(y), math.sin(y)
    out[0, 0] = cy * cp
    out[0, 1] = cy * sp * sr - sy * cr
    out[0, 2] = cy * sp * cr + sy * sr
    out[1, 0] = sy * cp
    out[1, 1] = sy * sp * sr + cy * cr
    out[1, 2] = sy * sp * cr - cy * sr
    out[2, 0] = -sp
    out[2, 1] = cp * sr
    out[2, 2] = cp * cr


@njit()
def _propagate(x: np.ndarray, dt: float, out: np.ndarray) -> None:
    """Motion model: ``out = f(x, dt)`` (angles wrapped)."""
    R = np.empty((3, 3))
    _rot(x[3], x[4], x[5], R)
    h = 0.5 * dt * dt
    for i in range(3):
        out[i] = x[i] + (R[i, 0] * (x[6] * dt + x[12] * h) + R[i, 1] * (x[7] * dt + x[13] * h)
                         + R[i, 2] * (x[8] * dt + x[14] * h))
    cr, sr = math.cos(x[3]), math.sin(x[3])
    cp = math.cos(x[4])
    if abs(cp) < 1e-9:
        cp = 1e-9 if cp >= 0.0 else -1e-9
    tp = math.sin(x[4]) / cp
    w0, w1, w2 = x[9], x[10], x[11]
    out[3] = _wrap(x[3] + (w0 + sr * tp * w1 + cr * tp * w2) * dt)
    out[4] = _wrap(x[4] + (cr * w1 - sr * w2) * dt)
    out[5] = _wrap(x[5] + (sr / cp * w1 + cr / cp * w2) * dt)
    for i in range(3):
        out[6 + i] = x[6 + i] + x[12 + i] * dt
        out[9 + i] = x[9 + i]
        out[12 + i] = x[12 + i]


@njit()
def _jacobian(x: np.ndarray, dt: float, F: np.ndarray) -> None:
    """∂f/∂x of :func:`_propagate` into ``F`` (15×15)."""
    F[:, :] = 0.0
    for i in range(N_STATE):
        F[i, i] = 1.0
    r, p, y = x[3], x[4], x[5]
    cr, sr = math.cos(r), math.sin(r)
    cp, sp = math.cos(p), math.sin(p)
    cy, sy = math.cos(y), math.sin(y)
    R = np.empty((3, 3))
    _rot(r, p, y, R)
    h = 0.5 * dt * dt
    u0 = x[6] * dt + x[12] * h
    u1 = x[7] * dt + x[13] * h
    u2 = x[8] * dt + x[14] * h
    # d(R u)/d roll, pitch, yaw
    dRr = np.empty((3, 3))
    dRr[0, 0] = 0.0
    dRr[0, 1] = cy * sp * cr + sy * sr
    dRr[0, 2] = -cy * sp * sr + sy * cr
    dRr[1, 0] = 0.0
    dRr[1, 1] = sy * sp * cr - cy * sr
    dRr[1, 2] = -sy * sp * sr - cy * cr
    dRr[2, 0] = 0.0
    dRr[2, 1] = cp * cr
    dRr[2, 2] = -cp * sr
    dRp = np.empty((3, 3))
    dRp[0, 0] = -cy * sp
    dRp[0, 1] = cy * cp * sr
    dRp[0, 2] = cy * cp * cr
    dRp[1, 0] = -sy * sp
    dRp[1, 1] = sy * cp * sr
    dRp[1, 2] = sy * cp * cr
    dRp[2, 0] = -cp
    dRp[2, 1] = -sp * sr
    dRp[2, 2] = -sp * cr
    dRy = np.empty((3, 3))
    dRy[0, 0] = -sy * cp
    dRy[0, 1] = -sy * sp * sr - cy * cr
    dRy[0, 2] = -sy * sp * cr + cy * sr
    dRy[1, 0] = cy * cp
    dRy[1, 1] = cy * sp * sr - sy * cr
    dRy[1, 2] = cy * sp * cr + sy * sr
    dRy[2, 0] = 0.0
    dRy[2, 1] = 0.0
    dRy[2, 2] = 0.0
    for i in range(3):
        F[i, 3] = dRr[i, 0] * u0 + dRr[i, 1] * u1 + dRr[i, 2] * u2
        F[i, 4] = dRp[i, 0] * u0 + dRp[i, 1] * u1 + dRp[i, 2] * u2
        F[i, 5] = dRy[i, 0] * u0 + dRy[i, 1] * u1 + dRy[i, 2] * u2
        for j in range(3):
            F[i, 6 + j] = R[i, j] * dt
            F[i, 12 + j] = R[i, j] * h
    if abs(cp) < 1e-9:
        cp = 1e-9 if cp >= 0.0 else -1e-9
    tp = sp / cp
    w1, w2 = x[10], x[11]
    a = sr * w1 + cr * w2  # used by the pitch derivatives
    b = cr * w1 - sr * w2  # d(a)/d roll
    F[3, 3] = 1.0 + tp * b * dt
    F[3, 4] = a / (cp * cp) * dt
    F[4, 3] = (-sr * w1 - cr * w2) * dt
    F[5, 3] = b / cp * dt
    F[5, 4] = a * sp / (cp * cp) * dt
    F[3, 9] = dt
    F[3, 10] = sr * tp * dt
    F[3, 11] = cr * tp * dt
    F[4, 10] = cr * dt
    F[4, 11] = -sr * dt
    F[5, 10] = sr / cp * dt
    F[5, 11] = cr / cp * dt
    for i in range(3):
        F[6 + i, 12 + i] = dt


@njit()
def _enforce_2d(x: np.ndarray, P: np.ndarray) -> None:
    """two_d_mode: z, roll, pitch, vz, vroll, vpitch, az are 0 and decoupled (variance 1e-9)."""
    for i in (2, 3, 4, 8, 9, 10, 14):
        x[i] = 0.0
        for j in range(N_STATE):
            P[i, j] = 0.0
            P[j, i] = 0.0
        P[i, i] = 1e-9


@njit()
def _predict_ekf(x: np.ndarray, P: np.ndarray, Q: np.ndarray, dt: float) -> None:
    F = np.empty((N_STATE, N_STATE))
    _jacobian(x, dt, F)
    xn = np.empty(N_STATE)
    _propagate(x, dt, xn)
    x[:] = xn
    # P ← F·P·Fᵀ + Q·dt, skipping F's zeros (F is identity plus a few blocks), symmetrised
    sandwich(F, P, Q, dt, np.empty((N_STATE, N_STATE)), N_STATE)


@njit()
def _predict_ukf(x: np.ndarray, P: np.ndarray, Q: np.ndarray, dt: float, alpha: float, beta: float,  # noqa: PLR0917
                 kappa: float) -> bool:
    """Unscented prediction (scaled sigma points, angle-aware mean); False when P is not PD."""
    n = N_STATE
    lam = alpha * alpha * (n + kappa) - n
    L = np.empty((n, n))
    A = P * (n + lam)
    if not _chol(A, n, L):
        return False
    wm0 = lam / (n + lam)
    wc0 = wm0 + (1.0 - alpha * alpha + beta)
    wi = 0.5 / (n + lam)
    Y = np.empty((2 * n + 1, n))
    s = np.empty(n)
    _propagate(x, dt, Y[0])
    for k in range(n):
        for i in range(n):
            s[i] = x[i] + L[i, k]
        _propagate(s, dt, Y[1 + k])
        for i in range(n):
            s[i] = x[i] - L[i, k]
        _propagate(s, dt, Y[1 + n + k])
    # mean: deviations from the central point (angle differences wrapped)
    mean_dev = np.zeros(n)
    D = np.empty((2 * n + 1, n))
    for j in range(2 * n + 1):
        for i in range(n):
            d = Y[j, i] - Y[0, i]
            if 3 <= i <= 5:
                d = _wrap(d)
            D[j, i] = d
    for j in range(1, 2 * n + 1):
        for i in range(n):
            mean_dev[i] += wi * D[j, i]
    for i in range(n):
        x[i] = Y[0, i] + mean_dev[i]
        if 3 <= i <= 5:
            x[i] = _wrap(x[i])
    # covariance of deviations around the mean
    Pn = Q * dt
    for j in range(2 * n + 1):
        w = wc0 if j == 0 else wi
        for a in range(n):
            da = D[j, a] - mean_dev[a]
            if da == 0.0:
                continue
            for b in range(n):
                Pn[a, b] += w * da * (D[j, b] - mean_dev[b])
    for i in range(n):
        for j in range(i + 1, n):
            v = 0.5 * (Pn[i, j] + Pn[j, i])
            Pn[i, j] = v
            Pn[j, i] = v
    P[:, :] = Pn
    return True


@njit()
def _update(x: np.ndarray, P: np.ndarray, z: np.ndarray, idx: np.ndarray, m: int, R: np.ndarray,  # noqa: PLR0912, PLR0915, PLR0917
            thresh: float, kind: int, slot_par: np.ndarray, aux: float, navsat: np.ndarray) -> int:
    """Kalman update with a selection measurement; returns a status code.  Linear in the state for
    every kind (the orientation terms of gravity and lever arm are taken as known), so the unscented
    update equals this one."""
    n = N_STATE
    y = np.empty(m)
    Rm = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            Rm[i, j] = R[i, j]
    if kind == KIND_GNSS:
        Rw = np.empty((3, 3))
        _rot(x[3], x[4], x[5], Rw)
        if navsat[0] == 0.0:
            rot = 0.0 if math.isnan(aux) else _wrap(x[5] - aux)
            navsat[0] = 1.0
            navsat[1] = rot
            for i in range(3):
                navsat[2 + i] = x[i] + Rw[i, 0] * slot_par[0] + Rw[i, 1] * slot_par[1] + Rw[i, 2] * slot_par[2]
        c, s_ = math.cos(navsat[1]), math.sin(navsat[1])
        # z holds ENU (e, n, u) in rows whose idx are 0, 1, 2 (any subset, in order)
        e_full = np.zeros(3)
        for i in range(m):
            e_full[idx[i]] = z[i]
        wx = c * e_full[0] - s_ * e_full[1] + navsat[2]
        wy = s_ * e_full[0] + c * e_full[1] + navsat[3]
        wz = e_full[2] + navsat[4]
        w = (wx, wy, wz)
        # rotate the horizontal covariance into the world frame when both x and y are observed
        ix = -1
        iy = -1
        for i in range(m):
            if idx[i] == 0:
                ix = i
            elif idx[i] == 1:
                iy = i
        if ix >= 0 and iy >= 0:
            sxx, sxy, syy = R[ix, ix], R[ix, iy], R[iy, iy]
            Rm[ix, ix] = c * c * sxx - 2 * c * s_ * sxy + s_ * s_ * syy
            Rm[iy, iy] = s_ * s_ * sxx + 2 * c * s_ * sxy + c * c * syy
            v = c * s_ * (sxx - syy) + (c * c - s_ * s_) * sxy
            Rm[ix, iy] = v
            Rm[iy, ix] = v
        for i in range(m):
            k = idx[i]
            lever = Rw[k, 0] * slot_par[0] + Rw[k, 1] * slot_par[1] + Rw[k, 2] * slot_par[2]
            y[i] = w[k] - lever - x[k]
    elif kind == KIND_ACCEL_GRAVITY:
        Rw = np.empty((3, 3))
        _rot(x[3], x[4], x[5], Rw)
        g = slot_par[0]
        for i in range(m):
            k = idx[i]
            y[i] = z[i] - x[k] - Rw[2, k - 12] * g
    else:
        for i in range(m):
            k = idx[i]
            d = z[i] - x[k]
            if 3 <= k <= 5:
                d = _wrap(d)
            y[i] = d
    S = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            S[i, j] = P[idx[i], idx[j]] + Rm[i, j]
    L = np.empty((m, m))
    if not _chol(S, m, L):
        return ST_NUMERICAL
    # Sinv via the Cholesky factor
    Linv = np.empty((m, m))
    lower_inverse(L, m, Linv)
    Sinv = Linv.T @ Linv
    d2 = 0.0
    for i in range(m):
        for j in range(m):
            d2 += y[i] * Sinv[i, j] * y[j]
    if not d2 <= thresh * thresh:
        return ST_MAHALANOBIS if math.isfinite(d2) else ST_NUMERICAL
    PHt = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            PHt[i, j] = P[i, idx[j]]
    K = PHt @ Sinv
    xn = x.copy()
    for i in range(n):
        s = 0.0
        for j in range(m):
            s += K[i, j] * y[j]
        xn[i] += s
    # P ← P − K·(P·Hᵀ)ᵀ (= P − K·S·Kᵀ), symmetrised.  Not edgefuse._kernels_linalg.sym_sub_mul_bt:
    # this subtracts term by term (that sum then subtracts once), an order the Husky digests depend on
    Pn = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            s = P[i, j]
            for k in range(m):
                s -= K[i, k] * PHt[j, k]
            Pn[i, j] = s
            Pn[j, i] = s
    for i in range(n):
        if not math.isfinite(xn[i]) or not Pn[i, i] >= 0.0:
            return ST_NUMERICAL
        for j in range(n):
            if not math.isfinite(Pn[i, j]):
                return ST_NUMERICAL
    for i in range(3, 6):
        xn[i] = _wrap(xn[i])
    x[:] = xn
    P[:, :] = Pn
    return ST_OK


@njit()
def _step(x: np.ndarray, P: np.ndarray, Q: np.ndarray, cfg: np.ndarray, t_from: int, t: int,  # noqa: PLR0917
          z: np.ndarray, idx: np.ndarray, m: int, R: np.ndarray, thresh: float, kind: int,
          slot_par: np.ndarray, aux: float, navsat: np.ndarray) -> int:
    """Predict from ``t_from`` to ``t`` then update (a rejected update keeps the prediction)."""
    dt = (t - t_from) * 1e-9
    if dt > 0.0:
        if cfg[G_MODE] == 1.0:
            if not _predict_ukf(x, P, Q, dt, cfg[G_ALPHA], cfg[G_BETA], cfg[G_KAPPA]):
                _predict_ekf(x, P, Q, dt)  # P lost definiteness: fall back to the linearised step
        else:
            _predict_ekf(x, P, Q, dt)
        if cfg[G_TWO_D] != 0.0:
            _enforce_2d(x, P)
    # _update leaves x, P untouched unless it succeeds: a rejected row keeps the prediction
    st = _update(x, P, z, idx, m, R, thresh, kind, slot_par, aux, navsat)
    if cfg[G_TWO_D] != 0.0:
        _enforce_2d(x, P)
    return st


@njit()
def _check_measurement(z: np.ndarray, m: int, R: np.ndarray) -> int:
    """Finite values; R symmetric positive semi-definite (Cholesky of R + tiny jitter); then variances
    below MIN_VARIANCE are raised to it (in place)."""
    scale = 1.0
    for i in range(m):
        if not math.isfinite(z[i]):
            return ST_NONFINITE
        for j in range(m):
            if not math.isfinite(R[i, j]):
                return ST_NONFINITE
            scale = max(scale, abs(R[i, j]))
    for i in range(m):
        for j in range(i + 1, m):
            if abs(R[i, j] - R[j, i]) > 1e-9 * scale:
                return ST_NOT_PSD
    A = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            A[i, j] = R[i, j]
        A[i, i] += 1e-12 * scale
    L = np.empty((m, m))
    if not _chol(A, m, L):
        return ST_NOT_PSD
    for i in range(m):
        R[i, i] = max(R[i, i], MIN_VARIANCE)
    return ST_OK


@njit()
def _process_row(t: int, slot: int, kind: int, z: np.ndarray, idx: np.ndarray, m: int, R: np.ndarray,  # noqa: PLR0915, PLR0917
                 thresh: float, aux: float,
                 x: np.ndarray, P: np.ndarray, Q: np.ndarray, cfg: np.ndarray, ctr: np.ndarray,
                 slot_last: np.ndarray, slot_par: np.ndarray, navsat: np.ndarray,
                 h_t: np.ndarray, h_slot: np.ndarray, h_kind: np.ndarray, h_z: np.ndarray, h_idx: np.ndarray,
                 h_m: np.ndarray, h_R: np.ndarray, h_thresh: np.ndarray, h_aux: np.ndarray,
                 h_x: np.ndarray, h_P: np.ndarray) -> int:
    """Process one measurement row (see the module docstring); returns its status."""
    st = _check_measurement(z, m, R)
    if st != ST_OK:
        return st
    last = slot_last[slot]
    if ctr[C_INIT] != 0 and last != INT64_MIN:
        if t == last:
            return ST_DUPLICATE
        if t < last:
            return ST_OUT_OF_ORDER
    if ctr[C_INIT] == 0:
        ctr[C_T] = t
        ctr[C_INIT] = 1
    t_now = ctr[C_T]
    fut = cfg[G_FUTURE_NS]
    if fut > 0.0 and t - t_now > fut:
        ctr[C_FUTURE_STREAK] += 1
        if ctr[C_FUTURE_STREAK] < cfg[G_FUTURE_RESET]:
            return ST_FUTURE
        # persistent: accept the jump (clock really moved); history before it is dropped
        ctr[C_TIME_JUMPS] += 1
        ctr[C_N] = 0
    ctr[C_FUTURE_STREAK] = 0
    H = h_t.shape[0]
    hist_ns = cfg[G_HISTORY_NS]
    use_hist = hist_ns > 0.0 and H > 0
    n = ctr[C_N]
    if t >= t_now:
        st = _step(x, P, Q, cfg, t_now, t, z, idx, m, R, thresh, kind, slot_par[slot], aux, navsat)
        ctr[C_T] = t
        slot_last[slot] = t
        if use_hist:
            if n == H:  # drop the oldest quarter
                drop = max(1, H // 4)
                for k in range(drop, H):
                    h_t[k - drop] = h_t[k]
                    h_slot[k - drop] = h_slot[k]
                    h_kind[k - drop] = h_kind[k]
                    h_z[k - drop] = h_z[k]
                    h_idx[k - drop] = h_idx[k]
                    h_m[k - drop] = h_m[k]
                    h_R[k - drop] = h_R[k]
                    h_thresh[k - drop] = h_thresh[k]
                    h_aux[k - drop] = h_aux[k]
                    h_x[k - drop] = h_x[k]
                    h_P[k - drop] = h_P[k]
                n -= drop
            h_t[n] = t
            h_slot[n] = slot
            h_kind[n] = kind
            h_z[n, :m] = z[:m]
            h_idx[n, :m] = idx[:m]
            h_m[n] = m
            h_R[n, :m, :m] = R[:m, :m]
            h_thresh[n] = thresh
            h_aux[n] = aux
            h_x[n] = x
            h_P[n] = P
            ctr[C_N] = n + 1
        return st
    # older than the filter time
    if not use_hist:
        return ST_TOO_OLD
    if n == 0 or t < h_t[0] or (t_now - t) > hist_ns:
        return ST_TOO_OLD
    k = n
    while k > 0 and h_t[k - 1] > t:
        k -= 1
    # k >= 1: entry k-1 is at or before t; restore the state after it
    if n == H:  # make room: drop the oldest entry (k shifts down by one)
        for j in range(1, H):
            h_t[j - 1] = h_t[j]
            h_slot[j - 1] = h_slot[j]
            h_kind[j - 1] = h_kind[j]
            h_z[j - 1] = h_z[j]
            h_idx[j - 1] = h_idx[j]
            h_m[j - 1] = h_m[j]
            h_R[j - 1] = h_R[j]
            h_thresh[j - 1] = h_thresh[j]
            h_aux[j - 1] = h_aux[j]
            h_x[j - 1] = h_x[j]
            h_P[j - 1] = h_P[j]
        n -= 1
        k -= 1
        if k == 0:
            ctr[C_N] = n
            return ST_TOO_OLD
    for j in range(n, k, -1):
        h_t[j] = h_t[j - 1]
        h_slot[j] = h_slot[j - 1]
        h_kind[j] = h_kind[j - 1]
        h_z[j] = h_z[j - 1]
        h_idx[j] = h_idx[j - 1]
        h_m[j] = h_m[j - 1]
        h_R[j] = h_R[j - 1]
        h_thresh[j] = h_thresh[j - 1]
        h_aux[j] = h_aux[j - 1]
    h_t[k] = t
    h_slot[k] = slot
    h_kind[k] = kind
    h_z[k, :m] = z[:m]
    h_idx[k, :m] = idx[:m]
    h_m[k] = m
    h_R[k, :m, :m] = R[:m, :m]
    h_thresh[k] = thresh
    h_aux[k] = aux
    n += 1
    ctr[C_N] = n
    x[:] = h_x[k - 1]
    P[:, :] = h_P[k - 1]
    t_prev = h_t[k - 1]
    st_new = ST_OK
    for j in range(k, n):
        mj = h_m[j]
        st = _step(x, P, Q, cfg, t_prev, h_t[j], h_z[j], h_idx[j], mj, h_R[j], h_thresh[j], h_kind[j],
                   slot_par[h_slot[j]], h_aux[j], navsat)
        if j == k:
            st_new = st
        else:
            ctr[C_REPLAYED] += 1
        t_prev = h_t[j]
        h_x[j] = x
        h_P[j] = P
    slot_last[slot] = t
    return st_new


@njit()
def _run_rows(t: np.ndarray, slot: np.ndarray, kind: np.ndarray, z: np.ndarray, idx: np.ndarray, m: np.ndarray,  # noqa: PLR0917
              R: np.ndarray, thresh: np.ndarray, aux: np.ndarray,
              x: np.ndarray, P: np.ndarray, Q: np.ndarray, cfg: np.ndarray, ctr: np.ndarray,
              slot_last: np.ndarray, slot_par: np.ndarray, navsat: np.ndarray,
              h_t: np.ndarray, h_slot: np.ndarray, h_kind: np.ndarray, h_z: np.ndarray, h_idx: np.ndarray,
              h_m: np.ndarray, h_R: np.ndarray, h_thresh: np.ndarray, h_aux: np.ndarray,
              h_x: np.ndarray, h_P: np.ndarray,
              status: np.ndarray, out_t: np.ndarray, out_x: np.ndarray, out_pdiag: np.ndarray) -> None:
    """Process rows in arrival order; after row i the filter time, state and covariance diagonal are
    written to ``out_t[i]``, ``out_x[i]``, ``out_pdiag[i]`` (when those arrays have rows)."""
    keep = out_x.shape[0] > 0
    for i in range(t.shape[0]):
        status[i] = _process_row(t[i], slot[i], kind[i], z[i], idx[i], m[i], R[i], thresh[i], aux[i],
                                 x, P, Q, cfg, ctr, slot_last, slot_par, navsat,
                                 h_t, h_slot, h_kind, h_z, h_idx, h_m, h_R, h_thresh, h_aux, h_x, h_P)
        if keep:
            out_t[i] = ctr[C_T]
            out_x[i] = x
            for j in range(N_STATE):
                out_pdiag[i, j] = P[j, j]
