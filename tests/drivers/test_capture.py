"""The capture dispatcher (open_source("x.pcap") → the sensor's source; clear errors when it cannot tell) and
`edgefuse info` / `edgefuse convert` on packet captures and NMEA logs (real subprocesses, real files)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from edgefuse_drivers.capture import classify, open_capture, survey
from edgefuse_drivers.ouster.source import OusterSource
from edgefuse_drivers.pcap import CaptureReader, write_pcap
from edgefuse_drivers.velodyne.source import VelodyneSource
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.bag import bag_info
from edgefuse.errors import SourceError
from edgefuse.sources import open_source

from .hesai.conftest import excerpt_packets

DATA = Path(__file__).resolve().parents[1] / "data"
VLP = DATA / "velodyne" / "hdl32e.pcap"
PCAPS = DATA / "ouster_sdk_pcaps" / "tests" / "pcaps"
OS0, OS0_META = PCAPS / "OS-0-32-U1_v2.2.0_1024x10.pcap", PCAPS / "OS-0-32-U1_v2.2.0_1024x10.json"
NMEA = DATA / "gps_nmea_logs" / "neo-m8n.log"


def _edgefuse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgefuse.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_classify_real_packets() -> None:
    vlp = [p for p in CaptureReader(VLP)]
    assert {classify(p.payload, p.dst_port) for p in vlp} == {"velodyne", "velodyne_position"}
    assert {classify(p, 2368) for p in excerpt_packets()} == {"hesai"}
    assert {classify(p.payload, 9999) for p in CaptureReader(OS0)} == {None}  # ports changed: size unknown
    assert {classify(p.payload, 9999, (8448, 48)) for p in CaptureReader(OS0)} == {"ouster"}
    assert classify(b"\x00" * 100, 1234) is None


def test_dispatch_by_content() -> None:
    src = open_source(VLP)
    assert isinstance(src, VelodyneSource)
    with src:
        assert len(list(src.envelopes())) == 2
    assert isinstance(open_source(OS0, metadata=OS0_META), OusterSource)
    with pytest.raises(SourceError, match=r"Ouster capture .*port 7502: 64 datagrams .*metadata=FILE.json"):
        open_source(OS0)


def test_dispatch_errors_name_what_was_seen(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.pcap"
    write_pcap(unknown, [(i * 1000, b"\x42" * 333) for i in range(5)], dst_port=5000)
    with pytest.raises(SourceError, match=r"cannot tell .*port 5000: 5 datagrams \(333 B × 5\)"):
        open_source(unknown)
    mixed = tmp_path / "mixed.pcap"
    vlp = [(p.stamp_ns, p.payload, p.dst_port) for p in CaptureReader(VLP)]
    hesai = [(vlp[0][0] + i, p, 2369) for i, p in enumerate(excerpt_packets())]
    write_pcap(mixed, vlp + hesai)
    with pytest.raises(SourceError, match=r"several sensors \(velodyne, hesai"):
        open_source(mixed)
    src = open_source(mixed, sensor="velodyne")  # forced: only its port is read
    assert isinstance(src, VelodyneSource)
    with src:
        assert len(list(src.envelopes())) == 2
    with pytest.raises(SourceError, match="sensor must be one of"):
        open_capture(mixed, sensor="lidar")
    found = survey(mixed)
    assert found.sensors == ["velodyne", "hesai"] and found.port_of("hesai") == 2369


def test_info_capture_cli() -> None:
    res = _edgefuse("info", str(OS0), "--metadata", str(OS0_META))
    assert res.returncode == 0, res.stderr
    assert "udp port  7502:       64 datagrams" in res.stdout and "sensor: ouster" in res.stdout
    assert "/ouster/points  sensor_msgs/msg/PointCloud2  1 messages" in res.stdout
    assert "host - sensor clock" in res.stdout
    res = _edgefuse("info", str(OS0), "--json")
    assert res.returncode == 2  # no metadata: the ports are listed, the problem said
    info = json.loads(res.stdout)
    assert [p["port"] for p in info["ports"]] == [7502, 7503] and "metadata" in info["error"]


def test_info_reports_decode_problems(tmp_path: Path) -> None:
    packets = excerpt_packets()
    bad = [*packets[:10], b"\xee\xff" + b"\x00" * 1078, *packets[10:]]
    cap = tmp_path / "bad.pcap"
    write_pcap(cap, [(1_673_400_678_000_000_000 + i * 500_000, p) for i, p in enumerate(bad)])
    res = _edgefuse("info", str(cap))
    assert res.returncode == 0, res.stderr
    assert "sensor: hesai" in res.stdout and "PROBLEMS" in res.stdout


def test_convert_capture_and_nmea_to_mcap(tmp_path: Path) -> None:
    out = tmp_path / "ouster_bag"
    res = _edgefuse("convert", str(OS0), str(out), "--metadata", str(OS0_META))
    assert res.returncode == 0, res.stderr
    info = bag_info(out)
    assert info.topics["/ouster/points"].count == 1 and info.topics["/ouster/imu"].count == 10
    assert info.topics["/ouster/imu"].msgtype == "sensor_msgs/msg/Imu" and not info.problems
    with open_source(out) as bag:  # replayable: the cloud keeps its per-point time and ring
        cloud = next(e.payload for e in bag.envelopes(["/ouster/points"]))
    assert {"t", "ring"} <= set(cloud.points.dtype.names)
    nmea = tmp_path / "gps.nmea"
    shutil.copy(NMEA, nmea)
    res = _edgefuse("convert", str(nmea), str(tmp_path / "gps_bag"))
    assert res.returncode == 0, res.stderr
    assert bag_info(tmp_path / "gps_bag").topics["/gnss/fix"].count > 10
    res = _edgefuse("info", str(nmea))
    assert res.returncode == 0 and "/gnss/fix  sensor_msgs/msg/NavSatFix" in res.stdout
    res = _edgefuse("convert", str(nmea), str(tmp_path / "x"), "--sensor", "hesai")
    assert res.returncode == 2 and "apply to packet captures" in res.stderr


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 65535))
def test_classify_never_raises(payload: bytes, port: int) -> None:
    assert classify(payload, port) in {None, "velodyne", "velodyne_position", "hesai", "ars548", "ouster"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=1500), min_size=1, max_size=8))
def test_garbage_captures_give_a_clear_error_or_a_source(tmp_path_factory: pytest.TempPathFactory,
                                                         payloads: list[bytes]) -> None:
    cap = tmp_path_factory.mktemp("fuzz") / "x.pcap"
    write_pcap(cap, [(i, p) for i, p in enumerate(payloads)], dst_port=4000)
    kinds = {classify(p, 4000) for p in payloads} - {None}
    if len(kinds) != 1:  # nothing recognisable, or several sensors: a clear error naming the port
        with pytest.raises(SourceError, match="port 4000"):
            open_source(cap)
        return
    src = open_source(cap)
    with src:
        list(src.envelopes())  # decodes or counts; never a raw exception
