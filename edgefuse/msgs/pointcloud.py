"""``sensor_msgs/PointCloud2`` ↔ :class:`PointCloud`, and helpers on point clouds.

Conversion builds a numpy structured dtype from the message's ``fields`` (names, offsets,
datatypes INT8..FLOAT64, ``count > 1`` as a sub-array, itemsize = ``point_step``, byte order from
``is_bigendian``) and views ``data`` with it **without copying**: ``points`` shares memory with the
message buffer (read-only when that buffer is).  Two cases differ:

* rows with padding (``row_step > width * point_step``): the (N,) array cannot be a view of the
  buffer, so the points are copied (one copy, row padding dropped);
* big-endian clouds keep a zero-copy view with a big-endian dtype; :func:`xyz` and :func:`field`
  return native-order copies of what they extract.

Non-finite points (NaN/inf coordinates) are kept; ``is_dense`` from the message says whether the
sender promised there are none.  :func:`finite_mask` and ``xyz(..., drop_nonfinite=True)`` drop
them.  A ``count`` of 0 in a PointField is read as 1 (some drivers write 0).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError
from edgefuse.msgs._common import header_stamp_ns, make_header, make_msg
from edgefuse.msgs.types import PointCloud

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    "DATATYPES",
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


def pointcloud_dtype(fields: Any, point_step: int, *, big_endian: bool = False) -> np.dtype[np.void]:
    """Structured dtype for PointCloud2 ``fields`` (sequence of PointField-like objects with
    ``name, offset, datatype, count``) and ``point_step`` bytes per point.

    Raises:
        MessageError: unknown datatype, duplicate name, field beyond ``point_step``, overlapping fields.
    """
    order = ">" if big_endian else "<"
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    spans: list[tuple[int, int, str]] = []
    for fld in fields:
        name, offset, datatype, count = str(fld.name), int(fld.offset), int(fld.datatype), int(fld.count)
        if datatype not in DATATYPES:
            raise MessageError(f"PointField {name!r}: unknown datatype {datatype} (expected 1..8)")
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


def pointcloud_from_msg(msg: Any) -> PointCloud:
    """Convert a ``sensor_msgs/PointCloud2`` to :class:`PointCloud` (zero-copy, see module doc).

    Raises:
        MessageError: bad field layout (see :func:`pointcloud_dtype`), ``row_step < width *
            point_step``, or ``len(data) != row_step * height``.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    dtype = pointcloud_dtype(msg.fields, point_step, big_endian=bool(msg.is_bigendian))
    data = msg.data if isinstance(msg.data, np.ndarray) else np.frombuffer(msg.data, dtype=np.uint8)
    if row_step < width * point_step:
        raise MessageError(f"PointCloud2 row_step {row_step} < width {width} * point_step {point_step}")
    if data.size != row_step * height:
        raise MessageError(
            f"PointCloud2 data has {data.size} bytes != row_step {row_step} * height {height} "
            f"= {row_step * height}"
        )
    count = height * width
    if count == 0 or point_step == 0:
        points = np.zeros(count, dtype=dtype)
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


def finite_mask(cloud: PointCloud) -> npt.NDArray[np.bool_]:
    """(N,) bool: True where x, y and z are all finite.

    Raises:
        MessageError: the cloud lacks one of x, y, z.
    """
    pts = cloud.points
    return (
        np.isfinite(field(cloud, "x")) & np.isfinite(field(cloud, "y")) & np.isfinite(field(cloud, "z"))
        if len(pts)
        else np.zeros(0, dtype=bool)
    )


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
        MessageError: the cloud lacks one of x, y, z.
    """
    out = np.empty((len(cloud.points), 3), dtype=np.float32)
    for col, name in enumerate("xyz"):
        out[:, col] = field(cloud, name)
    if not drop_nonfinite:
        return out
    keep = np.isfinite(out).all(axis=1)
    kept = np.ascontiguousarray(out[keep])
    return kept, int(len(out) - len(kept))
