"""Targetless LiDAR→camera extrinsic refinement by edge alignment.

Method (after Levinson & Thrun, "Automatic online calibration of cameras and lasers", RSS 2013; the
code is our own):

- **LiDAR edges** (:func:`lidar_edge_points`): along each scan line, a point whose range is shorter
  than a neighbour's by more than ``min_jump_m`` lies on the near side of a depth discontinuity; its
  weight is ``sqrt(jump)`` (jump capped at 10 m).  Scan lines come from a ``ring`` field when there is
  one, otherwise from storage order (a new line starts where the azimuth wraps round, as in
  KITTI/Velodyne sweeps: :func:`scan_lines`).  Points in *cluttered* stretches of a scan line
  (vegetation: more than ``max_discontinuities`` relative range jumps within ±``clean_window``
  neighbours) are dropped: their "edges" have no stable image counterpart and made the cost of the
  first version of this tool prefer wrong poses.
- **Image edges** (:func:`image_edge_map`): ``E`` = largest absolute grey difference to the 8
  neighbours (of the lightly blurred image), scaled to [0, 1]; the map is Levinson's inverse distance
  transform ``D = α·E + (1 − α)·max_q E(q)·γ^{‖p − q‖∞}``.  ``γ`` close to 1 gives a wide, smooth basin,
  smaller ``γ`` a sharp optimum: the search goes coarse to fine over ``options.gammas``.
- **Cost**: ``J(T) = mean_frames Σ_i w_i·D(π(T·p_i)) / Σ_i w_i`` (higher is better, in [0, 1]): every
  frame weighs the same (``frame_weighting="equal"``; ``"points"``: one mean over all edges of all frames,
  which lets a cluttered frame outvote the others); the edge set is fixed at the initial guess (points in
  view, with a margin), so the denominators never change.  Optional, measured in
  bench/bench_targetless_landscape.py: a z-buffer occlusion mask (``occlusion_deg``, :func:`occlusion_mask`),
  edges that must separate two smooth surfaces (``edge_min_run``), image edges crossing the scan lines only
  (``edge_map="nms_across"``), decay per degree rather than per pixel (``gamma_focal_px``), 6-D random
  starts (``random_starts``) and Nelder-Mead restarts (``nm_restarts``).
- **Search**: ``T = exp(δr)·(I, δt)·T₀`` (perturbation in the camera frame).  Nelder-Mead, in units of
  1° and 10 cm, inside a trust region (``max_rot_deg``, ``max_trans_m``) around the guess.  Starts
  (``search``): in a *far* scene (weighted median edge depth above ``near_scene_m`` = 8 m: streets) a
  rotation grid, and the descents move rotation only at the coarse levels (a translation error of
  decimetres moves far points by a few pixels only, so it would just absorb rotation error), then all six
  parameters; in a *near* scene (a lab 3 m away, where 20 cm of translation moves points by ~4°, so a
  rotation-only start locks in a compensating rotation) ``search_samples`` scrambled Sobol samples (seeded)
  of all six parameters in ±``search_box`` are scored at ``grid_level``, the ``search_starts`` best that
  lie ``search_min_separation`` apart are descended in 6-D through the finer levels, rotating about the
  edge points' centroid (``pivot="centroid"``: that keeps rotation and translation apart in a near scene).
  The winner is the best finest-level score.
- **Verdict** (:class:`edgefuse_calibration.spatial.SpatialResult`):
  ``refused`` when too few LiDAR edges or too little image texture is in view; ``no_improvement`` (the
  guess is kept) when the refined score does not beat the guess's at the finest level; ``refused``
  when the score is flat around the optimum (relative curvature below ``min_rot_curvature`` along some
  rotation axis), or when the descents from ``n_starts`` seeded starts that reach an equally good score
  (within ``tie_tolerance``) disagree by more than ``max_rot_spread_deg`` / ``max_trans_spread_m``
  (several optima: the data cannot tell).  Only ``ok`` results are ever written to a rig.
- **Translation**: along axes where the curvature says the score does not determine the translation
  (typically the camera's optical axis), the guess's translation component is kept
  (``metrics["translation_axes_kept"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform
from edgefuse_calibration.spatial._common import (
    F64,
    NO_IMPROVEMENT,
    OK,
    REFUSED,
    SpatialResult,
    exp_so3,
    pose_error,
)

#: search units: x_unit = [1°, 1°, 1°, 10 cm, 10 cm, 10 cm]
_UNIT = np.r_[np.deg2rad([1.0, 1.0, 1.0]), 0.1, 0.1, 0.1]


# -- inputs -----------------------------------------------------------------------------------------
@dataclass
class LidarCameraFrame:
    """One synchronised LiDAR sweep and camera image.

    ``xyz`` (N, 3) points in the LiDAR frame (m), in scan order; ``image`` (H, W) or (H, W, 3) uint8
    BGR, the size of the camera model; ``ring`` optional (N,) scan-line index; ``camera`` a per-frame
    camera model (e.g. KITTI frames differ in size; default: the one passed to the refinement).
    """

    xyz: npt.NDArray[Any]
    image: npt.NDArray[Any]
    ring: npt.NDArray[Any] | None = None
    camera: CameraModel | None = None


def scan_lines(xyz: npt.ArrayLike, ring: npt.ArrayLike | None = None) -> npt.NDArray[np.int64]:
    """(N,) scan-line index per point: ``ring`` when given, otherwise counted from storage order, a new
    line starting wherever the azimuth wraps round (jumps by more than 180° against the sweep
    direction), which is how KITTI and other Velodyne dumps are ordered."""
    p = np.asarray(xyz, dtype=np.float64)
    if ring is not None:
        r = np.asarray(ring)
        if r.shape != (len(p),):
            raise CalibrationError(f"ring must have shape ({len(p)},), got {r.shape}")
        return r.astype(np.int64)
    if len(p) < 2:
        return np.zeros(len(p), dtype=np.int64)
    az = np.arctan2(p[:, 1], p[:, 0])
    d = np.diff(az)
    d = d[np.isfinite(d)]
    small = d[np.abs(d) < np.pi]
    direction = 1.0 if small.size == 0 or np.median(small) >= 0 else -1.0
    dd = np.diff(az) * direction
    wrap = np.nan_to_num(dd, nan=0.0) < -np.pi
    out: npt.NDArray[np.int64] = np.r_[0, np.cumsum(wrap)].astype(np.int64)
    return out


def lidar_edge_points(
    xyz: npt.ArrayLike, ring: npt.ArrayLike | None = None, *, min_jump_m: float = 0.3,
    min_range_m: float = 1.0, max_azimuth_gap_deg: float = 0.6, clean_window: int = 3,
    max_discontinuities: int = 2, relative_jump: float = 0.03, min_run: int = 0,
) -> tuple[F64, F64]:
    """Points on the near side of depth discontinuities: ``(points (M, 3) f64, weights (M,) f64)``.

    Neighbours along a scan line (:func:`scan_lines`) more than ``max_azimuth_gap_deg`` apart are not
    linked.  With ``clean_window > 0``, points having more than ``max_discontinuities`` range jumps of
    more than ``relative_jump`` (relative) within ±``clean_window`` neighbours are dropped (clutter).
    With ``min_run > 0`` an edge must separate two *surfaces*: the ``min_run`` points on its near side
    (the edge point included) and the ``min_run`` points on its far side must each form a smooth run
    (successive relative range changes within ``relative_jump``), which drops foliage and the sparse
    returns of thin clutter (their "edges" have no image counterpart).
    Non-finite points and points closer than ``min_range_m`` are never edges.  Raises
    :class:`CalibrationError` for a cloud that is not (N, 3).
    """
    p = np.asarray(xyz, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise CalibrationError(f"LiDAR points must have shape (N, 3), got {p.shape}")
    if len(p) < 3:
        return np.zeros((0, 3)), np.zeros(0)
    lines = scan_lines(p, ring)
    if ring is not None:  # storage order need not follow the scan lines: sort by line, then azimuth
        order = np.lexsort((np.arctan2(p[:, 1], p[:, 0]), lines))
        p, lines = p[order], lines[order]
    with np.errstate(invalid="ignore"):
        r = np.linalg.norm(p, axis=1)
        ok = np.isfinite(p).all(axis=1) & (r >= min_range_m)
        r = np.where(ok, r, 0.0)
        az = np.arctan2(p[:, 1], p[:, 0])
        daz = np.abs(np.angle(np.exp(1j * np.nan_to_num(az[1:] - az[:-1]))))
    link = (lines[1:] == lines[:-1]) & ok[1:] & ok[:-1] & (daz <= np.deg2rad(max_azimuth_gap_deg))
    jump = np.zeros(len(p))
    jump[:-1] = np.maximum(jump[:-1], np.where(link, r[1:] - r[:-1], 0.0))  # next is farther
    jump[1:] = np.maximum(jump[1:], np.where(link, r[:-1] - r[1:], 0.0))    # previous is farther
    sel = ok & (jump >= min_jump_m)
    if min_run > 1:
        with np.errstate(invalid="ignore"):
            smooth = link & (np.abs(r[1:] - r[:-1]) <= relative_jump * np.maximum(r[1:], r[:-1]))
        n = len(p)
        # back[i]: the min_run-1 links ending at i are smooth; fwd[i]: the min_run-1 links starting at i are
        back = np.ones(n, dtype=bool)
        fwd = np.ones(n, dtype=bool)
        for m in range(1, min_run):
            b = np.zeros(n, dtype=bool)
            b[m:] = smooth[: n - m]          # link (i-m, i-m+1)
            back &= b
            f = np.zeros(n, dtype=bool)
            f[: n - m] = smooth[m - 1:]      # link (i+m-1, i+m)
            fwd &= f
        to_next = np.zeros(n, dtype=bool)   # next point is farther: near side = backwards, far side = i+1 forwards
        to_next[:-1] = link & (r[1:] - r[:-1] >= min_jump_m) & back[:-1] & fwd[1:]
        to_prev = np.zeros(n, dtype=bool)   # previous point is farther
        to_prev[1:] = link & (r[:-1] - r[1:] >= min_jump_m) & fwd[1:] & back[:-1]
        sel &= to_next | to_prev
    if clean_window > 0:
        rel = np.zeros(len(p))
        big = np.where(link, np.abs(r[1:] - r[:-1]) > relative_jump * np.maximum(r[1:], r[:-1]), False)
        rel[:-1] = big
        count = np.convolve(rel, np.ones(2 * clean_window + 1), mode="same")
        sel &= count <= max_discontinuities
    return p[sel], np.sqrt(np.minimum(jump[sel], 10.0))


def image_edge_map(image: npt.ArrayLike, gamma: float, *, alpha: float = 1.0 / 3.0, blur_px: float = 1.0,
                   floor: float = 0.01, kind: str = "maxdiff",
                   canny_thresholds: tuple[float, float] = (30.0, 90.0)) -> tuple[npt.NDArray[np.float32], float]:
    """Levinson's inverse-distance-transformed edge map at decay ``gamma`` (per pixel, Chebyshev
    distance): ``(D (H, W) float32 in [0, 1], fraction of pixels with E > 0.2)``.  The spreading stops
    where ``gamma^d < floor``.

    ``kind``: ``"maxdiff"`` — ``E`` = largest grey difference to the 8 neighbours (every pixel of a
    gradient ramp is an "edge", so blurred or wide edges pull the optimum towards their brighter side);
    ``"nms"`` — ``E`` = Sobel gradient magnitude kept only on one-pixel-wide edge lines (Canny's
    non-maximum suppression and hysteresis, ``canny_thresholds`` on the blurred grey image), scaled by the
    95th percentile of the kept magnitudes and capped at 1; ``"nms_across"`` — the same lines weighted by
    the horizontal gradient ``|∂g/∂x|`` only: depth discontinuities found along (near-horizontal) scan
    lines are edges that *cross* the scan line, so horizontal image edges (lane markings at a shallow
    angle, guard rails, roof lines, the horizon) cannot match them and only lure a wrong pitch or roll.
    On KITTI the ``"nms"`` map moves the
    optimum of the score closer to the published calibration (bench/bench_extrinsics.py)."""
    if kind not in ("maxdiff", "nms", "nms_across"):
        raise CalibrationError(f"image edge map kind must be 'maxdiff', 'nms' or 'nms_across', got {kind!r}")
    im = np.asarray(image)
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    if im.dtype != np.uint8:
        raise CalibrationError(f"images must be uint8, got {im.dtype}")
    if not 0.0 < gamma < 1.0:
        raise CalibrationError(f"gamma must lie in (0, 1), got {gamma}")
    g = im.astype(np.float32)
    if blur_px > 0:
        g = np.asarray(cv2.GaussianBlur(g, (0, 0), blur_px), dtype=np.float32)
    k = np.ones((3, 3), np.uint8)
    if kind in ("nms", "nms_across"):
        lines = cv2.Canny(np.clip(np.rint(g), 0, 255).astype(np.uint8), *canny_thresholds) > 0
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
        # "nms_across": only the gradient's component along the image rows, |gx| -- the part of an edge that
        # crosses a (roughly horizontal) LiDAR scan line, the only edges a scan-line discontinuity can match
        mag = np.abs(gx) if kind == "nms_across" else np.hypot(gx, cv2.Sobel(g, cv2.CV_32F, 0, 1))
        E = np.where(lines, mag, np.float32(0.0)).astype(np.float32)
        top = float(np.percentile(E[lines], 95.0)) if lines.any() else 0.0
        if not top > 0:
            return np.zeros_like(E), 0.0
        E = np.minimum(E / np.float32(top), np.float32(1.0))
    else:
        # largest absolute difference to the 8 neighbours = max(dilate(g) - g, g - erode(g))
        E = np.maximum(cv2.dilate(g, k) - g, g - cv2.erode(g, k))
        top = float(E.max())
        if not top > 0:
            return np.zeros_like(E), 0.0
        E /= top
    frac = float(np.count_nonzero(E > 0.2) / E.size)
    M = E.copy()
    cur = E
    for _ in range(int(np.ceil(np.log(floor) / np.log(gamma)))):
        cur = cv2.dilate(cur, k) * np.float32(gamma)
        np.maximum(M, cur, out=M)
    return (alpha * E + (1.0 - alpha) * M).astype(np.float32), frac


# -- cost -------------------------------------------------------------------------------------------
@dataclass
class _FrameData:
    pts: F64          # (M, 3) LiDAR edge points that project near the image at the initial guess
    w: F64            # (M,)
    maps: dict[int, npt.NDArray[np.float32]]  # level (index into options.gammas) -> edge map
    texture: float    # fraction of pixels with a strong gradient
    camera: CameraModel


def _bilinear(img: npt.NDArray[np.float32], uv: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Bilinear samples at the points strictly inside the image, and the inside mask."""
    h, w = img.shape
    with np.errstate(invalid="ignore"):
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
    u = uv[inside, 0]
    v = uv[inside, 1]
    u0 = u.astype(np.int64)
    v0 = v.astype(np.int64)
    a = u - u0
    b = v - v0
    s = (1 - b) * ((1 - a) * img[v0, u0] + a * img[v0, u0 + 1]) + b * ((1 - a) * img[v0 + 1, u0]
                                                                      + a * img[v0 + 1, u0 + 1])
    return s.astype(np.float64), inside


