"""Deskew stage: motion-compensate a LiDAR sweep from its per-point times.

``deskew``: input ``cloud`` (PointCloud with a per-point time field) and the sensor motion from an
optional ``imu`` (ImuBatch: gyro integrated over the sweep, see :func:`edgefuse.fusion.deskew.integrate_imu`)
or an optional ``odom`` (Odometry: its twist, in the child frame, as a constant velocity); with both,
the IMU gives the rotation and the odometry the (constant) velocity.  Output ``cloud``: the same
fields, x/y/z moved to where they would be at the reference time, in the cloud's frame.

Per-point time fields (``time_field: auto`` tries them in this order):

=====================  ==========================  ====================================
field                  drivers                     default unit
=====================  ==========================  ====================================
``t``                  ouster_ros                  ns (uint32, since the header stamp)
``time``               velodyne, robosense         s  (float, since the header stamp)
``timestamp``          hesai, livox                s for floats, ns for integers
``time_sec``+``nsec``  luminar                     absolute s + ns
``offset_time``        livox_ros_driver2           ns (since the header stamp)
=====================  ==========================  ====================================

``time_relative: auto`` decides per cloud whether times are absolute or since the header stamp: the
first point's time is absolute when it lies within 1000 s of the stamp *and* closer to the stamp than
half its own value (so small offsets such as 0…0.1 s are relative even when the sensor clock
starts near zero).  Set ``relative``/``absolute`` explicitly for simulated clocks near zero.

The motion frame: ``body_frame`` (a rig frame) if given, else the IMU batch's / odometry child frame
when the rig knows it, else the cloud's own frame (identity extrinsic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError, MessageError, PipelineError
from edgefuse.fusion.deskew import (
    TIME_UNITS_NS,
    ConstantVelocity,
    Deskewer,
    DeskewError,
    Motion,
    integrate_imu,
)
from edgefuse.msgs.types import ImuBatch, OdometryData, PointCloud
from edgefuse.stages._device import StageDevice
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

__all__ = ["TIME_FIELDS", "DeskewParams", "DeskewStage"]

#: auto-detected time fields, in order: (field, unit for integer dtypes, unit for float dtypes)
TIME_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("t", "ns", "s"),
    ("time", "ns", "s"),
    ("timestamp", "ns", "s"),
    ("time_sec", "s", "s"),  # + time_nsec
    ("offset_time", "ns", "s"),
)
_ABSOLUTE_WITHIN_NS = 1_000 * 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class DeskewParams(StageParams):
    """Parameters of ``deskew``."""

    time_field: str = param("auto", min_len=1, doc="per-point time field, or 'auto' (see TIME_FIELDS)")
    time_unit: Literal["auto", "ns", "us", "ms", "s"] = param(
        "auto", doc="unit of the time field (auto: by field and dtype)")
    time_relative: Literal["auto", "relative", "absolute"] = param(
        "auto", doc="times since the header stamp (relative), absolute, or decided per cloud (auto)")
    reference: Literal["stamp", "start", "end", "mid"] = param("stamp", doc="reference time the sweep is moved to")
    body_frame: str | None = param(None, min_len=1,
                                   doc="rig frame the motion is expressed in (default: IMU/odom frame)")
    outside: Literal["raise", "extrapolate", "nan"] = param(
        "extrapolate", doc="points outside the IMU window: raise | extrapolate | nan")
    max_extrapolation_ms: float = param(5.0, unit="ms", ge=0.0, le=60_000.0,
                                        doc="extrapolate this far beyond the IMU window silently")
    max_points: int = param(200_000, ge=0, le=10_000_000, doc="initial buffer size")
    device: Literal["auto", "cpu", "cuda"] = param(
        "auto", doc="where the per-point pass runs: auto (CUDA when usable), cpu, cuda")


def _xyz_view(points: npt.NDArray[np.void]) -> npt.NDArray[Any] | None:
    """An (N, 3) strided view of x, y, z when they are consecutive fields of one float dtype."""
    fields: Mapping[str, Any] = points.dtype.fields or {}
    if not all(k in fields for k in "xyz"):
        return None
    dt, off = fields["x"][0], fields["x"][1]
    if dt not in (np.float32, np.float64) or not dt.isnative:
        return None
    if fields["y"][0] != dt or fields["z"][0] != dt:
        return None
    if fields["y"][1] != off + dt.itemsize or fields["z"][1] != off + 2 * dt.itemsize:
        return None
    base = points["x"]
    return np.lib.stride_tricks.as_strided(base, shape=(points.shape[0], 3),
                                           strides=(points.strides[0], dt.itemsize))


@register_stage("deskew")
class DeskewStage(Stage):
    """Motion-compensate a LiDAR sweep (see the module docstring)."""

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud", "imu?": "ImuBatch", "odom?": "Odometry"}
    outputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    Params = DeskewParams
    params: DeskewParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self._deskewers: dict[tuple[str, str], Deskewer] = {}
        self._buf: npt.NDArray[np.void] | None = None
        self._tbuf = np.empty(self.params.max_points, dtype=np.int64)
        self._xyzbuf = np.empty((self.params.max_points, 3), dtype=np.float64)
        self.device = StageDevice(name, self.params.device)

    def report(self) -> dict[str, Any] | None:
        return {"device": self.device.report()}

    # -- set-up ---------------------------------------------------------------------------------
    def _deskewer(self, cloud_frame: str, motion_frame: str | None) -> Deskewer:
        body = self.params.body_frame or motion_frame or cloud_frame
        key = (cloud_frame, body)
        dsk = self._deskewers.get(key)
        if dsk is not None:
            return dsk
        T = None
        if body != cloud_frame:
            if self.rig is None:
                if self.params.body_frame:
                    raise PipelineError(f"stage '{self.name}': body_frame given but the pipeline has no rig")
            else:
                try:
                    T = self.rig.transform(body, cloud_frame).matrix
                except CalibrationError as exc:
                    if self.params.body_frame:
                        raise PipelineError(f"stage '{self.name}': no transform from '{cloud_frame}' to "
                                            f"'{body}': {exc.message}") from None

        def build() -> Deskewer:
            made = self.device.pick(Deskewer, "CudaDeskewer")(
                T, capacity=self.params.max_points, outside=self.params.outside,
                max_extrapolation_ns=round(self.params.max_extrapolation_ms * 1e6))
            made.warmup()
            return made

        dsk = self.device.run(build, self._deskewers.clear)
        self._deskewers[key] = dsk
        return dsk

    def start(self) -> None:
        """Compile the kernels (never on the first sweep)."""
        dsk = Deskewer(capacity=16)
        dsk.warmup()

    # -- per sweep ------------------------------------------------------------------------------
    def _times(self, cloud: PointCloud) -> tuple[npt.NDArray[Any], str, int]:
        """``(times, unit, time_origin_ns)`` for the cloud, as :func:`deskew` takes them."""
        pts = cloud.points
        names = pts.dtype.names or ()
        want = self.params.time_field
        if want == "auto":
            found = next((f for f in TIME_FIELDS if f[0] in names), None)
            if found is None:
                raise DeskewError(f"point cloud has no per-point time field; fields: {list(names)} "
                                  f"(known: {[f[0] for f in TIME_FIELDS]}; set time_field)",
                                  stamp_ns=cloud.stamp_ns)
            field, unit_i, unit_f = found
        else:
            if want not in names:
                raise DeskewError(f"point cloud has no field {want!r}; fields: {list(names)}", stamp_ns=cloud.stamp_ns)
            field, unit_i, unit_f = next((f for f in TIME_FIELDS if f[0] == want), (want, "ns", "s"))
        raw = pts[field]
        if raw.ndim != 1 or raw.dtype.kind not in "iuf":
            raise DeskewError(f"time field {field!r} must be one number per point, got {raw.dtype}",
                              stamp_ns=cloud.stamp_ns)
        if field == "time_sec":
            if "time_nsec" not in names:
                raise DeskewError("field time_sec needs time_nsec beside it", stamp_ns=cloud.stamp_ns)
            n = raw.shape[0]
            if self._tbuf.shape[0] < n:
                self._tbuf = np.empty(n, dtype=np.int64)
            t = self._tbuf[:n]
            t[:] = raw
            t *= 1_000_000_000
            t += pts["time_nsec"]
            return t, "ns", 0
        if not raw.dtype.isnative:
            raw = raw.astype(raw.dtype.newbyteorder("="))
        unit: str = self.params.time_unit
        if unit == "auto":
            unit = unit_i if raw.dtype.kind in "iu" else unit_f
        rel: str = self.params.time_relative
        if rel == "auto":
            first = float(raw[0]) if raw.shape[0] else 0.0
            first_ns = first * TIME_UNITS_NS[unit]
            near = abs(first_ns - cloud.stamp_ns) < min(_ABSOLUTE_WITHIN_NS, 0.5 * abs(first_ns))
            rel = "absolute" if near else "relative"
        return raw, unit, (cloud.stamp_ns if rel == "relative" else 0)

    def _motion(self, inputs: Mapping[str, Any], cloud: PointCloud,
                times: tuple[npt.NDArray[Any], str, int]) -> tuple[Motion | ConstantVelocity | ImuBatch, str | None]:
        imu: ImuBatch | None = inputs.get("imu")
        odom: OdometryData | None = inputs.get("odom")
        if imu is None and odom is None:
            raise PipelineError(f"stage '{self.name}': needs an 'imu' or an 'odom' input for the motion",
                                stamp_ns=cloud.stamp_ns)
        if imu is None:
            assert odom is not None
            return ConstantVelocity(odom.linear_velocity, odom.angular_velocity), odom.child_frame_id or None
        if odom is None:
            return imu, imu.frame_id or None
        # IMU rotation + odometry velocity, integrated over the sweep
        t, unit, origin = times
        if t.shape[0] == 0:
            return imu, imu.frame_id or None
        lo = origin + round(float(np.nanmin(t)) * TIME_UNITS_NS[unit])
        hi = origin + round(float(np.nanmax(t)) * TIME_UNITS_NS[unit])
        ref = cloud.stamp_ns
        stamps = np.asarray(imu.stamps_ns)
        lo_c, hi_c = max(min(lo, ref), int(stamps[0])), min(max(hi, ref), int(stamps[-1]))
        if hi_c <= lo_c:
            raise DeskewError(f"IMU samples [{int(stamps[0])}, {int(stamps[-1])}] ns do not overlap the sweep",
                              stamp_ns=cloud.stamp_ns)
        motion = integrate_imu(stamps, imu.angular_velocity, lo_c, hi_c, initial_velocity_mps=odom.linear_velocity)
        return motion, imu.frame_id or None

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        pts = cloud.points
        n = pts.shape[0]
        if n == 0:
            return {"cloud": cloud}
        times = self._times(cloud)
        motion, motion_frame = self._motion(inputs, cloud, times)
        dsk = self._deskewer(cloud.frame_id, motion_frame)

        def on_cpu() -> None:  # a CUDA failure: CPU deskewers from now on, and this sweep redone there
            self._deskewers.clear()
            nonlocal dsk
            dsk = self._deskewer(cloud.frame_id, motion_frame)
        if self._buf is None or self._buf.dtype != pts.dtype or self._buf.shape[0] < n:
            self._buf = np.empty(max(n, self.params.max_points), dtype=pts.dtype)
        out = self._buf[:n]
        out[...] = pts
        ref = cloud.stamp_ns if self.params.reference == "stamp" else self.params.reference
        t, unit, origin = times
        view = _xyz_view(out)
        if view is not None:  # in place on the copy: the kernel reads a point before writing it
            self.device.run(lambda: dsk.deskew(view, t, motion, reference_time_ns=ref, time_origin_ns=origin,
                                               time_unit=unit, out=view), on_cpu)
        else:
            if any(k not in (pts.dtype.names or ()) for k in "xyz"):
                raise MessageError(f"point cloud lacks x/y/z; fields: {list(pts.dtype.names or ())}",
                                   stamp_ns=cloud.stamp_ns)
            if self._xyzbuf.shape[0] < n:
                self._xyzbuf = np.empty((n, 3), dtype=np.float64)
            tmp = self._xyzbuf[:n]
            for j, k in enumerate("xyz"):
                tmp[:, j] = pts[k]
            self.device.run(lambda: dsk.deskew(tmp, t, motion, reference_time_ns=ref, time_origin_ns=origin,
                                               time_unit=unit, out=tmp), on_cpu)
            for j, k in enumerate("xyz"):
                out[k] = tmp[:, j]
        self.device.record(dsk)
        return {"cloud": PointCloud(cloud.stamp_ns, cloud.frame_id, out, cloud.height, cloud.width,
                                    cloud.is_dense)}
