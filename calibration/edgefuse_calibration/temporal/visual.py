"""Rotation rates from cameras (feature tracking) and LiDARs (scan-to-scan ICP) for time alignment.

Camera: Shi-Tomasi corners (``cv2.goodFeaturesToTrack``) tracked with pyramidal Lucas-Kanade
(``cv2.calcOpticalFlowPyrLK``) and checked forward-backward, undistorted to normalised coordinates,
then the essential matrix (RANSAC) and ``cv2.recoverPose`` give the rotation between consecutive
frames.  When the baseline is too small for the essential matrix (few inliers), a homography is used
instead (``R = K⁻¹ H K`` projected onto SO(3), exact for a pure rotation).  Frames with too few tracks
give NaN (a gap that the estimators mask, never bridge).

LiDAR: point-to-plane ICP (Open3D, imported lazily; needs the ``calib`` extra) between consecutive
scans gives the relative rotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal._so3 import log_so3
from edgefuse_calibration.temporal.types import F64, Signal


def _nearest_rotation(M: F64) -> F64:
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        R = U @ np.diag([1.0, 1.0, -1.0]) @ Vt
    return R  # type: ignore[no-any-return]


def frame_rotation(img0: npt.NDArray[np.uint8], img1: npt.NDArray[np.uint8], K: F64, D: F64 | None = None,
                   *, max_corners: int = 500, min_tracks: int = 30) -> tuple[F64 | None, dict[str, Any]]:
    """``R_c1_from_c0`` (x1 = R x0 + t) between two grayscale frames, or None when it cannot be
    estimated (too few tracks / inliers); the dict holds track and inlier counts and the model used."""
    import cv2

    info: dict[str, Any] = {"tracks": 0, "inliers": 0, "model": None}
    p0 = cv2.goodFeaturesToTrack(img0, maxCorners=max_corners, qualityLevel=0.01, minDistance=8,
                                 blockSize=7)
    if p0 is None or len(p0) < min_tracks:
        return None, info
    # Called through Any: OpenCV 4.x and 5.x stubs disagree on this overload (None for nextPts).
    optical_flow: Any = cv2.calcOpticalFlowPyrLK
    p1, st, _ = optical_flow(img0, img1, p0, None, winSize=(21, 21), maxLevel=3)
    pb, stb, _ = optical_flow(img1, img0, p1, None, winSize=(21, 21), maxLevel=3)
    fb = np.linalg.norm((pb - p0).reshape(-1, 2), axis=1)
    good = (st.ravel() == 1) & (stb.ravel() == 1) & (fb < 1.0)
    info["tracks"] = int(good.sum())
    if good.sum() < min_tracks:
        return None, info
    q0, q1 = p0[good].reshape(-1, 1, 2), p1[good].reshape(-1, 1, 2)
    dist = np.zeros(5) if D is None else np.asarray(D, dtype=np.float64)
    n0 = cv2.undistortPoints(q0, K, dist).reshape(-1, 2)
    n1 = cv2.undistortPoints(q1, K, dist).reshape(-1, 2)
    f = float(K[0, 0])
    parallax = float(np.median(np.linalg.norm(n1 - n0, axis=1))) * f
    info["median_flow_px"] = parallax
    E, mask = cv2.findEssentialMat(n0, n1, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=1.0 / f)
    if E is not None and E.shape == (3, 3) and mask is not None and int(mask.sum()) >= min_tracks:
        n_in, R, _, _ = cv2.recoverPose(E, n0, n1, np.eye(3), mask=mask)
        if n_in >= min_tracks:
            info.update(inliers=int(n_in), model="essential")
            return np.asarray(R, dtype=np.float64), info
    H, hmask = cv2.findHomography(n0, n1, cv2.RANSAC, 1.0 / f)
    if H is None or hmask is None or int(hmask.sum()) < min_tracks:
        return None, info
    info.update(inliers=int(hmask.sum()), model="homography")
    Hn = H / np.cbrt(np.linalg.det(H))
    return _nearest_rotation(Hn), info


def camera_rotation_rate(stamps_ns: npt.ArrayLike, frames: Iterable[npt.NDArray[np.uint8]], K: npt.ArrayLike,
                         D: npt.ArrayLike | None = None, *, name: str = "camera_rotation_rate",
                         **kwargs: Any) -> tuple[Signal, list[dict[str, Any]]]:
    """3-axis angular rate of the camera (rad/s, camera optical frame) between consecutive frames,
    stamped at interval midpoints; NaN where a pair could not be registered.  Returns the signal and
    per-pair info (tracks, inliers, model)."""
    st = np.asarray(stamps_ns, dtype=np.int64)
    Km = np.asarray(K, dtype=np.float64)
    Dm = None if D is None else np.asarray(D, dtype=np.float64)
    rates, infos = [], []
    prev = None
    for i, img in enumerate(frames):
        if img.ndim != 2:
            raise CalibrationError(f"camera_rotation_rate: frame {i} must be grayscale (H, W), got {img.shape}")
        if prev is not None:
            R, info = frame_rotation(prev, img, Km, Dm, **kwargs)
            dt = (st[i] - st[i - 1]) / 1e9
            # x1 = R x0: the camera rotated by Rᵀ (R_c0_from_c1 = Rᵀ = exp(ω dt))
            rates.append(np.full(3, np.nan) if R is None else log_so3(R.T) / dt)
            infos.append(info)
        prev = img
    if len(infos) != st.size - 1:
        raise CalibrationError(f"camera_rotation_rate: {st.size} stamps but {len(infos) + 1} frames")
    mid = st[:-1] + np.diff(st) // 2
    return Signal(mid, np.asarray(rates).reshape(-1, 3), name, "rad/s"), infos


def lidar_rotation_rate(stamps_ns: npt.ArrayLike, clouds: Sequence[F64], *, voxel_m: float = 0.3,
                        max_corr_m: float = 1.0, name: str = "lidar_rotation_rate",
                        min_fitness: float = 0.3) -> tuple[Signal, list[dict[str, Any]]]:
    """3-axis angular rate of the LiDAR (rad/s, LiDAR frame) from point-to-plane ICP between
    consecutive scans ((N, 3) float arrays); NaN where ICP fitness is below ``min_fitness``.

    ``stamps_ns`` is one time per scan: for a spinning LiDAR use the middle of the sweep (e.g. the
    mean of the first and last column times), since the registration aligns whole sweeps.  Scans are
    not deskewed: at constant motion both sweeps carry the same distortion and the relative pose is
    still right.  Per pair, the info dict holds ``fitness``, ``rmse`` (m), ``T_prev_from_cur`` (4×4)
    and the voxelised point counts.

    Raises:
        CalibrationError: open3d missing, stamps/clouds counts differ, fewer than two scans, or a
            cloud that is not (N, >=3) finite points.
    """
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CalibrationError(f"lidar_rotation_rate needs open3d (pip install 'edgefuse[calib]'): {exc}") from None
    st = np.asarray(stamps_ns, dtype=np.int64)
    if len(clouds) != st.size:
        raise CalibrationError(f"lidar_rotation_rate: {st.size} stamps but {len(clouds)} clouds")
    if st.size < 2:
        raise CalibrationError(f"lidar_rotation_rate: need at least two scans, got {st.size}")
    for i, c in enumerate(clouds):
        arr = np.asarray(c)
        if arr.ndim != 2 or arr.shape[1] < 3 or arr.shape[0] < 10:
            raise CalibrationError(f"lidar_rotation_rate: scan {i} must be (N >= 10, 3) points, got shape"
                                   f" {arr.shape}")
        if not np.all(np.isfinite(arr[:, :3])):
            raise CalibrationError(f"lidar_rotation_rate: scan {i} has non-finite points; drop them first")

    def pcd(x: F64) -> Any:
        p = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(x, dtype=np.float64)[:, :3]))
        p = p.voxel_down_sample(voxel_m)
        p.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=3 * voxel_m, max_nn=30))
        return p

    reg = o3d.pipelines.registration
    rates, infos = [], []
    prev = pcd(clouds[0])
    for i in range(1, len(clouds)):
        cur = pcd(clouds[i])
        # source = current scan, target = previous: T maps scan i into scan i-1 (T_prev_from_cur)
        res = reg.registration_icp(cur, prev, max_corr_m, np.eye(4),
                                   reg.TransformationEstimationPointToPlane(),
                                   reg.ICPConvergenceCriteria(max_iteration=50))
        dt = (st[i] - st[i - 1]) / 1e9
        ok = res.fitness >= min_fitness
        T = np.asarray(res.transformation, dtype=np.float64)
        rates.append(log_so3(T[:3, :3]) / dt if ok else np.full(3, np.nan))
        infos.append({"fitness": float(res.fitness), "rmse": float(res.inlier_rmse),
                      "T_prev_from_cur": T, "points": (len(prev.points), len(cur.points))})
        prev = cur
    mid = st[:-1] + np.diff(st) // 2
    return Signal(mid, np.asarray(rates).reshape(-1, 3), name, "rad/s"), infos
