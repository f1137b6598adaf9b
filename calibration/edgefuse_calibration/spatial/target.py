"""Target-based LiDAR→camera extrinsics from checkerboard planes.

Per pose *i*: the board's plane in the camera frame ``n_c·q = d_c`` comes from PnP on the detected
corners (:func:`board_plane_from_image`), and the board's plane in the LiDAR frame from a RANSAC plane
fit to the points in a region around the board (:func:`fit_plane_ransac`).  With
``q = R·p + t`` the LiDAR plane is ``(Rᵀn_c)·p = d_c − n_c·t``, so

- ``R`` is the Kabsch rotation taking the LiDAR normals onto the camera normals (≥ 3 poses whose
  normals span 3-D), and
- ``t`` solves ``n_c,i·t = d_c,i − d_l,i`` in least squares;

then all board points are refined jointly (Gauss-Newton on point-to-plane distances
``n_c,i·(R·p_ij + t) − d_c,i``).  Degenerate sets (fewer than 3 poses, normals nearly coplanar) are
refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform
from edgefuse_calibration.spatial._common import F64, OK, REFUSED, SpatialResult, exp_so3, kabsch


@dataclass(frozen=True)
class Plane:
    """``normal·x = offset`` with a unit ``normal`` (pointing towards the sensor origin's side is not
    enforced here; :func:`_toward_origin` fixes the sign)."""

    normal: F64
    offset: float


def _toward_origin(n: F64, d: float) -> tuple[F64, float]:
    # orient so that the sensor origin is on the negative side: n·0 - d < 0  <=>  d > 0
    return (n, d) if d > 0 else (-n, -d)


def board_object_points(pattern: tuple[int, int], square_m: float) -> F64:
    """(cols·rows, 3) inner-corner coordinates on the board plane z = 0, in metres (OpenCV order)."""
    cols, rows = pattern
    g = np.zeros((rows * cols, 3), np.float64)
    g[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square_m
    return g


def detect_corners(image: npt.ArrayLike, pattern: tuple[int, int], *, window: int = 5) -> F64 | None:
    """Sub-pixel inner corners (N, 2) of a ``pattern = (cols, rows)`` checkerboard, or None when no
    board is found.  ``window`` is the half-size of the ``cv2.cornerSubPix`` search window."""
    im = np.asarray(image)
    gray = im if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    ok, corners = cv2.findChessboardCorners(gray, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH
                                            | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not ok or corners is None:
        return None
    corners = cv2.cornerSubPix(gray, corners, (window, window), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4))
    return np.asarray(corners, np.float64).reshape(-1, 2)


def _cv_dist(camera: CameraModel) -> F64:
    return camera.D if camera.model != "pinhole" else np.zeros(5)


def board_plane_from_image(image: npt.ArrayLike, camera: CameraModel, pattern: tuple[int, int],
                           square_m: float) -> tuple[Plane, Transform] | None:
    """Board plane in the camera frame and ``T_cam_from_board`` from PnP, or None if no board is found."""
    uv = detect_corners(image, pattern)
    if uv is None:
        return None
    obj = board_object_points(pattern, square_m)
    if camera.model == "equidistant":
        und = cv2.fisheye.undistortPoints(uv.reshape(-1, 1, 2), camera.K, camera.D).reshape(-1, 2)
        ok, rvec, tvec = cv2.solvePnP(obj, und, np.eye(3), None, flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        ok, rvec, tvec = cv2.solvePnP(obj, uv, camera.K, _cv_dist(camera), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    R, _ = cv2.Rodrigues(rvec)
    T = Transform.from_rt(R, tvec.reshape(3))
    n: F64 = np.asarray(R[:, 2], np.float64).copy()
    d = float(n @ T.t)
    n, d = _toward_origin(n, d)
    return Plane(n, d), T


def fit_plane_ransac(points: npt.ArrayLike, *, threshold_m: float = 0.02, iterations: int = 500,
                     min_inliers: int = 50, seed: int = 0) -> tuple[Plane, npt.NDArray[np.bool_]] | None:
    """RANSAC plane through (N, 3) points (non-finite rows ignored), refined by least squares on the
    inliers.  Returns ``(plane, inlier mask over the input)`` or None when fewer than ``min_inliers``
    points support any plane."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise CalibrationError(f"points must have shape (N, 3), got {p.shape}")
    finite = np.isfinite(p).all(axis=1)
    idx = np.nonzero(finite)[0]
    if idx.size < max(3, min_inliers):
        return None
    q = p[idx]
    rng = np.random.default_rng(seed)
    best: npt.NDArray[np.bool_] | None = None
    best_n = 0
    for _ in range(iterations):
        a, b, c = q[rng.choice(len(q), 3, replace=False)]
        n = np.cross(b - a, c - a)
        nn = np.linalg.norm(n)
        if nn < 1e-9:
            continue
        n /= nn
        inl = np.abs((q - a) @ n) < threshold_m
        k = int(inl.sum())
        if k > best_n:
            best, best_n = inl, k
    if best is None or best_n < min_inliers:
        return None
    c = q[best].mean(axis=0)
    _, _, Vt = np.linalg.svd(q[best] - c)
    n = Vt[-1]
    d = float(n @ c)
    inl = np.abs(q @ n - d) < threshold_m
    n, d = _toward_origin(n, d)
    mask = np.zeros(len(p), dtype=bool)
    mask[idx[inl]] = True
    return Plane(n, d), mask


