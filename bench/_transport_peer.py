"""Publisher process for bench_transport.py: sends N messages of one kind on one transport.

Each message's header stamp is the wall time (ns) at the call to publish, so the subscriber (another process
on the same host, same clock) measures publish → callback latency from the bytes alone.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time

import numpy as np

KINDS = {
    # name: (msgtype, payload bytes after the header) — sizes as the issue names them
    "1KB": ("sensor_msgs/msg/CompressedImage", 1024),
    "cloud": ("sensor_msgs/msg/PointCloud2", 1_200_000),
    "image": ("sensor_msgs/msg/Image", 1280 * 720 * 3),
}


def build(kind: str) -> bytes:
    """CDR of a message of ``kind`` whose header stamp sits at bytes 4..12 (sec, nanosec)."""
    from edgefuse.msgs import serialize
    from edgefuse.msgs._common import make_header, make_msg
    from edgefuse.msgs.typestore import get_typestore

    ts = get_typestore()
    msgtype, size = KINDS[kind]
    header = make_header(ts, 0, "bench")
    data = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    if kind == "1KB":
        msg = make_msg(ts, msgtype, header=header, format="jpeg", data=data)
    elif kind == "cloud":
        fields = [make_msg(ts, "sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=1)
                  for n, o, d in (("x", 0, 4), ("y", 2, 4), ("z", 4, 4), ("intensity", 6, 7))]
        msg = make_msg(ts, msgtype, header=header, height=1, width=120_000, fields=fields, is_bigendian=False,
                       point_step=10, row_step=1_200_000, data=data, is_dense=True)
    else:
        msg = make_msg(ts, msgtype, header=header, height=720, width=1280, encoding="rgb8", is_bigendian=0,
                       step=1280 * 3, data=data)
    return bytes(serialize(msg, msgtype))


def stamp(buf: bytearray) -> None:
    now = time.time_ns()
    struct.pack_into("<iI", buf, 4, now // 1_000_000_000, now % 1_000_000_000)


def read_stamp(data: bytes | memoryview) -> int:
    sec, nsec = struct.unpack_from("<iI", data, 4)
    return int(sec) * 1_000_000_000 + int(nsec)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("transport", choices=["zenoh", "rclpy"])
    ap.add_argument("kind", choices=list(KINDS))
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s; 0: as fast as possible")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--wait", type=float, default=2.0, help="seconds for discovery before sending")
    args = ap.parse_args()
    msgtype, _ = KINDS[args.kind]
    buf = bytearray(build(args.kind))
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    if args.transport == "zenoh":
        from edgefuse.transport import RELIABLE, open_transport

        t = open_transport("zenoh", node_name="bench_pub", listen=[f"tcp/127.0.0.1:{args.port}"],
                           connect=[], multicast_scouting=False).open()
        pub = t.advertise("/bench", msgtype, RELIABLE)

        def send() -> None:
            stamp(buf)
            pub.publish(memoryview(buf))
    else:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from edgefuse.transport.ros2 import message_class

        rclpy.init()
        node = rclpy.create_node("bench_pub")
        rpub = node.create_publisher(message_class(msgtype), "/bench",
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

        def send() -> None:
            stamp(buf)
            rpub.publish(bytes(buf))
    print("ready", flush=True)
    time.sleep(args.wait)
    t0 = time.perf_counter()
    for i in range(args.count):
        send()
        if period:
            delay = t0 + (i + 1) * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    time.sleep(1.0)
    print("done", flush=True)
    if args.transport == "zenoh":
        t.close()
    else:
        node.destroy_node()
        rclpy.shutdown()
    sys.stdout.flush()
    os._exit(0)  # middleware threads must not keep the process alive


if __name__ == "__main__":
    sys.exit(main())
