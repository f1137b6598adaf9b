"""PointCloud2 ↔ PointCloud: zero-copy views, any field layout, padding, endianness, bad layouts."""

from __future__ import annotations

import contextlib
import struct
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore as rosbags_typestore

from edgefuse.errors import MessageError
from edgefuse.msgs import (
    deserialize,
    field,
    finite_mask,
    from_payload,
    get_typestore,
    pointcloud_from_arrays,
    pointcloud_from_structured,
    serialize,
    to_payload,
    xyz,
)
from edgefuse.msgs.pointcloud import DATATYPES

_STRUCT = {1: "b", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 8: "d"}


def _cloud_msg(
    fields: list[tuple[str, int, int, int]],
    point_step: int,
    data: np.ndarray,
    *,
    height: int = 1,
    width: int | None = None,
    row_step: int | None = None,
    big: bool = False,
    ts: Any = None,
) -> Any:
    ts = ts or get_typestore()
    pf = ts.types["sensor_msgs/msg/PointField"]
    header_fields = {n for n, _ in ts.fielddefs["std_msgs/msg/Header"][1]}
    stamp = ts.types["builtin_interfaces/msg/Time"](sec=10, nanosec=20)
    header = ts.types["std_msgs/msg/Header"](
        **({"seq": 0} if "seq" in header_fields else {}), stamp=stamp, frame_id="lidar"
    )
    if width is None:
        width = len(data) // point_step // height
    return ts.types["sensor_msgs/msg/PointCloud2"](
        header=header,
        height=height,
        width=width,
        fields=[pf(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        is_bigendian=big,
        point_step=point_step,
        row_step=row_step if row_step is not None else width * point_step,
        data=data,
        is_dense=False,
    )


def _reference_decode(
    fields: list[tuple[str, int, int, int]],
    *,
    point_step: int,
    row_step: int,
    height: int,
    width: int,
    raw: bytes,
    big: bool,
) -> dict[str, list[Any]]:
    """Slow, obvious decoder: struct.unpack_from per point and field."""
    order = ">" if big else "<"
    out: dict[str, list[Any]] = {n: [] for n, _, _, _ in fields}
    for row in range(height):
        for col in range(width):
            base = row * row_step + col * point_step
            for name, offset, datatype, count in fields:
                fmt = order + _STRUCT[datatype] * max(count, 1)
                values = struct.unpack_from(fmt, raw, base + offset)
                out[name].append(values[0] if len(values) == 1 else list(values))
    return out


# A realistic Ouster/Velodyne-like layout with padding, a uint16 ring, a float64 time and a count-3 field.
LAYOUT = [
    ("x", 0, 7, 1),
    ("y", 4, 7, 1),
    ("z", 8, 7, 1),
    ("intensity", 16, 7, 1),
    ("ring", 20, 4, 1),
    ("t", 24, 8, 1),
    ("normal", 32, 7, 3),
]
STEP = 48


def _random_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    data = rng.integers(0, 255, n, dtype=np.uint8)
    return data


@pytest.mark.parametrize("big", [False, True])
def test_layout_matches_reference(big: bool) -> None:
    rng = np.random.default_rng(21)
    n = 9
    data = _random_bytes(rng, n * STEP)
    cloud = to_payload(_cloud_msg(LAYOUT, STEP, data, big=big))
    assert cloud.points.dtype.itemsize == STEP
    assert cloud.points.shape == (n,)
    assert np.shares_memory(cloud.points, data)
    ref = _reference_decode(
        LAYOUT, point_step=STEP, row_step=n * STEP, height=1, width=n, raw=data.tobytes(), big=big
    )
    for name, _, _, count in LAYOUT:
        got = field(cloud, name)
        assert got.dtype.isnative
        assert got.shape == ((n,) if count == 1 else (n, count))
        np.testing.assert_array_equal(got, np.array(ref[name], dtype=got.dtype))


def test_zero_copy_from_cdr_buffer() -> None:
    rng = np.random.default_rng(22)
    cloud = pointcloud_from_arrays(
        5,
        "lidar",
        x=rng.normal(size=50).astype(np.float32),
        y=rng.normal(size=50).astype(np.float32),
        z=rng.normal(size=50).astype(np.float32),
    )
    raw = bytes(serialize(from_payload(cloud), "sensor_msgs/msg/PointCloud2"))
    msg = deserialize(raw, "sensor_msgs/msg/PointCloud2")
    back = to_payload(msg)
    buffer = np.frombuffer(raw, dtype=np.uint8)
    assert np.shares_memory(back.points, buffer)
    assert not back.points.flags.writeable  # a view of immutable bytes
    np.testing.assert_array_equal(back.points, cloud.points)
    # also through a memoryview of a bytearray
    ba = bytearray(raw)
    back2 = to_payload(deserialize(memoryview(ba), "sensor_msgs/msg/PointCloud2"))
    assert np.shares_memory(back2.points, np.frombuffer(ba, np.uint8))


def test_zero_copy_from_ros1_buffer() -> None:
    noetic = rosbags_typestore(Stores.ROS1_NOETIC)
    rng = np.random.default_rng(23)
    data = _random_bytes(rng, 4 * STEP)
    raw = bytes(
        serialize(
            _cloud_msg(LAYOUT, STEP, data, ts=noetic),
            "sensor_msgs/msg/PointCloud2",
            fmt="ros1",
            typestore=noetic,
        )
    )
    back = to_payload(deserialize(raw, "sensor_msgs/PointCloud2", fmt="ros1", typestore=noetic))
    assert np.shares_memory(back.points, np.frombuffer(raw, np.uint8))
    assert back.stamp_ns == 10 * 10**9 + 20


def test_organized_cloud_with_row_padding_is_copied_correctly() -> None:
    rng = np.random.default_rng(24)
    height, width, row_step = 3, 4, 4 * STEP + 13
    data = _random_bytes(rng, height * row_step)
    cloud = to_payload(_cloud_msg(LAYOUT, STEP, data, height=height, width=width, row_step=row_step))
    assert (cloud.height, cloud.width, cloud.points.shape) == (3, 4, (12,))
    ref = _reference_decode(
        LAYOUT, point_step=STEP, row_step=row_step, height=height, width=width, raw=data.tobytes(), big=False
    )
    np.testing.assert_array_equal(field(cloud, "ring"), np.array(ref["ring"], dtype=np.uint16))
    np.testing.assert_array_equal(field(cloud, "normal"), np.array(ref["normal"], dtype=np.float32))


def test_organized_cloud_without_padding_is_a_view() -> None:
    data = np.zeros(2 * 3 * STEP, dtype=np.uint8)
    cloud = to_payload(_cloud_msg(LAYOUT, STEP, data, height=2, width=3))
    assert cloud.points.shape == (6,)
    assert np.shares_memory(cloud.points, data)


@pytest.mark.parametrize(
    ("fields", "step", "nbytes", "kwargs", "match"),
    [
        (
            [("x", 0, 7, 1), ("y", 2, 7, 1)],
            8,
            16,
            {},
            r"'x' \(ends at byte 4\) and 'y' \(starts at byte 2\) overlap",
        ),
        ([("x", 0, 7, 1), ("y", 4, 8, 1)], 8, 16, {}, r"'y' spans bytes 4..12 beyond point_step 8"),
        ([("x", 0, 7, 3)], 8, 16, {}, r"'x' spans bytes 0..12 beyond point_step 8"),
        ([("x", 0, 9, 1)], 8, 16, {}, "unknown datatype 9"),
        ([("x", 0, 7, 1)], 8, 15, {"width": 2}, r"data has 15 bytes != row_step 16 \* height 1 = 16"),
        ([("x", 0, 7, 1)], 8, 16, {"width": 2, "row_step": 12}, r"row_step 12 < width 2 \* point_step 8"),
        ([("x", 0, 7, 1), ("x", 4, 7, 1)], 8, 16, {}, "'x' appears twice"),
    ],
)
def test_bad_layouts(
    fields: list[tuple[str, int, int, int]], step: int, nbytes: int, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(MessageError, match=match):
        to_payload(_cloud_msg(fields, step, np.zeros(nbytes, np.uint8), **kwargs))


def test_nonfinite_points_kept_and_dropped_on_request() -> None:
    x = np.array([1.0, np.nan, 3.0, np.inf, 5.0], dtype=np.float32)
    y = np.arange(5, dtype=np.float32)
    z = np.array([0.0, 0.0, 0.0, 0.0, -np.inf], dtype=np.float32)
    cloud = pointcloud_from_arrays(1, "l", x=x, y=y, z=z)
    assert not cloud.is_dense
    back = to_payload(from_payload(cloud))
    assert len(back.points) == 5
    np.testing.assert_array_equal(finite_mask(back), [True, False, True, False, False])
    all_pts = xyz(back)
    assert all_pts.shape == (5, 3)
    assert all_pts.flags.c_contiguous
    assert all_pts.dtype == np.float32
    kept, dropped = xyz(back, drop_nonfinite=True)
    assert dropped == 3
    np.testing.assert_array_equal(kept, [[1, 0, 0], [3, 2, 0]])
    assert kept.flags.c_contiguous


def test_rgb_packed_float_and_missing_field() -> None:
    rgb = np.array([0x00FF8040, 0x00102030], dtype=np.uint32).view(np.float32)
    cloud = pointcloud_from_arrays(
        1, "cam", x=np.zeros(2, np.float32), y=np.zeros(2, np.float32), z=np.zeros(2, np.float32), rgb=rgb
    )
    back = to_payload(from_payload(cloud))
    assert field(back, "rgb").view(np.uint32).tolist() == [0x00FF8040, 0x00102030]
    with pytest.raises(MessageError, match=r"no field 'intensity'; fields: \['x', 'y', 'z', 'rgb'\]"):
        field(back, "intensity")


def test_structured_with_padding_roundtrip() -> None:
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "time"],
            "formats": ["<f4", "<f4", "<f4", "<f8"],
            "offsets": [0, 4, 8, 16],
            "itemsize": 32,
        }
    )
    rng = np.random.default_rng(25)
    pts = np.zeros(6, dtype=dtype)
    for name in dtype.names or ():
        pts[name] = rng.normal(size=6)
    cloud = pointcloud_from_structured(99, "lidar", pts, height=2)
    msg = from_payload(cloud)
    assert (msg.point_step, msg.row_step, msg.height, msg.width) == (32, 96, 2, 3)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
        ("time", 16, 8, 1),
    ]
    back = to_payload(deserialize(serialize(msg), "sensor_msgs/msg/PointCloud2"))
    assert back.points.dtype == dtype
    np.testing.assert_array_equal(back.points, pts)


