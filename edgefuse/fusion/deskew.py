"""Deskew (motion compensation) of a LiDAR sweep from per-point times and the sensor's motion.

A spinning LiDAR takes its points over a sweep (≈ 100 ms) while the vehicle moves, so the cloud is
smeared and shows a seam where the sweep starts and ends.  :func:`deskew` moves every point to where
it would have been measured from the sensor pose at one *reference time*.

Conventions (the same in the kernels and in the test reference):

- Frames: points are in the LiDAR frame.  The motion is that of the IMU (body) frame; the rig's
  ``T_imu_from_lidar`` (4×4, metres) links them.  Without it the motion is taken to be the LiDAR's own
  (identity extrinsic).  The output is in the LiDAR frame **at the reference time**:
  ``p_ref = T_imu_from_lidar⁻¹ · T_ref⁻¹ · T(t_i) · T_imu_from_lidar · p_i`` with ``T(t)`` the body
  pose at time ``t`` in any fixed frame.
- Reference time: an int ``reference_time_ns``, or ``"start"`` / ``"end"`` / ``"mid"`` of the sweep
  (the earliest / latest / middle finite point time).  A pipeline usually passes the cloud's header
  stamp (which is the sweep start for Ouster and Velodyne drivers, the end for some others).
- Point times: an (N,) array of any integer or float dtype.  The absolute time of point ``i`` is
  ``time_origin_ns + point_time[i] * unit`` with ``unit`` one of ``"ns"``, ``"us"``, ``"ms"``, ``"s"``.
  Integer times are differenced in int64 (exact for absolute ns stamps).
- Motion models (:class:`Motion` is the common form: K segments of constant angular rate and
  constant acceleration, integrated exactly within each segment):

  * :class:`ConstantVelocity` — constant angular rate ``ω`` and linear velocity ``v`` (rad/s, m/s),
    both expressed in the body frame at ``stamp_ns`` (default: the reference time).  The pose at
    ``stamp + Δt`` relative to the pose at ``stamp`` is ``R = Exp(ω Δt)``, ``p = v Δt``
    (rotation and translation decoupled, the usual LiDAR-odometry model).
  * IMU-integrated (:func:`integrate_imu`): gyro samples (rad/s, IMU frame) interpolated at the
    window ends with :func:`edgefuse.sync.imu.imu_window`; between consecutive samples the rate is
    their mean and ``R_{k+1} = R_k Exp(ω_k Δt_k)``.  Optionally the accelerometer (specific force,
    m/s²) with a given initial velocity and gravity vector: ``a_k`` is the mean of ``R f + g`` at
    the two samples, ``p`` and ``v`` are integrated exactly for constant ``a_k``; without the
    accelerometer the velocity stays the given initial one (gyro rotation + constant velocity).
  * Per-point pose: the segment holding the point's time, ``R = R_k Exp(ω_k s)``,
    ``p = p_k + v_k s + a_k s² / 2`` with ``s = t - t_k`` (exact for the piecewise-constant model).

- Bad input and degraded cases (documented, bounded):

  * empty clouds give an empty result; NaN/inf coordinates stay NaN/inf (they are never used to
    move other points); a non-finite point *time* gives a NaN point, counted in
    :attr:`DeskewResult.n_nonfinite_time`;
  * points whose time lies outside the motion's window by more than ``max_extrapolation_ns`` are
    counted in :attr:`DeskewResult.n_outside` and, by the ``outside`` policy, extrapolated with the
    first/last segment (``"extrapolate"``), set to NaN (``"nan"``) or rejected with a
    :class:`DeskewError` (``"raise"``, the default);
  * wrong shapes, dtypes and lengths raise :class:`DeskewError`; IMU stamps that are not strictly
    increasing, or IMU samples that do not overlap the sweep, raise :class:`~edgefuse.errors.SyncError`
    (from :func:`~edgefuse.sync.imu.imu_window`) or :class:`DeskewError`.

:class:`Deskewer` preallocates its output, time, scratch, segment and IMU-integration tables and
compiles its kernels in :meth:`Deskewer.warmup`; in steady state its :meth:`Deskewer.deskew`
allocates no array, for :class:`ConstantVelocity`, :class:`Motion` and :class:`ImuBatch` motions
alike (it grows a buffer only when a sweep or an IMU batch is larger than any before, counted in
:attr:`Deskewer.reallocations`).  Point times of any dtype are first converted to float64 seconds
in a preallocated buffer, so the main kernel is compiled only per point dtype and memory layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError, SyncError
from edgefuse.fusion import _deskew_kernels as _k
from edgefuse.msgs.types import ImuBatch
from edgefuse.sync.imu import imu_window

__all__ = [
    "ConstantVelocity",
    "DeskewError",
    "DeskewResult",
    "Deskewer",
    "Motion",
    "deskew",
    "integrate_imu",
    "so3_exp",
]

F64 = npt.NDArray[np.float64]
TIME_UNITS_NS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
OUTSIDE_POLICIES = ("raise", "extrapolate", "nan")
ReferenceTime = int | Literal["start", "end", "mid"]
_CHUNK = 512  # points per chunk of the deskew kernel (its scratch stays in L1)


class DeskewError(MessageError, ValueError):
    """Deskew input is invalid (shape, dtype, missing times, times outside the motion window)."""


def so3_exp(rotvec: npt.ArrayLike) -> F64:
    """SO(3) exponential: the 3×3 rotation of the rotation vector ``rotvec`` (axis × angle, rad)."""
    w = np.asarray(rotvec, dtype=np.float64).reshape(3)
    th = float(np.linalg.norm(w))
    if th == 0.0:
        return np.eye(3)
    u = w / th
    K = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    return np.eye(3) + np.sin(th) * K + (1.0 - np.cos(th)) * (K @ K)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ConstantVelocity:
    """Constant body velocity: ``linear_mps`` (3,) m/s and ``angular_radps`` (3,) rad/s, expressed in
    the body (IMU, or LiDAR without extrinsic) frame at ``stamp_ns`` (None: at the reference time)."""

    linear_mps: tuple[float, float, float] | npt.ArrayLike
    angular_radps: tuple[float, float, float] | npt.ArrayLike
    stamp_ns: int | None = None


@dataclass(slots=True)
class Motion:
    """Body trajectory as K segments of constant angular rate and acceleration.

    ``origin_ns``: time 0 of the table; ``seg_t`` (K,) segment starts [s from origin] (increasing);
    ``R`` (K, 3, 3), ``p`` (K, 3), ``v`` (K, 3): pose and velocity at each segment start, in the body
    frame at the origin; ``w`` (K, 3) rad/s body rate, ``a`` (K, 3) m/s² acceleration (origin frame)
    during the segment; ``window_s``: the time span the table was built for (outside it the end
    segments are extrapolated).
    """

    origin_ns: int
    seg_t: F64
    R: F64
    p: F64
    v: F64
    w: F64
    a: F64
    window_s: tuple[float, float]

    @property
    def window_ns(self) -> tuple[int, int]:
        """The window as absolute [ns]."""
        return (self.origin_ns + round(self.window_s[0] * 1e9), self.origin_ns + round(self.window_s[1] * 1e9))

    @classmethod
    def constant_velocity(cls, cv: ConstantVelocity, origin_ns: int) -> Motion:
        """One unbounded segment starting at ``origin_ns`` (``cv.stamp_ns`` is ignored here)."""
        lin = _vec3(cv.linear_mps, "linear_mps")
        ang = _vec3(cv.angular_radps, "angular_radps")
        return cls(
            origin_ns=int(origin_ns),
            seg_t=np.zeros(1),
            R=np.eye(3)[None].copy(),
            p=np.zeros((1, 3)),
            v=lin[None].copy(),
            w=ang[None].copy(),
            a=np.zeros((1, 3)),
            window_s=(-np.inf, np.inf),
        )

    def segment_of(self, tau_s: float) -> int:
        """Index of the segment used for time ``tau_s`` [s from origin] (clamped to the ends)."""
        k = int(np.searchsorted(self.seg_t, tau_s, side="right")) - 1
        return min(max(k, 0), len(self.seg_t) - 1)

    def pose_at(self, t_ns: int) -> tuple[F64, F64]:
        """``(R (3, 3), p (3,))``: body pose at absolute ``t_ns`` in the origin body frame."""
        tau = (int(t_ns) - self.origin_ns) * 1e-9
        k = self.segment_of(tau)
        s = tau - float(self.seg_t[k])
        R = self.R[k] @ so3_exp(self.w[k] * s)
        p = self.p[k] + self.v[k] * s + 0.5 * self.a[k] * s * s
        return R, p


def _vec3(value: Any, name: str) -> F64:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise DeskewError(f"{name} must be 3 finite numbers, got {np.asarray(value).tolist()!r}")
    return arr


def integrate_imu(
    stamps_ns: npt.ArrayLike,
    gyro_radps: npt.ArrayLike,
    t0_ns: int,
    t1_ns: int,
    *,
    accel_mps2: npt.ArrayLike | None = None,
    initial_velocity_mps: npt.ArrayLike = (0.0, 0.0, 0.0),
    gravity_mps2: npt.ArrayLike | None = None,
) -> Motion:
    """Integrate IMU samples over ``[t0_ns, t1_ns]`` into a :class:`Motion` with origin ``t0_ns``.

    Args:
        stamps_ns: (M,) strictly increasing int stamps covering the window (no extrapolation).
        gyro_radps: (M, 3) angular velocity, IMU frame.
        accel_mps2: optional (M, 3) specific force (what an accelerometer reads: +g upwards at rest),
            IMU frame.  Without it the velocity stays ``initial_velocity_mps`` (in the frame at
            ``t0_ns``): gyro rotation plus a constant velocity, e.g. from odometry.
        initial_velocity_mps: (3,) velocity at ``t0_ns`` in the IMU frame at ``t0_ns``.
        gravity_mps2: (3,) gravity acceleration in the IMU frame at ``t0_ns`` (e.g. ``(0, 0, -9.81)``
            for a level IMU); required with ``accel_mps2``.

    Raises:
        SyncError: stamps not increasing or not covering the window (from ``imu_window``).
        DeskewError: bad shapes or non-finite samples.
    """
    gyro = np.asarray(gyro_radps, dtype=np.float64)
    stamps = np.asarray(stamps_ns)
    if gyro.ndim != 2 or gyro.shape[1] != 3 or gyro.shape[0] != stamps.shape[0]:
        raise DeskewError(f"gyro must be (M, 3) with M = {stamps.shape[0]} stamps, got {gyro.shape}")
    use_accel = accel_mps2 is not None
    if use_accel:
        acc = np.asarray(accel_mps2, dtype=np.float64)
        if acc.shape != gyro.shape:
            raise DeskewError(f"accel must have the gyro's shape {gyro.shape}, got {acc.shape}")
        if gravity_mps2 is None:
            raise DeskewError("integrating the accelerometer needs gravity_mps2 (IMU frame at t0)")
        g0 = _vec3(gravity_mps2, "gravity_mps2")
        values = np.concatenate([gyro, acc], axis=1)
    else:
        g0 = np.zeros(3)
        values = gyro
    v0 = _vec3(initial_velocity_mps, "initial_velocity_mps")
    if not np.all(np.isfinite(values)):
        raise DeskewError("IMU samples contain NaN or infinite values")
    win_t, win_v = imu_window(stamps, values, t0_ns, t1_ns)
    m = win_t.shape[0]
    dt_s = np.diff(win_t).astype(np.float64) * 1e-9
    g = np.ascontiguousarray(win_v[:, :3])
    f = np.ascontiguousarray(win_v[:, 3:6]) if use_accel else np.zeros((m, 3))
    R = np.empty((m, 3, 3))
    p = np.empty((m, 3))
    v = np.empty((m, 3))
    w = np.empty((m - 1, 3))
    a = np.empty((m - 1, 3))
    _k._integrate_imu(dt_s, g, f, use_accel, v0, g0, R, p, v, w, a)
    seg_t = (win_t[:-1] - win_t[0]).astype(np.float64) * 1e-9
    return Motion(
        origin_ns=int(win_t[0]),
        seg_t=seg_t,
        R=R[:-1],
        p=p[:-1],
        v=v[:-1],
        w=w,
        a=a,
        window_s=(0.0, float(win_t[-1] - win_t[0]) * 1e-9),
    )


@dataclass(slots=True)
class DeskewResult:
    """Result of one deskew.

    ``points`` (N, 3) in the LiDAR frame at ``reference_time_ns`` (a view of the deskewer's buffer,
    overwritten by the next call, unless ``out`` was given); ``n_outside``: points further than
    ``max_extrapolation_ns`` outside the motion window; ``n_nonfinite_time``: points with a NaN/inf
    time (output NaN); ``motion``: the motion table used (the caller's :class:`Motion`, or, for a
    :class:`ConstantVelocity` or :class:`ImuBatch`, a table owned by the deskewer and overwritten
    by its next call, like ``points``).
    """

    points: npt.NDArray[np.floating[Any]]
    reference_time_ns: int
    n_outside: int
    n_nonfinite_time: int
    motion: Motion


def _transform_rt(T: Any) -> tuple[F64, F64]:
    if T is None:
        return np.eye(3), np.zeros(3)
    m = np.asarray(getattr(T, "matrix", T), dtype=np.float64)
    if m.shape not in ((4, 4), (3, 4)) or not np.all(np.isfinite(m)):
        raise DeskewError(f"T_imu_from_lidar must be a finite 4x4 transform, got shape {m.shape}")
    R = m[:3, :3]
    if np.max(np.abs(R @ R.T - np.eye(3))) > 1e-6 or np.linalg.det(R) < 0:
        raise DeskewError("T_imu_from_lidar rotation is not orthonormal")
    return R.copy(), m[:3, 3].copy()


class Deskewer:
    """Reusable deskew with preallocated buffers (see the module docstring for the conventions).

    Args:
        T_imu_from_lidar: rig transform (4×4 array or :class:`~edgefuse.rig.Transform`); None means
            the motion is the LiDAR's own.
        capacity: initial number of points the output buffers hold (grown when exceeded).
        outside: policy for points outside the motion window (``"raise"``, ``"extrapolate"``,
            ``"nan"``).
        max_extrapolation_ns: how far outside the motion window a point may be and still be
            extrapolated silently (not counted).
    """

    def __init__(
        self,
        T_imu_from_lidar: Any = None,
        *,
        capacity: int = 131_072,
        outside: str = "raise",
        max_extrapolation_ns: int = 5_000_000,
    ) -> None:
        if outside not in OUTSIDE_POLICIES:
            raise DeskewError(f"outside must be one of {OUTSIDE_POLICIES}, got {outside!r}")
        if int(max_extrapolation_ns) < 0:
            raise DeskewError(f"max_extrapolation_ns must be >= 0, got {max_extrapolation_ns}")
        self._Ril, self._til = _transform_rt(T_imu_from_lidar)
        self._tp = self._Ril.T @ self._til  # the IMU origin in the LiDAR frame, negated
        self.outside = outside
        self.max_extrapolation_ns = int(max_extrapolation_ns)
        self._out: dict[np.dtype[Any], npt.NDArray[Any]] = {np.dtype(np.float32): np.empty((capacity, 3), np.float32),
                     np.dtype(np.float64): np.empty((capacity, 3), np.float64)}
        self._tau = np.empty(capacity)  # point times [s], float64
        self._scr = np.empty(_k.scratch_shape(_CHUNK))
        self._runs = np.empty((_CHUNK + 1, 2), np.int64)
        self._seg_tab = np.empty((64, _k.SEG_WIDTH))
        self._imu_cap = 0
        self._grow_imu(64)
        self._cv_motion = Motion(0, np.zeros(1), np.eye(3)[None].copy(), np.zeros((1, 3)), np.zeros((1, 3)),
                                 np.zeros((1, 3)), np.zeros((1, 3)), (-np.inf, np.inf))
        #: how many times buffers had to grow (at most one count per call; 0 in steady state)
        self.reallocations = 0
        #: the per-point pass (:class:`edgefuse.fusion.cuda.CudaDeskewer` puts its CUDA pass here)
        self._points_kernel: Callable[..., tuple[int, int]] = _k._deskew_points

    def _grow_imu(self, k: int) -> None:
        """Tables for ``k`` IMU-integration segments, and a :class:`Motion` viewing them."""
        self._imu_cap = k
        self._imu_seg_t = np.empty(k)
        self._imu_R = np.empty((k, 3, 3))
        self._imu_p = np.empty((k, 3))
        self._imu_v = np.empty((k, 3))
        self._imu_w = np.empty((k, 3))
        self._imu_a = np.empty((k, 3))
        self._imu_motion: Motion | None = None

    def warmup(self) -> None:
        """Compile the kernels: float32/float64 points (contiguous, and strided views such as the x/y/z
        of a structured cloud) and int64/uint32/float32/float64 times (contiguous and strided)."""
        motion = Motion.constant_velocity(ConstantVelocity((1.0, 0.0, 0.0), (0.0, 0.0, 0.5)), 0)
        times = [np.zeros(2, dtype=tdt) for tdt in (np.int64, np.uint32, np.float32, np.float64)]
        for pdt in (np.float32, np.float64):
            pts = np.ones((2, 3), dtype=pdt)
            # strided views too: x/y/z and time fields of a PointCloud's structured array
            rec = np.zeros(2, dtype=[("x", pdt), ("y", pdt), ("z", pdt), ("t", np.uint32), ("f", np.float32),
                                     ("d", np.float64)])
            view = np.lib.stride_tricks.as_strided(rec["x"], shape=(2, 3), strides=(rec.itemsize, rec["x"].itemsize))
            self.deskew(pts, times[0], motion, reference_time_ns=0)
            self.deskew(view, times[0], motion, reference_time_ns=0, out=view)
            if pdt is np.float32:
                for tt in [*times[1:], rec["t"], rec["f"], rec["d"]]:
                    self.deskew(pts, tt, motion, reference_time_ns=0)
        imu = ImuBatch(np.array([0, 10], np.int64), np.zeros((2, 3)), np.zeros((2, 3)))
        self.deskew(np.ones((2, 3), np.float32), times[0], imu, reference_time_ns=0)
        integrate_imu(np.array([0, 10], np.int64), np.zeros((2, 3)), 0, 10)

    def deskew(
        self,
        points: npt.NDArray[Any],
        point_time: npt.NDArray[Any],
        motion: Motion | ConstantVelocity | ImuBatch,
        *,
        reference_time_ns: ReferenceTime,
        time_origin_ns: int = 0,
        time_unit: str = "ns",
        out: npt.NDArray[Any] | None = None,
    ) -> DeskewResult:
        """Deskew ``points`` (N, 3) float32/float64 taken at ``point_time`` (N,) with ``motion``.

        ``motion`` may be a :class:`Motion`, a :class:`ConstantVelocity`, or an
        :class:`~edgefuse.msgs.types.ImuBatch` (gyro-only integration over the sweep; use
        :func:`integrate_imu` for the accelerometer).  ``out``: optional (N, 3) float array to write
        into (may be ``points`` itself, or a strided view such as a structured cloud's x/y/z).
        """
        pts, t, unit_ns = self._check(points, point_time, time_unit)
        n = pts.shape[0]
        is_int = t.dtype.kind in "iu"
        grew = self._tau.shape[0] < n
        if grew:
            self._tau = np.empty(max(n, 2 * self._tau.shape[0]))
        tau = self._tau[:n]
        t_sub_i = 0
        t_sub_f = 0.0
        t_first_ns = t_last_ns = 0
        if n:
            if is_int:
                t_sub_i = int(t[0])
            else:
                t_sub_f = float(t[0])
                if not math.isfinite(t_sub_f):
                    t_sub_f = 0.0
            mn_i, mx_i, mn_f, mx_f, _n_bad = _k._point_tau(t, is_int, t_sub_i, t_sub_f, unit_ns * 1e-9, tau)
            if is_int:
                t_first_ns = int(time_origin_ns) + int(mn_i) * unit_ns
                t_last_ns = int(time_origin_ns) + int(mx_i) * unit_ns
            elif mn_f <= mx_f:
                t_first_ns = int(time_origin_ns) + round(mn_f * unit_ns)
                t_last_ns = int(time_origin_ns) + round(mx_f * unit_ns)
            elif isinstance(motion, ImuBatch) or isinstance(reference_time_ns, str):
                raise DeskewError(f"all {n} point times are NaN or infinite")
        ref_ns = self._reference(reference_time_ns, t_first_ns, t_last_ns)
        mot = self._motion(motion, ref_ns, t_first_ns, t_last_ns, n)
        if out is None:
            buf = self._out[pts.dtype]
            if buf.shape[0] < n:
                grew = True
                buf = np.empty((max(n, 2 * buf.shape[0]), 3), dtype=pts.dtype)
                self._out[pts.dtype] = buf
            dst = buf[:n]
        else:
            dst = out
            if (not isinstance(dst, np.ndarray) or dst.shape != (n, 3) or dst.dtype.kind != "f"
                    or not dst.flags.writeable):
                raise DeskewError(f"out must be a writable ({n}, 3) float array")
        if grew:  # one count per call that had to grow the point buffers
            self.reallocations += 1
        if n == 0:
            return DeskewResult(dst, ref_ns, 0, 0, mot)
        seg_t, seg_tab = self._fold(mot, ref_ns)
        tol_s = self.max_extrapolation_ns * 1e-9
        t_lo = mot.window_s[0] - tol_s
        t_hi = mot.window_s[1] + tol_s
        if is_int:
            offset_s = ((int(time_origin_ns) - mot.origin_ns) + t_sub_i * unit_ns) * 1e-9
        else:
            whole = round(t_sub_f * unit_ns)
            offset_s = ((int(time_origin_ns) - mot.origin_ns) + whole) * 1e-9 + (t_sub_f * unit_ns - whole) * 1e-9
        n_out, n_bad = self._points_kernel(pts, tau, offset_s, seg_t, seg_tab, self._tp, t_lo, t_hi,
                                         self.outside == "nan", self._scr, self._runs, dst)
        if n_out and self.outside == "raise":
            lo_ns, hi_ns = mot.window_ns
            raise DeskewError(
                f"{n_out} of {n} point times lie more than {self.max_extrapolation_ns} ns outside the "
                f"motion window [{lo_ns}, {hi_ns}] ns (outside='extrapolate' or 'nan' to accept them)",
                stamp_ns=ref_ns,
            )
        return DeskewResult(dst, ref_ns, int(n_out), int(n_bad), mot)

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _check(points: Any, point_time: Any, time_unit: str) -> tuple[npt.NDArray[Any], npt.NDArray[Any], int]:
        if time_unit not in TIME_UNITS_NS:
            raise DeskewError(f"time_unit must be one of {sorted(TIME_UNITS_NS)}, got {time_unit!r}")
        if not isinstance(points, np.ndarray) or points.ndim != 2 or points.shape[1] != 3:
            shape = getattr(points, "shape", type(points).__name__)
            raise DeskewError(f"points must be an (N, 3) array, got {shape}")
        if points.dtype not in (np.float32, np.float64):
            raise DeskewError(f"points must be float32 or float64, got {points.dtype}")
        if not points.dtype.isnative:
            raise DeskewError("points must be native-endian")
        if not isinstance(point_time, np.ndarray) or point_time.ndim != 1:
            shape = getattr(point_time, "shape", type(point_time).__name__)
            raise DeskewError(f"point_time must be an (N,) array, got {shape}")
        if point_time.dtype.kind not in "iuf" or point_time.dtype.itemsize > 8:
            raise DeskewError(f"point_time must be an integer or float array, got {point_time.dtype}")
        if not point_time.dtype.isnative:
            point_time = point_time.astype(point_time.dtype.newbyteorder("="))
        if point_time.shape[0] != points.shape[0]:
            raise DeskewError(f"point_time has {point_time.shape[0]} entries for {points.shape[0]} points")
        return points, point_time, TIME_UNITS_NS[time_unit]

    @staticmethod
    def _reference(ref: ReferenceTime, first_ns: int, last_ns: int) -> int:
        if isinstance(ref, str):
            if ref == "start":
                return first_ns
            if ref == "end":
                return last_ns
            if ref == "mid":
                return (first_ns + last_ns) // 2
            raise DeskewError(f"reference_time_ns must be an int or 'start'/'end'/'mid', got {ref!r}")
        if isinstance(ref, bool) or not isinstance(ref, int | np.integer):
            raise DeskewError(f"reference_time_ns must be an int or 'start'/'end'/'mid', got {ref!r}")
        return int(ref)

    def _motion(self, motion: Any, ref_ns: int, first_ns: int, last_ns: int, n: int) -> Motion:
        if isinstance(motion, Motion):
            return motion
        if isinstance(motion, ConstantVelocity):
            m = self._cv_motion
            _vec3_into(motion.linear_mps, "linear_mps", m.v[0])
            _vec3_into(motion.angular_radps, "angular_radps", m.w[0])
            m.origin_ns = ref_ns if motion.stamp_ns is None else int(motion.stamp_ns)
            return m
        if isinstance(motion, ImuBatch):
            return self._imu(motion, ref_ns, first_ns, last_ns, n)
        raise DeskewError(f"motion must be a Motion, ConstantVelocity or ImuBatch, got {type(motion).__name__}")

    def _imu(self, batch: ImuBatch, ref_ns: int, first_ns: int, last_ns: int, n: int) -> Motion:
        """Gyro-only integration over the sweep into the deskewer's own tables (no allocation)."""
        stamps = np.asarray(batch.stamps_ns)
        if stamps.ndim != 1 or stamps.shape[0] < 2:
            raise DeskewError(f"IMU batch needs at least 2 samples, got {stamps.shape}")
        if stamps.dtype.kind not in "iu":
            raise SyncError(f"imu_stamps_ns must be a 1-D integer array of ns, got {stamps.dtype} {stamps.shape}")
        if stamps.dtype != np.int64:
            stamps = stamps.astype(np.int64)
        gyro = np.asarray(batch.angular_velocity, dtype=np.float64)
        m_all = stamps.shape[0]
        if gyro.ndim != 2 or gyro.shape[1] != 3 or gyro.shape[0] != m_all:
            raise DeskewError(f"gyro must be (M, 3) with M = {m_all} stamps, got {gyro.shape}")
        status = _k._check_imu(stamps, gyro)
        if status == 1:
            raise DeskewError("IMU samples contain NaN or infinite values")
        if status == 2:
            raise SyncError("imu_stamps_ns must be strictly increasing", topic="imu")
        if n == 0:
            lo = hi = ref_ns
        else:
            lo, hi = min(first_ns, ref_ns), max(last_ns, ref_ns)
        # clip to the IMU coverage; points beyond it are handled by the outside policy
        s0, s1 = int(stamps[0]), int(stamps[-1])
        lo_c = max(lo, s0)
        hi_c = min(hi, s1)
        if hi_c <= lo_c:
            if lo == hi and s0 <= lo <= s1:  # a sweep of one instant: any 1 ns window holding it
                lo_c, hi_c = (lo, lo + 1) if lo < s1 else (lo - 1, lo)
            else:
                raise DeskewError(f"IMU samples [{s0}, {s1}] ns do not overlap the sweep [{lo}, {hi}] ns",
                                  stamp_ns=ref_ns)
        if m_all + 1 > self._imu_cap:
            self.reallocations += 1
            self._grow_imu(max(m_all + 1, 2 * self._imu_cap))
        kc = _k._gyro_motion(stamps, gyro, lo_c, hi_c, self._imu_seg_t, self._imu_R, self._imu_p, self._imu_v,
                             self._imu_w, self._imu_a)
        m = self._imu_motion
        if m is None or m.seg_t.shape[0] != kc:
            m = Motion(lo_c, self._imu_seg_t[:kc], self._imu_R[:kc], self._imu_p[:kc], self._imu_v[:kc],
                       self._imu_w[:kc], self._imu_a[:kc], (0.0, 0.0))
            self._imu_motion = m
        m.origin_ns = lo_c
        m.window_s = (0.0, (hi_c - lo_c) * 1e-9)
        return m

    def _fold(self, mot: Motion, ref_ns: int) -> tuple[F64, F64]:
        """Fill the segment table with the reference pose and the extrinsic folded in (see
        :func:`edgefuse.fusion._deskew_kernels._fold_segments`); returns ``(seg_t, seg_tab)``."""
        seg_t = np.asarray(mot.seg_t, dtype=np.float64)
        kc = seg_t.shape[0]
        if kc > self._seg_tab.shape[0]:
            self.reallocations += 1
            self._seg_tab = np.empty((max(kc, 2 * self._seg_tab.shape[0]), _k.SEG_WIDTH))
        seg_tab = self._seg_tab[:kc]
        _k._fold_segments(seg_t, _f64(mot.R), _f64(mot.p), _f64(mot.v), _f64(mot.w), _f64(mot.a),
                          (ref_ns - mot.origin_ns) * 1e-9, self._Ril, self._tp, seg_tab)
        return seg_t, seg_tab


def _f64(a: Any) -> F64:
    return np.asarray(a, dtype=np.float64)


def _vec3_into(value: Any, name: str, dst: F64) -> None:
    """Write 3 finite numbers into ``dst`` (3,) without allocating (for tuples and float64 arrays)."""
    try:
        if isinstance(value, np.ndarray):
            if value.shape != (3,):
                raise ValueError
            dst[:] = value
        else:
            x, y, z = value
            dst[0] = float(x)
            dst[1] = float(y)
            dst[2] = float(z)
        ok = math.isfinite(dst[0]) and math.isfinite(dst[1]) and math.isfinite(dst[2])
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DeskewError(f"{name} must be 3 finite numbers, got {np.asarray(value).tolist()!r}")


def deskew(
    points: npt.NDArray[Any],
    point_time: npt.NDArray[Any],
    motion: Motion | ConstantVelocity | ImuBatch,
    *,
    reference_time_ns: ReferenceTime,
    T_imu_from_lidar: Any = None,
    time_origin_ns: int = 0,
    time_unit: str = "ns",
    outside: str = "raise",
    max_extrapolation_ns: int = 5_000_000,
) -> DeskewResult:
    """Deskew a sweep into a new (N, 3) array (see :class:`Deskewer` for repeated, allocation-free use).

    Args:
        points: (N, 3) float32/float64, LiDAR frame, metres (any strides).
        point_time: (N,) int or float times, see ``time_origin_ns`` and ``time_unit``.
        motion: :class:`ConstantVelocity`, :class:`Motion` (e.g. from :func:`integrate_imu`) or an
            :class:`~edgefuse.msgs.types.ImuBatch` (gyro-only integration).
        reference_time_ns: absolute int ns, or ``"start"`` / ``"end"`` / ``"mid"`` of the sweep.
        T_imu_from_lidar: LiDAR → IMU (body) transform, 4×4 or a rig ``Transform``.
    """
    dsk = Deskewer(T_imu_from_lidar, capacity=0, outside=outside, max_extrapolation_ns=max_extrapolation_ns)
    # a fresh deskewer sizes its buffer to this sweep: the result owns new memory
    return dsk.deskew(points, point_time, motion, reference_time_ns=reference_time_ns,
                      time_origin_ns=time_origin_ns, time_unit=time_unit)
