"""Sample message contents shared by the ROS 2 transport tests and their rclpy peer process (numpy only).

Both sides build their messages from these plain values, each with its own library (rclpy's generated classes
in the peer, edgefuse's typestore in the tests), and compare what they decode against them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

CLOUD_POINTS = 120_000
#: x, y, z float32 (sensor_msgs/PointField.FLOAT32 = 7), little endian
CLOUD_FIELDS = [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)]
CLOUD_POINT_STEP = 12


def text(i: int) -> str:
    return f"edgefuse <-> rclpy #{i}: grüße, 東京"


def imu(i: int) -> dict[str, Any]:
    """Header stamp, frame and the vectors of IMU sample ``i``."""
    return {
        "sec": 1_700_000_000 + i,
        "nanosec": 123_456_789,
        "frame_id": "imu_link",
        "orientation": [0.0, 0.0, np.sin(0.1 * i), np.cos(0.1 * i)],
        "angular_velocity": [0.01 * i, -0.02, 0.5],
        "linear_acceleration": [0.1, 0.2 * i, 9.81],
        "orientation_covariance": [0.001 * k for k in range(9)],
        "angular_velocity_covariance": [0.002 * k for k in range(9)],
        "linear_acceleration_covariance": [0.003 * k for k in range(9)],
    }


def cloud_xyz(i: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The (CLOUD_POINTS, 3) float32 points of cloud ``i``."""
    rng = np.random.default_rng(1000 + i)
    return rng.uniform(-80.0, 80.0, size=(CLOUD_POINTS, 3)).astype("<f4")


def cloud_stamp(i: int) -> tuple[int, int]:
    return 1_700_000_100 + i, 5_000 * i


def digest(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()
