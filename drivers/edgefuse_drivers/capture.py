"""Packet captures (``.pcap``/``.pcapng``): which sensor wrote them, one opener for all, and the capture side of
``edgefuse info`` / ``edgefuse convert``.

:func:`survey` reads a capture's UDP datagrams and sorts them per destination port (count, sizes, rate, the
kind of packet they are); :func:`classify` tells the kind of one datagram from its size and content:

==================  =========================================================================================
kind                recognised by
==================  =========================================================================================
``velodyne``        1206-byte data packets (``velodyne_position``: 512-byte position packets)
``hesai``           1080-byte packets starting ``EE FF`` (PandarXT32)
``ouster``          with metadata: its LiDAR packet size (or 48-byte IMU packets); without: the default
                    ports 7502/7503, or a LEGACY packet size (16 columns of 16/32/64/128 pixels)
``ars548``          SOME/IP: service id 0, a known method id (336, 329, 380, 396), length = size − 8
==================  =========================================================================================

:func:`open_capture` (the ``edgefuse.sources`` opener of ``.pcap``/``.pcapng``) hands the capture to the
source of the sensor it found: :class:`~edgefuse_drivers.velodyne.source.VelodyneSource`,
:class:`~edgefuse_drivers.ouster.source.OusterSource` (needs ``metadata=``),
:class:`~edgefuse_drivers.hesai.udp.HesaiUdpSource` or :class:`~edgefuse_drivers.continental.udp.Ars548UdpSource`;
``sensor=`` forces one.  When it cannot tell (no known packets, or several sensors in one capture), it raises
:class:`~edgefuse.errors.SourceError` naming what it saw per port.

:func:`info_file` / :func:`convert_file` are what ``edgefuse info`` / ``edgefuse convert`` call for files
that are not bags (registered as ``edgefuse.file_tools``): packet captures and the other files driver
sources read (NMEA logs ``*.nmea``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefuse.errors import DriverError, EdgefuseError, SourceError
from edgefuse.sources.base import Source, open_source
from edgefuse_drivers.pcap import CaptureReader

__all__ = ["SENSORS", "CaptureSurvey", "PortSurvey", "classify", "convert_file", "format_survey", "info_file",
           "open_capture", "survey"]

#: files :func:`info_file` / :func:`convert_file` handle (the ``edgefuse.file_tools`` plugin's suffixes)
suffixes = (".pcap", ".pcapng", ".nmea")
#: the sensors :func:`open_capture` opens
SENSORS = ("velodyne", "ouster", "hesai", "ars548")
_ARS548_METHODS = {336, 329, 380, 396}
_OUSTER_LEGACY_SIZES = {16 * (20 + 12 * h): h for h in (16, 32, 64, 128)}
#: datagrams per port that :func:`survey` classifies (the counts and sizes cover every datagram)
CLASSIFY_PER_PORT = 200


def classify(payload: bytes, port: int, ouster_sizes: tuple[int, int] | None = None) -> str | None:
    """The kind of one UDP payload sent to ``port`` (see the module documentation), or None.
    ``ouster_sizes``: (LiDAR packet bytes, IMU packet bytes) from the sensor's metadata."""
    n = len(payload)
    if ouster_sizes is not None and n in ouster_sizes:
        return "ouster"
    if n == 1206:
        return "velodyne"
    if n == 512 and port == 8308:
        return "velodyne_position"
    if n == 1080 and payload[:2] == b"\xee\xff":
        return "hesai"
    if n >= 16 and payload[:2] == b"\x00\x00":
        method = int.from_bytes(payload[2:4], "big")
        if method in _ARS548_METHODS and int.from_bytes(payload[4:8], "big") == n - 8:
            return "ars548"
    if port in (7502, 7503) or n in _OUSTER_LEGACY_SIZES:
        return "ouster"
    return None


