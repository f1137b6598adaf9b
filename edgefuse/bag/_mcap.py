"""MCAP container code of edgefuse: a writer that stores CRCs, and a scanner that verifies them and
recovers what is intact in a truncated or damaged file.

Message *decoding* stays with rosbags; this module only deals with the container (records, chunks,
indexes, CRCs), following the MCAP specification (https://mcap.dev/spec):

* :class:`McapFileWriter` writes an indexed, chunked MCAP whose chunk, data-section and summary CRCs
  are all set (rosbags' own MCAP writer leaves them 0, so corruption decodes as altered data).
  :class:`CrcMcapStorage` plugs it into ``rosbags.rosbag2.Writer`` as its MCAP storage.
* :func:`check_tail` reads the footer and verifies the summary CRC (cheap; done on every open).
* :func:`scan` walks the data section record by record, verifies every chunk CRC and the
  data-section CRC, and hands each record that verified to a sink (e.g. a :class:`McapFileWriter`:
  that is how a truncated file is read and how ``edgefuse repair`` writes a fixed copy).

The data-section CRC covers every byte from the start of the file up to the DataEnd record (the
convention of the reference ``mcap`` library); the summary CRC covers the summary section and the
footer up to its ``summary_crc`` field.
"""

from __future__ import annotations

import mmap
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from edgefuse.errors import BagError, InputDataError, ParameterError

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.rosbag2 import CompressionMode

__all__ = [
    "MAGIC",
    "CrcMcapStorage",
    "McapFileWriter",
    "ScanResult",
    "ScannedChunk",
    "TailInfo",
    "check_tail",
    "scan",
]

MAGIC = b"\x89MCAP0\r\n"

OP_HEADER = 0x01
OP_FOOTER = 0x02
OP_SCHEMA = 0x03
OP_CHANNEL = 0x04
OP_MESSAGE = 0x05
OP_CHUNK = 0x06
OP_MESSAGE_INDEX = 0x07
OP_CHUNK_INDEX = 0x08
OP_ATTACHMENT = 0x09
OP_ATTACHMENT_INDEX = 0x0A
OP_STATISTICS = 0x0B
OP_METADATA = 0x0C
OP_METADATA_INDEX = 0x0D
OP_SUMMARY_OFFSET = 0x0E
OP_DATA_END = 0x0F

_NAMES = {OP_HEADER: "header", OP_FOOTER: "footer", OP_SCHEMA: "schema", OP_CHANNEL: "channel",
          OP_MESSAGE: "message", OP_CHUNK: "chunk", OP_MESSAGE_INDEX: "message index", OP_CHUNK_INDEX: "chunk index",
          OP_ATTACHMENT: "attachment", OP_ATTACHMENT_INDEX: "attachment index", OP_STATISTICS: "statistics",
          OP_METADATA: "metadata", OP_METADATA_INDEX: "metadata index", OP_SUMMARY_OFFSET: "summary offset",
          OP_DATA_END: "data end"}
#: opcodes the specification defines (0x80-0xFF are user records and are skipped)
_KNOWN_OPS = frozenset(range(0x01, 0x10))
#: record lengths above this are treated as damage (a flipped high byte), never allocated
_MAX_RECORD = 1 << 40
FOOTER_LEN = 1 + 8 + 20 + len(MAGIC)  # opcode, length, summary_start, summary_offset_start, summary_crc, magic
DEFAULT_CHUNK_SIZE = 1 << 20


# ---------------------------------------------------------------------------------------------- codecs
def _zstd_compress(data: bytes) -> bytes:
    if sys.version_info >= (3, 14):  # pragma: no cover - depends on the interpreter
        from compression import zstd
    else:
        from backports import zstd
    return zstd.compress(data)


def _zstd_decompress(data: bytes) -> bytes:
    if sys.version_info >= (3, 14):  # pragma: no cover - depends on the interpreter
        from compression import zstd
    else:
        from backports import zstd
    return zstd.decompress(data)


def _lz4_decompress(data: bytes) -> bytes:
    from lz4.frame import decompress

    return cast("bytes", decompress(data))


_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "": lambda data: data,
    "zstd": _zstd_decompress,
    "lz4": _lz4_decompress,
}


# ---------------------------------------------------------------------------------------------- encoding
def _u16(v: int) -> bytes:
    return struct.pack("<H", v)


def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


