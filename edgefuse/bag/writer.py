"""Writing ROS 2 bags (MCAP or sqlite3, rosbag2 metadata version 9) with rosbags.

Each topic's message definition and RIHS01 type hash are stored (MCAP schemas / the sqlite3
``message_definitions`` table), so Foxglove, ``ros2 bag`` and rosbags open the bag without the
types installed.  MCAP files are written by :class:`edgefuse.bag._mcap.CrcMcapStorage` (rosbags'
``Writer`` with edgefuse's MCAP storage), which sets the chunk, data-section and summary CRCs, so a
reader detects altered bytes instead of decoding them (rosbags' own MCAP storage leaves them 0).
``/tf_static`` gets the transient-local ("latched") QoS profile in
``offered_qos_profiles`` so rosbag2 players re-publish it latched.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from edgefuse.bag._errors import bag_errors
from edgefuse.bag._mcap import CrcMcapStorage
from edgefuse.errors import BagError, MessageError
from edgefuse.msgs.convert import from_payload
from edgefuse.msgs.serde import serialize
from edgefuse.msgs.typestore import get_typestore, normalize_msgtype

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.typesys.store import Typestore

__all__ = ["QOS_PRESETS", "BagWriter"]

_INFINITE = QosTime(sec=0, nsec=0)


def _qos(reliability: QosReliability, durability: QosDurability, depth: int) -> Qos:
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=durability,
        deadline=_INFINITE,
        lifespan=_INFINITE,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_INFINITE,
        avoid_ros_namespace_conventions=False,
    )


#: Named QoS profiles for :meth:`BagWriter.add_topic` (rclpy's presets of the same meaning).
QOS_PRESETS: dict[str, Qos] = {
    "default": _qos(QosReliability.RELIABLE, QosDurability.VOLATILE, 10),
    "sensor_data": _qos(QosReliability.BEST_EFFORT, QosDurability.VOLATILE, 5),
    "latched": _qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, 1),
}

_LATCHED_TOPICS = {"/tf_static"}


class _CrcWriter(Writer):
    """rosbags' rosbag2 writer whose MCAP storage writes CRCs."""

    STORAGE_PLUGINS: Mapping[StoragePlugin, Any] = MappingProxyType(
        {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: CrcMcapStorage})


def _is_rosbags_message(obj: Any) -> bool:
    return isinstance(getattr(obj, "__msgtype__", None), str)