@dataclass
class PortSurvey:
    """The datagrams to one destination port."""

    port: int
    count: int = 0
    bytes: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    first_ns: int = 0
    last_ns: int = 0

    @property
    def kind(self) -> str | None:
        """The most common kind among the classified datagrams (None: none recognised)."""
        known = [(n, k) for k, n in self.kinds.items() if k != "?"]
        return max(known)[1] if known else None

    @property
    def rate_hz(self) -> float:
        return (self.count - 1) * 1e9 / (self.last_ns - self.first_ns) if self.last_ns > self.first_ns else 0.0

    def describe(self) -> str:
        sizes = ", ".join(f"{s} B × {n}" for s, n in self.sizes.most_common(3))
        more = f" (+{len(self.sizes) - 3} other sizes)" if len(self.sizes) > 3 else ""
        return (f"port {self.port}: {self.count} datagrams ({sizes}{more}), {self.rate_hz:.1f} Hz, "
                f"{self.kind or 'unknown'}")

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "count": self.count, "bytes": self.bytes, "rate_hz": self.rate_hz,
                "sizes": {str(k): v for k, v in self.sizes.most_common()}, "kind": self.kind,
                "first_ns": self.first_ns, "last_ns": self.last_ns}


@dataclass
class CaptureSurvey:
    """Per destination port :class:`PortSurvey`, and the reader's report (format, skipped frames, damage)."""

    path: Path
    ports: dict[int, PortSurvey]
    reader_report: str
    problems: dict[str, int]

    @property
    def sensors(self) -> list[str]:
        """The sensor families seen (position packets count as Velodyne)."""
        kinds = {p.kind for p in self.ports.values()}
        return [s for s in SENSORS if s in kinds or (s == "velodyne" and "velodyne_position" in kinds)]

    def port_of(self, kind: str) -> int | None:
        best = [p for p in self.ports.values() if p.kind == kind]
        return max(best, key=lambda p: p.count).port if best else None

    def describe(self) -> str:
        return "; ".join(p.describe() for p in sorted(self.ports.values(), key=lambda p: p.port)) or "no UDP datagrams"


def _ouster_sizes(metadata: Any) -> tuple[int, int] | None:
    if metadata is None:
        return None
    from edgefuse_drivers.ouster.metadata import SensorInfo
    from edgefuse_drivers.ouster.packets import IMU_PACKET_BYTES, lidar_packet_bytes

    info = metadata if isinstance(metadata, SensorInfo) else SensorInfo.from_json(metadata)
    return lidar_packet_bytes(info), IMU_PACKET_BYTES


def survey(path: str | Path, *, metadata: Any = None, limit: int | None = None) -> CaptureSurvey:
    """Sort the datagrams of a capture per destination port (at most ``limit`` datagrams read).

    Raises:
        DriverError: not a capture file.
    """
    reader = CaptureReader(path)
    sizes = _ouster_sizes(metadata)
    ports: dict[int, PortSurvey] = {}
    for i, pkt in enumerate(reader):
        if limit is not None and i >= limit:
            break
        ps = ports.get(pkt.dst_port)
        if ps is None:
            ps = ports[pkt.dst_port] = PortSurvey(pkt.dst_port, first_ns=pkt.stamp_ns)
        ps.count += 1
        ps.bytes += len(pkt.payload)
        ps.sizes[len(pkt.payload)] += 1
        ps.first_ns, ps.last_ns = min(ps.first_ns, pkt.stamp_ns), max(ps.last_ns, pkt.stamp_ns)
        if ps.count <= CLASSIFY_PER_PORT:
            ps.kinds[classify(pkt.payload, pkt.dst_port, sizes) or "?"] += 1
    return CaptureSurvey(Path(path), ports, reader.report(), dict(reader.problems))


def _sensor_of(found: CaptureSurvey, sensor: str | None, metadata: Any) -> str:
    if sensor is not None:
        if sensor not in SENSORS:
            raise SourceError(f"sensor must be one of {', '.join(SENSORS)}, not {sensor!r}", file=str(found.path))
        return sensor
    sensors = found.sensors
    if metadata is not None and (not sensors or sensors == ["ouster"]):
        return "ouster"
    if len(sensors) == 1:
        return sensors[0]
    seen = found.describe()
    if not sensors:
        raise SourceError(f"cannot tell which sensor wrote this capture ({seen}); known: Velodyne (1206-byte "
                          "packets), Hesai XT32 (1080 bytes, EE FF), Ouster (metadata=FILE.json), ARS548 (SOME/IP); "
                          "pass sensor=", file=str(found.path))
    raise SourceError(f"this capture holds packets of several sensors ({', '.join(sensors)}: {seen}); pass "
                      f"sensor= to pick one", file=str(found.path))


