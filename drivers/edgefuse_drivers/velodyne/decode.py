"""Velodyne data packets (1206-byte UDP payloads) → points, with a Numba kernel.

Packet layout (all models here): 12 data blocks of 100 bytes — flag ``0xFFEE`` (bytes ``FF EE``), azimuth
(uint16 LE, 0.01°), 32 × (distance uint16 LE in the model's unit, reflectivity uint8) — then the
timestamp (uint32 LE, µs since the top of the hour, time of the first firing of the first block), the
return-mode byte and the product-id byte.

Per point: x, y, z in the sensor frame (ROS convention: x forward, y left, z up; the raw azimuth is
clockwise from the sensor's y axis, so ``x = r cosω cosα``, ``y = -r cosω sinα``, ``z = r sinω + offset``),
the laser's azimuth interpolated between blocks by its firing time (the last block of a packet uses
the previous blocks' rate), its firing time from the manual's timing, ring (0 = lowest laser), raw
reflectivity and return type (:data:`RETURN_TYPES`).

Bad input is counted, never fatal: packets of the wrong size, with an unknown return-mode or foreign
product-id byte, or a timestamp beyond one hour are rejected whole (:func:`validate_packets`); a block
without the ``0xFFEE`` flag or with an azimuth ≥ 360° is skipped (the other blocks of the packet are
kept) and counted.

``compat="nebula"`` reproduces the azimuth handling of Autoware's nebula driver (azimuths rounded to
0.01°, its block-azimuth walk and last-block rules, VLP-32 interpolation per data slot), so that its
reference decodes can be matched to the millimetre; the default follows the manuals.

``compat="velodyne_decoder"`` reproduces the ``velodyne-decoder`` package (3.x, used as a test oracle):

- one rotation rate per packet — the azimuth change from block 0 to block 11 (wrapped to 0..360°) over the
  firing-time difference of those blocks' first firings (dual return: of columns 0 and 5) — instead of the
  block-to-block steps;
- each firing's azimuth = block azimuth + rate × (firing time − the block's first firing time), rounded to
  0.01° (halves away from zero) *before* the per-laser azimuth offset is applied; all of it in float32, as
  that decoder computes it (a rounding tie decided differently moves a far point by 0.01°);
- distances in float32 and kept when ``min_range <= r <= max_range`` (inclusive bounds);
- its per-laser vertical offsets (``vertical_offsets=True``): HDL-32E from Velodyne's envelope drawing
  86-0106, VLP-16 and VLP-32C as focal distance (41.91 mm / 42.4 mm) × tan(−vertical angle);
- dual return: one point per firing slot when the two returns have the same distance (with the
  strongest block's reflectivity), else the last return then the strongest, slot by slot (the default
  order is block by block: all the last returns of a block pair, then its strongest);
- a block without the ``0xFFEE`` flag ends the packet (its later blocks are dropped and counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edgefuse._jit import njit
from edgefuse.errors import DriverError
from edgefuse_drivers.velodyne.models import RETURN_DUAL, RETURN_LAST, RETURN_STRONGEST, VelodyneModel

__all__ = [
    "PACKET_BYTES",
    "RETURN_TYPES",
    "Compat",
    "DecodedPoints",
    "Decoder",
    "validate_packets",
]

PACKET_BYTES = 1206
#: return_type field values
RETURN_TYPES = {1: "strongest", 2: "last", 3: "dual: last", 4: "dual: strongest (or second strongest)"}
_BAD_FLAG, _BAD_AZIMUTH = 0, 1
# cos/sin of every 0.01° (two more entries, so that linear interpolation needs no wrap test): exact for
# nebula's integer azimuths; between grid points the interpolation error is < 4e-9 (< 1 µm at 200 m)
_AZ_GRID = np.arange(36002, dtype=np.float64) * (np.pi / 18000.0)
_COS_AZ = np.cos(_AZ_GRID)
_SIN_AZ = np.sin(_AZ_GRID)
Compat = Literal["nebula", "velodyne_decoder"]
#: velodyne-decoder's HDL-32E vertical offsets [mm] (Velodyne drawing 86-0106), by laser id
_VD_HDL32E_VOFF_MM = (
    17.17, 4.76, 16.27, 4.07, 15.4, 3.38, 14.54, 2.7, 13.71, 2.02, 12.89, 1.35, 12.09, 0.67, 11.31, 0.0,
    10.54, -0.67, 9.78, -1.35, 9.04, -2.02, 8.3, -2.7, 7.58, -3.38, 6.86, -4.07, 6.15, -4.76, 5.45, -5.45,
)
#: distance from the sensor centre to the beams' focal point [m] (velodyne-decoder's VLP offsets)
_VD_FOCAL_M = {"VLP16": 41.91e-3, "VLP32C": 42.4e-3}


def _velodyne_decoder_offsets(model: VelodyneModel) -> npt.NDArray[np.float64]:
    if model.name == "HDL32E":
        return np.asarray(_VD_HDL32E_VOFF_MM, np.float64) / 1000.0
    vert = np.radians(np.asarray(model.vertical_deg, np.float64)).astype(np.float32)
    return np.asarray(np.float32(_VD_FOCAL_M[model.name]) * np.tan(-vert), np.float64)


def _velodyne_decoder_timing(model: VelodyneModel) -> npt.NDArray[np.float32]:
    """Firing time of each (block, slot) after the packet's first firing [s], in float32 as velodyne-decoder
    tabulates it (block index counts firing sequences)."""
    blk, slot = np.meshgrid(np.arange(12), np.arange(32), indexing="ij")
    per_seq = 32 // model.sequences_per_block
    seq = blk * model.sequences_per_block + slot // per_seq
    firing = (slot % per_seq) // model.fired_together
    return np.asarray(model.sequence_us * 1e-6 * seq + model.firing_us * 1e-6 * firing, np.float64).astype(np.float32)


@dataclass
class DecodedPoints:
    """Points of a batch of packets as parallel arrays, in packet, block, firing-slot order."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32]
    z: npt.NDArray[np.float32]
    intensity: npt.NDArray[np.uint8]
    ring: npt.NDArray[np.uint16]
    #: absolute firing time [ns] (packet time + firing offset)
    t_ns: npt.NDArray[np.int64]
    azimuth: npt.NDArray[np.float32]  # corrected, [deg] 0..360
    block_azimuth: npt.NDArray[np.uint16]  # the block's raw azimuth [0.01°] (sweep cutting)
    distance: npt.NDArray[np.float32]
    return_type: npt.NDArray[np.uint8]
    packet: npt.NDArray[np.int32]  # index of the packet in the batch
    block: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, sel: npt.NDArray[np.int64] | slice) -> DecodedPoints:
        return DecodedPoints(**{k: v[sel] for k, v in vars(self).items()})

    @staticmethod
    def concat(parts: list[DecodedPoints]) -> DecodedPoints:
        return DecodedPoints(**{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])})

    @staticmethod
    def empty() -> DecodedPoints:
        return _empty_points()


