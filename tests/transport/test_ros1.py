"""The ROS 1 transport live: a real ``rosmaster`` and real rospy peers (Debian's ``/usr/bin/python3`` with the
generated std_msgs / sensor_msgs classes, ``_rospy_peer.py``) talking to edgefuse's rospy node.

Skipped, with the reason, where python3-rospy / python3-rosmaster / the message packages are missing (CI
installs them, see ``.ci/run``); the test that a missing rospy is refused with the apt line always runs.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgefuse.errors import MessageError, TransportError
from edgefuse.msgs import deserialize, serialize
from edgefuse.transport import LATCHED, Received, Transport, open_transport
from edgefuse.transport.ros1 import ROS_MODULES, Ros1Transport, check_master, load_rospy
from tests.transport._rospy_peer import (
    CLOUD_FIELDS,
    CLOUD_POINT_STEP,
    CLOUD_POINTS,
    cloud_data,
    imu_values,
    stamp,
    string_text,
    to_jsonable,
)

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(__file__).with_name("_rospy_peer.py")
PEER_PYTHON = os.environ.get("EDGEFUSE_ROS1_PEER_PYTHON", "/usr/bin/python3")
WAIT = 20.0  # seconds any one wait may take before the test fails
# rospy 1.15 (Debian 12) calls threading.Condition.notifyAll
pytestmark = pytest.mark.filterwarnings("ignore:notifyAll:DeprecationWarning")


# ----------------------------------------------------------------------------- set-up


def _rospy_missing() -> str | None:
    try:
        load_rospy()
    except TransportError as err:
        return str(err)
    return None


def _why_skip() -> str | None:
    missing = _rospy_missing()
    if missing:
        return missing
    if shutil.which("rosmaster") is None:
        return "rosmaster is not installed (apt-get install python3-rosmaster)"
    try:
        probe = subprocess.run(
            [PEER_PYTHON, "-c", "import rospy, roslib.message, std_msgs.msg, sensor_msgs.msg"],
            check=False, capture_output=True, text=True, timeout=60, env=_peer_env(None),
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"no rospy peer interpreter {PEER_PYTHON}: {err}"
    if probe.returncode != 0:
        return f"{PEER_PYTHON} cannot import rospy and the message packages (apt-get install " \
               f"python3-std-msgs python3-sensor-msgs): {probe.stderr.strip().splitlines()[-1:]}"
    return None


def _peer_env(master_uri: str | None, home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["ROS_IP"] = "127.0.0.1"
    env.pop("ROS_HOSTNAME", None)
    if master_uri:
        env["ROS_MASTER_URI"] = master_uri
    if home is not None:
        env["ROS_HOME"] = str(home)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_master(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    uri = f"http://127.0.0.1:{port}/"
    with (home / "rosmaster.log").open("wb") as logf:
        proc = subprocess.Popen(["rosmaster", "--core", "-p", str(port)], env=_peer_env(uri, home),
                                stdout=logf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            check_master(uri, 0.5)
            return proc, uri
        except TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                pytest.fail(f"rosmaster did not come up: {(home / 'rosmaster.log').read_text()[-2000:]}")
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def ros_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``rosmaster --core`` on a free port for the whole session (rospy: one master per process)."""
    reason = _why_skip()
    if reason:
        pytest.skip(reason)
    proc, uri = _start_master(tmp_path_factory.mktemp("ros_home"))
    try:
        yield uri
    finally:
        _stop(proc)


