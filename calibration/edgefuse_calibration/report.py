"""Report helpers shared by the calibration commands: JSON reports and PNG plots.

``write_json_report(path, report)`` writes a JSON object (numpy arrays and scalars converted, non-finite
floats as null).  ``plot_time_offset(path, estimate, a, b)`` draws the score-vs-lag curve and the two
signals before and after alignment (matplotlib, Agg backend, imported lazily).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.errors import CalibrationError


def jsonable(v: Any) -> Any:
    """``v`` with numpy values, tuples, paths and non-finite floats made JSON-safe."""
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


def write_json_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report`` as indented JSON (parent folders created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(jsonable(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return p


def plot_time_offset(path: str | Path, estimate: Any, a: Any, b: Any) -> Path:
    """PNG with (top) the alignment score versus lag with the estimate and its ±σ band, and (bottom)
    the two signals' first channels, ``b`` shifted by the estimate when there is one."""
    try:
        import matplotlib
    except ImportError:
        raise CalibrationError("plots need matplotlib: install the calib extra (pip install 'edgefuse[calib]')"
                               ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(9, 6), constrained_layout=True)
    d = estimate.diagnostics
    if "lags_ns" in d and "score" in d:
        ax0.plot(np.asarray(d["lags_ns"]) / 1e6, np.asarray(d["score"]), lw=1)
    if estimate.offset_ns is not None:
        off = estimate.offset_ns / 1e6
        sig = (estimate.uncertainty_ns or 0) / 1e6
        ax0.axvline(off, color="C3", lw=1)
        ax0.axvspan(off - sig, off + sig, color="C3", alpha=0.2)
    ax0.set_xlabel("offset of b (ms): t_a = t_b + offset")
    ax0.set_ylabel(f"{estimate.method} score")
    title = f"{estimate.method}: {estimate.verdict}"
    if estimate.offset_ns is not None:
        title += f", offset {estimate.offset_ns / 1e6:.2f} ± {(estimate.uncertainty_ns or 0) / 1e6:.2f} ms"
    else:
        title += f" ({d.get('reason', '')})"
    ax0.set_title(title, fontsize=9)
    t0 = int(a.stamps_ns[0])
    ax1.plot((a.stamps_ns - t0) / 1e9, a.matrix()[:, 0], lw=0.8, label=a.name)
    shift = estimate.offset_ns or 0
    ax1.plot((b.stamps_ns + shift - t0) / 1e9, b.matrix()[:, 0], lw=0.8,
             label=f"{b.name} (shifted {shift / 1e6:.1f} ms)")
    ax1.set_xlabel("time (s)")
    ax1.legend(fontsize=8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return p
