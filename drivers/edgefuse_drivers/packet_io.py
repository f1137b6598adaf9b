"""Packet input shared by the UDP sensor sources: the same stream of datagrams from a capture file or from
live sockets, and the counters every packet source reports.

- :func:`capture_packets` reads a pcap/pcapng capture (:class:`~edgefuse_drivers.pcap.CaptureReader`);
  ``host_ns`` and ``recv_ns`` are both the capture time (the capturing host's wall clock);
- :func:`live_packets` merges one or more :class:`~edgefuse_drivers.udp.UdpReceiver` queues in receive
  order; ``host_ns`` is the host wall clock at receive (comparable with sensor clocks that are UTC/PTP),
  ``recv_ns`` the host monotonic clock.  It yields ``None`` whenever every socket was quiet for a poll
  interval (so a source can flush what it holds) and ends after ``idle_timeout_s`` of silence or once the
  receivers are closed.

:class:`ClockStats` is the running ``host - sensor`` offset and its jitter (standard deviation) that the
sources report; :class:`Problems` counts rejected datagrams by reason and keeps the first messages.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgefuse_drivers.pcap import CaptureReader
from edgefuse_drivers.udp import Datagram, UdpReceiver

__all__ = ["ClockStats", "InPacket", "Problems", "capture_packets", "live_packets"]

#: how long :func:`live_packets` waits on a quiet socket before yielding ``None`` [s]
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class InPacket:
    """One datagram: payload, host wall-clock time [ns], receive time [ns] (``recv_clock``: recorded or
    host monotonic), destination port (capture) or the local port it arrived on (live)."""

    payload: bytes
    host_ns: int
    recv_ns: int
    port: int


@dataclass
class ClockStats:
    """Running ``host - sensor`` time [ns]: mean and jitter (standard deviation), Welford."""

    count: int = 0
    mean_ns: float = 0.0
    _m2: float = 0.0

    def add(self, diff_ns: int | float) -> None:
        self.count += 1
        delta = float(diff_ns) - self.mean_ns
        self.mean_ns += delta / self.count
        self._m2 += delta * (float(diff_ns) - self.mean_ns)

    @property
    def jitter_ns(self) -> float:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0

    def describe(self) -> str:
        if not self.count:
            return "host - sensor clock: no packets yet"
        return f"host - sensor clock {self.mean_ns / 1e6:+.3f} ms, jitter {self.jitter_ns / 1e3:.1f} µs"

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "mean_ns": self.mean_ns, "jitter_ns": self.jitter_ns}


@dataclass
class Problems:
    """Rejected datagrams by reason, with the first few messages verbatim."""

    counts: Counter[str] = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        if len(self.first) < 5:
            self.first.append(message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))


def capture_packets(path: str | Path, ports: Sequence[int] | None = None) -> tuple[Iterator[InPacket], CaptureReader]:
    """The UDP datagrams of a capture (only those to ``ports`` when given), and the reader whose counters
    describe the file (read after iterating)."""
    reader = CaptureReader(path)
    wanted = None if ports is None else set(ports)

    def gen() -> Iterator[InPacket]:
        for p in reader:
            if wanted is None or p.dst_port in wanted:
                yield InPacket(p.payload, p.stamp_ns, p.stamp_ns, p.dst_port)

    return gen(), reader


def _packet(d: Datagram, port: int) -> InPacket:
    return InPacket(d.payload, d.wall_ns, d.recv_ns, port)


def live_packets(receivers: Sequence[UdpReceiver], *, idle_timeout_s: float | None = None) -> Iterator[InPacket | None]:
    """Datagrams of ``receivers`` in receive order; ``None`` on a quiet poll (see the module documentation)."""
    heads: list[Datagram | None] = [None] * len(receivers)
    idle_since = time.monotonic()
    while any(r.running for r in receivers) or any(h is not None for h in heads):
        for i, r in enumerate(receivers):
            if heads[i] is None:
                heads[i] = r.get(timeout=0)
        if all(h is None for h in heads):
            wait = POLL_S / max(1, len(receivers))
            for i, r in enumerate(receivers):
                heads[i] = r.get(timeout=wait)
                if heads[i] is not None:
                    break
        if all(h is None for h in heads):
            yield None
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            continue
        idle_since = time.monotonic()
        i = min((k for k, h in enumerate(heads) if h is not None), key=lambda k: heads[k].recv_ns)  # type: ignore[union-attr]
        d = heads[i]
        heads[i] = None
        assert d is not None
        yield _packet(d, receivers[i].port)
