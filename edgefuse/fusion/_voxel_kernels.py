"""Numba kernels for voxelization (hard, dynamic, pillars) and BEV grids.

Kernels take arrays and scalars only, trust their inputs (checked by :mod:`edgefuse.fusion.voxel` and
:mod:`edgefuse.fusion.bev`), never raise and never index outside their arrays.

Voxel coordinates (shared with the test references):

- ``c_j = floor((p_j - lo_j) / size_j)`` computed in the points' own dtype (float32 clouds in float32,
  exactly as SECOND's ``points_to_voxel``: ``lo``/``size`` arrays are passed in that dtype), and the
  point is inside when ``0 <= c_j < grid_j`` for x, y and z.  The comparison is written so that NaN
  fails it: non-finite points are outside.
- Voxel ids are assigned in the order of each voxel's first (inside) point.  A voxel is identified by
  its *key* ``cx << shift_x | cy << shift_y | cz`` (bit fields as wide as ``grid - 1`` needs, so a key
  decodes with shifts and masks; :meth:`edgefuse.fusion.voxel.VoxelGeometry.key_shifts`).  The hard
  voxelizer finds voxels through an (x, y) column grid with an occupancy bitmap (or, for grids with
  too many columns, an open-addressing hash table) that each call empties again (only what it filled);
  the dynamic voxelizer's hash table tags its slots with the generation of the call that wrote them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange

from edgefuse._jit import njit

#: Fibonacci hashing multiplier 0x9E3779B97F4A7C15 as a signed int64 (multiplication wraps).
_HASH_MUL = np.int64(-7046029254386353131)

#: counters the hard kernel writes into its ``stats`` array (int64, :data:`HARD_STATS_LEN`)
HARD_OUTSIDE = 0  # points outside the range or non-finite
HARD_CAP = 1  # points dropped because max_voxels was reached
HARD_FULL = 2  # points dropped because their voxel was full
HARD_STATS_LEN = 3


@njit()
def _cell_keys(  # noqa: PLR0917 (one flat kernel; scalar arguments by design)
    points: np.ndarray,
    i0: int,
    i1: int,
    lo: np.ndarray,
    size: np.ndarray,
    top: np.ndarray,
    shift_x: int,
    shift_y: int,
    xyz: np.ndarray,
    keys: np.ndarray,
) -> None:
    """``keys[i - i0]`` = voxel key of point ``i`` for ``i0 <= i < i1``, -1 outside or non-finite.

    ``top`` (3,) in the points' dtype is the largest value of that dtype <= ``grid - 1``, so for the
    whole numbers ``floor`` gives, ``c <= top`` is ``c < grid``; every comparison stays in the points'
    dtype and indices convert through int32 (``grid < 2^31``), which lets the loop run on SIMD lanes.
    ``xyz`` is (3, >= i1 - i0) scratch of the points' dtype: x, y, z are gathered there first so that
    the arithmetic runs over contiguous arrays instead of the (N, C) rows.
    """
    cnt = i1 - i0
    for t in range(cnt):
        xyz[0, t] = points[i0 + t, 0]
        xyz[1, t] = points[i0 + t, 1]
        xyz[2, t] = points[i0 + t, 2]
    lx, ly, lz = lo[0], lo[1], lo[2]
    sx, sy, sz = size[0], size[1], size[2]
    tx, ty, tz = top[0], top[1], top[2]
    zero = lx - lx
    xs = xyz[0]
    ys = xyz[1]
    zs = xyz[2]
    for t in range(cnt):
        fx = np.floor((xs[t] - lx) / sx)
        fy = np.floor((ys[t] - ly) / sy)
        fz = np.floor((zs[t] - lz) / sz)
        ok = (fx >= zero) & (fx <= tx) & (fy >= zero) & (fy <= ty) & (fz >= zero) & (fz <= tz)
        ix = np.int64(np.int32(fx if ok else zero))
        iy = np.int64(np.int32(fy if ok else zero))
        iz = np.int64(np.int32(fz if ok else zero))
        keys[t] = ((ix << shift_x) | (iy << shift_y) | iz) if ok else np.int64(-1)


@njit(parallel=True)
def _cell_keys_parallel(  # noqa: PLR0917
    points: np.ndarray,
    lo: np.ndarray,
    size: np.ndarray,
    top: np.ndarray,
    shift_x: int,
    shift_y: int,
    xyz: np.ndarray,
    keys: np.ndarray,
    chunk: int,
) -> None:
    """:func:`_cell_keys` for every point, chunks of ``chunk`` points in parallel; ``xyz`` is (3, >= N)."""
    n = points.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    for b in prange(n_chunks):
        i0 = b * chunk
        i1 = min(n, i0 + chunk)
        _cell_keys(points, i0, i1, lo, size, top, shift_x, shift_y, xyz[:, i0:i1], keys[i0:i1])


@njit()
def _hard_voxelize(  # noqa: PLR0912, PLR0915, PLR0917 (the one hot loop, kept flat: one compilation unit)
    points: np.ndarray,
    keys: np.ndarray,
    keys_given: bool,
    lo: np.ndarray,
    size: np.ndarray,
    top: np.ndarray,
    ny: int,
    shift_x: int,
    shift_y: int,
    max_points: int,
    max_voxels: int,
    stop: bool,
    zyx: bool,
    columns: np.ndarray,
    occupied: np.ndarray,
    table: np.ndarray,
    hash_shift: int,
    voxel_meta: np.ndarray,
    xyz: np.ndarray,
    voxels: np.ndarray,
    coords: np.ndarray,
    num_points: np.ndarray,
    stats: np.ndarray,
) -> int:
    """Hard voxelization of ``points`` (N, C) on one thread; returns the voxel count M.

    Keys: ``keys_given`` means ``keys`` (N,) already holds every point's key (the parallel path,
    :func:`_cell_keys_parallel`); otherwise ``keys`` is (K,) scratch and keys are computed K points at
    a time (:func:`_cell_keys`, scratch ``xyz``), so a stopped pass computes few keys past its stop.

    Voxels are found through one of two structures; ``voxel_meta[v]`` is ``[key, link]`` of voxel v:

    - ``columns`` (nx * ny int32), when not empty: the last voxel made in each (x, y) column (index
      ``col = cx * ny + cy``), ``link`` the column's previous one (-1 at the end).  A cell is valid only
      where bit ``col`` of ``occupied`` (int64 words, 281 KB for KITTI: it stays in L2) is set, so a
      point of a new column reads no cell of the grid.  Neighbouring points of a sweep use
      neighbouring cells (unlike a hash), and a column holds few voxels.
    - otherwise ``table`` (S, 2) int64, S a power of two: ``[key, voxel id]`` per slot, key -1 when
      free, Fibonacci hash of the key, linear probing; ``link`` is the voxel's slot.

    Both are left as found (only what this call filled is emptied at the end).  A new voxel's rows
    are written at once (its first point, zeros after it).  A voxel beyond ``max_voxels``: with
    ``stop`` this point and all later ones (``N - i``) count as dropped and the pass ends (SECOND);
    without, only this point is dropped.  Consecutive points of one voxel skip the look-up.

    Writes ``voxels[:M]`` (M, max_points, C) (rows past a voxel's count zero), ``coords[:M]`` (M, 3)
    int32, (z, y, x) when ``zyx`` else (x, y, z), ``num_points[:M]`` and ``stats`` (see ``HARD_*``).
    """
    n = points.shape[0]
    c = points.shape[1]
    use_columns = columns.shape[0] > 0
    mask = table.shape[0] - 1
    mask_y = (np.int64(1) << (shift_x - shift_y)) - 1
    mask_z = (np.int64(1) << shift_y) - 1
    chunk = max(n, 1) if keys_given else keys.shape[0]
    m = 0
    n_out = 0
    n_cap = 0
    n_full = 0
    last_key = np.int64(-1)
    last_v = np.int64(0)
    stopped = False
    for i0 in range(0, n, chunk):
        i1 = min(n, i0 + chunk)
        if not keys_given:
            _cell_keys(points, i0, i1, lo, size, top, shift_x, shift_y, xyz, keys)
        for i in range(i0, i1):
            key = keys[i - i0]
            if key < 0:
                n_out += 1
                continue
            if key != last_key:
                ix = key >> shift_x
                iy = (key >> shift_y) & mask_y
                col = ix * ny + iy
                word = col >> 6
                bit = np.int64(1) << (col & 63)
                in_use = False
                slot = np.int64(0)
                v = np.int64(-1)
                if use_columns:
                    in_use = (occupied[word] & bit) != 0
                    if in_use:
                        v = np.int64(columns[col])
                        while v >= 0 and voxel_meta[v, 0] != key:
                            v = voxel_meta[v, 1]
                else:
                    slot = ((key * _HASH_MUL) >> hash_shift) & mask
                    while table[slot, 0] != key and table[slot, 0] >= 0:
                        slot = (slot + 1) & mask
                    if table[slot, 0] >= 0:
                        v = table[slot, 1]
                if v < 0:
                    if m >= max_voxels:
                        if stop:
                            n_cap += n - i
                            stopped = True
                            break
                        n_cap += 1
                        continue
                    v = np.int64(m)
                    m += 1
                    voxel_meta[v, 0] = key
                    if use_columns:
                        voxel_meta[v, 1] = columns[col] if in_use else -1
                        columns[col] = v
                        occupied[word] |= bit
                    else:
                        table[slot, 0] = key
                        table[slot, 1] = v
                        voxel_meta[v, 1] = slot
                    iz = key & mask_z
                    if zyx:
                        coords[v, 0] = iz
                        coords[v, 2] = ix
                    else:
                        coords[v, 0] = ix
                        coords[v, 2] = iz
                    coords[v, 1] = iy
                    for j in range(c):
                        voxels[v, 0, j] = points[i, j]
                    for q in range(1, max_points):
                        for j in range(c):
                            voxels[v, q, j] = 0
                    num_points[v] = 1
                    last_key = key
                    last_v = v
                    continue
                last_key = key
                last_v = v
            v = last_v
            k = num_points[v]
            if k < max_points:
                for j in range(c):
                    voxels[v, k, j] = points[i, j]
                num_points[v] = k + 1
            else:
                n_full += 1
        if stopped:
            break
    if use_columns:  # leave the index empty for the next call: clear only what this one filled
        for u in range(m):
            key = voxel_meta[u, 0]
            occupied[((key >> shift_x) * ny + ((key >> shift_y) & mask_y)) >> 6] = 0
    else:
        for u in range(m):
            table[voxel_meta[u, 1], 0] = -1
    stats[HARD_OUTSIDE] = n_out
    stats[HARD_CAP] = n_cap
    stats[HARD_FULL] = n_full
    return m


@njit()
def _pillar_features(  # noqa: PLR0917
    voxels: np.ndarray,
    coords: np.ndarray,
    num_points: np.ndarray,
    m: int,
    zyx: bool,
    x_center0: float,
    y_center0: float,
    size_x: float,
    size_y: float,
    out: np.ndarray,
) -> None:
    """PointPillars' augmented features for the first ``m`` pillars.

    ``out[p, k]`` = the point's C channels, then ``x - mean_x``, ``y - mean_y``, ``z - mean_z`` (mean
    over the pillar's kept points, float64 sums) and ``x - xc``, ``y - yc`` (pillar centre
    ``xc = x_center0 + cx * size_x``); rows past ``num_points[p]`` are all zero.
    """
    c = voxels.shape[2]
    max_pts = voxels.shape[1]
    width = out.shape[2]
    for p in range(m):
        k_n = num_points[p]
        sx = 0.0
        sy = 0.0
        sz = 0.0
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
#: channel codes (index into the ``slots`` array given to :func:`_bev_scatter`)
BEV_MAX_Z = 0
BEV_MIN_Z = 1
BEV_MEAN_INTENSITY = 2
BEV_DENSITY = 3
BEV_OCCUPANCY = 4
BEV_N_KINDS = 5


@njit()
def _bev_scatter(  # noqa: PLR0917
    xyz: np.ndarray,
    intensity: np.ndarray,
    has_intensity: bool,
    x_lo: float,
    y_lo: float,
    z_lo: float,
    z_hi: float,
    res_x: float,
    res_y: float,
    nx: int,
    ny: int,
    slots: np.ndarray,
    density_log_norm: float,
    empty_height: float,
    out: np.ndarray,
    count: np.ndarray,
    touched: np.ndarray,
    n_touched: int,
) -> int:
    """Scatter points into an (ny, nx, C) float32 BEV image in one pass over the points.

    Cell ``(row, col) = (floor((y - y_lo) / res_y), floor((x - x_lo) / res_x))`` (float64), points with
    ``z_lo <= z < z_hi`` only, non-finite points skipped.  ``slots[kind]`` is the output channel of each
    kind (-1 when not requested).  Cells touched by the previous call (``touched[:n_touched]``) are
    reset first; returns the new touched count.  Empty cells hold 0 in every channel except the height
    channels, which hold ``empty_height``.  Density is the count, or ``min(1, log(count + 1) /
    log(density_log_norm))`` when ``density_log_norm > 1``.
    """
    n = xyz.shape[0]
    n_ch = out.shape[2]
    s_max = slots[BEV_MAX_Z]
    s_min = slots[BEV_MIN_Z]
    s_int = slots[BEV_MEAN_INTENSITY]
    s_den = slots[BEV_DENSITY]
    s_occ = slots[BEV_OCCUPANCY]
    for t in range(n_touched):
        cell = touched[t]
        r = cell // nx
        q = cell - r * nx
        count[cell] = 0
        for ch in range(n_ch):
            out[r, q, ch] = 0
        if s_max >= 0:
            out[r, q, s_max] = empty_height
        if s_min >= 0:
            out[r, q, s_min] = empty_height
    nt = 0
    for i in range(n):
        x = np.float64(xyz[i, 0])
        y = np.float64(xyz[i, 1])
        z = np.float64(xyz[i, 2])
        if not (z >= z_lo and z < z_hi):
            continue
        fx = np.floor((x - x_lo) / res_x)
        fy = np.floor((y - y_lo) / res_y)
        if not (fx >= 0 and fx < nx and fy >= 0 and fy < ny):
            continue
        q = np.int64(fx)
        r = np.int64(fy)
        cell = r * nx + q
        k = count[cell]
        if k == 0:
            touched[nt] = cell
            nt += 1
            if s_max >= 0:
                out[r, q, s_max] = z
            if s_min >= 0:
                out[r, q, s_min] = z
            if s_int >= 0:
                out[r, q, s_int] = intensity[i] if has_intensity else 0
        else:
            if s_max >= 0 and z > out[r, q, s_max]:
                out[r, q, s_max] = z
            if s_min >= 0 and z < out[r, q, s_min]:
                out[r, q, s_min] = z
            if s_int >= 0 and has_intensity:
                out[r, q, s_int] += intensity[i]
        count[cell] = k + 1
    log_norm = math.log(density_log_norm) if density_log_norm > 1.0 else 0.0
    for t in range(nt):
        cell = touched[t]
        r = cell // nx
        q = cell - r * nx
        k = count[cell]
        if s_int >= 0:
            out[r, q, s_int] = out[r, q, s_int] / k
        if s_den >= 0:
            if log_norm > 0.0:
                out[r, q, s_den] = min(1.0, math.log(k + 1.0) / log_norm)
            else:
                out[r, q, s_den] = k
        if s_occ >= 0:
            out[r, q, s_occ] = 1.0
    return nt


_LOW32 = np.int64(0xFFFFFFFF)


@njit()
def _packed_slot(key: Any, table: np.ndarray, gen_hi: Any, shift: int, mask: int) -> Any:
    """Slot of ``key`` in a packed table (see :func:`_dynamic_voxelize_packed`) or its first free slot."""
    slot = ((key * _HASH_MUL) >> shift) & mask
    while (table[slot, 1] & ~_LOW32) == gen_hi and table[slot, 0] != key:
        slot = (slot + 1) & mask
    return slot


@njit()
def _packed_insert(  # noqa: PLR0917
    key: Any, ix: Any, iy: Any, iz: Any, zyx: bool, table: np.ndarray, gen_hi: Any, shift: int, mask: int,
    m: int, coords: np.ndarray, num_points: np.ndarray,
) -> tuple[int, int]:
    """Voxel id of ``key`` (inserting it as voxel ``m`` if new); returns ``(id, new m)``."""
    slot = _packed_slot(key, table, gen_hi, shift, mask)
    if (table[slot, 1] & ~_LOW32) == gen_hi:
        v = table[slot, 1] & _LOW32
        num_points[v] += 1
        return v, m
    table[slot, 0] = key
    table[slot, 1] = gen_hi | m
    if zyx:
        coords[m, 0] = iz
        coords[m, 2] = ix
    else:
        coords[m, 0] = ix
        coords[m, 2] = iz
    coords[m, 1] = iy
    num_points[m] = 1
    return m, m + 1


@njit()
def _dynamic_voxelize_packed(  # noqa: PLR0917
    points: np.ndarray,
    lo: np.ndarray,
    size: np.ndarray,
    nx: int,
    ny: int,
    nz: int,
    zyx: bool,
    table: np.ndarray,
    gen: int,
    shift: int,
    point_voxel: np.ndarray,
    coords: np.ndarray,
    num_points: np.ndarray,
    shift_x: int,
    shift_y: int,
) -> int:
    """Dynamic voxelization on one thread: ``point_voxel[i]`` = voxel id of point i (-1 outside).

    Voxel ids follow first-point order; ``coords[:M]`` as in :func:`_hard_voxelize`, ``num_points[:M]``
    counts every point of the voxel (no cap).  Returns M.

    The hash table is packed into one (S, 2) int64 array: ``table[s, 0]`` is the key and
    ``table[s, 1]`` is ``gen << 32 | voxel id``: a probe reads one 16-byte slot (one cache line)
    instead of three arrays (three cache misses on a table larger than the caches).  A slot is
    live when its upper 32 bits equal ``gen``; ``gen`` (1 … 2^31 - 2) changes every call, so the
    table is never cleared.
    """
    n = min(points.shape[0], point_voxel.shape[0])
    mask = table.shape[0] - 1
    gen_hi = np.int64(gen) << 32
    lx, ly, lz = lo[0], lo[1], lo[2]
    sx, sy, sz = size[0], size[1], size[2]
    m = 0
    for i in range(n):
        fx = np.floor((points[i, 0] - lx) / sx)
        fy = np.floor((points[i, 1] - ly) / sy)
        fz = np.floor((points[i, 2] - lz) / sz)
        if not (fx >= 0 and fx < nx and fy >= 0 and fy < ny and fz >= 0 and fz < nz):
            point_voxel[i] = -1
            continue
        ix = np.int64(fx)
        iy = np.int64(fy)
        iz = np.int64(fz)
        key = (ix << shift_x) | (iy << shift_y) | iz
        v, m = _packed_insert(key, ix, iy, iz, zyx, table, gen_hi, shift, mask, m, coords, num_points)
        point_voxel[i] = v
    return m


@njit()
def _dynamic_voxelize_packed_from_keys(  # noqa: PLR0917
    keys: np.ndarray,
    shift_x: int,
    shift_y: int,
    zyx: bool,
    table: np.ndarray,
    gen: int,
    shift: int,
    point_voxel: np.ndarray,
    coords: np.ndarray,
    num_points: np.ndarray,
) -> int:
    """Second half of the parallel path: :func:`_dynamic_voxelize_packed` given keys from :func:`_cell_keys`."""
    n = min(keys.shape[0], point_voxel.shape[0])
    mask = table.shape[0] - 1
    gen_hi = np.int64(gen) << 32
    mask_y = (np.int64(1) << (shift_x - shift_y)) - 1
    mask_z = (np.int64(1) << shift_y) - 1
    m = 0
    for i in range(n):
        key = keys[i]
        if key < 0:
            point_voxel[i] = -1
            continue
        ix = key >> shift_x
        iy = (key >> shift_y) & mask_y
        iz = key & mask_z
        v, m = _packed_insert(key, ix, iy, iz, zyx, table, gen_hi, shift, mask, m, coords, num_points)
        point_voxel[i] = v
    return m