class Peer:
    """A ``_rospy_peer.py`` process; its stdout lines arrive in a queue."""

    def __init__(self, args: list[str], master_uri: str, home: Path) -> None:
        self.proc = subprocess.Popen(
            [PEER_PYTHON, str(PEER), *args], env=_peer_env(master_uri, home),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.node = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self, timeout: float = WAIT) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"peer printed nothing in {timeout} s; stderr: {self.stderr()}") from None

    def ready(self) -> str:
        first = self.line()
        assert first.startswith("READY "), first
        self.node = first.split()[1]
        return self.node

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-2000:]

    def stop(self) -> None:
        _stop(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def transport(ros_master: str) -> Iterator[Ros1Transport]:
    t = open_transport("ros1", master_uri=ros_master, host="127.0.0.1")
    assert isinstance(t, Ros1Transport) and isinstance(t, Transport)
    with t:
        yield t


@pytest.fixture(scope="module")
def talker(ros_master: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A rospy peer publishing /peer/string, /peer/imu and /peer/cloud at 10 Hz; yields its node name."""
    peer = Peer(["talk", "10", "90"], ros_master, tmp_path_factory.mktemp("talker"))
    try:
        yield peer.ready()
    finally:
        peer.stop()


def _collect(t: Ros1Transport, topic: str, msgtype: str, n: int) -> list[Received]:
    got: queue.Queue[Received] = queue.Queue()
    sub = t.subscribe(topic, msgtype, got.put)
    try:
        return [got.get(timeout=WAIT) for _ in range(n)]
    finally:
        sub.close()


# ----------------------------------------------------------------------------- expected messages


def _header(ts: Any, i: int, seq: int, frame_id: str) -> Any:
    sec, nsec = stamp(i)
    time_cls = ts.types["builtin_interfaces/msg/Time"]
    return ts.types["std_msgs/msg/Header"](seq=seq, stamp=time_cls(sec=sec, nanosec=nsec), frame_id=frame_id)


def _imu(ts: Any, i: int, seq: int) -> Any:
    import numpy as np

    v = imu_values(i)
    q, vec = ts.types["geometry_msgs/msg/Quaternion"], ts.types["geometry_msgs/msg/Vector3"]
    return ts.types["sensor_msgs/msg/Imu"](
        header=_header(ts, i, seq, v["frame_id"]),
        orientation=q(*v["orientation"]),
        orientation_covariance=np.array(v["orientation_covariance"]),
        angular_velocity=vec(*v["angular_velocity"]),
        angular_velocity_covariance=np.array(v["angular_velocity_covariance"]),
        linear_acceleration=vec(*v["linear_acceleration"]),
        linear_acceleration_covariance=np.array(v["linear_acceleration_covariance"]),
    )


def _cloud(ts: Any, i: int, seq: int) -> Any:
    import numpy as np

    field = ts.types["sensor_msgs/msg/PointField"]
    return ts.types["sensor_msgs/msg/PointCloud2"](
        header=_header(ts, i, seq, "lidar"), height=1, width=CLOUD_POINTS,
        fields=[field(name=n, offset=o, datatype=d, count=1) for n, o, d in CLOUD_FIELDS],
        is_bigendian=False, point_step=CLOUD_POINT_STEP, row_step=CLOUD_POINTS * CLOUD_POINT_STEP,
        data=np.frombuffer(cloud_data(i), dtype=np.uint8), is_dense=True,
    )


def _index(msg: Any) -> int:
    return int(msg.header.stamp.sec) - stamp(0)[0]


# ----------------------------------------------------------------------------- receiving from rospy


def test_receives_strings_from_a_rospy_publisher(transport: Ros1Transport, talker: str) -> None:
    got = _collect(transport, "peer/string", "std_msgs/String", 3)
    texts = []
    for rx in got:
        assert (rx.topic, rx.msgtype, rx.fmt, rx.publisher) == ("/peer/string", "std_msgs/msg/String", "ros1", talker)
        assert 0 < rx.recv_ns <= time.monotonic_ns()
        texts.append(deserialize(rx.data, rx.msgtype, fmt="ros1", typestore=transport.typestore).data)
    first = int(texts[0].rsplit(" ", 1)[1])
    assert texts == [string_text(first + k) for k in range(3)]  # in order, none lost
    assert transport.stats()["received"] >= 3


def test_receives_imu_equal_to_what_the_peer_built(transport: Ros1Transport, talker: str) -> None:
    seqs = []
    for rx in _collect(transport, "/peer/imu", "sensor_msgs/msg/Imu", 3):
        msg = deserialize(rx.data, rx.msgtype, fmt="ros1", typestore=transport.typestore)
        seqs.append((_index(msg), msg.header.seq))
        assert to_jsonable(msg) == to_jsonable(_imu(transport.typestore, _index(msg), msg.header.seq))
    # the ROS 1 header (with the seq rospy numbers it with) decodes with the ROS 1 typestore
    (i0, s0) = seqs[0]
    assert s0 >= 1 and seqs == [(i0 + k, s0 + k) for k in range(3)]


def test_receives_a_large_pointcloud_intact(transport: Ros1Transport, talker: str) -> None:
    for rx in _collect(transport, "/peer/cloud", "sensor_msgs/msg/PointCloud2", 2):
        assert len(rx.data) > CLOUD_POINTS * CLOUD_POINT_STEP > 1_000_000
        msg = deserialize(rx.data, rx.msgtype, fmt="ros1", typestore=transport.typestore)
        i = _index(msg)
        assert msg.data.tobytes() == cloud_data(i)
        assert to_jsonable(msg) == to_jsonable(_cloud(transport.typestore, i, msg.header.seq))


def test_a_publisher_of_another_type_is_counted_not_delivered(transport: Ros1Transport, talker: str) -> None:
    wrong: queue.Queue[Received] = queue.Queue()
    transport.subscribe("/peer/string", "sensor_msgs/msg/Imu", wrong.put)  # the peer sends std_msgs/String there
    right = _collect(transport, "/peer/string", "std_msgs/msg/String", 2)  # the same topic as its type still works
    deadline = time.monotonic() + WAIT
    while transport.stats()["type_mismatch"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = transport.stats()
    assert stats["type_mismatch"] >= 3 and wrong.empty() and len(right) == 2
    (entry,) = stats["mismatched"]
    assert entry["topic"] == "/peer/string" and entry["publisher"] == talker
    assert entry["sent"].startswith("std_msgs/String (") and entry["messages"] >= 3
    json.dumps(stats)  # JSON-ready


def test_a_raising_callback_is_counted_and_logged_once(
    transport: Ros1Transport, talker: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken(rx: Received) -> None:
        calls.append(1)
        raise MessageError("a node bug")

    transport.subscribe("/peer/string", "std_msgs/msg/String", broken)
    deadline = time.monotonic() + WAIT
    while transport.stats()["callback_errors"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert transport.stats()["callback_errors"] >= 3 and len(calls) >= 3
    mine = [r for r in caplog.records if r.name == "edgefuse.transport.ros1" and "callback raised" in r.message]
    assert len(mine) == 1 and "MessageError: a node bug" in mine[0].message
    assert not [r for r in caplog.records if r.name.startswith("rospy") and r.levelno >= logging.ERROR]


# ----------------------------------------------------------------------------- publishing to rospy


def _publish_until_heard(pub: Any, peer: Peer, build: Any, n: int, period: float) -> list[dict[str, Any]]:
    """Publish build(i) for i = 0, 1, ... until the peer printed n messages; returns what it printed."""
    heard: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT
    i = 0
    while len(heard) < n:
        assert time.monotonic() < deadline, f"peer heard {len(heard)} of {n}; stderr: {peer.stderr()}"
        pub.publish(build(i))
        i += 1
        time.sleep(period)
        while not peer.lines.empty():
            heard.append(json.loads(peer.lines.get_nowait()))
    return heard


@pytest.mark.parametrize("case", [
    ("sensor_msgs/msg/Imu", "sensor_msgs/Imu", _imu, 3),
    ("sensor_msgs/msg/PointCloud2", "sensor_msgs/PointCloud2", _cloud, 2),
], ids=["imu", "cloud"])
def test_a_rospy_subscriber_gets_what_we_publish(
    transport: Ros1Transport, ros_master: str, tmp_path: Path, case: tuple[str, str, Any, int]
) -> None:
    msgtype, ros1type, build, n = case
    ts = transport.typestore
    topic = "/edgefuse/out_" + ros1type.split("/")[1].lower()
    pub = transport.advertise(topic, msgtype)
    peer = Peer(["listen", topic, ros1type, str(n), str(WAIT)], ros_master, tmp_path)
    try:
        peer.ready()
        heard = _publish_until_heard(
            pub, peer, lambda i: serialize(build(ts, i, 0), msgtype, fmt="ros1", typestore=ts), n, 0.1
        )
    finally:
        peer.stop()
    for line in heard:
        assert line["callerid"] == transport.node
        i = line["msg"]["header"]["stamp"]["sec"] - stamp(0)[0]
        assert line["msg"]["header"]["seq"] == i + 1  # our publisher numbers the headers as rospy's do
        assert line["msg"] == to_jsonable(build(ts, i, i + 1))
    assert transport.stats()["published"] >= n


def test_a_latched_message_reaches_a_late_subscriber(transport: Ros1Transport, ros_master: str, tmp_path: Path) -> None:
    ts = transport.typestore
    pub = transport.advertise("/edgefuse/latched", "std_msgs/msg/String", LATCHED)
    data = bytearray(serialize(ts.types["std_msgs/msg/String"](data="latched once"), "std_msgs/msg/String",
                               fmt="ros1", typestore=ts))
    pub.publish(memoryview(data))
    data[4:] = b"X" * (len(data) - 4)  # the caller may reuse its buffer: the latched copy is rospy's own
    peer = Peer(["listen", "/edgefuse/latched", "std_msgs/String", "1", str(WAIT)], ros_master, tmp_path)
    try:
        peer.ready()
        line = json.loads(peer.line())
    finally:
        peer.stop()
    assert line == {"callerid": transport.node, "msg": {"data": "latched once"}}


# ----------------------------------------------------------------------------- node and lifecycle


def _registered(master_uri: str, node: str | None) -> tuple[set[str], set[str]]:
    """(topics ``node`` publishes, topics it subscribes) according to the master."""
    answer: Any = xmlrpc.client.ServerProxy(master_uri).getSystemState("/test")
    code, _, (pubs, subs, _srvs) = answer
    assert code == 1
    return ({t for t, nodes in pubs if node in nodes}, {t for t, nodes in subs if node in nodes})


def test_close_unregisters_and_a_second_transport_shares_the_node(transport: Ros1Transport, ros_master: str) -> None:
    node = transport.node
    transport.subscribe("/edgefuse/close_sub", "std_msgs/msg/String", lambda rx: None)
    transport.advertise("/edgefuse/close_pub", "std_msgs/msg/String")
    pubs, subs = _registered(ros_master, node)
    assert "/edgefuse/close_pub" in pubs and "/edgefuse/close_sub" in subs
    with Ros1Transport(master_uri=ros_master) as second:
        assert second.node == node  # rospy: one node per process
        second.subscribe("/edgefuse/second_sub", "std_msgs/msg/String", lambda rx: None)
    assert "/edgefuse/second_sub" not in _registered(ros_master, node)[1]
    transport.close()
    transport.close()  # idempotent
    pubs, subs = _registered(ros_master, node)
    assert "/edgefuse/close_pub" not in pubs and "/edgefuse/close_sub" not in subs
    with pytest.raises(TransportError, match="not open"):
        transport.subscribe("/x", "std_msgs/msg/String", lambda rx: None)
    transport.open()  # open again: the same node
    assert transport.node == node and transport.stats()["subscriptions"] == 0
    with pytest.raises(TransportError, match="not in the ROS 1 typestore"):
        transport.advertise("/x", "nosuch_msgs/msg/Thing")


def test_another_master_is_refused(transport: Ros1Transport, tmp_path: Path) -> None:
    proc, other = _start_master(tmp_path / "other")
    try:
        with pytest.raises(TransportError, match="one node"):
            Ros1Transport(master_uri=other).open()
    finally:
        _stop(proc)


def test_a_master_gone_after_open_is_a_transport_error_not_a_hang(ros_master: str, tmp_path: Path) -> None:
    """rospy retries registering with a missing master forever; the transport asks it first (bounded)."""
    proc, uri = _start_master(tmp_path / "dying")
    code = (
        "import sys, time\n"
        "from edgefuse.errors import TransportError\n"
        "from edgefuse.transport.ros1 import Ros1Transport\n"
        f"t = Ros1Transport(master_uri={uri!r}, host='127.0.0.1', connect_timeout=1.0).open()\n"
        "t.subscribe('/before', 'std_msgs/msg/String', print)\n"
        "pub = t.advertise('/out', 'std_msgs/msg/String')\n"
        "print('OPEN', flush=True)\n"
        "sys.stdin.readline()\n"
        "start = time.monotonic()\n"
        "for call in (lambda: t.subscribe('/after', 'std_msgs/msg/String', print),\n"
        "             lambda: t.advertise('/after_out', 'std_msgs/msg/String')):\n"
        "    try:\n        call()\n        print('NO ERROR')\n"
        "    except TransportError as err:\n        print('ERROR', err)\n"
        "pub.publish(b'\\x01\\x00\\x00\\x00a')\n"
        "t.close()\n"
        "print('DONE', round(time.monotonic() - start, 3))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    try:
        assert child.stdout is not None and child.stdin is not None
        ready, _, _ = select.select([child.stdout], [], [], WAIT)
        assert ready and child.stdout.readline().strip() == "OPEN"
        _stop(proc)
        out, err = child.communicate("go\n", timeout=WAIT)
    finally:
        _stop(proc)
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=5)
    lines = [ln for ln in out.splitlines() if ln.startswith(("ERROR", "NO ERROR", "DONE"))]
    assert len(lines) == 3, (out, err)
    assert all(ln.startswith("ERROR no ROS master at") for ln in lines[:2]), lines
    assert float(lines[2].split()[1]) < 8


@pytest.fixture
def rospy_loaded() -> None:
    missing = _rospy_missing()
    if missing:
        pytest.skip(missing)


@pytest.mark.usefixtures("rospy_loaded")
def test_no_master_is_a_transport_error_in_bounded_time() -> None:
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(TransportError, match="no ROS master"):
        Ros1Transport(master_uri=f"http://127.0.0.1:{port}", connect_timeout=1.0).open()
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TransportError, match="no ROS master"):
            Ros1Transport(master_uri=uri, connect_timeout=1.0).open()
    assert time.monotonic() - start < 8


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=full)


def test_missing_rospy_is_refused_with_the_apt_line() -> None:
    res = _run_python(
        "from edgefuse.errors import MessageError, TransportError\n"
        "from edgefuse.transport import open_transport\n"
        "try:\n    open_transport('ros1').open()\nexcept TransportError as err:\n    print(err)\n",
        EDGEFUSE_ROS1_PYTHONPATH="/nonexistent/ros",
    )
    assert res.returncode == 0, res.stderr
    assert "rospy is not installed" in res.stdout and "apt-get install python3-rospy" in res.stdout


@pytest.mark.usefixtures("rospy_loaded")
def test_rospy_from_the_debian_path_shadows_nothing() -> None:
    res = _run_python(
        "import importlib.util, json, sys\n"
        "import numpy\n"
        "from edgefuse.transport.ros1 import load_rospy, ros_pythonpath\n"
        "load_rospy()\n"
        "roots = tuple(ros_pythonpath())\n"
        "from_ros = sorted({m.split('.')[0] for m, v in list(sys.modules.items())\n"
        "                   if (getattr(v, '__file__', None) or '').startswith(roots)})\n"
        "print(json.dumps({'from_ros': from_ros, 'numpy': numpy.__file__, 'roots': roots,\n"
        "                  'rosbag': importlib.util.find_spec('rosbag') is not None}))\n"
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "rospy" in out["from_ros"] or not out["from_ros"]  # (empty where rospy is on sys.path anyway)
    assert set(out["from_ros"]) <= ROS_MODULES
    assert not out["numpy"].startswith(tuple(out["roots"]))
    if any(Path(r, "rosbag").is_dir() for r in out["roots"]):
        assert out["rosbag"] is False  # a Debian package outside ROS_MODULES stays invisible
