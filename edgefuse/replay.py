"""Replay a recording through a pipeline: paced by recorded time or flat out, timed against budgets.

Latency definitions (all host monotonic time):

- per stage: the wall time of one ``Stage.process`` call;
- ``sinks``: serialising and writing a set's outputs;
- ``sync_wait``: from the moment the set's last member left the source (read from the bag and converted
  to its numpy payload) until the synchronizer released the set (approximate time waits for a later
  message that proves no better set can come);
- ``processing``: from the release of the set to the end of publishing its outputs (stages + sinks);
- ``end_to_end``: sync_wait + processing.  Bag reading and deserialisation are timed apart as ``source``;
- ``sync_wait_data_time``: how much later (in *recorded* time) the message that released a set was
  stamped than the set itself — the wait any live system would add for that synchronizer policy.  At
  ``--max-speed`` that wait is compressed in wall time, which is why it is reported in data time.

JIT compilation and model loading happen in ``start`` and are reported as ``start_ms`` per stage, not
counted in steady-state latency.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from edgefuse.errors import EdgefuseError, ReplayError
from edgefuse.pipeline.config import load_pipeline
from edgefuse.pipeline.health import DEFAULT_GAP_PERIODS, format_health
from edgefuse.pipeline.latency import LatencyRecorder
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.sinks import RecordSink, check_writable_output
from edgefuse.sources import open_source
from edgefuse.time import NS_PER_S


@dataclass
class ReplayResult:
    report: dict[str, Any]
    breaches: list[str]


class _Progress:
    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.last = 0.0
        self.tty = bool(stream is not None and stream.isatty())

    def update(self, done: int, bag_s: float, wall_s: float, final: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        pct = 100.0 * done / self.total if self.total else 100.0
        speed = bag_s / wall_s if wall_s > 0 else 0.0
        line = f"replay: {done}/{self.total} msgs ({pct:5.1f}%)  {bag_s:7.2f} s recorded  x{speed:.1f} real time"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def replay(
    pipeline: str | Path,
    *,
    bag: str | Path | None = None,
    rate: float | None = 1.0,
    max_speed: bool = False,
    out: str | Path | None = None,
    report_path: str | Path | None = None,
    progress: TextIO | None = None,
    rig: str | Path | None = None,
    gap_periods: float = DEFAULT_GAP_PERIODS,
) -> ReplayResult:
    """Replay ``bag`` (default: the pipeline's ``bag:``) through ``pipeline``; return the report.

    The recording is opened with :func:`edgefuse.sources.open_source`, which applies the rig's time offsets;
    this function only paces, shows progress and writes the report.  ``gap_periods``: an input's gap
    longer than this many nominal periods is reported in the report's ``health`` section (see
    :mod:`edgefuse.pipeline.health`).
    """
    config = load_pipeline(pipeline, rig_override=rig)
    bag_path = Path(bag) if bag is not None else config.bag_path
    if bag_path is None:
        raise ReplayError("no recording given: pass --bag or set 'bag:' in the pipeline", file=pipeline)
    _check_arguments(rate, max_speed, report_path, out)
    sink = RecordSink(out, rig=config.rig)  # the rig: /tf_static and CameraInfo beside the outputs
    runner = PipelineRunner(config, [sink], gap_periods=gap_periods)
    topics = [spec.topic for spec in config.inputs.values()]
    source_lat = LatencyRecorder("source")
    source = open_source(bag_path)
    source.set_time_offsets(config.time_offsets_ns())
    with source:
        available = source.topics()
        missing = [t for t in topics if t not in available]
        if missing:
            raise ReplayError(
                f"topic(s) {', '.join(missing)} not in {bag_path} (it has: {', '.join(sorted(available))})",
                file=bag_path)
        total = sum(int(available[t].count or 0) for t in topics)
        t_start0 = time.perf_counter_ns()
        runner.start()
        start_total_ms = (time.perf_counter_ns() - t_start0) / 1e6
        prog = _Progress(progress, total)
        first_recv: int | None = None
        last_recv = 0
        wall0 = time.perf_counter_ns()
        done = 0
        it = source.envelopes(topics)
        aborted: str | None = None
        try:
            while True:
                t0 = time.perf_counter_ns()
                try:
                    env = next(it, None)
                except EdgefuseError as exc:
                    # A recording corrupt part-way: stop reading, but finish the pipeline, close the
                    # outputs and write the report (marked incomplete) before failing.
                    aborted = exc.message
                    break
                if env is None:
                    break
                source_lat.add(time.perf_counter_ns() - t0)
                if first_recv is None:
                    first_recv = env.recv_ns
                last_recv = env.recv_ns
                if not max_speed:
                    assert rate is not None
                    target = wall0 + (env.recv_ns - first_recv) / rate
                    delay = (target - time.perf_counter_ns()) / NS_PER_S
                    if delay > 0:
                        time.sleep(delay)
                runner.feed(env)
                done += 1
                prog.update(done, (env.recv_ns - first_recv) / NS_PER_S,
                            (time.perf_counter_ns() - wall0) / NS_PER_S)
        finally:
            runner.finish()
        wall_s = (time.perf_counter_ns() - wall0) / NS_PER_S
    span_s = 0.0 if first_recv is None else (last_recv - first_recv) / NS_PER_S
    prog.update(done, span_s, wall_s, final=True)
    report = runner.report()
    report.update(
        bag=str(bag_path),
        mode="max_speed" if max_speed else f"rate {rate}",
        messages=done,
        recorded_span_s=span_s,
        wall_s=wall_s,
        realtime_factor=(span_s / wall_s) if wall_s > 0 else None,
        start_total_ms=start_total_ms,
        source=source_lat.summary().as_dict(),
        output_digests=sink.digests(),
        output_counts=dict(sink.counts),
        output_extras_skipped=sink.extras_skipped,
        out=None if out is None else str(out),
        complete=aborted is None,
        error=aborted,
        environment=_environment(),
    )
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    if aborted is not None:
        raise ReplayError(f"replay stopped after {done} of {total} messages: {aborted} (outputs and report "
                          "cover the messages before it)", file=bag_path)
    return ReplayResult(report, list(report["budget_breaches"]))


def _check_arguments(rate: float | None, max_speed: bool, report_path: str | Path | None,
                     out: str | Path | None) -> None:
    """Refuse bad options before anything is started (one clear line each)."""
    if not max_speed and (rate is None or not math.isfinite(rate) or rate <= 0):
        raise ReplayError(f"--rate must be a finite number > 0, got {rate}")
    if report_path is not None:
        rp = Path(report_path)
        if rp.is_dir():
            raise ReplayError("cannot write the report: this is a folder; give a file name", file=rp)
        if not rp.parent.is_dir():
            raise ReplayError(f"cannot write the report: folder {rp.parent} does not exist", file=rp)
    if out is not None:
        check_writable_output(Path(out))


def _environment() -> dict[str, Any]:
    import numba
    import numpy

    from edgefuse import __version__
    from edgefuse.config import CONFIG

    return {
        "edgefuse": __version__, "python": sys.version.split()[0], "numpy": numpy.__version__,
        "numba": numba.__version__, "numba_threads": numba.get_num_threads(), "ort_threads": CONFIG.ort_threads,
        "machine": platform.machine(), "processor": cpu_name(),
    }


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo where available, else ``platform.processor()`` (may be empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_report(report: dict[str, Any]) -> str:
    """Human-readable latency table for the terminal."""
    lines = [
        f"pipeline {report['pipeline']}: {report['messages']} messages, {report['sets']} sets "
        f"({report['partial_sets']} partial), {report['recorded_span_s']:.2f} s recorded in {report['wall_s']:.2f} s"
        + (f" (x{report['realtime_factor']:.1f} real time)" if report.get("realtime_factor") else ""),
        f"start (JIT compile / model load): {report['start_total_ms']:.1f} ms",
        f"{'stage':<42}{'count':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'budget':>9}{'misses':>8}",
    ]

    def row(name: str, d: dict[str, Any]) -> str:
        def f(v: Any) -> str:
            return f"{v:9.3f}" if isinstance(v, float) else f"{'-':>9}"

        return (f"{name:<42}{d['count']:>7}{f(d['p50_ms'])}{f(d['p90_ms'])}{f(d['p99_ms'])}{f(d['max_ms'])}"
                f"{f(d['budget_ms'])}{d['deadline_misses']:>8}")

    lines.append(row("source (read+decode)", report["source"]))
    for name, d in report["stages"].items():
        lines.append(row(f"{name} [{d['type']}]", d))
    lines.append(row("sinks", report["sinks"]))
    lines.append(row("sync_wait (wall)", report["sync_wait"]))
    lines.append(row("processing", report["processing"]))
    lines.append(row("end_to_end", report["end_to_end"]))
    sw = report["sync_wait_data_time"]
    if sw["count"]:
        lines.append(f"sync wait (recorded time): p50 {sw['p50_ms']:.1f} ms, max {sw['max_ms']:.1f} ms")
    errs = {n: d["errors"] for n, d in report["stages"].items() if d["errors"]}
    if errs:
        lines.append("stage errors: " + ", ".join(f"{n}={c}" for n, c in errs.items()))
    if "health" in report:
        lines += format_health(report["health"])
    for topic, digest in report.get("output_digests", {}).items():
        lines.append(f"output {topic}: {report['output_counts'].get(topic, 0)} msgs sha256 {digest[:16]}")
    if report["budget_breaches"]:
        lines.append("BUDGET BREACHES:")
        lines += [f"  {b}" for b in report["budget_breaches"]]
    return "\n".join(lines)
