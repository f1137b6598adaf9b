"""``edgefuse node`` and ``edgefuse play`` live over Zenoh, between separate processes on 127.0.0.1.

- the bundled demo played at 1x into the node gives outputs whose digests equal ``edgefuse replay``'s, while
  the node records inputs and outputs to MCAP, publishes /diagnostics and its lifecycle transitions, and
  stops cleanly on SIGTERM;
- faults: malformed messages (counted), a wrong type on an input topic (counted by the transport), an
  input that stops (STALE on /diagnostics) and comes back (OK again), a node that cannot keep up (bounded
  queues, drops counted per input).
"""

from __future__ import annotations

import json
import queue
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("zenoh", reason="eclipse-zenoh is not installed (pip install 'edgefuse[zenoh]')")

from edgefuse.msgs import deserialize, serialize
from edgefuse.msgs.image import msg_from_compressed
from edgefuse.msgs.types import CompressedImageData
from edgefuse.msgs.typestore import get_typestore
from edgefuse.node.node import TRANSITION_QOS
from edgefuse.transport import RELIABLE, Received, open_transport
from tests.node._live import DEMO_INPUTS, cli, free_port, process, start_node, stop, wait_for, zenoh_client_options

DEMO_BAG = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo" / "demo.mcap"
DIAG = "diagnostic_msgs/msg/DiagnosticArray"


def _replay_digests() -> dict[str, str]:
    from edgefuse.replay import replay

    result = replay("edgefuse/data/pipelines/radiate_demo.yaml", max_speed=True)
    return dict(result.report["output_digests"])


def test_demo_live_equals_replay_with_record_diagnostics_and_lifecycle(tmp_path: Path) -> None:
    port = free_port()
    rec = tmp_path / "live_rec"
    args, log = start_node(tmp_path, "radiate_demo", port, "--record", str(rec))
    got: queue.Queue[Received] = queue.Queue()
    with process(args, log) as node:
        wait_for(lambda: "active;" in log.read_text(), 120, "the node to become active", node, log)
        with open_transport("zenoh", node_name="observer", **zenoh_client_options(port)) as obs:
            obs.subscribe("/diagnostics", DIAG, got.put, RELIABLE)
            obs.subscribe("/edgefuse/transition_event", "lifecycle_msgs/msg/TransitionEvent", got.put,
                          TRANSITION_QOS)
            with process(cli("play", str(DEMO_BAG), "-o", f"connect=tcp/127.0.0.1:{port}", "-o",
                             "multicast_scouting=false", "--delay", "0.5", "--topics", *DEMO_INPUTS.values(),
                             "--wait-subscribers", "1", "--report", str(tmp_path / "play.json")),
                         tmp_path / "play.log") as play:
                assert play.wait(60) == 0, (tmp_path / "play.log").read_text()
            report_path = tmp_path / "node.json"
            # everything played was received and processed before the stop
            time.sleep(1.5)
            assert stop(node, signal.SIGTERM) == 0, log.read_text()
            msgs = []
            while not got.empty():
                msgs.append(got.get_nowait())
    report: dict[str, Any] = json.loads(report_path.read_text())
    play_report = json.loads((tmp_path / "play.json").read_text())
    assert play_report["matched_subscriptions"] == {topic: 1 for topic in DEMO_INPUTS.values()}, play_report
    # nothing dropped anywhere: every input message played was received and fed
    for name, topic in {"lidar": "/velodyne_points", "camera": "/zed_left/image_raw/compressed",
                        "radar": "/radar/polar/compressed"}.items():
        live = report["inputs_live"][name]
        assert live["received"] == play_report["published"][topic] == report["inputs_fed"][name], live
        assert live["dropped"] == {}
        assert live["decode_errors"] == 0
    replayed = _replay_digests()
    assert report["output_digests"] == {t: replayed[t] for t in report["output_digests"]}
    assert set(report["output_digests"]) >= {"/edgefuse/zed_left/depth", "/edgefuse/lidar/colored",
                                             "/edgefuse/radar/points", "/edgefuse/radar/colored"}
    assert report["lifecycle"] == ["configure: unconfigured -> inactive", "activate: inactive -> active",
                                   "shutdown: active -> finalized"]
    assert report["stopped_by"] == "interrupted by SIGTERM"
    assert report["end_to_end"]["count"] == report["sets"] > 0
    # /diagnostics: per stage, end to end, per input, with the budgets
    diags = [deserialize(m.data, DIAG) for m in msgs if m.msgtype == DIAG]
    assert len(diags) >= 3
    names = {s.name: s for d in diags for s in d.status}
    assert {"edgefuse/radiate_demo/stage/project", "edgefuse/radiate_demo/end_to_end",
            "edgefuse/radiate_demo/input/lidar"} <= set(names)
    e2e = {kv.key: kv.value for kv in names["edgefuse/radiate_demo/end_to_end"].values}
    assert e2e["deadline_ms"] == "150.000"
    events = [deserialize(m.data, m.msgtype) for m in msgs if m.msgtype.startswith("lifecycle_msgs")]
    # configure and activate happened before the observer joined: kept for late joiners (transient local)
    assert [(e.start_state.label, e.goal_state.label) for e in events][:2] == [
        ("unconfigured", "inactive"), ("inactive", "active")]
    # the recording holds the inputs as received and the outputs, and is complete
    from edgefuse.bag import open_bag

    with open_bag(rec) as bag:
        counts = {t: int(i.count) for t, i in bag.topics.items()}
    assert counts["/velodyne_points"] == play_report["published"]["/velodyne_points"]
    assert counts["/edgefuse/lidar/colored"] == report["output_counts"]["/edgefuse/lidar/colored"]


