"""Hesai PandarXT32 point-cloud packets (UDP protocol 6.1): validation, decoding and sweep assembly.

Packet layout (1080 bytes, little-endian):

======  =====  ==============================================================================
offset  bytes  content
======  =====  ==============================================================================
0       12     header: start of packet ``EE FF``, protocol major/minor, 2 reserved, laser count (32),
               block count (8), reserved, distance unit [mm], return count, flags
12      1040   8 blocks of 130 bytes: azimuth (uint16, 0.01 deg) + 32 units (distance uint16 in
               distance units, reflectivity uint8, reserved uint8)
1052    24     tail: 10 reserved, return mode, motor speed (uint16 rpm), date and time (6 bytes:
               year − 1900, month, day, hour, minute, second; UTC), microseconds (uint32), factory byte
1076    4      UDP sequence number
======  =====  ==============================================================================

In dual-return modes consecutive block pairs (0-1, 2-3 …) are the two returns of one firing and share its
azimuth.  Packet time = date/time + microseconds (the end of the packet's firings); the firing time of
block ``b`` channel ``c`` relative to it is ``5632 − 50000·⌊(7 − b) / n_returns⌋ + 368 + 1512·c`` ns
(the XT32 firing sequence: one firing every 50 µs, channels 1.512 µs apart; as Autoware's nebula uses).

Geometry: each channel has an elevation and an azimuth offset (the calibration, ``PandarXT32.csv``); a
point at distance ``d`` with spatial azimuth ``a = block azimuth + offset`` and elevation ``e`` is
``x = d·cos e·sin a``, ``y = d·cos e·cos a``, ``z = d·sin e`` (Hesai's frame: y forward at azimuth 0,
azimuth clockwise seen from above).

Points kept: distance within [min_range, max_range] (and not 0); of two identical returns (same distance
and reflectivity) only the second; a first return closer than ``dual_return_distance_threshold`` to the
other return of its firing is dropped.  Return types follow nebula's ``ReturnType`` numbering
(:class:`ReturnType`); the XT32 sends dual first/last returns last-first, so those labels are swapped.

Sweeps are cut per channel where the channel's spatial azimuth crosses ``cut_angle`` (the cut itself
belongs to the earlier sweep), with two sweep buffers as in nebula's scan cutter for a 360° field of
view, so points come out in nebula's order: firing by firing, in each firing channel by channel, in each
channel return by return.  A sweep is stamped with the time of the earliest firing of the block group in
which its first channel crossed the cut; each point's ``time`` is its firing time relative to that stamp
[ns, uint32].
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse._jit import njit
from edgefuse.errors import ConfigError
from edgefuse_drivers.packet_bag import PacketCounters, PacketError

__all__ = ["BLOCK_SIZE", "N_BLOCKS", "N_CHANNELS", "PACKET_SIZE", "POINT_DTYPE", "RETURN_MODES", "ReturnType",
           "Xt32Calibration", "Xt32Decoder", "Xt32Sweep", "check_packets", "packet_stamps_ns"]

PACKET_SIZE = 1080
N_BLOCKS = 8
N_CHANNELS = 32
BLOCK_SIZE = 2 + 4 * N_CHANNELS
HEADER_SIZE = 12
TAIL_OFFSET = HEADER_SIZE + N_BLOCKS * BLOCK_SIZE  # 1052
_RETURN_MODE_AT = TAIL_OFFSET + 10
_DATE_AT = TAIL_OFFSET + 13
_USEC_AT = TAIL_OFFSET + 19
#: return mode byte → number of returns per firing (the modes an XT32 sends)
RETURN_MODES: dict[int, int] = {0x33: 1, 0x34: 1, 0x37: 1, 0x38: 1, 0x39: 2, 0x3A: 2, 0x3B: 2, 0x3C: 2, 0x3E: 2}
_CALIBRATION = Path(__file__).with_name("PandarXT32.csv")

#: one decoded point
POINT_DTYPE = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32),
                        ("ring", np.uint16), ("return_type", np.uint8), ("time", np.uint32)])


class ReturnType(IntEnum):
    """Return labels (values as nebula's ``ReturnType``)."""

    UNKNOWN = 0
    LAST = 1
    FIRST = 2
    STRONGEST = 3
    FIRST_WEAK = 4
    LAST_WEAK = 5
    IDENTICAL = 6
    SECOND = 7
    SECONDSTRONGEST = 8
    FIRST_STRONGEST = 9
    LAST_STRONGEST = 10


@dataclass(frozen=True)
class Xt32Calibration:
    """Per-channel elevation and azimuth offset [deg] (channel 0 = laser 1, the top one)."""

    elevation_deg: npt.NDArray[np.float64]
    azimuth_offset_deg: npt.NDArray[np.float64]

    @classmethod
    def load(cls, path: str | Path | None = None) -> Xt32Calibration:
        """Read a Hesai angle calibration CSV (``Channel,Elevation,Azimuth``, one row per laser); default:
        the bundled PandarXT32 calibration.

        Raises:
            ConfigError: the file does not have 32 numeric rows.
        """
        p = _CALIBRATION if path is None else Path(path)
        try:
            with p.open(newline="") as f:
                rows = [r for r in csv.reader(f) if r and r[0].strip()]
            body = rows[1:] if rows and not _is_number(rows[0][0]) else rows
            table = np.array([[float(r[0]), float(r[1]), float(r[2])] for r in body], dtype=np.float64)
        except (OSError, ValueError, IndexError) as err:
            raise ConfigError(f"cannot read the Hesai calibration {p}: {err}") from err
        if table.shape != (N_CHANNELS, 3) or not np.isfinite(table).all():
            raise ConfigError(f"Hesai calibration {p}: expected {N_CHANNELS} rows 'channel,elevation,azimuth', "
                              f"got {table.shape[0]}")
        order = np.argsort(table[:, 0], kind="stable")
        return cls(table[order, 1].copy(), table[order, 2].copy())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _u16(a: npt.NDArray[np.uint8], at: int) -> npt.NDArray[np.int64]:
    return a[:, at].astype(np.int64) | (a[:, at + 1].astype(np.int64) << 8)


def _days_from_civil(y: npt.NDArray[np.int64], m: npt.NDArray[np.int64],
                     d: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of a proleptic Gregorian date (vectorized)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468, dtype=np.int64)


def packet_stamps_ns(packets: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Packet times [ns since the epoch, UTC] of an (N, 1080) array of packets (tail date/time + µs)."""
    d = packets[:, _DATE_AT:_DATE_AT + 6].astype(np.int64)
    days = _days_from_civil(d[:, 0] + 1900, d[:, 1], d[:, 2])
    secs = days * 86400 + d[:, 3] * 3600 + d[:, 4] * 60 + d[:, 5]
    usec = _u16(packets, _USEC_AT) | (_u16(packets, _USEC_AT + 2) << 16)
    return secs * 1_000_000_000 + usec * 1000


def check_packets(packets: npt.NDArray[np.uint8]) -> npt.NDArray[np.int8]:
    """Per packet of an (N, 1080) array: 0 if it is a valid XT32 point-cloud packet, else the index (1…)
    of the first failed check in :data:`_CHECKS`."""
    a = packets
    mode = a[:, _RETURN_MODE_AT]
    n_ret = np.zeros(len(a), dtype=np.int64)
    for m, n in RETURN_MODES.items():
        n_ret[mode == m] = n
    az = np.stack([_u16(a, HEADER_SIZE + b * BLOCK_SIZE) for b in range(N_BLOCKS)], axis=1)
    pair_ok = (az[:, 0::2] == az[:, 1::2]).all(axis=1) | (n_ret != 2)
    d = a[:, _DATE_AT:_DATE_AT + 6].astype(np.int64)
    usec = _u16(a, _USEC_AT) | (_u16(a, _USEC_AT + 2) << 16)
    checks = [
        (a[:, 0] == 0xEE) & (a[:, 1] == 0xFF),
        (a[:, 6] == N_CHANNELS) & (a[:, 7] == N_BLOCKS),
        a[:, 9] != 0,
        n_ret != 0,
        (az < 36000).all(axis=1) & pair_ok,
        ((d[:, 1] >= 1) & (d[:, 1] <= 12) & (d[:, 2] >= 1) & (d[:, 2] <= 31) & (d[:, 3] < 24) & (d[:, 4] < 60)
         & (d[:, 5] < 61) & (usec < 1_000_000)),
    ]
    out = np.zeros(len(a), dtype=np.int8)
    for i in range(len(checks) - 1, -1, -1):
        out[~checks[i]] = i + 1
    return out


#: (reason, message) of each check of :func:`check_packets`, in order
_CHECKS = [
    ("start", "start of packet is not EE FF"),
    ("layout", f"laser/block count is not {N_CHANNELS}/{N_BLOCKS}"),
    ("dis_unit", "distance unit is 0"),
    ("return_mode", f"unknown return mode (known: {', '.join(hex(m) for m in RETURN_MODES)})"),
    ("azimuth", "a block azimuth is >= 360 deg, or the two returns of a firing differ in azimuth"),
    ("time", "the tail date/time is out of range"),
]


# --- kernels ------------------------------------------------------------------------------------------------

_TWO_PI_F = np.float32(2 * math.pi)
_Angle = float | np.floating[Any]


@njit(inline="always")
def _normalize(angle: float, modulus: float) -> np.float32:
    a = float(angle)
    return np.float32(a - math.floor(a / modulus) * modulus)


@njit(inline="always")
def _between(start: _Angle, end: _Angle, angle: _Angle, start_incl: bool, end_incl: bool) -> bool:
    if start == end and start == angle:
        return start_incl or end_incl
    if start == end:
        return True
    if not start_incl and angle == start:
        return False
    if not end_incl and angle == end:
        return False
    if end < start:
        return bool(angle <= end or start <= angle)
    return bool(start <= angle <= end)


@njit(inline="always")
def _offset_ns(block: int, channel: int, n_ret: int) -> int:
    return 5632 - 50000 * ((N_BLOCKS - block - 1) // n_ret) + 368 + 1512 * channel


@njit(inline="always")
def _return_label(mode: int, r: int, strongest: bool) -> int:
    """nebula's return label of return ``r`` of a firing in return ``mode`` (not identical returns)."""
    if mode == 0x33:
        return 2
    if mode == 0x34:
        return 7
    if mode == 0x37:
        return 3
    if mode == 0x38:
        return 1
    if mode == 0x39:
        return (10 if r == 0 else 3) if strongest else (1 if r == 0 else 8)
    if mode == 0x3A:
        return 2 if r == 0 else 7
    if mode == 0x3B:  # the XT32 sends last then first
        return 1 if r == 0 else 2
    if mode == 0x3C:
        return (9 if r == 0 else 3) if strongest else (2 if r == 0 else 8)
    return 3 if r == 0 else 8


@njit(inline="always")
def _fsm(before: int, after: int, cur: int) -> tuple[int, int]:
    """Sweep-buffer transitions for a cut inside a 360 deg field of view: ``(buffer whose stamp is reset,
    buffer emitted)``, -1 for none.  States: 0/1 all channels in that buffer, 2 crossing 0->1, 3 crossing
    1->0 (``before``/``after``: 0, 1 or 2 = split; ``cur`` the buffer emitted next)."""
    s0 = before if before != 2 else 2 + cur
    s1 = after if after != 2 else 2 + cur
    if s0 == s1:
        return -1, -1
    if s0 == 0:
        return (1, -1) if s1 == 2 else ((1, 0) if s1 == 1 else (-1, -1))
    if s0 == 2:
        return (-1, 0) if s1 == 1 else (-1, -1)
    if s0 == 1:
        return (0, -1) if s1 == 3 else ((0, 1) if s1 == 0 else (-1, -1))
    return (-1, 1) if s1 == 0 else (-1, -1)


@njit()
def _decode(  # noqa: PLR0912, PLR0915, PLR0917
        pk: npt.NDArray[np.uint8], ok: npt.NDArray[np.bool_], stamps: npt.NDArray[np.int64],
            block_rad: npt.NDArray[np.float32], off_rad: npt.NDArray[np.float32], sin_el: npt.NDArray[np.float32],
            cos_el: npt.NDArray[np.float32], min_ch: int, max_ch: int, cut: np.float32, min_range: float,
            max_range: float, dual_threshold: float, st: npt.NDArray[np.int64], chan_buf: npt.NDArray[np.int64],
            last_az: npt.NDArray[np.float32], out: npt.NDArray[np.void], serial: npt.NDArray[np.int64],
            ev: npt.NDArray[np.int64]) -> tuple[int, int]:
    """Decode the valid packets of ``pk`` (N, 1080) into ``out`` (one sweep serial per point) and record
    the completed sweeps in ``ev`` (serial, packet index, stamp).  ``st``: [initialized, current buffer,
    buffer state before (0/1 all in that buffer, 2 split), serial of buffer 0, of buffer 1, next serial,
    stamp of buffer 0, of buffer 1]."""
    two_pi = float(_TWO_PI_F)
    half = _normalize(float(cut) + float(np.float32(_TWO_PI_F / np.float32(2))), two_pi)
    q = float(np.float32(_TWO_PI_F / np.float32(4)))
    region_lo = _normalize(float(cut) - q, two_pi)
    region_hi = _normalize(float(cut) + q, two_pi)
    corr = np.empty(N_CHANNELS, dtype=np.float32)
    raw = np.empty(3, dtype=np.int64)
    refl = np.empty(3, dtype=np.int64)
    dist = np.empty(3, dtype=np.float32)
    n = 0
    n_ev = 0
    for p in range(pk.shape[0]):
        if not ok[p]:
            continue
        mode = pk[p, _RETURN_MODE_AT]
        n_ret = 1 if mode < 0x39 else 2
        unit = pk[p, 9] / 1000.0
        t_pkt = stamps[p]
        for b0 in range(0, N_BLOCKS, n_ret):
            base = HEADER_SIZE + b0 * BLOCK_SIZE
            az = int(pk[p, base]) | (int(pk[p, base + 1]) << 8)
            brad = block_rad[az]
            for c in range(N_CHANNELS):
                corr[c] = _normalize(brad + off_rad[c], two_pi)
            earliest = _offset_ns(b0, 0, n_ret)
            for bb in range(b0, b0 + n_ret):
                earliest = min(earliest, _offset_ns(bb, 0, n_ret))
            # --- sweep cutting (360 deg field of view, cut inside it) ---
            if st[0] == 0:
                st[0] = 1
                st[1] = 0
                for c in range(N_CHANNELS):
                    last_az[c] = corr[c]
                lo, hi = corr[min_ch], corr[max_ch]
                crosses = False
                if _between(region_lo, region_hi, lo, True, True) and _between(region_lo, region_hi, hi, True, True):
                    beyond = (int(_between(cut, half, lo, False, True))
                              + int(_between(cut, half, hi, False, True)))
                    crosses = beyond == 1
                any0 = False
                any1 = False
                for c in range(N_CHANNELS):
                    chan_buf[c] = 1 if crosses and _between(cut, half, corr[c], False, True) else 0
                    if chan_buf[c] == 0:
                        any0 = True
                    else:
                        any1 = True
                if any0:
                    st[6] = t_pkt + earliest
                if any1:
                    st[7] = t_pkt + earliest
                st[2] = 0 if not any1 else (1 if not any0 else 2)
            else:
                before = st[2]
                for c in range(N_CHANNELS):
                    if _between(last_az[c], corr[c], cut, True, False):
                        chan_buf[c] ^= 1
                    last_az[c] = corr[c]
                after = chan_buf[min_ch] if chan_buf[min_ch] == chan_buf[max_ch] else 2
                st[2] = after
                cur = st[1]
                reset, emit = _fsm(before, after, cur)
                if reset >= 0:
                    st[6 + reset] = t_pkt + earliest
                if emit >= 0:
                    ev[n_ev, 0] = st[3 + emit]
                    ev[n_ev, 1] = p
                    ev[n_ev, 2] = st[6 + emit]
                    n_ev += 1
                    st[3 + emit] = st[5]
                    st[5] += 1
                    st[1] ^= 1
            # --- points of this firing ---
            for c in range(N_CHANNELS):
                for r in range(n_ret):
                    at = base + r * BLOCK_SIZE + 2 + 4 * c
                    raw[r] = int(pk[p, at]) | (int(pk[p, at + 1]) << 8)
                    refl[r] = pk[p, at + 2]
                    dist[r] = np.float32(raw[r] * unit)
                buf = chan_buf[c]
                for r in range(n_ret):
                    d = dist[r]
                    if raw[r] == 0 or d < 0.05 or d > 120.0 or d < min_range or d > max_range:
                        continue
                    identical = False
                    strongest = True
                    for o in range(n_ret):
                        if o != r:
                            if raw[o] == raw[r] and refl[o] == refl[r]:
                                identical = True
                            if refl[r] < refl[o]:
                                strongest = False
                    last = r == n_ret - 1
                    if identical and not last:
                        continue
                    if not last:
                        close = False
                        for o in range(n_ret):
                            if o != r and abs(dist[o] - d) < dual_threshold:
                                close = True
                        if close:
                            continue
                    rt = 6 if identical else _return_label(mode, r, strongest)
                    a = np.float32(brad + off_rad[c])
                    xy = np.float32(d * cos_el[c])
                    out[n]["x"] = np.float32(xy * np.float32(math.sin(a)))
                    out[n]["y"] = np.float32(xy * np.float32(math.cos(a)))
                    out[n]["z"] = np.float32(d * sin_el[c])
                    out[n]["intensity"] = refl[r]
                    out[n]["ring"] = c
                    out[n]["return_type"] = rt
                    rel = t_pkt - st[6 + buf] + _offset_ns(b0 + r, c, n_ret)
                    out[n]["time"] = rel & 0xFFFFFFFF
                    serial[n] = st[3 + buf]
                    n += 1
    return n, n_ev


# --- the stateful decoder -----------------------------------------------------------------------------------


@dataclass
class Xt32Sweep:
    """One assembled sweep: ``stamp_ns`` (sensor clock, UTC ns) and its points (:data:`POINT_DTYPE`, time
    relative to ``stamp_ns``); ``packet`` the index (in :meth:`Xt32Decoder.add` order, from 0) of the
    packet whose first firing past the cut completed it; ``serial`` its number (from 0)."""

    stamp_ns: int
    points: npt.NDArray[np.void]
    packet: int
    serial: int


@dataclass
class _Pending:
    chunks: list[npt.NDArray[np.void]] = field(default_factory=list)


class Xt32Decoder:
    """Stateful XT32 decoder: :meth:`add` packets (as recorded, in order), get the sweeps they complete.

    Bad packets (wrong size, header, return mode, azimuth, date) are counted by reason in :attr:`counters`
    and skipped; the packets around them decode as usual.
    """

    def __init__(self, calibration: Xt32Calibration | str | Path | None = None, *, min_range: float = 0.05,
                 max_range: float = 120.0, cut_angle_deg: float = 0.0,
                 dual_return_distance_threshold: float = 0.1) -> None:
        cal = calibration if isinstance(calibration, Xt32Calibration) else Xt32Calibration.load(calibration)
        if not (0.0 <= min_range < max_range) or not math.isfinite(max_range):
            raise ConfigError(f"range must satisfy 0 <= min_range < max_range, got {min_range}..{max_range}")
        if not math.isfinite(cut_angle_deg) or not math.isfinite(dual_return_distance_threshold):
            raise ConfigError("cut_angle_deg and dual_return_distance_threshold must be finite")
        self.calibration = cal
        self.min_range = float(min_range)
        self.max_range = float(max_range)
        self.dual_return_distance_threshold = float(dual_return_distance_threshold)
        f32 = np.float32
        d2r = f32(math.pi / 180.0)
        self._off = (cal.azimuth_offset_deg.astype(f32) * d2r).astype(f32)
        el = (cal.elevation_deg.astype(f32) * d2r).astype(f32)
        self._sin_el = np.sin(el).astype(f32)
        self._cos_el = np.cos(el).astype(f32)
        self._block_rad = (np.arange(36000, dtype=np.float64) / 100.0 * (math.pi / 180.0)).astype(f32)
        self._min_ch = int(np.argmin(self._off))
        self._max_ch = int(np.argmax(self._off))
        self._cut = f32(math.radians(cut_angle_deg) % (2 * math.pi))
        self._cut = _normalize(float(self._cut), float(_TWO_PI_F))
        self._state = np.zeros(8, dtype=np.int64)
        self._state[3], self._state[4], self._state[5] = 0, 1, 2
        self._chan_buf = np.zeros(N_CHANNELS, dtype=np.int64)
        self._last_az = np.zeros(N_CHANNELS, dtype=np.float32)
        self._pending: dict[int, _Pending] = {}
        self._n_packets = 0
        self.counters = PacketCounters()

    def add(self, packets: Sequence[bytes], where: Sequence[str] | None = None) -> list[Xt32Sweep]:
        """Decode ``packets`` (UDP payloads in order); returns the sweeps completed by them.  ``where``:
        a label per packet for the rejection messages (default: the packet's index)."""
        first = self._n_packets
        self._n_packets += len(packets)
        self.counters.packets += len(packets)
        sized = [i for i, d in enumerate(packets) if len(d) == PACKET_SIZE]
        for i, d in enumerate(packets):
            if len(d) != PACKET_SIZE:
                label = where[i] if where is not None else f"packet {first + i}"
                self.counters.reject(PacketError("size", f"{len(d)} bytes, an XT32 packet has {PACKET_SIZE}"),
                                     label)
        arr = np.zeros((len(packets), PACKET_SIZE), dtype=np.uint8)
        for i in sized:
            arr[i] = np.frombuffer(packets[i], dtype=np.uint8)
        failed = check_packets(arr)
        ok = np.zeros(len(packets), dtype=bool)
        for i in sized:
            code = int(failed[i])
            if code:
                reason, msg = _CHECKS[code - 1]
                label = where[i] if where is not None else f"packet {first + i}"
                self.counters.reject(PacketError(reason, msg), label)
            else:
                ok[i] = True
        self.counters.decoded += int(ok.sum())
        if not ok.any():
            return []
        stamps = np.zeros(len(packets), dtype=np.int64)
        stamps[ok] = packet_stamps_ns(arr[ok])
        cap = int(ok.sum()) * N_BLOCKS * N_CHANNELS
        out = np.zeros(cap, dtype=POINT_DTYPE)
        serial = np.zeros(cap, dtype=np.int64)
        ev = np.zeros((int(ok.sum()) * N_BLOCKS + 1, 3), dtype=np.int64)
        n, n_ev = _decode(arr, ok, stamps, self._block_rad, self._off, self._sin_el, self._cos_el, self._min_ch,
                          self._max_ch, self._cut, self.min_range, self.max_range,
                          self.dual_return_distance_threshold, self._state, self._chan_buf, self._last_az, out,
                          serial, ev)
        out, serial = out[:n], serial[:n]
        for s in np.unique(serial):
            self._pending.setdefault(int(s), _Pending()).chunks.append(out[serial == s])
        sweeps = []
        for s, p, stamp in ev[:n_ev]:
            chunks = self._pending.pop(int(s), _Pending()).chunks
            pts = np.concatenate(chunks) if chunks else np.zeros(0, dtype=POINT_DTYPE)
            sweeps.append(Xt32Sweep(int(stamp), pts, first + int(p), int(s)))
        return sweeps

    def pending_points(self) -> int:
        """Points decoded into sweeps not completed yet."""
        return sum(len(c) for p in self._pending.values() for c in p.chunks)
