"""Zero-order holds (``sync.hold`` in a pipeline): bounded, every message accounted for, repeats flagged."""

from __future__ import annotations

import pytest

from edgefuse.errors import SyncError
from edgefuse.sync import HoldingSynchronizer, ZeroOrderHold, make_synchronizer

MS = 1_000_000


def test_member_is_the_newest_at_or_before_the_set_within_max_age() -> None:
    hold = ZeroOrderHold("radar", max_age_ns=100 * MS)
    hold.push(0, "a")
    hold.push(250 * MS, "b")
    assert hold.member_at(-1) is None  # nothing yet: missing
    assert hold.member_at(99 * MS) == (0, "a")
    assert hold.member_at(200 * MS) is None  # newest one is 200 ms old
    assert hold.member_at(300 * MS) == (250 * MS, "b")
    s = hold.stats
    assert (s.received, s.used, s.queued, s.missing) == (2, 2, 0, 2)
    assert s.balanced()


def test_overflow_and_never_used_messages_are_counted_not_lost() -> None:
    hold = ZeroOrderHold("radar", capacity=3)
    for k in range(5):
        hold.push(k * MS, k)
    assert hold.stats.dropped == {"queue_full": 2}  # 0 and 1 evicted without ever being used
    assert hold.member_at(10 * MS) == (4 * MS, 4)
    hold.flush()
    s = hold.stats
    assert s.dropped == {"queue_full": 2, "unmatched": 2}  # 2 and 3 were superseded, never used
    assert (s.received, s.used, s.queued) == (5, 1, 0)
    assert s.balanced()


def test_bad_parameters() -> None:
    with pytest.raises(SyncError, match="capacity"):
        ZeroOrderHold("r", capacity=0)
    with pytest.raises(SyncError, match="max_age_ns"):
        ZeroOrderHold("r", max_age_ns=-1)
    with pytest.raises(SyncError, match="both synchronized and held"):
        HoldingSynchronizer(make_synchronizer("exact", ["a", "b"]), {"a": None})


def test_holding_synchronizer_attaches_members_and_flags_repeats() -> None:
    sync = HoldingSynchronizer(make_synchronizer("exact", ["a", "b"]), {"radar": None})
    assert sync.inputs == ("a", "b", "radar")
    sync.push("radar", 5, "r0")
    sets = []
    for t in (10, 20, 30):
        sync.push("a", t, f"a{t}")
        sets += sync.push("b", t, f"b{t}")
        if t == 20:
            sync.push("radar", 25, "r1")
    assert [s.members["radar"] for s in sets] == ["r0", "r0", "r1"]
    assert [s.stamps_ns["radar"] for s in sets] == [5, 5, 25]
    assert [s.unchanged for s in sets] == [(), ("radar",), ()]
    sync.flush()
    stats = sync.stats
    assert stats.inputs["radar"].used == 2 and stats.balanced()
    assert sync.held_missing == {"radar": 0}
