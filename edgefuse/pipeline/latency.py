"""Latency bookkeeping: per-stage and end-to-end samples against budgets.

Samples are integer ns, kept in a growable int64 buffer (no per-sample Python objects), summarised as
count, p50, p90, p99, max and deadline misses.  Percentiles use numpy's default (linear) method.

:class:`LatencyHistogram` is the mergeable form (benchmarks, fleet replay): fixed log-spaced bins, the same
for every run, so histograms of several runs add up bin by bin and the percentiles of the merged histogram
are exactly those of one histogram over all the samples.  Resolution: :data:`BINS_PER_OCTAVE` = 64 bins per
factor of two, i.e. each bin spans a relative width of 2^(1/64) - 1 = 1.09 %; a percentile is reported as
its bin's geometric centre, within ±0.55 % of the sample it stands for (nearest-rank percentile).  Samples
below :data:`HIST_MIN_NS` (100 ns) share the first bin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.errors import ConfigError
from edgefuse.time import NS_PER_MS


class Int64Log:
    """A growable int64 column (one value per set: stamps, flags) without per-value Python objects."""

    __slots__ = ("_buf", "_n")

    def __init__(self, capacity: int = 1024) -> None:
        self._buf = np.empty(capacity, dtype=np.int64)
        self._n = 0

    def add(self, value: int) -> None:
        if self._n == self._buf.shape[0]:
            self._buf = np.concatenate([self._buf, np.empty_like(self._buf)])
        self._buf[self._n] = value
        self._n += 1

    @property
    def values(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        return self._buf[: self._n]


class LatencyRecorder:
    """Collects latency samples (ns) for one named stage or path, with an optional budget."""

    __slots__ = ("_buf", "_n", "budget_ns", "misses", "name")

    def __init__(self, name: str, budget_ns: int | None = None, capacity: int = 1024) -> None:
        self.name = name
        self.budget_ns = budget_ns
        self._buf = np.empty(capacity, dtype=np.int64)
        self._n = 0
        self.misses = 0

    def add(self, value_ns: int) -> None:
        """Record one sample; counts a deadline miss when it exceeds the budget."""
        if self._n == self._buf.shape[0]:
            self._buf = np.concatenate([self._buf, np.empty_like(self._buf)])
        self._buf[self._n] = value_ns
        self._n += 1
        if self.budget_ns is not None and value_ns > self.budget_ns:
            self.misses += 1

    @property
    def count(self) -> int:
        return self._n

    @property
    def samples_ns(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        return self._buf[: self._n]

    def histogram(self) -> LatencyHistogram:
        """The samples as a mergeable :class:`LatencyHistogram` (misses counted against this budget)."""
        hist = LatencyHistogram()
        hist.add_many(self.samples_ns)
        hist.misses = self.misses
        return hist

    def summary(self) -> LatencySummary:
        data = self.samples_ns
        budget_ms = None if self.budget_ns is None else self.budget_ns / NS_PER_MS
        if data.size == 0:
            return LatencySummary(self.name, 0, None, None, None, None, None, budget_ms, 0)
        p50, p90, p99 = np.percentile(data, [50, 90, 99]) / NS_PER_MS
        return LatencySummary(
            self.name, int(data.size), float(data.mean() / NS_PER_MS), float(p50), float(p90), float(p99),
            float(data.max() / NS_PER_MS), budget_ms, self.misses,
        )


@dataclass(frozen=True)
class LatencySummary:
    """Summary of one recorder, in milliseconds."""

    name: str
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    budget_ms: float | None
    misses: int

    @property
    def breached(self) -> bool:
        """True when any sample exceeded the budget (a deadline miss)."""
        return self.budget_ms is not None and self.misses > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count, "mean_ms": self.mean_ms, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms, "budget_ms": self.budget_ms,
            "deadline_misses": self.misses,
        }


#: lower edge of the second bin [ns]; everything below falls in bin 0
HIST_MIN_NS = 100
#: log-spaced bins per octave (relative bin width 2^(1/64) - 1 = 1.09 %)
BINS_PER_OCTAVE = 64
#: relative width of one bin
BIN_RELATIVE_WIDTH = 2.0 ** (1.0 / BINS_PER_OCTAVE) - 1.0


def bin_index(values_ns: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Bin of each sample: 0 below :data:`HIST_MIN_NS`, else ``1 + floor(64 · log2(v / 100 ns))``.

    A pure function of the value, so the same sample lands in the same bin in every run and process."""
    v = np.asarray(values_ns, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int64)
    big = v >= HIST_MIN_NS
    out[big] = 1 + np.floor(np.log2(v[big] / HIST_MIN_NS) * BINS_PER_OCTAVE).astype(np.int64)
    return out


def bin_edges_ns(index: int) -> tuple[float, float]:
    """``[low, high)`` of bin ``index`` in ns."""
    if index <= 0:
        return 0.0, float(HIST_MIN_NS)
    return (HIST_MIN_NS * 2.0 ** ((index - 1) / BINS_PER_OCTAVE),
            HIST_MIN_NS * 2.0 ** (index / BINS_PER_OCTAVE))


