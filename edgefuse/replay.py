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
import os
import platform
import stat
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from edgefuse._cli_common import deferred_signals, interrupt_reason, interrupt_signal, interrupted, one_line
from edgefuse.errors import EdgefuseError, ReplayError
from edgefuse.pipeline.budget import Budget
from edgefuse.pipeline.config import PipelineConfig, load_pipeline
from edgefuse.pipeline.health import DEFAULT_GAP_PERIODS, format_health
from edgefuse.pipeline.latency import LatencyRecorder
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.sinks import RecordSink, check_writable_output
from edgefuse.sources import open_source
from edgefuse.time import NS_PER_S

#: a start (JIT compile / model load) longer than this is announced on the progress stream [s]
START_NOTICE_AFTER_S = 1.0


@dataclass
class ReplayResult:
    """The report, the budget breaches (one line each) and, for benchmarks, the runner with its raw samples
    (per-stage recorders, per-set stamps and deadline flags) and the source's read+decode recorder."""

    report: dict[str, Any]
    breaches: list[str]
    runner: PipelineRunner | None = None
    source_latency: LatencyRecorder | None = None


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


def numba_cache_dir() -> Path | None:
    """Where Numba caches compiled kernels now (None: caching is off, see :mod:`edgefuse.config`)."""
    from edgefuse.config import CONFIG

    if CONFIG.numba_cache_dir is None:
        return None
    import numba

    configured = str(getattr(numba.config, "CACHE_DIR", "") or "")
    return Path(configured) if configured else CONFIG.numba_cache_dir


