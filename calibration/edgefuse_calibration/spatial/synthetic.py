"""Synthetic checkerboard scenes (images rendered through a known camera model, LiDAR points on the
board) for testing the target-based tools.  Everything produced here is SYNTHETIC, not recorded data."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.rig import CameraModel, Transform
from edgefuse_calibration.spatial._common import F64, exp_so3


def render_board(camera: CameraModel, T_cam_from_board: Transform, pattern: tuple[int, int], square_m: float,
                 *, noise_std: float = 2.0, rng: np.random.Generator | None = None,
                 supersample: int = 2) -> npt.NDArray[np.uint8]:
    """Grey image (H, W) uint8 of a checkerboard with ``pattern = (cols, rows)`` inner corners, squares of
    ``square_m``, a white margin of one square, on a mid-grey background, seen through ``camera`` (all
    models, via :meth:`CameraModel.unproject`).  The board's inner corner 0 is the board-frame origin,
    x along cols, y along rows, z into the board (OpenCV convention)."""
    cols, rows = pattern

    def shade(X: F64, Y: F64) -> F64:
        i = np.floor(X / square_m)
        j = np.floor(Y / square_m)
        on_board = (i >= -2) & (i <= cols) & (j >= -2) & (j <= rows)
        inner = on_board & (i >= -1) & (i <= cols - 1) & (j >= -1) & (j <= rows - 1)
        val = np.full(X.shape, 128.0)
        val[on_board] = 255.0
        val[inner & (((i + j).astype(np.int64) % 2) == 0)] = 20.0
        return val

    return _render_plane(camera, T_cam_from_board, shade, noise_std=noise_std, rng=rng, supersample=supersample)


def render_texture(camera: CameraModel, T_cam_from_board: Transform, texture: npt.ArrayLike, metres_per_px: float,
                   *, noise_std: float = 2.0, rng: np.random.Generator | None = None,
                   supersample: int = 2) -> npt.NDArray[np.uint8]:
    """Grey image (H, W) uint8 of a planar ``texture`` (grey, e.g. ``cv2.aruco.CharucoBoard.generateImage``)
    lying on the board plane z = 0 with its top-left corner at the board origin, x along the texture's
    columns, y along its rows, ``metres_per_px`` per texture pixel; mid-grey elsewhere."""
    tex = np.asarray(texture, np.float64)
    th, tw = tex.shape[:2]

    def shade(X: F64, Y: F64) -> F64:
        c = np.floor(X / metres_per_px).astype(np.int64)
        r = np.floor(Y / metres_per_px).astype(np.int64)
        inside = (c >= 0) & (c < tw) & (r >= 0) & (r < th)
        val = np.full(X.shape, 128.0)
        val[inside] = tex[r[inside], c[inside]]
        return val

    return _render_plane(camera, T_cam_from_board, shade, noise_std=noise_std, rng=rng, supersample=supersample)


def _render_plane(camera: CameraModel, T_cam_from_board: Transform, shade: Any, *, noise_std: float,
                  rng: np.random.Generator | None, supersample: int) -> npt.NDArray[np.uint8]:
    """Ray-cast every (supersampled) pixel onto the board plane z = 0 and average ``shade(X, Y)``
    (board-frame metres → grey level; pixels whose ray misses the plane are mid-grey)."""
    h, w = camera.height, camera.width
    s = supersample
    off = (np.arange(s) + 0.5) / s - 0.5
    acc = np.zeros((h, w), np.float64)
    uu, vv = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    T_board_from_cam = T_cam_from_board.inverse()
    for du in off:
        for dv in off:
            uv = np.stack([(uu + du).ravel(), (vv + dv).ravel()], axis=1)
            rays, ok = camera.unproject(uv)
            rays = np.where(ok[:, None], rays, 0.0)
            o = T_board_from_cam.t
            d = rays @ T_board_from_cam.R.T
            with np.errstate(divide="ignore", invalid="ignore"):
                lam = -o[2] / d[:, 2]
            hit = ok & np.isfinite(lam) & (lam > 0)
            X = np.where(hit, o[0] + lam * d[:, 0], np.inf)
            Y = np.where(hit, o[1] + lam * d[:, 1], np.inf)
            val = np.full(X.shape, 128.0)
            val[hit] = shade(X[hit], Y[hit])
            acc += val.reshape(h, w)
    img = acc / (s * s)
    if noise_std > 0:
        g = rng if rng is not None else np.random.default_rng(0)
        img = img + g.normal(0.0, noise_std, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def board_points(T_frame_from_board: Transform, pattern: tuple[int, int], square_m: float, *,
                 spacing_m: float = 0.02, noise_std_m: float = 0.005,
                 rng: np.random.Generator | None = None) -> F64:
    """(N, 3) points covering the board (with its margin) expressed in another frame (e.g. a LiDAR),
    with Gaussian range-like noise along the board normal."""
    cols, rows = pattern
    g = rng if rng is not None else np.random.default_rng(0)
    xs = np.arange(-2 * square_m, (cols + 1) * square_m, spacing_m)
    ys = np.arange(-2 * square_m, (rows + 1) * square_m, spacing_m)
    X, Y = np.meshgrid(xs, ys)
    pts = np.stack([X.ravel(), Y.ravel(), g.normal(0, noise_std_m, X.size)], axis=1)
    return T_frame_from_board.apply(pts)


def random_board_pose(rng: np.random.Generator, pattern: tuple[int, int], square_m: float, *,
                      distance_m: tuple[float, float] = (1.5, 3.0), max_tilt_deg: float = 35.0,
                      lateral_m: float = 0.3) -> Transform:
    """A ``T_cam_from_board`` facing the camera: board centre at a random distance ahead, tilted up to
    ``max_tilt_deg`` about a random in-plane axis."""
    cols, rows = pattern
    centre = np.array([(cols - 1) * square_m / 2, (rows - 1) * square_m / 2, 0.0])
    a = rng.normal(size=2)
    a = a / np.linalg.norm(a) * np.deg2rad(rng.uniform(10.0, max_tilt_deg))
    R = exp_so3([a[0], a[1], rng.uniform(-0.2, 0.2)])
    z = rng.uniform(*distance_m)
    pos = np.array([rng.uniform(-lateral_m, lateral_m), rng.uniform(-lateral_m, lateral_m) * 0.5, z])
    return Transform.from_rt(R, pos - R @ centre)
