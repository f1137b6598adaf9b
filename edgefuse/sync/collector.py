"""Deadline collector for live use: emits partial sets when a sensor is late, flagging what is missing.

Semantics:

- Each incoming stamp is corrected by its input's ``offset_ns`` (sensor time offset): ``t = stamp + offset``.
- A message joins the open set whose reference stamp is nearest to ``t`` within ``window_ns`` and that
  has no message for this input yet; otherwise it opens a new set with reference ``t``, opened at
  ``now_ns``.
- A set closes when every input has arrived (complete) or when ``now_ns`` passes its deadline: for each
  missing input ``opened_at + timeout_ns[input]`` (``deadline_ns`` when given is the timeout of every
  input); the set waits as long as the latest deadline of its missing inputs.  It is then emitted with
  ``missing`` listing the absent inputs.
- When a set closes, every open set with an older reference closes too (partial if incomplete): sets are
  emitted in increasing reference order, and with per-input ordered streams a newer complete set means
  the older one can no longer complete.
- The clock: ``poll(now_ns)`` closes the sets whose deadline passed.  ``push(..., now_ns)`` polls first;
  without ``now_ns`` the corrected message stamp serves as the clock (replay).
- Drops (all counted): ``late`` (within ``window_ns`` of a set already emitted), ``too_old`` (older than
  the last emitted set), ``out_of_order`` / ``duplicate`` (per input), and more than ``queue_size`` open
  sets closes the oldest one early (it is emitted, partial).

``stamp_ns`` of a set is its reference stamp (offset-corrected stamp of the message that opened it);
``stamps_ns`` hold offset-corrected stamps.  ``flush()`` emits every open set (partial where incomplete).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgefuse.errors import SyncError
from edgefuse.sync.base import SyncBase, SyncSet, as_stamp, check_inputs, check_nonneg_int, check_queue_size


def _per_input(name: str, value: Any, inputs: Sequence[str], *, signed: bool) -> list[str]:
    problems: list[str] = []
    items = value.items() if isinstance(value, Mapping) else [(None, value)]
    for key, v in items:
        label = name if key is None else f"{name}[{key!r}]"
        if key is not None and key not in inputs:
            problems.append(f"{name} names unknown input {key!r}")
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or (not signed and v < 0):
            kind = "an integer" if signed else "an integer >= 0"
            problems.append(f"{label} must be {kind} [ns], got {v!r}")
    return problems


def check_collector_params(  # noqa: PLR0917 -- one argument per YAML parameter
    inputs: Sequence[str], offset_ns: Any, timeout_ns: Any, deadline_ns: Any, window_ns: Any, queue_size: Any
) -> list[str]:
    """Problems with collector parameters (empty when valid); each names its parameter."""
    problems = _per_input("offset_ns", offset_ns, inputs, signed=True)
    if timeout_ns is not None and deadline_ns is not None:
        problems.append("give either timeout_ns (per input) or deadline_ns, not both")
    if timeout_ns is None and deadline_ns is None:
        problems.append("one of timeout_ns or deadline_ns is required")
    if timeout_ns is not None:
        problems += _per_input("timeout_ns", timeout_ns, inputs, signed=False)
        if (
            isinstance(timeout_ns, Mapping)
            and set(timeout_ns) != set(inputs)
            and all(k in inputs for k in timeout_ns)
        ):
            problems.append(f"timeout_ns needs a value for every input {list(inputs)}")
    problems += check_nonneg_int("deadline_ns", deadline_ns, allow_none=True)
    problems += check_nonneg_int("window_ns", window_ns)
    problems += check_queue_size(queue_size)
    return problems


class _OpenSet:
    __slots__ = ("count", "items", "opened_ns", "ref", "stamps")

    def __init__(self, ref: int, n: int, opened_ns: int) -> None:
        self.ref = ref
        self.opened_ns = opened_ns
        self.items: list[Any] = [None] * n
        self.stamps: list[int | None] = [None] * n
        self.count = 0


class DeadlineCollector(SyncBase):
    """Streaming deadline collector (see the module docstring).

    Args:
        inputs: input names (at least 1, unique).
        offset_ns: sensor time offset added to incoming stamps [ns], one value or input -> value.
        timeout_ns: how long [ns, on the ``now_ns`` clock] a set waits for each input: one value or
            input -> value (every input).
        deadline_ns: alternative to ``timeout_ns``: one wait for every input [ns].
        window_ns: a message joins an open set whose reference is within this many ns.
        queue_size: most sets open at once.
    """

    policy = "collector"

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        offset_ns: int | Mapping[str, int] = 0,
        timeout_ns: int | Mapping[str, int] | None = None,
        deadline_ns: int | None = None,
        window_ns: int = 0,
        queue_size: int = 16,
    ) -> None:
        names = tuple(inputs)
        problems = check_inputs(names, 1) + check_collector_params(
            names, offset_ns, timeout_ns, deadline_ns, window_ns, queue_size
        )
        if problems:
            raise SyncError("collector: " + "; ".join(problems))
        super().__init__(names)
        self._n = len(names)
        if isinstance(offset_ns, Mapping):
            self._offset = [int(offset_ns.get(name, 0)) for name in names]
        else:
            self._offset = [int(offset_ns)] * self._n
        wait = timeout_ns if timeout_ns is not None else deadline_ns
        if isinstance(wait, Mapping):
            self._timeout = [int(wait[name]) for name in names]
        else:
            self._timeout = [int(wait)] * self._n  # type: ignore[arg-type]
        self._window = int(window_ns)
        self._queue_size = int(queue_size)
        self._open: list[_OpenSet] = []  # sorted by ref
        self._closed_ref: int | None = None  # reference of the last emitted set
        self._last: list[int | None] = [None] * self._n

    def push(self, input: str, stamp_ns: int, item: Any, now_ns: int | None = None) -> list[SyncSet]:
        """Add one message at clock time ``now_ns`` (default: its corrected stamp); return closed sets."""
        k = self._key(input)
        if stamp_ns.__class__ is not int:
            stamp_ns = as_stamp(stamp_ns, input)
        t = stamp_ns + self._offset[k]
        now = t if now_ns is None else as_stamp(now_ns, "now_ns")
        out = self.poll(now)
        self._received[k] += 1
        last = self._last[k]
        if last is not None and t <= last:
            self._drop(k, "duplicate" if t == last else "out_of_order")
            return out
        self._last[k] = t
        best: _OpenSet | None = None
        for s in self._open:
            gap = abs(t - s.ref)
            if s.stamps[k] is None and gap <= self._window and (best is None or gap < abs(t - best.ref)):
                best = s
        if best is None:
            closed = self._closed_ref
            if closed is not None and t <= closed + self._window:
                self._drop(k, "late" if t >= closed - self._window else "too_old")
                return out
            best = _OpenSet(t, self._n, now)
            self._open.append(best)
            self._open.sort(key=lambda s: s.ref)
        best.items[k] = item
        best.stamps[k] = t
        best.count += 1
        if best.count == self._n:
            out += self._close_through(best)
        while len(self._open) > self._queue_size:
            out += self._close_through(self._open[0])
        return out

    def poll(self, now_ns: int) -> list[SyncSet]:
        """Close (emit) every open set whose deadline passed at clock time ``now_ns``."""
        out: list[SyncSet] = []
        expired = None
        for s in self._open:
            deadline = max(
                (s.opened_ns + self._timeout[j] for j in range(self._n) if s.stamps[j] is None),
                default=s.opened_ns,
            )
            if now_ns > deadline:
                expired = s
        if expired is not None:
            out += self._close_through(expired)
        return out

    def flush(self) -> list[SyncSet]:
        """End of stream: emit every open set."""
        if not self._open:
            return []
        return self._close_through(self._open[-1])

    def _close_through(self, target: _OpenSet) -> list[SyncSet]:
        """Emit ``target`` and every open set with an older reference, oldest first."""
        out: list[SyncSet] = []
        while self._open:
            s = self._open.pop(0)
            out.append(self._emit(s))
            if s is target:
                break
        return out

    def _emit(self, s: _OpenSet) -> SyncSet:
        members: dict[str, Any] = {}
        stamps: dict[str, int] = {}
        missing: list[str] = []
        for j, name in enumerate(self._inputs):
            t = s.stamps[j]
            if t is None:
                missing.append(name)
                self._missing[j] += 1
            else:
                members[name] = s.items[j]
                stamps[name] = t
                self._used[j] += 1
        self._sets += 1
        if missing:
            self._partial_sets += 1
        self._closed_ref = s.ref if self._closed_ref is None else max(self._closed_ref, s.ref)
        spread = max(stamps.values()) - min(stamps.values())
        return SyncSet(s.ref, members, stamps, tuple(missing), spread)

    def _queued_counts(self) -> list[int]:
        counts = [0] * self._n
        for s in self._open:
            for j in range(self._n):
                if s.stamps[j] is not None:
                    counts[j] += 1
        return counts