def _cache_files(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return sum(1 for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


class StartNotice:
    """Says on ``stream`` what a start that takes longer than ``after_s`` is doing (compiling Numba kernels,
    which happens once: they are cached), and when it is over how long it took and whether kernels were
    compiled (the cache gained files) or only loaded.  Silent for a quick start or without a stream."""

    def __init__(self, stream: TextIO | None, *, after_s: float | None = None, prefix: str = "replay") -> None:
        self.stream = stream
        self.after_s = START_NOTICE_AFTER_S if after_s is None else after_s
        self.prefix = prefix
        self.said = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._t0 = 0.0
        self._before = 0

    def __enter__(self) -> StartNotice:
        self._t0 = time.monotonic()
        if self.stream is not None:
            self._before = _cache_files(numba_cache_dir())
            self._timer = threading.Timer(self.after_s, self._announce)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _write(self, text: str) -> None:
        assert self.stream is not None
        self.stream.write(f"{self.prefix}: {text}\n")
        self.stream.flush()

    def _announce(self) -> None:
        cache = numba_cache_dir()
        if cache is None:
            text = ("starting stages: compiling Numba kernels (not cached: no writable cache folder; set "
                    "EDGEFUSE_NUMBA_CACHE_DIR to compile them once only) ...")
        elif self._before == 0:
            text = (f"starting stages: compiling Numba kernels, which takes a while on the first run only "
                    f"(they are cached in {cache}) ...")
        else:
            text = f"starting stages: loading Numba kernels cached in {cache} (compiling any not cached yet) ..."
        with self._lock:
            self.said = True
            self._write(text)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if not self.said or exc_type is not None:
                return
            took = time.monotonic() - self._t0
            cache = numba_cache_dir()
            if cache is not None and _cache_files(cache) > self._before:
                self._write(f"kernels compiled in {took:.1f} s and cached in {cache}; later runs start faster")
            else:
                self._write(f"stages started in {took:.1f} s")


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
    overwrite: bool = False,
    gap_periods: float = DEFAULT_GAP_PERIODS,
) -> ReplayResult:
    """Replay ``bag`` (default: the pipeline's ``bag:``) through ``pipeline``; return the report.

    The recording is opened with :func:`edgefuse.sources.open_source`, which applies the rig's time offsets;
    this function only paces, shows progress and writes the report.

    Faults (see the README): a message that does not decode or convert is skipped and counted per input
    and reason; a stage that fails on a set is counted (the run goes on).  A run that cannot go on (a
    recording corrupt part-way, an output that cannot be written, SIGINT/SIGTERM) still closes the
    outputs (a readable bag left at ``<out>.partial``) and writes the report marked ``complete: false``
    with the reason, then raises :class:`ReplayError` (or, for a signal, ``KeyboardInterrupt`` with a
    one-line message, see :func:`edgefuse._cli_common.interrupted`).  ``out`` is written under
    ``<out>.partial`` and moved into place when complete; ``overwrite`` replaces an existing bag at ``out``
    then.  ``gap_periods``: an input's gap longer than this many nominal periods is reported in the
    report's ``health`` section (see :mod:`edgefuse.pipeline.health`).
    """
    config = load_pipeline(pipeline, rig_override=rig)
    bag_path = Path(bag) if bag is not None else config.bag_path
    if bag_path is None:
        raise ReplayError("no recording given: pass --bag or set 'bag:' in the pipeline", file=pipeline)
    _check_arguments(rate, max_speed, report_path, out, overwrite)
    # the rig: /tf_static and CameraInfo beside the outputs
    sink = RecordSink(out, overwrite=overwrite, rig=config.rig)
    runner = PipelineRunner(config, [sink], gap_periods=gap_periods)
    topics = [spec.topic for spec in config.inputs.values()]
    input_of = {spec.topic: name for name, spec in config.inputs.items()}
    source = open_source(bag_path, on_error="skip")
    source.set_time_offsets(config.time_offsets_ns())
    with source:
        available = source.topics()
        missing = [t for t in topics if t not in available]
        if missing:
            raise ReplayError(
                f"topic(s) {', '.join(missing)} not in {bag_path} (it has: {', '.join(sorted(available))})",
                file=bag_path)
        total = sum(int(available[t].count or 0) for t in topics)
        run = _Run(rate=None if max_speed else rate, prog=_Progress(progress, total))
        aborted: str | None = None
        interrupt: KeyboardInterrupt | None = None
        unexpected: Exception | None = None
        try:
            run.drive(runner, source, topics, progress)
        except KeyboardInterrupt as exc:  # SIGINT / SIGTERM (edgefuse._cli_common.handle_signals)
            interrupt, aborted = exc, interrupt_reason(exc)
        except (EdgefuseError, OSError) as exc:
            # a recording corrupt part-way, an output that cannot be written: stop reading, but finish
            # the pipeline, close the outputs and write the report (marked incomplete) before failing
            aborted = str(exc) if isinstance(exc, EdgefuseError) else one_line(exc)
        except Exception as exc:  # a bug: outputs closed and report written, then re-raised
            unexpected, aborted = exc, f"internal error: {type(exc).__name__}: {exc}"
        with deferred_signals():  # a second signal does not cut the clean-up short
            closing_error = _finish(runner, sink, aborted)
            aborted = aborted or closing_error
            report = runner.report()
            report.update(run.report(max_speed, rate))
            slowed = not max_speed and rate is not None and rate < 1.0
            report["rate"] = None if max_speed else rate
            report["budget_checks"] = budget_checks(config, runner, slowed=slowed)
            report["budget_breaches"] = [r for c in report["budget_checks"] for r in c["reasons"]]
            skipped = getattr(source, "skipped", {})
            report.update(
                bag=str(bag_path),
                skipped_messages={input_of.get(t, t): log.as_dict() for t, log in skipped.items()},
                bag_problems=list(getattr(source, "problems", [])),
                output_digests=sink.digests(),
                output_counts=dict(sink.counts),
                output_write_errors=dict(sink.write_errors),
                output_first_write_errors=list(sink.first_write_errors),
                output_extras_skipped=sink.extras_skipped,
                out=None if sink.path is None else str(sink.path),
                complete=aborted is None,
                error=aborted,
                environment=_environment(),
            )
            report_problem = _write_report(report, report_path)
            where = _where(sink, report_path, report_problem)
            so_far = f"after {run.done} of {total} messages"
            if interrupt is not None:
                raise interrupted(interrupt_signal(interrupt), f"replay {aborted} {so_far}{where}") from None
            if unexpected is not None:
                raise unexpected
            if aborted is not None:
                raise ReplayError(f"replay stopped {so_far}: {aborted}{where}")
            if report_problem is not None:
                done_where = f"; outputs in {sink.path}" if sink.path is not None else ""
                raise ReplayError(f"{report_problem} (the replay itself completed{done_where})", file=report_path)
    return ReplayResult(report, list(report["budget_breaches"]), runner, run.source_lat)


def budget_checks(config: PipelineConfig, runner: PipelineRunner, *, slowed: bool = False) -> list[dict[str, Any]]:
    """Every declared budget against what was measured, JSON-ready: per stage, end to end and processing.

    ``slowed`` (playback at ``--rate`` < 1): the wall-time sync wait grows as playback slows (a set waits
    for a message that arrives later), so it says nothing about the live budget; the end-to-end budget is
    then judged on the processing latency (stages + sinks, which does not scale with the rate), and the
    check says so (``measured: processing``)."""
    checks: list[dict[str, Any]] = []

    def check(kind: str, budget: Budget | None, rec: LatencyRecorder, label: str, measured: str) -> None:
        if budget is None:
            return
        summary = rec.summary()
        if rec.budget_ns != budget.deadline_ns:  # judged against another budget than the recorder's own
            misses = int((rec.samples_ns > budget.deadline_ns).sum())
            summary = replace(summary, misses=misses, budget_ms=budget.deadline_ms)
        summary = replace(summary, name=label)
        checks.append({
            "kind": kind, "name": label, "measured": measured, "deadline_ms": budget.deadline_ms,
            "p99_budget_ms": budget.p99_ms, "max_miss_rate": budget.max_miss_rate, "count": summary.count,
            "misses": summary.misses, "allowed_misses": budget.allowed_misses(summary.count),
            "p99_ms": summary.p99_ms, "max_ms": summary.max_ms, "reasons": budget.breaches(summary),
        })
        checks[-1]["breached"] = bool(checks[-1]["reasons"])

    for spec in config.stages:
        check("stage", spec.budget, runner.stage_latency[spec.name], spec.name, "stage")
    if slowed:
        check("end_to_end", config.e2e_budget, runner.processing, "end_to_end", "processing")
    else:
        check("end_to_end", config.e2e_budget, runner.e2e, "end_to_end", "end_to_end")
    check("processing", config.processing_budget, runner.processing, "processing", "processing")
    return checks


def _pct(value: float, limit: float) -> str:
    return f"{100.0 * (value - limit) / limit:+.0f}%"


def verdict_line(report: dict[str, Any]) -> str:
    """The one line ``replay`` and ``bench`` end with: budgets met, or which were breached and by how much."""
    checks = report.get("budget_checks", [])
    e2e = report.get("end_to_end", {})
    sets = report.get("sets", 0)
    rate = report.get("rate")
    slowed = rate is not None and rate < 1.0
    breached = [c for c in checks if c["breached"]]
    tail = (f" (playback at --rate {rate:g}: stages and processing judged against the budgets; the "
            "end-to-end sync wait was measured at slowed playback)") if slowed else ""
    if not breached:
        e2e_check = next((c for c in checks if c["kind"] == "end_to_end"), None)
        p99 = e2e.get("p99_ms")
        p99_text = "no sets" if p99 is None else f"e2e p99 {p99:.1f} ms"
        if slowed and e2e_check is not None and e2e_check["p99_ms"] is not None:
            p99_text = f"processing p99 {e2e_check['p99_ms']:.1f} ms"
        if not checks:
            return f"edgefuse: no latency budgets declared ({sets} sets, {p99_text}){tail}"
        of = f" of {e2e_check['deadline_ms']:g} ms" if e2e_check is not None else ""
        misses = sum(c["misses"] for c in checks)
        tolerated = f", {misses} deadline miss(es) within the allowed rate" if misses else ""
        return f"edgefuse: budgets met ({sets} sets, {p99_text}{of}{tolerated}){tail}"
    parts = []
    for c in breached:
        what = f"stage {c['name']}" if c["kind"] == "stage" else c["name"].replace("_", "-")
        if slowed and c["measured"] == "processing" and c["kind"] == "end_to_end":
            what += " (processing)"
        d = c["deadline_ms"]
        if c["misses"] > c["allowed_misses"]:
            worst = c["p99_ms"] if c["p99_ms"] is not None and c["p99_ms"] > d else c["max_ms"]
            which = "p99" if worst == c["p99_ms"] else "max"
            parts.append(f"{what} {which} {worst:.1f} ms > {d:g} ms deadline ({_pct(worst, d)}), "
                         f"{c['misses']}/{c['count']} late")
        if c["p99_budget_ms"] is not None and c["p99_ms"] is not None and c["p99_ms"] > c["p99_budget_ms"]:
            parts.append(f"{what} p99 {c['p99_ms']:.1f} ms > {c['p99_budget_ms']:g} ms p99 budget "
                         f"({_pct(c['p99_ms'], c['p99_budget_ms'])})")
    return "edgefuse: BUDGET BREACHED: " + "; ".join(parts) + tail


@dataclass
class _Run:
    """Pacing, progress and the counters of one replay (what the report says about the source and timing)."""

    rate: float | None  # None: max speed
    prog: _Progress
    done: int = 0
    first_recv: int | None = None
    last_recv: int = 0
    wall0: int = field(default_factory=time.perf_counter_ns)
    start_total_ms: float = 0.0
    source_lat: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("source"))

    def drive(self, runner: PipelineRunner, source: Any, topics: list[str], progress: TextIO | None) -> None:
        """Start the stages, then feed every envelope of ``topics`` (paced unless at max speed)."""
        t_start0 = time.perf_counter_ns()
        with StartNotice(progress):
            runner.start()
        self.start_total_ms = (time.perf_counter_ns() - t_start0) / 1e6
        self.wall0 = time.perf_counter_ns()
        it = source.envelopes(topics)
        while True:
            t0 = time.perf_counter_ns()
            env = next(it, None)
            if env is None:
                return
            self.source_lat.add(time.perf_counter_ns() - t0)
            if self.first_recv is None:
                self.first_recv = env.recv_ns
            self.last_recv = env.recv_ns
            if self.rate is not None:
                target = self.wall0 + (env.recv_ns - self.first_recv) / self.rate
                delay = (target - time.perf_counter_ns()) / NS_PER_S
                if delay > 0:
                    time.sleep(delay)
            runner.feed(env)
            self.done += 1
            self.prog.update(self.done, (env.recv_ns - self.first_recv) / NS_PER_S,
                             (time.perf_counter_ns() - self.wall0) / NS_PER_S)

    def report(self, max_speed: bool, rate: float | None) -> dict[str, Any]:
        """The report's timing fields (also shows the final progress line)."""
        wall_s = (time.perf_counter_ns() - self.wall0) / NS_PER_S
        span_s = 0.0 if self.first_recv is None else (self.last_recv - self.first_recv) / NS_PER_S
        self.prog.update(self.done, span_s, wall_s, final=True)
        return {
            "mode": "max_speed" if max_speed else f"rate {rate}",
            "messages": self.done,
            "recorded_span_s": span_s,
            "wall_s": wall_s,
            "realtime_factor": (span_s / wall_s) if wall_s > 0 else None,
            "start_total_ms": self.start_total_ms,
            "source": self.source_lat.summary().as_dict(),
        }


