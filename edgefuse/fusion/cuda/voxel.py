"""Dynamic / hard voxelization, pillars and BEV grids on the GPU.

Voxel ids follow the CPU rule (first-point order) without a serial pass: each point's key goes into
a hash table (atomic compare-and-swap), the table keeps the lowest point index per key (atomic min),
and an exclusive prefix sum over the "first point of its voxel" flags numbers the voxels.  The hard
voxelizer then keeps, per voxel, the lowest ``max_points_per_voxel`` point indices in index order
(a per-voxel partial insertion sort of its bucket), which is the CPU's arrival order; ``on_cap="stop"``
ends the pass at the first point of voxel number ``max_voxels``, as the CPU does.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgefuse.fusion.bev import BevGrid
from edgefuse.fusion.cuda._runtime import BufferPool
from edgefuse.fusion.voxel import (
    DynamicVoxelizer,
    DynamicVoxels,
    FloatArray,
    HardVoxels,
    Pillars,
    PillarVoxelizer,
    Voxelizer,
    _readonly,
    as_point_array,
)

__all__ = ["CudaBevGrid", "CudaDynamicVoxelizer", "CudaPillarVoxelizer", "CudaVoxelizer"]


def _kernels() -> Any:
    from edgefuse.fusion.cuda import _kernels

    return _kernels


class _CudaVoxelBase:
    """The shared key → voxel-id pass; subclasses hold ``geometry``, ``_lo_size``, ``_top``, ``_shifts``."""

    geometry: Any
    _lo_size: dict[str, tuple[FloatArray, FloatArray]]
    _top: dict[str, FloatArray]
    _shifts: tuple[int, int]

    def _init_cuda(self) -> None:
        self._ck = _kernels()
        self.pool = BufferPool()
        self.last_timing: dict[str, float] = {"h2d_s": 0.0, "kernel_s": 0.0, "d2h_s": 0.0}
        self._total = np.zeros(1, dtype=np.int64)
        self._consts: dict[str, tuple[Any, Any]] = {}

    def _upload(self, pts: FloatArray) -> Any:
        d_pts = self.pool.get("points" + pts.dtype.str + str(pts.shape[1]), pts.shape[0], (pts.shape[1],),
                              pts.dtype)[:pts.shape[0]]
        if pts.shape[0]:
            d_pts.copy_to_device(pts)
        return d_pts

    def _const(self, dtype: np.dtype[Any]) -> tuple[Any, Any]:
        have = self._consts.get(dtype.str)
        if have is None:
            lo, size = self._lo_size[dtype.str]
            d_lo = self.pool.get("lo" + dtype.str, 3, (), dtype)
            d_size = self.pool.get("size" + dtype.str, 3, (), dtype)
            d_lo.copy_to_device(lo)
            d_size.copy_to_device(size)
            have = (d_lo, d_size)
            self._consts[dtype.str] = have
        return have

    def _scan(self, values: Any, n: int, out: Any) -> int:
        """Exclusive prefix sum of ``values[:n]`` into ``out``; returns the total (one small copy back)."""
        k = self._ck
        n_chunks = max(1, (n + k.SCAN_CHUNK - 1) // k.SCAN_CHUNK)
        sums = self.pool.get("scan_sums", n_chunks, (), np.int64)
        total = self.pool.get("scan_total", 1, (), np.int64)
        k.chunk_sums[k.blocks(n_chunks), k.TPB](values, n, sums)
        k.scan_sums[1, 1](sums, n_chunks, total)
        k.chunk_scan[k.blocks(n_chunks), k.TPB](values, n, sums, out)
        total[:1].copy_to_host(self._total)
        return int(self._total[0])

    def _voxel_ids(self, d_pts: Any, n: int, vkey_len: int) -> tuple[int, dict[str, Any]]:
        """Keys, hash table, first points, voxel ids; returns ``(n_voxels_uncapped, device arrays)``."""
        k = self._ck
        pool = self.pool
        dt = np.dtype(d_pts.dtype)
        d_lo, d_size = self._const(dt)
        lim = tuple(float(t) + 1.0 for t in self._top[dt.str])
        sx, sy = self._shifts
        size = 1 << max(1, (2 * n - 1).bit_length())
        d = {
            "keys": pool.get("keys", n, (), np.int64)[:n],
            "table_keys": pool.get("table_keys", size, (), np.int64),
            "table_first": pool.get("table_first", size, (), np.int32),
            "table_vid": pool.get("table_vid", size, (), np.int32),
            "slot_of": pool.get("slot_of", n, (), np.int32)[:n],
            "flags": pool.get("flags", n, (), np.int32)[:n],
            "prefix": pool.get("prefix", n, (), np.int32)[:n],
            "vkey": pool.get("vkey", vkey_len, (), np.int64),
        }
        b = k.blocks(n)
        k.cell_keys[b, k.TPB](d_pts, n, d_lo, d_size, lim, sx, sy, d["keys"])
        k.hash_clear[k.blocks(size), k.TPB](d["table_keys"], d["table_first"], size)
        k.hash_insert[b, k.TPB](d["keys"], n, d["table_keys"], d["table_first"], size - 1, d["slot_of"])
        k.first_flags[b, k.TPB](d["slot_of"], d["table_first"], n, d["flags"])
        m_all = self._scan(d["flags"], n, d["prefix"])
        k.voxel_ids[b, k.TPB](d["flags"], d["prefix"], d["slot_of"], d["keys"], n, d["table_vid"], d["vkey"],
                              vkey_len)
        return m_all, d


class CudaDynamicVoxelizer(_CudaVoxelBase, DynamicVoxelizer):
    """:class:`~edgefuse.fusion.voxel.DynamicVoxelizer` on the GPU: same arguments and result (bit-identical
    voxel ids, coords and counts).  ``threads`` is not used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        DynamicVoxelizer.__init__(self, *args, **kwargs)
        self._init_cuda()

    def warmup(self) -> float:
        start = time.perf_counter()
        for dt in (np.float32, np.float64):
            self.voxelize(np.zeros((1, 3), dtype=dt))
        return time.perf_counter() - start

    def voxelize(self, points: Any, *, copy: bool = False) -> DynamicVoxels:
        pts = np.ascontiguousarray(as_point_array(points))
        n = pts.shape[0]
        if n > self.capacity:
            self._allocate(n)
        if n == 0:
            empty = DynamicVoxels(_readonly(self._point_voxel[:0]), _readonly(self._coords[:0]),
                                  _readonly(self._num[:0]))
            return empty.copy() if copy else empty
        k = self._ck
        t0 = time.perf_counter()
        d_pts = self._upload(pts)
        t1 = time.perf_counter()
        m, d = self._voxel_ids(d_pts, n, n)
        d_pv = self.pool.get("point_voxel", n, (), np.int32)[:n]
        d_num = self.pool.get("num", n, (), np.int32)
        d_coords = self.pool.get("coords", n, (3,), np.int32)
        k.fill_int[k.blocks(m), k.TPB](d_num, m, 0)
        k.dynamic_assign[k.blocks(n), k.TPB](d["slot_of"], d["table_vid"], n, d_pv, d_num)
        sx, sy = self._shifts
        k.decode_coords[k.blocks(m), k.TPB](d["vkey"], m, sx, sy, self._zyx, d_coords)
        k.cuda.synchronize()
        t2 = time.perf_counter()
        d_pv.copy_to_host(self._point_voxel[:n])
        if m:
            d_num[:m].copy_to_host(self._num[:m])
            d_coords[:m].copy_to_host(self._coords[:m])
        self.last_timing = {"h2d_s": t1 - t0, "kernel_s": t2 - t1, "d2h_s": time.perf_counter() - t2}
        result = DynamicVoxels(_readonly(self._point_voxel[:n]), _readonly(self._coords[:m]), _readonly(self._num[:m]))
        return result.copy() if copy else result