def _u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def _str(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return _u32(len(raw)) + raw


def _map(items: dict[str, str]) -> bytes:
    body = b"".join(_str(k) + _str(v) for k, v in items.items())
    return _u32(len(body)) + body


def _record(op: int, body: bytes) -> bytes:
    return bytes((op,)) + _u64(len(body)) + body


class _Cursor:
    """Little-endian reads from a bytes object; any read past the end raises ``ValueError``."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise InputDataError(f"field of {n} bytes runs past the end of its record")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self) -> str:
        return self.take(self.u32()).decode()

    def bytes_(self) -> bytes:
        return self.take(self.u32())

    def string_map(self) -> dict[str, str]:
        end = self.u32() + self.pos
        if end > len(self.data):
            raise InputDataError("map runs past the end of its record")
        out: dict[str, str] = {}
        while self.pos < end:
            key = self.string()
            out[key] = self.string()
        if self.pos != end:
            raise InputDataError("map length does not match its entries")
        return out

    def done(self) -> bool:
        return self.pos == len(self.data)


# ---------------------------------------------------------------------------------------------- writer
@dataclass
class _ChunkIndex:
    start_ns: int
    end_ns: int
    offset: int
    length: int
    index_offsets: dict[int, int]
    index_length: int
    compression: str
    compressed_size: int
    uncompressed_size: int


class McapFileWriter:
    """Write an indexed, chunked MCAP with chunk, data-section and summary CRCs to ``stream``.

    Schema and channel records go into the data section when they are added (outside chunks, so that
    a damaged chunk never takes a channel definition with it), again at the start of every chunk that
    holds messages of that channel (there the chunk CRC covers them, so a reader of a truncated file
    can verify which topic a message belongs to), and into the summary.  Messages go into chunks of
    about ``chunk_size`` uncompressed bytes, compressed with ``compression`` (``"zstd"`` or ``""``),
    each followed by its message indexes.  :meth:`finish` writes DataEnd, the summary (schemas,
    channels, chunk indexes, metadata indexes, statistics), summary offsets and the footer.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        profile: str = "ros2",
        library: str = "",
        compression: str = "zstd",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if compression not in {"", "zstd"}:
            raise ParameterError(f"compression must be '' or 'zstd', not {compression!r}")
        self._out = stream
        self.compression = compression
        self.chunk_size = chunk_size
        self._pos = 0
        self._crc = 0
        self._schemas: dict[int, bytes] = {}
        self._channels: dict[int, bytes] = {}
        self._channel_schema: dict[int, int] = {}
        self._chunk_declared: set[tuple[int, int]] = set()  # (opcode, id) already in the open chunk
        self._chunk_indexes: list[_ChunkIndex] = []
        self._metadata_indexes: list[bytes] = []
        self._counts: dict[int, int] = {}
        self._start_ns: int | None = None
        self._end_ns = 0
        self._chunk: list[bytes] = []  # the open chunk's records, joined when it is written
        self._chunk_len = 0
        self._chunk_msgs: dict[int, list[tuple[int, int]]] = {}
        self._chunk_start = 0
        self._chunk_end = 0
        self.finished = False
        self._emit(MAGIC)
        self._emit(_record(OP_HEADER, _str(profile) + _str(library)))

    @property
    def message_count(self) -> int:
        """Messages written so far."""
        return sum(self._counts.values())

    @property
    def chunk_count(self) -> int:
        """Chunks written so far (the open one not included)."""
        return len(self._chunk_indexes)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._crc = zlib.crc32(data, self._crc)
        self._pos += len(data)

    def add_schema(self, schema_id: int, name: str, encoding: str, data: bytes) -> None:
        """Declare schema ``schema_id`` (must be > 0; declaring the same id again is ignored)."""
        if schema_id in self._schemas:
            return
        rec = _record(OP_SCHEMA, _u16(schema_id) + _str(name) + _str(encoding) + _str(data))
        self._schemas[schema_id] = rec
        self._emit(rec)

    def add_channel(self, channel_id: int, schema_id: int, topic: str, encoding: str,
                    metadata: dict[str, str]) -> None:
        """Declare channel ``channel_id`` (declaring the same id again is ignored)."""
        if channel_id in self._channels:
            return
        rec = _record(OP_CHANNEL, _u16(channel_id) + _u16(schema_id) + _str(topic) + _str(encoding) + _map(metadata))
        self._channels[channel_id] = rec
        self._channel_schema[channel_id] = schema_id
        self._counts.setdefault(channel_id, 0)
        self._emit(rec)

    def add_message(self, channel_id: int, log_time: int, data: bytes | memoryview, *,
                    publish_time: int | None = None, sequence: int = 0) -> None:
        """Append one message to the open chunk (closing it once it exceeds ``chunk_size``)."""
        if channel_id not in self._channels:
            raise ParameterError(f"message on channel {channel_id}, which was not added")
        if not self._chunk_msgs:
            self._chunk_start = self._chunk_end = log_time
        else:
            self._chunk_start = min(self._chunk_start, log_time)
            self._chunk_end = max(self._chunk_end, log_time)
        if (OP_CHANNEL, channel_id) not in self._chunk_declared:
            schema_id = self._channel_schema[channel_id]
            if schema_id in self._schemas and (OP_SCHEMA, schema_id) not in self._chunk_declared:
                self._append(self._schemas[schema_id])
                self._chunk_declared.add((OP_SCHEMA, schema_id))
            self._append(self._channels[channel_id])
            self._chunk_declared.add((OP_CHANNEL, channel_id))
        self._chunk_msgs.setdefault(channel_id, []).append((log_time, self._chunk_len))
        body = (_u16(channel_id) + _u32(sequence) + _u64(log_time)
                + _u64(log_time if publish_time is None else publish_time))
        self._append(bytes((OP_MESSAGE,)) + _u64(len(body) + len(data)) + body)
        self._append(data if isinstance(data, bytes) else bytes(data))
        self._counts[channel_id] += 1
        self._start_ns = log_time if self._start_ns is None else min(self._start_ns, log_time)
        self._end_ns = max(self._end_ns, log_time)
        if self._chunk_len > self.chunk_size:
            self.flush_chunk()

    def _append(self, data: bytes) -> None:
        self._chunk.append(data)
        self._chunk_len += len(data)

    def add_metadata(self, name: str, metadata: dict[str, str]) -> None:
        """Write a Metadata record (indexed in the summary)."""
        rec = _record(OP_METADATA, _str(name) + _map(metadata))
        offset = self._pos
        self._emit(rec)
        self._metadata_indexes.append(_record(OP_METADATA_INDEX, _u64(offset) + _u64(len(rec)) + _str(name)))

    def flush_chunk(self) -> None:
        """Write the open chunk (if it holds anything) and its message indexes."""
        if not self._chunk_msgs:
            return
        raw = b"".join(self._chunk)
        packed = _zstd_compress(raw) if self.compression == "zstd" else raw
        body = (_u64(self._chunk_start) + _u64(self._chunk_end) + _u64(len(raw)) + _u32(zlib.crc32(raw))
                + _str(self.compression) + _u64(len(packed)))
        chunk_offset = self._pos
        self._emit(bytes((OP_CHUNK,)) + _u64(len(body) + len(packed)) + body)
        self._emit(packed)
        chunk_length = self._pos - chunk_offset
        index_offsets: dict[int, int] = {}
        for channel_id in sorted(self._chunk_msgs):
            entries = sorted(self._chunk_msgs[channel_id])
            index_offsets[channel_id] = self._pos
            pairs = b"".join(_u64(t) + _u64(o) for t, o in entries)
            self._emit(_record(OP_MESSAGE_INDEX, _u16(channel_id) + _u32(len(pairs)) + pairs))
        self._chunk_indexes.append(_ChunkIndex(
            self._chunk_start, self._chunk_end, chunk_offset, chunk_length, index_offsets,
            self._pos - chunk_offset - chunk_length, self.compression, len(packed), len(raw)))
        self._chunk = []
        self._chunk_len = 0
        self._chunk_msgs = {}
        self._chunk_declared = set()

    def finish(self) -> None:
        """Close the last chunk and write DataEnd, the summary, the summary offsets and the footer."""
        if self.finished:
            return
        self.flush_chunk()
        self._emit(_record(OP_DATA_END, _u32(self._crc)))
        summary_start = self._pos
        summary = bytearray()
        groups: list[tuple[int, int, int]] = []

        def group(op: int, records: list[bytes]) -> None:
            if records:
                start = summary_start + len(summary)
                for rec in records:
                    summary.extend(rec)
                groups.append((op, start, summary_start + len(summary) - start))

        group(OP_SCHEMA, [self._schemas[k] for k in sorted(self._schemas)])
        group(OP_CHANNEL, [self._channels[k] for k in sorted(self._channels)])
        group(OP_CHUNK_INDEX, [self._chunk_index_record(ci) for ci in self._chunk_indexes])
        group(OP_METADATA_INDEX, self._metadata_indexes)
        counts = b"".join(_u16(k) + _u64(v) for k, v in sorted(self._counts.items()))
        stats = (_u64(self.message_count) + _u16(len(self._schemas)) + _u32(len(self._channels)) + _u32(0)
                 + _u32(len(self._metadata_indexes)) + _u32(len(self._chunk_indexes))
                 + _u64(self._start_ns or 0) + _u64(self._end_ns) + _u32(len(counts)) + counts)
        group(OP_STATISTICS, [_record(OP_STATISTICS, stats)])
        summary_offset_start = summary_start + len(summary)
        for op, start, length in groups:
            summary.extend(_record(OP_SUMMARY_OFFSET, bytes((op,)) + _u64(start) + _u64(length)))
        footer_head = bytes((OP_FOOTER,)) + _u64(20) + _u64(summary_start) + _u64(summary_offset_start)
        crc = zlib.crc32(footer_head, zlib.crc32(bytes(summary)))
        self._out.write(bytes(summary))
        self._out.write(footer_head + _u32(crc) + MAGIC)
        self.finished = True

    @staticmethod
    def _chunk_index_record(ci: _ChunkIndex) -> bytes:
        offsets = b"".join(_u16(k) + _u64(v) for k, v in sorted(ci.index_offsets.items()))
        body = (_u64(ci.start_ns) + _u64(ci.end_ns) + _u64(ci.offset) + _u64(ci.length) + _u32(len(offsets))
                + offsets + _u64(ci.index_length) + _str(ci.compression) + _u64(ci.compressed_size)
                + _u64(ci.uncompressed_size))
        return _record(OP_CHUNK_INDEX, body)


def _library() -> str:
    try:
        ours = version("edgefuse")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        ours = "unknown"
    return f"edgefuse-{ours} (rosbags-{version('rosbags')})"


class CrcMcapStorage:
    """MCAP storage for ``rosbags.rosbag2.Writer`` that writes CRCs (see :class:`McapFileWriter`).

    Implements the storage-writer protocol rosbags' ``Writer`` uses (``path``, ``add_msgtype``,
    ``add_connection``, ``write``, ``close``, ``abort``), with the same file layout choices as
    rosbags' own MCAP storage: schema ids in order of first use, channel id = connection id, the
    ``offered_qos_profiles`` channel metadata and the ``rosbag2`` metadata record.
    """

    #: uncompressed bytes after which a chunk is closed (rosbags' storage uses the same 1 MiB)
    chunk_size = DEFAULT_CHUNK_SIZE

    def __init__(self, path: Path, compression: CompressionMode) -> None:
        from rosbags.rosbag2 import CompressionMode

        self.path = path / f"{path.name}.mcap"
        self._file = self.path.open("xb")
        self._writer = McapFileWriter(
            self._file, library=_library(), compression="zstd" if compression == CompressionMode.STORAGE else "",
            chunk_size=self.chunk_size)
        self._schema_ids: dict[str, int] = {}

    def add_msgtype(self, connection: Connection) -> None:
        from rosbags.interfaces import MessageDefinitionFormat

        schema_id = len(self._schema_ids) + 1
        self._schema_ids[connection.msgtype] = schema_id
        encoding = "ros2msg" if connection.msgdef.format == MessageDefinitionFormat.MSG else "ros2idl"
        self._writer.add_schema(schema_id, connection.msgtype, encoding, connection.msgdef.data.encode())

    def add_connection(self, connection: Connection, offered_qos_profiles: str) -> None:
        fmt = str(getattr(connection.ext, "serialization_format", "cdr"))
        self._writer.add_channel(connection.id, self._schema_ids[connection.msgtype], connection.topic, fmt,
                                 {"offered_qos_profiles": offered_qos_profiles})

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        self._writer.add_message(connection.id, timestamp, data)

    def close(self, version: int, metadata: str) -> None:
        del version  # the metadata text carries it
        try:
            self._writer.add_metadata("rosbag2", {"serialized_metadata": metadata})
            self._writer.finish()
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------------------------------- tail check
@dataclass(frozen=True, slots=True)
class TailInfo:
    """What the end of an MCAP file says (see :func:`check_tail`).

    Attributes:
        size: file size in bytes.
        complete: the file ends with a footer and the end magic.
        summary_start / summary_offset_start / summary_crc: footer fields (0 when absent).
        summary_ok: None when there is no summary CRC to check, else whether it matched.
        problem: why the tail is unusable (truncated, bad footer, bad summary offset), else None.
    """

    size: int
    complete: bool
    summary_start: int = 0
    summary_offset_start: int = 0
    summary_crc: int = 0
    summary_ok: bool | None = None
    problem: str | None = None


def check_tail(path: Path) -> TailInfo:
    """Read the footer of ``path`` and verify the summary CRC when it is set.

    Raises:
        OSError: the file cannot be read.
    """
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        if size < len(MAGIC) + FOOTER_LEN:
            return TailInfo(size, False, problem=f"only {size} bytes: no footer")
        f.seek(size - FOOTER_LEN)
        tail = f.read(FOOTER_LEN)
        if tail[-8:] != MAGIC:
            return TailInfo(size, False, problem="no end magic (the file is truncated or its end is damaged)")
        if tail[:9] != bytes((OP_FOOTER,)) + _u64(20):
            return TailInfo(size, False, problem="footer record is damaged")
        summary_start, summary_offset_start, summary_crc = struct.unpack_from("<QQI", tail, 9)
        footer_start = size - FOOTER_LEN
        if summary_start and not len(MAGIC) < summary_start <= footer_start:
            return TailInfo(size, False, summary_start, summary_offset_start, summary_crc,
                            problem=f"footer points to a summary at byte {summary_start}, outside the file")
        if summary_offset_start and not summary_start <= summary_offset_start <= footer_start:
            return TailInfo(size, False, summary_start, summary_offset_start, summary_crc,
                            problem=f"footer points to summary offsets at byte {summary_offset_start}, outside "
                                    "the summary")
        if not summary_crc:
            return TailInfo(size, True, summary_start, summary_offset_start, summary_crc)
        crc = 0
        if summary_start:
            f.seek(summary_start)
            remaining = footer_start - summary_start
            while remaining:
                block = f.read(min(remaining, 1 << 20))
                if not block:
                    break
                crc = zlib.crc32(block, crc)
                remaining -= len(block)
        crc = zlib.crc32(tail[:25], crc)
        ok = crc == summary_crc
        return TailInfo(size, True, summary_start, summary_offset_start, summary_crc, ok,
                        None if ok else "summary (the index) fails its CRC check")


# ---------------------------------------------------------------------------------------------- scanner
class ScanSink(Protocol):
    """Receives the records :func:`scan` verified, in file order."""

    def add_schema(self, schema_id: int, name: str, encoding: str, data: bytes) -> None: ...

    def add_channel(self, channel_id: int, schema_id: int, topic: str, encoding: str,
                    metadata: dict[str, str]) -> None: ...

    def add_message(self, channel_id: int, log_time: int, data: bytes | memoryview, *,
                    publish_time: int | None = None, sequence: int = 0) -> None: ...

    def add_metadata(self, name: str, metadata: dict[str, str]) -> None: ...


@dataclass
class ScannedChunk:
    """One chunk record met by :func:`scan`.

    ``status``: ``"ok"`` (CRC verified), ``"no_crc"`` (readable, but its CRC is 0: unverifiable),
    ``"crc_mismatch"`` or ``"damaged"`` (does not decompress or parse; see ``problem``).  Messages of
    chunks that are neither ok nor no_crc are not handed to the sink.
    """

    number: int
    offset: int
    length: int
    start_ns: int
    end_ns: int
    compression: str
    status: str = "ok"
    problem: str | None = None
    counts: dict[int, int] = field(default_factory=dict)
    #: messages per channel by the message index records that follow the chunk
    index_counts: dict[int, int] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.status in {"ok", "no_crc"}


@dataclass
class ScanResult:
    """What :func:`scan` found in the data section.

    Attributes:
        size: file size.
        profile / library: from the header record.
        stop_offset: where sequential reading ended: the DataEnd record (or the footer of a file without
            DataEnd) for an intact data section, else the offset of the first incomplete/damaged record.
        stop_reason: None when the data section was read to its end, else why reading stopped there.
        data_end: a DataEnd record was reached.
        data_crc_stored / data_crc_computed: the DataEnd CRC (0: none) and the CRC computed up to it.
        chunks: every chunk record met, in file order.
        schemas: schema id → (name, encoding); channels: channel id → (topic, schema id).
        counts: messages handed to the sink, per channel (chunks that verified plus loose messages).
        dropped_records: records skipped because they were damaged (named in ``notes``).
    """

    size: int
    profile: str = ""
    library: str = ""
    stop_offset: int = 0
    stop_reason: str | None = None
    data_end: bool = False
    data_crc_stored: int = 0
    data_crc_computed: int = 0
    chunks: list[ScannedChunk] = field(default_factory=list)
    schemas: dict[int, tuple[str, str]] = field(default_factory=dict)
    channels: dict[int, tuple[str, int]] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    start_ns: int | None = None
    end_ns: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())

    @property
    def data_crc_ok(self) -> bool | None:
        """None when there is no data-section CRC to compare, else whether it matched."""
        if not self.data_end or not self.data_crc_stored:
            return None
        return self.data_crc_stored == self.data_crc_computed

    @property
    def bad_chunks(self) -> list[ScannedChunk]:
        return [c for c in self.chunks if not c.usable]

    def topic(self, channel_id: int) -> str:
        return self.channels.get(channel_id, (f"<channel {channel_id}>", 0))[0]


