"""The recording sink.

:class:`RecordSink` serialises each output once (CDR, the ROS 2 wire format), keeps a running SHA-256
digest per topic (stamp + bytes, so two runs can be compared bit for bit) and, when given a path,
writes the messages to a ROS 2 bag (MCAP by default) that Foxglove, ``ros2 bag`` and rosbags open.

Beside the outputs it writes what a viewer needs to show them (:mod:`edgefuse.sinks.viewer`): the rig's
transforms on ``/tf_static`` and its cameras' CameraInfo (given the ``rig``), and a viewable companion of
each image output whose encoding viewers do not display.  These extra topics get digests and counts of
their own; the outputs' digests do not change.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgefuse.errors import EdgefuseError, ReplayError
from edgefuse.msgs.edges import msgtype_of
from edgefuse.rig import Rig
from edgefuse.sinks.viewer import Extra, ViewerExtras


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
    """Serialise outputs once; digest them; optionally record them to a ROS 2 bag.

    ``rig``: the pipeline's rig, for ``/tf_static`` and CameraInfo; ``viewer_extras=False`` writes the
    outputs only (no transforms, CameraInfo or viewable companions).
    """

    def __init__(self, out: str | Path | None = None, *, storage: str = "mcap", rig: Rig | None = None,
                 viewer_extras: bool = True) -> None:
        self.rig = rig
        self.viewer_extras = viewer_extras
        self._extras: ViewerExtras | None = None
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
        if self.viewer_extras:
            self._extras = ViewerExtras(dict(outputs), self.rig)

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None:
        extras = self._extras
        if extras is not None:
            for extra in extras.before(topic, stamp_ns, payload):
                self._write_extra(extra, stamp_ns)
        self._write_output(topic, stamp_ns, payload)
        if extras is not None:
            for extra in extras.after(topic, stamp_ns, payload):
                self._write_extra(extra, stamp_ns)

    def _write_output(self, topic: str, stamp_ns: int, payload: Any) -> None:
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

    def _write_extra(self, extra: Extra, stamp_ns: int) -> None:
        """Write one viewer extra (declaring its topic the first time); a failure is noted, not raised."""
        assert self._extras is not None
        try:
            if extra.topic not in self._msgtypes:
                self._msgtypes[extra.topic] = extra.msgtype
                self._digests[extra.topic] = hashlib.sha256()
                self.counts[extra.topic] = 0
                if self._writer is not None:
                    self._writer.add_topic(extra.topic, extra.msgtype, qos=extra.qos)
            self._write_output(extra.topic, stamp_ns, extra.payload)
        except EdgefuseError as exc:
            self._extras.skipped[extra.topic] = f"not written: {exc}"

    @property
    def extras_skipped(self) -> dict[str, str]:
        """Viewer extras not written, topic → why (empty when all were)."""
        return {} if self._extras is None else dict(self._extras.skipped)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None

    def digests(self) -> dict[str, str]:
        """Per-topic SHA-256 (hex) over every output message's stamp and CDR bytes, in order."""
        return {topic: d.hexdigest() for topic, d in self._digests.items()}