def open_capture(path: str | Path, *, sensor: str | None = None, **options: Any) -> Source:
    """The source for a packet capture (see the module documentation); ``options`` go to that source.

    Raises:
        SourceError: the sensor cannot be told (the message says what the capture holds), or an Ouster
            capture without ``metadata=``.
        DriverError: not a capture file.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    metadata = options.get("metadata")
    found = survey(path, metadata=metadata, limit=20_000)
    kind = _sensor_of(found, sensor, metadata)
    if kind == "velodyne":
        from edgefuse_drivers.velodyne.source import VelodyneSource

        options.setdefault("port", found.port_of("velodyne") or 2368)
        return VelodyneSource(path, **options)
    if kind == "hesai":
        from edgefuse_drivers.hesai.udp import HesaiUdpSource

        options.setdefault("port", found.port_of("hesai") or HesaiUdpSource.default_port)
        return HesaiUdpSource(path, **options)
    if kind == "ars548":
        from edgefuse_drivers.continental.udp import Ars548UdpSource

        options.setdefault("port", found.port_of("ars548") or Ars548UdpSource.default_port)
        return Ars548UdpSource(path, **options)
    from edgefuse_drivers.ouster.source import OusterSource

    if metadata is None:
        raise SourceError(f"this looks like an Ouster capture ({found.describe()}); its packets decode only with "
                          "the sensor's metadata: pass metadata=FILE.json (edgefuse info/convert: --metadata)",
                          file=str(path))
    return OusterSource(path, **options)


open_capture.suffixes = (".pcap", ".pcapng")  # type: ignore[attr-defined]


# -- edgefuse info / edgefuse convert ------------------------------------------------------------------------
def _is_capture(path: Path) -> bool:
    return path.suffix.lower() in (".pcap", ".pcapng")


def _topic_stats(envs: Iterator[Any]) -> dict[str, dict[str, Any]]:
    topics: dict[str, dict[str, Any]] = {}
    for env in envs:
        t = topics.setdefault(env.topic, {"msgtype": env.msgtype, "count": 0, "first_ns": env.stamp_ns,
                                          "last_ns": env.stamp_ns})
        t["count"] += 1
        t["first_ns"], t["last_ns"] = min(t["first_ns"], env.stamp_ns), max(t["last_ns"], env.stamp_ns)
    for t in topics.values():
        span = t["last_ns"] - t["first_ns"]
        t["rate_hz"] = (t["count"] - 1) * 1e9 / span if span > 0 else 0.0
    return topics


def _source_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    opts = {k: v for k, v in options.items() if v is not None}
    if not _is_capture(path) and opts.keys() & {"metadata", "sensor"}:
        raise SourceError("metadata/sensor apply to packet captures (.pcap, .pcapng)", file=str(path))
    return opts


def file_info(path: str | Path, **options: Any) -> dict[str, Any]:
    """What ``edgefuse info`` shows for a capture or another driver file: per port (captures) the datagram
    counts, sizes, rates and detected kind; the sensor; the decoded topics (counts, stamp span, rates); the
    source's own statistics (decode problems, clock offsets)."""
    path = Path(path)
    options = _source_options(path, options)
    out: dict[str, Any] = {"path": str(path)}
    if _is_capture(path):
        found = survey(path, metadata=options.get("metadata"))
        out["capture"] = found.reader_report
        out["ports"] = [p.as_dict() for p in sorted(found.ports.values(), key=lambda p: p.port)]
        out["sensors"] = found.sensors
        try:
            out["sensor"] = _sensor_of(found, options.get("sensor"), options.get("metadata"))
        except SourceError as exc:
            out["sensor"] = None
            out["error"] = exc.message
            return out
    try:
        src = open_source(path, **options)
        with src:
            out["topics"] = _topic_stats(src.envelopes())
    except EdgefuseError as exc:
        out["error"] = str(exc)
        return out
    stats = getattr(src, "stats", None)
    report = getattr(src, "report", None)
    if callable(stats):
        out["source_stats"] = stats()
    if callable(report):
        out["report"] = report()
    return out


