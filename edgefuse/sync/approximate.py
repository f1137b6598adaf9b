"""Approximate-time synchronizer with the semantics of ROS message_filters' C++ ``ApproximateTime`` policy.

The algorithm (ROS wiki "message_filters/ApproximateTime"; C++ ``sync_policies/approximate_time.h``):

- Each input has a queue ("deque") and a list of messages already looked at for the current candidate
  ("past").  Nothing happens until every input has at least one queued message.
- The *pivot* is the input whose head is the latest.  Every set considered while that pivot lasts contains
  the pivot's head.  Repeatedly, the set made of the heads is compared with the current candidate and the
  earliest head is moved to past.  A set replaces the candidate when
  ``(end - cand_end) * (1 + age_penalty) < start - cand_start`` (end/start: its latest/earliest stamp).
- The candidate is published when the pivot itself becomes the earliest head (all sets for this pivot
  were seen), or when it is provably optimal: any later set contains ``[pivot_time, end]``, so if
  ``(end - cand_end) * (1 + age_penalty) >= pivot_time - cand_start`` no later set can beat it.  When an
  input runs empty, a *virtual* head ``max(last stamp + inter_message_lower_bound, pivot_time)`` is used to
  try to prove optimality early.
- After publishing, past messages go back to the queues and the set's members are removed; messages older
  than the published set are gone (dropped).
- ``max_interval_ns``: a new candidate wider than this is not started; its earliest head is dropped.
- ``queue_size``: when ``queued + past`` of an input exceeds it, the search is cancelled, that input's
  oldest message is dropped and the input may not be the next pivot until another input's head is the
  latest.

Properties (for messages in stamp order on each input and queues large enough): each message is used at
most once, sets never cross, and the sets only depend on the stamps, not on the interleaving of arrivals.
The last property needs ``inter_message_lower_bound_ns`` to be true of the data: with a bound larger than
an actual gap, a set can be published before a better one arrives (found by the property tests).

Extensions to the C++ policy, documented here:

- ``push`` drops a message whose stamp is older than (``"out_of_order"``) or equal to (``"duplicate"``) the
  previous one on the same input; the C++ policy only warns.  A stamp closer than
  ``inter_message_lower_bound_ns`` to the previous one is counted in :attr:`bound_violations` (C++: a
  warning) and kept.
- ``flush()`` (end of stream): no message can arrive any more, so a pending candidate is optimal; it is
  published and the search goes on until no candidate remains.  Every message still queued is then
  dropped as ``"unmatched"``.
- Comparisons with the age penalty are done in float64 ns (exact for stamp differences below 2**53 ns,
  about 104 days); the C++ code rounds the product to whole ns first.

The set's ``stamp_ns`` is its latest member stamp.  Drop reasons: ``out_of_order``, ``duplicate``,
``queue_full``, ``max_interval``, ``unmatched``.

Memory: the synchronizer lets go of a message (its item) the moment it is published in a set or dropped,
so a zero-copy payload's buffer lives no longer than its set; only the stamps of consumed messages stay,
until the queue of that input is compacted (every 4,096 of them, on a push to it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import SyncError
from edgefuse.sync._kernels import _sync_approximate
from edgefuse.sync.base import SyncBase, SyncSet, as_stamp, check_inputs

_NO_LIMIT = 2**62
_COMPACT_AT = 4096


def check_approximate_params(
    inputs: Sequence[str],
    queue_size: Any,
    max_interval_ns: Any,
    age_penalty: Any,
    inter_message_lower_bound_ns: Any,
) -> list[str]:
    """Problems with approximate-time parameters (empty when valid); each names its parameter."""
    problems: list[str] = []
    if isinstance(queue_size, bool) or not isinstance(queue_size, int | np.integer) or queue_size < 1:
        problems.append(f"queue_size must be an integer >= 1, got {queue_size!r}")
    if max_interval_ns is not None and (
        isinstance(max_interval_ns, bool)
        or not isinstance(max_interval_ns, int | np.integer)
        or max_interval_ns < 0
    ):
        problems.append(f"max_interval_ns must be None or an integer >= 0 [ns], got {max_interval_ns!r}")
    if (
        isinstance(age_penalty, bool)
        or not isinstance(age_penalty, int | float | np.integer | np.floating)
        or not np.isfinite(age_penalty)
        or age_penalty < 0
    ):
        problems.append(f"age_penalty must be a finite number >= 0, got {age_penalty!r}")
    bounds = inter_message_lower_bound_ns
    if isinstance(bounds, Mapping):
        for name, value in bounds.items():
            if name not in inputs:
                problems.append(f"inter_message_lower_bound_ns names unknown input {name!r}")
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                problems.append(
                    f"inter_message_lower_bound_ns[{name!r}] must be an integer >= 0, got {value!r}"
                )
    elif isinstance(bounds, bool) or not isinstance(bounds, int | np.integer) or bounds < 0:
        problems.append(
            "inter_message_lower_bound_ns must be an integer >= 0 or a mapping input -> integer, "
            f"got {bounds!r}"
        )
    return problems


def _bounds_list(inputs: Sequence[str], bounds: int | Mapping[str, int]) -> list[int]:
    if isinstance(bounds, Mapping):
        return [int(bounds.get(name, 0)) for name in inputs]
    return [int(bounds)] * len(inputs)


def _release(items: list[Any], start: int, stop: int) -> None:
    """Drop the references to ``items[start:stop]`` (consumed messages) in place."""
    for i in range(start, stop):
        items[i] = None


class ApproximateTimeSynchronizer(SyncBase):
    """Streaming approximate-time synchronizer (message_filters C++ ``ApproximateTime`` semantics).

    Args:
        inputs: input names (at least 2, unique).
        queue_size: per-input bound on queued + looked-at messages (C++ ``queue_size``).
        max_interval_ns: sets wider than this [ns] are never published; ``None`` = no limit.
        age_penalty: later sets are penalised by ``1 + age_penalty`` when compared (C++ default 0.1).
        inter_message_lower_bound_ns: known minimum gap between two messages of an input [ns], one value
            for all inputs or a mapping input -> value (default 0).  Lets sets be published earlier.
    """

    policy = "approximate"

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        queue_size: int = 100,
        max_interval_ns: int | None = None,
        age_penalty: float = 0.1,
        inter_message_lower_bound_ns: int | Mapping[str, int] = 0,
    ) -> None:
        names = tuple(inputs)
        problems = check_inputs(names, 2)
        problems += check_approximate_params(
            names, queue_size, max_interval_ns, age_penalty, inter_message_lower_bound_ns
        )
        if problems:
            raise SyncError("approximate: " + "; ".join(problems))
        super().__init__(names)
        n = len(names)
        self._n = n
        self._queue_size = int(queue_size)
        self._max_interval = _NO_LIMIT if max_interval_ns is None else int(max_interval_ns)
        self._factor = 1.0 + float(age_penalty)
        self._lower = _bounds_list(names, inter_message_lower_bound_ns)
        # Per input: parallel lists of stamps and items; [base, head) is "past", [head, len) the deque.
        self._st: list[list[int]] = [[] for _ in range(n)]
        self._it: list[list[Any]] = [[] for _ in range(n)]
        self._base = [0] * n
        self._head = [0] * n
        self._last: list[int | None] = [None] * n
        self._has_dropped = [False] * n
        self._any_dropped = False
        # Hot drop counters, folded into the stats on demand.
        self._unmatched = [0] * n
        self._too_wide = [0] * n
        self._pivot = -1
        self._pivot_t = 0
        self._cand_start = 0
        self._cand_end = 0
        self._out: list[SyncSet] = []
        self.bound_violations = [0] * n

    # -- public API -----------------------------------------------------------------------------------
    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        """Add one message; return the sets it completes (oldest first)."""
        k = self._index.get(input)
        if k is None:
            k = self._key(input)
        if stamp_ns.__class__ is not int:
            stamp_ns = as_stamp(stamp_ns, input)
        self._received[k] += 1
        last = self._last[k]
        if last is not None and stamp_ns <= last:
            self._drop(k, "duplicate" if stamp_ns == last else "out_of_order")
            return []
        self._last[k] = stamp_ns
        if self._base[k] >= _COMPACT_AT:
            self._compact(k)
        st = self._st[k]
        st.append(stamp_ns)
        self._it[k].append(item)
        size = len(st)
        head = self._head
        if head[k] == size - 1:
            # The deque was empty: maybe every input has a message now.
            for j in range(self._n):
                if head[j] == len(self._st[j]):
                    break
            else:
                self._process()
        elif stamp_ns - last < self._lower[k]:  # type: ignore[operator]
            self.bound_violations[k] += 1
        if size - self._base[k] > self._queue_size:  # no list shrinks in _process (compaction: push only)
            self._overflow(k)
        if self._out:
            out = self._out
            self._out = []
            return out
        return []

    def flush(self) -> list[SyncSet]:
        """End of stream: publish pending candidates (optimal now), then drop what is left as unmatched."""
        while self._pivot >= 0:
            self._publish()
            self._process()
        for k in range(self._n):
            left = len(self._st[k]) - self._base[k]
            self._drop(k, "unmatched", left)
            self._st[k].clear()
            self._it[k].clear()
            self._base[k] = 0
            self._head[k] = 0
        out = self._out
        self._out = []
        return out

    def _queued_counts(self) -> list[int]:
        for k in range(self._n):
            self._drop(k, "unmatched", self._unmatched[k])
            self._drop(k, "max_interval", self._too_wide[k])
            self._unmatched[k] = 0
            self._too_wide[k] = 0
        return [len(self._st[k]) - self._base[k] for k in range(self._n)]

    # -- the algorithm ----------------------------------------------------------------------------------
    def _overflow(self, k: int) -> None:
        """Queue of input k too long: cancel the search, drop k's oldest message."""
        base = self._base
        head = self._head
        for j in range(self._n):
            head[j] = base[j]
        self._it[k][base[k]] = None
        base[k] += 1
        head[k] = base[k]
        self._drop(k, "queue_full")
        self._has_dropped[k] = True
        self._any_dropped = True
        self._compact(k)
        if self._pivot >= 0:
            self._pivot = -1
            self._process()

    def _compact(self, k: int) -> None:
        b = self._base[k]
        if b >= _COMPACT_AT:
            del self._st[k][:b]
            del self._it[k][:b]
            self._head[k] -= b
            self._base[k] = 0

    def _publish(self) -> None:
        """Emit the candidate (the message at ``base`` of every input) and remove its members."""
        names = self._inputs
        base = self._base
        head = self._head
        members: dict[str, Any] = {}
        stamps: dict[str, int] = {}
        lo = hi = self._st[0][base[0]]
        for j in range(self._n):
            b = base[j]
            t = self._st[j][b]
            name = names[j]
            items = self._it[j]
            members[name] = items[b]
            items[b] = None
            stamps[name] = t
            if t < lo:
                lo = t
            elif t > hi:
                hi = t
            self._used[j] += 1
            base[j] = b + 1
            head[j] = b + 1
        self._pivot = -1
        self._sets += 1
        self._out.append(SyncSet(hi, members, stamps, (), hi - lo))

    def _process(self) -> None:
        n = self._n
        st = self._st
        it = self._it
        base = self._base
        head = self._head
        factor = self._factor
        has_dropped = self._has_dropped
        unmatched = self._unmatched
        others = range(1, n)
        everyone = range(n)
        while True:
            # Heads of every deque (earliest and latest); stop when one is empty.
            try:
                end_t = start_t = st[0][head[0]]
                end_i = start_i = 0
                for j in others:
                    t = st[j][head[j]]
                    if t >= end_t:
                        end_t = t
                        end_i = j
                    elif t < start_t:
                        start_t = t
                        start_i = j
            except IndexError:
                return
            if self._any_dropped:
                for j in everyone:
                    if j != end_i:
                        has_dropped[j] = False
                self._any_dropped = has_dropped[end_i]
            if self._pivot < 0:
                if end_t - start_t > self._max_interval:
                    it[start_i][base[start_i]] = None
                    base[start_i] += 1
                    head[start_i] += 1
                    self._too_wide[start_i] += 1
                    continue
                if has_dropped[end_i]:
                    it[start_i][base[start_i]] = None
                    base[start_i] += 1
                    head[start_i] += 1
                    unmatched[start_i] += 1
                    continue
                # New candidate (past is empty here); the pivot is the latest head.
                self._cand_start = start_t
                self._cand_end = end_t
                self._pivot = end_i
                self._pivot_t = end_t
            elif (end_t - self._cand_end) * factor < start_t - self._cand_start:
                # Better candidate: the heads; messages looked at before it are dropped.
                for j in everyone:
                    d = head[j] - base[j]
                    if d:
                        unmatched[j] += d
                        if d == 1:  # release them now (usually one)
                            it[j][base[j]] = None
                        else:
                            _release(it[j], base[j], head[j])
                        base[j] = head[j]
                self._cand_start = start_t
                self._cand_end = end_t
            head[start_i] += 1
            if (
                start_i == self._pivot
                or (end_t - self._cand_end) * factor >= self._pivot_t - self._cand_start
            ):
                self._publish()
            elif head[start_i] == len(st[start_i]) and not self._virtual_search():
                return

    def _virtual_search(self) -> bool:
        """An input ran empty: try to prove the candidate optimal with virtual heads.

        Returns True when the candidate was published (the caller goes on), False when optimality cannot
        be proven yet (the looked-at state is restored and the caller waits for more messages).
        """
        n = self._n
        st = self._st
        head = self._head
        saved = head[:]
        factor = self._factor
        pivot_t = self._pivot_t
        cand_start = self._cand_start
        cand_end = self._cand_end
        lower = self._lower
        while True:
            start_i = 0
            end_t = start_t = 0
            for j in range(n):
                sj = st[j]
                hj = head[j]
                if hj < len(sj):
                    t = sj[hj]
                else:
                    t = sj[hj - 1] + lower[j]
                    t = max(t, pivot_t)
                if j == 0:
                    end_t = start_t = t
                    continue
                end_t = max(end_t, t)
                if t < start_t:
                    start_t = t
                    start_i = j
            gain = (end_t - cand_end) * factor
            if gain >= pivot_t - cand_start:
                self._publish()
                return True
            if gain < start_t - cand_start:
                head[:] = saved
                return False
            head[start_i] += 1


