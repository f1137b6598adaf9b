"""15-state EKF over the whole 395 s Husky bag (IMU 30 Hz, odometry 10 Hz, GPS 2.5 Hz): target < 1 s.

Measured (public API only):
- ``decode_s``: reading + decoding the bag into per-sensor arrays (:func:`load_streams`: whole topics
  decoded straight from their bytes by ``edgefuse.msgs.fastpath`` through ``BagReader.columns``);
- ``decode_old_path_s``: the same arrays the old way, in the same run: rosbags message objects +
  ``to_payload`` per message (``open_bag(..., fast_decode=False).envelopes``) then
  ``*Arrays.from_payloads`` → ``decode_speedup``; ``read_only_s``: just iterating the raw messages
  (``BagReader.messages``), the floor set by rosbags' ROS 1 reader;
- ``decode_only_us_per_message``: decoding alone, on messages already read: ``fastpath.decode``
  (per message, what ``envelopes`` uses), ``fastpath.decode_columns`` (whole topics) and the old
  ``deserialize`` + ``to_payload``;
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
from _env import cpu  # bench/_env.py (benches run as scripts)

from edgefuse.bag import open_bag
from edgefuse.estimation import Ekf, FixArrays, ImuArrays, OdomArrays, Rows, SensorSpec
from edgefuse.estimation.offline import Stream, build_rows, load_streams
from edgefuse.msgs import deserialize, to_payload
from edgefuse.msgs.fastpath import decode, decode_columns
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


def load_streams_old_path(bag: Path, topics: dict[str, str]) -> dict[str, Stream]:
    """The decoding ``load_streams`` did before the fast path: message objects + to_payload per message."""
    by_topic = {t: s for s, t in topics.items()}
    msgs: dict[str, list[Any]] = {s: [] for s in topics}
    seqs: dict[str, list[int]] = {s: [] for s in topics}
    with open_bag(bag, fast_decode=False) as reader:
        for i, env in enumerate(reader.envelopes(list(by_topic))):
            msgs[by_topic[env.topic]].append(env.payload)
            seqs[by_topic[env.topic]].append(i)
    make = {"imu0": ImuArrays.from_payloads, "odom0": OdomArrays.from_payloads, "gnss0": FixArrays.from_payloads}
    return {s: Stream(make[s](msgs[s]), np.asarray(seqs[s], np.int64)) for s in topics}  # type: ignore[operator]


def _same_streams(a: dict[str, Stream], b: dict[str, Stream]) -> bool:
    for name, st in a.items():
        if not np.array_equal(st.seq, b[name].seq):
            return False
        for key, va in vars(st.arrays).items():
            vb = getattr(b[name].arrays, key)
            if isinstance(va, np.ndarray):
                if va.dtype != vb.dtype or not np.array_equal(va, vb, equal_nan=True):
                    return False
            elif va != vb:
                return False
    return True


def _decode_only(repeats: int) -> dict[str, float]:
    """µs per message of each decoder over the three topics' raw messages (read beforehand)."""
    with open_bag(BAG) as reader:
        raws = list(reader.messages(list(TOPICS.values())))
        store = reader.typestore
    by_type: dict[str, list[bytes | memoryview]] = {}
    for r in raws:
        by_type.setdefault(r.msgtype, []).append(r.rawdata)
    runs: dict[str, list[float]] = {"fast_per_message": [], "fast_columns": [], "old_deserialize_to_payload": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        for r in raws:
            decode(r.rawdata, r.msgtype, "ros1")
        t1 = time.perf_counter()
        for name, items in by_type.items():
            decode_columns(items, name, "ros1")
        t2 = time.perf_counter()
        for r in raws:
            to_payload(deserialize(r.rawdata, r.msgtype, fmt="ros1", typestore=store), r.msgtype)
        t3 = time.perf_counter()
        for key, dt in zip(runs, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            runs[key].append(dt)
    out = {k: round(float(np.median(v)) / len(raws) * 1e6, 2) for k, v in runs.items()}
    out["speedup_per_message"] = round(out["old_deserialize_to_payload"] / out["fast_per_message"], 1)
    out["speedup_columns"] = round(out["old_deserialize_to_payload"] / out["fast_columns"], 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rig = load_rig(RIG)
    decode, decode_old, read_only = [], [], []
    for _ in range(max(1, args.repeats // 2)):
        t0 = time.perf_counter()
        streams = load_streams(BAG, TOPICS)
        decode.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        streams_old = load_streams_old_path(BAG, TOPICS)
        decode_old.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with open_bag(BAG) as reader:
            n_read = sum(1 for _ in reader.messages(list(TOPICS.values())))
        read_only.append(time.perf_counter() - t0)
    same_arrays = _same_streams(streams, streams_old)
    decode_only = _decode_only(max(1, args.repeats // 2))
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
        "messages": n_read,
        "rows": n_rows,
        "jit_s": round(jit_s, 4),
        "decode_s": {"median": round(float(np.median(decode)), 4), "max": round(max(decode), 4)},
        "decode_old_path_s": {"median": round(float(np.median(decode_old)), 4), "max": round(max(decode_old), 4)},
        "decode_speedup": round(float(np.median(decode_old)) / float(np.median(decode)), 2),
        "decode_us_per_message": round(float(np.median(decode)) / n_read * 1e6, 2),
        "decode_old_path_us_per_message": round(float(np.median(decode_old)) / n_read * 1e6, 2),
        "read_only_s": {"median": round(float(np.median(read_only)), 4), "max": round(max(read_only), 4)},
        "decoded_arrays_identical_to_old_path": same_arrays,
        "decode_only_us_per_message": decode_only,
        "rows_s": {"median": round(float(np.median(rows_t)), 4), "max": round(max(rows_t), 4)},
        "filter_arrival_s": {"median": round(float(np.median(arr_t)), 4), "max": round(max(arr_t), 4),
                             "us_per_row": round(float(np.median(arr_t)) / n_rows * 1e6, 3),
                             "replayed_rows": replayed, "rejected": rejected},
        "filter_sorted_s": {"median": round(med, 4), "max": round(max(sort_t), 4),
                            "p99_of_repeats": round(float(np.percentile(sort_t, 99)), 4)},
        "filter_work_s": round(float(np.median(rows_t)) + float(np.median(arr_t)), 4),
        "end_to_end_s": round(float(np.median(decode)) + float(np.median(rows_t)) + float(np.median(arr_t)), 4),
        "end_to_end_old_path_s": round(
            float(np.median(decode_old)) + float(np.median(rows_t)) + float(np.median(arr_t)), 4
        ),
        "target_s": 1.0,
        "baseline_numpy_sorted_s": round(base_s, 4),
        "speedup_vs_numpy": round(base_s / med, 1),
        "max_abs_state_diff_vs_numpy": float(np.max(np.abs(_wrap_state_diff(x_sorted, x_np)))),
        "final_position_m": finals[-1][0:3].round(4).tolist(),
        "environment": {"numpy": np.__version__, "numba": numba.__version__, "threads": numba.get_num_threads(),
                        "machine": platform.machine(), "processor": cpu()},
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



if __name__ == "__main__":
    raise SystemExit(main())
