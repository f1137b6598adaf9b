"""Benchmark of the approximate-time synchronizer (public API only).

Three streams over 2200 s of sensor time: 30 Hz (camera, +-2 ms jitter), 10 Hz (LiDAR, +-2 ms) and 100 Hz
(radar/IMU-ish, +-1 ms), 308,000 messages in all.  Measured:

- batch: ``approximate_sync_batch`` messages/s (median over repeats), JIT compile time reported apart
  (cold, in a subprocess with an empty Numba cache, and the in-process first call, which may load the cache);
- streaming: ``ApproximateTimeSynchronizer.push`` microseconds per message (median over repeats of a whole
  replay incl. ``flush``), plus per-push latency percentiles from a separately timed pass;
- baseline, same run: a naive greedy "slop" synchronizer in plain Python (the approach of rospy's
  ApproximateTimeSynchronizer), microseconds per message, and the ratios.

Prints JSON and writes bench/results/sync.json.  Run: ``python bench/bench_sync.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.sync import ApproximateTimeSynchronizer, approximate_sync_batch, prepare

NAMES = ("camera", "lidar", "radar")
RATES_HZ = (30.0, 10.0, 100.0)
JITTER_NS = (2_000_000, 2_000_000, 1_000_000)
DURATION_S = 2200
SLOP_NS = 50_000_000  # half the slowest period, as a rospy user would set it


def make_streams(seed: int = 0) -> list[np.ndarray]:
    """Per-stream sorted int64 stamps [ns] with jitter and a random phase."""
    rng = np.random.default_rng(seed)
    streams = []
    for rate, jitter in zip(RATES_HZ, JITTER_NS, strict=True):
        period = int(1e9 / rate)
        n = int(DURATION_S * rate)
        stamps = np.arange(n, dtype=np.int64) * period + int(rng.integers(0, period))
        stamps += rng.integers(-jitter, jitter + 1, n)
        streams.append(np.unique(stamps))
    return streams


def arrival_events(streams: list[np.ndarray]) -> list[tuple[str, int, int]]:
    """(input, stamp, index) in stamp order, ties by stream index (the batch API's order)."""
    cols = [np.stack([s, np.full(s.shape, k), np.arange(s.shape[0])], axis=1) for k, s in enumerate(streams)]
    ev = np.concatenate(cols)
    ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))]
    return [(NAMES[int(k)], int(t), int(i)) for t, k, i in ev]


class NaiveSlopSync:
    """Baseline: greedy slop matching (every new message looks for one message per other input within
    ``slop_ns`` among the queued ones; the first full combination is emitted)."""

    def __init__(self, inputs: tuple[str, ...], slop_ns: int, queue_size: int = 100) -> None:
        self.inputs = inputs
        self.slop = slop_ns
        self.queue_size = queue_size
        self.queues: dict[str, dict[int, Any]] = {name: {} for name in inputs}

    def push(self, name: str, stamp: int, item: Any) -> list[dict[str, Any]]:
        q = self.queues[name]
        q[stamp] = item
        while len(q) > self.queue_size:
            del q[min(q)]
        found: dict[str, int] = {}
        for other in self.inputs:
            best = None
            for t in self.queues[other]:
                if abs(t - stamp) <= self.slop and (best is None or abs(t - stamp) < abs(best - stamp)):
                    best = t
            if best is None:
                return []
            found[other] = best
        out = {other: self.queues[other].pop(t) for other, t in found.items()}
        for other, t in found.items():
            for old in [s for s in self.queues[other] if s < t]:
                del self.queues[other][old]
        return [out]


def time_streaming(events: list[tuple[str, int, int]]) -> tuple[float, int]:
    sync = ApproximateTimeSynchronizer(NAMES)
    push = sync.push
    n_sets = 0
    t0 = time.perf_counter()
    for name, stamp, idx in events:
        n_sets += len(push(name, stamp, idx))
    n_sets += len(sync.flush())
    return time.perf_counter() - t0, n_sets


