"""Project a LiDAR/radar point cloud into a camera: z-buffered sparse depth image and point colours.

This is the first data-level fusion stage.  :class:`Projector` validates the camera and extrinsics
once, preallocates every buffer, and compiles its kernels in :meth:`Projector.warmup`; after that
:meth:`Projector.project` allocates no arrays (only the small result object and array views).

Conventions (the same in the kernels and in the test reference):

- ``T_cam_from_lidar`` (4, 4) maps points from the LiDAR (or radar) frame to the camera optical frame
  (x right, y down, z forward).  Depth is camera-frame ``z`` in metres (for every model, fisheye too).
- Camera models: ``PINHOLE``, ``PLUMB_BOB``, ``RATIONAL``, ``EQUIDISTANT``
  (:mod:`edgefuse.fusion._models`, identical to :mod:`edgefuse.rig.camera`).  Distortion matches
  ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``; skew ``K[0, 1]`` is applied as
  ``u = fx * xd + skew * yd + cx``.
- Pixel centres sit at integer coordinates: the pixel of a point is
  ``(row, col) = (floor(v + 0.5), floor(u + 0.5))`` computed from the published float32 ``uv``, and a
  point is inside the image when ``-0.5 <= u < width - 0.5`` and ``-0.5 <= v < height - 0.5``.
- A point is *valid* when its coordinates are finite, ``min_depth_m <= z <= max_depth_m`` (so points
  behind the camera, at zero depth or NaN are invalid), its direction lies within the camera model's
  valid radius (below) and it lands inside the image.
- **Valid radius (no ghost points).**  Polynomial distortion folds back: beyond some angle off the
  optical axis the distorted radius shrinks again (KITTI's plumb_bob, ``k1 = -0.37``, folds at
  ``r = 1.21``, 50 degrees off axis, and never reaches its image corners), so points the camera cannot
  see land inside the image ("ghost" points; ``cv2.projectPoints`` puts them there too).  Every
  projector keeps a point only when its undistorted normalised radius ``r = sqrt((x/z)^2 + (y/z)^2)``
  (the tangent of its angle off the axis, computed in float64 as the kernels do) satisfies
  ``r^2 <= max_radius^2``, where ``max_radius = min(monotonic radius, field-of-view radius)`` is
  computed once per camera (:func:`edgefuse.rig.camera.valid_radius`):

  * the *monotonic radius* is the first positive root of ``d r_d / d r`` of the radial map (plumb_bob
    and rational_polynomial: ``r_d = r (1 + k1 r^2 + k2 r^4 + k3 r^6) / (1 + k4 r^2 + k5 r^4 + k6 r^6)``,
    or the first pole of its denominator; equidistant: ``theta_d(theta)`` with ``theta = atan r``),
    bisected to adjacent float64 values and rounded down, so the radial map is strictly increasing up
    to every kept radius (``inf`` when it never folds, e.g. pinhole);
  * the *field-of-view radius* is the first radius at which a lower bound of the distorted radius (the
    radial map minus ``3 sqrt(p1^2 + p2^2) r^2``, the most the tangential terms can move a point)
    exceeds the image's farthest corner, the image grown by half a pixel per side.  The whole circle
    just beyond it lands outside the image, so the field of view (the directions around the optical
    axis that the model maps into the image) lies inside it; a point beyond it reaches the image only
    by folding back (e.g. through the tangential terms, which dominate far off axis when the radial
    map itself never folds).

  The rule never drops a point of the monotonic region that lands in the image from within the field
  of view.  Without tangential terms (pinhole, equidistant, ``p1 = p2 = 0``) the distortion is
  one-to-one on the monotonic region and the field-of-view radius drops only points that land
  outside the image anyway, so the kept points are exactly "inside the monotonic region and inside
  the image".  Every kernel applies it (one- and two-pass, parallel, the vectorised pinhole pair), so
  it holds in :class:`MultiCameraProjector` and in painting (which paints the points a projection
  marks valid) too.
- Z-buffer: the nearest valid point wins a pixel (compared in float64), ties go to the lowest point
  index; parallel and serial runs give identical results.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError, EdgefuseError, InputDataError, ParameterError
from edgefuse.fusion import _kernels
from edgefuse.fusion._models import EQUIDISTANT, MODEL_NAMES, N_COEFFS, PINHOLE, PLUMB_BOB, RATIONAL
from edgefuse.fusion._parallel import ParallelChooser, run_parallel

__all__ = [
    "EQUIDISTANT",
    "PINHOLE",
    "PLUMB_BOB",
    "RATIONAL",
    "CameraParamError",
    "MultiCameraProjector",
    "MultiProjectionResult",
    "ProjectionResult",
    "Projector",
    "project_to_depth",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

#: Below this many points a projector with ``threads > 1`` still runs the serial kernel: starting the
#: thread pool costs more than it saves.
PARALLEL_MIN_POINTS = 50_000
#: Smallest number of points one thread takes at a time in the parallel kernel.
PARALLEL_CHUNK = 4096
#: From this many points the serial path times its two kernel variants (one pass with early exits,
#: fastest on scan-ordered clouds; two passes, fastest on randomly ordered ones) and keeps the
#: faster; below it the one-pass kernel always runs.  Both give identical results.
TWO_PASS_MIN_POINTS = 10_000


class StaleResultError(EdgefuseError, RuntimeError):
    """A lazily computed :class:`ProjectionResult` was read after its projector moved on (also a ``RuntimeError``)."""


class CameraNameError(CalibrationError, KeyError):
    """No camera of that name in a multi-camera result (also a ``KeyError``, as for a mapping)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return CalibrationError.__str__(self)


