"""Numba kernels of the batch EKF / UKF (:mod:`edgefuse.objects.nonlinear`): every step of a measurement
sequence in one compiled call, with the user's model functions passed in as Numba functions.

The two run kernels take functions as arguments, so they are compiled once per process and per set of
model functions (``cache=False``: a function argument is a new type in every process and would never
hit the on-disk cache).  They only call the model functions and hand everything else to helpers that
take arrays only (``_ekf_*``, ``_ukf_*``, ``_sigma_points``), which are compiled once and cached on
disk like every other kernel: this keeps the per-process compilation short.  Nothing here raises; a step
that cannot be applied is skipped and given a status code.  Callers validate shapes and values.

User functions (all write into ``out`` and return nothing; see the wrapper module for the contract):
``f(x, dt, out)``, ``F(x, dt, out)``, ``h(x, out)``, ``H(x, out)``, ``residual(a, b, out)`` (a − b),
``mean(sigmas, Wm, out)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgefuse._jit import njit
from edgefuse._kernels_linalg import (
    all_finite,
    cholesky_lower,
    joseph_update,
    mat_mul,
    mat_mul_bt,
    sandwich,
    spd_inverse,
    sym_sub_mul_bt,
)

Fn = Callable[..., None]

ST_OK = 0
ST_MISSING = 1  # the measurement has NaN / inf: predict only
ST_INNOVATION_NOT_PD = 2  # S is not positive definite (or not finite): update rejected
ST_PREDICT_NONFINITE = 3  # f / F (or the predicted covariance) not finite: step not applied
ST_UPDATE_NONFINITE = 4  # h / H / residual (or the updated state) not finite: update rejected
ST_SIGMA_NOT_PD = 5  # UKF: the covariance has no Cholesky factor, no sigma points: step not applied
N_STATUS = 6


@njit()
def subtract(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Default residual: out = a − b."""
    for i in range(out.shape[0]):
        out[i] = a[i] - b[i]


@njit()
def weighted_mean(sigmas: np.ndarray, Wm: np.ndarray, out: np.ndarray) -> None:
    """Default unscented mean: out = Σ_s Wm[s]·sigmas[s] (sum in ascending s)."""
    for j in range(out.shape[0]):
        acc = 0.0
        for s in range(sigmas.shape[0]):
            acc += Wm[s] * sigmas[s, j]
        out[j] = acc


@njit(inline="always")
def _finite_matrix(A: np.ndarray) -> bool:
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if not math.isfinite(A[i, j]):
                return False
    return True


@njit()
def _store(x: np.ndarray, P: np.ndarray, k: int, xs: np.ndarray, Ps: np.ndarray, store_cov: bool) -> None:  # noqa: PLR0917
    n = x.shape[0]
    for i in range(n):
        xs[k, i] = x[i]
    if store_cov:
        for i in range(n):
            for j in range(n):
                Ps[k, i, j] = P[i, j]


@njit()
def _ekf_workspace(n: int, m: int) -> tuple:  # type: ignore[type-arg]
    """Scratch of the EKF steps: FP, Pp, IKH, T, Pn (n, n); S, SI, L, Linv (m, m); PHT, K, KR (n, m);
    xn (n,)."""
    return (np.empty((n, n)), np.empty((n, n)), np.empty((n, n)), np.empty((n, n)), np.empty((n, n)),
            np.empty((m, m)), np.empty((m, m)), np.empty((m, m)), np.empty((m, m)),
            np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty(n))


@njit()
def _ekf_predict(x: np.ndarray, P: np.ndarray, xp: np.ndarray, Fj: np.ndarray, Q: np.ndarray,  # noqa: PLR0917
                 ws: tuple) -> int:  # type: ignore[type-arg]
    """Apply the prediction ``xp`` (= f(x)) and P ← Fj P Fjᵀ + Q; nothing changes when a result is not
    finite (returns ST_PREDICT_NONFINITE)."""
    FP, Pp = ws[0], ws[1]
    n = x.shape[0]
    for i in range(n):
        for j in range(n):
            Pp[i, j] = P[i, j]
    sandwich(Fj, Pp, Q, 1.0, FP, n)
    if not (all_finite(xp, n) and _finite_matrix(Pp)):
        return ST_PREDICT_NONFINITE
    for i in range(n):
        x[i] = xp[i]
        for j in range(n):
            P[i, j] = Pp[i, j]
    return ST_OK


