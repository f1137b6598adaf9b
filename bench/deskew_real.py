"""Deskew on the REAL moving sweeps of the Ouster OS-1-128 capture: geometric consistency before/after.

Data: ``tests/data/ouster_sdk_pcaps`` (ouster-sdk test data, BSD-3): 3 recorded frames (10 Hz, per-column
timestamps), 100 Hz IMU, and the poses file shipped with it (KITTI 3×4, ``T_world_from_sensor`` of each
frame; by the ouster-sdk convention of ``pose_scans_from_kitti`` / ``make_kiss_traj_poses`` each pose is
the sensor pose at the **middle** of its frame).  The sensor moves at ≈ 2.46 m/s along +x.  Nothing is
synthesized: every point keeps its recorded position and its recorded column time.

Motion models (from the data only):

* ``poses``: piecewise constant velocity through the three poses (a :class:`Motion` of two segments that
  passes exactly through pose 0, 1, 2 at the frame middles; extrapolated before/after);
* ``imu``: the IMU gyro integrated over the sweep (:func:`integrate_imu`, sensor↔IMU extrinsic from the
  metadata) plus the poses' linear velocity;
* ``negated`` (control): the ``poses`` motion with its sign flipped; ``raw``: no deskew.

Why "phase-shifted" sweeps: within one recorded frame the only place where the same surface is seen at
two very different times is the seam (column 0, behind the car, over flat road here), and two
consecutive recorded frames are distorted *identically* at constant velocity (the same azimuth is taken
at the same time offset in both), so scan-to-scan checks on recorded frames cannot see deskew (measured
below, and reported as such).  The frame boundary is a driver convention (the sensor streams columns
continuously; ``phase_lock_offset`` moves it), so a sweep of 1024 consecutive *recorded* columns can
start at any column ``c``: columns ``c..1023`` of frame k then ``0..c-1`` of frame k+1.  Its seam then
faces structure (walls across the street ahead) and a scan-to-scan pair (frame 0 vs a phase-shifted
sweep from frames 1–2) has different distortion on each side.

Checks:

1. intra-sweep seam: for 64 seam columns × 2 sweeps, the end-of-sweep points (100 ms after) against the
   local plane of the start-of-sweep points (k-NN PCA), split by surface orientation (facing the motion:
   ``|n·v̂| > 0.7``; parallel to it: ``< 0.3``, a control deskew should not change); plus RANSAC planes
   crossing the seam: thickness before/after; plus the motion-scale sweep (the scale that makes the
   seams most consistent, estimated from the data, should be ≈ 1);
2. scan-to-scan: Open3D point-to-plane ICP (voxel 0.15 m, max correspondence 0.3 m, started at the poses
   file's relative pose): fitness / inlier RMSE, and the ICP pose's drift from the poses file; for
   recorded frame pairs (expected null) and phase-shifted pairs.

    python bench/deskew_real.py

Writes ``bench/results/deskew_real.json`` and ``bench/results/deskew_real.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import open3d as o3d
from edgefuse_drivers.ouster import OusterPcap, xyz_lut
from scipy.spatial import cKDTree

from edgefuse.fusion.deskew import Motion, deskew, integrate_imu, so3_exp

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "tests" / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
OUT_JSON = ROOT / "bench" / "results" / "deskew_real.json"
OUT_PNG = ROOT / "bench" / "results" / "deskew_real.png"
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
SEAM_COLS = 8  # columns on each side of a seam (≈ 2.8°)
MIN_RANGE_M, MAX_RANGE_M = 1.5, 40.0


def log_so3(R: F64) -> F64:
    """Rotation vector of a rotation matrix."""
    c = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    th = float(np.arccos(c))
    if th < 1e-12:
        return np.zeros(3)
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return np.asarray(th / (2 * np.sin(th)) * axis, dtype=np.float64)


@dataclass
class Capture:
    xyz: list[F64]  # per frame (W, H, 3) sensor frame
    tcol: list[npt.NDArray[np.int64]]  # per frame (W,) column time [ns]
    ok: list[B]  # per frame (W, H)
    mids: list[int]  # frame middles [ns] (pose times)
    T: F64  # (K, 4, 4) T_world_from_sensor at the frame middles
    imu_stamps: npt.NDArray[np.int64]
    gyro: F64
    T_imu_from_sensor: F64


def load() -> Capture:
    src = OusterPcap(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", PCAPS / "OS-1-128_v2.3.0_1024x10.json")
    info = src.info
    lut = xyz_lut(info)
    W, H = info.columns_per_frame, info.pixels_per_column
    xyz, tcol, ok, mids = [], [], [], []
    for sc in src.scans():
        p, _t, v = sc.xyz(lut)
        r = np.linalg.norm(p, axis=1)
        xyz.append(p.reshape(W, H, 3))
        ok.append((v & (r > MIN_RANGE_M) & (r < MAX_RANGE_M)).reshape(W, H))
        tc = sc.timestamp_ns.astype(np.int64)
        tcol.append(tc)
        valid = sc.column_valid
        mids.append(int((tc[valid].min() + tc[valid].max()) // 2))
    poses = np.loadtxt(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt").reshape(-1, 3, 4)
    T = np.array([np.vstack([p, [0, 0, 0, 1.0]]) for p in poses])
    imu = src.imu_batch()
    return Capture(xyz, tcol, ok, mids, T, np.asarray(imu.stamps_ns, np.int64),
                   np.asarray(imu.angular_velocity, np.float64), np.linalg.inv(info.T_sensor_from_imu))


def pose_motion(cap: Capture, scale: float = 1.0) -> Motion:
    """Piecewise constant velocity through the poses (origin: middle of frame 0, world = the poses'
    frame), body velocities multiplied by ``scale`` (1: the poses; 0: no motion; -1: wrong sign)."""
    K = len(cap.mids)
    R = [np.eye(3)]
    p = [np.zeros(3)]
    v, w = [], []
    for k in range(K - 1):
        dt = (cap.mids[k + 1] - cap.mids[k]) * 1e-9
        rel = np.linalg.inv(cap.T[k]) @ cap.T[k + 1]
        wb = log_so3(rel[:3, :3]) / dt * scale
        vb = rel[:3, 3] / dt * scale
        v.append(R[k] @ vb)
        w.append(wb)
        R.append(R[k] @ so3_exp(wb * dt))
        p.append(p[k] + R[k] @ vb * dt)
    seg_t = (np.array(cap.mids[:-1]) - cap.mids[0]) * 1e-9
    return Motion(cap.mids[0], seg_t.astype(np.float64), np.array(R[:-1]), np.array(p[:-1]), np.array(v),
                  np.array(w), np.zeros((K - 1, 3)), (-np.inf, np.inf))


def body_velocity(cap: Capture, t_ns: int) -> F64:
    """The poses' linear velocity (body frame) of the segment holding ``t_ns``."""
    k = int(np.clip(np.searchsorted(cap.mids, t_ns, side="right") - 1, 0, len(cap.mids) - 2))
    rel = np.linalg.inv(cap.T[k]) @ cap.T[k + 1]
    return np.asarray(rel[:3, 3] / ((cap.mids[k + 1] - cap.mids[k]) * 1e-9), dtype=np.float64)


