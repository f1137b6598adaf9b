"""Memory bench: peak RSS of a 1× and a 20× replay of the bundled demo through the runner.

The demo recording is read ``loops`` times in a row (each pass re-read from the bag, so every message has
its own buffers, as in a long recording) and re-stamped: pass ``k`` is shifted by ``k × (span + 100 ms)``,
so the runner sees one long, regular recording.  Each loop count runs in its own subprocess, which
reports its peak RSS (``getrusage``), its RSS after start-up (JIT/model load done, nothing fed) and the
difference (growth while replaying).  The outputs are recorded to a temporary MCAP bag, as
``edgefuse replay --out`` does.

Target (issue 10, item 13): the 20× replay's peak RSS within 10 % of the 1× replay's.

    python bench/bench_memory.py [--pipeline radiate_demo] [--loops 1 20] [--no-out]
                                 [--out bench/results/memory.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _env import environment  # bench/_env.py (benches run as scripts)

from edgefuse.cli import resolve_pipeline
from edgefuse.envelope import Envelope
from edgefuse.pipeline.config import load_pipeline
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.sinks import RecordSink
from edgefuse.sources import open_source

GAP_NS = 100_000_000


def _rss_kib() -> int:
    """Current resident set size [KiB] (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def child(pipeline: str, loops: int, record: bool) -> dict[str, Any]:
    """Replay the pipeline's bag ``loops`` times through one runner; RSS figures in MiB."""
    config = load_pipeline(resolve_pipeline(pipeline))
    assert config.bag_path is not None
    topics = [spec.topic for spec in config.inputs.values()]
    with tempfile.TemporaryDirectory() as tmp:
        sink = RecordSink(Path(tmp) / "out" if record else None)
        runner = PipelineRunner(config, [sink])
        runner.start()
        rss_started = _rss_kib()
        first = last = None
        with open_source(config.bag_path) as source:  # span of one pass, in stamp time
            source.set_time_offsets(config.time_offsets_ns())
            for env in source.envelopes(topics):
                first = env.stamp_ns if first is None else min(first, env.stamp_ns)
                last = env.stamp_ns if last is None else max(last, env.stamp_ns)
        assert first is not None
        assert last is not None
        shift = last - first + GAP_NS
        fed = 0
        t0 = time.perf_counter()
        for k in range(loops):
            with open_source(config.bag_path) as source:
                source.set_time_offsets(config.time_offsets_ns())
                for env in source.envelopes(topics):
                    runner.feed(Envelope(env.topic, env.stamp_ns + k * shift, env.recv_ns + k * shift,
                                         env.payload, env.msgtype, env.meta))
                    fed += 1
        runner.finish()
        wall_s = time.perf_counter() - t0
        report = runner.report()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "loops": loops, "messages": fed, "sets": report["sets"], "wall_s": wall_s,
        "rss_after_start_mib": rss_started / 1024, "peak_rss_mib": peak_kib / 1024,
        "growth_mib": (peak_kib - rss_started) / 1024,
        "sync": report["sync"]["stats"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", default="radiate_demo")
    ap.add_argument("--loops", type=int, nargs="+", default=[1, 20])
    ap.add_argument("--no-out", action="store_true", help="digest only, do not record an output bag")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "memory.json"))
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.pipeline, args.child, not args.no_out)))
        return 0
    runs = []
    for loops in args.loops:
        cmd = [sys.executable, __file__, "--pipeline", args.pipeline, "--child", str(loops),
               *(["--no-out"] if args.no_out else [])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = runs[0]
    result = {
        "bench": "memory",
        "pipeline": args.pipeline,
        "record_output_bag": not args.no_out,
        "environment": environment(),
        "runs": [{k: v for k, v in r.items() if k != "sync"} for r in runs],
        "peak_ratio_vs_first": [r["peak_rss_mib"] / base["peak_rss_mib"] for r in runs],
        "target": "peak RSS of every run within 10 % of the first (1x) run",
    }
    result["target_met"] = all(x <= 1.10 for x in result["peak_ratio_vs_first"])
    text = json.dumps(result, indent=2, default=str)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
