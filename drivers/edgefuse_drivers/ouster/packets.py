"""Ouster LiDAR and IMU UDP packet parsing (firmware 2.x formats).

LiDAR packets hold ``columns_per_packet`` measurement blocks (columns).  Layouts (little-endian):

- ``LEGACY``: no packet header.  Column: timestamp u64 ns, measurement_id u16, frame_id u16,
  encoder count u32; ``pixels_per_column`` pixels of 12 bytes (range u32, low 20 bits, mm;
  reflectivity u16; signal u16; near-IR u16; unused u16); column status u32 (``0xffffffff`` = valid).
- Configurable profiles: 32-byte packet header (packet_type u16 = 1, frame_id u16, init_id u24,
  serial number u40, …), columns of a 12-byte header (timestamp u64 ns, measurement_id u16,
  status u16, bit 0 = valid) and pixels, then a 32-byte footer.  Pixels:

  * ``RNG15_RFL8_NIR8`` (low bandwidth, 4 bytes): range u16 low 15 bits in units of 8 mm,
    reflectivity u8, near-IR u8;
  * ``RNG19_RFL8_SIG16_NIR16_DUAL`` (16 bytes): range u32 low 19 bits mm with reflectivity in the
    top byte, second return likewise, signal u16 ×2, near-IR u16, unused u16 (first return used).

IMU packets (``LEGACY`` IMU profile, 48 bytes): diagnostic time, accelerometer time, gyroscope time
(u64 ns each), acceleration x/y/z (f32, g), angular velocity x/y/z (f32, deg/s).

A range of 0 means no return.  Every parser checks the packet size first and raises
:class:`~edgefuse.errors.DriverError` (never ``struct.error``/``ValueError``/``IndexError``) on a
wrong size, a wrong packet type, and on contents no sensor sends, so that garbage of the right size
is refused rather than decoded: LiDAR columns marked valid must carry measurement ids inside the
frame, strictly increasing within the packet, timestamps that fit an int64 and (``LEGACY``) the
packet's frame id; IMU samples must be finite, within twice the largest full-scale range of MEMS
IMUs (:data:`MAX_ACCEL_G` g, :data:`MAX_GYRO_DPS` °/s) and stamped with int64-sized times.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse.errors import DriverError
from edgefuse_drivers.ouster.metadata import SUPPORTED_PROFILES, SensorInfo

__all__ = [
    "G_MPS2",
    "IMU_PACKET_BYTES",
    "MAX_ACCEL_G",
    "MAX_GYRO_DPS",
    "SUPPORTED_PROFILES",
    "ImuPacket",
    "LidarPacket",
    "lidar_packet_bytes",
    "parse_imu_packet",
    "parse_lidar_packet",
]

#: standard gravity: IMU accelerations are reported in g
G_MPS2 = 9.80665
IMU_PACKET_BYTES = 48
#: IMU readings beyond these are not measurements (twice the ±16 g / ±2000 °/s full scale of MEMS IMUs)
MAX_ACCEL_G = 32.0
MAX_GYRO_DPS = 4000.0
_INT64_MAX = 2**63 - 1
_HEADER = 32
_FOOTER = 32


@dataclass(frozen=True, slots=True)
class _Layout:
    header: int
    column: np.dtype[np.void]
    footer: int


@functools.lru_cache(maxsize=16)
def _layout(profile: str, h: int) -> _Layout:
    if profile == "LEGACY":
        px = np.dtype([("range", "<u4"), ("reflectivity", "<u2"), ("signal", "<u2"), ("nir", "<u2"),
                       ("unused", "<u2")])
        col = np.dtype([("timestamp", "<u8"), ("measurement_id", "<u2"), ("frame_id", "<u2"),
                        ("encoder", "<u4"), ("px", px, (h,)), ("status", "<u4")])
        return _Layout(0, col, 0)
    if profile == "RNG15_RFL8_NIR8":
        px = np.dtype([("range", "<u2"), ("reflectivity", "u1"), ("nir", "u1")])
    elif profile == "RNG19_RFL8_SIG16_NIR16_DUAL":
        px = np.dtype([("range", "<u4"), ("range2", "<u4"), ("signal", "<u2"), ("signal2", "<u2"),
                       ("nir", "<u2"), ("unused", "<u2")])
    else:
        raise DriverError(f"unsupported Ouster UDP lidar profile {profile!r} (supported: {SUPPORTED_PROFILES})")
    col = np.dtype([("timestamp", "<u8"), ("measurement_id", "<u2"), ("status", "<u2"), ("px", px, (h,))])
    return _Layout(_HEADER, col, _FOOTER)


def lidar_packet_bytes(info: SensorInfo) -> int:
    """Expected size of one LiDAR packet for this sensor's profile."""
    lay = _layout(info.udp_profile_lidar, info.pixels_per_column)
    return lay.header + info.columns_per_packet * lay.column.itemsize + lay.footer


