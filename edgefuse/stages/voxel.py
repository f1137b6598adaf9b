"""Point-cloud feature stages: BEV grids, crops and ground removal.

- ``bev_grid``: PointCloud (LiDAR or radar points) → bird's-eye-view Image ``32FC<C>`` with the
  requested channels (max/min height, mean intensity, density, occupancy); geometry and channels
  in :mod:`edgefuse.fusion.bev`.
- ``pointcloud_crop``: PointCloud → the points inside an axis-aligned box, a range interval and an
  azimuth/elevation field of view (all optional, combined with AND), every field kept.
- ``ground_removal``: PointCloud → the non-ground points and the ground points, by RANSAC
  (:func:`edgefuse.fusion.pointcloud_ops.ransac_ground`, seeded and deterministic).

Each stage keeps its scratch buffers between calls; output arrays are owned by the stage and
overwritten by its next call (sinks serialise them before that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import EdgefuseError, MessageError, PipelineError
from edgefuse.fusion.bev import BevGrid
from edgefuse.fusion.pointcloud_ops import crop_box, crop_fov, crop_range, ransac_ground
from edgefuse.msgs.image import encoding_layout
from edgefuse.msgs.types import ImageData, PointCloud
from edgefuse.stages._device import StageDevice
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

__all__ = [
    "BevGridParams",
    "BevGridStage",
    "GroundRemovalParams",
    "GroundRemovalStage",
    "PointCloudCropParams",
    "PointCloudCropStage",
]

#: largest |coordinate| [m] of a grid range or crop box
MAX_EXTENT_M = 10_000.0
#: most cells of a BEV grid (each channel is a float32 image of this many cells)
MAX_BEV_CELLS = 1 << 24
BevChannel = Literal["max_z", "min_z", "mean_intensity", "density", "occupancy"]


def _pair_problems(name: str, pair: tuple[float, float] | None, *, allow_equal: bool = False) -> list[str]:
    if pair is None or pair[1] > pair[0] or (allow_equal and pair[1] == pair[0]):
        return []
    relation = ">=" if allow_equal else ">"
    return [f"{name} must be [min, max] with max {relation} min, got {list(pair)}"]


@dataclass(frozen=True, kw_only=True)
class BevGridParams(StageParams):
    """Parameters of ``bev_grid``."""

    x_range: tuple[float, float] = param((0.0, 70.4), unit="m", ge=-MAX_EXTENT_M, le=MAX_EXTENT_M, doc="[min, max]")
    y_range: tuple[float, float] = param((-40.0, 40.0), unit="m", ge=-MAX_EXTENT_M, le=MAX_EXTENT_M,
                                         doc="[min, max]")
    z_range: tuple[float, float] | None = param(None, unit="m", ge=-MAX_EXTENT_M, le=MAX_EXTENT_M,
                                                doc="[min, max] of the points kept (default: all)")
    resolution_m: float = param(0.1, unit="m", gt=0.0, le=1_000.0, doc="cell size")
    channels: tuple[BevChannel, ...] = param(("max_z", "mean_intensity", "density"), min_len=1, max_len=5,
                                             unique=True, doc="output channels, in order")
    density_log_norm: float = param(64.0, ge=0.0, le=1e9, doc="density = min(1, log(n+1)/log(norm)); 0: raw count")
    empty_height: float = param(0.0, unit="m", ge=-MAX_EXTENT_M, le=MAX_EXTENT_M,
                                doc="height channels in empty cells")
    intensity_field: str = param("intensity", min_len=1, doc="per-point field averaged into mean_intensity")
    device: Literal["auto", "cpu", "cuda"] = param(
        "auto", doc="where the grid is computed: auto (CUDA when usable), cpu, cuda")

    def check(self) -> list[str]:
        """Ranges with max > min, a grid of 1 to MAX_BEV_CELLS cells, density_log_norm 0 or > 1."""
        problems = (_pair_problems("x_range", self.x_range) + _pair_problems("y_range", self.y_range)
                    + _pair_problems("z_range", self.z_range))
        if not (self.density_log_norm == 0.0 or self.density_log_norm > 1.0):
            problems.append(f"density_log_norm must be 0 (raw count) or > 1, got {self.density_log_norm:g}")
        if not problems:
            nx = round((self.x_range[1] - self.x_range[0]) / self.resolution_m)
            ny = round((self.y_range[1] - self.y_range[0]) / self.resolution_m)
            if nx < 1 or ny < 1:
                problems.append(f"resolution_m {self.resolution_m:g} is larger than the grid")
            elif nx * ny > MAX_BEV_CELLS:
                problems.append(f"the grid would have {ny}x{nx} cells (at most {MAX_BEV_CELLS}); "
                                "raise resolution_m or shrink the ranges")
        return problems


@dataclass(frozen=True, kw_only=True)
class PointCloudCropParams(StageParams):
    """Parameters of ``pointcloud_crop``."""

    box_min: tuple[float, float, float] | None = param(None, unit="m", ge=-MAX_EXTENT_M, le=MAX_EXTENT_M,
                                                       finite=False, doc="[x, y, z] (with box_max; ±.inf: open)")
    box_max: tuple[float, float, float] | None = param(None, unit="m", ge=-MAX_EXTENT_M, le=MAX_EXTENT_M,
                                                       finite=False, doc="[x, y, z] (with box_min; ±.inf: open)")
    min_range_m: float = param(0.0, unit="m", ge=0.0, le=1e6, doc="drop points nearer than this")
    max_range_m: float | None = param(None, unit="m", gt=0.0, le=1e6, doc="drop points farther than this")
    planar_range: bool = param(False, doc="range in x-y instead of 3-D")
    azimuth_deg: tuple[float, float] | None = param(None, unit="deg", ge=-720.0, le=720.0,
                                                    doc="[start, end], counter-clockwise from +x")
    elevation_deg: tuple[float, float] | None = param(None, unit="deg", ge=-90.0, le=90.0, doc="[min, max]")

    def check(self) -> list[str]:
        """Both box corners or neither (max > min per axis), min_range_m < max_range_m, elevation max >= min."""
        problems = []
        if (self.box_min is None) != (self.box_max is None):
            problems.append("give both box_min and box_max, or neither")
        elif self.box_min is not None and self.box_max is not None and any(
                hi <= lo for lo, hi in zip(self.box_min, self.box_max, strict=True)):
            problems.append(f"box_max must be > box_min on every axis, got {list(self.box_min)}, "
                            f"{list(self.box_max)}")
        if self.max_range_m is not None and not self.max_range_m > self.min_range_m:
            problems.append(f"min_range_m and max_range_m need 0 <= min_m < max_m, got {self.min_range_m:g}, "
                            f"{self.max_range_m:g}")
        problems += _pair_problems("elevation_deg", self.elevation_deg, allow_equal=True)
        return problems


@dataclass(frozen=True, kw_only=True)
class GroundRemovalParams(StageParams):
    """Parameters of ``ground_removal``."""

    threshold_m: float = param(0.2, unit="m", gt=0.0, le=100.0, doc="max distance of a ground point to the plane")
    n_iter: int = param(100, ge=1, le=100_000, doc="RANSAC hypotheses")
    max_tilt_deg: float = param(20.0, unit="deg", ge=0.0, le=90.0, doc="reject planes tilted more than this")
    sample_size: int = param(8192, ge=1, le=10_000_000, doc="points used to score hypotheses")
    seed: int = param(0, ge=0, le=2**63 - 1, doc="random seed (results are deterministic per seed)")
    refine: bool = param(True, doc="least-squares refit on the inliers")


class _CloudBuffer:
    """Copies x, y, z (+ an optional scalar field) of structured clouds into a reused (N, C) float32 array."""

    def __init__(self, extra_field: str | None, capacity: int = 150_000) -> None:
        self.extra_field = extra_field
        self._buf = np.zeros((capacity, 4 if extra_field else 3), dtype=np.float32)

    def fill(self, cloud: PointCloud, stamp_ns: int) -> tuple[npt.NDArray[np.float32], bool]:
        """(N, 3 or 4) float32 view, and whether the extra field was present."""
        pts = cloud.points
        names = pts.dtype.names or ()
        missing = [c for c in "xyz" if c not in names]
        if missing:
            raise MessageError(f"point cloud has no field(s) {missing}; fields: {list(names)}", stamp_ns=stamp_ns)
        n = pts.shape[0]
        if n > self._buf.shape[0]:
            self._buf = np.zeros((n, self._buf.shape[1]), dtype=np.float32)
        has_extra = self.extra_field is not None and self.extra_field in names
        out = self._buf[:n, : (4 if has_extra else 3)]
        for j, name in enumerate(("x", "y", "z", self.extra_field) if has_extra else ("x", "y", "z")):
            values = pts[name]
            if values.ndim != 1:
                raise MessageError(f"point field {name!r} has count > 1", stamp_ns=stamp_ns)
            out[:, j] = values
        return out, has_extra


@register_stage("bev_grid")
class BevGridStage(Stage):
    """Rasterise a point cloud into a bird's-eye-view image (``32FC<C>``, C = number of channels).

    Rows index y and columns x from the range minimum (``image[row, col]`` with ``col = floor((x -
    x_min) / res)``, ``row = floor((y - y_min) / res)``), in the cloud's frame.  ``intensity_field``
    names the per-point scalar averaged into ``mean_intensity`` (LiDAR ``intensity``, radar power);
    a cloud without it gets 0 there.  Any number of channels (``32FC5`` …) is a valid ROS image encoding.
    """

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    outputs: ClassVar[dict[str, str]] = {"image": "Image"}
    Params = BevGridParams
    params: BevGridParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        z_range = (-math.inf, math.inf) if p.z_range is None else p.z_range
        self.device = StageDevice(name, p.device)

        def make_grid(cls: type[BevGrid]) -> BevGrid:
            return cls(p.x_range, p.y_range, p.resolution_m, z_range=z_range, channels=list(p.channels),
                       density_log_norm=p.density_log_norm, empty_height=p.empty_height)

        self._make_grid = make_grid
        try:
            self._grid = BevGrid(
                p.x_range, p.y_range, p.resolution_m, z_range=z_range, channels=list(p.channels),
                density_log_norm=p.density_log_norm, empty_height=p.empty_height,
            )
            self.encoding = f"32FC{len(self._grid.channels)}"
            encoding_layout(self.encoding)
        except (EdgefuseError, ValueError) as exc:
            message = exc.message if isinstance(exc, EdgefuseError) else str(exc)
            raise PipelineError(f"stage '{name}': {message}") from None
        self._cloud = _CloudBuffer(p.intensity_field)
        if self.device.device == "cuda":  # the parameters are valid (checked on the CPU grid above)
            self.device.run(lambda: self._use(self.device.pick(BevGrid, "CudaBevGrid")), self._to_cpu)

    def _use(self, cls: type[BevGrid]) -> None:
        self._grid = self._make_grid(cls)

    def _to_cpu(self) -> None:
        self._grid = self._make_grid(BevGrid)
        self._grid.warmup()

    def report(self) -> dict[str, Any] | None:
        return {"device": self.device.report()}

    def start(self) -> None:
        self.device.run(self._grid.warmup, self._to_cpu)

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        pts, _ = self._cloud.fill(cloud, stamp_ns)
        img = self.device.run(lambda: self._grid.compute(pts), self._to_cpu)
        self.device.record(self._grid)
        return {"image": ImageData(stamp_ns, cloud.frame_id, self.encoding, img)}


@register_stage("pointcloud_crop")
class PointCloudCropStage(Stage):
    """Keep the points inside a box ``[box_min, box_max)``, a range ``[min_range_m, max_range_m]`` and a
    field of view (``azimuth_deg``, ``elevation_deg``); unset criteria are not applied.  All fields of
    the cloud are kept (the output is ``points[mask]``)."""

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    outputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    Params = PointCloudCropParams
    params: PointCloudCropParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self._cloud = _CloudBuffer(None)
        self._mask = np.zeros(150_000, dtype=np.bool_)
        self._tmp = np.zeros(150_000, dtype=np.bool_)
        try:  # validate every parameter now, on a one-point cloud
            self._compute(np.zeros((1, 3), dtype=np.float32))
        except (EdgefuseError, ValueError) as exc:
            message = exc.message if isinstance(exc, EdgefuseError) else str(exc)
            raise PipelineError(f"stage '{name}': {message}") from None

    def _compute(self, pts: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        p = self.params
        n = pts.shape[0]
        if n > self._mask.shape[0]:
            self._mask = np.zeros(n, dtype=np.bool_)
            self._tmp = np.zeros(n, dtype=np.bool_)
        mask, tmp = self._mask[:n], self._tmp[:n]
        mask[:] = True
        if p.box_min is not None and p.box_max is not None:
            mask &= crop_box(pts, list(p.box_min), list(p.box_max), out=tmp)
        if p.min_range_m or p.max_range_m is not None:
            max_r = math.inf if p.max_range_m is None else p.max_range_m
            mask &= crop_range(pts, p.min_range_m, max_r, planar=p.planar_range, out=tmp)
        if p.azimuth_deg is not None or p.elevation_deg is not None:
            az = p.azimuth_deg if p.azimuth_deg is not None else (-180.0, 180.0)
            el = p.elevation_deg if p.elevation_deg is not None else (-90.0, 90.0)
            mask &= crop_fov(pts, az, el, out=tmp)
        return mask

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        pts, _ = self._cloud.fill(cloud, stamp_ns)
        kept = cloud.points[self._compute(pts)]
        return {"cloud": PointCloud(stamp_ns, cloud.frame_id, kept, 1, int(kept.shape[0]), cloud.is_dense)}


@register_stage("ground_removal")
class GroundRemovalStage(Stage):
    """Split a cloud into non-ground (``cloud``) and ground (``ground``) points by RANSAC (z up).

    Deterministic for a given ``seed``.  When no plane is found (too few points, or none within
    ``max_tilt_deg``), every point goes to ``cloud`` and ``ground`` is empty.
    """

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    outputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud", "ground": "PointCloud"}
    Params = GroundRemovalParams
    params: GroundRemovalParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self._cloud = _CloudBuffer(None)
        self._mask = np.zeros(150_000, dtype=np.bool_)
        try:
            self._fit(np.zeros((3, 3), dtype=np.float32))
        except (EdgefuseError, ValueError) as exc:
            message = exc.message if isinstance(exc, EdgefuseError) else str(exc)
            raise PipelineError(f"stage '{name}': {message}") from None

    def _fit(self, pts: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        p = self.params
        n = pts.shape[0]
        if n > self._mask.shape[0]:
            self._mask = np.zeros(n, dtype=np.bool_)
        return ransac_ground(pts, threshold_m=p.threshold_m, n_iter=p.n_iter, max_tilt_deg=p.max_tilt_deg,
                             sample_size=p.sample_size, seed=p.seed, refine=p.refine, out=self._mask[:n]).inliers

    def start(self) -> None:
        self._fit(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32))

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        pts, _ = self._cloud.fill(cloud, stamp_ns)
        ground = self._fit(pts)
        rest = cloud.points[~ground]
        on_ground = cloud.points[ground]
        return {
            "cloud": PointCloud(stamp_ns, cloud.frame_id, rest, 1, int(rest.shape[0]), cloud.is_dense),
            "ground": PointCloud(stamp_ns, cloud.frame_id, on_ground, 1, int(on_ground.shape[0]), cloud.is_dense),
        }
