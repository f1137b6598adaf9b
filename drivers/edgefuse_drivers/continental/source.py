"""Continental radar packets recorded by nebula (``nebula_msgs/NebulaPackets`` bags) as a
:class:`~edgefuse.sources.base.Source`.

Open with ``open_source("ars548:///path/to/bag")`` or ``"srr520://…"`` (registered through the
``edgefuse.sources`` entry points), or construct :class:`ContinentalPacketSource` directly.

For a packet topic ``T`` it yields, per decoded list:

- ``T/detections`` (ARS548 detection list; SRR520: ``T/near_detections`` and ``T/hrr_detections``):
  a :class:`~edgefuse.msgs.types.RadarScanData` (``radar_msgs/msg/RadarScan``: range, azimuth, elevation
  (SRR520: 0, it measures none), doppler_velocity = range rate, amplitude = RCS), with every decoded field
  in ``meta["detections"]`` (the decoder's structured array) and the whole list in ``meta["list"]``;
- ``T/objects``: a :class:`~edgefuse.msgs.types.RadarTracksData` (``radar_msgs/msg/RadarTracks``; mapping in
  :mod:`edgefuse_drivers.continental.tracks`), with the decoded objects in ``meta["objects"]`` and the whole
  list (:class:`~edgefuse_drivers.continental.ars548.Ars548ObjectList` /
  :class:`~edgefuse_drivers.continental.srr520.Srr520ObjectList`) in ``meta["list"]``.

Stamps: ``stamp="sensor"`` (default): ``stamp_ns`` is the sensor's own time of the measurement from the
packet (PTP-synchronised when ``meta["sync_status"]`` is 1); ``stamp="receive"``: the host receive time of
the (last) packet, as nebula does for the ARS548 by default.  ``meta`` always has both
(``sensor_stamp_ns``, ``receive_ns``); :meth:`ContinentalPacketSource.stamp_report` gives, per topic, the
receive − sensor offset (mean, min, max, and its jitter = max − min).  ``recv_ns`` is the bag's record time.

Bad packets (wrong size, service/method/CAN id, CRC, counters) are counted by reason in :attr:`counters`
(and the SRR520 lists they break in ``counters.rejected`` under ``"list: …"``) and skipped; decoding goes
on with the next packet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.msgs.types import RADAR_RETURN_DTYPE, RadarScanData, RadarTracksData
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.continental.ars548 import Ars548DetectionList, Ars548ObjectList, decode_ars548
from edgefuse_drivers.continental.srr520 import (
    Srr520Assembler,
    Srr520DetectionList,
    Srr520ObjectList,
    decode_srr520_frame,
)
from edgefuse_drivers.continental.tracks import ars548_tracks, srr520_tracks
from edgefuse_drivers.packet_bag import Packet, PacketCounters, PacketError, read_packets

__all__ = ["ContinentalPacketSource", "StampStats", "open_ars548", "open_srr520"]

Driver = Literal["ars548", "srr520"]
_RADAR_SCAN = "radar_msgs/msg/RadarScan"
_RADAR_TRACKS = "radar_msgs/msg/RadarTracks"
_DetList = Ars548DetectionList | Srr520DetectionList
_Decoded = Ars548DetectionList | Ars548ObjectList | Srr520DetectionList | Srr520ObjectList


@dataclass
class StampStats:
    """receive − sensor stamp offsets of one topic [ns]."""

    count: int = 0
    total: int = 0
    min: int = 0
    max: int = 0

    def add(self, offset: int) -> None:
        if self.count == 0:
            self.min = self.max = offset
        self.min, self.max = min(self.min, offset), max(self.max, offset)
        self.count += 1
        self.total += offset

    def as_dict(self) -> dict[str, float]:
        mean = self.total / self.count if self.count else 0.0
        return {"count": self.count, "mean_ns": mean, "min_ns": self.min, "max_ns": self.max,
                "jitter_ns": self.max - self.min}


def _returns(det: _DetList) -> np.ndarray:
    d = det.detections
    out = np.zeros(len(d), dtype=RADAR_RETURN_DTYPE)
    out["range"] = d["range"]
    out["azimuth"] = d["azimuth_angle"]
    if "elevation_angle" in (d.dtype.names or ()):
        out["elevation"] = d["elevation_angle"]
    out["doppler_velocity"] = d["range_rate"]
    out["amplitude"] = d["rcs"]
    return out


def tracks_of(objects: Ars548ObjectList | Srr520ObjectList) -> np.ndarray:
    """An object list's objects as ``radar_msgs/RadarTrack`` rows (see :mod:`edgefuse_drivers.continental.tracks`)."""
    if isinstance(objects, Ars548ObjectList):
        return ars548_tracks(objects.objects)
    return srr520_tracks(objects.objects)


