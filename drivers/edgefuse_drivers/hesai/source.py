"""Hesai PandarXT32 packets recorded by nebula (``pandar_msgs/PandarScan`` or ``nebula_msgs/NebulaPackets``
bags) as a :class:`~edgefuse.sources.base.Source` of assembled sweeps.

Open with ``open_source("hesai:///path/to/bag")`` (registered through the ``edgefuse.sources`` entry points)
or construct :class:`HesaiPacketSource` directly.  Options: ``calibration`` (CSV path, default: the bundled
PandarXT32 calibration), ``min_range``/``max_range`` [m] (0.05/120), ``cut_angle_deg`` (0),
``dual_return_distance_threshold`` [m] (0.1), ``stamp`` (``"sensor"``/``"receive"``), ``frame_id``.

For a packet topic ``T`` it yields ``T/points``: one :class:`~edgefuse.msgs.types.PointCloud`
(``sensor_msgs/msg/PointCloud2``) per sweep, fields x, y, z (m, float32), intensity (reflectivity 0–255,
float32), ring (channel 0–31, uint16), return_type (uint8, :class:`~edgefuse_drivers.hesai.xt32.ReturnType`)
and time (uint32 ns since the cloud's stamp: the per-point time :mod:`edgefuse.stages.deskew` reads).

Stamps: ``stamp="sensor"`` (default): the sweep's start on the sensor clock (from the packets, as nebula
stamps it); ``stamp="receive"``: the host receive time of the packet that completed the sweep.  ``meta`` has
both (``sensor_stamp_ns``, ``receive_ns``), the sweep ``serial`` (0 = the first, usually partial, sweep) and
``first_sweep``.  ``recv_ns`` is the bag's record time of the message with that packet.

Bad packets (wrong size, header, return mode, azimuth, date) are counted by reason in :attr:`counters` and
skipped; the packets around them are decoded as usual.  Points of a sweep that the recording ends before
completing are not yielded; :attr:`HesaiPacketSource.unfinished_points` says how many there were.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.msgs.pointcloud import pointcloud_from_structured
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.hesai.xt32 import Xt32Calibration, Xt32Decoder
from edgefuse_drivers.packet_bag import PACKET_MSGTYPES, Packet, PacketCounters, read_packets

__all__ = ["HesaiPacketSource", "open_hesai"]

_POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"


class HesaiPacketSource:
    """PandarXT32 packets of a nebula packet bag, assembled into sweeps (see the module documentation)."""

    live = False
    stamp_clock: StampClock = "header"
    recv_clock: RecvClock = "recorded"

    def __init__(self, path: str | Path, *, calibration: str | Path | None = None, min_range: float = 0.05,
                 max_range: float = 120.0, cut_angle_deg: float = 0.0, dual_return_distance_threshold: float = 0.1,
                 stamp: Literal["sensor", "receive"] = "sensor", frame_id: str | None = None) -> None:
        if stamp not in {"sensor", "receive"}:
            raise SourceError(f"stamp must be 'sensor' or 'receive', not {stamp!r}")
        self.path = Path(path)
        self.calibration = Xt32Calibration.load(calibration)
        self._decoder_options: dict[str, float] = {
            "min_range": min_range, "max_range": max_range, "cut_angle_deg": cut_angle_deg,
            "dual_return_distance_threshold": dual_return_distance_threshold}
        Xt32Decoder(self.calibration, **self._decoder_options)  # check the options now
        self.stamp = stamp
        self.frame_id = frame_id
        self.counters = PacketCounters()
        self.unfinished_points = 0
        self._offsets = TimeOffsets()
        self._topics: dict[str, SourceTopic] | None = None
        self._packet_topics: list[str] = []

    def open(self) -> HesaiPacketSource:
        if self._topics is None:
            from edgefuse.bag import open_bag
            from edgefuse_drivers.packet_bag import packet_typestore

            if not self.path.exists():
                raise FileNotFoundError(f"No such file or directory: '{self.path}'")
            with open_bag(self.path, typestore=packet_typestore()) as bag:
                packet_topics = [t for t, i in bag.topics.items() if i.msgtype in PACKET_MSGTYPES]
            if not packet_topics:
                raise SourceError("no pandar_msgs/msg/PandarScan or nebula_msgs/msg/NebulaPackets topic in this bag",
                                  file=str(self.path))
            self._packet_topics = packet_topics
            self._topics = {f"{t}/points": SourceTopic(f"{t}/points", _POINTCLOUD2) for t in packet_topics}
        return self

    def close(self) -> None:
        self._topics = None

    def __enter__(self) -> HesaiPacketSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        if self._topics is None:
            raise SourceError("the source is not open (use 'with source:' or .open())", file=str(self.path))
        return dict(self._topics)

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self._offsets.set(offsets_ns)

    def _messages(self, topics: Sequence[str]) -> Iterator[list[Packet]]:
        """The packets of each bag message (one PandarScan / NebulaPackets at a time)."""
        group: list[Packet] = []
        for pkt in read_packets(self.path, topics):
            if group and (pkt.topic, pkt.index) != (group[0].topic, group[0].index):
                yield group
                group = []
            group.append(pkt)
        if group:
            yield group

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        have = self.topics()
        wanted = set(have) if topics is None else set(topics)
        unknown = wanted - set(have)
        if unknown:
            raise SourceError(f"unknown topic(s) {sorted(unknown)} (this source has {sorted(have)})",
                              file=str(self.path))
        packet_topics = [t for t in self._packet_topics if f"{t}/points" in wanted]
        decoders = {t: Xt32Decoder(self.calibration, **self._decoder_options) for t in packet_topics}
        try:
            for group in self._messages(packet_topics):
                dec = decoders[group[0].topic]
                first = dec.counters.packets
                where = [f"{p.topic} message {p.index} packet {p.pos}" for p in group]
                for sweep in dec.add([p.data for p in group], where):
                    pkt = group[sweep.packet - first]
                    stamp_ns = sweep.stamp_ns if self.stamp == "sensor" else pkt.recv_ns
                    frame = self.frame_id if self.frame_id is not None else pkt.frame_id
                    cloud = pointcloud_from_structured(stamp_ns, frame, sweep.points)
                    meta: dict[str, Any] = {"sensor_stamp_ns": sweep.stamp_ns, "receive_ns": pkt.recv_ns,
                                            "serial": sweep.serial, "first_sweep": sweep.serial == 0,
                                            "index": pkt.index}
                    yield self._offsets.apply(Envelope(f"{pkt.topic}/points", stamp_ns, pkt.record_ns, cloud,
                                                       _POINTCLOUD2, meta))
                self._collect(decoders.values())
        finally:
            self._collect(decoders.values())

    def _collect(self, decoders: Any) -> None:
        total = PacketCounters()
        unfinished = 0
        for dec in decoders:
            c = dec.counters
            total.packets += c.packets
            total.decoded += c.decoded
            for k, v in c.rejected.items():
                total.rejected[k] = total.rejected.get(k, 0) + v
            total.first_errors.extend(c.first_errors[: max(0, 5 - len(total.first_errors))])
            unfinished += dec.pending_points()
        self.counters = total
        self.unfinished_points = unfinished


def _path_of(url: str | Path, scheme: str) -> Path:
    text = str(url)
    prefix = f"{scheme}://"
    return Path(text[len(prefix):]) if text.lower().startswith(prefix) else Path(text)


def open_hesai(url: str | Path, **options: Any) -> HesaiPacketSource:
    """``hesai:///path/to/bag`` → :class:`HesaiPacketSource` (options as its constructor)."""
    return HesaiPacketSource(_path_of(url, "hesai"), **options)


open_hesai.schemes = ("hesai",)  # type: ignore[attr-defined]