def _pipeline(tmp: Path) -> Path:
    path = tmp / "cam.yaml"
    path.write_text(
        "edgefuse_pipeline: 1\nname: cam\ninputs:\n  cam: {topic: /cam, type: CompressedImage}\n"
        "sync: {policy: each, inputs: [cam]}\n"
        "stages:\n  - {name: decode, type: decode_image, in: {image: cam}, budget_ms: 50}\n"
        "outputs:\n  - {topic: /cam/decoded, from: decode.image}\n")
    return path


def _jpeg(stamp_ns: int) -> bytes:
    import cv2

    ok, enc = cv2.imencode(".jpg", np.full((24, 32, 3), stamp_ns % 251, np.uint8))
    assert ok
    payload = CompressedImageData(stamp_ns, "cam", "jpeg", enc.reshape(-1))
    return bytes(serialize(msg_from_compressed(get_typestore(), payload), "sensor_msgs/msg/CompressedImage"))


def _levels(msgs: list[Received], name: str) -> list[int]:
    out = []
    for m in msgs:
        for s in deserialize(m.data, DIAG).status:
            if s.name == name:
                out.append(int(s.level))
    return out


def test_faults_malformed_wrong_type_stale_and_recovery(tmp_path: Path) -> None:
    port = free_port()
    args, log = start_node(tmp_path, str(_pipeline(tmp_path)), port, "--stale-after", "0.5")
    diags: queue.Queue[Received] = queue.Queue()
    outputs: queue.Queue[Received] = queue.Queue()
    with process(args, log) as node:
        wait_for(lambda: "active;" in log.read_text(), 60, "the node to become active", node, log)
        with open_transport("zenoh", node_name="sensor", **zenoh_client_options(port)) as t:
            t.subscribe("/diagnostics", DIAG, diags.put, RELIABLE)
            t.subscribe("/cam/decoded", "sensor_msgs/msg/Image", outputs.put, RELIABLE)
            cam = t.advertise("/cam", "sensor_msgs/msg/CompressedImage", RELIABLE)
            wrong = t.advertise("/cam", "std_msgs/msg/String", RELIABLE)
            time.sleep(1.0)  # discovery
            stamp = 1_700_000_000_000_000_000
            for i in range(20):
                cam.publish(_jpeg(stamp + i * 50_000_000))
                if i % 5 == 0:
                    cam.publish(b"\x00\x01\x00\x00garbage")  # malformed CDR
                    wrong.publish(serialize(get_typestore().types["std_msgs/msg/String"](data="x"),
                                            "std_msgs/msg/String"))
                time.sleep(0.05)
            wait_for(lambda: outputs.qsize() >= 20, 10, "20 decoded images")
            time.sleep(2.0)  # the input stops: STALE
            stale = [m for m in _drain(diags)]
            for i in range(20, 60):  # and comes back, for 2 s (two diagnostics periods at least)
                cam.publish(_jpeg(stamp + i * 50_000_000))
                time.sleep(0.05)
            back = _drain(diags)
        assert stop(node, signal.SIGINT) == 0, log.read_text()
    report = json.loads((tmp_path / "node.json").read_text())
    live = report["inputs_live"]["cam"]
    assert live["decode_errors"] == 4
    assert live["processed"] == 64  # 60 good + 4 malformed, each taken off the queue once
    assert report["inputs_fed"]["cam"] == 60
    assert report["output_counts"]["/cam/decoded"] == 60
    assert report["transport_stats"].get("type_mismatch", 0) == 4
    name = "edgefuse/cam/input/cam"
    assert 3 in _levels(stale, name), "the stopped input was never STALE"
    assert 0 in _levels(back, name), "the input did not recover (OK) after it came back"


