"""Object-level payloads: 2-D / 3-D detections and tracks as numpy structured arrays in dataclasses.

Edge type names (pipeline YAML): ``Detections2D``, ``Detections3D``, ``Tracks``.

Box conventions
---------------
- 2-D: ``x1, y1, x2, y2`` (pixels or normalised image coordinates), ``x1 < x2``, ``y1 < y2``.
- 3-D: centre ``x, y, z`` (m) in ``frame_id``; ``l`` along the box's own x axis, ``w`` along its y axis,
  ``h`` along z (m); ``yaw`` (rad) about the frame's z axis (z up).  BEV = the x-y plane.
- ``score`` in [0, 1] is not enforced (finite only), ``label`` an int class id, ``id`` an int
  (-1 = none; tracks use it for the track id).
- ``cov``: 2-D — covariance of the box centre (cx, cy), 2×2; 3-D — covariance of (x, y, z, yaw),
  4×4.  All-NaN means "no covariance given".

:func:`sanitize_2d` / :func:`sanitize_3d` drop bad rows (non-finite, zero-size, inverted,
non-PSD covariance) and count each reason in a :class:`Rejections` counter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

DET2D_DTYPE = np.dtype(
    [
        ("x1", np.float64), ("y1", np.float64), ("x2", np.float64), ("y2", np.float64),
        ("score", np.float64), ("label", np.int32), ("id", np.int64), ("cov", np.float64, (2, 2)),
    ]
)
DET3D_DTYPE = np.dtype(
    [
        ("x", np.float64), ("y", np.float64), ("z", np.float64),
        ("l", np.float64), ("w", np.float64), ("h", np.float64), ("yaw", np.float64),
        ("score", np.float64), ("label", np.int32), ("id", np.int64), ("cov", np.float64, (4, 4)),
    ]
)
#: track status values (``status`` field of :data:`TRACK_DTYPE`)
TENTATIVE, CONFIRMED, COASTING = 0, 1, 2
TRACK_DTYPE = np.dtype(
    [
        ("id", np.int64), ("label", np.int32), ("score", np.float64), ("status", np.uint8),
        ("x", np.float64), ("y", np.float64), ("z", np.float64),
        ("l", np.float64), ("w", np.float64), ("h", np.float64), ("yaw", np.float64),
        ("vx", np.float64), ("vy", np.float64),
        ("hits", np.int32), ("misses", np.int32), ("age", np.int32),
        ("cov", np.float64, (4, 4)),
    ]
)

Rejections = Counter  # reason -> count; the type alias documents intent


@dataclass(slots=True)
class Detections2D:
    """2-D detections of one image: ``boxes`` is a (N,) array of :data:`DET2D_DTYPE`."""

    stamp_ns: int
    frame_id: str
    boxes: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, DET2D_DTYPE))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def xyxy(self) -> npt.NDArray[np.float64]:
        """(N, 4) float64 copy of x1, y1, x2, y2."""
        b = self.boxes
        return np.stack([b["x1"], b["y1"], b["x2"], b["y2"]], axis=1).astype(np.float64)


@dataclass(slots=True)
class Detections3D:
    """3-D detections: ``boxes`` is a (N,) array of :data:`DET3D_DTYPE` in ``frame_id``."""

    stamp_ns: int
    frame_id: str
    boxes: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, DET3D_DTYPE))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def array7(self) -> npt.NDArray[np.float64]:
        """(N, 7) float64 copy of x, y, z, l, w, h, yaw."""
        b = self.boxes
        return np.stack([b[k] for k in ("x", "y", "z", "l", "w", "h", "yaw")], axis=1).astype(np.float64)


@dataclass(slots=True)
class Tracks:
    """Tracker output: ``tracks`` is a (N,) array of :data:`TRACK_DTYPE` in ``frame_id``."""

    stamp_ns: int
    frame_id: str
    tracks: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, TRACK_DTYPE))

    def __len__(self) -> int:
        return int(self.tracks.shape[0])


def detections_2d(  # noqa: PLR0917
    stamp_ns: int, frame_id: str, xyxy: npt.ArrayLike, scores: npt.ArrayLike | None = None,
    labels: npt.ArrayLike | None = None, cov: npt.ArrayLike | None = None,
) -> Detections2D:
    """Build :class:`Detections2D` from (N, 4) boxes, (N,) scores and labels, optional (N, 2, 2) cov."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.zeros(b.shape[0], DET2D_DTYPE)
    for i, k in enumerate(("x1", "y1", "x2", "y2")):
        out[k] = b[:, i]
    out["score"] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    out["label"] = 0 if labels is None else np.asarray(labels).reshape(-1)
    out["id"] = -1
    out["cov"] = np.nan if cov is None else np.asarray(cov, dtype=np.float64).reshape(-1, 2, 2)
    return Detections2D(int(stamp_ns), frame_id, out)


