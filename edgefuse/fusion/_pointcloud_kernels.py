"""Numba kernels for point-cloud utilities: transforms, crops, RANSAC ground plane, range images.

Kernels trust their inputs (checked by :mod:`edgefuse.fusion.pointcloud_ops`), never raise and never
index outside their arrays.  Arithmetic is float64 unless stated.  Every comparison is written so that
NaN fails it: a non-finite point is never inside a crop, never an inlier, never in a range image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange

from edgefuse._jit import njit


@njit()
def _transform(points: np.ndarray, Rt: tuple[float, ...], out: np.ndarray) -> None:
    """``out[i, :3] = R @ points[i, :3] + t`` (float64 math, stored in ``out``'s dtype)."""
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    for i in range(points.shape[0]):
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        z = np.float64(points[i, 2])
        out[i, 0] = r00 * x + r01 * y + r02 * z + t0
        out[i, 1] = r10 * x + r11 * y + r12 * z + t1
        out[i, 2] = r20 * x + r21 * y + r22 * z + t2


@njit(parallel=True)
def _transform_parallel(points: np.ndarray, Rt: tuple[float, ...], out: np.ndarray, chunk: int) -> None:
    """:func:`_transform` over chunks of points on Numba's threads (identical results)."""
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    n = points.shape[0]
    for b in prange((n + chunk - 1) // chunk):
        for i in range(b * chunk, min(n, (b + 1) * chunk)):
            x = np.float64(points[i, 0])
            y = np.float64(points[i, 1])
            z = np.float64(points[i, 2])
            out[i, 0] = r00 * x + r01 * y + r02 * z + t0
            out[i, 1] = r10 * x + r11 * y + r12 * z + t1
            out[i, 2] = r20 * x + r21 * y + r22 * z + t2


@njit()
def _crop_box(points: np.ndarray, lo: tuple[float, float, float], hi: tuple[float, float, float],
              out: np.ndarray) -> int:
    """``out[i]`` = ``lo <= p < hi`` on x, y, z; returns the count inside."""
    k = 0
    for i in range(points.shape[0]):
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        z = np.float64(points[i, 2])
        inside = lo[0] <= x < hi[0] and lo[1] <= y < hi[1] and lo[2] <= z < hi[2]
        out[i] = inside
        if inside:
            k += 1
    return k


@njit()
def _crop_oriented_box(points: np.ndarray, Rt: tuple[float, ...], half: tuple[float, float, float],
                       out: np.ndarray) -> int:
    """``out[i]`` = ``|T_box_from_cloud p| <= half`` on every box axis (closed box); returns the count."""
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    k = 0
    for i in range(points.shape[0]):
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        z = np.float64(points[i, 2])
        bx = r00 * x + r01 * y + r02 * z + t0
        by = r10 * x + r11 * y + r12 * z + t1
        bz = r20 * x + r21 * y + r22 * z + t2
        inside = abs(bx) <= half[0] and abs(by) <= half[1] and abs(bz) <= half[2]
        out[i] = inside
        if inside:
            k += 1
    return k


@njit()
def _crop_range(points: np.ndarray, min_r2: float, max_r2: float, planar: bool, out: np.ndarray) -> int:
    """``out[i]`` = ``min_r2 <= r^2 <= max_r2`` (r in 3-D, or in x-y when ``planar``); returns the count."""
    k = 0
    for i in range(points.shape[0]):
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        r2 = x * x + y * y
        if not planar:
            z = np.float64(points[i, 2])
            r2 += z * z
        inside = min_r2 <= r2 <= max_r2
        out[i] = inside
        if inside:
            k += 1
    return k


@njit()
def _crop_fov(points: np.ndarray, az_center: float, az_half: float, el_min: float, el_max: float,  # noqa: PLR0917
              out: np.ndarray) -> int:
    """``out[i]`` = azimuth within ``az_half`` of ``az_center`` (rad, wrapped) and elevation in
    ``[el_min, el_max]``; azimuth ``atan2(y, x)``, elevation ``atan2(z, hypot(x, y))``."""
    k = 0
    two_pi = 2.0 * math.pi
    for i in range(points.shape[0]):
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        z = np.float64(points[i, 2])
        inside = False
        if math.isfinite(x) and math.isfinite(y) and math.isfinite(z):
            d = math.atan2(y, x) - az_center
            d = d - two_pi * math.floor((d + math.pi) / two_pi)
            el = math.atan2(z, math.sqrt(x * x + y * y))
            inside = abs(d) <= az_half and el_min <= el <= el_max
        out[i] = inside
        if inside:
            k += 1
    return k


@njit()
def _xorshift(state: np.ndarray) -> Any:
    """xorshift64* step on ``state[0]``; returns a non-negative 63-bit integer."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return np.int64((x * np.uint64(2685821657736338717)) >> np.uint64(1))


@njit()
def _ransac_plane(  # noqa: PLR0917
    points: np.ndarray,
    step: int,
    n_iter: int,
    threshold: float,
    min_normal_z: float,
    state: np.ndarray,
    plane: np.ndarray,
) -> int:
    """RANSAC plane ``a x + b y + c z + d = 0`` (unit normal, ``c >= 0``) on the sample ``points[::step]``.

    Each iteration draws 3 distinct sample points with :func:`_xorshift`, skips degenerate triples and
    planes whose ``|c| < min_normal_z`` (tilted more than allowed), and counts sample points with
    ``|distance| <= threshold``; the first best count wins.  Writes ``plane`` (4,) (all zero when no
    plane was found) and returns the best count.
    """
    m = (points.shape[0] + step - 1) // step
    best = -1
    plane[:] = 0.0
    if m < 3:
        return 0
    for _ in range(n_iter):
        i0 = (_xorshift(state) % m) * step
        i1 = (_xorshift(state) % m) * step
        i2 = (_xorshift(state) % m) * step
        if i0 == i1 or i1 == i2 or i0 == i2:  # noqa: PLR1714, SIM109 (plain compares in the kernel)
            continue
        ax = np.float64(points[i1, 0]) - points[i0, 0]
        ay = np.float64(points[i1, 1]) - points[i0, 1]
        az = np.float64(points[i1, 2]) - points[i0, 2]
        bx = np.float64(points[i2, 0]) - points[i0, 0]
        by = np.float64(points[i2, 1]) - points[i0, 1]
        bz = np.float64(points[i2, 2]) - points[i0, 2]
        nx = ay * bz - az * by
        ny = az * bx - ax * bz
        nz = ax * by - ay * bx
        norm = math.sqrt(nx * nx + ny * ny + nz * nz)
        if not (norm > 1e-12):
            continue
        nx /= norm
        ny /= norm
        nz /= norm
        if nz < 0:
            nx, ny, nz = -nx, -ny, -nz
        if nz < min_normal_z:
            continue
        d = -(nx * points[i0, 0] + ny * points[i0, 1] + nz * points[i0, 2])
        count = 0
        for s in range(m):
            j = s * step
            dist = nx * points[j, 0] + ny * points[j, 1] + nz * points[j, 2] + d
            if abs(dist) <= threshold:
                count += 1
        if count > best:
            best = count
            plane[0] = nx
            plane[1] = ny
            plane[2] = nz
            plane[3] = d
    return max(best, 0)


@njit()
def _plane_inliers(points: np.ndarray, a: float, b: float, c: float, d: float, threshold: float,  # noqa: PLR0917
                   out: np.ndarray) -> int:
    """``out[i]`` = ``|a x + b y + c z + d| <= threshold``; returns the count."""
    k = 0
    for i in range(points.shape[0]):
        dist = a * points[i, 0] + b * points[i, 1] + c * points[i, 2] + d
        inside = abs(dist) <= threshold
        out[i] = inside
        if inside:
            k += 1
    return k


@njit()
def _ring_from_elevation(points: np.ndarray, edges: np.ndarray, out: np.ndarray) -> None:
    """Ring of each point from its elevation ``atan2(z, hypot(x, y))`` (rad) and ascending bin edges.

    ``edges`` (R + 1,) bounds R rings, ring 0 lowest; ``out[i] = r`` for ``edges[r] <= el < edges[r + 1]``
    (the top edge included), else -1 (outside or non-finite).
    """
    n_rings = edges.shape[0] - 1
    for i in range(points.shape[0]):
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        el = math.atan2(np.float64(points[i, 2]), math.sqrt(x * x + y * y))
        if not (el >= edges[0] and el <= edges[n_rings]):
            out[i] = -1
            continue
        lo = 0
        hi = n_rings
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if el >= edges[mid]:
                lo = mid
            else:
                hi = mid
        out[i] = lo


@njit()
def _range_image(  # noqa: PLR0917
    points: np.ndarray,
    rings: np.ndarray,
    n_rings: int,
    width: int,
    top_ring_first: bool,
    min_range: float,
    max_range: float,
    range_img: np.ndarray,
    index_img: np.ndarray,
    touched: np.ndarray,
    n_touched: int,
) -> int:
    """Range image (rows = rings, cols = azimuth bins): the smallest float32 range wins a pixel, ties go to
    the lowest index.

    Column ``floor(0.5 * (1 - atan2(y, x) / pi) * width)`` (clamped to ``width - 1``): column 0 looks
    backwards (azimuth +pi), the middle column forward (+x), azimuth decreasing (clockwise seen from
    above) to the right.  Row ``n_rings - 1 - ring`` when ``top_ring_first`` else ``ring``.  Points
    with ring outside ``[0, n_rings)``, non-finite coordinates or range outside ``[min_range,
    max_range]`` are skipped.  Pixels written by the previous call (``touched[:n_touched]``) are reset
    first; returns the new touched count.
    """
    for t in range(n_touched):
        p = touched[t]
        r = p // width
        c = p - r * width
        range_img[r, c] = 0
        index_img[r, c] = -1
    nt = 0
    inv = 0.5 / math.pi
    for i in range(points.shape[0]):
        ring = np.int64(rings[i])
        if ring < 0 or ring >= n_rings:
            continue
        x = np.float64(points[i, 0])
        y = np.float64(points[i, 1])
        z = np.float64(points[i, 2])
        rng = math.sqrt(x * x + y * y + z * z)
        if not (rng >= min_range and rng <= max_range):
            continue
        col = math.floor((0.5 - math.atan2(y, x) * inv) * width)
        col = min(max(col, 0), width - 1)
        row = n_rings - 1 - ring if top_ring_first else ring
        r32 = np.float32(rng)
        if index_img[row, col] < 0:
            touched[nt] = row * width + col
            nt += 1
            range_img[row, col] = r32
            index_img[row, col] = i
        elif r32 < range_img[row, col]:
            range_img[row, col] = r32
            index_img[row, col] = i
    return nt
