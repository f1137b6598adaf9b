"""Husky bag: odometry-only vs IMU+odometry vs IMU+odometry+GNSS (EKF, and UKF), against the GPS track.

Writes bench/results/husky_trajectory.png and bench/results/husky_trajectory.json and prints the JSON.

GPS track in the filter's world frame: the navsat transform fixed at the first fix (world position of
the robot then, rotation = filter yaw − IMU heading then), the same for every run, so each run is
compared with the fixes it would have fused.  Metrics: final position; distance to each fix (median,
p95, final); heading consistency = |filter yaw − GPS course| while moving faster than 0.5 m/s over
2 s windows (median, p95).  robot_localization's regression test for this bag with the IMU+odometry
configuration expects the final position (-40.0454, -76.9988, -2.6974) ± 1.0452 m.

Run: python bench/husky_trajectory.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.estimation import Ekf, SensorSpec, StateEstimator, Ukf
from edgefuse.estimation.offline import load_streams, run_streams
from edgefuse.estimation.sensors import FixArrays, ImuArrays, imu_heading
from edgefuse.rig import load_rig

ROOT = Path(__file__).resolve().parent.parent
BAG = ROOT / "edgefuse" / "data" / "husky" / "test1.bag"
RIG = ROOT / "edgefuse" / "data" / "husky" / "rig.yaml"
TOPICS = {"imu0": "/imu/data", "odom0": "/husky_velocity_controller/odom", "gnss0": "/fix"}
Q = [0.05, 0.05, 0.06, 0.03, 0.03, 0.06, 0.025, 0.025, 0.04, 0.01, 0.01, 0.02, 0.01, 0.01, 0.015]
RL_FINAL = np.array([-40.0454, -76.9988, -2.6974])
RL_TOL = 1.0452

IMU = SensorSpec("imu0", "imu", ["roll", "pitch", "yaw", "vroll", "vpitch", "ax", "ay", "az"],
                 remove_gravitational_acceleration=True)
ODOM_V = SensorSpec("odom0", "odom", ["vx", "vy", "vz"])
ODOM_VYAW = SensorSpec("odom0", "odom", ["vx", "vy", "vz", "vyaw"])
# This IMU's yaw is not referenced to east: over the first 60 s its yaw trails the GPS course by a
# median 129° (IQR 118-137°), drifting to ~96° by the end.  navsat_transform_node's yaw_offset is the
# parameter for that; 129° = 2.2515 rad is measured from this bag (see the report).
GNSS = SensorSpec("gnss0", "gnss", ["x", "y"], zero_altitude=True, yaw_offset_rad=2.2515)

RUNS: dict[str, tuple[type[StateEstimator], list[SensorSpec]]] = {
    "odometry_only": (Ekf, [ODOM_VYAW]),
    "imu_odometry": (Ekf, [IMU, ODOM_V]),
    "imu_odometry_gnss": (Ekf, [IMU, ODOM_V, GNSS]),
    "ukf_imu_odometry_gnss": (Ukf, [IMU, ODOM_V, GNSS]),
}


def _wrap(a: Any) -> Any:
    return (a + np.pi) % (2 * np.pi) - np.pi


def main() -> int:  # noqa: PLR0915 (one linear script)
    rig = load_rig(RIG)
    streams = load_streams(BAG, TOPICS)
    fixes = streams["gnss0"].arrays
    imu_arr = streams["imu0"].arrays
    assert isinstance(fixes, FixArrays)
    assert isinstance(imu_arr, ImuArrays)
    R_bi = rig.transform("base_link", "imu_link").R
    h_t, h_yaw = imu_heading(imu_arr, R_bi)
    results: dict[str, Any] = {}
    tracks: dict[str, Any] = {}
    for name, (cls, sensors) in RUNS.items():
        est = cls(sensors, rig=rig, process_noise=Q)
        use = {s.name: streams[s.name] for s in sensors}
        out = run_streams(est, use, keep_states=True)
        t, x = out["t"], out["x"]
        order = np.argsort(t, kind="stable")
        t, x = t[order], x[order]
        # navsat transform for this run at the first fix (as the GNSS runs do internally)
        good = np.flatnonzero(fixes.status >= 0)
        t0 = fixes.t[good[0]]
        k = max(int(np.searchsorted(t, t0, side="right")) - 1, 0)
        heading = h_yaw[max(int(np.searchsorted(h_t, t0, side="right")) - 1, 0)]
        rot = float(_wrap(x[k, 5] - (heading + GNSS.yaw_offset_rad + GNSS.magnetic_declination_rad)))
        if est.navsat[0] == 1.0:
            rot = float(est.navsat[1])
            p0 = est.navsat[2:5]
        else:
            p0 = x[k, 0:3]
        from edgefuse.estimation.navsat import enu_from_geodetic

        enu = enu_from_geodetic(fixes.lat[good], fixes.lon[good], np.zeros(good.size), float(fixes.lat[good[0]]),
                                float(fixes.lon[good[0]]), 0.0)
        c, s = math.cos(rot), math.sin(rot)
        gx = c * enu[:, 0] - s * enu[:, 1] + p0[0]
        gy = s * enu[:, 0] + c * enu[:, 1] + p0[1]
        ft = fixes.t[good]
        ex = np.interp(ft, t, x[:, 0])
        ey = np.interp(ft, t, x[:, 1])
        dist = np.hypot(ex - gx, ey - gy)
        # heading consistency: GPS course over 2 s windows while moving
        win = 5  # fixes at 2.5 Hz
        dx, dy = gx[win:] - gx[:-win], gy[win:] - gy[:-win]
        dt_s = (ft[win:] - ft[:-win]) * 1e-9
        moving = np.hypot(dx, dy) / dt_s > 0.5
        course = np.arctan2(dy, dx)
        tm = (ft[win:] + ft[:-win]) // 2
        yaw = np.unwrap(x[:, 5])
        yaw_at = np.interp(tm, t, yaw)
        herr = np.degrees(np.abs(_wrap(yaw_at - course)))[moving]
        results[name] = {
            "filter": est.kind,
            "sensors": [s.name for s in sensors],
            "final_position_m": x[-1, 0:3].round(4).tolist(),
            "final_yaw_deg": round(math.degrees(x[-1, 5]), 3),
            "final_position_sigma_m": np.sqrt(out["p_diag"][order][-1, 0:3]).round(4).tolist(),
            "distance_to_gps_m": {"median": round(float(np.median(dist)), 3),
                                  "p95": round(float(np.percentile(dist, 95)), 3),
                                  "final": round(float(dist[-1]), 3)},
            "heading_vs_gps_course_deg": {"median": round(float(np.median(herr)), 2),
                                          "p95": round(float(np.percentile(herr, 95)), 2)},
            "rejected": est.rejection_totals(), "replayed": est.replayed, "healthy": est.healthy(),
            "navsat_rotation_deg": round(math.degrees(rot), 3),
        }
        if name == "imu_odometry":
            d = float(np.linalg.norm(x[-1, 0:3] - RL_FINAL))
            results[name]["robot_localization_reference"] = {
                "final_position_m": RL_FINAL.tolist(), "tolerance_m": RL_TOL, "distance_m": round(d, 4),
                "within_tolerance": d <= RL_TOL}
        tracks[name] = (x[:, 0], x[:, 1], gx, gy)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "husky_trajectory.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return 0
    fig, ax = plt.subplots(figsize=(9, 8))
    gx, gy = tracks["imu_odometry_gnss"][2], tracks["imu_odometry_gnss"][3]
    ax.plot(gx, gy, ".", ms=3, color="0.6", label="GPS fixes (navsat transform)")
    styles = {"odometry_only": "tab:red", "imu_odometry": "tab:blue", "imu_odometry_gnss": "tab:green",
              "ukf_imu_odometry_gnss": "tab:purple"}
    for name, (px, py, _, _) in tracks.items():
        ax.plot(px, py, lw=1.2, color=styles[name], label=f"{name} (final {px[-1]:.1f}, {py[-1]:.1f})",
                ls="--" if name.startswith("ukf") else "-")
    ax.plot(*RL_FINAL[:2], "k*", ms=12, label="robot_localization test final (IMU+odom)")
    ax.plot(0, 0, "ko", ms=5)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m] (odom)")
    ax.set_ylabel("y [m] (odom)")
    ax.set_title("Husky test1.bag, 395 s: 15-state EKF/UKF")
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "husky_trajectory.png", dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
