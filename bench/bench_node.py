"""Live node bench: the bundled demo played through ``edgefuse node`` at 1x, 2x, 5x and 10x.

For each rate, in one run: ``edgefuse node radiate_demo`` (its own process) and ``edgefuse play`` (another
process) talk over the transport on 127.0.0.1; the node's report gives p50/p99 end-to-end latency (from the
moment a set's last message left the receive queue to the end of publishing, i.e. sync wait + processing;
the transport's own latency is measured by bench_transport.py), drops per input by reason, and the node
process's CPU use (user+system time from /proc over the playing time, in cores).  The highest rate with no
drop and no budget breach is the headroom figure.  The replay of the same recording in this process is the
baseline: the outputs of a rate with nothing dropped must have the replay's digests (live == replay).

    python bench/bench_node.py [--transport zenoh] [--rates 1 2 5 10] [--out bench/results/node.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _env import environment

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "edgefuse" / "data" / "demo" / "demo.mcap"
TICKS = os.sysconf("SC_CLK_TCK")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _transport_args(transport: str, port: int, server: bool) -> list[str]:
    if transport == "zenoh":
        ep = f"{'listen' if server else 'connect'}=tcp/127.0.0.1:{port}"
        return ["--transport", "zenoh", "-o", ep, "-o", "multicast_scouting=false"]
    return ["--transport", transport]


def run_rate(rate: float, transport: str, tmp: Path) -> dict[str, Any]:
    port = _port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    report = tmp / f"node_{rate}.json"
    log = tmp / f"node_{rate}.log"
    cmd = [sys.executable, "-m", "edgefuse.cli", "node", "radiate_demo", *_transport_args(transport, port, True),
           "--report", str(report)]
    with log.open("wb") as f:
        node = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 180
            while "active;" not in log.read_text():
                if node.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"node did not start:\n{log.read_text()}")
                time.sleep(0.1)
            cpu0, t0 = _cpu_s(node.pid), time.monotonic()
            play = subprocess.run(
                [sys.executable, "-m", "edgefuse.cli", "play", str(DEMO), *_transport_args(transport, port, False),
                 "--rate", str(rate), "--delay", "1.0", "--report", str(tmp / f"play_{rate}.json")],
                env=env, capture_output=True, text=True, timeout=300, check=False)
            time.sleep(1.0)  # the last sets
            cpu1, t1 = _cpu_s(node.pid), time.monotonic()
            node.send_signal(signal.SIGTERM)
            node.wait(60)
        finally:
            if node.poll() is None:
                node.kill()
    if play.returncode != 0:
        raise SystemExit(f"play failed: {play.stderr}")
    r = json.loads(report.read_text())
    p = json.loads((tmp / f"play_{rate}.json").read_text())
    drops = {name: c["dropped"] for name, c in r["inputs_live"].items() if c["dropped"]}
    return {
        "rate": rate,
        "end_to_end": r["end_to_end"],
        "processing": r["processing"],
        "sync_wait": r["sync_wait"],
        "sets": r["sets"],
        "received": {name: c["received"] for name, c in r["inputs_live"].items()},
        "published_by_player": p["published"],
        "player_p99_behind_schedule_ms": p["lateness"].get("p99_ms"),
        "drops": drops,
        "budget_breaches": r["budget_breaches"],
        "node_cpu_cores": (cpu1 - cpu0) / (t1 - t0 - 1.0) if t1 - t0 > 1.0 else None,
        "output_digests": r["output_digests"],
    }


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from edgefuse.replay import replay

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transport", default="zenoh")
    ap.add_argument("--rates", type=float, nargs="+", default=[1.0, 2.0, 5.0, 10.0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "node.json"))
    args = ap.parse_args(argv)
    baseline = replay(ROOT / "edgefuse" / "data" / "pipelines" / "radiate_demo.yaml", max_speed=True).report
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            row = run_rate(rate, args.transport, Path(tmp))
            digests = row.pop("output_digests")
            row["equals_replay"] = all(baseline["output_digests"].get(t) == d for t, d in digests.items())
            rows.append(row)
            e2e = row["end_to_end"]
            print(f"{rate:>5}x  e2e p50 {e2e['p50_ms']:.1f} ms  p99 {e2e['p99_ms']:.1f} ms  "
                  f"(budget {e2e['budget_ms']} ms)  node CPU {row['node_cpu_cores'] or 0:.2f} cores  "
                  f"drops {row['drops'] or 'none'}  breaches {len(row['budget_breaches'])}  "
                  f"equals replay {row['equals_replay']}", flush=True)
    clean = [r["rate"] for r in rows if not r["drops"] and not r["budget_breaches"]]
    result = {"bench": "node", "transport": args.transport, "environment": environment(),
              "replay_baseline": {"end_to_end": baseline["end_to_end"], "realtime_factor": baseline["realtime_factor"]},
              "rates": rows, "highest_clean_rate": max(clean) if clean else None}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"highest rate with no drop and no budget breach: {result['highest_clean_rate']}x; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
