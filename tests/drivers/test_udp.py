"""The live UDP receiver on a real 127.0.0.1 socket: stamps, bounded queue with counted drops."""

from __future__ import annotations

import socket
import time

from edgefuse_drivers.udp import UdpReceiver


def test_receives_stamps_and_counts_queue_drops() -> None:
    with UdpReceiver("127.0.0.1", 0, queue_size=10) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        assert rx.port > 0 and rx.rcvbuf > 0
        t0 = time.monotonic_ns()
        for i in range(50):
            tx.sendto(bytes([i]) * 100, ("127.0.0.1", rx.port))
        deadline = time.monotonic() + 5
        while rx.stats.received < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rx.stats.received == 50
        got = []
        while (d := rx.get(timeout=0.2)) is not None:
            got.append(d)
        assert len(got) == 10 and rx.stats.dropped_queue == 40
        assert [d.payload[0] for d in got] == list(range(10))
        assert all(t0 <= d.recv_ns <= time.monotonic_ns() for d in got)
    assert not rx.running
