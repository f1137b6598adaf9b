"""Benchmark sweep deskew (``edgefuse.fusion.deskew.Deskewer``) against a vectorised numpy baseline.

Public API only.  Scenes (131,072 points = one OS-1-128 1024x10 sweep, float32 xyz):

- ``ouster_columns``: the real sweep layout: 1024 column times, 128 points each (the first frame of
  the bundled OS-1-128 capture, tiled to 131,072 points; synthetic points with the same timing when
  the test data is absent);
- ``unique_times``: every point its own time (worst case: a rotation per point).

Motions: constant velocity, and IMU-integrated (100 Hz gyro, 11 samples over the sweep) with a
LiDAR↔IMU extrinsic.  For each: median / p99 / max of ``Deskewer.deskew`` on one thread (JIT warm,
output preallocated) and of a numpy implementation with the same semantics (per-point Rodrigues) in
the same process, the ratio, and misses against 2 ms.  JIT time is reported apart (``warmup()``).

    python bench/bench_deskew.py [--reps 200]

Prints JSON and writes ``bench/results/deskew.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from edgefuse.fusion.deskew import ConstantVelocity, Deskewer, integrate_imu

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "deskew.json"
PCAPS = ROOT / "tests" / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
N = 131_072
DEADLINE_MS = 2.0
F64 = npt.NDArray[np.float64]


def _ouster_sweep() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], str]:
    try:
        from edgefuse_drivers.ouster import OusterPcap, xyz_lut

        src = OusterPcap(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", PCAPS / "OS-1-128_v2.3.0_1024x10.json")
        scan = next(iter(src.scans()))
        xyz, t, _ok = scan.xyz(xyz_lut(src.info))
        return xyz.astype(np.float32), t.astype(np.int64), "OS-1-128 frame 1795 (all 131,072 pixels)"
    except (ImportError, OSError, StopIteration):
        rng = np.random.default_rng(0)
        t = np.repeat(np.arange(1024, dtype=np.int64) * 97_656, 128)
        return (rng.normal(size=(N, 3)) * 20).astype(np.float32), t, "synthetic, Ouster column timing"


def _numpy_deskew(  # noqa: PLR0917 (mirrors the kernel inputs)
    pts: npt.NDArray[np.float32], t: npt.NDArray[np.int64], seg_t_ns: npt.NDArray[np.int64],
                  R: F64, p: F64, v: F64, w: F64, ref: tuple[F64, F64], T_il: F64) -> F64:
    """Vectorised numpy with the deskew semantics: per-point segment, Rodrigues, reference pose."""
    k = np.clip(np.searchsorted(seg_t_ns, t, side="right") - 1, 0, len(seg_t_ns) - 1)
    s = (t - seg_t_ns[k]) * 1e-9
    y = pts.astype(np.float64) @ T_il[:3, :3].T + T_il[:3, 3]
    rv = w[k] * s[:, None]
    th = np.linalg.norm(rv, axis=1)
    u = rv / np.where(th > 0, th, 1.0)[:, None]
    c, sn = np.cos(th)[:, None], np.sin(th)[:, None]
    z = y * c + np.cross(u, y) * sn + u * (np.sum(u * y, axis=1, keepdims=True) * (1 - c))
    world = np.einsum("nij,nj->ni", R[k], z) + p[k] + v[k] * s[:, None]
    R_ref, p_ref = ref
    q = (world - p_ref) @ R_ref
    return (q - T_il[:3, 3]) @ T_il[:3, :3]  # type: ignore[no-any-return]


def _stats(fn: Callable[[], Any], reps: int) -> dict[str, float]:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    a = np.asarray(ts)
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max()),
            "min_ms": float(a.min()), "misses_over_2ms": int((a > DEADLINE_MS).sum()), "reps": reps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    numba.set_num_threads(1)
    T_il = np.eye(4)
    T_il[:3, 3] = [0.006, -0.012, 0.008]  # the OS-1's IMU offset (mm-scale), rotation identity
    t0 = time.perf_counter()
    dsk = Deskewer(T_il, capacity=N, outside="extrapolate")
    dsk.warmup()
    jit_s = time.perf_counter() - t0

    xyz, t_col, source = _ouster_sweep()
    rng = np.random.default_rng(1)
    t_unique = np.sort(rng.integers(int(t_col[0]), int(t_col[-1]), N)).astype(np.int64)
    start = int(t_col.min())
    imu_t = start - 3_000_000 + np.arange(13, dtype=np.int64) * 10_000_000
    gyro = np.column_stack([0.05 * np.sin(np.arange(13)), 0.02 * np.cos(np.arange(13)), 0.8 + 0.01 * np.arange(13)])
    cv = ConstantVelocity((12.0, 0.3, 0.0), (0.01, -0.02, 0.8))
    out: dict[str, Any] = {
        "bench": "deskew", "points": N, "source": source, "threads": 1, "jit_warmup_s": round(jit_s, 3),
        "cpu": platform.processor() or platform.machine(), "numba": numba.__version__, "numpy": np.__version__,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True, check=False).stdout.strip(),
        "load_avg": os.getloadavg()[0], "scenes": {},
    }
    for scene, t in (("ouster_columns", t_col), ("unique_times", t_unique)):
        for mname in ("constant_velocity", "imu"):
            if mname == "imu":
                def motion_fn(tt: npt.NDArray[np.int64] = t) -> Any:
                    return integrate_imu(imu_t, gyro, int(tt.min()), int(tt.max()), initial_velocity_mps=(12, 0.3, 0))
            else:
                def motion_fn(tt: npt.NDArray[np.int64] = t) -> Any:
                    return cv
            motion = motion_fn()
            ref = int(t.min())

            def fast(tt: npt.NDArray[np.int64] = t, m: Any = motion, r: int = ref) -> Any:
                return dsk.deskew(xyz, tt, m, reference_time_ns=r)

            def with_integration(tt: npt.NDArray[np.int64] = t, r: int = ref) -> Any:
                return dsk.deskew(xyz, tt, motion_fn(tt), reference_time_ns=r)

            res = fast()
            m_table = res.motion
            seg_ns = m_table.origin_ns + np.round(m_table.seg_t * 1e9).astype(np.int64)
            ref_pose = m_table.pose_at(ref)

            def base(tt: npt.NDArray[np.int64] = t, m: Any = m_table, s: Any = seg_ns, rp: Any = ref_pose) -> Any:
                return _numpy_deskew(xyz, tt, s, m.R, m.p, m.v, m.w, rp, T_il)

            err = float(np.abs(base() - res.points).max())
            fs = _stats(fast, args.reps)
            bs = _stats(base, max(10, args.reps // 10))
            entry = {"deskew": fs, "numpy": bs, "speedup_median": bs["median_ms"] / fs["median_ms"],
                     "max_abs_diff_m": err}
            if mname == "imu":
                entry["deskew_incl_imu_integration"] = _stats(with_integration, args.reps)
            out["scenes"][f"{scene}/{mname}"] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