@njit()
def _ekf_update(x: np.ndarray, P: np.ndarray, y: np.ndarray, Hj: np.ndarray, R: np.ndarray,  # noqa: PLR0917
                ws: tuple) -> int:  # type: ignore[type-arg]
    """EKF update from the residual ``y`` (m,) and the Jacobian ``Hj`` (m, n) at x: S = H P Hᵀ + R,
    K = P Hᵀ S⁻¹, x ← x + K y, Joseph-form P.  Nothing changes unless the result is ST_OK."""
    _FP, _Pp, IKH, T, Pn, S, SI, L, Linv, PHT, K, KR, xn = ws
    n = x.shape[0]
    m = y.shape[0]
    if not (all_finite(y, m) and _finite_matrix(Hj)):
        return ST_UPDATE_NONFINITE
    mat_mul_bt(P, Hj, PHT)
    mat_mul(Hj, PHT, S)
    for i in range(m):
        for j in range(m):
            S[i, j] += R[i, j]
    if not spd_inverse(S, m, L, Linv, SI):
        return ST_INNOVATION_NOT_PD
    mat_mul(PHT, SI, K)
    for i in range(n):
        acc = 0.0
        for q in range(m):
            acc += K[i, q] * y[q]
        xn[i] = x[i] + acc
        for j in range(n):
            Pn[i, j] = P[i, j]
    joseph_update(Pn, K, Hj, R, IKH, T, KR)
    if not (all_finite(xn, n) and _finite_matrix(Pn)):
        return ST_UPDATE_NONFINITE
    for i in range(n):
        x[i] = xn[i]
        for j in range(n):
            P[i, j] = Pn[i, j]
    return ST_OK


@njit(cache=False)
def _ekf_run(f: Fn, fjac: Fn, h: Fn, hjac: Fn, residual_z: Fn, x: np.ndarray, P: np.ndarray,  # noqa: PLR0917
             Q: np.ndarray, R: np.ndarray, zs: np.ndarray, dts: np.ndarray, xs: np.ndarray, Ps: np.ndarray,
             store_cov: bool, status: np.ndarray) -> None:
    """Extended Kalman filter over every row of ``zs`` (K, m), in place on ``x`` (n,), ``P`` (n, n).

    Step k: ``F = F(x, dt)`` at the previous estimate, ``x ← f(x, dt)``, ``P ← F P Fᵀ + Q``; then, for
    a finite measurement, ``y = residual_z(z, h(x))``, ``S = H P Hᵀ + R`` (H = H(x) at the prediction),
    ``K = P Hᵀ S⁻¹`` (S⁻¹ through its Cholesky factor), ``x ← x + K y`` and the Joseph form
    ``P ← (I − K H) P (I − K H)ᵀ + K R Kᵀ`` (filterpy's ``ExtendedKalmanFilter``).  The state after
    each step goes to ``xs[k]`` (and ``Ps[k]`` when ``store_cov``), the step's code to ``status[k]``."""
    n = x.shape[0]
    m = R.shape[0]
    ws = _ekf_workspace(n, m)
    Fj = np.empty((n, n))
    xp = np.empty(n)
    hx = np.empty(m)
    Hj = np.empty((m, n))
    y = np.empty(m)
    for k in range(zs.shape[0]):
        dt = dts[k]
        fjac(x, dt, Fj)
        f(x, dt, xp)
        st = _ekf_predict(x, P, xp, Fj, Q, ws)
        if st == ST_OK:
            z = zs[k]
            if all_finite(z, m):
                h(x, hx)
                hjac(x, Hj)
                residual_z(z, hx, y)
                st = _ekf_update(x, P, y, Hj, R, ws)
            else:
                st = ST_MISSING
        status[k] = st
        _store(x, P, k, xs, Ps, store_cov)


