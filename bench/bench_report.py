"""Bench report rendering: ``edgefuse bench``'s report.json + report.html for a 10-minute recording.

The recording: the bundled Husky bag (395 s, real IMU/odometry/GNSS, ~43 sets/s) twice in a row
(header stamps and record times shifted by one span), about 13 minutes and 33 600 sets, replayed
once at max speed through ``husky_localization``.  Measured: the time to write report.json, report.html and
the figures (``edgefuse.bench.html.write_report``), and their sizes.

    python bench/bench_report.py [--copies 2] [--out DIR]

Target (issue 14): renders in < 2 s, report < 5 MB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _env import environment, write_json

from edgefuse.bag import BagWriter, open_bag
from edgefuse.bench.html import write_report
from edgefuse.bench.run import bench_bag
from edgefuse.cli import bundled_pipelines
from edgefuse.msgs import deserialize, serialize
from edgefuse.msgs.transcode import transcode


def long_bag(src: Path, dest: Path, copies: int) -> float:
    """``copies`` back-to-back copies of ``src`` as one ROS 2 bag; returns its span [s]."""
    with open_bag(src) as reader:
        topics = {t: i.msgtype for t, i in reader.topics.items()}
        msgs = [(m.topic, m.msgtype, m.recv_ns, bytes(transcode(m.rawdata, m.msgtype, src_fmt="ros1", dst_fmt="cdr",
                                                                 src_typestore=reader.typestore)))
                for m in reader.messages()]
    span = msgs[-1][2] - msgs[0][2] + 50_000_000
    with BagWriter(dest) as w:
        for t, ty in topics.items():
            w.add_topic(t, ty)
        for k in range(copies):
            for topic, msgtype, recv, data in msgs:
                msg = deserialize(data, msgtype)
                header = getattr(msg, "header", None)
                if header is not None:
                    ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec + k * span
                    header.stamp.sec, header.stamp.nanosec = divmod(ns, 1_000_000_000)
                for tr in getattr(msg, "transforms", []):
                    ns = tr.header.stamp.sec * 1_000_000_000 + tr.header.stamp.nanosec + k * span
                    tr.header.stamp.sec, tr.header.stamp.nanosec = divmod(ns, 1_000_000_000)
                w.write_raw(topic, recv + k * span, serialize(msg, msgtype))
    return copies * span / 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"), help="folder for report_render.json")
    args = ap.parse_args(argv)
    pipeline = bundled_pipelines()["husky_localization"]
    tmp = Path(tempfile.mkdtemp(prefix="edgefuse-report-"))
    try:
        span = long_bag(pipeline.parent.parent / "husky" / "test1.bag", tmp / "long", args.copies)
        t0 = time.perf_counter()
        record = bench_bag(pipeline, tmp / "long", repeats=1, max_speed=True)
        replay_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_report(record, tmp / "report")
        render_s = time.perf_counter() - t0
        sizes = {p.name: p.stat().st_size for p in (tmp / "report").rglob("*") if p.is_file()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(sizes.values())
    result = {"bench": "report_render", "environment": environment(), "recording_s": span, "sets": record["sets"],
              "replay_s": replay_s, "render_s": render_s, "report_json_bytes": sizes["report.json"],
              "report_html_bytes": sizes["report.html"], "all_files_bytes": total,
              "targets": {"render_s_max": 2.0, "bytes_max": 5_000_000},
              "targets_met": render_s < 2.0 and total < 5_000_000}
    out = Path(args.out) / "report_render.json"
    write_json(out, result, quiet=True)
    print(f"report of a {span / 60:.1f} min recording ({record['sets']} sets): rendered in {render_s:.2f} s, "
          f"report.json {sizes['report.json'] / 1e6:.2f} MB + report.html {sizes['report.html'] / 1e6:.2f} MB "
          f"(all files {total / 1e6:.2f} MB); targets < 2 s, < 5 MB: {'met' if result['targets_met'] else 'NOT met'}"
          f"; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