@dataclass
class Sweep:
    """1024 consecutive recorded columns starting at column ``start`` of frame ``frame``."""

    xyz: F64  # (W, H, 3)
    t: npt.NDArray[np.int64]  # (W,)
    ok: B  # (W, H)
    start: int
    frame: int

    @property
    def ref_ns(self) -> int:
        return int((self.t.min() + self.t.max()) // 2)


def sweep(cap: Capture, frame: int, start: int = 0) -> Sweep:
    """Frame ``frame`` (start 0) or the phase-shifted sweep: columns start.. of ``frame``, ..start-1 of
    ``frame + 1`` (recorded positions and times, only the frame boundary moved)."""
    if start == 0:
        return Sweep(cap.xyz[frame], cap.tcol[frame], cap.ok[frame], 0, frame)
    late = np.arange(cap.xyz[0].shape[0]) < start
    xyz = np.where(late[:, None, None], cap.xyz[frame + 1], cap.xyz[frame])
    t = np.where(late, cap.tcol[frame + 1], cap.tcol[frame])
    ok = np.where(late[:, None], cap.ok[frame + 1], cap.ok[frame])
    return Sweep(xyz, t, ok, start, frame)


def deskewed(cap: Capture, sw: Sweep, variant: str, scale: float = 1.0) -> F64:
    """The sweep's points (W, H, 3) in the sensor frame at ``sw.ref_ns`` (its middle)."""
    W, H, _ = sw.xyz.shape
    pts = sw.xyz.reshape(-1, 3)
    if variant == "raw":
        return sw.xyz
    t = np.repeat(sw.t, H)
    if variant in ("poses", "negated", "scaled"):
        s = {"poses": 1.0, "negated": -1.0, "scaled": scale}[variant]
        out = deskew(pts, t, pose_motion(cap, s), reference_time_ns=sw.ref_ns).points
    elif variant == "imu":
        lo = max(int(sw.t.min()), int(cap.imu_stamps[0]))
        hi = min(int(sw.t.max()), int(cap.imu_stamps[-1]))
        mot = integrate_imu(cap.imu_stamps, cap.gyro, lo, hi,
                            initial_velocity_mps=cap.T_imu_from_sensor[:3, :3] @ body_velocity(cap, sw.ref_ns))
        out = deskew(pts, t, mot, reference_time_ns=sw.ref_ns, T_imu_from_lidar=cap.T_imu_from_sensor,
                     outside="extrapolate", max_extrapolation_ns=30_000_000).points
    else:
        raise ValueError(variant)
    return np.asarray(out, dtype=np.float64).reshape(W, H, 3)


# -- 1. intra-sweep: the seam ---------------------------------------------------------------------
def seam_points(sw: Sweep, grid: F64, n: int = SEAM_COLS) -> tuple[F64, F64, F64, F64]:
    """Start-side and end-side points of the seam (first / last ``n`` columns of the sweep), and the
    same points of the raw sweep (to select surfaces independently of the deskew)."""
    W = grid.shape[0]
    cs = (sw.start + np.arange(n)) % W
    ce = (sw.start - 1 - np.arange(n)) % W
    ms, me = sw.ok[cs], sw.ok[ce]
    return grid[cs][ms], grid[ce][me], sw.xyz[cs][ms], sw.xyz[ce][me]


def seam_residuals(start: F64, end: F64, k: int = 12, radius: float = 1.0) -> tuple[F64, F64]:
    """For each end-side point: distance to the local plane (k-NN PCA) of the start-side points, and
    that plane's normal (NaN where the neighbourhood is not a thin plane)."""
    d = np.full(len(end), np.nan)
    nrm = np.full((len(end), 3), np.nan)
    if len(start) < k or len(end) == 0:
        return d, nrm
    dist, idx = cKDTree(start).query(end, k=k, distance_upper_bound=radius)
    full = np.isfinite(dist[:, -1])
    if not full.any():
        return d, nrm
    nb = start[idx[full]]  # (M, k, 3)
    c = nb.mean(axis=1)
    q = nb - c[:, None]
    ev, evec = np.linalg.eigh(np.einsum("mki,mkj->mij", q, q) / (k - 1))
    n0 = evec[:, :, 0]
    plane = (ev[:, 0] <= 0.02 * ev.sum(axis=1)) & (ev[:, 1] >= 0.01)  # thin, and not a line
    ii = np.flatnonzero(full)[plane]
    nrm[ii] = n0[plane]
    d[ii] = np.abs(np.einsum("mi,mi->m", end[ii] - c[plane], n0[plane]))
    return d, nrm


def ransac_planes(pts: F64, rng_seed: int, n_max: int = 3, min_inliers: int = 60) -> list[tuple[F64, float]]:
    """Up to ``n_max`` vertical planes (``n``, ``d``: n·p + d = 0) in ``pts`` (Open3D RANSAC, 5 cm)."""
    planes: list[tuple[F64, float]] = []
    rest = pts
    o3d.utility.random.seed(rng_seed)
    for _ in range(n_max * 3):
        if len(rest) < min_inliers or len(planes) >= n_max:
            break
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(rest))
        model, inl = pc.segment_plane(0.05, 3, 200)
        if len(inl) < min_inliers:
            break
        nvec = np.asarray(model[:3], dtype=np.float64)
        if abs(nvec[2]) < 0.3:
            planes.append((nvec, float(model[3])))
        rest = np.delete(rest, inl, axis=0)
    return planes


