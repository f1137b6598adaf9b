"""Small dense linear algebra shared by the Kalman kernels (:mod:`edgefuse.objects._kf_kernels`,
:mod:`edgefuse.objects._nl_kernels`, :mod:`edgefuse.estimation._kernels`).

A low-level module below ``objects`` and ``estimation`` (which are on the same layer and do not import
each other).  Every helper is ``inline="always"``: Numba copies it into each jitted caller, so the
callers keep the speed of the hand-written loops they replace (measured in the commit that introduced
this module).  Explicit loops, no BLAS: the matrices are 1×1 to 15×15.  Helpers take arrays and
scalars, write into caller-provided outputs, never allocate, never raise; the functions returning a
bool report failure (singular / not positive definite / non-finite) instead.

The order of every sum is fixed and documented, because results are compared bit for bit (output
digests): do not reorder a loop without re-checking those.

Numba's on-disk cache is keyed on the caller's source file only: after editing this module, clear the
kernel cache (``EDGEFUSE_NUMBA_CACHE_DIR``, default ``~/.cache/edgefuse/numba``) or the callers keep
their old compiled copies.  An installed release changes every file at once, so users are not affected.
"""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit

_TWO_PI = 2.0 * math.pi


@njit(inline="always")
def wrap_pi(a: float) -> float:
    """Angle wrapped into [-π, π) (identity inside that range, exact)."""
    if -math.pi <= a < math.pi:
        return a
    a = (a + math.pi) % _TWO_PI  # Python-style modulo: result in [0, 2π)
    return a - math.pi


@njit(inline="always")
def all_finite(v: np.ndarray, m: int) -> bool:
    """Whether ``v[:m]`` holds no NaN / inf."""
    for i in range(m):  # noqa: SIM110 -- explicit loop: Numba compiles it to the tightest code
        if not math.isfinite(v[i]):
            return False
    return True


@njit(inline="always")
def mat_mul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b (sums in ascending inner index)."""
    n, k = a.shape
    m = b.shape[1]
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for q in range(k):
                acc += a[i, q] * b[q, j]
            out[i, j] = acc


@njit(inline="always")
def mat_mul_bt(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b.T (sums in ascending inner index)."""
    n, k = a.shape
    m = b.shape[0]
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for q in range(k):
                acc += a[i, q] * b[j, q]
            out[i, j] = acc