def _empty_points() -> DecodedPoints:
    return DecodedPoints(np.empty(0, np.float32), np.empty(0, np.float32), np.empty(0, np.float32),
                         np.empty(0, np.uint8), np.empty(0, np.uint16), np.empty(0, np.int64),
                         np.empty(0, np.float32), np.empty(0, np.uint16), np.empty(0, np.float32),
                         np.empty(0, np.uint8), np.empty(0, np.int32), np.empty(0, np.uint8))


@dataclass
class PacketCheck:
    """Which packets of a batch are decodable, and why the others are not."""

    ok: npt.NDArray[np.bool_]
    rejected: dict[str, int] = field(default_factory=dict)


def validate_packets(packets: npt.NDArray[np.uint8], model: VelodyneModel) -> PacketCheck:
    """Reject whole packets whose trailer bytes do not fit ``model`` ((N, 1206) uint8 array)."""
    mode = packets[:, 1204]
    product = packets[:, 1205]
    stamp = packets[:, 1200:1204].copy().view("<u4")[:, 0]
    known_mode = (mode == RETURN_STRONGEST) | (mode == RETURN_LAST) | (mode == RETURN_DUAL)
    if model.name == "HDL32E":
        known_mode |= mode == 0
    right_product = np.zeros(len(product), bool)
    for pid in model.product_ids:
        right_product |= product == pid
    in_hour = stamp < 3_600_000_000
    rejected: dict[str, int] = {}
    for ok, reason in ((right_product, f"product id not {model.name}"), (known_mode, "unknown return mode"),
                       (in_hour, "timestamp beyond one hour")):
        bad = int(np.count_nonzero(~ok))
        if bad:
            rejected[reason] = bad
    return PacketCheck(right_product & known_mode & in_hour, rejected)