def plane_thickness(start: F64, end: F64, plane: tuple[F64, float], raw: tuple[F64, F64], *,
                    band: float = 0.5) -> tuple[float, float] | None:
    """(thickness, end-side offset) of a plane crossing the seam: the planes are found in the raw
    start side; the points within ``band`` of it (raw) and within 1 m of its raw inliers are taken in
    the evaluated sweep, a plane is refitted on both sides together (PCA) and the robust spread
    (1.4826·MAD) of the distances is the thickness; the offset is the median distance of the end side
    to the start side's own PCA plane."""
    nvec, dd = plane
    start_raw, end_raw = raw
    inl = np.abs(start_raw @ nvec + dd) < 0.05
    if inl.sum() < 30:
        return None
    tree = cKDTree(start_raw[inl])
    sel_s = inl
    near_e = (np.abs(end_raw @ nvec + dd) < band) & np.isfinite(tree.query(end_raw, distance_upper_bound=1.0)[0])
    if near_e.sum() < 20:
        return None
    both = np.vstack([start[sel_s], end[near_e]])
    c = both.mean(axis=0)
    n_both = np.linalg.eigh(np.cov((both - c).T))[1][:, 0]
    r = (both - c) @ n_both
    thick = float(1.4826 * np.median(np.abs(r - np.median(r))))
    cs = start[sel_s].mean(axis=0)
    n_s = np.linalg.eigh(np.cov((start[sel_s] - cs).T))[1][:, 0]
    off = float(np.median(np.abs((end[near_e] - cs) @ n_s)))
    return thick, off


