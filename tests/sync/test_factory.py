"""make_synchronizer / validate_params, and invariants every policy keeps under arbitrary input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import PARAMS, Synchronizer, make_synchronizer, validate_params

NAMES = ("frame", "imu")


def test_validate_lists_every_problem() -> None:
    problems = validate_params("approximate", ("a", "b"), {"queue_size": 0, "age_penalty": "x", "slop": 1})
    text = " | ".join(problems)
    assert len(problems) == 3
    assert "queue_size" in text
    assert "age_penalty" in text
    assert "'slop'" in text
    assert validate_params("approximate", ("a", "b"), {"queue_size": 5}) == []
    assert validate_params("nope", ("a", "b"), {}) == [
        "unknown sync policy 'nope'; choose one of "
        "['approximate', 'collector', 'each', 'exact', 'imu_window', 'latest']"
    ]
    assert validate_params("exact", ("a", "a"), {}) == ["inputs must be unique, got ['a', 'a']"]


def test_make_raises_sync_error_naming_the_parameter() -> None:
    with pytest.raises(SyncError, match="max_interval_ns"):
        make_synchronizer("approximate", ("a", "b"), max_interval_ns=1.5)
    with pytest.raises(SyncError, match="unknown sync policy"):
        make_synchronizer("fuzzy", ("a", "b"))


def test_params_table_covers_every_policy() -> None:
    assert set(PARAMS) == {"exact", "approximate", "latest", "imu_window", "collector", "each"}
    for policy in PARAMS:
        extra = {"deadline_ns": 10} if policy == "collector" else {}
        sync = make_synchronizer(policy, NAMES, **extra)
        assert isinstance(sync, Synchronizer)
        assert sync.inputs == NAMES


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(sorted(PARAMS)),
    events=st.lists(st.tuples(st.integers(0, 1), st.integers(-5, 60)), max_size=60),
)
def test_any_push_sequence_is_accounted_for(policy: str, events: list[tuple[int, int]]) -> None:
    """Out-of-order and duplicate stamps never crash; every message is used, dropped or queued."""
    extra: dict[str, object] = {} if policy == "each" else {"queue_size": 4}
    if policy == "collector":
        extra["deadline_ns"] = 7
    sync = make_synchronizer(policy, NAMES, **extra)
    out = []
    for k, t in events:
        out += sync.push(NAMES[k], t, np.array([float(t), 1.0]))
        assert sync.stats.balanced()
    out += sync.flush()
    stats = sync.stats
    assert stats.balanced()
    assert sum(s.received for s in stats.inputs.values()) == len(events)
    assert stats.sets == len(out)
    stamps = [s.stamp_ns for s in out]
    if policy == "each":  # inputs are independent: stamps increase per input only
        for name in NAMES:
            own = [s.stamp_ns for s in out if name in s.members]
            assert own == sorted(own)
    else:
        assert stamps == sorted(stamps)


def test_declarations_give_names_defaults_and_schema() -> None:
    from edgefuse.sync.factory import SPECS, params_schema

    assert {p: set(s) for p, s in SPECS.items()} == {p: set(n) for p, n in PARAMS.items()}
    schema = params_schema("approximate")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"queue_size", "max_interval_ns", "max_interval_ms", "age_penalty",
                                         "inter_message_lower_bound_ns", "inter_message_lower_bound_ms"}
    assert schema["properties"]["max_interval_ms"]["anyOf"][0] == {"type": "number", "maximum": 86_400_000,
                                                                   "minimum": 0}


def test_imu_orientation_is_checked_up_front() -> None:
    assert validate_params("imu_window", ("frame", "imu"), {"orientation": [3, 4, 5, 6]}) == []
    assert validate_params("imu_window", ("frame", "imu"), {"orientation": "xyzw"}) == [
        "orientation must be 4 column indices (x, y, z, w), got 'xyzw'"]
