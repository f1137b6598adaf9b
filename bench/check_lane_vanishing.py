"""Translation-free check of the ROTATION of published LiDAR->camera calibrations with lane lines.

Straight parallel lane markings meet in the undistorted image at a vanishing point v; d_cam = K^-1 [v, 1]
(normalised) is their direction in the camera frame.  In the LiDAR the same markings are bright road-surface
points; a 3-D line fitted to each gives d_lidar.  With the published rotation R (LiDAR -> camera) the
prediction R d_lidar must equal d_cam whatever the translation.  The smallest rotation taking R d_lidar onto
d_cam is reported as a rotation vector in the camera frame, the same convention as the edge score's
``rotvec_cam_deg`` (T' = exp(w) . T): w_x > 0 ("pitch") means the lanes' true image direction is ABOVE the
one the published R predicts, w_y > 0 ("yaw") means it is to the RIGHT.  The rotation about the lane
direction itself (~ camera z, roll) is not observed.  Run: .venv/bin/python bench/check_lane_vanishing.py
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _env import environment, shared_data
from edgefuse_calibration.spatial.pcd import read_pcd

from edgefuse.rig import from_kitti_object

HERE = Path(__file__).resolve().parent
SHARED = shared_data()
OCAL = SHARED / "opencalib_autocalib_v2" / "auto_calib_v2.0" / "data" / "ours"
KITTI = SHARED / "kitti_object_3frames" / "training"
OUT = HERE.parent / "out"
RESULT = HERE / "results" / "lane_vanishing.json"
BOOT = 300

#: per frame: image region of interest (polygon, undistorted pixels), LiDAR box (x range, |y| max) and
#: the paint threshold as a multiple of the road's median intensity.
FRAMES: dict[str, dict[str, Any]] = {
    "opencalib1": {"roi": [(0, 1200), (0, 830), (800, 700), (1120, 700), (1920, 1000), (1920, 1200)],
                   "x": (5, 40), "y": 9, "k": 2.0, "tol": 40},
    "opencalib2": {"roi": [(0, 1200), (0, 1000), (600, 900), (820, 725), (1200, 725), (1920, 1100), (1920, 1200)],
                   "x": (5, 40), "y": 9, "k": 2.0, "tol": 40},
    "kitti000001": {"roi": [(0, 375), (0, 360), (560, 190), (650, 190), (1000, 375)],
                    "x": (5, 40), "y": 6, "k": 1.6, "tol": 15},
}


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(undistorted image, K, T 3x4 LiDAR->camera, points N x 4 = x y z intensity)."""
    if name.startswith("opencalib"):
        f = OCAL / name[-1]
        v = {ln.split(":")[0]: np.array(ln.split(":")[1].split(), float)
             for ln in (f / "calib.txt").read_text().splitlines() if ":" in ln}
        K, T = v["K"].reshape(3, 3), v["T"].reshape(3, 4)
        img = cv2.undistort(cv2.imread(str(next(f.glob("calib.[jp][pn]g")))), K, v["D"])
        a = read_pcd(f / "calib.pcd")
        pts = np.stack([a["x"], a["y"], a["z"], a["intensity"]], axis=1).astype(np.float64)
        U, _, Vt = np.linalg.svd(T[:, :3])  # published R is not exactly orthonormal: nearest rotation
        return img, K, np.c_[U @ Vt, T[:, 3]], pts
    i = name[-6:]
    rig = from_kitti_object(KITTI / "calib" / f"{i}.txt")
    img = cv2.imread(str(KITTI / "image_2" / f"{i}.png"))  # rectified: no distortion
    pts = np.fromfile(KITTI / "velodyne" / f"{i}.bin", dtype=np.float32).reshape(-1, 4).astype(np.float64)
    return img, rig.camera("cam2").K, rig.transform("cam2", "velodyne").matrix[:3], pts


