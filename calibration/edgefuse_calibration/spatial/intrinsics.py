"""Camera intrinsics from checkerboard or ChArUco images (OpenCV ``calibrateCamera`` / ``fisheye.calibrate``).

Per-view RMS reprojection errors are computed; views whose error exceeds
``max(outlier_factor · median, outlier_floor_px)`` are dropped and the calibration is re-run once.
Coverage is the fraction of a ``grid × grid`` partition of the image that holds at least one corner over
all kept views.

How sure the result is: a leave-one-view-out jackknife (at most ``max_jackknife`` groups of views) gives
the standard deviation of every parameter — the spread due to which views were taken, not a bias every
view shares (e.g. from the corner refinement window: see :class:`Checkerboard`); for the pinhole models
OpenCV's own estimate (from the Jacobian and the residual, ``calibrateCameraExtended``) is reported beside
it.  The jackknife is the one
judged, because it also sees what a single view contributes: a set of nearly fronto-parallel views, for
example, fits with a small RMS but leaves the focal length undetermined, and the jackknife shows it.

Verdict ``refused`` when fewer than ``min_views`` views remain, coverage is below ``min_coverage``, the
final RMS exceeds ``max_rms_px``, or the jackknife spread of the focal lengths exceeds
``max_focal_rel_std`` (relative) or that of the principal point ``max_center_std_px``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel
from edgefuse_calibration.spatial._common import F64, OK, REFUSED, _jsonable
from edgefuse_calibration.spatial.target import board_object_points, detect_corners

MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
_DIST_NAMES = {"plumb_bob": ("k1", "k2", "p1", "p2", "k3"),
               "rational_polynomial": ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
               "equidistant": ("k1", "k2", "k3", "k4")}


def _cv_flag(name: str) -> int:
    """A fisheye calibration flag: ``cv2.fisheye.NAME`` in OpenCV 4, ``cv2.NAME`` in OpenCV 5 (where the
    fisheye flags joined the common ones, with other values)."""
    value = getattr(cv2.fisheye, name, None)
    return int(value if value is not None else getattr(cv2, name))


@dataclass(frozen=True)
class Checkerboard:
    """A chessboard with ``pattern = (cols, rows)`` inner corners and squares of ``square_m`` metres.

    ``subpix_window`` is the half-size of ``cv2.cornerSubPix``'s search window; keep it well under half
    a square's size in the image.  Measured on OpenCV's sample views (left01-14.jpg, 640x480): half-size
    11, the OpenCV calibration sample's, reproduces the published ``left_intrinsics.yml`` (RMS 0.39 px,
    fx 535.9); 5 gives an RMS of 0.20 px and fx 532.8.
