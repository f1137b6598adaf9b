"""Small bags for the integrity, repair and fuzz tests, and a tiny independent ROS 1 record parser
used to find the bytes to edit (loaded with importlib by the test modules: tests/bag is no package).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.typesys import Stores, get_typestore

from edgefuse.bag import BagIntegrityWarning, BagWriter, IntegrityProblem, open_bag
from edgefuse.bag._mcap import CrcMcapStorage

TOPICS = ("/imu", "/odom", "/fix")
Message = tuple[str, int, bytes]


def _text(i: int) -> str:
    return f"message {i:03d} " * (1 + i % 3)


def write_ros1(path: Path, *, n: int = 15, compression: str | None = None, chunk_threshold: int = 1 << 20,
               topics: tuple[str, ...] = TOPICS) -> list[Message]:
    """A ROS 1 bag of ``n`` std_msgs/String messages round-robin on ``topics`` (rosbags' writer);
    ``compression`` "bz2"/"lz4"; a small ``chunk_threshold`` gives several chunks.  The messages written."""
    store = get_typestore(Stores.ROS1_NOETIC)
    string = store.types["std_msgs/msg/String"]
    out: list[Message] = []
    writer = Ros1Writer(path)
    if compression is not None:
        writer.set_compression(Ros1Writer.CompressionFormat[compression.upper()])
    writer.chunk_threshold = chunk_threshold
    with writer:
        conns = [writer.add_connection(t, "std_msgs/msg/String", typestore=store) for t in topics]
        for i in range(n):
            raw = bytes(store.serialize_ros1(string(data=_text(i)), "std_msgs/msg/String"))
            stamp = 1_000_000_000 + i * 100_000_000
            writer.write(conns[i % len(topics)], stamp, raw)
            out.append((topics[i % len(topics)], stamp, raw))
    return out


@contextmanager
def mcap_chunk_size(size: int) -> Iterator[None]:
    """Make BagWriter close MCAP chunks after ``size`` bytes (several chunks from a small bag)."""
    old = CrcMcapStorage.chunk_size
    CrcMcapStorage.chunk_size = size
    try:
        yield
    finally:
        CrcMcapStorage.chunk_size = old


def write_ros2(folder: Path, *, n: int = 15, storage: str = "mcap", compress: bool = False,
               chunk_size: int = 1 << 20, topics: tuple[str, ...] = TOPICS) -> tuple[Path, list[Message]]:
    """A ROS 2 bag (BagWriter) of ``n`` std_msgs/String messages; ``(storage file, messages written)``."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    string = store.types["std_msgs/msg/String"]
    out: list[Message] = []
    with mcap_chunk_size(chunk_size), BagWriter(folder, storage=storage, compress=compress,  # type: ignore[arg-type]
                                                typestore=store) as writer:
        for i in range(n):
            stamp = 1_000_000_000 + i * 100_000_000
            msg = string(data=_text(i))
            writer.write(topics[i % len(topics)], stamp, msg)
            out.append((topics[i % len(topics)], stamp, bytes(store.serialize_cdr(msg, "std_msgs/msg/String"))))
    (file,) = [p for p in folder.iterdir() if p.suffix in {".mcap", ".db3"}]
    return file, out


def read_all(path: Path, *, strict: bool = False, verify: str = "index",
             quiet: bool = True) -> tuple[list[Message], list[IntegrityProblem]]:
    """Every message of ``path`` (bag order) and the problems the reader reported (``quiet``: their
    warnings are swallowed; else they go out to the caller)."""
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", BagIntegrityWarning)
        with open_bag(path, strict=strict, verify=verify) as bag:  # type: ignore[arg-type]
            messages = [(m.topic, m.recv_ns, bytes(m.rawdata)) for m in bag.messages()]
            return messages, list(bag.problems)


@dataclass(frozen=True)
class Record:
    """A top-level ROS 1 record: where it starts, its op, its header fields (name → (value offset,
    value)) and where its data lies."""

    pos: int
    op: int
    fields: dict[str, tuple[int, bytes]]
    data_start: int
    data_end: int


def ros1_records(data: bytes) -> list[Record]:
    """The top-level records of an intact ROS 1 bag (after the 13-byte magic)."""
    out: list[Record] = []
    pos = 13
    while pos < len(data):
        (hlen,) = struct.unpack_from("<I", data, pos)
        fields: dict[str, tuple[int, bytes]] = {}
        k = pos + 4
        while k < pos + 4 + hlen:
            (flen,) = struct.unpack_from("<I", data, k)
            name, _, value = data[k + 4 : k + 4 + flen].partition(b"=")
            fields[name.decode()] = (k + 4 + len(name) + 1, value)
            k += 4 + flen
        (dlen,) = struct.unpack_from("<I", data, pos + 4 + hlen)
        start = pos + 8 + hlen
        out.append(Record(pos, fields["op"][1][0], fields, start, start + dlen))
        pos = start + dlen
    return out


def chunk_payload_ranges(data: bytes) -> list[tuple[int, int]]:
    """File byte ranges of the message payloads inside the uncompressed chunks of a ROS 1 bag."""
    ranges: list[tuple[int, int]] = []
    for rec in ros1_records(data):
        if rec.op != 5 or rec.fields["compression"][1] != b"none":
            continue
        pos = rec.data_start
        while pos < rec.data_end:
            (hlen,) = struct.unpack_from("<I", data, pos)
            header = data[pos + 4 : pos + 4 + hlen]
            (dlen,) = struct.unpack_from("<I", data, pos + 4 + hlen)
            start = pos + 8 + hlen
            if b"op=\x02" in header:
                ranges.append((start, start + dlen))
            pos = start + dlen
    return ranges
