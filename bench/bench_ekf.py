"""15-state EKF over the whole 395 s Husky bag (IMU 30 Hz, odometry 10 Hz, GPS 2.5 Hz): target < 1 s.

Measured (public API only):
- ``decode_s``: reading + deserialising the bag into per-sensor arrays (edgefuse.bag);
- ``rows_s``: sensor → filter-frame measurement rows (vectorised);
- ``filter_arrival_s``: the kernel over the rows in arrival order (the IMU is ~26 ms late, so ~9k
  rows are inserted into the history and later rows replayed);
- ``filter_sorted_s``: the kernel over the rows sorted by stamp;
- ``end_to_end_s``: decode + rows + filter (arrival order);
- baseline: a plain numpy EKF (same motion model and updates, Jacobian by forward differences of a
  batched numpy motion model) over the stamp-sorted rows in the same process → ``speedup``.
JIT compile time is reported apart (``jit_s``; with a warm on-disk cache it is the cache load).

Run: python bench/bench_ekf.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from edgefuse.estimation import Ekf, Rows, SensorSpec
from edgefuse.estimation.offline import build_rows, load_streams
from edgefuse.rig import load_rig

ROOT = Path(__file__).resolve().parent.parent
BAG = ROOT / "edgefuse" / "data" / "husky" / "test1.bag"
RIG = ROOT / "edgefuse" / "data" / "husky" / "rig.yaml"
TOPICS = {"imu0": "/imu/data", "odom0": "/husky_velocity_controller/odom", "gnss0": "/fix"}
Q = np.diag([0.05, 0.05, 0.06, 0.03, 0.03, 0.06, 0.025, 0.025, 0.04, 0.01, 0.01, 0.02, 0.01, 0.01, 0.015])
SENSORS = [
    SensorSpec("imu0", "imu", ["roll", "pitch", "yaw", "vroll", "vpitch", "ax", "ay", "az"],
               remove_gravitational_acceleration=True),
    SensorSpec("odom0", "odom", ["vx", "vy", "vz"]),
    SensorSpec("gnss0", "gnss", ["x", "y"], zero_altitude=True, yaw_offset_rad=2.2515),
]


# -- the numpy baseline ------------------------------------------------------------------------------
def _wrap(a: Any) -> Any:
    return (a + np.pi) % (2 * np.pi) - np.pi


def np_propagate(X: np.ndarray, dt: float) -> np.ndarray:
    """Motion model on a batch of states (B, 15)."""
    r, p, y = X[:, 3], X[:, 4], X[:, 5]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    R = np.stack([np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
                  np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
                  np.stack([-sp, cp * sr, cp * cr], -1)], -2)
    u = X[:, 6:9] * dt + 0.5 * X[:, 12:15] * dt * dt
    out = X.copy()
    out[:, 0:3] += np.einsum("bij,bj->bi", R, u)
    w1, w2 = X[:, 10], X[:, 11]
    tp = sp / cp
    out[:, 3] = _wrap(r + (X[:, 9] + sr * tp * w1 + cr * tp * w2) * dt)
    out[:, 4] = _wrap(p + (cr * w1 - sr * w2) * dt)
    out[:, 5] = _wrap(y + (sr / cp * w1 + cr / cp * w2) * dt)
    out[:, 6:9] += X[:, 12:15] * dt
    return out


def numpy_ekf(rows: Rows, g: float = 9.80665) -> np.ndarray:
    """Plain numpy EKF over rows in stamp order (direct rows only; GNSS through a fixed datum transform)."""
    x = np.zeros(15)
    P = np.eye(15) * 1e-9
    t_prev = int(rows.t[0])
    nav: tuple[float, np.ndarray] | None = None
    eps = 1e-7
    for i in range(len(rows)):
        if rows.pre[i] >= 0:
            continue
        t = int(rows.t[i])
        dt = (t - t_prev) * 1e-9
        if dt > 0:
            X = np.repeat(x[None], 16, 0)
            X[1:] += np.eye(15) * eps
            Y = np_propagate(X, dt)
            D = Y[1:] - Y[0]
            D[:, 3:6] = _wrap(D[:, 3:6])
            F = D.T / eps
            x = Y[0]
            P = F @ P @ F.T + Q * dt
            t_prev = t
        m = int(rows.m[i])
        idx = rows.idx[i, :m]
        z = rows.z[i, :m].copy()
        R = rows.R[i, :m, :m].copy()
        d = np.arange(m)
        R[d, d] = np.maximum(R[d, d], 1e-9)
        if rows.kind[i] == 2:  # GNSS: ENU -> world at the first fix
            if nav is None:
                nav = (float(_wrap(x[5] - rows.aux[i])), x[0:3].copy())
            c, s = math.cos(nav[0]), math.sin(nav[0])
            e = np.zeros(3)
            e[idx] = z
            w = np.array([c * e[0] - s * e[1], s * e[0] + c * e[1], e[2]]) + nav[1]
            z = w[idx]
            Rot = np.array([[c, -s], [s, c]])
            if m == 2:
                R = Rot @ R @ Rot.T
        y = z - x[idx]
        ang = (idx >= 3) & (idx <= 5)
        y[ang] = _wrap(y[ang])
        S = P[np.ix_(idx, idx)] + R
        K = P[:, idx] @ np.linalg.inv(S)
        x = x + K @ y
        x[3:6] = _wrap(x[3:6])
        P = P - K @ P[idx, :]
        P = 0.5 * (P + P.T)
    return x


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rig = load_rig(RIG)
    decode = []
    for _ in range(max(1, args.repeats // 2)):
        t0 = time.perf_counter()
        streams = load_streams(BAG, TOPICS)
        decode.append(time.perf_counter() - t0)
    est = Ekf(SENSORS, rig=rig, process_noise=Q)
    t0 = time.perf_counter()
    est.warmup()
    jit_s = time.perf_counter() - t0
    rows_t, arr_t, sort_t, finals = [], [], [], []
    rows = Rows.empty()
    for _ in range(args.repeats):
        est.reset()
        t0 = time.perf_counter()
        rows = build_rows(est, streams)
        t1 = time.perf_counter()
        est.run(rows)
        t2 = time.perf_counter()
        rows_t.append(t1 - t0)
        arr_t.append(t2 - t1)
        finals.append(est.x.copy())
    replayed = est.replayed
    rejected = est.rejection_totals()
    sorted_rows = rows.sorted_by_arrival(np.argsort(rows.t, kind="stable"))
    for _ in range(args.repeats):
        est.reset()
        t0 = time.perf_counter()
        est.run(sorted_rows)
        sort_t.append(time.perf_counter() - t0)
    x_sorted = est.x.copy()
    t0 = time.perf_counter()
    x_np = numpy_ekf(sorted_rows)
    base_s = time.perf_counter() - t0
    med = float(np.median(sort_t))
    n_rows = len(rows)
    result = {
        "bench": "ekf_husky",
        "bag": str(BAG.relative_to(ROOT)),
        "recorded_s": 395.3,
        "messages": 16806,
        "rows": n_rows,
        "jit_s": round(jit_s, 4),
        "decode_s": {"median": round(float(np.median(decode)), 4), "max": round(max(decode), 4)},
        "rows_s": {"median": round(float(np.median(rows_t)), 4), "max": round(max(rows_t), 4)},
        "filter_arrival_s": {"median": round(float(np.median(arr_t)), 4), "max": round(max(arr_t), 4),
                             "us_per_row": round(float(np.median(arr_t)) / n_rows * 1e6, 3),
                             "replayed_rows": replayed, "rejected": rejected},
        "filter_sorted_s": {"median": round(med, 4), "max": round(max(sort_t), 4),
                            "p99_of_repeats": round(float(np.percentile(sort_t, 99)), 4)},
        "filter_work_s": round(float(np.median(rows_t)) + float(np.median(arr_t)), 4),
        "end_to_end_s": round(float(np.median(decode)) + float(np.median(rows_t)) + float(np.median(arr_t)), 4),
        "target_s": 1.0,
        "baseline_numpy_sorted_s": round(base_s, 4),
        "speedup_vs_numpy": round(base_s / med, 1),
        "max_abs_state_diff_vs_numpy": float(np.max(np.abs(_wrap_state_diff(x_sorted, x_np)))),
        "final_position_m": finals[-1][0:3].round(4).tolist(),
        "environment": {"numpy": np.__version__, "numba": numba.__version__, "threads": numba.get_num_threads(),
                        "machine": platform.machine(), "processor": _cpu()},
    }
    out = ROOT / "bench" / "results" / "ekf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


def _wrap_state_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d: np.ndarray = a - b
    d[3:6] = _wrap(d[3:6])
    return d


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
