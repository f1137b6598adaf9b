"""Fuzz suite for the Ouster driver: LiDAR packets (all three UDP profiles), IMU packets and metadata JSON.

Inputs come from a seeded numpy RNG: real packets and metadata of the three captures in
``tests/data/ouster_sdk_pcaps`` mutated (bits, bytes, boundary words, truncation, extension), packets of
the right size whose header fields take adversarial values, and metadata whose values are replaced by
adversarial ones (NaN, ±1e308, booleans, strings, wrong lengths, deep nesting …) or whose JSON text is
mutated.  The verdict for each input:

- no exception other than :class:`~edgefuse.errors.DriverError`;
- packets: accepted iff an independent statement of the documented rules accepts them, and then equal,
  field by field, to a slow ``struct`` decode of the same bytes;
- metadata: an accepted file yields values in their documented ranges, a finite XYZ look-up table of unit
  directions, and packets built from it that decode to finite points.

The default run covers a few thousand inputs in a few seconds; the ``slow`` tests 10^5 per parser (opt in
with ``-m slow``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from edgefuse_drivers.ouster import (
    LidarPacket,
    LidarScan,
    PcapReader,
    SensorInfo,
    lidar_packet_bytes,
    parse_imu_packet,
    parse_lidar_packet,
    xyz_lut,
)

from edgefuse.errors import DriverError

pytestmark = pytest.mark.filterwarnings("error")

PCAPS = Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
CAPTURES = {
    "RNG15_RFL8_NIR8": ("OS-1-128_v2.3.0_1024x10_lb_n3.pcap", "OS-1-128_v2.3.0_1024x10.json"),
    "RNG19_RFL8_SIG16_NIR16_DUAL": ("OS-0-32-U1_v2.2.0_1024x10.pcap", "OS-0-32-U1_v2.2.0_1024x10.json"),
    "LEGACY": ("OS-2-32-U0_v2.0.0_1024x10.pcap", "OS-2-32-U0_v2.0.0_1024x10.json"),
}
PROFILES = sorted(CAPTURES)
DEFAULT_INPUTS = 300
SLOW_INPUTS = 100_000
INT64_MAX = 2**63 - 1


def _opt_in_slow(request: pytest.FixtureRequest) -> None:
    """Slow tests run only when asked for (``-m slow``); nothing in the suite deselects them otherwise."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("10^5-input fuzz run: opt in with -m slow")


def _real_packets(profile: str, port_kind: str, n: int = 8) -> list[bytes]:
    pcap, meta = CAPTURES[profile]
    info = SensorInfo.from_json(PCAPS / meta)
    port = info.udp_port_lidar if port_kind == "lidar" else info.udp_port_imu
    out = []
    for d in PcapReader(PCAPS / pcap):
        if d.dst_port == port:
            out.append(d.payload)
            if len(out) >= n:
                break
    return out


# ----------------------------------------------------------------------------- independent packet decode


