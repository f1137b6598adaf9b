"""Helpers shared by the converters: building messages for any typestore, reading fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError
from edgefuse.time import ns_from_ros, ros_parts

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

_NUMPY_OF_ROS = {
    "bool": np.uint8,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def _default_base(kind: str) -> Any:
    if kind == "string":
        return ""
    if kind == "bool":
        return False
    if kind.startswith("float"):
        return 0.0
    return 0


def _default_value(ts: Typestore, desc: Any) -> Any:
    """Default value for one field description of a rosbags parse tree."""
    node, spec = desc
    node = int(node)
    if node == 1:  # BASE
        return _default_base(spec[0])
    if node == 2:  # NAME
        return make_msg(ts, spec)
    sub, length = spec
    if int(sub[0]) == 1 and sub[1][0] in _NUMPY_OF_ROS:
        return np.zeros(length if node == 3 else 0, dtype=_NUMPY_OF_ROS[sub[1][0]])
    if node == 3:  # ARRAY of strings or messages
        return [_default_value(ts, sub) for _ in range(length)]
    return []


def make_msg(ts: Typestore, typename: str, **values: Any) -> Any:
    """Build a message of ``typename`` from ``ts``.

    Keys of ``values`` match field names case-insensitively (ROS 1 ``CameraInfo`` uses ``K``, ROS 2
    ``k``); fields not given get zero/empty defaults (e.g. ROS 1 ``Header.seq``).
    """
    try:
        fields = ts.fielddefs[typename][1]
        cls = ts.types[typename]
    except KeyError:
        raise MessageError(f"unknown message type {typename!r} in this typestore") from None
    lowered = {k.lower(): v for k, v in values.items()}
    kwargs = {}
    for name, desc in fields:
        key = name.lower()
        kwargs[name] = lowered.pop(key) if key in lowered else _default_value(ts, desc)
    if lowered:
        raise MessageError(f"{typename} has no field(s) {sorted(lowered)}")
    return cls(**kwargs)


def make_header(ts: Typestore, stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/msg/Header`` (ROS 1 ``seq`` set to 0) for ``ts``."""
    return make_msg(ts, "std_msgs/msg/Header", stamp=make_time(ts, stamp_ns), frame_id=frame_id)


def make_time(ts: Typestore, stamp_ns: int) -> Any:
    """A ``builtin_interfaces/msg/Time`` from integer ns."""
    sec, nanosec = ros_parts(stamp_ns)
    return make_msg(ts, "builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def header_stamp_ns(msg: Any) -> int:
    """Header stamp of ``msg`` in ns."""
    return ns_from_ros(msg.header.stamp)


def get_field(msg: Any, name: str) -> Any:
    """Field ``name`` of ``msg``, accepting the upper-case spelling of ROS 1 (``K`` for ``k``)."""
    if hasattr(msg, name):
        return getattr(msg, name)
    return getattr(msg, name.upper())


def as_f64(value: Any, shape: tuple[int, ...], what: str) -> npt.NDArray[np.float64]:
    """``value`` as a float64 array of ``shape`` (copied), or MessageError naming the sizes."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise MessageError(f"{what}: not numeric") from None
    size = int(np.prod(shape))
    if arr.size != size:
        raise MessageError(f"{what}: expected {size} values {shape}, got {arr.size}")
    return arr.reshape(shape).copy()


def byte_array(value: Any, what: str) -> npt.NDArray[np.uint8]:
    """``value`` (a ``uint8[]`` message field) as a 1-D C-contiguous uint8 array, without copying when it
    is one already or a bytes-like buffer (what rosbags' deserialisers give).

    Raises:
        MessageError: not bytes-like, not 1-D, or values outside 0..255.
    """
    if type(value) is np.ndarray and value.dtype == np.uint8 and value.ndim == 1 and value.flags.c_contiguous:
        return value  # the hot path: rosbags gives exactly this
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(value, dtype=np.uint8)
    if isinstance(value, memoryview):
        if not value.c_contiguous:
            raise MessageError(f"{what}: a non-contiguous buffer")
        return np.frombuffer(value.cast("B") if value.format != "B" else value, dtype=np.uint8)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise MessageError(f"{what}: not a byte array") from None
    if arr.ndim != 1:
        raise MessageError(f"{what}: expected a 1-D byte array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.size and (arr.dtype.kind not in "iub" or int(arr.min()) < 0 or int(arr.max()) > 255):
        raise MessageError(f"{what}: expected bytes (uint8), got {arr.dtype} values")
    return arr.astype(np.uint8)


def xyz_of(vec: Any) -> npt.NDArray[np.float64]:
    """(3,) float64 from a message with x, y, z."""
    return np.array([vec.x, vec.y, vec.z], dtype=np.float64)


def xyzw_of(quat: Any) -> npt.NDArray[np.float64]:
    """(4,) float64 (x, y, z, w) from a quaternion message."""
    return np.array([quat.x, quat.y, quat.z, quat.w], dtype=np.float64)
