"""Sample payloads of every supported type and a payload comparison, shared by msgs and bag tests."""

from __future__ import annotations

from dataclasses import fields as dc_fields
from typing import Any

import numpy as np

from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.msgs.types import (
    RADAR_RETURN_DTYPE,
    CameraInfoData,
    CompressedImageData,
    ImageData,
    ImuData,
    NavSatFixData,
    OdometryData,
    RadarScanData,
    TransformData,
)

STAMP = 1_700_000_000_123_456_789


def sample_imu(rng: np.random.Generator, stamp: int = STAMP, frame: str = "imu") -> ImuData:
    return ImuData(
        stamp,
        frame,
        rng.normal(size=4),
        rng.normal(size=(3, 3)),
        rng.normal(size=3),
        rng.normal(size=(3, 3)),
        rng.normal(size=3),
        rng.normal(size=(3, 3)),
    )


def unit_quaternion(rng: np.random.Generator) -> np.ndarray:
    """A random rotation (x, y, z, w): transforms must carry unit quaternions, as tf2 requires."""
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def sample_payloads(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    returns = np.zeros(4, dtype=RADAR_RETURN_DTYPE)
    for name in RADAR_RETURN_DTYPE.names or ():
        returns[name] = rng.normal(size=4).astype(np.float32)
    nan_cov = rng.normal(size=(3, 3))
    nan_cov[0, 0] = np.nan
    return {
        "sensor_msgs/msg/Image": ImageData(
            STAMP, "cam", "bgr8", rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)
        ),
        "sensor_msgs/msg/CompressedImage": CompressedImageData(
            STAMP, "cam", "jpeg", rng.integers(0, 255, 100, dtype=np.uint8)
        ),
        "sensor_msgs/msg/PointCloud2": pointcloud_from_arrays(
            STAMP,
            "lidar",
            x=rng.normal(size=7).astype(np.float32),
            y=rng.normal(size=7).astype(np.float32),
            z=rng.normal(size=7).astype(np.float32),
            ring=np.arange(7, dtype=np.uint16),
            t=rng.normal(size=7),
        ),
        "sensor_msgs/msg/Imu": sample_imu(rng),
        "sensor_msgs/msg/NavSatFix": NavSatFixData(STAMP, "gps", 1, 1, 42.3758, -71.1478, 13.8, nan_cov, 2),
        "sensor_msgs/msg/CameraInfo": CameraInfoData(
            STAMP,
            "cam",
            640,
            480,
            "plumb_bob",
            rng.normal(size=5),
            rng.normal(size=(3, 3)),
            np.eye(3),
            rng.normal(size=(3, 4)),
            1,
            2,
        ),
        "nav_msgs/msg/Odometry": OdometryData(
            STAMP,
            "odom",
            "base_link",
            rng.normal(size=3),
            rng.normal(size=4),
            rng.normal(size=(6, 6)),
            rng.normal(size=3),
            rng.normal(size=3),
            rng.normal(size=(6, 6)),
        ),
        "radar_msgs/msg/RadarScan": RadarScanData(STAMP, "radar", returns),
        "geometry_msgs/msg/TransformStamped": TransformData(
            STAMP, "base_link", "lidar", rng.normal(size=3), unit_quaternion(rng)
        ),
        "tf2_msgs/msg/TFMessage": [
            TransformData(STAMP, "map", "odom", rng.normal(size=3), unit_quaternion(rng)),
            TransformData(STAMP + 1, "odom", "base", rng.normal(size=3), unit_quaternion(rng)),
        ],
    }


def assert_payload_equal(a: Any, b: Any) -> None:
    if isinstance(a, list):
        assert isinstance(b, list)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_payload_equal(x, y)
        return
    assert type(a) is type(b)
    for f in dc_fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, np.ndarray):
            assert va.dtype == np.asarray(vb).dtype or va.dtype.names is None, f.name
            np.testing.assert_array_equal(va, vb, err_msg=f.name)
        else:
            assert va == vb, f.name
