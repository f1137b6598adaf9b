"""DTW distance: edgefuse_calibration (Numba) versus dtaidistance's C implementation, same run.

Workloads: random-walk series of n = 1,000 and 10,000 samples, full matrix and a Sakoe-Chiba band of
n/10.  Baseline: ``dtaidistance.dtw.distance(a, b, use_c=True)`` (with ``window=`` for the band), and
``dtaidistance.dtw.distance_fast`` (its C path with pruning on) for information.  Each call is timed
``--repeats`` times; median, p99 and max are reported, and the ratio baseline/edgefuse of the medians
(> 1: edgefuse faster).  The first call (JIT compile or cache load) is timed apart.  The distances are
checked to be identical (==) to dtaidistance's before timing.

Also times the temporal-calibration estimators on the real Husky bag (IMU yaw rate vs wheel odometry,
395 s) once each, and writes the Husky offset with its injected-offset recovery to
bench/results/calib_time.json.

Prints JSON and writes bench/results/dtw.json.  Run: ``python bench/bench_dtw.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _stats(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    return {"median_ms": statistics.median(s) * 1e3, "p99_ms": s[min(len(s) - 1, int(0.99 * len(s)))] * 1e3,
            "max_ms": s[-1] * 1e3, "n": len(s)}


def _time(fn: Any, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_dtw(repeats: int) -> dict[str, Any]:
    import dtaidistance
    from dtaidistance import dtw as dtai

    t = time.perf_counter()
    from edgefuse_calibration.temporal import dtw_distance

    rng = np.random.default_rng(0)
    warm = rng.normal(size=50)
    dtw_distance(warm, warm)
    first_call_s = time.perf_counter() - t
    cases = []
    for n in (1000, 10000):
        a, b = np.cumsum(rng.normal(size=n)), np.cumsum(rng.normal(size=n))
        for window in (None, n // 10):
            ours = dtw_distance(a, b, window=window)
            ref = dtai.distance(a, b, window=window, use_c=True)
            if ours != ref:
                raise SystemExit(f"distance mismatch n={n} window={window}: {ours!r} != {ref!r}")
            reps = repeats if n <= 1000 else max(3, repeats // 10)
            t_ours = _time(lambda a=a, b=b, w=window: dtw_distance(a, b, window=w), reps)
            t_ref = _time(lambda a=a, b=b, w=window: dtai.distance(a, b, window=w, use_c=True), reps)
            t_fast = _time(lambda a=a, b=b, w=window: dtai.distance_fast(a, b, window=w), reps)
            so, sr, sf = _stats(t_ours), _stats(t_ref), _stats(t_fast)
            cases.append({"n": n, "window": window, "identical": True, "edgefuse": so,
                          "dtaidistance_c": sr, "dtaidistance_fast_pruned": sf,
                          "speedup_vs_dtaidistance_c": sr["median_ms"] / so["median_ms"],
                          "speedup_vs_dtaidistance_fast_pruned": sf["median_ms"] / so["median_ms"]})
    return {"first_call_s (jit compile or cache load)": first_call_s, "cases": cases,
            "dtaidistance_version": dtaidistance.__version__}


def bench_calib_time() -> dict[str, Any]:
    from edgefuse_calibration.temporal import estimate_time_offset, inject_offset, signals_from_bag

    from edgefuse.rig.transform import rotation_from_rpy

    bag = ROOT / "tests/data/husky_imu_gps_odom_bag/test1.bag"
    R = rotation_from_rpy([90.0, 0.0, -90.0], degrees=True)
    imu, odom = signals_from_bag(bag, ["/imu/data:gyro_z", "/husky_velocity_controller/odom:twist_yaw"], [R, None])
    out: dict[str, Any] = {"dataset": "husky_imu_gps_odom_bag/test1.bag (robot_localization, BSD)",
                           "signal_a": "/imu/data gyro rotated to base_link, z (30 Hz)",
                           "signal_b": "/husky_velocity_controller/odom twist.angular.z (10 Hz)",
                           "convention": "t_imu = t_odom + offset_ns", "goal_ns": 10_000_000, "methods": {}}
    for method in ("xcorr", "dtw"):
        t = time.perf_counter()
        base = estimate_time_offset(imu, odom, method=method)
        dt = time.perf_counter() - t
        rec = []
        for ms in (20, -20, 50, -50, 137, -137):
            e = estimate_time_offset(imu, inject_offset(odom, ms * 1_000_000), method=method)
            err = None if e.offset_ns is None or base.offset_ns is None else e.offset_ns - base.offset_ns - ms * 1e6
            rec.append({"injected_ms": ms, "verdict": str(e.verdict), "error_ms": None if err is None else err / 1e6,
                        "uncertainty_ms": None if e.uncertainty_ns is None else e.uncertainty_ns / 1e6})
        out["methods"][method] = {**base.to_dict(), "seconds": dt, "injected": rec,
                                  "max_abs_error_ms": max(abs(r["error_ms"]) for r in rec if r["error_ms"] is not None)}
    # EuRoC micro: camera (derived rotation rate from the 95 frames) vs gyro
    import csv

    from edgefuse_calibration.temporal import Signal
    root = ROOT / "tests/data/euroc_v101_micro"
    imu_rows = np.loadtxt(root / "MicroEurocDataset/mav0/imu0/data_first1000.csv", delimiter=",", comments="#")
    gyro = Signal(imu_rows[:, 0].astype(np.int64), imu_rows[:, 1:4], "imu0_gyro")
    with open(root / "derived_cam0_rotation_rate.csv") as fh:
        rows = [r for r in csv.reader(fh) if not r[0].startswith("#")]
    cam = Signal(np.array([int(r[0]) for r in rows]), np.array([[float(x) for x in r[1:4]] for r in rows]), "cam0")
    e = estimate_time_offset(gyro, cam, method="cca", max_lag_ns=200_000_000)
    out["euroc_micro_cam0_imu0"] = {**e.to_dict(), "max_camera_rate_rad_s": float(np.abs(cam.values).max())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    meta = {"python": sys.version.split()[0], "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "numpy": np.__version__, "numba": __import__("numba").__version__}
    res = {"benchmark": "dtw.distance", **meta, **bench_dtw(args.repeats)}
    calib = {"benchmark": "calib_time", **meta, **bench_calib_time()}
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dtw.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "calib_time.json").write_text(json.dumps(calib, indent=2, default=str) + "\n")
    print(json.dumps({"dtw": res, "calib_time": calib}, indent=2, default=str))


if __name__ == "__main__":
    main()
