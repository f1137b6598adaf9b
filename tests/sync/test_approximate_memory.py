"""The approximate synchronizer lets go of a message as soon as it is used or dropped (issue 10, item 13).

Before, consumed messages stayed referenced until 4,096 of them had piled up per input, which kept every
zero-copy payload's raw buffer alive (hundreds of MB over a long replay).  The last test covers the
compaction of those consumed entries, which releasing them exposed.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np

from edgefuse.sync import ApproximateTimeSynchronizer
from edgefuse.sync.base import SyncSet

from .helpers import feed, rows
from .reference import ReferenceApproximate

MS = 1_000_000


class Payload:
    """Stands for a zero-copy payload (weak-referenceable, unlike ints or bytes)."""

    def __init__(self, name: str, stamp_ns: int) -> None:
        self.name = name
        self.stamp_ns = stamp_ns


def _alive(refs: list[weakref.ref[Payload]]) -> list[str]:
    gc.collect()
    return [f"{p.name}@{p.stamp_ns // MS}ms" for r in refs if (p := r()) is not None]


def test_used_messages_are_released_with_their_set() -> None:
    sync = ApproximateTimeSynchronizer(("a", "b"), queue_size=10)
    refs: list[weakref.ref[Payload]] = []
    sets: list[SyncSet] = []
    for k in range(50):
        for name, offset in (("a", 0), ("b", 3 * MS)):
            item = Payload(name, k * 100 * MS + offset)
            refs.append(weakref.ref(item))
            sets += sync.push(name, item.stamp_ns, item)
            del item
    assert len(sets) == 49  # the last pair waits for proof (or flush)
    used = [weakref.ref(m) for s in sets for m in s.members.values()]
    sets.clear()
    assert _alive(used) == []
    # Only the messages still queued are held.
    assert _alive(refs) == ["a@4900ms", "b@4903ms"]
    out = sync.flush()
    assert len(out) == 1
    out.clear()
    assert _alive(refs) == []


def test_dropped_messages_are_released_at_once() -> None:
    """Unmatched (a faster stream), max_interval and queue_full drops keep no reference."""
    sync = ApproximateTimeSynchronizer(("fast", "slow"), queue_size=4, max_interval_ns=20 * MS)
    refs: list[weakref.ref[Payload]] = []
    events: list[tuple[str, int]] = []
    for k in range(40):
        events.append(("fast", k * 33 * MS))
    for k in range(13):
        events.append(("slow", k * 100 * MS + 40 * MS))  # some pairs wider than max_interval
    events.sort(key=lambda e: (e[1], e[0]))
    for name, stamp in events:
        item = Payload(name, stamp)
        refs.append(weakref.ref(item))
        sync.push(name, stamp, item)  # sets are released at once (not kept)
        del item
    stats = sync.stats
    dropped = sum(s.dropped_total for s in stats.inputs.values())
    assert dropped > 0
    assert stats.inputs["fast"].dropped.get("unmatched", 0) > 0
    assert stats.inputs["fast"].dropped.get("max_interval", 0) > 0
    queued = sum(s.queued for s in stats.inputs.values())
    assert len(_alive(refs)) == queued <= 8


def test_queue_full_drop_is_released() -> None:
    sync = ApproximateTimeSynchronizer(("a", "b"), queue_size=3)
    refs: list[weakref.ref[Payload]] = []
    for k in range(10):  # b never arrives: a's queue overflows
        item = Payload("a", k * MS)
        refs.append(weakref.ref(item))
        sync.push("a", item.stamp_ns, item)
        del item
    assert sync.stats.inputs["a"].dropped == {"queue_full": 7}
    assert _alive(refs) == ["a@7ms", "a@8ms", "a@9ms"]


class _CountingFlags(list[bool]):
    """The reference's per-input "dropped" flags, counting how often each is raised (one per queue_full)."""

    def __init__(self, n: int) -> None:
        super().__init__([False] * n)
        self.raised = [0] * n

    def __setitem__(self, i: Any, value: Any) -> None:
        if value is True:
            self.raised[i] += 1
        super().__setitem__(i, value)


def test_long_streams_past_compaction_match_the_reference() -> None:
    """Past the point where consumed entries are compacted away (4,096 per input), sets and drop counts
    still equal the C++ transcription's.  Before, the overflow check used the queue length from before a
    compaction inside the same push: spurious ``queue_full`` drops (95 instead of 92 here)."""
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.integers(8_000_000, 12_000_000, 13_000))  # ~100 Hz
    b = np.cumsum(rng.integers(28_000_000, 32_000_000, 4_300)) + int(rng.integers(0, 10_000_000))  # ~33 Hz
    streams = [a.tolist(), b.tolist()]
    ref = ReferenceApproximate(2, queue_size=10)
    flags = _CountingFlags(2)
    ref.dropped_flag = flags
    for t, k, i in sorted((int(t), k, i) for k, s in enumerate(streams) for i, t in enumerate(s)):
        ref.add(k, t, i)
    ref.flush()
    sync = ApproximateTimeSynchronizer(("a", "b"), queue_size=10)
    assert rows(feed(sync, streams), ("a", "b")) == ref.output
    stats = sync.stats
    assert stats.balanced()
    assert stats.inputs["a"].dropped.get("queue_full", 0) == flags.raised[0] > 0
    assert stats.inputs["b"].dropped.get("queue_full", 0) == flags.raised[1]
