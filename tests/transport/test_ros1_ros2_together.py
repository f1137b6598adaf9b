"""rospy (Debian, ROS 1) and the ROS 2 wheels in one environment: both install ``rosgraph_msgs``/``std_msgs``.
rospy must get the ROS 1 (genpy) classes and the environment's ROS 2 modules must stay what rclpy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.transport.test_ros1 import _why_skip

_REASON = _why_skip()

_CHECK = """
from edgefuse.transport.ros1 import load_rospy
load_rospy()
import rospy.impl.rosout as rosout
assert hasattr(rosout.Log, '_md5sum'), 'rospy got a ROS 2 Log'
import rosgraph_msgs.msg, std_msgs.msg
assert not hasattr(rosgraph_msgs.msg.Clock, '_md5sum'), 'rclpy would get a ROS 1 Clock'
assert not hasattr(std_msgs.msg.Header, '_md5sum')
from edgefuse.transport.ros2 import message_class
message_class('rosgraph_msgs/msg/Clock')
print('ok')
"""


@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
def test_rospy_and_rclpy_message_packages_coexist() -> None:
    pytest.importorskip("rclpy", reason="the ROS 2 wheels (edgefuse[ros2]) are not installed")
    out = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