class CameraParamError(CalibrationError, ValueError):
    """Camera intrinsics, distortion, image size or extrinsic transform are invalid.

    A :class:`~edgefuse.errors.CalibrationError` that is also a :class:`ValueError`; ``field`` names
    the offending parameter (``"K"``, ``"D"``, ``"T_cam_from_lidar"``, ``"model_id"`` …).
    """

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class _PathChooser:
    """Pick the faster of two interchangeable serial kernel variants by measured time per point.

    Used for the one-pass / two-pass choice of the serial projection kernel (neither is a baseline:
    which is faster depends on the cloud's order).  Both give identical results, so switching is
    free.  Each variant keeps its last ``window`` timings; until both have ``min_samples`` they
    alternate, then the faster median wins and the other is re-measured once every ``probe_every``
    calls.  Serial versus parallel is decided by :class:`edgefuse.fusion._parallel.ParallelChooser`
    instead, which starts serial and only adopts the parallel kernel once it has proved faster.
    """

    def __init__(self, window: int = 9, min_samples: int = 3, probe_every: int = 32) -> None:
        self._times: tuple[deque[float], deque[float]] = (deque(maxlen=window), deque(maxlen=window))
        self._min_samples = min_samples
        self._probe_every = probe_every
        self._calls = 0

    def pick(self) -> bool:
        """Return True to run the parallel kernel for this call."""
        self._calls += 1
        serial, parallel = self._times
        if len(serial) < self._min_samples or len(parallel) < self._min_samples:
            return len(parallel) < len(serial)
        faster_parallel = float(np.median(parallel)) < float(np.median(serial))
        if self._calls % self._probe_every == 0:
            return not faster_parallel
        return faster_parallel

    def record(self, parallel: bool, seconds_per_point: float) -> None:
        """Store the measured time of one call of the path just run."""
        self._times[int(parallel)].append(seconds_per_point)

    @property
    def prefers_parallel(self) -> bool | None:
        """Current preference, or None while still measuring."""
        serial, parallel = self._times
        if len(serial) < self._min_samples or len(parallel) < self._min_samples:
            return None
        return float(np.median(parallel)) < float(np.median(serial))


class _KernelCamera(Protocol):
    """What :meth:`Projector.from_camera` needs from a camera (``edgefuse.rig.camera``)."""

    def kernel_params(self) -> tuple[int, Any, Any]: ...


class ProjectionResult:
    """Output of :meth:`Projector.project`.

    Unless produced with ``copy=True`` the arrays are read-only views into buffers owned by the
    :class:`Projector` and are overwritten by its next :meth:`~Projector.project` call; call
    :meth:`copy` to keep them.

    The per-point arrays ``uv`` and ``valid`` of a pinhole projection are computed on first access
    (the z-buffer does not need them, and computing them costs about as much again), from the cloud
    passed to :meth:`Projector.project`: access them before the projector's next call and before
    changing that cloud in place.  Accessing them after the projector's next call raises
    ``RuntimeError`` (a stale result); ``copy=True`` or :meth:`copy` computes them at once.

    Attributes:
        depth: (H, W) float32 sparse depth image in metres (camera ``z``); 0 where no point landed.
        index: (H, W) int32 index of the point that won each pixel; -1 where none did.
        uv: (N, 2) float32 pixel coordinates (u = column, v = row, pixel centres at integers);
            NaN for invalid points.
        valid: (N,) bool, True for points that are finite, within the depth range and the camera's valid
            radius, and inside the image.
        n_valid: number of True entries in ``valid`` (points, not pixels: occluded points count).
    """

    __slots__ = ("_lazy", "_uv", "_valid", "depth", "index", "n_valid")

    def __init__(
        self,
        depth: F32,
        index: I32,
        uv: F32 | None,
        valid: BoolArray | None,
        n_valid: int,
        *,
        lazy: Callable[[], tuple[F32, BoolArray]] | None = None,
    ) -> None:
        if (uv is None or valid is None) and lazy is None:
            raise ParameterError("uv and valid are required unless a lazy source is given")
        self.depth = depth
        self.index = index
        self.n_valid = n_valid
        self._uv = uv
        self._valid = valid
        self._lazy = lazy

    def _per_point(self) -> tuple[F32, BoolArray]:
        if self._uv is None or self._valid is None:
            assert self._lazy is not None
            self._uv, self._valid = self._lazy()
            self._lazy = None
        return self._uv, self._valid

    @property
    def uv(self) -> F32:
        """(N, 2) float32 pixel coordinates; NaN for invalid points."""
        return self._per_point()[0]

    @property
    def valid(self) -> BoolArray:
        """(N,) bool: finite, within the depth range and the valid radius, and inside the image."""
        return self._per_point()[1]

    def copy(self) -> ProjectionResult:
        """Return a result owning writable copies of all arrays."""
        uv, valid = self._per_point()
        return ProjectionResult(self.depth.copy(), self.index.copy(), uv.copy(), valid.copy(), self.n_valid)

    @property
    def n_pixels(self) -> int:
        """Number of pixels with a depth (z-buffer winners)."""
        return int(np.count_nonzero(self.index >= 0))

    def __repr__(self) -> str:
        return (f"ProjectionResult(depth={self.depth.shape}, n_valid={self.n_valid}, "
                f"n_pixels={self.n_pixels})")


