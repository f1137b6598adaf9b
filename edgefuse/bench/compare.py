"""``edgefuse bench compare A B``: two bench reports side by side, per series p50/p99 change with a noise
estimate from the repeats.

Noise of a percentile: the standard deviation of its per-repeat values in each report, combined as
sqrt(sA² + sB²) (0 with a single repeat).  A series regresses when its p50 or p99 grew by more than
``max_regression`` percent *and* by more than twice the noise, so the run-to-run jitter of a shared machine
does not fail CI while a real slow-down does.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from edgefuse.errors import ReplayError

#: series compared (besides every stage)
COMPARED_PATHS = ("processing", "end_to_end", "sinks", "source")


def load_report(path: str | Path) -> dict[str, Any]:
    """A report.json written by ``edgefuse bench`` (or the folder holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReplayError("no bench report here (expected report.json written by edgefuse bench)", file=p) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"cannot read the bench report: {exc}", file=p) from None
    if not isinstance(data, dict) or "edgefuse_bench" not in data or "series" not in data:
        raise ReplayError("not an edgefuse bench report (no 'edgefuse_bench' / 'series')", file=p)
    return data


def _std(values: list[Any]) -> float:
    vals = [v for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) >= 2 else 0.0


def compare(a: dict[str, Any], b: dict[str, Any], max_regression_pct: float = 10.0) -> dict[str, Any]:
    """Rows per series present in both reports (stages, then paths), and the regressions."""
    rows: list[dict[str, Any]] = []
    names = [n for n, s in a["series"].items() if s["kind"] == "stage" and n in b["series"]]
    names += [n for n in COMPARED_PATHS if n in a["series"] and n in b["series"]]
    for name in names:
        sa, sb = a["series"][name], b["series"][name]
        for q in ("p50_ms", "p99_ms"):
            va, vb = sa["summary"][q], sb["summary"][q]
            if va is None or vb is None:
                continue
            noise = math.hypot(_std(sa["per_repeat"][q]), _std(sb["per_repeat"][q]))
            change = 100.0 * (vb - va) / va if va > 0 else 0.0
            regressed = change > max_regression_pct and (vb - va) > 2.0 * noise
            rows.append({"series": name, "stat": q[:-3], "a_ms": va, "b_ms": vb, "change_pct": change,
                         "noise_ms": noise, "noise_pct": 100.0 * noise / va if va > 0 else 0.0,
                         "regressed": regressed})
    return {"rows": rows, "max_regression_pct": max_regression_pct,
            "regressions": [r for r in rows if r["regressed"]],
            "same_device": a.get("device", {}).get("cpu") == b.get("device", {}).get("cpu"),
            "same_pipeline": a.get("pipeline") == b.get("pipeline")}


def format_compare(result: dict[str, Any], name_a: str, name_b: str) -> str:
    lines = [f"A = {name_a}", f"B = {name_b}"]
    if not result["same_pipeline"]:
        lines.append("warning: the reports are of different pipelines")
    if not result["same_device"]:
        lines.append("warning: the reports were measured on different CPUs")
    lines.append(f"{'series':<24}{'stat':>5}{'A ms':>10}{'B ms':>10}{'change':>9}{'noise':>9}")
    for r in result["rows"]:
        mark = "  REGRESSION" if r["regressed"] else ""
        lines.append(f"{r['series']:<24}{r['stat']:>5}{r['a_ms']:>10.3f}{r['b_ms']:>10.3f}{r['change_pct']:>+8.1f}%"
                     f"{r['noise_pct']:>8.1f}%{mark}")
    regs = result["regressions"]
    if regs:
        worst = max(regs, key=lambda r: r["change_pct"])
        lines.append(f"edgefuse: REGRESSION: {len(regs)} figure(s) beyond {result['max_regression_pct']:g}% "
                     f"(worst {worst['series']} {worst['stat']} {worst['change_pct']:+.1f}%, noise "
                     f"±{worst['noise_pct']:.1f}%)")
    else:
        lines.append(f"edgefuse: no regression beyond {result['max_regression_pct']:g}% (and twice the noise)")
    return "\n".join(lines)
