"""The part every single-port UDP sensor source shares: ``SCHEME+udp://HOST:PORT[?multicast=GROUP&…]`` URLs
or a capture file, the receiver's lifetime, the packet stream, time offsets and the report.

A subclass sets :attr:`name`, :attr:`scheme` and :attr:`default_port`, declares its options
(:attr:`url_options`: name → converter) and implements :meth:`topics` and :meth:`_envelopes` over
:meth:`_packets`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.packet_io import ClockStats, InPacket, Problems, capture_packets, live_packets
from edgefuse_drivers.pcap import CaptureReader
from edgefuse_drivers.udp import UdpReceiver

__all__ = ["UdpSensorSource"]


class UdpSensorSource:
    """Base of the single-port UDP sensor sources (see the module documentation)."""

    name: ClassVar[str] = ""
    scheme: ClassVar[str] = ""
    default_port: ClassVar[int] = 0
    #: URL query options a subclass accepts besides ``multicast``/``port``/``stamp``: name → converter
    url_options: ClassVar[Mapping[str, Callable[[str], Any]]] = {}

    def __init__(self, target: str | Path, options: dict[str, Any], *, port: int | None = None,
                 multicast: str | None = None, stamp: str = "sensor", idle_timeout_s: float | None = None,
                 rcvbuf: int = 16 * 1024 * 1024) -> None:
        text = str(target)
        self.live = text.lower().startswith(f"{self.scheme}://")
        self.host = "0.0.0.0"
        if self.live:
            url = urlsplit(text)
            query = dict(parse_qsl(url.query))
            self.host = url.hostname or "0.0.0.0"
            port = url.port if url.port is not None else int(query.pop("port", port or self.default_port))
            query.pop("port", None)
            multicast = query.pop("multicast", multicast)
            stamp = query.pop("stamp", stamp)
            for key in list(query):
                conv = self.url_options.get(key)
                if conv is None:
                    known = ", ".join(["multicast", "port", "stamp", *self.url_options])
                    raise SourceError(f"unknown {self.scheme}:// option {key!r} (known: {known})", file=text)
                options[key] = conv(query.pop(key))
        if stamp not in ("sensor", "host"):
            raise SourceError(f"stamp must be 'sensor' or 'host', not {stamp!r}", file=text)
        self.target = text
        self.port = self.default_port if port is None else int(port)
        self.multicast = multicast
        self.stamp = stamp
        self.stamp_clock: StampClock = "header" if stamp == "sensor" else "host"
        self.recv_clock: RecvClock = "host_monotonic" if self.live else "recorded"
        self.idle_timeout_s = idle_timeout_s
        self.rcvbuf = rcvbuf
        self.offsets = TimeOffsets()
        self.receiver: UdpReceiver | None = None
        self.capture: CaptureReader | None = None
        self.packets = 0
        self.other_packets = 0
        self.problems = Problems()
        self.clock = ClockStats()

    # -- Source protocol ------------------------------------------------------------------------------
    def open(self) -> UdpSensorSource:
        if self.live and self.receiver is None:
            self.receiver = UdpReceiver(self.host, self.port, rcvbuf=self.rcvbuf,
                                        multicast_group=self.multicast).start()
            self.port = self.receiver.port
        return self

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()

    def __enter__(self) -> UdpSensorSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        raise NotImplementedError

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        have = self.topics()
        wanted = set(have) if topics is None else set(topics) & set(have)
        if not wanted:
            return
        self.packets = self.other_packets = 0
        self.problems = Problems()
        self.clock = ClockStats()
        for env in self._envelopes(wanted):
            yield self.offsets.apply(env)

    def _envelopes(self, wanted: set[str]) -> Iterator[Envelope]:
        raise NotImplementedError

    def _packets(self) -> Iterator[InPacket | None]:
        """The datagrams (live: ``None`` on a quiet poll; a capture: those to :attr:`port`)."""
        if self.live:
            self.open()
            assert self.receiver is not None
            yield from live_packets([self.receiver], idle_timeout_s=self.idle_timeout_s)
        else:
            packets, self.capture = capture_packets(self.target, [self.port])
            yield from packets

    # -- reporting ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sensor": self.name, "packets": self.packets, "other_packets": self.other_packets,
                               "rejected": dict(self.problems.counts), "first_errors": list(self.problems.first),
                               "clock": self.clock.as_dict()}
        if self.receiver is not None:
            out["udp"] = vars(self.receiver.stats).copy()
        if self.capture is not None:
            out["capture"] = self.capture.report()
        return out

    def report(self) -> str:
        parts = [f"{self.name}: {self.packets} packets; {self.clock.describe()}"]
        if self.problems.total:
            parts.append(f"PROBLEMS {self.problems.describe()}")
        if self.receiver is not None:
            s = self.receiver.stats
            parts.append(f"udp {self.receiver.host}:{self.receiver.port}: {s.received} datagrams, dropped "
                         f"{s.dropped_queue} (queue) + {s.dropped_kernel} (kernel), {s.errors} errors")
        if self.capture is not None:
            parts.append(self.capture.report())
        return "; ".join(parts)
