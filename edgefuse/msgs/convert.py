"""Dispatch between rosbags messages and edgefuse payloads: :func:`to_payload`, :func:`from_payload`.

Supported message types (ROS 1 names like ``sensor_msgs/Imu`` are accepted and normalised):

====================================  ===========================================
``sensor_msgs/msg/Image``             :class:`ImageData`
``sensor_msgs/msg/CompressedImage``   :class:`CompressedImageData`
``sensor_msgs/msg/PointCloud2``       :class:`PointCloud`
``sensor_msgs/msg/Imu``               :class:`ImuData`
``sensor_msgs/msg/NavSatFix``         :class:`NavSatFixData`
``sensor_msgs/msg/CameraInfo``        :class:`CameraInfoData`
``nav_msgs/msg/Odometry``             :class:`OdometryData`
``radar_msgs/msg/RadarScan``          :class:`RadarScanData`
``radar_msgs/msg/RadarTracks``        :class:`RadarTracksData`
``geometry_msgs/msg/TransformStamped``  :class:`TransformData`
``tf2_msgs/msg/TFMessage``            ``list[TransformData]``
====================================  ===========================================

Values are copied as given, NaN and infinity included: ROS uses NaN for "not available" (e.g.
NavSatFix altitude, covariance entries some drivers leave unknown) and ``-1`` in a covariance's
element 0 for "no estimate", so a NaN is data, not a malformed message.  Consumers check them: the
estimation layer rejects and counts non-finite measurements per reason (see
:mod:`edgefuse.estimation.sensors`), ``finite_mask`` drops non-finite points.  Sizes are checked
(fixed-size arrays, image/cloud buffers against their headers: see :mod:`edgefuse.msgs.image` and
:mod:`edgefuse.msgs.pointcloud`).

Transforms are the exception: a transform is applied to everything in its child frame, so a
``TransformStamped`` (alone or in a ``TFMessage``) must pass the checks tf2's ``BufferCore``
applies before it stores one — finite translation and rotation, a rotation quaternion whose
squared norm is within :data:`QUATERNION_NORM_TOLERANCE` of 1, non-empty parent and child frames
that differ — or the message raises :class:`~edgefuse.errors.MessageError` naming the transform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edgefuse.errors import MessageError
from edgefuse.msgs import image as _image
from edgefuse.msgs import pointcloud as _pointcloud
from edgefuse.msgs._common import (
    as_f64,
    get_field,
    header_stamp_ns,
    make_header,
    make_msg,
    xyz_of,
    xyzw_of,
)
from edgefuse.msgs.types import (
    RADAR_RETURN_DTYPE,
    RADAR_TRACK_DTYPE,
    CameraInfoData,
    CompressedImageData,
    ImageData,
    ImuBatch,
    ImuData,
    NavSatFixData,
    OdometryData,
    PointCloud,
    RadarScanData,
    RadarTracksData,
    TransformData,
)
from edgefuse.msgs.typestore import get_typestore, normalize_msgtype
from edgefuse.time import ns_from_ros

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    "QUATERNION_NORM_TOLERANCE",
    "SUPPORTED_MSGTYPES",
    "can_convert",
    "decode_to_payload",
    "from_payload",
    "imu_batch",
    "to_payload",
]

#: largest accepted ``|x² + y² + z² + w² - 1|`` of a transform's rotation (tf2's
#: ``QUATERNION_NORMALIZATION_TOLERANCE``)
QUATERNION_NORM_TOLERANCE = 10e-3


# ----------------------------------------------------------------------------- messages → payloads


def _imu(msg: Any) -> ImuData:
    return ImuData(
        stamp_ns=header_stamp_ns(msg),
        frame_id=str(msg.header.frame_id),
        orientation=xyzw_of(msg.orientation),
        orientation_covariance=as_f64(msg.orientation_covariance, (3, 3), "Imu orientation_covariance"),
        angular_velocity=xyz_of(msg.angular_velocity),
        angular_velocity_covariance=as_f64(
            msg.angular_velocity_covariance, (3, 3), "Imu angular_velocity_covariance"
        ),
        linear_acceleration=xyz_of(msg.linear_acceleration),
        linear_acceleration_covariance=as_f64(
            msg.linear_acceleration_covariance, (3, 3), "Imu linear_acceleration_covariance"
        ),
    )


def _navsat(msg: Any) -> NavSatFixData:
    return NavSatFixData(
        stamp_ns=header_stamp_ns(msg),
        frame_id=str(msg.header.frame_id),
        status=int(msg.status.status),
        service=int(msg.status.service),
        latitude_deg=float(msg.latitude),
        longitude_deg=float(msg.longitude),
        altitude_m=float(msg.altitude),
        position_covariance=as_f64(msg.position_covariance, (3, 3), "NavSatFix position_covariance"),
        position_covariance_type=int(msg.position_covariance_type),
    )


def _camera_info(msg: Any) -> CameraInfoData:
    d = np.asarray(get_field(msg, "d"), dtype=np.float64)
    return CameraInfoData(
        stamp_ns=header_stamp_ns(msg),
        frame_id=str(msg.header.frame_id),
        width=int(msg.width),
        height=int(msg.height),
        distortion_model=str(msg.distortion_model),
        d=d.reshape(-1).copy(),
        k=as_f64(get_field(msg, "k"), (3, 3), "CameraInfo k"),
        r=as_f64(get_field(msg, "r"), (3, 3), "CameraInfo r"),
        p=as_f64(get_field(msg, "p"), (3, 4), "CameraInfo p"),
        binning_x=int(msg.binning_x),
        binning_y=int(msg.binning_y),
    )


def _odometry(msg: Any) -> OdometryData:
    return OdometryData(
        stamp_ns=header_stamp_ns(msg),
        frame_id=str(msg.header.frame_id),
        child_frame_id=str(msg.child_frame_id),
        position=xyz_of(msg.pose.pose.position),
        orientation=xyzw_of(msg.pose.pose.orientation),
        pose_covariance=as_f64(msg.pose.covariance, (6, 6), "Odometry pose covariance"),
        linear_velocity=xyz_of(msg.twist.twist.linear),
        angular_velocity=xyz_of(msg.twist.twist.angular),
        twist_covariance=as_f64(msg.twist.covariance, (6, 6), "Odometry twist covariance"),
    )


def _radar_scan(msg: Any) -> RadarScanData:
    returns = np.empty(len(msg.returns), dtype=RADAR_RETURN_DTYPE)
    for i, ret in enumerate(msg.returns):
        returns[i] = (ret.range, ret.azimuth, ret.elevation, ret.doppler_velocity, ret.amplitude)
    return RadarScanData(stamp_ns=header_stamp_ns(msg), frame_id=str(msg.header.frame_id), returns=returns)


def _radar_tracks(msg: Any) -> RadarTracksData:
    tracks = np.zeros(len(msg.tracks), dtype=RADAR_TRACK_DTYPE)
    for i, t in enumerate(msg.tracks):
        tracks[i]["uuid"] = as_f64(t.uuid.uuid, (16,), "RadarTrack uuid").astype(np.uint8)
        for name in ("position", "velocity", "acceleration", "size"):
            tracks[i][name] = xyz_of(getattr(t, name))
        tracks[i]["classification"] = int(t.classification)
        for name in ("position_covariance", "velocity_covariance", "acceleration_covariance", "size_covariance"):
            tracks[i][name] = as_f64(getattr(t, name), (6,), f"RadarTrack {name}")
    return RadarTracksData(stamp_ns=header_stamp_ns(msg), frame_id=str(msg.header.frame_id), tracks=tracks)


def _transform(msg: Any, where: str = "TransformStamped") -> TransformData:
    parent, child = str(msg.header.frame_id), str(msg.child_frame_id)
    translation = xyz_of(msg.transform.translation)
    rotation = xyzw_of(msg.transform.rotation)
    what = f"{where} {parent!r} <- {child!r}"
    if not parent or not child:
        raise MessageError(f"{what}: empty {'frame_id' if not parent else 'child_frame_id'}")
    if parent == child:
        raise MessageError(f"{what}: a frame cannot be its own parent")
    if not (np.isfinite(translation).all() and np.isfinite(rotation).all()):
        raise MessageError(f"{what}: non-finite translation {translation.tolist()} or rotation {rotation.tolist()}")
    norm2 = sum(c * c for c in rotation.tolist())  # Python floats: a huge component gives inf, no warning
    if abs(norm2 - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise MessageError(f"{what}: rotation quaternion {rotation.tolist()} is not unit (squared norm {norm2:.6g})")
    return TransformData(
        stamp_ns=header_stamp_ns(msg),
        parent_frame=parent,
        child_frame=child,
        translation=translation,
        rotation_xyzw=rotation,
    )


def _tf_message(msg: Any) -> list[TransformData]:
    return [_transform(t, f"TFMessage transform {i}") for i, t in enumerate(msg.transforms)]


# ----------------------------------------------------------------------------- payloads → messages


def _vec3(ts: Typestore, typename: str, value: Any, what: str) -> Any:
    x, y, z = as_f64(value, (3,), what)
    return make_msg(ts, typename, x=x, y=y, z=z)


def _quat(ts: Typestore, value: Any, what: str) -> Any:
    x, y, z, w = as_f64(value, (4,), what)
    return make_msg(ts, "geometry_msgs/msg/Quaternion", x=x, y=y, z=z, w=w)


def _msg_imu(ts: Typestore, p: ImuData) -> Any:
    return make_msg(
        ts,
        "sensor_msgs/msg/Imu",
        header=make_header(ts, p.stamp_ns, p.frame_id),
        orientation=_quat(ts, p.orientation, "Imu orientation"),
        orientation_covariance=as_f64(p.orientation_covariance, (3, 3), "Imu orientation_covariance").ravel(),
        angular_velocity=_vec3(ts, "geometry_msgs/msg/Vector3", p.angular_velocity, "Imu angular_velocity"),
        angular_velocity_covariance=as_f64(
            p.angular_velocity_covariance, (3, 3), "Imu angular_velocity_covariance"
        ).ravel(),
        linear_acceleration=_vec3(
            ts, "geometry_msgs/msg/Vector3", p.linear_acceleration, "Imu linear_acceleration"
        ),
        linear_acceleration_covariance=as_f64(
            p.linear_acceleration_covariance, (3, 3), "Imu linear_acceleration_covariance"
        ).ravel(),
    )


def _msg_navsat(ts: Typestore, p: NavSatFixData) -> Any:
    return make_msg(
        ts,
        "sensor_msgs/msg/NavSatFix",
        header=make_header(ts, p.stamp_ns, p.frame_id),
        status=make_msg(ts, "sensor_msgs/msg/NavSatStatus", status=int(p.status), service=int(p.service)),
        latitude=float(p.latitude_deg),
        longitude=float(p.longitude_deg),
        altitude=float(p.altitude_m),
        position_covariance=as_f64(p.position_covariance, (3, 3), "NavSatFix position_covariance").ravel(),
        position_covariance_type=int(p.position_covariance_type),
    )


def _msg_camera_info(ts: Typestore, p: CameraInfoData) -> Any:
    d = np.asarray(p.d, dtype=np.float64)
    if d.ndim != 1:
        raise MessageError(f"CameraInfo d: expected a 1-D array, got shape {d.shape}")
    return make_msg(
        ts,
        "sensor_msgs/msg/CameraInfo",
        header=make_header(ts, p.stamp_ns, p.frame_id),
        height=int(p.height),
        width=int(p.width),
        distortion_model=p.distortion_model,
        d=d.copy(),
        k=as_f64(p.k, (3, 3), "CameraInfo k").ravel(),
        r=as_f64(p.r, (3, 3), "CameraInfo r").ravel(),
        p=as_f64(p.p, (3, 4), "CameraInfo p").ravel(),
        binning_x=int(p.binning_x),
        binning_y=int(p.binning_y),
    )


def _msg_odometry(ts: Typestore, p: OdometryData) -> Any:
    pose = make_msg(
        ts,
        "geometry_msgs/msg/Pose",
        position=_vec3(ts, "geometry_msgs/msg/Point", p.position, "Odometry position"),
        orientation=_quat(ts, p.orientation, "Odometry orientation"),
    )
    twist = make_msg(
        ts,
        "geometry_msgs/msg/Twist",
        linear=_vec3(ts, "geometry_msgs/msg/Vector3", p.linear_velocity, "Odometry linear_velocity"),
        angular=_vec3(ts, "geometry_msgs/msg/Vector3", p.angular_velocity, "Odometry angular_velocity"),
    )
    return make_msg(
        ts,
        "nav_msgs/msg/Odometry",
        header=make_header(ts, p.stamp_ns, p.frame_id),
        child_frame_id=p.child_frame_id,
        pose=make_msg(
            ts,
            "geometry_msgs/msg/PoseWithCovariance",
            pose=pose,
            covariance=as_f64(p.pose_covariance, (6, 6), "Odometry pose covariance").ravel(),
        ),
        twist=make_msg(
            ts,
            "geometry_msgs/msg/TwistWithCovariance",
            twist=twist,
            covariance=as_f64(p.twist_covariance, (6, 6), "Odometry twist covariance").ravel(),
        ),
    )


def _msg_radar_scan(ts: Typestore, p: RadarScanData) -> Any:
    returns = np.asarray(p.returns).reshape(-1)
    missing = [n for n in RADAR_RETURN_DTYPE.names or () if n not in (returns.dtype.names or ())]
    if missing:
        raise MessageError(f"RadarScan returns lack field(s) {missing}")
    cls = ts.types["radar_msgs/msg/RadarReturn"]
    items = [
        cls(
            range=float(r["range"]),
            azimuth=float(r["azimuth"]),
            elevation=float(r["elevation"]),
            doppler_velocity=float(r["doppler_velocity"]),
            amplitude=float(r["amplitude"]),
        )
        for r in returns
    ]
    return make_msg(
        ts, "radar_msgs/msg/RadarScan", header=make_header(ts, p.stamp_ns, p.frame_id), returns=items
    )


def _msg_radar_tracks(ts: Typestore, p: RadarTracksData) -> Any:
    tracks = np.asarray(p.tracks).reshape(-1)
    missing = [n for n in RADAR_TRACK_DTYPE.names or () if n not in (tracks.dtype.names or ())]
    if missing:
        raise MessageError(f"RadarTracks tracks lack field(s) {missing}")
    items = []
    for t in tracks:
        uuid = np.asarray(t["uuid"]).reshape(-1)
        if uuid.shape != (16,):
            raise MessageError(f"RadarTrack uuid must have 16 bytes, not {uuid.size}")
        items.append(make_msg(
            ts,
            "radar_msgs/msg/RadarTrack",
            uuid=make_msg(ts, "unique_identifier_msgs/msg/UUID", uuid=uuid.astype(np.uint8)),
            position=_vec3(ts, "geometry_msgs/msg/Point", t["position"], "RadarTrack position"),
            velocity=_vec3(ts, "geometry_msgs/msg/Vector3", t["velocity"], "RadarTrack velocity"),
            acceleration=_vec3(ts, "geometry_msgs/msg/Vector3", t["acceleration"], "RadarTrack acceleration"),
            size=_vec3(ts, "geometry_msgs/msg/Vector3", t["size"], "RadarTrack size"),
            classification=int(t["classification"]),
            **{name: np.asarray(t[name], np.float32).reshape(6) for name in (
                "position_covariance", "velocity_covariance", "acceleration_covariance", "size_covariance")},
        ))
    return make_msg(
        ts, "radar_msgs/msg/RadarTracks", header=make_header(ts, p.stamp_ns, p.frame_id), tracks=items
    )


def _msg_transform(ts: Typestore, p: TransformData) -> Any:
    transform = make_msg(
        ts,
        "geometry_msgs/msg/Transform",
        translation=_vec3(ts, "geometry_msgs/msg/Vector3", p.translation, "transform translation"),
        rotation=_quat(ts, p.rotation_xyzw, "transform rotation"),
    )
    return make_msg(
        ts,
        "geometry_msgs/msg/TransformStamped",
        header=make_header(ts, p.stamp_ns, p.parent_frame),
        child_frame_id=p.child_frame,
        transform=transform,
    )


def _msg_tf(ts: Typestore, p: Sequence[TransformData]) -> Any:
    if not all(isinstance(t, TransformData) for t in p):
        raise MessageError("TFMessage payload must be a list of TransformData")
    return make_msg(ts, "tf2_msgs/msg/TFMessage", transforms=[_msg_transform(ts, t) for t in p])


# ----------------------------------------------------------------------------- dispatch

_TO: dict[str, Callable[[Any], Any]] = {
    "sensor_msgs/msg/Image": _image.image_from_msg,
    "sensor_msgs/msg/CompressedImage": _image.compressed_from_msg,
    "sensor_msgs/msg/PointCloud2": _pointcloud.pointcloud_from_msg,
    "sensor_msgs/msg/Imu": _imu,
    "sensor_msgs/msg/NavSatFix": _navsat,
    "sensor_msgs/msg/CameraInfo": _camera_info,
    "nav_msgs/msg/Odometry": _odometry,
    "radar_msgs/msg/RadarScan": _radar_scan,
    "radar_msgs/msg/RadarTracks": _radar_tracks,
    "geometry_msgs/msg/TransformStamped": _transform,
    "tf2_msgs/msg/TFMessage": _tf_message,
    "tf/msg/tfMessage": _tf_message,  # ROS 1 tf (same layout as tf2_msgs/TFMessage)
}

_FROM: dict[str, Callable[[Typestore, Any], Any]] = {
    "sensor_msgs/msg/Image": _image.msg_from_image,
    "sensor_msgs/msg/CompressedImage": _image.msg_from_compressed,
    "sensor_msgs/msg/PointCloud2": _pointcloud.msg_from_pointcloud,
    "sensor_msgs/msg/Imu": _msg_imu,
    "sensor_msgs/msg/NavSatFix": _msg_navsat,
    "sensor_msgs/msg/CameraInfo": _msg_camera_info,
    "nav_msgs/msg/Odometry": _msg_odometry,
    "radar_msgs/msg/RadarScan": _msg_radar_scan,
    "radar_msgs/msg/RadarTracks": _msg_radar_tracks,
    "geometry_msgs/msg/TransformStamped": _msg_transform,
    "tf2_msgs/msg/TFMessage": _msg_tf,
}

_MSGTYPE_OF_PAYLOAD: dict[type, str] = {
    ImageData: "sensor_msgs/msg/Image",
    CompressedImageData: "sensor_msgs/msg/CompressedImage",
    PointCloud: "sensor_msgs/msg/PointCloud2",
    ImuData: "sensor_msgs/msg/Imu",
    NavSatFixData: "sensor_msgs/msg/NavSatFix",
    CameraInfoData: "sensor_msgs/msg/CameraInfo",
    OdometryData: "nav_msgs/msg/Odometry",
    RadarScanData: "radar_msgs/msg/RadarScan",
    RadarTracksData: "radar_msgs/msg/RadarTracks",
    TransformData: "geometry_msgs/msg/TransformStamped",
}

_FROM_BY_PAYLOAD: dict[type, Callable[[Typestore, Any], Any]] = {}

#: Message types :func:`to_payload` and :func:`from_payload` convert (ROS 2 spelling) at import time;
#: :func:`register_conversion` adds more.
SUPPORTED_MSGTYPES: frozenset[str] = frozenset(_TO)


def register_conversion(
    msgtype: str,
    payload_type: type,
    to_payload_fn: Callable[[Any], Any],
    from_payload_fn: Callable[[Typestore, Any], Any],
) -> None:
    """Teach :func:`to_payload` / :func:`from_payload` another message type.

    Higher layers (e.g. :mod:`edgefuse.objects` for vision_msgs detections) register their payloads
    here, so that bags, sinks and transports handle them like the built-in ones without this module
    importing them.  ``from_payload_fn`` receives the typestore and the payload.

    Raises:
        MessageError: ``msgtype`` or ``payload_type`` is already registered to something else.
    """
    name = normalize_msgtype(msgtype)
    if _MSGTYPE_OF_PAYLOAD.get(payload_type, name) != name or (name in _TO and _TO[name] is not to_payload_fn):
        raise MessageError(f"conversion for {name} / {payload_type.__name__} is already registered")
    _TO[name] = to_payload_fn
    _FROM.setdefault(name, from_payload_fn)
    _FROM_BY_PAYLOAD[payload_type] = from_payload_fn
    _MSGTYPE_OF_PAYLOAD[payload_type] = name


def can_convert(msgtype: str) -> bool:
    """Whether :func:`to_payload` knows ``msgtype`` (ROS 1 or ROS 2 spelling)."""
    try:
        return normalize_msgtype(msgtype) in _TO
    except MessageError:
        return False


def to_payload(msg: Any, msgtype: str | None = None) -> Any:
    """Convert a rosbags message object to its edgefuse payload (see module table).

    ``msgtype`` defaults to the message's ``__msgtype__``.  Works with messages of ROS 1 and ROS 2
    typestores alike.

    Raises:
        MessageError: unknown message type, or a malformed message (sizes, encodings, layouts).
    """
    name = normalize_msgtype(msgtype if msgtype is not None else str(getattr(msg, "__msgtype__", "")))
    func = _TO.get(name)
    if func is None:
        raise MessageError(f"unknown message type {name!r}; edgefuse converts {sorted(_TO)}")
    try:
        return func(msg)
    except AttributeError as err:
        raise MessageError(f"{name}: message lacks an expected field ({err})") from None


def _payload_msgtype(payload: Any) -> str:
    if isinstance(payload, (list, tuple)):
        return "tf2_msgs/msg/TFMessage"
    name = _MSGTYPE_OF_PAYLOAD.get(type(payload))
    if name is None:
        raise MessageError(f"no ROS message type for payload {type(payload).__name__}")
    return name


def from_payload(payload: Any, *, msgtype: str | None = None, typestore: Typestore | None = None) -> Any:
    """Convert a payload to a rosbags message object of ``typestore`` (default :func:`get_typestore`).

    The message type follows the payload class (ImageData → Image, CompressedImageData →
    CompressedImage, a list of TransformData → TFMessage …); ``msgtype``, when given, must agree.
    With a ROS 1 typestore (``Stores.ROS1_NOETIC``) ROS 1 classes are built (``Header.seq`` = 0).

    Raises:
        MessageError: unsupported payload, ``msgtype`` disagreeing with it, or wrong array sizes.
    """
    name = _payload_msgtype(payload)
    if msgtype is not None and normalize_msgtype(msgtype) != name:
        raise MessageError(f"payload {type(payload).__name__} converts to {name}, not {msgtype}")
    store = typestore if typestore is not None else get_typestore()
    return _FROM_BY_PAYLOAD.get(type(payload), _FROM[name])(store, payload)


def imu_batch(samples: Sequence[ImuData]) -> ImuBatch:
    """Stack IMU samples into an :class:`ImuBatch` (stamps int64 ns (N,), gyro/accel (N, 3),
    orientation (N, 4) xyzw), keeping the given order.  ``frame_id`` is the first sample's.

    Raises:
        MessageError: samples from more than one frame.
    """
    n = len(samples)
    frames = {s.frame_id for s in samples}
    if len(frames) > 1:
        raise MessageError(f"IMU samples come from several frames: {sorted(frames)}")
    stamps = np.fromiter((s.stamp_ns for s in samples), dtype=np.int64, count=n)
    gyro = np.empty((n, 3), dtype=np.float64)
    accel = np.empty((n, 3), dtype=np.float64)
    orient = np.empty((n, 4), dtype=np.float64)
    for i, s in enumerate(samples):
        gyro[i] = s.angular_velocity
        accel[i] = s.linear_acceleration
        orient[i] = s.orientation
    return ImuBatch(
        stamps_ns=stamps,
        angular_velocity=gyro,
        linear_acceleration=accel,
        orientation=orient,
        frame_id=samples[0].frame_id if n else "",
    )


def stamp_of(msg: Any) -> int | None:
    """Header stamp of a message in ns, or None when it has no ``header.stamp``."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    return ns_from_ros(stamp) if stamp is not None else None


def decode_to_payload(
    data: bytes | memoryview, msgtype: str, fmt: Literal["ros1", "cdr"], *, fast: bool, decode: Callable[[], Any]
) -> tuple[Any, int | None, bool]:
    """``(payload, header stamp or None, converted)`` of one serialized message: the one decode path that bag
    reading and live reception share.

    ``fast``: try the fast decoder first (the caller knows whether its typestore allows it; a message it
    rejects falls through, so the normal path gives the verdict).  ``decode()``: the caller's rosbags
    deserialisation of the same bytes (its own typestore and error wording).  Types edgefuse does not convert
    come back as the decoded rosbags message with ``converted`` False.

    Raises:
        MessageError: the message decodes but does not convert (``decode``'s own errors pass through).
    """
    if fast:
        from edgefuse.msgs import fastpath

        try:
            payload = fastpath.decode(data, msgtype, fmt)
        except MessageError:
            pass
        else:
            return payload, payload.stamp_ns, True
    msg = decode()
    if not can_convert(msgtype):
        return msg, stamp_of(msg), False
    return to_payload(msg, msgtype), stamp_of(msg), True