class CudaVoxelizer(_CudaVoxelBase, Voxelizer):
    """:class:`~edgefuse.fusion.voxel.Voxelizer` (hard voxelization, SECOND semantics, both ``on_cap``) on
    the GPU: same arguments and result, bit-identical.  ``threads`` is not used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Voxelizer.__init__(self, *args, **kwargs)
        self._init_cuda()
        self._stats_host = np.zeros(3, dtype=np.int64)
        self._cutoff_host = np.zeros(1, dtype=np.int32)
        #: device arrays of the last call (voxels, coords, num_points, M), for the pillar features
        self.last_device: tuple[Any, Any, Any, int] | None = None

    def warmup(self) -> float:
        start = time.perf_counter()
        for dt in (np.float32, np.float64):
            self.voxelize(np.zeros((1, self.num_features), dtype=dt))
        return time.perf_counter() - start

    def voxelize(self, points: Any, *, copy: bool = False) -> HardVoxels:
        pts = np.ascontiguousarray(as_point_array(points))
        n, c = pts.shape
        voxels = self._voxel_buffer(pts.dtype, c)
        if n == 0:
            self.last_device = None
            empty = HardVoxels(_readonly(voxels[:0]), _readonly(self._coords[:0]), _readonly(self._num[:0]), 0, 0, 0)
            return empty.copy() if copy else empty
        k = self._ck
        pool = self.pool
        t0 = time.perf_counter()
        d_pts = self._upload(pts)
        t1 = time.perf_counter()
        mv = self.max_voxels
        m_all, d = self._voxel_ids(d_pts, n, mv)
        m = min(m_all, mv)
        cutoff = pool.get("cutoff", 1, (), np.int32)
        stats = pool.get("stats", 3, (), np.int64)
        count = pool.get("count", mv, (), np.int32)
        offset = pool.get("offset", mv, (), np.int32)
        cursor = pool.get("cursor", mv, (), np.int32)
        bucket = pool.get("bucket", n, (), np.int32)
        d_vox = pool.get("voxels" + pts.dtype.str + str(c), mv, (self.max_points_per_voxel, c), pts.dtype)
        d_num = pool.get("num", mv, (), np.int32)
        d_coords = pool.get("coords", mv, (3,), np.int32)
        b = k.blocks(n)
        k.fill_int[1, 1](cutoff, 1, n)
        if self._stop and m_all > mv:
            k.hard_cutoff[b, k.TPB](d["flags"], d["prefix"], n, mv, cutoff)
        k.fill_int[1, k.TPB](stats, 3, 0)
        k.fill_int[k.blocks(m), k.TPB](count, m, 0)
        k.fill_int[k.blocks(m), k.TPB](cursor, m, 0)
        k.hard_count[b, k.TPB](d["slot_of"], d["table_vid"], n, cutoff, mv, count, stats)
        self._scan(count, m, offset)
        k.hard_bucket[b, k.TPB](d["slot_of"], d["table_vid"], n, cutoff, mv, offset, cursor, bucket)
        k.hard_gather[k.blocks(m), k.TPB](d_pts, bucket, offset, count, m, self.max_points_per_voxel, d_vox, d_num,
                                           stats)
        sx, sy = self._shifts
        k.decode_coords[k.blocks(m), k.TPB](d["vkey"], m, sx, sy, self._zyx, d_coords)
        k.cuda.synchronize()
        t2 = time.perf_counter()
        if m:
            d_vox[:m].copy_to_host(voxels[:m])
            d_num[:m].copy_to_host(self._num[:m])
            d_coords[:m].copy_to_host(self._coords[:m])
        stats.copy_to_host(self._stats_host)
        cutoff.copy_to_host(self._cutoff_host)
        self.last_timing = {"h2d_s": t1 - t0, "kernel_s": t2 - t1, "d2h_s": time.perf_counter() - t2}
        self.last_device = (d_vox, d_coords, d_num, m)
        s = self._stats_host
        dropped_voxels = n - int(self._cutoff_host[0]) if self._stop else int(s[1])
        result = HardVoxels(_readonly(voxels[:m]), _readonly(self._coords[:m]), _readonly(self._num[:m]), int(s[0]),
                            dropped_voxels, int(s[2]))
        return result.copy() if copy else result


class CudaPillarVoxelizer(PillarVoxelizer):
    """:class:`~edgefuse.fusion.voxel.PillarVoxelizer` on the GPU (hard voxelization and the augmented
    features both in CUDA kernels); same arguments and result, bit-identical."""

    _voxelizer_class = CudaVoxelizer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ck = _kernels()

    @property
    def pool(self) -> BufferPool:
        assert isinstance(self._vox, CudaVoxelizer)
        return self._vox.pool

    @property
    def last_timing(self) -> dict[str, float]:
        assert isinstance(self._vox, CudaVoxelizer)
        return self._vox.last_timing

    def voxelize(self, points: Any) -> Pillars:
        vox = self._vox
        assert isinstance(vox, CudaVoxelizer)
        hv = vox.voxelize(points)
        if not self.augment:
            return Pillars(hv.voxels, hv.coords, hv.num_points, hv.n_outside, hv.n_dropped_voxels,
                               hv.n_dropped_points)
        c = hv.voxels.shape[2]
        key = (hv.voxels.dtype.str, c)
        feats = self._features.get(key)
        if feats is None:
            feats = np.zeros((self.max_pillars, self.max_points_per_pillar, c + 5), dtype=hv.voxels.dtype)
            self._features[key] = feats
        m = hv.n_voxels
        if m and vox.last_device is not None:
            d_vox, d_coords, d_num, _ = vox.last_device
            d_feats = vox.pool.get("features" + hv.voxels.dtype.str + str(c), self.max_pillars,
                                   (self.max_points_per_pillar, c + 5), hv.voxels.dtype)
            g = self.geometry
            k = self._ck
            k.pillar_features[k.blocks(m), k.TPB](d_vox, d_coords, d_num, m, vox._zyx,
                                                  float(g.lo[0] + g.size[0] / 2), float(g.lo[1] + g.size[1] / 2),
                                                  float(g.size[0]), float(g.size[1]), d_feats)
            d_feats[:m].copy_to_host(feats[:m])
        return Pillars(_readonly(feats[:m]), hv.coords, hv.num_points, hv.n_outside, hv.n_dropped_voxels,
                       hv.n_dropped_points)


class CudaBevGrid(BevGrid):
    """:class:`~edgefuse.fusion.bev.BevGrid` on the GPU: same arguments and image.  Heights, density (raw
    count), occupancy are bit-identical; mean intensity sums float32 in atomic order and log density
    uses libdevice's ``log`` (see :data:`edgefuse.fusion.cuda.TOLERANCES`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ck = _kernels()
        self.pool = BufferPool()
        self.last_timing: dict[str, float] = {"h2d_s": 0.0, "kernel_s": 0.0, "d2h_s": 0.0}

    def compute(self, points: Any, *, intensity: Any = None, copy: bool = False) -> Any:
        pts = np.ascontiguousarray(as_point_array(points))
        n = pts.shape[0]
        if intensity is not None:
            from edgefuse.errors import InputDataError

            inten = np.asarray(intensity)
            if inten.shape != (n,) or inten.dtype.kind != "f":
                raise InputDataError(f"intensity must be a float (N,) = ({n},) array, got {inten.dtype} {inten.shape}")
            inten = np.ascontiguousarray(inten, dtype=pts.dtype)
            has = True
        elif pts.shape[1] >= 4:
            inten = np.ascontiguousarray(pts[:, 3])
            has = True
        else:
            inten = self._no_intensity[pts.dtype.type]
            has = False
        k = self._ck
        pool = self.pool
        n_cells = self.nx * self.ny
        t0 = time.perf_counter()
        d_pts = pool.get("points" + pts.dtype.str + str(pts.shape[1]), n, (pts.shape[1],), pts.dtype)[:n]
        d_int = pool.get("intensity" + pts.dtype.str, max(n, 1), (), pts.dtype)[:inten.shape[0]]
        if n:
            d_pts.copy_to_device(pts)
            d_int.copy_to_device(inten)
        t1 = time.perf_counter()
        count = pool.get("count", n_cells, (), np.int32)
        zmax = pool.get("zmax", n_cells, (), np.float32)
        zmin = pool.get("zmin", n_cells, (), np.float32)
        isum = pool.get("isum", n_cells, (), np.float32)
        d_img = pool.get("image", self.ny, (self.nx, len(self.channels)), np.float32)
        cb = k.blocks(n_cells)
        k.bev_clear[cb, k.TPB](count, zmax, zmin, isum, n_cells)
        if n:
            k.bev_scatter[k.blocks(n), k.TPB](d_pts, d_int, has, n, self.x_range[0], self.y_range[0], self.z_range[0],
                                              self.z_range[1], self.resolution[0], self.resolution[1], self.nx,
                                              self.ny, count, zmax, zmin, isum)
        s = [int(v) for v in self._slots]
        log_norm = math.log(self.density_log_norm) if self.density_log_norm > 1.0 else 0.0
        k.bev_finish[cb, k.TPB](count, zmax, zmin, isum, self.nx, n_cells, s[0], s[1], s[2], s[3], s[4], log_norm,
                                self.empty_height, d_img)
        k.cuda.synchronize()
        t2 = time.perf_counter()
        d_img.copy_to_host(self._image)
        self.last_timing = {"h2d_s": t1 - t0, "kernel_s": t2 - t1, "d2h_s": time.perf_counter() - t2}
        return self._image.copy() if copy else self._view