@njit()
def _sigma_points(x: np.ndarray, P: np.ndarray, c: float, A: np.ndarray, L: np.ndarray,  # noqa: PLR0917
                  sig: np.ndarray) -> bool:
    """Van der Merwe's scaled sigma points of (x, P): sig[0] = x, sig[1+i] = x + Lᵢ, sig[1+n+i] = x − Lᵢ
    with Lᵢ the i-th column of the Cholesky factor of c·P (c = n + λ); False when c·P has none."""
    n = x.shape[0]
    for i in range(n):
        for j in range(n):
            A[i, j] = c * P[i, j]
    if not cholesky_lower(A, n, L):
        return False
    for j in range(n):
        sig[0, j] = x[j]
    for i in range(n):
        for j in range(n):
            sig[1 + i, j] = x[j] + L[j, i]
            sig[1 + n + i, j] = x[j] - L[j, i]
    return True


@njit()
def _ukf_covariance(r: np.ndarray, Wc: np.ndarray, N: np.ndarray, out: np.ndarray) -> None:
    """out = Σ_s Wc[s]·r[s] r[s]ᵀ + N (sum in ascending s, then N), upper triangle mirrored."""
    d = out.shape[0]
    for i in range(d):
        for j in range(i, d):
            acc = 0.0
            for s in range(r.shape[0]):
                acc += Wc[s] * (r[s, i] * r[s, j])
            v = acc + N[i, j]
            out[i, j] = v
            out[j, i] = v


@njit()
def _ukf_predict(x: np.ndarray, P: np.ndarray, xp: np.ndarray, rx: np.ndarray, Wc: np.ndarray,  # noqa: PLR0917
                 Q: np.ndarray, Pp: np.ndarray) -> int:
    """Apply the unscented prediction: mean ``xp``, covariance from the residuals ``rx`` (2n+1, n)
    plus Q; nothing changes when a result is not finite."""
    n = x.shape[0]
    _ukf_covariance(rx, Wc, Q, Pp)
    if not (all_finite(xp, n) and _finite_matrix(Pp)):
        return ST_PREDICT_NONFINITE
    for i in range(n):
        x[i] = xp[i]
        for j in range(n):
            P[i, j] = Pp[i, j]
    return ST_OK


@njit()
def _ukf_workspace(n: int, m: int) -> tuple:  # type: ignore[type-arg]
    """Scratch of the UKF update: S, SI, L, Linv (m, m); Pxz, K, KS (n, m); xn (n,), Pn (n, n)."""
    return (np.empty((m, m)), np.empty((m, m)), np.empty((m, m)), np.empty((m, m)),
            np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty(n), np.empty((n, n)))


@njit()
def _ukf_update(x: np.ndarray, P: np.ndarray, zp: np.ndarray, y: np.ndarray, rx: np.ndarray,  # noqa: PLR0917
                rz: np.ndarray, Wc: np.ndarray, R: np.ndarray, ws: tuple) -> int:  # type: ignore[type-arg]
    """Unscented update from the predicted measurement ``zp``, the residual ``y`` = residual_z(z, zp)
    and the sigma-point residuals ``rx`` (2n+1, n), ``rz`` (2n+1, m): S = Σ Wc·rz rzᵀ + R,
    Pxz = Σ Wc·rx rzᵀ, K = Pxz S⁻¹, x ← x + K y, P ← P − (K S) Kᵀ.  Nothing changes unless ST_OK."""
    S, SI, L, Linv, Pxz, K, KS, xn, Pn = ws
    n = x.shape[0]
    m = y.shape[0]
    if not (all_finite(zp, m) and all_finite(y, m) and _finite_matrix(rz) and _finite_matrix(rx)):
        return ST_UPDATE_NONFINITE
    _ukf_covariance(rz, Wc, R, S)
    if not spd_inverse(S, m, L, Linv, SI):
        return ST_INNOVATION_NOT_PD
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for s in range(rx.shape[0]):
                acc += Wc[s] * (rx[s, i] * rz[s, j])
            Pxz[i, j] = acc
    mat_mul(Pxz, SI, K)
    for i in range(n):
        acc = 0.0
        for q in range(m):
            acc += K[i, q] * y[q]
        xn[i] = x[i] + acc
        for j in range(n):
            Pn[i, j] = P[i, j]
    mat_mul(K, S, KS)
    sym_sub_mul_bt(Pn, KS, K)
    if not (all_finite(xn, n) and _finite_matrix(Pn)):
        return ST_UPDATE_NONFINITE
    for i in range(n):
        x[i] = xn[i]
        for j in range(n):
            P[i, j] = Pn[i, j]
    return ST_OK


