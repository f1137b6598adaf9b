"""IMU windows between consecutive frames: all samples in between plus values interpolated at both ends.

:func:`imu_window` is the pure function; :class:`ImuWindowSynchronizer` the streaming policy.

Streaming semantics: inputs are a *frame* input (camera/LiDAR stamps, items opaque) and an *imu* input
whose items are 1-D float arrays of length D (e.g. gyro xyz + accel xyz, optionally an orientation
quaternion).  For each pair of consecutive frames ``(t0, t1)`` one set is emitted, once an IMU sample with
``stamp >= t1`` has arrived: members ``{frame: item of the frame at t1, imu: ImuWindow}``, ``stamp_ns`` =
``t1``, both member stamps ``t1`` and ``spread_ns`` 0.  If the IMU does not cover ``t0`` (it started later)
or has not reached ``t1`` by the time a frame newer than ``t1 + timeout_ns`` arrives (the IMU stopped), the
set is emitted with ``missing=(imu,)``.  ``flush()`` emits the frames still waiting that way.

Accounting: a frame is used when it ends a window (the very first frame when it starts the first one).
An IMU sample is used when it is inside a window or brackets one of its ends; samples that can no longer
be in a window and were never used are dropped ``"unmatched"``; ``queue_size`` bounds the IMU buffer
(``"queue_full"``), ``frame_queue_size`` the frames waiting (the oldest is then emitted without IMU).
Per-input ``out_of_order`` / ``duplicate`` drops as for the other policies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import SyncError
from edgefuse.sync.base import SyncBase, SyncSet, as_stamp, check_inputs, check_nonneg_int, check_queue_size

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class ImuWindow:
    """IMU samples of one frame interval.

    Attributes:
        t0_ns: stamp of the earlier frame [ns].
        t1_ns: stamp of the later frame [ns].
        stamps_ns: (M,) int64, ``t0_ns``, the sample stamps strictly between, ``t1_ns``.
        values: (M, D) float64, interpolated at both ends (linearly; quaternion columns by slerp), the
            samples' own values in between.  Units and frames are those of the pushed arrays.
    """

    t0_ns: int
    t1_ns: int
    stamps_ns: I64
    values: F64


def _orientation_cols(orientation: Any, d: int) -> npt.NDArray[np.intp] | None:
    if orientation is None:
        return None
    cols = np.arange(d)[orientation] if isinstance(orientation, slice) else np.asarray(orientation)
    if cols.shape != (4,) or cols.dtype.kind not in "iu" or np.any(cols < 0) or np.any(cols >= d):
        raise SyncError(
            f"orientation must select 4 columns (x, y, z, w) of the {d} IMU values, got {orientation!r}"
        )
    return cols.astype(np.intp)


def _slerp(q0: F64, q1: F64, w: float) -> F64:
    """Spherical interpolation of two unit quaternions (x, y, z, w order), shortest path."""
    q0 = q0 / np.linalg.norm(q0)
    q1 = q1 / np.linalg.norm(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1 = -q1
        dot = -dot
    if dot > 0.9995:
        q = q0 + w * (q1 - q0)
        return np.asarray(q / np.linalg.norm(q), dtype=np.float64)
    theta = np.arccos(dot)
    s = np.sin(theta)
    return np.asarray((np.sin((1.0 - w) * theta) * q0 + np.sin(w * theta) * q1) / s, dtype=np.float64)


def _interp_at(stamps: I64, values: F64, t: int, quat: npt.NDArray[np.intp] | None) -> F64:
    """Value at stamp t, which must lie within ``[stamps[0], stamps[-1]]``."""
    j = int(np.searchsorted(stamps, t, side="right")) - 1
    if stamps[j] == t:
        return np.array(values[j], dtype=np.float64)
    a = values[j]
    b = values[j + 1]
    w = (t - int(stamps[j])) / (int(stamps[j + 1]) - int(stamps[j]))
    out = np.asarray(a + w * (b - a), dtype=np.float64)
    if quat is not None:
        out[quat] = _slerp(a[quat], b[quat], w)
    return out


def imu_window(
    imu_stamps_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    t0_ns: int,
    t1_ns: int,
    *,
    orientation: slice | Sequence[int] | None = None,
) -> tuple[I64, F64]:
    """The IMU samples strictly between ``t0_ns`` and ``t1_ns``, with values interpolated at both stamps.

    Args:
        imu_stamps_ns: (N,) strictly increasing integer stamps [ns].
        values: (N, D) float samples (e.g. angular velocity [rad/s] and linear acceleration [m/s^2]).
        t0_ns, t1_ns: window ends [ns], ``t0_ns < t1_ns``; the samples must cover them
            (``stamps[0] <= t0_ns`` and ``stamps[-1] >= t1_ns``): no extrapolation.
        orientation: the 4 columns holding a quaternion (x, y, z, w), interpolated by slerp.

    Returns:
        ``(stamps (M,) int64, values (M, D) float64)``: ``t0_ns``, the samples with
        ``t0_ns < stamp < t1_ns``, ``t1_ns``.

    Raises:
        SyncError: bad shapes, unsorted stamps, or samples not covering the window.
    """
    stamps = np.asarray(imu_stamps_ns)
    vals = np.asarray(values, dtype=np.float64)
    if stamps.ndim != 1 or stamps.dtype.kind not in "iu":
        raise SyncError(f"imu_stamps_ns must be a 1-D integer array of ns, got {stamps.dtype} {stamps.shape}")
    stamps = stamps.astype(np.int64, copy=False)
    if vals.ndim == 1:
        vals = vals[:, None]
    if vals.ndim != 2 or vals.shape[0] != stamps.shape[0]:
        raise SyncError(f"values must have shape (N, D) with N = {stamps.shape[0]}, got {vals.shape}")
    t0 = as_stamp(t0_ns, "imu")
    t1 = as_stamp(t1_ns, "imu")
    if t0 >= t1:
        raise SyncError(f"t0_ns must be < t1_ns, got {t0} >= {t1}", stamp_ns=t0)
    if stamps.shape[0] == 0 or stamps[0] > t0 or stamps[-1] < t1:
        span = f"[{stamps[0]}, {stamps[-1]}]" if stamps.shape[0] else "no samples"
        raise SyncError(f"IMU samples {span} do not cover the window [{t0}, {t1}]", topic="imu", stamp_ns=t0)
    if stamps.shape[0] > 1 and not bool(np.all(np.diff(stamps) > 0)):
        raise SyncError("imu_stamps_ns must be strictly increasing", topic="imu")
    quat = _orientation_cols(orientation, vals.shape[1])
    return _window(stamps, vals, t0, t1, quat)


def _window(stamps: I64, vals: F64, t0: int, t1: int, quat: npt.NDArray[np.intp] | None) -> tuple[I64, F64]:
    i0 = int(np.searchsorted(stamps, t0, side="right"))
    i1 = int(np.searchsorted(stamps, t1, side="left"))
    m = i1 - i0 + 2
    out_t = np.empty(m, dtype=np.int64)
    out_v = np.empty((m, vals.shape[1]), dtype=np.float64)
    out_t[0] = t0
    out_t[-1] = t1
    out_t[1:-1] = stamps[i0:i1]
    out_v[0] = _interp_at(stamps, vals, t0, quat)
    out_v[-1] = _interp_at(stamps, vals, t1, quat)
    out_v[1:-1] = vals[i0:i1]
    return out_t, out_v


def check_imu_params(  # noqa: PLR0917 -- one argument per YAML parameter
    inputs: Sequence[str], frame: Any, imu: Any, timeout_ns: Any, queue_size: Any, frame_queue_size: Any
) -> list[str]:
    """Problems with imu_window parameters (empty when valid); each names its parameter."""
    problems: list[str] = []
    names = tuple(inputs)
    if len(names) != 2:
        problems.append(f"inputs must be exactly 2 names (frame and imu), got {list(names)}")
    for label, value in (("frame", frame), ("imu", imu)):
        if value is not None and value not in names:
            problems.append(f"{label} must be one of the inputs {list(names)}, got {value!r}")
    if frame is not None and frame == imu:
        problems.append("frame and imu must name different inputs")
    problems += check_nonneg_int("timeout_ns", timeout_ns)
    problems += check_queue_size(queue_size)
    problems += [p.replace("queue_size", "frame_queue_size") for p in check_queue_size(frame_queue_size)]
    return problems


class ImuWindowSynchronizer(SyncBase):
    """Streaming IMU-window policy (see the module docstring).

    Args:
        inputs: two names (default ``("frame", "imu")``).
        frame: name of the frame input (default ``"frame"`` if present, else ``inputs[0]``).
        imu: name of the IMU input (default: the other input).
        timeout_ns: how much newer [ns] than a waiting frame a later frame may be before the waiting one
            is emitted without IMU.
        queue_size: most IMU samples buffered.
        frame_queue_size: most frames waiting for IMU.
        orientation: quaternion columns (x, y, z, w) of the IMU arrays, slerped at the window ends.
    """

    policy = "imu_window"

    def __init__(
        self,
        inputs: Sequence[str] = ("frame", "imu"),
        *,
        frame: str | None = None,
        imu: str | None = None,
        timeout_ns: int = 200_000_000,
        queue_size: int = 4000,
        frame_queue_size: int = 16,
        orientation: slice | Sequence[int] | None = None,
    ) -> None:
        names = tuple(inputs)
        problems = check_inputs(names, 2) + check_imu_params(
            names, frame, imu, timeout_ns, queue_size, frame_queue_size
        )
        if problems:
            raise SyncError("imu_window: " + "; ".join(problems))
        super().__init__(names)
        if frame is None:
            frame = (
                "frame"
                if "frame" in names and imu != "frame"
                else (names[0] if imu != names[0] else names[1])
            )
        if imu is None:
            imu = names[1] if frame == names[0] else names[0]
        self._f = self._index[frame]
        self._i = self._index[imu]
        self._timeout = int(timeout_ns)
        self._queue_size = int(queue_size)
        self._frame_queue_size = int(frame_queue_size)
        self._orientation = orientation
        self._quat: npt.NDArray[np.intp] | None = None
        self._dim: int | None = None
        self._imu_t: list[int] = []
        self._imu_v: list[F64] = []
        self._imu_used: list[bool] = []
        self._prev: tuple[int, Any] | None = None
        self._prev_counted = False
        self._pending: deque[tuple[int, Any]] = deque()
        self._last: list[int | None] = [None, None]

    def push(self, input: str, stamp_ns: int, item: Any) -> list[SyncSet]:
        """Add a frame (any item) or an IMU sample (1-D float array); return the windows completed."""
        k = self._key(input)
        if stamp_ns.__class__ is not int:
            stamp_ns = as_stamp(stamp_ns, input)
        if k == self._i:
            value = np.asarray(item, dtype=np.float64).reshape(-1)
            if self._dim is None:
                self._dim = value.shape[0]
                self._quat = _orientation_cols(self._orientation, self._dim)
            elif value.shape[0] != self._dim:
                raise SyncError(
                    f"IMU sample has {value.shape[0]} values, earlier ones had {self._dim}",
                    topic=input,
                    stamp_ns=stamp_ns,
                )
        self._received[k] += 1
        last = self._last[k]
        if last is not None and stamp_ns <= last:
            self._drop(k, "duplicate" if stamp_ns == last else "out_of_order")
            return []
        self._last[k] = stamp_ns
        if k == self._i:
            self._imu_t.append(stamp_ns)
            self._imu_v.append(value)
            self._imu_used.append(False)
            if len(self._imu_t) > self._queue_size:
                self._prune(1, "queue_full")
        elif self._prev is None:
            self._prev = (stamp_ns, item)
            self._prev_counted = False
        else:
            self._pending.append((stamp_ns, item))
        return self._try_emit(final=False)

    def flush(self) -> list[SyncSet]:
        """End of stream: emit waiting frames (without IMU if it never reached them), drop the rest."""
        out = self._try_emit(final=True)
        if self._prev is not None and not self._prev_counted:
            self._drop(self._f, "unmatched")
        self._prev = None
        self._prune(len(self._imu_t), "unmatched")
        return out

    def _try_emit(self, *, final: bool) -> list[SyncSet]:
        out: list[SyncSet] = []
        pending = self._pending
        while pending and self._prev is not None:
            t1, item = pending[0]
            t0 = self._prev[0]
            imu_t = self._imu_t
            ready = bool(imu_t) and imu_t[-1] >= t1
            if not ready and not final:
                newest = pending[-1][0]
                if newest - t1 <= self._timeout and len(pending) <= self._frame_queue_size:
                    break
            pending.popleft()
            out.append(self._emit(t0, t1, item, covered=ready and imu_t[0] <= t0))
        return out

    def _emit(self, t0: int, t1: int, item: Any, *, covered: bool) -> SyncSet:
        names = self._inputs
        fname = names[self._f]
        iname = names[self._i]
        if not self._prev_counted:
            self._used[self._f] += 1
        self._used[self._f] += 1
        self._prev = (t1, item)
        self._prev_counted = True
        self._sets += 1
        if not covered:
            self._partial_sets += 1
            self._missing[self._i] += 1
            self._prune_before(t1)
            return SyncSet(t1, {fname: item}, {fname: t1}, (iname,), 0)
        stamps = np.asarray(self._imu_t, dtype=np.int64)
        vals = np.asarray(self._imu_v, dtype=np.float64)
        w_t, w_v = _window(stamps, vals, t0, t1, self._quat)
        j0 = int(np.searchsorted(stamps, t0, side="right")) - 1
        j1 = int(np.searchsorted(stamps, t1, side="left"))
        used = self._imu_used
        for j in range(j0, j1 + 1):
            if not used[j]:
                used[j] = True
                self._used[self._i] += 1
        self._prune_before(t1)
        window = ImuWindow(t0, t1, w_t, w_v)
        return SyncSet(t1, {fname: item, iname: window}, {fname: t1, iname: t1}, (), 0)

    def _prune_before(self, t: int) -> None:
        """Forget samples that cannot be in a window starting at t (all but the last one <= t)."""
        j = int(np.searchsorted(np.asarray(self._imu_t, dtype=np.int64), t, side="right")) - 1
        if j > 0:
            self._prune(j, "unmatched")

    def _prune(self, count: int, reason: str) -> None:
        unused = count - sum(self._imu_used[:count])
        self._drop(self._i, reason, unused)
        del self._imu_t[:count]
        del self._imu_v[:count]
        del self._imu_used[:count]

    def _queued_counts(self) -> list[int]:
        counts = [0, 0]
        counts[self._f] = len(self._pending) + (1 if self._prev is not None and not self._prev_counted else 0)
        counts[self._i] = len(self._imu_used) - sum(self._imu_used)
        return counts
