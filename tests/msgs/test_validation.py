"""Malformed messages give a clear MessageError (or a documented, correct payload), never a raw exception
or a silently wrong payload: PointCloud2 geometry and fields, Image / CompressedImage sizes, transforms,
vision_msgs detections, and NaN kept as data in the fixed-layout types."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import edgefuse.objects.msgs  # noqa: F401  (registers the vision_msgs conversions)
from edgefuse.errors import MessageError
from edgefuse.msgs import (
    deserialize,
    field,
    finite_mask,
    from_payload,
    get_typestore,
    pointcloud_from_structured,
    serialize,
    to_payload,
    xyz,
)
from edgefuse.msgs._common import make_msg
from edgefuse.msgs.fastpath import decode
from edgefuse.msgs.types import ImuData, NavSatFixData

TS = get_typestore()
XYZ = [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)]


def _header(frame: str = "lidar") -> Any:
    return make_msg(TS, "std_msgs/msg/Header", stamp=make_msg(TS, "builtin_interfaces/msg/Time", sec=3, nanosec=4),
                    frame_id=frame)


def _cloud(fields: list[tuple[str, int, int, int]], point_step: int, data: Any, *, height: int = 1,
           width: int | None = None, row_step: int | None = None) -> Any:
    n = len(data)
    if width is None:
        width = n // point_step // max(height, 1) if point_step else 0
    return make_msg(
        TS, "sensor_msgs/msg/PointCloud2", header=_header(), height=height, width=width,
        fields=[make_msg(TS, "sensor_msgs/msg/PointField", name=a, offset=o, datatype=d, count=c)
                for a, o, d, c in fields],
        is_bigendian=False, point_step=point_step, row_step=width * point_step if row_step is None else row_step,
        data=data, is_dense=False,
    )  # fmt: skip


# ----------------------------------------------------------------------------- PointCloud2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # item 3 of the issue: each aborted a replay with a traceback
        ({"fields": XYZ, "point_step": 2**31, "data": np.zeros(0, np.uint8), "width": 0},
         r"point_step 2147483648 outside 1\.\.2147483647"),
        ({"fields": [("x", 0, 7, 3), ("y", 12, 7, 1), ("z", 16, 7, 1)], "point_step": 20,
          "data": np.zeros(40, np.uint8)}, "'x' has count 3; coordinates hold one value per point"),
        ({"fields": [("y", 4, 7, 1), ("z", 8, 7, 1), ("intensity", 0, 7, 1)], "point_step": 12,
          "data": np.zeros(24, np.uint8)}, r"no field 'x' \(fields: \['y', 'z', 'intensity'\]\)"),
        # item 9: accepted silently
        ({"fields": XYZ, "point_step": 12, "data": np.zeros(30, np.uint8), "width": 2, "row_step": 30},
         r"height 1 has row_step 30 != width 2 \* point_step 12 = 24: its 6 extra bytes"),
        ({"fields": XYZ, "point_step": 12, "data": np.zeros(24, np.uint8), "width": 0, "row_step": 24},
         r"no points \(height 1 \* width 0\) but 24 data bytes"),
        ({"fields": XYZ, "point_step": 12, "data": np.zeros(24, np.uint8), "height": 3, "width": 0, "row_step": 8},
         r"no points \(height 3 \* width 0\) but 24 data bytes"),
        # five points from no data at all
        ({"fields": [], "point_step": 0, "data": np.zeros(0, np.uint8), "width": 5, "row_step": 0},
         r"point_step 0 outside"),
        ({"fields": [*XYZ, ("", 12, 7, 1)], "point_step": 16, "data": np.zeros(32, np.uint8)}, "empty name"),
        ({"fields": XYZ, "point_step": 12, "data": np.zeros(23, np.uint8), "width": 2},
         r"23 bytes != row_step 24 \* height 1"),
        ({"fields": XYZ, "point_step": 12, "data": np.zeros(25, np.uint8), "width": 2},
         r"25 bytes != row_step 24 \* height 1"),
    ],
)
def test_malformed_clouds_raise(kwargs: dict[str, Any], match: str) -> None:
    msg = _cloud(**kwargs)
    with pytest.raises(MessageError, match=match):
        to_payload(msg)
    raw = bytes(serialize(msg))  # the same verdict on the message read from bytes
    with pytest.raises(MessageError, match=match):
        to_payload(deserialize(raw, "sensor_msgs/msg/PointCloud2"))


def test_organized_cloud_with_wide_row_padding() -> None:
    """Rows of an organized cloud may be padded by more than one point (alignment): valid, padding skipped."""
    rng = np.random.default_rng(3)
    height, width, step, row_step = 3, 2, 12, 64
    data = rng.integers(0, 256, height * row_step, dtype=np.uint8)
    cloud = to_payload(_cloud(XYZ, step, data, height=height, width=width, row_step=row_step))
    assert cloud.points.shape == (6,)
    raw = data.tobytes()
    for k in range(6):
        r, c = divmod(k, width)
        assert cloud.points[k].tobytes()[:12] == raw[r * row_step + c * step : r * row_step + c * step + 12]


def test_count_above_one_is_a_subarray() -> None:
    """count > 1 on other fields (normals, descriptors) is supported: an (N, count) field."""
    data = np.arange(2 * 24, dtype=np.uint8)
    cloud = to_payload(_cloud([*XYZ, ("normal", 12, 7, 3)], 24, data))
    assert field(cloud, "normal").shape == (2, 3)
    np.testing.assert_array_equal(field(cloud, "normal")[1].view(np.uint8), data[24 + 12 : 48])
    assert xyz(cloud).shape == (2, 3)


def test_default_message_is_an_empty_xyz_cloud() -> None:
    msg = make_msg(TS, "sensor_msgs/msg/PointCloud2")
    cloud = to_payload(msg)
    assert cloud.points.shape == (0,) and cloud.points.dtype.names == ("x", "y", "z")
    assert xyz(cloud).shape == (0, 3)
    assert to_payload(deserialize(serialize(msg), "sensor_msgs/msg/PointCloud2")).points.shape == (0,)


def test_empty_cloud_with_fields() -> None:
    cloud = to_payload(_cloud([*XYZ, ("ring", 12, 4, 1)], 16, np.zeros(0, np.uint8), width=0))
    assert cloud.points.shape == (0,) and cloud.points.dtype.names == ("x", "y", "z", "ring")


def test_data_given_as_bytes_or_list() -> None:
    raw = np.arange(24, dtype=np.uint8)
    for data in (raw.tobytes(), bytearray(raw.tobytes()), raw.tolist()):
        cloud = to_payload(_cloud(XYZ, 12, data))
        assert cloud.points.tobytes() == raw.tobytes()
    with pytest.raises(MessageError, match="expected bytes"):
        to_payload(_cloud(XYZ, 12, [0] * 23 + [300]))
    with pytest.raises(MessageError, match="expected bytes"):
        to_payload(_cloud(XYZ, 12, np.zeros(24, np.float32)))


def test_layout_cache_keeps_verdicts() -> None:
    """The per-layout cache returns the same dtype for repeated layouts and never caches a refusal."""
    good = _cloud(XYZ, 12, np.zeros(24, np.uint8))
    assert to_payload(good).points.dtype is to_payload(good).points.dtype
    bad = _cloud(XYZ[:2], 12, np.zeros(24, np.uint8))
    for _ in range(2):
        with pytest.raises(MessageError, match="no field 'z'"):
            to_payload(bad)


def test_xyz_of_a_multivalued_coordinate_raises() -> None:
    """In-process clouds may hold anything; reading coordinates from a count-3 x is a MessageError."""
    pts = np.zeros(4, dtype=[("x", "<f4", (3,)), ("y", "<f4"), ("z", "<f4")])
    with pytest.raises(MessageError, match="'x' has 3 values per point"):
        pointcloud_from_structured(0, "l", pts)
    cloud = pointcloud_from_structured(0, "l", pts, is_dense=True)
    with pytest.raises(MessageError, match="'x' has 3 values per point"):
        xyz(cloud)
    with pytest.raises(MessageError, match="'x' has 3 values per point"):
        finite_mask(cloud)


# ----------------------------------------------------------------------------- images


def _image(height: int, width: int, encoding: str, step: int, data: Any) -> Any:
    return make_msg(TS, "sensor_msgs/msg/Image", header=_header("cam"), height=height, width=width,
                    encoding=encoding, is_bigendian=0, step=step, data=data)


def test_image_with_trailing_bytes_raises() -> None:
    with pytest.raises(MessageError, match=r"19 bytes > step 9 \* height 2 = 18: trailing bytes"):
        to_payload(_image(2, 3, "bgr8", 9, np.zeros(19, np.uint8)))


def test_image_without_pixels_but_data_raises() -> None:
    with pytest.raises(MessageError, match=r"no pixels \(0x2\) but 8 data bytes"):
        to_payload(_image(2, 0, "mono8", 4, np.zeros(8, np.uint8)))
    img = to_payload(_image(2, 0, "mono8", 0, np.zeros(0, np.uint8)))
    assert img.data.shape == (2, 0)


def test_image_data_as_bytes() -> None:
    img = to_payload(_image(2, 2, "mono16", 4, bytes(range(8))))
    assert img.data.shape == (2, 2) and img.data.dtype == np.uint16
    assert img.data.tobytes() == bytes(range(8))


def test_empty_compressed_image_raises() -> None:
    msg = make_msg(TS, "sensor_msgs/msg/CompressedImage", header=_header("cam"), format="jpeg",
                   data=np.zeros(0, np.uint8))
    with pytest.raises(MessageError, match="'jpeg'\\) has no data"):
        to_payload(msg)


# ----------------------------------------------------------------------------- transforms


def _tf(parent: str, child: str, t: list[float], q: list[float]) -> Any:
    transform = make_msg(TS, "geometry_msgs/msg/Transform",
                         translation=make_msg(TS, "geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
                         rotation=make_msg(TS, "geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]))
    return make_msg(TS, "geometry_msgs/msg/TransformStamped", header=_header(parent), child_frame_id=child,
                    transform=transform)


@pytest.mark.parametrize(
    ("parent", "child", "t", "q", "match"),
    [
        ("map", "odom", [math.nan, 0, 0], [0, 0, 0, 1], "non-finite translation"),
        ("map", "odom", [0, 0, 0], [0, 0, math.inf, 1], "non-finite"),
        ("map", "odom", [0, 0, 0], [0, 0, 0, 0], r"not unit \(squared norm 0\)"),
        ("map", "odom", [0, 0, 0], [0, 0, 0, 1.01], "not unit"),
        ("map", "odom", [0, 0, 0], [1e200, 0, 0, 1], "not unit"),
        ("", "odom", [0, 0, 0], [0, 0, 0, 1], "empty frame_id"),
        ("map", "", [0, 0, 0], [0, 0, 0, 1], "empty child_frame_id"),
        ("map", "map", [0, 0, 0], [0, 0, 0, 1], "its own parent"),
    ],
)
def test_bad_transforms_raise(parent: str, child: str, t: list[float], q: list[float], match: str) -> None:
    with pytest.raises(MessageError, match=match):
        to_payload(_tf(parent, child, t, q))
    tfm = make_msg(TS, "tf2_msgs/msg/TFMessage", transforms=[_tf("a", "b", [0, 0, 0], [0, 0, 0, 1]),
                                                              _tf(parent, child, t, q)])
    with pytest.raises(MessageError, match="TFMessage transform 1"):
        to_payload(tfm)


def test_nearly_unit_quaternion_is_kept_as_given() -> None:
    q = [0.0, 0.0, 0.0, 1.004]  # squared norm 1.008: within tf2's tolerance
    p = to_payload(_tf("map", "odom", [1, 2, 3], q))
    np.testing.assert_array_equal(p.rotation_xyzw, q)


# ----------------------------------------------------------------------------- detections


def _det3(class_id: str, ident: str, q: tuple[float, float, float, float] = (0, 0, 0, 1),
          scores: tuple[float, ...] = (0.5,)) -> Any:
    pose = make_msg(TS, "geometry_msgs/msg/Pose",
                    orientation=make_msg(TS, "geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]))
    results = [make_msg(TS, "vision_msgs/msg/ObjectHypothesisWithPose",
                        hypothesis=make_msg(TS, "vision_msgs/msg/ObjectHypothesis", class_id=class_id, score=s))
               for s in scores]
    det = make_msg(TS, "vision_msgs/msg/Detection3D", header=_header("cam"), results=results,
                   bbox=make_msg(TS, "vision_msgs/msg/BoundingBox3D", center=pose), id=ident)
    return make_msg(TS, "vision_msgs/msg/Detection3DArray", header=_header("cam"), detections=[det])


@pytest.mark.parametrize(("class_id", "ident", "match"), [
    ("99999999999", "1", "class_id '99999999999' does not fit an int32"),
    ("1_000", "1", "class_id '1_000' is neither an int32 label"),
    ("3", "99999999999999999999", "detection id '99999999999999999999' does not fit an int64"),
    ("3", "9" * 5000, "does not fit an int64"),
])
def test_overflowing_ids_raise(class_id: str, ident: str, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        to_payload(_det3(class_id, ident))


@pytest.mark.parametrize(("ident", "want"), [("--5", -1), ("²", -1), ("٣", -1), (" 12 ", 12), ("-3", -3),
                                             ("+4", 4), ("", -1), ("car7", -1)])
def test_detection_ids(ident: str, want: int) -> None:
    assert int(to_payload(_det3("2", ident)).boxes["id"][0]) == want


def test_nan_score_ranks_last() -> None:
    p = to_payload(_det3("2", "1", scores=(math.nan, 0.25, 0.75, math.nan)))
    assert p.boxes["score"][0] == 0.75


@pytest.mark.parametrize("scale", [1.0, 2.0, 0.1, 1e-200, 1e200])
def test_yaw_of_an_unnormalised_quaternion(scale: float) -> None:
    yaw = 0.7
    q = tuple(scale * c for c in (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)))
    assert to_payload(_det3("1", "1", q)).boxes["yaw"][0] == pytest.approx(yaw, abs=1e-12)  # type: ignore[arg-type]
    assert to_payload(_det3("1", "1", (0.0, 0.0, 0.0, 0.0))).boxes["yaw"][0] == 0.0


# ----------------------------------------------------------------------------- NaN is data


def test_nan_values_are_kept_by_both_paths() -> None:
    """NaN means "not available" in ROS (NavSatFix altitude, unknown covariances): kept, identically by the
    fast path and the normal path, for the estimation layer to count."""
    nan = math.nan
    fix = NavSatFixData(5, "gps", 0, 1, 42.0, -71.0, nan, np.full((3, 3), nan), 0)
    imu = ImuData(5, "imu", np.array([nan, 0, 0, 1]), np.eye(3), np.array([0.0, nan, 0.0]), np.eye(3),
                  np.array([math.inf, 0, 0]), -np.ones((3, 3)))
    for payload, name in ((fix, "sensor_msgs/msg/NavSatFix"), (imu, "sensor_msgs/msg/Imu")):
        raw = bytes(serialize(from_payload(payload)))
        slow, fast = to_payload(deserialize(raw, name)), decode(raw, name)
        for got in (slow, fast):
            for attr in ("altitude_m", "position_covariance", "orientation", "angular_velocity",
                         "linear_acceleration"):
                if hasattr(payload, attr):
                    np.testing.assert_array_equal(getattr(got, attr), getattr(payload, attr))
