"""Deadline collector."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import DeadlineCollector, make_synchronizer

MS = 1_000_000
CAMS = ("left", "right", "lidar")


def test_complete_set_closes_immediately() -> None:
    c = DeadlineCollector(CAMS, deadline_ns=50 * MS, window_ns=5 * MS)
    assert c.push("left", 100 * MS, "L", now_ns=101 * MS) == []
    assert c.push("right", 102 * MS, "R", now_ns=103 * MS) == []
    out = c.push("lidar", 99 * MS, "D", now_ns=104 * MS)
    assert len(out) == 1
    assert out[0].missing == ()
    assert out[0].stamp_ns == 100 * MS
    assert out[0].members == {"left": "L", "right": "R", "lidar": "D"}
    assert out[0].spread_ns == 3 * MS


def test_stalled_camera_gives_partial_set_at_deadline_and_late_drop() -> None:
    c = DeadlineCollector(
        CAMS, timeout_ns={"left": 20 * MS, "right": 20 * MS, "lidar": 40 * MS}, window_ns=5 * MS
    )
    c.push("left", 0, "L", now_ns=1 * MS)
    c.push("lidar", 1 * MS, "D", now_ns=2 * MS)
    assert c.poll(20 * MS) == []  # right's deadline is 21 ms
    out = c.poll(22 * MS)
    assert len(out) == 1
    assert out[0].missing == ("right",)
    assert set(out[0].members) == {"left", "lidar"}
    assert c.push("right", 2 * MS, "R-late", now_ns=30 * MS) == []
    stats = c.stats
    assert stats.inputs["right"].dropped == {"late": 1}
    assert stats.inputs["right"].missing == 1
    assert stats.partial_sets == 1
    assert stats.balanced()


def test_offsets_shift_stamps_into_one_set() -> None:
    c = DeadlineCollector(
        ("cam", "lidar"), offset_ns={"lidar": -30 * MS}, deadline_ns=10 * MS, window_ns=2 * MS
    )
    c.push("cam", 100 * MS, "C")
    out = c.push("lidar", 131 * MS, "D")
    assert len(out) == 1
    assert out[0].stamps_ns == {"cam": 100 * MS, "lidar": 101 * MS}


def test_newer_complete_set_closes_older_open_one() -> None:
    c = DeadlineCollector(("a", "b"), deadline_ns=10**12, window_ns=1)
    c.push("a", 10, "a10")
    c.push("a", 20, "a20")
    out = c.push("b", 20, "b20")
    assert [(s.stamp_ns, s.missing) for s in out] == [(10, ("b",)), (20, ())]
    assert c.push("b", 10, "b10") == []  # per-input order: older than b20
    assert c.stats.inputs["b"].dropped == {"out_of_order": 1}


def test_bad_params() -> None:
    with pytest.raises(SyncError, match="timeout_ns or deadline_ns"):
        make_synchronizer("collector", CAMS)
    with pytest.raises(SyncError, match="window_ns"):
        make_synchronizer("collector", CAMS, deadline_ns=5, window_ns=-1)
    with pytest.raises(SyncError, match="timeout_ns needs a value for every input"):
        make_synchronizer("collector", CAMS, timeout_ns={"left": 5})


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 300), st.integers(0, 50)), max_size=40),
    st.integers(0, 10),
    st.integers(1, 60),
    st.integers(1, 4),
)
def test_invariants(events: list[tuple[int, int, int]], window: int, deadline: int, queue: int) -> None:
    c = DeadlineCollector(CAMS, deadline_ns=deadline, window_ns=window, queue_size=queue)
    now = 0
    out = []
    for k, stamp, dt in events:
        now += dt
        out += c.push(CAMS[k], stamp, (k, stamp), now_ns=now)
    out += c.flush()
    stamps = [s.stamp_ns for s in out]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    seen = [m for s in out for m in s.members.values()]
    assert len(seen) == len(set(seen))  # each message at most once
    for s in out:
        assert set(s.members) | set(s.missing) == set(CAMS)
        assert not set(s.members) & set(s.missing)
        assert all(abs(t - s.stamp_ns) <= window for t in s.stamps_ns.values())
    stats = c.stats
    assert stats.balanced()
    assert all(x.queued == 0 for x in stats.inputs.values())
    assert stats.sets == len(out)