class _DamageError(BagError):
    """A record of the data section cannot be read (internal to :func:`scan`)."""


def _parse_schema(body: _Cursor) -> tuple[int, str, str, bytes]:
    schema_id = body.u16()
    name = body.string()
    encoding = body.string()
    data = body.bytes_()
    return schema_id, name, encoding, data


def _parse_channel(body: _Cursor) -> tuple[int, int, str, str, dict[str, str]]:
    channel_id = body.u16()
    schema_id = body.u16()
    topic = body.string()
    encoding = body.string()
    metadata = body.string_map()
    return channel_id, schema_id, topic, encoding, metadata


def _parse_message(body: _Cursor) -> tuple[int, int, int, int, bytes]:
    channel_id = body.u16()
    sequence = body.u32()
    log_time = body.u64()
    publish_time = body.u64()
    return channel_id, sequence, log_time, publish_time, body.data[body.pos :]


class _Scanner:
    def __init__(self, data: bytes | mmap.mmap, sink: ScanSink | None) -> None:
        self.sink = sink
        self.data = data
        self.result = ScanResult(size=len(self.data))
        self.crc = 0
        self.crc_pos = 0
        # id → (name, encoding, data, verified by a chunk CRC)
        self.schemas: dict[int, tuple[str, str, bytes, bool]] = {}
        # id → (schema id, topic, encoding, metadata, verified by a chunk CRC)
        self.channels: dict[int, tuple[int, str, str, dict[str, str], bool]] = {}
        self.declared: set[tuple[int, int]] = set()

    def crc_to(self, pos: int) -> int:
        while pos > self.crc_pos:
            step = min(pos - self.crc_pos, 1 << 24)
            self.crc = zlib.crc32(self.data[self.crc_pos : self.crc_pos + step], self.crc)
            self.crc_pos += step
        return self.crc

    def record_at(self, pos: int) -> tuple[int, int, int]:
        """``(opcode, body start, body end)`` of the record at ``pos``; _DamageError when incomplete."""
        size = len(self.data)
        if pos + 9 > size:
            raise _DamageError("incomplete record header")
        op = self.data[pos]
        length = int(struct.unpack_from("<Q", self.data, pos + 1)[0])
        if op not in _KNOWN_OPS and op < 0x80:
            raise _DamageError(f"unknown record type 0x{op:02x}")
        if length > _MAX_RECORD or pos + 9 + length > size:
            raise _DamageError(f"incomplete {_NAMES.get(op, f'0x{op:02x}')} record ({length} bytes declared, "
                               f"{size - pos - 9} left)")
        return op, pos + 9, pos + 9 + length

    def run(self) -> ScanResult:
        res = self.result
        data = self.data
        if data[:8] != MAGIC:
            res.stop_reason = "no MCAP magic at the start"
            return res
        pos = 8
        try:
            op, start, end = self.record_at(pos)
            if op != OP_HEADER:
                raise _DamageError("the first record is not a header")
            head = _Cursor(data[start:end])
            try:
                res.profile = head.string()
                res.library = head.string()
            except (ValueError, UnicodeDecodeError) as err:
                raise _DamageError(f"header record does not parse ({err})") from None
            pos = end
            while True:
                if pos == len(data):
                    raise _DamageError("the file ends without a DataEnd record or footer")
                op, start, end = self.record_at(pos)
                if op == OP_DATA_END:
                    res.data_end = True
                    res.data_crc_computed = self.crc_to(pos)
                    if end - start >= 4:
                        res.data_crc_stored = int(struct.unpack_from("<I", data, start)[0])
                    res.stop_offset = pos
                    return res
                if op in {OP_FOOTER, OP_SUMMARY_OFFSET, OP_CHUNK_INDEX, OP_STATISTICS}:
                    # a summary without DataEnd (allowed by old writers): the data section ends here
                    res.stop_offset = pos
                    return res
                self.record(op, pos, start, end)
                pos = end
        except _DamageError as err:
            res.stop_offset = pos
            res.stop_reason = str(err)
            return res

    # -- definitions
    def schema(self, body: _Cursor, verified: bool) -> None:
        schema_id, name, encoding, sdata = _parse_schema(body)
        old = self.schemas.get(schema_id)
        if old is not None and old[:3] != (name, encoding, sdata):
            if old[3] and not verified:
                return  # keep the copy a chunk CRC vouched for
            self.result.notes.append(f"schema {schema_id} has differing copies in the file; the "
                                     f"{'CRC-checked' if verified else 'later'} one is used")
        if old is None or verified or not old[3]:
            self.schemas[schema_id] = (name, encoding, sdata, verified)
            self.result.schemas[schema_id] = (name, encoding)

    def channel(self, body: _Cursor, verified: bool) -> None:
        channel_id, schema_id, topic, encoding, metadata = _parse_channel(body)
        old = self.channels.get(channel_id)
        if old is not None and old[:4] != (schema_id, topic, encoding, metadata):
            if old[4] and not verified:
                return
            self.result.notes.append(f"channel {channel_id} has differing copies in the file; the "
                                     f"{'CRC-checked' if verified else 'later'} one is used")
        if old is None or verified or not old[4]:
            self.channels[channel_id] = (schema_id, topic, encoding, metadata, verified)
            self.result.channels[channel_id] = (topic, schema_id)

    def declare(self, channel_id: int) -> None:
        """Hand channel ``channel_id`` (and its schema) to the sink before its first message."""
        if self.sink is None or (OP_CHANNEL, channel_id) in self.declared:
            return
        schema_id, topic, encoding, metadata, _ = self.channels[channel_id]
        if schema_id and (OP_SCHEMA, schema_id) not in self.declared and schema_id in self.schemas:
            name, sencoding, sdata, _ = self.schemas[schema_id]
            self.sink.add_schema(schema_id, name, sencoding, sdata)
            self.declared.add((OP_SCHEMA, schema_id))
        self.sink.add_channel(channel_id, schema_id, topic, encoding, metadata)
        self.declared.add((OP_CHANNEL, channel_id))

    def record(self, op: int, pos: int, start: int, end: int) -> None:
        body = _Cursor(self.data[start:end])
        try:
            if op == OP_SCHEMA:
                self.schema(body, verified=False)
            elif op == OP_CHANNEL:
                self.channel(body, verified=False)
            elif op == OP_MESSAGE:
                msg = _parse_message(body)
                if msg[0] not in self.channels:
                    raise InputDataError(f"message on undeclared channel {msg[0]}")
                self.message(msg)
            elif op == OP_CHUNK:
                self.chunk(pos, body, end - pos)
            elif op == OP_METADATA:
                name = body.string()
                metadata = body.string_map()
                if self.sink is not None:
                    self.sink.add_metadata(name, metadata)
            elif op == OP_MESSAGE_INDEX:
                channel_id = body.u16()
                entries = body.u32()
                body.take(entries)
                if not body.done() or entries % 16:
                    raise InputDataError("message index length does not match its record")
                if self.result.chunks:
                    self.result.chunks[-1].index_counts[channel_id] = entries // 16
        except (ValueError, UnicodeDecodeError, struct.error) as err:
            # the record's frame is intact (its length fits), only its content is bad: skip it
            self.result.notes.append(f"damaged record of type 0x{op:02x} at byte {pos} skipped ({err})")

    def message(self, msg: tuple[int, int, int, int, bytes]) -> None:
        channel_id, sequence, log_time, publish_time, payload = msg
        res = self.result
        res.counts[channel_id] = res.counts.get(channel_id, 0) + 1
        res.start_ns = log_time if res.start_ns is None else min(res.start_ns, log_time)
        res.end_ns = log_time if res.end_ns is None else max(res.end_ns, log_time)
        if self.sink is not None:
            self.declare(channel_id)
            self.sink.add_message(channel_id, log_time, payload, publish_time=publish_time, sequence=sequence)

    def chunk(self, pos: int, body: _Cursor, length: int) -> None:
        start_ns = body.u64()
        end_ns = body.u64()
        usize = body.u64()
        crc = body.u32()
        compression = body.string()
        csize = body.u64()
        info = ScannedChunk(len(self.result.chunks), pos, length, start_ns, end_ns, compression)
        self.result.chunks.append(info)
        if body.pos + csize != len(body.data):
            info.status, info.problem = "damaged", "compressed size does not match the chunk record"
            return
        decompress = _DECOMPRESS.get(compression)
        if decompress is None:
            info.status, info.problem = "damaged", f"unknown compression {compression!r}"
            return
        try:
            raw = decompress(body.take(csize))
        except Exception as err:  # each decompressor has its own error types
            info.status, info.problem = "damaged", f"does not decompress ({type(err).__name__})"
            return
        if len(raw) != usize:
            info.status, info.problem = "damaged", f"decompresses to {len(raw)} bytes, not {usize}"
            return
        if crc and zlib.crc32(raw) != crc:
            info.status, info.problem = "crc_mismatch", "fails its CRC check (its data were altered)"
            return
        if not crc:
            info.status = "no_crc"
        msgs: list[tuple[int, int, int, int, bytes]] = []
        inner = _Cursor(raw)
        saved = (dict(self.schemas), dict(self.channels), dict(self.result.schemas), dict(self.result.channels))
        try:
            while not inner.done():
                op = inner.take(1)[0]
                rec = _Cursor(inner.take(inner.u64()))
                if op == OP_MESSAGE:
                    msgs.append(_parse_message(rec))
                elif op == OP_SCHEMA:
                    self.schema(rec, verified=bool(crc))
                elif op == OP_CHANNEL:
                    self.channel(rec, verified=bool(crc))
            undeclared = {m[0] for m in msgs} - set(self.channels)
            if undeclared:
                raise InputDataError(f"messages on undeclared channel(s) {sorted(undeclared)}")
        except (ValueError, UnicodeDecodeError, struct.error) as err:
            self.schemas, self.channels, self.result.schemas, self.result.channels = saved
            info.status, info.problem = "damaged", f"records inside do not parse ({err})"
            return
        for msg in msgs:
            info.counts[msg[0]] = info.counts.get(msg[0], 0) + 1
            self.message(msg)


