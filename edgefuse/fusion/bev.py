"""Bird's-eye-view (BEV) grids from LiDAR or radar points: height, intensity, density, occupancy.

:class:`BevGrid` scatters a cloud into a preallocated (rows, cols, C) float32 image in one pass over
the points (plus a pass over the cells the cloud touched; untouched cells are never rewritten, so the
cost does not grow with the grid size).

Geometry (shared with the reference in ``tests/fusion/voxel_reference.py``):

- ``x_range = (x_min, x_max)``, ``y_range = (y_min, y_max)``, ``z_range = (z_min, z_max)`` in metres
  (the cloud's frame), cell size ``resolution_m`` (or ``(res_x, res_y)``).
- Column ``col = floor((x - x_min) / res_x)``, row ``row = floor((y - y_min) / res_y)`` (float64), the
  layout of SECOND / PointPillars BEV feature maps (``canvas[y_idx, x_idx]``): with a forward-x LiDAR,
  row 0 is the rightmost strip (``y_min``) and forward runs along the columns.  Flip with numpy views
  for display (``img[::-1, ::-1]``).  A point counts when its cell is inside the grid and
  ``z_min <= z < z_max``; NaN/inf points are skipped.
- Channels, in the order given by ``channels``:
  ``max_z`` / ``min_z`` (metres, ``empty_height`` in empty cells), ``mean_intensity`` (float32 sum
  / count; 0 in empty cells, and 0 everywhere when the cloud has no intensity), ``density`` (the point
  count, or ``min(1, log(count + 1) / log(density_log_norm))`` when ``density_log_norm > 1``, as
  Complex-YOLO's 64), ``occupancy`` (1 where at least one point).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import InputDataError
from edgefuse.fusion import _voxel_kernels as _k
from edgefuse.fusion.voxel import VoxelParamError, as_point_array

__all__ = ["BEV_CHANNELS", "BevGrid", "bev_grid"]

#: Channel names accepted by :class:`BevGrid`.
BEV_CHANNELS = {
    "max_z": _k.BEV_MAX_Z,
    "min_z": _k.BEV_MIN_Z,
    "mean_intensity": _k.BEV_MEAN_INTENSITY,
    "density": _k.BEV_DENSITY,
    "occupancy": _k.BEV_OCCUPANCY,
}

F32 = npt.NDArray[np.float32]


def _range(value: Any, field: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise VoxelParamError(f"must be (min, max), got {value!r}", field=field) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise VoxelParamError(f"must be finite with max > min, got {value!r}", field=field)
    return lo, hi


class BevGrid:
    """Preallocated BEV rasteriser; :meth:`compute` returns a view of the owned image.

    Args:
        x_range, y_range: (min, max) metres of the grid.
        resolution_m: cell size, a number or ``(res_x, res_y)``, > 0.
        z_range: (min, max) metres of the points kept (default: everything finite).
        channels: names from :data:`BEV_CHANNELS`, each at most once, in output order.
        density_log_norm: > 1 for log-normalised density, 0 (default) for the raw count.
        empty_height: value of the height channels in empty cells.
    """

    def __init__(
        self,
        x_range: Sequence[float],
        y_range: Sequence[float],
        resolution_m: float | Sequence[float],
        *,
        z_range: Sequence[float] = (-math.inf, math.inf),
        channels: Sequence[str] = ("max_z", "min_z", "mean_intensity", "density", "occupancy"),
        density_log_norm: float = 0.0,
        empty_height: float = 0.0,
    ) -> None:
        self.x_range = _range(x_range, "x_range")
        self.y_range = _range(y_range, "y_range")
        try:
            z_lo, z_hi = (float(v) for v in z_range)
        except (TypeError, ValueError):
            raise VoxelParamError(f"must be (min, max), got {z_range!r}", field="z_range") from None
        if math.isnan(z_lo) or math.isnan(z_hi) or not z_hi > z_lo:
            raise VoxelParamError(f"must satisfy max > min, got {z_range!r}", field="z_range")
        self.z_range = (z_lo, z_hi)
        res = np.asarray(resolution_m, dtype=np.float64).reshape(-1)
        if res.size == 1:
            res = np.repeat(res, 2)
        if res.shape != (2,) or not np.all(np.isfinite(res)) or np.any(res <= 0):
            raise VoxelParamError(f"must be finite and > 0, got {resolution_m!r}", field="resolution_m")
        self.resolution = (float(res[0]), float(res[1]))
        self.nx = round((self.x_range[1] - self.x_range[0]) / self.resolution[0])
        self.ny = round((self.y_range[1] - self.y_range[0]) / self.resolution[1])
        if self.nx < 1 or self.ny < 1:
            raise VoxelParamError(f"cell size {self.resolution} is larger than the grid", field="resolution_m")
        if self.nx * self.ny >= 2**31 - 1:
            raise VoxelParamError(f"grid {self.ny}x{self.nx} has too many cells", field="resolution_m")
        names = list(channels)
        unknown = [c for c in names if c not in BEV_CHANNELS]
        if unknown or not names or len(set(names)) != len(names):
            raise VoxelParamError(
                f"must be distinct names from {sorted(BEV_CHANNELS)}, got {names!r}", field="channels")
        self.channels = tuple(names)
        self._slots = np.full(_k.BEV_N_KINDS, -1, dtype=np.int64)
        for i, name in enumerate(names):
            self._slots[BEV_CHANNELS[name]] = i
        dln = float(density_log_norm)
        if not (dln == 0.0 or (math.isfinite(dln) and dln > 1.0)):
            raise VoxelParamError(f"must be 0 (raw count) or > 1, got {density_log_norm!r}",
                                  field="density_log_norm")
        self.density_log_norm = dln
        if not math.isfinite(float(empty_height)):
            raise VoxelParamError(f"must be finite, got {empty_height!r}", field="empty_height")
        self.empty_height = float(empty_height)
        self._image = np.zeros((self.ny, self.nx, len(names)), dtype=np.float32)
        for kind in (_k.BEV_MAX_Z, _k.BEV_MIN_Z):
            if self._slots[kind] >= 0:
                self._image[:, :, self._slots[kind]] = self.empty_height
        self._count = np.zeros(self.ny * self.nx, dtype=np.int32)
        self._touched = np.zeros(self.ny * self.nx, dtype=np.int64)
        self._n_touched = 0
        self._no_intensity = {dt: np.zeros(1, dtype=dt) for dt in (np.float32, np.float64)}
        self._view = self._image.view()
        self._view.flags.writeable = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, cols, channels) of the output image."""
        return (self.ny, self.nx, len(self.channels))

    def warmup(self) -> float:
        """Compile the kernel for float32/float64 clouds with and without intensity; returns seconds."""
        start = time.perf_counter()
        for dt in (np.float32, np.float64):
            pts = np.zeros((1, 4), dtype=dt)
            pts[0, :3] = np.nan  # skipped: leaves the image empty
            self.compute(pts)
            self.compute(pts[:, :3])
            self.compute(pts[:, :3], intensity=pts[:, 3])
        self.compute(np.zeros((0, 3), dtype=np.float32))
        return time.perf_counter() - start

    def compute(self, points: Any, *, intensity: Any = None, copy: bool = False) -> F32:
        """Rasterise an (N, C >= 3) float32/float64 cloud; intensity is ``points[:, 3]`` when C >= 4.

        ``intensity`` (N,) overrides that (e.g. a radar's power).  Returns the (rows, cols, C) float32
        image: a read-only view valid until the next call, or an owned copy with ``copy=True``.
        """
        pts = as_point_array(points)
        n = pts.shape[0]
        if intensity is not None:
            inten = np.asarray(intensity)
            if inten.shape != (n,) or inten.dtype.kind != "f":
                raise InputDataError(f"intensity must be a float (N,) = ({n},) array, got {inten.dtype} {inten.shape}")
            inten = np.ascontiguousarray(inten, dtype=pts.dtype)
            has = True
        elif pts.shape[1] >= 4:
            inten = pts[:, 3]
            has = True
        else:
            inten = self._no_intensity[pts.dtype.type]
            has = False
        self._n_touched = int(_k._bev_scatter(
            pts, inten, has, self.x_range[0], self.y_range[0], self.z_range[0], self.z_range[1],
            self.resolution[0], self.resolution[1], self.nx, self.ny, self._slots, self.density_log_norm,
            self.empty_height, self._image, self._count, self._touched, self._n_touched))
        return self._image.copy() if copy else self._view


def bev_grid(
    points: Any, x_range: Sequence[float], y_range: Sequence[float], resolution_m: float, **kwargs: Any
) -> F32:
    """One-shot :class:`BevGrid` (same arguments); returns an owned image."""
    return BevGrid(x_range, y_range, resolution_m, **kwargs).compute(points, copy=True)