def _drain(q: queue.Queue[Received]) -> list[Received]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_a_node_that_cannot_keep_up_drops_oldest_counted(tmp_path: Path) -> None:
    port = free_port()
    args, log = start_node(tmp_path, str(_pipeline(tmp_path)), port, "--queue-depth", "2")
    with process(args, log) as node:
        wait_for(lambda: "active;" in log.read_text(), 60, "the node to become active", node, log)
        with open_transport("zenoh", node_name="sensor", **zenoh_client_options(port)) as t:
            cam = t.advertise("/cam", "sensor_msgs/msg/CompressedImage", RELIABLE)
            time.sleep(1.0)
            big = _big_jpeg()
            t0 = time.monotonic()
            for _ in range(300):  # a burst far faster than decode_image can decode 4k JPEGs here
                cam.publish(big)
            assert time.monotonic() - t0 < 30
            time.sleep(1.0)
        assert stop(node, signal.SIGTERM) == 0, log.read_text()
    report = json.loads((tmp_path / "node.json").read_text())
    live = report["inputs_live"]["cam"]
    assert live["max_queued"] <= 2
    dropped = live["dropped"].get("queue_full", 0)
    assert dropped > 0
    # every message is accounted for: processed, dropped at the queue, or dropped at stop
    assert live["received"] == live["processed"] + dropped + live["dropped"].get("shutdown", 0)


def _big_jpeg() -> bytes:
    import cv2

    rng = np.random.default_rng(0)
    ok, enc = cv2.imencode(".jpg", rng.integers(0, 255, (2160, 3840, 3), dtype=np.uint8))
    assert ok
    payload = CompressedImageData(1_700_000_000_000_000_000, "cam", "jpeg", enc.reshape(-1))
    return bytes(serialize(msg_from_compressed(get_typestore(), payload), "sensor_msgs/msg/CompressedImage"))


