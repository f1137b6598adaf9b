"""Continental SRR520 corner radar: CAN-FD frames carried one per UDP datagram (4-byte big-endian CAN id,
then the CAN-FD payload), decoded frame by frame and assembled into detection and object lists.

Interface: Continental "SRR520 – CAN-FD interface specification" (the sensor's public message catalogue,
bit-packed signals with resolution/offset); layouts cross-checked by reading the open-source Autoware
nebula driver (``nebula_continental``).  Multi-byte signals are big-endian (Motorola order).

Frames (CAN id: payload bytes):

- 900 / 1100 (near-range / high-resolution-range scan header, 32): u32 internal time stamp [µs], u32
  global time [s], u32 [ns], u8 sync status (1 ok, 2 never, 3 lost), u8 signal status, u8 sequence
  counter, u32 cycle counter, u16 ambiguous velocity (×0.003051851 − 100 m/s), u16 max range (×0.1 m),
  u16 number of detections, 7 reserved;
- 901 / 1101 (detection elements, 64): ten 6-byte detections, 2 reserved, u8 message counter (0, 1, …),
  u8 sequence counter (= the header's); a list is 1 header + 50 (near) / 20 (HRR) element frames;
- 1200 (object header, 32): stamps/counters as above, u16 ego vx (×0.003051851 − 100 m/s), u16 ego yaw
  rate (×9.58766e-5 − 3.14159 rad/s), u8 motion type, u8 number of objects, 7 reserved;
- 1201 (object elements, 64): two 31-byte objects, u8 message counter, u8 sequence counter; 20 frames;
- 800 (CRC list, 4): u8 list id (0 near, 1 HRR, 2 objects), u16 CRC-16/CCITT-FALSE over the payloads
  (without CAN ids) of the list's header and element frames, in order; the list is published only when it
  matches;
- 700 (sensor status, 64): its own CRC-16 over payload bytes 0..60 at 61, sequence counter at 63;
- 53 (time sync follow-up), 600 (vehicle dynamics), 601 (sensor configuration): recognised, not decoded.

Detection signal packing (6 bytes, bit 0 = MSB of byte 0): range 12 bit (×0.024420024 m), azimuth 9 bit
(×0.006159986 − π/2 rad), range rate 11 bit (×0.014662757 − 15 m/s), RCS 7 bit (×0.476190476 − 40 dBm²),
five 1-bit detection-quality flags ``pdh00``..``pdh04`` (×100 %), SNR 4 bit (×1.7 + 11 dB).

Object signal packing (31 bytes): id u8, dist x/y u16 (×0.009155553 − 300 m), v abs x/y 14 bit
(×0.009156391 − 75 m/s), a abs x/y 10 bit (×0.019569472 − 10 m/s²), std of dist/v/a x/y 14 bit each
(×0.001831166), box length/width 12 bit (×0.007326007 m), orientation 12 bit (×0.001534729 − 3.14159 rad),
RCS 12 bit (×0.024425989 − 50 dBm²), score 4 bit (×6.666666667 %), life cycles u16, box valid 1 bit,
object status 2 bit.

Nebula difference: nebula's ``v_abs_x_std`` drops the signal's 2 least significant bits (its shift reads
``(byte15 & 0x03) >> 6``); this decoder takes them from the top of byte 16, so values differ from nebula's
by < 3 × 0.001831166 m/s.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgefuse_drivers.packet_bag import PacketError

__all__ = [
    "DETECTION_DTYPE",
    "OBJECT_DTYPE",
    "Srr520Assembler",
    "Srr520DetectionList",
    "Srr520Frame",
    "Srr520ObjectList",
    "crc16_ccitt_false",
    "decode_srr520_frame",
]

NEAR_HEADER, NEAR_ELEMENT = 900, 901
HRR_HEADER, HRR_ELEMENT = 1100, 1101
OBJECT_HEADER, OBJECT_ELEMENT = 1200, 1201
CRC_LIST, STATUS, SYNC_FOLLOW_UP, VEHICLE_DYNAMICS, SENSOR_CONFIG = 800, 700, 53, 600, 601
#: CAN id → payload size
FRAME_BYTES = {NEAR_HEADER: 32, NEAR_ELEMENT: 64, HRR_HEADER: 32, HRR_ELEMENT: 64, OBJECT_HEADER: 32,
               OBJECT_ELEMENT: 64, CRC_LIST: 4, STATUS: 64, SYNC_FOLLOW_UP: 8, VEHICLE_DYNAMICS: 8,
               SENSOR_CONFIG: 16}
ListKind = Literal["near", "hrr", "objects"]
#: list kind → (header id, element id, element frames per list, items per element frame, CRC list id)
LISTS: dict[ListKind, tuple[int, int, int, int, int]] = {
    "near": (NEAR_HEADER, NEAR_ELEMENT, 50, 10, 0),
    "hrr": (HRR_HEADER, HRR_ELEMENT, 20, 10, 1),
    "objects": (OBJECT_HEADER, OBJECT_ELEMENT, 20, 2, 2),
}
_KIND_OF_ID: dict[int, ListKind] = {}
for _kind, (_h, _e, *_rest) in LISTS.items():
    _KIND_OF_ID[_h] = _kind
    _KIND_OF_ID[_e] = _kind
_KIND_OF_CRC: dict[int, ListKind] = {v[4]: k for k, v in LISTS.items()}

#: one SRR520 detection (sensor frame, polar): range [m], azimuth [rad], range rate [m/s], rcs [dBm²],
#: quality flags ``pdh00``..``pdh05`` [%] (``pdh05`` is not transmitted: 0), snr [dB]
DETECTION_DTYPE = np.dtype([
    ("range", "f4"), ("azimuth_angle", "f4"), ("range_rate", "f4"), ("rcs", "f4"),
    ("pdh00", "u1"), ("pdh01", "u1"), ("pdh02", "u1"), ("pdh03", "u1"), ("pdh04", "u1"), ("pdh05", "u1"),
    ("snr", "f4"),
])
#: one SRR520 object (vehicle frame as configured): positions [m], velocities [m/s], accelerations [m/s²],
#: their standard deviations, box [m], orientation [rad], rcs [dBm²], score [%], life cycles, flags
OBJECT_DTYPE = np.dtype([
    ("object_id", "u1"), ("dist_x", "f4"), ("dist_y", "f4"), ("v_abs_x", "f4"), ("v_abs_y", "f4"),
    ("a_abs_x", "f4"), ("a_abs_y", "f4"), ("dist_x_std", "f4"), ("dist_y_std", "f4"), ("v_abs_x_std", "f4"),
    ("v_abs_y_std", "f4"), ("a_abs_x_std", "f4"), ("a_abs_y_std", "f4"), ("box_length", "f4"),
    ("box_width", "f4"), ("orientation", "f4"), ("rcs", "f4"), ("score", "f4"), ("life_cycles", "u2"),
    ("box_valid", "u1"), ("object_status", "u1"),
])


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final xor); pass the
    previous value as ``crc`` to continue over several blocks."""
    return binascii.crc_hqx(data, crc)


