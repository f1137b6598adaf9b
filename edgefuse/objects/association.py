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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import EdgefuseError
from edgefuse.objects import _kernels as kern

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class AssociationError(EdgefuseError):
    """Bad input to an association function (shape, non-finite values, infeasible problem)."""


def _as2d(a: npt.ArrayLike, cols: int, what: str) -> F64:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, cols)
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise AssociationError(f"{what}: expected shape (N, {cols}), got {arr.shape}")
    return arr


def iou_2d(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """(Na, Nb) IoU of axis-aligned boxes x1, y1, x2, y2 (0 for disjoint or degenerate pairs)."""
    return kern._iou_matrix_2d(_as2d(a, 4, "boxes a"), _as2d(b, 4, "boxes b"))


def _bev_cols(a: npt.ArrayLike, what: str) -> F64:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5))
    if arr.ndim != 2 or arr.shape[1] not in (5, 7):
        raise AssociationError(f"{what}: expected (N, 5) x,y,l,w,yaw or (N, 7) x,y,z,l,w,h,yaw, got {arr.shape}")
    if arr.shape[1] == 7:
        arr = np.ascontiguousarray(arr[:, [0, 1, 3, 4, 6]])
    return arr


def bev_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """(Na, Nb) exact rotated bird's-eye-view IoU.

    Rows are (x, y, l, w, yaw) or (x, y, z, l, w, h, yaw); ``yaw`` in radians about z.
    """
    return kern._bev_iou_matrix(_bev_cols(a, "boxes a"), _bev_cols(b, "boxes b"))


def mahalanobis_sq(pred: npt.ArrayLike, cov: npt.ArrayLike, meas: npt.ArrayLike) -> F64:
    """(N, M) squared Mahalanobis distances of measurements ``meas`` (M, d) to predictions ``pred``
    (N, d) with innovation covariances ``cov`` (N, d, d) (or one (d, d) for all).

    A non-invertible or non-finite covariance gives a row of ``inf`` (nothing gates in).
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
    s_inv = np.empty((p.shape[0], d, d))
    bad = np.zeros(p.shape[0], dtype=bool)
    for i in range(p.shape[0]):
        try:
            if not np.all(np.isfinite(c[i])):
                raise np.linalg.LinAlgError
            s_inv[i] = np.linalg.inv(c[i])
        except np.linalg.LinAlgError:
            bad[i] = True
            s_inv[i] = 0.0
    out: F64 = kern._mahalanobis_matrix(np.ascontiguousarray(p), s_inv, np.ascontiguousarray(z))
    out[bad] = np.inf
    return out


def center_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """(Na, Nb) Euclidean distance between centre rows of equal dimension."""
    pa = np.atleast_2d(np.asarray(a, dtype=np.float64))
    pb = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if pb.size == 0 or pa.size == 0:
        return np.zeros((pa.shape[0] if pa.size else 0, pb.shape[0] if pb.size else 0))
    if pa.shape[1] != pb.shape[1]:
        raise AssociationError(f"centre dimensions differ: {pa.shape[1]} vs {pb.shape[1]}")
    return kern._center_distance_matrix(np.ascontiguousarray(pa), np.ascontiguousarray(pb))


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


def assign(cost: npt.ArrayLike, max_cost: float) -> tuple[I64, I64, I64, I64]:
    """Gated optimal assignment: minimise Σ matched cost + ``max_cost`` × (unmatched rows).

    Pairs costing more than ``max_cost`` (or inf/NaN) are never matched.  Returns
    (matched rows, matched cols, unmatched rows, unmatched cols).
    """
    c = np.array(cost, dtype=np.float64, copy=True)
    if c.ndim != 2:
        raise AssociationError(f"cost matrix must be 2-D, got shape {c.shape}")
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
                     camera: str, *, min_iou: float = 0.3) -> tuple[I64, I64, F64]:
    """Match 3-D boxes (in ``from_frame``, e.g. a LiDAR or radar frame) to 2-D camera boxes.

    The 3-D boxes are projected into ``camera`` (:func:`project_boxes_3d`), the IoU with the 2-D boxes
    computed, and the optimal assignment taken with cost 1 - IoU gated at IoU ≥ ``min_iou``.
    Returns (indices into boxes7, indices into boxes2d, IoU of each pair).
    """
    proj, ok = project_boxes_3d(boxes7, rig, camera, from_frame)
    b2 = _as2d(boxes2d, 4, "2-D boxes")
    iou = np.zeros((proj.shape[0], b2.shape[0]))
    if ok.any() and b2.shape[0]:
        iou[ok] = iou_2d(proj[ok], b2)
    rows, cols, _, _ = assign(1.0 - iou, 1.0 - min_iou)
    return rows, cols, iou[rows, cols]


def associate_frames(centers_a: npt.ArrayLike, frame_a: str, centers_b: npt.ArrayLike, frame_b: str, rig: Any,
                     *, max_distance_m: float = 2.0, bev: bool = False) -> tuple[I64, I64, F64]:
    """Match object centres observed by two sensors (e.g. LiDAR and radar, or a camera's 3-D boxes) through the rig.

    ``centers_b`` (M, 3) in ``frame_b`` are moved into ``frame_a`` with the rig's static transform
    ``T_a_from_b`` (looked up, never assumed), then matched to ``centers_a`` (N, 3) by optimal assignment on
    the Euclidean centre distance (``bev=True``: x/y only, for radar that measures no height), gated at
    ``max_distance_m``.  Returns (indices into a, indices into b, distance of each pair in metres).

    Raises:
        AssociationError: bad shapes or a non-positive gate; CalibrationError: no transform between the frames.
    """
    a = _as2d(centers_a, 3, "centers_a")
    b = _as2d(centers_b, 3, "centers_b")
    if not max_distance_m > 0:
        raise AssociationError(f"max_distance_m must be > 0, got {max_distance_m}")
    T = np.asarray(rig.transform(frame_a, frame_b).matrix, dtype=np.float64)
    b_in_a = b @ T[:3, :3].T + T[:3, 3]
    axes = slice(0, 2) if bev else slice(0, 3)
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
