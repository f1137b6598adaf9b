"""Slow, obviously-correct references for the voxel / BEV / point-cloud kernels (python loops)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[Any]


def ref_cell(points: Arr, lo: Arr, size: Arr, grid: tuple[int, int, int]) -> list[tuple[int, int, int] | None]:
    """Cell of each point, computed in the points' dtype as SECOND does; None outside or non-finite."""
    dt = points.dtype.type
    cells: list[tuple[int, int, int] | None] = []
    with np.errstate(invalid="ignore", over="ignore"):
        for p in points:
            c = []
            for j in range(3):
                f = np.floor((dt(p[j]) - dt(lo[j])) / dt(size[j]))
                if not (f >= 0 and f < grid[j]):
                    break
                c.append(int(f))
            cells.append((c[0], c[1], c[2]) if len(c) == 3 else None)
    return cells


def ref_hard_voxelize(  # noqa: PLR0917
    points: Arr, lo: Arr, size: Arr, grid: tuple[int, int, int], max_points: int, max_voxels: int,
    zyx: bool = True, on_cap: str = "stop",
) -> tuple[Arr, Arr, Arr, tuple[int, int, int]]:
    """Hard voxelization with a dict: (voxels, coords, num_points, (out, cap, full)).

    ``on_cap="stop"``: SECOND's ``points_to_voxel`` (traveller59/second.pytorch): the first point that
    needs voxel ``max_voxels + 1`` ends the pass; it and every later point count as ``cap``.
    ``on_cap="continue"``: mmdet3d's / mmcv's / spconv 1.x's copy: only points that need a new voxel
    are dropped (one ``cap`` each); later points still join the voxels that exist.
    """
    index: dict[tuple[int, int, int], int] = {}
    voxels = np.zeros((max_voxels, max_points, points.shape[1]), dtype=points.dtype)
    coords: list[tuple[int, int, int]] = []
    num: list[int] = []
    n_out = n_cap = n_full = 0
    for i, cell in enumerate(ref_cell(points, lo, size, grid)):
        if cell is None:
            n_out += 1
            continue
        v = index.get(cell)
        if v is None:
            if len(coords) >= max_voxels:
                if on_cap == "stop":
                    n_cap += points.shape[0] - i
                    break
                n_cap += 1
                continue
            v = index[cell] = len(coords)
            coords.append(cell[::-1] if zyx else cell)
            num.append(0)
        if num[v] < max_points:
            voxels[v, num[v]] = points[i]
            num[v] += 1
        else:
            n_full += 1
    m = len(coords)
    return (voxels[:m], np.array(coords, dtype=np.int32).reshape(m, 3), np.array(num, dtype=np.int32),
            (n_out, n_cap, n_full))


def ref_dynamic_voxelize(points: Arr, lo: Arr, size: Arr, grid: tuple[int, int, int],
                         zyx: bool = True) -> tuple[Arr, Arr, Arr]:
    index: dict[tuple[int, int, int], int] = {}
    pv = np.full(points.shape[0], -1, dtype=np.int32)
    coords: list[tuple[int, int, int]] = []
    num: list[int] = []
    for i, cell in enumerate(ref_cell(points, lo, size, grid)):
        if cell is None:
            continue
        v = index.get(cell)
        if v is None:
            v = index[cell] = len(coords)
            coords.append(cell[::-1] if zyx else cell)
            num.append(0)
        num[v] += 1
        pv[i] = v
    m = len(coords)
    return pv, np.array(coords, dtype=np.int32).reshape(m, 3), np.array(num, dtype=np.int32)


def ref_pillar_features(  # noqa: PLR0917
    voxels: Arr, coords: Arr, num: Arr, lo: Arr, size: Arr, zyx: bool = True) -> Arr:
    m, k_max, c = voxels.shape
    out = np.zeros((m, k_max, c + 5), dtype=voxels.dtype)
    for p in range(m):
        k = int(num[p])
        pts = voxels[p, :k].astype(np.float64)
        mean = pts[:, :3].mean(axis=0)
        cx = coords[p, 2] if zyx else coords[p, 0]
        cy = coords[p, 1]
        xc = lo[0] + size[0] / 2 + cx * size[0]
        yc = lo[1] + size[1] / 2 + cy * size[1]
        for q in range(k):
            out[p, q, :c] = voxels[p, q]
            out[p, q, c:c + 3] = pts[q, :3] - mean
            out[p, q, c + 3] = pts[q, 0] - xc
            out[p, q, c + 4] = pts[q, 1] - yc
    return out


def ref_bev(  # noqa: PLR0917
    points: Arr, intensity: Arr | None, x_range: tuple[float, float], y_range: tuple[float, float],
            res: float, z_range: tuple[float, float], channels: list[str], density_log_norm: float,
            empty_height: float) -> Arr:
    nx = round((x_range[1] - x_range[0]) / res)
    ny = round((y_range[1] - y_range[0]) / res)
    cells: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(points.astype(np.float64)):
        x, y, z = p[0], p[1], p[2]
        if not (z_range[0] <= z < z_range[1]):
            continue
        fx = math.floor((x - x_range[0]) / res) if math.isfinite(x) else -1
        fy = math.floor((y - y_range[0]) / res) if math.isfinite(y) else -1
        if 0 <= fx < nx and 0 <= fy < ny:
            cells.setdefault((fy, fx), []).append(i)
    img = np.zeros((ny, nx, len(channels)), dtype=np.float32)
    for ch, name in enumerate(channels):
        if name in ("max_z", "min_z"):
            img[:, :, ch] = empty_height
    for (r, q), idx in cells.items():
        zs = points[idx, 2].astype(np.float64)
        for ch, name in enumerate(channels):
            if name == "max_z":
                img[r, q, ch] = zs.max()
            elif name == "min_z":
                img[r, q, ch] = zs.min()
            elif name == "mean_intensity":
                img[r, q, ch] = 0.0 if intensity is None else float(np.mean(intensity[idx].astype(np.float64)))
            elif name == "density":
                k = len(idx)
                img[r, q, ch] = min(1.0, math.log(k + 1) / math.log(density_log_norm)) if density_log_norm > 1 else k
            else:
                img[r, q, ch] = 1.0
    return img


def ref_range_image(points: Arr, rings: Arr, n_rings: int, width: int, top_ring_first: bool = True) -> tuple[Arr, Arr]:
    rng_img = np.zeros((n_rings, width), dtype=np.float32)
    idx_img = np.full((n_rings, width), -1, dtype=np.int32)
    for i, p in enumerate(points.astype(np.float64)):
        ring = int(rings[i])
        if not 0 <= ring < n_rings or not np.all(np.isfinite(p[:3])):
            continue
        x, y, z = p[0], p[1], p[2]
        r = np.float32(math.sqrt(x * x + y * y + z * z))
        col = min(max(math.floor((0.5 - math.atan2(y, x) / (2 * math.pi)) * width), 0), width - 1)
        row = n_rings - 1 - ring if top_ring_first else ring
        if idx_img[row, col] < 0 or r < rng_img[row, col]:
            rng_img[row, col] = r
            idx_img[row, col] = i
    return rng_img, idx_img
