"""Common-grid resampling with validity masks, and the lagged statistics shared by xcorr and CCA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse_calibration.temporal._kernels import _lagged_moments
from edgefuse_calibration.temporal.types import F64, Signal

B = npt.NDArray[np.bool_]


def resample(sig: Signal, grid_ns: npt.NDArray[np.int64], max_gap_ns: int) -> tuple[F64, B]:
    """Linear interpolation of ``sig`` at ``grid_ns``; returns ((G, k) values, (G,) valid).

    Rows with any NaN are dropped first.  A grid time is valid when samples exist on both sides and
    they are at most ``max_gap_ns`` apart (so a gap is never bridged by interpolation).
    """
    vals = sig.matrix()
    keep = np.all(np.isfinite(vals), axis=1)
    st = sig.stamps_ns[keep]
    vals = vals[keep]
    G = grid_ns.shape[0]
    out = np.zeros((G, vals.shape[1]))
    valid = np.zeros(G, bool)
    if st.size < 2:
        return out, valid
    hi = np.searchsorted(st, grid_ns, side="left")
    exact = (hi < st.size) & (st[np.minimum(hi, st.size - 1)] == grid_ns)
    lo = hi - 1
    inside = (lo >= 0) & (hi < st.size)
    ok = inside.copy()
    ok[inside] = (st[hi[inside]] - st[lo[inside]]) <= max_gap_ns
    ok |= exact
    idx = np.flatnonzero(ok & ~exact)
    t0 = st[lo[idx]]
    t1 = st[hi[idx]]
    w = ((grid_ns[idx] - t0) / (t1 - t0))[:, None]
    out[idx] = vals[lo[idx]] * (1.0 - w) + vals[hi[idx]] * w
    ex = np.flatnonzero(exact)
    out[ex] = vals[hi[ex]]
    valid[ok] = True
    return out, valid


def box_smooth(x: F64, valid: B, width: int) -> tuple[F64, B]:
    """Centred moving average over ``width`` (odd) samples; a window touching an invalid sample is
    invalid.  Zero-phase, so it does not move a correlation peak."""
    if width <= 1:
        return x, valid
    h = width // 2
    xv = np.where(valid[:, None], x, 0.0)
    cs = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(xv, axis=0)])
    cv = np.concatenate([[0], np.cumsum(~valid)])
    n = x.shape[0]
    out = np.zeros_like(x)
    ok = np.zeros(n, bool)
    i = np.arange(h, n - h)
    out[i] = (cs[i + h + 1] - cs[i - h]) / (2 * h + 1)
    ok[i] = (cv[i + h + 1] - cv[i - h]) == 0
    return out, ok


def noise_snr(sig: Signal, t0_ns: int, t1_ns: int) -> float:
    """Excitation of ``sig`` inside [t0, t1): std of the values over a white-noise estimate
    (std of first differences / √2), averaged over channels.  ≈1 for pure noise, ≫1 for real motion;
    0 for a constant signal."""
    w = sig.window(t0_ns, t1_ns).matrix()
    w = w[np.all(np.isfinite(w), axis=1)]
    if w.shape[0] < 4:
        return 0.0
    sd = w.std(axis=0)
    if not np.any(sd > 0):
        return 0.0
    nd = np.diff(w, axis=0).std(axis=0) / np.sqrt(2.0)
    snr = np.where(nd > 0, sd / np.maximum(nd, 1e-300), np.where(sd > 0, 1e6, 0.0))
    weights = sd / sd.sum()
    return float(np.sum(snr * weights))


@dataclass
class Grid:
    """Two signals on one grid ``t0_ns + g * dt_ns`` (g = 0..G-1), with masks."""

    t0_ns: int
    dt_ns: int
    Xa: F64
    va: B
    Xb: F64
    vb: B

    @property
    def size(self) -> int:
        return int(self.Xa.shape[0])


def common_grid(a: Signal, b: Signal, dt_ns: int, max_lag_ns: int, *, max_gap_factor: float,
                smooth_ns: int) -> Grid:
    """Resample both signals on one grid covering ``a``'s span and ``b``'s span (±``max_lag_ns``).

    Each stream's ``max_gap`` is ``max_gap_factor`` × its median period.  Both are smoothed with the
    same centred box of ``smooth_ns`` (typically the slower stream's period) so their bandwidths match.
    """
    a0, a1 = int(a.stamps_ns[0]), int(a.stamps_ns[-1])
    b0, b1 = int(b.stamps_ns[0]), int(b.stamps_ns[-1])
    # all of a, and the part of b that can pair with a at some lag within ±max_lag
    t0 = min(a0, max(b0, a0 - max_lag_ns))
    t1 = max(a1, min(b1, a1 + max_lag_ns))
    G = (t1 - t0) // dt_ns + 1
    grid = t0 + dt_ns * np.arange(G, dtype=np.int64)
    Xa, va = resample(a, grid, int(max_gap_factor * a.median_period_ns()))
    Xb, vb = resample(b, grid, int(max_gap_factor * b.median_period_ns()))
    width = round(smooth_ns / dt_ns) | 1
    Xa, va = box_smooth(Xa, va, width)
    Xb, vb = box_smooth(Xb, vb, width)
    return Grid(t0, dt_ns, np.ascontiguousarray(Xa), va, np.ascontiguousarray(Xb), vb)


@dataclass
class LaggedStats:
    """Sufficient statistics per lag (grid steps ``lag0 .. lag0 + L - 1``) and per block."""

    lag0: int
    count: F64          # (L, K)
    s1: F64             # (L, K, d)
    s2: F64             # (L, K, d, d)
    p: int

    def totals(self, leave_out: int | None = None) -> tuple[F64, F64, F64]:
        """(count (L,), mean (L, d), covariance (L, d, d)) over all blocks, or all but one."""
        c, s1, s2 = self.count, self.s1, self.s2
        if leave_out is None:
            n, m1, m2 = c.sum(1), s1.sum(1), s2.sum(1)
        else:
            n = c.sum(1) - c[:, leave_out]
            m1 = s1.sum(1) - s1[:, leave_out]
            m2 = s2.sum(1) - s2[:, leave_out]
        nn = np.maximum(n, 1.0)
        mean = m1 / nn[:, None]
        cov = m2 / nn[:, None, None] - mean[:, :, None] * mean[:, None, :]
        return n, mean, cov


def lagged_stats(grid: Grid, lag0: int, n_lags: int, n_blocks: int) -> LaggedStats:
    """Per-lag, per-block moments of the pairs (a[g], b[g - lag]) (lag in grid steps).

    Blocks split the grid samples where ``a`` is valid into ``n_blocks`` contiguous runs of equal
    count (for jackknife uncertainties).  The signals are centred first (numerical safety).
    """
    Xa = np.ascontiguousarray(grid.Xa - grid.Xa[grid.va].mean(axis=0)) if grid.va.any() else grid.Xa
    Xb = np.ascontiguousarray(grid.Xb - grid.Xb[grid.vb].mean(axis=0)) if grid.vb.any() else grid.Xb
    idx = np.flatnonzero(grid.va)
    block_of = np.zeros(grid.size, np.int64)
    if idx.size:
        edges = idx[np.linspace(0, idx.size - 1, n_blocks + 1).astype(np.int64)]
        block_of = np.clip(np.searchsorted(edges[1:-1], np.arange(grid.size), side="right"), 0,
                           n_blocks - 1).astype(np.int64)
    p, q = Xa.shape[1], Xb.shape[1]
    d = p + q
    count = np.zeros((n_lags, n_blocks))
    s1 = np.zeros((n_lags, n_blocks, d))
    s2 = np.zeros((n_lags, n_blocks, d, d))
    _lagged_moments(Xa, grid.va, Xb, grid.vb, int(lag0), block_of, count, s1, s2)
    return LaggedStats(int(lag0), count, s1, s2, p)


def parabolic_peak(score: F64, k: int) -> float:
    """Sub-sample position of the maximum at index ``k`` by a parabola through k-1, k, k+1."""
    if k <= 0 or k >= score.size - 1:
        return float(k)
    y0, y1, y2 = score[k - 1], score[k], score[k + 1]
    den = y0 - 2.0 * y1 + y2
    if not np.isfinite(den) or den >= 0:
        return float(k)
    return float(k + 0.5 * (y0 - y2) / den)


def main_lobe(score: F64, k: int) -> tuple[int, int]:
    """Indices [lo, hi] of the lobe around the maximum ``k``: walk out while the score decreases."""
    lo = k
    while lo > 0 and np.isfinite(score[lo - 1]) and score[lo - 1] <= score[lo]:
        lo -= 1
    hi = k
    while hi < score.size - 1 and np.isfinite(score[hi + 1]) and score[hi + 1] <= score[hi]:
        hi += 1
    return lo, hi