@dataclass(frozen=True, slots=True)
class Srr520Frame:
    """One decoded CAN-FD frame: ``can_id``, ``kind`` (``"header"``, ``"element"``, ``"crc"``, ``"status"``,
    ``"other"``), ``list_kind`` for list frames, and the fields that frame carries (``fields``), ``payload``
    the raw CAN payload (for list CRCs)."""

    can_id: int
    kind: Literal["header", "element", "crc", "status", "other"]
    list_kind: ListKind | None
    payload: bytes
    fields: dict[str, int | float]
    items: npt.NDArray[np.void] | None = None


@dataclass(frozen=True, slots=True)
class Srr520DetectionList:
    """A complete, CRC-checked near-range (``kind="near"``) or HRR detection list.  ``sensor_stamp_ns``:
    the sensor's global time (valid when ``sync_status`` is 1), ``internal_time_stamp_usec`` its free-running
    clock."""

    kind: ListKind
    sensor_stamp_ns: int
    sync_status: int
    internal_time_stamp_usec: int
    signal_status: int
    sequence_counter: int
    cycle_counter: int
    v_ambiguous: float
    max_range: float
    detections: npt.NDArray[np.void]
    crc: int


@dataclass(frozen=True, slots=True)
class Srr520ObjectList:
    """A complete, CRC-checked object list (see :class:`Srr520DetectionList` for the stamps)."""

    sensor_stamp_ns: int
    sync_status: int
    internal_time_stamp_usec: int
    signal_status: int
    sequence_counter: int
    cycle_counter: int
    ego_vx: float
    ego_yaw_rate: float
    motion_type: int
    objects: npt.NDArray[np.void]
    crc: int