class Decoder:
    """Decode batches of Velodyne data packets of one ``model``.

    ``min_range``/``max_range`` [m] drop returns outside (exclusive bounds; a zero distance is "no
    return" and always dropped); ``vertical_offsets=False`` ignores the per-laser vertical offsets (as the
    ROS velodyne driver, velodyne-decoder and nebula do for the VLP-16).
    """

    def __init__(self, model: VelodyneModel, *, min_range: float = 0.3, max_range: float = 300.0,
                 vertical_offsets: bool = True, compat: Compat | None = None) -> None:
        if compat not in (None, "nebula", "velodyne_decoder"):
            raise DriverError(f"unknown Velodyne compat mode {compat!r} (known: nebula, velodyne_decoder)")
        self.model = model
        self.min_range = float(min_range)
        self.max_range = float(max_range)
        self.compat = compat
        self.block_problems = np.zeros(2, np.int64)
        vert = np.radians(np.asarray(model.vertical_deg, np.float64))
        self._cos_vert = np.cos(vert)
        self._sin_vert = np.sin(vert)
        self._az_off_cdeg = np.asarray(model.azimuth_offset_deg, np.float64) * 100.0
        voff = _velodyne_decoder_offsets(model) if compat == "velodyne_decoder" else model.vertical_offset_m
        self._voff = np.asarray(voff, np.float64) * (1.0 if vertical_offsets else 0.0)
        self._vd_timing = _velodyne_decoder_timing(model)
        self._ring = model.ring()
        self._slot_laser = model.slot_laser()
        slot_us = model.slot_time_us()
        self._slot_ns = slot_us * 1000.0
        # fraction of the block-to-block azimuth step at each slot's firing time
        frac: npt.NDArray[np.float64] = slot_us / model.block_us
        if compat == "nebula" and model.sequences_per_block == 1:
            frac = np.arange(32, dtype=np.float64) * (model.firing_us / model.sequence_us)  # nebula: per slot
        self._slot_frac = frac

    @property
    def block_problem_counts(self) -> dict[str, int]:
        out = {}
        if self.block_problems[_BAD_FLAG]:
            out["block without 0xFFEE flag"] = int(self.block_problems[_BAD_FLAG])
        if self.block_problems[_BAD_AZIMUTH]:
            out["block azimuth >= 360°"] = int(self.block_problems[_BAD_AZIMUTH])
        return out

    def decode(self, packets: npt.NDArray[np.uint8], packet_ns: npt.NDArray[np.int64]) -> DecodedPoints:
        """Points of ``packets`` ((N, 1206) uint8, already validated) whose first firings are at
        ``packet_ns`` (N,) [ns]."""
        n = packets.shape[0]
        if n == 0:
            return _empty_points()
        cap = n * 12 * 32
        x = np.empty(cap, np.float32)
        y = np.empty(cap, np.float32)
        z = np.empty(cap, np.float32)
        inten = np.empty(cap, np.uint8)
        ring = np.empty(cap, np.uint16)
        t_ns = np.empty(cap, np.int64)
        az = np.empty(cap, np.float32)
        baz = np.empty(cap, np.uint16)
        dist = np.empty(cap, np.float32)
        rtype = np.empty(cap, np.uint8)
        pkt = np.empty(cap, np.int32)
        blk = np.empty(cap, np.uint8)
        if self.compat == "velodyne_decoder":
            count: int = _decode_kernel_vd(  # type: ignore[no-untyped-call]
                np.ascontiguousarray(packets), np.ascontiguousarray(packet_ns, np.int64),
                np.float32(self.model.distance_unit_m), np.float32(self.min_range), np.float32(self.max_range),
                self._cos_vert, self._sin_vert, self._az_off_cdeg, self._voff, self._ring, self._slot_laser,
                self._slot_ns, self.model.block_us * 1000.0, self._vd_timing, _COS_AZ, _SIN_AZ,
                x, y, z, inten, ring, t_ns, az, baz, dist, rtype, pkt, blk, self.block_problems)
            return DecodedPoints(x[:count], y[:count], z[:count], inten[:count], ring[:count], t_ns[:count],
                                 az[:count], baz[:count], dist[:count], rtype[:count], pkt[:count], blk[:count])
        count = _decode_kernel(  # type: ignore[no-untyped-call]
            np.ascontiguousarray(packets), np.ascontiguousarray(packet_ns, np.int64), self.model.distance_unit_m,
            self.min_range, self.max_range, self._cos_vert, self._sin_vert, self._az_off_cdeg, self._voff,
            self._ring, self._slot_laser, self._slot_ns, self._slot_frac,
            self.model.block_us * 1000.0,
            self.compat == "nebula", self.model.sequences_per_block == 2, _COS_AZ, _SIN_AZ,
            x, y, z, inten, ring, t_ns, az, baz, dist, rtype, pkt, blk,
            self.block_problems)
        return DecodedPoints(x[:count], y[:count], z[:count], inten[:count], ring[:count], t_ns[:count],
                             az[:count], baz[:count], dist[:count], rtype[:count], pkt[:count], blk[:count])


