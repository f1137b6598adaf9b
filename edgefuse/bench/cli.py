"""``edgefuse bench``: latency benchmarks of a pipeline over recordings, and comparison of two results.

``edgefuse bench PIPELINE [--bag BAG…] [--bags GLOB|LIST] [--repeats N] [--rate R|--max-speed] [--out DIR]
[--workers N] [--scheduler tcp://HOST:PORT]`` · ``edgefuse bench compare A B [--max-regression P]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefuse._cli_common import EXIT_BUDGET, EXIT_INPUT

#: exit status of ``bench compare`` for a regression (CI on a robot's own machine)
EXIT_REGRESSION = 4


def add_bench_parser(sub: Any, resolve_pipeline: Callable[[str], Path]) -> argparse.ArgumentParser:
    """Add ``bench`` to the ``edgefuse`` sub-commands; ``resolve_pipeline`` maps a name to a pipeline file."""
    p: argparse.ArgumentParser = sub.add_parser(
        "bench", help="latency benchmark: replay with repeats (optionally many bags on Dask), write "
                      "report.json + report.html; 'bench compare A B' compares two results",
        description="edgefuse bench PIPELINE ... | edgefuse bench compare A B [--max-regression P]")
    p.add_argument("pipeline", help="pipeline YAML or bundled name; or 'compare' followed by two reports")
    p.add_argument("reports", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--bag", nargs="+", action="extend", default=[], help="recording(s) (default: the pipeline's)")
    p.add_argument("--bags", action="append", default=[], metavar="GLOB|LIST",
                   help="recordings by glob ('bags/*') or comma-separated list (repeatable)")
    p.add_argument("--repeats", type=int, default=3, help="replays of each bag (default 3; the noise estimate)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rate", type=float, default=None, help="pace by recorded time at this speed (default 1.0)")
    g.add_argument("--max-speed", action="store_true", help="run flat out, no pacing")
    p.add_argument("--out", help="folder for report.json, report.html and figures/ (default: print the summary only)")
    p.add_argument("--workers", type=int, help="replay the bags on a Dask LocalCluster of N single-thread "
                                               "worker processes on 127.0.0.1 (needs edgefuse[bench])")
    p.add_argument("--scheduler", help="use an existing Dask cluster, tcp://HOST:PORT, instead")
    p.add_argument("--check-budgets", action="store_true", help=f"exit {EXIT_BUDGET} when a budget is breached")
    p.add_argument("--max-regression", type=float, default=10.0, metavar="P",
                   help=f"compare: exit {EXIT_REGRESSION} when a p50/p99 grew by more than P %% (and twice the "
                        "noise of the repeats; default 10)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=lambda args: _cmd_bench(args, resolve_pipeline))
    return p


def _cmd_bench(args: argparse.Namespace, resolve_pipeline: Callable[[str], Path]) -> int:
    from edgefuse.errors import ReplayError

    if args.pipeline == "compare":
        if len(args.reports) != 2:
            raise ReplayError("usage: edgefuse bench compare A B [--max-regression P] (two report.json or folders)")
        return _cmd_compare(args)
    if args.reports:
        raise ReplayError(f"unexpected argument(s) {' '.join(args.reports)} (give recordings with --bag)")
    if args.repeats < 1:
        raise ReplayError(f"--repeats must be >= 1, got {args.repeats}")
    if args.workers is not None and args.workers < 1:
        raise ReplayError(f"--workers must be >= 1, got {args.workers}")
    from edgefuse.bench.fleet import expand_bags, run_fleet
    from edgefuse.bench.html import write_report
    from edgefuse.bench.run import bench_bag, format_summary
    from edgefuse.replay import StartNotice

    pipeline = str(resolve_pipeline(args.pipeline))
    rate = None if args.max_speed else (1.0 if args.rate is None else args.rate)
    bags = [*args.bag, *expand_bags(args.bags)] if args.bags else list(args.bag)
    progress = None if args.quiet else sys.stderr
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ReplayError("--out must be a folder", file=out)
    fleet = len(bags) > 1 or args.workers is not None or args.scheduler is not None
    if not fleet:
        with StartNotice(progress, prefix="bench"):
            record = bench_bag(pipeline, bags[0] if bags else None, repeats=args.repeats, rate=rate,
                               max_speed=args.max_speed)
    else:
        def write_bag(i: int, rec: dict[str, Any]) -> None:
            if out is not None:
                write_report(rec, out / "bags" / f"{i:03d}_{Path(bags[i]).name}")

        record = run_fleet(pipeline, bags, repeats=args.repeats, rate=rate, max_speed=args.max_speed,
                           workers=args.workers, scheduler=args.scheduler, progress=progress, on_record=write_bag)
    print(format_summary(record))
    if "fleet" in record:
        f = record["fleet"]
        print(f"fleet: {record['bags']} bag(s) in {f['wall_s']:.1f} s after {f['start_s']:.1f} s start-up and "
              f"warm-up ({f['mode']}), {f['recorded_s_per_wall_s']:.1f} s recorded per s")
    if out is not None:
        html_path = write_report(record, out)
        print(f"report: {out / 'report.json'}, {html_path}")
    print(record["verdict"], flush=True)
    if record.get("complete") is False:  # interrupted: the report of the repeats done is written, marked so
        from edgefuse._cli_common import interrupted

        raise interrupted(int(record["stopped_by_signal"]),
                          f"bench {record['stopped_by']} after {record['repeats']} of {record['repeats_requested']} "
                          "repeats; the report covers those (complete: false)")
    if record.get("failed"):
        return EXIT_INPUT
    return EXIT_BUDGET if args.check_budgets and record["budget_breaches"] else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from edgefuse.bench.compare import compare, format_compare, load_report

    a_path, b_path = args.reports
    result = compare(load_report(a_path), load_report(b_path), args.max_regression)
    print(format_compare(result, a_path, b_path))
    return EXIT_REGRESSION if result["regressions"] else 0
