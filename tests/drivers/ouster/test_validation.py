"""Ouster metadata and packets: every value the decoder uses is checked, and a bad one is a DriverError
naming the field (never an IndexError, a MemoryError or a non-finite look-up table)."""

from __future__ import annotations

import copy
import json
import math
import struct
from pathlib import Path
from typing import Any

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

from edgefuse.errors import DriverError

PCAPS = Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
OS1 = ("OS-1-128_v2.3.0_1024x10_lb_n3.pcap", "OS-1-128_v2.3.0_1024x10.json")  # RNG15_RFL8_NIR8
OS0 = ("OS-0-32-U1_v2.2.0_1024x10.pcap", "OS-0-32-U1_v2.2.0_1024x10.json")  # RNG19_RFL8_SIG16_NIR16_DUAL
OS2 = ("OS-2-32-U0_v2.0.0_1024x10.pcap", "OS-2-32-U0_v2.0.0_1024x10.json")  # LEGACY


def _meta(name: str = OS1[1]) -> dict[str, Any]:
    return json.loads((PCAPS / name).read_text())  # type: ignore[no-any-return]


def _with(path: str, value: Any, name: str = OS1[1]) -> dict[str, Any]:
    """The metadata with the value at ``path`` ("a.b" or "a.0") replaced (or deleted for ...)."""
    meta = _meta(name)
    keys = path.split(".")
    node: Any = meta
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return meta


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        # item 9 of the issue: accepted, then a non-finite XYZ look-up table
        ("beam_altitude_angles.5", 1e308, r"beam_altitude_angles: value 5 must be a finite number in \[-90, 90\]"),
        ("beam_altitude_angles.0", -1e308, "beam_altitude_angles: value 0"),
        ("beam_azimuth_angles.7", math.nan, "beam_azimuth_angles: value 7 must be a finite number"),
        ("beam_azimuth_angles.7", math.inf, "beam_azimuth_angles: value 7"),
        ("beam_azimuth_angles.7", 400.0, r"in \[-180, 180\]"),
        # item 9: a one-element column_window raised IndexError
        ("data_format.column_window", [5], r"data_format.column_window: expected 2 values, got 1"),
        ("data_format.column_window", [0, 1024], r"column_window\[1\]: expected an integer in 0\.\.1023"),
        ("data_format.column_window", "0,1023", "column_window: expected a list"),
        ("data_format.columns_per_frame", 10**9, r"columns_per_frame: expected an integer in 1\.\.8192"),
        ("data_format.columns_per_frame", True, "columns_per_frame: expected an integer"),
        ("data_format.columns_per_frame", 1024.5, "columns_per_frame: expected an integer"),
        ("data_format.columns_per_frame", "1024", "columns_per_frame: expected an integer"),
        ("data_format.pixels_per_column", 0, "pixels_per_column: expected an integer in 1..256"),
        ("data_format.columns_per_packet", 24, "24 does not divide 1024"),
        ("data_format.columns_per_packet", 512, r"larger than a UDP datagram \(65507 bytes\)"),
        ("data_format.pixel_shift_by_row", [0] * 5, "pixel_shift_by_row: expected 128"),
        ("data_format.pixel_shift_by_row.3", 5000, r"pixel_shift_by_row\[3\]"),
        ("data_format.udp_profile_imu", "ACCEL32_GYRO32_NMEA", "unsupported Ouster UDP IMU profile"),
        ("data_format", [], "data_format: must be an object"),
        ("lidar_origin_to_beam_origin_mm", math.nan, "lidar_origin_to_beam_origin_mm: expected a finite number"),
        ("lidar_origin_to_beam_origin_mm", 1e308, "lidar_origin_to_beam_origin_mm"),
        ("lidar_to_sensor_transform", [1] * 16, "lidar_to_sensor_transform: last row must be 0 0 0 1"),
        ("lidar_to_sensor_transform", [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "is not a rotation"),
        ("lidar_to_sensor_transform", [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1e308, 0, 0, 0, 1],
         "lidar_to_sensor_transform: value 11 must be a finite number"),
        ("lidar_to_sensor_transform", [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1e7, 0, 0, 0, 1], "larger than 10000 mm"),
        ("imu_to_sensor_transform", [1, 0, 0], "imu_to_sensor_transform: expected 16"),
        ("imu_to_sensor_transform", ..., "imu_to_sensor_transform: missing"),
        ("initialization_id", 2**24, "initialization_id: expected an integer in 0..16777215"),
        ("prod_sn", "9" * 5000, "prod_sn: .* does not fit the packets' 40-bit serial number"),
        ("prod_sn", ["1"], "prod_sn: expected a string"),
        ("udp_port_imu", 7502, "same port 7502 as udp_port_lidar"),
        ("udp_port_lidar", 70000, r"udp_port_lidar: expected an integer in 0\.\.65535"),
        ("lidar_mode", "2048x10", "lidar_mode: '2048x10' disagrees with data_format.columns_per_frame 1024"),
        ("lidar_mode", "1024x" + "9" * 5000, "lidar_mode: expected <columns>x<rate in Hz>"),
        ("beam_altitude_angles", ..., "beam_altitude_angles: missing"),
    ],
)
def test_bad_metadata_names_the_field(path: str, value: Any, match: str) -> None:
    with pytest.raises(DriverError, match=match):
        SensorInfo.from_json(_with(path, value))