"""

    pattern: tuple[int, int]
    square_m: float
    subpix_window: int = 5

    def __post_init__(self) -> None:
        if self.subpix_window < 2:
            raise CalibrationError(f"sub-pixel window half-size must be >= 2 px, got {self.subpix_window}")
        if len(self.pattern) != 2 or min(self.pattern) < 2:
            raise CalibrationError(f"checkerboard pattern must be (cols, rows) inner corners >= 2, got {self.pattern}")
        if not self.square_m > 0:
            raise CalibrationError(f"square size must be > 0 m, got {self.square_m}")

    def detect(self, image: npt.ArrayLike) -> tuple[F64, F64] | None:
        """(object points (M, 3), image points (M, 2)) of one view, or None when the board is not found."""
        uv = detect_corners(image, self.pattern, window=self.subpix_window)
        if uv is None:
            return None
        return board_object_points(self.pattern, self.square_m), uv

    def describe(self) -> dict[str, Any]:
        return {"type": "checkerboard", "inner_corners": list(self.pattern), "square_m": self.square_m,
                "subpix_window": self.subpix_window}


@dataclass(frozen=True)
class CharucoBoard:
    """A ChArUco board of ``squares = (cols, rows)`` squares, ``square_m`` squares, ``marker_m`` markers
    from the OpenCV predefined ``dictionary`` (e.g. ``DICT_5X5_100``).  Views may show part of the board;
    a view is used when at least ``min_corners`` ChArUco corners, not all on one line, are found.
    ``legacy=True`` for boards printed by OpenCV < 4.6 with an even number of rows (the old layout)."""

    squares: tuple[int, int]
    square_m: float
    marker_m: float
    dictionary: str = "DICT_5X5_100"
    legacy: bool = False
    min_corners: int = 6

    def __post_init__(self) -> None:
        if len(self.squares) != 2 or min(self.squares) < 3:
            raise CalibrationError(f"ChArUco squares must be (cols, rows) >= 3, got {self.squares}")
        if not 0 < self.marker_m < self.square_m:
            raise CalibrationError(f"ChArUco marker size must be in (0, square size), got marker {self.marker_m} m,"
                                   f" square {self.square_m} m")
        if not self.dictionary.startswith("DICT_") or not hasattr(cv2.aruco, self.dictionary):
            raise CalibrationError(f"unknown ArUco dictionary {self.dictionary!r} (e.g. DICT_5X5_100, DICT_6X6_250)")
        dict_size = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
        needed = (self.squares[0] * self.squares[1]) // 2
        if needed > dict_size:
            raise CalibrationError(f"a {self.squares[0]}x{self.squares[1]} ChArUco board needs {needed} markers;"
                                   f" {self.dictionary} has {dict_size}")

    def cv_board(self) -> Any:
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard(tuple(self.squares), self.square_m, self.marker_m, d)
        board.setLegacyPattern(self.legacy)
        return board

    def detect(self, image: npt.ArrayLike) -> tuple[F64, F64] | None:
        im = np.asarray(image)
        gray = im if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
        board = self.cv_board()
        corners, ids, _, _ = cv2.aruco.CharucoDetector(board).detectBoard(gray)
        if corners is None or ids is None or len(ids) < self.min_corners:
            return None
        if board.checkCharucoCornersCollinear(ids):
            return None
        obj, img = board.matchImagePoints(corners, ids)
        return np.asarray(obj, np.float64).reshape(-1, 3), np.asarray(img, np.float64).reshape(-1, 2)

    def describe(self) -> dict[str, Any]:
        return {"type": "charuco", "squares": list(self.squares), "square_m": self.square_m,
                "marker_m": self.marker_m, "dictionary": self.dictionary, "legacy": self.legacy}


@dataclass
class IntrinsicsResult:
    """Verdict, the calibrated :class:`CameraModel` (None when refused before calibrating), and metrics.

    ``std`` holds the jackknife standard deviation of each parameter (``fx``, ``fy``, ``cx``, ``cy`` in
    pixels and the distortion coefficients by name); empty when it could not be computed.  ``corners``:
    the detected image points (M, 2) of each view with a board, by image index (not in the report)."""

    verdict: str
    camera: CameraModel | None
    metrics: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    std: dict[str, float] = field(default_factory=dict)
    corners: dict[int, F64] = field(default_factory=dict, repr=False)  # detected image points per view index

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    def to_dict(self) -> dict[str, Any]:
        cam = None
        if self.camera is not None:
            cam = {"model": self.camera.model, "width": self.camera.width, "height": self.camera.height,
                   "K": self.camera.K.tolist(), "D": self.camera.D.tolist()}
        return {"tool": "intrinsics", "verdict": self.verdict, "reasons": self.reasons, "camera": cam,
                "std": _jsonable(self.std), "metrics": _jsonable(self.metrics)}


@dataclass
class _Fit:
    rms: float
    K: F64
    D: F64
    per_view: list[float]
    formal_std: F64 | None = None  # OpenCV's stdDeviationsIntrinsics (fx, fy, cx, cy, k1, ...)


def _calibrate(obj: list[F64], img: list[F64], size: tuple[int, int], model: str,
               fix_aspect_ratio: bool) -> _Fit:
    if model == "equidistant":
        # (1, N, 3) / (1, N, 2): the layout both OpenCV 4 and 5 accept here (5 rejects (N, 1, 3))
        o = [x.reshape(1, -1, 3).astype(np.float64) for x in obj]
        i = [x.reshape(1, -1, 2).astype(np.float64) for x in img]
        flags = _cv_flag("CALIB_RECOMPUTE_EXTRINSIC") | _cv_flag("CALIB_FIX_SKEW")
        crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
        rms, K, D, rv, tv = cv2.fisheye.calibrate(o, i, size, np.eye(3), np.zeros(4), flags=flags, criteria=crit)
        errs = []
        for oo, ii, r, t in zip(o, i, rv, tv, strict=True):
            p, _ = cv2.fisheye.projectPoints(oo, r, t, K, D)
            errs.append(float(np.sqrt(np.mean(np.sum((p.reshape(-1, 2) - ii.reshape(-1, 2)) ** 2, axis=1)))))
        return _Fit(float(rms), np.asarray(K, np.float64), np.asarray(D, np.float64).reshape(-1), errs)
    o32: list[npt.NDArray[np.float32]] = [x.astype(np.float32).reshape(-1, 1, 3) for x in obj]
    i32: list[npt.NDArray[np.float32]] = [x.astype(np.float32).reshape(-1, 1, 2) for x in img]
    n = len(_DIST_NAMES[model])
    flags = cv2.CALIB_RATIONAL_MODEL if model == "rational_polynomial" else 0
    if fix_aspect_ratio:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO  # ratio fx/fy taken from the initial matrix: 1
    rms, K, D, rv, tv, std_int, _, _ = cv2.calibrateCameraExtended(o32, i32, size, np.eye(3), np.zeros(n),
                                                                     flags=flags)
    errs = []
    for o_view, i_view, r, t in zip(o32, i32, rv, tv, strict=True):
        p, _ = cv2.projectPoints(o_view, r, t, K, D)
        errs.append(float(np.sqrt(np.mean(np.sum((p.reshape(-1, 2) - i_view.reshape(-1, 2)) ** 2, axis=1)))))
    return _Fit(float(rms), np.asarray(K, np.float64), np.asarray(D, np.float64).reshape(-1)[:n], errs,
                np.asarray(std_int, np.float64).reshape(-1)[: 4 + n])


def _params(fit: _Fit) -> F64:
    return np.concatenate([[fit.K[0, 0], fit.K[1, 1], fit.K[0, 2], fit.K[1, 2]], fit.D])


def _jackknife_std(obj: list[F64], img: list[F64], size: tuple[int, int], *, model: str, fix_aspect_ratio: bool,
                   max_groups: int) -> F64 | None:
    """Delete-a-group jackknife standard deviation of (fx, fy, cx, cy, D...) over ``g = min(n, max_groups)``
    groups of views: ``sqrt((g - 1) / g · Σ (θ_i - θ̄)²)``.  None when a sub-calibration fails."""
    n = len(obj)
    g = min(n, max_groups)
    groups = np.array_split(np.arange(n), g)
    thetas = []
    for drop in groups:
        dropped = set(drop.tolist())
        keep = [i for i in range(n) if i not in dropped]
        try:
            thetas.append(_params(_calibrate([obj[i] for i in keep], [img[i] for i in keep], size, model,
                                             fix_aspect_ratio)))
        except cv2.error:
            return None
    th = np.asarray(thetas, np.float64)
    spread: F64 = np.sqrt((g - 1) / g * np.sum((th - th.mean(axis=0)) ** 2, axis=0))
    return spread


def _as_target(target: Any, square_m: float | None) -> Checkerboard | CharucoBoard:
    if isinstance(target, (Checkerboard, CharucoBoard)):
        if square_m is not None and square_m != target.square_m:
            raise CalibrationError(f"square_m={square_m} contradicts the board's square size {target.square_m}")
        return target
    if square_m is None:
        raise CalibrationError("square size (square_m) is required with a (cols, rows) checkerboard pattern")
    try:
        cols, rows = (int(v) for v in target)
    except (TypeError, ValueError):
        raise CalibrationError(f"target must be (cols, rows), a Checkerboard or a CharucoBoard, got {target!r}") \
            from None
    return Checkerboard((cols, rows), float(square_m))


def _detect_all(board: Checkerboard | CharucoBoard,
                images: Sequence[npt.ArrayLike]) -> tuple[list[int], list[F64], list[F64]]:
    """(indices of the views with a board, their object points, their image points)."""
    found: list[int] = []
    objs: list[F64] = []
    corners: list[F64] = []
    for k, im in enumerate(images):
        det = board.detect(im)
        if det is not None:
            found.append(k)
            objs.append(det[0])
            corners.append(det[1])
    return found, objs, corners


def calibrate_intrinsics(
    images: Sequence[npt.ArrayLike], target: tuple[int, int] | Checkerboard | CharucoBoard,
    square_m: float | None = None, *, model: str = "plumb_bob", name: str = "camera", frame_id: str | None = None,
    fix_aspect_ratio: bool = False, min_views: int = 5, min_coverage: float = 0.5, grid: int = 4,
    outlier_factor: float = 3.0, outlier_floor_px: float = 1.0, max_rms_px: float = 1.0,
    max_focal_rel_std: float = 0.01, max_center_std_px: float | None = None, max_jackknife: int = 20,
) -> IntrinsicsResult:
    """Calibrate ``model`` (``plumb_bob``, ``rational_polynomial`` or ``equidistant``) from views of
    ``target``: a ``(cols, rows)`` inner-corner checkerboard with ``square_m`` squares, a
    :class:`Checkerboard` or a :class:`CharucoBoard`.  ``max_center_std_px`` defaults to 1 % of the
    larger image side.  ``fix_aspect_ratio`` keeps ``fx == fy`` (OpenCV ``CALIB_FIX_ASPECT_RATIO``;
    pinhole models only)."""
    if model not in MODELS:
        raise CalibrationError(f"unsupported model {model!r} ({', '.join(MODELS)})")
    if fix_aspect_ratio and model == "equidistant":
        raise CalibrationError("fix_aspect_ratio is not available for the equidistant (fisheye) model")
    board = _as_target(target, square_m)
    if not images:
        raise CalibrationError("no images given")
    shapes = {np.asarray(im).shape[:2] for im in images}
    if len(shapes) != 1:
        raise CalibrationError(f"images have different sizes: {sorted(shapes)}")
    h, w = shapes.pop()
    found, objs, corners = _detect_all(board, images)
    res = IntrinsicsResult(REFUSED, None, corners=dict(zip(found, corners, strict=True)))
    res.metrics.update(target=board.describe(), n_images=len(images), views_with_board=found,
                       views_without_board=[k for k in range(len(images)) if k not in found])
    what = "checkerboard {}x{}".format(*board.pattern) if isinstance(board, Checkerboard) else "ChArUco board"
    if len(found) < min_views:
        res.reasons.append(f"{what} found in {len(found)} of {len(images)} images (need {min_views})")
        return res

    def calibrate(context: str) -> _Fit | None:
        try:
            return _calibrate(objs, corners, (w, h), model, fix_aspect_ratio)
        except cv2.error as exc:
            res.reasons.append(f"OpenCV calibration failed{context}: {str(exc).strip().splitlines()[-1]}")
            return None

    fit = calibrate("")
    if fit is None:
        return res
    med = float(np.median(fit.per_view))
    lim = max(outlier_factor * med, outlier_floor_px)
    keep = [i for i, e in enumerate(fit.per_view) if e <= lim]
    rejected = [found[i] for i in range(len(fit.per_view)) if i not in keep]
    res.metrics.update(per_view_rms_px={str(found[i]): e for i, e in enumerate(fit.per_view)},
                       rejected_views=rejected, outlier_limit_px=lim)
    if rejected:
        objs = [objs[i] for i in keep]
        corners = [corners[i] for i in keep]
        kept_ids = [found[i] for i in keep]
        if len(corners) < min_views:
            res.reasons.append(f"only {len(corners)} views left after rejecting outliers {rejected}")
            return res
        fit = calibrate(f" without the outlier views {rejected}")
        if fit is None:
            return res
        res.metrics["per_view_rms_px_final"] = {str(kept_ids[i]): e for i, e in enumerate(fit.per_view)}
    allc = np.vstack(corners)
    cells = set(zip(np.clip((allc[:, 0] * grid / w).astype(int), 0, grid - 1),
                    np.clip((allc[:, 1] * grid / h).astype(int), 0, grid - 1), strict=True))
    coverage = len(cells) / grid**2
    res.metrics.update(rms_px=fit.rms, coverage=coverage, n_views_used=len(corners),
                       n_corners_used=int(allc.shape[0]), fix_aspect_ratio=fix_aspect_ratio)
    names = ("fx", "fy", "cx", "cy", *_DIST_NAMES[model])
    if fit.formal_std is not None:
        formal = fit.formal_std.copy()
        if fix_aspect_ratio:  # OpenCV reports 0 for the fixed fx; fx = fy, so it shares fy's uncertainty
            formal[0] = formal[1]
        res.metrics["std_opencv"] = dict(zip(names, formal.tolist(), strict=True))
    std = _jackknife_std(objs, corners, (w, h), model=model, fix_aspect_ratio=fix_aspect_ratio,
                         max_groups=max_jackknife)
    if std is not None:
        res.std = dict(zip(names, std.tolist(), strict=True))
    try:
        res.camera = CameraModel(name=name, frame_id=frame_id or name, width=w, height=h, K=fit.K, D=fit.D,
                                 model=model)
    except CalibrationError as exc:
        res.reasons.append(f"calibration produced an invalid camera: {exc.message}")
        return res
    if coverage < min_coverage:
        res.reasons.append(f"corners cover {coverage:.0%} of the {grid}x{grid} image grid (need"
                           f" {min_coverage:.0%}): move the board towards the image edges")
    if fit.rms > max_rms_px:
        res.reasons.append(f"RMS reprojection error {fit.rms:.3f} px > {max_rms_px} px")
    if std is None or not np.all(np.isfinite(std)):
        res.reasons.append("the uncertainty could not be estimated (a jackknife sub-calibration failed or gave"
                           " non-finite parameters)")
    else:
        rel = max(res.std["fx"] / fit.K[0, 0], res.std["fy"] / fit.K[1, 1])
        centre_lim = max_center_std_px if max_center_std_px is not None else 0.01 * max(w, h)
        if not rel <= max_focal_rel_std:
            res.reasons.append(f"focal length not determined: jackknife std {rel:.1%} of f > {max_focal_rel_std:.1%}"
                               " (tilt the board more, and show it at several distances)")
        if not max(res.std["cx"], res.std["cy"]) <= centre_lim:
            res.reasons.append(f"principal point not determined: jackknife std"
                               f" {max(res.std['cx'], res.std['cy']):.2f} px > {centre_lim:.2f} px")
    if not res.reasons:
        res.verdict = OK
    return res
