"""Fast Imu / Odometry / NavSatFix decoding equals deserialize + to_payload, and rejects bad bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys import get_typestore as rosbags_typestore

from edgefuse.bag import open_bag
from edgefuse.errors import MessageError
from edgefuse.msgs import deserialize, from_payload, get_typestore, to_payload
from edgefuse.msgs.fastpath import FAST_MSGTYPES, decode, decode_columns, decode_payload, stack_payloads, supports
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData

HUSKY = Path(__file__).resolve().parent.parent / "data" / "husky_imu_gps_odom_bag" / "test1.bag"
IMU, ODOM, FIX = "sensor_msgs/msg/Imu", "nav_msgs/msg/Odometry", "sensor_msgs/msg/NavSatFix"
ROS1 = rosbags_typestore(Stores.ROS1_NOETIC)
# frame names of every length 0..17 (each CDR alignment case), plus multi-byte UTF-8
FRAMES = ["", "a", "ab", "abc", "imu", "imu_", "imu_l", "imu_li", "imu_lin", "imu_link", "base_link",
          "base_link_", "odom_frame_", "x" * 13, "y" * 14, "z" * 15, "w" * 16, "v" * 17, "ümu_ß", "日本"]  # fmt: skip


def assert_payload_equal(a: Any, b: Any) -> None:
    """Same class, same scalars (and scalar types), arrays of the same dtype, shape and values."""
    assert type(a) is type(b)
    for f in fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(vb, np.ndarray):
            assert isinstance(va, np.ndarray) and va.dtype == vb.dtype and va.shape == vb.shape, f.name
            np.testing.assert_array_equal(va, vb, err_msg=f.name)
        else:
            assert type(va) is type(vb) and va == vb, f.name


def _random_payload(rng: np.random.Generator, msgtype: str, frame: str, child: str = "c") -> Any:
    stamp = int(rng.integers(-(2**31), 2**31 - 1)) * 1_000_000_000 + int(rng.integers(0, 1_000_000_000))
    f = rng.normal(size=90) * 10.0 ** rng.integers(-5, 6, 90)
    f[rng.integers(0, 90)] = np.nan
    if msgtype == IMU:
        return ImuData(stamp, frame, f[0:4], f[4:13].reshape(3, 3), f[13:16], f[16:25].reshape(3, 3),
                       f[25:28], f[28:37].reshape(3, 3))  # fmt: skip
    if msgtype == ODOM:
        return OdometryData(stamp, frame, child, f[0:3], f[3:7], f[7:43].reshape(6, 6), f[43:46], f[46:49],
                            f[49:85].reshape(6, 6))  # fmt: skip
    return NavSatFixData(stamp, frame, int(rng.integers(-128, 128)), int(rng.integers(0, 65536)), float(f[0]),
                         float(f[1]), float(f[2]), f[3:12].reshape(3, 3), int(rng.integers(0, 256)))  # fmt: skip


def _serialize(payload: Any, msgtype: str, fmt: str, *, little: bool = True) -> bytes:
    if fmt == "ros1":
        msg = from_payload(payload, typestore=ROS1)
        return bytes(ROS1.serialize_ros1(msg, msgtype))
    store = get_typestore()
    return bytes(store.serialize_cdr(from_payload(payload, typestore=store), msgtype, little_endian=little))


def _normal(raw: bytes, msgtype: str, fmt: str) -> Any:
    store = ROS1 if fmt == "ros1" else get_typestore()
    return to_payload(deserialize(raw, msgtype, fmt=fmt, typestore=store), msgtype)  # type: ignore[arg-type]


def _assert_rows(cols: dict[str, Any], payloads: Sequence[Any]) -> None:
    assert len(cols["stamps_ns"]) == len(payloads)
    for i, p in enumerate(payloads):
        for key, col in cols.items():
            want = getattr(p, "stamp_ns" if key == "stamps_ns" else key)
            if isinstance(want, np.ndarray):
                np.testing.assert_array_equal(col[i], want, err_msg=key)
                assert col.dtype == np.float64
            else:
                assert col[i] == want, (key, i)


def test_supports_standard_layouts_only() -> None:
    for name in FAST_MSGTYPES:
        assert supports(name)
        assert supports(name, fmt="ros1", typestore=ROS1)
        assert not supports(name, fmt="ros1")  # ROS 2 header lacks seq
        assert not supports(name, fmt="cdr", typestore=ROS1)
    assert supports("sensor_msgs/Imu")
    assert not supports("sensor_msgs/msg/Image")
    assert not supports("not a type")
    for body in ("float64 x", "geometry_msgs/Quaternion orientation\nfloat64[] orientation_covariance"):
        custom = rosbags_typestore(Stores.EMPTY)
        custom.register(get_types_from_msg("int32 sec\nuint32 nanosec", "builtin_interfaces/msg/Time"))
        custom.register(get_types_from_msg("builtin_interfaces/Time stamp\nstring frame_id", "std_msgs/msg/Header"))
        custom.register(
            get_types_from_msg("float64 x\nfloat64 y\nfloat64 z\nfloat64 w", "geometry_msgs/msg/Quaternion")
        )
        custom.register(get_types_from_msg(f"std_msgs/Header header\n{body}", IMU))
        assert not supports(IMU, typestore=custom)
        assert not supports(ODOM, typestore=custom)  # not defined there


@pytest.mark.parametrize("fmt", ["ros1", "cdr"])
@pytest.mark.parametrize("msgtype", [IMU, ODOM, FIX])
def test_random_messages_equal_normal_path(msgtype: str, fmt: str) -> None:
    rng = np.random.default_rng(7)
    raws, normal = [], []
    for i, frame in enumerate(FRAMES):
        child = FRAMES[(i * 7 + 3) % len(FRAMES)]
        payload = _random_payload(rng, msgtype, frame, child)
        for little in (True, False) if fmt == "cdr" else (True,):
            raw = _serialize(payload, msgtype, fmt, little=little)
            assert raw[1] == little or fmt == "ros1"
            ref = _normal(raw, msgtype, fmt)
            assert_payload_equal(ref, payload)  # the serialisation round trip itself is exact
            got = decode(raw, msgtype, fmt)  # type: ignore[arg-type]
            assert_payload_equal(got, ref)
            assert_payload_equal(decode(memoryview(raw), msgtype, fmt), ref)  # type: ignore[arg-type]
            assert all(a.flags.writeable for a in vars_arrays(got))
            raws.append(raw)
            normal.append(ref)
    cols = decode_columns(raws, msgtype, fmt)  # type: ignore[arg-type]
    _assert_rows(cols, normal)
    for key, col in cols.items():
        if col.dtype == np.float64:
            assert col.flags.c_contiguous and col.flags.writeable, key
    stacked = stack_payloads(normal, msgtype)
    assert stacked.keys() == cols.keys()
    for key in cols:
        assert stacked[key].dtype == cols[key].dtype and stacked[key].shape == cols[key].shape, key
        np.testing.assert_array_equal(stacked[key], cols[key], err_msg=key)


def vars_arrays(payload: Any) -> list[np.ndarray[Any, Any]]:
    return [getattr(payload, f) for f in payload.__slots__ if isinstance(getattr(payload, f), np.ndarray)]


def test_every_husky_message_equals_normal_path() -> None:
    by_type: dict[str, tuple[list[bytes], list[Any]]] = {}
    with open_bag(HUSKY, fast_decode=False) as bag:
        for name in FAST_MSGTYPES:
            assert supports(name, fmt="ros1", typestore=bag.typestore)
        for raw in bag.messages():
            ref = to_payload(bag.decode(raw), raw.msgtype)
            assert_payload_equal(decode(raw.rawdata, raw.msgtype, "ros1"), ref)
            raws, refs = by_type.setdefault(raw.msgtype, ([], []))
            raws.append(bytes(raw.rawdata))
            refs.append(ref)
    assert {k: len(v[0]) for k, v in by_type.items()} == {IMU: 11865, ODOM: 3952, FIX: 989}
    for name, (raws, refs) in by_type.items():
        _assert_rows(decode_columns(raws, name, "ros1"), refs)


@pytest.mark.parametrize("msgtype", [IMU, ODOM, FIX])
def test_empty_columns_have_the_right_shapes(msgtype: str) -> None:
    rng = np.random.default_rng(3)
    full = decode_columns([_serialize(_random_payload(rng, msgtype, "f"), msgtype, "cdr")], msgtype)
    empty = decode_columns([], msgtype)
    assert empty.keys() == full.keys()
    for key in full:
        assert empty[key].shape == (0, *full[key].shape[1:]) and empty[key].dtype == full[key].dtype, key


@pytest.mark.parametrize("fmt", ["ros1", "cdr"])
@pytest.mark.parametrize("msgtype", [IMU, ODOM, FIX])
def test_truncated_and_overlong_buffers_raise(msgtype: str, fmt: str) -> None:
    rng = np.random.default_rng(11)
    raw = _serialize(_random_payload(rng, msgtype, "base_link", "odom"), msgtype, fmt)
    for cut in range(len(raw)):
        with pytest.raises(MessageError):
            decode(raw[:cut], msgtype, fmt)  # type: ignore[arg-type]
        with pytest.raises(MessageError, match=f"message 1 of 3: .*{cut} bytes"):
            decode_columns([raw, raw[:cut], raw[:cut]], msgtype, fmt)  # type: ignore[arg-type]
    # rosbags accepts up to 3 bytes of CDR padding after the last field, ROS 1 nothing: same verdicts
    accepted = []
    for extra in range(1, 6):
        longer = raw + b"\x00" * extra
        try:
            ref = _normal(longer, msgtype, fmt)
        except MessageError:
            with pytest.raises(MessageError):
                decode(longer, msgtype, fmt)  # type: ignore[arg-type]
            with pytest.raises(MessageError, match="message 0 of 1"):
                decode_columns([longer], msgtype, fmt)  # type: ignore[arg-type]
        else:
            accepted.append(extra)
            assert_payload_equal(decode(longer, msgtype, fmt), ref)  # type: ignore[arg-type]
    assert (
        accepted == [] if fmt == "ros1" else 1 <= len(accepted) <= 3 and accepted == list(range(1, len(accepted) + 1))
    )


def test_bad_strings_and_encapsulation_raise() -> None:
    rng = np.random.default_rng(5)
    raw = bytearray(_serialize(_random_payload(rng, IMU, "imu_link"), IMU, "cdr"))
    no_nul = bytearray(raw)
    no_nul[12 + 4 + 8] = ord("x")  # the frame_id terminator
    huge = bytearray(raw)
    huge[12:16] = (2**32 - 1).to_bytes(4, "little")
    zero = bytearray(raw)
    zero[12:16] = bytes(4)
    enc = bytearray(raw)
    enc[1] = 7
    utf = bytearray(raw)
    utf[16] = 0xFF
    for bad in (no_nul, huge, zero, enc, utf):
        with pytest.raises(MessageError):
            decode(bytes(bad), IMU)
        with pytest.raises(MessageError):
            _normal(bytes(bad), IMU, "cdr")  # rosbags rejects them too
        with pytest.raises(MessageError, match="message 1 of 2"):
            decode_columns([bytes(raw), bytes(bad)], IMU)
    with pytest.raises(MessageError, match="no fast decoder"):
        decode(bytes(raw), "sensor_msgs/msg/Image")
    with pytest.raises(MessageError, match="no fast decoder"):
        decode_columns([bytes(raw)], "sensor_msgs/msg/Image")


def test_decode_payload_falls_back_to_normal_path() -> None:
    rng = np.random.default_rng(9)
    payload = _random_payload(rng, FIX, "gps")
    raw = _serialize(payload, FIX, "cdr")
    assert_payload_equal(decode_payload(raw, FIX), payload)
    with pytest.raises(MessageError):
        decode_payload(raw[:-20], FIX)
    # a type without a fast path goes through deserialize + to_payload
    tf = from_payload([], typestore=get_typestore())
    assert (
        decode_payload(bytes(get_typestore().serialize_cdr(tf, "tf2_msgs/msg/TFMessage")), "tf2_msgs/msg/TFMessage")
        == []
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    msgtype=st.sampled_from([IMU, ODOM, FIX]),
    fmt=st.sampled_from(["ros1", "cdr"]),
    frame=st.sampled_from(FRAMES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(-4, 0),
)
def test_mutated_bytes_never_give_a_different_payload(
    msgtype: str, fmt: str, frame: str, edits: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(_serialize(_random_payload(np.random.default_rng(1), msgtype, frame, frame), msgtype, fmt))
    for pos, value in edits:
        raw[pos % len(raw)] = value
    data = bytes(raw[: len(raw) + cut] if cut else raw)
    try:
        got = decode(data, msgtype, fmt)  # type: ignore[arg-type]
    except MessageError:
        return
    assert_payload_equal(got, _normal(data, msgtype, fmt))
    _assert_rows(decode_columns([data, data], msgtype, fmt), [got, got])  # type: ignore[arg-type]