class BagWriter:
    """Write a new ROS 2 bag folder at ``path`` (a context manager).

    Args:
        path: the bag folder to create (rosbag2 bags are folders; the storage file goes inside).
        storage: ``"mcap"`` (default) or ``"sqlite3"``.
        typestore: types to serialise with (default :func:`edgefuse.msgs.get_typestore`).
        overwrite: replace an existing bag folder (one with ``metadata.yaml``, or empty).
        compress: zstd-compress the storage (MCAP: per chunk, which MCAP readers handle transparently;
            sqlite3: per message).  Smaller files at some CPU cost while writing.

    Raises:
        BagError: ``path`` exists (without ``overwrite=True``), or is not a bag folder to overwrite.
        PermissionError: the parent folder is not writable (raised by :meth:`open`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        storage: Literal["mcap", "sqlite3"] = "mcap",
        typestore: Typestore | None = None,
        overwrite: bool = False,
        compress: bool = False,
    ) -> None:
        if storage not in {"mcap", "sqlite3"}:
            raise BagError(f"unknown storage {storage!r} (expected 'mcap' or 'sqlite3')", file=path)
        self.path = Path(path)
        self.storage = storage
        self.overwrite = overwrite
        self.compress = compress
        self.typestore = typestore if typestore is not None else get_typestore()
        self._writer: _CrcWriter | None = None
        self._connections: dict[str, tuple[Connection, str]] = {}
        self.counts: dict[str, int] = {}

    def open(self) -> BagWriter:
        """Create the bag folder and storage file."""
        if self._writer is not None:
            return self
        if self.path.exists():
            if not self.overwrite:
                raise BagError("output exists already; pass overwrite=True to replace it", file=self.path)
            is_bag = self.path.is_dir() and (
                (self.path / "metadata.yaml").exists() or not any(self.path.iterdir())
            )
            if not is_bag:
                raise BagError(
                    "refusing to overwrite: not a rosbag2 folder (no metadata.yaml)", file=self.path
                )
            shutil.rmtree(self.path)
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        with bag_errors(self.path, "cannot create bag"):
            writer = _CrcWriter(self.path, version=9, storage_plugin=plugin)
            if self.compress:
                mode = CompressionMode.STORAGE if self.storage == "mcap" else CompressionMode.MESSAGE
                writer.set_compression(mode, CompressionFormat.ZSTD)
            writer.open()
        self._writer = writer
        return self

    def close(self) -> None:
        """Finish the bag (writes the index/summary and ``metadata.yaml``); idempotent."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with bag_errors(self.path, "cannot finish bag"):
                writer.close()

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def _open_writer(self) -> _CrcWriter:
        if self._writer is None:
            raise BagError("bag writer is not open (use BagWriter(...) as a context manager)", file=self.path)
        return self._writer

    def add_topic(self, topic: str, msgtype: str, *, qos: str | None = None) -> None:
        """Declare ``topic`` with type ``msgtype`` (ROS 1 or ROS 2 spelling).

        ``qos`` names a :data:`QOS_PRESETS` profile recorded as the topic's offered QoS; by default
        ``/tf_static`` is ``"latched"`` and other topics record none (players use their defaults).

        Raises:
            BagError: topic already added, type unknown to the typestore, or unknown preset.
        """
        writer = self._open_writer
        name = normalize_msgtype(msgtype)
        if topic in self._connections:
            raise BagError(
                f"topic added twice (as {self._connections[topic][1]})", file=self.path, topic=topic
            )
        if name not in self.typestore.fielddefs:
            raise BagError(
                f"message type {name} is not in the writer's typestore", file=self.path, topic=topic
            )
        if qos is None and topic in _LATCHED_TOPICS:
            qos = "latched"
        if qos is not None and qos not in QOS_PRESETS:
            raise BagError(
                f"unknown QoS preset {qos!r}; choose from {sorted(QOS_PRESETS)}", file=self.path, topic=topic
            )
        profiles = [QOS_PRESETS[qos]] if qos is not None else []
        with bag_errors(self.path, f"cannot add topic {topic}", topic=topic):
            conn = writer.add_connection(topic, name, typestore=self.typestore, offered_qos_profiles=profiles)
        self._connections[topic] = (conn, name)
        self.counts[topic] = 0

    def write(self, topic: str, stamp_ns: int, message: Any) -> None:
        """Write one message at record time ``stamp_ns``.

        ``message`` is a rosbags message object or an edgefuse payload (converted with
        :func:`edgefuse.msgs.from_payload` using the writer's typestore).  A topic not yet added is
        added with the message's type.

        Raises:
            BagError: the message does not match the topic's type or cannot be serialised.
        """
        writer = self._open_writer
        try:
            msg = message if _is_rosbags_message(message) else from_payload(message, typestore=self.typestore)
        except MessageError as err:
            raise BagError(f"cannot convert payload: {err.message}", file=self.path, topic=topic) from None
        msgtype = normalize_msgtype(msg.__msgtype__)
        if topic not in self._connections:
            self.add_topic(topic, msgtype)
        conn, name = self._connections[topic]
        if msgtype != name:
            raise BagError(
                f"message of type {msgtype} written to a topic of type {name}",
                file=self.path,
                topic=topic,
                stamp_ns=stamp_ns,
            )
        try:
            data = serialize(msg, name, typestore=self.typestore)
        except MessageError as err:
            raise BagError(err.message, file=self.path, topic=topic, stamp_ns=stamp_ns) from None
        with bag_errors(self.path, "cannot write message", topic=topic):
            writer.write(conn, int(stamp_ns), data)
        self.counts[topic] += 1

    def write_raw(self, topic: str, stamp_ns: int, rawdata: bytes | memoryview) -> None:
        """Write an already CDR-serialised message to a topic added with :meth:`add_topic`.

        Used by sinks that serialise once and also digest the bytes.

        Raises:
            BagError: the topic was not added.
        """
        writer = self._open_writer
        if topic not in self._connections:
            raise BagError("write_raw() to a topic that was not added", file=self.path, topic=topic)
        conn, _ = self._connections[topic]
        with bag_errors(self.path, "cannot write message", topic=topic):
            writer.write(conn, int(stamp_ns), bytes(rawdata))
        self.counts[topic] += 1
