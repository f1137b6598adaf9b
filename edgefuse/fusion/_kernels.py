"""Numba kernels for LiDAR/radar → camera projection.

Kernels take arrays and scalars only, trust their inputs (shapes, dtypes, contiguity are checked by
:mod:`edgefuse.fusion.projection`), never raise, and never index outside their arrays: every pixel
index is range-checked before it is used.

Conventions shared by all kernels (and by the reference in ``tests/fusion``):

- Camera frame: x right, y down, z forward (optical axis); depth is camera-frame ``z`` in metres.
- Distortion follows OpenCV exactly: ``cv2.projectPoints`` for PINHOLE / PLUMB_BOB / RATIONAL,
  ``cv2.fisheye.projectPoints`` for EQUIDISTANT.  The skew ``K[0, 1]`` is applied as
  ``u = fx * xd + skew * yd + cx`` (OpenCV's pinhole ``projectPoints`` ignores skew; its fisheye
  ``alpha`` equals ``skew / fx``).
- All arithmetic is float64; the published pixel coordinates ``uv`` are float32 and the integer
  pixel is derived from those float32 values: pixel centres are at integer coordinates, so
  ``col = floor(u + 0.5)``, ``row = floor(v + 0.5)``, and a point is inside the image when
  ``-0.5 <= u < width - 0.5`` and ``-0.5 <= v < height - 0.5``.
- Z-buffer: the nearest point (smallest float64 depth) wins a pixel; ties go to the lowest index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np
from numba import prange

from edgefuse._jit import njit
from edgefuse.fusion._models import EQUIDISTANT, PINHOLE

_NAN32 = np.float32(np.nan)
F = TypeVar("F", bound=Callable[..., Any])


def _inline(func: F) -> F:
    """``numba.njit(inline="always")``: Numba inlines the helper into each caller at its IR level, so the
    helper is compiled (and cached) as part of its callers, with their options."""
    return numba.njit(inline="always")(func)  # type: ignore[return-value]


@_inline
def _pixel_of(  # noqa: PLR0917
    x: float,
    y: float,
    model: int,
    intr: tuple[float, ...],
    D: tuple[float, ...],
    width: int,
    height: int,
    max_r2: float,
) -> tuple[bool, np.float32, np.float32, int]:
    """Pixel of the undistorted normalised point ``(x, y) = (X/Z, Y/Z)`` (float64), shared by the
    projection kernels: ``(ok, u32, v32, pixel)``.

    ``ok`` is False (and ``u32``/``v32`` NaN, ``pixel`` -1) when ``x^2 + y^2 > max_r2`` (outside the
    camera's valid radius, see :mod:`edgefuse.fusion.projection`), when the rational denominator is
    zero, or when the point lands outside the image (also for NaN/inf).  Otherwise ``u32``/``v32`` are
    the published float32 pixel coordinates and ``pixel`` is ``row * width + col`` derived from them.
    Inlined at Numba IR level (:func:`_inline`): as a plain call it costs a quarter of the kernel's time
    (``bench/bench_projection.py --compare-kernels``).
    """
    if not (x * x + y * y <= max_r2):  # beyond the valid radius (where the lens model folds back)
        return False, _NAN32, _NAN32, -1
    fx, fy, skew, cx, cy = intr
    k1, k2, p1, p2, k3, k4, k5, k6 = D
    xd = x
    yd = y
    if model == EQUIDISTANT:
        # cv2.fisheye.projectPoints; D = (k1, k2, k3, k4) sits in the slots named k1, k2, p1, p2.
        r = math.sqrt(x * x + y * y)
        if r > 1e-8:
            theta = math.atan(r)
            theta2 = theta * theta
            theta3 = theta2 * theta
            theta5 = theta3 * theta2
            theta7 = theta5 * theta2
            theta9 = theta7 * theta2
            theta_d = theta + k1 * theta3 + k2 * theta5 + p1 * theta7 + p2 * theta9
            cdist = theta_d * (1.0 / r)
            xd = x * cdist
            yd = y * cdist
    elif model != PINHOLE:
        # cv2.projectPoints; PLUMB_BOB is RATIONAL with k4 = k5 = k6 = 0.
        r2 = x * x + y * y
        r4 = r2 * r2
        r6 = r4 * r2
        a1 = 2.0 * x * y
        a2 = r2 + 2.0 * x * x
        a3 = r2 + 2.0 * y * y
        cdist = 1.0 + k1 * r2 + k2 * r4 + k3 * r6
        denominator = 1.0 + k4 * r2 + k5 * r4 + k6 * r6
        if denominator == 0.0:  # OpenCV yields inf there; a kernel never divides by zero
            return False, _NAN32, _NAN32, -1
        icdist2 = 1.0 / denominator
        xd = x * cdist * icdist2 + p1 * a1 + p2 * a2
        yd = y * cdist * icdist2 + p1 * a3 + p2 * a1
    # Round to the published float32 first so the integer pixel always agrees with ``uv``.
    u32 = np.float32(fx * xd + skew * yd + cx)
    v32 = np.float32(fy * yd + cy)
    u = np.float64(u32)
    v = np.float64(v32)
    if not (u >= -0.5 and u < width - 0.5 and v >= -0.5 and v < height - 0.5):  # also NaN/inf
        return False, _NAN32, _NAN32, -1
    col = math.floor(u + 0.5)
    row = math.floor(v + 0.5)
    if col < 0 or col >= width or row < 0 or row >= height:  # unreachable; keeps writes in bounds
        return False, _NAN32, _NAN32, -1
    return True, u32, v32, row * width + col


@njit()
def _project_points(  # noqa: PLR0917 (one flat kernel; scalar arguments by design)
    xyz: np.ndarray,
    Rt: tuple[float, ...],
    model: int,
    intr: tuple[float, ...],
    D: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    max_r2: float,
    uv: np.ndarray,
    pix: np.ndarray,
    zdepth: np.ndarray,
    valid: np.ndarray,
) -> None:
    """Project every point of ``xyz`` (N, 3) float32/float64 (LiDAR frame, metres) on one thread.

    ``Rt`` is the 12-tuple ``(r00, r01, r02, t0, r10, ..., t2)`` (rows of ``T_cam_from_lidar[:3]``),
    ``intr`` the 5-tuple ``(fx, fy, skew, cx, cy)`` and ``D`` the 8-tuple of distortion coefficients
    (tuples, not arrays: no reference counting in the loop).  Points whose undistorted normalised
    radius squared ``(x/z)^2 + (y/z)^2`` exceeds ``max_r2`` are invalid (the camera's valid radius,
    ``inf`` disables).  Writes, per point, ``uv`` (N, 2) float32 (NaN if invalid), ``pix`` (N,) int32
    linear pixel ``row * width + col`` (-1 if invalid), ``zdepth`` (N,) float64 camera z in metres (0 if
    invalid) and ``valid`` (N,) bool.  The distortion and pixel are :func:`_pixel_of`'s.
    """
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    for i in range(xyz.shape[0]):
        px = np.float64(xyz[i, 0])
        py = np.float64(xyz[i, 1])
        pz = np.float64(xyz[i, 2])
        uv[i, 0] = _NAN32
        uv[i, 1] = _NAN32
        zdepth[i] = 0.0
        pix[i] = -1
        valid[i] = False
        # Early exits suit scan-ordered LiDAR clouds (long runs of points behind the camera predict
        # well).  A branch-free variant was ~30% faster on randomly ordered clouds but ~40% slower on
        # real KITTI scans, so this one was kept.
        if not (math.isfinite(px) and math.isfinite(py) and math.isfinite(pz)):
            continue
        zc = r20 * px + r21 * py + r22 * pz + t2
        if not (zc >= min_depth and zc <= max_depth and zc > 0.0):  # behind, out of range or NaN
            continue
        iz = 1.0 / zc  # as cv2.projectPoints: one reciprocal, two products
        x = (r00 * px + r01 * py + r02 * pz + t0) * iz
        y = (r10 * px + r11 * py + r12 * pz + t1) * iz
        ok, u32, v32, p = _pixel_of(x, y, model, intr, D, width, height, max_r2)
        if not ok:
            continue
        uv[i, 0] = u32
        uv[i, 1] = v32
        zdepth[i] = zc
        pix[i] = p
        valid[i] = True


@njit()
def _project_points_2pass(  # noqa: PLR0917
    xyz: np.ndarray,
    Rt: tuple[float, ...],
    model: int,
    intr: tuple[float, ...],
    D: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    max_r2: float,
    uv: np.ndarray,
    pix: np.ndarray,
    zdepth: np.ndarray,
    valid: np.ndarray,
    cand: np.ndarray,
) -> None:
    """:func:`_project_points` in two passes, same outputs bit for bit; ``cand`` (>= N,) int32 scratch.

    Pass 1 is branch-free: it resets the outputs and computes only the camera depth ``zc`` of every
    point, compacting the indices of points inside ``[min_depth, max_depth]`` into ``cand`` (a NaN
    or inf coordinate always gives a NaN or inf ``zc``, as 0 * inf is NaN, so non-finite points drop
    out here).  Pass 2 runs the full projection on those candidates only.  On randomly ordered
    clouds (half the points behind the camera) this avoids a branch misprediction per point (-30 %
    on a uniform 120k cloud); on scan-ordered clouds pass 1 is a small extra cost (+15 % on KITTI),
    so :class:`~edgefuse.fusion.projection.Projector` picks the variant by measured time.  (A fully
    branch-free pass 2 was tried too: no faster on random clouds, 60 % slower on KITTI.)
    """
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    n = min(xyz.shape[0], cand.shape[0])
    m = 0
    for i in range(n):
        uv[i, 0] = _NAN32
        uv[i, 1] = _NAN32
        zdepth[i] = 0.0
        pix[i] = -1
        valid[i] = False
        zc = r20 * np.float64(xyz[i, 0]) + r21 * np.float64(xyz[i, 1]) + r22 * np.float64(xyz[i, 2]) + t2
        cand[m] = i
        m += int((zc >= min_depth) & (zc <= max_depth) & (zc > 0.0))
    for k in range(m):
        i = cand[k]
        px = np.float64(xyz[i, 0])
        py = np.float64(xyz[i, 1])
        pz = np.float64(xyz[i, 2])
        zc = r20 * px + r21 * py + r22 * pz + t2
        iz = 1.0 / zc  # as cv2.projectPoints: one reciprocal, two products
        x = (r00 * px + r01 * py + r02 * pz + t0) * iz
        y = (r10 * px + r11 * py + r12 * pz + t1) * iz
        ok, u32, v32, p = _pixel_of(x, y, model, intr, D, width, height, max_r2)
        if not ok:
            continue
        uv[i, 0] = u32
        uv[i, 1] = v32
        zdepth[i] = zc
        pix[i] = p
        valid[i] = True


@njit(parallel=True)
def _project_points_parallel(  # noqa: PLR0917
    xyz: np.ndarray,
    Rt: tuple[float, ...],
    model: int,
    intr: tuple[float, ...],
    D: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    max_r2: float,
    uv: np.ndarray,
    pix: np.ndarray,
    zdepth: np.ndarray,
    valid: np.ndarray,
    chunk: int,
) -> None:
    """:func:`_project_points` over chunks of ``chunk`` points spread across Numba threads.

    Each point is computed by exactly the same code as in the serial kernel and written once, so the
    output is identical to the serial kernel's.
    """
    n = xyz.shape[0]
    size = max(chunk, 1)
    n_chunks = (n + size - 1) // size
    for c in prange(n_chunks):
        a = c * size
        b = min(a + size, n)
        _project_points(xyz[a:b], Rt, model, intr, D, width, height, min_depth, max_depth, max_r2,
                        uv[a:b], pix[a:b], zdepth[a:b], valid[a:b])


@njit()
def _zbuffer_points(  # noqa: PLR0917
    pix: np.ndarray,
    zdepth: np.ndarray,
    depth_img: np.ndarray,
    index_img: np.ndarray,
    touched: np.ndarray,
    n_touched: int,
    scratch: np.ndarray,
) -> tuple[int, int]:
    """Build the z-buffer from projected points; serial, so the result is deterministic.

    ``pix`` (N,) int32 and ``zdepth`` (N,) float64 come from :func:`_project_points`.
    ``depth_img`` (H*W,) float32 and ``index_img`` (H*W,) int32 must hold the previous call's output
    and ``touched[:n_touched]`` (``touched`` sized H*W) the pixels it wrote: only those are cleared, so
    a call costs O(points), not O(pixels).  ``scratch`` (>= N,) int32 receives the valid point indices.
    Nearest depth wins; on equal depth the lowest point index wins.
    Returns ``(n_valid, n_touched_now)``; ``touched[:n_touched_now]`` lists the pixels written now.
    """
    n_pixels = depth_img.shape[0]
    for k in range(min(n_touched, touched.shape[0])):
        p = touched[k]
        if 0 <= p < n_pixels:
            depth_img[p] = 0.0
            index_img[p] = -1
    n = min(pix.shape[0], zdepth.shape[0], scratch.shape[0])
    # Compact the valid point indices without a branch (random clouds would mispredict it), then
    # visit only those.
    n_valid = 0
    for i in range(n):
        p = pix[i]
        scratch[n_valid] = i
        n_valid += int((p >= 0) & (p < n_pixels))
    for k in range(n_valid):
        i = scratch[k]
        p = pix[i]
        j = index_img[p]
        # Ascending i and a strict comparison: on equal depth the lower index keeps the pixel.
        # Written as a select (random clouds make the comparison a coin flip for a branch).
        empty = (j < 0) | (j >= n)
        js = i if empty else j
        index_img[p] = i if (empty | (zdepth[i] < zdepth[js])) else j
    count = 0
    for k in range(n_valid):
        i = scratch[k]
        p = pix[i]
        if index_img[p] == i and count < touched.shape[0]:
            depth_img[p] = np.float32(zdepth[i])
            touched[count] = p
            count += 1
    return n_valid, count


#: Empty z-buffer slot of :func:`_zbuffer_pinhole` (its upper half is a NaN pattern, never a depth).
_ZB_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


@_inline
def _pinhole_pixel(  # noqa: PLR0917
    px: float,
    py: float,
    pz: float,
    Rt: tuple[float, ...],
    intr: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    max_r2: float,
) -> tuple[bool, np.int32, np.float32, np.float32, np.float32]:
    """Branch-free pinhole projection of one point (float64 coordinates), shared by
    :func:`_project_pinhole` and :func:`_project_pinhole_uv`: ``(ok, pixel, z32, u32, v32)``.

    ``pixel`` is ``row * width + col`` when ``ok`` and negative otherwise, ``z32`` the camera depth
    rounded to float32, ``u32``/``v32`` the float32 pixel coordinates (meaningful only when ``ok``).
    Same arithmetic, in the same order, as :func:`_project_points` with ``model == PINHOLE``, so valid
    points and pixels are identical; but invalid points are masked with selects instead of branches
    and ``1 / z`` is computed for every point, which lets LLVM vectorise the callers' loops (AVX2: 4
    points per instruction).  ``np.true_divide`` instead of ``/``: Numba's ``/`` checks for a zero
    divisor (Python semantics), which blocks vectorisation; a zero, negative or NaN depth gives inf/NaN
    here and is masked out by the depth-range test.  A NaN or inf coordinate makes ``zc`` NaN or inf
    (``0 * inf`` is NaN), so it fails the range test too.
    """
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    fx, fy, skew, cx, cy = intr
    zc = r20 * px + r21 * py + r22 * pz + t2
    iz = np.true_divide(1.0, zc)  # as cv2.projectPoints: one reciprocal, two products
    x = (r00 * px + r01 * py + r02 * pz + t0) * iz
    y = (r10 * px + r11 * py + r12 * pz + t1) * iz
    # Round to float32 first so the integer pixel agrees with the published ``uv``.
    u32 = np.float32(fx * x + skew * y + cx)
    v32 = np.float32(fy * y + cy)
    u = np.float64(u32)
    v = np.float64(v32)
    ok = ((zc >= min_depth) & (zc <= max_depth) & (x * x + y * y <= max_r2)
          & (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5))
    # Inside the image u + 0.5 >= 0, so truncation is floor; invalid points get row -1.
    us = u + 0.5 if ok else 0.0
    vs = v + 0.5 if ok else -1.0
    return ok, np.int32(vs) * np.int32(width) + np.int32(us), np.float32(zc), u32, v32


@njit()
def _project_pinhole(  # noqa: PLR0917
    flat: np.ndarray,
    n: int,
    Rt: tuple[float, ...],
    intr: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    max_r2: float,
    pix: np.ndarray,
    zf: np.ndarray,
) -> None:
    """Pinhole pass over all ``n`` points of ``flat`` (3N,) float32/float64 (a C-contiguous cloud, raveled).

    Writes ``pix[i]`` (int32), the linear pixel ``row * width + col`` of a valid point and a negative
    value otherwise, and ``zf[i]`` (float32), the camera depth rounded to float32 (meaningful only
    where ``pix[i] >= 0``), both from :func:`_pinhole_pixel`.  The loop has no branch and reads a flat
    array, so LLVM vectorises it.  (Any branch in the loop, even a loop-invariant flag, stops the
    vectorisation: hence the separate :func:`_project_pinhole_uv` for the per-point outputs.)
    """
    m = min(n, flat.shape[0] // 3, pix.shape[0], zf.shape[0])
    for i in range(m):
        _, p, z32, _, _ = _pinhole_pixel(np.float64(flat[3 * i]), np.float64(flat[3 * i + 1]),
                                         np.float64(flat[3 * i + 2]), Rt, intr, width, height, min_depth,
                                         max_depth, max_r2)
        pix[i] = p
        zf[i] = z32


@njit()
def _project_pinhole_uv(  # noqa: PLR0917
    flat: np.ndarray,
    n: int,
    Rt: tuple[float, ...],
    intr: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    max_r2: float,
    pix: np.ndarray,
    zf: np.ndarray,
    uv_flat: np.ndarray,
    valid: np.ndarray,
) -> None:
    """:func:`_project_pinhole` that also writes the per-point outputs of :func:`_project_points`.

    ``uv_flat`` (>= 2N,) float32 is the raveled (N, 2) ``uv`` (NaN where invalid) and ``valid``
    (>= N,) bool; both bit-identical to :func:`_project_points`'s.
    """
    m = min(n, flat.shape[0] // 3, pix.shape[0], zf.shape[0], uv_flat.shape[0] // 2, valid.shape[0])
    for i in range(m):
        ok, p, z32, u32, v32 = _pinhole_pixel(np.float64(flat[3 * i]), np.float64(flat[3 * i + 1]),
                                              np.float64(flat[3 * i + 2]), Rt, intr, width, height,
                                              min_depth, max_depth, max_r2)
        pix[i] = p
        zf[i] = z32
        uv_flat[2 * i] = u32 if ok else _NAN32
        uv_flat[2 * i + 1] = v32 if ok else _NAN32
        valid[i] = ok


@njit()
def _zbuffer_pinhole(  # noqa: PLR0917
    flat: np.ndarray,
    Rt: tuple[float, ...],
    pix: np.ndarray,
    zbits: np.ndarray,
    n: int,
    zbuf: np.ndarray,
    depth_img: np.ndarray,
    index_img: np.ndarray,
    touched: np.ndarray,
    n_touched: int,
    cand: np.ndarray,
) -> tuple[int, int]:
    """Z-buffer of :func:`_project_pinhole`'s output over all ``n`` points; same result as
    :func:`_zbuffer_points`.

    ``pix`` (>= n,) int32 and ``zbits`` (>= n,) uint32 (the float32 depths viewed as uint32) from
    :func:`_project_pinhole`; ``flat`` and ``Rt`` as given to it.  ``cand`` (>= n,) int32 scratch.  The
    valid points are compacted into ``cand``, then :func:`_zbuffer_scatter` (see there for ``zbuf``,
    ``touched`` and the key).  Returns ``(n_valid, n_touched_now)``.
    """
    m = min(n, pix.shape[0], zbits.shape[0], cand.shape[0], flat.shape[0] // 3)
    n_valid = 0
    for i in range(m):  # branch-free compaction (a random cloud would mispredict a branch)
        cand[n_valid] = i
        n_valid += int(pix[i] >= 0)
    return _zbuffer_scatter(flat, Rt, cand, n_valid, pix, zbits, True, zbuf, depth_img, index_img, touched,
                            n_touched)


@njit()
def _zbuffer_scatter(  # noqa: PLR0917
    flat: np.ndarray,
    Rt: tuple[float, ...],
    cand: np.ndarray,
    nc: int,
    pix: np.ndarray,
    zbits: np.ndarray,
    by_point: bool,
    zbuf: np.ndarray,
    depth_img: np.ndarray,
    index_img: np.ndarray,
    touched: np.ndarray,
    n_touched: int,
) -> tuple[int, int]:
    """Z-buffer the points ``cand[:nc]`` (ascending point indices into ``flat``).

    Their pixel and float32 depth bits are ``pix[i]``/``zbits[i]`` (``by_point``: indexed by point) or
    ``pix[k]``/``zbits[k]`` (indexed by position in ``cand``); a negative pixel is an invalid point and
    is skipped.  ``zbuf`` (H*W,) uint64 must be all ``_ZB_EMPTY`` on entry and is left so.
    ``depth_img``/``index_img``/``touched``/``n_touched`` as in :func:`_zbuffer_points`, with
    ``touched`` sized H*W + 1; the pixels written last time are cleared first.

    Each valid point's key is ``float32 depth bits << 32 | index``: for positive floats the bit
    pattern orders like the value, so one unsigned min per point keeps the nearest point and, on equal
    keys' depth, the lowest index (points are visited in index order).  Two different float64 depths
    can round to the same float32; then the float64 depths are recomputed from ``flat`` and ``Rt`` and
    compared (rare), so the winner is exactly the float64 one.  Returns ``(n_valid, n_touched_now)``.
    """
    r20 = Rt[8]
    r21 = Rt[9]
    r22 = Rt[10]
    t2 = Rt[11]
    n_pixels = depth_img.shape[0]
    for k in range(min(n_touched, touched.shape[0])):
        p = touched[k]
        if 0 <= p < n_pixels:
            depth_img[p] = 0.0
            index_img[p] = -1
    m = flat.shape[0] // 3
    n_valid = 0
    count = 0
    last = touched.shape[0] - 1
    zb_pixels = zbuf.shape[0]
    for k in range(min(nc, cand.shape[0])):
        i = cand[k]
        q = i if by_point else k
        if i < 0 or i >= m or q >= pix.shape[0] or q >= zbits.shape[0]:  # unreachable: keeps accesses in bounds
            continue
        p = pix[q]
        if p < 0 or p >= n_pixels or p >= zb_pixels:
            continue
        n_valid += 1
        key = (np.uint64(zbits[q]) << _SHIFT32) | np.uint64(i)
        old = zbuf[p]
        touched[count] = p
        count += int((old == _ZB_EMPTY) & (count < last))
        if (old >> _SHIFT32) == (key >> _SHIFT32):  # same float32 depth: decide in float64
            j = np.int64(old & _LOW32)
            zi = r20 * np.float64(flat[3 * i]) + r21 * np.float64(flat[3 * i + 1]) \
                + r22 * np.float64(flat[3 * i + 2]) + t2
            zj = r20 * np.float64(flat[3 * j]) + r21 * np.float64(flat[3 * j + 1]) \
                + r22 * np.float64(flat[3 * j + 2]) + t2
            if zi < zj or j >= m:  # equal: the earlier (lower) index j keeps the pixel
                zbuf[p] = key
        else:
            zbuf[p] = min(old, key)
    for k in range(count):
        p = touched[k]
        key = zbuf[p]
        index_img[p] = np.int32(key & _LOW32)
        depth_img[p] = np.uint32(key >> _SHIFT32).view(np.float32)
        zbuf[p] = _ZB_EMPTY
    return n_valid, count


#: Relative bound used by :func:`_screen_pinhole_f32` for the float32 error of a camera coordinate,
#: per metre of ``|x| + |y| + |z| + Σ|t| + 1`` (the float32 evaluation errs by at most ~4.2e-7).
_SCREEN_EPS = np.float32(1e-6)


@njit()
def _screen_pinhole_f32(  # noqa: PLR0917
    flat: np.ndarray,
    n: int,
    Rt: tuple[float, ...],
    intr: tuple[float, ...],
    width: int,
    height: int,
    min_depth: float,
    max_depth: float,
    mask: np.ndarray,
) -> None:
    """Conservative float32 pre-test for float32 clouds: ``mask[i]`` is True for every point that
    :func:`_project_pinhole`'s float64 test can accept (and for a few it rejects).

    All in float32 (8 points per AVX2 instruction): camera ``z``, ``x``, ``y`` and the homogeneous pixel
    numerators ``uh = fx·x + skew·y + cx·z``, ``vh = fy·y + cy·z``, then the depth range and
    ``-0.51·z ≤ uh ≤ (W - 0.49)·z`` (and for ``v``), no division.  Every quantity is widened by a bound of
    its float32 error: ``e = 1e-6·(|px| + |py| + |pz| + Σ|t| + 1)`` for each camera coordinate (more
    than twice the worst case of a 4-term float32 dot product with ``|r_ij| ≤ 1``), ``e·(|fx| + |skew| +
    |cx| + 1)`` for ``uh`` (and for ``vh``), and the upper bound ``z + e`` of the depth on the right-hand
    sides, so no valid point is lost for any depth ``z > 0``; the 0.01-pixel margins also cover the
    float32 rounding of the published ``u``/``v``.  NaN/inf coordinates fail every comparison.  The
    float64 test of the candidates decides validity exactly.
    """
    r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2 = Rt
    fx, fy, skew, cx, cy = intr
    f00 = np.float32(r00)
    f01 = np.float32(r01)
    f02 = np.float32(r02)
    g0 = np.float32(t0)
    f10 = np.float32(r10)
    f11 = np.float32(r11)
    f12 = np.float32(r12)
    g1 = np.float32(t1)
    f20 = np.float32(r20)
    f21 = np.float32(r21)
    f22 = np.float32(r22)
    g2 = np.float32(t2)
    ffx = np.float32(fx)
    fsk = np.float32(skew)
    fcx = np.float32(cx)
    ffy = np.float32(fy)
    fcy = np.float32(cy)
    base = np.float32(abs(t0) + abs(t1) + abs(t2) + 1.0)
    ku = np.float32(abs(fx) + abs(skew) + abs(cx) + 1.0)
    kv = np.float32(abs(fy) + abs(cy) + 1.0)
    lo = np.float32(-0.51)
    hi_u = np.float32(width - 0.49)
    hi_v = np.float32(height - 0.49)
    zmin = np.float32(min_depth)
    zmax = np.float32(max_depth)
    m = min(n, flat.shape[0] // 3, mask.shape[0])
    for i in range(m):
        px = np.float32(flat[3 * i])
        py = np.float32(flat[3 * i + 1])
        pz = np.float32(flat[3 * i + 2])
        e = _SCREEN_EPS * (abs(px) + abs(py) + abs(pz) + base)
        zc = f20 * px + f21 * py + f22 * pz + g2
        xc = f00 * px + f01 * py + f02 * pz + g0
        yc = f10 * px + f11 * py + f12 * pz + g1
        uh = ffx * xc + fsk * yc + fcx * zc
        vh = ffy * yc + fcy * zc
        eu = ku * e
        ev = kv * e
        zhi = zc + e
        mask[i] = ((zhi >= zmin) & (zc - e <= zmax) & (uh + eu >= lo * zhi) & (uh - eu <= hi_u * zhi)
                   & (vh + ev >= lo * zhi) & (vh - ev <= hi_v * zhi))


@njit()
def _gather_candidates(mask: np.ndarray, n: int, flat: np.ndarray, cand: np.ndarray, gathered: np.ndarray) -> int:
    """Indices of the ``mask``-ed points into ``cand`` (ascending) and their coordinates into ``gathered``
    (3·count,) interleaved like ``flat``; returns the count."""
    m = min(n, mask.shape[0], cand.shape[0], flat.shape[0] // 3)
    nc: int = 0
    for i in range(m):  # branch-free compaction
        cand[nc] = i
        nc += int(mask[i])
    nc = min(nc, gathered.shape[0] // 3)
    for k in range(nc):
        i = cand[k]
        gathered[3 * k] = flat[3 * i]
        gathered[3 * k + 1] = flat[3 * i + 1]
        gathered[3 * k + 2] = flat[3 * i + 2]
    return nc


@njit()
def _sample_colors(
    image: np.ndarray, uv: np.ndarray, valid: np.ndarray, bilinear: bool, out: np.ndarray
) -> None:
    """Sample ``image`` (H, W, C) uint8 at ``uv`` (N, 2) float32 into ``out`` (N, C) uint8.

    Nearest: the pixel ``(floor(v + 0.5), floor(u + 0.5))``.  Bilinear: weights from the fractional
    position between the four surrounding pixel centres (edges clamped), rounded half up.
    Invalid points, and points outside the image, get 0.
    """
    height = image.shape[0]
    width = image.shape[1]
    channels = image.shape[2]
    for i in range(uv.shape[0]):
        for c in range(channels):
            out[i, c] = 0
        if not valid[i]:
            continue
        u = np.float64(uv[i, 0])
        v = np.float64(uv[i, 1])
        if not (u >= -0.5 and u < width - 0.5 and v >= -0.5 and v < height - 0.5):
            continue
        if not bilinear:
            col = math.floor(u + 0.5)
            row = math.floor(v + 0.5)
            if col < 0 or col >= width or row < 0 or row >= height:
                continue
            for c in range(channels):
                out[i, c] = image[row, col, c]
            continue
        fu = math.floor(u)
        fv = math.floor(v)
        au = u - fu
        av = v - fv
        c0 = min(max(fu, 0), width - 1)
        c1 = min(max(fu + 1, 0), width - 1)
        r0 = min(max(fv, 0), height - 1)
        r1 = min(max(fv + 1, 0), height - 1)
        for c in range(channels):
            top = (1.0 - au) * image[r0, c0, c] + au * image[r0, c1, c]
            bottom = (1.0 - au) * image[r1, c0, c] + au * image[r1, c1, c]
            value = (1.0 - av) * top + av * bottom
            q = math.floor(value + 0.5)
            out[i, c] = min(max(q, 0), 255)


@njit()
def _paint_points(  # noqa: PLR0917
    features: np.ndarray,
    uv: np.ndarray,
    valid: np.ndarray,
    index_img: np.ndarray,
    visible_only: bool,
    fill: float,
    out: np.ndarray,
) -> int:
    """PointPainting: copy the feature vector of each point's pixel into ``out``.

    ``features`` (H, W, C) float32 or uint8, ``uv`` (N, 2) float32 and ``valid`` (N,) bool from a
    projection, ``index_img`` (H, W) int32 z-buffer winners, ``out`` (N, C) float32.  A point is
    painted when it is valid, its pixel ``(floor(v + 0.5), floor(u + 0.5))`` lies in the image and,
    with ``visible_only``, it won its pixel (``index_img[row, col] == i``).  Every other point gets
    ``fill`` in all channels.  Returns the number of painted points.
    """
    height = features.shape[0]
    width = features.shape[1]
    channels = features.shape[2]
    n = min(uv.shape[0], valid.shape[0], out.shape[0])
    fill32 = np.float32(fill)
    painted = 0
    for i in range(n):
        row = -1
        col = -1
        if valid[i]:
            u = np.float64(uv[i, 0])
            v = np.float64(uv[i, 1])
            if u >= -0.5 and u < width - 0.5 and v >= -0.5 and v < height - 0.5:
                col = math.floor(u + 0.5)
                row = math.floor(v + 0.5)
                inside = 0 <= col < width and 0 <= row < height
                winner = inside and row < index_img.shape[0] and col < index_img.shape[1] \
                    and index_img[row, col] == i
                if not inside or (visible_only and not winner):
                    row = -1
        if row < 0:
            for c in range(channels):
                out[i, c] = fill32
            continue
        for c in range(channels):
            out[i, c] = np.float32(features[row, col, c])
        painted += 1
    return painted


@njit()
def _assign_camera(valid: np.ndarray, uv: np.ndarray, camera_id: int, camera: np.ndarray,
                   uv_out: np.ndarray) -> int:
    """Give each still unassigned point (``camera[i] < 0``) that is ``valid`` in this camera to it.

    ``valid`` (N,) bool and ``uv`` (N, 2) float32 are one camera's projection; ``camera`` (N,) int32
    and ``uv_out`` (N, 2) float32 are the running assignment (called once per camera in order, so a
    point goes to the lowest-numbered camera that sees it).  Returns how many points were assigned now.
    """
    n = min(valid.shape[0], uv.shape[0], camera.shape[0], uv_out.shape[0])
    count = 0
    for i in range(n):
        if camera[i] < 0 and valid[i]:
            camera[i] = camera_id
            uv_out[i, 0] = uv[i, 0]
            uv_out[i, 1] = uv[i, 1]
            count += 1
    return count
