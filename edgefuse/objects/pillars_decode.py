"""Decode the raw outputs of a PointPillars anchor head (OpenPCDet / CUDA-PointPillars contract) into
:class:`~edgefuse.objects.types.Detections3D`.

The network contract is the one OpenPCDet's ``AnchorHeadSingle`` and NVIDIA's CUDA-PointPillars export:
three channel-last maps over the BEV feature grid (``ny`` rows along y, ``nx`` columns along x):

- ``cls_preds``  ``[1, ny, nx, A * C]`` class logits (sigmoid scores),
- ``box_preds``  ``[1, ny, nx, A * 7]`` residual box encodings,
- ``dir_cls_preds`` ``[1, ny, nx, A * B]`` direction-bin logits,

with ``A = n_classes * n_rotations`` anchors per cell, ordered class-major then rotation (OpenPCDet
concatenates the per-class anchor tensors on the anchor-size axis), ``C`` classes and ``B`` direction
bins.  Anchors follow OpenPCDet's ``AnchorGenerator`` (``align_center=False``): the feature map has
``nx = grid_x / stride`` by ``ny = grid_y / stride`` cells and the anchor centres run from ``x_min`` to
``x_max`` (both included) in ``nx`` steps, likewise in y; ``z`` is the class's bottom height plus half
its height.

Decoding (OpenPCDet's ``ResidualCoder`` without sin/cos angle encoding, then its direction classifier):

- ``d = sqrt(dxa^2 + dya^2)``; ``x = xt d + xa``, ``y = yt d + ya``, ``z = zt dza + za``;
  ``dx = exp(dxt) dxa``, ``dy = exp(dyt) dya``, ``dz = exp(dzt) dza``; ``heading = rt + ra``;
- ``period = 2 pi / B``; ``r = heading - dir_offset``;
  ``heading = r - floor(r / period + dir_limit_offset) period + dir_offset + period * argmax(dir)``;
- score = ``sigmoid(max over classes of the logit)``, label = that class (0-based; the first maximum
  wins ties), kept when ``score >= score_thresh``; at most ``max_candidates`` boxes, the highest scores
  (OpenPCDet's ``NMS_PRE_MAXSIZE``), sorted by score (descending; ties by anchor index).

Boxes are in the LiDAR frame of the network (x forward, y left, z up): ``x, y, z`` is the box centre,
``l, w, h = dx, dy, dz`` and ``yaw`` the heading.  NMS / WBF are left to the object stages downstream
(:mod:`edgefuse.objects.boxfusion`), as in OpenPCDet, where NMS runs after this decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse._jit import njit
from edgefuse.errors import InputDataError, ParameterError
from edgefuse.objects.types import DET3D_DTYPE, Detections3D

__all__ = ["KITTI_POINTPILLARS", "AnchorConfig", "PillarsDecoder", "make_anchors"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor and head geometry of a PointPillars anchor head (OpenPCDet's config keys in brackets).

    Args:
        class_names: one per class (``CLASS_NAMES``).
        sizes: (C, 3) anchor ``dx, dy, dz`` per class (``anchor_sizes``, one size per class).
        bottom_heights: (C,) anchor bottom ``z`` per class (``anchor_bottom_heights``).
        rotations: anchor headings in radians, the same for every class (``anchor_rotations``).
        point_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]`` (``POINT_CLOUD_RANGE``).
        voxel_size: ``[sx, sy, sz]`` (``VOXEL_SIZE``).
        feature_stride: BEV grid cells per feature-map cell (``feature_map_stride``).
        dir_offset, dir_limit_offset, num_dir_bins: direction classifier (``DIR_OFFSET`` …).
    """

    class_names: tuple[str, ...]
    sizes: tuple[tuple[float, float, float], ...]
    bottom_heights: tuple[float, ...]
    rotations: tuple[float, ...] = (0.0, 1.57)
    point_range: tuple[float, float, float, float, float, float] = (0.0, -39.68, -3.0, 69.12, 39.68, 1.0)
    voxel_size: tuple[float, float, float] = (0.16, 0.16, 4.0)
    feature_stride: int = 2
    dir_offset: float = 0.78539
    dir_limit_offset: float = 0.0
    num_dir_bins: int = 2

    def __post_init__(self) -> None:
        c = len(self.class_names)
        if c == 0 or len(self.sizes) != c or len(self.bottom_heights) != c:
            raise ParameterError(f"class_names, sizes and bottom_heights must have one entry per class, got "
                                 f"{len(self.class_names)}, {len(self.sizes)}, {len(self.bottom_heights)}")
        if any(len(s) != 3 or not all(v > 0 for v in s) for s in self.sizes):
            raise ParameterError(f"every anchor size must be three positive numbers, got {self.sizes!r}")
        if len(self.rotations) == 0:
            raise ParameterError("rotations must not be empty")
        if len(self.point_range) != 6 or len(self.voxel_size) != 3 or not all(v > 0 for v in self.voxel_size):
            raise ParameterError("point_range needs 6 numbers and voxel_size 3 positive numbers")
        if self.feature_stride < 1 or self.num_dir_bins < 1:
            raise ParameterError("feature_stride and num_dir_bins must be >= 1")
        nx, ny = self.feature_shape
        if nx < 2 or ny < 2:
            raise ParameterError(f"the feature map must be at least 2 x 2 cells, got {nx} x {ny}")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def anchors_per_cell(self) -> int:
        return len(self.class_names) * len(self.rotations)

    @property
    def feature_shape(self) -> tuple[int, int]:
        """``(nx, ny)`` cells of the head's feature map."""
        r, v = self.point_range, self.voxel_size
        gx = round((r[3] - r[0]) / v[0])
        gy = round((r[4] - r[1]) / v[1])
        return gx // self.feature_stride, gy // self.feature_stride


