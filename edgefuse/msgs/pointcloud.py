"""``sensor_msgs/PointCloud2`` ↔ :class:`PointCloud`, and helpers on point clouds.

Conversion builds a numpy structured dtype from the message's ``fields`` (names, offsets,
datatypes INT8..FLOAT64, ``count > 1`` as a sub-array, itemsize = ``point_step``, byte order from
``is_bigendian``) and views ``data`` with it **without copying**: ``points`` shares memory with the
message buffer (read-only when that buffer is).  Two cases differ:

* rows with padding (``row_step > width * point_step``, organized clouds only): the (N,) array
  cannot be a view of the buffer, so the points are copied (one copy, row padding dropped);
* big-endian clouds keep a zero-copy view with a big-endian dtype; :func:`xyz` and :func:`field`
  return native-order copies of what they extract.

What a valid message is (anything else raises :class:`~edgefuse.errors.MessageError`; see
:func:`pointcloud_from_msg`).  With ``H = height``, ``W = width``, ``P = point_step``,
``R = row_step`` and ``L = len(data)`` — the ROS definition: ``R`` is the length of a row in bytes
and ``L = R * H``:

* ``0 < P < 2**31`` (numpy's limit on one structured item);
* ``R >= W * P`` and ``L == R * H`` exactly (no missing and no trailing bytes);
* an unorganized cloud (``H == 1``) has no row padding: ``R == W * P``.  Extra bytes in its one row
  would be points that ``width`` does not count, so they are an error, never silently dropped;
* an organized cloud (``H > 1``) may pad its rows (``R > W * P``, e.g. rows aligned to 64 bytes);
  the padding is skipped;
* a cloud without points (``H * W == 0``) has no data (``L == 0``): a row of pure padding is an
  inconsistent header, not an empty cloud;
* every field has a known datatype (1..8), a non-empty name used once, lies inside ``P`` and
  overlaps no other field; ``count`` 0 is read as 1 (some drivers write 0), ``count > 1`` becomes a
  sub-array (normals, descriptors, per-return values): ``field(cloud, "normal")`` is (N, 3);
* the cloud has coordinates: fields ``x``, ``y`` and ``z``, one value each per point (``count``
  1), of any datatype.  Every consumer of a :class:`PointCloud` (stages, :func:`xyz`, calibration)
  needs them, so a message without them is rejected where it enters, naming what it has.
  The one exception is a message with no fields and no points (a default-constructed message, as
  some drivers publish when nothing was detected): it becomes an empty cloud with float32 x, y, z.

Only header arithmetic is done per message (the field layout is checked once per distinct layout
and cached), so the check costs O(1) whatever the cloud's size.

Non-finite points (NaN/inf coordinates) are kept; ``is_dense`` from the message says whether the
sender promised there are none.  :func:`finite_mask` and ``xyz(..., drop_nonfinite=True)`` drop
them.
"""

from __future__ import annotations

import functools
import itertools
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError
from edgefuse.msgs._common import byte_array, header_stamp_ns, make_header, make_msg
from edgefuse.msgs.types import PointCloud

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    "DATATYPES",
    "MAX_POINT_STEP",
    "field",
    "finite_mask",
    "msg_from_pointcloud",
    "pointcloud_dtype",
    "pointcloud_from_arrays",
    "pointcloud_from_msg",
    "pointcloud_from_structured",
    "xyz",
]

#: PointField datatype constant → numpy type code (without byte order).
DATATYPES: dict[int, str] = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
_DATATYPE_OF_CODE = {code: num for num, code in DATATYPES.items()}
#: the largest ``point_step`` numpy can view (one structured item is at most a C int of bytes)
MAX_POINT_STEP = 2**31 - 1
_EMPTY_XYZ = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")])