# -- 2. scan-to-scan --------------------------------------------------------------------------------
def o3d_cloud(grid: F64, ok: B, voxel: float = 0.15) -> Any:
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(grid[ok]))
    pc = pc.voxel_down_sample(voxel)
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=0.6, max_nn=30))
    return pc


def pose_error(T_est: F64, T_true: F64) -> tuple[float, float]:
    E = np.linalg.inv(T_true) @ T_est
    return float(np.linalg.norm(E[:3, 3])), float(np.degrees(np.linalg.norm(log_so3(E[:3, :3]))))


def icp_pair(cap: Capture, a: Sweep, b: Sweep, variant: str, max_corr: float = 0.3) -> dict[str, Any]:
    """Register sweep ``b`` (source) to ``a`` (target), each deskewed to its middle by ``variant``."""
    mot = pose_motion(cap)

    def pose(t_ns: int) -> F64:
        R, p = mot.pose_at(t_ns)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, p
        return T

    T_true = np.linalg.inv(pose(a.ref_ns)) @ pose(b.ref_ns)  # b's frame -> a's frame
    tgt = o3d_cloud(deskewed(cap, a, variant), a.ok)
    src = o3d_cloud(deskewed(cap, b, variant), b.ok)
    reg = o3d.pipelines.registration
    at_truth = reg.evaluate_registration(src, tgt, max_corr, T_true)
    res = reg.registration_icp(src, tgt, max_corr, T_true, reg.TransformationEstimationPointToPlane(),
                               reg.ICPConvergenceCriteria(max_iteration=60))
    dt, dr = pose_error(np.asarray(res.transformation), T_true)
    # point-to-plane residuals at the poses file's pose: source points vs target normals
    s_pts = np.asarray(src.points) @ T_true[:3, :3].T + T_true[:3, 3]
    tree = cKDTree(np.asarray(tgt.points))
    dist, idx = tree.query(s_pts, distance_upper_bound=max_corr)
    m = np.isfinite(dist)
    pl = np.abs(np.einsum("ij,ij->i", s_pts[m] - np.asarray(tgt.points)[idx[m]], np.asarray(tgt.normals)[idx[m]]))
    return {"fitness_at_poses": at_truth.fitness, "rmse_at_poses_m": at_truth.inlier_rmse,
            "point_to_plane_median_at_poses_m": float(np.median(pl)),
            "icp_fitness": res.fitness, "icp_rmse_m": res.inlier_rmse,
            "icp_drift_from_poses_m": dt, "icp_drift_from_poses_deg": dr}


def stats(x: npt.ArrayLike) -> dict[str, float]:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if len(a) == 0:
        return {"n": 0}
    q = np.percentile(a, [25, 50, 75])
    return {"n": len(a), "p25": round(float(q[0]), 4), "median": round(float(q[1]), 4),
            "p75": round(float(q[2]), 4)}


