"""Where does each targetless LiDAR-camera score put its optimum, started AT the published calibration?

For KITTI object frames 000000, 000001, 000002 and 000001+000002 (one calibration file), a float64
Nelder-Mead descent of the finest-level score from the published ``T_cam2_from_velodyne``
(rotation only with the published translation, and all six parameters inside 3 deg / 30 cm) for:

- ``maxdiff``: the edge score of ``refine_lidar_camera`` (max-neighbour-difference image edges);
- ``nms``: the same with one-pixel-wide Canny/NMS image edges (``image_edge_map(kind="nms")``);
- ``mi``: mutual information between the LiDAR reflectance (KITTI .bin 4th column) and the bilinearly
  sampled grey value at the projected pixel (Pandey et al., JFR 2015: 32x32 joint histogram, linear
  soft binning, Gaussian-smoothed histogram, sigma 1 bin; points beyond 2 m and 1 m in front; pooled
  over the frames), rotation only.

A score whose optimum lies 0.2 deg / 2 cm or more from the published pose cannot meet the issue's
goal whatever the search does.  Writes bench/results/targetless_bias.json and prints it.

    python bench/bench_targetless_bias.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from edgefuse_calibration.spatial import LidarCameraFrame, TargetlessOptions, pose_error
from edgefuse_calibration.spatial._common import exp_so3
from edgefuse_calibration.spatial.targetless import local_optimum
from scipy.ndimage import gaussian_filter
from scipy.optimize import minimize

from edgefuse.rig import CameraModel, Transform, from_kitti_object

HERE = Path(__file__).resolve().parent
KITTI = HERE.parent.parent / "shared" / "data" / "kitti_object_3frames" / "training"


def kitti(i: str) -> tuple[LidarCameraFrame, np.ndarray, Transform]:
    rig = from_kitti_object(KITTI / "calib" / f"{i}.txt")
    img = cv2.imread(str(KITTI / "image_2" / f"{i}.png"))
    raw = np.fromfile(KITTI / "velodyne" / f"{i}.bin", dtype=np.float32).reshape(-1, 4)
    c = rig.camera("cam2")
    cam = CameraModel(name="cam2", frame_id="cam2", width=img.shape[1], height=img.shape[0], K=c.K, D=c.D)
    T = rig.transform("cam2", "velodyne")
    return LidarCameraFrame(raw[:, :3], img, camera=cam), raw[:, 3].astype(np.float64), T


def _bilinear(img: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
    u, v = uv[inside, 0], uv[inside, 1]
    u0, v0 = u.astype(np.int64), v.astype(np.int64)
    a, b = u - u0, v - v0
    s = (1 - b) * ((1 - a) * img[v0, u0] + a * img[v0, u0 + 1]) + b * ((1 - a) * img[v0 + 1, u0]
                                                                      + a * img[v0 + 1, u0 + 1])
    return s, inside


def mi_rotation_optimum(frames: list[LidarCameraFrame], refl: list[np.ndarray], T: Transform,
                        bins: int = 32) -> tuple[Transform, float, float]:
    data = []
    for fr, r in zip(frames, refl, strict=True):
        rng = np.linalg.norm(fr.xyz, axis=1)
        pc = T.apply(fr.xyz[rng > 2.0].astype(np.float64))
        keep = pc[:, 2] > 1.0
        data.append((pc[keep], r[rng > 2.0][keep], cv2.cvtColor(fr.image, cv2.COLOR_BGR2GRAY).astype(np.float64),
                     fr.camera))

    def mi(w: np.ndarray) -> float:
        R = exp_so3(w)
        H = np.zeros((bins, bins))
        for pc, rr, gray, cam in data:
            uv, valid = cam.project(pc @ R.T)
            uv[~valid] = -1.0
            g, inside = _bilinear(gray, uv)
            a = np.clip(rr[inside], 0, 1) * (bins - 1)
            b = np.clip(g / 255.0, 0, 1) * (bins - 1)
            a0, b0 = np.minimum(a.astype(int), bins - 2), np.minimum(b.astype(int), bins - 2)
            fa, fb = a - a0, b - b0
            for da, wa in ((0, 1 - fa), (1, fa)):
                for db, wb in ((0, 1 - fb), (1, fb)):
                    np.add.at(H, (a0 + da, b0 + db), wa * wb)
        P = gaussian_filter(H, 1.0)
        P /= P.sum()
        px, py = P.sum(1), P.sum(0)
        nz = P > 0
        return float((P[nz] * np.log(P[nz] / np.outer(px, py)[nz])).sum())

    unit = np.deg2rad(1.0)
    sim = np.vstack([np.zeros(3), np.eye(3) * 0.3])
    r = minimize(lambda y: -mi(y * unit), np.zeros(3), method="Nelder-Mead",
                 options={"initial_simplex": sim, "xatol": 1e-3, "fatol": 1e-9, "maxfev": 1200})
    w = np.asarray(r.x) * unit
    return Transform.from_rt(exp_so3(w), np.zeros(3)) @ T, mi(np.zeros(3)), mi(w)


def main() -> None:
    ks = {i: kitti(i) for i in ("000000", "000001", "000002")}
    sets = {"kitti_000000": ["000000"], "kitti_000001": ["000001"], "kitti_000002": ["000002"],
            "kitti_000001+000002": ["000001", "000002"]}
    out: dict[str, Any] = {"method": "optimum of each score found from the published pose (float64 Nelder-Mead)",
                           "results": []}
    for name, ids in sets.items():
        frames = [ks[i][0] for i in ids]
        T = ks[ids[0]][2]
        row: dict[str, Any] = {"dataset": name}
        for kind in ("maxdiff", "nms"):
            opt = TargetlessOptions(edge_map=kind)
            for rot_only in (True, False):
                t = time.perf_counter()
                To, s0, s1 = local_optimum(frames, frames[0].camera, T, options=opt, rotation_only=rot_only)  # type: ignore[arg-type]
                e = pose_error(To, T)
                row[f"{kind}_{'rot' if rot_only else '6dof'}"] = {
                    "rot_deg": round(e[0], 4), "trans_cm": round(e[1] * 100, 2), "score_published": s0,
                    "score_optimum": s1, "dt_cam_cm": np.round((To.t - T.t) * 100, 2).tolist(),
                    "seconds": round(time.perf_counter() - t, 2)}
        To, s0, s1 = mi_rotation_optimum(frames, [ks[i][1] for i in ids], T)
        row["mi_rot"] = {"rot_deg": round(pose_error(To, T)[0], 4), "score_published": s0, "score_optimum": s1}
        out["results"].append(row)
        print(json.dumps(row), flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "targetless_bias.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
