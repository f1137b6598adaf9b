"""The Numba path of ``OusterPcap.scans`` / ``LidarScan.xyz`` against the per-packet Python path.

The reference is what ``scans`` did before the kernels: every datagram of ``OusterPcap.packets`` (Python pcap
reader, ``parse_lidar_packet``/``parse_imu_packet``) fed to a ``ScanAssembler``, and XYZ as the NumPy
expression of the module docstring.  Both must agree bit for bit on the real captures and on captures
damaged at random (seeded): bytes changed in the fields the parsers check (packet type, frame and init id,
serial number, measurement ids, column status, timestamps, IMU values), packets truncated, VLAN-tagged,
fragmented and non-UDP records mixed in — same frames, same ``bad_packets`` and ``skipped`` counts in lenient
mode, the same error message in strict mode.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.ouster import LidarPacket, LidarScan, OusterPcap, PcapReader, SensorInfo, xyz_lut
from edgefuse_drivers.ouster.scan import ScanAssembler

from edgefuse.errors import DriverError

PCAPS = Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
CAPTURES = {
    "RNG15_RFL8_NIR8": ("OS-1-128_v2.3.0_1024x10_lb_n3.pcap", "OS-1-128_v2.3.0_1024x10.json"),
    "RNG19_RFL8_SIG16_NIR16_DUAL": ("OS-0-32-U1_v2.2.0_1024x10.pcap", "OS-0-32-U1_v2.2.0_1024x10.json"),
    "LEGACY": ("OS-2-32-U0_v2.0.0_1024x10.pcap", "OS-2-32-U0_v2.0.0_1024x10.json"),
}
FIELDS = ("frame_id", "complete", "timestamp_ns", "column_valid", "range_mm", "reflectivity", "nir")


def _reference_scans(src: OusterPcap, complete_only: bool) -> Iterator[LidarScan]:
    asm = ScanAssembler(src.info, complete_only=complete_only)
    for _, pkt in src.packets():
        if isinstance(pkt, LidarPacket):
            yield from asm.add(pkt)
    yield from asm.finish()


def _same_scans(got: list[LidarScan], want: list[LidarScan]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for name in FIELDS:
            a, b = getattr(g, name), getattr(w, name)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b), name
            else:
                assert a == b, name


def _outcome(src: OusterPcap, scans: Iterator[LidarScan]) -> tuple[list[LidarScan], str | None]:
    got: list[LidarScan] = []
    try:
        got.extend(scans)
    except DriverError as exc:
        return got, str(exc)
    return got, None


@pytest.mark.parametrize("profile", sorted(CAPTURES))
@pytest.mark.parametrize("complete_only", [True, False])
def test_real_captures_bit_identical(profile: str, complete_only: bool) -> None:
    pcap, meta = CAPTURES[profile]
    src = OusterPcap(PCAPS / pcap, PCAPS / meta)
    got = list(src.scans(complete_only=complete_only))
    _same_scans(got, list(_reference_scans(OusterPcap(PCAPS / pcap, PCAPS / meta), complete_only)))
    assert got
    lut = xyz_lut(src.info)
    for scan in got:
        xyz, t, ok = scan.xyz(lut)
        want = (scan.range_mm.astype(np.float64) * 1e-3)[..., None] * lut.direction + lut.offset
        assert np.array_equal(xyz, want.reshape(-1, 3))
        assert np.array_equal(t, np.repeat(scan.timestamp_ns, scan.range_mm.shape[1]))
        assert np.array_equal(ok, ((scan.range_mm > 0) & scan.column_valid[:, None]).reshape(-1))


def _eth(ip: bytes, vlan: bool = False) -> bytes:
    return b"\x00" * 12 + (b"\x81\x00\x00\x05" if vlan else b"") + b"\x08\x00" + ip


def _ip(body: bytes, ident: int, flags: int = 0) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, flags, 64, 17, 0,
                       bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])) + body


def _records(payload: bytes, port: int, ident: int, how: str) -> list[bytes]:
    udp = struct.pack(">HHHH", 4000, port, 8 + len(payload), 0) + payload
    if how == "fragmented":
        cut = (len(udp) // 2) // 8 * 8
        return [_eth(_ip(udp[:cut], ident, 0x2000)), _eth(_ip(udp[cut:], ident, cut // 8))]
    return [_eth(_ip(udp, ident), vlan=how == "vlan")]


def _damaged_capture(profile: str, seed: int, path: Path) -> None:
    """The capture with some datagrams damaged in the checked fields, some re-framed."""
    pcap, meta = CAPTURES[profile]
    info = SensorInfo.from_json(PCAPS / meta)
    rng = np.random.default_rng(seed)
    h, cpp = info.pixels_per_column, info.columns_per_packet
    legacy = profile == "LEGACY"
    header = 0 if legacy else 32
    records: list[bytes] = []
    for i, d in enumerate(PcapReader(PCAPS / pcap)):
        data = bytearray(d.payload)
        col = (len(data) - 2 * header) // cpp if len(data) > 48 else 0
        if rng.random() < 0.08:
            if col:
                c = int(rng.integers(cpp))
                field = [0, 2, 4, 7, 11, header + c * col + 7, header + c * col + 8, header + c * col + 9,
                         header + c * col + 10, header + c * col + (16 + 12 * h if legacy else 10)]
                at = int(rng.choice(field[5:] if legacy else field))
            else:
                at = int(rng.integers(len(data)))
            data[at] = int(rng.integers(256))
        if rng.random() < 0.02:
            data = data[: int(rng.integers(1, len(data)))]
        how = str(rng.choice(["plain", "plain", "plain", "plain", "vlan", "fragmented"]))
        records += _records(bytes(data), d.dst_port, i + 1, how)
        if rng.random() < 0.03:
            records.append(b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28)  # ARP
    out = bytearray(b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(records):
        out += struct.pack("<IIII", 1000 + i, 7 * i, len(fr), len(fr)) + fr
    path.write_bytes(bytes(out))


@pytest.mark.parametrize("profile", sorted(CAPTURES))
def test_damaged_captures_same_as_python_path(profile: str, tmp_path: Path) -> None:
    meta = PCAPS / CAPTURES[profile][1]
    errors = 0
    for seed in range(6):
        path = tmp_path / f"d{seed}.pcap"
        _damaged_capture(profile, seed, path)
        for complete_only in (True, False):
            fast, ref = OusterPcap(path, meta, strict=False), OusterPcap(path, meta, strict=False)
            _same_scans(list(fast.scans(complete_only=complete_only)),
                        list(_reference_scans(ref, complete_only)))
            assert fast.bad_packets == ref.bad_packets and fast.skipped == ref.skipped
        fast, ref = OusterPcap(path, meta), OusterPcap(path, meta)
        got, err = _outcome(fast, fast.scans())
        want, want_err = _outcome(ref, _reference_scans(ref, True))
        _same_scans(got, want)
        assert err == want_err
        errors += err is not None
    assert errors  # the damage is caught, not only tolerated


def test_lut_of_another_sensor_refused() -> None:
    pcap, meta = CAPTURES["LEGACY"]
    scan = next(OusterPcap(PCAPS / pcap, PCAPS / meta).scans())
    other = xyz_lut(SensorInfo.from_json(PCAPS / CAPTURES["RNG15_RFL8_NIR8"][1]))
    with pytest.raises(DriverError, match="does not fit"):
        scan.xyz(other)