def scan(path: Path, sink: ScanSink | None = None) -> ScanResult:
    """Walk the data section of the MCAP file ``path``, verifying chunk CRCs and the data-section CRC.

    Records that verify (schemas, channels, metadata, messages of chunks whose CRC matches or is 0,
    loose messages) are handed to ``sink`` in file order; damaged chunks are skipped and listed; the
    walk stops at the first record whose frame is incomplete or unreadable (truncation).

    Raises:
        OSError: the file cannot be read.
    """
    with path.open("rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return _Scanner(b"", sink).run()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _Scanner(data, sink).run()


def read_header(path: Path) -> tuple[str, str] | None:
    """``(profile, library)`` of the MCAP file ``path``, or None when it does not start like one."""
    with path.open("rb") as f:
        head = f.read(8 + 9)
        if len(head) < 17 or head[:8] != MAGIC or head[8] != OP_HEADER:
            return None
        length = int(struct.unpack_from("<Q", head, 9)[0])
        if length > 1 << 20:
            return None
        body = _Cursor(f.read(length))
    try:
        return body.string(), body.string()
    except (ValueError, UnicodeDecodeError):
        return None


def recover(src: Path, dst: Path, *, compression: str = "zstd", library: str | None = None) -> ScanResult:
    """Write every record of ``src`` that :func:`scan` verifies into a new indexed MCAP ``dst`` (with
    CRCs), keeping schema/channel ids, message times, sequence numbers and metadata records.

    Raises:
        OSError: ``src`` cannot be read or ``dst`` cannot be written (``dst`` must not exist).
    """
    header = read_header(src)
    if header is None:
        return ScanResult(size=src.stat().st_size, stop_reason="no MCAP magic and header at the start")
    profile, original = header
    with dst.open("xb") as f:
        writer = McapFileWriter(f, profile=profile, compression=compression,
                                library=library if library is not None else f"{_library()} from {original}")
        res = scan(src, sink=writer)
        writer.finish()
    return res


def describe_chunk(res: ScanResult, chunk: ScannedChunk) -> str:
    """``chunk 3 of 12 (byte 1234, log time 1.000 .. 2.000 s, topics /a, /b)`` for messages."""
    span = f"log time {chunk.start_ns / 1e9:.3f} .. {chunk.end_ns / 1e9:.3f} s"
    channels = chunk.counts or chunk.index_counts
    topics = ", ".join(sorted({res.topic(c) for c in channels})) if channels else ""
    where = f"chunk {chunk.number + 1} of {len(res.chunks)} (byte {chunk.offset}, {span}"
    return where + (f", topics {topics})" if topics else ")")


def stats_summary(res: ScanResult) -> dict[str, Any]:
    """Plain-data view of a scan for reports."""
    return {
        "size": res.size,
        "stop_offset": res.stop_offset,
        "stop_reason": res.stop_reason,
        "chunks": len(res.chunks),
        "bad_chunks": len(res.bad_chunks),
        "messages": res.message_count,
    }