def _reference_lidar(buf: bytes, info: SensorInfo) -> dict[str, Any] | None:
    """Slow struct decode of a LiDAR packet by the documented layout and rules; None where refused."""
    profile, h, c = info.udp_profile_lidar, info.pixels_per_column, info.columns_per_packet
    px_size = {"LEGACY": 12, "RNG15_RFL8_NIR8": 4, "RNG19_RFL8_SIG16_NIR16_DUAL": 16}[profile]
    legacy = profile == "LEGACY"
    col_size = (16 + 12 * h + 4) if legacy else (12 + px_size * h)
    head = 0 if legacy else 32
    if len(buf) != head + c * col_size + (0 if legacy else 32):
        return None
    if not legacy:
        if struct.unpack_from("<H", buf, 0)[0] != 1:
            return None
        init_id = int.from_bytes(buf[4:7], "little")
        sn = int.from_bytes(buf[7:12], "little")
        if info.initialization_id and init_id != info.initialization_id:
            return None
        if info.prod_sn.isascii() and info.prod_sn.isdecimal() and sn != int(info.prod_sn):
            return None
    ts, mid, fid, valid = [], [], [], []
    rng = np.zeros((c, h), np.int64)
    refl = np.zeros((c, h), np.int64)
    nir = np.zeros((c, h), np.int64)
    for k in range(c):
        base = head + k * col_size
        t, m = struct.unpack_from("<QH", buf, base)
        if legacy:
            f = struct.unpack_from("<H", buf, base + 10)[0]
            ok = struct.unpack_from("<I", buf, base + 16 + 12 * h)[0] == 0xFFFFFFFF
        else:
            f = 0
            ok = bool(struct.unpack_from("<H", buf, base + 10)[0] & 1)
        ts.append(t)
        mid.append(m)
        fid.append(f)
        valid.append(ok)
        p0 = base + (16 if legacy else 12)
        if legacy:  # range u32 (low 20 bits), reflectivity, signal, near-IR, unused u16
            v = np.array(struct.unpack_from("<" + "IHHHH" * h, buf, p0), np.int64).reshape(h, 5)
            rng[k], refl[k], nir[k] = v[:, 0] & 0xFFFFF, v[:, 1], v[:, 3]
        elif profile == "RNG15_RFL8_NIR8":  # range u16 (low 15 bits, 8 mm), reflectivity u8, near-IR u8
            v = np.array(struct.unpack_from("<" + "HBB" * h, buf, p0), np.int64).reshape(h, 3)
            rng[k], refl[k], nir[k] = (v[:, 0] & 0x7FFF) * 8, v[:, 1], v[:, 2]
        else:  # range word u32 (low 19 bits, reflectivity in the top byte), range2, signal ×2, near-IR, unused
            v = np.array(struct.unpack_from("<" + "IIHHHH" * h, buf, p0), np.int64).reshape(h, 6)
            rng[k], refl[k], nir[k] = v[:, 0] & 0x7FFFF, v[:, 0] >> 24, v[:, 4]
        if not ok:
            rng[k] = 0
    vm = [m for m, ok in zip(mid, valid, strict=True) if ok]
    if any(m >= info.columns_per_frame for m in vm) or any(b <= a for a, b in itertools.pairwise(vm)):
        return None
    if any(t > INT64_MAX for t, ok in zip(ts, valid, strict=True) if ok):
        return None
    if legacy:
        vf = [f for f, ok in zip(fid, valid, strict=True) if ok]
        frame_id = vf[0] if vf else fid[0]
        if any(f != frame_id for f in vf):
            return None
    else:
        frame_id = int.from_bytes(buf[2:4], "little")
    return {"frame_id": frame_id, "timestamp_ns": [t if ok else 0 for t, ok in zip(ts, valid, strict=True)],
            "measurement_id": mid, "valid": valid, "range_mm": rng, "reflectivity": refl, "nir": nir}


def _check_lidar(buf: bytes, info: SensorInfo) -> bool:
    """Parse ``buf``; assert it agrees with the reference; True when accepted."""
    ref = _reference_lidar(buf, info)
    try:
        pkt = parse_lidar_packet(buf, info)
    except DriverError:
        assert ref is None, "a packet the documented rules accept was refused"
        return False
    assert ref is not None, "a packet the documented rules refuse was accepted"
    assert isinstance(pkt, LidarPacket) and pkt.frame_id == ref["frame_id"]
    c, h = info.columns_per_packet, info.pixels_per_column
    assert pkt.range_mm.shape == pkt.reflectivity.shape == pkt.nir.shape == (c, h)
    assert pkt.timestamp_ns.dtype == np.int64 and (pkt.timestamp_ns >= 0).all(), "negative column time"
    for key in ("timestamp_ns", "measurement_id", "valid", "range_mm", "reflectivity", "nir"):
        assert np.array_equal(getattr(pkt, key), np.asarray(ref[key])), f"{key} differs from the reference"
    return True


def _reference_imu(buf: bytes) -> tuple[tuple[int, int, int], list[float], list[float]] | None:
    if len(buf) != 48:
        return None
    stamps = struct.unpack_from("<3Q", buf, 0)
    acc = list(struct.unpack_from("<3f", buf, 24))
    gyro = list(struct.unpack_from("<3f", buf, 36))
    if not all(math.isfinite(v) for v in acc + gyro) or max(map(abs, acc)) > 32 or max(map(abs, gyro)) > 4000:
        return None
    if max(stamps) > INT64_MAX:
        return None
    return stamps, acc, gyro


