"""The ROS 2 transport against real rclpy: a separate rclpy process publishing and subscribing with its own
message classes (tests/transport/_rclpy_peer.py), QoS matching, type mismatches, repeated open/close.

Every test runs on its own ROS domain (from the pid), limited to this host.  Skipped, with the reason, where
rclpy is not installed (``pip install 'edgefuse[ros2]'``; .ci/run installs it).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.errors import TransportError
from edgefuse.msgs import deserialize, serialize
from edgefuse.msgs.typestore import get_typestore
from edgefuse.transport.base import LATCHED, RELIABLE, SENSOR_DATA, QoS, Received, Transport, open_transport

try:
    from edgefuse.transport.ros2 import Ros2Transport, _wheel_library_dirs, import_rclpy

    import_rclpy()
except TransportError as exc:
    pytest.skip(f"rclpy is not usable: {exc}", allow_module_level=True)

from tests.transport._ros2_samples import (
    CLOUD_FIELDS,
    CLOUD_POINT_STEP,
    CLOUD_POINTS,
    cloud_stamp,
    cloud_xyz,
    imu,
    text,
)

HERE = Path(__file__).resolve().parent
PEER = HERE / "_rclpy_peer.py"
WAIT_S = 20.0
_DOMAINS = itertools.count(20 + os.getpid() % 180)  # 20..211: distinct per run and per test (Fast DDS: <= 232)
_TS = get_typestore()


@pytest.fixture
def domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """A ROS domain of its own, limited to this host, for this test and its peers."""
    d = next(_DOMAINS)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(d))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOCALHOST_ONLY", "1")
    return d


class Peer:
    """The rclpy peer process; its JSON lines arrive in :attr:`lines`."""

    def __init__(self, *args: str) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=HERE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout: float) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"rclpy peer said nothing for {timeout} s; stderr: {self.error_text()}") from None

    def wait_ready(self) -> None:
        assert self.next(WAIT_S) == {"event": "ready"}

    def error_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.stderr.close()


@pytest.fixture
def peer(domain: int) -> Iterator[Callable[..., Peer]]:
    started: list[Peer] = []

    def start(*args: str) -> Peer:
        p = Peer(*args)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            p.stop()


def wait_for(cond: Callable[[], bool], timeout: float, what: str, tick: Callable[[], None] | None = None) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if tick is not None:
            tick()
        time.sleep(0.05)


def check_imu(decoded: Any) -> None:
    i = decoded.header.stamp.sec - imu(0)["sec"]
    s = imu(i)
    assert (decoded.header.stamp.sec, decoded.header.stamp.nanosec, decoded.header.frame_id) == (
        s["sec"],
        s["nanosec"],
        s["frame_id"],
    )
    o, w, a = decoded.orientation, decoded.angular_velocity, decoded.linear_acceleration
    assert [o.x, o.y, o.z, o.w] == s["orientation"]
    assert [w.x, w.y, w.z] == s["angular_velocity"]
    assert [a.x, a.y, a.z] == s["linear_acceleration"]
    for name in ("orientation_covariance", "angular_velocity_covariance", "linear_acceleration_covariance"):
        assert getattr(decoded, name).tolist() == s[name]


def test_is_a_transport_and_refuses_bad_options(domain: int) -> None:
    t = open_transport("ros2", domain_id=domain)
    assert isinstance(t, Ros2Transport) and isinstance(t, Transport) and t.fmt == "cdr"
    assert Ros2Transport().domain_id == domain  # from ROS_DOMAIN_ID
    with pytest.raises(TransportError, match="domain_id"):
        Ros2Transport(domain_id=500)
    with pytest.raises(TransportError, match="not open"):
        t.subscribe("/x", "std_msgs/msg/String", lambda r: None)


def test_namespace_and_remapping_give_the_wire_name(domain: int) -> None:
    with Ros2Transport(domain_id=domain, namespace="/robot", ros_args=["-r", "cloud:=/lidar/points"]) as t:
        assert t.subscribe("cloud", "sensor_msgs/msg/PointCloud2", lambda r: None).topic == "/lidar/points"
        assert t.advertise("status", "std_msgs/msg/String").topic == "/robot/status"
        topics = dict(t._node.get_topic_names_and_types())
        assert topics["/lidar/points"] == ["sensor_msgs/msg/PointCloud2"]


def test_receives_real_rclpy_messages_best_effort_from_reliable(domain: int, peer: Callable[..., Peer]) -> None:
    got: dict[str, list[Received]] = {"/peer/chat": [], "/peer/imu": [], "/peer/points": []}
    t0 = time.monotonic_ns()
    with Ros2Transport(domain_id=domain) as t:
        for topic, msgtype in [
            ("/peer/chat", "std_msgs/msg/String"),
            ("/peer/imu", "sensor_msgs/msg/Imu"),
            ("/peer/points", "sensor_msgs/msg/PointCloud2"),
        ]:
            t.subscribe(topic, msgtype, lambda r: got[r.topic].append(r), SENSOR_DATA)
        p = peer("pub", "--qos", "reliable")
        p.wait_ready()
        wait_for(lambda: all(len(v) >= 2 for v in got.values()), WAIT_S, "a message on every topic")
        stats = t.stats()
    t1 = time.monotonic_ns()

    for r in itertools.chain.from_iterable(got.values()):
        assert r.fmt == "cdr" and t0 <= r.recv_ns <= t1
        assert r.source_ns is not None and abs(r.source_ns - time.time_ns()) < 120e9
        assert isinstance(r.seq, int) and r.seq >= 1
        assert isinstance(r.publisher, str) and len(r.publisher) >= 16
    for topic, received in got.items():
        seqs = [r.seq or 0 for r in received]
        assert seqs == sorted(seqs), f"{topic} out of order: {seqs}"

    for r in got["/peer/chat"]:
        msg = deserialize(r.data, r.msgtype, fmt="cdr")
        i = int(msg.data.split("#")[1].split(":")[0])
        assert msg.data == text(i)
    for r in got["/peer/imu"]:
        check_imu(deserialize(r.data, "sensor_msgs/msg/Imu", fmt="cdr"))
    for r in got["/peer/points"]:
        cloud = deserialize(r.data, "sensor_msgs/msg/PointCloud2", fmt="cdr")
        i = cloud.header.stamp.sec - cloud_stamp(0)[0]
        assert (cloud.header.stamp.sec, cloud.header.stamp.nanosec) == cloud_stamp(i)
        assert (cloud.height, cloud.width, cloud.point_step) == (1, CLOUD_POINTS, CLOUD_POINT_STEP)
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == CLOUD_FIELDS
        assert len(r.data) > 1_400_000
        assert np.array_equal(np.frombuffer(cloud.data.tobytes(), "<f4").reshape(-1, 3), cloud_xyz(i))

    assert stats["received"] >= 6 and stats["rmw"] and stats["callback_errors"] == 0
    assert stats["type_mismatch"] == 0 and stats["qos_incompatible"] == 0


def _imu_msg(i: int) -> Any:
    s = imu(i)
    T = _TS.types
    return T["sensor_msgs/msg/Imu"](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=s["sec"], nanosec=s["nanosec"]), frame_id=s["frame_id"]
        ),
        orientation=T["geometry_msgs/msg/Quaternion"](*s["orientation"]),
        orientation_covariance=np.array(s["orientation_covariance"]),
        angular_velocity=T["geometry_msgs/msg/Vector3"](*s["angular_velocity"]),
        angular_velocity_covariance=np.array(s["angular_velocity_covariance"]),
        linear_acceleration=T["geometry_msgs/msg/Vector3"](*s["linear_acceleration"]),
        linear_acceleration_covariance=np.array(s["linear_acceleration_covariance"]),
    )


def _cloud_msg(i: int) -> Any:
    T = _TS.types
    sec, nanosec = cloud_stamp(i)
    return T["sensor_msgs/msg/PointCloud2"](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id="lidar"
        ),
        height=1,
        width=CLOUD_POINTS,
        fields=[T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c) for n, o, d, c in CLOUD_FIELDS],
        is_bigendian=False,
        point_step=CLOUD_POINT_STEP,
        row_step=CLOUD_POINT_STEP * CLOUD_POINTS,
        data=np.frombuffer(cloud_xyz(i).tobytes(), np.uint8),
        is_dense=True,
    )


def test_publishes_to_a_real_rclpy_subscriber(domain: int, peer: Callable[..., Peer]) -> None:
    String = _TS.types["std_msgs/msg/String"]
    chat_bytes = serialize(String(data=text(7)), "std_msgs/msg/String", fmt="cdr")
    imu_bytes = serialize(_imu_msg(3), "sensor_msgs/msg/Imu", fmt="cdr")
    cloud_bytes = serialize(_cloud_msg(2), "sensor_msgs/msg/PointCloud2", fmt="cdr")
    summaries: dict[str, dict[str, Any]] = {}
    with Ros2Transport(domain_id=domain) as t:
        latched = t.advertise("/edgefuse/latched", "std_msgs/msg/String", LATCHED)
        latched.publish(serialize(String(data=text(99)), "std_msgs/msg/String", fmt="cdr"))  # before the peer runs
        chat = t.advertise("/edgefuse/chat", "std_msgs/msg/String", RELIABLE)
        imu_pub = t.advertise("/edgefuse/imu", "sensor_msgs/msg/Imu")
        points = t.advertise("/edgefuse/points", "sensor_msgs/msg/PointCloud2")
        p = peer("sub", "--timeout", str(WAIT_S))
        p.wait_ready()
        wait_for(lambda: points.subscription_count() >= 1 and chat.subscription_count() >= 1, WAIT_S, "the subscriber")

        def tick() -> None:
            chat.publish(chat_bytes)
            imu_pub.publish(memoryview(imu_bytes))
            if "/edgefuse/points" not in summaries:
                points.publish(cloud_bytes)
            while not p.lines.empty():
                line = p.lines.get()
                summaries.setdefault(line.get("topic", "event"), line)

        wait_for(lambda: len(summaries) >= 4, WAIT_S, "the peer to get every topic", tick)
        assert t.stats()["published"] >= 4

    assert summaries["/edgefuse/latched"]["data"] == text(99)
    assert summaries["/edgefuse/chat"]["data"] == text(7)
    s = imu(3)
    got = summaries["/edgefuse/imu"]
    assert {k: got[k] for k in s} == s
    cloud = summaries["/edgefuse/points"]
    assert (cloud["sec"], cloud["nanosec"]) == cloud_stamp(2)
    assert (cloud["width"], cloud["height"], cloud["point_step"], cloud["nbytes"]) == (
        CLOUD_POINTS,
        1,
        CLOUD_POINT_STEP,
        CLOUD_POINTS * CLOUD_POINT_STEP,
    )
    assert [tuple(f) for f in cloud["fields"]] == CLOUD_FIELDS
    assert cloud["matches_sample"] is True


def test_reliable_subscription_gets_nothing_from_best_effort_and_counts_it(domain: int) -> None:
    String = _TS.types["std_msgs/msg/String"]
    reliable: list[Received] = []
    best_effort: list[Received] = []
    with Ros2Transport(domain_id=domain, node_name="listener") as a, Ros2Transport(domain_id=domain) as b:
        a.subscribe("/qos/chat", "std_msgs/msg/String", reliable.append, RELIABLE)
        a.subscribe("/qos/chat", "std_msgs/msg/String", best_effort.append, SENSOR_DATA)
        pub = b.advertise("/qos/chat", "std_msgs/msg/String", QoS("best_effort", "volatile", 5))
        data = serialize(String(data="lossy"), "std_msgs/msg/String", fmt="cdr")
        wait_for(
            lambda: len(best_effort) >= 3 and a.stats()["qos_incompatible"] >= 1,
            WAIT_S,
            "best-effort delivery and the incompatible-QoS event",
            lambda: pub.publish(data),
        )
        assert reliable == []
        assert b.stats()["qos_incompatible"] >= 1  # the publisher sees it too
    assert deserialize(best_effort[0].data, "std_msgs/msg/String", fmt="cdr").data == "lossy"


def test_type_mismatch_is_counted_never_delivered(domain: int) -> None:
    String = _TS.types["std_msgs/msg/String"]
    got: list[Received] = []
    with Ros2Transport(domain_id=domain, node_name="imu_reader") as a, Ros2Transport(domain_id=domain) as b:
        a.subscribe("/mixed", "sensor_msgs/msg/Imu", got.append)
        pub = b.advertise("/mixed", "std_msgs/msg/String")
        data = serialize(String(data="not an imu"), "std_msgs/msg/String", fmt="cdr")
        wait_for(lambda: a.stats()["type_mismatch"] >= 1, WAIT_S, "the type mismatch", lambda: pub.publish(data))
        for _ in range(5):
            pub.publish(data)
        time.sleep(0.3)
        stats = a.stats()
        assert got == [] and stats["received"] == 0
        assert stats["type_mismatch_seen"] == ["/mixed std_msgs/msg/String"]
        # the publisher's side sees the Imu subscription (once its participant has discovered it)
        wait_for(lambda: b.stats()["type_mismatch"] == 1, WAIT_S, "the mismatch on the publisher's side")
        with pytest.raises(TransportError, match="/mixed"):  # Fast DDS refuses two types in one participant
            a.advertise("/mixed", "std_msgs/msg/String")
        assert a.stats()["executor_errors"] == 0


def test_open_close_repeatedly_in_one_process(domain: int) -> None:
    String = _TS.types["std_msgs/msg/String"]
    t = open_transport("ros2", domain_id=domain, node_name="cycler")
    for cycle in range(3):
        got: queue.Queue[Received] = queue.Queue()
        with t:
            assert t.open() is t  # idempotent
            t.subscribe("loop", "std_msgs/msg/String", got.put, RELIABLE)  # relative name: /loop
            pub = t.advertise("/loop", "std_msgs/msg/String")
            data = serialize(String(data=f"cycle {cycle}"), "std_msgs/msg/String", fmt="cdr")
            deadline = time.monotonic() + WAIT_S
            while got.empty() and time.monotonic() < deadline:
                pub.publish(data)
                time.sleep(0.05)
            r = got.get(timeout=1)
            assert r.topic == "/loop"
            assert deserialize(r.data, r.msgtype, fmt="cdr").data == f"cycle {cycle}"
        stats = t.stats()
        assert stats["open"] is False and stats["opens"] == cycle + 1
        with pytest.raises(TransportError, match="closed"):
            pub.publish(data)
        t.close()  # idempotent


def test_a_failing_callback_is_counted_and_delivery_goes_on(domain: int) -> None:
    String = _TS.types["std_msgs/msg/String"]
    good: list[Received] = []
    calls = itertools.count()

    def callback(r: Received) -> None:
        if next(calls) == 0:
            raise KeyError("bug in the node")
        good.append(r)

    with Ros2Transport(domain_id=domain) as t:
        t.subscribe("/cb", "std_msgs/msg/String", callback, RELIABLE)
        pub = t.advertise("/cb", "std_msgs/msg/String")
        data = serialize(String(data="x"), "std_msgs/msg/String", fmt="cdr")
        wait_for(lambda: len(good) >= 2, WAIT_S, "delivery after the failing callback", lambda: pub.publish(data))
        stats = t.stats()
    assert stats["callback_errors"] == 1 and stats["executor_errors"] == 0


def test_types_without_a_python_package_are_refused_by_name(domain: int) -> None:
    with Ros2Transport(domain_id=domain) as t:
        with pytest.raises(TransportError, match=r"vision_msgs.*ros-vision-msgs"):
            t.subscribe("/det", "vision_msgs/msg/Detection3DArray", lambda r: None)
        with pytest.raises(TransportError, match="no message Nope"):
            t.advertise("/x", "std_msgs/msg/Nope")
        with pytest.raises(TransportError, match="not a ROS 2 message type"):
            t.advertise("/x", "nonsense")
        with pytest.raises(TransportError, match="cannot subscribe"):
            t.subscribe("/bad topic!", "std_msgs/msg/String", lambda r: None)
        assert t.advertise("/old_style", "std_msgs/String").msgtype == "std_msgs/msg/String"


@pytest.mark.skipif(not _wheel_library_dirs(), reason="rclpy is not from the PyPI wheels")
def test_works_without_the_wheels_library_path(domain: int) -> None:
    """A process the wheels' bootstrapper did not re-execute (no LD_LIBRARY_PATH) still opens the transport."""
    script = (
        "import sys, queue\n"
        "from edgefuse.msgs import serialize\n"
        "from edgefuse.msgs.typestore import get_typestore\n"
        "from edgefuse.transport.base import RELIABLE\n"
        "from edgefuse.transport.ros2 import Ros2Transport, _PRELOADED\n"
        "S = get_typestore().types['std_msgs/msg/String']\n"
        "q = queue.Queue()\n"
        f"with Ros2Transport(domain_id={domain}) as t:\n"
        "    t.subscribe('/boot', 'std_msgs/msg/String', q.put, RELIABLE)\n"
        "    p = t.advertise('/boot', 'std_msgs/msg/String')\n"
        "    for _ in range(100):\n"
        "        p.publish(serialize(S(data='booted'), 'std_msgs/msg/String', fmt='cdr'))\n"
        "        try:\n"
        "            r = q.get(timeout=0.1); break\n"
        "        except queue.Empty:\n"
        "            pass\n"
        "print(len(r.data), len(_PRELOADED))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"  # what the bootstrapper sets after its re-exec: it does nothing
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    size, preloaded = map(int, out.stdout.split())
    assert size > 4 and preloaded > 20  # the message came through, and the libraries were preloaded
