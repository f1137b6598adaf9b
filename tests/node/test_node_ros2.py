"""``edgefuse node``/``play`` live over ROS 2 (rclpy, Fast DDS), separate processes on one host: the demo's
outputs equal ``edgefuse replay``'s, and a plain rclpy subscriber process receives the node's /diagnostics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.node._live import DEMO_INPUTS, check_demo_live_equals_replay, cli, env, process, stop, wait_for

pytest.importorskip("rclpy", reason="rclpy is not installed (pip install 'edgefuse[ros2]', x86_64 Linux only)")

DEMO_BAG = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo" / "demo.mcap"

_ECHO = """
import rclpy, time
from rclpy.qos import QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
rclpy.init()
node = rclpy.create_node('diag_echo')
got = []
node.create_subscription(DiagnosticArray, '/diagnostics', got.append, QoSProfile(depth=10,
                         reliability=ReliabilityPolicy.RELIABLE))
t0 = time.time()
while len(got) < 2 and time.time() - t0 < 40:
    rclpy.spin_once(node, timeout_sec=0.1)
print(len(got), sorted(s.name for s in got[-1].status) if got else [], flush=True)
node.destroy_node()
rclpy.shutdown()
"""


def test_demo_live_over_ros2_equals_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    log = tmp_path / "node.log"
    # Reliable inputs and a player that waits for the node's subscriptions to match: the check is that every
    # played message is fed, which the default best-effort inputs cannot promise on a loaded machine (a
    # sample Fast DDS drops there is counted in transport_stats, not lost silently, but it is lost).
    with process(cli("node", "radiate_demo", "--transport", "ros2", "--input-qos", "reliable",
                     "--report", str(tmp_path / "node.json")), log) as node:
        wait_for(lambda: "active;" in log.read_text(), 120, "the node to become active", node, log)
        echo = subprocess.Popen([sys.executable, "-c", _ECHO], env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            with process(cli("play", str(DEMO_BAG), "--transport", "ros2", "--name", "player", "--delay", "1.0",
                             "--topics", *DEMO_INPUTS.values(), "--wait-subscribers", "1",
                             "--report", str(tmp_path / "play.json")), tmp_path / "play.log") as play:
                assert play.wait(90) == 0, (tmp_path / "play.log").read_text()
            echo_out, _ = echo.communicate(timeout=60)
        finally:
            if echo.poll() is None:
                echo.kill()
        time.sleep(1.5)
        assert stop(node, signal.SIGTERM) == 0, log.read_text()
    report = check_demo_live_equals_replay(tmp_path)
    played = json.loads((tmp_path / "play.json").read_text())
    assert all(n >= 1 for n in played["matched_subscriptions"].values()), played
    assert sorted(played["matched_subscriptions"]) == sorted(DEMO_INPUTS.values())
    assert played["unacknowledged"] == [], played
    assert report["transport_stats"]["messages_lost"] == 0, report["transport_stats"]
    assert len(report["output_digests"]) == 4
    count, names = echo_out.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 2, echo_out
    assert "edgefuse/radiate_demo/end_to_end" in names