def bin_centre_ns(index: int) -> float:
    """The value a bin stands for: its geometric centre (half of :data:`HIST_MIN_NS` for bin 0)."""
    if index <= 0:
        return HIST_MIN_NS / 2.0
    low, high = bin_edges_ns(index)
    return math.sqrt(low * high)


class LatencyHistogram:
    """Fixed-bin latency histogram (see the module doc) with exact count, sum, min, max and deadline misses.

    Merging (:meth:`merge`, ``+``) adds counts bin by bin, so it is associative and exact: the percentiles
    of merged runs equal those of one histogram fed every sample.  Stored sparse (only occupied bins)."""

    __slots__ = ("counts", "max_ns", "min_ns", "misses", "sum_ns")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.sum_ns = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None
        self.misses = 0

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def add_many(self, values_ns: np.ndarray[Any, Any] | Iterable[int]) -> None:
        """Add samples (ns)."""
        v = np.asarray(values_ns if isinstance(values_ns, np.ndarray) else list(values_ns), dtype=np.int64)
        if v.size == 0:
            return
        idx, n = np.unique(bin_index(v), return_counts=True)
        for i, c in zip(idx.tolist(), n.tolist(), strict=True):
            self.counts[i] = self.counts.get(i, 0) + c
        self.sum_ns += int(v.sum())
        lo, hi = int(v.min()), int(v.max())
        self.min_ns = lo if self.min_ns is None else min(self.min_ns, lo)
        self.max_ns = hi if self.max_ns is None else max(self.max_ns, hi)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other`` into this histogram (in place); returns self."""
        for i, c in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + c
        self.sum_ns += other.sum_ns
        self.misses += other.misses
        if other.min_ns is not None:
            self.min_ns = other.min_ns if self.min_ns is None else min(self.min_ns, other.min_ns)
        if other.max_ns is not None:
            self.max_ns = other.max_ns if self.max_ns is None else max(self.max_ns, other.max_ns)
        return self

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram().merge(self).merge(other)

    def percentile_ns(self, q: float) -> float | None:
        """Nearest-rank percentile ``q`` (0..100): the centre of the bin holding the ceil(q/100 · n)-th
        smallest sample, clamped to the exact [min, max] (which q = 0 / 100 return); None when empty."""
        n = self.count
        if n == 0:
            return None
        if q <= 0:
            return float(self.min_ns) if self.min_ns is not None else None
        if q >= 100:
            return float(self.max_ns) if self.max_ns is not None else None
        rank = max(1, math.ceil(q / 100.0 * n))
        seen = 0
        value = float(self.max_ns or 0)
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                value = bin_centre_ns(i)
                break
        # within the exact extremes (a bin's centre can lie beyond the one sample in it)
        return min(max(value, float(self.min_ns or 0)), float(self.max_ns or 0))

    def percentile_ms(self, q: float) -> float | None:
        v = self.percentile_ns(q)
        return None if v is None else v / NS_PER_MS

    def cdf(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(upper bin edges in ms, cumulative fraction) of the occupied bins, ascending."""
        keys = sorted(self.counts)
        n = max(1, self.count)
        edges = np.array([bin_edges_ns(i)[1] / NS_PER_MS for i in keys])
        return edges, np.cumsum([self.counts[i] for i in keys]) / n

    def summary(self, name: str, budget_ms: float | None = None) -> dict[str, Any]:
        """count, mean, p50/p90/p99/p99.9, min, max [ms] and deadline misses, JSON-ready."""
        n = self.count
        return {
            "name": name, "count": n,
            "mean_ms": (self.sum_ns / n / NS_PER_MS) if n else None,
            "p50_ms": self.percentile_ms(50), "p90_ms": self.percentile_ms(90),
            "p99_ms": self.percentile_ms(99), "p999_ms": self.percentile_ms(99.9),
            "min_ms": None if self.min_ns is None else self.min_ns / NS_PER_MS,
            "max_ms": None if self.max_ns is None else self.max_ns / NS_PER_MS,
            "budget_ms": budget_ms, "deadline_misses": self.misses,
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (bins as string keys, sparse)."""
        return {"bins_per_octave": BINS_PER_OCTAVE, "min_bin_ns": HIST_MIN_NS,
                "counts": {str(i): c for i, c in sorted(self.counts.items())},
                "sum_ns": self.sum_ns, "min_ns": self.min_ns, "max_ns": self.max_ns, "misses": self.misses}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyHistogram:
        """Inverse of :meth:`as_dict`; refuses a histogram with another bin layout."""
        if d.get("bins_per_octave") != BINS_PER_OCTAVE or d.get("min_bin_ns") != HIST_MIN_NS:
            raise ConfigError(f"histogram with another bin layout ({d.get('bins_per_octave')} bins per octave "
                              f"from {d.get('min_bin_ns')} ns; this edgefuse uses {BINS_PER_OCTAVE} from "
                              f"{HIST_MIN_NS} ns): it cannot be merged")
        h = cls()
        h.counts = {int(k): int(v) for k, v in d["counts"].items()}
        h.sum_ns = int(d["sum_ns"])
        h.min_ns = None if d.get("min_ns") is None else int(d["min_ns"])
        h.max_ns = None if d.get("max_ns") is None else int(d["max_ns"])
        h.misses = int(d.get("misses", 0))
        return h
