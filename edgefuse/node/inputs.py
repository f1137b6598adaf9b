"""Receive side of the live node: one bounded queue per input, filled by the transport's threads.

Threading contract (see :mod:`edgefuse.node`): a transport callback only time-stamps the serialized
message (the transport already did, ``Received.recv_ns``), appends it to its input's queue and notifies
the processing thread — it never decodes, never waits and never blocks on a full queue.

**Drop policy** (per input, counted): when an input's queue holds ``depth`` messages and another arrives,
the *oldest* queued message of that input is dropped (``queue_full``) — the freshest data wins, as with a
ROS ``KEEP_LAST`` history.  A node that keeps up never drops; one that cannot keep up drops at the
receiver and says so, per input, in the report and on ``/diagnostics``.  Messages still queued when the
node stops are processed (``drain``) or, when the node is told not to wait, dropped and counted as
``shutdown``.

The processing thread takes messages in **arrival order across inputs** (:meth:`LiveInputs.pop` returns
the queued message with the smallest receive time), so a synchronizer sees them in the order a replay of
a recording made from the same wire would show them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from edgefuse.transport.base import Received

#: default queue depth per input (messages): a 10 Hz LiDAR queues 0.8 s before the oldest is dropped
DEFAULT_DEPTH = 8


@dataclass
class InputCounters:
    """What one input's receive path saw (JSON-ready through :meth:`as_dict`)."""

    topic: str
    wire_topic: str
    msgtype: str
    received: int = 0
    bytes: int = 0
    processed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    decode_errors: int = 0
    first_decode_errors: list[str] = field(default_factory=list)
    first_recv_ns: int | None = None
    last_recv_ns: int | None = None
    max_queued: int = 0
    #: receive times of the last messages, for the rate over the diagnostics window
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=256))

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def decode_error(self, text: str) -> None:
        self.decode_errors += 1
        if len(self.first_decode_errors) < 5:
            self.first_decode_errors.append(text)

    def rate_hz(self, now_ns: int, window_ns: int) -> float:
        """Messages per second over the last ``window_ns`` (0 when none)."""
        since = now_ns - window_ns
        n = sum(1 for t in self.recent if t > since)
        return n * 1e9 / window_ns if window_ns > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic, "wire_topic": self.wire_topic, "msgtype": self.msgtype,
            "received": self.received, "bytes": self.bytes, "processed": self.processed,
            "dropped": dict(self.dropped), "decode_errors": self.decode_errors,
            "first_decode_errors": list(self.first_decode_errors), "max_queued": self.max_queued,
        }


class LiveInputs:
    """Bounded per-input queues between the transport's threads and the node's processing thread."""

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        self.depth = int(depth)
        self._queues: dict[str, deque[Received]] = {}
        self.counters: dict[str, InputCounters] = {}
        self._cond = threading.Condition(threading.Lock())
        self._closed = False

    def add(self, name: str, topic: str, wire_topic: str, msgtype: str) -> None:
        """Declare pipeline input ``name`` (its pipeline topic, the topic on the wire and its type)."""
        self._queues[name] = deque()
        self.counters[name] = InputCounters(topic, wire_topic, msgtype)

    def callback(self, name: str) -> Any:
        """The transport callback for input ``name`` (quick; never blocks on a full queue)."""
        queue = self._queues[name]
        counters = self.counters[name]
        cond = self._cond
        depth = self.depth

        def on_message(msg: Received) -> None:
            with cond:
                if self._closed:
                    counters.drop("after_stop")
                    return
                counters.received += 1
                counters.bytes += len(msg.data)
                if counters.first_recv_ns is None:
                    counters.first_recv_ns = msg.recv_ns
                counters.last_recv_ns = msg.recv_ns
                counters.recent.append(msg.recv_ns)
                if len(queue) >= depth:
                    queue.popleft()
                    counters.drop("queue_full")
                queue.append(msg)
                counters.max_queued = max(counters.max_queued, len(queue))
                cond.notify()

        return on_message

    def pop(self, timeout_s: float) -> tuple[str, Received] | None:
        """The queued message that arrived first (any input), waiting up to ``timeout_s``; None on timeout
        or when closed and empty."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                best: str | None = None
                best_ns = 0
                for name, q in self._queues.items():
                    if q and (best is None or q[0].recv_ns < best_ns):
                        best, best_ns = name, q[0].recv_ns
                if best is not None:
                    return best, self._queues[best].popleft()
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def closed(self) -> bool:
        return self._closed

    def reopen(self) -> None:
        """Accept messages again (after :meth:`close`, for a node activated again)."""
        with self._cond:
            self._closed = False

    def queued(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    def close(self) -> None:
        """Stop accepting messages (late ones are counted as ``after_stop``); queued ones stay for ``pop``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def discard(self, reason: str = "shutdown") -> int:
        """Drop everything still queued, counted under ``reason``; returns how many."""
        n = 0
        with self._cond:
            for name, q in self._queues.items():
                if q:
                    self.counters[name].drop(reason, len(q))
                    n += len(q)
                    q.clear()
        return n
