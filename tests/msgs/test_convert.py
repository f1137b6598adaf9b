"""Roundtrips payload → message → CDR / ROS 1 bytes → message → payload for every supported type."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore as rosbags_typestore

from edgefuse.errors import MessageError
from edgefuse.msgs import (
    deserialize,
    from_payload,
    get_typestore,
    imu_batch,
    normalize_msgtype,
    serialize,
    to_payload,
)
from edgefuse.msgs.types import RADAR_RETURN_DTYPE

_spec = importlib.util.spec_from_file_location("msg_samples", Path(__file__).with_name("msg_samples.py"))
assert _spec is not None
assert _spec.loader is not None
msg_samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(msg_samples)
STAMP: int = msg_samples.STAMP
assert_payload_equal = msg_samples.assert_payload_equal
sample_imu = msg_samples.sample_imu
sample_payloads = msg_samples.sample_payloads


@pytest.mark.parametrize("msgtype", sorted(sample_payloads(0)))
def test_roundtrip_cdr(msgtype: str) -> None:
    payload = sample_payloads(1)[msgtype]
    msg = from_payload(payload)
    assert msg.__msgtype__ == msgtype
    raw = bytes(serialize(msg, msgtype))
    back = to_payload(deserialize(raw, msgtype), msgtype)
    assert_payload_equal(payload, back)


_NOT_IN_NOETIC = {"radar_msgs/msg/RadarScan", "tf2_msgs/msg/TFMessage"}


@pytest.mark.parametrize("msgtype", sorted(set(sample_payloads(0)) - _NOT_IN_NOETIC))
def test_roundtrip_ros1_with_noetic_store(msgtype: str) -> None:
    """ROS 1 serialisation with rosbags' Noetic store (which has no RadarScan/TFMessage)."""
    noetic = rosbags_typestore(Stores.ROS1_NOETIC)
    payload = sample_payloads(2)[msgtype]
    msg = from_payload(payload, typestore=noetic)
    if hasattr(msg, "header"):
        assert msg.header.seq == 0  # ROS 1 header built with seq
    raw = bytes(serialize(msg, msgtype, fmt="ros1", typestore=noetic))
    back = to_payload(deserialize(raw, msgtype.replace("/msg/", "/"), fmt="ros1", typestore=noetic))
    assert_payload_equal(payload, back)


def test_nan_covariance_is_kept() -> None:
    payload = sample_payloads(3)["sensor_msgs/msg/NavSatFix"]
    back = to_payload(deserialize(serialize(from_payload(payload)), "sensor_msgs/msg/NavSatFix"))
    assert np.isnan(back.position_covariance[0, 0])
    assert back.position_covariance[1, 1] == payload.position_covariance[1, 1]


def test_ros1_names_are_normalised() -> None:
    assert normalize_msgtype("sensor_msgs/Imu") == "sensor_msgs/msg/Imu"
    assert normalize_msgtype("sensor_msgs/msg/Imu") == "sensor_msgs/msg/Imu"
    with pytest.raises(MessageError, match="invalid message type"):
        normalize_msgtype("Imu")
    payload = sample_payloads(4)["sensor_msgs/msg/Imu"]
    assert_payload_equal(to_payload(from_payload(payload), "sensor_msgs/Imu"), payload)


def test_unknown_msgtype() -> None:
    ts = get_typestore()
    msg = ts.types["std_msgs/msg/String"](data="x")
    with pytest.raises(MessageError, match="unknown message type 'std_msgs/msg/String'"):
        to_payload(msg)
    with pytest.raises(MessageError, match="no ROS message type"):
        from_payload(object())
    with pytest.raises(MessageError, match="unknown message type"):
        deserialize(b"\x00\x01\x00\x00", "nope_msgs/msg/Nothing")


def test_msgtype_must_agree_with_payload() -> None:
    payload = sample_payloads(5)["sensor_msgs/msg/Imu"]
    with pytest.raises(MessageError, match="converts to sensor_msgs/msg/Imu"):
        from_payload(payload, msgtype="sensor_msgs/msg/Image")


@pytest.mark.parametrize(
    ("attr", "value", "match"),
    [
        ("orientation", np.zeros(3), "Imu orientation: expected 4"),
        ("orientation_covariance", np.zeros(8), "expected 9 values"),
        ("angular_velocity", np.zeros(4), "expected 3 values"),
    ],
)
def test_wrong_sizessample_imu(attr: str, value: Any, match: str) -> None:
    payload = sample_imu(np.random.default_rng(6))
    setattr(payload, attr, value)
    with pytest.raises(MessageError, match=match):
        from_payload(payload)


def test_wrong_sizes_camera_info_both_ways() -> None:
    payload = sample_payloads(7)["sensor_msgs/msg/CameraInfo"]
    payload.p = np.zeros((3, 3))
    with pytest.raises(MessageError, match=r"CameraInfo p: expected 12 values \(3, 4\), got 9"):
        from_payload(payload)
    good = sample_payloads(7)["sensor_msgs/msg/CameraInfo"]
    msg = from_payload(good)
    msg.k = np.zeros(8)
    with pytest.raises(MessageError, match="CameraInfo k: expected 9"):
        to_payload(msg)


def test_camera_info_reshapes() -> None:
    payload = sample_payloads(8)["sensor_msgs/msg/CameraInfo"]
    msg = from_payload(payload)
    assert msg.k.shape == (9,)
    assert msg.p.shape == (12,)
    np.testing.assert_array_equal(msg.p.reshape(3, 4), payload.p)
    back = to_payload(msg)
    assert back.k.shape == (3, 3)
    assert back.p.shape == (3, 4)
    assert back.d.shape == (5,)


def test_radar_and_vision_types_registered() -> None:
    ts = get_typestore()
    assert [n for n, _ in ts.fielddefs["radar_msgs/msg/RadarReturn"][1]] == list(
        RADAR_RETURN_DTYPE.names or ()
    )
    for name in ("vision_msgs/msg/Detection2DArray", "vision_msgs/msg/Detection3DArray"):
        assert name in ts.fielddefs
    det = ts.types["vision_msgs/msg/Detection2DArray"]
    assert det is not None


def test_imu_batch() -> None:
    rng = np.random.default_rng(9)
    samples = [sample_imu(rng, STAMP + i * 5_000_000) for i in range(6)]
    batch = imu_batch(samples)
    assert batch.stamps_ns.dtype == np.int64
    np.testing.assert_array_equal(batch.stamps_ns, [s.stamp_ns for s in samples])
    np.testing.assert_array_equal(batch.angular_velocity, np.stack([s.angular_velocity for s in samples]))
    np.testing.assert_array_equal(
        batch.linear_acceleration, np.stack([s.linear_acceleration for s in samples])
    )
    np.testing.assert_array_equal(batch.orientation, np.stack([s.orientation for s in samples]))
    assert batch.frame_id == "imu"
    empty = imu_batch([])
    assert empty.stamps_ns.shape == (0,)
    assert empty.angular_velocity.shape == (0, 3)
    with pytest.raises(MessageError, match="several frames"):
        imu_batch([sample_imu(rng), sample_imu(rng, frame="other")])


def test_stamp_split_exact() -> None:
    payload = sample_payloads(10)["geometry_msgs/msg/TransformStamped"]
    msg = from_payload(payload)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
