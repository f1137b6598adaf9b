"""``edgefuse node``/``play`` live over ROS 1: a real rosmaster, the node and the player as separate processes.

The bundled demo (a ROS 2 MCAP) is played onto ROS 1 (re-serialised into ROS 1 definitions: ``Header.seq``),
received by the node and decoded with ROS 1 definitions; the outputs equal ``edgefuse replay``'s.  A real
rospy subscriber (Debian's python3) receives the node's /diagnostics.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.node._live import DEMO_INPUTS, check_demo_live_equals_replay, cli, process, stop, wait_for
from tests.transport.test_ros1 import _peer_env, _start_master, _stop, _why_skip

DEMO_BAG = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo" / "demo.mcap"

_REASON = _why_skip()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

_ECHO = """
import sys, rospy
from diagnostic_msgs.msg import DiagnosticArray
rospy.init_node('diag_echo', disable_signals=True)
got = []
rospy.Subscriber('/diagnostics', DiagnosticArray, lambda m: got.append(m))
t0 = __import__('time').time()
while not got and __import__('time').time() - t0 < 30:
    rospy.sleep(0.1)
print(len(got), sorted(s.name for s in got[0].status) if got else [], flush=True)
"""


def test_demo_live_over_ros1_equals_replay(tmp_path: Path) -> None:
    master, uri = _start_master(tmp_path)
    try:
        node_args = cli("node", "radiate_demo", "--transport", "ros1", "-o", f"master_uri={uri}",
                        "--report", str(tmp_path / "node.json"))
        log = tmp_path / "node.log"
        with process(node_args, log) as node:
            wait_for(lambda: "active;" in log.read_text(), 120, "the node to become active", node, log)
            echo = subprocess.Popen(["/usr/bin/python3", "-c", _ECHO], env=_peer_env(uri, tmp_path),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                with process(cli("play", str(DEMO_BAG), "--transport", "ros1", "-o", f"master_uri={uri}",
                                 "--name", "player", "--delay", "0.5", "--topics", *DEMO_INPUTS.values(),
                                 "--wait-subscribers", "1", "--report", str(tmp_path / "play.json")),
                             tmp_path / "play.log") as play:
                    assert play.wait(90) == 0, (tmp_path / "play.log").read_text()
                echo_out, _ = echo.communicate(timeout=40)
            finally:
                if echo.poll() is None:
                    echo.kill()
            time.sleep(1.5)
            assert stop(node, signal.SIGTERM) == 0, log.read_text()
    finally:
        _stop(master)
    report = check_demo_live_equals_replay(tmp_path)
    played = json.loads((tmp_path / "play.json").read_text())
    assert played["matched_subscriptions"] == {topic: 1 for topic in DEMO_INPUTS.values()}, played
    assert len(report["output_digests"]) == 4
    count, names = echo_out.strip().split(" ", 1)
    assert int(count) >= 1, echo_out
    assert "edgefuse/radiate_demo/end_to_end" in names
