"""Transport bench: publisher → subscriber on loopback, edgefuse's Zenoh transport against plain rclpy (Fast DDS).

Both sides run in separate processes on this host (publisher: ``bench/_transport_peer.py``; subscriber: this
process).  Each message carries its publish wall time in its header stamp, so latency is measured from the
call to ``publish`` to the subscriber's callback, same clock.  The rclpy baseline is the strongest plain-rclpy
path: a raw (bytes) subscription and ``publish(bytes)`` — no (de)serialisation on either side, the same work
edgefuse's transport does.  Messages: a 1 KB CompressedImage, a 1.2 MB PointCloud2 (120k points x 10 B) and a
1280x720 rgb8 Image; reliable QoS, depth 10.

- latency: ``--count`` messages at ``--rate`` Hz each, p50/p99/max;
- throughput: ``--burst`` PointCloud2 messages sent as fast as the publisher can; messages delivered per
  second (from the first publish call to the last arrival) and how many arrived.

    python bench/bench_transport.py [--count 100] [--rate 10] [--burst 300] [--out DIR]

Goal (issue 11): zenoh p99 at or below rclpy's, and >= 2x rclpy's PointCloud2 throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import environment
from _transport_peer import KINDS, read_stamp

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sink:
    def __init__(self) -> None:
        self.lat: list[int] = []
        self.arrivals: list[int] = []
        self.sent: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, data: Any) -> None:
        now = time.time_ns()
        sent = read_stamp(data)
        with self.lock:
            self.lat.append(now - sent)
            self.arrivals.append(now)
            self.sent.append(sent)


def _subscribe(transport: str, msgtype: str, port: int, sink: _Sink) -> Any:
    if transport == "zenoh":
        from edgefuse.transport import RELIABLE, open_transport

        t = open_transport("zenoh", node_name="bench_sub", connect=[f"tcp/127.0.0.1:{port}"],
                           listen=[], multicast_scouting=False).open()
        t.subscribe("/bench", msgtype, lambda rx: sink(rx.data), RELIABLE)
        return t.close
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from edgefuse.transport.ros2 import message_class

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("bench_sub", context=ctx)
    node.create_subscription(message_class(msgtype), "/bench", sink,
                             QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE), raw=True)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ex.spin_once(timeout_sec=0.05)

    th = threading.Thread(target=spin, daemon=True)
    th.start()

    def close() -> None:
        stop.set()
        th.join(2)
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)

    return close


def run(transport: str, kind: str, count: int, rate: float) -> dict[str, Any]:
    msgtype, size = KINDS[kind]
    port = _port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    pub = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_transport_peer.py"), transport, kind,
                            "--count", str(count), "--rate", str(rate), "--port", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sink = _Sink()
    close = None
    try:
        assert pub.stdout is not None
        line = pub.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"publisher failed: {line}{pub.stderr.read() if pub.stderr else ''}")
        close = _subscribe(transport, msgtype, port, sink)
        pub.wait(count / rate + 60 if rate else 120)
        time.sleep(0.5)
    finally:
        if close is not None:
            close()
        if pub.poll() is None:
            pub.kill()
    lat = np.asarray(sink.lat, dtype=np.float64) / 1e6
    arr = np.asarray(sink.arrivals, dtype=np.int64)
    out: dict[str, Any] = {"transport": transport, "kind": kind, "bytes": size, "sent": count,
                           "received": int(lat.size)}
    if lat.size:
        out.update(p50_ms=float(np.percentile(lat, 50)), p99_ms=float(np.percentile(lat, 99)),
                   max_ms=float(lat.max()))
    if arr.size > 1:
        # delivered messages per second, from the first message's publish call to the last arrival (a
        # middleware that drops under load is not credited with the rate of the few it delivered)
        out["msgs_per_s"] = float(arr.size / ((arr[-1] - min(sink.sent)) / 1e9))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=300)
    ap.add_argument("--transports", nargs="+", default=["zenoh", "rclpy"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    rows = []
    for kind in KINDS:
        for transport in args.transports:
            r = run(transport, kind, args.count, args.rate)
            rows.append({"mode": "latency", **r})
            print(f"latency    {kind:>6} {transport:>6}: received {r['received']}/{r['sent']}  "
                  f"p50 {r.get('p50_ms', float('nan')):.2f} ms  p99 {r.get('p99_ms', float('nan')):.2f} ms",
                  flush=True)
    for transport in args.transports:
        r = run(transport, "cloud", args.burst, 0.0)
        rows.append({"mode": "throughput", **r})
        print(f"throughput  cloud {transport:>6}: received {r['received']}/{r['sent']}  "
              f"{r.get('msgs_per_s', 0):.1f} msg/s", flush=True)
    summary: dict[str, Any] = {}
    if set(args.transports) >= {"zenoh", "rclpy"}:
        by = {(r["mode"], r["kind"], r["transport"]): r for r in rows}
        for kind in KINDS:
            z, c = by[("latency", kind, "zenoh")], by[("latency", kind, "rclpy")]
            if "p99_ms" in z and "p99_ms" in c:
                summary[f"{kind}_p99_zenoh_over_rclpy"] = z["p99_ms"] / c["p99_ms"]
        z, c = by[("throughput", "cloud", "zenoh")], by[("throughput", "cloud", "rclpy")]
        if z.get("msgs_per_s") and c.get("msgs_per_s"):
            summary["cloud_throughput_zenoh_over_rclpy"] = z["msgs_per_s"] / c["msgs_per_s"]
        print("summary: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.items()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transport.json").write_text(json.dumps({"bench": "transport", "environment": environment(),
                                                    "rows": rows, "summary": summary}, indent=2) + "\n")
    print(f"wrote {out / 'transport.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