def image_segments(img: np.ndarray, roi: list[tuple[int, int]]) -> np.ndarray:
    """Outlines of lane paint: LSD line segments (x0 y0 x1 y1) on the mask of bright thin road structures
    (white top-hat of the brightest channel above 0.4 x its 99.5th percentile inside the region of interest)."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    mask = np.zeros_like(g)
    cv2.fillPoly(mask, [np.array(roi, np.int32)], 255)
    th = cv2.morphologyEx(img.max(axis=2), cv2.MORPH_TOPHAT,  # brightest channel: yellow paint too
                          cv2.getStructuringElement(cv2.MORPH_RECT, (max(9, img.shape[1] // 12) | 1, 1)))
    paint = ((th > 0.4 * np.percentile(th[mask > 0], 99.5)) & (mask > 0)).astype(np.uint8)
    paint = cv2.morphologyEx(paint, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) * 255
    segs = cv2.createLineSegmentDetector().detect(cv2.GaussianBlur(paint, (5, 5), 0))[0].reshape(-1, 4)
    long = np.hypot(*(segs[:, 2:] - segs[:, :2]).T) >= g.shape[1] / 100
    return np.asarray(segs[long], np.float64)


def vanishing_point(segs: np.ndarray, tol_deg: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Intersection of the segments: the pair intersection agreeing (angle to the point < tol_deg) with the
    most segment length, then least squares of the perpendicular pixel distances, weighted by length, over the
    agreeing segments (re-selected until stable). Returns (v, inlier mask)."""
    p, q = segs[:, :2], segs[:, 2:]
    L = np.linalg.norm(q - p, axis=1)
    nrm = np.c_[-(q - p)[:, 1], (q - p)[:, 0]] / L[:, None]
    c = -(nrm * p).sum(axis=1)
    mid = (p + q) / 2

    def agree(v: np.ndarray) -> np.ndarray:
        r = v - mid
        return np.asarray(np.abs((nrm * r).sum(1)) < np.sin(np.deg2rad(tol_deg)) * np.linalg.norm(r, axis=1))

    best, v = -1.0, mid.mean(axis=0)
    for i in range(len(segs)):
        for j in range(i + 1, len(segs)):
            h = np.cross(np.r_[nrm[i], c[i]], np.r_[nrm[j], c[j]])
            if abs(h[2]) > 1e-9 and (score := float(L[agree(h[:2] / h[2])].sum())) > best:
                best, v = score, h[:2] / h[2]
    ok = agree(v)
    for _ in range(10):
        sw = np.sqrt(L[ok])
        v = np.linalg.lstsq(nrm[ok] * sw[:, None], -c[ok] * sw, rcond=None)[0]
        if (new := agree(v)).sum() < 2 or (new == ok).all():
            break
        ok = new
    return v, ok


