"""Association: IoU matrices, gating, optimal assignment, camera ↔ 3-D association through the rig.

- :func:`iou_2d` — (Na, Nb) IoU of x1, y1, x2, y2 boxes.
- :func:`bev_iou` — exact rotated BEV IoU of (x, y, l, w, yaw) boxes (convex polygon clipping).
- :func:`mahalanobis_sq` / :func:`center_distance` — gating distances.
- :func:`linear_sum_assignment` — minimum-cost assignment (shortest augmenting path, the
  Jonker–Volgenant family), same contract as ``scipy.optimize.linear_sum_assignment`` (rectangular
  matrices, ``inf`` = forbidden; raises when no complete assignment exists).
- :func:`assign` — gated partial assignment for tracking: pairs with cost > ``max_cost`` (or inf) are
  never matched; every row/column may stay unmatched.
- :func:`project_boxes_3d` / :func:`associate_camera` — 3-D boxes (any rig frame) → camera image boxes
  through the rig's transform and :class:`edgefuse.rig.CameraModel`, then IoU matching.

Bad rows never match anything (IoU 0, distance / cost ``inf``); they are not silently lost: every
function takes an optional ``rejected`` counter (``collections.Counter``) to which it adds the number of
bad rows (or cost entries) per reason — ``non_finite_box``, ``inverted_box``, ``zero_size_box``,
``non_finite_center``, ``non_finite_prediction``, ``non_finite_measurement``, ``non_finite_covariance``,
``not_positive_definite``, ``non_finite_cost``, ``not_projected``.  The result shapes do not change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import ObjectsError
from edgefuse.objects import _kernels as kern

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class AssociationError(ObjectsError):
    """Bad input to an association function (shape, non-finite values, infeasible problem)."""


def _as2d(a: npt.ArrayLike, cols: int, what: str) -> F64:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, cols)
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise AssociationError(f"{what}: expected shape (N, {cols}), got {arr.shape}")
    return arr


def _count(rejected: Counter[str] | None, reason: str, n: int) -> None:
    if rejected is not None and n:
        rejected[reason] += int(n)


def _bad_boxes_2d(b: F64, rejected: Counter[str] | None) -> npt.NDArray[np.bool_]:
    """Rows of (N, 4) xyxy boxes that are non-finite, inverted or zero-size (counted)."""
    finite = np.isfinite(b).all(axis=1)
    dx, dy = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    inverted = finite & ((dx < 0) | (dy < 0))
    zero = finite & ~inverted & ((dx == 0) | (dy == 0))
    _count(rejected, "non_finite_box", int((~finite).sum()))
    _count(rejected, "inverted_box", int(inverted.sum()))
    _count(rejected, "zero_size_box", int(zero.sum()))
    return ~finite | inverted | zero  # type: ignore[no-any-return]


def iou_2d(a: npt.ArrayLike, b: npt.ArrayLike, *, rejected: Counter[str] | None = None) -> F64:
    """(Na, Nb) IoU of axis-aligned boxes x1, y1, x2, y2 (0 for disjoint or degenerate pairs).

    Non-finite, inverted (x2 < x1 or y2 < y1) and zero-size boxes have IoU 0 with everything; each such
    row of ``a`` and of ``b`` is counted in ``rejected`` (``non_finite_box``, ``inverted_box``,
    ``zero_size_box``).
    """
    aa, bb = _as2d(a, 4, "boxes a"), _as2d(b, 4, "boxes b")
    if rejected is not None:
        _bad_boxes_2d(aa, rejected)
        _bad_boxes_2d(bb, rejected)
    return kern._iou_matrix_2d(aa, bb)


def _bev_cols(a: npt.ArrayLike, what: str) -> F64:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5))
    if arr.ndim != 2 or arr.shape[1] not in (5, 7):
        raise AssociationError(f"{what}: expected (N, 5) x,y,l,w,yaw or (N, 7) x,y,z,l,w,h,yaw, got {arr.shape}")
    if arr.shape[1] == 7:
        arr = np.ascontiguousarray(arr[:, [0, 1, 3, 4, 6]])
    return arr


def _bad_boxes_bev(b: F64, rejected: Counter[str] | None) -> npt.NDArray[np.bool_]:
    finite = np.isfinite(b).all(axis=1)
    inverted = finite & ((b[:, 2] < 0) | (b[:, 3] < 0))
    zero = finite & ~inverted & ((b[:, 2] == 0) | (b[:, 3] == 0))
    _count(rejected, "non_finite_box", int((~finite).sum()))
    _count(rejected, "inverted_box", int(inverted.sum()))
    _count(rejected, "zero_size_box", int(zero.sum()))
    return ~finite | inverted | zero  # type: ignore[no-any-return]


def bev_iou(a: npt.ArrayLike, b: npt.ArrayLike, *, rejected: Counter[str] | None = None) -> F64:
    """(Na, Nb) exact rotated bird's-eye-view IoU.

    Rows are (x, y, l, w, yaw) or (x, y, z, l, w, h, yaw); ``yaw`` in radians about z.  A row with a
    non-finite value, a negative (``inverted_box``) or zero length / width has IoU 0 with everything and
    is counted in ``rejected``.
    """
    aa, bb = _bev_cols(a, "boxes a"), _bev_cols(b, "boxes b")
    bad_a, bad_b = _bad_boxes_bev(aa, rejected), _bad_boxes_bev(bb, rejected)
    out: F64 = kern._bev_iou_matrix(aa, bb)
    out[bad_a, :] = 0.0
    out[:, bad_b] = 0.0
    return out


def _chol_inverse(c: F64) -> tuple[F64 | None, str]:
    """Inverse of a symmetric positive-definite matrix through Cholesky, or (None, reason)."""
    if not np.all(np.isfinite(c)):
        return None, "non_finite_covariance"
    scale = max(float(np.max(np.abs(c))), 1e-300)
    if np.max(np.abs(c - c.T)) > 1e-9 * scale:
        return None, "not_positive_definite"  # not symmetric: not a covariance
    try:
        L = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return None, "not_positive_definite"
    Li = np.linalg.inv(L)
    if not np.all(np.isfinite(Li)):
        return None, "not_positive_definite"
    return Li.T @ Li, ""


def mahalanobis_sq(pred: npt.ArrayLike, cov: npt.ArrayLike, meas: npt.ArrayLike, *,
                   rejected: Counter[str] | None = None) -> F64:
    """(N, M) squared Mahalanobis distances of measurements ``meas`` (M, d) to predictions ``pred``
    (N, d) with innovation covariances ``cov`` (N, d, d) (or one (d, d) for all).

    Every finite result is ≥ 0.  A covariance that is non-finite, not symmetric or not positive definite
    (Cholesky fails: e.g. -I, a singular matrix) gives a row of ``inf`` (nothing gates in), and so do a
    non-finite prediction (row) or measurement (column).  Each such row / column is counted in
    ``rejected`` (``non_finite_covariance``, ``not_positive_definite``, ``non_finite_prediction``,
    ``non_finite_measurement``).
    """
    p = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    z = np.atleast_2d(np.asarray(meas, dtype=np.float64))
    d = p.shape[1]
    if z.size == 0:
        return np.zeros((p.shape[0], 0))
    if z.shape[1] != d:
        raise AssociationError(f"measurement dimension {z.shape[1]} != prediction dimension {d}")
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 2:
        c = np.broadcast_to(c, (p.shape[0], d, d))
    if c.shape != (p.shape[0], d, d):
        raise AssociationError(f"covariances must have shape {(p.shape[0], d, d)} or {(d, d)}, got {c.shape}")
    s_inv = np.zeros((p.shape[0], d, d))
    bad = np.asarray(~np.isfinite(p).all(axis=1), dtype=bool)
    _count(rejected, "non_finite_prediction", int(bad.sum()))
    for i in range(p.shape[0]):
        if bad[i]:
            continue
        inv, reason = _chol_inverse(c[i])
        if inv is None:
            bad[i] = True
            _count(rejected, reason, 1)
        else:
            s_inv[i] = inv
    bad_z = ~np.isfinite(z).all(axis=1)
    _count(rejected, "non_finite_measurement", int(bad_z.sum()))
    out: F64 = kern._mahalanobis_matrix(np.ascontiguousarray(p), s_inv, np.ascontiguousarray(z))
    np.maximum(out, 0.0, out=out)  # rounding of rᵀ S⁻¹ r for r ≈ 0
    out[bad] = np.inf
    out[:, bad_z] = np.inf
    return out


def center_distance(a: npt.ArrayLike, b: npt.ArrayLike, *, rejected: Counter[str] | None = None) -> F64:
    """(Na, Nb) Euclidean distance between centre rows of equal dimension.

    A row with a non-finite coordinate is at distance ``inf`` from everything (counted in ``rejected`` as
    ``non_finite_center``).
    """
    pa = np.atleast_2d(np.asarray(a, dtype=np.float64))
    pb = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if pb.size == 0 or pa.size == 0:
        return np.zeros((pa.shape[0] if pa.size else 0, pb.shape[0] if pb.size else 0))
    if pa.shape[1] != pb.shape[1]:
        raise AssociationError(f"centre dimensions differ: {pa.shape[1]} vs {pb.shape[1]}")
    bad_a, bad_b = ~np.isfinite(pa).all(axis=1), ~np.isfinite(pb).all(axis=1)
    _count(rejected, "non_finite_center", int(bad_a.sum() + bad_b.sum()))
    out: F64 = kern._center_distance_matrix(np.ascontiguousarray(pa), np.ascontiguousarray(pb))
    out[bad_a, :] = np.inf
    out[:, bad_b] = np.inf
    return out


def linear_sum_assignment(cost: npt.ArrayLike, maximize: bool = False) -> tuple[I64, I64]:
    """Minimum-cost complete assignment (``scipy.optimize.linear_sum_assignment`` contract).

    Returns (row indices ascending, column indices).  ``inf`` entries are forbidden; NaN or ``-inf``
    entries, or a matrix with no complete assignment, raise :class:`AssociationError`.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise AssociationError(f"cost matrix must be 2-D, got shape {c.shape}")
    if maximize:
        c = -c
    if np.isnan(c).any() or np.isneginf(c).any():
        raise AssociationError("cost matrix contains NaN or -inf")
    if c.shape[0] == 0 or c.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transposed = c.shape[0] > c.shape[1]
    work = np.ascontiguousarray(c.T if transposed else c)
    r2c = np.full(work.shape[0], -1, dtype=np.int64)
    if not kern._lsa_wide(work, r2c):
        raise AssociationError("cost matrix is infeasible (no complete assignment avoids forbidden entries)")
    rows = np.arange(work.shape[0], dtype=np.int64)
    if transposed:
        order = np.argsort(r2c)
        return r2c[order], rows[order]
    return rows, r2c


