"""Ouster frames (LidarScan), beam-intrinsics → XYZ, and a pcap source yielding scans, IMU and envelopes.

XYZ follows the sensor user manual's "lidar range to XYZ" math.  For the pixel of row ``u`` in the
column with measurement id ``v`` (``W`` columns per frame), with range ``r`` [mm] and
``n = beam_to_lidar_transform[0, 3]`` (the LiDAR-origin-to-beam-origin distance, mm)::

    theta_e = 2π (1 - v / W)                 # encoder angle
    theta_a = -2π beam_azimuth_angles[u] / 360
    phi     =  2π beam_altitude_angles[u] / 360
    x = (r - n) cos(theta_e + theta_a) cos(phi) + n cos(theta_e)
    y = (r - n) sin(theta_e + theta_a) cos(phi) + n sin(theta_e)
    z = (r - n) sin(phi) + beam_to_lidar_transform[2, 3]

in the LiDAR frame, then ``lidar_to_sensor_transform`` gives the sensor frame (what the SDK and
``ouster_ros`` publish).  Units here are metres.  Pixels with ``r == 0`` have no return.

Points are laid out column by column (all rows of column 0, then column 1 …), so the points of one
firing are consecutive and share a timestamp — the layout the deskew kernel is fastest on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import DriverError
from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.msgs.types import ImuBatch, PointCloud
from edgefuse_drivers.ouster._fast import NEW_FRAME, PROFILE_CODES, PYTHON, assemble, walk_records, xyz_into
from edgefuse_drivers.ouster.metadata import SensorInfo
from edgefuse_drivers.ouster.packets import (
    IMU_PACKET_BYTES,
    ImuPacket,
    LidarPacket,
    lidar_packet_bytes,
    parse_imu_packet,
    parse_lidar_packet,
)
from edgefuse_drivers.ouster.pcap import PcapReader

__all__ = ["LidarScan", "OusterPcap", "ScanAssembler", "XYZLut", "xyz_lut"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class XYZLut:
    """Per-pixel ray direction and offset: ``xyz = range_m * direction + offset`` (W, H, 3), metres."""

    direction: F64
    offset: F64


def xyz_lut(info: SensorInfo, frame: Literal["sensor", "lidar"] = "sensor") -> XYZLut:
    """Lookup table for :meth:`LidarScan.xyz` (see the module docstring for the math)."""
    w = info.columns_per_frame
    v = np.arange(w, dtype=np.float64)[:, None]
    theta_e = 2.0 * np.pi * (1.0 - v / w)
    theta_a = -2.0 * np.pi * info.beam_azimuth_angles_deg[None, :] / 360.0
    phi = 2.0 * np.pi * info.beam_altitude_angles_deg[None, :] / 360.0
    n_m = info.beam_to_lidar_transform[0, 3] * 1e-3
    z_m = info.beam_to_lidar_transform[2, 3] * 1e-3
    direction = np.stack([np.cos(theta_e + theta_a) * np.cos(phi), np.sin(theta_e + theta_a) * np.cos(phi),
                          np.broadcast_to(np.sin(phi), (w, phi.shape[1]))], axis=-1)
    offset = np.stack([n_m * np.cos(theta_e) - n_m * direction[..., 0],
                       n_m * np.sin(theta_e) - n_m * direction[..., 1],
                       z_m - n_m * direction[..., 2]], axis=-1)
    offset = np.broadcast_to(offset, direction.shape).copy()
    if frame == "sensor":
        T = info.T_sensor_from_lidar
        direction = direction @ T[:3, :3].T
        offset = offset @ T[:3, :3].T + T[:3, 3]
    elif frame != "lidar":
        raise DriverError(f"frame must be 'sensor' or 'lidar', got {frame!r}")
    return XYZLut(np.ascontiguousarray(direction), np.ascontiguousarray(offset))


@dataclass
class LidarScan:
    """One frame (W columns × H pixels), indexed by measurement id (column) and row.

    ``timestamp_ns`` (W,) int64 column times (0 where a column is missing); ``column_valid`` (W,);
    ``range_mm``, ``reflectivity``, ``nir`` (W, H) — column-major, as fired, not destaggered;
    ``complete``: every column inside the metadata's column window arrived.
    """

    frame_id: int
    timestamp_ns: npt.NDArray[np.int64]
    column_valid: npt.NDArray[np.bool_]
    range_mm: npt.NDArray[np.uint32]
    reflectivity: npt.NDArray[np.uint16]
    nir: npt.NDArray[np.uint16]
    complete: bool = False

    @property
    def stamp_ns(self) -> int:
        """Time of the first valid column (the sweep start), sensor clock [ns]."""
        ts = self.timestamp_ns[self.column_valid]
        return int(ts.min()) if ts.size else 0

    def xyz(self, lut: XYZLut) -> tuple[F64, npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """``(xyz (W*H, 3) metres, time (W*H,) int64 ns, has_return (W*H,))``, column by column."""
        w, h = self.range_mm.shape
        if lut.direction.shape != (w, h, 3) or lut.offset.shape != (w, h, 3):
            raise DriverError(f"XYZ lookup table of shape {lut.direction.shape} does not fit a {w}x{h} frame")
        pts = np.empty((w * h, 3), np.float64)
        t = np.empty(w * h, np.int64)
        ok = np.empty(w * h, np.bool_)
        xyz_into(np.ascontiguousarray(self.range_mm), np.ascontiguousarray(self.timestamp_ns),
                 np.ascontiguousarray(self.column_valid), np.ascontiguousarray(lut.direction, np.float64),
                 np.ascontiguousarray(lut.offset, np.float64), pts, t, ok)
        return pts, t, ok

    def to_pointcloud(self, lut: XYZLut, frame_id: str = "os_sensor") -> PointCloud:
        """The returns as an unorganized :class:`PointCloud` (x, y, z, intensity float32, t uint32 ns
        since :attr:`stamp_ns`, ring uint16, range uint32 mm), stamped with :attr:`stamp_ns`."""
        pts, t, ok = self.xyz(lut)
        h = self.range_mm.shape[1]
        ring = np.tile(np.arange(h, dtype=np.uint16), self.range_mm.shape[0])
        stamp = self.stamp_ns
        return pointcloud_from_arrays(
            stamp, frame_id,
            x=pts[ok, 0].astype(np.float32), y=pts[ok, 1].astype(np.float32), z=pts[ok, 2].astype(np.float32),
            intensity=self.reflectivity.reshape(-1)[ok].astype(np.float32),
            t=(t[ok] - stamp).astype(np.uint32), ring=ring[ok], range=self.range_mm.reshape(-1)[ok],
        )


class ScanAssembler:
    """Packets → frames, one packet at a time (what :meth:`OusterPcap.scans` and the live source use).

    A frame ends when a packet of another frame id arrives (or at :meth:`finish`); it is ``complete`` when
    every column inside the metadata's column window arrived.  With ``complete_only`` (default) incomplete
    frames are not returned but counted in :attr:`incomplete`.
    """

    def __init__(self, info: SensorInfo, *, complete_only: bool = True) -> None:
        self.info = info
        self.complete_only = complete_only
        self.frames = 0
        self.incomplete = 0
        w = info.columns_per_frame
        lo, hi = info.column_window
        if lo <= hi:
            self._window = np.zeros(w, dtype=bool)
            self._window[lo : hi + 1] = True
        else:  # the window wraps around
            self._window = np.ones(w, dtype=bool)
            self._window[hi + 1 : lo] = False
        self._cur: LidarScan | None = None

    def _start(self, frame_id: int) -> LidarScan:
        w, h = self.info.columns_per_frame, self.info.pixels_per_column
        self._cur = LidarScan(frame_id, np.zeros(w, np.int64), np.zeros(w, bool), np.zeros((w, h), np.uint32),
                              np.zeros((w, h), np.uint16), np.zeros((w, h), np.uint16))
        return self._cur

    def add(self, pkt: LidarPacket) -> list[LidarScan]:
        """Add one packet; returns the frame it ended (if any)."""
        out: list[LidarScan] = []
        cur = self._cur
        if cur is None or pkt.frame_id != cur.frame_id:
            out = self.finish()
            cur = self._start(pkt.frame_id)
        m = pkt.measurement_id[pkt.valid]
        cur.timestamp_ns[m] = pkt.timestamp_ns[pkt.valid]
        cur.column_valid[m] = True
        cur.range_mm[m] = pkt.range_mm[pkt.valid]
        cur.reflectivity[m] = pkt.reflectivity[pkt.valid]
        cur.nir[m] = pkt.nir[pkt.valid]
        return out

    def finish(self) -> list[LidarScan]:
        """End the frame being built; returns it unless it is incomplete and ``complete_only``."""
        cur, self._cur = self._cur, None
        if cur is None:
            return []
        cur.complete = bool(np.all(cur.column_valid[self._window]))
        if cur.complete or not self.complete_only:
            self.frames += 1
            return [cur]
        self.incomplete += 1
        return []


class OusterPcap:
    """An Ouster recording (libpcap file + sensor metadata JSON) as packets, frames and IMU samples.

    Datagrams are routed by destination port (``udp_port_lidar``/``udp_port_imu`` from the
    metadata) and, when the ports do not match, by size.  ``strict=True`` (default) raises
    :class:`~edgefuse.errors.DriverError` on a malformed packet; ``strict=False`` skips it and counts
    it in :attr:`bad_packets`.
    """

    def __init__(self, pcap: str | Path, metadata: str | Path | SensorInfo, *, strict: bool = True) -> None:
        self.path = Path(pcap)
        self.info = metadata if isinstance(metadata, SensorInfo) else SensorInfo.from_json(metadata)
        self.strict = strict
        self.bad_packets = 0
        self._reader = PcapReader(self.path)
        self._lidar_bytes = lidar_packet_bytes(self.info)
        self._kernel_args = _kernel_args(self.info)
        self._state = np.zeros(3, np.int64)
        w, h = self.info.columns_per_frame, self.info.pixels_per_column
        # written only for IMU/bad packets before the first frame starts (never: the kernel returns first)
        self._scratch = LidarScan(0, np.zeros(w, np.int64), np.zeros(w, bool), np.zeros((w, h), np.uint32),
                                  np.zeros((w, h), np.uint16), np.zeros((w, h), np.uint16))

    @property
    def skipped(self) -> dict[str, int]:
        """Non-UDP frames skipped by the pcap reader, by reason."""
        return self._reader.skipped

    def packets(self) -> Iterator[tuple[int, LidarPacket | ImuPacket]]:
        """``(capture_ns, packet)`` for every LiDAR and IMU packet in file order."""
        info = self.info
        for d in self._reader:
            is_lidar = d.dst_port == info.udp_port_lidar or (
                d.dst_port != info.udp_port_imu and len(d.payload) == self._lidar_bytes)
            is_imu = not is_lidar and (d.dst_port == info.udp_port_imu or len(d.payload) == IMU_PACKET_BYTES)
            try:
                if is_lidar:
                    yield d.capture_ns, parse_lidar_packet(d.payload, info)
                elif is_imu:
                    yield d.capture_ns, parse_imu_packet(d.payload)
            except DriverError as exc:
                if self.strict:
                    raise DriverError(f"{exc.message} (packet captured at {d.capture_ns} ns)",
                                      file=self.path) from None
                self.bad_packets += 1

    def scans(self, *, complete_only: bool = True) -> Iterator[LidarScan]:
        """Frames in order; a frame ends when a packet of another frame id arrives.

        Same frames, checks and errors as feeding :meth:`packets` to a :class:`ScanAssembler`, decoded by
        Numba kernels straight from the file's bytes (see :mod:`edgefuse_drivers.ouster._fast`).
        """
        asm = ScanAssembler(self.info, complete_only=complete_only)
        reader = self._reader
        data = reader.path.read_bytes()
        hdr = reader._header(data)
        endian, sub_ns, limit, linktype = hdr
        arr = np.frombuffer(data, np.uint8)
        cap = min(max(len(data) // 44, 1), 4096)
        offs, lens = np.empty(cap, np.int64), np.empty(cap, np.int64)
        ports, stamps = np.empty(cap, np.int64), np.empty(cap, np.int64)
        fragments: dict[tuple[bytes, bytes, int], dict[int, bytes]] = {}
        frag_total: dict[tuple[bytes, bytes, int], int] = {}
        off = 24
        while off < len(data):
            count, off, stop = walk_records(arr, off, endian == ">", sub_ns, limit, linktype,
                                            offs, lens, ports, stamps)
            yield from self._assemble(asm, arr, offs, lens, ports, stamps, count)
            if stop:  # one record for the Python reader (fragment, VLAN, not UDP, or damaged: it raises)
                off, dgram = reader._record(data, off, hdr, fragments, frag_total)
                if dgram is not None:
                    one = np.frombuffer(dgram.payload, np.uint8)
                    yield from self._assemble(asm, one, np.zeros(1, np.int64), np.array([one.size], np.int64),
                                              np.array([dgram.dst_port], np.int64),
                                              np.array([dgram.capture_ns], np.int64), 1)
        reader._end(fragments)
        yield from asm.finish()

    def _assemble(  # noqa: PLR0917 (the kernel's buffers)
        self, asm: ScanAssembler, buf: npt.NDArray[np.uint8], offs: npt.NDArray[np.int64],
        lens: npt.NDArray[np.int64], ports: npt.NDArray[np.int64], stamps: npt.NDArray[np.int64], count: int,
    ) -> Iterator[LidarScan]:
        info = self.info
        k = self._kernel_args
        i = 0
        while i < count:
            cur = asm._cur
            if cur is None:
                self._state[0] = 0
                cur = self._scratch
            else:
                self._state[:2] = (1, cur.frame_id)
            i, event = assemble(buf, offs, lens, ports, i, count, info.udp_port_lidar, info.udp_port_imu,
                                k[0], k[1], k[2], k[3], k[4], k[5], k[6], self._state, cur.timestamp_ns,
                                cur.column_valid, cur.range_mm, cur.reflectivity, cur.nir)
            if event == NEW_FRAME:
                yield from asm.finish()
                asm._start(int(self._state[2]))
            elif event == PYTHON:
                o, n = int(offs[i]), int(lens[i])
                yield from self._python_packet(asm, bytes(buf[o : o + n]), int(ports[i]), int(stamps[i]))
                i += 1

    def _python_packet(self, asm: ScanAssembler, payload: bytes, port: int, capture_ns: int) -> list[LidarScan]:
        """A datagram the kernel left to the Python parsers (one that fails a check: they raise the error)."""
        info = self.info
        is_lidar = port == info.udp_port_lidar or (port != info.udp_port_imu and len(payload) == self._lidar_bytes)
        try:
            if is_lidar:
                return asm.add(parse_lidar_packet(payload, info))
            parse_imu_packet(payload)
        except DriverError as exc:
            if self.strict:
                raise DriverError(f"{exc.message} (packet captured at {capture_ns} ns)", file=self.path) from None
            self.bad_packets += 1
        return []

    def imu_batch(self, frame_id: str = "os_imu") -> ImuBatch:
        """All IMU samples, stamped with the gyroscope read time (sensor clock), in file order.

        Raises:
            DriverError: the stamps are not strictly increasing (a sensor restart in the capture).
        """
        samples = [p for _, p in self.packets() if isinstance(p, ImuPacket)]
        stamps = np.array([p.gyro_ns for p in samples], dtype=np.int64)
        if stamps.size > 1 and not np.all(np.diff(stamps) > 0):
            raise DriverError("IMU gyro stamps are not strictly increasing", file=self.path)
        return ImuBatch(
            stamps_ns=stamps,
            angular_velocity=np.array([p.gyro_radps for p in samples]).reshape(-1, 3),
            linear_acceleration=np.array([p.accel_mps2 for p in samples]).reshape(-1, 3),
            orientation=np.zeros((0, 4)),
            frame_id=frame_id,
        )


def _kernel_args(info: SensorInfo) -> tuple[int, int, int, int, int, int, int]:
    """``expected, prof, cpp, header, col_bytes, init_id, sn`` for :func:`assemble` (-1: no check)."""
    expected = lidar_packet_bytes(info)
    cpp = info.columns_per_packet
    prof = PROFILE_CODES[info.udp_profile_lidar]
    header = 0 if prof == 0 else 32
    col_bytes = (expected - 2 * header) // cpp
    init_id = info.initialization_id if info.initialization_id and prof != 0 else -1
    sn = -1
    if prof != 0 and info.prod_sn.isascii() and info.prod_sn.isdecimal():
        sn = min(int(info.prod_sn), 1 << 41)  # > 40 bits: no packet matches, as in the parser
    return expected, prof, cpp, header, col_bytes, init_id, sn