@dataclass(frozen=True, slots=True)
class LidarPacket:
    """One decoded LiDAR packet (C = columns per packet, H = pixels per column).

    ``timestamp_ns`` (C,) int64 sensor clock (0 in columns not marked valid); ``measurement_id`` (C,)
    int64 column index in the frame (meaningful where valid); ``valid`` (C,) bool; ``range_mm`` (C, H)
    uint32 (0 = no return, and everywhere in invalid columns); ``reflectivity`` and ``nir`` (C, H)
    uint16; ``frame_id`` of the packet (LEGACY: of its first valid column).
    """

    frame_id: int
    timestamp_ns: npt.NDArray[np.int64]
    measurement_id: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]
    range_mm: npt.NDArray[np.uint32]
    reflectivity: npt.NDArray[np.uint16]
    nir: npt.NDArray[np.uint16]


def parse_lidar_packet(buf: bytes | bytearray | memoryview, info: SensorInfo) -> LidarPacket:
    """Decode one LiDAR packet.

    Raises:
        DriverError: wrong size, wrong packet type, a serial number / init id that does not match
            the metadata, or valid columns with a measurement id outside the frame, ids not strictly
            increasing, a timestamp beyond int64, or (LEGACY) another frame id than the packet's.
    """
    profile = info.udp_profile_lidar
    h = info.pixels_per_column
    lay = _layout(profile, h)
    expected = lay.header + info.columns_per_packet * lay.column.itemsize + lay.footer
    if len(buf) != expected:
        raise DriverError(f"Ouster {profile} lidar packet must be {expected} bytes, got {len(buf)}")
    raw = bytes(buf)
    cols = np.frombuffer(raw, dtype=lay.column, count=info.columns_per_packet, offset=lay.header)
    if profile == "LEGACY":
        valid = cols["status"] == 0xFFFFFFFF
        frame_id = int(cols["frame_id"][valid][0] if valid.any() else cols["frame_id"][0])
        rng = (cols["px"]["range"] & 0xFFFFF).astype(np.uint32)
        refl = cols["px"]["reflectivity"].astype(np.uint16)
    else:
        ptype = int.from_bytes(raw[0:2], "little")
        if ptype != 1:
            raise DriverError(f"not an Ouster lidar packet: packet type {ptype}")
        frame_id = int.from_bytes(raw[2:4], "little")
        init_id = int.from_bytes(raw[4:7], "little")
        sn = int.from_bytes(raw[7:12], "little")
        if info.initialization_id and init_id != info.initialization_id:
            raise DriverError(f"lidar packet init_id {init_id} does not match the metadata's "
                              f"{info.initialization_id} (metadata from another sensor start?)")
        if info.prod_sn.isascii() and info.prod_sn.isdecimal() and sn != int(info.prod_sn):
            raise DriverError(f"lidar packet serial number {sn} does not match the metadata's {info.prod_sn}")
        valid = (cols["status"] & 1).astype(bool)
        if profile == "RNG15_RFL8_NIR8":
            rng = (cols["px"]["range"] & 0x7FFF).astype(np.uint32) * np.uint32(8)
            refl = cols["px"]["reflectivity"].astype(np.uint16)
        else:
            word = cols["px"]["range"]
            rng = (word & 0x7FFFF).astype(np.uint32)
            refl = (word >> 24).astype(np.uint16)
    mid = cols["measurement_id"].astype(np.int64)
    if valid.any():
        vmid = mid[valid]
        if vmid.max() >= info.columns_per_frame:
            raise DriverError(f"lidar packet measurement id {int(vmid.max())} outside 0..{info.columns_per_frame - 1}")
        if vmid.size > 1 and np.any(np.diff(vmid) <= 0):
            raise DriverError(f"lidar packet measurement ids {vmid.tolist()} are not strictly increasing")
        if cols["timestamp"][valid].max() > _INT64_MAX:
            raise DriverError(f"lidar packet timestamp {int(cols['timestamp'][valid].max())} ns is beyond int64")
        if profile == "LEGACY" and np.any(cols["frame_id"][valid] != frame_id):
            raise DriverError(f"lidar packet columns carry frame ids {sorted(set(cols['frame_id'].tolist()))}")
    rng = np.where(valid[:, None], rng, np.uint32(0))
    return LidarPacket(
        frame_id=frame_id,
        timestamp_ns=np.where(valid, cols["timestamp"], 0).astype(np.int64),
        measurement_id=mid,
        valid=valid,
        range_mm=rng,
        reflectivity=refl,
        nir=cols["px"]["nir"].astype(np.uint16),
    )


