"""Bench records: one bag replayed ``repeats`` times, and the merge of several records (repeats, bags).

A record keeps, per latency series (each stage, ``sinks``, ``processing``, ``sync_wait``, ``end_to_end``,
``source`` and ``sync_wait_data_time``), the merged fixed-bin :class:`LatencyHistogram` and the p50/p99 of
every repeat (the noise estimate ``bench compare`` uses); the budget checks summed over the repeats; the
timeline of every set of the last repeat (recorded time, end-to-end and processing latency, which deadline
it missed); per-input message counts, messages never used by the synchronizer (by reason) and messages
skipped as undecodable; start-up (JIT compile / model load) per stage and repeat, apart from the latency;
the device profile; the wall and CPU time (this process, all its threads) of every repeat and the
output digests of the last one.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.bench.device import device_profile
from edgefuse.errors import ReplayError
from edgefuse.pipeline.latency import LatencyHistogram
from edgefuse.replay import ReplayResult, replay, verdict_line
from edgefuse.time import NS_PER_MS, NS_PER_S

#: format version of report.json
REPORT_VERSION = 1
#: the latency series besides the stages, in display order
PATHS = ("source", "sinks", "sync_wait", "processing", "end_to_end")
DATA_TIME = "sync_wait_data_time"


def _series_of(result: ReplayResult) -> dict[str, tuple[str, LatencyHistogram, float | None]]:
    """name -> (kind, histogram, deadline ms) of one replay."""
    runner = result.runner
    assert runner is not None
    assert result.source_latency is not None
    out: dict[str, tuple[str, LatencyHistogram, float | None]] = {}

    def ms(ns: int | None) -> float | None:
        return None if ns is None else ns / NS_PER_MS

    for name, rec in runner.stage_latency.items():
        key = name if name not in PATHS and name != DATA_TIME else f"stage.{name}"
        out[key] = ("stage", rec.histogram(), ms(rec.budget_ns))
    for name, rec in (("source", result.source_latency), ("sinks", runner.sink_latency),
                      ("sync_wait", runner.sync_wait_wall), ("processing", runner.processing),
                      ("end_to_end", runner.e2e), (DATA_TIME, runner.sync_wait_data)):
        out[name] = ("path", rec.histogram(), ms(rec.budget_ns))
    return out


def _timeline(result: ReplayResult) -> dict[str, Any]:
    runner = result.runner
    assert runner is not None
    stamps = runner.set_stamps.values
    t0 = int(stamps[0]) if stamps.size else 0
    e2e = runner.e2e.samples_ns
    proc = runner.processing.samples_ns
    n = min(stamps.size, e2e.size, proc.size)
    return {
        "t_s": np.round((stamps[:n] - t0) / NS_PER_S, 4).tolist(),
        "end_to_end_ms": np.round(e2e[:n] / NS_PER_MS, 4).tolist(),
        "processing_ms": np.round(proc[:n] / NS_PER_MS, 4).tolist(),
        "flags": runner.set_flags.values[:n].tolist(),
        "flag_bits": {"end_to_end": 1, "processing": 2, "stage": 4},
        "end_to_end_deadline_ms": None if runner.e2e.budget_ns is None else runner.e2e.budget_ns / NS_PER_MS,
    }


def _inputs(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    skipped = report.get("skipped_messages", {})
    for name, h in report.get("health", {}).get("inputs", {}).items():
        unused = h.get("never_used") or {"count": 0, "by_reason": {}}
        out[name] = {"messages": h["messages"], "never_used": unused["count"], "never_used_by_reason":
                     dict(unused["by_reason"]), "skipped": skipped.get(name, {}).get("count", 0),
                     "gaps": h["gaps"]["count"], "verdict": h["verdict"]}
    return out


def bench_bag(pipeline: str | Path, bag: str | Path | None = None, *, repeats: int = 3, rate: float | None = 1.0,
              max_speed: bool = False, device: dict[str, Any] | None = None) -> dict[str, Any]:
    """Replay ``bag`` (default: the pipeline's) ``repeats`` times; returns the JSON-ready record."""
    if repeats < 1:
        raise ReplayError(f"--repeats must be >= 1, got {repeats}")
    hists: dict[str, LatencyHistogram] = {}
    kinds: dict[str, str] = {}
    deadlines: dict[str, float | None] = {}
    per_repeat: dict[str, dict[str, list[float | None]]] = {}
    checks: list[list[dict[str, Any]]] = []
    startup: list[dict[str, Any]] = []
    walls: list[float] = []
    cpus: list[float] = []
    digests: set[str] = set()
    last: ReplayResult | None = None
    stopped: KeyboardInterrupt | None = None
    for _ in range(repeats):
        cpu0 = time.process_time()
        try:
            res = replay(pipeline, bag=bag, rate=rate, max_speed=max_speed)
        except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: the repeats done so far are still a valid record
            if last is None:
                raise
            stopped = exc
            break
        cpus.append(time.process_time() - cpu0)
        for name, (kind, hist, deadline) in _series_of(res).items():
            kinds[name], deadlines[name] = kind, deadline
            hists[name] = hists.get(name, LatencyHistogram()).merge(hist)
            pr = per_repeat.setdefault(name, {"p50_ms": [], "p99_ms": []})
            pr["p50_ms"].append(hist.percentile_ms(50))
            pr["p99_ms"].append(hist.percentile_ms(99))
        checks.append(res.report["budget_checks"])
        startup.append({"total_ms": res.report["start_total_ms"],
                        "stages": {k: v["start_ms"] for k, v in res.report["stages"].items()}})
        walls.append(res.report["wall_s"])
        digests.add(repr(sorted(res.report["output_digests"].items())))
        last = res
    assert last is not None
    rep = last.report
    done = len(walls)
    record: dict[str, Any] = {
        "edgefuse_bench": REPORT_VERSION, "kind": "bag", "pipeline": rep["pipeline"], "pipeline_path": str(pipeline),
        "bag": rep["bag"], "mode": rep["mode"], "rate": rep["rate"], "repeats": done, "bags": 1,
        "sets": rep["sets"] * done, "sets_per_repeat": rep["sets"], "messages_per_repeat": rep["messages"],
        "recorded_span_s": rep["recorded_span_s"], "wall_s": walls,
        "cpu_s": cpus,
        "series": {name: {"kind": kinds[name], "deadline_ms": deadlines[name], "histogram": hists[name].as_dict(),
                          "per_repeat": per_repeat[name]} for name in hists},
        "budget_checks": merge_checks(checks, hists),
        "timeline": _timeline(last),
        "inputs": _inputs(rep),
        "startup": startup,
        "outputs_identical_across_repeats": len(digests) == 1,
        "output_digests": dict(sorted(rep["output_digests"].items())),
        "device": device if device is not None else device_profile(),
    }
    if stopped is not None:
        from edgefuse._cli_common import interrupt_reason, interrupt_signal

        record.update(complete=False, repeats_requested=repeats, stopped_by=interrupt_reason(stopped),
                      stopped_by_signal=interrupt_signal(stopped))
    else:
        record["complete"] = True
    finish(record)
    return record


def merge_checks(checks: Sequence[Sequence[dict[str, Any]]], hists: dict[str, LatencyHistogram]
                 ) -> list[dict[str, Any]]:
    """Budget checks of several runs as one: counts and misses summed, p99 and max from the merged series."""
    merged: dict[str, dict[str, Any]] = {}
    for run in checks:
        for c in run:
            key = f"{c['kind']}:{c['name']}"
            m = merged.get(key)
            if m is None:
                merged[key] = {**c, "reasons": []}
                continue
            m["count"] += c["count"]
            m["misses"] += c["misses"]
    for m in merged.values():
        series = m["name"] if m["kind"] == "stage" else m["measured"]
        if m["kind"] == "stage" and series not in hists:
            series = f"stage.{series}"
        h = hists.get(series)
        m["p99_ms"] = None if h is None else h.percentile_ms(99)
        m["max_ms"] = None if h is None or h.max_ns is None else h.max_ns / NS_PER_MS
        m["allowed_misses"] = max(1, math.floor(m["max_miss_rate"] * m["count"])) if m["count"] else 0
        reasons = []
        if m["count"] and m["misses"] > m["allowed_misses"]:
            reasons.append(f"{m['name']}: {m['misses']}/{m['count']} samples over the {m['deadline_ms']:g} ms "
                           f"deadline (at most {m['allowed_misses']} allowed; max {m['max_ms']:.3f} ms)")
        if m["p99_budget_ms"] is not None and m["p99_ms"] is not None and m["p99_ms"] > m["p99_budget_ms"]:
            reasons.append(f"{m['name']}: p99 {m['p99_ms']:.3f} ms > {m['p99_budget_ms']:g} ms")
        m["reasons"], m["breached"] = reasons, bool(reasons)
    return list(merged.values())


def histograms(record: dict[str, Any]) -> dict[str, LatencyHistogram]:
    return {name: LatencyHistogram.from_dict(s["histogram"]) for name, s in record["series"].items()}


def finish(record: dict[str, Any]) -> None:
    """Fill the summaries (percentiles from the histograms) and the verdict line of a record."""
    hists = histograms(record)
    for name, s in record["series"].items():
        s["summary"] = hists[name].summary(name, s["deadline_ms"])
        pr = s["per_repeat"]
        s["noise"] = {k: _spread([v for v in pr[k] if v is not None]) for k in ("p50_ms", "p99_ms")}
    e2e = record["series"].get("end_to_end", {}).get("summary", {})
    record["verdict"] = verdict_line({"budget_checks": record["budget_checks"], "end_to_end": e2e,
                                      "sets": record["sets"], "rate": record["rate"]})
    record["budget_breaches"] = [r for c in record["budget_checks"] for r in c["reasons"]]


def _spread(values: list[float]) -> float | None:
    """Standard deviation of the per-repeat values (None with fewer than two)."""
    return statistics.stdev(values) if len(values) >= 2 else None


def merge_records(records: Sequence[dict[str, Any]], *, failed: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """One record for several bags: histograms added bin by bin (exact merged percentiles), budget checks
    summed, per-repeat values pooled; ``bags`` lists each bag's headline figures and marks outliers (an
    end-to-end p99 above the median bag's by more than 3 × the median absolute deviation and 10 %)."""
    if not records:
        raise ReplayError("no bag was benchmarked successfully" +
                          (f" ({len(failed)} failed: {failed[0]['error']})" if failed else ""))
    first = records[0]
    hists: dict[str, LatencyHistogram] = {}
    series: dict[str, dict[str, Any]] = {}
    for rec in records:
        for name, s in rec["series"].items():
            hists[name] = hists.get(name, LatencyHistogram()).merge(LatencyHistogram.from_dict(s["histogram"]))
            entry = series.setdefault(name, {"kind": s["kind"], "deadline_ms": s["deadline_ms"],
                                             "per_repeat": {"p50_ms": [], "p99_ms": []}})
            for k in ("p50_ms", "p99_ms"):
                entry["per_repeat"][k] += s["per_repeat"][k]
    for name, entry in series.items():
        entry["histogram"] = hists[name].as_dict()
    bags = [{"bag": r["bag"], "sets": r["sets"], "wall_s": sum(r["wall_s"]),
             "end_to_end_p99_ms": r["series"]["end_to_end"]["summary"]["p99_ms"],
             "verdict": r["verdict"], "output_digests": r.get("output_digests")} for r in records]
    p99s = [b["end_to_end_p99_ms"] for b in bags if b["end_to_end_p99_ms"] is not None]
    if len(p99s) >= 3:
        med = statistics.median(p99s)
        mad = statistics.median(abs(v - med) for v in p99s)
        for b in bags:
            v = b["end_to_end_p99_ms"]
            b["outlier"] = v is not None and v > med + max(3 * mad, 0.1 * med)
    merged: dict[str, Any] = {
        "edgefuse_bench": REPORT_VERSION, "kind": "merged", "pipeline": first["pipeline"],
        "pipeline_path": first["pipeline_path"], "bag": None, "mode": first["mode"], "rate": first["rate"],
        "repeats": first["repeats"], "bags": len(records), "sets": sum(r["sets"] for r in records),
        "recorded_span_s": sum(r["recorded_span_s"] for r in records),
        "wall_s": [w for r in records for w in r["wall_s"]],
        "cpu_s": [c for r in records for c in r.get("cpu_s", [])],
        "series": series,
        "budget_checks": merge_checks([r["budget_checks"] for r in records], hists),
        "timeline": None,
        "inputs": _merge_inputs([r["inputs"] for r in records]),
        "startup": [s for r in records for s in r["startup"]],
        "outputs_identical_across_repeats": all(r["outputs_identical_across_repeats"] for r in records),
        "per_bag": bags,
        "outliers": [b["bag"] for b in bags if b.get("outlier")],
        "failed": list(failed),
        "device": first["device"],
    }
    finish(merged)
    return merged


def _merge_inputs(all_inputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for inputs in all_inputs:
        for name, e in inputs.items():
            m = out.setdefault(name, {"messages": 0, "never_used": 0, "never_used_by_reason": {}, "skipped": 0,
                                      "gaps": 0, "verdict": "ok"})
            for k in ("messages", "never_used", "skipped", "gaps"):
                m[k] += e[k]
            for r, c in e["never_used_by_reason"].items():
                m["never_used_by_reason"][r] = m["never_used_by_reason"].get(r, 0) + c
            if e["verdict"] != "ok":
                m["verdict"] = e["verdict"]
    return out


def format_summary(record: dict[str, Any]) -> str:
    """The short terminal summary: one line per series (p50/p99/max, budget, misses), then start-up."""
    bags = f"{record['bags']} bag(s) x " if record["kind"] == "merged" else ""
    lines = [f"bench {record['pipeline']}: {bags}{record['repeats']} repeat(s), {record['sets']} sets, "
             f"{record['mode']}",
             f"{'series':<28}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'±p99':>8}{'budget':>8}{'misses':>8}"]

    def f(v: Any, w: int = 9) -> str:
        return f"{v:{w}.3f}" if isinstance(v, float) else f"{'-':>{w}}"

    for name, s in record["series"].items():
        m = s["summary"]
        lines.append(f"{name:<28}{m['count']:>8}{f(m['p50_ms'])}{f(m['p99_ms'])}{f(m['max_ms'])}"
                     f"{f(s['noise']['p99_ms'], 8)}{f(m['budget_ms'], 8)}{m['deadline_misses']:>8}")
    starts = [s["total_ms"] for s in record["startup"]]
    if starts:
        lines.append(f"start-up (JIT / model load, not in the latency): first {starts[0]:.0f} ms, "
                     f"median {statistics.median(starts):.0f} ms over {len(starts)} start(s)")
    for name, e in record["inputs"].items():
        if e["never_used"] or e["skipped"]:
            why = ", ".join(f"{r} {n}" for r, n in e["never_used_by_reason"].items())
            lines.append(f"input {name}: {e['messages']} msgs, {e['never_used']} never used ({why}), "
                         f"{e['skipped']} undecodable")
    for b in record.get("failed", []):
        lines.append(f"FAILED bag {b['bag']}: {b['error']}")
    if record.get("outliers"):
        lines.append(f"outlier bag(s) (end-to-end p99): {', '.join(record['outliers'])}")
    return "\n".join(lines)
