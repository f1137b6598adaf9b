"""Types shared by every synchronizer: :class:`SyncSet`, :class:`SyncStats`, the :class:`Synchronizer` seam.

A synchronizer groups messages from several named inputs into sets.  It only ever looks at the input
name and the integer-nanosecond stamp it is given; items (in practice :class:`edgefuse.envelope.Envelope`
objects) are opaque and handed back unchanged inside the emitted :class:`SyncSet`.

Accounting: every pushed message ends up in exactly one of *used* (it is a member of an emitted set),
*dropped* (with a reason, see :data:`DROP_REASONS`) or *queued* (still held, may be used later), so
``received == used + dropped + queued`` holds for every input at any time (:meth:`SyncStats.balanced`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgefuse.errors import SyncError

#: Drop reasons used by the policies (a policy documents which ones it uses).
DROP_REASONS: tuple[str, ...] = (
    "queue_full",  # the per-input queue exceeded queue_size; the oldest message was dropped
    "out_of_order",  # stamp older than the previous message on the same input
    "duplicate",  # stamp equal to the previous message on the same input
    "too_old",  # older than a set already emitted (or stale for a zero-order hold)
    "unmatched",  # skipped by the matching: no set can contain it any more (or left at flush)
    "max_interval",  # approximate: it would only form sets wider than max_interval_ns
    "late",  # collector: arrived after the set it belongs to was emitted
)


@dataclass(slots=True)
class SyncSet:
    """One group of messages emitted by a synchronizer.

    Attributes:
        stamp_ns: the set's reference stamp [ns].  Exact: the common stamp.  Approximate and imu_window:
            the latest member stamp (as ROS message_filters' ApproximateTime users do).  Latest: the
            primary message's stamp.  Collector: the (offset-corrected) stamp of the message that opened
            the set.
        members: input name -> item, only for inputs that contributed a message.
        stamps_ns: input name -> member stamp [ns] (offset-corrected for the collector).
        missing: inputs without a member, in input order; empty for complete sets.
        spread_ns: max - min member stamp [ns] (0 for a set with one member).
        unchanged: held inputs (zero-order hold, :mod:`edgefuse.sync.hold`) whose member is the same message
            as in the previous set.
    """

    stamp_ns: int
    members: dict[str, Any]
    stamps_ns: dict[str, int]
    missing: tuple[str, ...] = ()
    spread_ns: int = 0
    unchanged: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every input contributed a member."""
        return not self.missing


@dataclass(slots=True)
class InputStats:
    """Counters of one input.

    Attributes:
        received: messages pushed on this input.
        used: messages that became members of an emitted set (counted once even if a zero-order hold
            reuses them).
        queued: messages still held and not yet counted as used or dropped.
        dropped: drop reason -> count (see :data:`DROP_REASONS`).
        missing: emitted sets in which this input was missing (not a message count).
    """

    received: int = 0
    used: int = 0
    queued: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    missing: int = 0

    @property
    def dropped_total(self) -> int:
        """All drops of this input, whatever the reason."""
        return sum(self.dropped.values())

    def balanced(self) -> bool:
        """``received == used + dropped + queued``."""
        return self.received == self.used + self.dropped_total + self.queued


@dataclass(slots=True)
class SyncStats:
    """A snapshot of a synchronizer's counters.

    Attributes:
        policy: the policy name (``"exact"``, ``"approximate"`` ...).
        inputs: input name -> :class:`InputStats`.
        sets: sets emitted so far (complete and partial).
        partial_sets: emitted sets with at least one missing input.
    """

    policy: str
    inputs: dict[str, InputStats]
    sets: int = 0
    partial_sets: int = 0

    def balanced(self) -> bool:
        """The accounting invariant holds for every input."""
        return all(s.balanced() for s in self.inputs.values())

    def dropped(self) -> dict[str, int]:
        """Drops summed over inputs, by reason."""
        total: dict[str, int] = {}
        for s in self.inputs.values():
            for reason, n in s.dropped.items():
                total[reason] = total.get(reason, 0) + n
        return total


@runtime_checkable
class Synchronizer(Protocol):
    """What every synchronizer offers (see the module docstring for the accounting contract)."""

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input names, in the order used for missing lists and batch columns."""
        ...

    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        """Add one message; return the sets completed by it (often none), oldest first."""
        ...

    def flush(self) -> list[SyncSet]:
        """End of stream: emit what the policy can still emit; the rest of the queues is dropped."""
        ...

    def poll(self, now_ns: int) -> list[SyncSet]:
        """Clock tick (host monotonic ns): sets whose deadline passed (the collector); others return []."""
        ...

    @property
    def stats(self) -> SyncStats:
        """A snapshot of the counters."""
        ...


def as_stamp(stamp_ns: Any, input_name: str) -> int:
    """Return ``stamp_ns`` as a Python int; refuse floats, bools and non-numbers with :class:`SyncError`."""
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer):
        raise SyncError(
            f"stamp_ns must be integer nanoseconds, got {type(stamp_ns).__name__} {stamp_ns!r}",
            topic=input_name,
        )
    return int(stamp_ns)


def check_queue_size(queue_size: Any) -> list[str]:
    """Problems with a ``queue_size`` parameter (empty when valid)."""
    if isinstance(queue_size, bool) or not isinstance(queue_size, int | np.integer) or queue_size < 1:
        return [f"queue_size must be an integer >= 1, got {queue_size!r}"]
    return []


def check_inputs(names: Sequence[str], minimum: int) -> list[str]:
    """Problems with a list of input names (empty when valid)."""
    problems: list[str] = []
    names = tuple(names)
    if len(names) < minimum:
        problems.append(f"inputs needs at least {minimum} names, got {list(names)}")
    if not all(isinstance(n, str) and n for n in names):
        problems.append(f"inputs must be non-empty strings, got {list(names)}")
    elif len(set(names)) != len(names):
        problems.append(f"inputs must be unique, got {list(names)}")
    return problems


def check_nonneg_int(name: str, value: Any, *, allow_none: bool = False) -> list[str]:
    """Problems with an integer parameter that must be >= 0 (optionally ``None``)."""
    if value is None and allow_none:
        return []
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        suffix = " or None" if allow_none else ""
        return [f"{name} must be an integer >= 0 [ns]{suffix}, got {value!r}"]
    return []


class SyncBase:
    """Input bookkeeping and counters shared by the concrete synchronizers (not part of the public API)."""

    policy = "base"

    def __init__(self, inputs: Sequence[str]) -> None:
        names = tuple(inputs)
        self._inputs = names
        self._index = {name: k for k, name in enumerate(names)}
        n = len(names)
        self._received = [0] * n
        self._used = [0] * n
        self._missing = [0] * n
        self._drops: list[dict[str, int]] = [{} for _ in range(n)]
        self._sets = 0
        self._partial_sets = 0

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input names, in order."""
        return self._inputs

    def _key(self, name: str) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise SyncError(
                f"unknown input {name!r}; inputs are {list(self._inputs)}", topic=str(name)
            ) from None

    def _drop(self, k: int, reason: str, n: int = 1) -> None:
        if n:
            d = self._drops[k]
            d[reason] = d.get(reason, 0) + n

    def _queued_counts(self) -> list[int]:
        raise NotImplementedError

    def poll(self, now_ns: int) -> list[SyncSet]:
        """Clock-driven policies (the collector) release sets here; the others release only on push/flush."""
        return []

    @property
    def stats(self) -> SyncStats:
        """A snapshot of the counters (see :class:`SyncStats`)."""
        queued = self._queued_counts()
        per = {
            name: InputStats(
                received=self._received[k],
                used=self._used[k],
                queued=queued[k],
                dropped=dict(self._drops[k]),
                missing=self._missing[k],
            )
            for k, name in enumerate(self._inputs)
        }
        return SyncStats(self.policy, per, self._sets, self._partial_sets)
