"""The conversion report: what was written, what was skipped and why, and the time span covered."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgefuse.time import seconds_from_ns


@dataclass(frozen=True)
class SkippedItem:
    """One dataset item that was not converted.

    Attributes:
        stream: the dataset stream it belongs to (e.g. ``zed_left``, ``velo_lidar``, ``oxts``).
        item: what was skipped, e.g. a frame number ``"000051"`` or a file path.
        reason: why, in words (``"no image file"``, ``"no timestamp"``, ``"duplicate of 000001"`` …).
        file: the file the reason refers to (timestamps file, data file), if any.
        line: 1-based line in ``file``, if any.
    """

    stream: str
    item: str
    reason: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f" [{self.file}:{self.line}]" if self.line is not None else f" [{self.file}]"
        return f"{self.stream} {self.item}: {self.reason}{where}"


@dataclass
class TopicStats:
    """Messages written on one topic: ROS type, count and first/last header stamps (ns)."""

    msgtype: str
    count: int = 0
    first_ns: int | None = None
    last_ns: int | None = None

    def add(self, stamp_ns: int) -> None:
        """Count one message stamped ``stamp_ns``."""
        self.count += 1
        self.first_ns = stamp_ns if self.first_ns is None else min(self.first_ns, stamp_ns)
        self.last_ns = stamp_ns if self.last_ns is None else max(self.last_ns, stamp_ns)


@dataclass
class ConvertReport:
    """Result of :func:`edgefuse.convert.convert`.

    Attributes:
        layout: the dataset layout converted (``radiate``, ``kitti_object``, ``kitti_raw``).
        source: the dataset folder.
        output: the bag written (a rosbag2 folder).
        storage: ``mcap`` or ``sqlite3``.
        topics: per topic, the messages written.
        skipped: every dataset item that was not converted, with its reason.
        notes: facts about the conversion a user should know (clock offsets, synthesized stamps,
            streams that were not converted at all).
        rig_path: the rig YAML written next to the bag (``<bag>/rig.yaml``), or None without calibration.
        window_ns: the time window the conversion was limited to (inclusive), or None.
    """

    layout: str
    source: str
    output: str
    storage: str
    topics: dict[str, TopicStats] = field(default_factory=dict)
    skipped: list[SkippedItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rig_path: str | None = None
    window_ns: tuple[int, int] | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic."""
        return {topic: stats.count for topic, stats in self.topics.items()}

    @property
    def message_count(self) -> int:
        """Messages written in total."""
        return sum(stats.count for stats in self.topics.values())

    @property
    def start_ns(self) -> int | None:
        """Earliest header stamp written (ns), None for an empty bag."""
        firsts = [s.first_ns for s in self.topics.values() if s.first_ns is not None]
        return min(firsts) if firsts else None

    @property
    def end_ns(self) -> int | None:
        """Latest header stamp written (ns), None for an empty bag."""
        lasts = [s.last_ns for s in self.topics.values() if s.last_ns is not None]
        return max(lasts) if lasts else None

    def skipped_by_stream(self) -> dict[str, int]:
        """Number of skipped items per dataset stream."""
        out: dict[str, int] = {}
        for item in self.skipped:
            out[item.stream] = out.get(item.stream, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (stamps as int ns)."""
        data = asdict(self)
        data["window_ns"] = list(self.window_ns) if self.window_ns is not None else None
        data["start_ns"] = self.start_ns
        data["end_ns"] = self.end_ns
        return data

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_dict` as indented JSON to ``path``."""
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvertReport:
        """Inverse of :meth:`to_dict`."""
        window = data.get("window_ns")
        return cls(
            layout=data["layout"],
            source=data["source"],
            output=data["output"],
            storage=data["storage"],
            topics={k: TopicStats(**v) for k, v in data["topics"].items()},
            skipped=[SkippedItem(**s) for s in data["skipped"]],
            notes=list(data["notes"]),
            rig_path=data.get("rig_path"),
            window_ns=(int(window[0]), int(window[1])) if window else None,
        )

    def summary(self) -> str:
        """A few human-readable lines: topics with counts, skipped items per stream, notes."""
        lines = [f"converted {self.layout} dataset {self.source} -> {self.output} ({self.storage})"]
        if self.start_ns is not None and self.end_ns is not None:
            span = seconds_from_ns(self.end_ns - self.start_ns)
            lines.append(
                f"time span {seconds_from_ns(self.start_ns):.6f} .. {seconds_from_ns(self.end_ns):.6f} s"
                f" ({span:.3f} s)"
            )
        for topic in sorted(self.topics):
            stats = self.topics[topic]
            lines.append(f"  {topic:40s} {stats.msgtype:36s} {stats.count:6d}")
        for stream, n in sorted(self.skipped_by_stream().items()):
            reasons = sorted({s.reason for s in self.skipped if s.stream == stream})
            lines.append(f"  skipped {n} from {stream}: {'; '.join(reasons)}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if self.rig_path:
            lines.append(f"  rig: {self.rig_path}")
        return "\n".join(lines)
