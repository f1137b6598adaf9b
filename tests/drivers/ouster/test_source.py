"""The Ouster Source: captures through open_source(…, metadata=) equal the pcap decoder (checked against the
official SDK in test_decode), and live: `edgefuse drivers play-pcap` → ouster:// over real 127.0.0.1 sockets →
the same clouds; garbage datagrams on the live ports are counted and the valid data kept."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.ouster import OusterPcap, xyz_lut
from edgefuse_drivers.ouster.source import OusterSource
from edgefuse_drivers.pcap import CaptureReader

from edgefuse.errors import SourceError
from edgefuse.msgs.types import ImuData
from edgefuse.sources import open_source
from edgefuse.stages.deskew import DeskewStage

PCAPS = Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
CAPTURES = {
    "OS-1-128_v2.3.0_1024x10_lb_n3.pcap": "OS-1-128_v2.3.0_1024x10.json",
    "OS-0-32-U1_v2.2.0_1024x10.pcap": "OS-0-32-U1_v2.2.0_1024x10.json",
    "OS-2-32-U0_v2.0.0_1024x10.pcap": "OS-2-32-U0_v2.0.0_1024x10.json",
}
OS1, OS1_META = PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", PCAPS / "OS-1-128_v2.3.0_1024x10.json"


def _offline(pcap: Path, meta: Path) -> list[object]:
    rec = OusterPcap(pcap, meta)
    lut = xyz_lut(rec.info)
    return [s.to_pointcloud(lut) for s in rec.scans()]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_capture_through_open_source_equals_decoder(name: str) -> None:
    src = open_source(PCAPS / name, metadata=PCAPS / CAPTURES[name])
    assert isinstance(src, OusterSource) and not src.live and src.stamp_clock == "header"
    with src:
        envs = list(src.envelopes())
    clouds = [e.payload for e in envs if e.topic == "/ouster/points"]
    ref = _offline(PCAPS / name, PCAPS / CAPTURES[name])
    assert len(clouds) == len(ref) >= 1
    for got, exp in zip(clouds, ref, strict=True):
        assert got.stamp_ns == exp.stamp_ns  # type: ignore[attr-defined]
        assert np.array_equal(got.points, exp.points)  # type: ignore[attr-defined]
        t, ring = got.points["t"], got.points["ring"]
        assert t.dtype == np.uint32 and ring.dtype == np.uint16
        assert 0 < int(t.max()) < 200_000_000  # one rotation at 10-20 Hz, ns since the stamp
        assert int(ring.max()) == src.info.pixels_per_column - 1
    imu = [e for e in envs if e.topic == "/ouster/imu"]
    n_imu = sum(1 for p in CaptureReader(PCAPS / name) if len(p.payload) == 48)
    assert len(imu) == n_imu
    if imu:
        batch = OusterPcap(PCAPS / name, PCAPS / CAPTURES[name]).imu_batch()
        assert all(isinstance(e.payload, ImuData) and e.payload.orientation_covariance[0, 0] == -1 for e in imu)
        assert np.array_equal([e.stamp_ns for e in imu], batch.stamps_ns)
        assert np.array_equal([e.payload.linear_acceleration for e in imu], batch.linear_acceleration)
        assert np.array_equal([e.payload.angular_velocity for e in imu], batch.angular_velocity)
        assert 8.0 < float(np.linalg.norm(batch.linear_acceleration.mean(axis=0))) < 11.6  # gravity, m/s²
    assert src.stats()["rejected"] == {} and "host - sensor clock" in src.report()


def test_deskew_reads_the_time_field() -> None:
    with open_source(OS1, metadata=OS1_META) as src:
        cloud = next(e.payload for e in src.envelopes(["/ouster/points"]))
    t, unit, origin = DeskewStage("deskew")._times(cloud)
    assert unit == "ns" and origin == cloud.stamp_ns and int(np.max(t)) > 50_000_000


def test_needs_metadata_and_rejects_unknown_options() -> None:
    with pytest.raises(SourceError, match="metadata"):
        open_source("ouster://127.0.0.1?lidar_port=0")
    with pytest.raises(SourceError, match="unknown ouster:// options"):
        open_source(f"ouster://127.0.0.1?metadata={OS1_META}&colour=red")
    with pytest.raises(SourceError, match=r"metadata=FILE\.json"):
        open_source(OS1)  # a capture that looks like an Ouster's, without metadata


def _play(capture: Path, lidar: int, imu: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgefuse_drivers.cli", "drivers", "play-pcap", str(capture),
                             "--to", "udp://127.0.0.1", "--port-map", f"7502:{lidar}", "--port-map", f"7503:{imu}",
                             "--rate", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_play_pcap_to_live_source_equals_offline_decode() -> None:
    expect = _offline(OS1, OS1_META)
    src = open_source(f"ouster://127.0.0.1?lidar_port=0&imu_port=0&metadata={OS1_META}", idle_timeout_s=1.5)
    assert isinstance(src, OusterSource) and src.live and src.recv_clock == "host_monotonic"
    with src:
        proc = _play(OS1, src.lidar_port, src.imu_port)
        try:
            envs = list(src.envelopes())
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert "sent 222 datagrams" in out
        stats = src.stats()
    assert stats["lidar_packets"] == 192 and stats["imu_packets"] == 30 and stats["rejected"] == {}
    assert all(u["dropped_queue"] == 0 for u in stats["udp"].values())
    clouds = [e for e in envs if e.topic == "/ouster/points"]
    assert len(clouds) == len(expect) == 3
    for env, exp in zip(clouds, expect, strict=True):
        assert env.stamp_ns == exp.stamp_ns  # type: ignore[attr-defined]  # sensor clock: same stamps
        assert np.array_equal(env.payload.points, exp.points)  # type: ignore[attr-defined]
        assert env.meta["receive_ns"] > 1_600_000_000 * 10**9  # host wall clock
    assert sum(e.topic == "/ouster/imu" for e in envs) == 30
    # offset: host wall clock now vs the sensor's boot-time clock in 2022: about the time since then
    assert stats["clock_lidar"]["count"] == 192
    assert stats["clock_lidar"]["mean_ns"] > 10**17


def test_live_garbage_is_counted_and_valid_frames_kept() -> None:
    expect = _offline(OS1, OS1_META)
    packets = [(p.dst_port, p.payload) for p in CaptureReader(OS1)]
    src = OusterSource(f"ouster://127.0.0.1?lidar_port=0&imu_port=0&metadata={OS1_META}", idle_timeout_s=1.0)
    bad = [b"", b"\x01" * 7, b"\xff" * 8448, b"\x00" * 48 + b"x", b"\x7f\xff\xff\xff" * 12]

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, (port, payload) in enumerate(packets):
                dest = ("127.0.0.1", src.lidar_port if port == 7502 else src.imu_port)
                if i % 20 == 5:
                    s.sendto(bad[(i // 20) % len(bad)], dest)
                    s.sendto(payload[: len(payload) // 2], dest)  # truncated
                s.sendto(payload, dest)
                time.sleep(0.0005)

    with src:
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        envs = list(src.envelopes())
        sender.join(timeout=10)
    stats = src.stats()
    n_bad = sum(stats["rejected"].values())
    assert n_bad == 2 * len(range(5, len(packets), 20))
    assert stats["lidar_packets"] == 192 and stats["imu_packets"] == 30
    clouds = [e.payload for e in envs if e.topic == "/ouster/points"]
    assert len(clouds) == 3
    for got, exp in zip(clouds, expect, strict=True):
        assert np.array_equal(got.points, exp.points)  # type: ignore[attr-defined]
    assert "PROBLEMS" in src.report()
