"""Ouster sensor metadata (the JSON the sensor serves as ``get_metadata`` / the SDK writes beside a pcap).

Only what decoding needs is read: beam intrinsics (altitude / azimuth angles in degrees, the
LiDAR-origin-to-beam-origin distance), the data format (columns per frame and per packet, pixels per
column, UDP profiles), the lidar and IMU to sensor transforms (mm in the file, metres here), the
UDP ports and the identity (product line, serial number, initialization id) used to check packets.
Both the flat layout (firmware 2.x, ``json_calibration_version`` 3-4) and the nested layout of
newer firmware (``beam_intrinsics``, ``lidar_data_format``, ``config_params`` …) are accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import DriverError

__all__ = ["SensorInfo"]

F64 = npt.NDArray[np.float64]


def _mat4_mm(values: Any, name: str, file: Path | None) -> F64:
    m = np.asarray(values, dtype=np.float64)
    if m.size != 16 or not np.all(np.isfinite(m)):
        raise DriverError(f"metadata {name} must be 16 finite numbers", file=file)
    m = m.reshape(4, 4).copy()
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
        """Read metadata from a JSON file path or an already-parsed dict.

        Raises:
            DriverError: not JSON, or a required key is missing or inconsistent.
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
        if not isinstance(meta, dict):
            raise DriverError("metadata JSON must be an object", file=file)
        try:
            return cls._parse(meta, file)
        except (KeyError, TypeError, ValueError) as exc:
            raise DriverError(f"metadata lacks or mangles {exc}", file=file) from None

    @classmethod
    def _parse(cls, meta: dict[str, Any], file: Path | None) -> SensorInfo:
        # newer firmware nests the same keys
        intr = meta.get("beam_intrinsics", meta)
        fmt = meta.get("lidar_data_format", meta.get("data_format"))
        info = meta.get("sensor_info", meta)
        cfg = meta.get("config_params", meta)
        lidar_intr = meta.get("lidar_intrinsics", meta)
        imu_intr = meta.get("imu_intrinsics", meta)
        lidar_mode = str(cfg.get("lidar_mode", meta.get("lidar_mode", "")))
        alt = np.asarray(intr["beam_altitude_angles"], dtype=np.float64)
        azi = np.asarray(intr["beam_azimuth_angles"], dtype=np.float64)
        if fmt is None:  # very old metadata: infer from the mode and the beam count
            cols = int(lidar_mode.split("x", maxsplit=1)[0])
            fmt = {"columns_per_frame": cols, "columns_per_packet": 16, "pixels_per_column": len(alt),
                   "column_window": [0, cols - 1], "pixel_shift_by_row": [0] * len(alt)}
        h = int(fmt["pixels_per_column"])
        if alt.shape != (h,) or azi.shape != (h,) or not (np.all(np.isfinite(alt)) and np.all(np.isfinite(azi))):
            raise DriverError(f"metadata beam angle tables must hold {h} finite angles each", file=file)
        n_mm = float(intr.get("lidar_origin_to_beam_origin_mm", 0.0))
        if "beam_to_lidar_transform" in intr:
            b2l = np.asarray(intr["beam_to_lidar_transform"], dtype=np.float64).reshape(4, 4)
        else:
            b2l = np.eye(4)
            b2l[0, 3] = n_mm
        cols = int(fmt["columns_per_frame"])
        per_packet = int(fmt["columns_per_packet"])
        if cols <= 0 or per_packet <= 0 or h <= 0 or cols % per_packet:
            raise DriverError(f"metadata data format is inconsistent: {cols} columns, {per_packet} per packet, "
                              f"{h} pixels", file=file)
        window = tuple(int(v) for v in fmt.get("column_window", [0, cols - 1]))
        shift = tuple(int(v) for v in fmt.get("pixel_shift_by_row", [0] * h))
        return cls(
            prod_line=str(info.get("prod_line", "")),
            prod_sn=str(info.get("prod_sn", "")),
            initialization_id=int(info.get("initialization_id", 0)),
            lidar_mode=lidar_mode,
            columns_per_frame=cols,
            columns_per_packet=per_packet,
            pixels_per_column=h,
            column_window=(window[0], window[1]),
            udp_profile_lidar=str(fmt.get("udp_profile_lidar", "LEGACY")),
            udp_profile_imu=str(fmt.get("udp_profile_imu", "LEGACY")),
            pixel_shift_by_row=shift,
            beam_altitude_angles_deg=alt,
            beam_azimuth_angles_deg=azi,
            lidar_origin_to_beam_origin_mm=n_mm,
            beam_to_lidar_transform=b2l,
            T_sensor_from_lidar=_mat4_mm(lidar_intr["lidar_to_sensor_transform"], "lidar_to_sensor_transform", file),
            T_sensor_from_imu=_mat4_mm(imu_intr["imu_to_sensor_transform"], "imu_to_sensor_transform", file),
            udp_port_lidar=int(cfg.get("udp_port_lidar", 7502)),
            udp_port_imu=int(cfg.get("udp_port_imu", 7503)),
        )
