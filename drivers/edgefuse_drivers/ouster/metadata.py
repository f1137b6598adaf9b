"""Ouster sensor metadata (the JSON the sensor serves as ``get_metadata`` / the SDK writes beside a pcap).

Only what decoding needs is read: beam intrinsics (altitude / azimuth angles in degrees, the
LiDAR-origin-to-beam-origin distance), the data format (columns per frame and per packet, pixels per
column, UDP profiles), the lidar and IMU to sensor transforms (mm in the file, metres here), the
UDP ports and the identity (product line, serial number, initialization id) used to check packets.
Both the flat layout (firmware 2.x, ``json_calibration_version`` 3-4) and the nested layout of
newer firmware (``beam_intrinsics``, ``lidar_data_format``, ``config_params`` …) are accepted.

Every value the decoder uses is checked when the file is read, and the first bad one raises
:class:`~edgefuse.errors.DriverError` naming the field (``metadata data_format.column_window: …``),
so that nothing downstream (the XYZ look-up table, the packet parser, the frame assembly) sees a
value it cannot use:

- integers are JSON integers (not booleans, not strings, no fractional part), numbers are finite;
- ``pixels_per_column`` in 1..:data:`MAX_PIXELS_PER_COLUMN`, ``columns_per_frame`` in
  1..:data:`MAX_COLUMNS_PER_FRAME` (twice the largest Ouster sensors), ``columns_per_packet`` divides
  it, and one LiDAR packet fits a UDP datagram (:data:`MAX_UDP_PAYLOAD` bytes);
- the beam angle tables hold ``pixels_per_column`` angles each: altitudes in [-90°, 90°], azimuths
  in [-180°, 180°]; ``pixel_shift_by_row`` holds ``pixels_per_column`` shifts of less than a frame;
- ``column_window`` is two column indices ``[first, last]`` inside the frame (``first > last`` is a
  window that wraps around column 0);
- ``lidar_origin_to_beam_origin_mm`` and the translations of the transforms are finite and at most
  :data:`MAX_OFFSET_MM` in size; ``lidar_to_sensor_transform`` and ``imu_to_sensor_transform`` are
  rigid (rotation orthonormal with determinant +1 within :data:`ROTATION_TOLERANCE`, last row
  ``0 0 0 1``); ``beam_to_lidar_transform`` has an identity rotation (the XYZ math uses its
  translation only, so another rotation would be ignored: it is refused instead);
- the UDP profiles are ones the parser decodes (:data:`SUPPORTED_PROFILES`, IMU ``LEGACY``);
- ``initialization_id`` fits the packets' 24 bits, a numeric ``prod_sn`` their 40 bits; UDP ports
  are 0..65535 and differ; a ``lidar_mode`` ``<columns>x<rate>`` agrees with ``columns_per_frame``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import DriverError

__all__ = [
    "MAX_COLUMNS_PER_FRAME",
    "MAX_OFFSET_MM",
    "MAX_PIXELS_PER_COLUMN",
    "MAX_UDP_PAYLOAD",
    "ROTATION_TOLERANCE",
    "SUPPORTED_IMU_PROFILES",
    "SUPPORTED_PROFILES",
    "SensorInfo",
]

F64 = npt.NDArray[np.float64]

#: LiDAR UDP profiles the packet parser decodes
SUPPORTED_PROFILES = ("LEGACY", "RNG15_RFL8_NIR8", "RNG19_RFL8_SIG16_NIR16_DUAL")
#: IMU UDP profiles the packet parser decodes
SUPPORTED_IMU_PROFILES = ("LEGACY",)
#: upper bounds on the frame size: twice the largest Ouster sensors (4096 columns, 128 beams)
MAX_COLUMNS_PER_FRAME = 8192
MAX_PIXELS_PER_COLUMN = 256
#: the largest UDP payload of an IPv4 datagram (one LiDAR packet must fit)
MAX_UDP_PAYLOAD = 65_507
#: bound on the beam-origin distance and transform translations [mm] (10 m: far beyond any sensor)
MAX_OFFSET_MM = 10_000.0
#: tolerance on the orthonormality of the transforms' rotations
ROTATION_TOLERANCE = 1e-3


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _in_range(value: Any, lo: float, hi: float) -> bool:
    """A finite number in [lo, hi] (integers compared exactly: no overflow for huge ones)."""
    if not _is_number(value):
        return False
    if isinstance(value, (int, np.integer)):
        return bool(lo <= value <= hi)
    return math.isfinite(value) and lo <= value <= hi


#: bound on any single number of a transform before its own checks (keeps float conversion exact enough)
_HUGE = 1e12
_MODE = re.compile(r"([0-9]{1,5})x([0-9]{1,3})", re.ASCII)


class _Checker:
    """Typed reads of the metadata dict; every failure is a DriverError naming the field."""

    def __init__(self, file: Path | None) -> None:
        self.file = file

    def fail(self, name: str, why: str) -> DriverError:
        return DriverError(f"metadata {name}: {why}", file=self.file)

    def section(self, meta: dict[str, Any], key: str, fallback: dict[str, Any]) -> dict[str, Any]:
        """``meta[key]`` when present (it must be an object), else ``fallback``."""
        if key not in meta:
            return fallback
        value = meta[key]
        if not isinstance(value, dict):
            raise self.fail(key, f"must be an object, got {type(value).__name__}")
        return value

    def get(self, d: dict[str, Any], key: str, name: str, default: Any = None) -> Any:
        if key in d:
            return d[key]
        if default is None:
            raise self.fail(name, "missing")
        return default

    def integer(self, value: Any, name: str, lo: int, hi: int) -> int:
        if _in_range(value, lo, hi) and (isinstance(value, (int, np.integer)) or float(value).is_integer()):
            return int(value)
        raise self.fail(name, f"expected an integer in {lo}..{hi}, got {_short(value)}")

    def number(self, value: Any, name: str, lo: float, hi: float) -> float:
        if _in_range(value, lo, hi):
            return float(value)
        raise self.fail(name, f"expected a finite number in [{lo:g}, {hi:g}], got {_short(value)}")

    def string(self, value: Any, name: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.fail(name, f"expected a string, got {_short(value)}")

    def numbers(self, value: Any, name: str, n: int, lo: float, hi: float, *, what: str = "values") -> F64:
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list of {n} finite {what}, got {_short(value)}")
        if len(value) != n:
            raise self.fail(name, f"expected {n} finite {what}, got {len(value)}")
        if all(type(v) is float or type(v) is int for v in value):  # plain JSON numbers: check in bulk
            try:
                arr = np.asarray(value, dtype=np.float64)
            except OverflowError:  # an integer beyond float64: found below
                arr = np.full(1, np.nan)
            if np.isfinite(arr).all() and (arr >= lo).all() and (arr <= hi).all():
                return arr
        for i, v in enumerate(value):
            if not _in_range(v, lo, hi):
                raise self.fail(name, f"value {i} must be a finite number in [{lo:g}, {hi:g}], got {_short(v)}")
        return np.asarray(value, dtype=np.float64)

    def integers(self, value: Any, name: str, n: int, lo: int, hi: int) -> tuple[int, ...]:
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list of {n} integers, got {_short(value)}")
        if len(value) != n:
            raise self.fail(name, f"expected {n} values, got {len(value)}")
        if all(type(v) is int for v in value) and (not value or (lo <= min(value) and max(value) <= hi)):
            return tuple(value)  # plain JSON integers in range: checked in bulk
        return tuple(self.integer(v, f"{name}[{i}]", lo, hi) for i, v in enumerate(value))

    def transform(self, value: Any, name: str, *, rigid: bool) -> F64:
        """A row-major 4×4 transform in mm (16 values), checked; returned as given (mm)."""
        m = self.numbers(value, name, 16, -_HUGE, _HUGE).reshape(4, 4)
        if np.abs(m[:3, 3]).max() > MAX_OFFSET_MM:
            raise self.fail(name, f"translation {m[:3, 3].tolist()} mm is larger than {MAX_OFFSET_MM:g} mm")
        if not np.array_equal(m[3], [0.0, 0.0, 0.0, 1.0]):
            raise self.fail(name, f"last row must be 0 0 0 1, got {m[3].tolist()}")
        rot = m[:3, :3]
        if rigid:
            if (np.abs(rot @ rot.T - np.eye(3)).max() > ROTATION_TOLERANCE
                    or abs(np.linalg.det(rot) - 1.0) > ROTATION_TOLERANCE):
                raise self.fail(name, f"rotation {rot.tolist()} is not a rotation (orthonormal, determinant +1)")
        elif np.abs(rot - np.eye(3)).max() > ROTATION_TOLERANCE:
            raise self.fail(name, f"rotation {rot.tolist()} is not the identity (only its translation is used)")
        return m


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mat4_m(m_mm: F64) -> F64:
    m = m_mm.copy()
    m[:3, 3] *= 1e-3  # mm -> m
    return m


@dataclass(frozen=True)
class SensorInfo:
    """Decoded sensor metadata.  Angles in degrees as in the file; transforms 4×4 in metres."""

    prod_line: str
    prod_sn: str
    initialization_id: int
    lidar_mode: str
    columns_per_frame: int
    columns_per_packet: int
    pixels_per_column: int
    column_window: tuple[int, int]
    udp_profile_lidar: str
    udp_profile_imu: str
    pixel_shift_by_row: tuple[int, ...]
    beam_altitude_angles_deg: F64
    beam_azimuth_angles_deg: F64
    lidar_origin_to_beam_origin_mm: float
    beam_to_lidar_transform: F64
    T_sensor_from_lidar: F64
    T_sensor_from_imu: F64
    udp_port_lidar: int
    udp_port_imu: int

    @property
    def frequency_hz(self) -> float:
        """Rotation rate from ``lidar_mode`` (e.g. ``1024x10`` → 10 Hz)."""
        try:
            return float(self.lidar_mode.split("x")[1])
        except (IndexError, ValueError):
            return float("nan")

    @property
    def T_imu_from_lidar(self) -> F64:  # noqa: N802 (transform naming convention)
        """4×4 transform from the LiDAR frame to the IMU frame, metres."""
        return np.linalg.inv(self.T_sensor_from_imu) @ self.T_sensor_from_lidar

    @classmethod
    def from_json(cls, source: str | Path | dict[str, Any]) -> SensorInfo:
        """Read metadata from a JSON file path or an already-parsed dict, checking every value the
        decoder uses (see the module docstring).

        Raises:
            DriverError: not JSON, or a field missing, of the wrong type, out of range or
                inconsistent with another (the message names the field).
        """
        file: Path | None = None
        if isinstance(source, dict):
            meta = source
        else:
            file = Path(source)
            try:
                meta = json.loads(file.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DriverError(f"metadata is not valid JSON: {exc}", file=file) from None
            except (ValueError, RecursionError) as exc:  # over-long integers, nesting too deep
                raise DriverError(f"metadata JSON cannot be read: {str(exc)[:100]}", file=file) from None
        if not isinstance(meta, dict):
            raise DriverError("metadata JSON must be an object", file=file)
        return cls._parse(meta, _Checker(file))

    @classmethod
    def _parse(cls, meta: dict[str, Any], c: _Checker) -> SensorInfo:
        # newer firmware nests the same keys
        intr = c.section(meta, "beam_intrinsics", meta)
        info = c.section(meta, "sensor_info", meta)
        cfg = c.section(meta, "config_params", meta)
        lidar_intr = c.section(meta, "lidar_intrinsics", meta)
        imu_intr = c.section(meta, "imu_intrinsics", meta)
        fmt_key = "lidar_data_format" if "lidar_data_format" in meta else "data_format"
        lidar_mode = c.string(cfg.get("lidar_mode", meta.get("lidar_mode", "")), "lidar_mode")
        mode_cols: int | None = None
        if lidar_mode:
            match = _MODE.fullmatch(lidar_mode)
            if match is None or not 0 < int(match[2]) <= 100:
                raise c.fail("lidar_mode", f"expected <columns>x<rate in Hz>, e.g. 1024x10, got {_short(lidar_mode)}")
            mode_cols = c.integer(int(match[1]), "lidar_mode columns", 1, MAX_COLUMNS_PER_FRAME)

        if fmt_key in meta:
            fmt = c.section(meta, fmt_key, meta)
            h = c.integer(c.get(fmt, "pixels_per_column", f"{fmt_key}.pixels_per_column"),
                          f"{fmt_key}.pixels_per_column", 1, MAX_PIXELS_PER_COLUMN)
            cols = c.integer(c.get(fmt, "columns_per_frame", f"{fmt_key}.columns_per_frame"),
                             f"{fmt_key}.columns_per_frame", 1, MAX_COLUMNS_PER_FRAME)
            per_packet = c.integer(c.get(fmt, "columns_per_packet", f"{fmt_key}.columns_per_packet"),
                                   f"{fmt_key}.columns_per_packet", 1, cols)
            if cols % per_packet:
                raise c.fail(f"{fmt_key}.columns_per_packet", f"{per_packet} does not divide {cols} columns per frame")
            window = c.integers(c.get(fmt, "column_window", "", [0, cols - 1]), f"{fmt_key}.column_window",
                                2, 0, cols - 1)
            shift = c.integers(c.get(fmt, "pixel_shift_by_row", "", [0] * h), f"{fmt_key}.pixel_shift_by_row",
                               h, -(cols - 1), cols - 1)
            profile = c.string(fmt.get("udp_profile_lidar", "LEGACY"), f"{fmt_key}.udp_profile_lidar")
            profile_imu = c.string(fmt.get("udp_profile_imu", "LEGACY"), f"{fmt_key}.udp_profile_imu")
            if mode_cols is not None and mode_cols != cols:
                raise c.fail("lidar_mode", f"{lidar_mode!r} disagrees with {fmt_key}.columns_per_frame {cols}")
        else:  # very old metadata: infer the format from the mode and the beam count
            if mode_cols is None:
                raise c.fail("data_format", "missing, and no lidar_mode to infer it from")
            alt_raw = c.get(intr, "beam_altitude_angles", "beam_altitude_angles")
            h = c.integer(len(alt_raw) if isinstance(alt_raw, list) else -1, "beam_altitude_angles length",
                          1, MAX_PIXELS_PER_COLUMN)
            cols, per_packet = mode_cols, 16
            if cols % per_packet:
                raise c.fail("lidar_mode", f"{cols} columns are not a whole number of 16-column packets")
            window, shift = (0, cols - 1), (0,) * h
            profile, profile_imu = "LEGACY", "LEGACY"
        if profile not in SUPPORTED_PROFILES:
            raise c.fail(f"{fmt_key}.udp_profile_lidar",
                         f"unsupported Ouster UDP lidar profile {profile!r} (supported: {SUPPORTED_PROFILES})")
        if profile_imu not in SUPPORTED_IMU_PROFILES:
            raise c.fail(f"{fmt_key}.udp_profile_imu",
                         f"unsupported Ouster UDP IMU profile {profile_imu!r} (supported: {SUPPORTED_IMU_PROFILES})")

        alt = c.numbers(c.get(intr, "beam_altitude_angles", "beam_altitude_angles"), "beam_altitude_angles",
                        h, -90.0, 90.0, what="angles")
        azi = c.numbers(c.get(intr, "beam_azimuth_angles", "beam_azimuth_angles"), "beam_azimuth_angles",
                        h, -180.0, 180.0, what="angles")
        n_mm = c.number(intr.get("lidar_origin_to_beam_origin_mm", 0.0), "lidar_origin_to_beam_origin_mm",
                        -MAX_OFFSET_MM, MAX_OFFSET_MM)
        if "beam_to_lidar_transform" in intr:
            b2l = c.transform(intr["beam_to_lidar_transform"], "beam_to_lidar_transform", rigid=False)
        else:
            b2l = np.eye(4)
            b2l[0, 3] = n_mm
        T_lidar = c.transform(c.get(lidar_intr, "lidar_to_sensor_transform", "lidar_to_sensor_transform"),
                              "lidar_to_sensor_transform", rigid=True)
        T_imu = c.transform(c.get(imu_intr, "imu_to_sensor_transform", "imu_to_sensor_transform"),
                            "imu_to_sensor_transform", rigid=True)

        prod_sn = c.string(info.get("prod_sn", ""), "prod_sn")
        if prod_sn.isascii() and prod_sn.isdecimal() and (len(prod_sn) > 13 or int(prod_sn) >= 2**40):
            raise c.fail("prod_sn", f"{_short(prod_sn)} does not fit the packets' 40-bit serial number")
        init_id = c.integer(info.get("initialization_id", 0), "initialization_id", 0, 2**24 - 1)
        port_lidar = c.integer(cfg.get("udp_port_lidar", 7502), "udp_port_lidar", 0, 65535)
        port_imu = c.integer(cfg.get("udp_port_imu", 7503), "udp_port_imu", 0, 65535)
        if port_lidar == port_imu:
            raise c.fail("udp_port_imu", f"same port {port_imu} as udp_port_lidar: packets could not be told apart")
        result = cls(
            prod_line=c.string(info.get("prod_line", ""), "prod_line"),
            prod_sn=prod_sn,
            initialization_id=init_id,
            lidar_mode=lidar_mode,
            columns_per_frame=cols,
            columns_per_packet=per_packet,
            pixels_per_column=h,
            column_window=(window[0], window[1]),
            udp_profile_lidar=profile,
            udp_profile_imu=profile_imu,
            pixel_shift_by_row=shift,
            beam_altitude_angles_deg=alt,
            beam_azimuth_angles_deg=azi,
            lidar_origin_to_beam_origin_mm=n_mm,
            beam_to_lidar_transform=b2l,
            T_sensor_from_lidar=_mat4_m(T_lidar),
            T_sensor_from_imu=_mat4_m(T_imu),
            udp_port_lidar=port_lidar,
            udp_port_imu=port_imu,
        )
        from edgefuse_drivers.ouster.packets import lidar_packet_bytes  # packets imports this module

        size = lidar_packet_bytes(result)
        if size > MAX_UDP_PAYLOAD:
            raise c.fail(f"{fmt_key}.columns_per_packet", f"{per_packet} columns of {h} pixels make {size}-byte "
                         f"packets, larger than a UDP datagram ({MAX_UDP_PAYLOAD} bytes)")
        return result
