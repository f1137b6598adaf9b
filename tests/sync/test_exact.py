"""Exact-time policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import ExactTimeSynchronizer, exact_sync_batch, make_synchronizer

from .helpers import as_rows, feed, rows

AB = ("a", "b")


def test_pairs_identical_stamps_and_drops_unmatched() -> None:
    sync = ExactTimeSynchronizer(AB)
    sets = feed(sync, [[0, 10, 20, 30], [10, 15, 30]])
    assert rows(sets, AB) == [(1, 0), (3, 2)]
    assert [s.stamp_ns for s in sets] == [10, 30]
    assert all(s.spread_ns == 0 for s in sets)
    stats = sync.stats
    assert stats.inputs["a"].dropped == {"unmatched": 2}  # a@0 and a@20
    assert stats.inputs["b"].dropped == {"unmatched": 1}  # b@15
    assert stats.balanced()


def test_queue_full_duplicate_and_too_old() -> None:
    sync = ExactTimeSynchronizer(AB, queue_size=2)
    sync.push("a", 1, "x")
    sync.push("a", 2, "x")
    sync.push("a", 3, "x")  # three stamps waiting > 2: stamp 1 dropped
    assert sync.stats.inputs["a"].dropped == {"queue_full": 1}
    assert sync.push("a", 3, "again") == []
    assert sync.push("b", 3, "y")[0].members == {"a": "x", "b": "y"}
    assert sync.push("b", 2, "late") == []
    d = sync.stats.inputs
    assert d["a"].dropped == {"queue_full": 1, "duplicate": 1, "unmatched": 1}
    assert d["b"].dropped == {"too_old": 1}
    assert sync.stats.balanced()


def test_out_of_order_within_an_input_is_still_matched() -> None:
    sync = ExactTimeSynchronizer(AB)
    out = sync.push("a", 20, 1) + sync.push("a", 10, 0) + sync.push("b", 10, 0) + sync.push("b", 20, 1)
    assert rows(out, AB) == [(0, 0), (1, 1)]


def test_bad_params() -> None:
    with pytest.raises(SyncError, match="queue_size"):
        make_synchronizer("exact", AB, queue_size=-1)
    with pytest.raises(SyncError, match="unknown parameter 'slop'"):
        make_synchronizer("exact", AB, slop=3)
    with pytest.raises(SyncError, match="at least 2"):
        ExactTimeSynchronizer(["a"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=15, unique=True).map(sorted), min_size=2, max_size=3))
def test_batch_equals_streaming_and_accounting(streams: list[list[int]]) -> None:
    names = tuple("abc"[: len(streams)])
    sync = ExactTimeSynchronizer(names)
    streamed = rows(feed(sync, streams), names)
    assert as_rows(exact_sync_batch([np.array(s, dtype=np.int64) for s in streams])) == streamed
    common = set(streams[0]).intersection(*streams[1:])
    assert len(streamed) == len(common)
    stats = sync.stats
    assert stats.balanced()
    assert all(s.queued == 0 for s in stats.inputs.values())