def _check_imu(buf: bytes) -> bool:
    ref = _reference_imu(buf)
    try:
        p = parse_imu_packet(buf)
    except DriverError:
        assert ref is None, "an IMU packet the documented rules accept was refused"
        return False
    assert ref is not None, "an IMU packet the documented rules refuse was accepted"
    stamps, acc, gyro = ref
    assert (p.sys_ns, p.accel_ns, p.gyro_ns) == stamps
    np.testing.assert_allclose(p.accel_mps2, np.array(acc) * 9.80665, rtol=1e-15)
    np.testing.assert_allclose(p.gyro_radps, np.radians(gyro), rtol=1e-15)
    return True


# ----------------------------------------------------------------------------- mutators


_WORDS = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 1023, 1024, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, 2**63, 2**64 - 1]


def _one(rng: np.random.Generator, values: list[Any]) -> Any:
    """One of ``values`` (rng.choice would turn big integers into floats)."""
    return values[int(rng.integers(len(values)))]


def _mutate_bytes(rng: np.random.Generator, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 8))
        if not b or op == 7:
            b += rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
            continue
        pos = int(rng.integers(0, len(b)))
        if op in (0, 1):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 2:
            b[pos] = int(rng.integers(0, 256))
        elif op in (3, 4):  # a boundary value over 2, 4 or 8 bytes (the packet's field widths)
            width = int(_one(rng, [2, 4, 8]))
            pos -= pos % width
            value = int(_one(rng, _WORDS)) % (1 << (8 * width))
            b[pos : pos + width] = value.to_bytes(width, "little")[: len(b) - pos]
        elif op == 5:
            del b[pos:]
        else:
            del b[pos : pos + int(rng.integers(1, 5))]
    return bytes(b)


def _adversarial_lidar(rng: np.random.Generator, seed: bytes, info: SensorInfo) -> bytes:
    """A packet of the right size with column headers (times, ids, status, frame ids) set adversarially."""
    b = bytearray(seed)
    legacy = info.udp_profile_lidar == "LEGACY"
    head = 0 if legacy else 32
    col = (len(b) - (0 if legacy else 64)) // info.columns_per_packet
    h = info.pixels_per_column
    for k in range(info.columns_per_packet):
        if rng.random() < 0.3:
            base = head + k * col
            what = int(rng.integers(0, 4))
            if what == 0:
                b[base : base + 8] = struct.pack("<Q", _one(rng, [0, 2**62, INT64_MAX, 2**63, 2**64 - 1]))
            elif what == 1:
                b[base + 8 : base + 10] = struct.pack("<H", int(rng.integers(0, 1100)) if rng.random() < 0.8 else
                                                      _one(rng, [0xFFFF, info.columns_per_frame]))
            elif what == 2:
                status = _one(rng, [0, 1, 0xFFFFFFFF, 0xFFFF, 2]) if legacy else _one(rng, [0, 1, 2, 3])
                if legacy:
                    b[base + 16 + 12 * h : base + 20 + 12 * h] = struct.pack("<I", status)
                else:
                    b[base + 10 : base + 12] = struct.pack("<H", status)
            elif legacy:
                b[base + 10 : base + 12] = struct.pack("<H", int(rng.integers(0, 3)))
    if not legacy and rng.random() < 0.2:
        pos = _one(rng, [0, 2, 4, 7])
        b[pos : pos + 2] = struct.pack("<H", int(rng.integers(0, 3)))
    return bytes(b)


def _adversarial_imu(rng: np.random.Generator) -> bytes:
    specials = [0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 31.9, 32.0, 32.5, 3999.0, 4001.0, 1e30, 1e-45]
    vals = [float(rng.normal()) if rng.random() < 0.6 else _one(rng, specials)
            for _ in range(6)]
    stamps = [int(rng.integers(0, 2**62)) if rng.random() < 0.8 else _one(rng, [INT64_MAX, 2**63, 2**64 - 1])
              for _ in range(3)]
    return struct.pack("<3Q6f", *stamps, *vals)


