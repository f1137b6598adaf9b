"""The CUDA kernels (``numba.cuda``; imported only when a CUDA object is built or CUDA is probed).

Each kernel is the per-point (or per-cell, per-voxel) body of a CPU kernel of :mod:`edgefuse.fusion`,
with the same arithmetic in the same precision.  The projection reuses the CPU kernels' own pixel
function (:func:`edgefuse.fusion._kernels._pixel_of`, compiled as a CUDA device function), so every
camera model has one definition.  Kernels never index outside their arrays (every index is checked
against the array or the count passed in).

What the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, used by the tests) cannot show: it runs each
thread as a Python thread, so it neither finds data races that real warps would expose (every
cross-thread write here goes through an atomic, or is owned by one thread) nor says anything about
speed or occupancy; it also evaluates ``math`` functions with the host's C library, not libdevice.
``bench/device_check.sh`` checks the same kernels on a real GPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import cuda as _cuda

from edgefuse.fusion import _deskew_kernels as _dk
from edgefuse.fusion import _kernels as _cpu_proj
from edgefuse.fusion.cuda._runtime import simulator_enabled

#: ``numba.cuda`` (typed Any: its attributes are made at import time, beyond what mypy can see)
cuda: Any = _cuda

#: threads per block (the simulator runs one Python thread per CUDA thread: keep its blocks small)
TPB = 32 if simulator_enabled() else 128
#: elements one thread of the scan kernels walks in sequence
SCAN_CHUNK = 256
_INT32_MAX = np.int32(2**31 - 1)
_NAN32 = np.float32(np.nan)

_pixel_of = cuda.jit(device=True)(getattr(_cpu_proj._pixel_of, "py_func"))  # noqa: B009 (mypy: a dispatcher)


def blocks(n: int) -> int:
    """Blocks of :data:`TPB` threads covering ``n`` items (at least one)."""
    return max(1, (n + TPB - 1) // TPB)


@cuda.jit
def _smoke(out):  # type: ignore[no-untyped-def]
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = i + 1


def smoke_test() -> None:
    """Compile and run a one-thread kernel (finds a driver/runtime/NVVM mismatch before real work)."""
    out = cuda.device_array(1, dtype=np.int32)
    _smoke[1, 1](out)
    cuda.synchronize()
    if int(out.copy_to_host()[0]) != 1:
        from edgefuse.fusion.cuda._runtime import CudaUnavailableError

        raise CudaUnavailableError("the CUDA smoke-test kernel returned a wrong value")


# -- projection -------------------------------------------------------------------------------------------
@cuda.jit
def project_points(xyz, n, Rt, model, intr, D, width, height, min_depth, max_depth, max_r2,  # type: ignore[no-untyped-def]  # noqa: PLR0917
                   uv, pix, zdepth, zkey, valid):
    """One thread per point: :func:`edgefuse.fusion._kernels._project_points`'s body, plus ``zkey`` (the
    depth the z-buffer compares: float64 depth of valid points, +inf otherwise)."""
    i = cuda.grid(1)
    if i >= n:
        return
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    px = np.float64(xyz[i, 0])
    py = np.float64(xyz[i, 1])
    pz = np.float64(xyz[i, 2])
    uv[i, 0] = _NAN32
    uv[i, 1] = _NAN32
    zdepth[i] = 0.0
    zkey[i] = math.inf
    pix[i] = -1
    valid[i] = False
    if not (math.isfinite(px) and math.isfinite(py) and math.isfinite(pz)):
        return
    zc = r20 * px + r21 * py + r22 * pz + t2
    if not (zc >= min_depth and zc <= max_depth and zc > 0.0):
        return
    iz = 1.0 / zc
    x = (r00 * px + r01 * py + r02 * pz + t0) * iz
    y = (r10 * px + r11 * py + r12 * pz + t1) * iz
    ok, u32, v32, p = _pixel_of(x, y, model, intr, D, width, height, max_r2)
    if not ok:
        return
    uv[i, 0] = u32
    uv[i, 1] = v32
    zdepth[i] = zc
    zkey[i] = zc
    pix[i] = p
    valid[i] = True


@cuda.jit
def zbuffer_clear(zmin, index, n_pixels):  # type: ignore[no-untyped-def]
    p = cuda.grid(1)
    if p < n_pixels:
        zmin[p] = math.inf
        index[p] = _INT32_MAX


@cuda.jit
def zbuffer_min(pix, zkey, n, zmin):  # type: ignore[no-untyped-def]
    """Pass 1: the nearest float64 depth of each pixel (atomic min)."""
    i = cuda.grid(1)
    if i < n:
        p = pix[i]
        if 0 <= p < zmin.shape[0]:
            cuda.atomic.min(zmin, p, zkey[i])


@cuda.jit
def zbuffer_index(pix, zkey, n, zmin, index):  # type: ignore[no-untyped-def]
    """Pass 2: among the points at the nearest depth, the lowest index (the CPU's tie rule)."""
    i = cuda.grid(1)
    if i < n:
        p = pix[i]
        if 0 <= p < zmin.shape[0] and zkey[i] == zmin[p]:
            cuda.atomic.min(index, p, i)


@cuda.jit
def zbuffer_finish(zmin, index, depth, n_pixels):  # type: ignore[no-untyped-def]
    """Pass 3: the published images: float32 depth and winner index, 0 / -1 where no point landed."""
    p = cuda.grid(1)
    if p < n_pixels:
        if index[p] == _INT32_MAX:
            index[p] = -1
            depth[p] = 0.0
        else:
            depth[p] = np.float32(zmin[p])


# -- voxel keys, hash table, prefix sums ------------------------------------------------------------------
@cuda.jit
def cell_keys(points, n, lo, size, lim, shift_x, shift_y, keys):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Voxel key of each point (``-1`` outside or non-finite), arithmetic in the points' dtype.

    ``d = (p - lo) / size`` in that dtype; the CPU's ``0 <= floor(d) <= top`` is ``0 <= d < top + 1``
    (``lim``, exact: ``top`` is a whole number), and ``floor`` of a non-negative ``d`` is truncation.
    """
    i = cuda.grid(1)
    if i >= n:
        return
    dx = (points[i, 0] - lo[0]) / size[0]
    dy = (points[i, 1] - lo[1]) / size[1]
    dz = (points[i, 2] - lo[2]) / size[2]
    if dx >= 0 and dx < lim[0] and dy >= 0 and dy < lim[1] and dz >= 0 and dz < lim[2]:
        keys[i] = (np.int64(dx) << shift_x) | (np.int64(dy) << shift_y) | np.int64(dz)
    else:
        keys[i] = -1


@cuda.jit
def hash_clear(table_keys, table_first, size):  # type: ignore[no-untyped-def]
    s = cuda.grid(1)
    if s < size:
        table_keys[s] = -1
        table_first[s] = _INT32_MAX


@cuda.jit
def hash_insert(keys, n, table_keys, table_first, mask, slot_of):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Insert each point's key (open addressing, atomic compare-and-swap) and keep the lowest point
    index per key (atomic min): the voxel's first point.  ``slot_of[i]`` = the key's slot, -1 outside."""
    i = cuda.grid(1)
    if i >= n:
        return
    k = keys[i]
    if k < 0:
        slot_of[i] = -1
        return
    h = (k ^ (k >> 17) ^ (k >> 31) ^ (k >> 47)) & mask
    empty = np.int64(-1)
    for _ in range(table_keys.shape[0]):  # the table has more slots than keys: always ends
        old = cuda.atomic.cas(table_keys, h, empty, k)
        if old == empty or old == k:  # noqa: PLR1714, SIM109 (CUDA: no tuple membership test)
            break
        h = (h + 1) & mask
    slot_of[i] = h
    cuda.atomic.min(table_first, h, i)


@cuda.jit
def first_flags(slot_of, table_first, n, flags):  # type: ignore[no-untyped-def]
    """``flags[i]`` = 1 when point ``i`` is its voxel's first point."""
    i = cuda.grid(1)
    if i < n:
        s = slot_of[i]
        flags[i] = 1 if (s >= 0 and table_first[s] == i) else 0


@cuda.jit
def chunk_sums(values, n, sums):  # type: ignore[no-untyped-def]
    """``sums[t]`` = sum of ``values`` over chunk ``t`` (:data:`SCAN_CHUNK` elements)."""
    t = cuda.grid(1)
    a = t * SCAN_CHUNK
    if a < n:
        b = min(a + SCAN_CHUNK, n)
        s = 0
        for i in range(a, b):
            s += values[i]
        sums[t] = s


@cuda.jit
def scan_sums(sums, n_chunks, total):  # type: ignore[no-untyped-def]
    """One thread: ``sums`` → exclusive prefix sums in place; ``total[0]`` = the sum."""
    if cuda.grid(1) == 0:
        run = 0
        for t in range(n_chunks):
            v = sums[t]
            sums[t] = run
            run += v
        total[0] = run


@cuda.jit
def chunk_scan(values, n, sums, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = exclusive prefix sum of ``values`` at ``i`` (after :func:`scan_sums`)."""
    t = cuda.grid(1)
    a = t * SCAN_CHUNK
    if a < n:
        b = min(a + SCAN_CHUNK, n)
        run = sums[t]
        for i in range(a, b):
            out[i] = run
            run += values[i]


@cuda.jit
def voxel_ids(flags, prefix, slot_of, keys, n, table_vid, vkey, vkey_len):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """First points publish their voxel id (the prefix sum: first-point order) and key."""
    i = cuda.grid(1)
    if i < n and flags[i] == 1:
        v = prefix[i]
        table_vid[slot_of[i]] = v
        if v < vkey_len:
            vkey[v] = keys[i]


@cuda.jit
def decode_coords(vkey, m, shift_x, shift_y, zyx, coords):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """``coords[v]`` from the voxel key (``(z, y, x)`` when ``zyx``)."""
    v = cuda.grid(1)
    if v < m:
        k = vkey[v]
        cx = k >> shift_x
        cy = (k >> shift_y) & ((np.int64(1) << (shift_x - shift_y)) - 1)
        cz = k & ((np.int64(1) << shift_y) - 1)
        if zyx:
            coords[v, 0] = cz
            coords[v, 1] = cy
            coords[v, 2] = cx
        else:
            coords[v, 0] = cx
            coords[v, 1] = cy
            coords[v, 2] = cz


@cuda.jit
def dynamic_assign(slot_of, table_vid, n, point_voxel, num):  # type: ignore[no-untyped-def]
    """Dynamic voxelization: each point's voxel id and the voxel's count (atomic add)."""
    i = cuda.grid(1)
    if i < n:
        s = slot_of[i]
        if s < 0:
            point_voxel[i] = -1
        else:
            v = table_vid[s]
            point_voxel[i] = v
            cuda.atomic.add(num, v, 1)


@cuda.jit
def fill_int(values, n, value):  # type: ignore[no-untyped-def]
    i = cuda.grid(1)
    if i < n:
        values[i] = value


# -- hard voxelization ------------------------------------------------------------------------------------
@cuda.jit
def hard_cutoff(flags, prefix, n, max_voxels, cutoff):  # type: ignore[no-untyped-def]
    """``on_cap="stop"``: the first point of voxel number ``max_voxels`` ends the pass (unique writer)."""
    i = cuda.grid(1)
    if i < n and flags[i] == 1 and prefix[i] == max_voxels:
        cutoff[0] = i


@cuda.jit
def hard_count(slot_of, table_vid, n, cutoff, max_voxels, count, stats):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Points before the cutoff: per kept voxel a count; ``stats[0]`` outside, ``stats[1]`` points whose
    voxel is beyond ``max_voxels`` (``on_cap="continue"``)."""
    i = cuda.grid(1)
    if i < n and i < cutoff[0]:
        s = slot_of[i]
        if s < 0:
            cuda.atomic.add(stats, 0, 1)
            return
        v = table_vid[s]
        if v < max_voxels:
            cuda.atomic.add(count, v, 1)
        else:
            cuda.atomic.add(stats, 1, 1)


@cuda.jit
def hard_bucket(slot_of, table_vid, n, cutoff, max_voxels, offset, cursor, bucket):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Each kept point's index into its voxel's bucket (unordered; sorted per voxel next)."""
    i = cuda.grid(1)
    if i < n and i < cutoff[0]:
        s = slot_of[i]
        if s >= 0:
            v = table_vid[s]
            if v < max_voxels:
                pos = cuda.atomic.add(cursor, v, 1)
                bucket[offset[v] + pos] = i


@cuda.jit
def hard_gather(points, bucket, offset, count, m, max_points, voxels, num, stats):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """One thread per voxel: keep its ``max_points`` lowest point indices, in index order (the CPU's
    arrival order), copy those points (zero rows after them) and count the rest as dropped."""
    v = cuda.grid(1)
    if v >= m:
        return
    a = offset[v]
    c = count[v]
    keep = min(c, max_points)
    # partial insertion sort: bucket[a:a+keep] becomes the `keep` smallest indices, ascending
    for j in range(c):
        x = bucket[a + j]
        if j < keep:
            q = j
        elif x < bucket[a + keep - 1]:
            bucket[a + j] = bucket[a + keep - 1]
            q = keep - 1
        else:
            continue
        while q > 0 and bucket[a + q - 1] > x:
            bucket[a + q] = bucket[a + q - 1]
            q -= 1
        bucket[a + q] = x
    n_ch = voxels.shape[2]
    for k in range(voxels.shape[1]):
        if k < keep:
            i = bucket[a + k]
            for ch in range(n_ch):
                voxels[v, k, ch] = points[i, ch]
        else:
            for ch in range(n_ch):
                voxels[v, k, ch] = 0
    num[v] = keep
    if c > keep:
        cuda.atomic.add(stats, 2, c - keep)


@cuda.jit
def pillar_features(voxels, coords, num_points, m, zyx, x_center0, y_center0, size_x, size_y, out):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """One thread per pillar: :func:`edgefuse.fusion._voxel_kernels._pillar_features`'s body."""
    p = cuda.grid(1)
    if p >= m:
        return
    c = voxels.shape[2]
    max_pts = voxels.shape[1]
    width = out.shape[2]
    k_n = num_points[p]
    # float64 sums as the CPU kernel (np.float64: the simulator would otherwise sum float32 in numpy)
    sx = np.float64(0.0)
    sy = np.float64(0.0)
    sz = np.float64(0.0)
    for k in range(k_n):
        sx += voxels[p, k, 0]
        sy += voxels[p, k, 1]
        sz += voxels[p, k, 2]
    inv = 1.0 / max(k_n, 1)
    mx = sx * inv
    my = sy * inv
    mz = sz * inv
    cx = coords[p, 2] if zyx else coords[p, 0]
    cy = coords[p, 1]
    xc = x_center0 + cx * size_x
    yc = y_center0 + cy * size_y
    for k in range(k_n):
        for j in range(c):
            out[p, k, j] = voxels[p, k, j]
        x = voxels[p, k, 0]
        y = voxels[p, k, 1]
        out[p, k, c] = x - mx
        out[p, k, c + 1] = y - my
        out[p, k, c + 2] = voxels[p, k, 2] - mz
        out[p, k, c + 3] = x - xc
        out[p, k, c + 4] = y - yc
    for k in range(k_n, max_pts):
        for j in range(width):
            out[p, k, j] = 0


# -- BEV --------------------------------------------------------------------------------------------------
@cuda.jit
def bev_clear(count, zmax, zmin, isum, n_cells):  # type: ignore[no-untyped-def]
    c = cuda.grid(1)
    if c < n_cells:
        count[c] = 0
        zmax[c] = -math.inf
        zmin[c] = math.inf
        isum[c] = 0.0


@cuda.jit
def bev_scatter(xyz, intensity, has_intensity, n, x_lo, y_lo, z_lo, z_hi, res_x, res_y, nx, ny,  # type: ignore[no-untyped-def]  # noqa: PLR0917
                count, zmax, zmin, isum):
    """One thread per point: the CPU's cell and filter, then atomic count / max / min / sum."""
    i = cuda.grid(1)
    if i >= n:
        return
    x = np.float64(xyz[i, 0])
    y = np.float64(xyz[i, 1])
    z = np.float64(xyz[i, 2])
    if not (z >= z_lo and z < z_hi):
        return
    dx = (x - x_lo) / res_x
    dy = (y - y_lo) / res_y
    # the CPU's 0 <= floor(d) < n is 0 <= d < n (n whole); floor of d >= 0 is truncation (no NaN/inf cast)
    if not (dx >= 0 and dx < nx and dy >= 0 and dy < ny):
        return
    cell = np.int64(dy) * nx + np.int64(dx)
    cuda.atomic.add(count, cell, 1)
    z32 = np.float32(z)
    cuda.atomic.max(zmax, cell, z32)
    cuda.atomic.min(zmin, cell, z32)
    if has_intensity:
        cuda.atomic.add(isum, cell, np.float32(intensity[i]))


@cuda.jit
def bev_finish(count, zmax, zmin, isum, nx, n_cells, s_max, s_min, s_int, s_den, s_occ,  # type: ignore[no-untyped-def]  # noqa: PLR0917
               log_norm, empty_height, out):
    """One thread per cell: the output channels (empty cells: 0, height channels ``empty_height``)."""
    c = cuda.grid(1)
    if c >= n_cells:
        return
    r = c // nx
    q = c - r * nx
    k = count[c]
    for ch in range(out.shape[2]):
        out[r, q, ch] = 0
    if k == 0:
        if s_max >= 0:
            out[r, q, s_max] = empty_height
        if s_min >= 0:
            out[r, q, s_min] = empty_height
        return
    if s_max >= 0:
        out[r, q, s_max] = zmax[c]
    if s_min >= 0:
        out[r, q, s_min] = zmin[c]
    if s_int >= 0:
        out[r, q, s_int] = isum[c] / k
    if s_den >= 0:
        if log_norm > 0.0:
            out[r, q, s_den] = min(1.0, math.log(k + 1.0) / log_norm)
        else:
            out[r, q, s_den] = k
    if s_occ >= 0:
        out[r, q, s_occ] = 1.0


# -- deskew -----------------------------------------------------------------------------------------------
@cuda.jit
def deskew_points(pts, tau, n, offset_s, seg_t, seg_tab, tp, t_lo, t_hi, nan_outside, out, counts):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """One thread per point: :func:`edgefuse.fusion._deskew_kernels._deskew_points` for that point
    (its segment by binary search; Taylor sin/cos where the point's own angle is <= POLY_MAX_ANGLE,
    the CPU decides per run of points).  ``counts[0]`` outside the window, ``counts[1]`` NaN times."""
    i = cuda.grid(1)
    if i >= n:
        return
    k_count = seg_t.shape[0]
    tt = tau[i] + offset_s
    k = 0
    if not math.isfinite(tt):
        cuda.atomic.add(counts, 1, 1)
        s = math.nan
    else:
        lo = 0
        hi = k_count - 1
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if seg_t[mid] <= tt:
                lo = mid
            else:
                hi = mid - 1
        k = lo
        s = tt - seg_t[k]
        if tt < t_lo or tt > t_hi:
            cuda.atomic.add(counts, 0, 1)
            if nan_outside:
                s = math.nan
    ux = seg_tab[k, _dk._U]
    uy = seg_tab[k, _dk._U + 1]
    uz = seg_tab[k, _dk._U + 2]
    wn = seg_tab[k, _dk._WN]
    ang = wn * s
    if abs(ang) <= _dk.POLY_MAX_ANGLE:
        a2 = ang * ang
        sn = ang * (1.0 + a2 * (_dk._S3 + a2 * (_dk._S5 + a2 * (_dk._S7 + a2 * (_dk._S9 + a2 * (
            _dk._S11 + a2 * _dk._S13))))))
        cs = 1.0 + a2 * (_dk._C2 + a2 * (_dk._C4 + a2 * (_dk._C6 + a2 * (_dk._C8 + a2 * (
            _dk._C10 + a2 * (_dk._C12 + a2 * _dk._C14))))))
    else:
        sn = math.sin(ang)
        cs = math.cos(ang)
    oc = 1.0 - cs
    yx = np.float64(pts[i, 0]) + tp[0]
    yy = np.float64(pts[i, 1]) + tp[1]
    yz = np.float64(pts[i, 2]) + tp[2]
    dot = (ux * yx + uy * yy + uz * yz) * oc
    zx = yx * cs + (uy * yz - uz * yy) * sn + ux * dot
    zy = yy * cs + (uz * yx - ux * yz) * sn + uy * dot
    zz = yz * cs + (ux * yy - uy * yx) * sn + uz * dot
    s2 = s * s
    g = _dk._G
    b = _dk._B
    c = _dk._C
    d = _dk._D
    out[i, 0] = (seg_tab[k, g] * zx + seg_tab[k, g + 1] * zy + seg_tab[k, g + 2] * zz
                 + (seg_tab[k, b] + seg_tab[k, c] * s + seg_tab[k, d] * s2))
    out[i, 1] = (seg_tab[k, g + 3] * zx + seg_tab[k, g + 4] * zy + seg_tab[k, g + 5] * zz
                 + (seg_tab[k, b + 1] + seg_tab[k, c + 1] * s + seg_tab[k, d + 1] * s2))
    out[i, 2] = (seg_tab[k, g + 6] * zx + seg_tab[k, g + 7] * zy + seg_tab[k, g + 8] * zz
                 + (seg_tab[k, b + 2] + seg_tab[k, c + 2] * s + seg_tab[k, d + 2] * s2))