@dataclass
class BoardObservation:
    """One board pose: its plane in the camera (from PnP) and its LiDAR points (plane inliers)."""

    camera_plane: Plane
    lidar_plane: Plane
    lidar_points: F64


def solve_plane_to_plane(observations: Sequence[BoardObservation], *, camera_frame: str = "camera",
                         lidar_frame: str = "lidar", min_poses: int = 3,
                         min_normal_spread: float = 0.05, iterations: int = 20) -> SpatialResult:
    """``T_cam_from_lidar`` from ≥ 3 board poses (see module docstring).

    Refused when fewer than ``min_poses`` poses are given or when the smallest singular value of the
    stacked camera normals (divided by sqrt(#poses)) is below ``min_normal_spread`` (normals nearly
    coplanar or parallel: rotation about their common axis / translation along it unobservable).
    ``metrics``: per-pose RMS point-to-plane residual (m), overall RMS, normal spread, angle residuals.
    """
    res = SpatialResult("lidar_camera_target", REFUSED, camera_frame, lidar_frame)
    m = len(observations)
    res.metrics["n_poses"] = m
    if m < min_poses:
        res.reasons.append(f"{m} board poses (need at least {min_poses})")
        return res
    Nc = np.array([o.camera_plane.normal for o in observations])
    Nl = np.array([o.lidar_plane.normal for o in observations])
    sv = np.linalg.svd(Nc, compute_uv=False) / np.sqrt(m)
    res.metrics["normal_singular_values"] = sv.tolist()
    if sv[-1] < min_normal_spread:
        res.reasons.append(f"degenerate geometry: board normals span too little of 3-D (smallest singular"
                           f" value {sv[-1]:.4f} < {min_normal_spread}); tilt the board differently")
        return res
    R = kabsch(Nl, Nc)
    dc = np.array([o.camera_plane.offset for o in observations])
    dl = np.array([o.lidar_plane.offset for o in observations])
    t, *_ = np.linalg.lstsq(Nc, dc - dl, rcond=None)
    # joint Gauss-Newton on all board points: r = n_c·(R p + t) − d_c
    P = [np.asarray(o.lidar_points, dtype=np.float64) for o in observations]
    for _ in range(iterations):
        J_rows = []
        r_rows = []
        for o, p in zip(observations, P, strict=True):
            n = o.camera_plane.normal
            q = p @ R.T + t
            r_rows.append(q @ n - o.camera_plane.offset)
            # d/dw of n·(exp(w)R p) at w=0 = n·(w × Rp) = (Rp × n)·w
            J_rows.append(np.hstack([np.cross(p @ R.T, n), np.tile(n, (len(p), 1))]))
        J = np.vstack(J_rows)
        r = np.concatenate(r_rows)
        dx, *_ = np.linalg.lstsq(J, -r, rcond=None)
        R = exp_so3(dx[:3]) @ R
        t = exp_so3(dx[:3]) @ t + dx[3:]
        if np.linalg.norm(dx) < 1e-10:
            break
    T = Transform.from_rt(R, t, normalize=True)
    per_pose = [float(np.sqrt(np.mean(((p @ R.T + t) @ o.camera_plane.normal - o.camera_plane.offset) ** 2)))
                for o, p in zip(observations, P, strict=True)]
    ang = [float(np.degrees(np.arccos(np.clip((R @ o.lidar_plane.normal) @ o.camera_plane.normal, -1, 1))))
           for o in observations]
    allr = np.concatenate([(p @ R.T + t) @ o.camera_plane.normal - o.camera_plane.offset
                           for o, p in zip(observations, P, strict=True)])
    # covariance of the 6 parameters from the final Jacobian (point noise estimated from residuals)
    dof = max(1, len(allr) - 6)
    s2 = float(allr @ allr / dof)
    try:
        cov = np.linalg.inv(J.T @ J) * s2
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        sd = np.full(6, np.inf)
    res.metrics.update(rms_point_to_plane_m=float(np.sqrt(np.mean(allr**2))), per_pose_rms_m=per_pose,
                       normal_angle_residual_deg=ang, rot_std_deg=float(np.degrees(np.linalg.norm(sd[:3]))),
                       trans_std_m=float(np.linalg.norm(sd[3:])))
    res.T = T
    res.verdict = OK
    return res


def observation_from(image: npt.ArrayLike, xyz: npt.ArrayLike, camera: CameraModel, pattern: tuple[int, int],
                     square_m: float, *, region: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
                     plane_threshold_m: float = 0.02, seed: int = 0) -> tuple[BoardObservation | None, str]:
    """Build one :class:`BoardObservation` (or None and the reason): corners in ``image`` → camera plane;
    LiDAR points inside the axis-aligned ``region = (min_xyz, max_xyz)`` (LiDAR frame; default all) →
    RANSAC plane."""
    cam = board_plane_from_image(image, camera, pattern, square_m)
    if cam is None:
        return None, "no checkerboard found in the image"
    p = np.asarray(xyz, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise CalibrationError(f"LiDAR points must have shape (N, 3), got {p.shape}")
    if region is not None:
        lo, hi = (np.asarray(v, dtype=np.float64) for v in region)
        with np.errstate(invalid="ignore"):
            p = p[np.all((p >= lo) & (p <= hi), axis=1)]
    fit = fit_plane_ransac(p, threshold_m=plane_threshold_m, seed=seed)
    if fit is None:
        return None, f"no plane with enough LiDAR points in the region ({len(p)} points)"
    plane, mask = fit
    return BoardObservation(cam[0], plane, p[mask]), ""
