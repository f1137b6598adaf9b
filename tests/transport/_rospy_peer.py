"""A real rospy peer for ``test_ros1.py``, run with Debian's ``/usr/bin/python3`` and the generated message
classes of ``python3-std-msgs`` / ``python3-sensor-msgs``.

    _rospy_peer.py talk RATE_HZ SECONDS     publish /peer/string (String), /peer/imu (Imu) and /peer/cloud
                                            (a 1.2 MB PointCloud2), message i built by the functions below
    _rospy_peer.py listen TOPIC TYPE COUNT SECONDS
                                            subscribe with TYPE's generated class, print each message as one
                                            JSON line (see :func:`to_jsonable`), exit after COUNT (rc 3 on timeout)

Both print ``READY <node name>`` once set up.  The value functions import nothing from ROS, so the
tests (under the project's Python) build the same messages from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from typing import Any

CLOUD_POINTS = 50_000
CLOUD_POINT_STEP = 24  # x y z intensity (float32) ring (uint16, 2 bytes padding) t (float32)
CLOUD_FIELDS = (("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7), ("ring", 16, 4), ("t", 20, 7))
_PATTERN = bytes(range(251)) * (CLOUD_POINTS * CLOUD_POINT_STEP // 251 + 2)


def string_text(i: int) -> str:
    return f"hello from rospy {i}"


def stamp(i: int) -> tuple[int, int]:
    return 1_700_000_000 + i, 1000 * i + 7


def imu_values(i: int) -> dict[str, Any]:
    """The fields of the i-th Imu (every float exactly representable, so float64 round-trips exactly)."""
    a = i / 8
    return {
        "frame_id": "imu_link",
        "orientation": (0.0, 0.0, math.sin(a), math.cos(a)),
        "orientation_covariance": tuple(0.125 * k for k in range(9)),
        "angular_velocity": (0.25 * i, -0.5, 0.75),
        "angular_velocity_covariance": tuple(0.5 * k for k in range(9)),
        "linear_acceleration": (0.0, 0.0, 9.8125 + i),
        "linear_acceleration_covariance": tuple(-0.25 * k for k in range(9)),
    }


def cloud_data(i: int) -> bytes:
    """The i-th cloud's 1.2 MB of point data (a byte pattern shifted by i)."""
    k = i % 251
    return _PATTERN[k : k + CLOUD_POINTS * CLOUD_POINT_STEP]


def to_jsonable(value: Any) -> Any:
    """A message as JSON-ready data: fields by name, times as {sec, nanosec}, byte arrays as {len, sha256}.

    Works on genpy messages (``__slots__``) and on rosbags' classes (dataclasses) alike, so a message
    printed by the peer and one decoded by edgefuse compare equal when their contents are."""
    if isinstance(value, (bytes, bytearray)):
        return {"len": len(value), "sha256": hashlib.sha256(value).hexdigest()}
    if hasattr(value, "dtype") and hasattr(value, "tobytes"):  # numpy array (rosbags)
        if str(value.dtype) == "uint8":
            return to_jsonable(value.tobytes())
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "secs") and hasattr(value, "nsecs"):  # genpy Time / Duration
        return {"sec": int(value.secs), "nanosec": int(value.nsecs)}
    if hasattr(value, "__dataclass_fields__"):  # rosbags: constants are fields with a default, not message fields
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name[0] != "_" and f.default is dataclasses.MISSING}
    if hasattr(value, "__slots__") and hasattr(value, "_type"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__slots__}
    return value


def _talk(rate_hz: float, seconds: float) -> int:
    import rospy
    from sensor_msgs.msg import Imu, PointCloud2, PointField
    from std_msgs.msg import String

    rospy.init_node("peer_talker", anonymous=True, disable_signals=True)
    pubs = {
        "string": rospy.Publisher("/peer/string", String, queue_size=10),
        "imu": rospy.Publisher("/peer/imu", Imu, queue_size=10),
        "cloud": rospy.Publisher("/peer/cloud", PointCloud2, queue_size=2),
    }
    print("READY", rospy.get_name(), flush=True)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end and not rospy.is_shutdown():
        sec, nsec = stamp(i)
        pubs["string"].publish(String(data=string_text(i)))
        imu = Imu()
        for key, val in imu_values(i).items():
            if key == "frame_id":
                imu.header.frame_id = val
            elif "covariance" in key:
                setattr(imu, key, val)
            else:
                _set_xyz(getattr(imu, key), val)
        imu.header.stamp = rospy.Time(sec, nsec)
        pubs["imu"].publish(imu)
        cloud = PointCloud2()
        cloud.header.stamp = rospy.Time(sec, nsec)
        cloud.header.frame_id = "lidar"
        cloud.height, cloud.width = 1, CLOUD_POINTS
        cloud.fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in CLOUD_FIELDS]
        cloud.is_bigendian, cloud.point_step = False, CLOUD_POINT_STEP
        cloud.row_step, cloud.is_dense = CLOUD_POINTS * CLOUD_POINT_STEP, True
        cloud.data = cloud_data(i)
        pubs["cloud"].publish(cloud)
        i += 1
        time.sleep(1.0 / rate_hz)
    return 0


def _set_xyz(target: Any, values: tuple[float, ...]) -> None:
    for name, v in zip(("x", "y", "z", "w"), values, strict=False):
        setattr(target, name, v)


def _listen(topic: str, msgtype: str, count: int, seconds: float) -> int:
    import queue

    import rospy
    from roslib.message import get_message_class

    cls = get_message_class(msgtype)
    if cls is None:
        print(f"no message class {msgtype}", file=sys.stderr)
        return 2
    rospy.init_node("peer_listener", anonymous=True, disable_signals=True)
    got: queue.Queue[Any] = queue.Queue()
    rospy.Subscriber(topic, cls, got.put, queue_size=100)
    print("READY", rospy.get_name(), flush=True)
    end = time.monotonic() + seconds
    for _ in range(count):
        try:
            msg = got.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            return 3
        caller = msg._connection_header.get("callerid")
        print(json.dumps({"callerid": caller, "msg": to_jsonable(msg)}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["talk"] and len(argv) == 3:
        return _talk(float(argv[1]), float(argv[2]))
    if argv[:1] == ["listen"] and len(argv) == 5:
        return _listen(argv[1], argv[2], int(argv[3]), float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
