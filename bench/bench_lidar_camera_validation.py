"""LiDAR-camera extrinsics on REAL recordings against their published values (issue 16).

- ``acfr_ouster_chessboard``: the target-based pipeline end to end (11 fisheye images + 11 raw organized
  Ouster-64 scans) vs the tool's published mean (and the two other sessions on the same rig); the
  tool's own features re-solved by our solver, for comparison.
- ``acfr_vlp16_quickstart``: the solver on the 40 recorded board features vs the published quick-start.
- Targetless, several frames scored jointly (frames sharing one calibration): OpenCalib auto_calib_v2
  frames 1+2, KITTI object 000001+000002 (one calibration file), ACFR Ouster-64 + fisheye session poses
  1, 6, 11 (one static lab scene, the board moved; its published extrinsic is board-based and our board
  pipeline reproduces it within 0.3 deg / 2 cm), RADIATE tiny_foggy (HDL-32E + ZED, fog and a wet lens: the
  16 sweeps with an image <= 10 ms away).  Trials: the published extrinsic
  perturbed by exactly 3 deg and 20 cm (seeded directions); every verdict counted; accepted results
  compared with the published value.  A pairing that does NOT share a calibration (OpenCalib 1+3) must
  never be accepted.  Also the score's bias: the local optimum of the joint score started at the
  published pose (``local_optimum``).

    python bench/bench_lidar_camera_validation.py [--trials 10] [--only board|targetless]
        [--sets opencalib,kitti,acfr,radiate,opencalib13]

Reads ../shared/data; writes bench/results/lidar_camera_validation.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _env import environment, shared_data
from edgefuse_calibration.spatial import (
    LidarCameraFrame,
    TargetlessOptions,
    perturb,
    pose_error,
    random_perturbation,
    refine_lidar_camera,
)
from edgefuse_calibration.spatial.board import (
    BoardFeatures,
    BoardGeometry,
    acfr_to_cam_from_lidar,
    calibrate_board_recording,
    cam_from_lidar_to_acfr,
    lidar_board_features,
    read_acfr_calibration,
    read_acfr_poses,
    read_acfr_sample_stats,
    solve_board_features,
    solve_board_features_acfr,
)
from edgefuse_calibration.spatial.pcd import pcd_organized_scan, pcd_organized_xyz, read_pcd
from edgefuse_calibration.spatial.targetless import _prepare, local_optimum

from edgefuse.rig import CameraModel, Transform, from_kitti_object

HERE = Path(__file__).resolve().parent
DATA = shared_data()
OUSTER = DATA / "acfr_ouster_chessboard"
VLP = DATA / "acfr_vlp16_quickstart"
OCAL = DATA / "opencalib_autocalib_v2" / "auto_calib_v2.0" / "data" / "ours"
KITTI = DATA / "kitti_object_3frames" / "training"
RADIATE = DATA / "radiate_tiny_foggy"
FISHEYE = CameraModel(name="sekonix", frame_id="cam", width=1920, height=1208,
                      K=np.array([[959.554, 0, 940.789], [0, 960.194, 670.737], [0, 0, 1]]),
                      D=np.array([-0.097824, 0.141429, -0.148385, 0.055918]), model="equidistant")


def _imread(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise SystemExit(f"cannot read image {path} (is ../shared/data present?)")
    return np.asarray(img)


def _diff(T: Transform | None, Tref: Transform) -> dict[str, float | None]:
    if T is None:
        return {"rot_deg": None, "trans_cm": None, "camera_position_cm": None}
    r, t = pose_error(T, Tref)
    # also the camera's position in the LiDAR frame (the translation ACFR publishes)
    tc = float(np.linalg.norm(T.inverse().t - Tref.inverse().t))
    return {"rot_deg": r, "trans_cm": t * 100, "camera_position_cm": tc * 100}


def board_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    s = OUSTER / "session_2022-11-09_00-54-42"
    Tpub, _ = read_acfr_calibration(s / "calibration_2022-11-09_01-02-13.csv")
    images = [_imread(s / "images" / f"pose{i}.png") for i in range(1, 12)]
    scans = [pcd_organized_scan(s / "pcd" / f"pose{i}_full.pcd") for i in range(1, 12)]  # x, y, z, intensity
    board = BoardGeometry((5, 7), 0.095, (0.61, 0.85), (0.002, 0.0))
    t = time.perf_counter()
    res = calibrate_board_recording(images, scans, FISHEYE, board)
    el = time.perf_counter() - t
    m = res.metrics
    diagnosis = _ouster_diagnosis(s, images, scans, board=board, res=res, Tpub=Tpub)
    others = {}
    for f in sorted((OUSTER / "other_sessions_results").glob("*__calibration_*.csv")):
        To, _ = read_acfr_calibration(f)
        others[f.name.split("__")[0]] = {"ours": _diff(res.T, To), "published_mean": _diff(Tpub, To)}
    rows.append({"set": "acfr_ouster_chessboard (11 poses, raw images + raw scans)", "verdict": res.verdict,
                 "reasons": res.reasons, "vs_published": _diff(res.T, Tpub),
                 "jackknife_rot_std_deg": m.get("jackknife_rot_std_deg"),
                 "jackknife_trans_std_cm": (m.get("jackknife_trans_std_m") or 0) * 100,
                 "leave_one_out_max_rot_deg": m.get("leave_one_out_max_rot_deg"),
                 "leave_one_out_max_trans_cm": (m.get("leave_one_out_max_trans_m") or 0) * 100,
                 "centre_residual_mean_mm": m.get("centre_residual_mean_m", 0) * 1000,
                 "per_pose": m.get("per_pose"), "rejected_poses": m.get("rejected_poses"),
                 "other_sessions": others, "seconds": el, "diagnosis": diagnosis,
                 "T_cam_from_lidar": res.T.matrix.tolist() if res.T is not None else None,
                 "ours_acfr_rpy_xyz": cam_from_lidar_to_acfr(res.T).tolist() if res.T is not None else None})
    # the tool's own features of each session (its camera corners are one repeated point: left out), re-solved
    sessions = [("2022-11-09_00-54-42", s / "poses.csv", s / "calibration_2022-11-09_01-02-13.csv")]
    for f in sorted((OUSTER / "other_sessions_results").glob("*__poses.csv")):
        sid = f.name.split("__")[0]
        sessions.append((sid, f, next((OUSTER / "other_sessions_results").glob(f"{sid}__calibration_*.csv"))))
    for sid, poses, calib in sessions:
        ac, al = read_acfr_poses(poses)
        Ts, _ = read_acfr_calibration(calib)
        r2 = solve_board_features(ac, al)
        rows.append({"set": f"acfr_ouster session {sid}: the tool's own features ({len(ac)} poses)",
                     "verdict": r2.verdict, "reasons": r2.reasons, "vs_published": _diff(r2.T, Ts),
                     "jackknife_rot_std_deg": r2.metrics.get("jackknife_rot_std_deg"),
                     "jackknife_trans_std_cm": (r2.metrics.get("jackknife_trans_std_m") or 0) * 100})
    cams, lids = read_acfr_poses(VLP / "poses.csv")
    Tq, _ = read_acfr_calibration(VLP / "calibration_quickstart.csv")
    r3 = solve_board_features(cams, lids)
    pub_c = float(np.mean([np.linalg.norm(Tq.apply(li.centre[None])[0] - c.centre) for c, li in zip(cams, lids,
                                                                                                  strict=True)]))
    rows.append({"set": "acfr_vlp16_quickstart (40 recorded features)", "verdict": r3.verdict,
                 "vs_published": _diff(r3.T, Tq), "jackknife_rot_std_deg": r3.metrics.get("jackknife_rot_std_deg"),
                 "jackknife_trans_std_cm": (r3.metrics.get("jackknife_trans_std_m") or 0) * 100,
                 "leave_one_out_max_rot_deg": r3.metrics.get("leave_one_out_max_rot_deg"),
                 "leave_one_out_max_trans_cm": (r3.metrics.get("leave_one_out_max_trans_m") or 0) * 100,
                 "centre_residual_mean_mm": r3.metrics.get("centre_residual_mean_m", 0) * 1000,
                 "published_centre_residual_mean_mm": pub_c * 1000,
                 "ours_acfr_rpy_xyz": cam_from_lidar_to_acfr(r3.T).tolist() if r3.T is not None else None})
    # ACFR's own estimator re-expressed (solve_board_features_acfr): the quick-start ran on imported samples
    # without camera_info (zero camera matrix: no reprojection term); the Ouster session ran live (term on)
    wh, p2m = read_acfr_sample_stats(VLP / "poses.csv")
    _, qa = read_acfr_calibration(VLP / "calibration_quickstart.csv")
    Tf = acfr_to_cam_from_lidar(_filtered_mean(qa))
    t = time.perf_counter()
    r4 = solve_board_features_acfr(cams, lids, board_size_m=(0.61, 0.85), widths_heights_m=wh)
    rows.append({"set": "acfr_vlp16_quickstart: ACFR-equivalent estimator (50 lowest-VOQ triplets, no reprojection"
                        " term as in the quick-start run)", "verdict": r4.verdict,
                 "vs_published": _diff(r4.T, Tq), "vs_published_filtered_mean": _diff(r4.T, Tf),
                 "ours_default_solver_vs_published_filtered_mean": _diff(r3.T, Tf),
                 "published_mean_sampling_p95": _bootstrap(qa, Tq),
                 "tool_param_std": r4.metrics["param_std"], "seconds": time.perf_counter() - t,
                 "centre_residual_mean_mm": float(np.mean([np.linalg.norm(r4.T.apply(li.centre[None])[0] - c.centre)
                                                           for c, li in zip(cams, lids, strict=True)])) * 1000
                 if r4.T is not None else None, "published_centre_residual_mean_mm": pub_c * 1000,
                 "ours_acfr_rpy_xyz": cam_from_lidar_to_acfr(r4.T).tolist() if r4.T is not None else None})
    wh, p2m = read_acfr_sample_stats(s / "poses.csv")
    ac, al = read_acfr_poses(s / "poses.csv")
    r5 = solve_board_features_acfr(ac, al, board_size_m=(0.61, 0.85), widths_heights_m=wh, camera=FISHEYE,
                                   pixel_to_metre=p2m)
    _, oa = read_acfr_calibration(s / "calibration_2022-11-09_01-02-13.csv")
    rows.append({"set": "acfr_ouster session 2022-11-09_00-54-42: ACFR-equivalent estimator on the tool's features"
                        " (reprojection term on, as in the live run)", "verdict": r5.verdict,
                 "vs_published": _diff(r5.T, Tpub),
                 "vs_published_filtered_mean": _diff(r5.T, acfr_to_cam_from_lidar(_filtered_mean(oa))),
                 "end_to_end_vs_published_filtered_mean": _diff(res.T, acfr_to_cam_from_lidar(_filtered_mean(oa))),
                 "published_mean_sampling_p95": _bootstrap(oa, Tpub), "tool_param_std": r5.metrics["param_std"]})
    return rows


def _ouster_frame_check(scan: np.ndarray) -> dict[str, float]:
    """Which frame the recorded x, y, z are in: per beam (row), z against the horizontal distance is a
    line whose intercept is the beam's origin height; across beams that intercept falls with the
    beam's elevation by the beam-origin offset.  Ouster's lidar origin sits 36.18 mm above the
    os_sensor origin and its beams start 15.8 mm off the axis (OS1 metadata)."""
    icpt, slope, rms = [], [], []
    for r in range(scan.shape[0]):
        p = scan[r, :, :3]
        p = p[np.isfinite(p).all(axis=1) & (np.linalg.norm(p, axis=1) > 1.0)]
        if len(p) < 100:
            continue
        rho = np.hypot(p[:, 0], p[:, 1])
        A = np.c_[np.ones_like(rho), rho]
        coef = np.linalg.lstsq(A, p[:, 2], rcond=None)[0]
        icpt.append(coef[0])
        slope.append(coef[1])
        rms.append(float(np.sqrt(np.mean((p[:, 2] - A @ coef) ** 2))))
    z0, neg_n = np.linalg.lstsq(np.c_[np.ones(len(slope)), slope], np.asarray(icpt), rcond=None)[0]
    return {"lidar_origin_z_mm": float(z0 * 1000), "beam_origin_offset_mm": float(-neg_n * 1000),
            "row_fit_rms_mm": float(max(rms) * 1000)}


def _ouster_diagnosis(s: Path, images: list[np.ndarray], scans: list[np.ndarray], *, board: BoardGeometry,
                      res: Any, Tpub: Transform) -> dict[str, Any]:
    """Where the difference from the published mean comes from: the tool's own segmented board points
    (oracle) in place of our segmentation, the tool's own features, our pipeline without the intensity
    weighting, the recorded points' frame, the camera / LiDAR normal agreement."""
    from edgefuse_calibration.spatial.board import camera_board_features, segment_board_organized
    from scipy.spatial import cKDTree

    feats = res.metrics["features"]
    cams = [f for f in (camera_board_features(img, FISHEYE, board)[0] for img in images) if f is not None]
    ours_lids = [segment_board_organized(sc, board)[0] for sc in scans]
    out: dict[str, Any] = {"frame_check_pose1": _ouster_frame_check(scans[0])}
    oracle: list[BoardFeatures] = []
    seg = []
    for i in range(1, len(scans) + 1):
        a = read_pcd(s / "pcd" / f"pose{i}_target.pcd")
        pts = np.stack([a["x"], a["y"], a["z"]], axis=1).astype(np.float64)
        of, why = lidar_board_features(pts, a["ring"].astype(int), board, intensity=np.asarray(a["intensity"], float))
        if of is None:
            raise SystemExit(f"pose{i}: the tool's board points give no board: {why}")
        oracle.append(of)
        ours = feats[i - 1]["lidar"]
        seg.append({"pose": f"pose{i}", "oracle_points": len(pts),
                    "centre_vs_oracle_mm": float(np.linalg.norm(np.asarray(ours["centre"]) - of.centre) * 1000),
                    "normal_vs_oracle_deg": float(np.degrees(np.arccos(np.clip(np.asarray(ours["normal"]) @ of.normal,
                                                                                -1, 1))))})
    for row, li, i in zip(seg, ours_lids, range(1, 12), strict=True):
        if li is not None and li.points is not None:
            a = read_pcd(s / "pcd" / f"pose{i}_target.pcd")
            pts = np.stack([a["x"], a["y"], a["z"]], axis=1).astype(np.float64)
            row["our_points"] = len(li.points)
            row["recall"] = float(np.mean(cKDTree(li.points).query(pts)[0] < 1e-4))
            row["precision"] = float(np.mean(cKDTree(pts).query(li.points)[0] < 1e-4))
    out["segmentation_vs_oracle"] = seg
    r_or = solve_board_features(cams, oracle)
    out["our_camera_features_oracle_points"] = {**_diff(r_or.T, Tpub), "jackknife_rot_std_deg":
                                                r_or.metrics.get("jackknife_rot_std_deg"),
                                                "jackknife_trans_std_cm": (r_or.metrics.get("jackknife_trans_std_m")
                                                                           or 0) * 100}
    out["acfr_equivalent_on_our_camera_features_oracle_points"] = _diff(solve_board_features_acfr(cams, oracle).T,
                                                                       Tpub)
    ac, al = read_acfr_poses(s / "poses.csv")
    out["tools_features_our_solver"] = _diff(solve_board_features(ac, al).T, Tpub)
    out["our_camera_features_tools_lidar_features"] = _diff(solve_board_features(cams, al).T, Tpub)
    res_xyz = calibrate_board_recording(images, [sc[..., :3] for sc in scans], FISHEYE, board)
    out["end_to_end_without_intensity_weighting"] = _diff(res_xyz.T, Tpub)
    if res.T is not None:
        tilt = []
        for c, f in zip(cams, feats, strict=True):
            ray = -c.centre / np.linalg.norm(c.centre)
            nl = res.T.R @ np.asarray(f["lidar"]["normal"])
            tilt.append(float(np.degrees(np.arccos(np.clip(c.normal @ ray, -1, 1))
                                         - np.arccos(np.clip(nl @ ray, -1, 1)))))
        out["board_tilt_camera_minus_lidar_deg"] = tilt
    out["lidar_noise_by_intensity_quartile_mm"] = [None if v is None else [round(x * 1000, 1) for x in v]
                                                   for v in res.metrics.get("lidar_noise_by_intensity_m", [])]
    return out


