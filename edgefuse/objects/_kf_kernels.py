"""Numba kernels for Kalman filtering (linear KF, CTRV EKF / UKF).  Small dense matrices, explicit loops
(no BLAS calls for 4–6-state filters); the generic linear algebra is shared with the other filters in
:mod:`edgefuse._kernels_linalg`.  Never raise; callers validate."""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit
from edgefuse._kernels_linalg import (
    all_finite,
    inv_small,
    mat_mul,
    mat_mul_bt,
    sparse_mul,
    sparse_mul_bt,
    sym_sub_mul_bt,
    symmetrize_add,
)

# names used by the tracker and the tests
_inv_small = inv_small
_all_finite = all_finite


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
    sparse_mul(F, P, tmp)
    sparse_mul_bt(F, tmp, tmp2)  # F (F P)ᵀ = F P Fᵀ for symmetric P
    symmetrize_add(tmp2, Q, P)


@njit()
def _update_dense(x: np.ndarray, P: np.ndarray, z: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
                  y: np.ndarray, PHT: np.ndarray, S: np.ndarray, SI: np.ndarray, Kg: np.ndarray,
                  HP: np.ndarray, KS: np.ndarray, Swork: np.ndarray) -> bool:
    """General Kalman update for any H (m, n): optimal gain, P ← P − K S Kᵀ (symmetric; equals the
    Joseph form (I−KH)P(I−KH)ᵀ + KRKᵀ for the optimal gain).  Returns False (no change) if S is
    singular.  Scratch: y (m,), PHT (n, m), S, SI, Swork (m, m), Kg, KS (n, m), HP (m, n)."""
    n = x.shape[0]
    m = z.shape[0]
    for i in range(m):
        acc = 0.0
        for q in range(n):
            acc += H[i, q] * x[q]
        y[i] = z[i] - acc
    sparse_mul(H, P, HP)  # H P (m, n) = (P Hᵀ)ᵀ for symmetric P
    for i in range(n):
        for j in range(m):
            PHT[i, j] = HP[j, i]
    sparse_mul(H, PHT, S)
    for i in range(m):
        for j in range(m):
            S[i, j] += R[i, j]
    if not inv_small(S, SI, Swork):
        return False
    mat_mul(PHT, SI, Kg)
    for i in range(n):
        acc = 0.0
        for q in range(m):
            acc += Kg[i, q] * y[q]
        x[i] += acc
    mat_mul(Kg, S, KS)
    sym_sub_mul_bt(P, KS, Kg)
    return True


@njit()
def _kf_update(x: np.ndarray, P: np.ndarray, z: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
               ws: tuple) -> bool:  # type: ignore[type-arg]
    """General Kalman update with a workspace from :func:`_kf_workspace`; False (no change) if S is
    singular."""
    y, PHT, S, SI, Kg, _unused, _t1, T2, KS, Swork = ws
    m = z.shape[0]
    return _update_dense(x, P, z, H, R, y, PHT, S, SI, Kg, T2[:m], KS, Swork)


@njit()
def _kf_workspace(n: int, m: int) -> tuple:  # type: ignore[type-arg]
    return (np.empty(m), np.empty((n, m)), np.empty((m, m)), np.empty((m, m)), np.empty((n, m)),
            np.empty((n, n)), np.empty((n, n)), np.empty((n, n)), np.empty((n, m)), np.empty((m, m)))


# ----------------------------------------------------------------------------- structured fast path
# Detected from the matrices themselves (so in-place edits of F / H are always honoured):
# - H that selects state components (each row one 1.0, zeros elsewhere): S = P[sel, sel] + R,
#   K = P[:, sel] S⁻¹, P ← P − K P[sel, :];
# - F as compressed sparse rows (a constant-velocity F = I + dt·shift has 9 non-zeros of 36 for
#   n = 6), so F P Fᵀ costs O(nnz·n) instead of O(n³);
# - S⁻¹ in closed form for m ≤ 3 (cofactors), Gauss–Jordan above.


