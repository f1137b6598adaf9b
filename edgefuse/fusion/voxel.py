"""Voxelization of point clouds: hard (SECOND semantics), dynamic (no caps) and pillars (PointPillars).

Every voxelizer validates its geometry once, preallocates its outputs, compiles its kernels in
``warmup()`` and then allocates no arrays per call (only the small result object and views).

Geometry (identical for all three, and for the references in ``tests/fusion/voxel_reference.py``):

- ``point_range = [x_min, y_min, z_min, x_max, y_max, z_max]`` (metres, the cloud's frame) and
  ``voxel_size = [sx, sy, sz]``; the grid has ``round((max - min) / size)`` cells per axis, computed in
  the points' dtype exactly like SECOND's ``points_to_voxel``.
- A point's voxel is ``floor((p - min) / size)`` per axis, evaluated in the points' dtype (float32
  clouds in float32 arithmetic), and the point is *inside* when ``0 <= c < grid`` on every axis.
  Points outside, and points with a NaN/inf coordinate, are dropped and counted (``n_outside``);
  other channels (intensity …) are copied as they are.
- Voxels are numbered in the order of their first inside point.  Hard voxelization keeps the first
  ``max_points_per_voxel`` points of each voxel and creates at most ``max_voxels`` voxels.  What
  happens at the first point that needs one voxel more is ``on_cap`` (:data:`ON_CAP`):

  - ``"stop"`` (default): the pass ends there; that point and every later one are dropped (counted in
    ``n_dropped_voxels``, none of them in ``n_outside``), so no later point joins an existing voxel.
    This is SECOND's own ``points_to_voxel`` (traveller59/second.pytorch,
    ``second/core/point_cloud/point_cloud_ops.py``: ``break``).
  - ``"continue"``: only points that need a new voxel are dropped (one count each); later points
    still join the voxels that exist.  This is what mmdet3d's Numba copy of that function
    (``mmdet3d/models/task_modules/voxel/voxel_generator.py``), mmcv's ``Voxelization`` (CPU) and
    spconv 1.x's ``points_to_voxel_3d_np`` (used by SECOND from v1.5 and by OpenPCDet) do.

  Choose the one the model was trained with; below the cap both give the same result.
- ``coords`` are int32 ``(z, y, x)`` cell indices (``coord_order="zyx"``, SECOND's
  ``reverse_index=True``) or ``(x, y, z)`` (``coord_order="xyz"``).

Instead of SECOND's dense ``coor_to_voxelidx`` grid (90 M int32, 360 MB, for KITTI car settings) the
hard voxelizer keeps one int32 per (x, y) column (2.25 M, 9 MB) that chains the column's voxels, or,
above :data:`COLUMN_GRID_MAX_CELLS` columns, a hash table sized for ``max_voxels``; each call empties
only the cells it filled.  The dynamic voxelizer uses a hash table sized for the cloud whose slots
carry the generation of the call that wrote them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import ConfigError, InputDataError
from edgefuse.fusion import _voxel_kernels as _k
from edgefuse.fusion._parallel import ParallelChooser, run_parallel

__all__ = [
    "DynamicVoxelizer",
    "DynamicVoxels",
    "HardVoxels",
    "PillarVoxelizer",
    "Pillars",
    "VoxelGeometry",
    "VoxelParamError",
    "Voxelizer",
    "as_point_array",
    "dynamic_voxelize",
    "voxelize",
]

I32 = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.floating[Any]]

#: Below this many points a ``threads > 1`` voxelizer still runs the fused serial kernel.
PARALLEL_MIN_POINTS = 50_000
#: Smallest number of points one thread takes at a time in the parallel key pass.
PARALLEL_CHUNK = 8192
#: Points whose voxel keys the serial hard kernel computes at a time (its scratch stays in L1).
KEY_CHUNK = 1024
#: Accepted values of ``on_cap`` (see the module docs).
ON_CAP = ("stop", "continue")
#: Hard voxelizers whose grid has at most this many (x, y) columns find voxels through a dense column
#: grid (4 bytes a column, 64 MiB at most), larger ones through a hash table.
COLUMN_GRID_MAX_CELLS = 2**24
_GEN_LIMIT = 2**31 - 2
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class VoxelParamError(ConfigError, ValueError):
    """A voxelization / BEV / point-cloud parameter is invalid; ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def as_point_array(points: Any, *, min_channels: int = 3, name: str = "points") -> FloatArray:
    """Check an (N, C >= min_channels) float32/float64 array; return it C-contiguous and native-endian.

    A non-contiguous or byte-swapped array is copied (the only copy made); any other dtype raises
    ``TypeError`` (convert explicitly, e.g. ``points.astype(np.float32)``) and any other shape
    ``ValueError``.
    """
    if not isinstance(points, np.ndarray):
        raise InputDataError(f"{name} must be a numpy array of shape (N, C), got {type(points).__name__}")
    if points.ndim != 2 or points.shape[1] < min_channels:
        raise InputDataError(f"{name} must have shape (N, C) with C >= {min_channels}, got {points.shape}")
    if points.dtype.kind != "f" or points.dtype.itemsize not in (4, 8):
        raise InputDataError(
            f"{name} must be float32 or float64, got {points.dtype}; convert explicitly, "
            "e.g. points.astype(np.float32)"
        )
    if not points.dtype.isnative:
        points = points.astype(points.dtype.newbyteorder("="))
    return np.ascontiguousarray(points)


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise VoxelParamError(f"must be a positive integer, got {value!r}", field=field)
    return int(value)


