"""Cloud-to-cloud extrinsics (LiDAR-LiDAR, radar-LiDAR) by Open3D ICP (point-to-plane or GICP).

``register_clouds(source, target, T_target_from_source_guess)`` refines ``T_target_from_source``.
Verdict ``refused`` when either cloud has too few finite points, the fitness (fraction of source points
with a target neighbour within ``max_corr_m``) is below ``min_fitness``, or the refined result is not
better than the guess (then the guess is kept: ``no_improvement``).  ``planar=True`` restricts the
update to x, y, yaw (for 2-D scanning radars, whose z and tilt are unobservable).
Open3D is imported lazily (the ``calib`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import Transform
from edgefuse_calibration.spatial._common import F64, NO_IMPROVEMENT, OK, REFUSED, SpatialResult, pose_error


def _finite(p: npt.ArrayLike, what: str) -> F64:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise CalibrationError(f"{what} must have shape (N, 3), got {a.shape}")
    return a[np.isfinite(a).all(axis=1)]


def _o3d() -> Any:
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CalibrationError(f"registration needs open3d (pip install 'edgefuse[calib]'): {exc}") from None
    return o3d


def _evaluate(o3d: Any, src: Any, tgt: Any, max_corr: float, T: F64) -> tuple[float, float]:
    ev = o3d.pipelines.registration.evaluate_registration(src, tgt, max_corr, T)
    return float(ev.fitness), float(ev.inlier_rmse)


def _planarize(T: F64, T0: F64) -> F64:
    """Keep only the x, y, yaw part of the update ``T·T0⁻¹``."""
    D = T @ np.linalg.inv(T0)
    yaw = np.arctan2(D[1, 0], D[0, 0])
    P = np.eye(4)
    P[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    P[:2, 3] = D[:2, 3]
    return P @ T0


def register_clouds(
    source: npt.ArrayLike, target: npt.ArrayLike, T_target_from_source_guess: Transform, *,
    method: str = "point_to_plane", max_corr_m: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25),
    voxel_m: float = 0.1, min_points: int = 100, min_fitness: float = 0.3, planar: bool = False,
    source_frame: str = "source", target_frame: str = "target", max_iterations: int = 50,
) -> SpatialResult:
    """Refine ``T_target_from_source`` with multi-scale ICP (``method``: ``point_to_plane``, ``gicp`` or
    ``point_to_point``).  ``metrics``: fitness and inlier RMSE before/after (at the finest scale), the
    change from the guess, point counts."""
    res = SpatialResult(f"register_{method}", REFUSED, target_frame, source_frame, initial=T_target_from_source_guess)
    s = _finite(source, "source cloud")
    t = _finite(target, "target cloud")
    res.metrics.update(n_source=len(s), n_target=len(t))
    if len(s) < min_points or len(t) < min_points:
        res.reasons.append(f"too few finite points (source {len(s)}, target {len(t)}; need {min_points})")
        return res
    if method not in ("point_to_plane", "gicp", "point_to_point"):
        raise CalibrationError(f"unknown registration method {method!r}")
    o3d = _o3d()
    reg = o3d.pipelines.registration
    src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(s))
    tgt = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(t))
    if voxel_m > 0:
        src = src.voxel_down_sample(voxel_m)
        tgt = tgt.voxel_down_sample(voxel_m)
    for pc in (src, tgt):
        pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=max(3 * voxel_m, 0.3), max_nn=30))
    T0 = T_target_from_source_guess.matrix
    T = T0.copy()
    crit = reg.ICPConvergenceCriteria(max_iteration=max_iterations)
    for mc in max_corr_m:
        if method == "point_to_plane":
            est = reg.TransformationEstimationPointToPlane()
        elif method == "gicp":
            est = reg.TransformationEstimationForGeneralizedICP()
        else:
            est = reg.TransformationEstimationPointToPoint()
        if method == "gicp":
            r = reg.registration_generalized_icp(src, tgt, mc, T, est, crit)
        else:
            r = reg.registration_icp(src, tgt, mc, T, est, crit)
        T = np.asarray(r.transformation, dtype=np.float64)
        if planar:
            T = _planarize(T, T0)
    fine = max_corr_m[-1]
    f0, e0 = _evaluate(o3d, src, tgt, fine, T0)
    f1, e1 = _evaluate(o3d, src, tgt, fine, T)
    T_est = Transform(T, normalize=True)
    dr, dt = pose_error(T_est, T_target_from_source_guess)
    res.metrics.update(fitness_initial=f0, rmse_initial_m=e0, fitness=f1, rmse_m=e1, change_rot_deg=dr,
                       change_trans_m=dt, max_corr_m=fine)
    if f1 < min_fitness:
        res.reasons.append(f"fitness {f1:.3f} < {min_fitness}: too few source points have a target neighbour"
                           f" within {fine} m (wrong guess, or the clouds do not overlap)")
        return res
    # better = more inliers, or as many inliers that fit tighter
    if not (f1 > f0 + 1e-3 or (f1 >= f0 - 1e-3 and e1 < e0 - 1e-4)):
        res.verdict = NO_IMPROVEMENT
        res.T = T_target_from_source_guess
        res.reasons.append(f"ICP did not improve the guess (fitness {f0:.3f} -> {f1:.3f}, RMSE {e0:.3f} ->"
                           f" {e1:.3f} m); keeping the guess")
        return res
    res.verdict = OK
    res.T = T_est
    return res
