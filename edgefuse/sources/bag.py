""":class:`BagSource`: a ROS 1 / ROS 2 (sqlite3, MCAP) recording as a :class:`~edgefuse.sources.base.Source`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets


class BagSource:
    """A recording read through :func:`edgefuse.bag.open_bag`.

    Not live; ``stamp_ns`` is the header stamp where the message type has a header (else the record
    time), ``recv_ns`` the record time.  ``on_error``/``fast_decode`` go to the bag reader.
    """

    live = False
    stamp_clock: StampClock = "header"
    recv_clock: RecvClock = "recorded"
    suffixes: tuple[str, ...] = (".bag", ".mcap", ".db3")

    def __init__(self, path: str | Path | Sequence[str | Path], **reader_options: Any) -> None:
        self.path = path
        self._options = reader_options
        self._reader: Any = None
        self._offsets = TimeOffsets()

    def open(self) -> BagSource:
        from edgefuse.bag import open_bag

        if self._reader is None:
            reader = open_bag(self.path, **self._options)
            reader.open()
            self._reader = reader
        return self

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

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
        for env in self.reader.envelopes(None if topics is None else list(topics)):
            yield apply(env)