def test_sim_time_follows_the_players_clock(tmp_path: Path) -> None:
    """``play --clock`` → ``node --clock sim``: the node's clock (diagnostics stamps) is the recording's time."""
    from edgefuse.time import ns_from_ros

    port = free_port()
    args, log = start_node(tmp_path, str(_pipeline(tmp_path)), port, "--clock", "sim",
                           "--remap", "/cam:=/zed_left/image_raw/compressed")
    diags: queue.Queue[Received] = queue.Queue()
    with process(args, log) as node:
        wait_for(lambda: "active;" in log.read_text(), 60, "the node to become active", node, log)
        with open_transport("zenoh", node_name="observer", **zenoh_client_options(port)) as obs:
            obs.subscribe("/diagnostics", DIAG, diags.put, RELIABLE)
            with process(cli("play", str(DEMO_BAG), "-o", f"connect=tcp/127.0.0.1:{port}", "-o",
                             "multicast_scouting=false", "--clock", "--topics", "/zed_left/image_raw/compressed",
                             "--delay", "1.0"), tmp_path / "play.log") as play:
                assert play.wait(60) == 0, (tmp_path / "play.log").read_text()
            time.sleep(1.2)
            msgs = _drain(diags)
        assert stop(node, signal.SIGTERM) == 0, log.read_text()
    report = json.loads((tmp_path / "node.json").read_text())
    assert report["clock"] == "sim"
    assert report["clock_messages"] > 50  # 40 Hz for ~3.3 s, plus one before each message
    assert report["inputs_fed"]["cam"] == 50
    from edgefuse.bag import open_bag

    with open_bag(DEMO_BAG) as bag:
        times = [raw.recv_ns for raw in bag.messages(["/zed_left/image_raw/compressed"])]
    first, last = min(times), max(times)
    stamps = [ns_from_ros(deserialize(m.data, DIAG).header.stamp) for m in msgs]
    in_bag_time = [s for s in stamps if first - 2_000_000_000 <= s <= last + 2_000_000_000]
    assert in_bag_time, f"no diagnostics stamped in the recording's time ({stamps})"


def _router(endpoint: str) -> Any:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "transport" / "_zenoh_router.py"
    proc = subprocess.Popen([sys.executable, str(script), endpoint], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), line
    return proc


def test_the_node_reconnects_when_the_router_restarts(tmp_path: Path) -> None:
    """Client mode through a router: the router is killed and started again on the same port; the node's
    session reconnects and the input flows again (counted in the transport's stats)."""
    port = free_port()
    endpoint = f"tcp/127.0.0.1:{port}"
    router = _router(endpoint)
    client = ["-o", "mode=client", "-o", f"connect={endpoint}", "-o", "multicast_scouting=false"]
    log = tmp_path / "node.log"
    args = cli("node", str(_pipeline(tmp_path)), *client, "--report", str(tmp_path / "node.json"))
    outputs: queue.Queue[Received] = queue.Queue()
    try:
        with process(args, log) as node:
            wait_for(lambda: "active;" in log.read_text(), 60, "the node to become active", node, log)
            with open_transport("zenoh", node_name="sensor", mode="client", connect=[endpoint],
                                multicast_scouting=False) as t:
                t.subscribe("/cam/decoded", "sensor_msgs/msg/Image", outputs.put, RELIABLE)
                cam = t.advertise("/cam", "sensor_msgs/msg/CompressedImage", RELIABLE)
                time.sleep(1.0)
                stamp = 1_700_000_000_000_000_000
                for i in range(10):
                    cam.publish(_jpeg(stamp + i * 50_000_000))
                    time.sleep(0.05)
                wait_for(lambda: outputs.qsize() >= 10, 10, "10 outputs before the restart")
                router.kill()
                router.wait(10)
                time.sleep(1.0)
                router = _router(endpoint)
                before = outputs.qsize()

                def flowing() -> bool:
                    cam.publish(_jpeg(stamp + 10**9))
                    return outputs.qsize() > before

                wait_for(flowing, 30, "outputs again after the router restarted")
            assert stop(node, signal.SIGTERM) == 0, log.read_text()
    finally:
        router.kill()
        router.wait(10)
    report = json.loads((tmp_path / "node.json").read_text())
    assert report["transport_stats"]["reconnects"] >= 1
    assert report["inputs_fed"]["cam"] > 10
