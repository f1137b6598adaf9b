""":class:`BagSource`: a ROS 1 / ROS 2 (sqlite3, MCAP) recording as a :class:`~edgefuse.sources.base.Source`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgefuse.envelope import Envelope
from edgefuse.errors import EdgefuseError, SourceError
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets

#: distinct reasons kept per topic (more are counted under "other reasons"); first messages kept verbatim
_MAX_REASONS = 10
_FIRST = 5
_INDEX_PREFIX = re.compile(r"^message \d+ ")


@dataclass
class SkippedMessages:
    """Messages of one topic left out because they did not decode or convert: counted by reason."""

    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    first: list[str] = field(default_factory=list)

    def add(self, reason: str, index: int, recv_ns: int) -> None:
        self.count += 1
        key = reason if reason in self.reasons or len(self.reasons) < _MAX_REASONS else "other reasons"
        self.reasons[key] = self.reasons.get(key, 0) + 1
        if len(self.first) < _FIRST:
            self.first.append(f"message {index} (recorded {recv_ns} ns): {reason}")

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "reasons": dict(self.reasons), "first": list(self.first)}


def _reason(exc: Exception) -> str:
    if isinstance(exc, EdgefuseError):
        return _INDEX_PREFIX.sub("", exc.message)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"does not convert: {type(exc).__name__}" + (f": {text}" if text else "")


class BagSource:
    """A recording read through :func:`edgefuse.bag.open_bag`.

    Not live; ``stamp_ns`` is the header stamp where the message type has a header (else the record
    time), ``recv_ns`` the record time.  ``on_error``: a message that does not decode or convert stops
    the iteration with :class:`~edgefuse.errors.BagError` (``"raise"``, the default) or is left out and
    counted in :attr:`skipped` (``"skip"``: topic → :class:`SkippedMessages`, by reason), whatever the
    conversion raised.  A bag that turns out corrupt part-way raises either way.  ``fast_decode`` and
    other options go to the bag reader.
    """

    live = False
    stamp_clock: StampClock = "header"
    recv_clock: RecvClock = "recorded"
    suffixes: tuple[str, ...] = (".bag", ".mcap", ".db3")

    def __init__(self, path: str | Path | Sequence[str | Path], *, on_error: Literal["raise", "skip"] = "raise",
                 **reader_options: Any) -> None:
        if on_error not in {"raise", "skip"}:
            raise SourceError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.path = path
        self.on_error = on_error
        self._options = {"on_error": on_error, **reader_options}
        self._reader: Any = None
        self._offsets = TimeOffsets()
        self.skipped: dict[str, SkippedMessages] = {}
        self._problems: list[str] = []

    def open(self) -> BagSource:
        from edgefuse.bag import open_bag

        if self._reader is None:
            reader = open_bag(self.path, **self._options)
            reader.open()
            self._reader = reader
        return self

    def close(self) -> None:
        if self._reader is not None:
            self._problems = self.problems
            self._reader.close()
            self._reader = None

    @property
    def problems(self) -> list[str]:
        """Integrity problems the bag reader found (the recording disagrees with its own index, a CRC …),
        one line each; still available after the source is closed."""
        if self._reader is None:
            return list(self._problems)
        return [str(p) for p in getattr(self._reader, "problems", [])]

    def __enter__(self) -> BagSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def reader(self) -> Any:
        """The underlying :class:`edgefuse.bag.BagReader` (open)."""
        if self._reader is None:
            raise SourceError("the bag source is not open (use 'with source:' or .open())", file=str(self.path))
        return self._reader

    def topics(self) -> Mapping[str, SourceTopic]:
        return {t: SourceTopic(t, info.msgtype, int(info.count)) for t, info in self.reader.topics.items()}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self._offsets.set(offsets_ns)

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        apply = self._offsets.apply
        wanted = None if topics is None else list(topics)
        if self.on_error == "raise":
            for env in self.reader.envelopes(wanted):
                yield apply(env)
            return
        reader = self.reader
        # one message at a time, so that whatever a conversion raises skips that message only
        for raw in reader.messages(wanted):
            try:
                payload, stamp, converted = reader._convert(raw)  # the reader's own decode path
            except Exception as exc:  # counted by reason, reported; the run goes on
                self.skipped.setdefault(raw.topic, SkippedMessages()).add(_reason(exc), raw.index, raw.recv_ns)
                continue
            meta: dict[str, Any] = {"index": raw.index}
            if not converted:
                meta["unconverted"] = True
            yield apply(Envelope(topic=raw.topic, stamp_ns=stamp if stamp is not None else raw.recv_ns,
                                 recv_ns=raw.recv_ns, payload=payload, msgtype=raw.msgtype, meta=meta))