@njit()
def _decode_kernel(  # type: ignore[no-untyped-def]  # noqa: PLR0912, PLR0915, PLR0917 (one flat loop)
    packets, packet_ns, unit, min_range, max_range, cos_vert, sin_vert, az_off_cdeg, voff, ring_of,
    slot_laser, slot_ns, slot_frac, block_ns, nebula, two_seq, cos_az, sin_az, x, y, z, inten, ring, t_ns, az, baz,
    dist, rtype, pkt, blk, problems,
):
    count = 0
    block_az = np.empty(12, np.int64)
    block_ok = np.empty(12, np.bool_)
    step = np.empty(12, np.float64)
    start = np.empty(12, np.float64)
    for p in range(packets.shape[0]):
        data = packets[p]
        mode = data[1204]
        dual = mode == 0x39
        for b in range(12):
            o = b * 100
            block_az[b] = data[o + 2] | (data[o + 3] << 8)
            block_ok[b] = True
            if data[o] != 0xFF or data[o + 1] != 0xEE:
                block_ok[b] = False
                problems[0] += 1
            elif block_az[b] >= 36000:
                block_ok[b] = False
                problems[1] += 1
        # azimuth of each block's first firing and its step to the next block (0.01° units)
        pair = 2 if dual else 1
        if nebula:
            nxt = 0
            last_diff = 0.0
            for b in range(12):
                a = block_az[0] if b == 0 else nxt
                if b < 12 - pair:
                    nxt = block_az[b + pair]
                    d = float((36000 + nxt - a) % 36000)
                    last_diff = d
                elif b == (11 - (1 if dual else 0) if two_seq else 11 - (4 if dual else 0)):
                    d = 0.0
                else:
                    d = last_diff
                start[b] = a
                step[b] = d
        else:
            ncol = 12 // pair
            for c in range(ncol):
                b0 = c * pair
                if c + 1 < ncol:
                    d = float((36000 + block_az[b0 + pair] - block_az[b0]) % 36000)
                elif ncol > 1:
                    d = step[b0 - pair]
                else:
                    d = 0.0
                if d > 1000.0:  # an implausible step (damaged azimuth, > 10° per block): no interpolation
                    d = 0.0
                for k in range(pair):
                    start[b0 + k] = block_az[b0]
                    step[b0 + k] = d
        for b in range(12):
            if not block_ok[b]:
                continue
            o = b * 100 + 4
            col = b // pair
            odd = dual and (b % 2 == 1)
            for s in range(32):
                q = o + s * 3
                raw = data[q] | (data[q + 1] << 8)
                if raw == 0:
                    continue
                other = 0
                if dual:
                    oq = q + 100 if b % 2 == 0 else q - 100
                    other = data[oq] | (data[oq + 1] << 8)
                    if odd and other == raw:
                        continue
                r = raw * unit
                if not (r > min_range and r < max_range):
                    continue
                laser = slot_laser[s]
                a = start[b] + step[b] * slot_frac[s] + az_off_cdeg[laser]
                if nebula:
                    if a < 0.0:
                        a += 36000.0
                    a = float(np.int64(np.floor(a + 0.5)) % 36000)  # C round(): halves away from 0
                elif a < 0.0 or a >= 36000.0:  # (the test spares the common case a division)
                    a = a % 36000.0
                ia = np.int64(a)  # 0 <= a < 36000: table lookup (+ interpolation off the 0.01° grid)
                fa = a - ia
                ca = cos_az[ia] + fa * (cos_az[ia + 1] - cos_az[ia])
                sa = sin_az[ia] + fa * (sin_az[ia + 1] - sin_az[ia])
                xy = r * cos_vert[laser]
                x[count] = xy * ca
                y[count] = -xy * sa
                z[count] = r * sin_vert[laser] + voff[laser]
                inten[count] = data[q + 2]
                ring[count] = ring_of[laser]
                t_ns[count] = packet_ns[p] + np.int64(col * block_ns + slot_ns[s])
                az[count] = a / 100.0
                baz[count] = block_az[b]
                dist[count] = r
                if mode == 0x38:
                    rtype[count] = 2
                elif not dual:
                    rtype[count] = 1
                else:
                    rtype[count] = 4 if odd else 3
                pkt[count] = p
                blk[count] = b
                count += 1
    return count


