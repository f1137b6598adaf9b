from __future__ import annotations

import pytest

from edgefuse.pipeline.budget import Budget, parse_budget
from edgefuse.pipeline.latency import LatencyRecorder

MS = 1_000_000


def _summary(samples_ms: list[float], budget: Budget) -> object:
    rec = LatencyRecorder("stage", budget.deadline_ns)
    for v in samples_ms:
        rec.add(round(v * MS))
    return rec.summary()


def test_one_late_sample_is_tolerated_but_counted() -> None:
    budget, err = parse_budget(10)
    assert err is None and budget is not None
    s = _summary([1.0] * 13 + [11.0], budget)
    assert s.misses == 1  # type: ignore[attr-defined]
    assert budget.breaches(s) == []  # type: ignore[arg-type]


def test_systematic_overrun_breaches() -> None:
    budget, _ = parse_budget(10)
    assert budget is not None
    s = _summary([1.0] * 12 + [11.0, 12.0], budget)
    reasons = budget.breaches(s)  # type: ignore[arg-type]
    assert len(reasons) == 1 and "2/14 samples over the 10 ms deadline (at most 1 allowed" in reasons[0]


def test_miss_rate_scales_with_count() -> None:
    budget = Budget(10.0, max_miss_rate=0.01)
    assert budget.allowed_misses(14) == 1
    assert budget.allowed_misses(1000) == 10
    s = _summary([1.0] * 990 + [20.0] * 10, budget)
    assert budget.breaches(s) == []  # type: ignore[arg-type]
    s = _summary([1.0] * 989 + [20.0] * 11, budget)
    assert budget.breaches(s)  # type: ignore[arg-type]


def test_explicit_p99_bound() -> None:
    budget, err = parse_budget({"deadline_ms": 100, "p99_ms": 5})
    assert err is None and budget is not None
    s = _summary([1.0] * 90 + [8.0] * 10, budget)
    assert any("p99" in r for r in budget.breaches(s))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "must be > 0"), (True, "number of milliseconds"), ({"p99_ms": 3}, "needs deadline_ms"),
     ({"deadline_ms": 3, "max_miss_rate": 2}, "within [0, 1]"), ({"deadline_ms": 3, "x": 1}, "unknown budget key"),
     (float("nan"), "must be > 0")],
)
def test_bad_budgets(value: object, message: str) -> None:
    budget, err = parse_budget(value)
    assert budget is None and err is not None and message in err
