"""Kalman predict + update: edgefuse vs filterpy, 6-state constant-velocity filter, 3-D position
measurements, 100,000 steps, same process.

filterpy is run as a user runs it: ``kf.predict(); kf.update(z)`` per step.  edgefuse is timed two
ways: ``KalmanFilter.run`` (the whole sequence in one compiled loop) and the step-by-step API
(``predict()`` / ``update(z)`` per step, one Python call each).  Each is repeated ``--repeats`` times,
interleaved; the median total is reported, with min/max, and the speed-ups are ratios of medians.
Checks max |x_edgefuse - x_filterpy| <= 1e-9 over all states of all steps, for both edgefuse APIs.
JIT time (first call, or loading the on-disk cache) is reported apart.
Usage: python bench/bench_kalman.py [--steps 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from _env import commit  # bench/_env.py (benches run as scripts)


def _stats(totals: list[float], steps: int) -> dict[str, Any]:
    a = np.asarray(totals)
    return {"median_total_s": float(np.median(a)), "min_total_s": float(a.min()), "max_total_s": float(a.max()),
            "us_per_step_median": float(np.median(a) / steps * 1e6), "totals_s": [float(t) for t in a]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import filterpy
    import numba
    from filterpy.kalman import KalmanFilter as FilterpyKF

    from edgefuse.objects import KalmanFilter, constant_velocity_model

    rng = np.random.default_rng(0)
    n = args.steps
    F, Q, H = constant_velocity_model(0.05, 3, q=0.5)
    R = np.diag([0.25, 0.25, 0.5])
    zs = np.cumsum(rng.normal(0, 0.1, (n, 3)), axis=0) + rng.normal(0, 0.5, (n, 3))

    def setup(kf: Any, col: bool) -> None:
        kf.x = np.zeros((6, 1)) if col else np.zeros(6)
        kf.P = np.eye(6) * 10.0
        kf.F, kf.Q, kf.H, kf.R = F.copy(), Q.copy(), H.copy(), R.copy()

    t0 = time.perf_counter()
    warm = KalmanFilter(6, 3)
    setup(warm, False)
    warm.run(zs[:2])
    warm.predict()
    warm.update(zs[0])
    jit_s = time.perf_counter() - t0

    def run_filterpy() -> np.ndarray:
        fk = FilterpyKF(6, 3)
        setup(fk, True)
        out = np.empty((n, 6))
        for k in range(n):
            fk.predict()
            fk.update(zs[k])
            out[k] = fk.x[:, 0]
        return out

    def run_edgefuse() -> np.ndarray:
        kf = KalmanFilter(6, 3)
        setup(kf, False)
        xs, _ = kf.run(zs)
        return xs

    def run_steps() -> np.ndarray:
        kf = KalmanFilter(6, 3)
        setup(kf, False)
        out = np.empty((n, 6))
        for k in range(n):
            kf.predict()
            kf.update(zs[k])
            out[k] = kf.x
        return out

    times: dict[str, list[float]] = {"filterpy": [], "run": [], "steps": []}
    results: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in (("filterpy", run_filterpy), ("run", run_edgefuse), ("steps", run_steps)):
            t = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t)
    diff_run = float(np.abs(results["run"] - results["filterpy"]).max())
    diff_steps = float(np.abs(results["steps"] - results["filterpy"]).max())

    # per-call latency of the step-by-step API (predict + update), for the p99
    kf = KalmanFilter(6, 3)
    setup(kf, False)
    m = min(n, 20_000)
    per = np.empty(m)
    for k in range(m):
        t = time.perf_counter()
        kf.predict()
        kf.update(zs[k])
        per[k] = time.perf_counter() - t

    fp, run, steps = (_stats(times[k], n) for k in ("filterpy", "run", "steps"))
    result = {
        "bench": "kalman", "steps": n, "state_dim": 6, "meas_dim": 3, "repeats": args.repeats,
        "filterpy": fp, "edgefuse_run": run, "edgefuse_step_api": steps,
        "filterpy_us_per_step": fp["us_per_step_median"], "edgefuse_us_per_step": run["us_per_step_median"],
        "speedup": fp["median_total_s"] / run["median_total_s"],
        "speedup_step_api": fp["median_total_s"] / steps["median_total_s"],
        "max_abs_state_diff": diff_run, "max_abs_state_diff_step_api": diff_steps,
        "states_equal_1e-9": diff_run <= 1e-9 and diff_steps <= 1e-9,
        "edgefuse_step_api_call_us": {"median": float(np.median(per) * 1e6),
                                      "p99": float(np.percentile(per, 99) * 1e6), "max": float(per.max() * 1e6)},
        "jit_s": jit_s,
        "env": {"commit": commit(short=True) or "unknown", "cpu": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "numba_threads": numba.get_num_threads(), "numpy": np.__version__, "numba": numba.__version__,
                "filterpy": filterpy.__version__, "python": platform.python_version()},
    }
    out = Path(__file__).parent / "results" / "kalman.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not result["states_equal_1e-9"]:
        raise SystemExit(f"states differ from filterpy by {max(diff_run, diff_steps):.3g} > 1e-9")


if __name__ == "__main__":
    main()