def _as_points(xyz: Any) -> npt.NDArray[np.floating[Any]]:
    """Check an (N, 3) float32/float64 cloud, making it C-contiguous if needed (the only copy made)."""
    if not isinstance(xyz, np.ndarray):
        raise InputDataError(f"xyz must be a numpy array of shape (N, 3), got {type(xyz).__name__}")
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InputDataError(f"xyz must have shape (N, 3), got {xyz.shape}")
    if xyz.dtype.kind != "f" or xyz.dtype.itemsize not in (4, 8):
        raise InputDataError(
            f"xyz must be float32 or float64, got {xyz.dtype}; "
            "convert explicitly, e.g. xyz.astype(np.float32)"
        )
    if not xyz.dtype.isnative:
        xyz = xyz.astype(xyz.dtype.newbyteorder("="))
    return np.ascontiguousarray(xyz)


def _check_camera(model_id: Any, K: Any, D: Any, width: Any, height: Any) -> tuple[int, F64, F64, int, int]:
    """Validate camera parameters; return ``(model, intr (5,) [fx, fy, skew, cx, cy], D (8,), w, h)``."""
    is_int = isinstance(model_id, int | np.integer) and not isinstance(model_id, bool)
    if not is_int or int(model_id) not in N_COEFFS:
        raise CameraParamError(f"unknown camera model {model_id!r}; expected one of {MODEL_NAMES}",
                               field="model_id")
    model = int(model_id)
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) <= 0:
            raise CameraParamError(f"must be a positive integer, got {value!r}", field=name)
    w, h = int(width), int(height)
    if w * h >= 2**31 - 1:
        raise CameraParamError(f"image {w}x{h} has too many pixels for int32 indices", field="width")
    K_arr = np.asarray(K, dtype=np.float64)
    if K_arr.shape != (3, 3):
        raise CameraParamError(f"must be 3x3, got shape {K_arr.shape}", field="K")
    if not np.all(np.isfinite(K_arr)):
        raise CameraParamError("contains NaN or inf", field="K")
    if K_arr[1, 0] != 0 or K_arr[2, 0] != 0 or K_arr[2, 1] != 0 or K_arr[2, 2] != 1:
        raise CameraParamError(f"must be upper triangular with K[2,2] == 1, got {K_arr.tolist()}", field="K")
    if K_arr[0, 0] <= 0 or K_arr[1, 1] <= 0:
        raise CameraParamError(f"focal lengths must be positive, got fx={K_arr[0, 0]}, fy={K_arr[1, 1]}",
                               field="K")
    D_arr = np.asarray(D if D is not None else (), dtype=np.float64).reshape(-1)
    if D_arr.size > 8:
        raise CameraParamError(f"at most 8 coefficients, got {D_arr.size}", field="D")
    if not np.all(np.isfinite(D_arr)):
        raise CameraParamError("contains NaN or inf", field="D")
    D8 = np.zeros(8, dtype=np.float64)
    D8[: D_arr.size] = D_arr
    used = N_COEFFS[model]
    if np.any(D8[used:] != 0):
        raise CameraParamError(
            f"model {MODEL_NAMES[model]} uses {used} coefficient(s) but D[{used}:] is not zero: "
            f"{D8.tolist()}",
            field="D",
        )
    intr = np.array([K_arr[0, 0], K_arr[1, 1], K_arr[0, 1], K_arr[0, 2], K_arr[1, 2]], dtype=np.float64)
    return model, intr, D8, w, h


def _check_transform(T: Any, tol: float) -> tuple[F64, F64]:
    """Validate a rigid (4, 4) transform; return C-contiguous ``R`` (3, 3) and ``t`` (3,)."""
    T_arr = np.asarray(T, dtype=np.float64)
    field = "T_cam_from_lidar"
    if T_arr.shape != (4, 4):
        raise CameraParamError(f"must be 4x4, got shape {T_arr.shape}", field=field)
    if not np.all(np.isfinite(T_arr)):
        raise CameraParamError("contains NaN or inf", field=field)
    if not np.allclose(T_arr[3], [0.0, 0.0, 0.0, 1.0], rtol=0.0, atol=1e-12):
        raise CameraParamError(f"last row must be [0, 0, 0, 1], got {T_arr[3].tolist()}", field=field)
    R = np.ascontiguousarray(T_arr[:3, :3])
    error = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if error > tol or np.linalg.det(R) <= 0:
        raise CameraParamError(
            f"rotation is not orthonormal (max |R^T R - I| = {error:.3g} > {tol:g}, "
            f"det = {np.linalg.det(R):.6g})",
            field=field,
        )
    return R, np.ascontiguousarray(T_arr[:3, 3])