def assign(cost: npt.ArrayLike, max_cost: float, *,
           rejected: Counter[str] | None = None) -> tuple[I64, I64, I64, I64]:
    """Gated optimal assignment: minimise Σ matched cost + ``max_cost`` × (unmatched rows).

    Pairs costing more than ``max_cost`` (or inf/NaN) are never matched.  Returns
    (matched rows, matched cols, unmatched rows, unmatched cols).  NaN and ``-inf`` entries (``+inf`` is
    the documented "forbidden") are counted in ``rejected`` as ``non_finite_cost``.
    """
    c = np.array(cost, dtype=np.float64, copy=True)
    if c.ndim != 2:
        raise AssociationError(f"cost matrix must be 2-D, got shape {c.shape}")
    _count(rejected, "non_finite_cost", int((np.isnan(c) | np.isneginf(c)).sum()))
    n, m = c.shape
    if n == 0 or m == 0:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.arange(n, dtype=np.int64),
                np.arange(m, dtype=np.int64))
    c[~np.isfinite(c) | (c > max_cost)] = np.inf
    padded = np.full((n, m + n), np.inf)
    padded[:, :m] = c
    padded[np.arange(n), m + np.arange(n)] = max_cost
    r2c = np.full(n, -1, dtype=np.int64)
    kern._lsa_wide(np.ascontiguousarray(padded), r2c)  # always feasible: each row has its own dummy
    matched = r2c < m
    rows = np.nonzero(matched)[0].astype(np.int64)
    cols = r2c[matched]
    um_rows = np.nonzero(~matched)[0].astype(np.int64)
    um_cols = np.setdiff1d(np.arange(m, dtype=np.int64), cols)
    return rows, cols, um_rows, um_cols


