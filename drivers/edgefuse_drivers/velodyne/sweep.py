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
from typing import Any, Literal

import numpy as np

from edgefuse._jit import njit
from edgefuse.msgs.pointcloud import pointcloud_from_structured
from edgefuse.msgs.types import PointCloud
from edgefuse_drivers.velodyne.decode import PACKET_BYTES, Compat, DecodedPoints, Decoder, validate_packets
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
    #: reproduce another decoder's azimuth model (see :mod:`edgefuse_drivers.velodyne.decode`)
    compat: Compat | None = None
    #: packets decoded per kernel call
    batch: int = 64
    packets_in: int = 0
    packets_ok: int = 0
    sweeps_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    clock: ClockStats = field(default_factory=ClockStats)

    def __post_init__(self) -> None:
        self.decoder = Decoder(self.model, min_range=self.min_range, max_range=self.max_range,
                               vertical_offsets=self.vertical_offsets, compat=self.compat)
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
        cuts = np.empty(len(pts), np.int64)
        ncuts, last_phase = _find_cuts(pts.block_azimuth, pts.t_ns, self._cut, self._last_phase,
                                       self._last_ns if self._last_ns is not None else int(pts.t_ns[0]),
                                       MAX_GAP_NS, cuts)
        cuts = cuts[:ncuts]
        start = 0
        for c in cuts:
            if c > start:
                self._pending.append(pts.take(slice(start, int(c))))
            sweep = self._emit()
            if sweep is not None:
                out.append(sweep)
            start = int(c)
        self._pending.append(pts.take(slice(start, None)))
        self._last_phase = int(last_phase)
        self._last_ns = int(pts.t_ns[-1])
        return out

    def _emit(self) -> PointCloud | None:
        parts, self._pending = [p for p in self._pending if len(p)], []
        if not parts:
            return None
        stamp = min(int(p.t_ns.min()) for p in parts)
        self.sweeps_out += 1
        # the sweep's fields written straight from the decoded parts (no concatenation first)
        points = np.empty(sum(len(p) for p in parts), _SWEEP_DTYPE)
        start = 0
        for p in parts:
            _fill_sweep(points, start, p.x, p.y, p.z, p.intensity, p.ring, p.t_ns, stamp, p.return_type)
            start += len(p)
        # x, y, z are products of finite table values and distances: always finite
        return pointcloud_from_structured(stamp, self.frame_id, points, is_dense=True)


_SWEEP_DTYPE = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32),
                         ("ring", np.uint16), ("time", np.float32), ("return_type", np.uint8)])


@njit()
def _fill_sweep(  # noqa: PLR0917
    points: Any, start: Any, x: Any, y: Any, z: Any, inten: Any, ring: Any, t_ns: Any, stamp: Any, rtype: Any,
) -> Any:
    """Rows ``start..`` of the sweep's structured array (``time`` = seconds since ``stamp``, as float32)."""
    for i in range(x.shape[0]):
        row = points[start + i]
        row.x = x[i]
        row.y = y[i]
        row.z = z[i]
        row.intensity = np.float32(inten[i])
        row.ring = ring[i]
        row.time = np.float32(np.float64(t_ns[i] - stamp) * 1e-9)
        row.return_type = rtype[i]


@njit()
def _find_cuts(  # noqa: PLR0917
    baz: Any, t_ns: Any, cut: Any, last_phase: Any, last_ns: Any, max_gap: Any, cuts: Any,
) -> Any:
    """Indices where a new sweep starts: the phase (block azimuth past ``cut``) drops by more than half a
    turn, or the time jumps by more than ``max_gap``.  Returns ``(count, phase of the last point)``."""
    n = 0
    prev = last_phase
    tprev = last_ns
    for i in range(baz.shape[0]):
        phase = (np.int64(baz[i]) - cut) % 36000
        if (prev >= 0 and prev - phase > 18000) or t_ns[i] - tprev > max_gap:
            cuts[n] = i
            n += 1
        prev = phase
        tprev = t_ns[i]
    return n, prev


def _sensor_time(packets: np.ndarray, host_ns: np.ndarray) -> np.ndarray:
    """Absolute sensor time of each packet: its top-of-hour µs plus the host's hour (nearest match)."""
    us = packets[:, 1200:1204].copy().view("<u4")[:, 0].astype(np.int64)
    t = (host_ns // _HOUR_NS) * _HOUR_NS + us * 1000
    t = np.where(t - host_ns > _HOUR_NS // 2, t - _HOUR_NS, t)
    return np.where(host_ns - t > _HOUR_NS // 2, t + _HOUR_NS, t)
