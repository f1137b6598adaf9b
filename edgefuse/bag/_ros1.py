"""The record structure of a ROS 1 bag (format 2.0), read independently of rosbags to cross-check it.

A ROS 1 bag has no checksums.  What can be checked is that its parts agree with each other:

* the bag header's ``chunk_count`` / ``conn_count`` with the chunk, chunk-info and connection records
  actually in the file;
* each chunk-info record (per-connection message counts, time range, chunk position) with the chunk
  record it describes and with the index-data records that follow that chunk (rosbags reads exactly
  as many index-data records after a chunk as its chunk info lists connections, and takes topic
  counts from the chunk infos and message positions from the index data);
* the records of each uncompressed or LZ4 chunk tile it exactly along its index: every index
  entry points at the start of a record, each record ends where the next indexed record (or a
  connection record) starts, and the last one at the chunk's end — so a changed length field, which
  would hand out a message with bytes cut off or added, is caught (bz2 chunks are not decompressed
  for this: bz2's own block CRCs catch altered bytes when rosbags reads them);
* the copy of each connection record inside the chunks (topic, type, md5sum) with the index
  section's, which rosbags reads (a changed type name would pass the md5 check: the md5 covers the
  definition, not the name);
* (``deep``) each chunk's contents with its index: the chunk decompresses to its declared size, every
  message record is listed by an index entry with the same connection and time, and every index
  entry points at such a record.

:func:`walk` reads the record headers (of bz2 chunks only those holding connection records are
decompressed, unless ``deep``) and
:func:`check` turns disagreements into :class:`~edgefuse.bag.integrity.IntegrityProblem` entries
naming the topics and counts concerned.  Changed bytes inside a message's payload cannot be detected
in an uncompressed or LZ4 chunk: a ROS 1 bag has no checksum for them.
"""

from __future__ import annotations

import bz2
import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from edgefuse.bag.integrity import IntegrityProblem
from edgefuse.errors import BagError

__all__ = ["Ros1Layout", "check", "walk"]

MAGIC = b"#ROSBAG V2.0\n"

OP_MSGDATA = 0x02
OP_BAGHEADER = 0x03
OP_IDXDATA = 0x04
OP_CHUNK = 0x05
OP_CHUNK_INFO = 0x06
OP_CONNECTION = 0x07


class _DamageError(BagError):
    """A record cannot be read (internal)."""


def _lz4(data: bytes) -> bytes:
    from lz4.frame import decompress

    return cast("bytes", decompress(data))


_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {"none": lambda d: d, "bz2": bz2.decompress, "lz4": _lz4}


