"""Deskew before/after in one process: this checkout's ``Deskewer`` against the one of a git revision.

The revision's ``edgefuse/fusion/deskew.py`` and ``_deskew_kernels.py`` are read with ``git show``
(read-only) into a temporary folder and imported beside the current ones; both deskew the same
131,072-point sweeps (Ouster column timing, and one time per point) with the same motions,
interleaved rep by rep so that machine load hits both alike.  Prints JSON (median / p99 / min per
side, the ratio of medians, the largest difference between the two outputs) and writes
``bench/results/deskew_compare.json``; the cold JIT warm-up of each side is timed in a fresh
subprocess with an empty Numba cache.

    python bench/compare_deskew_rev.py --rev b835590 [--reps 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "deskew_compare.json"
N = 131_072


def _load_rev(rev: str, tmp: Path) -> ModuleType:
    """Import the revision's deskew module (with its own kernels module) under a private name."""
    for name in ("deskew", "_deskew_kernels"):
        src = subprocess.run(["git", "show", f"{rev}:edgefuse/fusion/{name}.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        src = src.replace("from edgefuse.fusion import _deskew_kernels as _k", "import _rev_deskew_kernels as _k")
        (tmp / f"_rev_{name.lstrip('_')}.py").write_text(src)
    sys.path.insert(0, str(tmp))
    spec = importlib.util.spec_from_file_location("_rev_deskew", tmp / "_rev_deskew.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_rev_deskew"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cold_warmup_s(rev: str | None) -> float:
    """Seconds of ``Deskewer().warmup()`` in a fresh interpreter with an empty Numba cache."""
    code = ("import sys, time; sys.path.insert(0, {!r})\n".format(str(ROOT / "bench"))
            + "from compare_deskew_rev import _load_rev\n"
            + "import tempfile, pathlib\n"
            + (f"m = _load_rev({rev!r}, pathlib.Path(tempfile.mkdtemp()))\n" if rev else
               "import edgefuse.fusion.deskew as m\n")
            + "t = time.perf_counter(); m.Deskewer().warmup(); print(time.perf_counter() - t)\n")
    env = dict(os.environ, EDGEFUSE_NUMBA_CACHE_DIR=tempfile.mkdtemp())  # an empty cache: a cold start
    env.pop("NUMBA_CACHE_DIR", None)  # set by edgefuse.config in this process; it would win in the child
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def _stats(ts: list[float]) -> dict[str, float]:
    a = np.asarray(ts) * 1e3
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "min_ms": float(a.min()),
            "max_ms": float(a.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rev", required=True, help="git revision holding the 'before' deskew")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold warm-up timing")
    args = ap.parse_args()
    numba.set_num_threads(1)
    import edgefuse.fusion.deskew as new
    from edgefuse.msgs.types import ImuBatch

    old = _load_rev(args.rev, Path(tempfile.mkdtemp()))
    T_il = np.eye(4)
    T_il[:3, 3] = [0.006, -0.012, 0.008]
    sides = {"before": old.Deskewer(T_il, capacity=N, outside="extrapolate"),
             "after": new.Deskewer(T_il, capacity=N, outside="extrapolate")}
    for d in sides.values():
        d.warmup()
    rng = np.random.default_rng(0)
    xyz = (rng.normal(size=(N, 3)) * 20).astype(np.float32)
    t0 = 1_700_000_000_000_000_000
    t_col = t0 + np.repeat(np.arange(1024, dtype=np.int64) * 97_656, 128)
    t_unique = t0 + np.sort(rng.integers(0, 100_000_000, N)).astype(np.int64)
    imu_t = t0 - 3_000_000 + np.arange(13, dtype=np.int64) * 10_000_000
    gyro = np.column_stack([0.05 * np.sin(np.arange(13)), 0.02 * np.cos(np.arange(13)), 0.8 + 0.01 * np.arange(13)])
    result: dict[str, Any] = {"bench": "deskew_compare", "rev_before": args.rev, "points": N, "threads": 1,
                              "reps": args.reps, "load_avg_start": os.getloadavg()[0], "scenes": {}}
    for scene, t in (("ouster_columns", t_col), ("unique_times", t_unique)):
        for mname in ("constant_velocity", "imu_batch"):
            motions = {"before": old.ConstantVelocity((12.0, 0.3, 0.0), (0.01, -0.02, 0.8)),
                       "after": new.ConstantVelocity((12.0, 0.3, 0.0), (0.01, -0.02, 0.8))}
            if mname == "imu_batch":
                motions = {k: ImuBatch(imu_t, gyro, np.zeros_like(gyro)) for k in sides}
            outs = {k: sides[k].deskew(xyz, t, motions[k], reference_time_ns="start").points.copy() for k in sides}
            ts: dict[str, list[float]] = {k: [] for k in sides}
            for _ in range(args.reps):
                for k, d in sides.items():
                    a = time.perf_counter()
                    d.deskew(xyz, t, motions[k], reference_time_ns="start")
                    ts[k].append(time.perf_counter() - a)
            st = {k: _stats(v) for k, v in ts.items()}
            x64 = xyz.astype(np.float64)
            o64 = {k: sides[k].deskew(x64, t, motions[k], reference_time_ns="start").points for k in sides}
            result["scenes"][f"{scene}/{mname}"] = {
                "max_abs_diff_m_float64": float(np.abs(o64["before"] - o64["after"]).max()),
                **st, "speedup_median": st["before"]["median_ms"] / st["after"]["median_ms"],
                "max_abs_diff_m": float(np.abs(outs["before"].astype(np.float64) - outs["after"]).max())}
    if not args.no_cold:
        result["cold_warmup_s"] = {"before": _cold_warmup_s(args.rev), "after": _cold_warmup_s(None)}
    result["load_avg_end"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
