"""``open_source`` and :class:`BagSource`: picking the implementation, clocks, topics, and the time-offset
correction that sources (not the runner) own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.sources import BagSource, Source, SourceTopic, TimeOffsets, open_source, register_source
from edgefuse.sources import base as source_base
from edgefuse.sources.base import RecvClock, StampClock

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edgefuse" / "data" / "demo"
HUSKY = ROOT / "edgefuse" / "data" / "husky" / "test1.bag"
LIDAR = "/velodyne_points"


def test_bag_folder_and_ros1_file_open_as_bag_sources() -> None:
    for path in (DEMO, HUSKY, str(DEMO / "demo.mcap")):
        src = open_source(path)
        assert isinstance(src, BagSource)
        assert isinstance(src, Source)
        assert src.live is False
        assert (src.stamp_clock, src.recv_clock) == ("header", "recorded")
    with open_source(DEMO) as src:
        topics = src.topics()
    assert topics[LIDAR] == SourceTopic(LIDAR, "sensor_msgs/msg/PointCloud2", 33)


def test_offsets_are_applied_by_the_source_with_the_original_kept() -> None:
    with open_source(DEMO) as src:
        plain = [(e.stamp_ns, e.recv_ns) for e in src.envelopes([LIDAR])]
    with open_source(DEMO) as src:
        src.set_time_offsets({LIDAR: -7_000_000, "/other": 5})
        shifted = list(src.envelopes([LIDAR]))
    assert [e.stamp_ns for e in shifted] == [s - 7_000_000 for s, _ in plain]
    assert [e.meta["header_stamp_ns"] for e in shifted] == [s for s, _ in plain]
    assert [e.recv_ns for e in shifted] == [r for _, r in plain]  # the receive clock is never corrected


def test_zero_offsets_leave_envelopes_untouched() -> None:
    offsets = TimeOffsets()
    offsets.set({"/a": 0})
    env = Envelope("/a", 10, 10, None)
    assert offsets.apply(env).stamp_ns == 10
    assert "header_stamp_ns" not in env.meta


def test_unknown_kinds_are_clear_errors(tmp_path: Path) -> None:
    odd = tmp_path / "capture.xyz"
    odd.write_bytes(b"\0" * 16)
    with pytest.raises(SourceError, match="cannot tell what kind of recording"):
        open_source(odd)
    with pytest.raises(SourceError, match=r"no source for 'udp://' URLs \(known: bag"):
        open_source("udp://127.0.0.1:7502")
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.bag")
    with open_source(tmp_path / "nothing-here.db3" if False else DEMO) as src:
        assert src.topics()  # a bag folder opens


def test_not_opened_source_says_so() -> None:
    with pytest.raises(SourceError, match="not open"):
        BagSource(DEMO).topics()


class _Counter:
    """A source registered for a scheme (what drivers do through the ``edgefuse.sources`` entry points)."""

    live = True
    stamp_clock: StampClock = "host"
    recv_clock: RecvClock = "host_monotonic"

    def __init__(self, url: str, n: int = 3) -> None:
        self.url, self.n = url, n
        self.offsets = TimeOffsets()

    def open(self) -> _Counter:
        return self

    def close(self) -> None:
        pass

    def __enter__(self) -> _Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def topics(self) -> Mapping[str, SourceTopic]:
        return {"/count": SourceTopic("/count", "std_msgs/msg/UInt32")}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        for k in range(self.n):
            yield self.offsets.apply(Envelope("/count", k, k, k))


def test_registered_schemes_and_suffixes_are_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(source_base, "_OPENERS", {})
    register_source("counter", _Counter, schemes=["count"], suffixes=[".cnt"])
    src = open_source("count://x", n=2)
    assert isinstance(src, _Counter) and isinstance(src, Source)
    src.set_time_offsets({"/count": 100})
    assert [e.stamp_ns for e in src.envelopes()] == [100, 101]
    f = tmp_path / "a.cnt"
    f.write_text("")
    assert isinstance(open_source(f), _Counter)
    with pytest.raises(SourceError, match=r"counter \(count://, \.cnt\)"):
        open_source("serial:///dev/ttyUSB0")