def _fields(header: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(header):
        if pos + 4 > len(header):
            raise _DamageError("header field length cut off")
        (size,) = struct.unpack_from("<I", header, pos)
        pos += 4
        if pos + size > len(header):
            raise _DamageError("header field runs past its header")
        name, sep, value = header[pos : pos + size].partition(b"=")
        if not sep:
            raise _DamageError("header field without '='")
        out[name.decode(errors="replace")] = value
        pos += size
    return out


def _int(fields: dict[str, bytes], name: str, fmt: str) -> int:
    raw = fields.get(name)
    if raw is None or len(raw) != struct.calcsize(fmt):
        raise _DamageError(f"field {name!r} missing or of the wrong size")
    return int(struct.unpack(fmt, raw)[0])


def _time(fields: dict[str, bytes], name: str) -> int:
    raw = fields.get(name)
    if raw is None or len(raw) != 8:
        raise _DamageError(f"time field {name!r} missing or of the wrong size")
    sec, nsec = struct.unpack("<II", raw)
    return int(sec) * 1_000_000_000 + int(nsec)


def _record(data: bytes | mmap.mmap, pos: int, end: int) -> tuple[dict[str, bytes], int, int, int]:
    """``(header fields, op, data start, data end)`` of the record at ``pos`` (which must end by ``end``)."""
    if pos + 4 > end:
        raise _DamageError(f"record header length cut off at byte {pos}")
    (hlen,) = struct.unpack_from("<I", data, pos)
    if pos + 8 + hlen > end:
        raise _DamageError(f"record at byte {pos} has a header of {hlen} bytes, past the end")
    fields = _fields(bytes(data[pos + 4 : pos + 4 + hlen]))
    (dlen,) = struct.unpack_from("<I", data, pos + 4 + hlen)
    start = pos + 8 + hlen
    if start + dlen > end:
        raise _DamageError(f"record at byte {pos} has {dlen} data bytes, past the end")
    op_raw = fields.get("op")
    if op_raw is None or len(op_raw) != 1:
        raise _DamageError(f"record at byte {pos} has no op field")
    return fields, op_raw[0], start, start + dlen


@dataclass
class Ros1Chunk:
    """A chunk record and the index-data records that follow it."""

    offset: int
    compression: str
    size: int
    data_start: int
    data_end: int
    #: connection id → [(time ns, offset in the uncompressed chunk)] from the index-data records
    index: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: index-data records after this chunk (rosbags reads as many as the chunk info lists)
    index_records: int = 0
    #: (deep) connection id → [(time ns, offset)] of the message records actually in the chunk
    records: dict[int, list[tuple[int, int]]] | None = None
    #: (deep) connection records inside the chunk: id → (topic, type, md5sum)
    connections: dict[int, tuple[bytes, bytes, bytes]] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class Ros1ChunkInfo:
    """A chunk-info record: ``counts`` from all its (conn, count) entries; ``declared`` its ``count``
    field, ``read`` the entries rosbags reads (the first ``declared``)."""

    offset: int
    chunk_pos: int
    start_ns: int
    end_ns: int
    counts: dict[int, int]
    declared: int
    read: dict[int, int]


@dataclass
class Ros1Layout:
    """What :func:`walk` found in a ROS 1 bag."""

    size: int
    index_pos: int = 0
    conn_count: int = 0
    chunk_count: int = 0
    chunks: list[Ros1Chunk] = field(default_factory=list)
    connections: dict[int, str] = field(default_factory=dict)  # id → topic (index section)
    #: id → (topic, type, md5sum) from the connection headers of the index section
    connection_headers: dict[int, tuple[bytes, bytes, bytes]] = field(default_factory=dict)
    chunk_infos: list[Ros1ChunkInfo] = field(default_factory=list)
    #: framing damage: (byte offset, reason)
    damage: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    deep: bool = False

    def indexed_counts(self) -> dict[int, int]:
        """Messages per connection listed by the index-data records of every chunk in the file."""
        out: dict[int, int] = {}
        for chunk in self.chunks:
            for conn, entries in chunk.index.items():
                out[conn] = out.get(conn, 0) + len(entries)
        return out

    def topic(self, conn: int) -> str:
        return self.connections.get(conn, f"<connection {conn}>")


def walk(path: Path, *, deep: bool = False) -> Ros1Layout:
    """Read the record structure of the ROS 1 bag ``path`` (see the module doc).

    Raises:
        OSError: the file cannot be read.
    """
    with path.open("rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return _walk(b"", deep)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _walk(data, deep)


def _walk(data: bytes | mmap.mmap, deep: bool) -> Ros1Layout:
    layout = Ros1Layout(size=len(data), deep=deep)
    if data[:13] != MAGIC:
        layout.damage.append((0, "no '#ROSBAG V2.0' magic"))
        return layout
    size = len(data)
    try:
        fields, op, _, pos = _record(data, 13, size)
        if op != OP_BAGHEADER:
            raise _DamageError("the first record is not the bag header")
        layout.index_pos = _int(fields, "index_pos", "<Q")
        layout.conn_count = _int(fields, "conn_count", "<I")
        layout.chunk_count = _int(fields, "chunk_count", "<I")
    except _DamageError as err:
        layout.damage.append((13, f"bag header: {err}"))
        return layout
    if not pos <= layout.index_pos <= size:
        layout.damage.append((13, f"bag header puts the index at byte {layout.index_pos}, outside the data "
                                  f"({pos}..{size})"))
        return layout
    _walk_data(data, pos, layout)
    _walk_index(data, layout)
    for chunk in layout.chunks:
        if deep:
            _walk_chunk(data, chunk)
        elif chunk.compression == "none":
            chunk.problem = _check_tiling(data, chunk.data_start, chunk.data_end - chunk.data_start, chunk)
        elif chunk.compression == "lz4":
            try:
                raw = _lz4(data[chunk.data_start : chunk.data_end])
            except Exception as err:  # lz4 raises RuntimeError and others for corrupt frames
                chunk.problem = f"does not decompress ({type(err).__name__})"
                continue
            chunk.problem = _check_tiling(raw, 0, len(raw), chunk)
    if not deep:
        _find_connection_copies(data, layout)
    return layout


def _keep_connection(chunk: Ros1Chunk, fields: dict[str, bytes], inner: bytes) -> None:
    """Remember the copy of a connection record found inside ``chunk``."""
    header = _fields(inner)
    if header.get("topic", fields.get("topic")) != fields.get("topic"):
        raise _DamageError("a connection record names two different topics")
    chunk.connections[_int(fields, "conn", "<I")] = _connection_summary(header)


def _find_connection_copies(data: bytes | mmap.mmap, layout: Ros1Layout) -> None:
    """Index mode, bz2 chunks: decompress the few chunks that hold the connection records (those up to
    each connection's first indexed message) to compare them with the index section's copies."""
    found = {conn for chunk in layout.chunks for conn in chunk.connections}
    wanted = set(layout.connections) - found
    for chunk in layout.chunks:
        if not wanted:
            return
        if chunk.compression == "bz2" and chunk.problem is None:
            try:
                raw = bz2.decompress(data[chunk.data_start : chunk.data_end])
            except (OSError, ValueError, EOFError) as err:
                chunk.problem = f"does not decompress ({type(err).__name__})"
                continue
            pos = 0
            try:
                while pos < len(raw):
                    message = _message_header(raw, pos, len(raw))
                    if message is not None:
                        pos = message[2]
                        continue
                    fields, op, start, stop = _record(raw, pos, len(raw))
                    if op == OP_CONNECTION:
                        _keep_connection(chunk, fields, raw[start:stop])
                    pos = stop
            except _DamageError as err:
                chunk.problem = f"records inside do not parse at byte {pos} of the chunk ({err})"
            wanted -= set(chunk.connections)
        wanted -= set(chunk.index)  # a connection's record comes no later than its first message


def _check_tiling(buf: bytes | mmap.mmap, base: int, size: int, chunk: Ros1Chunk) -> str | None:
    """Why the records of a chunk (``size`` bytes at ``buf[base:]``) do not tile it along its index, or None."""
    if size != chunk.size and chunk.compression != "none":
        return f"decompresses to {size} bytes, not the {chunk.size} its header says"
    offsets = sorted(o for entries in chunk.index.values() for _, o in entries)
    pos = 0
    try:
        for offset in [*offsets, size]:
            while pos < offset:  # records between indexed messages must be connection records
                fields, op, start, stop = _record(buf, base + pos, base + size)
                if op != OP_CONNECTION:
                    what = "a message record the index does not list" if op == OP_MSGDATA else f"a record of op {op}"
                    return f"holds {what} at byte {pos} of the chunk"
                _keep_connection(chunk, fields, bytes(buf[start:stop]))
                pos = stop - base
            if pos != offset:
                return f"an index entry points into the middle of a record (byte {offset} of the chunk)"
            if offset == size:
                break
            (hlen,) = struct.unpack_from("<I", buf, base + offset)
            if offset + 8 + hlen > size:
                return f"the record at byte {offset} of the chunk runs past its end"
            (dlen,) = struct.unpack_from("<I", buf, base + offset + 4 + hlen)
            pos = offset + 8 + hlen + dlen
            if pos > size:
                return f"the record at byte {offset} of the chunk runs past its end (a length field was altered)"
    except _DamageError as err:
        return f"records inside do not parse ({err})"
    return None


def _walk_data(data: bytes | mmap.mmap, pos: int, layout: Ros1Layout) -> None:
    end = layout.index_pos
    chunk: Ros1Chunk | None = None
    while pos < end:
        try:
            fields, op, start, stop = _record(data, pos, end)
            if op == OP_CHUNK:
                chunk = Ros1Chunk(pos, fields.get("compression", b"?").decode(errors="replace"),
                                  _int(fields, "size", "<I"), start, stop)
                layout.chunks.append(chunk)
            elif op == OP_IDXDATA:
                if chunk is None:
                    raise _DamageError("index data before any chunk")
                if _int(fields, "ver", "<I") != 1:
                    raise _DamageError("index data of an unknown version")
                conn = _int(fields, "conn", "<I")
                count = _int(fields, "count", "<I")
                if count * 12 != stop - start:
                    raise _DamageError(f"index data lists {count} messages in {stop - start} bytes")
                entries = struct.iter_unpack("<III", data[start:stop])
                chunk.index.setdefault(conn, []).extend((sec * 1_000_000_000 + nsec, o) for sec, nsec, o in entries)
                chunk.index_records += 1
            elif op == OP_CONNECTION:
                pass  # some writers repeat connection records in the data section
            else:
                raise _DamageError(f"unexpected record (op {op}) in the data section")
        except _DamageError as err:
            layout.damage.append((pos, str(err)))
            return
        pos = stop


def _walk_index(data: bytes | mmap.mmap, layout: Ros1Layout) -> None:
    pos = layout.index_pos
    size = len(data)
    while pos < size:
        try:
            fields, op, start, stop = _record(data, pos, size)
            if op == OP_CONNECTION:
                conn = _int(fields, "conn", "<I")
                topic = fields.get("topic", b"").decode(errors="replace")
                layout.connections[conn] = topic
                inner = _fields(bytes(data[start:stop]))
                layout.connection_headers[conn] = _connection_summary(inner)
                if inner.get("topic", fields.get("topic")) != fields.get("topic"):
                    layout.notes.append(f"connection {conn}: its record names topic {topic!r}, its connection "
                                        f"header {inner.get('topic', b'').decode(errors='replace')!r}")
            elif op == OP_CHUNK_INFO:
                if _int(fields, "ver", "<I") != 1:
                    raise _DamageError("chunk info of an unknown version")
                declared = _int(fields, "count", "<I")
                if (stop - start) % 8:
                    raise _DamageError(f"chunk info data of {stop - start} bytes is not a list of (conn, count)")
                pairs = list(struct.iter_unpack("<II", data[start:stop]))
                counts: dict[int, int] = {}
                for conn, n in pairs:
                    counts[conn] = counts.get(conn, 0) + n
                read: dict[int, int] = {}  # what rosbags reads: the first `declared` pairs
                for conn, n in pairs[:declared]:
                    read[conn] = read.get(conn, 0) + n
                layout.chunk_infos.append(Ros1ChunkInfo(
                    pos, _int(fields, "chunk_pos", "<Q"), _time(fields, "start_time"), _time(fields, "end_time"),
                    counts, declared, read))
            else:
                raise _DamageError(f"unexpected record (op {op}) in the index section")
        except _DamageError as err:
            layout.damage.append((pos, str(err)))
            return
        pos = stop


def _walk_chunk(data: bytes | mmap.mmap, chunk: Ros1Chunk) -> None:
    decompress = _DECOMPRESS.get(chunk.compression)
    if decompress is None:
        chunk.problem = f"unknown compression {chunk.compression!r}"
        return
    try:
        raw = decompress(data[chunk.data_start : chunk.data_end])
    except Exception as err:  # bz2/lz4 raise OSError, ValueError, RuntimeError …
        chunk.problem = f"does not decompress ({type(err).__name__})"
        return
    if len(raw) != chunk.size:
        chunk.problem = f"decompresses to {len(raw)} bytes, not the {chunk.size} its header says"
        return
    records: dict[int, list[tuple[int, int]]] = {}
    pos = 0
    size = len(raw)
    try:
        while pos < size:
            message = _message_header(raw, pos, size)
            if message is not None:  # the common case, parsed without building a field dict
                conn, stamp, stop = message
                records.setdefault(conn, []).append((stamp, pos))
                pos = stop
                continue
            fields, op, start, stop = _record(raw, pos, size)
            if op == OP_MSGDATA:
                records.setdefault(_int(fields, "conn", "<I"), []).append((_time(fields, "time"), pos))
            elif op == OP_CONNECTION:
                _keep_connection(chunk, fields, raw[start:stop])
            else:
                raise _DamageError(f"unexpected record (op {op})")
            pos = stop
    except _DamageError as err:
        chunk.problem = f"records inside do not parse at byte {pos} of the chunk ({err})"
    chunk.records = records


_U32 = struct.Struct("<I")
_TIME = struct.Struct("<II")


def _message_header(raw: bytes, pos: int, size: int) -> tuple[int, int, int] | None:
    """``(conn, time ns, record end)`` when the record at ``pos`` is a message record whose header holds
    exactly the fields op, conn and time in well-formed sizes (as every writer writes them); None
    otherwise (the caller then parses it generically and reports what is wrong)."""
    if pos + 4 > size:
        return None
    (hlen,) = _U32.unpack_from(raw, pos)
    end = pos + 4 + hlen
    if end + 4 > size:
        return None
    op = conn = stamp = None
    k = pos + 4
    while k < end:
        if k + 4 > end:
            return None
        (flen,) = _U32.unpack_from(raw, k)
        k += 4
        if flen == 4 and raw.startswith(b"op=", k):
            op = raw[k + 3]
        elif flen == 9 and raw.startswith(b"conn=", k):
            (conn,) = _U32.unpack_from(raw, k + 5)
        elif flen == 13 and raw.startswith(b"time=", k):
            sec, nsec = _TIME.unpack_from(raw, k + 5)
            stamp = sec * 1_000_000_000 + nsec
        else:
            return None
        k += flen
    if k != end or op != OP_MSGDATA or conn is None or stamp is None:
        return None
    (dlen,) = _U32.unpack_from(raw, end)
    stop = end + 4 + dlen
    return (int(conn), int(stamp), stop) if stop <= size else None


def _connection_summary(fields: dict[str, bytes]) -> tuple[bytes, bytes, bytes]:
    return fields.get("topic", b""), fields.get("type", b""), fields.get("md5sum", b"")


# ---------------------------------------------------------------------------------------------- check
def _topics_text(layout: Ros1Layout, counts: dict[int, int]) -> str:
    per_topic: dict[str, int] = {}
    for conn, n in counts.items():
        per_topic[layout.topic(conn)] = per_topic.get(layout.topic(conn), 0) + n
    return ", ".join(f"{t} ({n})" for t, n in sorted(per_topic.items()))


def check(layout: Ros1Layout, file: str) -> list[IntegrityProblem]:
    """Disagreements between the parts of a ROS 1 bag (see the module doc), one problem each."""
    out: list[IntegrityProblem] = []

    def add(kind: str, message: str, **kw: object) -> None:
        out.append(IntegrityProblem(kind, message, file, **kw))  # type: ignore[arg-type]

    for offset, reason in layout.damage:
        add("damaged", f"damaged at byte {offset} of {layout.size}: {reason}", offset=offset)
    if layout.damage and (not layout.chunks or not layout.chunk_infos):
        return out
    if layout.conn_count != len(layout.connections):
        add("header", f"bag header says {layout.conn_count} connections, the index section holds "
                      f"{len(layout.connections)}")
    found = len(layout.chunks)
    if not layout.chunk_count == found == len(layout.chunk_infos):
        add("header", f"bag header says {layout.chunk_count} chunks; the file holds {found} chunk records and "
                      f"{len(layout.chunk_infos)} chunk-info records")
    # rosbags reads the first chunk_count chunk infos; the rest are never read
    read_infos = layout.chunk_infos[: layout.chunk_count]
    unread_infos = layout.chunk_infos[layout.chunk_count :]
    by_pos = {c.offset: c for c in layout.chunks}
    described: set[int] = set()
    for k, info in enumerate(layout.chunk_infos):
        chunk = by_pos.get(info.chunk_pos)
        if chunk is None:
            add("chunk_info", f"chunk info {k + 1} points to byte {info.chunk_pos}, where no chunk starts "
                              f"(messages {_topics_text(layout, info.counts)} cannot be read)",
                offset=info.offset)
            continue
        if info.chunk_pos in described:
            add("chunk_info", f"chunk info {k + 1} describes the chunk at byte {info.chunk_pos} a second time",
                offset=info.offset)
            continue
        described.add(info.chunk_pos)
        indexed = {conn: len(v) for conn, v in chunk.index.items()}
        if info.declared != len(info.counts):
            unread = {c: n for c, n in info.counts.items() if c not in info.read}
            add("chunk_info", f"chunk info {k + 1} declares {info.declared} connections but holds {len(info.counts)} "
                              f"entries; the messages of the others ({_topics_text(layout, unread) or 'none'}) are "
                              "never read", offset=info.offset)
        if info.counts != indexed:
            add("chunk_info", f"chunk at byte {chunk.offset}: its chunk info counts {_topics_text(layout, info.counts)}"
                              f" but its index data lists {_topics_text(layout, indexed)}", offset=chunk.offset)
        if len(info.read) != chunk.index_records:
            add("chunk_info", f"chunk at byte {chunk.offset}: chunk info lists {len(info.read)} connections, "
                              f"{chunk.index_records} index-data records follow the chunk", offset=chunk.offset)
        times = [t for v in chunk.index.values() for t, _ in v]
        if times and (min(times) < info.start_ns or max(times) > info.end_ns):
            add("chunk_info", f"chunk at byte {chunk.offset}: index times {min(times)}..{max(times)} ns lie outside "
                              f"its chunk info's range {info.start_ns}..{info.end_ns} ns", offset=chunk.offset)
        bad = sum(1 for v in chunk.index.values() for _, o in v if o >= chunk.size)
        if bad:
            add("index", f"chunk at byte {chunk.offset}: {bad} index entries point past its {chunk.size} bytes",
                offset=chunk.offset)
    read_positions = {i.chunk_pos for i in read_infos}
    for chunk in layout.chunks:
        if chunk.offset not in read_positions:
            lost = {conn: len(v) for conn, v in chunk.index.items()}
            add("unindexed_chunk", f"chunk at byte {chunk.offset} is not listed by the bag's index "
                                   f"(messages {_topics_text(layout, lost) or 'unknown'} are never read)",
                offset=chunk.offset)
    if unread_infos:
        add("header", f"{len(unread_infos)} chunk-info record(s) beyond the header's chunk_count are never read")
    unknown = {conn for c in layout.chunks for conn in c.index} - set(layout.connections)
    if unknown:
        add("index", f"index data refers to connection(s) {sorted(unknown)} that the index section does not "
                     "define")
    for chunk in layout.chunks:
        if chunk.problem is not None:
            held = _topics_text(layout, {conn: len(v) for conn, v in chunk.index.items()})
            add("chunk", f"chunk at byte {chunk.offset} ({held}): {chunk.problem}", offset=chunk.offset)
    for note in layout.notes:
        add("connection", note)
    for chunk in layout.chunks:
        for conn, header in chunk.connections.items():
            copy = layout.connection_headers.get(conn)
            if copy is not None and copy != header:
                add("connection", f"connection {conn} ({layout.topic(conn)}): the copy inside the chunk at byte "
                                  f"{chunk.offset} differs from the index section's (topic, type or md5sum altered)",
                    offset=chunk.offset)
    if layout.deep:
        _check_contents(layout, add)
    return out


def _check_contents(layout: Ros1Layout, add: Callable[..., None]) -> None:
    for chunk in layout.chunks:
        if chunk.records is None:
            continue
        indexed = {(conn, t, o) for conn, v in chunk.index.items() for t, o in v}
        present = {(conn, t, o) for conn, v in chunk.records.items() for t, o in v}
        missing = present - indexed
        dangling = indexed - present
        if missing:
            counts: dict[int, int] = {}
            for conn, _, _ in missing:
                counts[conn] = counts.get(conn, 0) + 1
            add("unindexed_messages", f"chunk at byte {chunk.offset} holds messages its index does not list "
                                      f"({_topics_text(layout, counts)}; they are never read)", offset=chunk.offset)
        if dangling:
            counts = {}
            for conn, _, _ in dangling:
                counts[conn] = counts.get(conn, 0) + 1
            add("index", f"chunk at byte {chunk.offset}: index entries with no matching message record "
                         f"({_topics_text(layout, counts)})", offset=chunk.offset)
