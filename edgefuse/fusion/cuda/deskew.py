"""Deskew on the GPU: the CPU :class:`~edgefuse.fusion.deskew.Deskewer` with its per-point pass in CUDA."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgefuse.fusion.cuda._runtime import BufferPool
from edgefuse.fusion.deskew import Deskewer

__all__ = ["CudaDeskewer"]


class CudaDeskewer(Deskewer):
    """:class:`~edgefuse.fusion.deskew.Deskewer` whose per-point rotation runs in a CUDA kernel (one thread
    per point); the motion tables (constant velocity, IMU integration, folding) stay on the CPU, where
    they cost O(segments).  Same arguments, results within :data:`edgefuse.fusion.cuda.TOLERANCES`
    (``deskew.xyz_m``), counts identical."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from edgefuse.fusion.cuda import _kernels

        self._ck = _kernels
        self.pool = BufferPool()
        self._host = BufferPool(allocate=np.empty)  # contiguous staging for strided clouds / outputs
        self._counts = np.zeros(2, dtype=np.int64)
        self.last_timing: dict[str, float] = {"h2d_s": 0.0, "kernel_s": 0.0, "d2h_s": 0.0}
        self._points_kernel = self._cuda_points

    def _cuda_points(self, pts: Any, tau: Any, offset_s: float, seg_t: Any, seg_tab: Any, tp: Any,  # noqa: PLR0917
                     t_lo: float, t_hi: float, nan_outside: bool, scr: Any, runs: Any, dst: Any) -> tuple[int, int]:
        """The signature of :func:`edgefuse.fusion._deskew_kernels._deskew_points` (``scr``/``runs`` unused)."""
        k = self._ck
        pool = self.pool
        n = pts.shape[0]
        kk = seg_t.shape[0]
        t0 = time.perf_counter()
        if pts.flags.c_contiguous:
            host_pts = pts
        else:
            host_pts = self._host.get("points" + pts.dtype.str, n, (3,), pts.dtype)[:n]
            host_pts[...] = pts
        d_pts = pool.get("points" + pts.dtype.str, n, (3,), pts.dtype)[:n]
        d_tau = pool.get("tau", n, (), np.float64)[:n]
        d_seg_t = pool.get("seg_t", kk, (), np.float64)[:kk]
        d_seg_tab = pool.get("seg_tab", kk, (seg_tab.shape[1],), np.float64)[:kk]
        d_tp = pool.get("tp", 3, (), np.float64)
        d_pts.copy_to_device(host_pts)
        d_tau.copy_to_device(np.ascontiguousarray(tau[:n]))
        d_seg_t.copy_to_device(np.ascontiguousarray(seg_t))
        d_seg_tab.copy_to_device(np.ascontiguousarray(seg_tab[:kk]))
        d_tp.copy_to_device(np.ascontiguousarray(tp, dtype=np.float64))
        t1 = time.perf_counter()
        out_dt = np.dtype(dst.dtype)
        d_out = pool.get("out" + out_dt.str, n, (3,), out_dt)[:n]
        counts = pool.get("counts", 2, (), np.int64)
        k.fill_int[1, k.TPB](counts, 2, 0)
        k.deskew_points[k.blocks(n), k.TPB](d_pts, d_tau, n, float(offset_s), d_seg_t, d_seg_tab, d_tp, float(t_lo),
                                            float(t_hi), bool(nan_outside), d_out, counts)
        k.cuda.synchronize()
        t2 = time.perf_counter()
        if dst.flags.c_contiguous:
            d_out.copy_to_host(dst)
        else:
            staging = self._host.get("out" + out_dt.str, n, (3,), out_dt)[:n]
            d_out.copy_to_host(staging)
            dst[...] = staging
        counts.copy_to_host(self._counts)
        self.last_timing = {"h2d_s": t1 - t0, "kernel_s": t2 - t1, "d2h_s": time.perf_counter() - t2}
        return int(self._counts[0]), int(self._counts[1])