_SCAN_HDR = struct.Struct(">IIIBBBIHHH")
_OBJ_HDR = struct.Struct(">IIIBBBIHHBB")


def _detections(frags: npt.NDArray[np.uint8]) -> npt.NDArray[np.void]:
    d = frags.astype(np.uint16)
    out = np.zeros(len(d), dtype=DETECTION_DTYPE)
    u_range = (d[:, 0] << 4) | (d[:, 1] >> 4)
    u_az = ((d[:, 1] & 0x0F) << 5) | (d[:, 2] >> 3)
    u_rr = ((d[:, 2] & 0x07) << 8) | d[:, 3]
    out["range"] = 0.024420024 * u_range
    out["azimuth_angle"] = 0.006159986 * u_az - 1.570796327
    out["range_rate"] = 0.014662757 * u_rr - 15.0
    out["rcs"] = 0.476190476 * (d[:, 4] >> 1) - 40.0
    out["pdh00"] = 100 * (d[:, 4] & 1)
    for i, name in enumerate(("pdh01", "pdh02", "pdh03", "pdh04")):
        out[name] = 100 * ((d[:, 5] >> (7 - i)) & 1)
    out["snr"] = 1.7 * (d[:, 5] & 0x0F) + 11.0
    return out


def _objects(frags: npt.NDArray[np.uint8]) -> npt.NDArray[np.void]:
    d = frags.astype(np.uint32)
    out = np.zeros(len(d), dtype=OBJECT_DTYPE)

    def hi14(a: int) -> npt.NDArray[np.integer[Any]]:  # 14 bits starting at the MSB of byte a
        return (d[:, a] << 6) | (d[:, a + 1] >> 2)

    def lo14(a: int) -> npt.NDArray[np.integer[Any]]:  # 14 bits starting at bit 2 of byte a
        return ((d[:, a] & 0x03) << 12) | (d[:, a + 1] << 4) | (d[:, a + 2] >> 4)

    out["object_id"] = d[:, 0]
    out["dist_x"] = 0.009155553 * ((d[:, 1] << 8) | d[:, 2]) - 300.0
    out["dist_y"] = 0.009155553 * ((d[:, 3] << 8) | d[:, 4]) - 300.0
    out["v_abs_x"] = 0.009156391 * hi14(5) - 75.0
    out["v_abs_y"] = 0.009156391 * lo14(6) - 75.0
    out["a_abs_x"] = 0.019569472 * (((d[:, 8] & 0x0F) << 6) | (d[:, 9] >> 2)) - 10.0
    out["a_abs_y"] = 0.019569472 * (((d[:, 9] & 0x03) << 8) | d[:, 10]) - 10.0
    out["dist_x_std"] = 0.001831166 * hi14(11)
    out["dist_y_std"] = 0.001831166 * lo14(12)
    out["v_abs_x_std"] = 0.001831166 * (((d[:, 14] & 0x0F) << 10) | (d[:, 15] << 2) | (d[:, 16] >> 6))
    out["v_abs_y_std"] = 0.001831166 * (((d[:, 16] & 0x3F) << 8) | d[:, 17])
    out["a_abs_x_std"] = 0.001831166 * hi14(18)
    out["a_abs_y_std"] = 0.001831166 * lo14(19)
    out["box_length"] = 0.007326007 * (((d[:, 21] & 0x0F) << 8) | d[:, 22])
    out["box_width"] = 0.007326007 * ((d[:, 23] << 4) | (d[:, 24] >> 4))
    out["orientation"] = 0.001534729 * (((d[:, 24] & 0x0F) << 8) | d[:, 25]) - 3.14159
    out["rcs"] = 0.024425989 * ((d[:, 26] << 4) | (d[:, 27] >> 4)) - 50.0
    out["score"] = 6.666666667 * (d[:, 27] & 0x0F)
    out["life_cycles"] = (d[:, 28] << 8) | d[:, 29]
    out["box_valid"] = d[:, 30] & 0x01
    out["object_status"] = (d[:, 30] >> 1) & 0x03
    return out