def _threads(value: Any) -> int:
    return _positive_int(value, "threads")


@dataclass(frozen=True, slots=True)
class VoxelGeometry:
    """Validated voxel grid: ``lo`` (3,), ``size`` (3,), ``hi`` (3,) float64 and cells ``(nx, ny, nz)``.

    ``grid`` is computed like SECOND: ``round((hi - lo) / size)`` in float32 (the dtype the KITTI
    clouds have); :meth:`lo_size` gives ``lo``/``size`` in a cloud's dtype for the kernels.
    """

    lo: npt.NDArray[np.float64]
    hi: npt.NDArray[np.float64]
    size: npt.NDArray[np.float64]
    grid: tuple[int, int, int]

    @classmethod
    def create(cls, voxel_size: Any, point_range: Any) -> VoxelGeometry:
        """Validate ``voxel_size`` (3 finite values > 0) and ``point_range`` (6 finite values, max > min)."""
        try:
            size = np.asarray(voxel_size, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise VoxelParamError(f"must be 3 numbers, got {voxel_size!r}", field="voxel_size") from None
        try:
            rng = np.asarray(point_range, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise VoxelParamError(f"must be 6 numbers, got {point_range!r}", field="point_range") from None
        if size.shape != (3,):
            raise VoxelParamError(f"must be 3 numbers [sx, sy, sz], got {voxel_size!r}", field="voxel_size")
        if not np.all(np.isfinite(size)) or np.any(size <= 0):
            raise VoxelParamError(f"every size must be finite and > 0, got {size.tolist()}", field="voxel_size")
        if rng.shape != (6,):
            raise VoxelParamError(
                f"must be 6 numbers [x_min, y_min, z_min, x_max, y_max, z_max], got {point_range!r}",
                field="point_range",
            )
        if not np.all(np.isfinite(rng)) or np.any(rng[3:] <= rng[:3]):
            raise VoxelParamError(f"must be finite with max > min on every axis, got {rng.tolist()}",
                                  field="point_range")
        lo32 = rng[:3].astype(np.float32)
        grid_f = np.round((rng[3:].astype(np.float32) - lo32) / size.astype(np.float32))
        grid = tuple(int(g) for g in grid_f)
        if min(grid) < 1:
            raise VoxelParamError(
                f"voxel size {size.tolist()} is larger than the range {(rng[3:] - rng[:3]).tolist()} "
                f"(grid {grid})", field="voxel_size")
        if sum((g - 1).bit_length() for g in grid) > 62 or max(grid) >= 2**31:
            raise VoxelParamError(f"grid {grid} has too many cells", field="voxel_size")
        return cls(rng[:3].copy(), rng[3:].copy(), size, (grid[0], grid[1], grid[2]))

    def lo_size(self, dtype: np.dtype[Any]) -> tuple[FloatArray, FloatArray]:
        """``lo`` and ``size`` as (3,) arrays of ``dtype`` (the kernels compute in the cloud's dtype)."""
        return self.lo.astype(dtype), self.size.astype(dtype)

    def top(self, dtype: np.dtype[Any]) -> FloatArray:
        """(3,) largest values of ``dtype`` <= ``grid - 1`` (the kernels' inside test ``c <= top``)."""
        last = np.asarray(self.grid, dtype=np.float64) - 1
        top = last.astype(dtype)
        return np.where(top > last, np.nextafter(top, dtype.type(-np.inf)), top).astype(dtype)

    def key_shifts(self) -> tuple[int, int]:
        """``(shift_x, shift_y)`` of the kernels' voxel key ``cx << shift_x | cy << shift_y | cz`` (< 2^62)."""
        ny, nz = self.grid[1], self.grid[2]
        shift_y = (nz - 1).bit_length()
        return shift_y + (ny - 1).bit_length(), shift_y


def _coord_order(value: str) -> bool:
    if value not in ("zyx", "xyz"):
        raise VoxelParamError(f"must be 'zyx' (SECOND) or 'xyz', got {value!r}", field="coord_order")
    return value == "zyx"


def _on_cap(value: Any) -> str:
    if not isinstance(value, str) or value not in ON_CAP:
        raise VoxelParamError(f"must be 'stop' (SECOND) or 'continue' (mmdet3d, mmcv, spconv), got {value!r}",
                              field="on_cap")
    return value


class _VoxelIndex:
    """How the hard kernel finds a voxel from its key (see ``_k._hard_voxelize``); clean between calls.

    Grids of at most :data:`COLUMN_GRID_MAX_CELLS` (x, y) columns get a column grid (nx * ny int32: 9 MB
    for KITTI car settings), its occupancy bitmap (int64 words, all zero between calls) and an unused
    one-slot hash table; larger ones empty column arrays and a hash table of (S, 2) int64
    ``[key, voxel id]`` slots (key -1 free), S >= 2 * max_voxels.  ``meta`` (max_voxels, 2) int64 holds
    each voxel's key and link.  Every page is written here, so the first real cloud pays no page
    faults.
    """

    def __init__(self, grid: tuple[int, int, int], max_voxels: int) -> None:
        columns = grid[0] * grid[1]
        if columns <= COLUMN_GRID_MAX_CELLS:
            self.columns = _prefaulted(columns, np.int32)
            self.occupied = _prefaulted((columns + 63) // 64, np.int64)
            bits = 0
        else:
            self.columns = np.zeros(0, dtype=np.int32)
            self.occupied = np.zeros(0, dtype=np.int64)
            bits = max(4, int(2 * max_voxels - 1).bit_length())
        self.table = np.empty((1 << bits, 2), dtype=np.int64)
        self.table.fill(-1)
        self.shift = 64 - max(bits, 1)  # one unused slot with the column grid
        self.meta = _prefaulted((max_voxels, 2), np.int64)


class _PackedTable:
    """Hash table of the dynamic path: one (S, 2) int64 array, ``[key, gen << 32 | voxel id]`` per slot.

    One cache line per probe instead of three (see ``_k._dynamic_voxelize_packed``).  Every page is
    written at construction, so the first real cloud does not pay ~2,000 page faults (the table is
    8 MiB for 200k points; ``np.zeros`` memory is only mapped on first touch).
    """

    def __init__(self, max_keys: int) -> None:
        bits = max(4, int(2 * max_keys - 1).bit_length())
        self.table = np.empty((1 << bits, 2), dtype=np.int64)
        self.table.fill(0)
        self.shift = 64 - bits
        self.gen = 0

    def next_gen(self) -> int:
        self.gen += 1
        if self.gen > _GEN_LIMIT:
            self.table[:, 1] = 0
            self.gen = 1
        return self.gen


def _prefaulted(shape: int | tuple[int, int], dtype: Any) -> npt.NDArray[Any]:
    """A zero array whose pages are all mapped now (``np.zeros`` maps them on first touch)."""
    array = np.empty(shape, dtype=dtype)
    array.fill(0)
    return array


@dataclass(frozen=True, slots=True)
class HardVoxels:
    """Output of :meth:`Voxelizer.voxelize` (read-only views, valid until the next call).

    Attributes:
        voxels: (M, max_points_per_voxel, C) points of each voxel in arrival order (input dtype);
            rows past ``num_points`` are zero.
        coords: (M, 3) int32 cell indices, (z, y, x) or (x, y, z) per ``coord_order``.
        num_points: (M,) int32 points kept per voxel (1 … max_points_per_voxel).
        n_outside: points outside the range or with a NaN/inf coordinate.
        n_dropped_voxels: points dropped because ``max_voxels`` voxels already existed: with
            ``on_cap="continue"`` each inside point that needed a new voxel, with ``"stop"`` the first
            such point and every point after it (not examined, so not counted as outside).
        n_dropped_points: inside points dropped because their voxel was full.
    """

    voxels: FloatArray
    coords: I32
    num_points: I32
    n_outside: int
    n_dropped_voxels: int
    n_dropped_points: int

    @property
    def n_voxels(self) -> int:
        return int(self.coords.shape[0])

    def copy(self) -> HardVoxels:
        """A result owning writable copies of the arrays."""
        return HardVoxels(self.voxels.copy(), self.coords.copy(), self.num_points.copy(), self.n_outside,
                          self.n_dropped_voxels, self.n_dropped_points)


def _key_buffers(owner: Voxelizer | DynamicVoxelizer, n: int,
                 dtype: np.dtype[Any]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """The parallel key pass's (n,) keys and (3, n) coordinate scratch, grown on first need only."""
    if owner._keys.shape[0] < n:
        owner._keys = np.zeros(n, dtype=np.int64)
    xyz = owner._xyz.get(dtype.str)
    if xyz is None or xyz.shape[1] < n:
        xyz = np.zeros((3, max(n, owner._keys.shape[0])), dtype=dtype)
        owner._xyz[dtype.str] = xyz
    return owner._keys[:n], xyz


def _readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    view = array.view()
    view.flags.writeable = False
    return view


class Voxelizer:
    """Hard voxelization with SECOND's ``points_to_voxel`` semantics, preallocated and reusable.

    Args:
        voxel_size: [sx, sy, sz] metres, each > 0.
        point_range: [x_min, y_min, z_min, x_max, y_max, z_max] metres.
        max_points_per_voxel: points kept per voxel (the first ones).
        max_voxels: voxels created at most (the first ones).
        coord_order: ``"zyx"`` (SECOND, default) or ``"xyz"``.
        on_cap: ``"stop"`` (SECOND, default) or ``"continue"`` (mmdet3d, mmcv, spconv): what the first
            point that needs a voxel beyond ``max_voxels`` does (see the module docs).
        num_features: channels C of the clouds to expect (buffers for other C are made on first use).
        threads: 1 runs the fused serial kernel.  ``> 1`` lets the per-point voxel-key pass run on up to
            that many Numba threads for clouds of at least :data:`PARALLEL_MIN_POINTS` points (the
            voxel assignment stays serial, so results are identical).  The voxelizer starts on the
            serial kernel and adopts the parallel one only after it has measured faster by a margin
            on live calls, and falls back at once when it stops being faster; probes of the parallel
            kernel are rare and skipped while other processes hold the CPUs
            (:class:`edgefuse.fusion._parallel.ParallelChooser`), so a busy core never makes
            ``threads > 1`` measurably slower than one thread.
    """

    def __init__(
        self,
        voxel_size: Any,
        point_range: Any,
        *,
        max_points_per_voxel: int = 5,
        max_voxels: int = 16000,
        coord_order: str = "zyx",
        on_cap: str = "stop",
        num_features: int = 4,
        threads: int = 1,
    ) -> None:
        self.geometry = VoxelGeometry.create(voxel_size, point_range)
        self.max_points_per_voxel = _positive_int(max_points_per_voxel, "max_points_per_voxel")
        self.max_voxels = _positive_int(max_voxels, "max_voxels")
        self.coord_order = coord_order
        self._zyx = _coord_order(coord_order)
        self.on_cap = _on_cap(on_cap)
        self._stop = self.on_cap == "stop"
        self.num_features = _positive_int(num_features, "num_features")
        if self.num_features < 3:
            raise VoxelParamError(f"must be >= 3 (x, y, z first), got {num_features}", field="num_features")
        self.threads = _threads(threads)
        self._shifts = self.geometry.key_shifts()
        self._index = _VoxelIndex(self.geometry.grid, self.max_voxels)
        self._coords = np.zeros((self.max_voxels, 3), dtype=np.int32)
        self._num = np.zeros(self.max_voxels, dtype=np.int32)
        self._stats = np.zeros(_k.HARD_STATS_LEN, dtype=np.int64)
        self._voxels: dict[tuple[str, int], FloatArray] = {}
        self._lo_size = {dt.str: self.geometry.lo_size(dt) for dt in _FLOAT_DTYPES}
        self._top = {dt.str: self.geometry.top(dt) for dt in _FLOAT_DTYPES}
        self._chunk_keys = np.zeros(KEY_CHUNK, dtype=np.int64)
        self._chunk_xyz = {dt.str: np.zeros((3, KEY_CHUNK), dtype=dt) for dt in _FLOAT_DTYPES}
        self._keys = np.zeros(0, dtype=np.int64)
        self._xyz: dict[str, FloatArray] = {}
        self._chooser = ParallelChooser(self.threads)
        for dt in _FLOAT_DTYPES:
            self._voxel_buffer(dt, self.num_features)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Cells (nx, ny, nz)."""
        return self.geometry.grid

    def _voxel_buffer(self, dtype: np.dtype[Any], channels: int) -> FloatArray:
        key = (dtype.str, channels)
        buf = self._voxels.get(key)
        if buf is None:
            buf = np.zeros((self.max_voxels, self.max_points_per_voxel, channels), dtype=dtype)
            self._voxels[key] = buf
        return buf

    def warmup(self) -> float:
        """Compile (or load from cache) the kernels for float32 and float64 clouds; returns seconds."""
        start = time.perf_counter()
        for dt in _FLOAT_DTYPES:
            pts = np.zeros((1, self.num_features), dtype=dt)
            self.voxelize(pts)
            if self.threads > 1:
                self._run(pts, parallel=True)
        return time.perf_counter() - start

    def _run(self, pts: FloatArray, *, parallel: bool) -> int:
        lo, size = self._lo_size[pts.dtype.str]
        ny = self.geometry.grid[1]
        sx, sy = self._shifts
        x = self._index
        voxels = self._voxel_buffer(pts.dtype, pts.shape[1])
        top = self._top[pts.dtype.str]
        xyz = self._chunk_xyz[pts.dtype.str]
        keys = self._chunk_keys
        if parallel:
            n = pts.shape[0]
            keys, xyz = _key_buffers(self, n, pts.dtype)
            threads = self._chooser.threads
            chunk = max(PARALLEL_CHUNK, -(-n // (8 * threads)))
            run_parallel(threads, _k._cell_keys_parallel, pts, lo, size, top, sx, sy, xyz, keys, chunk)
        return int(_k._hard_voxelize(pts, keys, parallel, lo, size, top, ny, sx, sy, self.max_points_per_voxel,
                                     self.max_voxels, self._stop, self._zyx, x.columns, x.occupied, x.table, x.shift,
                                     x.meta, xyz, voxels, self._coords, self._num, self._stats))

    def voxelize(self, points: Any, *, copy: bool = False) -> HardVoxels:
        """Voxelize an (N, C >= 3) float32/float64 cloud (x, y, z first).  See the module docs.

        An empty cloud gives M = 0.  Returns read-only views into the voxelizer's buffers, valid until
        the next call, or owned copies with ``copy=True``.
        """
        pts = as_point_array(points)
        n = pts.shape[0]
        if self.threads > 1 and n >= PARALLEL_MIN_POINTS:
            parallel = self._chooser.pick()
            start = time.perf_counter()
            m = self._run(pts, parallel=parallel)
            self._chooser.record(parallel, (time.perf_counter() - start) / n)
        else:
            m = self._run(pts, parallel=False)
        voxels = self._voxel_buffer(pts.dtype, pts.shape[1])
        s = self._stats
        result = HardVoxels(_readonly(voxels[:m]), _readonly(self._coords[:m]), _readonly(self._num[:m]),
                            int(s[_k.HARD_OUTSIDE]), int(s[_k.HARD_CAP]), int(s[_k.HARD_FULL]))
        return result.copy() if copy else result


def voxelize(
    points: Any,
    voxel_size: Any,
    point_range: Any,
    *,
    max_points_per_voxel: int = 35,
    max_voxels: int = 20000,
    coord_order: str = "zyx",
    on_cap: str = "stop",
) -> HardVoxels:
    """One-shot hard voxelization (SECOND's ``points_to_voxel`` defaults); returns owned arrays.

    ``on_cap`` as :class:`Voxelizer`.  A pipeline stage should keep one :class:`Voxelizer` instead (no
    per-call allocation).
    """
    pts = as_point_array(points)
    vox = Voxelizer(voxel_size, point_range, max_points_per_voxel=max_points_per_voxel,
                    max_voxels=max_voxels, coord_order=coord_order, on_cap=on_cap, num_features=pts.shape[1])
    return vox.voxelize(pts, copy=True)


@dataclass(frozen=True, slots=True)
class DynamicVoxels:
    """Output of :meth:`DynamicVoxelizer.voxelize` (read-only views, valid until the next call).

    Attributes:
        point_voxel: (N,) int32 voxel id of each point, -1 when outside the range or non-finite.
        coords: (M, 3) int32 cell indices of each voxel (order per ``coord_order``).
        num_points: (M,) int32 points in each voxel (no cap).
    """

    point_voxel: I32
    coords: I32
    num_points: I32

    @property
    def n_voxels(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_outside(self) -> int:
        return int(self.point_voxel.shape[0] - int(self.num_points.sum()))

    def copy(self) -> DynamicVoxels:
        return DynamicVoxels(self.point_voxel.copy(), self.coords.copy(), self.num_points.copy())


class DynamicVoxelizer:
    """Dynamic voxelization (no caps): point → voxel id, voxels in first-point order.

    Same geometry and ``coord_order`` as :class:`Voxelizer`.  Buffers are sized for ``max_points``;
    a larger cloud grows them once (the only allocation outside construction).  ``threads`` as for
    :class:`Voxelizer`.
    """

    def __init__(
        self,
        voxel_size: Any,
        point_range: Any,
        *,
        coord_order: str = "zyx",
        max_points: int = 200_000,
        threads: int = 1,
    ) -> None:
        self.geometry = VoxelGeometry.create(voxel_size, point_range)
        self.coord_order = coord_order
        self._zyx = _coord_order(coord_order)
        self.threads = _threads(threads)
        self._shifts = self.geometry.key_shifts()
        self._lo_size = {dt.str: self.geometry.lo_size(dt) for dt in _FLOAT_DTYPES}
        self._top = {dt.str: self.geometry.top(dt) for dt in _FLOAT_DTYPES}
        self._chooser = ParallelChooser(self.threads)
        self._xyz: dict[str, FloatArray] = {}
        self._allocate(_positive_int(max_points, "max_points"))

    def _allocate(self, capacity: int) -> None:
        self.capacity = capacity
        self._table = _PackedTable(capacity)
        self._point_voxel = _prefaulted(capacity, np.int32)
        self._coords = _prefaulted((capacity, 3), np.int32)
        self._num = _prefaulted(capacity, np.int32)
        self._keys = _prefaulted(capacity, np.int64)
        if self.threads > 1:  # the parallel key pass's scratch
            self._xyz = {dt.str: _prefaulted((3, capacity), dt) for dt in _FLOAT_DTYPES}

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.geometry.grid

    def warmup(self) -> float:
        """Compile (or load from cache) the kernels for float32 and float64 clouds; returns seconds."""
        start = time.perf_counter()
        for dt in _FLOAT_DTYPES:
            pts = np.zeros((1, 3), dtype=dt)
            self.voxelize(pts)
            if self.threads > 1:
                self._run(pts, parallel=True)
        return time.perf_counter() - start

    def _run(self, pts: FloatArray, *, parallel: bool) -> int:
        n = pts.shape[0]
        lo, size = self._lo_size[pts.dtype.str]
        nx, ny, nz = self.geometry.grid
        sx, sy = self._shifts
        t = self._table
        gen = t.next_gen()
        pv = self._point_voxel[:n]
        if not parallel:
            return int(_k._dynamic_voxelize_packed(pts, lo, size, nx, ny, nz, self._zyx, t.table, gen, t.shift, pv,
                                                   self._coords, self._num, sx, sy))
        keys, xyz = _key_buffers(self, n, pts.dtype)
        threads = self._chooser.threads
        chunk = max(PARALLEL_CHUNK, -(-n // (8 * threads)))
        run_parallel(threads, _k._cell_keys_parallel, pts, lo, size, self._top[pts.dtype.str], sx, sy, xyz, keys,
                     chunk)
        return int(_k._dynamic_voxelize_packed_from_keys(keys, sx, sy, self._zyx, t.table, gen, t.shift, pv,
                                                         self._coords, self._num))

    def voxelize(self, points: Any, *, copy: bool = False) -> DynamicVoxels:
        """Voxelize an (N, C >= 3) float32/float64 cloud; views valid until the next call (or copies)."""
        pts = as_point_array(points)
        n = pts.shape[0]
        if n > self.capacity:
            self._allocate(n)
        if self.threads > 1 and n >= PARALLEL_MIN_POINTS:
            parallel = self._chooser.pick()
            start = time.perf_counter()
            m = self._run(pts, parallel=parallel)
            self._chooser.record(parallel, (time.perf_counter() - start) / n)
        else:
            m = self._run(pts, parallel=False)
        result = DynamicVoxels(_readonly(self._point_voxel[:n]), _readonly(self._coords[:m]),
                               _readonly(self._num[:m]))
        return result.copy() if copy else result


def dynamic_voxelize(points: Any, voxel_size: Any, point_range: Any, *, coord_order: str = "zyx") -> DynamicVoxels:
    """One-shot dynamic voxelization; returns owned arrays."""
    pts = as_point_array(points)
    vox = DynamicVoxelizer(voxel_size, point_range, coord_order=coord_order, max_points=max(1, pts.shape[0]))
    return vox.voxelize(pts, copy=True)


@dataclass(frozen=True, slots=True)
class Pillars:
    """Output of :meth:`PillarVoxelizer.voxelize` (read-only views, valid until the next call).

    Attributes:
        features: (P, max_points_per_pillar, F) with F = C + 5 when augmented (x, y, z, …, then
            ``x - x_mean``, ``y - y_mean``, ``z - z_mean`` over the pillar's kept points and
            ``x - x_centre``, ``y - y_centre`` of the pillar), else F = C; zero rows past ``num_points``.
        coords: (P, 3) int32 cell indices (z index always 0), order per ``coord_order``.
        num_points: (P,) int32 points kept per pillar.
        n_outside, n_dropped_voxels, n_dropped_points: as :class:`HardVoxels`.
    """

    features: FloatArray
    coords: I32
    num_points: I32
    n_outside: int
    n_dropped_voxels: int
    n_dropped_points: int

    @property
    def n_pillars(self) -> int:
        return int(self.coords.shape[0])


class PillarVoxelizer:
    """PointPillars-style pillars: hard voxelization with one z cell spanning the whole z range.

    Args:
        pillar_size: [sx, sy] metres (or [sx, sy, anything]: z is always the whole range).
        point_range: [x_min, y_min, z_min, x_max, y_max, z_max].
        max_points_per_pillar, max_pillars: caps (first points / first pillars).
        on_cap: ``"stop"`` (SECOND, default) or ``"continue"``, as :class:`Voxelizer`.
        augment: append PointPillars' five decorations (see :class:`Pillars`).
        coord_order, num_features, threads: as :class:`Voxelizer`.
    """

    #: the hard voxelizer underneath (:class:`edgefuse.fusion.cuda.CudaPillarVoxelizer` puts its own)
    _voxelizer_class: type[Voxelizer] = Voxelizer

    def __init__(
        self,
        pillar_size: Any,
        point_range: Any,
        *,
        max_points_per_pillar: int = 32,
        max_pillars: int = 16000,
        augment: bool = True,
        coord_order: str = "zyx",
        on_cap: str = "stop",
        num_features: int = 4,
        threads: int = 1,
    ) -> None:
        size = np.asarray(pillar_size, dtype=np.float64).reshape(-1)
        if size.shape not in ((2,), (3,)):
            raise VoxelParamError(f"must be [sx, sy], got {pillar_size!r}", field="pillar_size")
        rng = np.asarray(point_range, dtype=np.float64).reshape(-1)
        z_extent = float(rng[5] - rng[2]) if rng.shape == (6,) else 1.0
        self._vox = self._voxelizer_class([size[0], size[1], z_extent], point_range,
                                          max_points_per_voxel=max_points_per_pillar, max_voxels=max_pillars,
                                          coord_order=coord_order, on_cap=on_cap, num_features=num_features,
                                          threads=threads)
        self.geometry = self._vox.geometry
        self.on_cap = self._vox.on_cap
        self.augment = bool(augment)
        self.max_points_per_pillar = self._vox.max_points_per_voxel
        self.max_pillars = self._vox.max_voxels
        self._features: dict[tuple[str, int], FloatArray] = {}

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.geometry.grid

    def warmup(self) -> float:
        start = time.perf_counter()
        self._vox.warmup()
        for dt in _FLOAT_DTYPES:
            self.voxelize(np.zeros((1, self._vox.num_features), dtype=dt))
        return time.perf_counter() - start

    def voxelize(self, points: Any) -> Pillars:
        """Pillarize an (N, C >= 3) float32/float64 cloud; views valid until the next call."""
        hv = self._vox.voxelize(points)
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
        g = self.geometry
        _k._pillar_features(hv.voxels, hv.coords, hv.num_points, m, self._vox._zyx,
                            float(g.lo[0] + g.size[0] / 2), float(g.lo[1] + g.size[1] / 2),
                            float(g.size[0]), float(g.size[1]), feats)
        return Pillars(_readonly(feats[:m]), hv.coords, hv.num_points, hv.n_outside, hv.n_dropped_voxels,
                       hv.n_dropped_points)
