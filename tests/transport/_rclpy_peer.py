"""A plain rclpy program the ROS 2 transport tests talk to (run as ``python _rclpy_peer.py pub|sub ...``).

``pub``: publishes std_msgs/String on /peer/chat, sensor_msgs/Imu on /peer/imu and a 120k-point
sensor_msgs/PointCloud2 on /peer/points (rclpy message objects built from ``_ros2_samples``) until its standard
input closes or ``--duration`` passes.  ``sub``: subscribes (reliable) to /edgefuse/chat, /edgefuse/imu,
/edgefuse/points and (transient local) /edgefuse/latched, and prints one JSON line per message with the
fields it decoded, until it has one of each or ``--timeout`` passes.  Both print ``{"event": "ready"}`` first.
Uses ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE from the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy  # type: ignore[import-not-found, unused-ignore]
from _ros2_samples import CLOUD_FIELDS, CLOUD_POINT_STEP, CLOUD_POINTS, cloud_stamp, cloud_xyz, digest, imu, text
from rclpy.executors import SingleThreadedExecutor  # type: ignore[import-not-found, unused-ignore]
from rclpy.qos import (  # type: ignore[import-not-found, unused-ignore]
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import Imu, PointCloud2, PointField  # type: ignore[import-not-found, unused-ignore]
from std_msgs.msg import String  # type: ignore[import-not-found, unused-ignore]

_OUT = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    with _OUT:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def qos(reliability: str, durability: str = "volatile", depth: int = 10) -> Any:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if durability == "transient_local" else DurabilityPolicy.VOLATILE,
    )


def make_imu(i: int) -> Any:
    s = imu(i)
    m = Imu()
    m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id = s["sec"], s["nanosec"], s["frame_id"]
    m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w = s["orientation"]
    m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = s["angular_velocity"]
    m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z = s["linear_acceleration"]
    m.orientation_covariance = s["orientation_covariance"]
    m.angular_velocity_covariance = s["angular_velocity_covariance"]
    m.linear_acceleration_covariance = s["linear_acceleration_covariance"]
    return m


def make_cloud(i: int) -> Any:
    m = PointCloud2()
    m.header.stamp.sec, m.header.stamp.nanosec = cloud_stamp(i)
    m.header.frame_id = "lidar"
    m.height, m.width = 1, CLOUD_POINTS
    m.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in CLOUD_FIELDS]
    m.is_bigendian = False
    m.point_step = CLOUD_POINT_STEP
    m.row_step = CLOUD_POINT_STEP * CLOUD_POINTS
    m.data = cloud_xyz(i).tobytes()
    m.is_dense = True
    return m


def run_pub(node: Any, args: argparse.Namespace, stop: threading.Event) -> None:
    q = qos(args.qos)
    chat = node.create_publisher(String, "/peer/chat", q)
    imu_pub = node.create_publisher(Imu, "/peer/imu", q)
    points = node.create_publisher(PointCloud2, "/peer/points", q)
    clouds = [make_cloud(i) for i in range(3)]
    emit({"event": "ready"})
    i = 0
    end = time.monotonic() + args.duration
    while not stop.is_set() and time.monotonic() < end:
        chat.publish(String(data=text(i)))
        imu_pub.publish(make_imu(i))
        if i % 2 == 0:
            points.publish(clouds[(i // 2) % 3])
        i += 1
        stop.wait(0.1)


def summarize(topic: str, m: Any) -> dict[str, Any]:
    if isinstance(m, String):
        return {"topic": topic, "data": m.data}
    if isinstance(m, Imu):
        return {
            "topic": topic,
            "sec": m.header.stamp.sec,
            "nanosec": m.header.stamp.nanosec,
            "frame_id": m.header.frame_id,
            "orientation": [m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w],
            "angular_velocity": [m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z],
            "linear_acceleration": [m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z],
            "orientation_covariance": [float(v) for v in m.orientation_covariance],
            "angular_velocity_covariance": [float(v) for v in m.angular_velocity_covariance],
            "linear_acceleration_covariance": [float(v) for v in m.linear_acceleration_covariance],
        }
    data = bytes(m.data)
    i = m.header.stamp.sec - cloud_stamp(0)[0]
    xyz = np.frombuffer(data, dtype="<f4").reshape(-1, 3) if len(data) % 12 == 0 else None
    return {
        "topic": topic,
        "sec": m.header.stamp.sec,
        "nanosec": m.header.stamp.nanosec,
        "frame_id": m.header.frame_id,
        "height": m.height,
        "width": m.width,
        "point_step": m.point_step,
        "row_step": m.row_step,
        "fields": [[f.name, f.offset, f.datatype, f.count] for f in m.fields],
        "is_dense": bool(m.is_dense),
        "nbytes": len(data),
        "digest": digest(data),
        "matches_sample": bool(xyz is not None and 0 <= i < 100 and np.array_equal(xyz, cloud_xyz(i))),
    }


def run_sub(node: Any, args: argparse.Namespace, stop: threading.Event) -> None:
    seen: set[str] = set()
    wanted = {"/edgefuse/chat", "/edgefuse/imu", "/edgefuse/points", "/edgefuse/latched"}

    def handler(topic: str) -> Any:
        def cb(m: Any) -> None:
            emit(summarize(topic, m))
            seen.add(topic)
            if seen >= wanted:
                stop.set()

        return cb

    q = qos("reliable")
    node.create_subscription(String, "/edgefuse/chat", handler("/edgefuse/chat"), q)
    node.create_subscription(Imu, "/edgefuse/imu", handler("/edgefuse/imu"), q)
    node.create_subscription(PointCloud2, "/edgefuse/points", handler("/edgefuse/points"), q)
    node.create_subscription(
        String, "/edgefuse/latched", handler("/edgefuse/latched"), qos("reliable", "transient_local", 1)
    )
    emit({"event": "ready"})
    stop.wait(args.timeout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["pub", "sub"])
    parser.add_argument("--qos", default="reliable", choices=["reliable", "best_effort"])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    rclpy.init(args=[])
    node = rclpy.create_node(f"edgefuse_test_peer_{args.mode}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # the test closes our stdin (or dies): stop
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        (run_pub if args.mode == "pub" else run_sub)(node, args, stop)
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    emit({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