def decode_srr520_frame(data: bytes) -> Srr520Frame:
    """Decode one SRR520 UDP datagram (CAN id + CAN-FD payload).

    Element frames carry all their slots in ``items`` (the list header says how many are valid).

    Raises:
        PacketError: shorter than the CAN id, an unknown CAN id (``"can_id"``), a payload size that does
            not match the id (``"size"``), a status frame whose CRC does not match (``"crc"``), an unknown
            CRC-list id, a sync status outside 1..3.
    """
    if len(data) < 4:
        raise PacketError("size", f"SRR520 datagram of {len(data)} bytes has no 4-byte CAN id")
    can_id = int.from_bytes(data[:4], "big")
    payload = bytes(data[4:])
    size = FRAME_BYTES.get(can_id)
    if size is None:
        raise PacketError("can_id", f"unknown SRR520 CAN id {can_id}")
    if len(payload) != size:
        raise PacketError("size", f"CAN id {can_id}: {len(payload)}-byte payload, expected {size}")
    kind = _KIND_OF_ID.get(can_id)
    if can_id in {NEAR_HEADER, HRR_HEADER}:
        t, sec, nsec, sync, sig, seq, cycle, v_amb, max_range, n = _SCAN_HDR.unpack_from(payload, 0)
        _check_header("near" if can_id == NEAR_HEADER else "hrr", n, sync, nsec)
        return Srr520Frame(can_id, "header", kind, payload, {
            "internal_time_stamp_usec": t, "sensor_stamp_ns": sec * 1_000_000_000 + nsec, "sync_status": sync,
            "signal_status": sig, "sequence_counter": seq, "cycle_counter": cycle,
            "v_ambiguous": float(np.float32(0.003051851 * v_amb - 100.0)),
            "max_range": float(np.float32(0.1 * max_range)), "count": n})
    if can_id == OBJECT_HEADER:
        t, sec, nsec, sync, sig, seq, cycle, vx, yaw_rate, motion, n = _OBJ_HDR.unpack_from(payload, 0)
        _check_header("objects", n, sync, nsec)
        return Srr520Frame(can_id, "header", kind, payload, {
            "internal_time_stamp_usec": t, "sensor_stamp_ns": sec * 1_000_000_000 + nsec, "sync_status": sync,
            "signal_status": sig, "sequence_counter": seq, "cycle_counter": cycle,
            "ego_vx": float(np.float32(0.003051851 * vx - 100.0)),
            "ego_yaw_rate": float(np.float32(9.58766e-05 * yaw_rate - 3.14159)), "motion_type": motion,
            "count": n})
    if can_id in {NEAR_ELEMENT, HRR_ELEMENT}:
        frags = np.frombuffer(payload, dtype=np.uint8, count=60).reshape(10, 6)
        return Srr520Frame(can_id, "element", kind, payload,
                           {"message_counter": payload[62], "sequence_counter": payload[63]}, _detections(frags))
    if can_id == OBJECT_ELEMENT:
        frags = np.frombuffer(payload, dtype=np.uint8, count=62).reshape(2, 31)
        return Srr520Frame(can_id, "element", kind, payload,
                           {"message_counter": payload[62], "sequence_counter": payload[63]}, _objects(frags))
    if can_id == CRC_LIST:
        list_kind = _KIND_OF_CRC.get(payload[0])
        if list_kind is None:
            raise PacketError("crc_list_id", f"CRC list for unknown list id {payload[0]}")
        return Srr520Frame(can_id, "crc", list_kind, payload, {"crc": (payload[1] << 8) | payload[2]})
    if can_id == STATUS:
        sent, seq = struct.unpack_from(">HB", payload, 61)
        computed = crc16_ccitt_false(payload[:61])
        if sent != computed:
            raise PacketError("crc", f"status frame CRC 0x{sent:04x}, computed 0x{computed:04x}")
        return Srr520Frame(can_id, "status", None, payload, {"sequence_counter": seq, "crc": sent})
    return Srr520Frame(can_id, "other", None, payload, {})


