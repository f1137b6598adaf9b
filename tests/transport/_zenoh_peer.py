"""A second process using :class:`~edgefuse.transport.zenoh.ZenohTransport`, for the transport tests.

``python _zenoh_peer.py pub ENDPOINT``: advertises the topics of :func:`messages` and publishes each message
every 0.1 s until its standard input closes (at most 60 s).
``python _zenoh_peer.py sub ENDPOINT OUTDIR``: subscribes to them, writes the first message of each topic to
``OUTDIR/<n>.cdr`` with ``OUTDIR/<n>.json`` (seq, source_ns, publisher), prints ``done`` and exits (at most 60 s).
Both connect to ENDPOINT (the test's router on 127.0.0.1), listen on a free 127.0.0.1 port (peers connect
to each other directly, as rmw_zenoh's do, through gossip), scout nothing (no multicast), and print
``ready <zid>`` once declared.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

NODE = "zenoh_peer"
NAMESPACE = "/edgefuse_test"


def messages() -> list[tuple[str, str, Any]]:
    """(topic, type, message): a std_msgs/String, a sensor_msgs/Imu and a 120k-point (1.44 MB)
    sensor_msgs/PointCloud2, all deterministic."""
    from edgefuse.msgs.typestore import get_typestore

    ts = get_typestore()
    t = ts.types
    time_ = t["builtin_interfaces/msg/Time"]
    header = t["std_msgs/msg/Header"]
    vec = t["geometry_msgs/msg/Vector3"]
    quat = t["geometry_msgs/msg/Quaternion"]
    string = t["std_msgs/msg/String"](data="hello from edgefuse über zenoh")
    cov = np.arange(9, dtype=np.float64) * 0.01
    imu = t["sensor_msgs/msg/Imu"](
        header=header(stamp=time_(sec=1_700_000_000, nanosec=123_456_789), frame_id="imu_link"),
        orientation=quat(x=0.0, y=0.0, z=0.38268343, w=0.92387953), orientation_covariance=cov,
        angular_velocity=vec(x=0.01, y=-0.02, z=0.5), angular_velocity_covariance=cov * 2,
        linear_acceleration=vec(x=0.1, y=0.2, z=9.81), linear_acceleration_covariance=cov * 3)
    n = 120_000
    rng = np.random.default_rng(7)
    xyz = rng.normal(0.0, 20.0, (n, 3)).astype(np.float32)
    field = t["sensor_msgs/msg/PointField"]
    cloud = t["sensor_msgs/msg/PointCloud2"](
        header=header(stamp=time_(sec=1_700_000_001, nanosec=5), frame_id="lidar"),
        height=1, width=n,
        fields=[field(name=c, offset=4 * i, datatype=7, count=1) for i, c in enumerate("xyz")],
        is_bigendian=False, point_step=12, row_step=12 * n,
        data=np.frombuffer(xyz.tobytes(), dtype=np.uint8), is_dense=True)
    return [("chatter", "std_msgs/msg/String", string), ("imu", "sensor_msgs/msg/Imu", imu),
            ("points", "sensor_msgs/msg/PointCloud2", cloud)]


def _transport(endpoint: str) -> Any:
    from edgefuse.transport.base import open_transport

    return open_transport("zenoh", mode="peer", connect=[endpoint], listen=["tcp/127.0.0.1:0"], domain_id=7,
                          namespace=NAMESPACE, node_name=NODE, multicast_scouting=False)


def _publish(endpoint: str) -> None:
    from edgefuse.msgs import serialize

    stop = threading.Event()
    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    with _transport(endpoint) as tr:
        pubs = [(tr.advertise(topic, msgtype), serialize(msg, msgtype)) for topic, msgtype, msg in messages()]
        print("ready", tr.zid, flush=True)
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            for pub, data in pubs:
                pub.publish(data)
            stop.wait(0.1)


def _subscribe(endpoint: str, out: Path) -> None:
    got: dict[int, Any] = {}
    lock = threading.Lock()
    all_in = threading.Event()
    wanted = messages()

    def on(index: int) -> Any:
        def callback(r: Any) -> None:
            with lock:
                if index in got:
                    return
                got[index] = r
                (out / f"{index}.cdr").write_bytes(bytes(r.data))
                (out / f"{index}.json").write_text(json.dumps(
                    {"topic": r.topic, "msgtype": r.msgtype, "seq": r.seq, "source_ns": r.source_ns,
                     "publisher": r.publisher, "recv_ns": r.recv_ns}))
                if len(got) == len(wanted):
                    all_in.set()
        return callback

    with _transport(endpoint) as tr:
        for i, (topic, msgtype, _) in enumerate(wanted):
            tr.subscribe(topic, msgtype, on(i))
        print("ready", tr.zid, flush=True)
        if all_in.wait(60):
            print("done", json.dumps(tr.stats()), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "pub":
        _publish(sys.argv[2])
    else:
        _subscribe(sys.argv[2], Path(sys.argv[3]))