def _finish(runner: PipelineRunner, sink: RecordSink, aborted: str | None) -> str | None:
    """Flush the pipeline and close the outputs (finished but left at ``<out>.partial`` when ``aborted``);
    returns what went wrong while doing so, if anything (it never raises an edgefuse or OS error)."""
    if aborted is not None:
        sink.mark_incomplete(aborted)
    try:
        runner.finish()
    except (EdgefuseError, OSError) as exc:
        return str(exc) if isinstance(exc, EdgefuseError) else one_line(exc)
    except Exception as exc:  # clean-up after a failure: reported, never a second traceback
        return f"while closing: {type(exc).__name__}: {exc}"
    return None


def _write_report(report: dict[str, Any], report_path: str | Path | None) -> str | None:
    """Write the report; returns a one-line problem instead of raising when it cannot be written."""
    if report_path is None:
        return None
    path = Path(report_path)
    text = json.dumps(report, indent=2, default=str) + "\n"
    # a file is replaced whole (no half-written report on a full disk); a device or FIFO is written to
    regular = not path.exists() or path.is_file()
    target = path.with_name(f".{path.name}.tmp") if regular else path
    try:
        try:
            with target.open("w", encoding="utf-8") as f:
                f.write(text)
            if regular:
                os.replace(target, path)
        except PermissionError:
            if not regular:
                raise
            with suppress(OSError):
                target.unlink()
            path.write_text(text, encoding="utf-8")  # a writable file in a folder that is not
    except OSError as exc:
        if regular:
            with suppress(OSError):
                target.unlink()
        return f"cannot write the report: {exc.strerror or exc}"
    return None