def _check_header(kind: ListKind, count: int, sync: int, nsec: int) -> None:
    slots = LISTS[kind][2] * LISTS[kind][3]
    if count > slots:
        raise PacketError("count", f"{kind} list header announces {count} entries, more than its {slots} slots")
    if sync not in {1, 2, 3}:
        raise PacketError("sync_status", f"time sync status {sync}, expected 1, 2 or 3")
    if nsec >= 1_000_000_000:
        raise PacketError("timestamp", f"timestamp nanoseconds {nsec} >= 1e9")


@dataclass
class _Pending:
    header: Srr520Frame
    elements: list[Srr520Frame] = field(default_factory=list)


class Srr520Assembler:
    """Collects decoded frames into lists: a header starts a list, its element frames must follow with
    message counters 0, 1, … and the header's sequence counter, and the CRC-list frame closes it; the list is
    returned by :meth:`add` when its CRC matches.  Anything else (an element without a header, a counter out
    of order, a CRC mismatch, a header that interrupts an incomplete list) drops that list and is counted in
    :attr:`dropped` by reason; frames of the other lists are not affected.
    """

    def __init__(self) -> None:
        self._pending: dict[ListKind, _Pending] = {}
        self.dropped: dict[str, int] = {}

    def _drop(self, kind: ListKind, reason: str) -> None:
        self._pending.pop(kind, None)
        key = f"{kind}: {reason}"
        self.dropped[key] = self.dropped.get(key, 0) + 1

    def add(self, frame: Srr520Frame) -> Srr520DetectionList | Srr520ObjectList | None:
        """Take one frame; the completed list it closes, if any."""
        kind = frame.list_kind
        if kind is None:
            return None
        if frame.kind == "header":
            if kind in self._pending:
                self._drop(kind, "list interrupted by a new header")
            self._pending[kind] = _Pending(frame)
            return None
        pending = self._pending.get(kind)
        if pending is None:
            self.dropped[f"{kind}: {frame.kind} frame without header"] = (
                self.dropped.get(f"{kind}: {frame.kind} frame without header", 0) + 1)
            return None
        n_frames = LISTS[kind][2]
        if frame.kind == "element":
            if frame.fields["message_counter"] != len(pending.elements):
                self._drop(kind, "element message counter out of order")
            elif frame.fields["sequence_counter"] != pending.header.fields["sequence_counter"]:
                self._drop(kind, "element sequence counter differs from the header's")
            elif len(pending.elements) >= n_frames:
                self._drop(kind, "too many element frames")
            else:
                pending.elements.append(frame)
            return None
        # the CRC list closes it
        del self._pending[kind]
        if len(pending.elements) != n_frames:
            self.dropped[f"{kind}: incomplete list"] = self.dropped.get(f"{kind}: incomplete list", 0) + 1
            return None
        crc = crc16_ccitt_false(pending.header.payload)
        for el in pending.elements:
            crc = crc16_ccitt_false(el.payload, crc)
        if crc != frame.fields["crc"]:
            key = f"{kind}: list CRC mismatch"
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return None
        return _build(kind, pending, crc)


def _build(kind: ListKind, pending: _Pending, crc: int) -> Srr520DetectionList | Srr520ObjectList:
    h = pending.header.fields
    items = [el.items for el in pending.elements if el.items is not None]
    all_items = np.concatenate(items)[: int(h["count"])]
    common = {"sensor_stamp_ns": int(h["sensor_stamp_ns"]), "sync_status": int(h["sync_status"]),
              "internal_time_stamp_usec": int(h["internal_time_stamp_usec"]),
              "signal_status": int(h["signal_status"]), "sequence_counter": int(h["sequence_counter"]),
              "cycle_counter": int(h["cycle_counter"])}
    if kind == "objects":
        return Srr520ObjectList(**common, ego_vx=float(h["ego_vx"]), ego_yaw_rate=float(h["ego_yaw_rate"]),
                                motion_type=int(h["motion_type"]), objects=all_items, crc=crc)
    return Srr520DetectionList(kind=kind, **common, v_ambiguous=float(h["v_ambiguous"]),
                               max_range=float(h["max_range"]), detections=all_items, crc=crc)
