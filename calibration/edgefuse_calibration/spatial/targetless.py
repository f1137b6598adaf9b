"""Targetless LiDAR→camera extrinsic refinement by edge alignment.

Method (after Levinson & Thrun, "Automatic online calibration of cameras and lasers", RSS 2013):

- **LiDAR edges**: along each scan line, a point whose range is shorter than a neighbour's by more
  than ``min_jump_m`` lies on the near side of a depth discontinuity; its weight is
  ``sqrt(jump)`` (capped).  Scan lines come from a ``ring`` field when there is one, otherwise from
  storage order (consecutive points closer than 0.5° in azimuth, as in KITTI/Velodyne sweeps).
- **Image edges**: Canny edges of the blurred grey image, turned into a smooth score
  ``S_σ(x) = exp(−d(x)/σ)`` with ``d`` the distance (px) to the nearest edge.
- **Cost**: ``J(T) = Σ w_i·S_σ(π(T·p_i)) / Σ w_i`` over the edge points that project into the image at
  the initial guess (a fixed set, so the denominator never changes).  Several frames sharing one
  extrinsic add their sums.
- **Search**: ``T = exp(δr)·(I, δt)·T₀`` (perturbation in the camera frame), derivative-free compass
  search, coarse to fine over ``σ = 32 … 1 px``, step sizes tied to σ.
- **Safety**: the refined cost and the initial guess's cost are compared at the finest scale; the
  guess is kept (verdict ``no_improvement``) unless the refinement improves it.  Too few edges in view
  → ``refused``.  The search is run from the guess and from ``n_starts`` seeded starts around it; the
  spread of the converged solutions is the uncertainty, and when it exceeds the tolerances the result
  is ``refused`` (several optima: the data cannot tell).  Smooth-surface LiDAR points enter the cost
  with negative weight (``contrast``) so that moving the cloud onto textured image regions does not pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

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


# -- inputs -----------------------------------------------------------------------------------------
@dataclass
class LidarCameraFrame:
    """One synchronised LiDAR sweep and camera image.

    ``xyz`` (N, 3) points in the LiDAR frame (m); ``image`` (H, W) or (H, W, 3) uint8 BGR, the size of the
    camera model; ``ring`` optional (N,) scan-line index.
    """

    xyz: npt.NDArray[Any]
    image: npt.NDArray[Any]
    ring: npt.NDArray[Any] | None = None
    camera: CameraModel | None = None  # per-frame camera (e.g. KITTI frames differ in size); default: shared



def lidar_edge_points(
    xyz: npt.ArrayLike, ring: npt.ArrayLike | None = None, *, min_jump_m: float = 0.5,
    min_range_m: float = 1.0, max_azimuth_gap_deg: float = 0.5, return_flat: bool = False,
) -> tuple[F64, F64]:
    """Points on the near side of depth discontinuities: ``(points (M, 3) f64, weights (M,) f64)``.

    With ``return_flat=True`` a third array holds the points on smooth surfaces (range continuous on
    both sides within 2 %), which the cost uses as a contrast term.  Non-finite points are dropped first.
    Raises :class:`CalibrationError` for a cloud that is not (N, 3).
    """
    p = np.asarray(xyz, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise CalibrationError(f"LiDAR points must have shape (N, 3), got {p.shape}")
    finite = np.isfinite(p).all(axis=1)
    rng = np.linalg.norm(p, axis=1)
    keep = finite & (rng >= min_range_m)
    idx = np.nonzero(keep)[0]
    if idx.size < 3:
        if return_flat:
            return np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3))  # type: ignore[return-value]
        return np.zeros((0, 3)), np.zeros(0)
    q = p[idx]
    r = rng[idx]
    az = np.arctan2(q[:, 1], q[:, 0])
    if ring is not None:
        rg = np.asarray(ring)[idx]
        order = np.lexsort((az, rg))
        q, r, az, rg = q[order], r[order], az[order], rg[order]
        same = rg[1:] == rg[:-1]
    else:
        same = np.ones(len(q) - 1, dtype=bool)
    daz = np.abs(np.angle(np.exp(1j * (az[1:] - az[:-1]))))
    link = same & (daz <= np.deg2rad(max_azimuth_gap_deg))
    jump = np.zeros(len(q))
    # neighbour farther than me -> I am a foreground edge point
    d_next = np.where(link, r[1:] - r[:-1], 0.0)
    d_prev = np.where(link, r[:-1] - r[1:], 0.0)
    jump[:-1] = np.maximum(jump[:-1], d_next)
    jump[1:] = np.maximum(jump[1:], d_prev)
    sel = jump >= min_jump_m
    w = np.sqrt(np.minimum(jump[sel], 10.0))
    if return_flat:
        flat = np.zeros(len(q), dtype=bool)
        flat[1:-1] = link[:-1] & link[1:] & (np.abs(r[2:] - r[:-2]) < 0.02 * r[1:-1])
        return q[sel], w, q[flat & ~sel]  # type: ignore[return-value]
    return q[sel], w


def image_edge_distance(image: npt.ArrayLike, *, canny_low: int = 50, canny_high: int = 150,
                        blur_px: float = 1.0) -> tuple[npt.NDArray[np.float32], int]:
    """Distance (px, float32 (H, W)) from each pixel to the nearest Canny edge, and the edge-pixel count."""
    im = np.asarray(image)
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    if im.dtype != np.uint8:
        raise CalibrationError(f"images must be uint8, got {im.dtype}")
    if blur_px > 0:
        im = cv2.GaussianBlur(im, (0, 0), blur_px)
    edges = cv2.Canny(im, canny_low, canny_high)
    n = int(np.count_nonzero(edges))
    dist = cv2.distanceTransform(np.where(edges > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    return dist.astype(np.float32), n


def image_edge_score(image: npt.ArrayLike, sigma_px: float, *, blur_px: float = 1.0,
                     clip_percentile: float = 99.0) -> tuple[npt.NDArray[np.float32], float]:
    """Levinson's inverse distance transform of the gradient magnitude at scale ``sigma_px``:
    ``S(p) = max_q E(q)·exp(−|p − q|∞ / σ)`` with ``E`` the Sobel gradient magnitude of the blurred grey
    image scaled to [0, 1] (clipped at ``clip_percentile``).  Returns ``(S (H, W) float32, fraction of
    pixels with E > 0.3)``."""
    im = np.asarray(image)
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    if im.dtype != np.uint8:
        raise CalibrationError(f"images must be uint8, got {im.dtype}")
    g = cv2.GaussianBlur(im.astype(np.float32), (0, 0), blur_px) if blur_px > 0 else im.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    top = float(np.percentile(mag, clip_percentile))
    if not top > 0:
        return np.zeros_like(mag), 0.0
    E = np.minimum(mag / top, 1.0).astype(np.float32)
    frac = float(np.count_nonzero(E > 0.3) / E.size)
    gamma = float(np.exp(-1.0 / sigma_px))
    S = E.copy()
    kernel = np.ones((3, 3), np.uint8)
    cur = E
    for _ in range(int(np.ceil(4 * sigma_px))):
        cur = cv2.dilate(cur, kernel) * gamma
        np.maximum(S, cur, out=S)
    return S, frac


# -- cost -------------------------------------------------------------------------------------------
@dataclass
class _FrameData:
    pts: F64          # (M, 3) LiDAR edge points that project into the image at the initial guess
    w: F64            # (M,)
    dist: dict[float, npt.NDArray[np.float32]]  # sigma -> edge score map at that scale
    n_image_edges: int
    camera: CameraModel


def _bilinear(img: npt.NDArray[np.float32], uv: F64) -> F64:
    h, w = img.shape
    u = np.clip(uv[:, 0], 0, w - 1.001)
    v = np.clip(uv[:, 1], 0, h - 1.001)
    u0 = u.astype(np.int64)
    v0 = v.astype(np.int64)
    a = u - u0
    b = v - v0
    i00 = img[v0, u0]
    i01 = img[v0, u0 + 1]
    i10 = img[v0 + 1, u0]
    i11 = img[v0 + 1, u0 + 1]
    return ((1 - b) * ((1 - a) * i00 + a * i01) + b * ((1 - a) * i10 + a * i11)).astype(np.float64)


class EdgeAlignmentCost:
    """``J(x)`` for a 6-vector ``x = [δr (rad), δt (m)]`` around ``T₀`` (higher is better, in [0, 1])."""

    def __init__(self, camera: CameraModel, frames: Sequence[_FrameData], T0: Transform) -> None:
        self.camera = camera
        self.frames = list(frames)
        self.T0 = T0
        self.total_w = float(sum(f.w.sum() for f in self.frames))
        self._pc = [T0.apply(f.pts) for f in self.frames]  # edge points in the initial camera frame

    @staticmethod
    def transform_of(x: npt.ArrayLike, T0: Transform) -> Transform:
        x = np.asarray(x, dtype=np.float64)
        return Transform.from_rt(exp_so3(x[:3]), x[3:]) @ T0

    def __call__(self, x: npt.ArrayLike, sigma_px: float,
                 subset: Sequence[npt.NDArray[Any]] | None = None) -> float:
        x = np.asarray(x, dtype=np.float64)
        R = exp_so3(x[:3])
        t = x[3:]
        num = 0.0
        den = 0.0
        for k, (f, pc) in enumerate(zip(self.frames, self._pc, strict=True)):
            w = f.w
            q = pc
            if subset is not None:
                q = pc[subset[k]]
                w = w[subset[k]]
            den += float(w[w > 0].sum())
            qc = q @ R.T + t
            cam = f.camera
            uv, valid = cam.project(qc)
            inside = valid & cam.in_image(np.where(valid[:, None], uv, -10.0))
            if not inside.any():
                continue
            sc = _bilinear(f.dist[sigma_px], uv[inside])
            num += float((w[inside] * sc).sum())
        return num / den if den > 0 else 0.0


def _compass(  # noqa: PLR0917
    cost: EdgeAlignmentCost, x0: F64, sigma: float, steps: F64, min_steps: F64,
    mask: F64, subset: Sequence[npt.NDArray[Any]] | None = None, max_evals: int = 4000,
    bounds: tuple[float, float] = (np.inf, np.inf),
) -> tuple[F64, float, int]:
    x = x0.copy()
    best = cost(x, sigma, subset)
    step = steps.copy()
    n = 1
    while n < max_evals:
        improved = False
        for i in range(6):
            if mask[i] == 0:
                continue
            for s in (1.0, -1.0):
                y = x.copy()
                y[i] += s * step[i]
                if np.linalg.norm(y[:3]) > bounds[0] or np.linalg.norm(y[3:]) > bounds[1]:
                    continue
                c = cost(y, sigma, subset)
                n += 1
                if c > best + 1e-12:
                    x, best, improved = y, c, True
                    break
        if not improved:
            step = step / 2
            if np.all((step < min_steps) | (mask == 0)):
                break
    return x, best, n


@dataclass
class TargetlessOptions:
    """Knobs of :func:`refine_lidar_camera` (defaults suit 64/32-beam LiDARs and ~1 Mpx cameras)."""

    sigmas_px: tuple[float, ...] = (16.0, 8.0, 4.0, 2.0, 1.0)
    min_jump_m: float = 0.5
    min_edge_points: int = 300
    min_image_edge_fraction: float = 0.002
    typical_depth_m: float = 10.0
    refine_translation: bool = True
    n_starts: int = 4
    start_rot_deg: float = 2.0
    start_trans_m: float = 0.1
    max_rot_spread_deg: float = 0.3
    max_trans_spread_m: float = 0.05
    min_improvement: float = 1e-4
    seed: int = 0
    canny: tuple[int, int] = (50, 150)
    blur_per_sigma: float = 0.25
    edge_map: str = "gradient"
    contrast: float = 1.0
    translation_from_sigma_px: float = 4.0
    max_rot_deg: float = 6.0
    max_trans_m: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)


def _prepare(frames: Sequence[LidarCameraFrame], camera0: CameraModel, T0: Transform,
             opt: TargetlessOptions) -> list[_FrameData]:
    out: list[_FrameData] = []
    for i, fr in enumerate(frames):
        camera = fr.camera or camera0
        img = np.asarray(fr.image)
        if img.shape[:2] != (camera.height, camera.width):
            raise CalibrationError(f"frame {i}: image is {img.shape[1]}x{img.shape[0]} but camera"
                                   f" {camera.name!r} is {camera.width}x{camera.height}")
        pts, w, flat = lidar_edge_points(fr.xyz, fr.ring, min_jump_m=opt.min_jump_m,  # type: ignore[misc]
                                         return_flat=True)

        def in_view(q: F64, camera: CameraModel = camera) -> npt.NDArray[np.bool_]:
            uv, valid = camera.project(T0.apply(q))
            m = 40.0  # px margin: points just outside may move in
            return valid & (uv[:, 0] > -m) & (uv[:, 0] < camera.width + m) \
                & (uv[:, 1] > -m) & (uv[:, 1] < camera.height + m)
        if len(pts):
            keep = in_view(pts)
            pts, w = pts[keep], w[keep]
        if len(pts) and opt.contrast > 0 and len(flat):
            flat = flat[in_view(flat)]
            rs = np.random.default_rng(opt.seed)
            if len(flat) > 3 * len(pts):
                flat = flat[rs.choice(len(flat), 3 * len(pts), replace=False)]
            if len(flat):
                # signed weights: edge points sum to +1, smooth-surface points to -contrast
                w = np.concatenate([w / w.sum(), np.full(len(flat), -opt.contrast / len(flat))])
                pts = np.concatenate([pts, flat])
        dists: dict[float, npt.NDArray[np.float32]] = {}
        n_edges = 0
        for s in opt.sigmas_px:
            if opt.edge_map == "canny":
                d, n = image_edge_distance(img, canny_low=opt.canny[0], canny_high=opt.canny[1],
                                           blur_px=max(1.0, s * opt.blur_per_sigma))
                dists[s] = np.exp(-d / s).astype(np.float32)
                n_edges = n
            else:
                dists[s], frac = image_edge_score(img, s, blur_px=max(1.0, s * opt.blur_per_sigma))
                n_edges = int(frac * img.shape[0] * img.shape[1])
        out.append(_FrameData(pts, w, dists, n_edges, camera))
    return out


def refine_lidar_camera(
    frames: Sequence[LidarCameraFrame], camera: CameraModel, T_cam_from_lidar_guess: Transform,
    *, options: TargetlessOptions | None = None, camera_frame: str | None = None, lidar_frame: str = "lidar",
) -> SpatialResult:
    """Refine ``T_cam_from_lidar`` from a rough guess by aligning LiDAR depth edges with image edges.

    Returns a :class:`SpatialResult` whose ``T`` is the refined transform (``ok``), the unchanged guess
    (``no_improvement``) or None (``refused``: too few LiDAR/image edges in view, or the bootstrap spread
    exceeds the tolerances).  ``metrics`` holds the costs before/after, edge counts, bootstrap standard
    deviations (deg, m) and evaluation counts.
    """
    opt = options or TargetlessOptions()
    if not frames:
        raise CalibrationError("refine_lidar_camera: no frames given")
    cam_frame = camera_frame or camera.frame_id
    data = _prepare(frames, camera, T_cam_from_lidar_guess, opt)
    n_pts = int(sum(np.count_nonzero(d.w > 0) for d in data))
    edge_frac = float(np.mean([d.n_image_edges / (d.camera.width * d.camera.height) for d in data]))
    res = SpatialResult("lidar_camera_targetless", REFUSED, cam_frame, lidar_frame,
                        initial=T_cam_from_lidar_guess)
    res.metrics.update(n_frames=len(frames), n_lidar_edge_points=n_pts, image_edge_fraction=edge_frac)
    if n_pts < opt.min_edge_points:
        res.reasons.append(f"only {n_pts} LiDAR depth-edge points project into the image"
                           f" (need {opt.min_edge_points})")
    if edge_frac < opt.min_image_edge_fraction:
        res.reasons.append(f"image edges cover {edge_frac:.4%} of the pixels (need"
                           f" {opt.min_image_edge_fraction:.2%}): too little texture")
    if res.reasons:
        return res
    cost = EdgeAlignmentCost(camera, data, T_cam_from_lidar_guess)
    f = 0.5 * (camera.fx + camera.fy)
    mask = np.ones(6)
    if not opt.refine_translation:
        mask[3:] = 0
    bounds = (float(np.deg2rad(opt.max_rot_deg)), opt.max_trans_m)
    sigmas = list(opt.sigmas_px)
    fine = sigmas[-1]
    evals = 0

    def descend(x0: F64) -> F64:
        nonlocal evals
        x = x0.copy()
        for s in sigmas:
            steps = np.array([s / f] * 3 + [s * opt.typical_depth_m / f] * 3)
            # coarse scales: rotation only (a translation error of decimetres moves far points by a
            # few pixels, so at coarse scales it would only absorb rotation error)
            m = mask.copy()
            if s > opt.translation_from_sigma_px:
                m[3:] = 0
            x, _, n = _compass(cost, x, s, steps, steps / 16, m, bounds=bounds)
            evals += n
        return x

    # multi-start: the guess itself plus seeded starts around it; the best fine-scale score wins and
    # the spread of the converged solutions is the uncertainty (several optima -> the data cannot tell)
    rng = np.random.default_rng(opt.seed)
    starts = [np.zeros(6)]
    for _ in range(opt.n_starts):
        a = rng.normal(size=3)
        b = rng.normal(size=3) * mask[3:]
        nb = np.linalg.norm(b)
        starts.append(np.r_[a / np.linalg.norm(a) * np.deg2rad(opt.start_rot_deg),
                            b / nb * opt.start_trans_m if nb > 0 else np.zeros(3)])
    sols = [descend(s0) for s0 in starts]
    scores = [cost(x, fine) for x in sols]
    best = int(np.argmax(scores))
    x = sols[best]
    c0 = cost(np.zeros(6), fine)
    c1 = scores[best]
    T_ref = EdgeAlignmentCost.transform_of(x, T_cam_from_lidar_guess)
    spread = [pose_error(EdgeAlignmentCost.transform_of(xs, T_cam_from_lidar_guess), T_ref) for xs in sols]
    rot_spread = float(max(r for r, _ in spread))
    tr_spread = float(max(t for _, t in spread))
    dr, dt = pose_error(T_ref, T_cam_from_lidar_guess)
    res.metrics.update(cost_initial=c0, cost_refined=c1, evaluations=evals, change_rot_deg=dr,
                       change_trans_m=dt, n_starts=len(starts), start_scores=scores,
                       multistart_rot_spread_deg=rot_spread, multistart_trans_spread_m=tr_spread)
    if not c1 > c0 + opt.min_improvement:
        res.verdict = NO_IMPROVEMENT
        res.T = T_cam_from_lidar_guess
        res.reasons.append(f"refined edge score {c1:.5f} does not beat the initial guess's {c0:.5f};"
                           " keeping the guess")
        return res
    if rot_spread > opt.max_rot_spread_deg:
        res.reasons.append(f"rotation not determined: refinements from {len(starts)} starts end up to"
                           f" {rot_spread:.2f} deg apart (tolerance {opt.max_rot_spread_deg} deg)")
    if opt.refine_translation and tr_spread > opt.max_trans_spread_m:
        res.reasons.append(f"translation not determined: refinements from {len(starts)} starts end up to"
                           f" {tr_spread * 100:.1f} cm apart (tolerance {opt.max_trans_spread_m * 100:.1f} cm;"
                           " try refine_translation=False or more frames)")
    if res.reasons:
        return res
    res.verdict = OK
    res.T = T_ref
    return res



def overlay_edges(frame: LidarCameraFrame, camera: CameraModel, transforms: dict[str, Transform],
                  *, min_jump_m: float = 0.5) -> npt.NDArray[np.uint8]:
    """BGR image: Canny edges in grey, LiDAR edge points projected with each transform in its own
    colour (first: red, second: green, third: blue), with a legend."""
    img = np.asarray(frame.image)
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    base = cv2.cvtColor((gray * 0.6).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (0, 0), 1.0), 50, 150)
    base[edges > 0] = (200, 200, 200)
    pts, _ = lidar_edge_points(frame.xyz, frame.ring, min_jump_m=min_jump_m)
    colours = [(0, 0, 255), (0, 255, 0), (255, 128, 0), (0, 255, 255)]
    for k, (name, T) in enumerate(transforms.items()):
        col = colours[k % len(colours)]
        uv, valid = camera.project(T.apply(pts))
        ok = valid & camera.in_image(np.where(valid[:, None], uv, -10.0))
        for u, v in uv[ok]:
            cv2.circle(base, (round(u), round(v)), 1, col, -1)
        cv2.putText(base, name, (10, 25 + 25 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.7, col, 2)
    return base
