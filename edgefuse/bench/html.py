"""A self-contained HTML page for a bench record: inline SVG figures (no plotting library, no network), the
verdict first, then per-series latency histograms and CDFs with the budget lines, the timeline of every set
(end-to-end latency against recorded time, deadline misses marked), inputs (sync wait, drops), start-up, the
per-bag table of a fleet run and the device profile.

Size and speed are bounded whatever the recording's length: the timeline is drawn as one min/max envelope
per pixel column (:data:`WIDTH` columns) and at most :data:`MAX_MARKS` miss markers, so a 10-minute
recording renders in well under a second and the page stays small.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.pipeline.latency import LatencyHistogram, bin_edges_ns
from edgefuse.time import NS_PER_MS

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T, PAD_R = 640, 220, 56, 34, 14, 14
#: most deadline-miss markers drawn on a timeline (all are counted in the caption)
MAX_MARKS = 2000
_CSS = """body{font:14px system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.verdict{font-size:16px;padding:10px;border-radius:4px}.ok{background:#e6f4e6}.bad{background:#fbe3e3}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#555}
svg text{font:11px system-ui,sans-serif;fill:#333}"""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _ticks_log(lo: float, hi: float) -> list[float]:
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo <= v <= hi:
                out.append(v)
    return out


def _ticks_lin(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _svg_open(title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{html.escape(title)}</title>',
            f'<rect x="{PAD_L}" y="{PAD_T}" width="{WIDTH - PAD_L - PAD_R}" height="{HEIGHT - PAD_T - PAD_B}" '
            'fill="none" stroke="#999"/>']


def histogram_svg(name: str, hist: LatencyHistogram, deadline_ms: float | None) -> str:
    """Bars: share of samples per fixed bin (log latency axis); line: the CDF (right axis 0..1);
    red dashed: the deadline; grey ticks: p50 / p99."""
    parts = _svg_open(f"{name} latency histogram and CDF")
    if not hist.counts:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no samples</text></svg>')
        return "".join(parts)
    keys = sorted(hist.counts)
    lo = bin_edges_ns(keys[0])[0] / NS_PER_MS
    hi = bin_edges_ns(keys[-1])[1] / NS_PER_MS
    if deadline_ms is not None:
        hi = max(hi, deadline_ms * 1.1)
    lo = max(lo, hi * 1e-4, 1e-4)
    x0, x1, y0, y1 = PAD_L, WIDTH - PAD_R, HEIGHT - PAD_B, PAD_T
    llo, lhi = math.log10(lo), math.log10(hi)

    def x(v: float) -> float:
        return x0 + (math.log10(max(v, lo)) - llo) / max(lhi - llo, 1e-9) * (x1 - x0)

    n = hist.count
    top = max(hist.counts.values()) / n
    for k in keys:
        a, b = (e / NS_PER_MS for e in bin_edges_ns(k))
        h = hist.counts[k] / n / top * (y0 - y1)
        parts.append(f'<rect x="{x(a):.1f}" y="{y0 - h:.1f}" width="{max(x(b) - x(a), 0.8):.1f}" height="{h:.1f}" '
                     'fill="#4a7fc1"/>')
    edges, cum = hist.cdf()
    pts = " ".join(f"{x(e):.1f},{y0 - c * (y0 - y1):.1f}" for e, c in zip(edges, cum, strict=True))
    parts.append(f'<polyline points="{x(lo):.1f},{y0} {pts}" fill="none" stroke="#e08a00" stroke-width="1.5"/>')
    for q, label in ((50, "p50"), (99, "p99")):
        v = hist.percentile_ms(q)
        if v is not None:
            parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{y1}" y2="{y0}" stroke="#666" '
                         f'stroke-dasharray="2,3"/><text x="{x(v) + 2:.1f}" y="{y1 + 10}">{label}</text>')
    if deadline_ms is not None:
        parts.append(f'<line x1="{x(deadline_ms):.1f}" x2="{x(deadline_ms):.1f}" y1="{y1}" y2="{y0}" stroke="#d00" '
                     f'stroke-width="1.5" stroke-dasharray="6,3"/><text x="{x(deadline_ms) - 4:.1f}" y="{y1 + 22}" '
                     f'text-anchor="end" fill="#d00">deadline {deadline_ms:g} ms</text>')
    for t in _ticks_log(lo, hi):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#333"/>'
                     f'<text x="{x(t):.1f}" y="{y0 + 15}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 4}" text-anchor="middle">{html.escape(name)} latency [ms] '
                 f'(log), bars: share per bin, orange: CDF</text>')
    for c in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x0 - 4}" y="{y0 - c * (y0 - y1) + 4:.1f}" text-anchor="end">{c:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(timeline: dict[str, Any]) -> tuple[str, str]:
    """End-to-end latency of every set against recorded time (min/max envelope per pixel column), the
    deadline line and red marks at the sets that missed a deadline; returns (svg, caption)."""
    parts = _svg_open("timeline of every set")
    t = np.asarray(timeline["t_s"], dtype=np.float64)
    y = np.asarray(timeline["end_to_end_ms"], dtype=np.float64)
    flags = np.asarray(timeline["flags"], dtype=np.int64)
    deadline = timeline.get("end_to_end_deadline_ms")
    if t.size == 0:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no sets</text></svg>')
        return "".join(parts), "no sets"
    x0, x1, y0, y1 = PAD_L, WIDTH - PAD_R, HEIGHT - PAD_B, PAD_T
    tmax = max(float(t[-1]), 1e-9)
    ymax = float(max(y.max(), deadline * 1.1 if deadline else 0.0)) * 1.05 or 1.0
    cols = np.clip(((t / tmax) * (x1 - x0 - 1)).astype(np.int64), 0, x1 - x0 - 1)
    lo = np.full(x1 - x0, np.inf)
    hi = np.full(x1 - x0, -np.inf)
    np.minimum.at(lo, cols, y)
    np.maximum.at(hi, cols, y)
    used = np.isfinite(lo)

    def py(v: float) -> float:
        return y0 - v / ymax * (y0 - y1)

    segs = " ".join(f"M{x0 + c}.5,{py(lo[c]):.1f}V{min(py(hi[c]), py(lo[c]) - 0.8):.1f}" for c in np.flatnonzero(used))
    peak = " ".join(f"{x0 + c + 0.5},{py(hi[c]):.1f}" for c in np.flatnonzero(used))
    parts.append(f'<path d="{segs}" stroke="#4a7fc1" stroke-width="1" fill="none"/>'
                 f'<polyline points="{peak}" stroke="#4a7fc1" stroke-width="0.8" fill="none" opacity="0.6"/>')
    late = np.flatnonzero(flags != 0)
    shown = late if late.size <= MAX_MARKS else late[np.linspace(0, late.size - 1, MAX_MARKS).astype(np.int64)]
    for i in shown:
        parts.append(f'<circle cx="{x0 + cols[i] + 0.5}" cy="{py(y[i]):.1f}" r="2.2" fill="#d00"/>')
    if deadline:
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{py(deadline):.1f}" y2="{py(deadline):.1f}" stroke="#d00" '
                     f'stroke-dasharray="6,3"/><text x="{x1 - 4}" y="{py(deadline) - 3:.1f}" text-anchor="end" '
                     f'fill="#d00">end-to-end deadline {deadline:g} ms</text>')
    for v in _ticks_lin(0.0, tmax):
        xv = x0 + v / tmax * (x1 - x0)
        parts.append(f'<text x="{xv:.1f}" y="{y0 + 15}" text-anchor="middle">{v:g}</text>')
    for v in _ticks_lin(0.0, ymax, 4):
        parts.append(f'<text x="{x0 - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 4}" text-anchor="middle">recorded time [s]; '
                 'end-to-end latency [ms] per set; red: a deadline missed</text></svg>')
    caption = (f"{t.size} sets; {late.size} missed a deadline (end-to-end, processing or a stage)"
               + (f", {shown.size} marked" if shown.size < late.size else ""))
    return "".join(parts), caption


