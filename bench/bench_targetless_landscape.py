"""Where is the optimum of the multi-frame targetless LiDAR-camera score, and how sharp (issue 16)?

For every multi-frame set with a published calibration in ../shared/data (OpenCalib auto_calib_v2 frames
1+2, KITTI object 000001+000002, ACFR Ouster-64 + fisheye session poses 1, 6, 11), the score of
``refine_lidar_camera`` is evaluated around the PUBLISHED pose, jointly and for each frame alone:

- 1-D sweeps of each rotation axis (camera frame, +-6 deg in 0.25 deg steps) at the coarsest, second and
  finest level, and of each translation axis (+-30 cm, 2 cm steps) at the finest level: the best local
  maxima, their score relative to the published pose's, and the relative drop for +-1 deg / 10 cm;
- the 6-DoF local optimum reached by ``local_optimum`` from the published pose for several score
  variants (the rotation vector and translation offset, camera frame).

A score whose best maximum is not at the published pose cannot give an accepted result near it, whatever
the search does.  Writes bench/results/targetless_landscape.json and prints a summary.

    python bench/bench_targetless_landscape.py
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _env import environment
from bench_lidar_camera_validation import acfr_ouster, kitti, opencalib
from edgefuse_calibration.spatial import LidarCameraFrame, TargetlessOptions, pose_error
from edgefuse_calibration.spatial.targetless import EdgeAlignmentCost, _prepare, local_optimum
from scipy.spatial.transform import Rotation

from edgefuse.rig import Transform

HERE = Path(__file__).resolve().parent
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "points_weighting (before this change)": {"frame_weighting": "points"},
    "nms": {"edge_map": "nms"},
    "nms+surface_runs3": {"edge_map": "nms", "edge_min_run": 3},
    "nms+occlusion0.5deg": {"edge_map": "nms", "occlusion_deg": 0.5},
}


def _maxima(ax: np.ndarray, v: np.ndarray, v0: float, n: int = 3) -> list[list[float]]:
    lm = [j for j in range(1, len(v) - 1) if v[j] >= v[j - 1] and v[j] >= v[j + 1]]
    lm = sorted(lm, key=lambda j: -v[j])[:n]
    return [[round(float(ax[j]), 2), round(float(v[j] / v0), 3)] for j in lm]


def sweeps(frames: list[LidarCameraFrame], T: Transform, opt: TargetlessOptions) -> dict[str, Any]:
    cam = frames[0].camera
    assert cam is not None
    data = _prepare(frames, cam, T, opt)
    costs = {"joint": EdgeAlignmentCost(data, T, opt.frame_weighting)}
    if len(data) > 1:
        costs.update({f"frame{k}": EdgeAlignmentCost([d], T) for k, d in enumerate(data)})
    fine = len(opt.gammas) - 1
    out: dict[str, Any] = {"edge_points": [len(d.w) for d in data]}
    rot = np.arange(-6.0, 6.001, 0.25)
    tr = np.arange(-30.0, 30.001, 2.0)
    for name, c in costs.items():
        row: dict[str, Any] = {}
        for i, axn in enumerate(("rx", "ry", "rz")):
            for lv in sorted({0, 1, fine}):
                v = np.array([c(np.r_[np.eye(3)[i] * np.deg2rad(a), 0, 0, 0], lv) for a in rot])
                v0 = float(v[len(v) // 2])
                row[f"{axn}_L{lv}"] = {"maxima_deg_rel": _maxima(rot, v, v0),
                                      "drop_1deg": round(float((2 * v0 - v[len(v) // 2 - 4] - v[len(v) // 2 + 4])
                                                               / (2 * v0)), 4)}
        for i, axn in enumerate(("tx", "ty", "tz")):
            v = np.array([c(np.r_[0, 0, 0, np.eye(3)[i] * a / 100], fine) for a in tr])
            v0 = float(v[len(v) // 2])
            row[f"{axn}_L{fine}"] = {"maxima_cm_rel": _maxima(tr, v, v0),
                                    "drop_10cm": round(float((2 * v0 - v[len(v) // 2 - 5] - v[len(v) // 2 + 5])
                                                             / (2 * v0)), 4)}
        out[name] = row
    return out


def optimum(frames: list[LidarCameraFrame], T: Transform, opt: TargetlessOptions) -> dict[str, Any]:
    cam = frames[0].camera
    assert cam is not None
    To, s0, s1 = local_optimum(frames, cam, T, options=opt)
    r, t = pose_error(To, T)
    rv = np.rad2deg(Rotation.from_matrix(To.R @ T.R.T).as_rotvec())
    return {"rot_deg": round(r, 3), "trans_cm": round(t * 100, 2), "rotvec_cam_deg": np.round(rv, 2).tolist(),
            "dt_cm": np.round((To.t - T.t) * 100, 1).tolist(), "score_gain": round(s1 / s0 - 1, 4) if s0 else None}


def main() -> None:
    o1, T1 = opencalib(1)
    o2, _ = opencalib(2)
    k1, K1 = kitti("000001")
    k2, _ = kitti("000002")
    acfr, Ta = acfr_ouster((1, 6, 11))
    sets = {"opencalib_autocalib_v2 frames 1+2": ([o1, o2], T1),
            "kitti_object 000001+000002": ([k1, k2], K1),
            "acfr_ouster_chessboard poses 1+6+11": (acfr, Ta)}
    out: dict[str, Any] = {"environment": environment(), "sets": []}
    for name, (frames, T) in sets.items():
        t = time.perf_counter()
        row: dict[str, Any] = {"set": name, "sweeps_default": sweeps(frames, T, TargetlessOptions()),
                               "sweeps_nms": sweeps(frames, T, TargetlessOptions(edge_map="nms"))}
        row["local_optimum_from_published"] = {}
        for vn, kw in VARIANTS.items():
            opt = replace(TargetlessOptions(), **kw)
            row["local_optimum_from_published"][vn] = {"joint": optimum(frames, T, opt)}
            if len(frames) > 1:
                for k, f in enumerate(frames):
                    row["local_optimum_from_published"][vn][f"frame{k}"] = optimum([f], T, opt)
        row["seconds"] = round(time.perf_counter() - t, 1)
        out["sets"].append(row)
        print(name, json.dumps(row["local_optimum_from_published"]), flush=True)
        j = row["sweeps_nms"]["joint"]
        print("  nms joint rotation maxima (deg, score/published):",
              {k: v["maxima_deg_rel"][:2] for k, v in j.items() if k.startswith("r")}, flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "targetless_landscape.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
