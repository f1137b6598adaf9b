"""Time offset between two multivariate streams by canonical correlation analysis (CCA) over lags.

For every lag on the common grid (see ``xcorr.py`` for resampling, masking and smoothing), the
canonical correlations of ``a(t)`` (p channels) and ``b(t − lag)`` (q channels) are the singular
values of ``Caa^{-1/2} Cab Cbb^{-1/2}``.  The score is the first (largest) canonical correlation; it
does not depend on how either sensor is mounted, so a 3-axis gyro aligns with a 3-axis camera
rotation rate without knowing the camera–IMU rotation.  At the best lag the rotation ``R_a_from_b``
minimising Σ‖a − R b‖² (orthogonal Procrustes on the cross-covariance) comes for free and is reported
in ``diagnostics['R_a_from_b']`` when both streams have 3 channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal._common import judge_curve, setup
from edgefuse_calibration.temporal._grid import LaggedStats, common_grid, lagged_stats, main_lobe
from edgefuse_calibration.temporal._so3 import angle_deg
from edgefuse_calibration.temporal.types import F64, OffsetEstimate, Signal
from edgefuse_calibration.temporal.xcorr import jackknife_peaks

METHOD = "cca"


def _inv_sqrt(C: F64, ridge: float) -> F64:
    """``C^{-1/2}`` of symmetric PSD matrices ``C`` (..., n, n), with a relative ridge on the
    eigenvalues (each matrix's largest eigenvalue × ``ridge``) so rank-deficient blocks stay finite."""
    w, V = np.linalg.eigh(C)
    top = np.maximum(w.max(axis=-1, keepdims=True), 1e-300)
    w = np.maximum(w, 0.0) + ridge * top
    out: F64 = (V / np.sqrt(w)[..., None, :]) @ np.swapaxes(V, -1, -2)
    return out


def canonical_correlations_batch(cov: F64, p: int, ridge: float = 1e-9) -> F64:
    """Canonical correlations (descending) for a stack of joint covariances ``cov`` (L, p+q, p+q)
    of [a, b]: (L, min(p, q)).  Rows whose ``a`` or ``b`` block has zero variance give zeros.
    One batched eigendecomposition / SVD for all lags (no Python loop)."""
    Caa, Cbb, Cab = cov[:, :p, :p], cov[:, p:, p:], cov[:, :p, p:]
    dead = (np.trace(Caa, axis1=1, axis2=2) <= 0) | (np.trace(Cbb, axis1=1, axis2=2) <= 0)
    M = _inv_sqrt(Caa, ridge) @ Cab @ _inv_sqrt(Cbb, ridge)
    M[dead | ~np.all(np.isfinite(M), axis=(1, 2))] = 0.0
    cc = np.clip(np.linalg.svd(M, compute_uv=False), 0.0, 1.0)
    out: F64 = cc
    return out


def canonical_correlations(cov: F64, p: int, ridge: float = 1e-9) -> F64:
    """Canonical correlations (descending) from one joint covariance ((p+q)×(p+q)) of [a, b]."""
    out: F64 = canonical_correlations_batch(np.asarray(cov, dtype=np.float64)[None], p, ridge)[0]
    return out


def _curve(stats: LaggedStats, leave_out: int | None, min_pairs: float) -> tuple[F64, F64, F64]:
    n, _, cov = stats.totals(leave_out)
    k = min(stats.p, cov.shape[1] - stats.p)
    allc = np.full((n.size, k), np.nan)
    use = np.flatnonzero(n >= min_pairs)
    if use.size:
        allc[use] = canonical_correlations_batch(cov[use], stats.p)
    score: F64 = allc[:, 0].copy()
    return score, n, allc


def estimate_offset_cca(
    a: Signal,
    b: Signal,
    *,
    max_lag_ns: int = 1_000_000_000,
    dt_ns: int | None = None,
    n_blocks: int = 8,
    min_overlap_ns: int | None = None,
    min_snr: float = 2.0,
    min_peak: float = 0.3,
    ambiguity_ratio: float = 0.9,
    max_uncertainty_ns: int | None = None,
    max_gap_factor: float = 2.5,
) -> OffsetEstimate:
    """Offset of multivariate ``b`` relative to ``a`` (``t_a = t_b + offset``) by lagged CCA.

    Verdict rules and thresholds are those of :func:`estimate_offset_xcorr`, applied to the first
    canonical correlation.  ``diagnostics`` adds ``canonical_correlations`` at the best lag and, for
    3-channel streams, ``R_a_from_b`` (3×3) with its angle ``rotation_angle_deg``.
    """
    if n_blocks < 2:
        raise CalibrationError(f"n_blocks must be >= 2, got {n_blocks}")
    cfg = setup(METHOD, a, b, max_lag_ns=max_lag_ns, dt_ns=dt_ns, min_overlap_ns=min_overlap_ns,
                min_snr=min_snr)
    if isinstance(cfg, OffsetEstimate):
        return cfg
    grid = common_grid(a, b, cfg.dt_ns, cfg.max_lag_ns, max_gap_factor=max_gap_factor,
                       smooth_ns=cfg.smooth_ns)
    L = cfg.max_lag_ns // cfg.dt_ns
    stats = lagged_stats(grid, -L, 2 * L + 1, n_blocks)
    min_pairs = max(8.0 * (a.ndim + b.ndim), cfg.min_overlap_ns / cfg.dt_ns / 4)
    score, n, allc = _curve(stats, None, min_pairs)
    extra: dict[str, Any] = {"n_blocks": n_blocks, "channels": [a.ndim, b.ndim]}
    jk = None
    if np.isfinite(score).any():
        k = int(np.nanargmax(score))
        lo, hi = main_lobe(score, k)
        jk = jackknife_peaks([_curve(stats, m, min_pairs)[0] for m in range(n_blocks)],
                             k, lo, hi, lag0=stats.lag0, dt_ns=cfg.dt_ns)
        extra["canonical_correlations"] = allc[k]
        if a.ndim == 3 and b.ndim == 3:
            _, _, cov = stats.totals(None)
            R = procrustes_rotation_from_cov(cov[k], 3)
            extra["R_a_from_b"] = R
            extra["rotation_angle_deg"] = angle_deg(R)
    return judge_curve(METHOD, score, stats.lag0, cfg.dt_ns, n, cfg=cfg, min_peak=min_peak,
                       ambiguity_ratio=ambiguity_ratio, jackknife_ns=jk,
                       max_uncertainty_ns=max_uncertainty_ns, extra=extra)


def procrustes_rotation_from_cov(cov: F64, p: int) -> F64:
    """``R_a_from_b`` minimising Σ‖a − R b‖² from the joint covariance of [a, b] (3 + 3 channels)."""
    Cab = cov[:p, p:]
    return _procrustes_from_h(Cab.T)  # H = Σ b aᵀ


def _procrustes_from_h(H: F64) -> F64:
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R: F64 = Vt.T @ D @ U.T
    return R