def _filtered_mean(a: np.ndarray) -> list[float]:
    """The tool's reported value (visualise_results.py): per parameter, the mean of the rows within 2 std."""
    z = np.abs(a - a.mean(axis=0)) / a.std(axis=0)
    return [float(a[z[:, k] < 2, k].mean()) for k in range(a.shape[1])]


def _bootstrap(a: np.ndarray, Tref: Transform, n: int = 500) -> dict[str, float]:
    """How far the mean of a resample of the published rows lands from their mean (95th percentile):
    the published value's own sampling uncertainty."""
    rng = np.random.default_rng(0)
    e = np.array([pose_error(acfr_to_cam_from_lidar(a[rng.integers(0, len(a), len(a))].mean(axis=0)), Tref)
                  for _ in range(n)])
    return {"rot_deg": float(np.percentile(e[:, 0], 95)), "trans_cm": float(np.percentile(e[:, 1], 95) * 100)}


def opencalib(i: int) -> tuple[LidarCameraFrame, Transform]:
    f = OCAL / str(i)
    vals = {ln.split(":")[0]: np.array(ln.split(":")[1].split(), float)
            for ln in (f / "calib.txt").read_text().splitlines() if ":" in ln}
    img = _imread(next(f.glob("calib.[jp][pn]g")))
    D = vals["D"]
    D = np.r_[D, np.zeros(5 - len(D))] if len(D) < 5 else D
    cam = CameraModel(name="cam", frame_id="cam", width=img.shape[1], height=img.shape[0], K=vals["K"].reshape(3, 3),
                      D=D, model="plumb_bob")
    a = read_pcd(f / "calib.pcd")
    xyz = np.stack([a["x"], a["y"], a["z"]], axis=1).astype(np.float64)
    T = Transform(np.vstack([vals["T"].reshape(3, 4), [0, 0, 0, 1]]), normalize=True)
    return LidarCameraFrame(xyz, np.asarray(img), ring=a["ring"].astype(int), camera=cam), T