def detections_3d(  # noqa: PLR0917
    stamp_ns: int, frame_id: str, boxes7: npt.ArrayLike, scores: npt.ArrayLike | None = None,
    labels: npt.ArrayLike | None = None, cov: npt.ArrayLike | None = None,
) -> Detections3D:
    """Build :class:`Detections3D` from (N, 7) x, y, z, l, w, h, yaw, scores, labels, optional (N, 4, 4) cov."""
    b = np.asarray(boxes7, dtype=np.float64).reshape(-1, 7)
    out = np.zeros(b.shape[0], DET3D_DTYPE)
    for i, k in enumerate(("x", "y", "z", "l", "w", "h", "yaw")):
        out[k] = b[:, i]
    out["score"] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    out["label"] = 0 if labels is None else np.asarray(labels).reshape(-1)
    out["id"] = -1
    out["cov"] = np.nan if cov is None else np.asarray(cov, dtype=np.float64).reshape(-1, 4, 4)
    return Detections3D(int(stamp_ns), frame_id, out)


def psd_ok(cov: npt.NDArray[np.float64], tol: float = 1e-9) -> bool:
    """Whether ``cov`` is finite, symmetric (relative ``tol``) and positive semidefinite."""
    if not np.all(np.isfinite(cov)):
        return False
    scale = max(float(np.max(np.abs(cov))), 1e-300)
    if np.max(np.abs(cov - cov.T)) > tol * scale:
        return False
    return bool(np.linalg.eigvalsh(0.5 * (cov + cov.T))[0] >= -tol * scale)


def _cov_mask(cov: npt.NDArray[np.float64], rej: Counter[str]) -> npt.NDArray[np.bool_]:
    """Rows whose covariance is absent (all NaN) or valid PSD; counts ``bad_covariance``."""
    ok = np.ones(cov.shape[0], dtype=bool)
    for i in range(cov.shape[0]):
        c = cov[i]
        if np.all(np.isnan(c)):
            continue
        if not psd_ok(c):
            ok[i] = False
    _ = rej
    return ok


def sanitize_2d(boxes: npt.NDArray[Any], rej: Counter[str] | None = None) -> tuple[npt.NDArray[Any], Counter[str]]:
    """Drop bad 2-D boxes; returns (kept rows, counter of reasons).

    Reasons: ``non_finite`` (NaN/inf coordinate or score), ``inverted`` (x2 < x1 or y2 < y1),
    ``zero_size`` (x2 == x1 or y2 == y1), ``bad_covariance`` (partly NaN or not PSD).
    """
    rej = Counter() if rej is None else rej
    if boxes.shape[0] == 0:
        return boxes, rej
    c = np.stack([boxes["x1"], boxes["y1"], boxes["x2"], boxes["y2"], boxes["score"]], axis=1)
    finite = np.all(np.isfinite(c), axis=1)
    dx = boxes["x2"] - boxes["x1"]
    dy = boxes["y2"] - boxes["y1"]
    inverted = finite & ((dx < 0) | (dy < 0))
    zero = finite & ~inverted & ((dx == 0) | (dy == 0))
    rej["non_finite"] += int((~finite).sum())
    rej["inverted"] += int(inverted.sum())
    rej["zero_size"] += int(zero.sum())
    keep = finite & ~inverted & ~zero
    bad_cov = keep & ~_cov_mask(boxes["cov"], Counter())
    rej["bad_covariance"] += int(bad_cov.sum())
    keep &= ~bad_cov
    return boxes[keep], rej


def sanitize_3d(boxes: npt.NDArray[Any], rej: Counter[str] | None = None) -> tuple[npt.NDArray[Any], Counter[str]]:
    """Drop bad 3-D boxes (same reasons as :func:`sanitize_2d`; ``inverted`` = a negative size)."""
    rej = Counter() if rej is None else rej
    if boxes.shape[0] == 0:
        return boxes, rej
    c = np.stack([boxes[k] for k in ("x", "y", "z", "l", "w", "h", "yaw", "score")], axis=1)
    finite = np.all(np.isfinite(c), axis=1)
    sizes = np.stack([boxes["l"], boxes["w"], boxes["h"]], axis=1)
    inverted = finite & np.any(sizes < 0, axis=1)
    zero = finite & ~inverted & np.any(sizes == 0, axis=1)
    rej["non_finite"] += int((~finite).sum())
    rej["inverted"] += int(inverted.sum())
    rej["zero_size"] += int(zero.sum())
    keep = finite & ~inverted & ~zero
    bad_cov = keep & ~_cov_mask(boxes["cov"], Counter())
    rej["bad_covariance"] += int(bad_cov.sum())
    keep &= ~bad_cov
    return boxes[keep], rej


__all__ = [
    "COASTING",
    "CONFIRMED",
    "DET2D_DTYPE",
    "DET3D_DTYPE",
    "TENTATIVE",
    "TRACK_DTYPE",
    "Detections2D",
    "Detections3D",
    "Rejections",
    "Tracks",
    "detections_2d",
    "detections_3d",
    "psd_ok",
    "sanitize_2d",
    "sanitize_3d",
]
