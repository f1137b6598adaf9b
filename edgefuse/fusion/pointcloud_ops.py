"""Point-cloud utilities on hot paths: rig transforms, crops, RANSAC ground plane, range images.

All functions take an (N, C >= 3) float32/float64 array with x, y, z first (metres, the cloud's
frame); a non-contiguous or byte-swapped array is copied once, other dtypes raise ``TypeError``
(:func:`edgefuse.fusion.voxel.as_point_array`).  Every function that returns an array accepts
``out=`` (a preallocated, C-contiguous array of the right shape and dtype) so a stage allocates
nothing per message.  A NaN/inf point is never inside a crop, never a ground inlier and never in a
range image.  Kernels: :mod:`edgefuse.fusion._pointcloud_kernels`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import InputDataError
from edgefuse.fusion import _pointcloud_kernels as _k
from edgefuse.fusion._parallel import ParallelChooser, run_parallel
from edgefuse.fusion.voxel import PARALLEL_CHUNK, VoxelParamError, as_point_array

__all__ = [
    "HDL32E_ELEVATIONS_DEG",
    "HDL64E_ELEVATIONS_DEG",
    "GroundPlane",
    "PointTransformer",
    "RangeImage",
    "RangeImageBuilder",
    "crop_box",
    "crop_fov",
    "crop_oriented_box",
    "crop_range",
    "ransac_ground",
    "ring_edges",
    "ring_from_elevation",
    "transform_points",
    "uniform_ring_edges",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.floating[Any]]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

#: Nominal beam elevations of a Velodyne HDL-64E (degrees, ascending = ring 0 lowest): the lower block
#: -24.33 … -8.83 in 1/2° steps and the upper block -8.33 … +2 in 1/3° steps (data sheet: 26.8° FOV,
#: +2° … -24.8°).  Individual sensors (KITTI's) deviate by a few tenths of a degree, so rings derived
#: from it are approximate; the edges sit half-way between beams.
HDL64E_ELEVATIONS_DEG = np.concatenate([
    -24.33 + 0.5 * np.arange(32), -8.33 + (1.0 / 3.0) * np.arange(32),
])
#: Beam elevations of a Velodyne HDL-32E (degrees, ascending): -30.67 … +10.67 in 4/3° steps.
HDL32E_ELEVATIONS_DEG = -30.67 + (4.0 / 3.0) * np.arange(32)


def _out(out: Any, shape: tuple[int, ...], dtype: Any, field: str = "out") -> npt.NDArray[Any]:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.dtype(dtype):
        raise InputDataError(f"{field} must be a {np.dtype(dtype)} array of shape {shape}, got "
                         f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InputDataError(f"{field} must be C-contiguous and writeable")
    return out


def _rigid(T: Any, field: str = "T", tol: float = 1e-5) -> tuple[float, ...]:
    """Validate a rigid (4, 4) transform; return the 12-tuple of its first three rows."""
    arr = np.asarray(T, dtype=np.float64)
    if arr.shape != (4, 4):
        raise VoxelParamError(f"must be 4x4, got shape {arr.shape}", field=field)
    if not np.all(np.isfinite(arr)):
        raise VoxelParamError("contains NaN or inf", field=field)
    if not np.allclose(arr[3], [0, 0, 0, 1], rtol=0, atol=1e-12):
        raise VoxelParamError(f"last row must be [0, 0, 0, 1], got {arr[3].tolist()}", field=field)
    R = arr[:3, :3]
    err = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if err > tol or np.linalg.det(R) <= 0:
        raise VoxelParamError(f"rotation is not orthonormal (max |R^T R - I| = {err:.3g})", field=field)
    return tuple(float(v) for v in arr[:3].reshape(-1))


def _matrix(T: Any) -> Any:
    """Accept a (4, 4) array or an object with ``.matrix`` (``edgefuse.rig.Transform``)."""
    return getattr(T, "matrix", T)


def transform_points(points: Any, T: Any, *, out: Any = None) -> FloatArray:
    """Apply a rigid transform to x, y, z: ``out = R p + t`` (float64 math), on one thread.

    ``T`` is a (4, 4) array or an ``edgefuse.rig.Transform`` (its ``.matrix``).  Returns (N, 3) in the
    points' dtype, or writes ``out`` (N, 3) float32/float64.  Other channels are not copied.
    """
    pts = as_point_array(points)
    Rt = _rigid(_matrix(T))
    dest = _out(out, (pts.shape[0], 3), out.dtype if isinstance(out, np.ndarray) else pts.dtype)
    if dest.dtype.kind != "f":
        raise InputDataError("out must be float32 or float64")
    _k._transform(pts, Rt, dest)
    return dest


class PointTransformer:
    """A fixed rigid transform applied into an owned buffer; ``threads > 1`` may use Numba threads.

    Like :class:`edgefuse.fusion.Voxelizer` it starts on the serial kernel and adopts the parallel one
    only once it has measured faster (:class:`edgefuse.fusion._parallel.ParallelChooser`), so a busy
    core never makes ``threads > 1`` slower than one thread.  Results are
    identical.  The returned (N, 3) array (points' dtype) is a view overwritten by the next call.
    """

    PARALLEL_MIN_POINTS = 50_000

    def __init__(self, T: Any, *, threads: int = 1, max_points: int = 200_000) -> None:
        self._Rt = _rigid(_matrix(T))
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise VoxelParamError(f"must be a positive integer, got {threads!r}", field="threads")
        self.threads = threads
        self._buffers = {dt: np.zeros((max_points, 3), dtype=dt) for dt in (np.float32, np.float64)}
        self._chooser = ParallelChooser(threads)

    def warmup(self) -> float:
        start = time.perf_counter()
        for dt in (np.float32, np.float64):
            pts = np.zeros((1, 3), dtype=dt)
            self.apply(pts)
            if self.threads > 1:
                run_parallel(self.threads, _k._transform_parallel, pts, self._Rt, self._buffers[dt][:1],
                             PARALLEL_CHUNK)
        return time.perf_counter() - start

    def apply(self, points: Any) -> FloatArray:
        pts = as_point_array(points)
        n = pts.shape[0]
        buf = self._buffers[pts.dtype.type]
        if buf.shape[0] < n:
            buf = self._buffers[pts.dtype.type] = np.zeros((n, 3), dtype=pts.dtype)
        dest = buf[:n]
        if self.threads > 1 and n >= self.PARALLEL_MIN_POINTS:
            parallel = self._chooser.pick()
            start = time.perf_counter()
            if parallel:
                threads = self._chooser.threads
                run_parallel(threads, _k._transform_parallel, pts, self._Rt, dest,
                             max(PARALLEL_CHUNK, -(-n // (8 * threads))))
            else:
                _k._transform(pts, self._Rt, dest)
            self._chooser.record(parallel, (time.perf_counter() - start) / n)
        else:
            _k._transform(pts, self._Rt, dest)
        return dest


def _triple(value: Any, field: str) -> tuple[float, float, float]:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise VoxelParamError(f"must be 3 numbers, got {value!r}", field=field) from None
    if arr.shape != (3,) or np.any(np.isnan(arr)):
        raise VoxelParamError(f"must be 3 numbers (not NaN), got {value!r}", field=field)
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def crop_box(points: Any, lo: Any, hi: Any, *, out: Any = None) -> BoolArray:
    """(N,) bool: ``lo <= p < hi`` on x, y and z (half-open, like the voxel grid; ±inf allowed)."""
    pts = as_point_array(points)
    lo3, hi3 = _triple(lo, "lo"), _triple(hi, "hi")
    if any(h <= lo_ for lo_, h in zip(lo3, hi3, strict=True)):
        raise VoxelParamError(f"must be > lo on every axis, got lo={lo3}, hi={hi3}", field="hi")
    mask = _out(out, (pts.shape[0],), np.bool_)
    _k._crop_box(pts, lo3, hi3, mask)
    return mask


def crop_oriented_box(points: Any, center: Any, size: Any, *, yaw_rad: float = 0.0, R: Any = None,
                      out: Any = None) -> BoolArray:
    """(N,) bool: inside the closed box of ``size`` (length x, width y, height z; metres, > 0) at ``center``.

    Orientation: rotation ``yaw_rad`` about z (KITTI / nuScenes box convention in a z-up frame) or a
    full (3, 3) rotation ``R`` (box axes → cloud frame), not both.
    """
    pts = as_point_array(points)
    c = np.asarray(_triple(center, "center"))
    s = np.asarray(_triple(size, "size"))
    if not np.all(np.isfinite(c)):
        raise VoxelParamError("must be finite", field="center")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise VoxelParamError(f"must be finite and > 0, got {s.tolist()}", field="size")
    if R is None:
        if not math.isfinite(yaw_rad):
            raise VoxelParamError(f"must be finite, got {yaw_rad!r}", field="yaw_rad")
        cy, sy = math.cos(yaw_rad), math.sin(yaw_rad)
        rot = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    else:
        if yaw_rad != 0.0:
            raise VoxelParamError("give either yaw_rad or R, not both", field="R")
        rot = np.asarray(R, dtype=np.float64)
    T_cloud_from_box = np.eye(4)
    if rot.shape != (3, 3):
        raise VoxelParamError(f"must be 3x3, got {rot.shape}", field="R")
    T_cloud_from_box[:3, :3] = rot
    T_cloud_from_box[:3, 3] = c
    _rigid(T_cloud_from_box, "R")
    T_box_from_cloud = np.eye(4)
    T_box_from_cloud[:3, :3] = rot.T
    T_box_from_cloud[:3, 3] = -rot.T @ c
    half = s / 2.0
    mask = _out(out, (pts.shape[0],), np.bool_)
    _k._crop_oriented_box(pts, tuple(float(v) for v in T_box_from_cloud[:3].reshape(-1)),
                          (float(half[0]), float(half[1]), float(half[2])), mask)
    return mask


def crop_range(points: Any, min_m: float = 0.0, max_m: float = math.inf, *, planar: bool = False,
               out: Any = None) -> BoolArray:
    """(N,) bool: ``min_m <= r <= max_m`` with r the 3-D range (or x-y distance when ``planar``)."""
    pts = as_point_array(points)
    lo, hi = float(min_m), float(max_m)
    if not (lo >= 0.0 and hi > lo):
        raise VoxelParamError(f"need 0 <= min_m < max_m, got {min_m!r}, {max_m!r}", field="max_m")
    mask = _out(out, (pts.shape[0],), np.bool_)
    _k._crop_range(pts, lo * lo, hi * hi, bool(planar), mask)
    return mask


def crop_fov(points: Any, azimuth_deg: tuple[float, float] = (-180.0, 180.0),
             elevation_deg: tuple[float, float] = (-90.0, 90.0), *, out: Any = None) -> BoolArray:
    """(N,) bool: azimuth ``atan2(y, x)`` within ``azimuth_deg = (start, end)`` (counter-clockwise from
    start to end, wrapping through ±180 when ``end < start``) and elevation ``atan2(z, hypot(x, y))``
    within ``elevation_deg`` (closed intervals, degrees).
    """
    pts = as_point_array(points)
    a0, a1 = (float(v) for v in azimuth_deg)
    e0, e1 = (float(v) for v in elevation_deg)
    if not all(math.isfinite(v) for v in (a0, a1, e0, e1)) or e1 < e0:
        raise VoxelParamError(f"need finite angles and elevation max >= min, got {azimuth_deg}, {elevation_deg}",
                              field="elevation_deg")
    span = 360.0 if a1 - a0 >= 360.0 else (a1 - a0) % 360.0
    center = math.radians(a0 + span / 2.0)
    mask = _out(out, (pts.shape[0],), np.bool_)
    _k._crop_fov(pts, center, math.radians(span / 2.0) + 1e-12, math.radians(e0), math.radians(e1), mask)
    return mask


@dataclass(frozen=True, slots=True)
class GroundPlane:
    """Result of :func:`ransac_ground`.

    Attributes:
        plane: (4,) float64 ``(a, b, c, d)`` with ``a x + b y + c z + d = 0``, unit normal, ``c >= 0``
            (all zero when no plane was found: fewer than 3 usable points or none within the tilt).
        inliers: (N,) bool, points within ``threshold_m`` of the plane (the ground).
        n_inliers: count of ``inliers``.
    """

    plane: F64
    inliers: BoolArray
    n_inliers: int

    @property
    def found(self) -> bool:
        return bool(self.plane[2] > 0)


def ransac_ground(
    points: Any,
    *,
    threshold_m: float = 0.2,
    n_iter: int = 100,
    max_tilt_deg: float = 20.0,
    sample_size: int = 8192,
    seed: int = 0,
    refine: bool = True,
    out: Any = None,
) -> GroundPlane:
    """Ground plane by RANSAC, deterministic for a given ``seed`` (own xorshift64* generator).

    Hypotheses are scored on an evenly strided sample of at most ``sample_size`` points; planes
    tilted more than ``max_tilt_deg`` from horizontal (z up) are rejected.  With ``refine`` the best
    plane is re-fitted by least squares (SVD) to its inliers among all points, once.  ``inliers`` is
    written to ``out`` (N,) bool when given.  Remove the ground with ``points[~result.inliers]``.
    """
    pts = as_point_array(points)
    thr = float(threshold_m)
    if not (math.isfinite(thr) and thr > 0):
        raise VoxelParamError(f"must be finite and > 0, got {threshold_m!r}", field="threshold_m")
    for name, v in (("n_iter", n_iter), ("sample_size", sample_size)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise VoxelParamError(f"must be a positive integer, got {v!r}", field=name)
    tilt = float(max_tilt_deg)
    if not (0.0 <= tilt <= 90.0):
        raise VoxelParamError(f"must be within [0, 90], got {max_tilt_deg!r}", field="max_tilt_deg")
    n = pts.shape[0]
    mask = _out(out, (n,), np.bool_)
    step = max(1, -(-n // int(sample_size)))
    state = np.array([(int(seed) * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) % 2**64 or 1], dtype=np.uint64)
    plane = np.zeros(4, dtype=np.float64)
    min_nz = math.cos(math.radians(tilt)) - 1e-12
    _k._ransac_plane(pts, step, int(n_iter), thr, min_nz, state, plane)
    if plane[2] <= 0:
        mask[:] = False
        return GroundPlane(plane, mask, 0)
    count = _k._plane_inliers(pts, plane[0], plane[1], plane[2], plane[3], thr, mask)
    if refine and count >= 3:
        inl = pts[mask, :3].astype(np.float64)
        centroid = inl.mean(axis=0)
        _, _, vt = np.linalg.svd(inl - centroid, full_matrices=False)
        normal = vt[2] if vt[2, 2] >= 0 else -vt[2]
        if normal[2] >= min_nz:
            plane[:3] = normal
            plane[3] = -float(normal @ centroid)
            count = _k._plane_inliers(pts, plane[0], plane[1], plane[2], plane[3], thr, mask)
    return GroundPlane(plane, mask, int(count))


def ring_edges(elevations_deg: Any) -> F64:
    """Bin edges (radians, R + 1) half-way between ascending beam elevations, the outer ones half a
    spacing beyond the first/last beam."""
    el = np.asarray(elevations_deg, dtype=np.float64).reshape(-1)
    if el.size < 1 or not np.all(np.isfinite(el)) or np.any(np.diff(el) <= 0):
        raise VoxelParamError("must be finite and strictly ascending", field="elevations_deg")
    if el.size == 1:
        single: F64 = np.radians(np.array([el[0] - 0.5, el[0] + 0.5]))
        return single
    mid = (el[1:] + el[:-1]) / 2.0
    edges = np.concatenate([[el[0] - (el[1] - el[0]) / 2.0], mid, [el[-1] + (el[-1] - el[-2]) / 2.0]])
    result: F64 = np.radians(edges)
    return result


def uniform_ring_edges(n_rings: int, fov_down_deg: float, fov_up_deg: float) -> F64:
    """Edges (radians) of ``n_rings`` equal elevation bins from ``fov_down_deg`` to ``fov_up_deg``."""
    if isinstance(n_rings, bool) or not isinstance(n_rings, int) or n_rings < 1:
        raise VoxelParamError(f"must be a positive integer, got {n_rings!r}", field="n_rings")
    if not (math.isfinite(fov_down_deg) and math.isfinite(fov_up_deg) and fov_up_deg > fov_down_deg):
        raise VoxelParamError(f"need fov_up_deg > fov_down_deg, got {fov_down_deg}, {fov_up_deg}",
                              field="fov_up_deg")
    return np.radians(np.linspace(fov_down_deg, fov_up_deg, n_rings + 1))


def ring_from_elevation(points: Any, edges_rad: Any, *, out: Any = None) -> I32:
    """(N,) int32 ring of each point (0 = lowest bin) from its elevation angle; -1 outside the edges.

    For KITTI's HDL-64E: ``ring_from_elevation(xyz, ring_edges(HDL64E_ELEVATIONS_DEG))`` (approximate:
    nominal beam angles).
    """
    pts = as_point_array(points)
    edges = np.ascontiguousarray(edges_rad, dtype=np.float64).reshape(-1)
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise VoxelParamError("must be at least 2 finite, strictly ascending values", field="edges_rad")
    rings = _out(out, (pts.shape[0],), np.int32)
    _k._ring_from_elevation(pts, edges, rings)
    return rings


@dataclass(frozen=True, slots=True)
class RangeImage:
    """Output of :meth:`RangeImageBuilder.compute` (read-only views, valid until the next call).

    Attributes:
        range: (n_rings, width) float32 range in metres of the nearest point per pixel, 0 where none.
        index: (n_rings, width) int32 index of that point, -1 where none.
    """

    range: npt.NDArray[np.float32]
    index: I32


class RangeImageBuilder:
    """Range image from ring and azimuth, preallocated (see :func:`_k._range_image` for the layout).

    Rows are rings (``top_ring_first``: row 0 is the highest ring, ``n_rings - 1 - ring``); columns
    are ``width`` azimuth bins, column 0 looking backwards (azimuth ±180°), the centre column forward
    (+x), azimuth decreasing to the right.  Per pixel the nearest point wins (smallest float32 range,
    ties to the lowest index).  Points with a ring outside ``[0, n_rings)``, non-finite coordinates
    or a range outside ``[min_range_m, max_range_m]`` are skipped.
    """

    def __init__(self, n_rings: int, width: int, *, top_ring_first: bool = True, min_range_m: float = 0.0,
                 max_range_m: float = math.inf) -> None:
        for name, v in (("n_rings", n_rings), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise VoxelParamError(f"must be a positive integer, got {v!r}", field=name)
        if not (min_range_m >= 0 and max_range_m > min_range_m):
            raise VoxelParamError(f"need 0 <= min < max, got {min_range_m}, {max_range_m}", field="max_range_m")
        self.n_rings, self.width = int(n_rings), int(width)
        self.top_ring_first = bool(top_ring_first)
        self.min_range_m, self.max_range_m = float(min_range_m), float(max_range_m)
        self._range = np.zeros((self.n_rings, self.width), dtype=np.float32)
        self._index = np.full((self.n_rings, self.width), -1, dtype=np.int32)
        self._touched = np.zeros(self.n_rings * self.width, dtype=np.int64)
        self._n_touched = 0
        self._views = RangeImage(self._range.view(), self._index.view())
        self._views.range.flags.writeable = False
        self._views.index.flags.writeable = False

    def warmup(self) -> float:
        start = time.perf_counter()
        for dt in (np.float32, np.float64):
            for rdt in (np.uint16, np.int32, np.uint8):
                self.compute(np.full((1, 3), np.nan, dtype=dt), np.zeros(1, dtype=rdt))
        return time.perf_counter() - start

    def compute(self, points: Any, rings: Any) -> RangeImage:
        """Build the image from (N, C >= 3) points and (N,) integer rings (e.g. the cloud's ``ring``
        field, or :func:`ring_from_elevation`)."""
        pts = as_point_array(points)
        r = np.asarray(rings)
        if r.shape != (pts.shape[0],) or r.dtype.kind not in "iu":
            raise InputDataError(f"rings must be an integer ({pts.shape[0]},) array, got {r.dtype} {r.shape}")
        if not r.dtype.isnative or (r.dtype.itemsize > 4 and r.dtype.kind == "u"):
            r = r.astype(np.int64)
        r = np.ascontiguousarray(r)
        self._n_touched = int(_k._range_image(pts, r, self.n_rings, self.width, self.top_ring_first,
                                              self.min_range_m, self.max_range_m, self._range, self._index,
                                              self._touched, self._n_touched))
        return self._views
