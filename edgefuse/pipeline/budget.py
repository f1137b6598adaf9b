"""Latency budgets declared in the pipeline YAML.

A budget is either a number (``budget_ms: 20``) or a mapping::

    budget: {deadline_ms: 20, max_miss_rate: 0.01, p99_ms: 15}

- ``deadline_ms``: every sample above it is a deadline miss (counted and reported).
- ``max_miss_rate`` (default 0.01): the run breaches the budget when the misses exceed
  ``max(1, floor(max_miss_rate × count))`` — one late sample is always tolerated, so a single
  scheduler hiccup on a shared machine does not fail a short run, while a systematic overrun does.
- ``p99_ms`` (optional): additionally breach when the measured p99 exceeds it.

The shorthand ``budget_ms: X`` means ``{deadline_ms: X}`` with the default miss rate.  Durations must be
finite, > 0 and at most :data:`MAX_BUDGET_MS` (one hour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgefuse.pipeline.latency import LatencySummary
from edgefuse.time import NS_PER_MS

DEFAULT_MAX_MISS_RATE = 0.01
#: largest budget [ms] (one hour): a per-sample latency deadline beyond it is a typo
MAX_BUDGET_MS = 3_600_000.0


@dataclass(frozen=True)
class Budget:
    deadline_ms: float
    max_miss_rate: float = DEFAULT_MAX_MISS_RATE
    p99_ms: float | None = None

    @property
    def deadline_ns(self) -> int:
        return round(self.deadline_ms * NS_PER_MS)

    def allowed_misses(self, count: int) -> int:
        """How many deadline misses a run of ``count`` samples may have without breaching."""
        return max(1, math.floor(self.max_miss_rate * count))

    def breaches(self, summary: LatencySummary) -> list[str]:
        """Human-readable reasons this summary breaches the budget (empty list when within budget)."""
        out: list[str] = []
        if summary.count == 0:
            return out
        allowed = self.allowed_misses(summary.count)
        if summary.misses > allowed:
            out.append(
                f"{summary.name}: {summary.misses}/{summary.count} samples over the {self.deadline_ms:g} ms "
                f"deadline (at most {allowed} allowed; max {summary.max_ms:.3f} ms)"
            )
        if self.p99_ms is not None and summary.p99_ms is not None and summary.p99_ms > self.p99_ms:
            out.append(f"{summary.name}: p99 {summary.p99_ms:.3f} ms > {self.p99_ms:g} ms")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"deadline_ms": self.deadline_ms, "max_miss_rate": self.max_miss_rate, "p99_ms": self.p99_ms}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _too_large(value: float) -> bool:
    return value > MAX_BUDGET_MS


def parse_budget(value: Any) -> tuple[Budget | None, str | None]:
    """Parse a budget value; returns ``(budget, None)`` or ``(None, error message)``."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float | dict):
        return None, "budget must be a number of milliseconds or a mapping"
    if not isinstance(value, dict):
        if not _positive(value):
            return None, f"budget must be > 0 ms, got {value}"
        if _too_large(value):
            return None, f"budget must be at most {MAX_BUDGET_MS:g} ms (one hour), got {value}"
        return Budget(float(value)), None
    unknown = set(value) - {"deadline_ms", "p99_ms", "max_miss_rate"}
    if unknown:
        return None, f"unknown budget key(s): {', '.join(sorted(map(str, unknown)))}"
    deadline = value.get("deadline_ms")
    if not _positive(deadline):
        return None, "budget needs deadline_ms > 0"
    assert isinstance(deadline, int | float)
    if _too_large(deadline):
        return None, f"budget deadline_ms must be at most {MAX_BUDGET_MS:g} ms (one hour), got {deadline}"
    p99 = value.get("p99_ms")
    if p99 is not None and not _positive(p99):
        return None, "budget p99_ms must be > 0"
    if p99 is not None and _too_large(p99):
        return None, f"budget p99_ms must be at most {MAX_BUDGET_MS:g} ms (one hour), got {p99}"
    rate = value.get("max_miss_rate", DEFAULT_MAX_MISS_RATE)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:  # NaN fails too
        return None, "budget max_miss_rate must be within [0, 1]"
    return Budget(float(deadline), float(rate), None if p99 is None else float(p99)), None
