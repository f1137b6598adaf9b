"""Numba kernels for Kalman filtering (linear KF, CTRV EKF / UKF).  Small dense matrices, explicit loops
(no BLAS calls for 4–6-state filters).  Never raise; callers validate."""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit


@njit()
def _mm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b."""
    n, k = a.shape
    m = b.shape[1]
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for q in range(k):
                acc += a[i, q] * b[q, j]
            out[i, j] = acc


@njit()
def _mmt(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b.T."""
    n, k = a.shape
    m = b.shape[0]
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for q in range(k):
                acc += a[i, q] * b[j, q]
            out[i, j] = acc


@njit()
def _mmt_sym(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b.T when the result is known to be symmetric: upper triangle computed, mirrored."""
    n, k = a.shape
    for i in range(n):
        for j in range(i, n):
            acc = 0.0
            for q in range(k):
                acc += a[i, q] * b[j, q]
            out[i, j] = acc
            out[j, i] = acc


@njit()
def _sp_mm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b skipping zero entries of ``a`` (model matrices F, H are sparse); the sum over q
    keeps ascending order, so the result equals the dense product."""
    n, k = a.shape
    m = b.shape[1]
    out[:, :] = 0.0
    for i in range(n):
        for q in range(k):
            aiq = a[i, q]
            if aiq != 0.0:
                for j in range(m):
                    out[i, j] += aiq * b[q, j]


@njit()
def _sp_mmt(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b.T skipping zero entries of ``a``."""
    n, k = a.shape
    m = b.shape[0]
    out[:, :] = 0.0
    for i in range(n):
        for q in range(k):
            aiq = a[i, q]
            if aiq != 0.0:
                for j in range(m):
                    out[i, j] += aiq * b[j, q]


@njit()
def _inv(a: np.ndarray, out: np.ndarray, work: np.ndarray) -> bool:
    """Gauss–Jordan inverse with partial pivoting; False when singular or non-finite."""
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            work[i, j] = a[i, j]
            out[i, j] = 1.0 if i == j else 0.0
    for c in range(n):
        p = c
        best = abs(work[c, c])
        for r in range(c + 1, n):
            if abs(work[r, c]) > best:
                best = abs(work[r, c])
                p = r
        if not best > 0.0 or not math.isfinite(best):
            return False
        if p != c:
            for j in range(n):
                t = work[c, j]
                work[c, j] = work[p, j]
                work[p, j] = t
                t = out[c, j]
                out[c, j] = out[p, j]
                out[p, j] = t
        d = work[c, c]
        for j in range(n):
            work[c, j] /= d
            out[c, j] /= d
        for r in range(n):
            if r != c:
                f = work[r, c]
                if f != 0.0:
                    for j in range(n):
                        work[r, j] -= f * work[c, j]
                        out[r, j] -= f * out[c, j]
    return True


@njit()
def _kf_predict(x: np.ndarray, P: np.ndarray, F: np.ndarray, Q: np.ndarray, tmp: np.ndarray,  # noqa: PLR0917
                tmp2: np.ndarray, xt: np.ndarray) -> None:
    """x ← F x, P ← F P Fᵀ + Q (in place)."""
    n = x.shape[0]
    for i in range(n):
        acc = 0.0
        for q in range(n):
            acc += F[i, q] * x[q]
        xt[i] = acc
    x[:] = xt
    _sp_mm(F, P, tmp)
    _sp_mmt(F, tmp, tmp2)  # F (F P)ᵀ = F P Fᵀ for symmetric P
    for i in range(n):
        for j in range(i, n):
            v = 0.5 * (tmp2[i, j] + tmp2[j, i]) + Q[i, j]
            P[i, j] = v
            P[j, i] = v


@njit()
def _kf_update(x: np.ndarray, P: np.ndarray, z: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
               ws: tuple) -> bool:  # type: ignore[type-arg]
    """Kalman update (optimal gain, P ← P − K S Kᵀ); returns False (no change) if S is singular."""
    y, PHT, S, SI, Kg, _unused, T1, T2, KR, Swork = ws
    n = x.shape[0]
    m = z.shape[0]
    for i in range(m):
        acc = 0.0
        for q in range(n):
            acc += H[i, q] * x[q]
        y[i] = z[i] - acc
    HP = T2[:m]
    _sp_mm(H, P, HP)  # H P (m, n) = (P Hᵀ)ᵀ for symmetric P
    for i in range(n):
        for j in range(m):
            PHT[i, j] = HP[j, i]
    _sp_mm(H, PHT, S)
    for i in range(m):
        for j in range(m):
            S[i, j] += R[i, j]
    if not _inv(S, SI, Swork):
        return False
    _mm(PHT, SI, Kg)
    for i in range(n):
        acc = 0.0
        for q in range(m):
            acc += Kg[i, q] * y[q]
        x[i] += acc
    # P ← P − K S Kᵀ (symmetric; equals the Joseph form (I−KH)P(I−KH)ᵀ + KRKᵀ for the optimal gain)
    _mm(Kg, S, KR)
    _mmt_sym(KR, Kg, T1)
    for i in range(n):
        for j in range(n):
            P[i, j] -= T1[i, j]
    return True


@njit()
def _kf_workspace(n: int, m: int) -> tuple:  # type: ignore[type-arg]
    return (np.empty(m), np.empty((n, m)), np.empty((m, m)), np.empty((m, m)), np.empty((n, m)),
            np.empty((n, n)), np.empty((n, n)), np.empty((n, n)), np.empty((n, m)), np.empty((m, m)))


@njit()
def _kf_run(x0: np.ndarray, P0: np.ndarray, F: np.ndarray, Q: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
            zs: np.ndarray, xs: np.ndarray, Ps: np.ndarray, store_cov: bool) -> int:
    """Predict + update for every row of ``zs`` (non-finite rows: predict only).  Writes states into
    ``xs`` (and covariances into ``Ps`` when ``store_cov``).  Returns the number of skipped updates."""
    n = x0.shape[0]
    m = H.shape[0]
    x = x0.copy()
    P = P0.copy()
    tmp = np.empty((n, n))
    tmp2 = np.empty((n, n))
    xt = np.empty(n)
    ws = _kf_workspace(n, m)
    skipped = 0
    for k in range(zs.shape[0]):
        _kf_predict(x, P, F, Q, tmp, tmp2, xt)
        finite = True
        for i in range(m):
            if not math.isfinite(zs[k, i]):
                finite = False
        if not finite or not _kf_update(x, P, zs[k], H, R, ws):
            skipped += 1
        for i in range(n):
            xs[k, i] = x[i]
        if store_cov:
            for i in range(n):
                for j in range(n):
                    Ps[k, i, j] = P[i, j]
    return skipped


# ----------------------------------------------------------------------------- CTRV (x, y, yaw, v, ω)


@njit()
def _ctrv_f(s: np.ndarray, dt: float, out: np.ndarray) -> None:
    """Constant turn rate and velocity motion: state (x, y, yaw, v, yaw_rate)."""
    x, y, yaw, v, w = s[0], s[1], s[2], s[3], s[4]
    if abs(w) > 1e-6:
        out[0] = x + v / w * (math.sin(yaw + w * dt) - math.sin(yaw))
        out[1] = y + v / w * (math.cos(yaw) - math.cos(yaw + w * dt))
    else:
        out[0] = x + v * dt * math.cos(yaw)
        out[1] = y + v * dt * math.sin(yaw)
    out[2] = yaw + w * dt
    out[3] = v
    out[4] = w


@njit()
def _ctrv_jacobian(s: np.ndarray, dt: float, J: np.ndarray) -> None:
    yaw, v, w = s[2], s[3], s[4]
    J[:, :] = 0.0
    for i in range(5):
        J[i, i] = 1.0
    if abs(w) > 1e-6:
        s1 = math.sin(yaw + w * dt)
        c1 = math.cos(yaw + w * dt)
        s0 = math.sin(yaw)
        c0 = math.cos(yaw)
        J[0, 2] = v / w * (c1 - c0)
        J[0, 3] = (s1 - s0) / w
        J[0, 4] = v * dt * c1 / w - v / (w * w) * (s1 - s0)
        J[1, 2] = v / w * (s1 - s0)
        J[1, 3] = (c0 - c1) / w
        J[1, 4] = v * dt * s1 / w - v / (w * w) * (c0 - c1)
    else:
        J[0, 2] = -v * dt * math.sin(yaw)
        J[0, 3] = dt * math.cos(yaw)
        J[1, 2] = v * dt * math.cos(yaw)
        J[1, 3] = dt * math.sin(yaw)
    J[2, 4] = dt


@njit()
def _ctrv_q(dt: float, sigma_a: float, sigma_w: float, s: np.ndarray, Q: np.ndarray) -> None:
    """Process noise from random longitudinal acceleration and yaw acceleration (white, piecewise)."""
    Q[:, :] = 0.0
    yaw = s[2]
    c, sn = math.cos(yaw), math.sin(yaw)
    g = np.array([0.5 * dt * dt * c, 0.5 * dt * dt * sn, 0.0, dt, 0.0])
    h = np.array([0.0, 0.0, 0.5 * dt * dt, 0.0, dt])
    for i in range(5):
        for j in range(5):
            Q[i, j] = sigma_a * sigma_a * g[i] * g[j] + sigma_w * sigma_w * h[i] * h[j]


@njit()
def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


@njit()
def _ekf_ctrv_predict(x: np.ndarray, P: np.ndarray, dt: float, sigma_a: float, sigma_w: float) -> None:
    J = np.empty((5, 5))
    Q = np.empty((5, 5))
    _ctrv_jacobian(x, dt, J)
    _ctrv_q(dt, sigma_a, sigma_w, x, Q)
    xn = np.empty(5)
    _ctrv_f(x, dt, xn)
    xn[2] = _wrap(xn[2])
    x[:] = xn
    tmp = np.empty((5, 5))
    tmp2 = np.empty((5, 5))
    _mm(J, P, tmp)
    _mmt(tmp, J, tmp2)
    for i in range(5):
        for j in range(5):
            P[i, j] = 0.5 * (tmp2[i, j] + tmp2[j, i]) + Q[i, j]


@njit()
def _ukf_ctrv_predict(x: np.ndarray, P: np.ndarray, dt: float, sigma_a: float, sigma_w: float,  # noqa: PLR0917
                      alpha: float, beta: float, kappa: float) -> bool:
    """Unscented prediction (Merwe scaled sigma points) through the CTRV model; yaw averaged circularly."""
    n = 5
    lam = alpha * alpha * (n + kappa) - n
    L = np.linalg.cholesky((n + lam) * (0.5 * (P + P.T)) + 1e-12 * np.eye(n))
    pts = np.empty((2 * n + 1, n))
    pts[0] = x
    for i in range(n):
        for k in range(n):
            pts[1 + i, k] = x[k] + L[k, i]
            pts[1 + n + i, k] = x[k] - L[k, i]
    wm0 = lam / (n + lam)
    wc0 = wm0 + (1 - alpha * alpha + beta)
    wi = 0.5 / (n + lam)
    out = np.empty((2 * n + 1, n))
    for s in range(2 * n + 1):
        _ctrv_f(pts[s], dt, out[s])
    mean = np.zeros(n)
    cs = 0.0
    sn = 0.0
    for s in range(2 * n + 1):
        w = wm0 if s == 0 else wi
        for k in range(n):
            if k != 2:
                mean[k] += w * out[s, k]
        cs += w * math.cos(out[s, 2])
        sn += w * math.sin(out[s, 2])
    mean[2] = math.atan2(sn, cs)
    Pn = np.zeros((n, n))
    d = np.empty(n)
    for s in range(2 * n + 1):
        w = wc0 if s == 0 else wi
        for k in range(n):
            d[k] = out[s, k] - mean[k]
        d[2] = _wrap(d[2])
        for i in range(n):
            for j in range(n):
                Pn[i, j] += w * d[i] * d[j]
    Q = np.empty((n, n))
    _ctrv_q(dt, sigma_a, sigma_w, mean, Q)
    x[:] = mean
    for i in range(n):
        for j in range(n):
            P[i, j] = 0.5 * (Pn[i, j] + Pn[j, i]) + Q[i, j]
    return True
