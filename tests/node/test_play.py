"""``Player``: recorded pace scaled by the rate, looping until stopped, topics a transport cannot carry reported;
and the transcoding it relies on (a ROS 2 message rebuilt with ROS 1 definitions and back)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefuse.errors import NodeError
from edgefuse.msgs import deserialize
from edgefuse.msgs.transcode import transcode
from edgefuse.node.play import Player
from edgefuse.transport import RELIABLE, Received, Transport, open_transport
from tests.node._live import free_port

DEMO = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo" / "demo.mcap"


@contextlib.contextmanager
def _zenoh_pair() -> Iterator[tuple[Transport, Transport]]:
    """A subscribing and a playing Zenoh session, linked over TCP on 127.0.0.1 (no scouting)."""
    pytest.importorskip("zenoh")
    port = free_port()
    with open_transport("zenoh", node_name="sub", listen=[f"tcp/127.0.0.1:{port}"], connect=[],
                        multicast_scouting=False) as sub, \
         open_transport("zenoh", node_name="play", connect=[f"tcp/127.0.0.1:{port}"], listen=[],
                        multicast_scouting=False) as pub:
        yield sub, pub


def test_loop_plays_again_until_stopped() -> None:
    got: queue.Queue[Received] = queue.Queue()
    with _zenoh_pair() as (sub, pub):
        sub.subscribe("/radar/polar/compressed", "sensor_msgs/msg/CompressedImage", got.put, RELIABLE)
        player = Player(DEMO, pub, rate=8.0, loop=True, topics=["/radar/polar/compressed"], delay_s=0.5)
        result: dict[str, object] = {}
        th = threading.Thread(target=lambda: result.update(player.run()))
        t0 = time.monotonic()
        th.start()
        while player.loops < 2 and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        player.stop()
        th.join(10)
        assert not th.is_alive()
    assert player.loops >= 2
    published = player.published["/radar/polar/compressed"]
    assert published >= 2 * 14  # 14 radar scans per pass
    time.sleep(0.2)
    assert got.qsize() == published
    # paced: at 8x the 3.3 s recording takes ~0.4 s per pass, not flat out
    assert float(result["wall_s"]) > 0.3 * (player.loops)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [({"rate": 0}, "--rate"), ({"rate": float("nan")}, "--rate"),
                                                 ({"delay_s": -1}, "--delay"), ({"clock_hz": 0}, "--clock-hz"),
                                                 ({"wait_subscribers": -1}, "--wait-subscribers"),
                                                 ({"wait_timeout_s": 0}, "--wait-timeout")])
def test_bad_options_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(NodeError, match=message):
        Player(DEMO, None, **kwargs)  # type: ignore[arg-type]


class _PlainPublisher:
    """A publisher of a transport that cannot count its subscribers (a user's own transport, say)."""

    def __init__(self, topic: str, msgtype: str) -> None:
        self.topic, self.msgtype = topic, msgtype

    def publish(self, data: bytes | memoryview, *, stamp_ns: int | None = None) -> None:
        raise AssertionError("nothing may be played before the wait")

    def close(self) -> None:
        pass


class _PlainTransport:
    name = "plain"
    fmt = "cdr"

    def advertise(self, topic: str, msgtype: str, qos: object) -> _PlainPublisher:
        return _PlainPublisher(topic, msgtype)


def test_wait_subscribers_needs_a_transport_that_counts_them() -> None:
    player = Player(DEMO, _PlainTransport(), topics=["/radar/polar/compressed"], delay_s=0,  # type: ignore[arg-type]
                    wait_subscribers=1)
    with pytest.raises(NodeError, match="plain transport cannot count"):
        player.run()
    assert player.published == {"/radar/polar/compressed": 0}


def test_wait_subscribers_over_zenoh_counts_subscriptions_of_the_topic_and_type() -> None:
    got: queue.Queue[Received] = queue.Queue()
    with _zenoh_pair() as (sub, pub):
        sub.subscribe("/radar/polar/compressed", "sensor_msgs/msg/Image", got.put, RELIABLE)  # another type
        alone = Player(DEMO, pub, topics=["/radar/polar/compressed"], delay_s=0, wait_subscribers=1,
                       wait_timeout_s=0.5)
        with pytest.raises(NodeError, match="/radar/polar/compressed has 0"):
            alone.run()
        sub.subscribe("/radar/polar/compressed", "sensor_msgs/msg/CompressedImage", got.put, RELIABLE)
        sub.subscribe("/radar/polar/compressed", "sensor_msgs/msg/CompressedImage", got.put, RELIABLE)
        player = Player(DEMO, pub, rate=4.0, topics=["/radar/polar/compressed"], delay_s=0, wait_subscribers=2,
                        wait_timeout_s=30)
        report = player.run()
        deadline = time.monotonic() + 10
        while got.qsize() < 2 * 14 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert report["matched_subscriptions"] == {"/radar/polar/compressed": 2}
    assert report["published"] == {"/radar/polar/compressed": 14}
    assert got.qsize() == 2 * 14  # both subscriptions got every scan, the first included


def _ros2_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    pytest.importorskip("rclpy", reason="rclpy is not installed (pip install 'edgefuse[ros2]')")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + (os.getpid() + 37) % 100))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def test_wait_subscribers_times_out_naming_the_topics_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    _ros2_env(monkeypatch)
    with open_transport("ros2", node_name="play_alone") as pub:
        player = Player(DEMO, pub, topics=["/radar/polar/compressed", "/zed_left/camera_info"], delay_s=0,
                        wait_subscribers=1, wait_timeout_s=0.5)
        with pytest.raises(NodeError, match=r"after 0.5 s /radar/polar/compressed has 0, /zed_left/camera_info "
                                            r"has 0"):
            player.run()
    assert sum(player.published.values()) == 0  # nothing was played into the void


def test_wait_subscribers_then_every_message_arrives_and_is_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    _ros2_env(monkeypatch)
    got: queue.Queue[Received] = queue.Queue()
    with open_transport("ros2", node_name="sub_reliable") as sub, open_transport("ros2", node_name="play") as pub:
        sub.subscribe("/radar/polar/compressed", "sensor_msgs/msg/CompressedImage", got.put, RELIABLE)
        player = Player(DEMO, pub, rate=4.0, topics=["/radar/polar/compressed"], delay_s=0, wait_subscribers=1,
                        wait_timeout_s=30)
        report = player.run()
        deadline = time.monotonic() + 10
        while got.qsize() < 14 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert report["matched_subscriptions"] == {"/radar/polar/compressed": 1}
    assert report["published"] == {"/radar/polar/compressed": 14}
    assert report["unacknowledged"] == []
    assert got.qsize() == 14


def test_transcode_cdr_to_ros1_and_back() -> None:
    from edgefuse.bag import open_bag
    from edgefuse.transport.ros1 import ros1_typestore

    with open_bag(DEMO) as bag:
        raw = next(iter(bag.messages(["/radar/polar/compressed"])))
    ros1 = ros1_typestore()
    r1 = transcode(raw.rawdata, raw.msgtype, src_fmt="cdr", dst_fmt="ros1", dst_typestore=ros1)
    m1 = deserialize(r1, raw.msgtype, fmt="ros1", typestore=ros1)
    assert hasattr(m1.header, "seq")
    back = transcode(r1, raw.msgtype, src_fmt="ros1", dst_fmt="cdr", src_typestore=ros1)
    m0 = deserialize(raw.rawdata, raw.msgtype)
    m2 = deserialize(back, raw.msgtype)
    assert m2.header.stamp == m0.header.stamp
    assert m2.format == m0.format
    assert bytes(m2.data) == bytes(m0.data)