def occlusion_mask(xyz: npt.ArrayLike, edge_pts: npt.ArrayLike, camera: CameraModel, T: Transform, *,
                   radius_deg: float = 0.5, rel_depth: float = 0.05, abs_depth_m: float = 0.3) -> npt.NDArray[np.bool_]:
    """(M,) True for the LiDAR edge points the camera cannot see at ``T``: some LiDAR point of the sweep
    ``xyz`` projects within ``radius_deg`` (in pixels: ``fx·radius``) of the edge point and is nearer to the
    camera by more than ``abs_depth_m + rel_depth·depth``.  A z-buffer of the whole sweep, min-filtered over
    that radius: the LiDAR sits a few decimetres from the camera, so it sees edges through gaps that a nearer
    object hides from the camera (parallax); such edges have no image counterpart at the right place."""
    e = np.asarray(edge_pts, dtype=np.float64)
    out = np.zeros(len(e), dtype=bool)
    if not len(e):
        return out
    p = np.asarray(xyz, dtype=np.float64)
    p = T.apply(p[np.isfinite(p).all(axis=1)])
    p = p[p[:, 2] > 0.1]
    uv, valid = camera.project(p)
    cell = 2.0  # z-buffer cells of 2x2 px
    W, H = int(np.ceil(camera.width / cell)), int(np.ceil(camera.height / cell))
    with np.errstate(invalid="ignore"):
        inside = valid & (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height)
    zbuf = np.full((H, W), np.inf, dtype=np.float32)
    cu = (uv[inside, 0] / cell).astype(np.int64)
    cv_ = (uv[inside, 1] / cell).astype(np.int64)
    np.minimum.at(zbuf, (cv_, cu), p[inside, 2].astype(np.float32))
    r = max(1, round(camera.fx * np.deg2rad(radius_deg) / cell))
    zmin = cv2.erode(zbuf, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    ec = T.apply(e)
    euv, ev = camera.project(ec)
    with np.errstate(invalid="ignore"):
        ein = ev & (euv[:, 0] >= 0) & (euv[:, 0] < camera.width) & (euv[:, 1] >= 0) & (euv[:, 1] < camera.height)
    iu = (euv[ein, 0] / cell).astype(np.int64)
    iv = (euv[ein, 1] / cell).astype(np.int64)
    z = ec[ein, 2]
    out[np.flatnonzero(ein)] = z > zmin[iv, iu] + abs_depth_m + rel_depth * z
    return out


class EdgeAlignmentCost:
    """``J(x)`` for a 6-vector ``x = [δr (rad), δt (m)]`` around ``T₀`` (higher is better, in [0, 1]).

    ``frame_weighting="equal"``: ``J`` is the mean over frames of each frame's weighted mean edge value, so a
    frame with many (possibly cluttered) edges does not outvote the others; ``"points"``: one weighted mean
    over all edge points of all frames."""

    def __init__(self, frames: Sequence[_FrameData], T0: Transform, frame_weighting: str = "equal") -> None:
        if frame_weighting not in ("equal", "points"):
            raise CalibrationError(f"frame_weighting must be 'equal' or 'points', got {frame_weighting!r}")
        self.frames = list(frames)
        self.T0 = T0
        self.total_w = float(sum(f.w.sum() for f in self.frames))
        used = [f for f in self.frames if f.w.sum() > 0]
        # per-frame factor on that frame's weighted sum
        self._scale = [(1.0 / (len(used) * float(f.w.sum())) if f.w.sum() > 0 else 0.0)
                       if frame_weighting == "equal" else (1.0 / self.total_w if self.total_w > 0 else 0.0)
                       for f in self.frames]
        self._pc = [T0.apply(f.pts) for f in self.frames]  # edge points in the initial camera frame
        ws = np.concatenate([f.w for f in self.frames]) if self.frames else np.zeros(0)
        #: weighted centroid of the edge points in the initial camera frame (the "centroid" pivot)
        self.centroid = (np.vstack(self._pc).T @ ws / ws.sum()) if ws.sum() > 0 else np.zeros(3)

    @staticmethod
    def transform_of(x: npt.ArrayLike, T0: Transform) -> Transform:
        """``exp(δr)·(I, δt)·T₀`` for ``x = [δr, δt]``."""
        x = np.asarray(x, dtype=np.float64)
        return Transform.from_rt(exp_so3(x[:3]), x[3:]) @ T0

    def __call__(self, x: npt.ArrayLike, level: int) -> float:
        x = np.asarray(x, dtype=np.float64)
        R = exp_so3(x[:3])
        out = 0.0
        for f, pc, k in zip(self.frames, self._pc, self._scale, strict=True):
            if not len(pc):
                continue
            uv, valid = f.camera.project(pc @ R.T + x[3:])
            uv[~valid] = -1.0
            s, inside = _bilinear(f.maps[level], uv)
            out += k * float((f.w[inside] * s).sum())
        return out


@dataclass
class TargetlessOptions:
    """Knobs of :func:`refine_lidar_camera` (defaults suit 32/64-beam LiDARs and ~1 Mpx cameras)."""

    gammas: tuple[float, ...] = (0.98, 0.9, 0.8, 0.6)
    edge_map: str = "maxdiff"            # image edge map: "maxdiff" or "nms" (see image_edge_map) ...
    fine_edge_map: str | None = None     # ... and the one of the finest level (None: edge_map)
    rotation_only_levels: int = 2        # the first levels move rotation only
    random_starts: int = 0               # >0: starts are the best of this many 6-D samples (see _random_starts)
    random_box: tuple[float, float] = (4.5, 0.3)  # ... drawn in +-4.5 deg per rotation axis, +-30 cm per axis
    nm_restarts: int = 0                 # Nelder-Mead restarts at each level while they improve (see _nelder_mead)
    search: str = "auto"                 # starts: "grid" (rotation grid, see _grid_starts), "sobol6d" (6-D samples,
                                         # see _sobol_starts) or "auto": sobol6d for a near scene, grid otherwise
    near_scene_m: float = 8.0            # "auto": near = weighted median depth of the edge points <= this (20 cm
                                         # of translation then moves them >= 1.4 deg: rotation alone cannot start)
    search_samples: int = 2048           # sobol6d: this many scrambled Sobol samples of all six parameters ...
    search_box: tuple[float, float] = (3.5, 0.25)  # ... in +-3.5 deg per rotation axis, +-25 cm per axis ...
    search_starts: int = 8               # ... this many of the best, each at least ...
    search_min_separation: float = 2.0   # ... this far from the others (units 1 deg / 10 cm), all descended in
                                         # 6-D from grid_level on
    pivot: str = "centroid"              # sobol6d descents rotate about the "centroid" of the edge points (decouples
                                         # rotation from translation in a near scene) or the "camera" centre
    first_level: int = 0                 # descents start at this level (coarser levels: grid starts only)
    min_jump_m: float = 0.3
    clean_window: int = 3
    edge_min_run: int = 0                # >1: edges must separate two smooth surfaces (lidar_edge_points)
    gamma_focal_px: float = 0.0          # >0: gammas are per pixel at this focal length; a camera with focal
                                         # length f uses gamma**(gamma_focal_px / f), the same decay per degree
    min_edge_points: int = 200
    min_texture_fraction: float = 0.002
    refine_translation: bool = True
    n_starts: int = 4                    # best grid maxima used as starts besides the guess itself
    grid_rot_deg: float = 4.0            # rotation grid: ±4° ...
    grid_step_deg: float = 1.0           # ... in 1° steps (9³ = 729 evaluations)
    grid_level: int = 1                  # index into gammas of the level the grid is scored at
    trans_grid_m: float = 0.0            # optional translation grid ±trans_grid_m (0: off) ...
    trans_grid_step_m: float = 0.1       # ... in 10 cm steps, before the first joint level
    tie_tolerance: float = 0.01          # relative: starts scoring within 1 % of the best are "ties"
    min_agreeing_starts: int = 2         # the best solution must be reached from this many starts
    independent_start_deg: float = 1.5  # ... that began at least this far apart (units 1 deg / 10 cm, 6-D)
    boundary_fraction: float = 0.8       # solutions beyond this fraction of the trust region: refused
    max_rot_spread_deg: float = 0.5
    max_trans_spread_m: float = 0.10
    min_rot_curvature: float = 0.05      # relative score drop for ±1° (per rotation axis)
    min_trans_curvature: float = 0.005   # relative score drop for ±10 cm (per translation axis)
    min_joint_curvature: float = 0.005   # ... along the weakest combined direction (0: check off)
    min_improvement: float = 1e-4        # relative
    max_rot_deg: float = 6.0             # trust region around the guess
    max_trans_m: float = 0.5
    margin_px: float = 60.0
    seed: int = 0
    # several frames (sharing one extrinsic): each frame's own optimum, reached by a local descent from the
    # joint solution, must lie this close to it, and no frame may score worse there than at the guess
    max_frame_disagreement_deg: float = 0.5
    max_frame_disagreement_m: float = 0.10
    frame_weighting: str = "equal"       # "equal": every frame weighs the same; "points": by edge count
    occlusion_deg: float = 0.0           # z-buffer: edges hidden behind a nearer point within this angle are
                                         # dropped (0: off; see occlusion_mask)


def _prepare(frames: Sequence[LidarCameraFrame], camera0: CameraModel, T0: Transform,
             opt: TargetlessOptions) -> list[_FrameData]:
    out: list[_FrameData] = []
    for i, fr in enumerate(frames):
        camera = fr.camera or camera0
        img = np.asarray(fr.image)
        if img.shape[:2] != (camera.height, camera.width):
            raise CalibrationError(f"frame {i}: image is {img.shape[1]}x{img.shape[0]} but camera"
                                   f" {camera.name!r} is {camera.width}x{camera.height}")
        pts, w = lidar_edge_points(fr.xyz, fr.ring, min_jump_m=opt.min_jump_m, clean_window=opt.clean_window,
                                   min_run=opt.edge_min_run)
        if len(pts):
            uv, valid = camera.project(T0.apply(pts))
            m = opt.margin_px
            with np.errstate(invalid="ignore"):
                keep = valid & (uv[:, 0] > -m) & (uv[:, 0] < camera.width + m) \
                    & (uv[:, 1] > -m) & (uv[:, 1] < camera.height + m)
            pts, w = pts[keep], w[keep]
            if opt.occlusion_deg > 0 and len(pts):
                hidden = occlusion_mask(fr.xyz, pts, camera, T0, radius_deg=opt.occlusion_deg)
                pts, w = pts[~hidden], w[~hidden]
        maps: dict[int, npt.NDArray[np.float32]] = {}
        texture = 0.0
        for level, g in enumerate(opt.gammas):
            last = level == len(opt.gammas) - 1
            kind = opt.fine_edge_map if last and opt.fine_edge_map else opt.edge_map
            ge = float(g ** (opt.gamma_focal_px / camera.fx)) if opt.gamma_focal_px > 0 else g
            maps[level], tex = image_edge_map(img, ge, kind=kind)
            if level == 0 or last:
                texture = tex if level == 0 else min(texture, tex)
        out.append(_FrameData(pts, w, maps, texture, camera))
    return out


def _nelder_mead(f: Callable[[F64], float], x0: F64, step: float, restarts: int = 0) -> tuple[F64, float, int]:
    """Nelder-Mead from ``x0`` (initial simplex edge ``step``); then up to ``restarts`` fresh simplices of the
    same size at the result while they still improve it (a collapsed simplex stalls in 6-D)."""
    n = len(x0)
    x, fx, nfev = np.asarray(x0, dtype=np.float64), np.inf, 0
    for k in range(restarts + 1):
        sim = np.vstack([x, x + np.eye(n) * step])
        r = minimize(f, x, method="Nelder-Mead",
                     options={"initial_simplex": sim, "xatol": 2e-3, "fatol": 1e-7, "maxfev": 400 * n})
        nfev += int(r.nfev)
        if k and not float(r.fun) < fx - 1e-9:
            break
        x, fx = np.asarray(r.x, dtype=np.float64), float(r.fun)
    return x, fx, nfev


def _curvature(cost: EdgeAlignmentCost, x: F64, gamma: int, c: float) -> F64:
    """Relative score drop ``(2c − J(x+h) − J(x−h)) / (2c)`` along each axis, ``h`` = 1° / 10 cm."""
    out = np.zeros(6)
    for i in range(6):
        h = np.zeros(6)
        h[i] = _UNIT[i]
        out[i] = (2 * c - cost(x + h, gamma) - cost(x - h, gamma)) / (2 * c) if c > 0 else 0.0
    return out


def _joint_curvature(cost: EdgeAlignmentCost, x: F64, level: int, c: float, n: int) -> tuple[F64, F64]:
    """Eigen-decomposition of the relative score drop ``−½·vᵀHv / J(x)`` over the first ``n`` parameters
    (units 1° / 10 cm; finite differences of the score).  The smallest eigenvalue is the drop along the
    *least* determined combined direction: a rotation error that a translation error compensates (far
    scenes) shows up here even when every single axis looks well curved.  Returns (eigenvalues
    ascending, eigenvectors as columns)."""
    h = _UNIT[:n]
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            def at(si: float, sj: float, i: int = i, j: int = j) -> float:
                z = x.copy()
                z[i] += si * h[i]
                z[j] += sj * h[j]
                return cost(z, level)
            if i == j:
                H[i, i] = at(1.0, 0.0) + at(-1.0, 0.0) - 2 * c
            else:
                H[i, j] = H[j, i] = (at(1.0, 1.0) - at(1.0, -1.0) - at(-1.0, 1.0) + at(-1.0, -1.0)) / 4
    drop = -H / (2 * c) if c > 0 else np.zeros((n, n))
    w, V = np.linalg.eigh(drop)
    return w, V


def _from_pivot(v: F64, c: F64) -> F64:
    """``x = [δr, δt]`` of the motion that rotates by ``δr`` about the point ``c`` (camera frame) and then
    translates by ``v[3:]``: ``p ↦ R(p − c) + c + v[3:]``.  For a scene a few metres away, rotating about
    the scene's centroid barely moves it, so rotation and translation are far less coupled than about the
    camera centre (where 20 cm of translation at 4 m looks like 3° of rotation)."""
    R = exp_so3(v[:3])
    out: F64 = np.r_[v[:3], v[3:] + c - R @ c]
    return out


def _to_pivot(x: F64, c: F64) -> F64:
    """Inverse of :func:`_from_pivot`."""
    R = exp_so3(x[:3])
    out: F64 = np.r_[x[:3], x[3:] - c + R @ c]
    return out


def _edge_depth(cost: EdgeAlignmentCost) -> float:
    """Weighted median depth (m) of the edge points in the guess's camera frame (inf without edges)."""
    z = np.concatenate([p[:, 2] for p in cost._pc]) if cost.frames else np.zeros(0)
    w = np.concatenate([f.w for f in cost.frames]) if cost.frames else np.zeros(0)
    if not len(z) or w.sum() <= 0:
        return float("inf")
    o = np.argsort(z, kind="stable")
    return float(z[o][min(len(z) - 1, int(np.searchsorted(np.cumsum(w[o]), 0.5 * w.sum())))])


def _use_sobol(cost: EdgeAlignmentCost, opt: TargetlessOptions, metrics: dict[str, Any]) -> bool:
    """Whether the starts come from :func:`_sobol_starts` (``search="sobol6d"``, or ``"auto"`` in a near
    scene); records the edge depth and the search used in ``metrics``."""
    if opt.pivot not in ("camera", "centroid"):
        raise CalibrationError(f"pivot must be 'camera' or 'centroid', got {opt.pivot!r}")
    if opt.search not in ("auto", "grid", "sobol6d"):
        raise CalibrationError(f"search must be 'auto', 'grid' or 'sobol6d', got {opt.search!r}")
    depth = _edge_depth(cost)
    sobol = opt.search == "sobol6d" or (opt.search == "auto" and opt.random_starts == 0 and depth <= opt.near_scene_m)
    metrics.update(edge_median_depth_m=depth, search="sobol6d" if sobol else
                   "random6d" if opt.random_starts > 0 else "grid")
    return sobol


def _sobol_starts(cost: EdgeAlignmentCost, opt: TargetlessOptions, evals_out: list[int]) -> list[F64]:
    """6-D starts: ``opt.search_samples`` scrambled Sobol samples (seed ``opt.seed``: deterministic) of all six
    parameters in the ``search_box`` around the guess (``x = [δr, δt]``, rotation about the camera centre:
    the frame a perturbation prior is stated in, whatever ``opt.pivot`` the descents use), scored at
    ``grid_level``; then greedily the best samples lying at least ``search_min_separation`` (units 1° / 10 cm)
    from every one already taken, ``search_starts`` of them (distinct basins, not one basin's neighbours)."""
    from scipy.stats import qmc  # scipy is a core dependency; qmc is only needed here

    g = min(opt.grid_level, len(opt.gammas) - 1)
    box = np.r_[[opt.search_box[0]] * 3, [opt.search_box[1] / 0.1] * 3]  # in units
    n = 1 << max(1, int(np.ceil(np.log2(opt.search_samples))))  # Sobol: a power of two
    S = (qmc.Sobol(6, scramble=True, seed=opt.seed).random(n)[: opt.search_samples] * 2.0 - 1.0) * box
    X = [u * _UNIT for u in S]
    v = np.array([cost(x, g) for x in X])
    evals_out[0] += len(S)
    taken: list[int] = []
    for i in np.argsort(-v, kind="stable"):
        if all(np.linalg.norm(S[i] - S[j]) >= opt.search_min_separation for j in taken):
            taken.append(int(i))
            if len(taken) == opt.search_starts:
                break
    return [X[i] for i in taken]


def _random_starts(cost: EdgeAlignmentCost, opt: TargetlessOptions, evals_out: list[int]) -> list[F64]:
    """Starts for scenes where translation matters (near objects: 20 cm moves a point 3 m away by ~4 deg):
    ``opt.random_starts`` seeded uniform samples of all six parameters in the ``random_box`` around the guess,
    scored at ``grid_level``; the ``n_starts`` best become starts (all six parameters move in their descents)."""
    g = min(opt.grid_level, len(opt.gammas) - 1)
    rng = np.random.default_rng(opt.seed)
    box = np.r_[np.deg2rad([opt.random_box[0]] * 3), [opt.random_box[1]] * 3]
    S = rng.uniform(-1.0, 1.0, (opt.random_starts, 6)) * box
    v = np.array([cost(x, g) for x in S])
    evals_out[0] += len(S)
    return [S[i] for i in np.argsort(-v)[: opt.n_starts]]


def _grid_starts(cost: EdgeAlignmentCost, opt: TargetlessOptions, evals_out: list[int]) -> list[F64]:
    """Rotation-only grid search (±``grid_rot_deg`` in ``grid_step_deg`` steps) at the grid level; the
    ``n_starts`` best local maxima of the grid (26-neighbourhood) become starting points."""
    g = min(opt.grid_level, len(opt.gammas) - 1)
    ax = np.arange(-opt.grid_rot_deg, opt.grid_rot_deg + 1e-9, opt.grid_step_deg)
    n = len(ax)
    vals = np.empty((n, n, n))
    for i, a in enumerate(ax):
        for j, b in enumerate(ax):
            for k, c in enumerate(ax):
                vals[i, j, k] = cost(np.r_[np.deg2rad([a, b, c]), 0.0, 0.0, 0.0], g)
    evals_out[0] += vals.size
    pad = np.pad(vals, 1, constant_values=-np.inf)
    is_max = np.ones_like(vals, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            for dk in (-1, 0, 1):
                if di or dj or dk:
                    is_max &= vals >= pad[1 + di:1 + di + n, 1 + dj:1 + dj + n, 1 + dk:1 + dk + n]
    idx = np.argwhere(is_max)
    order = np.argsort(-vals[is_max])
    return [np.r_[np.deg2rad(ax[idx[o]]), 0.0, 0.0, 0.0] for o in order[: opt.n_starts]]


def refine_lidar_camera(  # noqa: PLR0915 (one linear procedure, easier to read in one piece)
    frames: Sequence[LidarCameraFrame], camera: CameraModel, T_cam_from_lidar_guess: Transform,
    *, options: TargetlessOptions | None = None, camera_frame: str | None = None, lidar_frame: str = "lidar",
) -> SpatialResult:
    """Refine ``T_cam_from_lidar`` from a rough guess by aligning LiDAR depth edges with image edges.

    Several frames that share the extrinsic are scored jointly.  Returns a :class:`SpatialResult` whose
    ``T`` is the refined transform (``ok``), the unchanged guess (``no_improvement``) or None
    (``refused``).  ``metrics``: scores before/after at the finest level, edge counts, curvature per
    axis, the multi-start solutions and their spread, evaluation count.
    """
    opt = options or TargetlessOptions()
    if not frames:
        raise CalibrationError("refine_lidar_camera: no frames given")
    if not opt.gammas:
        raise CalibrationError("TargetlessOptions.gammas is empty")
    cam_frame = camera_frame or camera.frame_id
    T0 = T_cam_from_lidar_guess
    data = _prepare(frames, camera, T0, opt)
    n_pts = int(sum(len(d.w) for d in data))
    texture = float(np.mean([d.texture for d in data]))
    res = SpatialResult("lidar_camera_targetless", REFUSED, cam_frame, lidar_frame, initial=T0)
    res.metrics.update(n_frames=len(frames), n_lidar_edge_points=n_pts, image_texture_fraction=texture)
    if n_pts < opt.min_edge_points:
        res.reasons.append(f"only {n_pts} LiDAR depth-edge points project into the image"
                           f" (need {opt.min_edge_points})")
    if texture < opt.min_texture_fraction:
        res.reasons.append(f"strong image gradients cover {texture:.4%} of the pixels (need"
                           f" {opt.min_texture_fraction:.2%}): too little texture")
    if res.reasons:
        return res

    cost = EdgeAlignmentCost(data, T0, opt.frame_weighting)
    rmax = float(np.deg2rad(opt.max_rot_deg))
    evals = 0

    sobol = _use_sobol(cost, opt, res.metrics)

    def descend(x_start: F64, cost: EdgeAlignmentCost = cost) -> F64:
        nonlocal evals
        x = x_start.copy()
        six_d = opt.random_starts > 0 or sobol
        first = max(opt.first_level, opt.grid_level) if sobol else opt.first_level
        c = cost.centroid if sobol and opt.pivot == "centroid" else np.zeros(3)  # the grid path: camera centre
        for level in range(min(first, len(opt.gammas) - 1), len(opt.gammas)):
            g = level
            rot_only = (level < opt.rotation_only_levels and not six_d) or not opt.refine_translation
            step = max(1.0 * 0.6**level, 0.15)

            def f(y: F64, g: int = g, rot_only: bool = rot_only, x: F64 = x) -> float:
                z = x.copy()
                if rot_only:
                    z[:3] = y * _UNIT[:3]
                else:
                    z = _from_pivot(y * _UNIT, c)
                if np.linalg.norm(z[:3]) > rmax or np.linalg.norm(z[3:]) > opt.max_trans_m:
                    return 1.0  # outside the trust region: worse than any score
                return -cost(z, g)
            if level == opt.rotation_only_levels and opt.refine_translation and opt.trans_grid_m > 0:
                # translation grid with the rotation found so far, then the joint descent
                ax = np.arange(-opt.trans_grid_m, opt.trans_grid_m + 1e-9, opt.trans_grid_step_m)
                best_v, best_t = -np.inf, x[3:].copy()
                for tx in ax:
                    for ty in ax:
                        for tz in ax:
                            z = x.copy()
                            z[3:] = x[3:] + np.array([tx, ty, tz])
                            v = cost(z, g)
                            if v > best_v:
                                best_v, best_t = v, z[3:]
                evals += len(ax) ** 3
                x[3:] = best_t
            if rot_only:
                y, _, n = _nelder_mead(f, x[:3] / _UNIT[:3], step, opt.nm_restarts)
                x[:3] = y * _UNIT[:3]
            else:
                y, _, n = _nelder_mead(f, _to_pivot(x, c) / _UNIT, step, opt.nm_restarts)
                x = _from_pivot(y * _UNIT, c)
            evals += n
        return x

    pick = _sobol_starts if sobol else _random_starts if opt.random_starts > 0 else _grid_starts
    starts = [np.zeros(6), *pick(cost, opt, evals_out := [0])]
    evals += evals_out[0]
    fine = len(opt.gammas) - 1
    sols = [descend(s0) for s0 in starts]
    scores = [cost(x, fine) for x in sols]
    best = int(np.argmax(scores))
    x = sols[best].copy()
    c0 = cost(np.zeros(6), fine)
    c1 = scores[best]
    curv = _curvature(cost, x, fine, c1)
    kept: list[str] = []
    if opt.refine_translation:
        for i, axis in enumerate("xyz"):
            if curv[3 + i] < opt.min_trans_curvature:
                x[3 + i] = 0.0
                kept.append(axis)
        if kept:
            c1 = cost(x, fine)
    T_ref = EdgeAlignmentCost.transform_of(x, T0)
    ties = [k for k, s in enumerate(scores) if s >= scores[best] * (1.0 - opt.tie_tolerance)]
    spread = [pose_error(EdgeAlignmentCost.transform_of(sols[k], T0),
                         EdgeAlignmentCost.transform_of(sols[best], T0)) for k in ties]
    rot_spread = float(max(r for r, _ in spread))
    tr_spread = float(max(t for _, t in spread))
    dr, dt = pose_error(T_ref, T0)
    offsets = [pose_error(EdgeAlignmentCost.transform_of(y, T0), EdgeAlignmentCost.transform_of(sols[best], T0))
               for y in sols]
    res.metrics.update(start_offsets_from_best=[[float(r), float(t)] for r, t in offsets])
    res.metrics.update(
        score_initial=c0, score_refined=c1, evaluations=evals, change_rot_deg=dr, change_trans_m=dt,
        n_starts=len(starts), start_scores=scores, n_tied_starts=len(ties),
        tied_rot_spread_deg=rot_spread, tied_trans_spread_m=tr_spread,
        curvature_rot=curv[:3].tolist(), curvature_trans=curv[3:].tolist(),
        translation_axes_kept="".join(kept),
        # the best candidate, whatever the verdict: for diagnosis only (a refused one is never written)
        candidate_T_cam_from_lidar=T_ref.matrix.tolist())
    if not c1 > c0 * (1.0 + opt.min_improvement):
        res.verdict = NO_IMPROVEMENT
        res.T = T0
        res.reasons.append(f"refined edge score {c1:.5f} does not beat the initial guess's {c0:.5f};"
                           " keeping the guess")
        return res
    if float(curv[:3].min()) < opt.min_rot_curvature:
        res.reasons.append(f"rotation not determined: the edge score is flat around the optimum (relative"
                           f" curvature {float(curv[:3].min()):.4f} < {opt.min_rot_curvature} for ±1°)")
    agree = [k for k, (r, t) in zip(ties, spread, strict=True)
             if r <= opt.max_rot_spread_deg and (t <= opt.max_trans_spread_m or not opt.refine_translation)]
    # corroboration counts starts that began at least ``independent_start_deg`` apart (neighbouring grid
    # maxima are one basin, not two witnesses)
    independent: list[int] = []
    for k in agree:
        if all(np.linalg.norm((starts[k] - starts[m]) / _UNIT) >= opt.independent_start_deg for m in independent):
            independent.append(k)
    res.metrics["n_agreeing_starts"] = len(independent)
    if opt.min_joint_curvature > 0:
        nj = 6 if opt.refine_translation and not kept else 3
        w, V = _joint_curvature(cost, x, fine, c1, nj)
        weakest = V[:, 0]
        res.metrics.update(joint_curvature_min=float(w[0]), joint_curvature_weakest_direction=weakest.tolist())
        if w[0] < opt.min_joint_curvature:
            names = ["rx", "ry", "rz", "tx", "ty", "tz"][:nj]
            mix = ", ".join(f"{nm} {v:+.2f}" for nm, v in zip(names, weakest, strict=True) if abs(v) > 0.2)
            res.reasons.append(f"pose not determined: the edge score is flat along a combined direction ({mix};"
                               f" relative curvature {w[0]:.4f} < {opt.min_joint_curvature} per 1 deg / 10 cm):"
                               " a rotation and a translation error compensate each other")
    if dr > opt.boundary_fraction * opt.max_rot_deg or dt > opt.boundary_fraction * opt.max_trans_m:
        res.reasons.append(f"the best solution lies at the edge of the search region ({dr:.2f} deg,"
                           f" {dt * 100:.1f} cm from the guess; region {opt.max_rot_deg} deg,"
                           f" {opt.max_trans_m * 100:.0f} cm): not a trustworthy optimum")
    if len(independent) < opt.min_agreeing_starts:
        res.reasons.append(f"not corroborated: only {len(agree)} of {len(starts)} starts reach the best edge"
                           f" score (need {opt.min_agreeing_starts}); the score has competing optima, so the"
                           " data cannot tell")
    if rot_spread > opt.max_rot_spread_deg:
        res.reasons.append(f"rotation not determined: {len(ties)} starts reach equally good scores up to"
                           f" {rot_spread:.2f} deg apart (tolerance {opt.max_rot_spread_deg} deg)")
    if opt.refine_translation and tr_spread > opt.max_trans_spread_m:
        res.reasons.append(f"translation not determined: {len(ties)} starts reach equally good scores up to"
                           f" {tr_spread * 100:.1f} cm apart (tolerance {opt.max_trans_spread_m * 100:.1f} cm;"
                           " try refine_translation=False or more frames)")
    if len(data) > 1:
        res.reasons.extend(_frame_agreement(data, T0, x, opt, res.metrics))
        # each frame alone, searched from the same starts as the joint score: it must find the joint pose
        for k, d in enumerate(data):
            if not len(d.w):
                continue
            ck = EdgeAlignmentCost([d], T0)
            own = [descend(s0, ck) for s0 in starts]
            xo = own[int(np.argmax([ck(y, fine) for y in own]))]
            odr, odt = pose_error(EdgeAlignmentCost.transform_of(xo, T0), T_ref)
            res.metrics["per_frame"][k].update(alone_rot_deg=odr, alone_trans_m=odt)
            if odr > opt.max_frame_disagreement_deg or (opt.refine_translation and odt > opt.max_frame_disagreement_m):
                res.reasons.append(f"frames disagree: frame {k} searched alone ends {odr:.2f} deg / {odt * 100:.1f} cm"
                                   f" from the joint solution (tolerance {opt.max_frame_disagreement_deg} deg /"
                                   f" {opt.max_frame_disagreement_m * 100:.0f} cm)")
    if res.reasons:
        return res
    res.verdict = OK
    res.T = T_ref
    return res


def _frame_agreement(data: Sequence[_FrameData], T0: Transform, x: F64, opt: TargetlessOptions,
                     metrics: dict[str, Any]) -> list[str]:
    """Multi-frame check: every frame, scored alone, must improve on the guess at the joint solution
    ``x``, and its own optimum (one local descent from ``x`` at the finest level, in a ±2° / ±30 cm box)
    must lie within ``max_frame_disagreement_deg`` / ``_m`` of ``x``.  Frames that pull to different
    poses (a wrong pairing, a calibration that is not shared, or a score biased differently per scene)
    mean the joint optimum is a compromise the data do not support.  Returns the refusal reasons."""
    fine = len(opt.gammas) - 1
    reasons: list[str] = []
    rows: list[dict[str, Any]] = []
    T_joint = EdgeAlignmentCost.transform_of(x, T0)
    n = 6 if opt.refine_translation else 3
    for k, d in enumerate(data):
        if not len(d.w):
            rows.append({"frame": k, "edge_points": 0})
            reasons.append(f"frame {k}: no LiDAR depth edges in view; it cannot corroborate the joint solution")
            continue
        ck = EdgeAlignmentCost([d], T0)
        s0, s1 = ck(np.zeros(6), fine), ck(x, fine)

        def f(y: F64, ck: EdgeAlignmentCost = ck) -> float:
            z = x.copy()
            z[:n] = x[:n] + y * _UNIT[:n]
            if np.linalg.norm(z[:3] - x[:3]) > np.deg2rad(2.0) or np.linalg.norm(z[3:] - x[3:]) > 0.3:
                return 1.0
            return -ck(z, fine)
        y, _, _ = _nelder_mead(f, np.zeros(n), 0.3)
        z = x.copy()
        z[:n] = x[:n] + y * _UNIT[:n]
        dr, dt = pose_error(EdgeAlignmentCost.transform_of(z, T0), T_joint)
        rows.append({"frame": k, "edge_points": len(d.w), "score_initial": s0, "score_joint": s1,
                     "own_optimum_rot_deg": dr, "own_optimum_trans_m": dt})
        if not s1 > s0:
            reasons.append(f"frame {k}: its own edge score is worse at the joint solution ({s1:.5f}) than at the"
                           f" guess ({s0:.5f}); the frames do not agree on one extrinsic")
        elif dr > opt.max_frame_disagreement_deg or (opt.refine_translation and dt > opt.max_frame_disagreement_m):
            reasons.append(f"frames disagree: frame {k} alone prefers a pose {dr:.2f} deg / {dt * 100:.1f} cm from"
                           f" the joint solution (tolerance {opt.max_frame_disagreement_deg} deg /"
                           f" {opt.max_frame_disagreement_m * 100:.0f} cm)")
    metrics["per_frame"] = rows
    return reasons


def local_optimum(frames: Sequence[LidarCameraFrame], camera: CameraModel, T_start: Transform, *,
                  options: TargetlessOptions | None = None, rotation_only: bool = False,
                  max_rot_deg: float = 3.0, max_trans_m: float = 0.3) -> tuple[Transform, float, float]:
    """Diagnostic: the local maximum of the finest-level edge score reached by one float64 Nelder-Mead
    descent from ``T_start`` (rotation only, or all six parameters, inside ``max_rot_deg`` /
    ``max_trans_m`` of the start).  Started at a reference calibration it measures the score's *bias*:
    how far its optimum sits from that reference.  Returns ``(T, score at T_start, score at T)``.  No
    verdict: never write its result to a rig."""
    opt = options or TargetlessOptions()
    if not frames:
        raise CalibrationError("local_optimum: no frames given")
    cost = EdgeAlignmentCost(_prepare(frames, camera, T_start, opt), T_start, opt.frame_weighting)
    fine = len(opt.gammas) - 1
    rmax = float(np.deg2rad(max_rot_deg))
    n = 3 if rotation_only else 6

    def f(y: F64) -> float:
        z = np.zeros(6)
        z[:n] = y * _UNIT[:n]
        if np.linalg.norm(z[:3]) > rmax or np.linalg.norm(z[3:]) > max_trans_m:
            return 1.0
        return -cost(z, fine)
    y, _, _ = _nelder_mead(f, np.zeros(n), 0.3)
    x = np.zeros(6)
    x[:n] = y * _UNIT[:n]
    return EdgeAlignmentCost.transform_of(x, T_start), cost(np.zeros(6), fine), cost(x, fine)


def overlay_edges(frame: LidarCameraFrame, camera: CameraModel, transforms: dict[str, Transform],
                  *, min_jump_m: float = 0.3) -> npt.NDArray[np.uint8]:
    """BGR image: the edge map in grey, LiDAR edge points projected with each transform in its own
    colour (first: red, second: green, third: blue), with a legend."""
    img = np.asarray(frame.image)
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    base = cv2.cvtColor((gray * 0.5).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    E, _ = image_edge_map(gray, 0.5, alpha=1.0)
    base[E > 0.2] = (200, 200, 200)
    pts, _ = lidar_edge_points(frame.xyz, frame.ring, min_jump_m=min_jump_m)
    colours = [(0, 0, 255), (0, 255, 0), (255, 128, 0), (0, 255, 255)]
    for k, (name, T) in enumerate(transforms.items()):
        col = colours[k % len(colours)]
        uv, valid = camera.project(T.apply(pts))
        ok = valid & camera.in_image(np.where(valid[:, None], uv, -10.0))
        for u, v in uv[ok]:
            cv2.circle(base, (round(u), round(v)), 1, col, -1)
        cv2.putText(base, name, (10, 25 + 25 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.7, col, 2)
    return np.asarray(base, dtype=np.uint8)
