"""Fast decoding of fixed-layout messages straight from their serialised bytes.

``sensor_msgs/msg/Imu``, ``nav_msgs/msg/Odometry`` and ``sensor_msgs/msg/NavSatFix`` are a header
plus blocks of float64 (and, for NavSatFix, three small integers).  Only the ``frame_id`` /
``child_frame_id`` strings vary in length, so their offsets are computed per message and the float64
blocks are read with ``np.frombuffer`` instead of building rosbags message objects first.  The result
is the payload :func:`edgefuse.msgs.to_payload` gives for the decoded message, field for field
(:func:`decode`), or whole columns for offline use (:func:`decode_columns`).

Layouts (offsets from the start of the serialised message):

* ROS 1 (little-endian, packed): ``uint32 seq``, ``int32 sec``, ``uint32 nsec``, ``uint32 len`` +
  ``len`` bytes of ``frame_id``, then the fields back to back.
* ROS 2 CDR: 4-byte encapsulation header (``00 00`` big-endian, ``00 01`` little-endian), then
  ``int32 sec``, ``uint32 nanosec``, ``uint32 len`` (including the NUL) + bytes; every primitive is
  aligned to its size *relative to the end of the encapsulation header*; up to 3 bytes of trailing
  padding are accepted (as rosbags does).

Anything inconsistent (short or over-long buffer, string running past the end, a CDR string without
its terminator or of length 0, an unknown encapsulation, invalid UTF-8) raises
:class:`~edgefuse.errors.MessageError`, never returns garbage.  Use :func:`supports` to check that a
typestore's definition of a type (e.g. the one stored in a ROS 1 bag) has the standard layout before
using the fast path on that bag's bytes; :func:`decode_payload` falls back to the normal path itself.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData
from edgefuse.msgs.typestore import get_typestore, normalize_msgtype

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = ["FAST_MSGTYPES", "decode", "decode_columns", "decode_payload", "stack_payloads", "supports"]

Format = Literal["cdr", "ros1"]
Raw = bytes | bytearray | memoryview

IMU = "sensor_msgs/msg/Imu"
ODOMETRY = "nav_msgs/msg/Odometry"
NAVSATFIX = "sensor_msgs/msg/NavSatFix"

#: Message types with a fast path (ROS 2 spelling).
FAST_MSGTYPES: frozenset[str] = frozenset({IMU, ODOMETRY, NAVSATFIX})

_NS = 1_000_000_000
_N_FLOATS = {IMU: 37, ODOMETRY: 85, NAVSATFIX: 12}

# Flattened field layouts (primitive types in order; fixed arrays as "type[n]"); see supports().
_HEADER2 = ("int32", "uint32", "string")
_HEADER1 = ("uint32", *_HEADER2)
_Q, _V3, _C9, _C36 = ("float64",) * 4, ("float64",) * 3, ("float64[9]",), ("float64[36]",)
_BODY = {
    IMU: (*_Q, *_C9, *_V3, *_C9, *_V3, *_C9),
    ODOMETRY: ("string", *_V3, *_Q, *_C36, *_V3, *_V3, *_C36),
    NAVSATFIX: ("int8", "uint16", "float64", "float64", "float64", "float64[9]", "uint8"),
}

_HDR = {"<": struct.Struct("<iII"), ">": struct.Struct(">iII")}
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_U16 = {"<": struct.Struct("<H"), ">": struct.Struct(">H")}
_F8 = {"<": np.dtype("<f8"), ">": np.dtype(">f8")}


# ----------------------------------------------------------------------------- layout check


def _flatten(store: Typestore, typename: str, depth: int = 0) -> tuple[str, ...] | None:
    """Primitive field types of ``typename`` in serialisation order; None for sequences/unknowns."""
    defs = store.fielddefs.get(typename)
    if defs is None or depth > 8:
        return None
    out: list[str] = []
    for _, (node, spec) in defs[1]:
        kind = int(node)
        if kind == 1:  # BASE
            out.append(str(spec[0]))
        elif kind == 2:  # NAME
            sub = _flatten(store, str(spec), depth + 1)
            if sub is None:
                return None
            out.extend(sub)
        elif kind == 3 and int(spec[0][0]) == 1:  # fixed ARRAY of a primitive
            out.append(f"{spec[0][1][0]}[{int(spec[1])}]")
        else:  # sequences, arrays of messages: not a fixed layout
            return None
    return tuple(out)


def supports(msgtype: str, *, fmt: Format = "cdr", typestore: Typestore | None = None) -> bool:
    """Whether ``msgtype`` has a fast path and ``typestore`` (default edgefuse's) defines it with the
    standard layout for ``fmt`` (ROS 1 headers carry ``seq``, ROS 2 headers do not)."""
    try:
        name = normalize_msgtype(msgtype)
    except MessageError:
        return False
    if name not in FAST_MSGTYPES:
        return False
    store = typestore if typestore is not None else get_typestore()
    header = _HEADER1 if fmt == "ros1" else _HEADER2
    return _flatten(store, name) == (*header, *_BODY[name])


# ----------------------------------------------------------------------------- one message


def _bad(name: str, fmt: str, why: str) -> MessageError:
    return MessageError(f"{name} ({fmt}): {why}")


def _al(pos: int, size: int) -> int:
    """``pos`` aligned to ``size`` relative to the CDR payload start (byte 4)."""
    return 4 + ((pos - 4 + size - 1) & -size)


def _string(buf: bytes, pos: int, order: str, *, cdr: bool, name: str, what: str) -> tuple[str, int]:
    """The string whose length prefix is at ``pos`` and the position after it."""
    fmt = "cdr" if cdr else "ros1"
    if pos + 4 > len(buf):
        raise _bad(name, fmt, f"{len(buf)} bytes end inside the length of {what}")
    (length,) = _U32[order].unpack_from(buf, pos)
    end = pos + 4 + length
    if end > len(buf):
        raise _bad(name, fmt, f"{what} of {length} bytes runs past the end of {len(buf)} bytes")
    if cdr:
        if length < 1 or buf[end - 1] != 0:
            raise _bad(name, fmt, f"{what} is not a NUL-terminated CDR string")
        raw = buf[pos + 4 : end - 1]
    else:
        raw = buf[pos + 4 : end]
    try:
        return raw.decode(), end
    except UnicodeDecodeError:
        raise _bad(name, fmt, f"{what} is not valid UTF-8") from None


def _check_end(buf: bytes, end: int, cdr: bool, name: str) -> None:
    n = len(buf)
    if n < end or n > end + (3 if cdr else 0):
        raise _bad(name, "cdr" if cdr else "ros1", f"{n} bytes where the layout needs {end}")


def decode(rawdata: Raw, msgtype: str, fmt: Format = "cdr") -> ImuData | OdometryData | NavSatFixData:
    """Payload of one serialised Imu / Odometry / NavSatFix message (CDR with its encapsulation
    header, or ROS 1), equal to ``to_payload(deserialize(rawdata, msgtype, fmt=fmt))``.

    The arrays of one payload are views into one freshly allocated (writable) float64 block.  The
    caller is responsible for the type's layout (see :func:`supports`).

    Raises:
        MessageError: a type without a fast path, or bytes inconsistent with the layout.
    """
    name = normalize_msgtype(msgtype)
    nfl = _N_FLOATS.get(name)
    if nfl is None:
        raise MessageError(f"no fast decoder for {name}; it has {sorted(FAST_MSGTYPES)}")
    buf = rawdata if isinstance(rawdata, bytes) else bytes(rawdata)
    cdr = fmt == "cdr"
    if len(buf) < 16:
        raise _bad(name, fmt, f"{len(buf)} bytes are too short for a header")
    if cdr:
        if buf[0] != 0 or buf[1] > 1:
            raise _bad(name, fmt, f"unknown CDR encapsulation {buf[:2].hex()}")
        order = "<" if buf[1] else ">"
    else:
        order = "<"
    sec, nsec, _ = _HDR[order].unpack_from(buf, 4)
    stamp_ns = sec * _NS + nsec
    frame_id, pos = _string(buf, 12, order, cdr=cdr, name=name, what="frame_id")
    if name == IMU:
        fpos = _al(pos, 8) if cdr else pos
        _check_end(buf, fpos + 8 * nfl, cdr, name)
        v = np.frombuffer(buf, _F8[order], nfl, fpos).astype(np.float64)
        return ImuData(
            stamp_ns, frame_id, v[0:4], v[4:13].reshape(3, 3), v[13:16], v[16:25].reshape(3, 3),
            v[25:28], v[28:37].reshape(3, 3),
        )  # fmt: skip
    if name == ODOMETRY:
        child, pos = _string(buf, _al(pos, 4) if cdr else pos, order, cdr=cdr, name=name, what="child_frame_id")
        fpos = _al(pos, 8) if cdr else pos
        _check_end(buf, fpos + 8 * nfl, cdr, name)
        v = np.frombuffer(buf, _F8[order], nfl, fpos).astype(np.float64)
        return OdometryData(
            stamp_ns, frame_id, child, v[0:3], v[3:7], v[7:43].reshape(6, 6), v[43:46], v[46:49],
            v[49:85].reshape(6, 6),
        )  # fmt: skip
    # NavSatFix: int8 status, uint16 service, 3 + 9 float64, uint8 covariance type
    spos = _al(pos + 1, 2) if cdr else pos + 1
    fpos = _al(spos + 2, 8) if cdr else spos + 2
    _check_end(buf, fpos + 8 * nfl + 1, cdr, name)
    status = buf[pos] - 256 if buf[pos] > 127 else buf[pos]
    (service,) = _U16[order].unpack_from(buf, spos)
    v = np.frombuffer(buf, _F8[order], nfl, fpos).astype(np.float64)
    return NavSatFixData(
        stamp_ns, frame_id, status, service, float(v[0]), float(v[1]), float(v[2]), v[3:12].reshape(3, 3),
        buf[fpos + 8 * nfl],
    )  # fmt: skip


def decode_payload(rawdata: Raw, msgtype: str, *, fmt: Format = "cdr", typestore: Typestore | None = None) -> Any:
    """The payload of any convertible message: the fast path when ``msgtype`` has one and
    ``typestore`` defines it with the standard layout, else (or when the fast path finds the bytes
    inconsistent) :func:`~edgefuse.msgs.deserialize` + :func:`~edgefuse.msgs.to_payload`.

    Raises:
        MessageError: the bytes do not decode or convert.
    """
    if supports(msgtype, fmt=fmt, typestore=typestore):
        try:
            return decode(rawdata, msgtype, fmt)
        except MessageError:
            pass  # the normal path gives rosbags' own verdict (or the payload, if it disagrees)
    from edgefuse.msgs.convert import to_payload  # convert imports heavier modules
    from edgefuse.msgs.serde import deserialize

    return to_payload(deserialize(rawdata, msgtype, fmt=fmt, typestore=typestore), msgtype)


# ----------------------------------------------------------------------------- columns

Columns = dict[str, npt.NDArray[Any]]


def _gather(buf: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64], size: int) -> npt.NDArray[np.uint8]:
    """(n, size) bytes at absolute positions ``pos`` (clipped into the buffer; callers mask)."""
    idx = pos[:, None] + np.arange(size, dtype=np.int64)
    np.clip(idx, 0, max(buf.shape[0] - 1, 0), out=idx)
    return buf[idx] if buf.shape[0] else np.zeros((pos.shape[0], size), np.uint8)


def _uint(
    buf: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64], size: int, big: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    b = _gather(buf, pos, size).astype(np.int64)
    le = np.zeros(pos.shape[0], np.int64)
    be = np.zeros(pos.shape[0], np.int64)
    for k in range(size):
        le |= b[:, k] << (8 * k)
        be |= b[:, size - 1 - k] << (8 * k)
    return np.where(big, be, le)


def _al_v(pos: npt.NDArray[np.int64], size: int) -> npt.NDArray[np.int64]:
    return 4 + ((pos - 4 + size - 1) & -size)


def _strings(
    joined: bytes, start: npt.NDArray[np.int64], stop: npt.NDArray[np.int64], bad: npt.NDArray[np.bool_]
) -> npt.NDArray[np.object_]:
    """Decoded strings ``joined[start:stop]`` per row (each distinct byte string decoded once);
    rows that do not decode are marked in ``bad``."""
    parts = [joined[a:b] for a, b in zip(start.tolist(), stop.tolist(), strict=True)]
    text: dict[bytes, str | None] = {}
    for p in set(parts):
        try:
            text[p] = p.decode()
        except UnicodeDecodeError:
            text[p] = None
    out = np.empty(len(parts), dtype=object)
    out[:] = [text[p] for p in parts]
    if None in text.values():
        bad |= np.array([text[p] is None for p in parts], np.bool_)
    return out


def _empty_columns(name: str) -> Columns:
    cols: Columns = {"stamps_ns": np.zeros(0, np.int64), "frame_id": np.empty(0, dtype=object)}
    if name == IMU:
        for key in ("orientation",):
            cols[key] = np.zeros((0, 4))
        for key in ("angular_velocity", "linear_acceleration"):
            cols[key] = np.zeros((0, 3))
        for key in ("orientation_covariance", "angular_velocity_covariance", "linear_acceleration_covariance"):
            cols[key] = np.zeros((0, 3, 3))
    elif name == ODOMETRY:
        cols["child_frame_id"] = np.empty(0, dtype=object)
        cols.update(position=np.zeros((0, 3)), orientation=np.zeros((0, 4)), pose_covariance=np.zeros((0, 6, 6)),
                    linear_velocity=np.zeros((0, 3)), angular_velocity=np.zeros((0, 3)),
                    twist_covariance=np.zeros((0, 6, 6)))  # fmt: skip
    else:
        for key in ("status", "service", "position_covariance_type"):
            cols[key] = np.zeros(0, np.int64)
        for key in ("latitude_deg", "longitude_deg", "altitude_m"):
            cols[key] = np.zeros(0)
        cols["position_covariance"] = np.zeros((0, 3, 3))
    return cols


def decode_columns(raws: Sequence[Raw], msgtype: str, fmt: Format = "cdr") -> Columns:
    """Decode many serialised messages of one type into columns (vectorised over messages).

    Keys are the payload field names, each one row per message in the given order:
    ``stamps_ns`` (N,) int64 and ``frame_id`` (N,) object (str); Imu: ``orientation`` (N, 4) xyzw,
    ``angular_velocity``/``linear_acceleration`` (N, 3), the three covariances (N, 3, 3);
    Odometry: ``child_frame_id`` (N,) object, ``position`` (N, 3), ``orientation`` (N, 4),
    ``pose_covariance`` (N, 6, 6), ``linear_velocity``/``angular_velocity`` (N, 3),
    ``twist_covariance`` (N, 6, 6); NavSatFix: ``status``/``service``/``position_covariance_type``
    (N,) int64, ``latitude_deg``/``longitude_deg``/``altitude_m`` (N,) float64,
    ``position_covariance`` (N, 3, 3).  Float arrays are float64, C-contiguous and writable.
    Row ``i`` equals the fields of ``decode(raws[i], msgtype, fmt)``.

    Raises:
        MessageError: a type without a fast path, or a message inconsistent with the layout; the
            message names the first such message's position in ``raws``.
    """
    name = normalize_msgtype(msgtype)
    nfl = _N_FLOATS.get(name)
    if nfl is None:
        raise MessageError(f"no fast decoder for {name}; it has {sorted(FAST_MSGTYPES)}")
    n = len(raws)
    if n == 0:
        return _empty_columns(name)
    cdr = fmt == "cdr"
    lens = np.fromiter(map(len, raws), np.int64, n)
    joined = b"".join(raws)
    buf = np.frombuffer(joined, np.uint8)
    start = np.zeros(n, np.int64)
    np.cumsum(lens[:-1], out=start[1:])
    bad = lens < 16
    if cdr:
        enc = _gather(buf, start, 2)
        bad |= (enc[:, 0] != 0) | (enc[:, 1] > 1)
        big = enc[:, 1] == 0
    else:
        big = np.zeros(n, np.bool_)
    sec = _uint(buf, start + 4, 4, big)
    sec = np.where(sec >= 2**31, sec - 2**32, sec)
    stamps = sec * _NS + _uint(buf, start + 8, 4, big)

    def string_at(pos: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int64]]:
        nonlocal bad
        bad |= pos + 4 > lens
        length = _uint(buf, start + pos, 4, big)
        end = pos + 4 + length
        bad |= end > lens
        if cdr:
            bad |= length < 1
            bad |= _gather(buf, start + end - 1, 1)[:, 0] != 0
        text_end = np.where(bad, pos + 4, end - (1 if cdr else 0))
        return _strings(joined, start + pos + 4, start + text_end, bad), end

    frame, pos = string_at(np.full(n, 12, np.int64))
    cols: Columns = {"stamps_ns": stamps, "frame_id": frame}
    if name == ODOMETRY:
        cols["child_frame_id"], pos = string_at(_al_v(pos, 4) if cdr else pos)
    if name == NAVSATFIX:
        status_pos = pos
        service_pos = _al_v(pos + 1, 2) if cdr else pos + 1
        pos = service_pos + 2
    fpos = _al_v(pos, 8) if cdr else pos
    end = fpos + 8 * nfl + (1 if name == NAVSATFIX else 0)
    bad |= (lens < end) | (lens > end + (3 if cdr else 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        try:
            decode(raws[first], name, fmt)
        except MessageError as err:
            raise MessageError(f"message {first} of {n}: {err.message}") from None
        raise MessageError(f"message {first} of {n}: {name} ({fmt}) inconsistent with its layout")
    width = 8 * nfl
    block = b"".join([joined[a : a + width] for a in (start + fpos).tolist()])
    v = np.frombuffer(block, "<f8").reshape(n, nfl)  # read-only: every column below is a copy
    if big.any():
        v = v.copy()
        v[big] = v[big].byteswap()
    if name == IMU:
        cols.update(
            orientation=v[:, 0:4].copy(), orientation_covariance=v[:, 4:13].reshape(n, 3, 3).copy(),
            angular_velocity=v[:, 13:16].copy(), angular_velocity_covariance=v[:, 16:25].reshape(n, 3, 3).copy(),
            linear_acceleration=v[:, 25:28].copy(),
            linear_acceleration_covariance=v[:, 28:37].reshape(n, 3, 3).copy(),
        )  # fmt: skip
    elif name == ODOMETRY:
        cols.update(
            position=v[:, 0:3].copy(), orientation=v[:, 3:7].copy(), pose_covariance=v[:, 7:43].reshape(n, 6, 6).copy(),
            linear_velocity=v[:, 43:46].copy(), angular_velocity=v[:, 46:49].copy(),
            twist_covariance=v[:, 49:85].reshape(n, 6, 6).copy(),
        )  # fmt: skip
    else:
        status = _gather(buf, start + status_pos, 1)[:, 0].view(np.int8).astype(np.int64)
        cols.update(
            status=status, service=_uint(buf, start + service_pos, 2, big),
            latitude_deg=v[:, 0].copy(), longitude_deg=v[:, 1].copy(), altitude_m=v[:, 2].copy(),
            position_covariance=v[:, 3:12].reshape(n, 3, 3).copy(),
            position_covariance_type=_gather(buf, start + fpos + 96, 1)[:, 0].astype(np.int64),
        )  # fmt: skip
    return cols


_ARRAY_FIELDS = {
    IMU: ("orientation", "orientation_covariance", "angular_velocity", "angular_velocity_covariance",
          "linear_acceleration", "linear_acceleration_covariance"),
    ODOMETRY: ("position", "orientation", "pose_covariance", "linear_velocity", "angular_velocity",
               "twist_covariance"),
    NAVSATFIX: ("position_covariance",),
}  # fmt: skip
_SCALAR_FIELDS = {
    IMU: (),
    ODOMETRY: (),
    NAVSATFIX: ("status", "service", "latitude_deg", "longitude_deg", "altitude_m", "position_covariance_type"),
}


def stack_payloads(payloads: Sequence[Any], msgtype: str) -> Columns:
    """The columns of :func:`decode_columns` from payloads already decoded (any path).

    Raises:
        MessageError: a type without a fast path, or a payload that is not of ``msgtype``.
    """
    name = normalize_msgtype(msgtype)
    if name not in FAST_MSGTYPES:
        raise MessageError(f"no columns for {name}; they exist for {sorted(FAST_MSGTYPES)}")
    cols = _empty_columns(name)
    if not payloads:
        return cols
    want = {IMU: ImuData, ODOMETRY: OdometryData, NAVSATFIX: NavSatFixData}[name]
    if not all(type(p) is want for p in payloads):
        raise MessageError(f"payloads are not all {want.__name__}")
    n = len(payloads)
    cols["stamps_ns"] = np.fromiter((p.stamp_ns for p in payloads), np.int64, n)
    for key in ("frame_id", "child_frame_id") if name == ODOMETRY else ("frame_id",):
        col = np.empty(n, dtype=object)
        col[:] = [getattr(p, key) for p in payloads]
        cols[key] = col
    for key in _ARRAY_FIELDS[name]:
        cols[key] = np.stack([np.asarray(getattr(p, key), np.float64) for p in payloads]).reshape(
            (n, *cols[key].shape[1:])
        )
    for key in _SCALAR_FIELDS[name]:
        cols[key] = np.array([getattr(p, key) for p in payloads], dtype=cols[key].dtype)
    return cols
