"""DTW kernels: identical to dtaidistance's C implementation, checked against slow references."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from dtaidistance import dtw as dtai
from edgefuse_calibration.temporal import (
    dtw_distance,
    dtw_line_cost,
    dtw_offset_drift,
    dtw_path,
    dtw_subsequence,
)

from edgefuse.errors import CalibrationError

F = npt.NDArray[np.float64]


def ref_dtw(a: F, b: F, window: int | None = None) -> float:
    """Plain full-matrix DTW with dtaidistance's window rule (slow, obviously correct)."""
    r, c = len(a), len(b)
    w = max(r, c) if window is None else window
    D = np.full((r + 1, c + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(r):
        for j in range(c):
            if not (i - max(0, r - c) - w + 1 <= j < i + max(0, c - r) + w):
                continue
            D[i + 1, j + 1] = (a[i] - b[j]) ** 2 + min(D[i, j], D[i, j + 1], D[i + 1, j])
    return float(np.sqrt(D[r, c]))


def test_dtw_distance_identical_to_dtaidistance_full_and_banded() -> None:
    rng = np.random.default_rng(11)
    for _ in range(400):
        r, c = (int(x) for x in rng.integers(1, 60, size=2))
        a, b = rng.normal(size=r), rng.normal(size=c)
        assert dtw_distance(a, b) == dtai.distance(a, b, use_c=True)
        w = int(rng.integers(1, 70))
        assert dtw_distance(a, b, window=w) == dtai.distance(a, b, window=w, use_c=True)


@pytest.mark.parametrize("n", [1000, 3000])
def test_dtw_distance_identical_long(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = np.cumsum(rng.normal(size=n)), np.cumsum(rng.normal(size=n - 17))
    assert dtw_distance(a, b) == dtai.distance(a, b, use_c=True)
    assert dtw_distance(a, b, window=n // 10) == dtai.distance(a, b, window=n // 10, use_c=True)


def test_dtw_matches_slow_reference() -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        r, c = (int(x) for x in rng.integers(1, 25, size=2))
        a, b = rng.normal(size=r), rng.normal(size=c)
        w = int(rng.integers(1, 30))
        assert dtw_distance(a, b, w) == pytest.approx(ref_dtw(a, b, w), rel=1e-12)


def test_dtw_path_is_a_valid_optimal_warp() -> None:
    rng = np.random.default_rng(5)
    for _ in range(100):
        r, c = (int(x) for x in rng.integers(1, 40, size=2))
        a, b = rng.normal(size=r), rng.normal(size=c)
        w = int(rng.integers(1, 45))
        d, path = dtw_path(a, b, window=w)
        assert d == dtw_distance(a, b, window=w)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (r - 1, c - 1)
        steps = np.diff(path, axis=0)
        assert {tuple(s) for s in steps} <= {(1, 1), (1, 0), (0, 1)}
        cost = float(np.sum((a[path[:, 0]] - b[path[:, 1]]) ** 2))
        assert np.sqrt(cost) == pytest.approx(d, rel=1e-12)
        # the path stays inside the band
        lo = path[:, 0] - max(0, r - c) - min(w, max(r, c)) + 1
        hi = path[:, 0] + max(0, c - r) + min(w, max(r, c))
        assert np.all((lo <= path[:, 1]) & (path[:, 1] < hi))


def test_dtw_subsequence_matches_brute_force() -> None:
    rng = np.random.default_rng(9)
    for _ in range(25):
        q = rng.normal(size=int(rng.integers(1, 8)))
        s = rng.normal(size=int(rng.integers(1, 14)))
        d, start, end = dtw_subsequence(q, s)
        best = min((ref_dtw(q, s[i:j + 1]), i, j) for i, j in itertools.combinations_with_replacement(range(len(s)), 2))
        assert d == pytest.approx(best[0], rel=1e-12, abs=1e-15)
        assert ref_dtw(q, s[start:end + 1]) == pytest.approx(d, rel=1e-12, abs=1e-15)


def test_dtw_subsequence_finds_embedded_query() -> None:
    rng = np.random.default_rng(1)
    s = np.cumsum(rng.normal(size=500))
    q = s[200:260].copy()
    d, start, end = dtw_subsequence(q, s)
    assert (d, start, end) == (0.0, 200, 259)


def test_line_warp_recovers_shift_and_drift() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(3000, dtype=float)
    base = np.convolve(rng.normal(size=4000), np.hanning(60), "same")

    def f(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = np.interp(x, np.arange(4000, dtype=float), base)
        return out

    a = f(t + 500)
    b = f(1.005 * t + 500 + 12.0)  # b[i] = a[1.005 i + 12]
    best, shifts, curve = dtw_offset_drift(b, a, max_shift=40, max_drift=1e-2, n_drift=5, radius=1,
                                           min_rows=1000)
    assert best.slope == pytest.approx(1.005, abs=1e-9)
    mid = (b.size - 1) / 2
    assert best.slope * mid + best.intercept - mid == pytest.approx(12.0 + 0.005 * mid, abs=1.0)
    assert dtw_line_cost(b, a, best.slope, best.intercept).cost_per_row < 1e-3 * np.var(a)
    assert np.argmax(curve) == np.argmin(np.abs(shifts - (12 + 0.005 * mid)))


def test_dtw_bad_input() -> None:
    with pytest.raises(CalibrationError, match="NaN"):
        dtw_distance([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(CalibrationError, match="window"):
        dtw_distance([1.0, 2.0], [1.0, 2.0], window=0)
    with pytest.raises(CalibrationError, match="non-empty"):
        dtw_distance([], [1.0])
