"""Kalman predict + update: edgefuse vs filterpy, 6-state constant-velocity filter, 3-D position
measurements, 100,000 steps, same process.  Checks max |x_edgefuse - x_filterpy| <= 1e-9 over all steps.
Reports total time, per-step median/p99 for the step-by-step APIs, and JIT time apart.
Usage: python bench/bench_kalman.py [--steps 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from filterpy.kalman import KalmanFilter as FilterpyKF

    from edgefuse.objects import KalmanFilter, constant_velocity_model

    rng = np.random.default_rng(0)
    n = args.steps
    F, Q, H = constant_velocity_model(0.05, 3, q=0.5)
    R = np.diag([0.25, 0.25, 0.5])
    zs = np.cumsum(rng.normal(0, 0.1, (n, 3)), axis=0) + rng.normal(0, 0.5, (n, 3))

    def setup(kf: object, col: bool) -> None:
        kf.x = np.zeros((6, 1)) if col else np.zeros(6)  # type: ignore[attr-defined]
        kf.P = np.eye(6) * 10.0  # type: ignore[attr-defined]
        kf.F, kf.Q, kf.H, kf.R = F.copy(), Q.copy(), H.copy(), R.copy()  # type: ignore[attr-defined]

    t0 = time.perf_counter()
    warm = KalmanFilter(6, 3)
    setup(warm, False)
    warm.run(zs[:2])
    warm.predict()
    warm.update(zs[0])
    jit_s = time.perf_counter() - t0

    ref_best = ours_best = np.inf
    ref_x = xs = None
    for _ in range(args.repeats):
        fk = FilterpyKF(6, 3)
        setup(fk, True)
        ref_x = np.empty((n, 6))
        t = time.perf_counter()
        for k in range(n):
            fk.predict()
            fk.update(zs[k])
            ref_x[k] = fk.x[:, 0]
        ref_best = min(ref_best, time.perf_counter() - t)
        kf = KalmanFilter(6, 3)
        setup(kf, False)
        t = time.perf_counter()
        xs, _ = kf.run(zs)
        ours_best = min(ours_best, time.perf_counter() - t)
    assert ref_x is not None
    assert xs is not None
    max_diff = float(np.abs(xs - ref_x).max())

    # step-by-step API (one Python call per predict / update), for context
    kf = KalmanFilter(6, 3)
    setup(kf, False)
    m = min(n, 20_000)
    per = np.empty(m)
    for k in range(m):
        t = time.perf_counter()
        kf.predict()
        kf.update(zs[k])
        per[k] = time.perf_counter() - t

    import filterpy
    import numba

    result = {
        "bench": "kalman", "steps": n, "state_dim": 6, "meas_dim": 3, "repeats": args.repeats,
        "filterpy_total_s": ref_best, "edgefuse_run_total_s": ours_best,
        "filterpy_us_per_step": ref_best / n * 1e6, "edgefuse_us_per_step": ours_best / n * 1e6,
        "speedup": ref_best / ours_best, "max_abs_state_diff": max_diff, "states_equal_1e-9": max_diff <= 1e-9,
        "edgefuse_step_api_us": {"median": float(np.median(per) * 1e6), "p99": float(np.percentile(per, 99) * 1e6)},
        "jit_s": jit_s,
        "env": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "numpy": np.__version__,
                "numba": numba.__version__, "filterpy": filterpy.__version__, "python": platform.python_version()},
    }
    out = Path(__file__).parent / "results" / "kalman.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