@njit()
def _h_selection(H: np.ndarray, sel: np.ndarray) -> bool:
    """Whether every row of H is one 1.0 and zeros; fills ``sel`` (m,) with the selected columns."""
    m, n = H.shape
    for a in range(m):
        sel[a] = -1
        for q in range(n):
            h = H[a, q]
            if h == 1.0 and sel[a] < 0:
                sel[a] = q
            elif h != 0.0:
                return False
        if sel[a] < 0:
            return False
    return True


@njit()
def _csr(A: np.ndarray, ptr: np.ndarray, idx: np.ndarray, val: np.ndarray) -> None:
    """Non-zeros of A (n, k) as compressed sparse rows: ptr (n+1,), idx/val (n·k,)."""
    n, k = A.shape
    c = 0
    for i in range(n):
        ptr[i] = c
        for q in range(k):
            v = A[i, q]
            if v != 0.0:
                idx[c] = q
                val[c] = v
                c += 1
    ptr[n] = c


@njit(inline="always")
def _predict_csr(x: np.ndarray, P: np.ndarray, ptr: np.ndarray, idx: np.ndarray, val: np.ndarray,  # noqa: PLR0917
                 Q: np.ndarray, FP: np.ndarray, xt: np.ndarray, n: int) -> None:
    """x ← F x, P ← F P Fᵀ + Q with F given as CSR (same sums, same order, as the dense product with
    zero terms left out); P kept exactly symmetric (upper triangle mirrored).  ``n`` is the state
    size (passed in so that a caller with a compile-time size gets fully unrolled loops)."""
    for i in range(n):
        acc = 0.0
        for c in range(ptr[i], ptr[i + 1]):
            acc += val[c] * x[idx[c]]
        xt[i] = acc
    for i in range(n):
        x[i] = xt[i]
        for j in range(n):
            FP[i, j] = 0.0
        for c in range(ptr[i], ptr[i + 1]):
            f = val[c]
            q = idx[c]
            for j in range(n):
                FP[i, j] += f * P[q, j]
    for i in range(n):
        for j in range(i, n):
            acc = 0.0
            for c in range(ptr[j], ptr[j + 1]):
                acc += FP[i, idx[c]] * val[c]
            v = acc + 0.5 * (Q[i, j] + Q[j, i])
            P[i, j] = v
            P[j, i] = v


@njit(inline="always")
def _update_sel(x: np.ndarray, P: np.ndarray, z: np.ndarray, sel: np.ndarray, R: np.ndarray,  # noqa: PLR0917
                y: np.ndarray, S: np.ndarray, SI: np.ndarray, K: np.ndarray, HP: np.ndarray,
                Swork: np.ndarray, n: int, m: int) -> bool:
    """Kalman update for an H that selects state components ``sel`` (m,).  Scratch: y (m,), S, SI,
    Swork (m, m), K (n, m), HP (m, n).  False (no change) if S is singular.  ``n``, ``m``: sizes."""
    for a in range(m):
        y[a] = z[a] - x[sel[a]]
        for b in range(m):
            S[a, b] = P[sel[a], sel[b]] + R[a, b]
    if not inv_small(S, SI, Swork):
        return False
    for a in range(m):
        sa = sel[a]
        for j in range(n):
            HP[a, j] = P[sa, j]
    for i in range(n):
        for a in range(m):
            acc = 0.0
            for b in range(m):
                acc += P[i, sel[b]] * SI[b, a]
            K[i, a] = acc
    for i in range(n):
        acc = 0.0
        for a in range(m):
            acc += K[i, a] * y[a]
        x[i] += acc
    for i in range(n):
        for j in range(i, n):
            acc = 0.0
            for a in range(m):
                acc += K[i, a] * HP[a, j]
            v = P[i, j] - acc
            P[i, j] = v
            P[j, i] = v
    return True


@njit()
def _kf_predict_step(x: np.ndarray, P: np.ndarray, F: np.ndarray, Q: np.ndarray, iw: np.ndarray,  # noqa: PLR0917
                     fw: np.ndarray) -> None:
    """One predict for the step-by-step API.  Scratch: iw int64 (≥ n + 1 + n²), fw float64
    (≥ n² + n² + n)."""
    n = x.shape[0]
    ptr = iw[: n + 1]
    idx = iw[n + 1: n + 1 + n * n]
    val = fw[: n * n]
    FP = fw[n * n: 2 * n * n].reshape((n, n))
    xt = fw[2 * n * n: 2 * n * n + n]
    _csr(F, ptr, idx, val)
    _predict_csr(x, P, ptr, idx, val, Q, FP, xt, n)


