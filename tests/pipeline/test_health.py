"""Degraded inputs are visible (issue 10, item 12): gaps, an input that stops, messages no set used.

The recordings are the bundled demo cut with rosbags: its LiDAR stops half way, or has a 2 s gap.  Before,
the report said ``complete: true`` and nothing flagged either, and radar scans no set used were not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from edgefuse.cli import resolve_pipeline
from edgefuse.errors import ConfigError
from edgefuse.pipeline.health import MAX_GAPS_LISTED, WINDOW, HealthMonitor, format_health
from edgefuse.replay import format_report, replay
from edgefuse.sync.base import InputStats, SyncStats

DEMO = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo"
LIDAR = "/velodyne_points"
MS = 1_000_000
S = 1_000_000_000


def _copy_demo(dst: Path, keep: Callable[[str, int], bool]) -> Path:
    """The demo bag without the messages for which ``keep(topic, record offset from the start [ns])`` fails."""
    with Reader(DEMO) as reader:
        start = reader.start_time
        writer = Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP)
        with writer:
            conns = {}
            for c in reader.connections:
                assert c.msgdef is not None
                conns[c.id] = writer.add_connection(
                    c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
                    serialization_format=c.ext.serialization_format,  # type: ignore[union-attr]
                    offered_qos_profiles=c.ext.offered_qos_profiles)  # type: ignore[union-attr]
            for c, t, raw in reader.messages():
                if keep(c.topic, t - start):
                    writer.write(conns[c.id], t, raw)
    return dst


def _replay(bag: Path) -> dict[str, Any]:
    return replay(resolve_pipeline("radiate_demo"), bag=bag, max_speed=True).report


# -- the bundled demo, cut ------------------------------------------------------------------------------
def test_lidar_that_stops_half_way_is_flagged(tmp_path: Path) -> None:
    bag = _copy_demo(tmp_path / "stops", lambda topic, t: topic != LIDAR or t < 1_600 * MS)
    report = _replay(bag)
    assert report["complete"] is True  # the recording was read to its end ...
    health = report["health"]
    lidar = health["inputs"]["lidar"]
    assert lidar["verdict"] == "stopped"  # ... but the LiDAR stopped
    assert 95 < lidar["nominal_period_ms"] < 105
    assert lidar["silent_at_end_s"] > 1.5
    assert any("no message for the last" in r for r in lidar["reasons"])
    assert health["verdict"] == "stopped" and "lidar" in health["not_ok"]
    # Radar scans after the LiDAR stopped joined no set: counted as never used, not silently lost.
    radar = health["inputs"]["radar"]
    assert radar["never_used"]["count"] >= 5
    assert report["sync"]["stats"]["inputs"]["radar"]["dropped"].get("unmatched", 0) >= 5
    assert radar["verdict"] == "ok" and radar["held"] is True
    text = format_report(report)
    assert "lidar" in text and "STOPPED" in text and "never used" in text


def test_two_second_lidar_gap_is_reported_when_and_how_long(tmp_path: Path) -> None:
    bag = _copy_demo(tmp_path / "gap", lambda topic, t: topic != LIDAR or not 700 * MS <= t < 2_700 * MS)
    report = _replay(bag)
    lidar = report["health"]["inputs"]["lidar"]
    assert lidar["verdict"] == "degraded"
    assert lidar["gaps"]["count"] == 1
    gap = lidar["gaps"]["listed"][0]
    assert 1.95 < gap["duration_s"] < 2.15
    assert 0.55 < gap["start_s"] < 0.75  # since the first stamp of the run
    assert gap["periods"] > 19
    assert 95 < lidar["nominal_period_ms"] < 105  # estimated from the stream, not fooled by the gap
    camera = report["health"]["inputs"]["camera"]
    assert camera["verdict"] == "ok" and camera["gaps"]["count"] == 0
    # Frames without a LiDAR partner during the gap: counted (the camera's queue overflowed), not a fault.
    assert camera["never_used"]["count"] > 20 and camera["never_used"]["by_reason"]["queue_full"] > 0
    assert "DEGRADED" in format_report(report) and "1 gap(s)" in format_report(report)


def test_untouched_demo_is_healthy() -> None:
    report = _replay(DEMO)
    health = report["health"]
    assert health["verdict"] == "ok" and health["not_ok"] == []
    for entry in health["inputs"].values():
        assert entry["gaps"]["count"] == 0 and entry["reasons"] == []
    assert health["inputs"]["camera"]["never_used"]["count"] == 18  # 15 Hz camera paired with 10 Hz LiDAR
    assert health["inputs"]["radar"]["never_used"]["count"] == 0


# -- the monitor on synthetic streams --------------------------------------------------------------------
def _regular(period_ns: int, n: int, start_ns: int = 0, jitter_ns: int = 0, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    stamps = start_ns + np.arange(n, dtype=np.int64) * period_ns
    if jitter_ns:
        stamps = stamps + rng.integers(-jitter_ns, jitter_ns + 1, n)
    return [int(t) for t in stamps]


def _feed(mon: HealthMonitor, streams: dict[str, list[int]]) -> None:
    events = sorted((t, name) for name, stamps in streams.items() for t in stamps)
    for t, name in events:
        mon.observe(name, t)


def test_period_is_robust_to_bursts_and_gaps() -> None:
    stamps = _regular(100 * MS, 200, jitter_ns=5 * MS, seed=1)
    stamps = stamps[:50] + stamps[80:]  # a 3 s gap
    stamps += [stamps[-1] + k * MS for k in range(1, 6)]  # a burst of five 1 ms intervals
    mon = HealthMonitor(["lidar"])
    _feed(mon, {"lidar": stamps})
    e = mon.report()["inputs"]["lidar"]
    assert 97 < e["nominal_period_ms"] < 103
    assert e["gaps"]["count"] == 1 and 2.9 < e["gaps"]["listed"][0]["duration_s"] < 3.2
    assert e["verdict"] == "degraded"


def test_gap_before_a_period_is_known_is_still_found() -> None:
    stamps = [0, 100 * MS, 1_100 * MS, *range(1_200 * MS, 3_000 * MS, 100 * MS)]
    mon = HealthMonitor(["a"])
    _feed(mon, {"a": stamps})
    gaps = mon.report()["inputs"]["a"]["gaps"]
    assert gaps["count"] == 1 and gaps["listed"][0]["start_ns"] == 100 * MS


def test_threshold_is_configurable() -> None:
    stamps = [t for t in _regular(100 * MS, 60) if not 2_000 * MS < t < 2_400 * MS]  # 4 missing: 0.5 s
    strict, lax = HealthMonitor(["a"], gap_periods=3), HealthMonitor(["a"], gap_periods=6)
    for mon in (strict, lax):
        _feed(mon, {"a": stamps})
    assert strict.report()["inputs"]["a"]["gaps"]["count"] == 1
    assert lax.report()["inputs"]["a"]["gaps"]["count"] == 0
    for bad in (1, 0.5, float("nan"), float("inf"), "x"):
        with pytest.raises(ConfigError, match="gap_periods"):
            HealthMonitor(["a"], gap_periods=bad)  # type: ignore[arg-type]


def test_verdicts_absent_stopped_ok_and_reasons() -> None:
    mon = HealthMonitor(["camera", "lidar", "gnss", "imu"])
    _feed(mon, {"camera": _regular(33 * MS, 300), "lidar": _regular(100 * MS, 50), "imu": [0, 5 * MS, 10 * MS]})
    health = mon.report()
    v = {n: e["verdict"] for n, e in health["inputs"].items()}
    assert v == {"camera": "ok", "lidar": "stopped", "gnss": "absent", "imu": "stopped"}
    assert health["verdict"] == "absent" and set(health["not_ok"]) == {"lidar", "gnss", "imu"}
    assert health["inputs"]["gnss"]["reasons"] == ["no message received"]
    # The end of a live run can be given (e.g. now): then the camera has stopped too.
    assert mon.report(end_ns=20 * S)["inputs"]["camera"]["verdict"] == "stopped"
    one = HealthMonitor(["a"])
    one.observe("a", 5)
    assert one.report()["inputs"]["a"]["verdict"] == "degraded"


def test_out_of_order_duplicates_and_sync_counters() -> None:
    mon = HealthMonitor(["a", "radar"], held=["radar"])
    stamps = _regular(100 * MS, 30)
    stamps.insert(10, stamps[9])  # duplicate
    stamps.insert(20, stamps[15])  # out of order
    _feed(mon, {"radar": _regular(250 * MS, 12)})
    for t in stamps:
        mon.observe("a", t)
    stats = SyncStats("approximate", {
        "a": InputStats(received=32, used=20, queued=1, dropped={"queue_full": 3, "out_of_order": 1,
                                                                  "duplicate": 1, "unmatched": 6}),
        "radar": InputStats(received=12, used=4, queued=0, dropped={"queue_full": 6, "unmatched": 2}, missing=3),
    })
    health = mon.report(stats)
    a, radar = health["inputs"]["a"], health["inputs"]["radar"]
    assert a["out_of_order"] == 1 and a["duplicates"] == 1
    assert a["never_used"] == {"count": 12, "by_reason": {"duplicate": 1, "out_of_order": 1, "queue_full": 3,
                                                          "unmatched": 6, "queued": 1}}
    # Queue overflow is a symptom of another input stalling: counted as never used, not a fault.
    assert not any("queue" in r for r in a["reasons"]) and a["verdict"] == "degraded"
    assert a["reasons"] == ["1 out-of-order and 1 duplicate stamp(s)"]
    assert radar["never_used"]["count"] == 8 and radar["held"] is True
    assert any("missing from 3 set(s)" in r for r in radar["reasons"]) and radar["verdict"] == "degraded"
    lines = format_health(health)
    assert lines[0].startswith("input health") and any("8 never used" in ln for ln in lines)


def test_memory_is_bounded_and_gaps_are_all_counted() -> None:
    mon = HealthMonitor(["a"])
    stamps = _regular(10 * MS, 20_000)
    stamps = [t for k, t in enumerate(stamps) if k % 500 >= 10]  # 40 gaps of 110 ms
    _feed(mon, {"a": stamps})
    h = mon.inputs["a"]
    assert len(h._intervals) == WINDOW and not h._pending
    e = mon.report()["inputs"]["a"]
    assert e["gaps"]["count"] == 39 and len(e["gaps"]["listed"]) == MAX_GAPS_LISTED
