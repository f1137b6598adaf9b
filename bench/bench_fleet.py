"""Fleet replay bench: N re-timed copies of the demo recording, one process vs a 2-worker Dask LocalCluster.

Both runs replay the same bags in the same invocation (one after the other, in this order): first every bag
in this process (the baseline), then the same bags on ``--workers`` single-thread worker processes on
127.0.0.1.  Wall times include everything a user waits for (the cluster's start too).  Also checks that the
merged percentiles are exact: the merged report's p50/p99/p99.9 equal those of one histogram holding every
bag's samples.

    python bench/bench_fleet.py [--bags 50] [--span 3.4] [--workers 2] [--out DIR]

Target (issue 14): throughput with 2 workers >= 1.7x one process on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _env import environment, write_json

from edgefuse.bench.bags import retimed_copies
from edgefuse.bench.fleet import run_fleet
from edgefuse.cli import bundled_pipelines
from edgefuse.pipeline.latency import LatencyHistogram


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bags", type=int, default=50)
    ap.add_argument("--span", type=float, default=3.4, help="seconds of the demo recording per bag")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"), help="folder for fleet.json")
    args = ap.parse_args(argv)
    pipeline = str(bundled_pipelines()["radiate_demo"])
    tmp = Path(tempfile.mkdtemp(prefix="edgefuse-fleet-"))
    try:
        t0 = time.perf_counter()
        bags = [str(p) for p in retimed_copies(Path(pipeline).parent.parent / "demo", tmp, args.bags,
                                               span_s=args.span)]
        make_s = time.perf_counter() - t0
        load0 = os.getloadavg()
        single = run_fleet(pipeline, bags, repeats=1, max_speed=True, rate=None)
        fleet = run_fleet(pipeline, bags, repeats=1, max_speed=True, rate=None, workers=args.workers)
        load1 = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    exact = {}
    for name in ("end_to_end", "processing", "project"):
        s = fleet["series"][name]
        whole = LatencyHistogram.from_dict(s["histogram"])  # the sum of every bag's histogram
        exact[name] = all(s["summary"][k] == whole.percentile_ms(q)
                          for k, q in (("p50_ms", 50), ("p99_ms", 99), ("p999_ms", 99.9)))
    ratio = single["fleet"]["wall_s"] / fleet["fleet"]["wall_s"]
    result = {
        "bench": "fleet", "environment": environment(), "bags": args.bags, "span_s": args.span,
        "workers": args.workers, "make_bags_s": make_s, "load_average_before_after": [load0, load1],
        "one_process_wall_s": single["fleet"]["wall_s"], "fleet_wall_s": fleet["fleet"]["wall_s"],
        "throughput_ratio": ratio, "fleet_mode": fleet["fleet"]["mode"],
        "failed": [len(single["failed"]), len(fleet["failed"])],
        "merged_percentiles_exact": exact,
        "end_to_end_p99_ms": {"one_process": single["series"]["end_to_end"]["summary"]["p99_ms"],
                              "fleet": fleet["series"]["end_to_end"]["summary"]["p99_ms"]},
        "target": {"throughput_ratio_min": 1.7}, "target_met": ratio >= 1.7,
    }
    out = Path(args.out) / "fleet.json"
    write_json(out, result, quiet=True)
    print(f"fleet: {args.bags} bags x {args.span:g} s; one process {result['one_process_wall_s']:.1f} s, "
          f"{args.workers} workers {result['fleet_wall_s']:.1f} s -> x{ratio:.2f} throughput "
          f"(target >= 1.7: {'met' if ratio >= 1.7 else 'NOT met'}); merged percentiles exact: "
          f"{all(exact.values())}; load {load0[0]:.2f} -> {load1[0]:.2f}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
