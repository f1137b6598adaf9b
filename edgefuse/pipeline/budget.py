"""Latency budgets declared in the pipeline YAML.

A budget is either a number (``budget_ms: 20``) or a mapping::

    budget: {deadline_ms: 20, p99_ms: 15, max_miss_rate: 0.01}

- ``deadline_ms``: every sample above it is a deadline miss (counted and reported).
- ``p99_ms`` (default: the deadline): the run breaches the budget when the measured p99 exceeds it.
- ``max_miss_rate`` (optional): the run breaches when misses / count exceeds it.

The shorthand ``budget_ms: X`` means ``{deadline_ms: X, p99_ms: X}``: one late sample is counted as a
miss but does not by itself fail ``--check-budgets``; a p99 over the deadline does.  That keeps a single
scheduler hiccup on a shared machine from failing a run, while a systematic overrun always does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgefuse.pipeline.latency import LatencySummary
from edgefuse.time import NS_PER_MS


@dataclass(frozen=True)
class Budget:
    deadline_ms: float
    p99_ms: float
    max_miss_rate: float | None = None

    @property
    def deadline_ns(self) -> int:
        return round(self.deadline_ms * NS_PER_MS)

    def breaches(self, summary: LatencySummary) -> list[str]:
        """Human-readable reasons this summary breaches the budget (empty list when within budget)."""
        out: list[str] = []
        if summary.count == 0 or summary.p99_ms is None:
            return out
        if summary.p99_ms > self.p99_ms:
            out.append(f"{summary.name}: p99 {summary.p99_ms:.3f} ms > budget {self.p99_ms:g} ms")
        if self.max_miss_rate is not None and summary.misses / summary.count > self.max_miss_rate:
            out.append(
                f"{summary.name}: {summary.misses}/{summary.count} deadline misses "
                f"(> {self.max_miss_rate:g} allowed) at {self.deadline_ms:g} ms"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"deadline_ms": self.deadline_ms, "p99_ms": self.p99_ms, "max_miss_rate": self.max_miss_rate}


def parse_budget(value: Any) -> tuple[Budget | None, str | None]:
    """Parse a budget value; returns ``(budget, None)`` or ``(None, error message)``."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, "budget must be a number of milliseconds or a mapping"
    if isinstance(value, int | float):
        if value <= 0:
            return None, f"budget must be > 0 ms, got {value}"
        return Budget(float(value), float(value)), None
    if isinstance(value, dict):
        unknown = set(value) - {"deadline_ms", "p99_ms", "max_miss_rate"}
        if unknown:
            return None, f"unknown budget key(s): {', '.join(sorted(map(str, unknown)))}"
        deadline = value.get("deadline_ms", value.get("p99_ms"))
        if not isinstance(deadline, int | float) or isinstance(deadline, bool) or deadline <= 0:
            return None, "budget needs deadline_ms (or p99_ms) > 0"
        p99 = value.get("p99_ms", deadline)
        if not isinstance(p99, int | float) or p99 <= 0:
            return None, "budget p99_ms must be > 0"
        rate = value.get("max_miss_rate")
        if rate is not None and (not isinstance(rate, int | float) or not 0 <= rate <= 1):
            return None, "budget max_miss_rate must be within [0, 1]"
        return Budget(float(deadline), float(p99), None if rate is None else float(rate)), None
    return None, "budget must be a number of milliseconds or a mapping"
