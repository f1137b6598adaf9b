"""Continental ARS548 over live UDP (SOME/IP events, usually multicast) or from a packet capture, as a
:class:`~edgefuse.sources.base.Source`.

``open_source("ars548+udp://HOST:PORT?multicast=GROUP")``: receive on ``PORT`` (default 42102, the
sensor's data port), joining the multicast ``GROUP`` (the sensor's default is 224.0.2.2) on the interface
with address ``HOST`` (``0.0.0.0``: the default interface); without ``multicast`` it receives unicast
datagrams sent to ``HOST:PORT``.  A ``.pcap``/``.pcapng`` capture reaches the same decoding through the
capture dispatcher (``open_source("x.pcap")`` or ``sensor="ars548"``).  A detection list is one 35,336-byte
UDP datagram (IP-fragmented on the wire; the kernel and the capture reader reassemble it).

Topics (``topic`` prefix, default ``/ars548``): ``/ars548/detections`` (``radar_msgs/msg/RadarScan``, as
the nebula bag source: range, azimuth, elevation, doppler = range rate, amplitude = RCS, every decoded field
in ``meta["detections"]``) and ``/ars548/objects`` (``radar_msgs/msg/RadarTracks``, mapping in
:mod:`edgefuse_drivers.continental.tracks`; the decoded objects in ``meta["objects"]``, the
:class:`~edgefuse_drivers.continental.ars548.Ars548ObjectList` in ``meta["list"]``).

Clocks: ``stamp="sensor"`` (default, ``stamp_clock == "header"``): the list's own timestamp (the sensor
clock, PTP-synchronised when ``meta["sync_status"]`` is 1); ``stamp="host"``: the host wall-clock receive
(capture) time.  :meth:`report` gives ``host - sensor`` (mean and jitter).  Bad datagrams (size, service/
method id, header fields) are counted by reason and skipped; status events are counted, not decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from edgefuse.envelope import Envelope
from edgefuse.msgs.types import RadarScanData, RadarTracksData
from edgefuse.sources.base import SourceTopic
from edgefuse_drivers.continental.ars548 import Ars548ObjectList, decode_ars548
from edgefuse_drivers.continental.source import _returns, tracks_of
from edgefuse_drivers.packet_bag import PacketError
from edgefuse_drivers.udp_source import UdpSensorSource

__all__ = ["Ars548UdpSource", "open_ars548_udp"]

RADAR_SCAN = "radar_msgs/msg/RadarScan"
RADAR_TRACKS = "radar_msgs/msg/RadarTracks"
DEFAULT_MULTICAST = "224.0.2.2"


class Ars548UdpSource(UdpSensorSource):
    """ARS548 detection and object lists from live UDP or a capture (see the module documentation)."""

    name = "Continental ARS548"
    scheme = "ars548+udp"
    default_port = 42102
    url_options: ClassVar[Mapping[str, Callable[[str], Any]]] = {"frame_id": str, "topic": str}

    def __init__(self, target: str | Path, *, frame_id: str = "ars548", topic: str = "/ars548", **base: Any) -> None:
        opts: dict[str, Any] = {}
        base.setdefault("rcvbuf", 8 * 1024 * 1024)
        super().__init__(target, opts, **base)
        self.frame_id = opts.get("frame_id", frame_id)
        prefix = str(opts.get("topic", topic)).rstrip("/")
        self.detections_topic = f"{prefix}/detections"
        self.objects_topic = f"{prefix}/objects"
        self.status_packets = 0

    def topics(self) -> Mapping[str, SourceTopic]:
        return {self.detections_topic: SourceTopic(self.detections_topic, RADAR_SCAN),
                self.objects_topic: SourceTopic(self.objects_topic, RADAR_TRACKS)}

    def _envelopes(self, wanted: set[str]) -> Iterator[Envelope]:
        self.status_packets = 0
        for pkt in self._packets():
            if pkt is None:
                continue
            self.packets += 1
            try:
                out = decode_ars548(pkt.payload)
            except PacketError as err:
                self.problems.add(err.reason, err.message)
                continue
            if out is None:
                self.status_packets += 1
                continue
            sensor_ns = out.sensor_stamp_ns
            self.clock.add(pkt.host_ns - sensor_ns)
            stamp_ns = sensor_ns if self.stamp == "sensor" else pkt.host_ns
            meta: dict[str, Any] = {"sensor_stamp_ns": sensor_ns, "receive_ns": pkt.host_ns,
                                    "sync_status": out.sync_status}
            if isinstance(out, Ars548ObjectList):
                if self.objects_topic in wanted:
                    meta["objects"] = out.objects
                    meta["list"] = out
                    yield Envelope(self.objects_topic, stamp_ns, pkt.recv_ns,
                                   RadarTracksData(stamp_ns, self.frame_id, tracks_of(out)), RADAR_TRACKS, meta)
            elif self.detections_topic in wanted:
                meta["detections"] = out.detections
                meta["list"] = out
                yield Envelope(self.detections_topic, stamp_ns, pkt.recv_ns,
                               RadarScanData(stamp_ns, self.frame_id, _returns(out)), RADAR_SCAN, meta)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["status_packets"] = self.status_packets
        return out


def open_ars548_udp(target: str | Path, **options: Any) -> Ars548UdpSource:
    """The ``edgefuse.sources`` opener for ``ars548+udp://`` URLs."""
    return Ars548UdpSource(target, **options)


open_ars548_udp.schemes = ("ars548+udp",)  # type: ignore[attr-defined]