#: OpenPCDet ``tools/cfgs/kitti_models/pointpillar.yaml`` (Car, Pedestrian, Cyclist; 2 rotations).
KITTI_POINTPILLARS = AnchorConfig(
    class_names=("Car", "Pedestrian", "Cyclist"),
    sizes=((3.9, 1.6, 1.56), (0.8, 0.6, 1.73), (1.76, 0.6, 1.73)),
    bottom_heights=(-1.78, -0.6, -0.6),
)


def make_anchors(cfg: AnchorConfig) -> F32:
    """(ny, nx, A, 7) float32 anchors ``x, y, z, dx, dy, dz, heading`` in the head's order."""
    nx, ny = cfg.feature_shape
    r = cfg.point_range
    xs = np.linspace(r[0], r[3], nx, dtype=np.float32)
    ys = np.linspace(r[1], r[4], ny, dtype=np.float32)
    n_rot = len(cfg.rotations)
    out = np.zeros((ny, nx, cfg.anchors_per_cell, 7), np.float32)
    out[..., 0] = xs[None, :, None]
    out[..., 1] = ys[:, None, None]
    for c, (size, bottom) in enumerate(zip(cfg.sizes, cfg.bottom_heights, strict=True)):
        for k, rot in enumerate(cfg.rotations):
            a = c * n_rot + k
            out[:, :, a, 2] = np.float32(bottom) + np.float32(size[2]) / np.float32(2.0)
            out[:, :, a, 3:6] = np.asarray(size, np.float32)
            out[:, :, a, 6] = np.float32(rot)
    return out


@njit()
def _decode(cls: F32, box: F32, dirs: F32, anchors: F32, n_classes: int, n_bins: int, logit_thresh: float,  # noqa: PLR0917
            dir_offset: float, dir_limit_offset: float, out_box: np.ndarray, out_score: np.ndarray,
            out_label: np.ndarray, out_index: np.ndarray) -> int:
    """Decode every anchor whose best logit reaches ``logit_thresh``; returns how many were written."""
    n_anchors = anchors.shape[0]
    period = 2.0 * math.pi / n_bins
    n = 0
    for i in range(n_anchors):
        best = cls[i, 0]
        label = 0
        for c in range(1, n_classes):
            if cls[i, c] > best:
                best = cls[i, c]
                label = c
        if not (best >= logit_thresh):  # NaN logits never pass
            continue
        xa, ya, za = anchors[i, 0], anchors[i, 1], anchors[i, 2]
        dxa, dya, dza, ra = anchors[i, 3], anchors[i, 4], anchors[i, 5], anchors[i, 6]
        diag = math.sqrt(dxa * dxa + dya * dya)
        out_box[n, 0] = box[i, 0] * diag + xa
        out_box[n, 1] = box[i, 1] * diag + ya
        out_box[n, 2] = box[i, 2] * dza + za
        out_box[n, 3] = math.exp(box[i, 3]) * dxa
        out_box[n, 4] = math.exp(box[i, 4]) * dya
        out_box[n, 5] = math.exp(box[i, 5]) * dza
        heading = box[i, 6] + ra
        bin_ = 0
        bbest = dirs[i, 0]
        for b in range(1, n_bins):
            if dirs[i, b] > bbest:
                bbest = dirs[i, b]
                bin_ = b
        rr = heading - dir_offset
        rr = rr - math.floor(rr / period + dir_limit_offset) * period
        out_box[n, 6] = rr + dir_offset + period * bin_
        out_score[n] = 1.0 / (1.0 + math.exp(-best))
        out_label[n] = label
        out_index[n] = i
        n += 1
    return n


