"""The recording sink.

:class:`RecordSink` serialises each output once (CDR, the ROS 2 wire format), keeps a running SHA-256
digest per topic (stamp + bytes, so two runs can be compared bit for bit) and, when given a path,
writes the messages to a ROS 2 bag (MCAP by default) that Foxglove, ``ros2 bag`` and rosbags open.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgefuse.errors import ReplayError
from edgefuse.msgs.edges import msgtype_of


def check_writable_output(path: Path) -> None:
    """Fail early, with one clear line, when an output bag cannot be written."""
    parent = path.parent if str(path.parent) else Path()
    if path.exists():
        raise ReplayError("output already exists; remove it or choose another name", file=path)
    if not parent.exists():
        raise ReplayError(f"cannot write output: folder {parent} does not exist", file=path)
    if not parent.is_dir():
        raise ReplayError(f"cannot write output: {parent} is not a folder", file=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReplayError(f"cannot write output: folder {parent} is not writable", file=path)


class RecordSink:
    """Serialise outputs once; digest them; optionally record them to a ROS 2 bag."""

    def __init__(self, out: str | Path | None = None, *, storage: str = "mcap") -> None:
        self.out = None if out is None else Path(out)
        self.storage = storage
        if self.out is not None:
            check_writable_output(self.out)
        self._writer: Any = None
        self._msgtypes: dict[str, str] = {}
        self._digests: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.bytes_written = 0

    def open(self, outputs: Mapping[str, str]) -> None:
        """Prepare ``outputs`` (topic → edge type): message types, digests and, with a path, the bag."""
        for topic, edge in outputs.items():
            msgtype = msgtype_of(edge)
            if msgtype is None:
                raise ReplayError(f"output {topic}: edge type {edge} has no ROS message type to publish")
            self._msgtypes[topic] = msgtype
            self._digests[topic] = hashlib.sha256()
            self.counts[topic] = 0
        if self.out is not None:
            from edgefuse.bag import BagWriter

            self._writer = BagWriter(self.out, storage=self.storage)  # type: ignore[arg-type]
            self._writer.__enter__()
            for topic, msgtype in self._msgtypes.items():
                self._writer.add_topic(topic, msgtype)

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None:
        from edgefuse.msgs import from_payload, serialize

        msgtype = self._msgtypes[topic]
        raw = serialize(from_payload(payload, msgtype=msgtype), msgtype)
        digest = self._digests[topic]
        digest.update(int(stamp_ns).to_bytes(8, "little", signed=True))
        digest.update(raw)
        self.counts[topic] += 1
        if self._writer is not None:
            self._writer.write_raw(topic, stamp_ns, raw)
            self.bytes_written += len(raw)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None

    def digests(self) -> dict[str, str]:
        """Per-topic SHA-256 (hex) over every output message's stamp and CDR bytes, in order."""
        return {topic: d.hexdigest() for topic, d in self._digests.items()}