@njit()
def _f32(v: float) -> float:
    return np.float64(np.float32(v))


@njit()
def _decode_kernel_vd(  # type: ignore[no-untyped-def]  # noqa: PLR0915, PLR0917 (one flat loop)
    packets, packet_ns, unit, min_range, max_range, cos_vert, sin_vert, az_off_cdeg, voff, ring_of, slot_laser,
    slot_ns, block_ns, timing, cos_az, sin_az, x, y, z, inten, ring, t_ns, az, baz, dist, rtype, pkt, blk, problems,
):
    """velodyne-decoder's model (see the module documentation).  float32 arithmetic is reproduced by rounding
    each float64 result to float32: for +, -, ×, ÷ of float32 operands that equals the float32 operation."""
    count = 0
    unit64 = np.float64(unit)
    lo = np.float64(min_range)
    hi = np.float64(max_range)
    for p in range(packets.shape[0]):
        data = packets[p]
        mode = data[1204]
        dual = mode == 0x39
        az0 = np.int64(data[2] | (data[3] << 8))
        az11 = np.int64(data[11 * 100 + 2] | (data[11 * 100 + 3] << 8))
        diff = (az11 - az0 + 36000) % 36000
        last_col = 5 if dual else 11
        duration = _f32(np.float64(timing[last_col, 0]) - np.float64(timing[0, 0]))
        rate = _f32(np.float64(diff) / duration)
        pair = 2 if dual else 1
        for b in range(0, 12, pair):
            o = b * 100
            if data[o] != 0xFF or data[o + 1] != 0xEE:
                problems[0] += 12 - b  # velodyne-decoder drops the rest of the packet
                break
            block_az = np.int64(data[o + 2] | (data[o + 3] << 8))
            if block_az >= 36000:
                problems[1] += 1
                continue
            col = b // pair
            t0 = np.float64(timing[col, 0])
            for s in range(32):
                dt = _f32(np.float64(timing[col, s]) - t0)
                a32 = _f32(_f32(np.float64(block_az) + _f32(rate * dt)) + 36000.0)
                a_int = np.int64(np.floor(a32 + 0.5)) % 36000
                laser = slot_laser[s]
                q = o + 4 + s * 3
                n_out = 1
                first = q
                second = q
                rt0 = 2 if mode == 0x38 else 1
                rt1 = rt0
                if dual:
                    raw_last = data[q] | (data[q + 1] << 8)
                    raw_str = data[q + 100] | (data[q + 101] << 8)
                    if raw_last == 0 and raw_str == 0:
                        continue
                    if raw_last == raw_str:
                        first = q + 100
                        rt0 = 3
                    else:
                        n_out = 2
                        second = q + 100
                        rt0 = 3
                        rt1 = 4
                for k in range(n_out):
                    qq = first if k == 0 else second
                    raw = data[qq] | (data[qq + 1] << 8)
                    if raw == 0:
                        continue
                    r = _f32(np.float64(raw) * unit64)
                    if not (r >= lo and r <= hi):
                        continue
                    a = np.float64(a_int) + az_off_cdeg[laser]
                    if a < 0.0 or a >= 36000.0:
                        a = a % 36000.0
                    ia = np.int64(a)
                    fa = a - ia
                    ca = cos_az[ia] + fa * (cos_az[ia + 1] - cos_az[ia])
                    sa = sin_az[ia] + fa * (sin_az[ia + 1] - sin_az[ia])
                    xy = r * cos_vert[laser]
                    x[count] = xy * ca
                    y[count] = -xy * sa
                    z[count] = r * sin_vert[laser] + voff[laser]
                    inten[count] = data[qq + 2]
                    ring[count] = ring_of[laser]
                    t_ns[count] = packet_ns[p] + np.int64(col * block_ns + slot_ns[s])
                    az[count] = a / 100.0
                    baz[count] = block_az
                    dist[count] = r
                    rtype[count] = rt0 if k == 0 else rt1
                    pkt[count] = p
                    blk[count] = b if qq < o + 100 else b + 1
                    count += 1
    return count