def pointcloud_dtype(fields: Any, point_step: int, *, big_endian: bool = False) -> np.dtype[np.void]:
    """Structured dtype for PointCloud2 ``fields`` (sequence of PointField-like objects with
    ``name, offset, datatype, count``) and ``point_step`` bytes per point.

    Raises:
        MessageError: ``point_step`` outside 1..:data:`MAX_POINT_STEP`, unknown datatype, empty or
            duplicate name, field beyond ``point_step``, overlapping fields.
    """
    if not 0 < point_step <= MAX_POINT_STEP:
        raise MessageError(f"PointCloud2 point_step {point_step} outside 1..{MAX_POINT_STEP}")
    order = ">" if big_endian else "<"
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    spans: list[tuple[int, int, str]] = []
    for fld in fields:
        name, offset, datatype, count = str(fld.name), int(fld.offset), int(fld.datatype), int(fld.count)
        if datatype not in DATATYPES:
            raise MessageError(f"PointField {name!r}: unknown datatype {datatype} (expected 1..8)")
        if not name:
            raise MessageError("a PointField has an empty name")
        if name in names:
            raise MessageError(f"PointField {name!r} appears twice")
        count = max(count, 1)
        base = np.dtype(order + DATATYPES[datatype])
        end = offset + base.itemsize * count
        if offset < 0 or end > point_step:
            raise MessageError(
                f"PointField {name!r} spans bytes {offset}..{end} beyond point_step {point_step}"
            )
        names.append(name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(offset)
        spans.append((offset, end, name))
    spans.sort()
    for (_, end_a, name_a), (start_b, _, name_b) in itertools.pairwise(spans):
        if start_b < end_a:
            raise MessageError(
                f"PointFields {name_a!r} (ends at byte {end_a}) and {name_b!r} "
                f"(starts at byte {start_b}) overlap"
            )
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})


@functools.lru_cache(maxsize=256)
def _layout(key: tuple[tuple[str, int, int, int], ...], point_step: int, big_endian: bool) -> np.dtype[np.void]:
    """The checked dtype of one field layout (cached: a stream repeats its layout in every message).

    Raises:
        MessageError: see :func:`pointcloud_dtype`, or no scalar x, y, z.
    """
    fields = [_Field(*k) for k in key]
    dtype = pointcloud_dtype(fields, point_step, big_endian=big_endian)
    names = dtype.names or ()
    for axis in "xyz":
        if axis not in names:
            raise MessageError(
                f"PointCloud2 has no field {axis!r} (fields: {list(names)}); a point cloud needs x, y, z"
            )
        sub = dtype.fields[axis][0]  # type: ignore[index]
        if sub.subdtype is not None:
            raise MessageError(
                f"PointField {axis!r} has count {sub.shape[0]}; coordinates hold one value per point"
            )
    return dtype


class _Field:
    """A PointField as plain values (what :func:`pointcloud_dtype` reads)."""

    __slots__ = ("count", "datatype", "name", "offset")

    def __init__(self, name: str, offset: int, datatype: int, count: int) -> None:
        self.name, self.offset, self.datatype, self.count = name, offset, datatype, count


def _check_geometry(height: int, width: int, point_step: int, row_step: int, n_bytes: int) -> None:
    """The header arithmetic of the module docstring's rules (O(1)).

    Raises:
        MessageError: naming the sizes that disagree.
    """
    if not 0 < point_step <= MAX_POINT_STEP:
        raise MessageError(f"PointCloud2 point_step {point_step} outside 1..{MAX_POINT_STEP}")
    row = width * point_step
    if row_step < row:
        raise MessageError(f"PointCloud2 row_step {row_step} < width {width} * point_step {point_step} = {row}")
    if n_bytes != row_step * height:
        raise MessageError(
            f"PointCloud2 data has {n_bytes} bytes != row_step {row_step} * height {height} = {row_step * height}"
        )
    if height * width == 0 and n_bytes:
        raise MessageError(f"PointCloud2 has no points (height {height} * width {width}) but {n_bytes} data bytes")
    if height == 1 and row_step != row:
        raise MessageError(
            f"PointCloud2 with height 1 has row_step {row_step} != width {width} * point_step {point_step} = "
            f"{row}: its {row_step - row} extra bytes are not counted by width (only organized clouds pad rows)"
        )


