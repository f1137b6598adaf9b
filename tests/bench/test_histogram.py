"""Fixed-bin latency histograms: merged runs give exactly the percentiles of one histogram over all samples,
and every percentile is within the stated bin resolution of the sample it stands for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefuse.bench.run import merge_checks
from edgefuse.errors import ConfigError
from edgefuse.pipeline.latency import BIN_RELATIVE_WIDTH, LatencyHistogram, LatencyRecorder

QS = (1, 10, 50, 90, 99, 99.9)


def _samples(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.lognormal(mean=np.log(2e6), sigma=1.0, size=n)).astype(np.int64)  # around 2 ms, long tail


def test_merged_percentiles_equal_one_histogram_over_all_samples() -> None:
    parts = [_samples(k, n) for k, n in enumerate((1, 17, 500, 3000, 12))]
    merged = LatencyHistogram()
    for p in parts:
        h = LatencyHistogram()
        h.add_many(p)
        merged = merged + h
    whole = LatencyHistogram()
    whole.add_many(np.concatenate(parts))
    assert merged.counts == whole.counts and merged.sum_ns == whole.sum_ns
    assert (merged.min_ns, merged.max_ns) == (whole.min_ns, whole.max_ns)
    for q in QS:
        assert merged.percentile_ns(q) == whole.percentile_ns(q)
    # order does not matter either
    rev = LatencyHistogram()
    for p in reversed(parts):
        h = LatencyHistogram()
        h.add_many(p)
        rev.merge(h)
    assert [rev.percentile_ns(q) for q in QS] == [whole.percentile_ns(q) for q in QS]


def test_percentile_within_the_bin_resolution_of_the_nearest_rank_sample() -> None:
    data = np.sort(_samples(7, 5000))
    h = LatencyHistogram()
    h.add_many(data)
    half = math.sqrt(1 + BIN_RELATIVE_WIDTH) - 1  # a bin's centre is within this of anything in the bin
    assert 0.005 < half < 0.006
    for q in QS:
        exact = data[max(1, math.ceil(q / 100 * data.size)) - 1]
        got = h.percentile_ns(q)
        assert got is not None and abs(got - exact) / exact <= half + 1e-12
    assert h.percentile_ns(100) == data[-1] and h.percentile_ns(0) == data[0]
    assert h.summary("x")["mean_ms"] == pytest.approx(data.mean() / 1e6)


def test_round_trip_and_layout_check() -> None:
    rec = LatencyRecorder("s", budget_ns=3_000_000)
    for v in _samples(3, 200):
        rec.add(int(v))
    h = rec.histogram()
    assert h.misses == rec.misses > 0 and h.count == 200
    back = LatencyHistogram.from_dict(h.as_dict())
    assert back.counts == h.counts and back.misses == h.misses and back.percentile_ns(99) == h.percentile_ns(99)
    bad = dict(h.as_dict(), bins_per_octave=32)
    with pytest.raises(ConfigError, match="another bin layout"):
        LatencyHistogram.from_dict(bad)
    # tiny values share the first bin, an empty histogram has no percentiles
    tiny = LatencyHistogram()
    tiny.add_many([0, 5, 99])
    assert list(tiny.counts) == [0] and tiny.percentile_ns(50) == 50.0
    assert LatencyHistogram().percentile_ns(50) is None


def test_merged_budget_checks_sum_misses_and_judge_the_merged_rate() -> None:
    h = LatencyHistogram()
    h.add_many([1_000_000] * 198 + [30_000_000] * 2)
    h.misses = 2
    check = {"kind": "stage", "name": "project", "measured": "stage", "deadline_ms": 25.0, "p99_budget_ms": None,
             "max_miss_rate": 0.01, "count": 100, "misses": 1, "allowed_misses": 1, "p99_ms": None, "max_ms": None,
             "reasons": [], "breached": False}
    # each run alone: 1 miss of 100 tolerated; merged: 2 of 200 still within max(1, 1 % of 200)
    merged = merge_checks([[check], [dict(check)]], {"project": h})
    assert merged[0]["count"] == 200 and merged[0]["misses"] == 2 and not merged[0]["breached"]
    worse = merge_checks([[check], [dict(check, misses=3)]], {"project": h})
    assert worse[0]["breached"] and "4/200 samples over the 25 ms deadline" in worse[0]["reasons"][0]
