"""Latest-value (zero-order hold) synchronizer: a primary input triggers a set at each of its messages.

Each other input contributes its latest message with ``stamp <= primary stamp + allow_future_ns``.  If
``max_age_ns`` is set and that message is older than ``primary stamp - max_age_ns`` it is *stale*: the
input is reported in ``missing`` (counted in :attr:`InputStats.missing`) and the stale message is
dropped as ``"too_old"`` (primary stamps only grow, so it can never be used again).  An input with no
message yet is missing too.  A held message can be a member of many sets; it counts as used once.

The set is emitted when the primary message is pushed: secondaries pushed later do not join it (feed a
replay in stamp order, secondaries before the primary at equal stamps).  Drops: ``out_of_order`` and
``duplicate`` (per input), ``queue_full`` (more than ``queue_size`` messages held by a secondary),
``too_old`` (stale), ``unmatched`` (replaced by a newer message before any primary used it, or left at
flush).  The set's ``stamp_ns`` is the primary stamp.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import SyncError
from edgefuse.sync.base import (
    SyncBase,
    SyncSet,
    as_stamp,
    check_inputs,
    check_nonneg_int,
    check_queue_size,
)


def check_latest_params(
    inputs: Sequence[str], primary: Any, max_age_ns: Any, allow_future_ns: Any, queue_size: Any
) -> list[str]:
    """Problems with zero-order-hold parameters (empty when valid); each names its parameter."""
    problems = check_queue_size(queue_size)
    if primary is not None and primary not in tuple(inputs):
        problems.append(f"primary must be one of the inputs {list(inputs)}, got {primary!r}")
    problems += check_nonneg_int("max_age_ns", max_age_ns, allow_none=True)
    problems += check_nonneg_int("allow_future_ns", allow_future_ns)
    return problems


class LatestSynchronizer(SyncBase):
    """Streaming zero-order-hold synchronizer.

    Args:
        inputs: input names (at least 2, unique).
        primary: the triggering input (default: the first input).
        max_age_ns: oldest acceptable age of a held message [ns] (``None``: any age).
        allow_future_ns: a secondary message up to this much newer than the primary may be used [ns].
        queue_size: most messages held per secondary input.
    """

    policy = "latest"

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        primary: str | None = None,
        max_age_ns: int | None = None,
        allow_future_ns: int = 0,
        queue_size: int = 100,
    ) -> None:
        names = tuple(inputs)
        problems = check_inputs(names, 2) + check_latest_params(
            names, primary, max_age_ns, allow_future_ns, queue_size
        )
        if problems:
            raise SyncError("latest: " + "; ".join(problems))
        super().__init__(names)
        self._n = len(names)
        self._primary = self._index[primary] if primary is not None else 0
        self._max_age = None if max_age_ns is None else int(max_age_ns)
        self._future = int(allow_future_ns)
        self._queue_size = int(queue_size)
        self._queues: list[deque[tuple[int, Any]]] = [deque() for _ in range(self._n)]
        self._front_used = [False] * self._n
        self._last: list[int | None] = [None] * self._n

    @property
    def primary(self) -> str:
        """The triggering input."""
        return self._inputs[self._primary]

    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        """Add one message; a primary message returns its set, a secondary one nothing."""
        k = self._key(input)
        if stamp_ns.__class__ is not int:
            stamp_ns = as_stamp(stamp_ns, input)
        self._received[k] += 1
        last = self._last[k]
        if last is not None and stamp_ns <= last:
            self._drop(k, "duplicate" if stamp_ns == last else "out_of_order")
            return []
        self._last[k] = stamp_ns
        if k == self._primary:
            return [self._emit(stamp_ns, item)]
        q = self._queues[k]
        q.append((stamp_ns, item))
        if len(q) > self._queue_size:
            q.popleft()
            self._release(k, "queue_full")
        return []

    def flush(self) -> list[SyncSet]:
        """Nothing to emit without a primary message; held messages never used are dropped."""
        for k, q in enumerate(self._queues):
            while q:
                q.popleft()
                self._release(k, "unmatched")
        return []

    def _release(self, k: int, reason: str) -> None:
        """Account for the front message that was just removed from queue k."""
        if self._front_used[k]:
            self._front_used[k] = False
        else:
            self._drop(k, reason)

    def _emit(self, t: int, item: Any) -> SyncSet:
        names = self._inputs
        p = self._primary
        limit = t + self._future
        members: dict[str, Any] = {names[p]: item}
        stamps: dict[str, int] = {names[p]: t}
        missing: list[str] = []
        lo = hi = t
        for j in range(self._n):
            if j == p:
                continue
            q = self._queues[j]
            while len(q) >= 2 and q[1][0] <= limit:
                q.popleft()
                self._release(j, "unmatched")
            if q and q[0][0] <= limit:
                s, value = q[0]
                if self._max_age is not None and t - s > self._max_age:
                    q.popleft()
                    self._release(j, "too_old")
                    missing.append(names[j])
                    self._missing[j] += 1
                    continue
                if not self._front_used[j]:
                    self._front_used[j] = True
                    self._used[j] += 1
                members[names[j]] = value
                stamps[names[j]] = s
                lo = min(lo, s)
                hi = max(hi, s)
            else:
                missing.append(names[j])
                self._missing[j] += 1
        self._used[p] += 1
        self._sets += 1
        if missing:
            self._partial_sets += 1
        return SyncSet(t, members, stamps, tuple(missing), hi - lo)

    def _queued_counts(self) -> list[int]:
        return [len(q) - (1 if self._front_used[k] else 0) for k, q in enumerate(self._queues)]


def latest_sync_batch(
    stamps: Sequence[npt.ArrayLike],
    *,
    primary: int = 0,
    max_age_ns: int | None = None,
    allow_future_ns: int = 0,
) -> npt.NDArray[np.int64]:
    """Zero-order hold over whole streams (``np.searchsorted``).

    Args:
        stamps: K >= 2 strictly increasing integer arrays of stamps [ns].
        primary: index of the triggering stream.
        max_age_ns, allow_future_ns: as for :class:`LatestSynchronizer`.

    Returns:
        (M, K) int64, one row per primary message: the index of the member in each stream, -1 where the
        input is missing (no message yet, or stale).  Equals the streaming output for a stamp-ordered feed
        (secondaries first at equal stamps) when ``allow_future_ns == 0``.
    """
    arrays = []
    for k, s in enumerate(stamps):
        arr = np.asarray(s)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise SyncError(f"latest_sync_batch: stamps[{k}] must be a 1-D integer array of ns")
        arr = np.ascontiguousarray(arr, dtype=np.int64)
        if arr.shape[0] > 1 and not bool(np.all(np.diff(arr) > 0)):
            raise SyncError(f"latest_sync_batch: stamps[{k}] must be strictly increasing")
        arrays.append(arr)
    if len(arrays) < 2:
        raise SyncError("latest_sync_batch: needs at least 2 streams")
    if (
        isinstance(primary, bool)
        or not isinstance(primary, int | np.integer)
        or not 0 <= primary < len(arrays)
    ):
        raise SyncError(
            f"latest_sync_batch: primary must be a stream index in [0, {len(arrays)}), got {primary!r}"
        )
    problems = check_nonneg_int("max_age_ns", max_age_ns, allow_none=True)
    problems += check_nonneg_int("allow_future_ns", allow_future_ns)
    if problems:
        raise SyncError("latest_sync_batch: " + "; ".join(problems))
    prim = arrays[primary]
    out = np.empty((prim.shape[0], len(arrays)), dtype=np.int64)
    out[:, primary] = np.arange(prim.shape[0])
    limit = prim + int(allow_future_ns)
    for k, arr in enumerate(arrays):
        if k == primary:
            continue
        idx = np.searchsorted(arr, limit, side="right") - 1
        if max_age_ns is not None and arr.shape[0]:
            age = prim - arr[np.maximum(idx, 0)]
            idx = np.where(age > int(max_age_ns), -1, idx)
        out[:, k] = idx
    return out
