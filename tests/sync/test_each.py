from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import make_synchronizer, validate_params


def test_each_releases_every_message_at_once() -> None:
    sync = make_synchronizer("each", ["imu", "odom"])
    (s,) = sync.push("imu", 10, "a")
    assert s.members == {"imu": "a"} and s.stamp_ns == 10 and s.missing == ()
    assert sync.push("odom", 5, "b")[0].members == {"odom": "b"}  # other inputs are independent
    assert sync.push("imu", 9, "c") == []  # older than the last imu stamp: dropped and counted
    assert sync.push("imu", 10, "d") == []
    stats = sync.stats
    assert stats.inputs["imu"].dropped == {"out_of_order": 1, "duplicate": 1}
    assert stats.balanced() and stats.sets == 2


def test_each_can_pass_out_of_order_messages_on() -> None:
    sync = make_synchronizer("each", ["imu"], allow_out_of_order=True)
    assert len(sync.push("imu", 10, 1)) == len(sync.push("imu", 5, 2)) == 1


def test_each_bad_params() -> None:
    assert validate_params("each", ["a"], {"allow_out_of_order": 3})
    with pytest.raises(SyncError):
        make_synchronizer("each", ["a"], window_ns=3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 50)), max_size=60))
def test_each_accounts_for_every_message(pushes: list[tuple[str, int]]) -> None:
    sync = make_synchronizer("each", ["a", "b"])
    out = sum(len(sync.push(name, stamp, None)) for name, stamp in pushes)
    stats = sync.stats
    assert stats.balanced() and out == stats.sets == sum(s.used for s in stats.inputs.values())
