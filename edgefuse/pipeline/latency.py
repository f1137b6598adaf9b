"""Latency bookkeeping: per-stage and end-to-end samples against budgets.

Samples are integer ns, kept in a growable int64 buffer (no per-sample Python objects), summarised as
count, p50, p90, p99, max and deadline misses.  Percentiles use numpy's default (linear) method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.time import NS_PER_MS


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
