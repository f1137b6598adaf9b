"""Dynamic time warping (Numba): full, Sakoe-Chiba band, subsequence, and a warp constrained to
offset + linear drift, plus :func:`estimate_offset_dtw` which turns the constrained warp into a time
offset with an uncertainty and a verdict.

Conventions are dtaidistance's (``dtaidistance.dtw.distance``): local cost ``(a_i − b_j)²``, no step
penalty, distance = √(accumulated cost); ``window=w`` allows ``|i − j| < w`` (widened on one side by
the length difference), ``window=None`` is the full matrix.  The distances are bit-identical to
dtaidistance's C implementation (tested on random inputs).

A free warp is not a time offset: it can absorb any local mismatch.  :func:`dtw_offset_drift`
therefore restricts the warp to ``j = slope · i + intercept ± radius`` samples, searches the
intercept (offset) and slope (drift), and reports the line with the lowest cost per matched row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal._common import judge_curve, setup
from edgefuse_calibration.temporal._grid import common_grid, parabolic_peak
from edgefuse_calibration.temporal._kernels import (
    _dtw_cost,
    _dtw_line_cost,
    _dtw_path,
    _dtw_subsequence,
)
from edgefuse_calibration.temporal.types import F64, OffsetEstimate, Signal

METHOD = "dtw"


def _series(x: npt.ArrayLike, name: str) -> F64:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise CalibrationError(f"DTW: {name} must be a non-empty 1-D series, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"DTW: {name} contains NaN or inf at index"
                               f" {int(np.flatnonzero(~np.isfinite(arr))[0])}")
    return arr


def _window(window: int | None, r: int, c: int) -> int:
    if window is None:
        return max(r, c)
    if window < 1:
        raise CalibrationError(f"DTW: window must be >= 1 (or None for the full matrix), got {window}")
    return int(min(window, max(r, c)))


def dtw_distance(a: npt.ArrayLike, b: npt.ArrayLike, window: int | None = None) -> float:
    """DTW distance of two 1-D series (dtaidistance convention; O(len(b)) memory)."""
    x, y = _series(a, "a"), _series(b, "b")
    return float(np.sqrt(_dtw_cost(x, y, _window(window, x.size, y.size))))


def dtw_path(a: npt.ArrayLike, b: npt.ArrayLike,
             window: int | None = None) -> tuple[float, npt.NDArray[np.int64]]:
    """DTW distance and the optimal warping path ((K, 2) pairs (i, j) from (0, 0) to the end).

    Only the band is stored: O(n·w) memory.
    """
    x, y = _series(a, "a"), _series(b, "b")
    cost, path = _dtw_path(x, y, _window(window, x.size, y.size))
    return float(np.sqrt(cost)), path


def dtw_subsequence(query: npt.ArrayLike, series: npt.ArrayLike) -> tuple[float, int, int]:
    """Best match of the whole ``query`` to a contiguous part of ``series``.

    Returns ``(distance, start, end)``: ``series[start:end + 1]`` is the matched part (inclusive
    end).  Same cost convention as :func:`dtw_distance`.
    """
    q, s = _series(query, "query"), _series(series, "series")
    cost, start, end = _dtw_subsequence(q, s)
    return float(np.sqrt(cost)), int(start), int(end)


@dataclass(frozen=True)
class LineWarp:
    """A warp ``j = slope · i + intercept`` (sample units) and its cost per matched row."""

    slope: float
    intercept: float
    cost_per_row: float
    rows: int


def dtw_line_cost(a: npt.ArrayLike, b: npt.ArrayLike, slope: float, intercept: float,
                  radius: int = 1) -> LineWarp:
    """DTW restricted to ``|j − (slope·i + intercept)| ≤ radius``, open-ended (see module doc)."""
    x, y = _series(a, "a"), _series(b, "b")
    if not 0.5 <= slope <= 2.0:
        raise CalibrationError(f"DTW line: slope must be in [0.5, 2], got {slope}")
    cost, rows = _dtw_line_cost(x, y, float(slope), float(intercept), int(radius))
    return LineWarp(float(slope), float(intercept), float(cost / rows) if rows else np.inf, int(rows))


def dtw_offset_drift(a: npt.ArrayLike, b: npt.ArrayLike, *, max_shift: int, max_drift: float = 0.0,
                     n_drift: int = 1, radius: int = 1, min_rows: int = 1) -> tuple[LineWarp, F64, F64]:
    """Search the warp ``j = (1 + drift) · i + shift`` for integer ``shift`` in ±``max_shift`` and
    ``n_drift`` drifts in ±``max_drift`` (relative, e.g. 1e-3 = 1000 ppm).

    Returns the best :class:`LineWarp` and, for the best drift, the shifts and the score curve
    (negative cost per row, −inf where fewer than ``min_rows`` rows match).
    """
    x, y = _series(a, "a"), _series(b, "b")
    drifts = np.linspace(-max_drift, max_drift, n_drift) if n_drift > 1 else np.zeros(1)
    shifts = np.arange(-max_shift, max_shift + 1, dtype=np.float64)
    best: LineWarp | None = None
    best_curve = np.full(shifts.size, -np.inf)
    for dr in drifts:
        curve = np.full(shifts.size, -np.inf)
        slope = 1.0 + float(dr)
        for k, sh in enumerate(shifts):
            # intercept so that the line passes j = i + sh at the series' centre
            mid = 0.5 * (x.size - 1)
            icpt = mid + sh - slope * mid
            cost, rows = _dtw_line_cost(x, y, slope, icpt, radius)
            if rows >= min_rows and np.isfinite(cost):
                curve[k] = -cost / rows
        k = int(np.argmax(curve))
        if np.isfinite(curve[k]) and (best is None or -curve[k] < best.cost_per_row):
            mid = 0.5 * (x.size - 1)
            best = LineWarp(slope, mid + shifts[k] - slope * mid, float(-curve[k]), 0)
            best_curve = curve
    if best is None:
        raise CalibrationError("DTW line search: no line overlaps both series")
    return best, shifts, best_curve


def estimate_offset_dtw(
    a: Signal,
    b: Signal,
    *,
    max_lag_ns: int = 1_000_000_000,
    dt_ns: int | None = None,
    max_drift: float = 0.0,
    n_drift: int = 1,
    radius: int = 1,
    n_blocks: int = 4,
    min_overlap_ns: int | None = None,
    min_snr: float = 2.0,
    min_peak: float = -1.0,
    ambiguity_ratio: float = 0.9,
    max_uncertainty_ns: int | None = None,
    max_gap_factor: float = 2.5,
) -> OffsetEstimate:
    """Offset of scalar ``b`` relative to ``a`` (``t_a = t_b + offset``) by a DTW warp constrained to
    offset + linear drift.

    Both signals are resampled on a common grid, z-normalised over the longest stretch where both
    are valid, and the line search of :func:`dtw_offset_drift` runs with ``b`` as the query.  The
    score is converted to a similarity ``1 − cost/2`` (1 = identical z-scores, 0 = uncorrelated)
    for the shared verdict rules (see :func:`estimate_offset_xcorr`); the uncertainty is the
    jackknife spread of the offset over ``n_blocks`` leave-one-out windows.  ``diagnostics`` carries
    ``drift_ppm`` (0 when ``max_drift`` is 0).
    """
    if a.ndim != 1 or b.ndim != 1:
        raise CalibrationError("dtw aligns scalar signals (use method 'cca' for multivariate streams)")
    cfg = setup(METHOD, a, b, max_lag_ns=max_lag_ns, dt_ns=dt_ns, min_overlap_ns=min_overlap_ns,
                min_snr=min_snr)
    if isinstance(cfg, OffsetEstimate):
        return cfg
    grid = common_grid(a, b, cfg.dt_ns, cfg.max_lag_ns, max_gap_factor=max_gap_factor,
                       smooth_ns=cfg.smooth_ns)
    L = cfg.max_lag_ns // cfg.dt_ns
    # longest run where a is valid; b must be valid on the run shifted by the lag: use b's own run
    ra = _longest_run(grid.va)
    rb = _longest_run(grid.vb)
    xa = grid.Xa[ra[0]:ra[1], 0]
    xb = grid.Xb[rb[0]:rb[1], 0]
    if xa.size < 8 or xb.size < 8:
        return judge_curve(METHOD, np.full(2 * L + 1, np.nan), -L, cfg.dt_ns, np.zeros(2 * L + 1), cfg=cfg,
                           min_peak=min_peak, ambiguity_ratio=ambiguity_ratio, jackknife_ns=None,
                           max_uncertainty_ns=max_uncertainty_ns, extra={})
    za = (xa - xa.mean()) / (xa.std() or 1.0)
    zb = (xb - xb.mean()) / (xb.std() or 1.0)
    # b sample (rb0 + jb) pairs with a sample (ra0 + ia) when ra0 + ia = rb0 + jb + lag
    # i.e. j_a = i_b + (rb0 - ra0) + lag: query b (rows), series a (columns)
    base = rb[0] - ra[0]
    min_rows = int(cfg.min_overlap_ns // cfg.dt_ns)

    def search(zq: F64, zs: F64, base_shift: int) -> tuple[LineWarp, F64, F64]:
        return _search(zq, zs, base_shift, L, max_drift=max_drift, n_drift=n_drift, radius=radius,
                       min_rows=max(8, min_rows // n_blocks))

    best, _lags, curve = _search(zb, za, base, L, max_drift=max_drift, n_drift=n_drift, radius=radius,
                                  min_rows=min_rows)
    sim = 1.0 - (-curve) / 2.0
    sim[~np.isfinite(curve)] = np.nan
    n_pairs = np.where(np.isfinite(curve), float(min(za.size, zb.size)), 0.0)
    # jackknife over windows of the query
    jk = []
    edges = np.linspace(0, zb.size, n_blocks + 1).astype(int)
    for m in range(n_blocks):
        # leave block m out; the longer remaining contiguous part is the query
        p0, p1 = max([(0, edges[m]), (edges[m + 1], zb.size)], key=lambda p: p[1] - p[0])
        if p1 - p0 < 16:
            continue
        _, _, c2 = search(zb[p0:p1], za, base + p0)
        if np.isfinite(c2).any():
            jk.append((-L + parabolic_peak(c2, int(np.argmax(c2)))) * cfg.dt_ns)
    drift_ppm = (best.slope - 1.0) * 1e6
    return judge_curve(METHOD, sim, -L, cfg.dt_ns, n_pairs, cfg=cfg, min_peak=min_peak,
                       ambiguity_ratio=ambiguity_ratio,
                       jackknife_ns=np.asarray(jk) if len(jk) > 1 else None,
                       max_uncertainty_ns=max_uncertainty_ns,
                       extra={"drift_ppm": drift_ppm, "radius": radius, "n_blocks": n_blocks,
                              "cost_per_row": best.cost_per_row})


def _search(zq: F64, zs: F64, base: int, L: int, *, max_drift: float, n_drift: int, radius: int,
            min_rows: int) -> tuple[LineWarp, F64, F64]:
    """Line search with query ``zq`` (rows) against ``zs`` (columns); the lag ``l`` (grid steps)
    corresponds to ``j = slope·i + base + l`` at the query's centre.  Returns the best warp, the lags
    and the score curve (−cost per row) over lags −L..L for the best drift."""
    drifts = np.linspace(-max_drift, max_drift, n_drift) if n_drift > 1 else np.zeros(1)
    lags = np.arange(-L, L + 1)
    mid = 0.5 * (zq.size - 1)
    best: LineWarp | None = None
    best_curve = np.full(lags.size, -np.inf)
    for dr in drifts:
        slope = 1.0 + float(dr)
        curve = np.full(lags.size, -np.inf)
        for k, lag in enumerate(lags):
            icpt = mid + base + lag - slope * mid
            cost, rows = _dtw_line_cost(zq, zs, slope, icpt, radius)
            if rows >= min_rows and np.isfinite(cost):
                curve[k] = -cost / rows
        k = int(np.argmax(curve))
        if np.isfinite(curve[k]) and (best is None or -curve[k] < best.cost_per_row):
            best = LineWarp(slope, mid + base + lags[k] - slope * mid, float(-curve[k]), 0)
            best_curve = curve
    if best is None:
        best = LineWarp(1.0, 0.0, np.inf, 0)
    return best, lags.astype(np.float64), best_curve


def _longest_run(valid: npt.NDArray[np.bool_]) -> tuple[int, int]:
    """[start, end) of the longest run of True."""
    if not valid.any():
        return 0, 0
    v = np.concatenate([[False], valid, [False]]).astype(np.int8)
    d = np.diff(v)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])