def format_info(info: dict[str, Any]) -> str:
    lines = [f"file: {info['path']}"]
    if "capture" in info:
        lines.append(f"capture: {info['capture']}")
        for p in info["ports"]:
            sizes = ", ".join(f"{s} B × {n}" for s, n in list(p["sizes"].items())[:3])
            lines.append(f"  udp port {p['port']:>5}: {p['count']:>8} datagrams  {p['rate_hz']:9.1f} Hz  "
                         f"{sizes:<28}  {p['kind'] or 'unknown'}")
        lines.append(f"sensor: {info.get('sensor') or 'UNKNOWN'}")
    for topic, t in sorted(info.get("topics", {}).items()):
        lines.append(f"  {topic}  {t['msgtype'] or '(no ROS type)'}  {t['count']} messages  {t['rate_hz']:.2f} Hz")
    if "report" in info:
        lines.append(f"decode: {info['report']}")
    if "error" in info:
        lines.append(f"PROBLEM: {info['error']}")
    return "\n".join(lines)


def format_survey(found: CaptureSurvey) -> str:
    return f"{found.reader_report}\n" + "\n".join(f"  {p.describe()}" for p in found.ports.values())


def info_file(path: str | Path, *, as_json: bool = False, **options: Any) -> tuple[str, bool]:
    """``edgefuse info FILE`` for a capture / driver file: the text (or JSON) to print, and whether it decoded
    (False: the sensor could not be told or decoding failed; the text says why).

    Raises:
        DriverError: the file cannot be read at all (not a capture).
    """
    info = file_info(path, **options)
    text = json.dumps(info, indent=2, default=str) if as_json else format_info(info)
    return text, "error" not in info


def convert_file(path: str | Path, out: str | Path, *, overwrite: bool = False, **options: Any) -> str:
    """``edgefuse convert FILE OUT``: decode a capture / driver file and write its topics with a ROS type
    (clouds, IMU, fixes, radar scans) to a ROS 2 MCAP bag at ``out``; returns the summary to print.

    Raises:
        SourceError / DriverError: the file cannot be opened or decoded.
        ReplayError: ``out`` cannot be written.
    """
    from edgefuse.msgs.edges import type_of_msgtype
    from edgefuse.sinks.record import RecordSink, check_writable_output

    out = Path(out)
    check_writable_output(out, overwrite=overwrite)
    src = open_source(path, **_source_options(Path(path), options))
    with src:
        topics = {t: type_of_msgtype(i.msgtype) for t, i in src.topics().items()}
        outputs = {t: e for t, e in topics.items() if e is not None}
        skipped = sorted(t for t, e in topics.items() if e is None)
        if not outputs:
            raise DriverError(f"{path}: nothing to write (topics {sorted(topics)} have no ROS message type)")
        sink = RecordSink(out, overwrite=overwrite, viewer_extras=False)
        sink.open(outputs)
        try:
            for env in src.envelopes(list(outputs)):
                sink.write(env.topic, env.stamp_ns, env.payload)
        except BaseException as exc:
            sink.mark_incomplete(f"decoding failed: {exc}")
            raise
        finally:
            sink.close()
    lines = [f"bag: {sink.path} ({'complete' if sink.complete else 'INCOMPLETE'})"]
    lines += [f"  {t}  {n} messages" for t, n in sorted(sink.counts.items())]
    if skipped:
        lines.append(f"  not written (no ROS message type): {', '.join(skipped)}")
    report = getattr(src, "report", None)
    if callable(report):
        lines.append(f"decode: {report()}")
    return "\n".join(lines)