def approximate_sync_batch(
    stamps: Sequence[npt.ArrayLike],
    *,
    queue_size: int = 100,
    max_interval_ns: int | None = None,
    age_penalty: float = 0.1,
    inter_message_lower_bound_ns: int | Sequence[int] = 0,
    flush: bool = True,
) -> npt.NDArray[np.int64]:
    """Approximate-time sets over whole stamp streams, as if pushed through the streaming synchronizer.

    The streams are merged in stamp order (ties: lower stream index first) and fed to the same algorithm
    as :class:`ApproximateTimeSynchronizer` (then ``flush()`` when ``flush``), in a compiled kernel.

    Args:
        stamps: K >= 2 int64 arrays of stamps [ns], one per input, each strictly increasing (a stamp equal
            to or older than its predecessor is skipped, as the streaming ``push`` drops it).
        queue_size, max_interval_ns, age_penalty: as for :class:`ApproximateTimeSynchronizer`.
        inter_message_lower_bound_ns: one value or one per stream [ns].
        flush: emulate ``flush()`` at the end of the streams.

    Returns:
        (M, K) int64: row m holds, for each stream, the index (into that stream's array) of the member of
        the m-th set; rows are in emission order.
    """
    arrays = []
    for k, s in enumerate(stamps):
        try:
            arr = np.asarray(s)
        except (TypeError, ValueError):
            raise SyncError(f"stamps[{k}] is not an array of integer ns") from None
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise SyncError(
                f"stamps[{k}] must be a 1-D integer array of ns, got {arr.dtype} shape {arr.shape}"
            )
        arrays.append(np.ascontiguousarray(arr, dtype=np.int64))
    names = tuple(f"s{k}" for k in range(len(arrays)))
    if isinstance(inter_message_lower_bound_ns, Sequence) and not isinstance(
        inter_message_lower_bound_ns, str
    ):
        if len(inter_message_lower_bound_ns) != len(arrays):
            raise SyncError("inter_message_lower_bound_ns needs one value per stream")
        bounds: int | dict[str, int] = dict(zip(names, inter_message_lower_bound_ns, strict=True))
    else:
        bounds = inter_message_lower_bound_ns
    problems = check_inputs(names, 2) + check_approximate_params(
        names, queue_size, max_interval_ns, age_penalty, bounds
    )
    if problems:
        raise SyncError("approximate_sync_batch: " + "; ".join(problems))
    n = len(arrays)
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(arrays) if n else np.zeros(0, np.int64)
    lower = np.array(_bounds_list(names, bounds), dtype=np.int64)
    max_sets = int(lengths.min()) if n else 0
    out = np.empty((max_sets, n), dtype=np.int64)
    count = _sync_approximate(
        flat,
        offsets,
        int(queue_size),
        _NO_LIMIT if max_interval_ns is None else int(max_interval_ns),
        1.0 + float(age_penalty),
        lower,
        bool(flush),
        out,
    )
    return out[:count].copy()
