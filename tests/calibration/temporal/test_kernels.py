"""Lagged-moment kernel and batched CCA against slow, obviously-correct references."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from edgefuse_calibration.temporal._kernels import _lagged_moments
from edgefuse_calibration.temporal.cca import canonical_correlations, canonical_correlations_batch

F64 = npt.NDArray[np.float64]


def moments_reference(X: F64, vx: npt.NDArray[np.bool_], Y: F64, vy: npt.NDArray[np.bool_], *, lag0: int,
                      n_lags: int, block_of: npt.NDArray[np.int64], n_blocks: int) -> tuple[F64, F64, F64]:
    """Pair by pair: every g with X[g] and Y[g - lag] valid adds z = [X[g], Y[g - lag]] to its block."""
    n, d = X.shape[0], X.shape[1] + Y.shape[1]
    count = np.zeros((n_lags, n_blocks))
    s1 = np.zeros((n_lags, n_blocks, d))
    s2 = np.zeros((n_lags, n_blocks, d, d))
    for k in range(n_lags):
        lag = lag0 + k
        for g in range(n):
            h = g - lag
            if 0 <= h < n and vx[g] and vy[h]:
                z = np.concatenate([X[g], Y[h]])
                m = block_of[g]
                count[k, m] += 1
                s1[k, m] += z
                s2[k, m] += np.outer(z, z)
    return count, s1, s2


@pytest.mark.parametrize(("p", "q", "gap_rate"), [(1, 1, 0.0), (1, 1, 0.05), (3, 3, 0.01), (2, 3, 0.2)])
def test_lagged_moments_match_pairwise_reference(p: int, q: int, gap_rate: float) -> None:
    rng = np.random.default_rng(100 + p * 10 + q)
    n, n_lags, n_blocks = 400, 61, 5
    X = rng.normal(size=(n, p))
    Y = rng.normal(size=(n, q))
    vx = rng.random(n) >= gap_rate
    vy = rng.random(n) >= gap_rate
    vx[:20] = False          # a starts late
    vy[-35:] = False         # b ends early
    vy[150:190] = False      # a long gap in b
    block_of = np.minimum(np.arange(n) * n_blocks // n, n_blocks - 1).astype(np.int64)
    block_of[:60] = 0        # uneven blocks
    lag0 = -30
    count = np.zeros((n_lags, n_blocks))
    s1 = np.zeros((n_lags, n_blocks, p + q))
    s2 = np.zeros((n_lags, n_blocks, p + q, p + q))
    _lagged_moments(X, vx, Y, vy, lag0, block_of, count, s1, s2)
    rc, r1, r2 = moments_reference(X, vx, Y, vy, lag0=lag0, n_lags=n_lags, block_of=block_of,
                                   n_blocks=n_blocks)
    np.testing.assert_array_equal(count, rc)
    np.testing.assert_allclose(s1, r1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(s2, r2, rtol=0, atol=1e-9)


def test_lagged_moments_no_valid_pairs() -> None:
    X = np.ones((50, 1))
    Y = np.ones((50, 1))
    vx = np.zeros(50, bool)
    vy = np.ones(50, bool)
    count = np.zeros((5, 2))
    s1 = np.zeros((5, 2, 2))
    s2 = np.zeros((5, 2, 2, 2))
    _lagged_moments(X, vx, Y, vy, -2, np.zeros(50, np.int64), count, s1, s2)
    assert not count.any() and not s1.any() and not s2.any()


def cca_reference(cov: F64, p: int) -> F64:
    """Canonical correlations by Cholesky whitening: singular values of La⁻¹ Cab Lb⁻ᵀ."""
    La = np.linalg.cholesky(cov[:p, :p])
    Lb = np.linalg.cholesky(cov[p:, p:])
    M = np.linalg.solve(La, cov[:p, p:]) @ np.linalg.inv(Lb).T
    out: F64 = np.linalg.svd(M, compute_uv=False)
    return out


def test_batched_cca_matches_per_lag_reference() -> None:
    rng = np.random.default_rng(7)
    Z = rng.normal(size=(40, 300, 6))
    Z[:, :, 3:] += 0.7 * Z[:, :, :3] @ rng.normal(size=(3, 3))  # correlated b
    cov = np.einsum("lni,lnj->lij", Z, Z) / Z.shape[1]
    got = canonical_correlations_batch(cov, 3)
    ref = np.stack([cca_reference(c, 3) for c in cov])
    np.testing.assert_allclose(got, ref, atol=1e-8)
    np.testing.assert_allclose(canonical_correlations(cov[5], 3), ref[5], atol=1e-8)
    # unequal channel counts and a dead (zero-variance) stream
    got23 = canonical_correlations_batch(cov[:, 1:, 1:], 2)  # a = 2 channels, b = 3
    assert got23.shape == (40, 2)
    np.testing.assert_allclose(got23, np.stack([cca_reference(c, 2) for c in cov[:, 1:, 1:]]), atol=1e-8)
    dead = cov.copy()
    dead[0, 3:, :] = 0.0
    dead[0, :, 3:] = 0.0
    cc = canonical_correlations_batch(dead, 3)
    assert np.array_equal(cc[0], np.zeros(3))
    np.testing.assert_allclose(cc[1:], ref[1:], atol=1e-8)