class ContinentalPacketSource:
    """ARS548 / SRR520 packets of a nebula packet bag, decoded (see the module documentation)."""

    live = False
    stamp_clock: StampClock = "header"
    recv_clock: RecvClock = "recorded"

    def __init__(self, path: str | Path, *, driver: Driver, stamp: Literal["sensor", "receive"] = "sensor",
                 frame_id: str | None = None) -> None:
        if driver not in {"ars548", "srr520"}:
            raise SourceError(f"driver must be 'ars548' or 'srr520', not {driver!r}")
        if stamp not in {"sensor", "receive"}:
            raise SourceError(f"stamp must be 'sensor' or 'receive', not {stamp!r}")
        self.path = Path(path)
        self.driver: Driver = driver
        self.stamp = stamp
        self.frame_id = frame_id
        self.counters = PacketCounters()
        self.stamp_stats: dict[str, StampStats] = {}
        self._offsets = TimeOffsets()
        self._topics: dict[str, SourceTopic] | None = None

    def open(self) -> ContinentalPacketSource:
        if self._topics is None:
            from edgefuse.bag import open_bag
            from edgefuse_drivers.packet_bag import PACKET_MSGTYPES, packet_typestore

            if not self.path.exists():
                raise FileNotFoundError(f"No such file or directory: '{self.path}'")
            with open_bag(self.path, typestore=packet_typestore()) as bag:
                packet_topics = [t for t, i in bag.topics.items() if i.msgtype == PACKET_MSGTYPES[0]]
            if not packet_topics:
                raise SourceError("no nebula_msgs/msg/NebulaPackets topic in this bag", file=str(self.path))
            self._packet_topics = packet_topics
            suffixes = (["detections", "objects"] if self.driver == "ars548"
                        else ["near_detections", "hrr_detections", "objects"])
            self._topics = {}
            for t in packet_topics:
                for s in suffixes:
                    name = f"{t}/{s}"
                    self._topics[name] = SourceTopic(name, _RADAR_SCAN if s.endswith("detections") else _RADAR_TRACKS)
        return self

    def close(self) -> None:
        self._topics = None

    def __enter__(self) -> ContinentalPacketSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        if self._topics is None:
            raise SourceError("the source is not open (use 'with source:' or .open())", file=str(self.path))
        return dict(self._topics)

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self._offsets.set(offsets_ns)

    def stamp_report(self) -> dict[str, dict[str, float]]:
        """Per output topic: receive − sensor stamp offset statistics (see :class:`StampStats`)."""
        return {t: s.as_dict() for t, s in self.stamp_stats.items()}

    def _decoded(self) -> Iterator[tuple[Packet, _Decoded]]:
        assemblers: dict[str, Srr520Assembler] = {}
        for pkt in read_packets(self.path, self._packet_topics):
            self.counters.packets += 1
            where = f"{pkt.topic} message {pkt.index} packet {pkt.pos}"
            try:
                if self.driver == "ars548":
                    out: _Decoded | None = decode_ars548(pkt.data)
                else:
                    asm = assemblers.setdefault(pkt.topic, Srr520Assembler())
                    out = asm.add(decode_srr520_frame(pkt.data))
            except PacketError as err:
                self.counters.reject(err, where)
                continue
            self.counters.decoded += 1
            if out is not None:
                yield pkt, out
        for asm in assemblers.values():
            for reason, n in asm.dropped.items():
                key = f"list: {reason}"
                self.counters.rejected[key] = self.counters.rejected.get(key, 0) + n

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        have = self.topics()
        wanted = set(have) if topics is None else set(topics)
        unknown = wanted - set(have)
        if unknown:
            raise SourceError(f"unknown topic(s) {sorted(unknown)} (this source has {sorted(have)})",
                              file=str(self.path))
        for pkt, out in self._decoded():
            if isinstance(out, Ars548ObjectList | Srr520ObjectList):
                suffix = "objects"
            elif isinstance(out, Srr520DetectionList):
                suffix = f"{out.kind}_detections"
            else:
                suffix = "detections"
            topic = f"{pkt.topic}/{suffix}"
            if topic not in wanted:
                continue
            sensor_ns = out.sensor_stamp_ns
            self.stamp_stats.setdefault(topic, StampStats()).add(pkt.recv_ns - sensor_ns)
            stamp_ns = sensor_ns if self.stamp == "sensor" else pkt.recv_ns
            frame = self.frame_id if self.frame_id is not None else pkt.frame_id
            meta: dict[str, Any] = {"sensor_stamp_ns": sensor_ns, "receive_ns": pkt.recv_ns,
                                    "sync_status": out.sync_status, "index": pkt.index}
            if isinstance(out, Ars548ObjectList | Srr520ObjectList):
                meta["objects"] = out.objects
                meta["list"] = out
                env = Envelope(topic, stamp_ns, pkt.record_ns, RadarTracksData(stamp_ns, frame, tracks_of(out)),
                               _RADAR_TRACKS, meta)
            else:
                meta["detections"] = out.detections
                meta["list"] = out
                env = Envelope(topic, stamp_ns, pkt.record_ns, RadarScanData(stamp_ns, frame, _returns(out)),
                               _RADAR_SCAN, meta)
            yield self._offsets.apply(env)


def _path_of(url: str | Path, scheme: str) -> Path:
    text = str(url)
    prefix = f"{scheme}://"
    return Path(text[len(prefix):]) if text.lower().startswith(prefix) else Path(text)


def open_ars548(url: str | Path, **options: Any) -> ContinentalPacketSource:
    """``ars548:///path/to/bag`` → :class:`ContinentalPacketSource` (options: ``stamp``, ``frame_id``)."""
    return ContinentalPacketSource(_path_of(url, "ars548"), driver="ars548", **options)


def open_srr520(url: str | Path, **options: Any) -> ContinentalPacketSource:
    """``srr520:///path/to/bag`` → :class:`ContinentalPacketSource` (options: ``stamp``, ``frame_id``)."""
    return ContinentalPacketSource(_path_of(url, "srr520"), driver="srr520", **options)


open_ars548.schemes = ("ars548",)  # type: ignore[attr-defined]
open_srr520.schemes = ("srr520",)  # type: ignore[attr-defined]
