"""Hesai PandarXT32 over live UDP or from a packet capture, as a :class:`~edgefuse.sources.base.Source`.

``open_source("hesai+udp://HOST:PORT")`` (default port 2368; ``?multicast=GROUP`` joins a multicast group
on the interface ``HOST``) receives the sensor's 1080-byte point-cloud packets on a
:class:`~edgefuse_drivers.udp.UdpReceiver`; a ``.pcap``/``.pcapng`` capture reaches the same decoding
through the capture dispatcher (``open_source("x.pcap")``, or ``sensor="hesai"``).  The packets go through
the same :class:`~edgefuse_drivers.hesai.xt32.Xt32Decoder` as the nebula packet bags, so the sweeps are the
same ones: ``topic`` (default ``/hesai/points``), fields x y z intensity ring return_type time (uint32 ns
since the cloud stamp).

Options (keywords or URL query): ``calibration`` (CSV), ``min_range``, ``max_range``, ``cut_angle_deg``,
``dual_return_distance_threshold``, ``stamp``, ``frame_id``, ``topic``.

Clocks: ``stamp="sensor"`` (default, ``stamp_clock == "header"``): the sweep start from the packets' own
UTC date/time + µs (the sensor clock; true UTC when PTP/GPS-synchronised); ``stamp="host"``: the host
wall-clock time the packet that completed the sweep was received (captured).  :meth:`report` gives the
``host - sensor`` offset per packet (mean and jitter).  Bad datagrams (wrong size, header, return mode,
azimuth, date) are counted by reason and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgefuse.envelope import Envelope
from edgefuse.msgs.pointcloud import pointcloud_from_structured
from edgefuse.sources.base import SourceTopic
from edgefuse_drivers.hesai.xt32 import PACKET_SIZE, Xt32Calibration, Xt32Decoder, check_packets, packet_stamps_ns
from edgefuse_drivers.packet_io import InPacket
from edgefuse_drivers.udp_source import UdpSensorSource

__all__ = ["HesaiUdpSource", "open_hesai_udp"]

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
#: packets decoded per call on a capture (live: what arrived before the socket went quiet, at most this)
BATCH = 64


class HesaiUdpSource(UdpSensorSource):
    """PandarXT32 sweeps from live UDP or a capture (see the module documentation)."""

    name = "Hesai PandarXT32"
    scheme = "hesai+udp"
    default_port = 2368
    url_options: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "min_range": float, "max_range": float, "cut_angle_deg": float, "dual_return_distance_threshold": float,
        "frame_id": str, "topic": str, "calibration": str}

    def __init__(self, target: str | Path, *, calibration: str | Path | None = None, min_range: float = 0.05,
                 max_range: float = 120.0, cut_angle_deg: float = 0.0, dual_return_distance_threshold: float = 0.1,
                 frame_id: str = "hesai", topic: str = "/hesai/points", **base: Any) -> None:
        opts: dict[str, Any] = {}
        super().__init__(target, opts, **base)
        self.calibration = Xt32Calibration.load(opts.get("calibration", calibration))
        self._decoder_options: dict[str, float] = {
            "min_range": opts.get("min_range", min_range), "max_range": opts.get("max_range", max_range),
            "cut_angle_deg": opts.get("cut_angle_deg", cut_angle_deg),
            "dual_return_distance_threshold": opts.get("dual_return_distance_threshold",
                                                       dual_return_distance_threshold)}
        self.decoder = Xt32Decoder(self.calibration, **self._decoder_options)  # checks the options now
        self.frame_id = opts.get("frame_id", frame_id)
        self.topic = opts.get("topic", topic)

    def topics(self) -> Mapping[str, SourceTopic]:
        return {self.topic: SourceTopic(self.topic, POINTCLOUD2)}

    def unfinished_points(self) -> int:
        """Points of the sweep being built (not yielded yet)."""
        return self.decoder.pending_points()

    def _envelopes(self, wanted: set[str]) -> Iterator[Envelope]:
        self.decoder = Xt32Decoder(self.calibration, **self._decoder_options)
        batch: list[InPacket] = []
        for pkt in self._packets():
            if pkt is not None:
                batch.append(pkt)
            if batch and (pkt is None or len(batch) >= BATCH):
                yield from self._decode(batch)
                batch = []
        if batch:
            yield from self._decode(batch)

    def _decode(self, batch: list[InPacket]) -> Iterator[Envelope]:
        dec = self.decoder
        first = dec.counters.packets
        sweeps = dec.add([p.payload for p in batch])
        self.packets += len(batch)
        self.problems.counts = Counter(dec.counters.rejected)
        self.problems.first = list(dec.counters.first_errors)
        sized = [i for i, p in enumerate(batch) if len(p.payload) == PACKET_SIZE]
        if sized:
            arr = np.frombuffer(b"".join(batch[i].payload for i in sized), np.uint8).reshape(-1, PACKET_SIZE)
            ok = check_packets(arr) == 0
            if ok.any():
                sensor = packet_stamps_ns(arr[ok])
                for i, s in zip(np.flatnonzero(ok), sensor, strict=True):
                    self.clock.add(batch[sized[int(i)]].host_ns - int(s))
        for sweep in sweeps:
            pkt = batch[sweep.packet - first]
            stamp_ns = sweep.stamp_ns if self.stamp == "sensor" else pkt.host_ns
            cloud = pointcloud_from_structured(stamp_ns, self.frame_id, sweep.points)
            meta: dict[str, Any] = {"sensor_stamp_ns": sweep.stamp_ns, "receive_ns": pkt.host_ns,
                                    "serial": sweep.serial, "first_sweep": sweep.serial == 0}
            yield Envelope(self.topic, stamp_ns, pkt.recv_ns, cloud, POINTCLOUD2, meta)


def open_hesai_udp(target: str | Path, **options: Any) -> HesaiUdpSource:
    """The ``edgefuse.sources`` opener for ``hesai+udp://`` URLs."""
    return HesaiUdpSource(target, **options)


open_hesai_udp.schemes = ("hesai+udp",)  # type: ignore[attr-defined]
