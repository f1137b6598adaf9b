"""Ouster pcap decoder against the official ouster-sdk's values and the sensor geometry; bad input."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.ouster import (
    OusterPcap,
    PcapReader,
    SensorInfo,
    lidar_packet_bytes,
    parse_imu_packet,
    parse_lidar_packet,
    xyz_lut,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import DriverError

DATA = Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_pcaps"
PCAPS = DATA / "tests" / "pcaps"
CAPTURES = {
    "OS-1-128_v2.3.0_1024x10_lb_n3.pcap": "OS-1-128_v2.3.0_1024x10.json",
    "OS-0-32-U1_v2.2.0_1024x10.pcap": "OS-0-32-U1_v2.2.0_1024x10.json",
    "OS-2-32-U0_v2.0.0_1024x10.pcap": "OS-2-32-U0_v2.0.0_1024x10.json",
}
OS1 = "OS-1-128_v2.3.0_1024x10_lb_n3.pcap"


@pytest.fixture(scope="module")
def sdk_reference() -> dict[str, list[dict[str, object]]]:
    return json.loads((DATA / "ouster_sdk_1.0.1_reference.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("pcap", sorted(CAPTURES))
def test_matches_ouster_sdk(pcap: str, sdk_reference: dict[str, list[dict[str, object]]]) -> None:
    src = OusterPcap(PCAPS / pcap, PCAPS / CAPTURES[pcap])
    lut = xyz_lut(src.info)
    scans = list(src.scans())
    ref = sdk_reference[pcap]
    assert [s.frame_id for s in scans] == [f["frame_id"] for f in ref]
    for scan, f in zip(scans, ref, strict=True):
        xyz, _t, ok = scan.xyz(lut)
        assert scan.complete and int(ok.sum()) == f["n"]
        assert [int(scan.timestamp_ns[i]) for i in (0, 1, 511, 1023)] == f["ts"]
        np.testing.assert_allclose(xyz[ok].sum(axis=0), np.asarray(f["sum_xyz"]), atol=1e-6)
        grid = xyz.reshape(*scan.range_mm.shape, 3)
        samples = f["samples"]
        assert isinstance(samples, list) and len(samples) >= 10
        for col, row, p, rng_mm in samples:
            assert int(scan.range_mm[col, row]) == rng_mm
            np.testing.assert_allclose(grid[col, row], p, atol=1e-6)


def test_known_capture_figures() -> None:
    """The numbers an independent parser found (ouster_sdk_pcaps/SOURCE.md)."""
    figures = {OS1: (322_536, 1.26, 246.9), "OS-0-32-U1_v2.2.0_1024x10.pcap": (21_631, 1.8, 62.4),
               "OS-2-32-U0_v2.0.0_1024x10.pcap": (28_541, 4.7, 193.4)}
    for pcap, (count, lo, hi) in figures.items():
        scans = list(OusterPcap(PCAPS / pcap, PCAPS / CAPTURES[pcap]).scans())
        r = np.concatenate([s.range_mm[s.range_mm > 0] for s in scans]) * 1e-3
        assert r.size == count
        assert r.min() == pytest.approx(lo, abs=0.06) and r.max() == pytest.approx(hi, abs=0.06)


def test_geometry_and_timing() -> None:
    src = OusterPcap(PCAPS / OS1, PCAPS / CAPTURES[OS1])
    info = src.info
    assert info.prod_sn == "122201000998" and info.udp_profile_lidar == "RNG15_RFL8_NIR8"
    lut = xyz_lut(info, frame="lidar")
    n_m = info.lidar_origin_to_beam_origin_mm * 1e-3
    theta = 2 * np.pi * (1 - np.arange(info.columns_per_frame) / info.columns_per_frame)
    beam_origin = np.stack([n_m * np.cos(theta), n_m * np.sin(theta), 0 * theta], axis=-1)
    prev_end = None
    for scan in src.scans():
        ts = scan.timestamp_ns
        assert np.all(np.diff(ts) > 0)  # column timestamps strictly increasing
        assert (ts[-1] - ts[0]) == pytest.approx(100e6 * 1023 / 1024, rel=0.01)  # 10 Hz
        if prev_end is not None:
            assert 0 < ts[0] - prev_end < 1e6
        prev_end = int(ts[-1])
        xyz, _t, _ok = scan.xyz(lut)
        grid = xyz.reshape(*scan.range_mm.shape, 3)
        r = scan.range_mm * 1e-3
        # distance from the beam origin equals the measured range minus the origin offset
        d = np.linalg.norm(grid - beam_origin[:, None, :], axis=-1)
        has = scan.range_mm > 0
        np.testing.assert_allclose(d[has], r[has] - n_m, atol=1e-9)
        # elevation of each return is its beam's altitude angle
        elev = np.degrees(np.arcsin(grid[..., 2] / np.where(has, d, 1.0)))
        np.testing.assert_allclose(np.where(has, elev, 0), np.where(has, info.beam_altitude_angles_deg, 0),
                                   atol=1e-6)


def test_imu_packets() -> None:
    src = OusterPcap(PCAPS / OS1, PCAPS / CAPTURES[OS1])
    imu = src.imu_batch()
    assert imu.stamps_ns.shape == (30,)
    dt = np.diff(imu.stamps_ns) * 1e-9
    assert np.all(dt > 0) and np.median(dt) == pytest.approx(0.01, rel=0.05)  # 100 Hz
    g = np.linalg.norm(imu.linear_acceleration, axis=1)
    assert np.all((g > 9.0) & (g < 11.5))  # gravity (the sensor reads ≈ 1.1 g: accelerometer scale)
    assert np.abs(imu.angular_velocity).max() < 0.2  # rad/s: slow, smooth motion
    scans = list(src.scans())
    # IMU and LiDAR share the sensor clock: the IMU samples span the sweeps (from 22 ms into the first)
    assert scans[0].timestamp_ns[0] < imu.stamps_ns[0] < scans[0].timestamp_ns[0] + 30e6
    assert imu.stamps_ns[-1] > scans[-1].timestamp_ns[-1]


def test_pointcloud_layout() -> None:
    src = OusterPcap(PCAPS / OS1, PCAPS / CAPTURES[OS1])
    scan = next(iter(src.scans()))
    cloud = scan.to_pointcloud(xyz_lut(src.info))
    assert cloud.stamp_ns == int(scan.timestamp_ns[0]) and len(cloud.points) == int((scan.range_mm > 0).sum())
    assert cloud.points["t"].max() == pytest.approx(99.85e6, rel=0.01)
    assert set(cloud.points.dtype.names or ()) >= {"x", "y", "z", "t", "ring", "intensity"}


# -- bad input ------------------------------------------------------------------------------------
def _pcap_bytes(frames: list[bytes], magic: bytes = b"\xd4\xc3\xb2\xa1", linktype: int = 1) -> bytes:
    out = bytearray(magic + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, linktype))
    for i, fr in enumerate(frames):
        out += struct.pack("<IIII", 100 + i, 0, len(fr), len(fr)) + fr
    return bytes(out)


def _ipv4_udp(  # noqa: PLR0917
    payload: bytes, dport: int, ident: int = 1, frag: int = 0, more: bool = False,
              udp: bool = True, vlan: bool = False) -> bytes:
    body = (struct.pack(">HHHH", 4000, dport, 8 + len(payload), 0) + payload) if udp else payload
    flags = (0x2000 if more else 0) | (frag // 8)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, flags, 64, 17, 0,
                     bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])) + body
    eth = b"\x00" * 12 + ((b"\x81\x00\x00\x05") if vlan else b"") + b"\x08\x00"
    return eth + ip


def test_pcap_reader_fragments_and_vlan(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40  # 10240 bytes
    udp = struct.pack(">HHHH", 4000, 7502, 8 + len(payload), 0) + payload
    parts = [udp[:1480], udp[1480:2960], udp[2960:]]
    frames = []
    for i, part in enumerate(parts):
        off = 1480 * i
        flags = (0x2000 if i < 2 else 0) | (off // 8)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(part), 77, flags, 64, 17, 0,
                         bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])) + part
        frames.append(b"\x00" * 12 + b"\x08\x00" + ip)
    frames.insert(1, _ipv4_udp(b"hello", 7503, ident=5, vlan=True))
    frames.append(b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28)  # ARP
    path = tmp_path / "f.pcap"
    path.write_bytes(_pcap_bytes(frames))
    reader = PcapReader(path)
    got = list(reader)
    assert [(d.dst_port, len(d.payload)) for d in got] == [(7503, 5), (7502, len(payload))]
    assert got[1].payload == payload and got[0].src == "10.0.0.2"
    assert reader.skipped == {"not IPv4": 1}


def test_garbage_and_truncated_pcaps_raise_driver_error(tmp_path: Path) -> None:
    good = (PCAPS / OS1).read_bytes()
    cases = {
        "garbage": b"\x00\x01garbage" * 10,
        "short": good[:10],
        "pcapng": b"\x0a\x0d\x0d\x0a" + good[4:100],
        "truncated record": good[:24 + 16 + 5000],
        "truncated header": good[:24 + 16 + 8490 + 7],
        "huge record": good[:24] + struct.pack("<IIII", 0, 0, 10_000_000, 10_000_000) + b"\x00" * 100,
        "bad ip": _pcap_bytes([b"\x00" * 12 + b"\x08\x00" + b"\x45\x00\xff\xff" + b"\x00" * 16]),
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pcap"
        path.write_bytes(blob)
        with pytest.raises(DriverError) as info:
            list(OusterPcap(path, PCAPS / CAPTURES[OS1]).scans())
        assert str(path) in str(info.value), name


def test_truncated_and_foreign_packets(tmp_path: Path) -> None:
    info = SensorInfo.from_json(PCAPS / CAPTURES[OS1])
    pkt = next(d.payload for d in PcapReader(PCAPS / OS1) if d.dst_port == 7502)
    assert len(pkt) == lidar_packet_bytes(info) == 8448
    with pytest.raises(DriverError, match="8448 bytes, got 8447"):
        parse_lidar_packet(pkt[:-1], info)
    with pytest.raises(DriverError, match="packet type"):
        parse_lidar_packet(b"\x07\x00" + pkt[2:], info)
    with pytest.raises(DriverError, match="serial number"):
        parse_lidar_packet(pkt[:7] + b"\x01\x02\x03\x04\x05" + pkt[12:], info)
    with pytest.raises(DriverError, match="48 bytes"):
        parse_imu_packet(b"\x00" * 47)
    with pytest.raises(DriverError, match="NaN"):
        parse_imu_packet(b"\x00" * 24 + struct.pack("<6f", np.nan, 0, 0, 0, 0, 0))
    # a truncated lidar packet inside a capture: strict raises, lenient skips and counts
    frames = [_ipv4_udp(pkt, 7502), _ipv4_udp(pkt[:1000], 7502), _ipv4_udp(pkt, 7502)]
    path = tmp_path / "t.pcap"
    path.write_bytes(_pcap_bytes(frames))
    with pytest.raises(DriverError, match="got 1000"):
        list(OusterPcap(path, info).packets())
    lenient = OusterPcap(path, info, strict=False)
    assert len(list(lenient.packets())) == 2 and lenient.bad_packets == 1


def test_bad_metadata(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(DriverError, match="not valid JSON"):
        SensorInfo.from_json(tmp_path / "a.json")
    meta = json.loads((PCAPS / CAPTURES[OS1]).read_text())
    del meta["beam_altitude_angles"]
    with pytest.raises(DriverError, match="beam_altitude_angles"):
        SensorInfo.from_json(meta)
    meta = json.loads((PCAPS / CAPTURES[OS1]).read_text())
    meta["beam_azimuth_angles"] = meta["beam_azimuth_angles"][:5]
    with pytest.raises(DriverError, match="128 finite angles"):
        SensorInfo.from_json(meta)
    meta = json.loads((PCAPS / CAPTURES[OS1]).read_text())
    meta["data_format"]["udp_profile_lidar"] = "FUSA_RNG15_RFL8_NIR8_DUAL"
    with pytest.raises(DriverError, match="unsupported"):
        OusterPcap(PCAPS / OS1, SensorInfo.from_json(meta))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=9000))
def test_parsers_never_raise_anything_but_driver_error(blob: bytes) -> None:
    info = SensorInfo.from_json(PCAPS / CAPTURES[OS1])
    for fn in (lambda b: parse_lidar_packet(b, info), parse_imu_packet):
        with contextlib.suppress(DriverError):
            fn(blob)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_pcap_reader_never_raises_anything_but_driver_error(blob: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for data in (blob, _pcap_bytes([blob]), _pcap_bytes([b"\x00" * 12 + b"\x08\x00" + blob])):
            path = Path(d) / "x.pcap"
            path.write_bytes(data)
            with contextlib.suppress(DriverError):
                list(PcapReader(path))