def main() -> None:  # noqa: PLR0915 (one linear report)
    t_start = time.perf_counter()
    cap = load()
    W = cap.xyz[0].shape[0]
    v01 = body_velocity(cap, cap.mids[0])
    vhat = v01 / np.linalg.norm(v01)
    report: dict[str, Any] = {
        "capture": "OS-1-128_v2.3.0_1024x10_lb_n3 (ouster-sdk test data, BSD-3): 3 frames, 10 Hz, IMU 100 Hz",
        "poses_convention": "KITTI T_world_from_sensor, one per frame, at the frame middle (ouster-sdk "
                            "pose_scans_from_kitti); motion = piecewise constant velocity through them",
        "speed_mps": [round(float(np.linalg.norm(body_velocity(cap, m))), 3) for m in cap.mids[:-1]],
        "variants": {"raw": "no deskew", "poses": "deskew, poses' piecewise constant velocity",
                     "imu": "deskew, IMU gyro integrated + poses' linear velocity, sensor<->IMU extrinsic",
                     "negated": "control: poses' motion with the wrong sign"},
    }
    variants = ("raw", "poses", "imu", "negated")

    # -- 1. seams ----------------------------------------------------------------------------------
    starts = list(range(0, W, 16))
    facing: dict[str, list[float]] = {v: [] for v in variants}
    parallel: dict[str, list[float]] = {v: [] for v in variants}
    per_seam: list[dict[str, Any]] = []
    thick: dict[str, list[float]] = {v: [] for v in variants}
    offs: dict[str, list[float]] = {v: [] for v in variants}
    thick_par: dict[str, list[float]] = {v: [] for v in variants}
    grids: dict[tuple[int, str], F64] = {}
    for frame in (0, 1):
        sweeps = {s: sweep(cap, frame, s) for s in starts}
        for s0, sw in sweeps.items():
            row: dict[str, Any] = {"frame": frame, "start_col": s0}
            _s, _e, s_raw, e_raw = seam_points(sw, sw.xyz)
            d_raw, n_raw = seam_residuals(s_raw, e_raw)
            # surfaces classified once, on the raw sweep's normals
            cosv = np.abs(n_raw @ vhat)
            vert = np.abs(n_raw[:, 2]) < 0.3
            f_m = vert & (cosv > 0.7)
            p_m = vert & (cosv < 0.3)
            planes = ransac_planes(s_raw[s_raw[:, 2] > -1.5], rng_seed=s0 + 1000 * frame)
            for v in variants:
                g = grids.setdefault((frame * W + s0, v), deskewed(cap, sw, v)) if v != "raw" else sw.xyz
                s_p, e_p, _, _ = seam_points(sw, g)
                d = d_raw if v == "raw" else seam_residuals(s_p, e_p)[0]
                if f_m.sum() >= 10:
                    row[f"facing_{v}"] = float(np.nanmedian(d[f_m]))
                    facing[v].append(row[f"facing_{v}"])
                if p_m.sum() >= 10:
                    parallel[v].append(float(np.nanmedian(d[p_m])))
                for pl in planes:
                    r = plane_thickness(s_p, e_p, pl, (s_raw, e_raw))
                    if r is None:
                        continue
                    if abs(float(pl[0] @ vhat)) > 0.7:
                        thick[v].append(r[0])
                        offs[v].append(r[1])
                    elif abs(float(pl[0] @ vhat)) < 0.3:
                        thick_par[v].append(r[0])
            row["n_facing_points"] = int(f_m.sum())
            per_seam.append(row)
    fr = np.array(facing["raw"])
    seam_rep: dict[str, Any] = {
        "method": f"end-of-sweep points (last {SEAM_COLS} columns, ≈100 ms after) vs the local plane "
                  f"(12-NN PCA) of the start-of-sweep points (first {SEAM_COLS} columns); per seam the median "
                  "distance; surfaces classified on the raw sweep: facing the motion |n·v̂|>0.7, parallel <0.3",
        "seams": f"{len(starts)} start columns × frames 0 and 1 (frame boundary moved, recorded columns)",
        "facing_motion_m": {v: stats(facing[v]) for v in variants},
        "parallel_to_motion_m (control)": {v: stats(parallel[v]) for v in variants},
        "facing_ratio_to_raw": {v: stats(np.array(facing[v]) / fr) for v in ("poses", "imu", "negated")},
        "facing_seams_improved": {v: f"{int(np.sum(np.array(facing[v]) < fr))}/{len(fr)}" for v in ("poses", "imu")},
        "expected_raw_gap_m": round(float(np.linalg.norm(v01) * 0.1), 3),
        "ransac_planes_across_seam": {
            "method": "vertical planes (Open3D RANSAC 5 cm) in the raw start side; points within 0.5 m of the "
                      "plane on both sides refitted together: thickness = 1.4826·MAD of the distances; "
                      "offset = median distance of end-side points to the start side's plane",
            "facing_motion_thickness_m": {v: stats(thick[v]) for v in variants},
            "facing_motion_end_offset_m": {v: stats(offs[v]) for v in variants},
            "facing_thinner_than_raw": {v: f"{int(np.sum(np.array(thick[v]) < np.array(thick['raw'])))}/"
                                           f"{len(thick['raw'])}" for v in ("poses", "imu", "negated")},
            "parallel_to_motion_thickness_m (control)": {v: stats(thick_par[v]) for v in variants},
        },
    }
    # recorded seams (column 0, behind the car) alone
    rec = [r for r in per_seam if r["start_col"] == 0]
    seam_rep["recorded_seam_col0"] = [{k: (round(x, 4) if isinstance(x, float) else x) for k, x in r.items()}
                                      for r in rec]
    report["seam"] = seam_rep

    # motion-scale sweep: which scale makes the seams most consistent
    scales = np.round(np.linspace(-1.0, 2.0, 13), 3)
    facing_seams = []
    for frame in (0, 1):
        for s0 in starts:
            sw = sweep(cap, frame, s0)
            _s, _e, s_raw, e_raw = seam_points(sw, sw.xyz)
            n_raw = seam_residuals(s_raw, e_raw)[1]
            f_m = (np.abs(n_raw[:, 2]) < 0.3) & (np.abs(n_raw @ vhat) > 0.7)
            if f_m.sum() >= 10:
                facing_seams.append((sw, f_m))
    curve = []
    for sc in scales:
        vals = []
        for sw, f_m in facing_seams:
            s_p, e_p, _, _ = seam_points(sw, deskewed(cap, sw, "scaled", float(sc)))
            vals.append(float(np.nanmedian(seam_residuals(s_p, e_p)[0][f_m])))
        curve.append(float(np.nanmedian(vals)))
    i = int(np.nanargmin(curve))
    lo, hi = max(i - 2, 0), min(i + 3, len(scales))
    cf = np.polyfit(scales[lo:hi], curve[lo:hi], 2)
    best = float(-cf[1] / (2 * cf[0])) if cf[0] > 0 else float(scales[i])
    report["motion_scale_sweep"] = {"scales": scales.tolist(), "median_facing_seam_m": [round(c, 4) for c in curve],
                                    "best_scale": round(best, 3),
                                    "speed_implied_mps": round(best * float(np.linalg.norm(v01)), 3)}

    # -- 2. scan-to-scan ----------------------------------------------------------------------------
    pairs = {
        "recorded f0->f1": (sweep(cap, 0), sweep(cap, 1)),
        "recorded f1->f2": (sweep(cap, 1), sweep(cap, 2)),
    }
    for c in (256, 512, 768):
        pairs[f"f0 vs f1/2 from col {c}"] = (sweep(cap, 0), sweep(cap, 1, c))
        pairs[f"f0/1 from col {c} vs f2"] = (sweep(cap, 0, c), sweep(cap, 2))
    icp: dict[str, Any] = {}
    for name, (a, b) in pairs.items():
        icp[name] = {v: {k: round(x, 5) for k, x in icp_pair(cap, a, b, v).items()} for v in variants}
    report["scan_to_scan"] = {
        "method": "Open3D point-to-plane ICP, voxel 0.15 m, normals r=0.6 m, max correspondence 0.3 m, "
                  "initial pose = poses file; metrics at the poses file's pose and after ICP",
        "pairs": icp,
    }
    shifted = [n for n in icp if not n.startswith("recorded")]
    summ = {}
    for key in ("rmse_at_poses_m", "point_to_plane_median_at_poses_m", "icp_rmse_m", "icp_drift_from_poses_m",
                "fitness_at_poses"):
        summ[key] = {grp: {v: stats([icp[n][v][key] for n in names]) for v in variants}
                     for grp, names in (("recorded", [n for n in icp if n.startswith("recorded")]),
                                        ("phase_shifted", shifted))}
    report["scan_to_scan"]["summary"] = summ
    report["elapsed_s"] = round(time.perf_counter() - t_start, 1)

    # -- figure ---------------------------------------------------------------------------------------
    fig, axes = plt.subplots(2, 3, figsize=(20, 12))
    # (a) top view of one seam facing a wall ahead
    best_row = max((r for r in per_seam if "facing_raw" in r), key=lambda r: r["n_facing_points"])
    sw = sweep(cap, best_row["frame"], best_row["start_col"])
    for ax, v, title in ((axes[0, 0], "raw", "raw"), (axes[0, 1], "poses", "deskewed (poses)")):
        g = sw.xyz if v == "raw" else deskewed(cap, sw, v)
        s_p, e_p, _, _ = seam_points(sw, g, 24)
        sel_s, sel_e = s_p[:, 2] > -1.5, e_p[:, 2] > -1.5
        ax.scatter(s_p[sel_s, 0], s_p[sel_s, 1], s=3, c="tab:blue", label="first 24 columns of the sweep")
        ax.scatter(e_p[sel_e, 0], e_p[sel_e, 1], s=3, c="tab:red", label="last 24 columns (≈100 ms later)")
        cx, cy = np.median(s_p[sel_s, 0]), np.median(s_p[sel_s, 1])
        ax.set_xlim(cx - 3, cx + 3)
        ax.set_ylim(cy - 3, cy + 3)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.set_xlabel("x [m] (sensor frame, motion along +x)")
        ax.set_ylabel("y [m]")
        ax.set_title(f"{title}: seam at column {sw.start} (frame {sw.frame}), top view, z > -1.5 m")
        ax.legend(loc="lower left", fontsize=8)
    ax = axes[0, 2]
    colors = {"raw": "tab:red", "poses": "tab:green", "imu": "tab:blue", "negated": "tab:gray"}
    bins = np.linspace(0, 0.6, 41)
    for v in variants:
        ax.hist(np.clip(facing[v], 0, 0.6), bins=bins, histtype="step", lw=2, color=colors[v],
                label=f"{v}: median {np.nanmedian(facing[v]):.3f} m")
    ax.axvline(float(np.linalg.norm(v01) * 0.1), color="k", ls=":", label="|v|·100 ms")
    ax.set_xlabel("seam gap on surfaces facing the motion, per seam (median) [m]")
    ax.set_ylabel("seams")
    ax.set_title(f"intra-sweep seam consistency ({len(facing['raw'])} seams)")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    ax.plot(scales, curve, "o-")
    ax.axvline(1.0, color="tab:green", ls="--", label="poses' motion (scale 1)")
    ax.axvline(best, color="tab:red", ls=":", label=f"best fit {best:.2f}")
    ax.set_xlabel("motion scale (× the poses' velocity; 0 = no deskew, -1 = wrong sign)")
    ax.set_ylabel("median seam gap, facing surfaces [m]")
    ax.set_title("the data picks the motion: seam gap vs motion scale")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1, 1]
    data = [thick[v] for v in variants]
    ax.boxplot(data, tick_labels=list(variants), showfliers=False)
    ax.set_ylabel("plane thickness across the seam (1.4826·MAD) [m]")
    ax.set_title(f"RANSAC walls facing the motion, crossing the seam ({len(thick['raw'])} planes)")
    ax.grid(alpha=0.3)
    ax = axes[1, 2]
    names = list(icp)
    x = np.arange(len(names))
    for j, v in enumerate(variants):
        ax.bar(x + (j - 1.5) * 0.2, [icp[n][v]["point_to_plane_median_at_poses_m"] for n in names], 0.2,
               color=colors[v], label=v)
    ax.set_xticks(x, [n.replace(" from col ", "@") for n in names], rotation=25, fontsize=8)
    ax.set_ylabel("median point-to-plane residual at the poses file's pose [m]")
    ax.set_title("scan-to-scan (Open3D): recorded pairs vs phase-shifted pairs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Deskew on the recorded Ouster OS-1-128 sweeps (2.46 m/s, per-column times, poses file, IMU)")
    fig.tight_layout()
    OUT_PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT_PNG, dpi=70)
    OUT_JSON.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