@njit()
def _kf_update_step(x: np.ndarray, P: np.ndarray, z: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
                    iw: np.ndarray, fw: np.ndarray) -> int:
    """One update for the step-by-step API: 0 applied, 1 non-finite measurement, 2 singular S.
    Uses the selection path when H selects state components, the general one otherwise.
    Scratch: iw int64 (≥ m), fw float64 (≥ m + 3m² + 3nm + n·m)."""
    n = x.shape[0]
    m = z.shape[0]
    if not all_finite(z, m):
        return 1
    o = 0
    y = fw[o: o + m]
    o += m
    S = fw[o: o + m * m].reshape((m, m))
    o += m * m
    SI = fw[o: o + m * m].reshape((m, m))
    o += m * m
    Sw = fw[o: o + m * m].reshape((m, m))
    o += m * m
    K = fw[o: o + n * m].reshape((n, m))
    o += n * m
    HP = fw[o: o + m * n].reshape((m, n))
    o += m * n
    PHT = fw[o: o + n * m].reshape((n, m))
    o += n * m
    KS = fw[o: o + n * m].reshape((n, m))
    sel = iw[:m]
    if _h_selection(H, sel):
        ok = _update_sel(x, P, z, sel, R, y, S, SI, K, HP, Sw, n, m)
    else:
        ok = _update_dense(x, P, z, H, R, y, PHT, S, SI, K, HP, KS, Sw)
    return 0 if ok else 2


@njit(inline="always")
def _store(x: np.ndarray, P: np.ndarray, k: int, xs: np.ndarray, Ps: np.ndarray, store_cov: bool,  # noqa: PLR0917
           n: int) -> None:
    for i in range(n):
        xs[k, i] = x[i]
    if store_cov:
        for i in range(n):
            for j in range(n):
                Ps[k, i, j] = P[i, j]


@njit()
def _run_structured(x: np.ndarray, P: np.ndarray, F: np.ndarray, Q: np.ndarray, sel: np.ndarray,  # noqa: PLR0917
                    R: np.ndarray, zs: np.ndarray, xs: np.ndarray, Ps: np.ndarray, store_cov: bool,
                    n: int, m: int) -> int:
    """:func:`_kf_run_inplace` for an H that selects components ``sel``; ``n``, ``m`` are the state and
    measurement sizes (compile-time constants when called with literals).  The loop body is
    :func:`_predict_csr` followed by :func:`_update_sel`, both inlined (``inline="always"``)."""
    FP = np.empty((n, n))
    xt = np.empty(n)
    y = np.empty(m)
    S = np.empty((m, m))
    SI = np.empty((m, m))
    Sw = np.empty((m, m))
    K = np.empty((n, m))
    HP = np.empty((m, n))
    Qs = np.empty((n, n))  # ½(Q + Qᵀ) once: _predict_csr's own ½(Qs + Qsᵀ) is then exactly Qs
    for i in range(n):
        for j in range(n):
            Qs[i, j] = 0.5 * (Q[i, j] + Q[j, i])
    ptr = np.empty(n + 1, dtype=np.int64)
    idx = np.empty(n * n, dtype=np.int64)
    val = np.empty(n * n)
    _csr(F, ptr, idx, val)
    skipped = 0
    for k in range(zs.shape[0]):
        _predict_csr(x, P, ptr, idx, val, Qs, FP, xt, n)
        z = zs[k]
        if not (all_finite(z, m) and _update_sel(x, P, z, sel, R, y, S, SI, K, HP, Sw, n, m)):
            skipped += 1
        _store(x, P, k, xs, Ps, store_cov, n)
    return skipped


