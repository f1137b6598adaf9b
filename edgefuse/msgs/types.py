"""numpy-backed payloads: the working representation of sensor data inside edgefuse.

ROS messages (rosbags typestore classes) are the interchange format at the edges; these dataclasses
are what stages see.  Arrays may be zero-copy views onto the serialized message buffer; treat them
as read-only unless you copied them.

Stamps are integer nanoseconds.  Frames are ROS ``frame_id`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


@dataclass(slots=True)
class ImageData:
    """A raw image.  ``data`` is H×W (mono) or H×W×C, dtype from ``encoding`` (e.g. ``bgr8`` → uint8 ×3,
    ``32FC1`` → float32, ``16UC1`` → uint16)."""

    stamp_ns: int
    frame_id: str
    encoding: str
    data: npt.NDArray[Any]


@dataclass(slots=True)
class CompressedImageData:
    """A compressed image (``format`` e.g. ``jpeg``/``png``); ``data`` is the encoded uint8 bytes."""

    stamp_ns: int
    frame_id: str
    format: str
    data: U8


@dataclass(slots=True)
class PointCloud:
    """A point cloud as a numpy structured array with one field per PointCloud2 field.

    ``points`` has shape (N,) for unorganized clouds and keeps PointCloud2's field names
    (``x``, ``y``, ``z``, ``intensity``, ``ring``, ``t``/``time``/``timestamp`` …), possibly with padding
    between fields (point_step larger than the fields).  ``height``/``width`` keep the organization
    (N == height*width).  Use :func:`edgefuse.msgs.xyz` for an (N, 3) float32 array.
    """

    stamp_ns: int
    frame_id: str
    points: npt.NDArray[np.void]
    height: int = 1
    width: int = 0
    is_dense: bool = False


@dataclass(slots=True)
class ImuData:
    """One IMU sample (``sensor_msgs/Imu``).  Quaternion is (x, y, z, w); covariances are 3×3."""

    stamp_ns: int
    frame_id: str
    orientation: F64
    orientation_covariance: F64
    angular_velocity: F64
    angular_velocity_covariance: F64
    linear_acceleration: F64
    linear_acceleration_covariance: F64


@dataclass(slots=True)
class ImuBatch:
    """Several IMU samples as arrays: stamps (N,) int64 ns, gyro (N, 3) rad/s, accel (N, 3) m/s²,
    orientation (N, 4) xyzw."""

    stamps_ns: npt.NDArray[np.int64]
    angular_velocity: F64
    linear_acceleration: F64
    orientation: F64 = field(default_factory=lambda: np.zeros((0, 4)))
    frame_id: str = ""


@dataclass(slots=True)
class NavSatFixData:
    """A GNSS fix (``sensor_msgs/NavSatFix``).  status: -1 no fix, 0 fix, 1 SBAS, 2 GBAS."""

    stamp_ns: int
    frame_id: str
    status: int
    service: int
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    position_covariance: F64
    position_covariance_type: int


@dataclass(slots=True)
class CameraInfoData:
    """Camera calibration as published (``sensor_msgs/CameraInfo``): K 3×3, D (n,), R 3×3, P 3×4."""

    stamp_ns: int
    frame_id: str
    width: int
    height: int
    distortion_model: str
    d: F64
    k: F64
    r: F64
    p: F64
    binning_x: int = 0
    binning_y: int = 0


@dataclass(slots=True)
class OdometryData:
    """``nav_msgs/Odometry``: pose of ``child_frame_id`` in ``frame_id``; covariances 6×6."""

    stamp_ns: int
    frame_id: str
    child_frame_id: str
    position: F64
    orientation: F64
    pose_covariance: F64
    linear_velocity: F64
    angular_velocity: F64
    twist_covariance: F64


@dataclass(slots=True)
class TensorData:
    """A tensor a model produced or takes (``onnx_model`` stage ports of edge type ``Tensor``): ``data`` of any
    shape and dtype, as the model card declares it.  Not publishable as a ROS message."""

    stamp_ns: int
    frame_id: str
    data: npt.NDArray[Any]


RADAR_RETURN_DTYPE = np.dtype(
    [
        ("range", np.float32),
        ("azimuth", np.float32),
        ("elevation", np.float32),
        ("doppler_velocity", np.float32),
        ("amplitude", np.float32),
    ]
)


@dataclass(slots=True)
class RadarScanData:
    """``radar_msgs/RadarScan``: returns as a structured array of :data:`RADAR_RETURN_DTYPE`
    (range m, azimuth/elevation rad, doppler m/s, amplitude dB)."""

    stamp_ns: int
    frame_id: str
    returns: npt.NDArray[np.void]


#: one ``radar_msgs/RadarTrack`` (ROS 2): ``uuid`` 16 bytes, position/velocity/acceleration/size (x, y, z) in
#: the radar's frame [m, m/s, m/s², m], ``classification`` (0 none, 1 static, 2 dynamic, ≥ 32000 vendor
#: classes), covariances as upper triangles (xx, xy, xz, yy, yz, zz)
RADAR_TRACK_DTYPE = np.dtype(
    [
        ("uuid", np.uint8, (16,)),
        ("position", np.float64, (3,)),
        ("velocity", np.float64, (3,)),
        ("acceleration", np.float64, (3,)),
        ("size", np.float64, (3,)),
        ("classification", np.uint16),
        ("position_covariance", np.float32, (6,)),
        ("velocity_covariance", np.float32, (6,)),
        ("acceleration_covariance", np.float32, (6,)),
        ("size_covariance", np.float32, (6,)),
    ]
)
#: ``radar_msgs/RadarTrack`` classification constants
RADAR_TRACK_NO_CLASSIFICATION, RADAR_TRACK_STATIC, RADAR_TRACK_DYNAMIC = 0, 1, 2


@dataclass(slots=True)
class RadarTracksData:
    """``radar_msgs/RadarTracks``: tracked objects as a structured array of :data:`RADAR_TRACK_DTYPE`."""

    stamp_ns: int
    frame_id: str
    tracks: npt.NDArray[np.void]


@dataclass(slots=True)
class TransformData:
    """One ``geometry_msgs/TransformStamped``: ``T_parent_from_child`` as translation + quaternion xyzw."""

    stamp_ns: int
    parent_frame: str
    child_frame: str
    translation: F64
    rotation_xyzw: F64