@njit(cache=False)
def _ukf_run(f: Fn, h: Fn, residual_x: Fn, residual_z: Fn, x_mean: Fn, z_mean: Fn,  # noqa: PLR0917
             x: np.ndarray, P: np.ndarray, Q: np.ndarray, R: np.ndarray, zs: np.ndarray, dts: np.ndarray,
             Wm: np.ndarray, Wc: np.ndarray, c: float, xs: np.ndarray, Ps: np.ndarray, store_cov: bool,
             status: np.ndarray) -> None:
    """Unscented Kalman filter (filterpy's ``UnscentedKalmanFilter`` with Merwe's scaled sigma points)
    over every row of ``zs`` (K, m), in place on ``x`` (n,), ``P`` (n, n).

    Step k: sigma points of (x, P) through ``f``; ``x⁻ = x_mean(σ_f, Wm)``,
    ``P⁻ = Σ Wc·r rᵀ + Q`` with ``r = residual_x(σ_f, x⁻)``; the sigma points are then drawn again from
    (x⁻, P⁻) (as filterpy does) and passed through ``h``: ``ẑ = z_mean(σ_h, Wm)``,
    ``S = Σ Wc·d dᵀ + R`` with ``d = residual_z(σ_h, ẑ)``, ``Pxz = Σ Wc·r dᵀ``, ``K = Pxz S⁻¹``,
    ``x ← x⁻ + K·residual_z(z, ẑ)``, ``P ← P⁻ − (K S) Kᵀ``.  ``Wm``, ``Wc`` (2n+1,), c = n + λ.
    A covariance without a Cholesky factor (no sigma points) skips the step, or its update when it is
    the predicted one (ST_SIGMA_NOT_PD)."""
    n = x.shape[0]
    m = R.shape[0]
    ns = 2 * n + 1
    ws = _ukf_workspace(n, m)
    A = np.empty((n, n))
    L = np.empty((n, n))
    sig = np.empty((ns, n))
    sf = np.empty((ns, n))
    sh = np.empty((ns, m))
    xp = np.empty(n)
    Pp = np.empty((n, n))
    zp = np.empty(m)
    rx = np.empty((ns, n))
    rz = np.empty((ns, m))
    y = np.empty(m)
    for k in range(zs.shape[0]):
        dt = dts[k]
        st = ST_SIGMA_NOT_PD
        if _sigma_points(x, P, c, A, L, sig):
            for s in range(ns):
                f(sig[s], dt, sf[s])
            x_mean(sf, Wm, xp)
            for s in range(ns):
                residual_x(sf[s], xp, rx[s])
            st = _ukf_predict(x, P, xp, rx, Wc, Q, Pp)
        if st == ST_OK:
            z = zs[k]
            if not _sigma_points(x, P, c, A, L, sf):  # drawn again from the prediction
                st = ST_SIGMA_NOT_PD
            elif not all_finite(z, m):
                st = ST_MISSING
            else:
                for s in range(ns):
                    h(sf[s], sh[s])
                z_mean(sh, Wm, zp)
                for s in range(ns):
                    residual_z(sh[s], zp, rz[s])
                    residual_x(sf[s], x, rx[s])
                residual_z(z, zp, y)
                st = _ukf_update(x, P, zp, y, rx, rz, Wc, R, ws)
        status[k] = st
        _store(x, P, k, xs, Ps, store_cov)
