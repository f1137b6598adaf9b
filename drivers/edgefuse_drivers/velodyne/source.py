"""Velodyne as an edgefuse :class:`~edgefuse.sources.base.Source`: a packet capture or live UDP.

``open_source("velodyne://127.0.0.1:2368?model=VLP16")`` receives live packets (a :class:`UdpReceiver`
bound to that address); ``open_source("capture.pcap", model="VLP16")`` (or ``.pcapng``; ``model`` is
auto-detected when left out) reads a capture.  Either yields one envelope per sweep on ``topic``
(default ``/velodyne_points``, ``sensor_msgs/msg/PointCloud2``).

Options (keywords or URL query): ``model``, ``port`` (captures: the data port, default 2368), ``cut_deg``,
``stamp`` (``sensor``: packet time, hour from the host clock — ``stamp_clock == "header"``; ``host``: the
capture/receive time — ``stamp_clock == "host"``), ``min_range``, ``max_range``, ``frame_id``, ``topic``,
``vertical_offsets``.  :meth:`VelodyneSource.report` states the packet counts, problems and the
``host - sensor`` clock offset and jitter.

Auto-detection (:func:`detect_model`): product-id byte 0x22 → VLP-16, 0x28 → VLP-32C; otherwise the
median spacing of the packets' own timestamps (VLP-16 1327 µs single / 664 µs dual, HDL-32E 553 µs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from edgefuse.envelope import Envelope
from edgefuse.errors import DriverError, SourceError
from edgefuse.msgs.types import PointCloud
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.pcap import CaptureReader
from edgefuse_drivers.udp import UdpReceiver
from edgefuse_drivers.velodyne.decode import PACKET_BYTES
from edgefuse_drivers.velodyne.models import VelodyneModel, model
from edgefuse_drivers.velodyne.sweep import SweepAssembler

__all__ = ["VelodyneSource", "detect_model", "open_velodyne", "read_sweeps"]

DATA_PORT = 2368
MSGTYPE = "sensor_msgs/msg/PointCloud2"


def detect_model(payloads: Sequence[bytes]) -> VelodyneModel:
    """The model that wrote these data-packet payloads (see the module documentation).

    Raises:
        DriverError: no 1206-byte packets, or the timing fits no known model.
    """
    pk = [p for p in payloads if len(p) == PACKET_BYTES]
    if not pk:
        raise DriverError("no Velodyne data packets (1206-byte UDP payloads) to detect the model from")
    products = [p[1205] for p in pk]
    top = max(set(products), key=products.count)
    if top == 0x22:
        return model("VLP16")
    if top == 0x28:
        return model("VLP32C")
    stamps = np.array([int.from_bytes(p[1200:1204], "little") for p in pk], np.int64)
    steps = np.diff(stamps)
    steps = steps[(steps > 0) & (steps < 5000)]
    if steps.size == 0:
        raise DriverError("cannot detect the Velodyne model: packet timestamps do not advance; pass model=")
    step = float(np.median(steps))
    dual = pk[0][1204] == 0x39
    if abs(step - (663.6 if dual else 1327.1)) < 40:
        return model("VLP16")
    if abs(step - 552.96) < 30:
        return model("HDL32E")
    raise DriverError(f"cannot detect the Velodyne model (product byte {top:#04x}, packets every {step:.0f} µs);"
                      " pass model=")


def read_sweeps(path: str | Path, *, model_name: str | VelodyneModel | None = None, port: int | None = DATA_PORT,
                **options: Any) -> tuple[Iterator[PointCloud], SweepAssembler]:
    """Sweeps of a capture, and the assembler whose counters describe them (read after iterating)."""
    reader = CaptureReader(path)
    packets = [(p.payload, p.stamp_ns) for p in reader if port is None or p.dst_port == port]
    mdl = model(model_name) if model_name is not None else detect_model([p for p, _ in packets[:200]])
    asm = SweepAssembler(mdl, **options)
    asm.capture_report = reader.report()  # type: ignore[attr-defined]

    def gen() -> Iterator[PointCloud]:
        yield from asm.add_many(packets)
        yield from asm.finish()

    return gen(), asm


class VelodyneSource:
    """Velodyne sweeps from a capture file or a live UDP port (see the module documentation)."""

    schemes = ("velodyne",)
    suffixes = (".pcap", ".pcapng")

    def __init__(self, target: str | Path, *, model: str | None = None, port: int | None = None,
                 topic: str = "/velodyne_points", frame_id: str = "velodyne", cut_deg: float = 0.0,
                 stamp: str = "sensor", min_range: float = 0.3, max_range: float = 300.0,
                 vertical_offsets: bool = True, idle_timeout_s: float | None = None,
                 max_sweeps: int | None = None) -> None:
        text = str(target)
        self.live = text.startswith("velodyne://")
        if stamp not in ("sensor", "host"):
            raise SourceError(f"stamp must be 'sensor' or 'host', not {stamp!r}", file=text)
        self.host = "0.0.0.0"
        if self.live:
            url = urlsplit(text)
            query = dict(parse_qsl(url.query))
            self.host = url.hostname or "0.0.0.0"
            port = url.port or int(query.pop("port", port or DATA_PORT))
            model = query.pop("model", model)
            stamp = query.pop("stamp", stamp)
            cut_deg = float(query.pop("cut_deg", cut_deg))
            topic = query.pop("topic", topic)
            frame_id = query.pop("frame_id", frame_id)
            if query:
                raise SourceError(f"unknown velodyne:// options {sorted(query)}", file=text)
            if model is None:
                raise SourceError("a live velodyne:// source needs ?model=VLP16|VLP32C|HDL32E", file=text)
        self.target = text
        self.model_name = model
        self.port = port if port is not None else DATA_PORT
        self.topic = topic
        self.stamp_clock: StampClock = "header" if stamp == "sensor" else "host"
        self.recv_clock: RecvClock = "host_monotonic" if self.live else "recorded"
        self._options: dict[str, Any] = {"frame_id": frame_id, "cut_deg": cut_deg, "stamp": stamp,
                                         "min_range": min_range, "max_range": max_range,
                                         "vertical_offsets": vertical_offsets}
        self.idle_timeout_s = idle_timeout_s
        self.max_sweeps = max_sweeps
        self.offsets = TimeOffsets()
        self.assembler: SweepAssembler | None = None
        self.receiver: UdpReceiver | None = None

    def open(self) -> VelodyneSource:
        if self.live and self.receiver is None:
            self.receiver = UdpReceiver(self.host, self.port).start()
            self.port = self.receiver.port
        return self

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None

    def __enter__(self) -> VelodyneSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        return {self.topic: SourceTopic(self.topic, MSGTYPE)}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    def report(self) -> str:
        """Packet counts, problems and the clock comparison so far."""
        parts = []
        if self.assembler is not None:
            parts.append(self.assembler.report())
            cap = getattr(self.assembler, "capture_report", None)
            if cap:
                parts.append(cap)
        if self.receiver is not None:
            s = self.receiver.stats
            parts.append(f"udp {self.receiver.host}:{self.receiver.port}: {s.received} datagrams, dropped "
                         f"{s.dropped_queue} (queue) + {s.dropped_kernel} (kernel), {s.errors} errors")
        return "; ".join(parts)

    def _envelope(self, cloud: PointCloud, recv_ns: int) -> Envelope:
        return self.offsets.apply(Envelope(self.topic, cloud.stamp_ns, recv_ns, cloud, MSGTYPE))

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        if topics is not None and self.topic not in topics:
            return
        for count, (cloud, recv_ns) in enumerate(self._live() if self.live else self._capture(), 1):
            yield self._envelope(cloud, recv_ns)
            if self.max_sweeps is not None and count >= self.max_sweeps:
                return

    def _capture(self) -> Iterator[tuple[PointCloud, int]]:
        sweeps, self.assembler = read_sweeps(self.target, model_name=self.model_name, port=self.port,
                                             **self._options)
        for cloud in sweeps:
            yield cloud, cloud.stamp_ns

    def _live(self) -> Iterator[tuple[PointCloud, int]]:
        self.open()
        assert self.receiver is not None
        self.assembler = SweepAssembler(model(self.model_name or "VLP16"), batch=8, **self._options)
        idle_since = time.monotonic()
        while True:
            dgram = self.receiver.get(timeout=0.05)
            if dgram is None:
                for cloud in self.assembler.flush():
                    yield cloud, time.monotonic_ns()
                if self.idle_timeout_s is not None and time.monotonic() - idle_since > self.idle_timeout_s:
                    for cloud in self.assembler.finish():
                        yield cloud, time.monotonic_ns()
                    return
                continue
            idle_since = time.monotonic()
            for cloud in self.assembler.add(dgram.payload, dgram.wall_ns):
                yield cloud, dgram.recv_ns


def open_velodyne(target: str | Path, **options: Any) -> VelodyneSource:
    """The ``edgefuse.sources`` opener of ``velodyne://`` URLs (captures reach :class:`VelodyneSource` through the
    capture dispatcher, :func:`edgefuse_drivers.capture.open_capture`)."""
    return VelodyneSource(target, **options)


open_velodyne.schemes = VelodyneSource.schemes  # type: ignore[attr-defined]
