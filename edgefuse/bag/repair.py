"""``edgefuse repair BAG OUT``: a valid, indexed MCAP (with CRCs) of everything recoverable in an MCAP.

Typical input: the file a crashed recorder left behind (no summary, no footer, the last chunk cut
off), or a file with a chunk that fails its CRC.  Every record that verifies is copied
(:func:`edgefuse.bag._mcap.recover`: schemas, channels, metadata, the messages of every chunk whose
CRC matches or is absent, with their channel ids, times and sequence numbers), re-chunked with zstd
and written with chunk, data-section and summary CRCs by the same writer ``BagWriter`` uses.
A healthy file comes out with the same messages (and now with CRCs).

The output is written under a temporary name next to ``OUT`` and renamed when complete; nothing is
left behind on failure.  ``OUT`` ending in ``.mcap`` is the file; otherwise ``OUT`` is a bag folder
created to hold ``OUT/<name>.mcap`` (no ``metadata.yaml``: edgefuse and rosbags open such a folder;
``ros2 bag reindex`` writes one for ``ros2 bag play``).
"""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefuse.bag import _mcap
from edgefuse.bag._errors import bag_errors
from edgefuse.errors import BagError

__all__ = ["RepairResult", "add_repair_parser", "format_repair", "repair_bag"]


@dataclass(frozen=True, slots=True)
class RepairResult:
    """What :func:`repair_bag` wrote.

    Attributes:
        source / out: the damaged MCAP and the repaired one.
        messages: messages written, per topic.
        chunks / bad_chunks: chunk records met in the source / dropped because they failed their CRC or
            did not decompress (``lost`` messages in them, by their message indexes where those survived).
        truncated: the source ends before its data section does (no DataEnd/footer reached).
        stop_offset / size / stop_reason: where reading the source stopped, its size, and why.
        data_crc_ok: the source's data-section CRC (None: absent or not reached).
        notes: damaged records skipped outside chunks, differing copies of definitions.
    """

    source: Path
    out: Path
    messages: dict[str, int]
    chunks: int
    bad_chunks: int
    lost: int
    truncated: bool
    stop_offset: int
    size: int
    stop_reason: str | None
    data_crc_ok: bool | None
    notes: tuple[str, ...] = ()

    @property
    def message_count(self) -> int:
        return sum(self.messages.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source), "out": str(self.out), "messages": dict(self.messages),
            "message_count": self.message_count, "chunks": self.chunks, "bad_chunks": self.bad_chunks,
            "lost": self.lost, "truncated": self.truncated, "stop_offset": self.stop_offset, "size": self.size,
            "stop_reason": self.stop_reason, "data_crc_ok": self.data_crc_ok, "notes": list(self.notes),
        }


def _source_file(bag: Path) -> Path:
    if not bag.exists():
        raise FileNotFoundError(f"bag not found: {bag}")
    if bag.is_dir():
        files = sorted(bag.glob("*.mcap"))
        if len(files) != 1:
            raise BagError(f"repair needs one .mcap file; this folder holds {len(files)}", file=bag)
        return files[0]
    if bag.suffix != ".mcap":
        raise BagError("repair handles MCAP files (.mcap, or a bag folder holding one); ROS 1 bags and sqlite3 "
                       "storage are not supported", file=bag)
    return bag


def repair_bag(bag: str | Path, out: str | Path) -> RepairResult:
    """Write everything recoverable in the MCAP ``bag`` to ``out`` (see the module doc).

    Raises:
        FileNotFoundError: ``bag`` does not exist.
        BagError: ``bag`` is not an MCAP file, ``out`` exists, or nothing could be read.
        OSError: ``out`` cannot be written.
    """
    src = _source_file(Path(bag))
    out_path = Path(out)
    if out_path.exists():
        raise BagError("output exists already; choose a new name", file=out_path)
    folder = None if out_path.suffix == ".mcap" else out_path
    target = out_path if folder is None else folder / f"{folder.name}.mcap"
    if folder is not None:
        folder.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with bag_errors(src, "cannot repair"):
            res = _mcap.recover(src, partial, compression="zstd")
        if not res.profile:
            raise BagError(f"nothing to repair: {res.stop_reason}", file=src)
        written = _mcap.check_tail(partial)
        if not written.complete or written.summary_ok is not True:  # pragma: no cover - our own writer's output
            raise BagError("the repaired file does not verify", file=target)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    per_topic: dict[str, int] = {}
    for channel, n in res.counts.items():
        per_topic[res.topic(channel)] = per_topic.get(res.topic(channel), 0) + n
    return RepairResult(
        source=src, out=target, messages=dict(sorted(per_topic.items())), chunks=len(res.chunks),
        bad_chunks=len(res.bad_chunks), lost=sum(sum(c.index_counts.values()) for c in res.bad_chunks),
        truncated=not res.data_end and res.stop_reason is not None, stop_offset=res.stop_offset, size=res.size,
        stop_reason=res.stop_reason, data_crc_ok=res.data_crc_ok, notes=tuple(res.notes))


def format_repair(result: RepairResult) -> str:
    """The one-line summary ``edgefuse repair`` prints."""
    good = result.chunks - result.bad_chunks
    line = (f"repaired {result.source} -> {result.out}: {result.message_count} messages on "
            f"{len(result.messages)} topic(s) from {good} of {result.chunks} chunk(s)")
    if result.truncated:
        line += (f"; the source was truncated: reading stopped at byte {result.stop_offset} of {result.size} "
                 f"({result.stop_reason})")
    elif result.stop_reason is not None:
        line += f"; reading stopped at byte {result.stop_offset} ({result.stop_reason})"
    else:
        line += "; the data section was complete"
    if result.bad_chunks:
        lost = f", {result.lost} messages lost" if result.lost else ""
        line += f"; {result.bad_chunks} damaged chunk(s) dropped{lost}"
    if result.data_crc_ok is False:
        line += "; the source's data-section CRC did not match (records outside chunks were altered)"
    return line


def _cmd_repair(args: argparse.Namespace) -> int:
    print(format_repair(repair_bag(args.bag, args.out)))
    return 0


def add_repair_parser(sub: Any) -> None:
    """Add ``repair`` to the CLI's sub-command parsers."""
    p = sub.add_parser("repair", help="write a valid, indexed MCAP (with CRCs) of everything recoverable in a "
                                      "truncated or damaged MCAP")
    p.add_argument("bag", help="the damaged .mcap file (or a bag folder holding one)")
    p.add_argument("out", help="output: a .mcap file, or a bag folder to create")
    p.set_defaults(func=_cmd_repair)
