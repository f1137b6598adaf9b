"""Slow, obviously-correct references for the approximate-time policy (test oracles, not for use).

``ReferenceApproximate`` transcribes the documented message_filters C++ ApproximateTime algorithm with
explicit deques and "past" lists, one step at a time, with no attention to speed.  ``brute_force_sets``
computes, offline and exhaustively, the sets the documented optimality properties imply when the whole
streams are known (no age penalty, no max interval, unbounded queues).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence


class ReferenceApproximate:
    """Plain transcription; messages are (stamp, index) pairs; emits tuples of indices."""

    def __init__(
        self,
        n: int,
        queue_size: int = 10**9,
        max_interval: int | None = None,
        age_penalty: float = 0.1,
        lower_bounds: Sequence[int] | None = None,
    ) -> None:
        self.n = n
        self.queue_size = queue_size
        self.max_interval = max_interval
        self.factor = 1.0 + age_penalty
        self.lower = list(lower_bounds) if lower_bounds is not None else [0] * n
        self.deques: list[deque[tuple[int, int]]] = [deque() for _ in range(n)]
        self.past: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.dropped_flag = [False] * n
        self.last: list[int | None] = [None] * n
        self.candidate: list[tuple[int, int]] | None = None
        self.pivot: int | None = None
        self.pivot_time = 0
        self.cand_start = 0
        self.cand_end = 0
        self.output: list[tuple[int, ...]] = []

    # helpers -------------------------------------------------------------------------------------
    def all_nonempty(self) -> bool:
        return all(len(d) > 0 for d in self.deques)

    def restore_past(self) -> None:
        for i in range(self.n):
            while self.past[i]:
                self.deques[i].appendleft(self.past[i].pop())

    def better(self, end: int, start: int) -> bool:
        return (end - self.cand_end) * self.factor < (start - self.cand_start)

    def provably_optimal(self, end: int) -> bool:
        return (end - self.cand_end) * self.factor >= (self.pivot_time - self.cand_start)

    def heads(self) -> list[int]:
        return [d[0][0] for d in self.deques]

    @staticmethod
    def latest_index(times: list[int]) -> int:
        best = 0
        for i, t in enumerate(times):
            if t >= times[best]:
                best = i
        return best

    @staticmethod
    def earliest_index(times: list[int]) -> int:
        best = 0
        for i, t in enumerate(times):
            if t < times[best]:
                best = i
        return best

    def take_candidate(self, start: int, end: int) -> None:
        self.candidate = [d[0] for d in self.deques]
        for p in self.past:
            p.clear()
        self.cand_start = start
        self.cand_end = end

    def move_to_past(self, i: int) -> None:
        self.past[i].append(self.deques[i].popleft())

    def publish(self) -> None:
        assert self.candidate is not None
        self.output.append(tuple(m[1] for m in self.candidate))
        self.restore_past()
        for d, m in zip(self.deques, self.candidate, strict=True):
            assert d[0] == m
            d.popleft()
        self.candidate = None
        self.pivot = None

    # the algorithm ---------------------------------------------------------------------------------
    def add(self, i: int, stamp: int, index: int) -> None:
        if self.last[i] is not None and stamp <= self.last[i]:  # type: ignore[operator]
            return
        self.last[i] = stamp
        was_empty = not self.deques[i]
        self.deques[i].append((stamp, index))
        if was_empty and self.all_nonempty():
            self.process()
        if len(self.deques[i]) + len(self.past[i]) > self.queue_size:
            self.restore_past()
            self.deques[i].popleft()
            self.dropped_flag[i] = True
            if self.pivot is not None:
                self.candidate = None
                self.pivot = None
                self.process()

    def process(self) -> None:
        while self.all_nonempty():
            times = self.heads()
            end_i = self.latest_index(times)
            start_i = self.earliest_index(times)
            end, start = times[end_i], times[start_i]
            for i in range(self.n):
                if i != end_i:
                    self.dropped_flag[i] = False
            if self.pivot is None:
                if self.max_interval is not None and end - start > self.max_interval:
                    self.deques[start_i].popleft()
                    continue
                if self.dropped_flag[end_i]:
                    self.deques[start_i].popleft()
                    continue
                self.take_candidate(start, end)
                self.pivot = end_i
                self.pivot_time = end
                self.move_to_past(start_i)
            else:
                if self.better(end, start):
                    self.take_candidate(start, end)
                self.move_to_past(start_i)
            if start_i == self.pivot or self.provably_optimal(end):
                self.publish()
            elif not self.all_nonempty():
                self.virtual_search()

    def virtual_time(self, i: int) -> int:
        if self.deques[i]:
            return self.deques[i][0][0]
        return max(self.past[i][-1][0] + self.lower[i], self.pivot_time)

    def virtual_search(self) -> None:
        moved = [0] * self.n
        while True:
            times = [self.virtual_time(i) for i in range(self.n)]
            end = times[self.latest_index(times)]
            start_i = self.earliest_index(times)
            start = times[start_i]
            if self.provably_optimal(end):
                self.publish()
                return
            if self.better(end, start):
                for i in range(self.n):
                    for _ in range(moved[i]):
                        self.deques[i].appendleft(self.past[i].pop())
                return
            self.move_to_past(start_i)
            moved[start_i] += 1

    def flush(self) -> None:
        while self.pivot is not None:
            self.publish()
            self.process()


def reference_sets(
    streams: Sequence[Sequence[int]],
    order: Sequence[int] | None = None,
    **params: object,
) -> list[tuple[int, ...]]:
    """Feed streams through :class:`ReferenceApproximate` (``order``: stream id per arrival; default:
    stamp order, ties by stream index) and flush."""
    ref = ReferenceApproximate(len(streams), **params)  # type: ignore[arg-type]
    if order is None:
        events = sorted((int(t), k, i) for k, s in enumerate(streams) for i, t in enumerate(s))
        for t, k, i in events:
            ref.add(k, t, i)
    else:
        pos = [0] * len(streams)
        for k in order:
            ref.add(k, int(streams[k][pos[k]]), pos[k])
            pos[k] += 1
    ref.flush()
    return ref.output


def brute_force_sets(streams: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """Offline sets implied by the documented properties (age_penalty 0, no limits, all data known).

    Repeatedly: among the remaining messages, the pivot is the stream whose first remaining message is
    the latest (ties: the higher stream index); the set is, over all combinations containing the pivot's
    message, one of smallest spread (ties: earliest start, then earliest members); every message up to
    the chosen members is consumed.
    """
    n = len(streams)
    first = [0] * n
    out: list[tuple[int, ...]] = []
    while all(first[k] < len(streams[k]) for k in range(n)):
        heads = [streams[k][first[k]] for k in range(n)]
        pivot = max(range(n), key=lambda k: (heads[k], k))
        choices = [[first[k]] if k == pivot else list(range(first[k], len(streams[k]))) for k in range(n)]
        best: tuple[int, int, tuple[int, ...]] | None = None
        for combo in itertools.product(*choices):
            ts = [streams[k][combo[k]] for k in range(n)]
            key = (max(ts) - min(ts), min(ts), combo)
            if best is None or key < best:
                best = key
        assert best is not None
        out.append(best[2])
        first = [best[2][k] + 1 for k in range(n)]
    return out
