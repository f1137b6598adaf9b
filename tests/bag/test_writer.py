"""Writing ROS 2 bags (MCAP, sqlite3) and reading them back: every payload type, QoS, errors."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import ConnectionExtRosbag2, QosDurability

from edgefuse.bag import BagWriter, open_bag
from edgefuse.errors import BagError
from edgefuse.msgs import from_payload, get_typestore, serialize

_SAMPLES = Path(__file__).resolve().parent.parent / "msgs" / "msg_samples.py"
_spec = importlib.util.spec_from_file_location("msg_samples", _SAMPLES)
assert _spec is not None
assert _spec.loader is not None
msg_samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(msg_samples)
_payloads = msg_samples.sample_payloads
assert_payload_equal = msg_samples.assert_payload_equal


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_roundtrip_every_type(tmp_path: Path, storage: str) -> None:
    payloads = _payloads(41)
    topics = {msgtype: "/" + msgtype.replace("/msg/", "_").replace("/", "_") for msgtype in payloads}
    path = tmp_path / "bag"
    with BagWriter(path, storage=storage) as w:  # type: ignore[arg-type]
        for i, (msgtype, payload) in enumerate(sorted(payloads.items())):
            w.add_topic(topics[msgtype], msgtype)
            w.write(topics[msgtype], 1_000 + i, payload)
            w.write(topics[msgtype], 2_000 + i, from_payload(payload))  # a rosbags message works too
    assert path.joinpath("metadata.yaml").exists()
    with open_bag(path) as bag:
        assert {t: info.count for t, info in bag.topics.items()} == {t: 2 for t in topics.values()}
        assert all(info.definition == "bag" for info in bag.topics.values())
        raws = {(r.topic, r.index): r for r in bag.messages()}
        by_topic: dict[str, list[Any]] = {}
        for env in bag.envelopes():
            by_topic.setdefault(env.topic, []).append(env)
    for msgtype, payload in payloads.items():
        envs = by_topic[topics[msgtype]]
        assert next(e.recv_ns for e in envs) < 2_000
        for env in envs:
            assert env.msgtype == msgtype
            assert_payload_equal(payload, env.payload)
            assert "unconverted" not in env.meta
        expected = bytes(serialize(from_payload(payload), msgtype))
        assert bytes(raws[(topics[msgtype], 0)].rawdata) == expected
        if msgtype != "tf2_msgs/msg/TFMessage":
            assert envs[0].stamp_ns == payload.stamp_ns


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_other_readers_open_it_without_types(tmp_path: Path, storage: str) -> None:
    """Definitions are stored: plain rosbags AnyReader (no default typestore) decodes the radar type."""
    path = tmp_path / "bag"
    with BagWriter(path, storage=storage) as w:  # type: ignore[arg-type]
        w.write("/radar", 7, _payloads(42)["radar_msgs/msg/RadarScan"])
    with AnyReader([path]) as reader:
        (conn,) = reader.connections
        assert conn.msgtype == "radar_msgs/msg/RadarScan"
        assert conn.digest.startswith("RIHS01_")
        msg: Any = reader.deserialize(next(reader.messages())[2], conn.msgtype)
        assert len(msg.returns) == 4


def test_tf_static_is_latched(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    tf = _payloads(43)["tf2_msgs/msg/TFMessage"]
    with BagWriter(path) as w:
        w.write("/tf_static", 1, tf)
        w.write("/tf", 1, tf)
        w.add_topic("/scan_like", "sensor_msgs/msg/PointCloud2", qos="sensor_data")
    with AnyReader([path]) as reader:
        qos = {
            c.topic: c.ext.offered_qos_profiles
            for c in reader.connections
            if isinstance(c.ext, ConnectionExtRosbag2)
        }
    assert [q.durability for q in qos["/tf_static"]] == [QosDurability.TRANSIENT_LOCAL]
    assert qos["/tf"] == []
    assert qos["/scan_like"][0].depth == 5


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with BagWriter(path) as w:
        w.write("/tf", 1, _payloads(44)["tf2_msgs/msg/TFMessage"])
    with pytest.raises(BagError, match="exists already"):
        BagWriter(path).open()
    with BagWriter(path, storage="sqlite3", overwrite=True) as w:
        w.write("/tf", 2, _payloads(44)["tf2_msgs/msg/TFMessage"])
    with open_bag(path) as bag:
        assert bag.message_count == 1
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.txt").write_text("do not delete")
    with pytest.raises(BagError, match="refusing to overwrite"):
        BagWriter(other, overwrite=True).open()
    assert (other / "thesis.txt").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_parent(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            BagWriter(parent / "bag").open()
    finally:
        parent.chmod(0o700)


def test_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="unknown storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")  # type: ignore[arg-type]
    with pytest.raises(BagError, match="not open"):
        BagWriter(tmp_path / "y").write("/a", 0, _payloads(45)["sensor_msgs/msg/Imu"])
    with BagWriter(tmp_path / "z") as w:
        w.add_topic("/imu", "sensor_msgs/Imu")
        with pytest.raises(BagError, match="topic added twice"):
            w.add_topic("/imu", "sensor_msgs/msg/Imu")
        with pytest.raises(BagError, match="of type sensor_msgs/msg/NavSatFix written to a topic of type"):
            w.write("/imu", 0, _payloads(45)["sensor_msgs/msg/NavSatFix"])
        with pytest.raises(BagError, match="not in the writer's typestore"):
            w.add_topic("/p", "nebula_msgs/msg/NebulaPackets")
        with pytest.raises(BagError, match="unknown QoS preset"):
            w.add_topic("/q", "sensor_msgs/msg/Imu", qos="fast")
        with pytest.raises(BagError, match="cannot convert payload"):
            w.write("/imu", 0, object())
        assert get_typestore() is w.typestore


def test_written_image_is_readable_zero_copy(tmp_path: Path) -> None:
    payload = _payloads(46)["sensor_msgs/msg/Image"]
    with BagWriter(tmp_path / "img") as w:
        w.write("/cam", 5, payload)
    with open_bag(tmp_path / "img") as bag:
        raw = next(bag.messages())
        img = bag.decode(raw)
    assert np.shares_memory(img.data, np.frombuffer(raw.rawdata, np.uint8))
