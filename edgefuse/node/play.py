"""``edgefuse play``: publish a recording onto a transport as a robot's sensors would.

Messages go out at their recorded inter-arrival times (the bag's record time, scaled by ``rate``), in
record order, each serialized as the transport wants it (a ROS 1 bag played onto Zenoh/ROS 2 is
converted to CDR and back the other way, by rosbags).  ``clock``: ``rosgraph_msgs/msg/Clock`` on
``/clock`` at ``clock_hz`` (and just before every message), carrying the recording's time, so that a node
run with ``--clock sim`` lives in the recording's time.  ``loop``: start again at the end (until stopped).
``delay_s``: wait this long after advertising before the first message, so that subscribers have matched
(discovery takes a moment on every middleware).  ``wait_subscribers``: before that delay, wait until every
played topic has this many matched subscriptions (on a transport whose publishers can tell: all three), so that a
subscriber slow to discover the player (a loaded machine) does not miss the first messages; a
:class:`NodeError` after ``wait_timeout_s``.  At the end, a transport whose reliable publishers can wait for
their subscribers' acknowledgements (ROS 2) is given up to ``ack_timeout_s`` before the publishers close, so
that the last messages are not lost with the closing writer; topics still unacknowledged are reported.

The report says how many messages were published per topic and how late each was against its schedule
(p50/p99/max): a player that cannot keep the pace shows it there instead of silently stretching time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError, NodeError, TransportError
from edgefuse.transport.base import RELIABLE, SENSOR_DATA, Publisher, Transport, WireFormat

CLOCK_TOPIC = "/clock"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"


class Player:
    """Plays ``bag`` onto ``transport`` (opened by the caller)."""

    def __init__(self, bag: str | Path | Sequence[str | Path], transport: Transport, *, rate: float = 1.0,
                 loop: bool = False, clock: bool = False, clock_hz: float = 40.0,
                 topics: Sequence[str] | None = None, remap: dict[str, str] | None = None,
                 delay_s: float = 1.0, wait_subscribers: int = 0, wait_timeout_s: float = 30.0,
                 ack_timeout_s: float = 5.0) -> None:
        if not (rate > 0 and np.isfinite(rate)):
            raise NodeError(f"--rate must be a finite number > 0, got {rate}")
        if not (clock_hz > 0 and np.isfinite(clock_hz)):
            raise NodeError(f"--clock-hz must be a finite number > 0, got {clock_hz}")
        if not (delay_s >= 0 and np.isfinite(delay_s)):
            raise NodeError(f"--delay must be a finite number >= 0, got {delay_s}")
        if wait_subscribers < 0:
            raise NodeError(f"--wait-subscribers must be >= 0, got {wait_subscribers}")
        if not (wait_timeout_s > 0 and np.isfinite(wait_timeout_s)):
            raise NodeError(f"--wait-timeout must be a finite number > 0, got {wait_timeout_s}")
        self.bag = bag
        self.wait_subscribers = int(wait_subscribers)
        self.wait_timeout_s = float(wait_timeout_s)
        self.ack_timeout_s = float(ack_timeout_s)
        #: topic → matched subscriptions when playing started (with ``wait_subscribers``)
        self.matched: dict[str, int] = {}
        #: topics whose reliable publisher still had unacknowledged messages when it closed
        self.unacknowledged: list[str] = []
        self.transport = transport
        self.rate = float(rate)
        self.loop = loop
        self.clock = clock
        self.clock_hz = float(clock_hz)
        self.topics = None if topics is None else list(topics)
        self.remap = dict(remap or {})
        self.delay_s = float(delay_s)
        self.published: dict[str, int] = {}
        #: topics of the recording that the transport cannot carry (all topics played), topic → why
        self.skipped_topics: dict[str, str] = {}
        self.errors: dict[str, int] = {}
        self.first_errors: list[str] = []
        self.loops = 0
        self.clock_published = 0
        self._late: list[int] = []
        self._stop = threading.Event()
        #: (wall clock at the pass's start, its first record time): what /clock is computed from
        self._anchor: tuple[int, int] | None = None
        self._clock_pub: Publisher | None = None
        self._clock_lock = threading.Lock()
        self.wall_s = 0.0

    def stop(self) -> None:
        """Stop after the current message (from another thread or a signal handler)."""
        self._stop.set()

    def run(self) -> dict[str, Any]:
        """Play (blocking) until the end of the recording (or forever with ``loop``, until :meth:`stop`)."""
        from edgefuse.bag import open_bag

        reader = open_bag(self.bag, on_error="skip")
        with reader:
            available = reader.topics
            wanted = list(available) if self.topics is None else self.topics
            missing = [t for t in wanted if t not in available]
            if missing:
                raise NodeError(f"topic(s) {', '.join(missing)} not in the recording "
                                f"(it has: {', '.join(sorted(available))})")
            src_fmt: WireFormat = "ros1" if reader.is_ros1 else "cdr"
            pubs: dict[str, Publisher] = {}
            for topic in wanted:
                msgtype = available[topic].msgtype
                try:
                    pubs[topic] = self.transport.advertise(self.remap.get(topic, topic), msgtype, RELIABLE)
                except TransportError as exc:
                    if self.topics is not None:  # asked for by name: an error
                        raise
                    self.skipped_topics[topic] = str(exc)  # e.g. a type the ROS 2 wheels have no package for
                    continue
                self.published[topic] = 0
            if not pubs:
                raise NodeError("no topic of the recording can be published on this transport: "
                                + "; ".join(f"{t}: {why}" for t, why in self.skipped_topics.items()))
            wanted = list(pubs)
            if self.clock:
                self._clock_pub = self.transport.advertise(CLOCK_TOPIC, CLOCK_TYPE, SENSOR_DATA)
            clock_thread = None
            try:
                if self.wait_subscribers and not self._wait_matched(pubs):
                    return self.report()
                if self._stop.wait(self.delay_s):
                    return self.report()
                if self.clock:
                    clock_thread = threading.Thread(target=self._clock_loop, name="edgefuse-play-clock",
                                                    daemon=True)
                    clock_thread.start()
                t_start = time.perf_counter()
                while not self._stop.is_set():
                    self._play_once(reader, wanted, pubs, src_fmt)
                    if not self.loop or self._stop.is_set():
                        break
                    self.loops += 1
                self.wall_s = time.perf_counter() - t_start
            finally:
                self._stop.set()
                if clock_thread is not None:
                    clock_thread.join(2.0)
                self._wait_acknowledged(pubs)
                for pub in pubs.values():
                    pub.close()
                if self._clock_pub is not None:
                    self._clock_pub.close()
        return self.report()

    def _wait_matched(self, pubs: dict[str, Publisher]) -> bool:
        """Wait until each publisher has ``wait_subscribers`` matched subscriptions; False if stopped meanwhile.

        Raises:
            NodeError: the transport cannot count subscriptions, or they did not match in time.
        """
        counts: dict[str, Callable[[], int]] = {}
        for topic, pub in pubs.items():
            count = getattr(pub, "subscription_count", None)
            if count is None:
                raise NodeError(f"--wait-subscribers: the {getattr(self.transport, 'name', '?')} transport cannot "
                                "count a publisher's subscriptions (zenoh, ros2 and ros1 can)")
            counts[topic] = count
        deadline = time.monotonic() + self.wait_timeout_s
        while True:
            self.matched = {topic: int(count()) for topic, count in counts.items()}
            short = {t: n for t, n in self.matched.items() if n < self.wait_subscribers}
            if not short:
                return True
            if time.monotonic() >= deadline:
                raise NodeError(f"--wait-subscribers {self.wait_subscribers}: after {self.wait_timeout_s:g} s "
                                + ", ".join(f"{t} has {n}" for t, n in sorted(short.items()))
                                + " (choose the topics with --topics)")
            if self._stop.wait(0.05):
                return False

    def _wait_acknowledged(self, pubs: dict[str, Publisher]) -> None:
        """Give reliable publishers that can wait for acknowledgements up to ``ack_timeout_s`` in all."""
        deadline = time.monotonic() + self.ack_timeout_s
        for topic, pub in pubs.items():
            wait = getattr(pub, "wait_acknowledged", None)
            if wait is None or not self.published.get(topic):
                continue
            if not wait(max(0.0, deadline - time.monotonic())):
                self.unacknowledged.append(topic)

    def _play_once(self, reader: Any, wanted: list[str], pubs: dict[str, Publisher],
                   src_fmt: WireFormat) -> None:
        from edgefuse.msgs.transcode import transcode

        ts = reader.typestore
        dst_fmt = self.transport.fmt
        dst_ts = getattr(self.transport, "typestore", None)  # a ROS 1 transport's own definitions
        first: int | None = None
        wall0 = time.perf_counter_ns()
        for raw in reader.messages(wanted):
            if self._stop.is_set():
                return
            if first is None:
                first = raw.recv_ns
            due = wall0 + int((raw.recv_ns - first) / self.rate)
            wait = due - time.perf_counter_ns()
            if wait > 0 and self._stop.wait(wait / 1e9):
                return
            self._late.append(max(0, time.perf_counter_ns() - due))
            if self._anchor != (wall0, first):
                with self._clock_lock:
                    self._anchor = (wall0, first)
            if self.clock:
                self._publish_clock(raw.recv_ns)
            try:
                data = raw.rawdata
                if src_fmt != dst_fmt or dst_ts is not None:
                    data = transcode(data, raw.msgtype, src_fmt=src_fmt, dst_fmt=dst_fmt, src_typestore=ts,
                                     dst_typestore=dst_ts)
                pubs[raw.topic].publish(data)
            except Exception as exc:  # a message that does not convert or send: counted, play goes on
                self.errors[raw.topic] = self.errors.get(raw.topic, 0) + 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(f"{raw.topic} message {raw.index}: {type(exc).__name__}: {exc}")
                continue
            self.published[raw.topic] += 1

    def _clock_loop(self) -> None:
        period = 1.0 / self.clock_hz
        while not self._stop.wait(period):
            with self._clock_lock:
                anchor = self._anchor
            if anchor is None:
                continue
            wall0, first = anchor
            self._publish_clock(first + int((time.perf_counter_ns() - wall0) * self.rate))

    def _publish_clock(self, bag_ns: int) -> None:
        from edgefuse.msgs import serialize
        from edgefuse.msgs._common import make_msg, make_time
        from edgefuse.msgs.typestore import get_typestore

        pub = self._clock_pub
        if pub is None:
            return
        with self._clock_lock:
            ts = getattr(self.transport, "typestore", None) or get_typestore()
            try:
                pub.publish(serialize(make_msg(ts, CLOCK_TYPE, clock=make_time(ts, bag_ns)), CLOCK_TYPE,
                                      fmt=self.transport.fmt, typestore=ts))
                self.clock_published += 1
            except EdgefuseError as exc:
                self.errors[CLOCK_TOPIC] = self.errors.get(CLOCK_TOPIC, 0) + 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(f"{CLOCK_TOPIC}: {exc}")

    def report(self) -> dict[str, Any]:
        late = np.asarray(self._late, dtype=np.float64) / 1e6
        lateness = ({"p50_ms": float(np.percentile(late, 50)), "p99_ms": float(np.percentile(late, 99)),
                     "max_ms": float(late.max())} if late.size else {})
        return {"bag": str(self.bag), "transport": getattr(self.transport, "name", "?"), "rate": self.rate,
                "loops": self.loops, "published": dict(self.published),
                "skipped_topics": dict(self.skipped_topics), "errors": dict(self.errors),
                "first_errors": list(self.first_errors), "clock_messages": self.clock_published,
                "lateness": lateness, "wall_s": self.wall_s, "matched_subscriptions": dict(self.matched),
                "unacknowledged": list(self.unacknowledged)}