def _table(head: list[str], rows: list[list[Any]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_fmt(v)}</td>' for i, v in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render(record: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(the HTML page, {figure file name: SVG}) for a record of :mod:`edgefuse.bench.run`."""
    figures: dict[str, str] = {}
    title = f"edgefuse bench: {record['pipeline']}"
    ok = not record["budget_breaches"]
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
           f'<p class="verdict {"ok" if ok else "bad"}">{html.escape(record["verdict"])}</p>',
           f"<p>{record['bags']} bag(s) × {record['repeats']} repeat(s), {record['sets']} sets, mode "
           f"{html.escape(str(record['mode']))}, {record['recorded_span_s']:.1f} s recorded per repeat"
           f"{'' if record['bag'] is None else ', bag ' + html.escape(str(record['bag']))}</p>"]
    rows = []
    for name, s in record["series"].items():
        m = s["summary"]
        rows.append([name, s["kind"], m["count"], m["p50_ms"], m["p90_ms"], m["p99_ms"], m["p999_ms"], m["max_ms"],
                     s["noise"]["p99_ms"], m["budget_ms"], m["deadline_misses"]])
    out.append("<h2>Latency (steady state; start-up apart)</h2>")
    out.append(_table(["series", "kind", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                       "p99 std over repeats", "deadline ms", "misses"], rows, 2))
    out.append("<p>Percentiles from fixed log bins (64 per octave, ±0.55 %); merged runs add bins exactly.</p>")
    if record["budget_checks"]:
        out.append(_table(["budget", "measured", "deadline ms", "p99 budget ms", "count", "misses", "allowed",
                           "p99 ms", "breached"],
                          [[c["name"], c["measured"], c["deadline_ms"], c["p99_budget_ms"], c["count"], c["misses"],
                            c["allowed_misses"], c["p99_ms"], "yes" if c["breached"] else "no"]
                           for c in record["budget_checks"]], 2))
    if record.get("timeline"):
        svg, caption = timeline_svg(record["timeline"])
        figures["timeline.svg"] = svg
        out.append(f"<h2>Timeline (last repeat)</h2><figure>{svg}<figcaption>{html.escape(caption)}</figcaption>"
                   "</figure>")
    out.append("<h2>Histograms and CDFs</h2><div class='grid'>")
    for name, s in record["series"].items():
        svg = histogram_svg(name, LatencyHistogram.from_dict(s["histogram"]), s["deadline_ms"])
        figures[f"hist_{name}.svg"] = svg
        out.append(f"<figure>{svg}</figure>")
    out.append("</div><h2>Inputs: sync wait and drops</h2>")
    sw = record["series"].get("sync_wait_data_time", {}).get("summary")
    if sw:
        out.append(f"<p>sync wait in recorded time (what a live system waits for this policy): p50 "
                   f"{_fmt(sw['p50_ms'])} ms, p99 {_fmt(sw['p99_ms'])} ms, max {_fmt(sw['max_ms'])} ms</p>")
    out.append(_table(["input", "messages", "never used", "why", "undecodable", "gaps", "health"],
                      [[n, e["messages"], e["never_used"], ", ".join(f"{r} {c}" for r, c in
                        e["never_used_by_reason"].items()) or "-", e["skipped"], e["gaps"], e["verdict"]]
                       for n, e in record["inputs"].items()], 1))
    out.append("<h2>Start-up (JIT compile / model load), per start</h2>")
    stages = sorted({k for s in record["startup"] for k in s["stages"]})
    out.append(_table(["start", "total ms", *stages],
                      [[i + 1, s["total_ms"], *(s["stages"].get(k) for k in stages)]
                       for i, s in enumerate(record["startup"][:50])], 1))
    if record.get("per_bag"):
        out.append(f"<h2>Bags ({record['bags']} ok, {len(record.get('failed', []))} failed)</h2>")
        out.append(_table(["bag", "sets", "wall s", "e2e p99 ms", "outlier", "verdict"],
                          [[b["bag"], b["sets"], b["wall_s"], b["end_to_end_p99_ms"],
                            "yes" if b.get("outlier") else "", b["verdict"]] for b in record["per_bag"]], 1))
        if record.get("failed"):
            out.append(_table(["failed bag", "error"], [[b["bag"], b["error"]] for b in record["failed"]], 2))
    dev = dict(record["device"])
    flags = dev.pop("cpu_flags", None) or []
    out.append("<h2>Device</h2>" + _table(["", ""], [[k, json.dumps(v) if isinstance(v, dict | list) else v]
                                                      for k, v in dev.items()], 2))
    out.append(f"<details><summary>CPU flags ({len(flags)})</summary><p>{html.escape(' '.join(flags))}</p></details>")
    out.append("</body></html>")
    return "".join(out), figures


def write_report(record: dict[str, Any], folder: str | Path) -> Path:
    """Write ``report.json``, ``report.html`` and ``figures/*.svg`` into ``folder``; returns the HTML path."""
    folder = Path(folder)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(record, separators=(",", ":"), default=str) + "\n",
                                        encoding="utf-8")
    page, figures = render(record)
    for name, svg in figures.items():
        (folder / "figures" / _safe(name)).write_text(svg, encoding="utf-8")
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
