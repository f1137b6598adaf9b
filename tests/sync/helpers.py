"""Small helpers shared by the sync tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefuse.sync import Synchronizer, SyncSet


def stamp_order(streams: Sequence[Sequence[int]]) -> list[int]:
    """Arrival order (stream id per message) in stamp order, ties by stream index (the batch order)."""
    events = sorted((int(t), k, i) for k, s in enumerate(streams) for i, t in enumerate(s))
    return [k for _, k, _ in events]


def feed(
    sync: Synchronizer,
    streams: Sequence[Sequence[int]],
    order: Sequence[int] | None = None,
    flush: bool = True,
) -> list[SyncSet]:
    """Push ``streams`` (items are the per-stream message indices) in ``order`` and optionally flush."""
    order = stamp_order(streams) if order is None else order
    pos = [0] * len(streams)
    out: list[SyncSet] = []
    for k in order:
        out += sync.push(sync.inputs[k], int(streams[k][pos[k]]), pos[k])
        pos[k] += 1
    if flush:
        out += sync.flush()
    return out


def rows(sets: Sequence[SyncSet], inputs: Sequence[str]) -> list[tuple[int, ...]]:
    """Member indices per set (complete sets only)."""
    return [tuple(int(s.members[name]) for name in inputs) for s in sets]


def as_rows(batch: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in r) for r in batch]