# ----------------------------------------------------------------------------- through the rig


def box_corners_3d(boxes7: npt.ArrayLike) -> F64:
    """(N, 8, 3) corners of (x, y, z, l, w, h, yaw) boxes (yaw about z; z is the box centre)."""
    b = _as2d(boxes7, 7, "3-D boxes")
    sx = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * 0.5
    sy = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * 0.5
    sz = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * 0.5
    lx = b[:, 3:4] * sx
    ly = b[:, 4:5] * sy
    lz = b[:, 5:6] * sz
    c, s = np.cos(b[:, 6:7]), np.sin(b[:, 6:7])
    out = np.empty((b.shape[0], 8, 3))
    out[:, :, 0] = b[:, 0:1] + c * lx - s * ly
    out[:, :, 1] = b[:, 1:2] + s * lx + c * ly
    out[:, :, 2] = b[:, 2:3] + lz
    return out


def project_boxes_3d(boxes7: npt.ArrayLike, rig: Any, camera: str, from_frame: str,
                     *, clip: bool = True) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Image boxes (N, 4) x1, y1, x2, y2 of 3-D boxes given in ``from_frame``, through ``rig``.

    All eight corners are moved into the camera frame with ``rig.transform`` and projected with the
    rig's camera model; a box is valid when all corners are in front of the camera and its projected
    box overlaps the image (clipped to it when ``clip``).  Invalid rows are NaN.
    """
    cam = rig.camera(camera)
    T = rig.transform(cam.frame_id, from_frame)
    corners = box_corners_3d(boxes7)
    n = corners.shape[0]
    pts = T.apply(corners.reshape(-1, 3))
    uv, valid = cam.project(pts)
    uv = uv.reshape(n, 8, 2)
    ok = valid.reshape(n, 8).all(axis=1)
    out = np.full((n, 4), np.nan)
    if ok.any():
        out[ok, 0] = uv[ok, :, 0].min(axis=1)
        out[ok, 1] = uv[ok, :, 1].min(axis=1)
        out[ok, 2] = uv[ok, :, 0].max(axis=1)
        out[ok, 3] = uv[ok, :, 1].max(axis=1)
    if clip:
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, cam.width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, cam.height)
        degenerate = ok & ((out[:, 2] <= out[:, 0]) | (out[:, 3] <= out[:, 1]))
        out[degenerate] = np.nan
        ok &= ~degenerate
    return out, ok


def associate_camera(boxes7: npt.ArrayLike, from_frame: str, boxes2d: npt.ArrayLike, rig: Any,
                     camera: str, *, min_iou: float = 0.3,
                     rejected: Counter[str] | None = None) -> tuple[I64, I64, F64]:
    """Match 3-D boxes (in ``from_frame``, e.g. a LiDAR or radar frame) to 2-D camera boxes.

    The 3-D boxes are projected into ``camera`` (:func:`project_boxes_3d`), the IoU with the 2-D boxes
    computed, and the optimal assignment taken with cost 1 - IoU gated at IoU ≥ ``min_iou``.
    Returns (indices into boxes7, indices into boxes2d, IoU of each pair).  Rows that cannot match are
    counted in ``rejected``: 3-D boxes with a non-finite value or a size ≤ 0 (``non_finite_box``,
    ``inverted_box``, ``zero_size_box``), valid ones that do not project into the image
    (``not_projected``), and bad 2-D boxes (as :func:`iou_2d`).
    """
    b7 = _as2d(boxes7, 7, "3-D boxes")
    bad7 = _bad_boxes_bev(np.ascontiguousarray(b7[:, [0, 1, 3, 4, 6]]), rejected)
    bad_h = ~bad7 & np.isfinite(b7[:, 5]) & (b7[:, 5] <= 0)
    _count(rejected, "inverted_box", int((bad_h & (b7[:, 5] < 0)).sum()))
    _count(rejected, "zero_size_box", int((bad_h & (b7[:, 5] == 0)).sum()))
    bad_nf = ~bad7 & ~np.isfinite(b7[:, 2] + b7[:, 5])
    _count(rejected, "non_finite_box", int(bad_nf.sum()))
    bad7 = bad7 | bad_h | bad_nf
    proj, ok = project_boxes_3d(b7, rig, camera, from_frame)
    ok &= ~bad7
    _count(rejected, "not_projected", int((~ok & ~bad7).sum()))
    b2 = _as2d(boxes2d, 4, "2-D boxes")
    bad2 = _bad_boxes_2d(b2, rejected)
    iou = np.zeros((proj.shape[0], b2.shape[0]))
    if ok.any() and b2.shape[0]:
        iou[ok] = iou_2d(proj[ok], b2)
        iou[:, bad2] = 0.0
    rows, cols, _, _ = assign(1.0 - iou, 1.0 - min_iou)
    return rows, cols, iou[rows, cols]


def associate_frames(centers_a: npt.ArrayLike, frame_a: str, centers_b: npt.ArrayLike, frame_b: str, rig: Any,
                     *, max_distance_m: float = 2.0, bev: bool = False,
                     rejected: Counter[str] | None = None) -> tuple[I64, I64, F64]:
    """Match object centres observed by two sensors (e.g. LiDAR and radar, or a camera's 3-D boxes) through the rig.

    ``centers_b`` (M, 3) in ``frame_b`` are moved into ``frame_a`` with the rig's static transform
    ``T_a_from_b`` (looked up, never assumed), then matched to ``centers_a`` (N, 3) by optimal assignment on
    the Euclidean centre distance (``bev=True``: x/y only, for radar that measures no height), gated at
    ``max_distance_m``.  Returns (indices into a, indices into b, distance of each pair in metres).  Centres
    with a non-finite coordinate never match and are counted in ``rejected`` (``non_finite_center``).

    Raises:
        AssociationError: bad shapes or a non-positive gate; CalibrationError: no transform between the frames.
    """
    a = _as2d(centers_a, 3, "centers_a")
    b = _as2d(centers_b, 3, "centers_b")
    n_bad = int((~np.isfinite(a).all(axis=1)).sum() + (~np.isfinite(b).all(axis=1)).sum())
    _count(rejected, "non_finite_center", n_bad)
    if not max_distance_m > 0:
        raise AssociationError(f"max_distance_m must be > 0, got {max_distance_m}")
    T = np.asarray(rig.transform(frame_a, frame_b).matrix, dtype=np.float64)
    axes = slice(0, 2) if bev else slice(0, 3)
    with np.errstate(invalid="ignore"):  # non-finite centres (counted above) become NaN, never match
        b_in_a = b @ T[:3, :3].T + T[:3, 3]
        dist = np.sqrt(((a[:, None, axes] - b_in_a[None, :, axes]) ** 2).sum(axis=2)) if a.size and b.size else \
            np.zeros((a.shape[0], b.shape[0]))
    rows, cols, _, _ = assign(dist, max_distance_m)
    return rows, cols, dist[rows, cols]


__all__ = [
    "AssociationError",
    "assign",
    "associate_camera",
    "associate_frames",
    "bev_iou",
    "box_corners_3d",
    "center_distance",
    "iou_2d",
    "linear_sum_assignment",
    "mahalanobis_sq",
    "project_boxes_3d",
]
