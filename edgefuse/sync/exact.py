"""Exact-time synchronizer: sets of messages with identical stamps, one per input.

Semantics (as ROS message_filters' ``ExactTime``): messages wait in a table keyed by stamp.  When a stamp
has a message on every input, the set is emitted and every incomplete entry with an older stamp is
dropped (``"unmatched"``: with per-input ordered streams it can never complete).  At most ``queue_size``
stamps wait; beyond that the oldest entry is dropped (``"queue_full"``).  A message older than or equal
to the last emitted stamp is dropped as ``"too_old"``; a second message for a stamp that already has one
on that input as ``"duplicate"``.  Out-of-order arrival within an input is otherwise fine.
``flush()`` emits nothing (no incomplete entry can complete) and drops what waits as ``"unmatched"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import SyncError
from edgefuse.sync.base import SyncBase, SyncSet, as_stamp, check_inputs, check_queue_size


class ExactTimeSynchronizer(SyncBase):
    """Streaming exact-time synchronizer.

    Args:
        inputs: input names (at least 2, unique).
        queue_size: maximum number of stamps waiting for completion.
    """

    policy = "exact"

    def __init__(self, inputs: Sequence[str], *, queue_size: int = 100) -> None:
        names = tuple(inputs)
        problems = check_inputs(names, 2) + check_queue_size(queue_size)
        if problems:
            raise SyncError("exact: " + "; ".join(problems))
        super().__init__(names)
        self._n = len(names)
        self._queue_size = int(queue_size)
        # stamp -> [filled count, item or _EMPTY per input]; insertion order is not stamp order.
        self._table: dict[int, list[Any]] = {}
        self._last_emitted: int | None = None

    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        """Add one message; return the set it completes, if any."""
        k = self._key(input)
        if stamp_ns.__class__ is not int:
            stamp_ns = as_stamp(stamp_ns, input)
        self._received[k] += 1
        if self._last_emitted is not None and stamp_ns <= self._last_emitted:
            self._drop(k, "too_old")
            return []
        entry = self._table.get(stamp_ns)
        if entry is None:
            entry = [0] + [_EMPTY] * self._n
            self._table[stamp_ns] = entry
        elif entry[k + 1] is not _EMPTY:
            self._drop(k, "duplicate")
            return []
        entry[k + 1] = item
        entry[0] += 1
        if entry[0] == self._n:
            return [self._emit(stamp_ns)]
        if len(self._table) > self._queue_size:
            oldest = min(self._table)
            self._discard(self._table.pop(oldest), "queue_full")
        return []

    def flush(self) -> list[SyncSet]:
        """Nothing incomplete can complete: drop every waiting message as unmatched."""
        for entry in self._table.values():
            self._discard(entry, "unmatched")
        self._table.clear()
        return []

    def _discard(self, entry: list[Any], reason: str) -> None:
        for j in range(self._n):
            if entry[j + 1] is not _EMPTY:
                self._drop(j, reason)

    def _emit(self, stamp_ns: int) -> SyncSet:
        entry = self._table.pop(stamp_ns)
        for old in [s for s in self._table if s < stamp_ns]:
            self._discard(self._table.pop(old), "unmatched")
        self._last_emitted = stamp_ns
        members = {name: entry[j + 1] for j, name in enumerate(self._inputs)}
        for j in range(self._n):
            self._used[j] += 1
        self._sets += 1
        return SyncSet(stamp_ns, members, dict.fromkeys(self._inputs, stamp_ns), (), 0)

    def _queued_counts(self) -> list[int]:
        counts = [0] * self._n
        for entry in self._table.values():
            for j in range(self._n):
                if entry[j + 1] is not _EMPTY:
                    counts[j] += 1
        return counts


class _Empty:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<empty>"


_EMPTY: Any = _Empty()


def exact_sync_batch(stamps: Sequence[npt.ArrayLike]) -> npt.NDArray[np.int64]:
    """Stamps present in every stream.

    Args:
        stamps: K >= 1 integer arrays of stamps [ns] (any order; for a repeated stamp the first
            occurrence is used).

    Returns:
        (M, K) int64 indices into each stream, one row per common stamp, rows in increasing stamp order.
        Equals the streaming synchronizer's output when each stream is pushed in increasing stamp order.
    """
    arrays = _int_arrays(stamps, "exact_sync_batch")
    if not arrays:
        raise SyncError("exact_sync_batch: needs at least one stream")
    common = np.unique(arrays[0])
    for arr in arrays[1:]:
        common = np.intersect1d(common, arr, assume_unique=False)
    out = np.empty((common.shape[0], len(arrays)), dtype=np.int64)
    for k, arr in enumerate(arrays):
        _, _, idx = np.intersect1d(common, arr, return_indices=True)
        out[:, k] = idx
    return out


def _int_arrays(stamps: Sequence[npt.ArrayLike], where: str) -> list[npt.NDArray[np.int64]]:
    arrays = []
    for k, s in enumerate(stamps):
        arr = np.asarray(s)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise SyncError(
                f"{where}: stamps[{k}] must be a 1-D integer array of ns, got {arr.dtype} {arr.shape}"
            )
        arrays.append(np.ascontiguousarray(arr, dtype=np.int64))
    return arrays
