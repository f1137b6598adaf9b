"""Camera intrinsics from checkerboard images (OpenCV ``calibrateCamera`` / ``fisheye.calibrate``).

Per-view RMS reprojection errors are computed; views whose error exceeds
``max(outlier_factor · median, outlier_floor_px)`` are dropped and the calibration is re-run once.
Coverage is the fraction of a ``grid × grid`` partition of the image that holds at least one corner over
all kept views.  Verdict ``refused`` when fewer than ``min_views`` views remain, coverage is below
``min_coverage``, or the final RMS exceeds ``max_rms_px``.
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


@dataclass
class IntrinsicsResult:
    """Verdict, the calibrated :class:`CameraModel` (None when refused before calibrating), and metrics."""

    verdict: str
    camera: CameraModel | None
    metrics: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    def to_dict(self) -> dict[str, Any]:
        cam = None
        if self.camera is not None:
            cam = {"model": self.camera.model, "width": self.camera.width, "height": self.camera.height,
                   "K": self.camera.K.tolist(), "D": self.camera.D.tolist()}
        return {"tool": "intrinsics", "verdict": self.verdict, "reasons": self.reasons, "camera": cam,
                "metrics": _jsonable(self.metrics)}


def _calibrate(obj: list[F64], img: list[F64], size: tuple[int, int],
               model: str) -> tuple[float, F64, F64, list[float]]:
    """(rms, K, D, per-view RMS)."""
    if model == "equidistant":
        o = [x.reshape(-1, 1, 3).astype(np.float64) for x in obj]
        i = [x.reshape(-1, 1, 2).astype(np.float64) for x in img]
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
        crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
        rms, K, D, rv, tv = cv2.fisheye.calibrate(o, i, size, np.eye(3), np.zeros(4), flags=flags, criteria=crit)
        errs = []
        for oo, ii, r, t in zip(o, i, rv, tv, strict=True):
            p, _ = cv2.fisheye.projectPoints(oo, r, t, K, D)
            errs.append(float(np.sqrt(np.mean(np.sum((p.reshape(-1, 2) - ii.reshape(-1, 2)) ** 2, axis=1)))))
        return float(rms), K, D.reshape(-1), errs
    o32 = [x.astype(np.float32) for x in obj]
    i32 = [x.astype(np.float32).reshape(-1, 1, 2) for x in img]
    flags = cv2.CALIB_RATIONAL_MODEL if model == "rational_polynomial" else 0
    rms, K, D, rv, tv = cv2.calibrateCamera(o32, i32, size, None, None, flags=flags)
    errs = []
    for oo, ii, r, t in zip(o32, i32, rv, tv, strict=True):
        p, _ = cv2.projectPoints(oo, r, t, K, D)
        errs.append(float(np.sqrt(np.mean(np.sum((p.reshape(-1, 2) - ii.reshape(-1, 2)) ** 2, axis=1)))))
    n = 8 if model == "rational_polynomial" else 5
    return float(rms), K, D.reshape(-1)[:n], errs


def calibrate_intrinsics(
    images: Sequence[npt.ArrayLike], pattern: tuple[int, int], square_m: float, *, model: str = "plumb_bob",
    name: str = "camera", frame_id: str | None = None, min_views: int = 5, min_coverage: float = 0.5,
    grid: int = 4, outlier_factor: float = 3.0, outlier_floor_px: float = 1.0, max_rms_px: float = 1.0,
) -> IntrinsicsResult:
    """Calibrate ``model`` (``plumb_bob``, ``rational_polynomial`` or ``equidistant``) from images of a
    ``pattern = (cols, rows)`` inner-corner checkerboard with ``square_m`` squares."""
    if model not in ("plumb_bob", "rational_polynomial", "equidistant"):
        raise CalibrationError(f"unsupported model {model!r} (plumb_bob, rational_polynomial, equidistant)")
    if not images:
        raise CalibrationError("no images given")
    shapes = {np.asarray(im).shape[:2] for im in images}
    if len(shapes) != 1:
        raise CalibrationError(f"images have different sizes: {sorted(shapes)}")
    h, w = shapes.pop()
    obj0 = board_object_points(pattern, square_m)
    found: list[int] = []
    corners: list[F64] = []
    for k, im in enumerate(images):
        c = detect_corners(im, pattern)
        if c is not None:
            found.append(k)
            corners.append(c)
    res = IntrinsicsResult(REFUSED, None)
    res.metrics.update(n_images=len(images), views_with_board=found,
                       views_without_board=[k for k in range(len(images)) if k not in found])
    if len(found) < min_views:
        res.reasons.append(f"checkerboard {pattern[0]}x{pattern[1]} found in {len(found)} of {len(images)} images"
                           f" (need {min_views})")
        return res
    rms, K, D, errs = _calibrate([obj0] * len(corners), corners, (w, h), model)
    med = float(np.median(errs))
    lim = max(outlier_factor * med, outlier_floor_px)
    keep = [i for i, e in enumerate(errs) if e <= lim]
    rejected = [found[i] for i in range(len(errs)) if i not in keep]
    res.metrics.update(per_view_rms_px={str(found[i]): e for i, e in enumerate(errs)}, rejected_views=rejected,
                       outlier_limit_px=lim)
    if rejected:
        corners = [corners[i] for i in keep]
        kept_ids = [found[i] for i in keep]
        if len(corners) < min_views:
            res.reasons.append(f"only {len(corners)} views left after rejecting outliers {rejected}")
            return res
        rms, K, D, errs = _calibrate([obj0] * len(corners), corners, (w, h), model)
        res.metrics["per_view_rms_px_final"] = {str(kept_ids[i]): e for i, e in enumerate(errs)}
    allc = np.vstack(corners)
    cells = set(zip(np.clip((allc[:, 0] * grid / w).astype(int), 0, grid - 1),
                    np.clip((allc[:, 1] * grid / h).astype(int), 0, grid - 1), strict=True))
    coverage = len(cells) / grid**2
    res.metrics.update(rms_px=rms, coverage=coverage, n_views_used=len(corners))
    try:
        res.camera = CameraModel(name=name, frame_id=frame_id or name, width=w, height=h, K=K, D=D, model=model)
    except CalibrationError as exc:
        res.reasons.append(f"calibration produced an invalid camera: {exc.message}")
        return res
    if coverage < min_coverage:
        res.reasons.append(f"corners cover {coverage:.0%} of the {grid}x{grid} image grid (need"
                           f" {min_coverage:.0%}): move the board towards the image edges")
    if rms > max_rms_px:
        res.reasons.append(f"RMS reprojection error {rms:.3f} px > {max_rms_px} px")
    if not res.reasons:
        res.verdict = OK
    return res
