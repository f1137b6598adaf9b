"""PointPillars stages around an ``onnx_model`` stage running a PointPillars-contract network.

The contract is the one OpenPCDet's PointPillars export and NVIDIA's CUDA-PointPillars use (see
``models/pointpillars/README.md`` for the card of a user's own export):

- ``pillars_input``: PointCloud → the network's three input tensors (``Tensor`` edges) ``voxels``
  ``[N, 32, 4]`` float32 (x, y, z, intensity of up to 32 points per pillar, zero rows past the count),
  ``voxel_num`` ``[N]`` int32 (points per pillar) and ``voxel_idxs`` ``[N, 4]`` int32 (batch 0, z 0, y, x
  cell), by :class:`edgefuse.fusion.voxel.PillarVoxelizer` (Numba; no decoration: the network does it).
- ``pointpillars_decode``: the head's three outputs (``cls_preds``, ``box_preds``, ``dir_cls_preds``,
  channel-last ``Tensor`` edges) → :class:`~edgefuse.objects.types.Detections3D` by
  :class:`edgefuse.objects.pillars_decode.PillarsDecoder` (Numba), for the ``wbf_3d`` / ``track`` stages.

Both take the head geometry as parameters whose defaults are OpenPCDet's KITTI PointPillars config
(``tools/cfgs/kitti_models/pointpillar.yaml``); the two stages of one pipeline must agree on
``point_range`` and ``voxel_size`` (a YAML anchor keeps them in one place).  Output arrays are owned by the
stage and overwritten by its next call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import EdgefuseError, MessageError, PipelineError
from edgefuse.fusion.voxel import PillarVoxelizer
from edgefuse.msgs.types import PointCloud, TensorData
from edgefuse.objects.pillars_decode import KITTI_POINTPILLARS, AnchorConfig, PillarsDecoder
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

__all__ = ["PillarsInputParams", "PillarsInputStage", "PointPillarsDecodeParams", "PointPillarsDecodeStage"]

_K = KITTI_POINTPILLARS
#: largest |coordinate| [m] of a point range
MAX_EXTENT_M = 10_000.0


def _range_problems(point_range: tuple[float, ...], voxel_size: tuple[float, ...]) -> list[str]:
    r = point_range
    if not (r[3] > r[0] and r[4] > r[1] and r[5] > r[2]):
        return [f"point_range must be [x_min, y_min, z_min, x_max, y_max, z_max] with max > min, got {list(r)}"]
    cells = round((r[3] - r[0]) / voxel_size[0]) * round((r[4] - r[1]) / voxel_size[1])
    if cells > 1 << 26:
        return [f"point_range / voxel_size gives {cells} BEV cells (at most {1 << 26})"]
    return []


@dataclass(frozen=True, kw_only=True)
class PillarsInputParams(StageParams):
    """Parameters of ``pillars_input``."""

    point_range: tuple[float, ...] = param(_K.point_range, unit="m", min_len=6, max_len=6, ge=-MAX_EXTENT_M,
                                           le=MAX_EXTENT_M, doc="[x_min, y_min, z_min, x_max, y_max, z_max]")
    voxel_size: tuple[float, ...] = param(_K.voxel_size, unit="m", min_len=2, max_len=3, gt=0.0, le=1_000.0,
                                          doc="[sx, sy] (or [sx, sy, sz]: z is always the whole range)")
    max_points_per_pillar: int = param(32, ge=1, le=1024, doc="points kept per pillar (the first ones)")
    max_pillars: int = param(16_000, ge=1, le=1_000_000,
                             doc="pillars kept (OpenPCDet KITTI: 16000 train, 40000 test)")
    fields: tuple[str, ...] = param(("x", "y", "z", "intensity"), min_len=3, max_len=64, unique=True,
                                    doc="point fields of each row of voxels, in order (x, y, z first)")
    on_cap: Literal["stop", "continue"] = param("continue", doc="at max_pillars: stop, or continue "
                                                "(mmdet3d/spconv: later points still fill existing pillars)")

    def check(self) -> list[str]:
        """A non-empty range of a bounded grid, x, y, z as the first fields."""
        problems = _range_problems(self.point_range, self.voxel_size)
        if tuple(self.fields[:3]) != ("x", "y", "z"):
            problems.append(f"fields must start with x, y, z, got {list(self.fields)}")
        return problems


@register_stage("pillars_input")
class PillarsInputStage(Stage):
    """PointCloud → PointPillars contract tensors ``voxels`` [N, P, F], ``voxel_num`` [N], ``voxel_idxs`` [N, 4].

    A cloud with no point in range gives one empty pillar (``voxel_num`` 0 at cell 0, 0), so the network
    always gets N >= 1.  ``report()``: points outside the range, pillars and points dropped at the caps.
    """

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    outputs: ClassVar[dict[str, str]] = {"voxels": "Tensor", "voxel_num": "Tensor", "voxel_idxs": "Tensor"}
    Params = PillarsInputParams
    params: PillarsInputParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        f = len(p.fields)
        try:
            self.voxelizer = PillarVoxelizer(p.voxel_size[:2], p.point_range,
                                             max_points_per_pillar=p.max_points_per_pillar,
                                             max_pillars=p.max_pillars, augment=False, coord_order="zyx",
                                             on_cap=p.on_cap, num_features=f)
        except EdgefuseError as exc:
            raise PipelineError(f"stage '{name}': {exc}") from None
        self._points = np.zeros((0, f), dtype=np.float32)
        self._voxels = np.zeros((p.max_pillars, p.max_points_per_pillar, f), dtype=np.float32)
        self._num = np.zeros(p.max_pillars, dtype=np.int32)
        self._idxs = np.zeros((p.max_pillars, 4), dtype=np.int32)
        self.counts = {"points_outside": 0, "dropped_pillars": 0, "dropped_points": 0, "empty_clouds": 0}

    def start(self) -> None:
        """Compile the voxelizer."""
        self.voxelizer.warmup()

    def _rows(self, cloud: PointCloud) -> npt.NDArray[np.float32]:
        pts = cloud.points
        names = pts.dtype.names or ()
        missing = [f for f in self.params.fields if f not in names]
        if missing:
            raise MessageError(f"stage '{self.name}': point cloud has no field(s) {missing} (fields: {list(names)})",
                               stamp_ns=cloud.stamp_ns)
        n = int(pts.shape[0])
        if self._points.shape[0] < n:
            self._points = np.zeros((n, len(self.params.fields)), dtype=np.float32)
        rows = self._points[:n]
        for j, name in enumerate(self.params.fields):
            col = pts[name]
            if col.ndim != 1:
                raise MessageError(f"stage '{self.name}': point field {name!r} has count > 1", stamp_ns=cloud.stamp_ns)
            rows[:, j] = col
        return rows

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        pil = self.voxelizer.voxelize(self._rows(cloud))
        self.counts["points_outside"] += pil.n_outside
        self.counts["dropped_pillars"] += pil.n_dropped_voxels
        self.counts["dropped_points"] += pil.n_dropped_points
        n = pil.n_pillars
        if n == 0:
            self.counts["empty_clouds"] += 1
            self._voxels[0] = 0.0
            self._num[0] = 0
            self._idxs[0] = 0
            n = 1
        else:
            self._voxels[:n] = pil.features
            self._num[:n] = pil.num_points
            self._idxs[:n, 0] = 0  # batch
            self._idxs[:n, 1:] = pil.coords  # z (0), y, x
        frame = cloud.frame_id
        return {"voxels": TensorData(stamp_ns, frame, self._voxels[:n]),
                "voxel_num": TensorData(stamp_ns, frame, self._num[:n]),
                "voxel_idxs": TensorData(stamp_ns, frame, self._idxs[:n])}

    def report(self) -> dict[str, Any] | None:
        return dict(self.counts)


@dataclass(frozen=True, kw_only=True)
class PointPillarsDecodeParams(StageParams):
    """Parameters of ``pointpillars_decode`` (defaults: OpenPCDet's KITTI PointPillars)."""

    class_names: tuple[str, ...] = param(_K.class_names, min_len=1, max_len=256, unique=True,
                                         doc="one per class (CLASS_NAMES); label i is class_names[i]")
    anchor_sizes: tuple[float, ...] = param(tuple(v for s in _K.sizes for v in s), unit="m", min_len=3, gt=0.0,
                                            le=1_000.0, doc="dx, dy, dz of each class's anchor, flattened")
    anchor_bottom_heights: tuple[float, ...] = param(_K.bottom_heights, unit="m", min_len=1, ge=-MAX_EXTENT_M,
                                                     le=MAX_EXTENT_M, doc="anchor bottom z, one per class")
    anchor_rotations: tuple[float, ...] = param(_K.rotations, unit="rad", min_len=1, max_len=16, ge=-7.0, le=7.0,
                                                doc="anchor headings (the same for every class)")
    point_range: tuple[float, ...] = param(_K.point_range, unit="m", min_len=6, max_len=6, ge=-MAX_EXTENT_M,
                                           le=MAX_EXTENT_M, doc="[x_min, y_min, z_min, x_max, y_max, z_max]")
    voxel_size: tuple[float, ...] = param(_K.voxel_size, unit="m", min_len=3, max_len=3, gt=0.0, le=1_000.0,
                                          doc="[sx, sy, sz]")
    feature_stride: int = param(_K.feature_stride, ge=1, le=64, doc="BEV cells per feature-map cell")
    dir_offset: float = param(_K.dir_offset, unit="rad", ge=-7.0, le=7.0, doc="DIR_OFFSET")
    dir_limit_offset: float = param(_K.dir_limit_offset, ge=-1.0, le=1.0, doc="DIR_LIMIT_OFFSET")
    num_dir_bins: int = param(_K.num_dir_bins, ge=1, le=64, doc="NUM_DIR_BINS")
    score_thresh: float = param(0.1, gt=0.0, lt=1.0, doc="keep boxes scored at least this (SCORE_THRESH)")
    max_candidates: int = param(4096, ge=1, le=1_000_000, doc="keep the best this many (NMS_PRE_MAXSIZE)")
    frame_id: str | None = param(None, min_len=1, doc="frame of the boxes (default: the input tensors' frame)")

    def anchor_config(self) -> AnchorConfig:
        """The decoder's :class:`AnchorConfig` (raises ParameterError for an inconsistent one)."""
        s = self.anchor_sizes
        return AnchorConfig(class_names=self.class_names,
                            sizes=tuple((s[i], s[i + 1], s[i + 2]) for i in range(0, len(s) - 2, 3)),
                            bottom_heights=self.anchor_bottom_heights, rotations=self.anchor_rotations,
                            point_range=tuple(self.point_range),  # type: ignore[arg-type]  # 6 by min/max_len
                            voxel_size=tuple(self.voxel_size),  # type: ignore[arg-type]  # 3 by min/max_len
                            feature_stride=self.feature_stride, dir_offset=self.dir_offset,
                            dir_limit_offset=self.dir_limit_offset, num_dir_bins=self.num_dir_bins)

    def check(self) -> list[str]:
        """Three sizes and one bottom height per class; a feature map of at least 2 x 2 cells."""
        c = len(self.class_names)
        problems = _range_problems(self.point_range, self.voxel_size)
        if len(self.anchor_sizes) != 3 * c:
            problems.append(f"anchor_sizes needs 3 numbers per class ({3 * c}), got {len(self.anchor_sizes)}")
        if len(self.anchor_bottom_heights) != c:
            problems.append(f"anchor_bottom_heights needs one per class ({c}), got {len(self.anchor_bottom_heights)}")
        if not problems:
            try:
                self.anchor_config()
            except EdgefuseError as exc:
                problems.append(exc.message)
        return problems


@register_stage("pointpillars_decode")
class PointPillarsDecodeStage(Stage):
    """PointPillars anchor-head outputs (channel-last ``[1, ny, nx, A*C | A*7 | A*B]``) → Detections3D.

    ``report()``: boxes out, and boxes above the threshold before the ``max_candidates`` cut, and boxes
    dropped for non-finite values (a head that emits NaN/inf).
    """

    inputs: ClassVar[dict[str, str]] = {"cls_preds": "Tensor", "box_preds": "Tensor", "dir_cls_preds": "Tensor"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections3D"}
    Params = PointPillarsDecodeParams
    params: PointPillarsDecodeParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        try:
            self.decoder = PillarsDecoder(p.anchor_config(), score_thresh=p.score_thresh,
                                          max_candidates=p.max_candidates)
        except EdgefuseError as exc:
            raise PipelineError(f"stage '{name}': {exc}") from None
        self.counts = {"frames": 0, "boxes_out": 0, "boxes_above_thresh": 0, "boxes_nonfinite": 0}

    def start(self) -> None:
        """Compile the decoder."""
        self.decoder.warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        t = [inputs[k] for k in ("cls_preds", "box_preds", "dir_cls_preds")]
        frame = self.params.frame_id or t[0].frame_id
        try:
            dets = self.decoder.decode(t[0].data, t[1].data, t[2].data, stamp_ns=stamp_ns, frame_id=frame)
        except EdgefuseError as exc:
            raise MessageError(f"stage '{self.name}': {exc}", stamp_ns=stamp_ns) from None
        self.counts["frames"] += 1
        self.counts["boxes_out"] += len(dets)
        self.counts["boxes_above_thresh"] += self.decoder.n_above
        self.counts["boxes_nonfinite"] += self.decoder.n_nonfinite
        return {"detections": dets}

    def report(self) -> dict[str, Any] | None:
        return dict(self.counts)