def pointcloud_from_msg(msg: Any) -> PointCloud:
    """Convert a ``sensor_msgs/PointCloud2`` to :class:`PointCloud` (zero-copy, see module doc).

    The result always satisfies ``len(points) == height * width``, ``points.dtype.itemsize ==
    point_step`` and ``points.dtype.names`` == the message's field names (in message order).

    Raises:
        MessageError: a message breaking one of the module docstring's rules: sizes that disagree
            (``point_step``, ``row_step``, ``width``, ``height`` and ``len(data)``), a bad field
            layout (see :func:`pointcloud_dtype`), or no single-valued x, y, z.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    data = byte_array(msg.data, "PointCloud2 data")
    fields = msg.fields
    if not fields and data.size == 0 and height * width == 0:  # a default-constructed (empty) message
        dtype: np.dtype[np.void] = _EMPTY_XYZ
    else:
        _check_geometry(height, width, point_step, row_step, data.size)
        try:
            key = tuple((str(f.name), int(f.offset), int(f.datatype), int(f.count)) for f in fields)
        except (TypeError, ValueError):
            raise MessageError("PointCloud2 fields: a PointField value is not a name or an integer") from None
        dtype = _layout(key, point_step, bool(msg.is_bigendian))
    count = height * width
    if count == 0:
        points = np.zeros(0, dtype=dtype)
    elif row_step == width * point_step:
        points = np.frombuffer(data, dtype=dtype, count=count)
    else:
        rows = np.ndarray((height, width), dtype=dtype, buffer=data, strides=(row_step, point_step))
        points = rows.reshape(count)  # copy: padded rows cannot be one flat view
    return PointCloud(
        stamp_ns=header_stamp_ns(msg),
        frame_id=str(msg.header.frame_id),
        points=points,
        height=height,
        width=width,
        is_dense=bool(msg.is_dense),
    )


def _le_dtype(dtype: np.dtype[Any]) -> tuple[np.dtype[np.void], list[tuple[str, int, int, int]]]:
    """Little-endian copy of a structured dtype and its (name, offset, datatype, count) fields."""
    if dtype.names is None:
        raise MessageError(f"points must be a structured array, got dtype {dtype}")
    fields_out: list[tuple[str, int, int, int]] = []
    formats: list[Any] = []
    offsets: list[int] = []
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]  # type: ignore[index]
        base, shape = (sub.base, sub.shape) if sub.subdtype is not None else (sub, ())
        code = base.kind + str(base.itemsize)
        if code not in _DATATYPE_OF_CODE or len(shape) > 1:
            raise MessageError(f"point field {name!r}: dtype {sub} has no PointField datatype")
        count = int(shape[0]) if shape else 1
        le = np.dtype("<" + code)
        formats.append(le if not shape else (le, shape))
        offsets.append(int(offset))
        fields_out.append((name, int(offset), _DATATYPE_OF_CODE[code], count))
    le_dtype = np.dtype(
        {"names": list(dtype.names), "formats": formats, "offsets": offsets, "itemsize": dtype.itemsize}
    )
    return le_dtype, fields_out


def msg_from_pointcloud(ts: Typestore, cloud: PointCloud) -> Any:
    """Build a little-endian ``sensor_msgs/msg/PointCloud2`` from :class:`PointCloud`.

    Field offsets and padding of ``cloud.points.dtype`` are kept (point_step = itemsize); rows
    are packed (row_step = width * point_step).  ``data`` is a view of ``points`` when they are
    contiguous and little-endian already.

    Raises:
        MessageError: a field dtype without PointField datatype (bool, int64, nested), or
            ``height * width != len(points)``.
    """
    points = np.asarray(cloud.points).reshape(-1)
    le_dtype, fields = _le_dtype(points.dtype)
    height = int(cloud.height)
    width = int(cloud.width) if cloud.width else (len(points) // height if height else 0)
    if height * width != len(points):
        raise MessageError(f"cloud height {height} * width {width} != {len(points)} points")
    packed = np.ascontiguousarray(points.astype(le_dtype, copy=False))
    point_step = le_dtype.itemsize
    data = packed.view(np.uint8).reshape(-1) if packed.size else np.zeros(0, dtype=np.uint8)
    return make_msg(
        ts,
        "sensor_msgs/msg/PointCloud2",
        header=make_header(ts, cloud.stamp_ns, cloud.frame_id),
        height=height,
        width=width,
        fields=[
            make_msg(ts, "sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=c)
            for n, o, d, c in fields
        ],
        is_bigendian=False,
        point_step=point_step,
        row_step=point_step * width,
        data=data,
        is_dense=bool(cloud.is_dense),
    )


def pointcloud_from_structured(
    stamp_ns: int,
    frame_id: str,
    points: npt.NDArray[Any],
    *,
    height: int = 1,
    width: int | None = None,
    is_dense: bool | None = None,
) -> PointCloud:
    """Wrap a structured array (N,) as :class:`PointCloud`.

    ``is_dense`` defaults to "every x, y, z is finite" (True when the cloud has no x/y/z).

    Raises:
        MessageError: not a structured array, or ``height * width != N``.
    """
    arr = np.asarray(points)
    if arr.dtype.names is None:
        raise MessageError(f"points must be a structured array, got dtype {arr.dtype}")
    arr = arr.reshape(-1)
    width = len(arr) // height if width is None and height else (width or 0)
    if height * width != len(arr):
        raise MessageError(f"cloud height {height} * width {width} != {len(arr)} points")
    cloud = PointCloud(stamp_ns=int(stamp_ns), frame_id=frame_id, points=arr, height=height, width=width)
    if is_dense is None:
        has_xyz = all(n in (arr.dtype.names or ()) for n in "xyz")
        is_dense = bool(finite_mask(cloud).all()) if has_xyz else True
    cloud.is_dense = is_dense
    return cloud


def pointcloud_from_arrays(stamp_ns: int, frame_id: str, /, **fields: npt.ArrayLike) -> PointCloud:
    """Build an unorganized :class:`PointCloud` from per-field arrays, packed in the given order.

    Each value is (N,) (one value per point) or (N, k) (a ``count = k`` field); all share N.
    Example: ``pointcloud_from_arrays(t, "lidar", x=x, y=y, z=z, intensity=i)`` with float32
    arrays gives the classic 16-byte XYZI layout.

    Raises:
        MessageError: no fields, or lengths differ.
    """
    if not fields:
        raise MessageError("pointcloud_from_arrays needs at least one field")
    arrays = {name: np.asarray(value) for name, value in fields.items()}
    lengths = {name: (a.shape[0] if a.ndim else -1) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1 or -1 in lengths.values() or any(a.ndim > 2 for a in arrays.values()):
        raise MessageError(
            f"point field arrays must be (N,) or (N, k) with one N; got shapes "
            f"{ {n: a.shape for n, a in arrays.items()} }"
        )
    dtype = np.dtype(
        [(n, a.dtype) if a.ndim == 1 else (n, a.dtype, (a.shape[1],)) for n, a in arrays.items()]
    )
    count = next(iter(lengths.values()))
    points = np.empty(count, dtype=dtype)
    for name, arr in arrays.items():
        points[name] = arr
    return pointcloud_from_structured(stamp_ns, frame_id, points)


def field(cloud: PointCloud, name: str) -> npt.NDArray[Any]:
    """One field of the cloud: (N,) or (N, count); a view when native-endian, else a native copy.

    Raises:
        MessageError: no such field (the message lists the fields there are).
    """
    names = cloud.points.dtype.names or ()
    if name not in names:
        raise MessageError(f"point cloud has no field {name!r}; fields: {list(names)}")
    values = cloud.points[name]
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    return values


def _coordinate(cloud: PointCloud, name: str) -> npt.NDArray[Any]:
    """(N,) values of coordinate ``name``.

    Raises:
        MessageError: no such field, or a field with several values per point.
    """
    values = field(cloud, name)
    if values.ndim != 1:
        raise MessageError(f"point field {name!r} has {values.shape[1]} values per point; a coordinate has one")
    return values


def finite_mask(cloud: PointCloud) -> npt.NDArray[np.bool_]:
    """(N,) bool: True where x, y and z are all finite.

    Raises:
        MessageError: the cloud lacks one of x, y, z, or one has several values per point.
    """
    x, y, z = (_coordinate(cloud, name) for name in "xyz")
    mask: npt.NDArray[np.bool_] = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    return mask


@overload
def xyz(cloud: PointCloud, *, drop_nonfinite: Literal[False] = False) -> npt.NDArray[np.float32]: ...


@overload
def xyz(cloud: PointCloud, *, drop_nonfinite: Literal[True]) -> tuple[npt.NDArray[np.float32], int]: ...


def xyz(
    cloud: PointCloud, *, drop_nonfinite: bool = False
) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32], int]:
    """Coordinates as a new C-contiguous (N, 3) float32 array in the cloud's frame (metres).

    With ``drop_nonfinite=True`` rows with a NaN/inf coordinate are removed and the result is
    ``(xyz, n_dropped)``.

    Raises:
        MessageError: the cloud lacks one of x, y, z, or one has several values per point.
    """
    out = np.empty((len(cloud.points), 3), dtype=np.float32)
    for col, name in enumerate("xyz"):
        out[:, col] = _coordinate(cloud, name)
    if not drop_nonfinite:
        return out
    keep = np.isfinite(out).all(axis=1)
    kept = np.ascontiguousarray(out[keep])
    return kept, int(len(out) - len(kept))
