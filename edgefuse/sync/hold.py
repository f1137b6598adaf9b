"""Zero-order holds: slow inputs (a 4 Hz radar) joined to the sets of faster synchronized inputs.

A held input is not synchronized.  Each set released by the policy gets, for every held input, the
newest held message stamped at or before the set's stamp (the *member*), unless that message is older
than ``max_age_ns`` — then the input is missing from that set and counted (``missing``).

The hold is bounded (``capacity`` messages, oldest evicted first) and accounts for every message like
the policies do (:class:`edgefuse.sync.base.InputStats`): a message is *used* once it joined a set
(counted once, however many sets reuse it), *dropped* with a reason when it leaves the hold never
used (``queue_full``: evicted by newer messages; ``unmatched``: still unused at the end of the stream),
else *queued*.  So a radar scan that no set ever used shows up as a drop, never silently.

:class:`HoldingSynchronizer` wraps any policy with holds; each set it releases lists in
:attr:`SyncSet.unchanged` the held inputs whose member is the same message as in the previous set
(consumers use that to avoid re-running work on a repeated held message).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from edgefuse.errors import SyncError
from edgefuse.sync.base import InputStats, Synchronizer, SyncSet, SyncStats, as_stamp

#: Default bound of a hold, in messages.
DEFAULT_HOLD_CAPACITY = 64


class ZeroOrderHold:
    """The bounded hold of one input (see the module documentation)."""

    def __init__(self, name: str, max_age_ns: int | None = None, capacity: int = DEFAULT_HOLD_CAPACITY) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise SyncError(f"hold capacity must be an integer >= 1, got {capacity!r}", topic=name)
        if max_age_ns is not None and (isinstance(max_age_ns, bool) or not isinstance(max_age_ns, int)
                                       or max_age_ns < 0):
            raise SyncError(f"hold max_age_ns must be an integer >= 0 or None, got {max_age_ns!r}", topic=name)
        self.name = name
        self.max_age_ns = max_age_ns
        self.capacity = capacity
        # [stamp_ns, item, used]
        self._queue: deque[list[Any]] = deque()
        self.received = 0
        self.used = 0
        self.missing = 0
        self.dropped: dict[str, int] = {}

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def push(self, stamp_ns: int, item: Any) -> None:
        """Hold one message (evicting the oldest when full)."""
        stamp = as_stamp(stamp_ns, self.name)
        self.received += 1
        if len(self._queue) >= self.capacity:
            old = self._queue.popleft()
            if not old[2]:
                self._drop("queue_full")
        self._queue.append([stamp, item, False])

    def member_at(self, stamp_ns: int) -> tuple[int, Any] | None:
        """``(stamp, item)`` of the newest held message at or before ``stamp_ns`` (None: missing, counted)."""
        best: list[Any] | None = None
        for entry in self._queue:
            if entry[0] <= stamp_ns and (best is None or entry[0] >= best[0]):
                best = entry
        if best is not None and self.max_age_ns is not None and stamp_ns - best[0] > self.max_age_ns:
            best = None
        if best is None:
            self.missing += 1
            return None
        if not best[2]:
            best[2] = True
            self.used += 1
        return best[0], best[1]

    def flush(self) -> None:
        """End of stream: messages never used are dropped as ``unmatched``."""
        for entry in self._queue:
            if not entry[2]:
                self._drop("unmatched")
        self._queue.clear()

    @property
    def stats(self) -> InputStats:
        queued = sum(1 for e in self._queue if not e[2])
        return InputStats(received=self.received, used=self.used, queued=queued, dropped=dict(self.dropped),
                          missing=self.missing)


class HoldingSynchronizer:
    """A synchronizer policy plus zero-order holds of other inputs (see the module documentation)."""

    def __init__(self, inner: Synchronizer, holds: Mapping[str, int | None],
                 capacity: int = DEFAULT_HOLD_CAPACITY) -> None:
        overlap = set(holds) & set(inner.inputs)
        if overlap:
            raise SyncError(f"input(s) {sorted(overlap)} are both synchronized and held")
        self.inner = inner
        self.holds = {name: ZeroOrderHold(name, age, capacity) for name, age in holds.items()}
        self._last: dict[str, Any] = {}

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.inner.inputs, *self.holds)

    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        hold = self.holds.get(input)
        if hold is not None:
            hold.push(stamp_ns, item)
            return []
        return [self._attach(s) for s in self.inner.push(input, stamp_ns, item)]

    def poll(self, now_ns: int) -> list[SyncSet]:
        return [self._attach(s) for s in self.inner.poll(now_ns)]

    def flush(self) -> list[SyncSet]:
        sets = [self._attach(s) for s in self.inner.flush()]
        for hold in self.holds.values():
            hold.flush()
        return sets

    def _attach(self, sset: SyncSet) -> SyncSet:
        members = dict(sset.members)
        stamps = dict(sset.stamps_ns)
        unchanged: list[str] = list(sset.unchanged)
        for name, hold in self.holds.items():
            found = hold.member_at(sset.stamp_ns)
            if found is None:
                continue
            stamps[name], members[name] = found
            if self._last.get(name) is found[1]:
                unchanged.append(name)
            self._last[name] = found[1]
        return replace(sset, members=members, stamps_ns=stamps, unchanged=tuple(unchanged))

    @property
    def held_missing(self) -> dict[str, int]:
        """Held input → sets it was missing from (no message, or the newest one too old)."""
        return {name: hold.missing for name, hold in self.holds.items()}

    @property
    def stats(self) -> SyncStats:
        stats = self.inner.stats
        inputs = dict(stats.inputs)
        for name, hold in self.holds.items():
            inputs[name] = hold.stats
        return SyncStats(stats.policy, inputs, stats.sets, stats.partial_sets)
