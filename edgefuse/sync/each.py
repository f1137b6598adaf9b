"""The ``each`` policy: every message is released at once as a one-member set.

For consumers that take each measurement as it arrives and handle ordering themselves — a Kalman
filter with a measurement history (``ekf_localization``) being the typical case — any grouping or
waiting would only add latency.  Per input, stamps must increase: an older or equal stamp is dropped
and counted (``out_of_order`` / ``duplicate``) unless ``allow_out_of_order`` is set, in which case it is
passed on and the consumer decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgefuse.errors import SyncError
from edgefuse.sync.base import InputStats, SyncSet, SyncStats


class EachSynchronizer:
    """Release every pushed message immediately as a set with one member (``missing`` is empty)."""

    def __init__(self, inputs: Sequence[str], *, allow_out_of_order: bool = False) -> None:
        self.inputs = tuple(inputs)
        self._allow = bool(allow_out_of_order)
        self._last: dict[str, int | None] = dict.fromkeys(self.inputs)
        self._stats = {name: InputStats() for name in self.inputs}
        self._sets = 0

    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        stats = self._stats.get(input)
        if stats is None:
            raise SyncError(f"unknown input {input!r}; inputs are {list(self.inputs)}")
        stats.received += 1
        last = self._last[input]
        if last is not None and stamp_ns <= last and not self._allow:
            reason = "duplicate" if stamp_ns == last else "out_of_order"
            stats.dropped[reason] = stats.dropped.get(reason, 0) + 1
            return []
        if last is None or stamp_ns > last:
            self._last[input] = stamp_ns
        stats.used += 1
        self._sets += 1
        return [SyncSet(stamp_ns, {input: item}, {input: stamp_ns}, (), 0)]

    def poll(self, now_ns: int) -> list[SyncSet]:
        """Not clock-driven: nothing to release on a tick."""
        return []

    def flush(self) -> list[SyncSet]:
        return []

    @property
    def stats(self) -> SyncStats:
        return SyncStats("each", {k: InputStats(v.received, v.used, 0, dict(v.dropped), 0)
                                  for k, v in self._stats.items()}, self._sets, 0)


def check_each_params(inputs: Sequence[str], allow_out_of_order: Any) -> list[str]:
    if not isinstance(allow_out_of_order, bool):
        return [f"each: allow_out_of_order must be true or false, got {allow_out_of_order!r}"]
    return []
