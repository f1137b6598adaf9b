"""LiDAR → camera projection with z-buffer on the GPU (every camera model of :mod:`edgefuse.rig`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.fusion.cuda._runtime import BufferPool
from edgefuse.fusion.projection import ProjectionResult, Projector, _as_points

__all__ = ["CudaProjector"]


class CudaProjector(Projector):
    """:class:`~edgefuse.fusion.projection.Projector` whose projection and z-buffer run in CUDA kernels.

    Same constructor, validation and :class:`~edgefuse.fusion.projection.ProjectionResult` (host arrays,
    read-only views valid until the next call).  ``uv``/``valid`` are always computed (``per_point`` is
    accepted and ignored).  The z-buffer follows the CPU rule exactly (nearest float64 depth, ties to
    the lowest point index) in three passes: atomic min of the depth per pixel, atomic min of the index
    among the points at that depth, then the float32 depth image.  ``threads`` is not used.

    ``pool`` holds the device buffers (no allocation once the largest cloud has been seen);
    ``last_timing`` the last call's ``h2d_s`` / ``kernel_s`` / ``d2h_s`` seconds.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from edgefuse.fusion.cuda import _kernels

        self._ck = _kernels
        self.pool = BufferPool()
        self.last_timing: dict[str, float] = {"h2d_s": 0.0, "kernel_s": 0.0, "d2h_s": 0.0}

    def warmup(self) -> float:
        """Compile the kernels for float32 and float64 clouds; returns seconds."""
        start = time.perf_counter()
        for dtype in (np.float32, np.float64):
            self.project(np.zeros((1, 3), dtype=dtype))
        self.project(np.zeros((0, 3), dtype=np.float32))
        return time.perf_counter() - start

    def project(self, xyz: npt.NDArray[np.floating[Any]], *, copy: bool = False,
                per_point: bool = False) -> ProjectionResult:
        """Project an (N, 3) float32/float64 cloud (see :meth:`Projector.project`) on the GPU."""
        points = _as_points(xyz)
        n = points.shape[0]
        if n > self.capacity:
            self._allocate(n)
        self._generation += 1
        k = self._ck
        pool = self.pool
        n_pixels = self.width * self.height
        t0 = time.perf_counter()
        d_pts = pool.get("points" + points.dtype.str, n, (3,), points.dtype)[:n]
        if n:
            d_pts.copy_to_device(points)
        t1 = time.perf_counter()
        d_uv = pool.get("uv", n, (2,), np.float32)[:n]
        d_pix = pool.get("pix", n, (), np.int32)[:n]
        d_z = pool.get("zdepth", n, (), np.float64)[:n]
        d_key = pool.get("zkey", n, (), np.float64)[:n]
        d_valid = pool.get("valid", n, (), np.bool_)[:n]
        d_zmin = pool.get("zmin", n_pixels, (), np.float64)
        d_index = pool.get("index", n_pixels, (), np.int32)
        d_depth = pool.get("depth", n_pixels, (), np.float32)
        pb = k.blocks(n_pixels)
        k.zbuffer_clear[pb, k.TPB](d_zmin, d_index, n_pixels)
        if n:
            b = k.blocks(n)
            k.project_points[b, k.TPB](d_pts, n, self._Rt, self.model_id, self._intr_t, self._D_t, self.width,
                                       self.height, self.min_depth_m, self.max_depth_m, self._max_r2, d_uv, d_pix,
                                       d_z, d_key, d_valid)
            k.zbuffer_min[b, k.TPB](d_pix, d_key, n, d_zmin)
            k.zbuffer_index[b, k.TPB](d_pix, d_key, n, d_zmin, d_index)
        k.zbuffer_finish[pb, k.TPB](d_zmin, d_index, d_depth, n_pixels)
        k.cuda.synchronize()
        t2 = time.perf_counter()
        uv, valid = self._uv[:n], self._valid[:n]
        if n:
            d_uv.copy_to_host(uv)
            d_valid.copy_to_host(valid)
        d_depth[:n_pixels].copy_to_host(self._depth)
        d_index[:n_pixels].copy_to_host(self._index)
        t3 = time.perf_counter()
        self.last_timing = {"h2d_s": t1 - t0, "kernel_s": t2 - t1, "d2h_s": t3 - t2}
        result = ProjectionResult(self._depth_view, self._index_view, self._readonly(uv), self._readonly(valid),
                                  int(np.count_nonzero(valid)))
        return result.copy() if copy else result
