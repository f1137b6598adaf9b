"""Kalman filters: edgefuse vs filterpy in the same process.

1. **Linear**: 6-state constant-velocity filter, 3-D position measurements, ``--steps`` (100,000) steps.
   filterpy is run as a user runs it: ``kf.predict(); kf.update(z)`` per step.  edgefuse is timed three
   ways: ``KalmanFilter.run`` (the whole sequence in one compiled loop; returns the final state and
   covariance), the same with ``store_cov=True`` (every covariance written), and the step-by-step API
   (``predict()`` / ``update(z)`` per step).  Checks max |x_edgefuse − x_filterpy| ≤ 1e-9 over all
   states of all steps, and the final covariance.
2. **Radar EKF**: a 3-D target tracked by a radar at the origin that measures range, azimuth and
   elevation; constant-velocity state (p, v) (n = 6, m = 3); ``--radar-steps`` (100,000) steps of
   0.1 s.  The target flies a 5 km circle around the radar at 50 m/s, 1000 ± 200 m high, so the
   azimuth crosses ±π once per lap (16 times): both filters wrap the azimuth residual (filterpy's
   ``residual=`` argument, edgefuse's ``residual_z=angle_residual(1)``).  Noise: range σ 5 m, angles
   σ 1 mrad; Q = discrete white-noise acceleration, q = 1 m²/s³.  filterpy: ``ExtendedKalmanFilter``
   with ``predict(); update(z, HJacobian, Hx, residual=...)`` per step (F set once; its predict is
   x ← F x); h, H and the residual are plain Python/``math`` functions, as a filterpy user writes them.
   edgefuse: ``BatchEKF(f, F, h, H)`` with the same model as ``numba.njit`` functions, one ``run``.
3. **Radar UKF**: the same problem, filterpy's ``UnscentedKalmanFilter`` with
   ``MerweScaledSigmaPoints(6, alpha, beta, kappa)`` (defaults α = 1, β = 2, κ = 3 − n) vs
   ``BatchUKF`` with the same parameters; both use a wrapped azimuth residual and a circular mean of
   the azimuth (``z_mean``), so the algorithms are the same.  filterpy's UKF is slow (~1 ms a step),
   so it runs ``--ukf-filterpy-repeats`` (1) times.

Each edgefuse figure is the median of ``--repeats`` interleaved runs, with min/max; speed-ups are
ratios of medians measured in this run.  States and covariances are compared at every step (edgefuse's
comparison run stores covariances; the timed run does not).  JIT time (first call, or loading the
on-disk cache; for the EKF / UKF always a compilation, as kernels taking model functions are not cached)
is reported apart.

Usage: python bench/bench_kalman.py [--steps 100000] [--repeats 5] [--radar-steps 100000]
       [--skip-linear] [--skip-ukf] [--ukf-alpha 1.0 --ukf-beta 2.0 --ukf-kappa -3.0]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from _env import commit, cpu  # bench/_env.py (benches run as scripts)

DT = 0.1
RADIUS_M = 5000.0
SPEED_MPS = 50.0
SIGMA_RANGE_M = 5.0
SIGMA_ANGLE_RAD = 1e-3


def _stats(totals: list[float], steps: int) -> dict[str, Any]:
    a = np.asarray(totals)
    return {"median_total_s": float(np.median(a)), "min_total_s": float(a.min()), "max_total_s": float(a.max()),
            "us_per_step_median": float(np.median(a) / steps * 1e6), "totals_s": [float(t) for t in a]}


# -- linear --------------------------------------------------------------------------------------------
def linear(n: int, repeats: int) -> dict[str, Any]:
    from filterpy.kalman import KalmanFilter as FilterpyKF

    from edgefuse.objects import KalmanFilter, constant_velocity_model

    rng = np.random.default_rng(0)
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

    def run_filterpy() -> tuple[np.ndarray, np.ndarray]:
        fk = FilterpyKF(6, 3)
        setup(fk, True)
        out = np.empty((n, 6))
        for k in range(n):
            fk.predict()
            fk.update(zs[k])
            out[k] = fk.x[:, 0]
        return out, fk.P.copy()

    def run_edgefuse() -> tuple[np.ndarray, np.ndarray]:
        kf = KalmanFilter(6, 3)
        setup(kf, False)
        res = kf.run(zs)
        return res.xs, res.P

    def run_edgefuse_store() -> tuple[np.ndarray, np.ndarray]:
        kf = KalmanFilter(6, 3)
        setup(kf, False)
        res = kf.run(zs, store_cov=True)
        assert res.Ps is not None
        return res.xs, res.Ps[-1]

    def run_steps() -> tuple[np.ndarray, np.ndarray]:
        kf = KalmanFilter(6, 3)
        setup(kf, False)
        out = np.empty((n, 6))
        for k in range(n):
            kf.predict()
            kf.update(zs[k])
            out[k] = kf.x
        return out, kf.P.copy()

    runs = (("filterpy", run_filterpy), ("run", run_edgefuse), ("run_store_cov", run_edgefuse_store),
            ("steps", run_steps))
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(repeats):
        for name, fn in runs:
            t = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t)
    ref_x, ref_P = results["filterpy"]
    diff = {name: float(np.abs(results[name][0] - ref_x).max()) for name in ("run", "run_store_cov", "steps")}
    diff_P = {name: float(np.abs(results[name][1] - ref_P).max()) for name in ("run", "run_store_cov", "steps")}

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

    fp, run, store, steps = (_stats(times[k], n) for k in ("filterpy", "run", "run_store_cov", "steps"))
    return {
        "steps": n, "state_dim": 6, "meas_dim": 3, "repeats": repeats,
        "filterpy": fp, "edgefuse_run": run, "edgefuse_run_store_cov": store, "edgefuse_step_api": steps,
        "filterpy_us_per_step": fp["us_per_step_median"], "edgefuse_us_per_step": run["us_per_step_median"],
        "speedup": fp["median_total_s"] / run["median_total_s"],
        "speedup_store_cov": fp["median_total_s"] / store["median_total_s"],
        "store_cov_cost": store["median_total_s"] / run["median_total_s"],
        "speedup_step_api": fp["median_total_s"] / steps["median_total_s"],
        "max_abs_state_diff": diff["run"], "max_abs_state_diff_step_api": diff["steps"],
        "max_abs_final_cov_diff": diff_P,
        "equal_1e-9": max(diff.values()) <= 1e-9 and max(diff_P.values()) <= 1e-9,
        "edgefuse_step_api_call_us": {"median": float(np.median(per) * 1e6),
                                      "p99": float(np.percentile(per, 99) * 1e6), "max": float(per.max() * 1e6)},
        "jit_s": jit_s,
    }


# -- the radar problem ---------------------------------------------------------------------------------
@numba.njit(cache=True)
def cv_f(x: np.ndarray, dt: float, out: np.ndarray) -> None:
    """Constant velocity: p ← p + v·dt."""
    for i in range(3):
        out[i] = x[i] + dt * x[3 + i]
        out[3 + i] = x[3 + i]


@numba.njit(cache=True)
def cv_F(x: np.ndarray, dt: float, out: np.ndarray) -> None:  # noqa: N802 -- the Jacobian is F
    out[:, :] = 0.0
    for i in range(6):
        out[i, i] = 1.0
    for i in range(3):
        out[i, 3 + i] = dt


@numba.njit(cache=True)
def radar_h(x: np.ndarray, out: np.ndarray) -> None:
    """Range, azimuth atan2(y, x), elevation atan2(z, ρ) of the target seen from the origin."""
    px, py, pz = x[0], x[1], x[2]
    rho = math.sqrt(px * px + py * py)
    out[0] = math.sqrt(px * px + py * py + pz * pz)
    out[1] = math.atan2(py, px)
    out[2] = math.atan2(pz, rho)


@numba.njit(cache=True)
def radar_H(x: np.ndarray, out: np.ndarray) -> None:  # noqa: N802 -- the Jacobian is H
    px, py, pz = x[0], x[1], x[2]
    rho2 = px * px + py * py
    rho = math.sqrt(rho2)
    r2 = rho2 + pz * pz
    r = math.sqrt(r2)
    out[:, :] = 0.0
    out[0, 0] = px / r
    out[0, 1] = py / r
    out[0, 2] = pz / r
    out[1, 0] = -py / rho2
    out[1, 1] = px / rho2
    out[2, 0] = -px * pz / (r2 * rho)
    out[2, 1] = -py * pz / (r2 * rho)
    out[2, 2] = rho / r2


# the same model as a filterpy user writes it (plain Python, math on floats)
def py_h(x: np.ndarray) -> np.ndarray:
    px, py, pz = float(x[0, 0]), float(x[1, 0]), float(x[2, 0])
    rho = math.hypot(px, py)
    return np.array([[math.sqrt(px * px + py * py + pz * pz)], [math.atan2(py, px)], [math.atan2(pz, rho)]])


def py_H(x: np.ndarray) -> np.ndarray:  # noqa: N802
    px, py, pz = float(x[0, 0]), float(x[1, 0]), float(x[2, 0])
    rho2 = px * px + py * py
    rho = math.sqrt(rho2)
    r2 = rho2 + pz * pz
    r = math.sqrt(r2)
    return np.array([[px / r, py / r, pz / r, 0.0, 0.0, 0.0],
                     [-py / rho2, px / rho2, 0.0, 0.0, 0.0, 0.0],
                     [-px * pz / (r2 * rho), -py * pz / (r2 * rho), rho / r2, 0.0, 0.0, 0.0]])


def py_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    y: np.ndarray = np.subtract(a, b)
    y[1] = (y[1] + math.pi) % (2 * math.pi) - math.pi
    return y


def radar_problem(steps: int, seed: int = 0) -> dict[str, Any]:
    """Truth, measurements (K, 3) and the filter set-up of the radar problem (module docstring)."""
    from edgefuse.objects import constant_velocity_model

    rng = np.random.default_rng(seed)
    t = np.arange(1, steps + 1) * DT
    w = SPEED_MPS / RADIUS_M
    truth = np.stack([RADIUS_M * np.cos(w * t + 2.8), RADIUS_M * np.sin(w * t + 2.8),
                      1000.0 + 200.0 * np.sin(0.01 * t)], 1)
    zs = np.stack([np.linalg.norm(truth, axis=1), np.arctan2(truth[:, 1], truth[:, 0]),
                   np.arctan2(truth[:, 2], np.hypot(truth[:, 0], truth[:, 1]))], 1)
    zs += rng.normal(0.0, 1.0, zs.shape) * np.array([SIGMA_RANGE_M, SIGMA_ANGLE_RAD, SIGMA_ANGLE_RAD])
    zs[:, 1] = (zs[:, 1] + np.pi) % (2 * np.pi) - np.pi
    F, Q, _ = constant_velocity_model(DT, 3, q=1.0)
    R = np.diag([SIGMA_RANGE_M**2, SIGMA_ANGLE_RAD**2, SIGMA_ANGLE_RAD**2])
    x0 = np.array([truth[0, 0] + 30.0, truth[0, 1] - 20.0, truth[0, 2] + 10.0, -10.0, -45.0, 0.0])
    P0 = np.diag([400.0, 400.0, 400.0, 900.0, 900.0, 100.0])
    crossings = int(np.sum(np.abs(np.diff(zs[:, 1])) > np.pi))
    return {"truth": truth, "zs": zs, "F": F, "Q": Q, "R": R, "x0": x0, "P0": P0, "azimuth_crossings": crossings}


def radar_ekf(prob: dict[str, Any], repeats: int) -> dict[str, Any]:
    from filterpy.kalman import ExtendedKalmanFilter

    from edgefuse.objects import BatchEKF, angle_residual

    zs, F, Q, R, x0, P0 = (prob[k] for k in ("zs", "F", "Q", "R", "x0", "P0"))
    n = zs.shape[0]
    t0 = time.perf_counter()
    ekf = BatchEKF(cv_f, cv_F, radar_h, radar_H, Q=Q, R=R, residual_z=angle_residual(1))
    ekf.warmup(x0, P0, DT)
    jit_s = time.perf_counter() - t0
    zcol = zs.reshape(n, 3, 1)

    def run_filterpy() -> tuple[np.ndarray, np.ndarray]:
        fp = ExtendedKalmanFilter(6, 3)
        fp.x = x0.reshape(6, 1).copy()
        fp.P = P0.copy()
        fp.F, fp.Q, fp.R = F, Q, R
        xs = np.empty((n, 6))
        Ps = np.empty((n, 6, 6))
        for k in range(n):
            fp.predict()
            fp.update(zcol[k], py_H, py_h, residual=py_residual)
            xs[k] = fp.x[:, 0]
            Ps[k] = fp.P
        return xs, Ps

    times: dict[str, list[float]] = {"filterpy": [], "edgefuse": [], "edgefuse_store_cov": []}
    ref: tuple[np.ndarray, np.ndarray] | None = None
    ours: Any = None
    for _ in range(repeats):
        t = time.perf_counter()
        ref = run_filterpy()
        times["filterpy"].append(time.perf_counter() - t)
        t = time.perf_counter()
        res = ekf.run(x0, P0, zs, DT)
        times["edgefuse"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = ekf.run(x0, P0, zs, DT, store_cov=True)
        times["edgefuse_store_cov"].append(time.perf_counter() - t)
    assert ref is not None
    assert ours is not None
    assert ours.Ps is not None
    dx = float(np.abs(ours.xs - ref[0]).max())
    dP = float(np.abs(ours.Ps - ref[1]).max())
    dP_final = float(np.abs(res.P - ref[1][-1]).max())
    fp, ef, es = (_stats(times[k], n) for k in ("filterpy", "edgefuse", "edgefuse_store_cov"))
    return {
        "steps": n, "repeats": repeats, "filterpy": fp, "edgefuse": ef, "edgefuse_store_cov": es,
        "speedup": fp["median_total_s"] / ef["median_total_s"],
        "speedup_store_cov": fp["median_total_s"] / es["median_total_s"],
        "max_abs_state_diff": dx, "max_abs_cov_diff": dP, "max_abs_final_cov_diff_no_store": dP_final,
        "equal_1e-9": max(dx, dP, dP_final) <= 1e-9,
        "rejected": dict(ours.rejected),
        "position_rmse_m": float(np.sqrt(np.mean(np.sum((ours.xs[:, :3] - prob["truth"]) ** 2, axis=1)))),
        "jit_s": jit_s,
    }


def radar_ukf(prob: dict[str, Any], repeats: int, fp_repeats: int, *, alpha: float, beta: float,
              kappa: float) -> dict[str, Any]:
    from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter

    from edgefuse.objects import BatchUKF, angle_mean, angle_residual

    zs, F, Q, R, x0, P0 = (prob[k] for k in ("zs", "F", "Q", "R", "x0", "P0"))
    n = zs.shape[0]
    t0 = time.perf_counter()
    ukf = BatchUKF(cv_f, radar_h, Q=Q, R=R, alpha=alpha, beta=beta, kappa=kappa,
                   residual_z=angle_residual(1), z_mean=angle_mean(1))
    ukf.warmup(x0, P0, DT)
    jit_s = time.perf_counter() - t0

    def fx(x: np.ndarray, dt: float) -> np.ndarray:
        out: np.ndarray = F @ x
        return out

    def hx(x: np.ndarray) -> np.ndarray:
        px, py, pz = float(x[0]), float(x[1]), float(x[2])
        return np.array([math.sqrt(px * px + py * py + pz * pz), math.atan2(py, px),
                         math.atan2(pz, math.hypot(px, py))])

    def z_mean(sigmas: np.ndarray, Wm: np.ndarray) -> np.ndarray:
        z: np.ndarray = np.dot(Wm, sigmas)
        z[1] = math.atan2(float(np.dot(Wm, np.sin(sigmas[:, 1]))), float(np.dot(Wm, np.cos(sigmas[:, 1]))))
        return z

    def run_filterpy() -> tuple[np.ndarray, np.ndarray]:
        pts = MerweScaledSigmaPoints(6, alpha=alpha, beta=beta, kappa=kappa)
        fu = UnscentedKalmanFilter(6, 3, DT, hx, fx, pts, residual_z=py_residual, z_mean_fn=z_mean)
        fu.x = x0.copy()
        fu.P = P0.copy()
        fu.Q, fu.R = Q, R
        xs = np.empty((n, 6))
        Ps = np.empty((n, 6, 6))
        for k in range(n):
            fu.predict()
            fu.update(zs[k])
            xs[k] = fu.x
            Ps[k] = fu.P
        return xs, Ps

    times: dict[str, list[float]] = {"filterpy": [], "edgefuse": [], "edgefuse_store_cov": []}
    ref: tuple[np.ndarray, np.ndarray] | None = None
    ours: Any = None
    for r in range(repeats):
        if r < fp_repeats:
            t = time.perf_counter()
            ref = run_filterpy()
            times["filterpy"].append(time.perf_counter() - t)
        t = time.perf_counter()
        res = ukf.run(x0, P0, zs, DT)
        times["edgefuse"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = ukf.run(x0, P0, zs, DT, store_cov=True)
        times["edgefuse_store_cov"].append(time.perf_counter() - t)
    assert ref is not None
    assert ours is not None
    assert ours.Ps is not None
    dx = float(np.abs(ours.xs - ref[0]).max())
    dP = float(np.abs(ours.Ps - ref[1]).max())
    dP_final = float(np.abs(res.P - ref[1][-1]).max())
    fp, ef, es = (_stats(times[k], n) for k in ("filterpy", "edgefuse", "edgefuse_store_cov"))
    return {
        "steps": n, "repeats": repeats, "filterpy_repeats": min(fp_repeats, repeats),
        "sigma_points": {"kind": "merwe", "alpha": alpha, "beta": beta, "kappa": kappa},
        "filterpy": fp, "edgefuse": ef, "edgefuse_store_cov": es,
        "speedup": fp["median_total_s"] / ef["median_total_s"],
        "speedup_store_cov": fp["median_total_s"] / es["median_total_s"],
        "max_abs_state_diff": dx, "max_abs_cov_diff": dP, "max_abs_final_cov_diff_no_store": dP_final,
        "equal_1e-9": max(dx, dP, dP_final) <= 1e-9,
        "rejected": dict(ours.rejected),
        "position_rmse_m": float(np.sqrt(np.mean(np.sum((ours.xs[:, :3] - prob["truth"]) ** 2, axis=1)))),
        "jit_s": jit_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--radar-steps", type=int, default=100_000)
    ap.add_argument("--radar-repeats", type=int, default=3)
    ap.add_argument("--ukf-filterpy-repeats", type=int, default=1)
    ap.add_argument("--ukf-alpha", type=float, default=1.0)
    ap.add_argument("--ukf-beta", type=float, default=2.0)
    ap.add_argument("--ukf-kappa", type=float, default=-3.0)
    ap.add_argument("--skip-linear", action="store_true")
    ap.add_argument("--skip-ukf", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "kalman.json")
    args = ap.parse_args()
    import filterpy

    result: dict[str, Any] = {"bench": "kalman"}
    if not args.skip_linear:
        result["linear_cv"] = linear(args.steps, args.repeats)
    prob = radar_problem(args.radar_steps)
    result["radar"] = {"steps": args.radar_steps, "dt_s": DT, "radius_m": RADIUS_M, "speed_mps": SPEED_MPS,
                       "sigma_range_m": SIGMA_RANGE_M, "sigma_angle_rad": SIGMA_ANGLE_RAD,
                       "azimuth_crossings": prob["azimuth_crossings"]}
    result["radar_ekf"] = radar_ekf(prob, args.radar_repeats)
    if not args.skip_ukf:
        result["radar_ukf"] = radar_ukf(prob, args.radar_repeats, args.ukf_filterpy_repeats, alpha=args.ukf_alpha,
                                        beta=args.ukf_beta, kappa=args.ukf_kappa)
    result["env"] = {"commit": commit(short=True) or "unknown", "cpu": cpu(),
                     "cpus": os.cpu_count(), "load_avg_1min_at_end": os.getloadavg()[0],
                     "numba_threads": numba.get_num_threads(), "numpy": np.__version__, "numba": numba.__version__,
                     "filterpy": filterpy.__version__, "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    bad = [k for k, v in result.items() if isinstance(v, dict) and v.get("equal_1e-9") is False]
    if bad:
        raise SystemExit(f"not equal to filterpy within 1e-9: {', '.join(bad)}")


if __name__ == "__main__":
    main()
