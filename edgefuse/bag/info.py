"""Per-topic statistics of a bag: counts, stamp ranges, rates, gaps, out-of-order and duplicates.

Stamps come from the message header when the type starts with ``std_msgs/Header`` (read at a fixed
offset without decoding the message: CDR = 4-byte encapsulation, int32 sec, uint32 nanosec;
ROS 1 = uint32 seq, uint32 sec, uint32 nsec) and from the bag record time otherwise; each topic
says which (``stamp_source``).  A message too short for the fast path is decoded fully.

The bag is opened with ``verify="full"``: every chunk is checked against the bag's index (ROS 1) or
its CRC and the data-section CRC (MCAP), and the messages read are counted against those the bag
lists.  Problems are listed in :attr:`BagInfo.problems` (``strict=True`` raises
:class:`~edgefuse.bag.BagIntegrityError` instead); a truncated MCAP is summarised from what is
recoverable, with a problem saying so.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgefuse.bag.integrity import BagIntegrityWarning, IntegrityProblem
from edgefuse.bag.reader import BagReader, PathsArg, open_bag
from edgefuse.msgs.convert import stamp_of
from edgefuse.time import NS_PER_S

__all__ = ["BagInfo", "TopicStats", "bag_info", "format_info"]

StampSource = Literal["header", "record"]


@dataclass(frozen=True, slots=True)
class TopicStats:
    """Statistics of one topic.

    Attributes:
        msgtype: normalised type name.
        count: messages.
        stamp_source: ``"header"`` (header stamps) or ``"record"`` (bag record times).
        first_ns / last_ns: smallest / largest stamp (None when the topic is empty).
        mean_rate_hz: (count - 1) / (last - first) in Hz, 0.0 for fewer than two distinct stamps.
        max_gap_ns: largest difference between consecutive stamps after sorting them.
        out_of_order: messages whose stamp is smaller than the previous message's (record order).
        duplicates: messages whose stamp equals an earlier message's stamp on the topic.
    """

    msgtype: str
    count: int
    stamp_source: StampSource
    first_ns: int | None
    last_ns: int | None
    mean_rate_hz: float
    max_gap_ns: int
    out_of_order: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class BagInfo:
    """Summary of a bag: storage, record-time span and per-topic :class:`TopicStats`."""

    paths: list[Path]
    storage: str
    start_ns: int | None
    end_ns: int | None
    message_count: int
    topics: dict[str, TopicStats] = field(default_factory=dict)
    #: message types used in the bag that neither the bag nor the typestore defines: their messages
    #: cannot be decoded (stamps fall back to record time); register their .msg definitions to fix.
    undefined_types: list[str] = field(default_factory=list)
    #: integrity problems: the bag disagrees with its own index, fails a CRC check or is truncated
    problems: list[IntegrityProblem] = field(default_factory=list)
    #: MCAP: "verified" (every CRC present and matching), "absent" (no CRCs: altered bytes cannot be
    #: detected), "partial"; None for other storages
    crc: str | None = None
    #: a truncated/damaged MCAP summarised from its intact chunks: where reading stopped, and why
    recovered: dict[str, Any] | None = None

    @property
    def duration_ns(self) -> int:
        """Record-time span (last - first record time), 0 for an empty bag."""
        return (self.end_ns - self.start_ns) if self.start_ns is not None and self.end_ns is not None else 0


def _header_first(bag: BagReader, msgtype: str) -> bool:
    defs = bag.typestore.fielddefs.get(msgtype)
    if not defs or not defs[1]:
        return False
    name, (node, spec) = defs[1][0]
    return name == "header" and int(node) == 2 and spec == "std_msgs/msg/Header"


def _stats(msgtype: str, source: StampSource, stamps: Sequence[int]) -> TopicStats:
    arr = np.asarray(stamps, dtype=np.int64)
    if arr.size == 0:
        return TopicStats(msgtype, 0, source, None, None, 0.0, 0, 0, 0)
    ordered = np.sort(arr)
    diffs = np.diff(ordered)
    first, last = int(ordered[0]), int(ordered[-1])
    rate = (arr.size - 1) * NS_PER_S / (last - first) if last > first else 0.0
    return TopicStats(
        msgtype=msgtype,
        count=int(arr.size),
        stamp_source=source,
        first_ns=first,
        last_ns=last,
        mean_rate_hz=float(rate),
        max_gap_ns=int(diffs.max()) if diffs.size else 0,
        out_of_order=int(np.count_nonzero(np.diff(arr) < 0)),
        duplicates=int(arr.size - np.unique(arr).size),
    )


def bag_info(paths: PathsArg, *, reader: BagReader | None = None, strict: bool = False) -> BagInfo:
    """Read every message's stamp (header stamps fast, see module doc) and summarise per topic.

    Pass an open ``reader`` to reuse it (``paths`` is then only used for the report).  Integrity
    problems go into :attr:`BagInfo.problems` (not warned about); ``strict=True`` raises on the first.

    Raises:
        FileNotFoundError / BagError: as :func:`open_bag`; BagIntegrityError with ``strict``.
    """
    if reader is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BagIntegrityWarning)
            with open_bag(paths, strict=strict, verify="full") as bag:
                return bag_info(paths, reader=bag)
    bag = reader
    topics = bag.topics
    sources: dict[str, StampSource] = {
        name: "header" if _header_first(bag, info.msgtype) else "record" for name, info in topics.items()
    }
    stamps: dict[str, list[int]] = {name: [] for name in topics}
    ros1 = bag.is_ros1
    first_rec: int | None = None
    last_rec: int | None = None
    count = 0
    for raw in bag.messages():
        count += 1
        first_rec = raw.recv_ns if first_rec is None else min(first_rec, raw.recv_ns)
        last_rec = raw.recv_ns if last_rec is None else max(last_rec, raw.recv_ns)
        if sources[raw.topic] == "record":
            stamps[raw.topic].append(raw.recv_ns)
            continue
        data = raw.rawdata
        if len(data) >= 12:
            if ros1:
                sec, nsec = struct.unpack_from("<II", data, 4)
            else:
                sec, nsec = struct.unpack_from("<iI" if data[1] else ">iI", data, 4)
            stamps[raw.topic].append(sec * NS_PER_S + nsec)
        else:
            stamp = stamp_of(bag.decode(raw))
            stamps[raw.topic].append(stamp if stamp is not None else raw.recv_ns)
    storage = "rosbag1" if ros1 else _storage_name(bag.paths[0])
    return BagInfo(
        paths=list(bag.paths),
        storage=storage,
        start_ns=first_rec,
        end_ns=last_rec,
        message_count=count,
        topics={name: _stats(topics[name].msgtype, sources[name], stamps[name]) for name in topics},
        undefined_types=sorted({info.msgtype for info in topics.values() if info.definition == "none"}),
        problems=list(bag.problems),
        crc=bag.crc,
        recovered=None if bag.recovery is None else {
            "size": bag.recovery.size, "stop_offset": bag.recovery.stop_offset,
            "stop_reason": bag.recovery.stop_reason, "messages": bag.recovery.message_count,
            "chunks": len(bag.recovery.chunks), "bad_chunks": len(bag.recovery.bad_chunks)},
    )


def _storage_name(path: Path) -> str:
    if path.is_file():
        return "mcap" if path.suffix == ".mcap" else "sqlite3"
    meta = path / "metadata.yaml"
    text = meta.read_text(errors="replace") if meta.exists() else ""
    return "mcap" if "storage_identifier: mcap" in text else "sqlite3"


def _fmt_ns(stamp_ns: int | None) -> str:
    return "-" if stamp_ns is None else f"{stamp_ns / NS_PER_S:.3f}"


def format_info(info: BagInfo) -> str:
    """One table for the CLI: a header line with storage/span, then one row per topic."""
    lines = [
        f"bag: {', '.join(str(p) for p in info.paths)} ({info.storage})",
        f"messages: {info.message_count}   record time: {_fmt_ns(info.start_ns)} .. {_fmt_ns(info.end_ns)} s"
        f"   duration: {info.duration_ns / NS_PER_S:.3f} s",
    ]
    header = (
        "topic",
        "type",
        "count",
        "stamps",
        "first [s]",
        "last [s]",
        "rate [Hz]",
        "max gap [ms]",
        "out-of-order",
        "dup",
    )
    rows = [header]
    for name, st in info.topics.items():
        rows.append(
            (
                name,
                st.msgtype,
                str(st.count),
                st.stamp_source,
                _fmt_ns(st.first_ns),
                _fmt_ns(st.last_ns),
                f"{st.mean_rate_hz:.2f}",
                f"{st.max_gap_ns / 1e6:.1f}",
                str(st.out_of_order),
                str(st.duplicates),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = {2, 4, 5, 6, 7, 8, 9}
    for r in rows:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    if info.problems:
        lines.append(f"integrity: {len(info.problems)} problem(s)")
        lines.extend(f"problem: {p.message}" for p in info.problems)
    else:
        checked = "CRCs verified" if info.crc == "verified" else "index and chunks agree"
        lines.append(f"integrity: ok ({checked})")
    if info.crc == "absent":
        lines.append("note: this MCAP has no CRCs, so altered bytes cannot be detected (`edgefuse repair` "
                     "writes a copy with CRCs)")
    for msgtype in info.undefined_types:
        lines.append(f"note: {msgtype} is defined neither in the bag nor in edgefuse's typestore: its messages "
                     "cannot be decoded and its stamps are record times (register its .msg definition with "
                     "edgefuse.msgs.register_definitions)")
    return "\n".join(lines)
