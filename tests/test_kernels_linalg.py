"""The shared Kalman linear algebra (edgefuse/_kernels_linalg.py) against NumPy, on random inputs."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from edgefuse import _kernels_linalg as la

F64 = npt.NDArray[np.float64]


def _spd(rng: np.random.Generator, n: int) -> F64:
    a = rng.normal(0, 1, (n, n))
    return a @ a.T / n + 0.1 * np.eye(n)


def _sparse(rng: np.random.Generator, n: int, k: int) -> F64:
    return rng.normal(0, 1, (n, k)) * (rng.random((n, k)) < 0.4)


def test_products() -> None:
    rng = np.random.default_rng(1)
    for n, k, m in ((1, 1, 1), (3, 6, 2), (6, 6, 6), (15, 15, 15), (4, 2, 7)):
        a, b, bt = _sparse(rng, n, k), rng.normal(0, 1, (k, m)), rng.normal(0, 1, (m, k))
        out, out2 = np.empty((n, m)), np.empty((n, m))
        la.mat_mul(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
        la.sparse_mul(a, b, out2)
        np.testing.assert_array_equal(out2, out)  # zeros skipped, same sums in the same order
        la.mat_mul_bt(a, bt, out)
        np.testing.assert_allclose(out, a @ bt.T, rtol=1e-12, atol=1e-12)
        la.sparse_mul_bt(a, bt, out2)
        np.testing.assert_array_equal(out2, out)


def test_symmetric_updates() -> None:
    rng = np.random.default_rng(2)
    for n, m in ((1, 1), (6, 3), (15, 6)):
        F, P, Q = _sparse(rng, n, n) + np.eye(n), _spd(rng, n), _spd(rng, n)
        out, FP = P.copy(), np.empty((n, n))
        la.sandwich(F, out, Q, 0.25, FP, n)
        np.testing.assert_allclose(out, F @ P @ F.T + 0.25 * Q, rtol=1e-12, atol=1e-12)
        assert np.array_equal(out, out.T)
        T = rng.normal(0, 1, (n, n))
        la.symmetrize_add(T, Q, out)
        np.testing.assert_allclose(out, 0.5 * (T + T.T) + Q, rtol=1e-13, atol=1e-13)
        K, H, R = rng.normal(0, 1, (n, m)), rng.normal(0, 1, (m, n)), _spd(rng, m)
        KS = K @ R
        out = P.copy()
        la.sym_sub_mul_bt(out, KS, K)
        np.testing.assert_allclose(out, P - K @ R @ K.T, rtol=1e-12, atol=1e-12)
        assert np.array_equal(out, out.T)
        out = P.copy()  # the Joseph form holds for any gain, not only the optimal one
        la.joseph_update(out, K, H, R, np.empty((n, n)), np.empty((n, n)), np.empty((n, m)))
        IKH = np.eye(n) - K @ H
        np.testing.assert_allclose(out, IKH @ P @ IKH.T + K @ R @ K.T, rtol=1e-11, atol=1e-11)
        assert np.array_equal(out, out.T)


def test_cholesky_and_inverses() -> None:
    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 4, 6, 15):
        A = _spd(rng, m)
        L, Li, out, work = np.empty((m, m)), np.empty((m, m)), np.empty((m, m)), np.empty((m, m))
        assert la.cholesky_lower(A, m, L)
        np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-12, atol=1e-12)
        la.lower_inverse(L, m, Li)
        np.testing.assert_allclose(Li, np.linalg.inv(np.linalg.cholesky(A)), rtol=1e-10, atol=1e-10)
        assert la.spd_inverse(A, m, L, Li, out)
        np.testing.assert_allclose(out, np.linalg.inv(A), rtol=1e-10, atol=1e-10)
        assert np.array_equal(out, out.T)
        G = rng.normal(0, 1, (m, m)) + 3 * np.eye(m)
        assert la.inv_gauss_jordan(G, out, work)
        np.testing.assert_allclose(out, np.linalg.inv(G), rtol=1e-10, atol=1e-10)
        assert la.inv_small(G, out, work)
        np.testing.assert_allclose(out, np.linalg.inv(G), rtol=1e-10, atol=1e-10)
        # not positive definite / singular / not finite: refused, never raised
        bad = A.copy()
        bad[m - 1, m - 1] = -1.0
        assert not la.cholesky_lower(bad, m, L)
        assert not la.spd_inverse(bad, m, L, Li, out)
        assert not la.spd_inverse(np.full((m, m), np.nan), m, L, Li, out)
        sing = np.ones((m, m)) if m > 1 else np.zeros((1, 1))
        assert not la.inv_gauss_jordan(sing, out, work)
        assert not la.inv_small(sing, out, work)
        assert not la.inv_small(np.full((m, m), np.inf), out, work)


def test_scalars() -> None:
    v = np.array([1.0, 2.0, np.nan])
    assert la.all_finite(v, 2)
    assert not la.all_finite(v, 3)
    for a in (-10.0, -math.pi, -1.0, 0.0, 3.0, math.pi, 7.5, 1e6):
        w = la.wrap_pi(a)
        assert -math.pi <= w < math.pi
        assert abs(math.remainder(w - a, 2 * math.pi)) < 1e-9
    assert la.wrap_pi(1.25) == 1.25