# ----------------------------------------------------------------------------- packet runs


def run_lidar(profile: str, n: int, seed: int) -> tuple[int, int, list[str]]:
    rng = np.random.default_rng(seed)
    info = SensorInfo.from_json(PCAPS / CAPTURES[profile][1])
    seeds = _real_packets(profile, "lidar")
    accepted = rejected = 0
    failures: list[str] = []
    for i in range(n):
        seed_pkt = seeds[i % len(seeds)]
        buf = _adversarial_lidar(rng, seed_pkt, info) if i % 2 else _mutate_bytes(rng, seed_pkt)
        try:
            if _check_lidar(buf, info):
                accepted += 1
            else:
                rejected += 1
        except (AssertionError, Exception) as err:
            failures.append(f"{profile} input {i}: {type(err).__name__}: {err}")
    return accepted, rejected, failures


def run_imu(n: int, seed: int) -> tuple[int, int, list[str]]:
    rng = np.random.default_rng(seed)
    seeds = _real_packets("RNG15_RFL8_NIR8", "imu") + _real_packets("RNG19_RFL8_SIG16_NIR16_DUAL", "imu")
    accepted = rejected = 0
    failures: list[str] = []
    for i in range(n):
        r = i % 3
        buf = (_mutate_bytes(rng, seeds[i % len(seeds)]) if r == 0 else _adversarial_imu(rng) if r == 1
               else rng.integers(0, 256, _one(rng, [48, 48, 47, 49, 0]), dtype=np.uint8).tobytes())
        try:
            if _check_imu(buf):
                accepted += 1
            else:
                rejected += 1
        except (AssertionError, Exception) as err:
            failures.append(f"IMU input {i} {buf.hex()}: {type(err).__name__}: {err}")
    return accepted, rejected, failures


# ----------------------------------------------------------------------------- metadata


_ODD: list[Any] = [
    math.nan, math.inf, -math.inf, 1e308, -1e308, 0, -1, 1, 2, 16, 1023, 1024, 2**24, 2**31, 2**64, 10**400, 1.5,
    True, False, None, "", "abc", "1024", "1024x10", [], {}, [0], [0, 1023], [1] * 16, "LEGACY", "RNG15_RFL8_NIR8",
    7502, 7503, -90.5, 180.5,
]  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):  # the ends of long lists (angle tables) are enough
        for i in sorted({*range(min(3, len(node))), *range(max(0, len(node) - 2), len(node))}):
            out += _paths(node[i], (*prefix, i))
    return out


def _mutate_meta(rng: np.random.Generator, meta: dict[str, Any]) -> dict[str, Any]:
    """Replace, delete, lengthen or shorten 1-3 values anywhere in the metadata tree."""
    paths = _paths(meta)
    for _ in range(int(rng.integers(1, 4))):
        path = paths[int(rng.integers(len(paths)))]
        parent: Any = meta
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            value = parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):  # an earlier mutation replaced the container
            continue
        op = int(rng.integers(0, 6))
        if op <= 2:
            odd = _ODD[int(rng.integers(len(_ODD)))]
            parent[key] = odd if not isinstance(odd, (list, dict)) else json.loads(json.dumps(odd))
        elif op == 3 and isinstance(parent, dict):
            del parent[key]
        elif op == 4 and isinstance(value, list) and value:
            parent[key] = value[: int(rng.integers(0, len(value)))] if rng.random() < 0.5 else value + value[:1]
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300:
            parent[key] = value * _one(rng, [-1.0, 1e6, 1e-6, 1.0000001])
    return meta


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    fmt = flat["data_format"]
    return {
        "beam_intrinsics": {"beam_altitude_angles": flat["beam_altitude_angles"],
                            "beam_azimuth_angles": flat["beam_azimuth_angles"],
                            "lidar_origin_to_beam_origin_mm": flat["lidar_origin_to_beam_origin_mm"],
                            "beam_to_lidar_transform": [1, 0, 0, flat["lidar_origin_to_beam_origin_mm"], 0, 1, 0,
                                                        0, 0, 0, 1, 0, 0, 0, 0, 1]},
        "lidar_data_format": fmt,
        "sensor_info": {"prod_line": flat["prod_line"], "prod_sn": flat["prod_sn"],
                        "initialization_id": flat.get("initialization_id", 0)},
        "config_params": {"lidar_mode": flat["lidar_mode"]},
        "lidar_intrinsics": {"lidar_to_sensor_transform": flat["lidar_to_sensor_transform"]},
        "imu_intrinsics": {"imu_to_sensor_transform": flat["imu_to_sensor_transform"]},
    }


