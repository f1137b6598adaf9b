"""Reading real ROS 1 / ROS 2 bags; bad input → BagError; custom types; on_error policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore as rosbags_typestore

from edgefuse.bag import BagIntegrityError, BagIntegrityWarning, BagWriter, RawMessage, open_bag
from edgefuse.errors import BagError
from edgefuse.msgs import (
    field,
    from_payload,
    new_typestore,
    pointcloud_from_arrays,
    register_bag_types,
    register_definitions,
    to_payload,
    xyz,
)
from edgefuse.msgs.types import (
    RADAR_RETURN_DTYPE,
    ImuData,
    NavSatFixData,
    OdometryData,
    RadarScanData,
    TransformData,
)

DATA = Path(__file__).resolve().parent.parent / "data"
HUSKY = DATA / "husky_imu_gps_odom_bag" / "test1.bag"
LUMINAR = DATA / "luminar_pointcloud_bag" / "luminar_1frame.bag"
SRR520 = DATA / "nebula_radar_lidar_packets" / "srr520" / "1708578209"

NEBULA_DEFS = {
    "nebula_msgs/msg/NebulaPacket": "builtin_interfaces/Time stamp\nuint8[] data\n",
    "nebula_msgs/msg/NebulaPackets": "std_msgs/Header header\nnebula_msgs/NebulaPacket[] packets\n",
}


def test_husky_counts_from_source_md() -> None:
    with open_bag(HUSKY) as bag:
        topics = bag.topics
        assert bag.is_ros1
        assert {name: t.count for name, t in topics.items()} == {
            "/imu/data": 11865,
            "/husky_velocity_controller/odom": 3952,
            "/fix": 989,
        }
        assert topics["/imu/data"].msgtype == "sensor_msgs/msg/Imu"
        assert all(t.definition == "bag" and t.convertible for t in topics.values())
        assert bag.message_count == 16806


def test_husky_payloads() -> None:
    lags: list[int] = []
    lats: list[float] = []
    n_odom = 0
    with open_bag(HUSKY) as bag:
        for env in bag.envelopes():
            if env.topic == "/imu/data":
                assert isinstance(env.payload, ImuData)
                assert env.payload.frame_id == "imu_link"
                assert env.stamp_ns == env.payload.stamp_ns
                lags.append(env.recv_ns - env.stamp_ns)
            elif env.topic == "/fix":
                assert isinstance(env.payload, NavSatFixData)
                assert env.payload.status == 1
                lats.append(env.payload.latitude_deg)
            else:
                assert isinstance(env.payload, OdometryData)
                assert env.payload.frame_id == "odom"
                n_odom += 1
    assert len(lags) == 11865
    assert n_odom == 3952
    # SOURCE.md: receive time on average 26.3 ms after header stamp; lat 42.37580…42.37711
    assert np.mean(lags) / 1e6 == pytest.approx(26.3, abs=0.1)
    assert min(lats) == pytest.approx(42.37580, abs=1e-5)
    assert max(lats) == pytest.approx(42.37711, abs=1e-5)


def test_topic_and_time_filters() -> None:
    with open_bag(HUSKY) as bag:
        start = bag.start_ns
        fixes = list(bag.messages(topics="/fix", start_ns=start, stop_ns=start + 10 * 10**9))
        assert all(isinstance(m, RawMessage) and m.topic == "/fix" for m in fixes)
        assert [m.index for m in fixes] == list(range(len(fixes)))
        assert 24 <= len(fixes) <= 26  # 2.5 Hz for 10 s
        assert all(start <= m.recv_ns < start + 10 * 10**9 for m in fixes)
        with pytest.raises(BagError, match=r"no topic\(s\) \['/camera'\]"):
            list(bag.messages(topics=["/camera"]))


def test_luminar_real_pointcloud_with_per_point_time() -> None:
    with open_bag(LUMINAR) as bag:
        raws = list(bag.messages())
        assert len(raws) == 1
        cloud = to_payload(bag.decode(raws[0]))
        assert np.shares_memory(cloud.points, np.frombuffer(raws[0].rawdata, np.uint8))
    assert cloud.frame_id == "luminar_lidar"
    assert cloud.points.dtype.names == ("x", "y", "z", "intensity", "time_sec", "time_nsec", "laser_id")
    assert cloud.points.dtype.itemsize == 32
    assert 35707 <= len(cloud.points) <= 36457
    ranges = np.linalg.norm(xyz(cloud), axis=1)
    assert ranges.min() > 6.0  # SOURCE.md: ranges 6.8-253 m
    assert ranges.max() < 254.0
    point_ns = field(cloud, "time_sec").astype(np.int64) * 10**9 + field(cloud, "time_nsec")
    # per-point times lie within one 10 Hz sweep ending at (or just before) the header stamp
    assert point_ns.max() <= cloud.stamp_ns
    assert cloud.stamp_ns - point_ns.min() < 110_000_000


def test_undefined_custom_type_is_bag_error_then_registered() -> None:
    with open_bag(SRR520) as bag:
        info = bag.topics["/sensing/radar/front_left/nebula_packets"]
        assert info.msgtype == "nebula_msgs/msg/NebulaPackets"
        assert info.definition == "none"
        assert not info.convertible
        raw = next(bag.messages())
        with pytest.raises(BagError, match="neither defined in the bag nor in the typestore") as exc:
            bag.decode(raw)
        assert exc.value.topic == "/sensing/radar/front_left/nebula_packets"
        assert str(SRR520) in str(exc.value)
    with open_bag(SRR520, on_error="skip") as bag:
        assert list(bag.envelopes()) == []
        assert bag.skipped == 4
    store = new_typestore()
    register_definitions(store, NEBULA_DEFS)
    with open_bag(SRR520, typestore=store) as bag:
        assert bag.topics["/sensing/radar/front_left/nebula_packets"].definition == "typestore"
        envs = list(bag.envelopes())
    assert len(envs) == 4
    assert all(e.meta["unconverted"] for e in envs)
    n_packets = sum(len(e.payload.packets) for e in envs)
    assert n_packets == 97  # SOURCE.md: 97 packets
    assert envs[0].stamp_ns != envs[0].recv_ns  # header stamp, not record time


def test_bag_written_with_custom_type_reads_with_fresh_store(tmp_path: Path) -> None:
    returns = np.zeros(3, dtype=RADAR_RETURN_DTYPE)
    returns["range"] = [1.0, 2.0, 3.5]
    returns["doppler_velocity"] = [-1.0, 0.0, 0.25]
    path = tmp_path / "radar"
    with BagWriter(path) as w:
        w.write("/radar", 5, RadarScanData(5, "radar", returns))
    plain = rosbags_typestore(Stores.ROS2_HUMBLE)
    assert "radar_msgs/msg/RadarScan" not in plain.fielddefs
    with open_bag(path, typestore=plain) as bag:
        assert bag.topics["/radar"].definition == "bag"
        (env,) = list(bag.envelopes())
    assert isinstance(env.payload, RadarScanData)
    np.testing.assert_array_equal(env.payload.returns, returns)


def test_bare_storage_file_paths(tmp_path: Path) -> None:
    path = tmp_path / "b"
    with BagWriter(path) as w:
        w.write("/radar_tf", 1, to_payload(_tf_msg()))
    (mcap,) = path.glob("*.mcap")
    with open_bag(mcap) as bag:
        assert bag.paths == [path]
        assert bag.topics["/radar_tf"].count == 1
    alone = tmp_path / "alone"
    alone.mkdir()
    mcap.rename(alone / mcap.name)
    with open_bag(alone / mcap.name) as bag:
        assert bag.topics["/radar_tf"].count == 1
    with open_bag(alone) as bag:  # folder without metadata.yaml but one .mcap
        assert bag.message_count == 1


def _tf_msg() -> object:
    return from_payload(TransformData(1, "base", "radar", np.zeros(3), np.array([0, 0, 0, 1.0])))


@pytest.mark.parametrize("name", ["garbage.bag", "garbage.mcap", "garbage.db3"])
def test_garbage_file_is_bag_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(31).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(BagError) as exc, open_bag(path) as bag:
        list(bag.messages())
    assert str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_not_a_bag(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match="not a bag"):
        open_bag(tmp_path / "notes.txt")
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        open_bag(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_bag(tmp_path / "missing.bag")


def _read_all(path: Path) -> int:
    with open_bag(path) as bag:
        return sum(1 for _ in bag.envelopes())


def test_truncated_ros1_bag(tmp_path: Path) -> None:
    cut = tmp_path / "half.bag"
    data = HUSKY.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError) as exc:
        _read_all(cut)
    assert str(cut) in str(exc.value)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_ros2_bag(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "full"
    rng = np.random.default_rng(32)
    with BagWriter(path, storage=storage) as w:  # type: ignore[arg-type]
        for i in range(40):
            w.write(
                "/points",
                i * 10**8,
                pointcloud_from_arrays(
                    i * 10**8, "l", x=rng.normal(size=500), y=rng.normal(size=500), z=rng.normal(size=500)
                ),
            )
    (store,) = [p for p in path.iterdir() if p.suffix in {".mcap", ".db3"}]
    data = store.read_bytes()
    store.chmod(0o644)
    store.write_bytes(data[: len(data) // 2])
    if storage == "mcap":  # read from its intact chunks, with a warning (tests/bag/test_repair.py)
        with pytest.warns(BagIntegrityWarning, match="truncated MCAP"):
            assert _read_all(path) < 40  # its one chunk is cut: nothing intact
        with pytest.raises(BagIntegrityError, match="truncated MCAP") as strict_exc, open_bag(path, strict=True):
            pass
        assert str(path) in str(strict_exc.value)
    else:
        with pytest.raises(BagError) as exc:
            _read_all(path)
        assert str(path) in str(exc.value)


def test_message_failing_to_decode_mid_file(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    store = new_typestore()
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection("/tf_like", "geometry_msgs/msg/TransformStamped", typestore=store)
    good = bytes(store.serialize_cdr(_tf_stamped(store), "geometry_msgs/msg/TransformStamped"))
    for i, raw in enumerate([good, good, b"\x00\x01\x00\x00\xff\xff", good]):
        writer.write(conn, i, raw)
    writer.close()
    with open_bag(path) as bag, pytest.raises(BagError, match="message 2 does not decode") as exc:
        list(bag.envelopes())
    assert exc.value.topic == "/tf_like"
    with open_bag(path, on_error="skip") as bag:
        assert len(list(bag.envelopes())) == 3
        assert bag.skipped == 1
        assert bag.skipped_by_topic == {"/tf_like": 1}


def _tf_stamped(store: object) -> object:
    return from_payload(TransformData(3, "a", "b", np.ones(3), np.array([0, 0, 0, 1.0])), typestore=store)  # type: ignore[arg-type]


def test_register_bag_types_into_a_store() -> None:
    store = rosbags_typestore(Stores.EMPTY)
    with open_bag(HUSKY) as bag:
        added = register_bag_types(store, bag.connections)
    assert "sensor_msgs/msg/Imu" in added
    assert "std_msgs/msg/Header" in added
    assert [name for name, _ in store.fielddefs["std_msgs/msg/Header"][1]] == ["seq", "stamp", "frame_id"]
    with open_bag(HUSKY) as bag:
        assert register_bag_types(store, bag.connections) == []  # already there: kept