def kitti(i: str) -> tuple[LidarCameraFrame, Transform]:
    rig = from_kitti_object(KITTI / "calib" / f"{i}.txt")
    img = _imread(KITTI / "image_2" / f"{i}.png")
    pts = np.fromfile(KITTI / "velodyne" / f"{i}.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    c = rig.camera("cam2")
    cam = CameraModel(name="cam2", frame_id="cam2", width=img.shape[1], height=img.shape[0], K=c.K, D=c.D)
    return LidarCameraFrame(pts.astype(np.float64), np.asarray(img), camera=cam), rig.transform("cam2", "velodyne")


def acfr_ouster(poses: tuple[int, ...]) -> tuple[list[LidarCameraFrame], Transform]:
    """ACFR session 2022-11-09_00-54-42: fisheye images + raw organized Ouster-64 scans of one static lab
    scene (a chessboard moved between poses), all with the one published extrinsic; ring = scan row."""
    s = OUSTER / "session_2022-11-09_00-54-42"
    Tpub, _ = read_acfr_calibration(s / "calibration_2022-11-09_01-02-13.csv")
    frames = []
    for i in poses:
        org = pcd_organized_xyz(s / "pcd" / f"pose{i}_full.pcd")
        ring = np.repeat(np.arange(org.shape[0]), org.shape[1])
        xyz = org.reshape(-1, 3)
        ok = np.isfinite(xyz).all(axis=1) & (np.linalg.norm(xyz, axis=1) > 0.1)
        frames.append(LidarCameraFrame(xyz[ok], _imread(s / "images" / f"pose{i}.png"), ring=ring[ok], camera=FISHEYE))
    return frames, Tpub


def radiate(max_dt_s: float = 0.010) -> tuple[list[LidarCameraFrame], Transform, dict[str, Any]]:
    """RADIATE ``tiny_foggy`` (HDL-32E + ZED left, one calibration file): every LiDAR sweep whose nearest
    left image is at most ``max_dt_s`` away (at the recorded 9-13 m/s, 10 ms is <= 13 cm of travel), the
    image rectified as the RADIATE SDK does before it overlays LiDAR points, and the SDK's convention for
    the extrinsic (``from_radiate(rectified=True)``: the rectifying rotation R1 is not applied to the
    points).  The frames were chosen by this rule before any score was looked at."""
    from edgefuse.convert.plan import parse_radiate_timestamps
    from edgefuse.rig.importers import from_radiate, radiate_rectify_maps, radiate_stereo_rectification

    seq = RADIATE / "data" / "radiate" / "tiny_foggy"
    calib = RADIATE / "config" / "default-calib.yaml"
    rig = from_radiate(calib, rectified=True)
    cam, Tref = rig.cameras["zed_left"], rig.transform("zed_left", "lidar")
    mx, my = radiate_rectify_maps(calib, "left")
    lid = {k: v[0] for k, v in parse_radiate_timestamps(seq / "velo_lidar.txt").items()
           if (seq / "velo_lidar" / f"{k:06d}.csv").is_file()}
    img = {k: v[0] for k, v in parse_radiate_timestamps(seq / "zed_left.txt").items()
           if (seq / "zed_left" / f"{k:06d}.png").is_file()}
    frames, pairs = [], []
    for lf, lt in sorted(lid.items()):
        cf = min(img, key=lambda k: abs(img[k] - lt))
        if abs(img[cf] - lt) > max_dt_s * 1e9:
            continue
        a = np.loadtxt(seq / "velo_lidar" / f"{lf:06d}.csv", delimiter=",", ndmin=2)  # x, y, z, intensity, ring
        image = cv2.remap(_imread(seq / "zed_left" / f"{cf:06d}.png"), mx, my, cv2.INTER_LINEAR)
        frames.append(LidarCameraFrame(a[:, :3], np.asarray(image), ring=a[:, 4].astype(int), camera=cam))
        pairs.append({"lidar": lf, "camera": cf, "dt_ms": (img[cf] - lt) / 1e6})
    r1 = float(np.degrees(np.linalg.norm(cv2.Rodrigues(radiate_stereo_rectification(calib)["R1"])[0])))
    return frames, Tref, {"pairs": pairs, "rectifying_rotation_deg": r1}


#: the multi-frame score: one-pixel (NMS) image edges and the z-buffer occlusion mask, frames weighing equally.
#: Chosen on KITTI 000001+000002 alone (bench/bench_targetless_landscape.py: the joint score's local optimum
#: from the published pose moves from 0.25 deg / 7.9 cm to 0.07 deg / 6.6 cm); OpenCalib and ACFR held out.
MULTI = TargetlessOptions(edge_map="nms", occlusion_deg=0.5)


def valley_spread(frames: list[LidarCameraFrame], Tref: Transform, rot_deg: float = 1.5) -> dict[str, float]:
    """How much the edge set can tell a rotation from a translation: the edges' depths (camera z, weighted
    quantiles) and the weight fraction that moves more than 2 / 5 / 10 px when the pose slides along the
    rotation-translation valley (``rot_deg`` of rotation and the translation that keeps the median-depth
    edges in place: edges at depth z move by ``f * rot * |1 - z_median / z|``).  Near a single depth
    (a wall, a lab) little moves and the score cannot separate the two; in a street most edges move."""
    cam = frames[0].camera
    assert cam is not None
    data = _prepare(frames, cam, Tref, MULTI)
    z = np.concatenate([Tref.apply(d.pts)[:, 2] for d in data])
    w = np.concatenate([d.w for d in data])
    o = np.argsort(z, kind="stable")
    cw = np.cumsum(w[o]) / w.sum()

    def q(p: float) -> float:
        return float(z[o][min(len(z) - 1, int(np.searchsorted(cw, p)))])
    shift = float(cam.K[0, 0]) * np.deg2rad(rot_deg) * np.abs(1.0 - q(0.5) / z)
    return {"n_edges": len(z), "depth_q10_m": q(0.1), "depth_median_m": q(0.5), "depth_q90_m": q(0.9),
            "valley_rot_deg": rot_deg, "valley_trans_cm": q(0.5) * np.deg2rad(rot_deg) * 100,
            **{f"weight_moving_over_{px}px": float(w[shift > px].sum() / w.sum()) for px in (2, 5, 10)}}


def targetless(name: str, frames: list[LidarCameraFrame], Tref: Transform, trials: int,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    cam = frames[0].camera
    assert cam is not None
    To, s0, s1 = local_optimum(frames, cam, Tref, options=MULTI)
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for _ in range(trials):
        dr, dt = random_perturbation(rng, 3.0, 0.2)
        T0 = perturb(Tref, dr, dt)
        t = time.perf_counter()
        res = refine_lidar_camera(frames, cam, T0, options=MULTI)
        cand = res.metrics.get("candidate_T_cam_from_lidar")
        rows.append({"verdict": res.verdict, **_diff(res.T if res.ok else None, Tref),
                     "guess_offset_cam_cm": (np.asarray(dt) * 100).tolist(),  # the 20 cm, camera x, y, z
                     "candidate": _diff(Transform(np.asarray(cand), normalize=True), Tref) if cand else None,
                     "search": res.metrics.get("search"), "edge_median_depth_m": res.metrics.get("edge_median_depth_m"),
                     "reasons": res.reasons, "seconds": time.perf_counter() - t})
        print(name, rows[-1]["verdict"], rows[-1]["rot_deg"], rows[-1]["trans_cm"], res.reasons[:1], flush=True)
    ok = [r for r in rows if r["verdict"] == "ok"]
    cands = [r["candidate"] for r in rows if r["candidate"]]
    return {"set": name, "n_frames": len(frames), "trials": trials, "options": asdict(MULTI),
            "candidate_median_rot_deg": float(np.median([c["rot_deg"] for c in cands])) if cands else None,
            "candidate_median_trans_cm": float(np.median([c["trans_cm"] for c in cands])) if cands else None,
            "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in ("ok", "refused", "no_improvement")},
            "accepted_within_0.5deg_5cm": sum(r["rot_deg"] <= 0.5 and r["trans_cm"] <= 5 for r in ok),
            # trials whose guess is off by more than 5 cm along the optical axis, which a far scene barely sees
            "guesses_over_5cm_along_optical_axis": sum(abs(r["guess_offset_cam_cm"][2]) > 5 for r in rows),
            "accepted_max_rot_deg": max((r["rot_deg"] for r in ok), default=None),
            "accepted_max_trans_cm": max((r["trans_cm"] for r in ok), default=None),
            "score_bias_at_published": {**_diff(To, Tref), "score_published": s0, "score_local_optimum": s1},
            "valley": valley_spread(frames, Tref), **(extra or {}), "rows": rows}


#: the targetless sets, by the name ``--sets`` takes
TARGETLESS_SETS = ("opencalib", "kitti", "acfr", "radiate", "opencalib13")


def targetless_rows(trials: int, sets: tuple[str, ...] = TARGETLESS_SETS) -> list[dict[str, Any]]:
    """Every multi-frame set with a published calibration in ../shared/data, 10 seeded trials each."""
    rows = []
    if "opencalib" in sets or "opencalib13" in sets:
        o1, T1 = opencalib(1)
        o2, T2 = opencalib(2)
        assert T1.allclose(T2, 1e-9)  # frames 1 and 2: one calibration (SOURCE.md)
    if "opencalib" in sets:
        rows.append(targetless("opencalib_autocalib_v2 frames 1+2", [o1, o2], T1, trials))
    if "kitti" in sets:
        k1, K1 = kitti("000001")
        k2, K2 = kitti("000002")
        assert K1.allclose(K2, 1e-9)
        rows.append(targetless("kitti_object 000001+000002", [k1, k2], K1, trials))
    if "acfr" in sets:
        acfr, Ta = acfr_ouster((1, 6, 11))
        rows.append(targetless("acfr_ouster_chessboard poses 1+6+11 (fisheye, one static lab scene)", acfr, Ta, trials))
    if "radiate" in sets:
        rf, Tr, extra = radiate()
        rows.append(targetless(f"radiate_tiny_foggy, {len(rf)} sweeps with an image <= 10 ms away (fog, wet lens)",
                               rf, Tr, trials, extra))
    if "opencalib13" in sets:
        o3, _ = opencalib(3)
        rows.append(targetless("opencalib frames 1+3 (NOT one calibration: must never be accepted)", [o1, o3], T1,
                               max(2, trials // 3)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--only", choices=["all", "board", "targetless"], default="all")
    ap.add_argument("--sets", default=",".join(TARGETLESS_SETS),
                    help=f"targetless sets to run, comma-separated, of {','.join(TARGETLESS_SETS)}; the rows of the"
                         " others already in the results file are kept")
    a = ap.parse_args()
    sets = tuple(x for x in a.sets.split(",") if x)
    if unknown := set(sets) - set(TARGETLESS_SETS):
        raise SystemExit(f"unknown --sets {sorted(unknown)}; known: {', '.join(TARGETLESS_SETS)}")
    path = HERE / "results" / "lidar_camera_validation.json"
    out: dict[str, Any] = json.loads(path.read_text()) if path.is_file() and a.only != "all" else {}
    out["environment"] = environment()
    if a.only in ("all", "board"):
        out["board"] = board_rows()
    if a.only in ("all", "targetless"):
        new = targetless_rows(a.trials, sets)
        if set(sets) == set(TARGETLESS_SETS):
            out["targetless"] = new
        else:  # replace the rows of the sets rerun, keep the others in their order
            names = {r["set"] for r in new}
            out["targetless"] = [r for r in out.get("targetless", []) if r["set"] not in names] + new
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    for r in out.get("board", []):
        print(f"{r['set']}: {r['verdict']} diff {r['vs_published']} jackknife {r.get('jackknife_rot_std_deg')} deg"
              f" / {r.get('jackknife_trans_std_cm')} cm")
    for r in out.get("targetless", []):
        print(f"{r['set']}: {r['verdicts']} accepted within 0.5 deg/5 cm: {r['accepted_within_0.5deg_5cm']};"
              f" score bias at published {r['score_bias_at_published']}")


if __name__ == "__main__":
    main()