def test_from_arrays_errors() -> None:
    with pytest.raises(MessageError, match="at least one field"):
        pointcloud_from_arrays(0, "l")
    with pytest.raises(MessageError, match="one N"):
        pointcloud_from_arrays(0, "l", x=np.zeros(3), y=np.zeros(4))
    with pytest.raises(MessageError, match="no PointField datatype"):
        from_payload(pointcloud_from_arrays(0, "l", x=np.zeros(3, dtype=np.int64)))


def test_empty_cloud() -> None:
    cloud = pointcloud_from_arrays(
        0, "l", x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), z=np.zeros(0, np.float32)
    )
    back = to_payload(deserialize(serialize(from_payload(cloud)), "sensor_msgs/msg/PointCloud2"))
    assert back.points.shape == (0,)
    assert xyz(back).shape == (0, 3)


@settings(max_examples=60, deadline=None)
@given(
    types=st.lists(st.sampled_from(sorted(DATATYPES)), min_size=1, max_size=5),
    counts=st.lists(st.integers(1, 3), min_size=5, max_size=5),
    gaps=st.lists(st.integers(0, 3), min_size=6, max_size=6),
    n=st.integers(0, 6),
    big=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_layouts_match_reference(
    *, types: list[int], counts: list[int], gaps: list[int], n: int, big: bool, seed: int
) -> None:
    fields = [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)]  # a point cloud has coordinates
    offset = 12
    for i, datatype in enumerate(types):
        offset += gaps[i]
        fields.append((f"f{i}", offset, datatype, counts[i]))
        offset += np.dtype(DATATYPES[datatype]).itemsize * counts[i]
    step = offset + gaps[-1]
    data = np.random.default_rng(seed).integers(0, 255, n * step, dtype=np.uint8)
    cloud = to_payload(_cloud_msg(fields, step, data, width=n, big=big))
    ref = _reference_decode(
        fields, point_step=step, row_step=n * step, height=1, width=n, raw=data.tobytes(), big=big
    )
    for name, _, _, _ in fields:
        got = field(cloud, name)
        want = np.array(ref[name], dtype=got.dtype).reshape(got.shape)
        if got.dtype.kind == "f":
            # the struct-based reference goes through Python floats, which quiets signalling NaNs:
            # compare values (NaN == NaN), not bits, for floating fields
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_array_equal(
                np.ascontiguousarray(got).view(np.uint8), want.view(np.uint8)
            )  # bitwise


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    formats: tuple[Literal["cdr", "ros1"], ...] = ("cdr", "ros1")
    for fmt in formats:
        try:
            data = b"\x00\x01\x00\x00" + raw if fmt == "cdr" else raw
            msg = deserialize(data, "sensor_msgs/msg/PointCloud2", fmt=fmt)
        except MessageError:
            continue
        with contextlib.suppress(MessageError):
            to_payload(msg)