def test_beam_to_lidar_transform_checked() -> None:
    nested = _nested(_meta())
    nested["beam_intrinsics"]["beam_to_lidar_transform"] = [0, -1, 0, 15.8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    with pytest.raises(DriverError, match=r"beam_to_lidar_transform: rotation .* is not the identity"):
        SensorInfo.from_json(nested)
    nested["beam_intrinsics"]["beam_to_lidar_transform"] = [1, 0, 0]
    with pytest.raises(DriverError, match="beam_to_lidar_transform: expected 16"):
        SensorInfo.from_json(nested)


def test_unreadable_json(tmp_path: Path) -> None:
    cases = {"deep.json": "[" * 100_000, "long_int.json": "[" + "1" * 5000 + "]", "list.json": "[1, 2]"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DriverError) as info:
            SensorInfo.from_json(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """The same metadata in the nested layout of newer firmware."""
    fmt = flat["data_format"]
    return {
        "beam_intrinsics": {k: flat[k] for k in ("beam_altitude_angles", "beam_azimuth_angles",
                                                 "lidar_origin_to_beam_origin_mm")}
        | {"beam_to_lidar_transform": [1, 0, 0, flat["lidar_origin_to_beam_origin_mm"], 0, 1, 0, 0, 0, 0, 1, 0,
                                       0, 0, 0, 1]},
        "lidar_data_format": copy.deepcopy(fmt),
        "sensor_info": {k: flat[k] for k in ("prod_line", "prod_sn", "initialization_id")},
        "config_params": {"lidar_mode": flat["lidar_mode"], "udp_port_lidar": flat["udp_port_lidar"],
                          "udp_port_imu": flat["udp_port_imu"]},
        "lidar_intrinsics": {"lidar_to_sensor_transform": flat["lidar_to_sensor_transform"]},
        "imu_intrinsics": {"imu_to_sensor_transform": flat["imu_to_sensor_transform"]},
    }


def test_nested_layout_reads_the_same() -> None:
    flat = SensorInfo.from_json(_meta())
    nested = SensorInfo.from_json(_nested(_meta()))
    for name in flat.__dataclass_fields__:
        a, b = getattr(flat, name), getattr(nested, name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, name
    bad = _nested(_meta())
    bad["lidar_data_format"]["column_window"] = [7]
    with pytest.raises(DriverError, match=r"lidar_data_format\.column_window: expected 2"):
        SensorInfo.from_json(bad)


def test_old_metadata_without_data_format() -> None:
    meta = {k: v for k, v in _meta(OS2[1]).items() if k != "data_format"}
    info = SensorInfo.from_json(meta)
    assert (info.columns_per_frame, info.columns_per_packet, info.pixels_per_column) == (1024, 16, 32)
    assert info.column_window == (0, 1023) and info.udp_profile_lidar == "LEGACY"
    meta["lidar_mode"] = "1000x10"
    with pytest.raises(DriverError, match="not a whole number of 16-column packets"):
        SensorInfo.from_json(meta)


@pytest.mark.parametrize("names", [OS0, OS1, OS2])
def test_real_metadata_accepted_with_finite_lut(names: tuple[str, str]) -> None:
    info = SensorInfo.from_json(PCAPS / names[1])
    for frame in ("sensor", "lidar"):
        lut = xyz_lut(info, frame)
        assert np.isfinite(lut.direction).all() and np.isfinite(lut.offset).all()
        np.testing.assert_allclose(np.linalg.norm(lut.direction, axis=-1), 1.0, atol=1e-12)


# ----------------------------------------------------------------------------- packets


def _first(names: tuple[str, str], port: int) -> bytes:
    return next(d.payload for d in PcapReader(PCAPS / names[0]) if d.dst_port == port)


def test_lidar_packet_contents_checked() -> None:
    for names in (OS1, OS0, OS2):
        info = SensorInfo.from_json(PCAPS / names[1])
        pkt = bytearray(_first(names, info.udp_port_lidar))
        parse_lidar_packet(bytes(pkt), info)
        col = lidar_packet_bytes(info) - (0 if info.udp_profile_lidar == "LEGACY" else 64)
        col //= info.columns_per_packet
        head = 0 if info.udp_profile_lidar == "LEGACY" else 32
        # column 3 repeats column 2's measurement id
        bad = bytearray(pkt)
        bad[head + 3 * col + 8 : head + 3 * col + 10] = pkt[head + 2 * col + 8 : head + 2 * col + 10]
        with pytest.raises(DriverError, match="not strictly increasing"):
            parse_lidar_packet(bytes(bad), info)
        # a timestamp beyond int64 (it read as a negative time before)
        bad = bytearray(pkt)
        bad[head : head + 8] = struct.pack("<Q", 2**63 + 5)
        with pytest.raises(DriverError, match="beyond int64"):
            parse_lidar_packet(bytes(bad), info)


def test_legacy_packet_with_mixed_frame_ids() -> None:
    info = SensorInfo.from_json(PCAPS / OS2[1])
    pkt = bytearray(_first(OS2, info.udp_port_lidar))
    col = lidar_packet_bytes(info) // info.columns_per_packet
    pkt[5 * col + 10 : 5 * col + 12] = struct.pack("<H", 4321)
    with pytest.raises(DriverError, match="frame ids"):
        parse_lidar_packet(bytes(pkt), info)


def test_invalid_columns_carry_no_garbage_time() -> None:
    info = SensorInfo.from_json(PCAPS / OS1[1])
    pkt = bytearray(_first(OS1, info.udp_port_lidar))
    col = (lidar_packet_bytes(info) - 64) // info.columns_per_packet
    pkt[32 + col + 10 : 32 + col + 12] = b"\0\0"  # column 1: status invalid
    pkt[32 + col : 32 + col + 8] = struct.pack("<Q", 2**64 - 1)
    p = parse_lidar_packet(bytes(pkt), info)
    assert not p.valid[1] and p.timestamp_ns[1] == 0 and not p.range_mm[1].any()
    assert (p.timestamp_ns >= 0).all()


@pytest.mark.parametrize(
    ("acc", "gyro", "stamps", "match"),
    [
        ((1e30, 0, 0), (0, 0, 0), (1, 2, 3), r"beyond ±32 g / ±4000 deg/s"),
        ((0, 0, 1), (0, 5000, 0), (1, 2, 3), "not a measurement"),
        ((0, 0, 1), (0, 0, 0), (1, 2, 2**63), "stamps .* beyond int64"),
    ],
)
def test_imu_packet_contents_checked(acc: tuple[float, ...], gyro: tuple[float, ...], stamps: tuple[int, ...],
                                     match: str) -> None:
    with pytest.raises(DriverError, match=match):
        parse_imu_packet(struct.pack("<3Q6f", *stamps, *acc, *gyro))


def test_imu_batch_with_huge_stamp_is_counted_in_lenient_mode(tmp_path: Path) -> None:
    """A capture whose IMU packet carries a stamp beyond int64: strict raises DriverError (it used to raise
    OverflowError from imu_batch), lenient counts it and keeps the good samples."""
    good = struct.pack("<3Q6f", 1, 2, 3, 0, 0, 1, 0, 0, 0)
    bad = struct.pack("<3Q6f", 1, 2, 2**64 - 1, 0, 0, 1, 0, 0, 0)
    later = struct.pack("<3Q6f", 4, 5, 6, 0, 0, 1, 0, 0, 0)
    path = tmp_path / "imu.pcap"
    path.write_bytes(_pcap([_udp(p, 7503) for p in (good, bad, later)]))
    with pytest.raises(DriverError, match="beyond int64"):
        OusterPcap(path, PCAPS / OS1[1]).imu_batch()
    lenient = OusterPcap(path, PCAPS / OS1[1], strict=False)
    batch = lenient.imu_batch()
    assert batch.stamps_ns.tolist() == [3, 6] and lenient.bad_packets == 1


def _udp(payload: bytes, dport: int) -> bytes:
    body = struct.pack(">HHHH", 4000, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 17, 0, bytes([10, 0, 0, 2]),
                     bytes([10, 0, 0, 1])) + body
    return b"\x00" * 12 + b"\x08\x00" + ip


def _pcap(frames: list[bytes]) -> bytes:
    out = bytearray(b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(frames):
        out += struct.pack("<IIII", 100 + i, 0, len(fr), len(fr)) + fr
    return bytes(out)
