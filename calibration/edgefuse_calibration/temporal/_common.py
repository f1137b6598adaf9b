"""Checks every method runs before estimating, and the verdict rules for a lag-score curve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse_calibration.temporal._grid import main_lobe, noise_snr, parabolic_peak
from edgefuse_calibration.temporal.types import F64, OffsetEstimate, Signal, Verdict, refuse

MIN_SAMPLES = 8


@dataclass
class Setup:
    """Settings resolved from the two signals."""

    dt_ns: int
    slow_period_ns: int
    max_lag_ns: int
    min_overlap_ns: int
    smooth_ns: int
    snr_a: float
    snr_b: float


def setup(method: str, a: Signal, b: Signal, *, max_lag_ns: int, dt_ns: int | None,
          min_overlap_ns: int | None, min_snr: float) -> Setup | OffsetEstimate:
    """Resolve the grid step and thresholds, or refuse (too_short, no_overlap, no excitation)."""
    for s in (a, b):
        finite = int(np.all(np.isfinite(s.matrix()), axis=1).sum()) if len(s) else 0
        if finite < MIN_SAMPLES:
            return refuse(method, Verdict.TOO_SHORT, f"{s.name}: only {finite} finite samples"
                          f" (need {MIN_SAMPLES})", samples=finite)
    pa, pb = a.median_period_ns(), b.median_period_ns()
    slow = max(pa, pb)
    a0, a1 = int(a.stamps_ns[0]), int(a.stamps_ns[-1])
    b0, b1 = int(b.stamps_ns[0]), int(b.stamps_ns[-1])
    overlap0 = min(a1, b1) - max(a0, b0)
    if overlap0 + max_lag_ns <= 0:
        return refuse(method, Verdict.NO_OVERLAP,
                      f"{a.name} [{a0}, {a1}] and {b.name} [{b0}, {b1}] ns do not overlap even"
                      f" shifted by ±{max_lag_ns / 1e9:g} s", overlap_ns=overlap0)
    min_ov = int(max(2_000_000_000, 20 * slow)) if min_overlap_ns is None else int(min_overlap_ns)
    if overlap0 + max_lag_ns < min_ov:
        return refuse(method, Verdict.TOO_SHORT,
                      f"overlap of at most {(overlap0 + max_lag_ns) / 1e9:.3f} s is shorter than the"
                      f" {min_ov / 1e9:.3f} s needed", overlap_ns=overlap0, min_overlap_ns=min_ov)
    w0, w1 = max(a0, b0) - max_lag_ns, min(a1, b1) + max_lag_ns
    snr_a, snr_b = noise_snr(a, w0, w1), noise_snr(b, w0, w1)
    if min(snr_a, snr_b) < min_snr:
        weak = a.name if snr_a < snr_b else b.name
        return refuse(method, Verdict.INSUFFICIENT_EXCITATION,
                      f"{weak} shows too little motion over the overlap (signal/noise"
                      f" {min(snr_a, snr_b):.2f} < {min_snr:g})", snr_a=snr_a, snr_b=snr_b)
    if dt_ns is None:
        dt_ns = max(1_000_000, min(pa, pb) // 2)
    return Setup(int(dt_ns), slow, int(max_lag_ns), min_ov, slow, snr_a, snr_b)


def judge_curve(method: str, score: F64, lag0: int, dt_ns: int, n_pairs: F64, *, cfg: Setup,
                min_peak: float, ambiguity_ratio: float, jackknife_ns: F64 | None,
                max_uncertainty_ns: int | None, extra: dict[str, Any]) -> OffsetEstimate:
    """Verdict for a score-vs-lag curve (higher is better): peak, sub-sample refinement, second
    peak, edge of the search range, overlap at the peak and the jackknife spread."""
    lags_ns = (lag0 + np.arange(score.size)) * dt_ns
    diag: dict[str, Any] = {"lags_ns": lags_ns, "score": score, "grid_dt_ns": dt_ns,
                            "snr_a": cfg.snr_a, "snr_b": cfg.snr_b, **extra}
    finite = np.isfinite(score)
    if not finite.any():
        return refuse(method, Verdict.TOO_SHORT, "no lag has enough valid overlapping samples", **diag)
    k = int(np.nanargmax(np.where(finite, score, -np.inf)))
    peak = float(score[k])
    overlap_ns = float(n_pairs[k]) * dt_ns
    diag.update(peak_score=peak, peak_overlap_s=overlap_ns / 1e9)
    if overlap_ns < cfg.min_overlap_ns:
        return refuse(method, Verdict.TOO_SHORT, f"only {overlap_ns / 1e9:.3f} s of valid overlap at"
                      f" the best lag (need {cfg.min_overlap_ns / 1e9:.3f} s)", **diag)
    frac = parabolic_peak(score, k)
    offset = (lag0 + frac) * dt_ns
    lo, hi = main_lobe(score, k)
    outside = np.concatenate([score[:lo], score[hi + 1:]])
    outside = outside[np.isfinite(outside)]
    second = float(outside.max()) if outside.size else -np.inf
    diag.update(second_score=second if np.isfinite(second) else None,
                estimate_ns=round(offset))
    if peak < min_peak:
        return refuse(method, Verdict.INSUFFICIENT_EXCITATION,
                      f"best score {peak:.3f} < {min_peak:g}: the two signals share too little motion",
                      **diag)
    if k == 0 or k == score.size - 1:
        return refuse(method, Verdict.AMBIGUOUS, f"best lag {offset / 1e6:.1f} ms is at the edge of"
                      f" the ±{cfg.max_lag_ns / 1e6:.0f} ms search range; widen max_lag", **diag)
    if second >= ambiguity_ratio * peak:
        j = int(np.flatnonzero(score == second)[0]) if np.isfinite(second) else -1
        return refuse(method, Verdict.AMBIGUOUS,
                      f"a second peak at {lags_ns[j] / 1e6:.1f} ms scores {second:.3f}, within"
                      f" {ambiguity_ratio:g}× of the best ({peak:.3f}) at {offset / 1e6:.1f} ms", **diag)
    sigma = dt_ns / 10.0
    if jackknife_ns is not None and jackknife_ns.size > 1:
        K = jackknife_ns.size
        jk = float(np.sqrt((K - 1) / K * np.sum((jackknife_ns - jackknife_ns.mean()) ** 2)))
        diag["jackknife_offsets_ns"] = jackknife_ns
        diag["jackknife_sigma_ns"] = jk
        sigma = float(np.hypot(sigma, jk))
    limit = cfg.slow_period_ns // 2 if max_uncertainty_ns is None else max_uncertainty_ns
    diag["max_uncertainty_ns"] = limit
    if sigma > limit:
        return refuse(method, Verdict.AMBIGUOUS, f"uncertainty {sigma / 1e6:.2f} ms exceeds"
                      f" {limit / 1e6:.2f} ms (estimate {offset / 1e6:.1f} ms is unstable across"
                      f" windows)", uncertainty_ns=round(sigma), **diag)
    return OffsetEstimate(round(offset), round(sigma), Verdict.OK, method, diag)
