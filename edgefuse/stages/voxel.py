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
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edgefuse.errors import EdgefuseError, MessageError, PipelineError
from edgefuse.fusion.bev import BevGrid
from edgefuse.fusion.pointcloud_ops import crop_box, crop_fov, crop_range, ransac_ground
from edgefuse.msgs.image import encoding_layout
from edgefuse.msgs.types import ImageData, PointCloud
from edgefuse.stages.base import Param, Stage, register_stage

__all__ = ["BevGridStage", "GroundRemovalStage", "PointCloudCropStage"]


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


def _pair(value: Any, name: str, stage: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise PipelineError(f"stage '{stage}': parameter '{name}' must be [min, max], got {value!r}")
    return float(value[0]), float(value[1])


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
    params: ClassVar[dict[str, Param]] = {
        "x_range": Param(list, [0.0, 70.4], doc="[min, max] metres"),
        "y_range": Param(list, [-40.0, 40.0], doc="[min, max] metres"),
        "z_range": Param(list, None, doc="[min, max] metres of the points kept (default: all)"),
        "resolution_m": Param(float, 0.1, doc="cell size"),
        "channels": Param(list, ["max_z", "mean_intensity", "density"],
                          doc="max_z, min_z, mean_intensity, density, occupancy (1 to 4 of them)"),
        "density_log_norm": Param(float, 64.0, doc="density = min(1, log(n+1)/log(norm)); 0: raw count"),
        "empty_height": Param(float, 0.0, doc="height channels in empty cells"),
        "intensity_field": Param(str, "intensity"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.p
        z_range = (-math.inf, math.inf) if p["z_range"] is None else _pair(p["z_range"], "z_range", name)
        try:
            self._grid = BevGrid(
                _pair(p["x_range"], "x_range", name), _pair(p["y_range"], "y_range", name), p["resolution_m"],
                z_range=z_range, channels=list(p["channels"]), density_log_norm=p["density_log_norm"],
                empty_height=p["empty_height"],
            )
            self.encoding = f"32FC{len(self._grid.channels)}"
            encoding_layout(self.encoding)
        except (EdgefuseError, ValueError) as exc:
            message = exc.message if isinstance(exc, EdgefuseError) else str(exc)
            raise PipelineError(f"stage '{name}': {message}") from None
        self._cloud = _CloudBuffer(p["intensity_field"])

    def start(self) -> None:
        self._grid.warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        pts, _ = self._cloud.fill(cloud, stamp_ns)
        img = self._grid.compute(pts)
        return {"image": ImageData(stamp_ns, cloud.frame_id, self.encoding, img)}


@register_stage("pointcloud_crop")
class PointCloudCropStage(Stage):
    """Keep the points inside a box ``[box_min, box_max)``, a range ``[min_range_m, max_range_m]`` and a
    field of view (``azimuth_deg``, ``elevation_deg``); unset criteria are not applied.  All fields of
    the cloud are kept (the output is ``points[mask]``)."""

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    outputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    params: ClassVar[dict[str, Param]] = {
        "box_min": Param(list, None, doc="[x, y, z] metres"),
        "box_max": Param(list, None, doc="[x, y, z] metres"),
        "min_range_m": Param(float, 0.0),
        "max_range_m": Param(float, None),
        "planar_range": Param(bool, False, doc="range in x-y instead of 3-D"),
        "azimuth_deg": Param(list, None, doc="[start, end], counter-clockwise from +x"),
        "elevation_deg": Param(list, None, doc="[min, max]"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.p
        if (p["box_min"] is None) != (p["box_max"] is None):
            raise PipelineError(f"stage '{name}': give both box_min and box_max, or neither")
        self._cloud = _CloudBuffer(None)
        self._mask = np.zeros(150_000, dtype=np.bool_)
        self._tmp = np.zeros(150_000, dtype=np.bool_)
        try:  # validate every parameter now, on a one-point cloud
            self._compute(np.zeros((1, 3), dtype=np.float32))
        except (EdgefuseError, ValueError) as exc:
            message = exc.message if isinstance(exc, EdgefuseError) else str(exc)
            raise PipelineError(f"stage '{name}': {message}") from None

    def _compute(self, pts: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        p = self.p
        n = pts.shape[0]
        if n > self._mask.shape[0]:
            self._mask = np.zeros(n, dtype=np.bool_)
            self._tmp = np.zeros(n, dtype=np.bool_)
        mask, tmp = self._mask[:n], self._tmp[:n]
        mask[:] = True
        if p["box_min"] is not None:
            mask &= crop_box(pts, p["box_min"], p["box_max"], out=tmp)
        if p["min_range_m"] or p["max_range_m"] is not None:
            max_r = math.inf if p["max_range_m"] is None else p["max_range_m"]
            mask &= crop_range(pts, p["min_range_m"], max_r, planar=p["planar_range"], out=tmp)
        if p["azimuth_deg"] is not None or p["elevation_deg"] is not None:
            az = _pair(p["azimuth_deg"], "azimuth_deg", self.name) if p["azimuth_deg"] is not None else (-180, 180)
            el = _pair(p["elevation_deg"], "elevation_deg", self.name) if p["elevation_deg"] is not None \
                else (-90, 90)
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
    params: ClassVar[dict[str, Param]] = {
        "threshold_m": Param(float, 0.2, doc="max distance of a ground point to the plane"),
        "n_iter": Param(int, 100),
        "max_tilt_deg": Param(float, 20.0, doc="reject planes tilted more than this"),
        "sample_size": Param(int, 8192, doc="points used to score hypotheses"),
        "seed": Param(int, 0),
        "refine": Param(bool, True, doc="least-squares refit on the inliers"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self._cloud = _CloudBuffer(None)
        self._mask = np.zeros(150_000, dtype=np.bool_)
        try:
            self._fit(np.zeros((3, 3), dtype=np.float32))
        except (EdgefuseError, ValueError) as exc:
            message = exc.message if isinstance(exc, EdgefuseError) else str(exc)
            raise PipelineError(f"stage '{name}': {message}") from None

    def _fit(self, pts: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        p = self.p
        n = pts.shape[0]
        if n > self._mask.shape[0]:
            self._mask = np.zeros(n, dtype=np.bool_)
        return ransac_ground(pts, threshold_m=p["threshold_m"], n_iter=p["n_iter"], max_tilt_deg=p["max_tilt_deg"],
                             sample_size=p["sample_size"], seed=p["seed"], refine=p["refine"],
                             out=self._mask[:n]).inliers

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
