"""Slow, obviously-correct references for the projection kernels (OpenCV + Python loops).

Same conventions as :mod:`edgefuse.fusion.projection`: pixel centres at integer coordinates, the
integer pixel is ``floor(uv_float32 + 0.5)``, inside means ``-0.5 <= u < width - 0.5`` (same for v),
depth is camera z, nearest depth wins a pixel and ties go to the lowest point index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.fusion import EQUIDISTANT, PINHOLE

F64 = npt.NDArray[np.float64]

DATA = Path(__file__).resolve().parents[1] / "data"
KITTI = DATA / "kitti_object_3frames" / "training"


@dataclass
class Reference:
    """What the reference computes for one cloud."""

    uv: npt.NDArray[np.float32]  # (N, 2), NaN where invalid
    valid: npt.NDArray[np.bool_]  # (N,)
    depth: npt.NDArray[np.float32]  # (H, W)
    index: npt.NDArray[np.int32]  # (H, W)


def opencv_project(points_cam: F64, model: int, K: F64, D: F64) -> F64:
    """(N, 2) float64 pixel coordinates of camera-frame points from OpenCV (no validity applied)."""
    pts = np.ascontiguousarray(points_cam, dtype=np.float64).reshape(-1, 1, 3)
    if pts.shape[0] == 0:
        return np.zeros((0, 2))
    zero = np.zeros(3)
    if model == EQUIDISTANT:
        K_noskew = K.copy()
        K_noskew[0, 1] = 0.0
        alpha = K[0, 1] / K[0, 0]
        uv, _ = cv2.fisheye.projectPoints(pts, zero, zero, K_noskew, D[:4].copy(), alpha=alpha)
    else:
        assert K[0, 1] == 0.0, "cv2.projectPoints ignores skew; use skew only with EQUIDISTANT here"
        dist = np.zeros(0) if model == PINHOLE else D.copy()
        uv, _ = cv2.projectPoints(pts, zero, zero, K, dist)
    out: F64 = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    return out


def reference_projection(  # noqa: PLR0917
    xyz: npt.NDArray[Any],
    model: int,
    K: F64,
    D: F64,
    width: int,
    height: int,
    T_cam_from_lidar: F64,
    min_depth_m: float = 0.1,
    max_depth_m: float = 200.0,
    max_radius: float = np.inf,
) -> Reference:
    """Project with OpenCV and build the z-buffer one point at a time.

    Points whose undistorted normalised radius ``hypot(x / z, y / z)`` exceeds ``max_radius`` are
    invalid (the projector's valid radius; give one computed independently of it).
    """
    xyz64 = np.asarray(xyz, dtype=np.float64)
    n = xyz64.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):
        cam = xyz64 @ T_cam_from_lidar[:3, :3].T + T_cam_from_lidar[:3, 3]
    uv_out = np.full((n, 2), np.nan, dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    depth = np.zeros((height, width), dtype=np.float32)
    index = np.full((height, width), -1, dtype=np.int32)
    best = np.full((height, width), np.inf)
    finite = np.all(np.isfinite(xyz64), axis=1)
    in_range = finite & (cam[:, 2] >= min_depth_m) & (cam[:, 2] <= max_depth_m)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        radius = np.hypot(cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2])
    candidates = np.flatnonzero(in_range & (radius <= max_radius))
    uv64 = opencv_project(cam[candidates], model, K, D)
    for k, i in enumerate(candidates):
        with np.errstate(over="ignore", invalid="ignore"):
            u32, v32 = np.float32(uv64[k, 0]), np.float32(uv64[k, 1])
        u, v = float(u32), float(v32)
        if not (-0.5 <= u < width - 0.5 and -0.5 <= v < height - 0.5):
            continue
        col, row = math.floor(u + 0.5), math.floor(v + 0.5)
        valid[i] = True
        uv_out[i] = (u32, v32)
        z = cam[i, 2]
        if z < best[row, col]:  # points visited in index order: ties keep the lower index
            best[row, col] = z
            index[row, col] = i
            depth[row, col] = np.float32(z)
    return Reference(uv_out, valid, depth, index)


def reference_colors(
    image: npt.NDArray[np.uint8], uv: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_], bilinear: bool
) -> npt.NDArray[np.uint8]:
    """Per-point colours, one point at a time (nearest pixel or bilinear with clamped edges)."""
    h, w = image.shape[:2]
    out = np.zeros((uv.shape[0], 3), dtype=np.uint8)
    for i in range(uv.shape[0]):
        if not valid[i]:
            continue
        u, v = float(uv[i, 0]), float(uv[i, 1])
        if not bilinear:
            out[i] = image[math.floor(v + 0.5), math.floor(u + 0.5)]
            continue
        fu, fv = math.floor(u), math.floor(v)
        au, av = u - fu, v - fv

        def px(r: int, c: int) -> F64:
            value: F64 = image[min(max(r, 0), h - 1), min(max(c, 0), w - 1)].astype(np.float64)
            return value

        top = (1.0 - au) * px(fv, fu) + au * px(fv, fu + 1)
        bottom = (1.0 - au) * px(fv + 1, fu) + au * px(fv + 1, fu + 1)
        value = (1.0 - av) * top + av * bottom
        out[i] = np.clip(np.floor(value + 0.5), 0, 255).astype(np.uint8)
    return out


def load_kitti(frame: str = "000000") -> tuple[npt.NDArray[np.float32], F64, F64, npt.NDArray[np.uint8]]:
    """KITTI object frame: (N, 3) float32 Velodyne points, K (3, 3), T_cam2_from_velo (4, 4), BGR image.

    ``P2 = K [I | b]`` with the stereo baseline ``b = K^-1 P2[:, 3]`` folded into the transform:
    ``T = [I | b] · R0_rect · Tr_velo_to_cam``.
    """
    calib: dict[str, F64] = {}
    for line in (KITTI / "calib" / f"{frame}.txt").read_text().splitlines():
        if ":" in line:
            key, values = line.split(":", 1)
            calib[key] = np.array(values.split(), dtype=np.float64)
    P2 = calib["P2"].reshape(3, 4)
    K = P2[:, :3].copy()
    R0 = np.eye(4)
    R0[:3, :3] = calib["R0_rect"].reshape(3, 3)
    Tv = np.eye(4)
    Tv[:3] = calib["Tr_velo_to_cam"].reshape(3, 4)
    B = np.eye(4)
    B[:3, 3] = np.linalg.solve(K, P2[:, 3])
    points = np.fromfile(KITTI / "velodyne" / f"{frame}.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    image = cv2.imread(str(KITTI / "image_2" / f"{frame}.png"), cv2.IMREAD_COLOR)
    assert image is not None
    T: F64 = B @ R0 @ Tv
    return np.ascontiguousarray(points), K, T, np.asarray(image, dtype=np.uint8)
