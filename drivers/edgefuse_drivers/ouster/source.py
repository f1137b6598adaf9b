"""Ouster as an edgefuse :class:`~edgefuse.sources.base.Source`: live UDP or a packet capture.

``open_source("ouster://HOST?lidar_port=7502&imu_port=7503&metadata=FILE.json")`` receives live packets
on two :class:`~edgefuse_drivers.udp.UdpReceiver` sockets (LiDAR and IMU ports; the defaults are the
metadata's ``udp_port_lidar``/``udp_port_imu``; ``ouster://HOST:PORT`` sets the LiDAR port; port 0 picks
a free one, read :attr:`OusterSource.lidar_port`/:attr:`imu_port` after :meth:`open`).
``open_source("capture.pcap", metadata="FILE.json")`` reads a capture with the same decoding (datagrams
routed by the metadata's ports, then by size).  The metadata is the sensor's JSON (``get_metadata``, or the
file the SDK writes beside a capture), legacy flat or current nested layout (:class:`SensorInfo`).

Topics: ``topic`` (default ``/ouster/points``, ``sensor_msgs/msg/PointCloud2``, one per frame) and
``imu_topic`` (default ``/ouster/imu``, ``sensor_msgs/msg/Imu``, one per IMU packet; no orientation:
``orientation_covariance[0] = -1``).  Cloud fields: ``x y z`` float32 [m] (sensor frame), ``intensity``
float32 (reflectivity), ``t`` uint32 [ns] since the cloud stamp (what :mod:`edgefuse.stages.deskew` reads),
``ring`` uint16 (beam row, 0 = top), ``range`` uint32 [mm]: every point has its time and ring.

Clocks (``stamp``):

- ``"sensor"`` (default, ``stamp_clock == "header"``): the packets' own timestamps — the frame's first
  valid column, the IMU gyroscope read time.  That is the sensor's clock: time since boot with the
  internal oscillator, UTC/TAI when the sensor is PTP- or PPS-synchronised;
- ``"host"`` (``stamp_clock == "host"``): the host wall-clock time the frame's first packet was received
  (captured), IMU: the receive time of the packet.  Per-point ``t`` stays the sensor's column timing.

Either way :meth:`OusterSource.report` / :meth:`stats` state ``host - sensor`` per packet (mean offset
and jitter), packet counts and rejected packets by reason (wrong size, undecodable …: counted, the
packets around them decode as usual), frames and incomplete frames left out (``complete_only``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from edgefuse.envelope import Envelope
from edgefuse.errors import DriverError, SourceError
from edgefuse.msgs.types import ImuData
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.ouster.metadata import SensorInfo
from edgefuse_drivers.ouster.packets import (
    IMU_PACKET_BYTES,
    ImuPacket,
    LidarPacket,
    lidar_packet_bytes,
    parse_imu_packet,
    parse_lidar_packet,
)
from edgefuse_drivers.ouster.scan import ScanAssembler, XYZLut, xyz_lut
from edgefuse_drivers.packet_io import ClockStats, InPacket, Problems, capture_packets, live_packets
from edgefuse_drivers.pcap import CaptureReader
from edgefuse_drivers.udp import UdpReceiver

__all__ = ["OusterSource", "open_ouster"]

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
IMU = "sensor_msgs/msg/Imu"
_NO_ORIENTATION = np.array([[-1.0, 0, 0], [0, 0, 0], [0, 0, 0]])


class OusterSource:
    """Ouster frames and IMU samples from live UDP or a capture (see the module documentation)."""

    schemes = ("ouster",)
    suffixes = (".pcap", ".pcapng")

    def __init__(self, target: str | Path, *, metadata: str | Path | SensorInfo | None = None,
                 lidar_port: int | None = None, imu_port: int | None = None, topic: str = "/ouster/points",
                 imu_topic: str = "/ouster/imu", frame_id: str = "os_sensor", imu_frame_id: str = "os_imu",
                 stamp: str = "sensor", complete_only: bool = True, idle_timeout_s: float | None = None,
                 max_frames: int | None = None, multicast_group: str | None = None) -> None:
        text = str(target)
        self.live = text.lower().startswith("ouster://")
        self.host = "0.0.0.0"
        if self.live:
            url = urlsplit(text)
            query = dict(parse_qsl(url.query))
            self.host = url.hostname or "0.0.0.0"
            metadata = query.pop("metadata", metadata)
            lidar_port = int(query.pop("lidar_port", url.port if url.port is not None else lidar_port or -1))
            lidar_port = None if lidar_port == -1 else lidar_port
            imu_port = int(query["imu_port"]) if "imu_port" in query else imu_port
            query.pop("imu_port", None)
            stamp = query.pop("stamp", stamp)
            topic = query.pop("topic", topic)
            imu_topic = query.pop("imu_topic", imu_topic)
            frame_id = query.pop("frame_id", frame_id)
            multicast_group = query.pop("multicast", multicast_group)
            if query:
                raise SourceError(f"unknown ouster:// options {sorted(query)} (known: metadata, lidar_port, "
                                  "imu_port, stamp, topic, imu_topic, frame_id, multicast)", file=text)
        if metadata is None:
            raise SourceError("an Ouster source needs the sensor's metadata JSON: metadata=FILE.json "
                              "(the sensor serves it at http://SENSOR/api/v1/sensor/metadata)", file=text)
        if stamp not in ("sensor", "host"):
            raise SourceError(f"stamp must be 'sensor' or 'host', not {stamp!r}", file=text)
        self.info = metadata if isinstance(metadata, SensorInfo) else SensorInfo.from_json(metadata)
        self.target = text
        self.lidar_port = self.info.udp_port_lidar if lidar_port is None else int(lidar_port)
        self.imu_port = self.info.udp_port_imu if imu_port is None else int(imu_port)
        self.multicast_group = multicast_group
        self.topic = topic
        self.imu_topic = imu_topic
        self.frame_id = frame_id
        self.imu_frame_id = imu_frame_id
        self.stamp = stamp
        self.stamp_clock: StampClock = "header" if stamp == "sensor" else "host"
        self.recv_clock: RecvClock = "host_monotonic" if self.live else "recorded"
        self.complete_only = complete_only
        self.idle_timeout_s = idle_timeout_s
        self.max_frames = max_frames
        self.offsets = TimeOffsets()
        self.lidar_bytes = lidar_packet_bytes(self.info)
        self._lut: XYZLut | None = None
        self.receivers: list[UdpReceiver] = []
        self.capture: CaptureReader | None = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.lidar_packets = 0
        self.imu_packets = 0
        self.other_packets = 0
        self.frames = 0
        self.incomplete_frames = 0
        self.problems = Problems()
        self.clock = ClockStats()
        self.imu_clock = ClockStats()

    # -- Source protocol ------------------------------------------------------------------------------
    def open(self) -> OusterSource:
        if self.live and not self.receivers:
            lidar = UdpReceiver(self.host, self.lidar_port, multicast_group=self.multicast_group).start()
            try:
                imu = UdpReceiver(self.host, self.imu_port, rcvbuf=1 << 20,
                                  multicast_group=self.multicast_group).start()
            except DriverError:
                lidar.close()
                raise
            self.receivers = [lidar, imu]
            self.lidar_port, self.imu_port = lidar.port, imu.port
        return self

    def close(self) -> None:
        for r in self.receivers:
            r.close()

    def __enter__(self) -> OusterSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        return {self.topic: SourceTopic(self.topic, POINTCLOUD2), self.imu_topic: SourceTopic(self.imu_topic, IMU)}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    # -- reporting ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sensor": f"Ouster {self.info.prod_line} {self.info.prod_sn} ({self.info.udp_profile_lidar})",
            "lidar_packets": self.lidar_packets, "imu_packets": self.imu_packets, "other_packets": self.other_packets,
            "frames": self.frames, "incomplete_frames": self.incomplete_frames,
            "rejected": dict(self.problems.counts), "first_errors": list(self.problems.first),
            "clock_lidar": self.clock.as_dict(), "clock_imu": self.imu_clock.as_dict()}
        if self.receivers:
            out["udp"] = {str(r.port): vars(r.stats).copy() for r in self.receivers}
        if self.capture is not None:
            out["capture"] = self.capture.report()
        return out

    def report(self) -> str:
        parts = [f"Ouster {self.info.prod_line}: {self.lidar_packets} lidar + {self.imu_packets} IMU packets, "
                 f"{self.frames} frames ({self.incomplete_frames} incomplete left out); lidar "
                 f"{self.clock.describe()}; IMU {self.imu_clock.describe()}"]
        if self.problems.total:
            parts.append(f"PROBLEMS {self.problems.describe()}")
        for r in self.receivers:
            s = r.stats
            parts.append(f"udp {r.host}:{r.port}: {s.received} datagrams, dropped {s.dropped_queue} (queue) + "
                         f"{s.dropped_kernel} (kernel), {s.errors} errors")
        if self.capture is not None:
            parts.append(self.capture.report())
        return "; ".join(parts)

    # -- decoding -------------------------------------------------------------------------------------
    def _kind(self, pkt: InPacket) -> str:
        if pkt.port == self.lidar_port:
            return "lidar"
        if pkt.port == self.imu_port:
            return "imu"
        if len(pkt.payload) == self.lidar_bytes:
            return "lidar"
        return "imu" if len(pkt.payload) == IMU_PACKET_BYTES else "other"

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        want_points = topics is None or self.topic in topics
        want_imu = topics is None or self.imu_topic in topics
        if not (want_points or want_imu):
            return
        self._reset_counters()
        if self._lut is None:
            self._lut = xyz_lut(self.info)
        asm = ScanAssembler(self.info, complete_only=self.complete_only)
        # (host_ns, recv_ns) of the first packet of the frame being built and of the one before
        cur_frame: int | None = None
        cur_first = prev_first = (0, 0)
        if self.live:
            self.open()
            stream: Iterator[InPacket | None] = live_packets(self.receivers, idle_timeout_s=self.idle_timeout_s)
        else:
            packets, self.capture = capture_packets(self.target)
            stream = iter(packets)
        count = 0
        last_recv = 0
        for pkt in stream:
            if pkt is None:
                continue
            last_recv = pkt.recv_ns
            kind = self._kind(pkt)
            if kind == "other":
                self.other_packets += 1
                continue
            try:
                decoded: LidarPacket | ImuPacket = (parse_lidar_packet(pkt.payload, self.info) if kind == "lidar"
                                                    else parse_imu_packet(pkt.payload))
            except DriverError as exc:
                reason = "wrong size" if "must be" in exc.message else f"bad {kind} packet"
                self.problems.add(f"{kind}: {reason}", exc.message)
                continue
            if isinstance(decoded, ImuPacket):
                self.imu_packets += 1
                self.imu_clock.add(pkt.host_ns - decoded.gyro_ns)
                if want_imu:
                    yield self._imu_envelope(decoded, pkt)
                continue
            self.lidar_packets += 1
            if decoded.valid.any():
                self.clock.add(pkt.host_ns - int(decoded.timestamp_ns[decoded.valid][0]))
            if decoded.frame_id != cur_frame:
                cur_frame, prev_first, cur_first = decoded.frame_id, cur_first, (pkt.host_ns, pkt.recv_ns)
            for scan in asm.add(decoded):  # the frame before this packet's
                self.frames = asm.frames
                if want_points:  # received once the packet after its last one arrived
                    yield self._cloud_envelope(scan, prev_first[0], pkt.recv_ns)
                count += 1
                if self.max_frames is not None and count >= self.max_frames:
                    return
            self.incomplete_frames = asm.incomplete
        for scan in asm.finish():
            if want_points:
                yield self._cloud_envelope(scan, cur_first[0], last_recv)
        self.frames, self.incomplete_frames = asm.frames, asm.incomplete

    def _cloud_envelope(self, scan: Any, host_ns: int, recv_ns: int) -> Envelope:
        assert self._lut is not None
        cloud = scan.to_pointcloud(self._lut, self.frame_id)
        sensor_ns = cloud.stamp_ns
        if self.stamp == "host":
            cloud.stamp_ns = host_ns
        meta = {"sensor_stamp_ns": sensor_ns, "receive_ns": host_ns, "frame_id": scan.frame_id,
                "complete": scan.complete}
        return self.offsets.apply(Envelope(self.topic, cloud.stamp_ns, recv_ns, cloud, POINTCLOUD2, meta))

    def _imu_envelope(self, p: ImuPacket, pkt: InPacket) -> Envelope:
        stamp = p.gyro_ns if self.stamp == "sensor" else pkt.host_ns
        imu = ImuData(stamp, self.imu_frame_id, np.array([0.0, 0.0, 0.0, 1.0]), _NO_ORIENTATION.copy(),
                      p.gyro_radps.copy(), np.zeros((3, 3)), p.accel_mps2.copy(), np.zeros((3, 3)))
        meta = {"sensor_stamp_ns": p.gyro_ns, "accel_ns": p.accel_ns, "receive_ns": pkt.host_ns}
        return self.offsets.apply(Envelope(self.imu_topic, stamp, pkt.recv_ns, imu, IMU, meta))


def open_ouster(target: str | Path, **options: Any) -> OusterSource:
    """The ``edgefuse.sources`` opener for ``ouster://`` URLs (captures reach it through the capture
    dispatcher with ``metadata=``)."""
    return OusterSource(target, **options)


open_ouster.schemes = ("ouster",)  # type: ignore[attr-defined]