def push_latencies(events: list[tuple[str, int, int]]) -> dict[str, Any]:
    sync = ApproximateTimeSynchronizer(NAMES)
    push = sync.push
    clock = time.perf_counter_ns
    lat = np.empty(len(events), dtype=np.int64)
    for j, (name, stamp, idx) in enumerate(events):
        a = clock()
        push(name, stamp, idx)
        lat[j] = clock() - a
    return {
        "p50_us": float(np.percentile(lat, 50)) / 1e3,
        "p99_us": float(np.percentile(lat, 99)) / 1e3,
        "max_us": float(lat.max()) / 1e3,
        "note": "includes ~0.05-0.1 us of timer overhead per push",
    }


def cold_compile_seconds() -> float | None:
    """First batch call in a fresh interpreter with an empty Numba cache (true JIT compile time)."""
    code = (
        "import time; t=time.perf_counter(); from edgefuse.sync import prepare; prepare(); "
        "print(time.perf_counter()-t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, EDGEFUSE_NUMBA_CACHE_DIR=cache, NUMBA_CACHE_DIR=cache)
        try:
            res = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=300
            )
        except (subprocess.SubprocessError, OSError):
            return None
    return float(res.stdout.strip().splitlines()[-1])


def machine_info() -> dict[str, Any]:
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        commit = "unknown (no commit)"
    return {
        "commit": commit,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sync.json")
    args = parser.parse_args()

    streams = make_streams()
    n_msgs = int(sum(s.shape[0] for s in streams))
    events = arrival_events(streams)

    cold = cold_compile_seconds()
    first_call = prepare()

    batch_times = []
    batch = np.empty((0, 3), dtype=np.int64)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        batch = approximate_sync_batch(streams)
        batch_times.append(time.perf_counter() - t0)
    batch_s = statistics.median(batch_times)

    stream_times = []
    n_sets = 0
    for _ in range(args.repeats):
        dt, n_sets = time_streaming(events)
        stream_times.append(dt)
    stream_s = statistics.median(stream_times)

    naive_times = []
    naive_out: list[dict[str, Any]] = []
    for _ in range(max(1, args.repeats // 2)):
        naive = NaiveSlopSync(NAMES, slop_ns=SLOP_NS)
        naive_out = []
        t0 = time.perf_counter()
        for name, stamp, idx in events:
            naive_out += naive.push(name, stamp, idx)
        naive_times.append(time.perf_counter() - t0)
    naive_s = statistics.median(naive_times)
    naive_spreads = np.array(
        [np.ptp([streams[k][m[NAMES[k]]] for k in range(3)]) for m in naive_out] or [0], dtype=np.int64
    )

    spreads = np.ptp(np.stack([streams[k][batch[:, k]] for k in range(3)], axis=1), axis=1)
    result = {
        "benchmark": "sync.approximate",
        "workload": {
            "streams": [
                {"name": n, "rate_hz": r, "jitter_ns": j, "messages": int(s.shape[0])}
                for n, r, j, s in zip(NAMES, RATES_HZ, JITTER_NS, streams, strict=True)
            ],
            "messages": n_msgs,
            "duration_s": DURATION_S,
            "params": {"queue_size": 100, "age_penalty": 0.1, "max_interval_ns": None},
        },
        "repeats": args.repeats,
        "jit": {"cold_compile_s": cold, "first_call_in_process_s": first_call},
        "batch": {
            "median_s": batch_s,
            "msgs_per_s": n_msgs / batch_s,
            "sets": int(batch.shape[0]),
            "target_msgs_per_s": 500_000,
            "median_spread_us": float(np.median(spreads)) / 1e3,
            "max_spread_us": float(spreads.max()) / 1e3,
        },
        "streaming": {
            "median_s": stream_s,
            "us_per_msg": stream_s / n_msgs * 1e6,
            "sets": n_sets,
            "set_count_equals_batch": n_sets == int(batch.shape[0]),
            "target_us_per_msg": 3.0,
            "push_latency": push_latencies(events),
        },
        "baseline_naive_slop_python": {
            "slop_ns": SLOP_NS,
            "median_s": naive_s,
            "us_per_msg": naive_s / n_msgs * 1e6,
            "sets": len(naive_out),
            "median_spread_us": float(np.median(naive_spreads)) / 1e3,
            "max_spread_us": float(naive_spreads.max()) / 1e3,
            "ratio_naive_over_streaming": naive_s / stream_s,
            "ratio_naive_over_batch": naive_s / batch_s,
        },
        "machine": machine_info(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
