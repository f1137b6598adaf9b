"""Time offset by normalised cross-correlation on a common resampled grid.

Both signals are resampled on one grid (step: half the faster stream's period unless given), gaps
and NaNs are masked (never bridged), both are smoothed with the same zero-phase box of the slower
stream's period, and the Pearson correlation of ``a(t)`` with ``b(t - lag)`` is computed for every
lag in ±``max_lag_ns`` from masked sums (a Numba kernel).  The peak is refined to sub-sample precision
with a parabola.  The uncertainty is a leave-one-block-out jackknife over ``n_blocks`` contiguous
windows (the sums are additive, so this costs nothing extra), combined with a tenth of the grid step.
"""

from __future__ import annotations

import numpy as np

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal._common import judge_curve, setup
from edgefuse_calibration.temporal._grid import (
    LaggedStats,
    common_grid,
    lagged_stats,
    main_lobe,
    parabolic_peak,
)
from edgefuse_calibration.temporal.types import F64, OffsetEstimate, Signal

METHOD = "xcorr"


def _pearson(stats: LaggedStats, leave_out: int | None, min_pairs: float) -> tuple[F64, F64]:
    n, _, cov = stats.totals(leave_out)
    va, vb, cab = cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1]
    den = np.sqrt(np.maximum(va, 0.0) * np.maximum(vb, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((n >= min_pairs) & (den > 0), cab / den, np.nan)
    return r, n


def jackknife_peaks(curves: list[F64], k: int, lo: int, hi: int, *, lag0: int, dt_ns: int) -> F64:
    """Sub-sample peak offsets (ns) of leave-one-out curves, searched inside the main lobe [lo, hi]."""
    out = []
    for c in curves:
        seg = np.where(np.isfinite(c[lo:hi + 1]), c[lo:hi + 1], -np.inf)
        if not np.isfinite(seg).any():
            continue
        km = lo + int(np.argmax(seg))
        out.append((lag0 + parabolic_peak(c, km)) * dt_ns)
    return np.asarray(out, dtype=np.float64)


def estimate_offset_xcorr(
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
    """Offset of scalar signal ``b`` relative to reference ``a`` (``t_a = t_b + offset``).

    Refuses (verdict without a number) when the streams do not overlap, the overlap is shorter
    than ``min_overlap_ns`` (default max(2 s, 20 slow periods)), either signal's excitation
    (std / white-noise std) is below ``min_snr``, the peak correlation is below ``min_peak``, a
    second peak reaches ``ambiguity_ratio`` × the best, the best lag is at the search edge, or the
    jackknife uncertainty exceeds ``max_uncertainty_ns`` (default half the slower period).
    """
    if a.ndim != 1 or b.ndim != 1:
        raise CalibrationError(f"xcorr aligns scalar signals; {a.name} has {a.ndim} and {b.name} has"
                               f" {b.ndim} channels (use method 'cca' for multivariate streams)")
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
    min_pairs = max(8.0, cfg.min_overlap_ns / cfg.dt_ns / 4)
    r, n = _pearson(stats, None, min_pairs)
    jk = None
    if np.isfinite(r).any():
        k = int(np.nanargmax(r))
        lo, hi = main_lobe(r, k)
        jk = jackknife_peaks([_pearson(stats, m, min_pairs)[0] for m in range(n_blocks)],
                             k, lo, hi, lag0=stats.lag0, dt_ns=cfg.dt_ns)
    return judge_curve(METHOD, r, stats.lag0, cfg.dt_ns, n, cfg=cfg, min_peak=min_peak,
                       ambiguity_ratio=ambiguity_ratio, jackknife_ns=jk,
                       max_uncertainty_ns=max_uncertainty_ns, extra={"n_blocks": n_blocks})
