"""Numba kernels of the batch synchronizers.  Kernels take arrays and scalars only and never raise.

The public, validating wrappers live in :mod:`edgefuse.sync.approximate`.  The approximate kernel is a
transcription of :class:`edgefuse.sync.approximate.ApproximateTimeSynchronizer` onto preallocated arrays:
per stream ``k`` the accepted messages occupy ``acc_t[off[k]:off[k] + length[k]]`` (stamps) and
``acc_i[...]`` (their index in the caller's stream); ``[base[k], head[k])`` is "past" and
``[head[k], length[k])`` the deque.  ``state`` holds ``[pivot, pivot_time, cand_start, cand_end, count]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefuse._jit import njit

_PIVOT = 0
_PIVOT_T = 1
_CAND_START = 2
_CAND_END = 3
_COUNT = 4


@njit()
def _publish_candidate(  # noqa: PLR0917 -- kernels take arrays positionally
    acc_i: Any, off: Any, base: Any, head: Any, state: Any, out: Any
) -> None:
    n = base.shape[0]
    row = state[_COUNT]
    for j in range(n):
        out[row, j] = acc_i[off[j] + base[j]]
        base[j] += 1
        head[j] = base[j]
    state[_COUNT] = row + 1
    state[_PIVOT] = -1


@njit()
def _search_virtual(  # noqa: PLR0917 -- kernels take arrays positionally
    acc_t: Any,
    acc_i: Any,
    off: Any,
    base: Any,
    head: Any,
    length: Any,
    state: Any,
    factor: float,
    lower: Any,
    saved: Any,
    out: Any,
) -> bool:
    n = base.shape[0]
    for j in range(n):
        saved[j] = head[j]
    pivot_t = state[_PIVOT_T]
    cand_start = state[_CAND_START]
    cand_end = state[_CAND_END]
    while True:
        start_i = 0
        end_t = np.int64(0)
        start_t = np.int64(0)
        for j in range(n):
            if head[j] < length[j]:
                t = acc_t[off[j] + head[j]]
            else:
                t = acc_t[off[j] + head[j] - 1] + lower[j]
                t = max(t, pivot_t)
            if j == 0:
                end_t = t
                start_t = t
                continue
            end_t = max(end_t, t)
            if t < start_t:
                start_t = t
                start_i = j
        gain = float(end_t - cand_end) * factor
        if gain >= float(pivot_t - cand_start):
            _publish_candidate(acc_i, off, base, head, state, out)
            return True
        if gain < float(start_t - cand_start):
            for j in range(n):
                head[j] = saved[j]
            return False
        head[start_i] += 1


@njit()
def _process_queues(  # noqa: PLR0917 -- kernels take arrays positionally
    acc_t: Any,
    acc_i: Any,
    off: Any,
    base: Any,
    head: Any,
    length: Any,
    has_dropped: Any,
    state: Any,
    factor: float,
    max_interval: int,
    lower: Any,
    saved: Any,
    out: Any,
) -> None:
    n = base.shape[0]
    while True:
        end_i = 0
        start_i = 0
        if head[0] == length[0]:
            return
        end_t = acc_t[off[0] + head[0]]
        start_t = end_t
        for j in range(1, n):
            if head[j] == length[j]:
                return
            t = acc_t[off[j] + head[j]]
            if t >= end_t:
                end_t = t
                end_i = j
            if t < start_t:
                start_t = t
                start_i = j
        for j in range(n):
            if j != end_i:
                has_dropped[j] = False
        if state[_PIVOT] < 0:
            if end_t - start_t > max_interval or has_dropped[end_i]:
                base[start_i] += 1
                head[start_i] += 1
                continue
            for j in range(n):
                base[j] = head[j]
            state[_CAND_START] = start_t
            state[_CAND_END] = end_t
            state[_PIVOT] = end_i
            state[_PIVOT_T] = end_t
            head[start_i] += 1
        else:
            if float(end_t - state[_CAND_END]) * factor < float(start_t - state[_CAND_START]):
                for j in range(n):
                    base[j] = head[j]
                state[_CAND_START] = start_t
                state[_CAND_END] = end_t
            head[start_i] += 1
        if start_i == state[_PIVOT] or float(end_t - state[_CAND_END]) * factor >= float(
            state[_PIVOT_T] - state[_CAND_START]
        ):
            _publish_candidate(acc_i, off, base, head, state, out)
        elif head[start_i] == length[start_i] and not _search_virtual(
            acc_t, acc_i, off, base, head, length, state, factor, lower, saved, out
        ):
            return


@njit()
def _sync_approximate(  # noqa: PLR0917 -- kernels take arrays positionally
    stamps: Any,
    offsets: Any,
    queue_size: int,
    max_interval: int,
    factor: float,
    lower: Any,
    flush: bool,
    out: Any,
) -> int:
    """Approximate-time matching of K streams merged in stamp order (ties: lower stream first).

    Args:
        stamps: (N,) int64, the K streams concatenated; stream k is ``stamps[offsets[k]:offsets[k+1]]``.
        offsets: (K+1,) int64.
        queue_size: per-stream bound on deque + past.
        max_interval: widest set allowed [ns] (a huge value for no limit).
        factor: ``1 + age_penalty``.
        lower: (K,) int64 inter-message lower bounds [ns].
        flush: publish the pending candidates at the end of the streams.
        out: (>= number of sets, K) int64, receives the member indices of each set.

    Returns:
        The number of rows written to ``out``.
    """
    n = offsets.shape[0] - 1
    acc_t = np.empty(stamps.shape[0], dtype=np.int64)
    acc_i = np.empty(stamps.shape[0], dtype=np.int64)
    base = np.zeros(n, dtype=np.int64)
    head = np.zeros(n, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    nxt = np.zeros(n, dtype=np.int64)
    saved = np.zeros(n, dtype=np.int64)
    has_dropped = np.zeros(n, dtype=np.bool_)
    have_last = np.zeros(n, dtype=np.bool_)
    last = np.zeros(n, dtype=np.int64)
    state = np.zeros(5, dtype=np.int64)
    state[_PIVOT] = -1
    while True:
        # Next arrival: the smallest pending stamp over the streams (ties: lowest stream index).
        k = -1
        t = np.int64(0)
        for j in range(n):
            p = offsets[j] + nxt[j]
            if p < offsets[j + 1] and (k < 0 or stamps[p] < t):
                k = j
                t = stamps[p]
        if k < 0:
            break
        idx = nxt[k]
        nxt[k] = idx + 1
        if have_last[k] and t <= last[k]:
            continue  # out of order or duplicate: dropped, as the streaming push does
        have_last[k] = True
        last[k] = t
        pos = offsets[k] + length[k]
        acc_t[pos] = t
        acc_i[pos] = idx
        length[k] += 1
        if head[k] == length[k] - 1:
            _process_queues(
                acc_t,
                acc_i,
                offsets,
                base,
                head,
                length,
                has_dropped,
                state,
                factor,
                max_interval,
                lower,
                saved,
                out,
            )
        if length[k] - base[k] > queue_size:
            for j in range(n):
                head[j] = base[j]
            base[k] += 1
            head[k] = base[k]
            has_dropped[k] = True
            if state[_PIVOT] >= 0:
                state[_PIVOT] = -1
                _process_queues(
                    acc_t,
                    acc_i,
                    offsets,
                    base,
                    head,
                    length,
                    has_dropped,
                    state,
                    factor,
                    max_interval,
                    lower,
                    saved,
                    out,
                )
    if flush:
        while state[_PIVOT] >= 0:
            _publish_candidate(acc_i, offsets, base, head, state, out)
            _process_queues(
                acc_t,
                acc_i,
                offsets,
                base,
                head,
                length,
                has_dropped,
                state,
                factor,
                max_interval,
                lower,
                saved,
                out,
            )
    return int(state[_COUNT])
