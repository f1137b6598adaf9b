"""Latest-value (zero-order hold) policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import LatestSynchronizer, make_synchronizer
from edgefuse.sync.latest import latest_sync_batch

NAMES = ("cam", "gps", "odom")


def test_hold_last_value_and_report_missing_and_stale() -> None:
    sync = LatestSynchronizer(NAMES, primary="cam", max_age_ns=100)
    out = sync.push("cam", 0, "c0")
    assert out[0].missing == ("gps", "odom")
    assert out[0].members == {"cam": "c0"}
    sync.push("gps", 10, "g0")
    sync.push("odom", 20, "o0")
    out = sync.push("cam", 50, "c1")
    assert out[0].members == {"cam": "c1", "gps": "g0", "odom": "o0"}
    assert out[0].missing == ()
    assert out[0].spread_ns == 40
    assert out[0].stamp_ns == 50
    sync.push("odom", 140, "o1")
    out = sync.push("cam", 150, "c2")  # gps@10 is 140 old > 100: stale
    assert out[0].members == {"cam": "c2", "odom": "o1"}
    assert out[0].missing == ("gps",)
    stats = sync.stats
    assert stats.inputs["gps"].dropped == {}
    assert stats.inputs["gps"].used == 1
    assert stats.inputs["gps"].missing == 2
    assert stats.partial_sets == 2
    assert stats.balanced()


def test_future_tolerance_and_superseded_messages() -> None:
    sync = LatestSynchronizer(("p", "s"), allow_future_ns=5)
    sync.push("s", 1, "s1")
    sync.push("s", 2, "s2")
    sync.push("s", 13, "s13")
    out = sync.push("p", 10, "p10")  # s13 is within +5 of p10
    assert out[0].members["s"] == "s13"
    assert sync.stats.inputs["s"].dropped == {"unmatched": 2}
    sync.push("s", 13, "dup")
    sync.push("s", 3, "old")
    assert sync.stats.inputs["s"].dropped == {"unmatched": 2, "duplicate": 1, "out_of_order": 1}
    sync.flush()
    assert sync.stats.balanced()
    assert sync.stats.inputs["s"].queued == 0


def test_bad_params() -> None:
    with pytest.raises(SyncError, match="primary"):
        make_synchronizer("latest", NAMES, primary="lidar")
    with pytest.raises(SyncError, match="max_age_ns"):
        make_synchronizer("latest", NAMES, max_age_ns=-1)
    with pytest.raises(SyncError, match="allow_future_ns"):
        make_synchronizer("latest", NAMES, allow_future_ns=0.5)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 60), max_size=12, unique=True).map(sorted), min_size=2, max_size=3),
    st.sampled_from([None, 0, 7]),
)
def test_batch_equals_streaming(streams: list[list[int]], max_age: int | None) -> None:
    names = tuple("abc"[: len(streams)])
    sync = LatestSynchronizer(names, max_age_ns=max_age, queue_size=1000)
    # stamp order, secondaries (stream > 0) before the primary at equal stamps
    events = sorted((t, 0 if k else 1, k, i) for k, s in enumerate(streams) for i, t in enumerate(s))
    got = []
    for t, _, k, i in events:
        for out in sync.push(names[k], t, i):
            got.append(tuple(int(out.members[n]) if n in out.members else -1 for n in names))
    sync.flush()
    batch = latest_sync_batch([np.array(s, dtype=np.int64) for s in streams], max_age_ns=max_age)
    assert [tuple(int(v) for v in r) for r in batch] == got
    assert sync.stats.balanced()