class Projector:
    """Reusable, preallocated projector of point clouds into one camera.

    Construct once per camera/sensor pair, call :meth:`warmup` at stage start, then :meth:`project`
    per message.  Buffers are sized for ``max_points``; a larger cloud grows them once to its size
    (the only allocation outside construction), smaller clouds use the leading part.

    Args:
        model_id: camera model id (``PINHOLE``, ``PLUMB_BOB``, ``RATIONAL``, ``EQUIDISTANT``).
        K: (3, 3) intrinsics ``[[fx, skew, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
        D: distortion coefficients, up to 8, zero-padded (OpenCV order for the model).
        width, height: image size in pixels.
        T_cam_from_lidar: (4, 4) rigid transform from the point-cloud frame to the camera optical frame.
        min_depth_m, max_depth_m: valid depth range (camera ``z``, metres); ``min_depth_m > 0``.
        max_points: initial buffer capacity in points.
        threads: 1 runs the serial kernel.  ``> 1`` allows the per-point projection to run on up to
            that many Numba threads (clouds of at least :data:`PARALLEL_MIN_POINTS`); the z-buffer
            pass stays serial so results are identical either way.  Because a parallel kernel can be
            slower than the serial one when other processes hold the cores, the projector starts on
            the serial kernel and adopts the parallel one only after it has measured faster on live
            calls, falling back at once when it stops being faster
            (:class:`edgefuse.fusion._parallel.ParallelChooser`): ``threads > 1`` is never
            measurably slower than ``threads=1``.
            Pinhole cameras (and zero-distortion PLUMB_BOB/RATIONAL) always run their vectorised
            kernels on one thread: at about 0.4 ms per 120k points a parallel region's start and join
            cost more than they save on two cores, and far more when another process holds a core.
        rotation_tol: allowed ``max |R^T R - I|`` of the transform's rotation.
        max_radius: an extra limit on the undistorted normalised radius ``sqrt((x/z)^2 + (y/z)^2)``
            (the tangent of the angle off the optical axis) of a valid point.  The camera model's own
            valid radius (see the module docs: where the distortion folds back, and the field of
            view) always applies; ``None`` or ``inf`` adds nothing to it.  The radius in use is the
            attribute ``max_radius``, the model's own ``valid_radius``.
    """

    def __init__(  # noqa: PLR0917
        self,
        model_id: int,
        K: npt.ArrayLike,
        D: npt.ArrayLike | None,
        width: int,
        height: int,
        T_cam_from_lidar: npt.ArrayLike,
        *,
        min_depth_m: float = 0.1,
        max_depth_m: float = 200.0,
        max_points: int = 200_000,
        threads: int = 1,
        rotation_tol: float = 1e-5,
        max_radius: float | None = None,
    ) -> None:
        self.model_id, self._intr, self._D, self.width, self.height = _check_camera(
            model_id, K, D, width, height
        )
        self._R, self._t = _check_transform(T_cam_from_lidar, rotation_tol)
        # Kernels take the parameters as float tuples (no reference counting in their loops).
        self._Rt = tuple(float(x) for x in np.hstack([self._R, self._t[:, None]]).reshape(-1))
        self._intr_t = tuple(float(x) for x in self._intr)
        self._D_t = tuple(float(x) for x in self._D)
        if not (np.isfinite(min_depth_m) and np.isfinite(max_depth_m) and 0 < min_depth_m < max_depth_m):
            raise ParameterError(
                "depth range must satisfy 0 < min_depth_m < max_depth_m (finite), "
                f"got {min_depth_m!r}, {max_depth_m!r}"
            )
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 0:
            raise ParameterError(f"max_points must be a non-negative integer, got {max_points!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ParameterError(f"threads must be a positive integer, got {threads!r}")
        if max_radius is not None and not (max_radius > 0):
            raise ParameterError(f"max_radius must be > 0 (None or inf for no extra limit), got {max_radius!r}")
        # Imported here: edgefuse.rig's package import (rig files, importers) is not needed otherwise.
        from edgefuse.rig.camera import valid_radius

        #: The camera model's valid radius (monotonic and field-of-view limits; module docs).
        self.valid_radius = valid_radius(self.model_id, self.K, self._D, self.width, self.height)
        #: The radius in use: ``valid_radius``, or the ``max_radius`` argument where that is smaller.
        self.max_radius = min(self.valid_radius, float(max_radius) if max_radius is not None else np.inf)
        self._max_r2 = self.max_radius * self.max_radius
        self.min_depth_m = float(min_depth_m)
        self.max_depth_m = float(max_depth_m)
        self.threads = threads
        # Pinhole (and PLUMB_BOB/RATIONAL with all-zero distortion, which compute exactly the same
        # pixels) takes the vectorised kernel pair; the other models the general kernels.
        self._pinhole = self.model_id == PINHOLE or (self.model_id in (PLUMB_BOB, RATIONAL)
                                                     and not np.any(self._D))
        self._generation = 0
        self._chooser = ParallelChooser(threads)
        self._variant_chooser = _PathChooser()  # "parallel" here means the two-pass serial kernel
        n_pixels = self.width * self.height
        self._depth = np.zeros(n_pixels, dtype=np.float32)
        self._index = np.full(n_pixels, -1, dtype=np.int32)
        self._touched = np.zeros(n_pixels + 1, dtype=np.int32)
        self._n_touched = 0
        # Packed z-buffer of the pinhole path, all empty between calls (the kernel leaves it so).
        self._zbuf = np.full(n_pixels if self._pinhole else 0, _kernels._ZB_EMPTY, dtype=np.uint64)
        self._allocate(max_points)
        self._depth_view = self._readonly(self._depth.reshape(self.height, self.width))
        self._index_view = self._readonly(self._index.reshape(self.height, self.width))

    @classmethod
    def from_camera(
        cls,
        camera: _KernelCamera,
        T_cam_from_lidar: npt.ArrayLike,
        *,
        width: int | None = None,
        height: int | None = None,
        **kwargs: Any,
    ) -> Projector:
        """Build from a camera exposing ``kernel_params() -> (model_id, K, D)`` (``edgefuse.rig``).

        ``width``/``height`` default to the camera's ``width``/``height`` attributes.
        """
        model_id, K, D = camera.kernel_params()
        w = width if width is not None else getattr(camera, "width", None)
        h = height if height is not None else getattr(camera, "height", None)
        if w is None or h is None:
            raise CameraParamError("camera has no width/height; pass them explicitly", field="width")
        return cls(model_id, K, D, int(w), int(h), T_cam_from_lidar, **kwargs)

    @staticmethod
    def _readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        view = array.view()
        view.flags.writeable = False
        return view

    def _allocate(self, capacity: int) -> None:
        self.capacity = capacity
        self._uv = np.empty((capacity, 2), dtype=np.float32)
        self._pix = np.empty(capacity, dtype=np.int32)
        self._zdepth = np.empty(capacity, dtype=np.float64)
        self._valid = np.empty(capacity, dtype=np.bool_)
        self._scratch = np.empty(capacity, dtype=np.int32)
        self._cand = np.empty(capacity, dtype=np.int32)
        self._colors = np.empty((capacity, 3), dtype=np.uint8)
        self._zf = np.empty(capacity, dtype=np.float32)
        self._zbits = self._zf.view(np.uint32)
        self._mask = np.empty(capacity, dtype=np.bool_)        # float32 pinhole screen
        self._gathered = np.empty(3 * capacity, dtype=np.float32)

    @property
    def K(self) -> F64:  # noqa: N802 (the camera matrix is K everywhere)
        """(3, 3) intrinsics in use."""
        fx, fy, skew, cx, cy = self._intr
        return np.array([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    @property
    def D(self) -> F64:  # noqa: N802
        """(8,) zero-padded distortion coefficients in use."""
        return self._D.copy()

    @property
    def T_cam_from_lidar(self) -> F64:  # noqa: N802
        """(4, 4) transform in use."""
        T = np.eye(4)
        T[:3, :3] = self._R
        T[:3, 3] = self._t
        return T

    def warmup(self) -> float:
        """Compile (or load from cache) every kernel for float32 and float64 clouds; returns seconds.

        Call at stage start so the first message never pays for JIT.  Leaves no visible state behind.
        """
        start = time.perf_counter()
        image = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        for dtype, writeable in ((np.float32, True), (np.float64, True), (np.float32, False), (np.float64, False)):
            points = np.zeros((1, 3), dtype=dtype)
            points.setflags(write=writeable)  # clouds viewed from message buffers are read-only
            args = (points, self._Rt, self.model_id, self._intr_t, self._D_t, self.width, self.height,
                    self.min_depth_m, self.max_depth_m, self._max_r2, self._uv[:1], self._pix[:1],
                    self._zdepth[:1], self._valid[:1])
            _kernels._project_points(*args)
            _kernels._project_points_2pass(*args, self._cand[:1])
            if self.threads > 1:
                _kernels._project_points_parallel(*args, 1)
            if self._pinhole:
                flat = points.reshape(-1)
                pinhole = (flat, 1, self._Rt, self._intr_t, self.width, self.height, self.min_depth_m,
                           self.max_depth_m, self._max_r2, self._pix[:1], self._zf[:1])
                _kernels._project_pinhole(*pinhole)
                _kernels._project_pinhole_uv(*pinhole, self._uv[:1].reshape(-1), self._valid[:1])
            result = self.project(points)
            result.uv  # noqa: B018 (computes the lazy per-point outputs: compiles their kernel)
            # Images viewed zero-copy from a message buffer are read-only: Numba compiles a separate
            # specialisation for those, so warm both or the first raw Image pays for JIT.
            readonly = image.copy()
            readonly.setflags(write=False)
            for img in (image, readonly):
                for bilinear in (False, True):
                    self.colorize(img, result, bilinear=bilinear)
        self.project(np.zeros((0, 3), dtype=np.float32))
        return time.perf_counter() - start

    def project(self, xyz: npt.NDArray[np.floating[Any]], *, copy: bool = False,
                per_point: bool = False) -> ProjectionResult:
        """Project an (N, 3) float32/float64 cloud (metres, LiDAR frame) into the camera.

        A non-contiguous or non-native-endian input is copied once; other dtypes raise ``TypeError``
        and other shapes ``ValueError``.  NaN/inf points, points behind the camera or outside
        ``[min_depth_m, max_depth_m]``, points beyond the valid radius (module docs) and points outside
        the image are invalid; they are never
        written to the depth image.  An empty cloud gives an all-zero depth image.

        Returns a :class:`ProjectionResult` whose arrays are read-only views valid until the next
        call, or independent copies when ``copy=True``.  For pinhole cameras ``uv``/``valid`` are
        computed when first read; ``per_point=True`` computes them in the same pass instead (cheaper
        when the caller will read them anyway: about +0.07 ms rather than +0.3 ms per 120k points).
        """
        points = _as_points(xyz)
        n = points.shape[0]
        if n > self.capacity:
            self._allocate(n)
        self._generation += 1
        if self._pinhole:
            return self._project_pinhole(points, copy, per_point)
        uv, pix, zdepth, valid = self._uv[:n], self._pix[:n], self._zdepth[:n], self._valid[:n]
        args = (points, self._Rt, self.model_id, self._intr_t, self._D_t, self.width, self.height,
                self.min_depth_m, self.max_depth_m, self._max_r2, uv, pix, zdepth, valid)
        cand = self._cand[:n]
        if self.threads > 1 and n >= PARALLEL_MIN_POINTS:
            parallel = self._chooser.pick()
            start = time.perf_counter()
            if parallel:
                threads = self._chooser.threads
                run_parallel(threads, _kernels._project_points_parallel, *args,
                             max(PARALLEL_CHUNK, -(-n // (8 * threads))))
            else:
                self._project_serial(args, cand)
            self._chooser.record(parallel, (time.perf_counter() - start) / n)
        else:
            self._project_serial(args, cand)
        n_valid, self._n_touched = _kernels._zbuffer_points(
            pix, zdepth, self._depth, self._index, self._touched, self._n_touched, self._scratch
        )
        result = ProjectionResult(self._depth_view, self._index_view, self._readonly(uv),
                                  self._readonly(valid), int(n_valid))
        return result.copy() if copy else result

    def _project_pinhole(self, points: npt.NDArray[np.floating[Any]], copy: bool,
                         per_point: bool) -> ProjectionResult:
        """Pinhole path: vectorised projection + packed z-buffer; ``uv``/``valid`` computed lazily.

        A float32 cloud is first screened in float32 (:func:`_kernels._screen_pinhole_f32`, a superset of
        the valid points); only the candidates (about a sixth of a KITTI sweep) get the exact float64
        projection, so the result is the same as projecting every point: 0.30 instead of 0.42 ms on
        KITTI 000001 (bench/bench_projection.py).

        Always one thread: the two kernels take about 0.4 ms for 120k points, less than a parallel
        region's start and join cost on a loaded machine, so ``threads`` is not used here.
        """
        n = points.shape[0]
        flat = points.reshape(-1)
        if points.dtype == np.float32 and not per_point:
            # float32 screen of every point, then the exact float64 pass on the candidates only
            _kernels._screen_pinhole_f32(flat, n, self._Rt, self._intr_t, self.width, self.height,
                                         self.min_depth_m, self.max_depth_m, self._mask)
            nc = _kernels._gather_candidates(self._mask, n, flat, self._cand, self._gathered)
            _kernels._project_pinhole(self._gathered, nc, self._Rt, self._intr_t, self.width, self.height,
                                      self.min_depth_m, self.max_depth_m, self._max_r2, self._pix, self._zf)
            n_valid, self._n_touched = _kernels._zbuffer_scatter(
                flat, self._Rt, self._cand, nc, self._pix, self._zbits, False, self._zbuf, self._depth,
                self._index, self._touched, self._n_touched)
        else:
            params = (flat, n, self._Rt, self._intr_t, self.width, self.height, self.min_depth_m,
                      self.max_depth_m, self._max_r2, self._pix, self._zf)
            if per_point:
                _kernels._project_pinhole_uv(*params, self._uv[:n].reshape(-1), self._valid[:n])
            else:
                _kernels._project_pinhole(*params)
            n_valid, self._n_touched = _kernels._zbuffer_pinhole(
                flat, self._Rt, self._pix, self._zbits, n, self._zbuf, self._depth, self._index, self._touched,
                self._n_touched, self._cand)
        generation = self._generation

        def compute_per_point() -> tuple[F32, BoolArray]:
            if generation != self._generation:
                raise StaleResultError(
                    "this ProjectionResult's uv/valid were not computed before the projector's next "
                    "project() call; read them first, or project with copy=True")
            uv, valid = self._uv[:n], self._valid[:n]
            _kernels._project_pinhole_uv(flat, n, self._Rt, self._intr_t, self.width, self.height,
                                         self.min_depth_m, self.max_depth_m, self._max_r2, self._pix,
                                         self._zf, uv.reshape(-1), valid)
            return self._readonly(uv), self._readonly(valid)

        if per_point:
            result = ProjectionResult(self._depth_view, self._index_view, self._readonly(self._uv[:n]),
                                      self._readonly(self._valid[:n]), int(n_valid))
        else:
            result = ProjectionResult(self._depth_view, self._index_view, None, None, int(n_valid),
                                      lazy=compute_per_point)
        return result.copy() if copy else result

    def _project_serial(self, args: tuple[Any, ...], cand: I32) -> None:
        """Run the faster serial kernel variant for this cloud (identical results either way)."""
        n = cand.shape[0]
        if n < TWO_PASS_MIN_POINTS:
            _kernels._project_points(*args)
            return
        two_pass = self._variant_chooser.pick()
        start = time.perf_counter()
        if two_pass:
            _kernels._project_points_2pass(*args, cand)  # type: ignore[call-arg]
        else:
            _kernels._project_points(*args)
        self._variant_chooser.record(two_pass, (time.perf_counter() - start) / n)

    def colorize(
        self,
        image: npt.NDArray[np.uint8],
        result: ProjectionResult,
        *,
        bilinear: bool = False,
        copy: bool = False,
    ) -> U8:
        """Colour each point of ``result`` from ``image`` (H, W, 3) uint8, any channel order (kept).

        Returns (N, 3) uint8; 0 for invalid points.  Nearest samples the point's pixel
        ``(floor(v + 0.5), floor(u + 0.5))``; ``bilinear=True`` interpolates between the four
        surrounding pixel centres (edges clamped) and rounds half up.  Occluded points are coloured
        too (use ``result.index`` to keep only z-buffer winners).  The returned array is a read-only
        view into a projector buffer, valid until the next ``colorize`` call, unless ``copy=True``.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise InputDataError(f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image))}")
        if image.shape != (self.height, self.width, 3):
            raise InputDataError(f"image must have shape ({self.height}, {self.width}, 3), got {image.shape}")
        uv, valid = result.uv, result.valid
        if uv.ndim != 2 or uv.shape[1] != 2 or uv.dtype != np.float32 or valid.shape != (uv.shape[0],) \
                or valid.dtype != np.bool_:
            raise InputDataError("result is not a ProjectionResult from this projector (uv/valid shapes)")
        n = uv.shape[0]
        if n > self._colors.shape[0]:
            self._colors = np.empty((n, 3), dtype=np.uint8)
        out = self._colors[:n]
        _kernels._sample_colors(np.ascontiguousarray(image), np.ascontiguousarray(uv),
                                np.ascontiguousarray(valid), bool(bilinear), out)
        return out.copy() if copy else self._readonly(out)


def project_to_depth(  # noqa: PLR0917 (positional camera parameters are the contract)
    xyz: npt.NDArray[np.floating[Any]],
    model_id: int,
    K: npt.ArrayLike,
    D: npt.ArrayLike | None,
    width: int,
    height: int,
    T_cam_from_lidar: npt.ArrayLike,
    *,
    min_depth_m: float = 0.1,
    max_depth_m: float = 200.0,
    max_radius: float | None = None,
    threads: int = 1,
) -> ProjectionResult:
    """One-shot projection (builds a :class:`Projector` sized for ``xyz``; see its docs).

    Convenient for scripts and tests; a pipeline stage should keep one :class:`Projector` instead.
    The returned arrays are owned by the result (nothing else refers to the buffers).
    """
    points = _as_points(xyz)
    projector = Projector(model_id, K, D, width, height, T_cam_from_lidar, min_depth_m=min_depth_m,
                          max_depth_m=max_depth_m, max_points=points.shape[0], threads=threads,
                          max_radius=max_radius)
    return projector.project(points)


@dataclass(frozen=True, slots=True)
class MultiProjectionResult:
    """Output of :meth:`MultiCameraProjector.project`.

    Unless produced with ``copy=True`` the arrays are read-only views into buffers owned by the
    projector and overwritten by its next call.

    Attributes:
        names: camera names, in camera-id order.
        results: one :class:`ProjectionResult` per camera (depth image, index map, uv, valid),
            exactly what that camera's single :class:`Projector` gives.
        camera: (N,) int32 camera id each point is assigned to: the lowest id among the cameras in
            which the point is valid (in view, occluded or not); -1 when no camera sees it.
        uv: (N, 2) float32 pixel coordinates in the assigned camera; NaN where ``camera == -1``.
        n_assigned: number of points with ``camera >= 0``.
    """

    names: tuple[str, ...]
    results: tuple[ProjectionResult, ...]
    camera: I32
    uv: F32
    n_assigned: int

    def copy(self) -> MultiProjectionResult:
        """Return a result owning writable copies of all arrays."""
        return MultiProjectionResult(self.names, tuple(r.copy() for r in self.results), self.camera.copy(),
                                     self.uv.copy(), self.n_assigned)

    def __getitem__(self, name: str) -> ProjectionResult:
        """The result of the camera called ``name``."""
        try:
            return self.results[self.names.index(name)]
        except ValueError:
            raise CameraNameError(f"no camera {name!r}; cameras: {', '.join(self.names)}") from None


class MultiCameraProjector:
    """Project one cloud into several cameras in one call (e.g. nuScenes' six).

    Holds one :class:`Projector` per camera (each preallocated, sharing the same options) plus the
    per-point assignment buffers.  :meth:`project` runs every camera's kernels on the same validated
    cloud (validated and made contiguous once) and then assigns each point to the lowest-numbered
    camera that sees it.  Per-camera results are identical to separate single-camera projections.

    Args:
        projectors: one :class:`Projector` per camera, in camera-id order.
        names: camera names (default ``cam0``, ``cam1`` …); must be unique.
    """

    def __init__(self, projectors: list[Projector] | tuple[Projector, ...],
                 names: list[str] | tuple[str, ...] | None = None) -> None:
        self.projectors = tuple(projectors)
        if not self.projectors or not all(isinstance(p, Projector) for p in self.projectors):
            raise ParameterError("projectors must be a non-empty sequence of Projector")
        if len(self.projectors) > 2**15:
            raise ParameterError(f"too many cameras: {len(self.projectors)}")
        names_t = tuple(names) if names is not None else tuple(f"cam{i}" for i in range(len(self.projectors)))
        if len(names_t) != len(self.projectors) or len(set(names_t)) != len(names_t):
            raise ParameterError(f"names must be {len(self.projectors)} unique strings, got {names_t!r}")
        self.names = names_t
        capacity = max(p.capacity for p in self.projectors)
        self._allocate(capacity)

    @classmethod
    def from_cameras(
        cls,
        cameras: list[_KernelCamera] | tuple[_KernelCamera, ...],
        transforms: list[npt.ArrayLike] | tuple[npt.ArrayLike, ...],
        names: list[str] | tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> MultiCameraProjector:
        """Build from cameras with ``kernel_params()``/``width``/``height`` (``edgefuse.rig``) and one
        ``T_cam_from_lidar`` (4, 4) per camera; ``kwargs`` go to every :class:`Projector`."""
        if len(cameras) != len(transforms):
            raise ParameterError(f"{len(cameras)} cameras but {len(transforms)} transforms")
        return cls([Projector.from_camera(c, T, **kwargs) for c, T in zip(cameras, transforms, strict=True)],
                   names)

    @classmethod
    def from_rig(cls, rig: Any, camera_names: list[str] | tuple[str, ...], cloud_frame: str,
                 **kwargs: Any) -> MultiCameraProjector:
        """Build from a :class:`edgefuse.rig.Rig`: cameras by name, transforms from ``cloud_frame``.

        Each camera's valid radius applies as in :class:`Projector`.  Raises
        :class:`~edgefuse.errors.CalibrationError` for an unknown camera or a missing transform.
        """
        projectors = []
        for name in camera_names:
            camera = rig.camera(name)
            T = np.asarray(rig.transform(camera.frame_id, cloud_frame).matrix)
            projectors.append(Projector.from_camera(camera, T, **kwargs))
        return cls(projectors, list(camera_names))

    def _allocate(self, capacity: int) -> None:
        self.capacity = capacity
        self._camera = np.empty(capacity, dtype=np.int32)
        self._uv = np.empty((capacity, 2), dtype=np.float32)

    def warmup(self) -> float:
        """Compile (or load from cache) every kernel; returns seconds."""
        start = time.perf_counter()
        for projector in self.projectors:
            projector.warmup()
        self.project(np.zeros((1, 3), np.float32))
        self.project(np.zeros((1, 3), np.float64))
        self.project(np.zeros((0, 3), np.float32))
        return time.perf_counter() - start

    def project(self, xyz: npt.NDArray[np.floating[Any]], *, copy: bool = False) -> MultiProjectionResult:
        """Project an (N, 3) float32/float64 cloud into every camera (see :meth:`Projector.project`)."""
        points = _as_points(xyz)
        n = points.shape[0]
        if n > self.capacity:
            self._allocate(n)
        camera, uv = self._camera[:n], self._uv[:n]
        camera.fill(-1)
        uv.fill(np.nan)
        results = []
        n_assigned = 0
        for k, projector in enumerate(self.projectors):
            result = projector.project(points, per_point=True)
            n_assigned += int(_kernels._assign_camera(result.valid, result.uv, k, camera, uv))
            results.append(result)
        out = MultiProjectionResult(self.names, tuple(results), Projector._readonly(camera),
                                    Projector._readonly(uv), n_assigned)
        return out.copy() if copy else out