@njit()
def _run_dense(x: np.ndarray, P: np.ndarray, F: np.ndarray, Q: np.ndarray, H: np.ndarray,  # noqa: PLR0917
               R: np.ndarray, zs: np.ndarray, xs: np.ndarray, Ps: np.ndarray, store_cov: bool) -> int:
    """:func:`_kf_run_inplace` for any F, H: dense predict and the general update."""
    n = x.shape[0]
    m = H.shape[0]
    tmp = np.empty((n, n))
    tmp2 = np.empty((n, n))
    xt = np.empty(n)
    y = np.empty(m)
    S = np.empty((m, m))
    SI = np.empty((m, m))
    Sw = np.empty((m, m))
    K = np.empty((n, m))
    HP = np.empty((m, n))
    PHT = np.empty((n, m))
    KS = np.empty((n, m))
    skipped = 0
    for k in range(zs.shape[0]):
        _kf_predict(x, P, F, Q, tmp, tmp2, xt)
        z = zs[k]
        if not (all_finite(z, m) and _update_dense(x, P, z, H, R, y, PHT, S, SI, K, HP, KS, Sw)):
            skipped += 1
        _store(x, P, k, xs, Ps, store_cov, n)
    return skipped


@njit()
def _kf_run_inplace(x: np.ndarray, P: np.ndarray, F: np.ndarray, Q: np.ndarray, H: np.ndarray,  # noqa: PLR0917
                    R: np.ndarray, zs: np.ndarray, xs: np.ndarray, Ps: np.ndarray, store_cov: bool,
                    structured: bool) -> int:
    """Predict + update for every row of ``zs`` (non-finite rows: predict only), starting from and
    leaving the final state in ``x`` (n,), ``P`` (n, n).  Writes the state after each step into
    ``xs`` (K, n), and the covariance into ``Ps`` (K, n, n) only when ``store_cov``.  Returns the
    number of skipped updates.

    ``structured`` (and H selecting state components): sparse-F predict and selection update.  The
    3-D constant-velocity size (n = 6, m = 3) is dispatched with literal sizes, which Numba compiles
    as constants so the small loops unroll (about half the time per step of run-time sizes; each
    literal size costs seconds of first-time compilation, cached afterwards, so only this one is
    specialised).  Other sizes run the same code with run-time sizes.  Otherwise (or
    ``structured=False``, which tests use to compare) the general dense path; all give the same
    result to rounding."""
    n = x.shape[0]
    m = H.shape[0]
    sel = np.empty(m, dtype=np.int64)
    if structured and _h_selection(H, sel):
        if n == 6 and m == 3:  # 3-D constant velocity, position measurements
            return _run_structured(x, P, F, Q, sel, R, zs, xs, Ps, store_cov, 6, 3)
        return _run_structured(x, P, F, Q, sel, R, zs, xs, Ps, store_cov, n, m)
    return _run_dense(x, P, F, Q, H, R, zs, xs, Ps, store_cov)


@njit()
def _kf_run(x0: np.ndarray, P0: np.ndarray, F: np.ndarray, Q: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
            zs: np.ndarray, xs: np.ndarray, Ps: np.ndarray, store_cov: bool, structured: bool) -> int:
    """:func:`_kf_run_inplace` from copies of ``x0``, ``P0`` (left unchanged)."""
    return _kf_run_inplace(x0.copy(), P0.copy(), F, Q, H, R, zs, xs, Ps, store_cov, structured)


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
    mat_mul(J, P, tmp)
    mat_mul_bt(tmp, J, tmp2)
    for i in range(5):
        for j in range(5):
            P[i, j] = 0.5 * (tmp2[i, j] + tmp2[j, i]) + Q[i, j]


@njit()
def _ukf_ctrv_predict(x: np.ndarray, P: np.ndarray, dt: float, sigma_a: float, sigma_w: float,  # noqa: PLR0917
                      alpha: float, beta: float, kappa: float) -> bool:
    """Unscented prediction (Merwe scaled sigma points) through the CTRV model; yaw averaged circularly.
    When the scaled covariance has no Cholesky factor, falls back to :func:`_ekf_ctrv_predict` and
    returns False (the kernel never raises)."""
    n = 5
    lam = alpha * alpha * (n + kappa) - n
    A = (n + lam) * (0.5 * (P + P.T)) + 1e-12 * np.eye(n)
    try:
        L = np.linalg.cholesky(A)  # LAPACK, as before: the tracker's outputs stay bit for bit the same
    except Exception:  # not positive definite (Numba raises LinAlgError)
        _ekf_ctrv_predict(x, P, dt, sigma_a, sigma_w)
        return False
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