class PillarsDecoder:
    """Reusable decoder of one head geometry (anchors built once, kernels compiled in :meth:`warmup`).

    Args:
        config: the head's anchor configuration (default: OpenPCDet's KITTI PointPillars).
        score_thresh: keep boxes whose sigmoid score is at least this (OpenPCDet ``SCORE_THRESH``).
        max_candidates: keep at most this many (the highest scores; ``NMS_PRE_MAXSIZE``).
    """

    def __init__(self, config: AnchorConfig = KITTI_POINTPILLARS, *, score_thresh: float = 0.1,
                 max_candidates: int = 4096) -> None:
        if not (0.0 < score_thresh < 1.0):
            raise ParameterError(f"score_thresh must be in (0, 1), got {score_thresh!r}")
        if isinstance(max_candidates, bool) or not isinstance(max_candidates, int) or max_candidates < 1:
            raise ParameterError(f"max_candidates must be a positive integer, got {max_candidates!r}")
        self.config = config
        self.score_thresh = float(score_thresh)
        self.max_candidates = max_candidates
        self.anchors = make_anchors(config)
        nx, ny = config.feature_shape
        self.nx, self.ny = nx, ny
        a = config.anchors_per_cell
        self._flat_anchors = np.ascontiguousarray(self.anchors.reshape(-1, 7))
        n = self._flat_anchors.shape[0]
        self.shapes = {"cls_preds": (ny, nx, a * config.n_classes), "box_preds": (ny, nx, a * 7),
                       "dir_cls_preds": (ny, nx, a * config.num_dir_bins)}
        self._box = np.zeros((n, 7), np.float64)
        self._score = np.zeros(n, np.float64)
        self._label = np.zeros(n, np.int32)
        self._index = np.zeros(n, np.int64)
        self._logit_thresh = math.log(self.score_thresh / (1.0 - self.score_thresh))
        #: boxes above the threshold before the ``max_candidates`` cut, in the last call
        self.n_above = 0
        #: boxes of the last call dropped because a decoded value was not finite (NaN/inf outputs)
        self.n_nonfinite = 0

    def _check(self, name: str, value: Any) -> F32:
        if not isinstance(value, np.ndarray):
            raise InputDataError(f"{name} must be a numpy array, got {type(value).__name__}")
        want = self.shapes[name]
        arr = value[0] if value.ndim == 4 and value.shape[0] == 1 else value
        if arr.shape != want:
            raise InputDataError(f"{name} must have shape [1, {want[0]}, {want[1]}, {want[2]}] (channel-last), "
                                 f"got {list(value.shape)}")
        if arr.dtype.kind != "f":
            raise InputDataError(f"{name} must be floating point, got {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def warmup(self) -> None:
        """Compile the kernel (or load it from the cache)."""
        self.decode(*(np.zeros((1, *s), np.float32) for s in self.shapes.values()))

    def decode(self, cls_preds: Any, box_preds: Any, dir_cls_preds: Any, *, stamp_ns: int = 0,
               frame_id: str = "lidar") -> Detections3D:
        """Decode one frame's head outputs (see the module docs) into :class:`Detections3D`."""
        cfg = self.config
        n_anchors = self._flat_anchors.shape[0]
        cls = self._check("cls_preds", cls_preds).reshape(n_anchors, cfg.n_classes)
        box = self._check("box_preds", box_preds).reshape(n_anchors, 7)
        dirs = self._check("dir_cls_preds", dir_cls_preds).reshape(n_anchors, cfg.num_dir_bins)
        n = int(_decode(cls, box, dirs, self._flat_anchors, cfg.n_classes, cfg.num_dir_bins, self._logit_thresh,
                        cfg.dir_offset, cfg.dir_limit_offset, self._box, self._score, self._label, self._index))
        finite = np.isfinite(self._box[:n]).all(axis=1)
        self.n_nonfinite = int(n - np.count_nonzero(finite))
        keep = np.flatnonzero(finite)
        self.n_above = int(keep.shape[0])
        k = self.max_candidates
        if keep.shape[0] > k:  # the k best (ties at the cut: lowest anchor index) before the sort
            score = self._score[keep]
            kth = np.partition(score, score.shape[0] - k)[score.shape[0] - k]
            above = keep[score > kth]
            keep = np.concatenate([above, keep[score == kth][: k - above.shape[0]]])
        score, index = self._score[keep], self._index[keep]
        order = keep[np.lexsort((index, -score))[:k]]
        out = np.zeros(order.shape[0], DET3D_DTYPE)
        b = self._box[order]
        for k, key in enumerate(("x", "y", "z", "l", "w", "h", "yaw")):
            out[key] = b[:, k]
        out["score"] = self._score[order]
        out["label"] = self._label[order]
        out["id"] = -1
        out["cov"] = np.nan
        return Detections3D(int(stamp_ns), str(frame_id), out)