@dataclass(frozen=True, slots=True)
class ImuPacket:
    """One IMU sample: stamps [ns, sensor clock], acceleration [m/s²], angular velocity [rad/s]
    (IMU frame)."""

    sys_ns: int
    accel_ns: int
    gyro_ns: int
    accel_mps2: npt.NDArray[np.float64]
    gyro_radps: npt.NDArray[np.float64]


_IMU_DTYPE = np.dtype([("sys", "<u8"), ("acc_ts", "<u8"), ("gyro_ts", "<u8"), ("acc", "<f4", (3,)),
                       ("gyro", "<f4", (3,))])


def parse_imu_packet(buf: bytes | bytearray | memoryview) -> ImuPacket:
    """Decode one 48-byte IMU packet (g → m/s², deg/s → rad/s).

    Raises:
        DriverError: wrong size, non-finite or out-of-range values, stamps beyond int64.
    """
    if len(buf) != IMU_PACKET_BYTES:
        raise DriverError(f"Ouster IMU packet must be {IMU_PACKET_BYTES} bytes, got {len(buf)}")
    rec = np.frombuffer(bytes(buf), dtype=_IMU_DTYPE, count=1)[0]
    if not (np.all(np.isfinite(rec["acc"])) and np.all(np.isfinite(rec["gyro"]))):  # before any cast: no sNaN
        raise DriverError("Ouster IMU packet holds NaN or infinite values")
    acc_g = rec["acc"].astype(np.float64)
    gyro_dps = rec["gyro"].astype(np.float64)
    if np.abs(acc_g).max() > MAX_ACCEL_G or np.abs(gyro_dps).max() > MAX_GYRO_DPS:
        raise DriverError(f"Ouster IMU packet reads {acc_g.tolist()} g, {gyro_dps.tolist()} deg/s: beyond "
                          f"±{MAX_ACCEL_G:g} g / ±{MAX_GYRO_DPS:g} deg/s, not a measurement")
    stamps = (int(rec["sys"]), int(rec["acc_ts"]), int(rec["gyro_ts"]))
    if max(stamps) > _INT64_MAX:
        raise DriverError(f"Ouster IMU packet stamps {list(stamps)} ns are beyond int64")
    return ImuPacket(*stamps, acc_g * G_MPS2, np.deg2rad(gyro_dps))
