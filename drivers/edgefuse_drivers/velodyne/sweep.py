"""Velodyne packets → sweeps (one rotation each), with packet checks, stamps and counters.

:class:`SweepAssembler` takes UDP payloads with a host time (capture or receive) and yields
:class:`~edgefuse.msgs.types.PointCloud` sweeps cut where the block azimuth passes ``cut_deg`` (default 0°,
the rotation wrap).  A cut happens between blocks, never inside one.

Clocks (``stamp``):

- ``"sensor"`` (default): the packet's own timestamp (µs since the top of the hour, first firing of the
  packet) plus the hour taken from the host time (the nearest hour boundary that puts sensor time within
  ±30 min of the host time).  Exact when the sensor is PPS/GPS-synchronised to the host's clock; otherwise
  it is the sensor's free-running clock and the offset to the host is what :attr:`SweepAssembler.clock`
  reports.
- ``"host"``: the capture/receive time of the packet is taken as the time of its first firing (the
  transport latency, typically < 1 ms, is not removed).

Either way :attr:`SweepAssembler.clock` tracks ``host - sensor`` per packet (mean offset and its jitter,
the standard deviation), so the two clocks can be compared.

Sweep fields: ``x y z`` float32 [m], ``intensity`` float32 (raw reflectivity 0..255), ``ring`` uint16
(0 = lowest laser), ``time`` float32 [s] since the sweep stamp (the first point's firing time, so
``time >= 0``; what :mod:`edgefuse.stages.deskew` reads), ``return_type`` uint8 (see
:data:`~edgefuse_drivers.velodyne.decode.RETURN_TYPES`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edgefuse.msgs.pointcloud import pointcloud_from_arrays
from edgefuse.msgs.types import PointCloud
from edgefuse_drivers.velodyne.decode import PACKET_BYTES, DecodedPoints, Decoder, validate_packets
from edgefuse_drivers.velodyne.models import VelodyneModel

__all__ = ["ClockStats", "StampClock", "SweepAssembler"]

StampClock = Literal["sensor", "host"]
_HOUR_NS = 3_600_000_000_000
#: a gap between packets longer than this ends the sweep being built (the sensor stopped or packets were lost)
MAX_GAP_NS = 500_000_000


@dataclass
class ClockStats:
    """Running ``host - sensor`` time per packet [ns] (Welford mean and variance)."""

    count: int = 0
    mean_ns: float = 0.0
    _m2: float = 0.0

    def add(self, diffs: np.ndarray) -> None:
        for d in diffs.astype(np.float64):
            self.count += 1
            delta = d - self.mean_ns
            self.mean_ns += delta / self.count
            self._m2 += delta * (d - self.mean_ns)

    @property
    def jitter_ns(self) -> float:
        """Standard deviation of ``host - sensor``."""
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0


@dataclass
class SweepAssembler:
    """Assemble sweeps from Velodyne data packets (see the module documentation)."""

    model: VelodyneModel
    frame_id: str = "velodyne"
    cut_deg: float = 0.0
    stamp: StampClock = "sensor"
    min_range: float = 0.3
    max_range: float = 300.0
    vertical_offsets: bool = True
    #: packets decoded per kernel call
    batch: int = 64
    packets_in: int = 0
    packets_ok: int = 0
    sweeps_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    clock: ClockStats = field(default_factory=ClockStats)

    def __post_init__(self) -> None:
        self.decoder = Decoder(self.model, min_range=self.min_range, max_range=self.max_range,
                               vertical_offsets=self.vertical_offsets)
        self._cut = round(self.cut_deg * 100) % 36000
        self._pending: list[DecodedPoints] = []
        self._last_phase = -1
        self._last_ns: int | None = None
        self._buf: list[bytes] = []
        self._host: list[int] = []

    # -- counters ------------------------------------------------------------------------------------
    def problems(self) -> dict[str, int]:
        """Rejected packets and skipped blocks, by reason."""
        out = dict(self.rejected)
        out.update(self.decoder.block_problem_counts)
        return out

    def report(self) -> str:
        probs = self.problems()
        clock = (f"; host - sensor clock {self.clock.mean_ns / 1e6:+.3f} ms, jitter {self.clock.jitter_ns / 1e3:.1f} µs"
                 if self.clock.count else "")
        tail = "; PROBLEMS " + ", ".join(f"{k}: {v}" for k, v in sorted(probs.items())) if probs else ""
        return (f"{self.model.name}: {self.packets_in} packets, {self.packets_ok} decoded, {self.sweeps_out} sweeps"
                f"{clock}{tail}")

    # -- input ---------------------------------------------------------------------------------------
    def add(self, payload: bytes, host_ns: int) -> list[PointCloud]:
        """Add one UDP payload received/captured at ``host_ns``; returns the sweeps it completed."""
        self.packets_in += 1
        if len(payload) != PACKET_BYTES:
            self.rejected["wrong packet size"] += 1
            return []
        self._buf.append(payload)
        self._host.append(host_ns)
        if len(self._buf) >= self.batch:
            return self._flush_batch()
        return []

    def add_many(self, items: Iterable[tuple[bytes, int]]) -> Iterator[PointCloud]:
        for payload, host_ns in items:
            yield from self.add(payload, host_ns)

    def finish(self) -> list[PointCloud]:
        """Decode what is buffered and return the last (possibly partial) sweep."""
        out = self._flush_batch()
        sweep = self._emit()
        if sweep is not None:
            out.append(sweep)
        return out

    def flush(self) -> list[PointCloud]:
        """Decode what is buffered (live sources call this when the socket goes quiet)."""
        return self._flush_batch()

    # -- internals -----------------------------------------------------------------------------------
    def _flush_batch(self) -> list[PointCloud]:
        if not self._buf:
            return []
        arr = np.frombuffer(b"".join(self._buf), np.uint8).reshape(-1, PACKET_BYTES)
        host = np.asarray(self._host, np.int64)
        self._buf, self._host = [], []
        check = validate_packets(arr, self.model)
        for reason, n in check.rejected.items():
            self.rejected[reason] += n
        arr, host = arr[check.ok], host[check.ok]
        self.packets_ok += int(arr.shape[0])
        if arr.shape[0] == 0:
            return []
        sensor_ns = _sensor_time(arr, host)
        self.clock.add(host - sensor_ns)
        packet_ns = sensor_ns if self.stamp == "sensor" else host
        pts = self.decoder.decode(arr, packet_ns)
        return self._split(pts, packet_ns)

    def _split(self, pts: DecodedPoints, packet_ns: np.ndarray) -> list[PointCloud]:
        out: list[PointCloud] = []
        if len(pts) == 0:
            return out
        phase = (pts.block_azimuth.astype(np.int64) - self._cut) % 36000
        prev = np.empty_like(phase)
        prev[0] = self._last_phase
        prev[1:] = phase[:-1]
        tprev = np.empty_like(pts.t_ns)
        tprev[0] = self._last_ns if self._last_ns is not None else pts.t_ns[0]
        tprev[1:] = pts.t_ns[:-1]
        # a new sweep starts where the phase wraps (drops by more than half a turn) or after a long gap
        cuts = np.flatnonzero(((prev >= 0) & (prev - phase > 18000)) | (pts.t_ns - tprev > MAX_GAP_NS))
        start = 0
        for c in cuts:
            if c > start:
                self._pending.append(pts.take(slice(start, int(c))))
            sweep = self._emit()
            if sweep is not None:
                out.append(sweep)
            start = int(c)
        self._pending.append(pts.take(slice(start, None)))
        self._last_phase = int(phase[-1])
        self._last_ns = int(pts.t_ns[-1])
        return out

    def _emit(self) -> PointCloud | None:
        if not self._pending:
            return None
        pts = DecodedPoints.concat(self._pending)
        self._pending = []
        if len(pts) == 0:
            return None
        stamp = int(pts.t_ns.min())
        self.sweeps_out += 1
        return pointcloud_from_arrays(
            stamp, self.frame_id, x=pts.x, y=pts.y, z=pts.z, intensity=pts.intensity.astype(np.float32),
            ring=pts.ring, time=((pts.t_ns - stamp) * 1e-9).astype(np.float32), return_type=pts.return_type)


def _sensor_time(packets: np.ndarray, host_ns: np.ndarray) -> np.ndarray:
    """Absolute sensor time of each packet: its top-of-hour µs plus the host's hour (nearest match)."""
    us = packets[:, 1200:1204].copy().view("<u4")[:, 0].astype(np.int64)
    t = (host_ns // _HOUR_NS) * _HOUR_NS + us * 1000
    t = np.where(t - host_ns > _HOUR_NS // 2, t - _HOUR_NS, t)
    return np.where(host_ns - t > _HOUR_NS // 2, t + _HOUR_NS, t)
