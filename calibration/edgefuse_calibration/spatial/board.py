"""Target-based LiDAR→camera extrinsics from a chessboard: features, segmentation and a robust solve.

Pipeline (:func:`calibrate_board_recording`), per pose *i*:

- **Camera** (:func:`camera_board_features`): inner corners found in the image (OpenCV), PnP on the
  corners undistorted with the camera's own model (fisheye / equidistant included) →
  ``T_cam_from_board``; from the board geometry (:class:`BoardGeometry`: pattern, square size, outer
  size, pattern offset) the board's centre, normal (towards the camera) and four outer corners in the
  camera frame.  A board whose outline leaves the image is refused ("partly outside").
- **LiDAR** (:func:`segment_board_organized`): the organized scan (rows = beams) is destaggered
  (each row rolled so that equal columns share one azimuth), neighbouring returns are linked when
  their ranges differ by less than ``max(jump_m, jump_rel·r)``, and every connected patch is tested:
  a RANSAC plane, then the known board rectangle fitted to the patch's row ends
  (:func:`lidar_board_features`); the patch whose fitted size and coverage best match the board wins.
  No prior extrinsic and no hand-cut region is needed (an optional ``roi`` box narrows the search).
- **Correspondences** (:class:`BoardFeatures` in both frames): plane normals, plane offsets (all
  LiDAR board points against the camera plane), board centres, and the four outer corners.
- **Solve** (:func:`solve_board_features`): closed-form start (Kabsch on the normals, least squares
  on the centres), then robust (soft-L1) least squares over all residual groups, each scaled by its
  nominal noise (:class:`BoardSolveOptions`); per-pose residuals; leave-one-pose-out jackknife for
  the uncertainty and the stability; refusal when the poses do not constrain all six degrees of
  freedom (normals nearly parallel, or a weak direction of the normal-equation matrix).

The same solver re-solves features recorded by other tools (:func:`read_acfr_poses` reads the
``poses.csv`` of ACFR's cam_lidar_calibration: camera- and LiDAR-frame centres, normals, corners).

Conventions: every result is ``T_cam_from_lidar`` (``q_cam = R·p_lidar + t``).  ACFR's published
``roll, pitch, yaw, x, y, z`` is the inverse direction (camera → LiDAR) with
``R = Rz(yaw)·Ry(pitch)·Rx(roll)``: :func:`acfr_to_cam_from_lidar` converts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform
from edgefuse_calibration.spatial._common import F64, OK, REFUSED, SpatialResult, exp_so3, kabsch, log_so3
from edgefuse_calibration.spatial.target import board_object_points, detect_corners


# -- board geometry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BoardGeometry:
    """A chessboard target.

    ``pattern = (cols, rows)`` inner corners (OpenCV order), ``square_m`` the square size, ``size_m =
    (width, height)`` the outer board size along the pattern's column / row directions, and
    ``pattern_offset_m`` how far the centre of the inner-corner grid lies from the board's centre
    (along the same directions; ACFR's ``translation_error``).
    """

    pattern: tuple[int, int]
    square_m: float
    size_m: tuple[float, float]
    pattern_offset_m: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.pattern) != 2 or min(self.pattern) < 2:
            raise CalibrationError(f"board pattern must be (cols, rows) inner corners >= 2, got {self.pattern}")
        if not self.square_m > 0 or len(self.size_m) != 2 or not min(self.size_m) > 0:
            raise CalibrationError(f"board square and size must be > 0, got {self.square_m}, {self.size_m}")
        cols, rows = self.pattern
        if self.size_m[0] < (cols - 1) * self.square_m or self.size_m[1] < (rows - 1) * self.square_m:
            raise CalibrationError(f"board size {self.size_m} m is smaller than its {cols}x{rows} inner-corner grid")

    @property
    def centre_board(self) -> F64:
        """Board centre in the board (pattern) frame: the grid's centre minus the pattern offset."""
        cols, rows = self.pattern
        g = np.array([(cols - 1) * self.square_m / 2, (rows - 1) * self.square_m / 2, 0.0])
        out: F64 = g - np.array([self.pattern_offset_m[0], self.pattern_offset_m[1], 0.0])
        return out

    def outline_board(self) -> F64:
        """The four outer corners (4, 3) in the board frame, going round."""
        c = self.centre_board
        w, h = self.size_m[0] / 2, self.size_m[1] / 2
        out: F64 = c + np.array([[-w, -h, 0.0], [w, -h, 0.0], [w, h, 0.0], [-w, h, 0.0]])
        return out


@dataclass
class BoardFeatures:
    """A board seen by one sensor, in that sensor's frame (metres): unit ``normal`` pointing to the
    sensor, plane ``offset`` (``normal·x = offset``, < 0 for a board in front), ``centre``, the four
    outer ``corners`` (4, 3) going round, and (LiDAR) the board's ``points`` with, when the scan's
    intensities were given, each point's relative weight ``point_weights``."""

    normal: F64
    offset: float
    centre: F64
    corners: F64
    points: F64 | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: relative weight of each of ``points`` in the plane (mean 1; 0: not on the plane, e.g. a mixed
    #: pixel at the board's edge), or None: all alike
    point_weights: F64 | None = None


def _towards_sensor(n: F64, centre: F64) -> F64:
    out: F64 = n if float(n @ centre) < 0 else -n
    return out


# -- camera side ------------------------------------------------------------------------------------
def camera_board_features(image: npt.ArrayLike, camera: CameraModel, board: BoardGeometry, *,
                          subpix_window: int = 5, margin_px: float = 2.0) -> tuple[BoardFeatures | None, str]:
    """Board features in the camera frame from one image, or ``(None, reason)``.

    Reasons: the inner corners are not found; the image size differs from the camera's; the board's
    outline leaves the image (partly outside: the corner grid alone could still be found, but the
    board is cut off); PnP fails.  ``info`` holds the corner pixels and the PnP reprojection RMS (px)."""
    im = np.asarray(image)
    if im.shape[:2] != (camera.height, camera.width):
        return None, (f"image is {im.shape[1] if im.ndim > 1 else 0}x{im.shape[0]} but camera {camera.name!r} is"
                      f" {camera.width}x{camera.height}")
    uv = detect_corners(im, board.pattern, window=subpix_window)
    if uv is None:
        return None, "board not found in the image (no complete inner-corner grid)"
    obj = board_object_points(board.pattern, board.square_m)
    if camera.model == "equidistant":
        und = cv2.fisheye.undistortPoints(uv.reshape(-1, 1, 2), camera.K, camera.D).reshape(-1, 2)
        ok, rvec, tvec = cv2.solvePnP(obj, und, np.eye(3), None, flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        D = camera.D if camera.model != "pinhole" else np.zeros(5)
        ok, rvec, tvec = cv2.solvePnP(obj, uv, camera.K, D, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None, "PnP failed on the detected corners"
    rvec, tvec = _refine_pose_pixels(obj, uv, camera, np.asarray(rvec, np.float64).reshape(3),
                                     np.asarray(tvec, np.float64).reshape(3))
    R, _ = cv2.Rodrigues(rvec)
    T = Transform.from_rt(R, tvec.reshape(3))
    rep, valid = camera.project(T.apply(obj))
    rms = float(np.sqrt(np.mean(np.sum((rep - uv) ** 2, axis=1)))) if valid.all() else float("inf")
    outline = T.apply(board.outline_board())
    ouv, ovalid = camera.project(outline)
    inside = ovalid & (ouv[:, 0] >= margin_px) & (ouv[:, 0] < camera.width - margin_px) \
        & (ouv[:, 1] >= margin_px) & (ouv[:, 1] < camera.height - margin_px)
    if not inside.all():
        return None, f"board partly outside the image ({int((~inside).sum())} of its 4 outer corners out of view)"
    centre = T.apply(board.centre_board[None])[0]
    n = _towards_sensor(np.asarray(R[:, 2], np.float64).copy(), centre)
    return BoardFeatures(n, float(n @ centre), centre, outline,
                         info={"corners_px": uv, "pnp_rms_px": rms, "T_cam_from_board": T.matrix}), ""


def _refine_pose_pixels(obj: F64, uv: F64, camera: CameraModel, rvec: F64, tvec: F64) -> tuple[F64, F64]:
    """The board pose that minimises the corners' reprojection error in PIXELS through the camera's own
    model (the maximum-likelihood pose for pixel noise of one size everywhere in the image).

    For a fisheye the PnP start is solved on undistorted normalized coordinates, where the same pixel
    noise is stretched by the distortion's inverse (more towards the image border), so that start weights
    the corners unevenly; this step removes that (on the Ouster session: up to 0.04 deg on the normals).
    For pinhole and radial-tangential models OpenCV's PnP already minimises pixel error: the step keeps its
    result."""
    def f(x: F64) -> F64:
        R, _ = cv2.Rodrigues(x[:3])
        q, valid = camera.project(obj @ np.asarray(R, np.float64).T + x[3:])
        out: F64 = np.where(valid[:, None], q - uv, 1e3).ravel()
        return out

    x0 = np.r_[rvec, tvec]
    if not np.isfinite(f(x0)).all():
        return rvec, tvec
    ts = 1e-3 * max(1.0, float(np.linalg.norm(tvec)))  # ~1 mrad and ~1 mm per metre of distance
    r = least_squares(f, x0, x_scale=np.r_[1e-3, 1e-3, 1e-3, ts, ts, ts], xtol=1e-12, ftol=1e-12, gtol=1e-12)
    if not r.success or float(np.sum(r.fun**2)) > float(np.sum(f(x0) ** 2)):
        return rvec, tvec
    out_r: F64 = r.x[:3].copy()
    out_t: F64 = r.x[3:].copy()
    return out_r, out_t


# -- LiDAR side -------------------------------------------------------------------------------------
def destagger(grid: npt.ArrayLike) -> tuple[F64, npt.NDArray[np.int64]]:
    """Roll each row of an organized (H, W, 3) scan so that a column holds one azimuth in every row
    (Ouster's raw order staggers the beams by a per-beam pixel shift).  Returns the destaggered grid
    and the per-row shifts (columns rolled)."""
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 3 or g.shape[2] != 3:
        raise CalibrationError(f"organized scan must have shape (rows, cols, 3), got {g.shape}")
    H, W, _ = g.shape
    with np.errstate(invalid="ignore"):
        az = np.arctan2(g[..., 1], g[..., 0])
        ok = np.isfinite(az) & (np.linalg.norm(g, axis=2) > 0.1)
    step = 2 * np.pi / W
    # per row: azimuth relative to the column's nominal one; its circular mean gives the shift
    col = np.arange(W)
    ref = np.zeros(H)
    for r in range(H):
        if ok[r].sum() < 10:
            continue
        d = np.angle(np.exp(1j * (az[r, ok[r]] + col[ok[r]] * step)))
        ref[r] = float(np.angle(np.mean(np.exp(1j * d))))
    base = ref[np.argmax(ok.sum(axis=1))]
    shifts = np.rint(np.angle(np.exp(1j * (ref - base))) / step).astype(np.int64)
    out = np.empty_like(g)
    for r in range(H):
        out[r] = np.roll(g[r], -shifts[r], axis=0)
    return out, shifts


def _rect_fit(uv: F64, rows: npt.NDArray[np.int64], size: tuple[float, float],
              h_step: F64) -> tuple[F64, float, float]:
    """Fit the known ``size`` rectangle (centre (2,), angle) to in-plane points: each scan row's two
    end points (moved outward by half the row's point spacing) must lie on the boundary.  Returns
    (centre, angle, RMS of the end points' boundary distances)."""
    ends = []
    for r in np.unique(rows):
        m = np.nonzero(rows == r)[0]
        if len(m) < 2:
            continue
        # end points along the row's own direction (the first principal direction of the row's points)
        q = uv[m]
        d = q[-1] - q[0]
        if np.linalg.norm(d) < 1e-6:
            continue
        d /= np.linalg.norm(d)
        s = q @ d
        lo, hi = int(np.argmin(s)), int(np.argmax(s))
        ends.append(q[lo] - d * h_step[m[lo]] / 2)
        ends.append(q[hi] + d * h_step[m[hi]] / 2)
    E = np.asarray(ends).reshape(-1, 2)
    w, h = size[0] / 2, size[1] / 2
    c0 = uv.mean(axis=0)
    # orientation start from the minimum-area rectangle of the points
    (_, _), (_, _), ang = cv2.minAreaRect((uv * 1000).astype(np.float32))
    best: tuple[float, F64, float] | None = None

    def boundary(x: F64) -> F64:
        c, a = x[:2], x[2]
        ca, sa = np.cos(a), np.sin(a)
        loc = (E - c) @ np.array([[ca, -sa], [sa, ca]])  # into the rectangle frame
        dx = np.abs(loc[:, 0]) - w
        dy = np.abs(loc[:, 1]) - h
        outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
        inside = np.minimum(np.maximum(dx, dy), 0.0)
        out: F64 = outside + inside
        return out

    for a0 in np.deg2rad(ang) + np.arange(4) * np.pi / 2:
        r = least_squares(boundary, np.r_[c0, a0], loss="soft_l1", f_scale=0.03)
        cost = float(np.sqrt(np.mean(boundary(r.x) ** 2)))
        if best is None or cost < best[0]:
            best = (cost, r.x, cost)
    assert best is not None
    x = best[1]
    return x[:2], float(x[2]), best[2]


def _intensity_weighted_plane(q: F64, intensity: F64, n0: F64, *, bins: int = 4,
                              iterations: int = 3) -> tuple[F64, F64, F64, F64]:
    """Plane through ``q`` (N, 3) weighted by the range noise of each point's intensity class.

    A LiDAR's range noise depends on the return's strength: on a chessboard the black squares' points
    scatter about twice as much as the white ones (Ouster session: 16-22 mm against 6-9 mm).  The noise
    of each intensity quantile class is measured from the plane residuals themselves (MAD), and the
    plane refitted with weights 1/sigma^2 (weighted least squares, the maximum-likelihood plane under
    that noise), a few times.  Returns (centroid, normal, relative weights (mean 1), sigma per class)."""
    edges = np.quantile(intensity, np.linspace(0, 1, bins + 1)[1:-1])
    cls = np.searchsorted(edges, intensity)
    n = n0
    c = q.mean(axis=0)
    w = np.ones(len(q))
    sig = np.full(bins, np.nan)
    for _ in range(iterations):
        r = (q - c) @ n
        for k in range(bins):
            rk = r[cls == k]
            sig[k] = 1.4826 * float(np.median(np.abs(rk - np.median(rk)))) if len(rk) >= 10 else np.nan
        if not np.isfinite(sig).all():
            break
        w = 1.0 / np.maximum(sig[cls], 1e-3) ** 2
        c = (w[:, None] * q).sum(axis=0) / w.sum()
        d = q - c
        _, V = np.linalg.eigh((w[:, None] * d).T @ d)
        n = V[:, 0] if float(V[:, 0] @ n0) >= 0 else -V[:, 0]
    out_w: F64 = w / w.mean()
    return c, n, out_w, sig


def _row_ends(q: F64, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Mask of each scan row's first and last point (by azimuth) among ``q`` (rows of >= 3 points)."""
    az = np.arctan2(q[:, 1], q[:, 0])
    az = np.angle(np.exp(1j * (az - np.angle(np.mean(np.exp(1j * az))))))  # no wrap inside the patch
    ends = np.zeros(len(q), dtype=bool)
    for r in np.unique(rows):
        m = np.nonzero(rows == r)[0]
        if len(m) >= 3:
            ends[m[np.argmin(az[m])]] = True
            ends[m[np.argmax(az[m])]] = True
    return ends


def lidar_board_features(points: npt.ArrayLike, rows: npt.ArrayLike, board: BoardGeometry, *,
                         h_step: npt.ArrayLike | None = None, plane_threshold_m: float = 0.03,
                         intensity: npt.ArrayLike | None = None,
                         seed: int = 0) -> tuple[BoardFeatures | None, str]:
    """Board features from its LiDAR points (N, 3) and their scan rows (N,): RANSAC plane, then the
    known board rectangle fitted to the rows' end points in the plane (each moved outward by half the
    point spacing ``h_step``, m; default: range × 2π/1024).  ``info``: ``edge_rms_m`` (end points to the
    fitted outline), ``plane_rms_m``, ``n_points`` (plane inliers), ``outside_fraction`` (points beyond
    the outline by > 5 cm), ``rows``.  With the points' ``intensity`` (N,) the plane is the
    intensity-weighted one (:func:`_intensity_weighted_plane`; ``info["noise_by_intensity_m"]``: the range
    noise of each intensity quartile, darkest first) and the points carry their weights.

    The rows' ends fix all three in-plane parameters when the board is turned (e.g. by 45°, as ACFR
    recommends); a board held with its sides along the scan lines leaves its position along them to the
    points' spread, up to half a beam spacing.  The plane (normal, offset) leaves out each row's two end
    points (mixed pixels at the board's edge; they still place the outline): ``point_weights`` is 0 for
    them."""
    from edgefuse_calibration.spatial.target import fit_plane_ransac

    p = np.asarray(points, dtype=np.float64)
    rw = np.asarray(rows).astype(np.int64)
    if len(p) < 20:
        return None, f"only {len(p)} LiDAR points on the board candidate"
    fit = fit_plane_ransac(p, threshold_m=plane_threshold_m, min_inliers=20, seed=seed)
    if fit is None:
        return None, "no plane through the board candidate"
    _, mask = fit
    q, rw = p[mask], rw[mask]
    # the plane leaves out each row's two end points: their beam footprint can straddle the board's edge
    # (mixed pixels: on the Ouster session their intensity is ~30 % below their neighbours')
    interior = ~_row_ends(q, rw)
    if interior.sum() < 20:
        interior[:] = True
    qi = q[interior]
    c = qi.mean(axis=0)
    _, _, Vt = np.linalg.svd(qi - c)
    n = _towards_sensor(Vt[2], c)
    weights: F64 = interior.astype(np.float64)
    noise: list[float] | None = None
    if intensity is not None:
        inten = np.asarray(intensity, dtype=np.float64)[mask]
        if np.isfinite(inten).all() and np.ptp(inten) > 0:
            c, n, wi, sig = _intensity_weighted_plane(qi, inten[interior], n)
            n = _towards_sensor(n, c)
            weights[interior] = wi
            noise = sig.tolist()
    weights /= weights.mean()
    # in-plane basis: u roughly horizontal (perpendicular to the sensor's z axis), v = n x u
    u = np.cross([0.0, 0.0, 1.0], n)
    if np.linalg.norm(u) < 1e-6:
        u = np.cross([1.0, 0.0, 0.0], n)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    order = np.lexsort((np.arctan2(q[:, 1], q[:, 0]), rw))
    q, rw = q[order], rw[order]
    uv = np.c_[(q - c) @ u, (q - c) @ v]
    if h_step is None:
        rng = np.linalg.norm(q, axis=1)
        hs = rng * (2 * np.pi / 1024)
    else:
        hs = np.asarray(h_step, dtype=np.float64)[mask][order]
    centre2, ang, rms = _rect_fit(uv, rw, board.size_m, hs)
    w, h = board.size_m[0] / 2, board.size_m[1] / 2
    ca, sa = np.cos(ang), np.sin(ang)
    loc = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    corners2 = centre2 + loc @ np.array([[ca, sa], [-sa, ca]])
    corners = c + corners2[:, :1] * u + corners2[:, 1:] * v
    centre = c + centre2[0] * u + centre2[1] * v
    # how much of the board the points cover, and how far they stick out of the fitted rectangle
    local = (uv - centre2) @ np.array([[ca, -sa], [sa, ca]])
    outside = float(np.mean((np.abs(local[:, 0]) > w + 0.05) | (np.abs(local[:, 1]) > h + 0.05)))
    plane_rms = float(np.sqrt(np.mean(((q - c) @ n) ** 2)))
    info = {"edge_rms_m": rms, "plane_rms_m": plane_rms, "n_points": len(q), "outside_fraction": outside,
            "rows": len(np.unique(rw)), "indices": np.nonzero(mask)[0][order], "noise_by_intensity_m": noise}
    return BoardFeatures(n, float(n @ centre), centre, corners, points=q, info=info,
                         point_weights=weights[order]), ""


def segment_board_organized(grid: npt.ArrayLike, board: BoardGeometry, *, jump_m: float = 0.10,
                            jump_rel: float = 0.02, min_range_m: float = 0.5, max_range_m: float = 20.0,
                            min_points: int = 40, max_edge_rms_m: float = 0.04,
                            max_outside_fraction: float = 0.05,
                            roi: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
                            ) -> tuple[BoardFeatures | None, str]:
    """Find the board in an organized scan (H rows = beams, W columns, 3) without any prior extrinsic.

    A fourth channel, when there is one, is the returns' intensity: the board plane is then weighted by
    each point's intensity-dependent range noise (:func:`lidar_board_features`).  Returns the best
    candidate's :class:`BoardFeatures` (``info`` adds ``candidates`` and the grid indices ``rows_cols``
    of its points) or ``(None, reason)``: a scan without a free-standing, board-sized plane is refused."""
    g0 = np.asarray(grid, dtype=np.float64)
    if g0.ndim != 3 or g0.shape[2] not in (3, 4):
        raise CalibrationError(f"organized scan must have shape (rows, cols, 3 or 4), got {g0.shape}")
    g, shifts = destagger(g0[..., :3])
    H, W, _ = g.shape
    inten: F64 | None = None
    if g0.shape[2] == 4:
        inten = np.empty((H, W))
        for r_ in range(H):
            inten[r_] = np.roll(g0[r_, :, 3], -shifts[r_])
        inten = inten.ravel()
    with np.errstate(invalid="ignore"):
        r = np.linalg.norm(g, axis=2)
        ok = np.isfinite(r) & (r >= min_range_m) & (r <= max_range_m)
        if roi is not None:
            lo, hi = (np.asarray(v, dtype=np.float64) for v in roi)
            ok &= np.all((g >= lo) & (g <= hi), axis=2)
    r = np.where(ok, r, 0.0)
    idx = np.arange(H * W).reshape(H, W)
    edges_a: list[npt.NDArray[np.int64]] = []
    edges_b: list[npt.NDArray[np.int64]] = []
    for da, db in ((idx, np.roll(idx, -1, axis=1)), (idx[:-1], idx[1:])):
        ra, rb = r.ravel()[da], r.ravel()[db]
        link = ok.ravel()[da] & ok.ravel()[db] & (np.abs(ra - rb) < np.maximum(jump_m, jump_rel * np.maximum(ra, rb)))
        edges_a.append(da[link])
        edges_b.append(db[link])
    a = np.concatenate(edges_a)
    b = np.concatenate(edges_b)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(H * W, H * W))
    _, labels = connected_components(graph, directed=False)
    labels = np.where(ok.ravel(), labels, -1)
    counts = np.bincount(labels[labels >= 0])
    diag = float(np.hypot(*board.size_m))
    flat = g.reshape(-1, 3)
    hstep = (r * (2 * np.pi / W)).ravel()
    cands: list[tuple[float, BoardFeatures, npt.NDArray[np.int64]]] = []
    tried = 0
    for lab in np.nonzero(counts >= min_points)[0]:
        m = np.nonzero(labels == lab)[0]
        pts = flat[m]
        ext = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
        if ext < 0.5 * diag or ext > 2.5 * diag:
            continue
        # cheap shape test first: a thin patch whose in-plane spread matches the board's sides
        sd = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False) / np.sqrt(len(pts)) * np.sqrt(12.0)
        big, small = sorted(board.size_m, reverse=True)
        if sd[2] > 0.1 or not (0.6 * big < sd[0] < 1.5 * big and 0.6 * small < sd[1] < 1.5 * small):
            continue
        tried += 1
        feats, _why = lidar_board_features(pts, m // W, board, h_step=hstep[m],
                                           intensity=None if inten is None else inten[m])
        if feats is None:
            continue
        inf = feats.info
        if inf["edge_rms_m"] > max_edge_rms_m or inf["outside_fraction"] > max_outside_fraction or inf["rows"] < 4:
            continue
        cands.append((float(inf["edge_rms_m"]), feats, m[inf.pop("indices")]))
    if not cands:
        return None, (f"no board-sized plane found in the scan ({tried} free-standing patches of"
                      f" {0.5 * diag:.2f}-{2.5 * diag:.2f} m examined, none fits the"
                      f" {board.size_m[0]:.3f} x {board.size_m[1]:.3f} m board)")
    cands.sort(key=lambda c: c[0])
    best = cands[0][1]
    rc = cands[0][2]
    rows_, cols_ = rc // W, rc % W
    best.info.update(candidates=len(cands), rows_cols=np.c_[rows_, (cols_ + shifts[rows_]) % W],
                     second_edge_rms_m=cands[1][0] if len(cands) > 1 else None)
    return best, ""


# -- solver -----------------------------------------------------------------------------------------
@dataclass
class BoardSolveOptions:
    """Nominal noise of each residual group (the residuals are divided by it) and refusal limits."""

    sigma_normal: float = 0.02        # unit-normal difference (≈ rad): PnP normals of small boards scatter ~1°
    sigma_plane_m: float = 0.01       # LiDAR point / centre to camera plane
    sigma_centre_m: float = 0.01
    sigma_corner_m: float = 0.03
    sigma_edge: float = 0.02          # LiDAR centre->corner directions lie in the camera board plane
    use_points: bool = True           # plane residuals of every LiDAR board point (else of the centre)
    use_corners: bool = True
    use_edges: bool = True
    robust_scale: float = 2.0         # soft-L1 knee, in sigmas
    min_poses: int = 3
    min_normal_spread: float = 0.05   # smallest singular value of the stacked normals / sqrt(n)
    min_information: float = 0.3     # smallest singular value of the scaled Jacobian (1 deg, 1 cm units)
    max_rot_std_deg: float = 0.5      # jackknife limits: beyond them the result is refused
    max_trans_std_m: float = 0.05
    jackknife: bool = True


def _residual_groups(x: F64, cam: Sequence[BoardFeatures], lid: Sequence[BoardFeatures],
                     opt: BoardSolveOptions) -> list[F64]:
    R = exp_so3(x[:3])
    t = x[3:]
    out: list[F64] = []
    for c, li in zip(cam, lid, strict=True):
        parts = [(R @ li.normal - c.normal) / opt.sigma_normal,
                 (R @ li.centre + t - c.centre) / opt.sigma_centre_m]
        if opt.use_points and li.points is not None and len(li.points):
            pts = li.points
            # each pose's plane term counts as much as one point per ~sqrt(n) (the points share biases);
            # within a pose, each point by its relative inverse-variance weight when known
            w = 1.0 / np.sqrt(len(pts))
            if li.point_weights is not None:
                w = w * np.sqrt(li.point_weights)
            parts.append(w * ((pts @ R.T + t) @ c.normal - c.offset) / opt.sigma_plane_m)
        else:
            parts.append(np.atleast_1d(((R @ li.centre + t) @ c.normal - c.offset) / opt.sigma_plane_m))
        if opt.use_corners and _has_corners(c) and _has_corners(li):
            parts.append(((li.corners @ R.T + t) - c.corners).ravel() / opt.sigma_corner_m)
        if opt.use_edges and _has_corners(li):
            d = li.corners - li.centre
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            parts.append((d @ R.T @ c.normal) / opt.sigma_edge)
        out.append(np.concatenate(parts))
    return out


def _has_corners(f: BoardFeatures) -> bool:
    """Whether ``f`` carries four usable corners (recorded features may lack them: NaN)."""
    return bool(np.isfinite(f.corners).all())


def _match_corners(cam: BoardFeatures, lid: BoardFeatures, R: F64, t: F64) -> BoardFeatures:
    """``lid`` with its corners reordered to match the camera's (best cyclic shift / reflection)."""
    if not (_has_corners(cam) and _has_corners(lid)):
        return lid
    mapped = lid.corners @ R.T + t
    best, best_k = np.inf, lid.corners
    for flip in (False, True):
        base = lid.corners[::-1] if flip else lid.corners
        mb = mapped[::-1] if flip else mapped
        for s in range(4):
            e = float(np.sum((np.roll(mb, s, axis=0) - cam.corners) ** 2))
            if e < best:
                best, best_k = e, np.roll(base, s, axis=0)
    return BoardFeatures(lid.normal, lid.offset, lid.centre, best_k, lid.points, lid.info, lid.point_weights)


def _initial(cam: Sequence[BoardFeatures], lid: Sequence[BoardFeatures]) -> F64:
    R = kabsch(np.array([li.normal for li in lid]), np.array([c.normal for c in cam]))
    t = np.mean([c.centre - R @ li.centre for c, li in zip(cam, lid, strict=True)], axis=0)
    out: F64 = np.r_[log_so3(R), t]
    return out


def _solve(cam: Sequence[BoardFeatures], lid: Sequence[BoardFeatures], opt: BoardSolveOptions,
           x0: F64 | None = None) -> tuple[F64, Any, list[BoardFeatures]]:
    x = _initial(cam, lid) if x0 is None else x0.copy()
    lid_m = list(lid)
    for _ in range(3 if x0 is None else 1):  # re-match corners after each solve (the order may change once
        # the pose is known); from a given start (the jackknife) once is enough
        if opt.use_corners:
            R, t = exp_so3(x[:3]), x[3:]
            lid_m = [_match_corners(c, li, R, t) for c, li in zip(cam, lid, strict=True)]

        def f(y: F64, lm: list[BoardFeatures] = lid_m, xc: F64 = x) -> F64:
            # parametrise around the current x so that the rotation vector stays small
            R0 = exp_so3(xc[:3])
            z = np.r_[log_so3(exp_so3(y[:3]) @ R0), y[3:]]
            return np.concatenate(_residual_groups(z, cam, lm, opt))
        r = least_squares(f, np.r_[np.zeros(3), x[3:]], loss="soft_l1", f_scale=opt.robust_scale)
        x = np.r_[log_so3(exp_so3(r.x[:3]) @ exp_so3(x[:3])), r.x[3:]]
    return x, r, lid_m


def _to_transform(x: F64) -> Transform:
    return Transform.from_rt(exp_so3(x[:3]), x[3:], normalize=True)


def solve_board_features(cam: Sequence[BoardFeatures], lid: Sequence[BoardFeatures], *,
                         options: BoardSolveOptions | None = None, camera_frame: str = "camera",
                         lidar_frame: str = "lidar", pose_names: Sequence[str] | None = None) -> SpatialResult:
    """``T_cam_from_lidar`` from matched board features (pose *i* of ``cam`` and of ``lid``).

    Refused when fewer than ``min_poses`` poses are given, the normals do not span 3-D (near-parallel
    boards), the normal equations have a weak direction, or the leave-one-pose-out jackknife spread
    exceeds the limits.  ``metrics``: per-pose residuals (centre distance, normal angle, plane RMS,
    corner RMS), jackknife standard deviations (rotation per axis and as an angle, translation per
    axis and as a length), the largest leave-one-out change, the normal spread."""
    opt = options or BoardSolveOptions()
    if len(cam) != len(lid):
        raise CalibrationError(f"{len(cam)} camera observations but {len(lid)} LiDAR observations")
    names = list(pose_names) if pose_names is not None else [str(i) for i in range(len(cam))]
    res = SpatialResult("lidar_camera_board", REFUSED, camera_frame, lidar_frame)
    m = len(cam)
    res.metrics["n_poses"] = m
    if m < opt.min_poses:
        res.reasons.append(f"{m} usable board poses (need at least {opt.min_poses})")
        return res
    Nc = np.array([c.normal for c in cam])
    sv = np.linalg.svd(Nc, compute_uv=False) / np.sqrt(m)
    res.metrics["normal_singular_values"] = sv.tolist()
    if sv[-1] < opt.min_normal_spread:
        res.reasons.append(f"degenerate geometry: the board normals are nearly parallel (smallest singular value"
                           f" {sv[-1]:.4f} < {opt.min_normal_spread}); tilt the board differently between poses")
        return res
    x, fit, lid_m = _solve(cam, lid, opt)
    # information per degree of freedom, in units of 1 deg / 1 cm
    J = fit.jac * np.r_[np.deg2rad([1.0, 1.0, 1.0]), 0.01, 0.01, 0.01]
    info_sv = np.linalg.svd(J, compute_uv=False)
    res.metrics["information_singular_values"] = info_sv.tolist()
    if info_sv[-1] < opt.min_information:
        res.reasons.append(f"degenerate geometry: one direction of the pose is not constrained by the poses"
                           f" (smallest information singular value {info_sv[-1]:.3f} < {opt.min_information}"
                           " per deg/cm)")
        return res
    R, t = exp_so3(x[:3]), x[3:]
    per_pose = []
    for name, c, li in zip(names, cam, lid_m, strict=True):
        row: dict[str, Any] = {
            "pose": name,
            "centre_m": float(np.linalg.norm(R @ li.centre + t - c.centre)),
            "normal_deg": float(np.degrees(np.arccos(np.clip((R @ li.normal) @ c.normal, -1, 1)))),
            "corner_rms_m": float(np.sqrt(np.mean(np.sum((li.corners @ R.T + t - c.corners) ** 2, axis=1))))
            if _has_corners(c) and _has_corners(li) else None,
        }
        if li.points is not None and len(li.points):
            row["plane_rms_m"] = float(np.sqrt(np.mean(((li.points @ R.T + t) @ c.normal - c.offset) ** 2)))
        per_pose.append(row)
    res.metrics["per_pose"] = per_pose
    cr = np.array([p["centre_m"] for p in per_pose])
    res.metrics.update(centre_residual_mean_m=float(cr.mean()), centre_residual_max_m=float(cr.max()),
                       normal_residual_mean_deg=float(np.mean([p["normal_deg"] for p in per_pose])))
    T = _to_transform(x)
    if opt.jackknife and m > opt.min_poses:
        loo = []
        for k in range(m):
            keep = [i for i in range(m) if i != k]
            xk, _, _ = _solve([cam[i] for i in keep], [lid[i] for i in keep], opt, x0=x)
            Tk = _to_transform(xk)
            loo.append(np.r_[log_so3(Tk.R @ T.R.T), Tk.t - T.t])
        L = np.asarray(loo)
        dev = L - L.mean(axis=0)
        sd = np.sqrt((m - 1) / m * np.sum(dev**2, axis=0))
        rot_sd = float(np.degrees(np.linalg.norm(sd[:3])))
        tr_sd = float(np.linalg.norm(sd[3:]))
        res.metrics.update(
            jackknife_rot_std_deg=rot_sd, jackknife_trans_std_m=tr_sd,
            jackknife_rot_std_axes_deg=np.degrees(sd[:3]).tolist(), jackknife_trans_std_axes_m=sd[3:].tolist(),
            leave_one_out_max_rot_deg=float(np.degrees(np.linalg.norm(L[:, :3], axis=1)).max()),
            leave_one_out_max_trans_m=float(np.linalg.norm(L[:, 3:], axis=1).max()),
            leave_one_out=[{"left_out": names[k], "rot_deg": float(np.degrees(np.linalg.norm(L[k, :3]))),
                            "trans_m": float(np.linalg.norm(L[k, 3:]))} for k in range(m)])
        if rot_sd > opt.max_rot_std_deg or tr_sd > opt.max_trans_std_m:
            res.reasons.append(f"too uncertain: leave-one-pose-out spread {rot_sd:.2f} deg / {tr_sd * 100:.1f} cm"
                               f" (limits {opt.max_rot_std_deg} deg / {opt.max_trans_std_m * 100:.0f} cm)")
            res.metrics["candidate_T_cam_from_lidar"] = T.matrix.tolist()
            return res
    res.T = T
    res.verdict = OK
    return res


# -- end to end -------------------------------------------------------------------------------------
def calibrate_board_recording(images: Sequence[npt.ArrayLike], scans: Sequence[npt.ArrayLike],
                              camera: CameraModel, board: BoardGeometry, *,
                              options: BoardSolveOptions | None = None, camera_frame: str | None = None,
                              lidar_frame: str = "lidar", pose_names: Sequence[str] | None = None,
                              roi: tuple[npt.ArrayLike, npt.ArrayLike] | None = None) -> SpatialResult:
    """Target-based extrinsics from paired images and organized scans ((rows, cols, 3) each, or
    (rows, cols, 4) with the returns' intensity last: then each board plane is intensity-weighted).

    Poses whose board is not found (in the image or the scan) or is partly outside the image are left
    out, each with its cause in ``metrics["rejected_poses"]`` and in the reasons; the result is refused
    when fewer than ``options.min_poses`` poses remain, or when the counts of images and scans differ."""
    opt = options or BoardSolveOptions()
    cam_frame = camera_frame or camera.frame_id
    names = list(pose_names) if pose_names is not None else [f"pose{i + 1}" for i in range(len(images))]
    res = SpatialResult("lidar_camera_board", REFUSED, cam_frame, lidar_frame)
    if len(images) != len(scans):
        res.reasons.append(f"mismatched recording: {len(images)} images but {len(scans)} scans; every pose needs"
                           " one image and one scan")
        return res
    if len(names) != len(images):
        raise CalibrationError(f"{len(names)} pose names for {len(images)} poses")
    cams: list[BoardFeatures] = []
    lids: list[BoardFeatures] = []
    kept: list[str] = []
    rejected: dict[str, str] = {}
    for name, img, scan in zip(names, images, scans, strict=True):
        cf, why = camera_board_features(img, camera, board)
        if cf is None:
            rejected[name] = f"image: {why}"
            continue
        lf, why = segment_board_organized(scan, board, roi=roi)
        if lf is None:
            rejected[name] = f"scan: {why}"
            continue
        cams.append(cf)
        lids.append(lf)
        kept.append(name)
    out = solve_board_features(cams, lids, options=opt, camera_frame=cam_frame, lidar_frame=lidar_frame,
                               pose_names=kept)
    out.metrics["rejected_poses"] = rejected
    out.metrics["used_poses"] = kept
    out.metrics["features"] = [{"pose": n, "camera": _feature_dict(c), "lidar": _feature_dict(li)}
                               for n, c, li in zip(kept, cams, lids, strict=True)]
    out.metrics["camera_pnp_rms_px"] = [float(c.info["pnp_rms_px"]) for c in cams]
    out.metrics["lidar_edge_rms_m"] = [float(li.info["edge_rms_m"]) for li in lids]
    out.metrics["lidar_noise_by_intensity_m"] = [li.info.get("noise_by_intensity_m") for li in lids]
    if rejected and not out.ok:
        out.reasons[:0] = [f"{k} left out: {v}" for k, v in rejected.items()]
    return out


def _feature_dict(f: BoardFeatures) -> dict[str, Any]:
    return {"centre": f.centre.tolist(), "normal": f.normal.tolist(), "corners": np.asarray(f.corners).tolist()}


def features_from_metrics(rows: Sequence[dict[str, Any]]) -> tuple[list[BoardFeatures], list[BoardFeatures], list[str]]:
    """The per-pose features :func:`calibrate_board_recording` reports (``metrics["features"]``) as
    (camera features, LiDAR features, pose names)."""
    def one(d: dict[str, Any]) -> BoardFeatures:
        c = np.asarray(d["centre"], np.float64)
        n = np.asarray(d["normal"], np.float64)
        return BoardFeatures(n, float(n @ c), c, np.asarray(d["corners"], np.float64))
    return [one(r["camera"]) for r in rows], [one(r["lidar"]) for r in rows], [str(r["pose"]) for r in rows]


def board_overlay(image: npt.ArrayLike, scan: npt.ArrayLike, camera: CameraModel, board: BoardGeometry,
                  T_cam_from_lidar: Transform, *, title: str = "") -> npt.NDArray[np.uint8]:
    """BGR overlay: the whole scan projected with ``T_cam_from_lidar`` (coloured by range), the
    segmented LiDAR board points (green), the LiDAR board outline (red) and the camera's board outline
    (blue).  Aligned outlines and board points on the chessboard mean the extrinsic is right."""
    img = np.asarray(image)
    base = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img.copy()
    base = (base * 0.6).astype(np.uint8)
    pts = np.asarray(scan, dtype=np.float64)[..., :3].reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1) & (np.linalg.norm(pts, axis=1) > 0.5)]
    pc = T_cam_from_lidar.apply(pts)
    uv, valid = camera.project(pc)
    ok = valid & camera.in_image(np.where(valid[:, None], uv, -10.0))
    if ok.any():
        rng = np.linalg.norm(pc[ok], axis=1)
        hue = np.clip((rng - rng.min()) / (np.ptp(rng) + 1e-9) * 150, 0, 150).astype(np.uint8)
        colours = cv2.cvtColor(np.stack([hue, np.full_like(hue, 255), np.full_like(hue, 255)], axis=1)[None],
                               cv2.COLOR_HSV2BGR)[0]
        for (u, v), col in zip(uv[ok], colours, strict=True):
            cv2.circle(base, (round(u), round(v)), 1, tuple(int(c) for c in col), -1)

    def outline(corners_cam: F64, col: tuple[int, int, int]) -> None:
        q, val = camera.project(corners_cam)
        if val.all():
            cv2.polylines(base, [np.round(q).astype(np.int32).reshape(-1, 1, 2)], True, col, 2)

    cf, _ = camera_board_features(img, camera, board)
    if cf is not None:
        outline(cf.corners, (255, 128, 0))
    lf, _ = segment_board_organized(scan, board)
    if lf is not None and lf.points is not None:
        q, val = camera.project(T_cam_from_lidar.apply(lf.points))
        for u, v in q[val]:
            cv2.circle(base, (round(u), round(v)), 3, (0, 255, 0), -1)
        outline(T_cam_from_lidar.apply(lf.corners), (0, 0, 255))
    cv2.putText(base, title + "  blue: camera board, red: LiDAR board, green: LiDAR board points", (10, 30),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return np.asarray(base, dtype=np.uint8)


# -- file formats -----------------------------------------------------------------------------------
def acfr_to_cam_from_lidar(values: Sequence[float]) -> Transform:
    """ACFR cam_lidar_calibration result ``(roll, pitch, yaw, x, y, z)`` (``p_L = Rz(yaw)Ry(pitch)Rx(roll)·p_C
    + t``, radians, metres) as ``T_cam_from_lidar``."""
    if len(values) != 6:
        raise CalibrationError(f"an ACFR result has 6 values (roll, pitch, yaw, x, y, z), got {len(values)}")
    roll, pitch, yaw, x, y, z = (float(v) for v in values)
    def rz(a: float) -> F64:
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])

    def ry(a: float) -> F64:
        return np.array([[np.cos(a), 0, np.sin(a)], [0, 1.0, 0], [-np.sin(a), 0, np.cos(a)]])

    def rx(a: float) -> F64:
        return np.array([[1.0, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])

    T_l_c = Transform.from_rt(rz(yaw) @ ry(pitch) @ rx(roll), [x, y, z], normalize=True)
    return T_l_c.inverse()


def cam_from_lidar_to_acfr(T_cam_from_lidar: Transform) -> F64:
    """Inverse of :func:`acfr_to_cam_from_lidar`: ``(roll, pitch, yaw, x, y, z)`` of ``p_L = Rz Ry Rx·p_C + t``."""
    T = T_cam_from_lidar.inverse()
    R = T.R
    out: F64 = np.array([np.arctan2(R[2, 1], R[2, 2]), np.arctan2(-R[2, 0], np.hypot(R[2, 1], R[2, 2])),
                         np.arctan2(R[1, 0], R[0, 0]), *T.t])
    return out


def read_acfr_calibration(path: str | Path) -> tuple[Transform, F64]:
    """ACFR ``calibration_*.csv`` (header ``roll,pitch,yaw,x,y,z``, one solution per row): the mean
    solution as ``T_cam_from_lidar`` (rotations averaged on SO(3)) and all rows (N, 6)."""
    p = Path(path)
    try:
        a = np.loadtxt(p, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read the ACFR calibration: {exc}", file=p) from None
    if a.shape[1] != 6 or len(a) == 0:
        raise CalibrationError(f"expected rows of roll,pitch,yaw,x,y,z, got {a.shape}", file=p)
    Ts = [acfr_to_cam_from_lidar(row) for row in a]
    R0 = Ts[0].R
    w = np.mean([log_so3(T.R @ R0.T) for T in Ts], axis=0)
    R = exp_so3(w) @ R0
    t_l = np.mean([-(T.R.T @ T.t) for T in Ts], axis=0)  # mean of the published translations (LiDAR frame)
    T_l_c = Transform.from_rt(R.T, t_l, normalize=True)
    return T_l_c.inverse(), a


def _acfr_samples(path: str | Path) -> F64:
    """ACFR's ``poses.csv`` as (samples, 19, 3): 19 rows of 3 values per recorded board sample."""
    p = Path(path)
    try:
        a = np.loadtxt(p, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read the ACFR poses: {exc}", file=p) from None
    if a.shape[1] != 3 or len(a) % 19 or len(a) == 0:
        raise CalibrationError(f"expected 19 rows of 3 values per sample, got {a.shape}", file=p)
    return a.reshape(-1, 19, 3)


def read_acfr_poses(path: str | Path) -> tuple[list[BoardFeatures], list[BoardFeatures]]:
    """ACFR ``poses.csv``: 19 rows of 3 values per sample (camera-frame centre [mm], normal, 4 corners
    [mm]; LiDAR-frame centre, normal, 4 corners; then board statistics).  Returns (camera features,
    LiDAR features) in metres, normals pointing to each sensor.  Corners written as one repeated point
    (the Ouster session's camera corners) are returned as NaN: the solver then leaves them out."""
    s = _acfr_samples(path)
    cams: list[BoardFeatures] = []
    lids: list[BoardFeatures] = []
    for k in s:
        for off, out in ((0, cams), (6, lids)):
            centre = k[off] / 1000.0
            n = k[off + 1] / np.linalg.norm(k[off + 1])
            n = _towards_sensor(n, centre)
            corners = k[off + 2:off + 6] / 1000.0
            if np.ptp(corners, axis=0).max() < 1e-3:  # some versions of the tool wrote one point four times
                corners = np.full((4, 3), np.nan)
            out.append(BoardFeatures(n, float(n @ centre), centre, corners))
    return cams, lids


#: header of the plain feature CSV (:func:`write_board_features_csv` / :func:`read_board_features_csv`)
FEATURE_COLUMNS = ("pose", "sensor", "centre_x", "centre_y", "centre_z", "normal_x", "normal_y", "normal_z",
                   *(f"corner{k}_{a}" for k in range(1, 5) for a in "xyz"))


def write_board_features_csv(path: str | Path, cams: Sequence[BoardFeatures], lids: Sequence[BoardFeatures],
                             names: Sequence[str] | None = None) -> None:
    """Board features as a plain CSV (metres; one ``camera`` and one ``lidar`` row per pose; corners going
    round the board), re-solvable with :func:`read_board_features_csv` and any tool that reads CSV."""
    if len(cams) != len(lids):
        raise CalibrationError(f"{len(cams)} camera observations but {len(lids)} LiDAR observations")
    nm = list(names) if names is not None else [f"pose{i + 1}" for i in range(len(cams))]
    lines = [",".join(FEATURE_COLUMNS)]
    for n, c, li in zip(nm, cams, lids, strict=True):
        for sensor, f in (("camera", c), ("lidar", li)):
            vals = [*f.centre, *f.normal, *np.asarray(f.corners).ravel()]
            lines.append(",".join([n, sensor, *(f"{v:.6f}" for v in vals)]))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_board_features_csv(path: str | Path) -> tuple[list[BoardFeatures], list[BoardFeatures], list[str]]:
    """Read the plain feature CSV (header :data:`FEATURE_COLUMNS`, any row order): (camera features, LiDAR
    features, pose names), poses in order of first appearance.  A pose without both rows is an error."""
    p = Path(path)
    try:
        rows = [ln.split(",") for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"cannot read the feature CSV: {exc}", file=p) from None
    if not rows or tuple(h.strip() for h in rows[0]) != FEATURE_COLUMNS:
        raise CalibrationError("feature CSV header must be " + ",".join(FEATURE_COLUMNS), file=p)
    seen: dict[str, dict[str, BoardFeatures]] = {}
    for ln, r in enumerate(rows[1:], start=2):
        if len(r) != len(FEATURE_COLUMNS) or r[1].strip() not in ("camera", "lidar"):
            raise CalibrationError(f"expected {len(FEATURE_COLUMNS)} values with sensor camera|lidar", file=p, line=ln)
        try:
            v = np.array([float(x) for x in r[2:]])
        except ValueError:
            raise CalibrationError("non-numeric feature value", file=p, line=ln) from None
        if not np.isfinite(v[:6]).all() or not np.linalg.norm(v[3:6]) > 0:  # corners may be nan (unknown)
            raise CalibrationError("non-finite centre or normal, or a zero normal", file=p, line=ln)
        centre = v[:3]
        n = _towards_sensor(v[3:6] / np.linalg.norm(v[3:6]), centre)
        seen.setdefault(r[0].strip(), {})[r[1].strip()] = BoardFeatures(n, float(n @ centre), centre,
                                                                         v[6:].reshape(4, 3))
    missing = [k for k, d in seen.items() if len(d) != 2]
    if missing:
        raise CalibrationError(f"poses without both a camera and a lidar row: {', '.join(missing)}", file=p)
    names = list(seen)
    return [seen[k]["camera"] for k in names], [seen[k]["lidar"] for k in names], names


# -- ACFR-equivalent estimator (for comparison with published cam_lidar_calibration results) -----------
def _rpy_matrix(roll: float, pitch: float, yaw: float) -> F64:
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    out: F64 = np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                         [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                         [-sp, cp * sr, cp * cr]])
    return out


def _matrix_rpy(R: F64) -> F64:
    out: F64 = np.array([np.arctan2(R[2, 1], R[2, 2]), np.arctan2(-R[2, 0], np.hypot(R[2, 1], R[2, 2])),
                         np.arctan2(R[1, 0], R[0, 0])])
    return out


def _cond_fro(A: F64) -> float:
    return float(np.linalg.norm(A) * np.linalg.norm(np.linalg.inv(A)))


def read_acfr_sample_stats(path: str | Path) -> tuple[F64, F64]:
    """From ACFR ``poses.csv``: each sample's board-dimension error input and pixel size, as
    (``widths_heights_m`` (N, 4): the two LiDAR-measured widths then the two heights, metres;
    ``pixel_to_metre`` (N,)), the inputs of :func:`solve_board_features_acfr`'s set ranking and
    reprojection term."""
    s = _acfr_samples(path)
    wh: F64 = np.c_[s[:, 14, :2], s[:, 15, :2]] / 1000.0
    p2m: F64 = s[:, 17, 0].copy()
    return wh, p2m


def solve_board_features_acfr(cam: Sequence[BoardFeatures], lid: Sequence[BoardFeatures], *,
                              board_size_m: tuple[float, float] | None = None,
                              widths_heights_m: npt.ArrayLike | None = None,
                              camera: CameraModel | None = None, pixel_to_metre: npt.ArrayLike | None = None,
                              n_sets: int = 50, camera_frame: str = "camera",
                              lidar_frame: str = "lidar") -> SpatialResult:
    """The estimator of ACFR's cam_lidar_calibration, re-expressed (deterministic, for comparing with
    its published results): every 3-pose subset is ranked by its "variability of quality" (the larger
    Frobenius condition number of the stacked camera / LiDAR normals plus the mean board-dimension
    error, mm, of ``widths_heights_m`` against ``board_size_m``), and on each of the ``n_sets`` best
    subsets, in the tool's camera→LiDAR direction (``p_L = Rz Ry Rx·p_C + t``):

    1. rotation: minimise mean (LiDAR centre→first-corner direction · R·n_cam)² + mean |R·n_cam − n_lidar|,
       started from the linear least-squares normal map;
    2. rotation and translation: the same plus mean + standard deviation of the centre distances (m) plus,
       with a ``camera`` and ``pixel_to_metre``, the largest distance between both centres projected
       through the camera model as if LiDAR coordinates were camera coordinates (the tool's term), times
       the sample's pixel size; started from the mean centre offset.  Leave ``camera`` out to reproduce
       a run on imported samples (the quick-start): there the tool had received no camera_info, its
       camera matrix was all zeros, so every projection fell on (0, 0) and the term was 0.

    The tool searches each step with a genetic algorithm (random, stopped after 10 stalled generations);
    here Nelder-Mead then Powell find the minimum itself.  The result is the per-parameter mean after
    leaving out values beyond 2 standard deviations (the tool's ``visualise_results.py``), returned as
    ``T_cam_from_lidar``; ``metrics``: ``sets`` (pose indices), ``set_solutions`` (roll, pitch, yaw, x,
    y, z rows), ``plain_mean`` and ``param_std`` (per parameter, the tool's published uncertainty)."""
    from scipy.optimize import minimize

    if len(cam) != len(lid):
        raise CalibrationError(f"{len(cam)} camera observations but {len(lid)} LiDAR observations")
    res = SpatialResult("lidar_camera_board_acfr", REFUSED, camera_frame, lidar_frame)
    m = len(cam)
    if m < 3:
        res.reasons.append(f"{m} usable board poses (need at least 3)")
        return res
    cc = np.array([c.centre for c in cam])
    cn = np.array([c.normal for c in cam])
    lc = np.array([li.centre for li in lid])
    ln = np.array([li.normal for li in lid])
    first = np.array([li.corners[0] for li in lid])
    perp = lc - first
    has_perp = np.isfinite(perp).all(axis=1)
    perp = np.where(has_perp[:, None], perp, 0.0)
    perp /= np.maximum(np.linalg.norm(perp, axis=1, keepdims=True), 1e-12)
    dims = np.zeros(m)
    if widths_heights_m is not None and board_size_m is not None:
        wh = np.asarray(widths_heights_m, dtype=np.float64).reshape(m, 4)
        ref = np.array([board_size_m[0], board_size_m[0], board_size_m[1], board_size_m[1]])
        dims = np.abs(wh - ref).sum(axis=1) * 1000.0
    p2m = None if pixel_to_metre is None or camera is None else np.asarray(pixel_to_metre, np.float64).reshape(m)
    ranked: list[tuple[float, tuple[int, int, int]]] = []
    for i in range(m):
        for j in range(i + 1, m):
            for k in range(j + 1, m):
                s = [i, j, k]
                try:
                    v = max(_cond_fro(cn[s]), _cond_fro(ln[s])) + float(dims[s].mean())
                except np.linalg.LinAlgError:
                    continue
                ranked.append((v, (i, j, k)))
    ranked.sort(key=lambda r: r[0])
    sets = [list(s) for _, s in ranked[:n_sets]]

    def project(P: F64) -> F64:
        assert camera is not None
        pts = P.reshape(-1, 1, 3)
        if camera.model == "equidistant":
            uv, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), camera.K, camera.D)
        else:
            D = camera.D if camera.model != "pinhole" else np.zeros(5)
            uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), camera.K, D)
        out: F64 = np.asarray(uv, np.float64).reshape(-1, 2)
        return out

    def rot_cost(e: F64, s: list[int]) -> float:
        nl = cn[s] @ _rpy_matrix(*e).T
        hp = has_perp[s]
        pc = float(np.mean(np.sum(perp[s][hp] * nl[hp], axis=1) ** 2)) if hp.any() else 0.0
        return pc + float(np.mean(np.linalg.norm(nl - ln[s], axis=1)))

    def full_cost(x: F64, s: list[int]) -> float:
        c = cc[s] @ _rpy_matrix(*x[:3]).T + x[3:]
        d = np.linalg.norm(c - lc[s], axis=1)
        v = rot_cost(x[:3], s) + float(d.mean() + d.std())
        if p2m is not None:
            v += float(np.max(np.linalg.norm(project(c) - project(lc[s]), axis=1) * p2m[s]))
        return v

    sols = []
    for s in sets:
        U = (np.linalg.inv(cn[s].T @ cn[s]) @ (cn[s].T @ ln[s])).T
        r1 = minimize(rot_cost, _matrix_rpy(U), args=(s,), method="Nelder-Mead",
                      options={"xatol": 1e-8, "fatol": 1e-14, "maxiter": 5000})
        t0 = np.mean(lc[s] - cc[s] @ _rpy_matrix(*r1.x).T, axis=0)
        r2 = minimize(full_cost, np.r_[r1.x, t0], args=(s,), method="Nelder-Mead",
                      options={"xatol": 1e-8, "fatol": 1e-14, "maxiter": 20000, "adaptive": True})
        r2 = minimize(full_cost, r2.x, args=(s,), method="Powell", options={"xtol": 1e-9, "ftol": 1e-15})
        sols.append(r2.x)
    A = np.asarray(sols)
    sd = A.std(axis=0)
    z = np.abs(A - A.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    filt = np.array([A[z[:, q] < 2, q].mean() for q in range(6)])
    T_l_c = Transform.from_rt(_rpy_matrix(*filt[:3]), filt[3:], normalize=True)
    res.T = T_l_c.inverse()
    res.verdict = OK
    res.metrics.update(sets=sets, set_solutions=A.tolist(), plain_mean=A.mean(axis=0).tolist(),
                       filtered_mean=filt.tolist(), param_std=np.std(A, axis=0, ddof=1).tolist(),
                       voq_range=[ranked[0][0], ranked[len(sets) - 1][0]])
    return res