def ground_and_paint(pts: np.ndarray, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """RANSAC road plane in the box ahead; returns (plane n, d with n.x + d = 0, paint mask, threshold,
    road median intensity)."""
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    box = (x > cfg["x"][0]) & (x < cfg["x"][1]) & (np.abs(y) < cfg["y"]) & (z < -1.0) & (z > -2.5)
    P = pts[box, :3]
    rng = np.random.default_rng(1)
    best, plane = 0, np.zeros(4)
    for _ in range(300):
        a, b, c = P[rng.choice(len(P), 3, replace=False)]
        n = np.cross(b - a, c - a)
        if np.linalg.norm(n) < 1e-9:
            continue
        n /= np.linalg.norm(n)
        cnt = int((np.abs((P - a) @ n) < 0.05).sum())
        if cnt > best:
            best, plane = cnt, np.r_[n, -n @ a]
    on = np.abs(P @ plane[:3] + plane[3]) < 0.08
    m = P[on].mean(axis=0)
    n = np.linalg.svd(P[on] - m)[2][2]
    n = n if n[2] > 0 else -n
    ground = box.copy()
    ground[box] = np.abs((P - m) @ n) < 0.12
    med = float(np.median(pts[ground, 3]))
    thr = cfg["k"] * med
    return np.r_[n, -n @ m], ground & (pts[:, 3] > thr), thr, med


def lidar_lines(P: np.ndarray) -> list[dict[str, Any]]:
    """Cluster paint points into lines by lateral offset at the dominant heading; PCA 3-D line per cluster."""
    xy = P[:, :2]
    best = (-1.0, 0.0)
    for th in np.deg2rad(np.arange(-15, 15.01, 0.1)):
        s = -np.sin(th) * xy[:, 0] + np.cos(th) * xy[:, 1]
        h = np.bincount(np.floor((s + 20) / 0.2).astype(int).clip(0, 199), minlength=200)
        best = max(best, (float((h.astype(float) ** 2).sum()), th))
    th = best[1]
    s = -np.sin(th) * xy[:, 0] + np.cos(th) * xy[:, 1]
    lines, used = [], np.zeros(len(P), bool)
    for _ in range(12):
        h = np.bincount(np.floor((s[~used] + 20) / 0.2).astype(int).clip(0, 199), minlength=200)
        pk = -20 + 0.2 * (np.argmax(h) + 0.5)
        sel = ~used & (np.abs(s - pk) < 0.35)
        used |= sel
        if sel.sum() < 8:
            break
        Q = P[sel]
        for _ in range(3):  # PCA line, drop points > 3 sigma off it
            m = Q.mean(axis=0)
            d = np.linalg.svd(Q - m)[2][0]
            r = np.linalg.norm((Q - m) - np.outer((Q - m) @ d, d), axis=1)
            Q = Q[r < max(0.05, 3 * r.std())]
        t = (Q - m) @ d
        rms = float(np.sqrt((r**2).mean()))
        if len(Q) >= 8 and np.ptp(t) >= 6 and rms < 0.1:
            lines.append({"pts": Q, "dir": d if d[0] > 0 else -d, "offset": round(float(pk), 2),
                          "length_m": round(float(np.ptp(t)), 1), "n": len(Q), "rms_m": round(rms, 3)})
    return lines


def lidar_direction(lines: list[dict[str, Any]], plane: np.ndarray | None) -> np.ndarray:
    """Point-count weighted mean line direction; with a plane, its heading kept and slope taken from it."""
    d = sum(ln["n"] * ln["dir"] for ln in lines)
    d = d / np.linalg.norm(d)
    if plane is not None:
        d = d - (d @ plane[:3]) * plane[:3]
    return np.asarray(d / np.linalg.norm(d))


def rotvec(d_pred: np.ndarray, d_cam: np.ndarray) -> np.ndarray:
    """Smallest rotation (vector, deg, camera frame) taking d_pred onto d_cam."""
    ax = np.cross(d_pred, d_cam)
    ang = np.arctan2(np.linalg.norm(ax), d_pred @ d_cam)
    return np.asarray(np.rad2deg(ang * ax / max(np.linalg.norm(ax), 1e-15)))


def project(T: np.ndarray, K: np.ndarray, P: np.ndarray) -> np.ndarray:
    uv = (K @ (P @ T[:, :3].T + T[:, 3]).T).T
    return np.asarray(uv[:, :2] / uv[:, 2:])


def associate(segs: np.ndarray, lines: list[dict[str, Any]], T: np.ndarray, K: np.ndarray, tol: float) -> np.ndarray:
    """Index of the LiDAR line each image segment lies on (both endpoints within tol px of the line projected
    with the published extrinsic, direction within 5 deg; the extrinsic only serves to pair the same physical
    lines), -1 for none."""
    out = np.full(len(segs), -1)
    best = np.full(len(segs), tol)
    d = segs[:, 2:] - segs[:, :2]
    for j, ln in enumerate(lines):
        a, b = project(T, K, ln["ends"])
        n = np.array([-(b - a)[1], (b - a)[0]]) / np.linalg.norm(b - a)
        dist = np.maximum(np.abs((segs[:, :2] - a) @ n), np.abs((segs[:, 2:] - a) @ n))
        dist[np.abs(d @ n) > np.sin(np.deg2rad(5)) * np.linalg.norm(d, axis=1)] = np.inf  # direction within 5 deg
        out[dist < best], best = j, np.minimum(best, dist)
    return out


def analyse(name: str) -> dict[str, Any]:
    cfg = FRAMES[name]
    img, K, T, pts = load(name)
    R = T[:, :3]
    segs = image_segments(img, cfg["roi"])
    plane, paint, thr, med = ground_and_paint(pts, cfg)
    lines = lidar_lines(pts[paint, :3])
    for ln in lines:
        m, d = ln["pts"].mean(axis=0), ln["dir"]
        t = (ln["pts"] - m) @ d
        ln["ends"] = np.stack([m + t.min() * d, m + t.max() * d])
    owner = associate(segs, lines, T, K, cfg["tol"])
    used = sorted(set(owner[owner >= 0].tolist()))
    keep = owner >= 0
    v, ok = vanishing_point(segs[keep])
    inl = np.flatnonzero(keep)[ok]
    res: dict[str, Any] = {
        "image_segments": int(ok.sum()), "image_segments_rejected": int((~ok).sum()),
        "image_segments_unpaired": int((~keep).sum()), "vp_px": np.round(v, 1).tolist(),
        "intensity_threshold": thr, "road_median_intensity": med,
        "lidar_lines": [{k: ln[k] for k in ("offset", "length_m", "n", "rms_m")} | {"paired": j in used,
                        "image_segments": int((owner[inl] == j).sum())} for j, ln in enumerate(lines)]}
    lines = [lines[j] for j in used]
    overlay(name, img, K, T, segs=segs, keep=keep, ok=ok, v=v, lines=lines)
    if not lines:
        return res
    dl = lidar_direction(lines, None)
    res["lidar_line_spread_deg"] = [round(float(np.rad2deg(np.arccos(min(1.0, abs(ln["dir"] @ dl))))), 3)
                                    for ln in lines]
    rng = np.random.default_rng(0)
    Ki = np.linalg.inv(K)

    def dcam(vv: np.ndarray) -> np.ndarray:
        d = Ki @ np.r_[vv, 1.0]
        return np.asarray(d / np.linalg.norm(d))

    boots = []
    groups = [inl[owner[inl] == j] for j in used]
    for _ in range(BOOT):  # image segments resampled within each physical line, LiDAR points within each line
        sb = segs[np.concatenate([rng.choice(gr, len(gr)) for gr in groups])]
        lb = []
        for ln in lines:
            Q = ln["pts"][rng.integers(0, len(ln["pts"]), len(ln["pts"]))]
            db = np.linalg.svd(Q - Q.mean(axis=0))[2][0]
            lb.append({"n": ln["n"], "dir": db if db[0] > 0 else -db})
        boots.append((vanishing_point(sb)[0], lb))
    for variant, pl in (("pca", None), ("plane", plane)):
        w0 = rotvec(R @ lidar_direction(lines, pl), dcam(v))
        sd = np.std([rotvec(R @ lidar_direction(lb, pl), dcam(vb)) for vb, lb in boots], axis=0)
        vp = K @ (R @ lidar_direction(lines, pl))
        res[variant] = {"angle_deg": float(np.linalg.norm(w0[:2])), "pitch_rx_deg": float(w0[0]),
                        "yaw_ry_deg": float(w0[1]), "pitch_sd": float(sd[0]), "yaw_sd": float(sd[1]),
                        "du_px": float(v[0] - vp[0] / vp[2]), "dv_px": float(v[1] - vp[1] / vp[2])}
    # systematic check: the vanishing-point agreement tolerance decides which segments are used
    res["plane_vs_vp_tol_deg"] = {t: np.round(rotvec(R @ lidar_direction(lines, plane), dcam(
        vanishing_point(segs[keep], t)[0]))[:2], 3).tolist() for t in (0.5, 1.0, 1.5, 2.0)}
    return res


def overlay(name: str, img: np.ndarray, K: np.ndarray, T: np.ndarray, *, segs: np.ndarray, keep: np.ndarray,
            ok: np.ndarray, v: np.ndarray, lines: list[dict[str, Any]]) -> None:
    """Image segments (green: used, red: rejected by the vanishing-point fit, grey: not on a LiDAR lane line)
    extended to the vanishing point (yellow circle); paired LiDAR lane lines projected with the published
    extrinsic (magenta points, cyan fitted line, label = LiDAR line index)."""
    im = img.copy()
    s = max(1, img.shape[1] // 960)
    good = np.zeros(len(segs), bool)
    good[np.flatnonzero(keep)[ok]] = True
    for (x0, y0, x1, y1), k, g in zip(segs, keep, good, strict=True):
        col = (0, 255, 0) if g else (0, 0, 255) if k else (128, 128, 128)
        cv2.line(im, (int(x0), int(y0)), (int(x1), int(y1)), col, 2 * s)
        if g:
            cv2.line(im, (int(x0), int(y0)), (int(v[0]), int(v[1])), (0, 160, 0), 1)
    for ln in lines:
        for u in project(T, K, ln["pts"]):
            cv2.circle(im, (int(u[0]), int(u[1])), 2 * s, (255, 0, 255), -1)
        a, b = project(T, K, ln["ends"])
        cv2.line(im, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (255, 255, 0), 1)
        cv2.putText(im, f"{ln['offset']:+.1f}m", (int(b[0]), int(b[1]) - 5), 0, 0.5 * s, (255, 255, 0), s)
    cv2.circle(im, (int(v[0]), int(v[1])), 6 * s, (0, 255, 255), 2)
    cv2.imwrite(str(OUT / f"lane_vp_{name}.png"), im)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    res: dict[str, Any] = {n: analyse(n) for n in FRAMES}
    for v in ("pca", "plane"):  # frames 1 + 2 share one calibration: inverse-variance weighted mean
        r = [res[f"opencalib{i}"][v] for i in (1, 2) if v in res[f"opencalib{i}"]]
        j: dict[str, float] = {}
        for ax in ("pitch_rx", "yaw_ry"):
            w = np.array([1 / x[f"{ax[:-3]}_sd"] ** 2 for x in r])
            j[f"{ax}_deg"] = float(np.dot(w, [x[f"{ax}_deg"] for x in r]) / w.sum())
            j[f"{ax[:-3]}_sd"] = float(1 / np.sqrt(w.sum()))
        j["angle_deg"] = float(np.hypot(j["pitch_rx_deg"], j["yaw_ry_deg"]))
        res.setdefault("opencalib1+2", {})[v] = j
    print(f"{'frame':<13} {'variant':<6} {'angle':>6} {'pitch rx':>15} {'yaw ry':>15} {'du,dv px':>13} "
          f"{'img segs':>8} {'lidar lines':>11} {'I thr':>6}")
    for n, r in res.items():
        for v in ("pca", "plane"):
            if v not in r:
                continue
            x = r[v]
            px = f"{x['du_px']:+.1f},{x['dv_px']:+.1f}" if "du_px" in x else ""
            segs = r.get("image_segments", "")
            nl = sum(ln["paired"] for ln in r["lidar_lines"]) if "lidar_lines" in r else ""
            thr = f"{r['intensity_threshold']:.3g}" if "intensity_threshold" in r else ""
            print(f"{n:<13} {v:<6} {x['angle_deg']:6.3f} {x['pitch_rx_deg']:+7.3f} ±{x['pitch_sd']:.3f}"
                  f" {x['yaw_ry_deg']:+7.3f} ±{x['yaw_sd']:.3f} {px:>13} {segs!s:>8} {nl!s:>11} {thr:>6}")
    for n, r in res.items():
        if "plane_vs_vp_tol_deg" in r:
            print(f"{n}: (pitch, yaw) vs vanishing-point tolerance {r['plane_vs_vp_tol_deg']}")
    res["environment"] = environment()
    RESULT.write_text(json.dumps(res, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
