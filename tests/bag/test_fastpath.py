"""BagReader's fast path for Imu / Odometry / NavSatFix: same envelopes, columns, on_error, layout check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys import get_typestore as rosbags_typestore

from edgefuse.bag import open_bag
from edgefuse.envelope import Envelope
from edgefuse.errors import BagError
from edgefuse.msgs import from_payload, get_typestore
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData

HUSKY = Path(__file__).resolve().parent.parent / "data" / "husky_imu_gps_odom_bag" / "test1.bag"
TOPICS = ["/imu/data", "/husky_velocity_controller/odom", "/fix"]


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    for name in a.__slots__:
        va, vb = getattr(a, name), getattr(b, name)
        if isinstance(vb, np.ndarray):
            assert va.dtype == vb.dtype and va.shape == vb.shape, name
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert type(va) is type(vb) and va == vb, name


def _same_envelopes(fast: list[Envelope], slow: list[Envelope]) -> None:
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert (a.topic, a.stamp_ns, a.recv_ns, a.msgtype, a.meta) == (
            b.topic,
            b.stamp_ns,
            b.recv_ns,
            b.msgtype,
            b.meta,
        )
        _same(a.payload, b.payload)


def test_husky_envelopes_fast_equal_normal() -> None:
    with open_bag(HUSKY) as bag:
        fast = list(bag.envelopes())
        assert all(bag._use_fast(t.msgtype) for t in bag.topics.values())
    with open_bag(HUSKY, fast_decode=False) as bag:
        slow = list(bag.envelopes())
        assert not any(bag._use_fast(t.msgtype) for t in bag.topics.values())
    assert len(fast) == 16806
    _same_envelopes(fast, slow)


def test_husky_columns_equal_envelopes() -> None:
    with open_bag(HUSKY, fast_decode=False) as bag:
        envs = list(bag.envelopes(TOPICS[::-1]))
    with open_bag(HUSKY) as bag:
        cols = bag.columns(TOPICS)
        assert bag.columns("/fix", start_ns=0, stop_ns=1)["/fix"]["stamps_ns"].shape == (0,)
        with pytest.raises(BagError, match="no topic"):
            bag.columns("/nope")
    for topic, c in cols.items():
        order = [i for i, e in enumerate(envs) if e.topic == topic]
        np.testing.assert_array_equal(c["order"], order)
        np.testing.assert_array_equal(c["index"], np.arange(len(order)))
        np.testing.assert_array_equal(c["recv_ns"], [envs[i].recv_ns for i in order])
        for row, i in enumerate(order):
            p = envs[i].payload
            for key, col in c.items():
                if key in {"order", "index", "recv_ns"}:
                    continue
                want = getattr(p, "stamp_ns" if key == "stamps_ns" else key)
                np.testing.assert_array_equal(col[row], want, err_msg=key)


def _payloads(rng: np.random.Generator, i: int) -> dict[str, Any]:
    stamp = 1_700_000_000_000_000_000 + i * 10_000_000
    f = rng.normal(size=90)
    return {
        "/imu": ImuData(stamp, "imu" + "_" * (i % 9), f[0:4], f[4:13].reshape(3, 3), f[13:16],
                        f[16:25].reshape(3, 3), f[25:28], f[28:37].reshape(3, 3)),
        "/odom": OdometryData(stamp, "odom", "base" * (i % 3), f[0:3], f[3:7], f[7:43].reshape(6, 6), f[43:46],
                              f[46:49], f[49:85].reshape(6, 6)),
        "/fix": NavSatFixData(stamp, "gps" * (i % 4), i % 3 - 1, 1, 42.0 + f[0], -71.0 + f[1], f[2],
                              f[3:12].reshape(3, 3), i % 4),
    }  # fmt: skip


def _write_ros2(path: Path, *, bad_at: int | None = None, big_endian: bool = False) -> None:
    store = get_typestore()
    rng = np.random.default_rng(4)
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    types = {"/imu": "sensor_msgs/msg/Imu", "/odom": "nav_msgs/msg/Odometry", "/fix": "sensor_msgs/msg/NavSatFix"}
    conns = {t: writer.add_connection(t, m, typestore=store) for t, m in types.items()}
    for i in range(12):
        for topic, payload in _payloads(rng, i).items():
            msg = from_payload(payload, typestore=store)
            raw = bytes(store.serialize_cdr(msg, types[topic], little_endian=not (big_endian and i % 2)))
            if bad_at == i and topic == "/imu":
                raw = raw[:-9]
            writer.write(conns[topic], payload.stamp_ns + list(types).index(topic), raw)
    writer.close()


@pytest.mark.parametrize("big_endian", [False, True])
def test_ros2_bag_fast_equals_normal_and_columns(tmp_path: Path, big_endian: bool) -> None:
    path = tmp_path / "b"
    _write_ros2(path, big_endian=big_endian)
    with open_bag(path) as bag:
        fast = list(bag.envelopes())
        cols = bag.columns(["/imu", "/odom", "/fix"])
    with open_bag(path, fast_decode=False) as bag:
        slow = list(bag.envelopes())
    _same_envelopes(fast, slow)
    for topic, c in cols.items():
        rows = [e for e in slow if e.topic == topic]
        np.testing.assert_array_equal(c["stamps_ns"], [e.stamp_ns for e in rows])
        assert list(c["frame_id"]) == [e.payload.frame_id for e in rows]


def test_ros2_bad_message_follows_on_error(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    _write_ros2(path, bad_at=2)
    for fast in (True, False):
        with open_bag(path, fast_decode=fast) as bag, pytest.raises(BagError, match="message 2 does not decode") as exc:
            list(bag.envelopes())
        assert exc.value.topic == "/imu"
        with open_bag(path, fast_decode=fast) as bag, pytest.raises(BagError, match="message 2 does not decode"):
            bag.columns(["/imu", "/fix"])
        with open_bag(path, fast_decode=fast, on_error="skip") as bag:
            envs = list(bag.envelopes())
            assert len(envs) == 35
            assert bag.skipped_by_topic == {"/imu": 1}
        with open_bag(path, fast_decode=fast, on_error="skip") as bag:
            cols = bag.columns(["/imu", "/fix"])
            assert bag.skipped_by_topic == {"/imu": 1}
        assert cols["/imu"]["stamps_ns"].shape == (11,)
        np.testing.assert_array_equal(cols["/imu"]["index"], [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        assert 4 not in cols["/imu"]["order"] and 4 not in cols["/fix"]["order"]  # imu #2 was 5th of imu+fix
        assert cols["/fix"]["stamps_ns"].shape == (12,)
        np.testing.assert_array_equal(cols["/imu"]["stamps_ns"], [e.stamp_ns for e in envs if e.topic == "/imu"])


def test_non_standard_layout_uses_the_normal_path(tmp_path: Path) -> None:
    """A bag defining sensor_msgs/msg/Imu differently is never read with the fast layout."""
    store = rosbags_typestore(Stores.EMPTY)
    store.register(get_types_from_msg("int32 sec\nuint32 nanosec", "builtin_interfaces/msg/Time"))
    store.register(get_types_from_msg("builtin_interfaces/Time stamp\nstring frame_id", "std_msgs/msg/Header"))
    body = "".join(f"float64 x{k}\n" for k in range(37))
    store.register(get_types_from_msg("std_msgs/Header header\n" + body, "sensor_msgs/msg/Imu"))
    header = store.types["std_msgs/msg/Header"](store.types["builtin_interfaces/msg/Time"](1, 2), "imu")
    # 37 float64 after the header: the same bytes as a real Imu, so only the layout check can tell
    msg = store.types["sensor_msgs/msg/Imu"](header, *([1.0] * 37))
    raw = bytes(store.serialize_cdr(msg, "sensor_msgs/msg/Imu"))
    path = tmp_path / "custom"
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection("/imu", "sensor_msgs/msg/Imu", typestore=store)
    writer.write(conn, 5, raw)
    writer.close()
    with open_bag(path) as bag:
        assert not bag._use_fast("sensor_msgs/msg/Imu")
        with pytest.raises(BagError, match="does not convert"):
            list(bag.envelopes())
        with pytest.raises(BagError, match="does not convert"):
            bag.columns("/imu")


def test_columns_rejects_other_types() -> None:
    with open_bag(
        Path(__file__).resolve().parent.parent / "data" / "luminar_pointcloud_bag" / "luminar_1frame.bag"
    ) as bag:
        topic = next(iter(bag.topics))
        with pytest.raises(BagError, match="columns"):
            bag.columns(topic)