@njit(inline="always")
def sparse_mul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b skipping zero entries of ``a`` (model matrices and Jacobians are sparse); the sum
    over the inner index keeps ascending order, so the result equals the dense product."""
    n, k = a.shape
    m = b.shape[1]
    out[:, :] = 0.0
    for i in range(n):
        for q in range(k):
            aiq = a[i, q]
            if aiq != 0.0:
                for j in range(m):
                    out[i, j] += aiq * b[q, j]


@njit(inline="always")
def sparse_mul_bt(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
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


@njit(inline="always")
def sandwich(F: np.ndarray, P: np.ndarray, Q: np.ndarray, q_scale: float, FP: np.ndarray, n: int) -> None:  # noqa: PLR0917
    """P ← F·P·Fᵀ + q_scale·Q in place for P (n, n), skipping F's zeros; only the upper triangle is
    computed and mirrored, so P stays exactly symmetric.  FP = F·P as :func:`sparse_mul`; element
    (i, j) is then ``q_scale·Q[i, j]`` plus the terms ``FP[i, k]·F[j, k]`` added in ascending k.
    Scratch: FP (n, n).  ``n`` is passed so that a caller with a constant size gets constant loop
    bounds (about 10 % faster for the 15-state filter than sizes read from the arrays)."""
    for i in range(n):
        for j in range(n):
            FP[i, j] = 0.0
        for k in range(n):
            f = F[i, k]
            if f != 0.0:
                for j in range(n):
                    FP[i, j] += f * P[k, j]
    for i in range(n):
        for j in range(i, n):
            s = Q[i, j] * q_scale
            for k in range(n):
                f = F[j, k]
                if f != 0.0:
                    s += FP[i, k] * f
            P[i, j] = s
            P[j, i] = s


@njit(inline="always")
def symmetrize_add(T: np.ndarray, Q: np.ndarray, out: np.ndarray) -> None:
    """out = ½(T + Tᵀ) + Q, upper triangle computed and mirrored (out may alias neither T nor Q)."""
    n = T.shape[0]
    for i in range(n):
        for j in range(i, n):
            v = 0.5 * (T[i, j] + T[j, i]) + Q[i, j]
            out[i, j] = v
            out[j, i] = v


@njit(inline="always")
def sym_sub_mul_bt(P: np.ndarray, A: np.ndarray, B: np.ndarray) -> None:
    """P ← P − A·Bᵀ in place for a symmetric result (e.g. P − K·S·Kᵀ with A = K·S, B = K): the upper
    triangle is computed (the sum first, then one subtraction) and mirrored."""
    n, m = A.shape
    for i in range(n):
        for j in range(i, n):
            acc = 0.0
            for q in range(m):
                acc += A[i, q] * B[j, q]
            v = P[i, j] - acc
            P[i, j] = v
            P[j, i] = v


@njit(inline="always")
def joseph_update(P: np.ndarray, K: np.ndarray, H: np.ndarray, R: np.ndarray,  # noqa: PLR0917
                  IKH: np.ndarray, T: np.ndarray, KR: np.ndarray) -> None:
    """Joseph form P ← (I − K H) P (I − K H)ᵀ + K R Kᵀ in place (valid for any gain K), upper triangle
    computed and mirrored.  Shapes: P (n, n), K (n, m), H (m, n), R (m, m); scratch IKH, T (n, n),
    KR (n, m)."""
    n, m = K.shape
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for q in range(m):
                acc += K[i, q] * H[q, j]
            IKH[i, j] = (1.0 if i == j else 0.0) - acc
    mat_mul(IKH, P, T)
    mat_mul(K, R, KR)
    for i in range(n):
        for j in range(i, n):
            acc = 0.0
            for q in range(n):
                acc += T[i, q] * IKH[j, q]
            acc2 = 0.0
            for q in range(m):
                acc2 += KR[i, q] * K[j, q]
            v = acc + acc2
            P[i, j] = v
            P[j, i] = v


@njit(inline="always")
def cholesky_lower(A: np.ndarray, n: int, L: np.ndarray) -> bool:
    """Cholesky ``A[:n, :n] = L·Lᵀ`` (L lower, its upper part zeroed); False when A is not positive
    definite or not finite (``L`` is then partly written)."""
    for i in range(n):
        for j in range(i + 1):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
        for j in range(i + 1, n):
            L[i, j] = 0.0
    return True


@njit(inline="always")
def lower_inverse(L: np.ndarray, m: int, Linv: np.ndarray) -> None:
    """Linv = L⁻¹ for a lower-triangular ``L[:m, :m]`` with a positive diagonal (forward substitution;
    the upper part of Linv is zeroed)."""
    for i in range(m):
        Linv[i, i] = 1.0 / L[i, i]
        for j in range(i):
            s = 0.0
            for k in range(j, i):
                s -= L[i, k] * Linv[k, j]
            Linv[i, j] = s / L[i, i]
        for j in range(i + 1, m):
            Linv[i, j] = 0.0


@njit(inline="always")
def spd_inverse(A: np.ndarray, m: int, L: np.ndarray, Linv: np.ndarray, out: np.ndarray) -> bool:
    """out = A⁻¹ for a symmetric positive definite ``A`` (m, m) through its Cholesky factor:
    A⁻¹ = L⁻ᵀ L⁻¹, upper triangle computed and mirrored.  False (out undefined) when A is not
    positive definite.  Scratch: L, Linv (m, m)."""
    if not cholesky_lower(A, m, L):
        return False
    lower_inverse(L, m, Linv)
    for i in range(m):
        for j in range(i, m):
            acc = 0.0
            for k in range(j, m):
                acc += Linv[k, i] * Linv[k, j]
            out[i, j] = acc
            out[j, i] = acc
    return True


@njit(inline="always")
def inv_gauss_jordan(a: np.ndarray, out: np.ndarray, work: np.ndarray) -> bool:
    """out = a⁻¹ by Gauss–Jordan elimination with partial pivoting; False when singular or
    non-finite.  Scratch: work (m, m)."""
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


@njit(inline="always")
def inv_small(a: np.ndarray, out: np.ndarray, work: np.ndarray) -> bool:
    """out = a⁻¹ for a square (m, m); closed form (cofactors) for m ≤ 3, Gauss–Jordan above.  False
    when the matrix is singular or non-finite (``out`` then undefined).  Scratch: work (m, m)."""
    m = a.shape[0]
    if m == 1:
        d = a[0, 0]
        if d == 0.0 or not math.isfinite(d):
            return False
        out[0, 0] = 1.0 / d
        return True
    if m == 2:
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        if det == 0.0 or not math.isfinite(det):
            return False
        r = 1.0 / det
        out[0, 0] = a[1, 1] * r
        out[0, 1] = -a[0, 1] * r
        out[1, 0] = -a[1, 0] * r
        out[1, 1] = a[0, 0] * r
        return True
    if m == 3:
        a00, a01, a02 = a[0, 0], a[0, 1], a[0, 2]
        a10, a11, a12 = a[1, 0], a[1, 1], a[1, 2]
        a20, a21, a22 = a[2, 0], a[2, 1], a[2, 2]
        c00 = a11 * a22 - a12 * a21
        c10 = a12 * a20 - a10 * a22
        c20 = a10 * a21 - a11 * a20
        det = a00 * c00 + a01 * c10 + a02 * c20
        if det == 0.0 or not math.isfinite(det):
            return False
        r = 1.0 / det
        out[0, 0] = c00 * r
        out[0, 1] = (a02 * a21 - a01 * a22) * r
        out[0, 2] = (a01 * a12 - a02 * a11) * r
        out[1, 0] = c10 * r
        out[1, 1] = (a00 * a22 - a02 * a20) * r
        out[1, 2] = (a02 * a10 - a00 * a12) * r
        out[2, 0] = c20 * r
        out[2, 1] = (a01 * a20 - a00 * a21) * r
        out[2, 2] = (a00 * a11 - a01 * a10) * r
        return True
    return inv_gauss_jordan(a, out, work)