def _where(sink: RecordSink, report_path: str | Path | None, report_problem: str | None) -> str:
    """``; outputs in X.partial, report R (complete: false)`` for the final one-line message."""
    parts = []
    if sink.path is not None and sink.storage_error is not None:
        parts.append(f"output left unfinished (no index) in {sink.path}")
    elif sink.path is not None:
        parts.append(f"outputs closed in {sink.path}")
    if report_problem is not None:
        parts.append(report_problem)
    elif report_path is not None:
        parts.append(f"report {report_path} (complete: false)")
    return ("; " + ", ".join(parts)) if parts else ""


def _check_arguments(rate: float | None, max_speed: bool, report_path: str | Path | None,
                     out: str | Path | None, overwrite: bool = False) -> None:
    """Refuse bad options before anything is started (one clear line each)."""
    if not max_speed and (rate is None or not math.isfinite(rate) or rate <= 0):
        raise ReplayError(f"--rate must be a finite number > 0, got {rate}")
    if report_path is not None:
        check_report_path(Path(report_path))
    if out is not None:
        check_writable_output(Path(out), overwrite=overwrite)


def check_report_path(rp: Path) -> None:
    """Fail before the run when the report cannot be written to ``rp``.

    A file (or a new one) is opened for appending, which finds a missing or read-only folder, a read-only
    file system and missing permissions, and changes nothing (a file it had to create is removed again).
    A device is written one newline, which finds ``/dev/full`` (a newline in front of JSON changes
    nothing for a reader).  A FIFO is only checked for permission (opening it would wait for a reader).
    """
    if rp.is_dir():
        raise ReplayError("cannot write the report: this is a folder; give a file name", file=rp)
    if not rp.parent.is_dir():
        raise ReplayError(f"cannot write the report: folder {rp.parent} does not exist", file=rp)
    try:
        mode = rp.stat().st_mode if rp.exists() else None
        if mode is not None and stat.S_ISFIFO(mode):
            if not os.access(rp, os.W_OK):
                raise PermissionError(13, "Permission denied")
        elif mode is not None and not stat.S_ISREG(mode):
            with rp.open("ab", buffering=0) as f:
                f.write(b"\n")
        else:
            with rp.open("ab"):
                pass
            if mode is None:
                rp.unlink()
    except OSError as exc:
        raise ReplayError(f"cannot write the report: {exc.strerror or exc}", file=rp) from None


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
    for name, d in report["stages"].items():
        if d["errors"]:
            first = d.get("first_errors") or [""]
            lines.append(f"STAGE ERRORS {name}: {d['errors']} set(s) failed and were skipped; first: {first[0]}")
    for name, d in report.get("skipped_messages", {}).items():
        reasons = "; ".join(f"{c} x {r}" for r, c in d["reasons"].items())
        lines.append(f"SKIPPED MESSAGES {name}: {d['count']} did not decode or convert ({reasons})")
    for problem in report.get("bag_problems", []):
        lines.append(f"BAG PROBLEM: {problem}")
    for topic, count in report.get("output_write_errors", {}).items():
        lines.append(f"OUTPUT ERRORS {topic}: {count} message(s) could not be serialised and were left out")
    if "health" in report:
        lines += format_health(report["health"])
    for topic, digest in report.get("output_digests", {}).items():
        lines.append(f"output {topic}: {report['output_counts'].get(topic, 0)} msgs sha256 {digest[:16]}")
    if report["budget_breaches"]:
        lines.append("BUDGET BREACHES:")
        lines += [f"  {b}" for b in report["budget_breaches"]]
    return "\n".join(lines)