def _synthetic_packet(rng: np.random.Generator, info: SensorInfo) -> bytes:
    """A valid LiDAR packet for ``info`` (random ranges, consecutive columns from a random start)."""
    profile, h, c = info.udp_profile_lidar, info.pixels_per_column, info.columns_per_packet
    start = int(rng.integers(0, info.columns_per_frame // c)) * c
    out = bytearray()
    if profile != "LEGACY":
        sn = int(info.prod_sn) if info.prod_sn.isascii() and info.prod_sn.isdecimal() else 0
        out += struct.pack("<HH", 1, 7) + info.initialization_id.to_bytes(3, "little") + sn.to_bytes(5, "little")
        out += bytes(20)
    for k in range(c):
        ts = 10**12 + (start + k) * 97_656
        if profile == "LEGACY":
            out += struct.pack("<QHHI", ts, start + k, 7, 0)
            px = np.zeros((h, 5), np.int64)
            px[:, 0] = rng.integers(0, 2**20, h)
            out += struct.pack("<" + "IHHHH" * h, *px.ravel().tolist()) + struct.pack("<I", 0xFFFFFFFF)
        elif profile == "RNG15_RFL8_NIR8":
            out += struct.pack("<QHH", ts, start + k, 1)
            px = np.zeros((h, 3), np.int64)
            px[:, 0] = rng.integers(0, 2**15, h)
            out += struct.pack("<" + "HBB" * h, *px.ravel().tolist())
        else:
            out += struct.pack("<QHH", ts, start + k, 1)
            px = np.zeros((h, 6), np.int64)
            px[:, 0] = rng.integers(0, 2**19, h)
            out += struct.pack("<" + "IIHHHH" * h, *px.ravel().tolist())
    if profile != "LEGACY":
        out += bytes(32)
    assert len(out) == lidar_packet_bytes(info)
    return bytes(out)


def _check_info(info: SensorInfo, rng: np.random.Generator, full_lut: bool) -> None:
    """The documented ranges hold, the XYZ look-up table is finite, a valid packet decodes to finite points."""
    h, w, c = info.pixels_per_column, info.columns_per_frame, info.columns_per_packet
    assert 1 <= h <= 256 and 1 <= w <= 8192 and 1 <= c <= w and w % c == 0
    assert all(type(v) is int for v in (h, w, c, info.initialization_id, info.udp_port_lidar, info.udp_port_imu))
    assert len(info.column_window) == 2 and all(0 <= v < w for v in info.column_window)
    assert len(info.pixel_shift_by_row) == h and all(abs(v) < w for v in info.pixel_shift_by_row)
    for arr, lim in ((info.beam_altitude_angles_deg, 90.0), (info.beam_azimuth_angles_deg, 180.0)):
        assert arr.shape == (h,) and np.isfinite(arr).all() and (np.abs(arr) <= lim).all()
    for T in (info.T_sensor_from_lidar, info.T_sensor_from_imu):
        assert np.isfinite(T).all() and np.abs(T[:3, :3] @ T[:3, :3].T - np.eye(3)).max() <= 2e-3
    assert lidar_packet_bytes(info) <= 65_507
    assert 0 <= info.initialization_id < 2**24 and info.udp_port_lidar != info.udp_port_imu
    # the LUT's finiteness does not depend on the column count (theta_e is bounded): a few columns suffice,
    # the full table is built for some inputs
    small = info if full_lut else dataclasses.replace(info, columns_per_frame=min(w, 4 * c), column_window=(0, 0))
    frames: tuple[Literal["sensor", "lidar"], ...] = ("sensor", "lidar")
    for frame in frames:
        lut = xyz_lut(small, frame)
        assert np.isfinite(lut.direction).all() and np.isfinite(lut.offset).all(), "non-finite look-up table"
        tol = 1e-9 if frame == "lidar" else 3e-3  # the sensor frame: rotations are rigid within 1e-3
        assert np.abs(np.linalg.norm(lut.direction, axis=-1) - 1.0).max() <= tol, "directions are not unit"
    lut = xyz_lut(small)
    pkt = parse_lidar_packet(_synthetic_packet(rng, small), small)
    scan = LidarScan(pkt.frame_id, np.zeros(small.columns_per_frame, np.int64),
                     np.zeros(small.columns_per_frame, bool), np.zeros((small.columns_per_frame, h), np.uint32),
                     np.zeros((small.columns_per_frame, h), np.uint16), np.zeros((small.columns_per_frame, h),
                                                                                  np.uint16))
    m = pkt.measurement_id[pkt.valid]
    scan.timestamp_ns[m], scan.column_valid[m], scan.range_mm[m] = pkt.timestamp_ns, True, pkt.range_mm
    pts, _t, ok = scan.xyz(lut)
    assert np.isfinite(pts[ok]).all(), "non-finite points"


def run_metadata(n: int, seed: int, tmp: Path, *, full_lut_every: int = 0) -> tuple[int, int, list[str]]:
    rng = np.random.default_rng(seed)
    texts = [(PCAPS / meta).read_text() for _, meta in CAPTURES.values()]
    texts += [json.dumps(_nested(json.loads(t))) for t in texts]
    accepted = rejected = 0
    failures: list[str] = []
    path = tmp / "meta.json"
    for i in range(n):
        text = texts[i % len(texts)]
        try:
            if i % 8 == 7:  # the JSON text itself mutated, read from a file
                path.write_bytes(_mutate_bytes(rng, text.encode()))
                source: Any = path
            else:
                source = _mutate_meta(rng, json.loads(text))
            try:
                info = SensorInfo.from_json(source)
            except DriverError:
                rejected += 1
                continue
            accepted += 1
            _check_info(info, rng, full_lut=bool(full_lut_every) and accepted % full_lut_every == 0)
        except (AssertionError, Exception) as err:
            failures.append(f"metadata input {i}: {type(err).__name__}: {str(err)[:300]}")
    return accepted, rejected, failures


# ----------------------------------------------------------------------------- the tests


def _verdict(result: tuple[int, int, list[str]], n: int) -> None:
    accepted, rejected, failures = result
    assert not failures, f"{len(failures)} of {n} inputs failed; first:\n" + "\n".join(failures[:5])
    assert accepted + rejected == n and accepted and rejected, (accepted, rejected)


@pytest.mark.parametrize("profile", PROFILES)
def test_lidar_packets(profile: str) -> None:
    _verdict(run_lidar(profile, DEFAULT_INPUTS, seed=PROFILES.index(profile)), DEFAULT_INPUTS)


def test_imu_packets() -> None:
    _verdict(run_imu(3 * DEFAULT_INPUTS, seed=10), 3 * DEFAULT_INPUTS)


def test_metadata(tmp_path: Path) -> None:
    _verdict(run_metadata(DEFAULT_INPUTS, seed=20, tmp=tmp_path), DEFAULT_INPUTS)


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_lidar_packets_slow(profile: str, request: pytest.FixtureRequest) -> None:
    _opt_in_slow(request)
    _verdict(run_lidar(profile, SLOW_INPUTS, seed=100 + PROFILES.index(profile)), SLOW_INPUTS)


@pytest.mark.slow
def test_imu_packets_slow(request: pytest.FixtureRequest) -> None:
    _opt_in_slow(request)
    _verdict(run_imu(SLOW_INPUTS, seed=110), SLOW_INPUTS)


@pytest.mark.slow
def test_metadata_slow(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    _opt_in_slow(request)
    _verdict(run_metadata(SLOW_INPUTS, seed=120, tmp=tmp_path, full_lut_every=500), SLOW_INPUTS)

