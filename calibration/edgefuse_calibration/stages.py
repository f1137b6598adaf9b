"""Online time-offset monitoring stage.

``online_time_offset``: two motion streams, ``a`` (the reference) and ``b``, each an ``Imu``,
``ImuBatch`` or ``Odometry`` edge (both ports optional, so the stage works with sync policies that
deliver one stream at a time).  Each sample is reduced to one scalar (``field_a`` / ``field_b``) and
fed to :class:`edgefuse_calibration.temporal.OnlineOffsetEstimator`, which re-estimates the offset
``t_a = t_b + offset`` over the last ``window_s`` every ``hop_s`` of data and flags drift against
``reference_offset_ms`` (default: the first ``ok`` estimate).  The stage has no outputs: its
estimates, verdicts and the drift flag are in the replay report (``stages.<name>.details``).

Fields: ``gyro_x`` ``gyro_y`` ``gyro_z`` ``gyro_norm`` (Imu / ImuBatch angular velocity, rad/s) and
``twist_x`` ``twist_y`` ``twist_z`` (= ``twist_yaw``) ``speed`` (Odometry twist, rad/s and m/s).
Stamps come from the payloads (already corrected by the rig's time offsets); a sample whose stamp
does not advance (a zero-order-hold repeat) is skipped and counted.

The stage is a plugin: it registers through the ``edgefuse.stages`` entry point of this distribution
(``online_time_offset = edgefuse_calibration.stages:OnlineTimeOffset``), so the core runtime finds it
when a pipeline names it and never imports ``edgefuse_calibration`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from edgefuse.errors import EdgefuseError, PipelineError
from edgefuse.msgs.types import ImuBatch, ImuData, OdometryData
from edgefuse.stages import Stage, StageParams, param

__all__ = ["FIELDS", "OnlineTimeOffset", "OnlineTimeOffsetParams"]

Field = Literal["gyro_x", "gyro_y", "gyro_z", "gyro_norm", "twist_x", "twist_y", "twist_z", "twist_yaw", "speed"]
FIELDS: tuple[str, ...] = ("gyro_x", "gyro_y", "gyro_z", "gyro_norm", "twist_x", "twist_y", "twist_z", "twist_yaw",
                           "speed")
_IMU_FIELDS = FIELDS[:4]
_HISTORY = 20


@dataclass(frozen=True, kw_only=True)
class OnlineTimeOffsetParams(StageParams):
    """Parameters of ``online_time_offset``."""

    # RUF009: `param` returns a dataclass field (like `field()`), which ruff cannot see through a type alias
    field_a: Field = param(doc="scalar taken from stream a (see the module docstring)")  # noqa: RUF009
    field_b: Field = param(doc="scalar taken from stream b")  # noqa: RUF009
    method: Literal["xcorr", "dtw"] = param("xcorr", doc="cross-correlation or dynamic time warping")
    window_s: float = param(30.0, unit="s", gt=0.0, le=3600.0, doc="estimation window")
    hop_s: float = param(5.0, unit="s", gt=0.0, le=3600.0, doc="re-estimate every hop of data time")
    max_lag_ms: float = param(500.0, unit="ms", gt=0.0, le=600_000.0, doc="search range ±")
    drift_threshold_ms: float = param(10.0, unit="ms", gt=0.0, le=600_000.0, doc="flag drift beyond max(this, 3σ)")
    reference_offset_ms: float | None = param(None, unit="ms", ge=-3_600_000.0, le=3_600_000.0,
                                              doc="expected offset (default: the first ok estimate)")

    def check(self) -> list[str]:
        """The window holds at least 4 × the largest lag."""
        if self.max_lag_ms * 1e-3 * 4 > self.window_s:
            return [f"window_s ({self.window_s:g}) must be at least 4 × max_lag ({self.max_lag_ms:g} ms)"]
        return []


def _imu_value(w: Any, fld: str) -> float:
    v = np.asarray(w, dtype=np.float64)
    return float(np.linalg.norm(v)) if fld == "gyro_norm" else float(v["xyz".index(fld[-1])])


def _samples(payload: Any, fld: str, port: str) -> Iterator[tuple[int, float]]:
    """(stamp_ns, value) pairs of one payload."""
    if isinstance(payload, ImuBatch):
        if fld not in _IMU_FIELDS:
            raise PipelineError(f"port {port}: field {fld} needs Odometry, got an ImuBatch")
        for t, w in zip(payload.stamps_ns, payload.angular_velocity, strict=True):
            yield int(t), _imu_value(w, fld)
    elif isinstance(payload, ImuData):
        if fld not in _IMU_FIELDS:
            raise PipelineError(f"port {port}: field {fld} needs Odometry, got an Imu sample")
        yield payload.stamp_ns, _imu_value(payload.angular_velocity, fld)
    elif isinstance(payload, OdometryData):
        if fld in _IMU_FIELDS:
            raise PipelineError(f"port {port}: field {fld} needs Imu, got Odometry")
        if fld == "speed":
            yield payload.stamp_ns, float(np.linalg.norm(payload.linear_velocity))
        else:
            axis = 2 if fld == "twist_yaw" else "xyz".index(fld[-1])
            yield payload.stamp_ns, float(np.asarray(payload.angular_velocity, dtype=np.float64)[axis])
    else:
        raise PipelineError(f"port {port}: expected Imu, ImuBatch or Odometry, got {type(payload).__name__}")


class OnlineTimeOffset(Stage):
    """Sliding-window time-offset estimate between two motion streams, with drift flagging.

    Inputs ``a`` (reference) and ``b``: Imu | ImuBatch | Odometry (optional ports).  No outputs; see
    :meth:`report`.
    """

    inputs: ClassVar[dict[str, str]] = {"a?": "Imu|ImuBatch|Odometry", "b?": "Imu|ImuBatch|Odometry"}
    outputs: ClassVar[dict[str, str]] = {}
    Params = OnlineTimeOffsetParams
    params: OnlineTimeOffsetParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self._est: Any = None
        self._last: dict[str, int] = {}
        self.updates = 0
        self.repeated_samples = {"a": 0, "b": 0}
        self.history: list[dict[str, Any]] = []
        self.errors = 0

    def start(self) -> None:
        """Create the estimator."""
        from edgefuse_calibration.temporal import OnlineOffsetEstimator

        p = self.params
        ref = p.reference_offset_ms
        self._est = OnlineOffsetEstimator(
            window_ns=int(p.window_s * 1e9), hop_ns=int(p.hop_s * 1e9), method=p.method,
            drift_threshold_ns=int(p.drift_threshold_ms * 1e6),
            reference_offset_ns=None if ref is None else int(ref * 1e6), max_lag_ns=int(p.max_lag_ms * 1e6))
        self._last = {}

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        """Feed the new samples; an update (when due) is recorded for :meth:`report`."""
        if self._est is None:
            raise PipelineError(f"stage '{self.name}': process() before start()")
        for port, fld, push in (("a", self.params.field_a, self._est.push_a),
                                ("b", self.params.field_b, self._est.push_b)):
            payload = inputs.get(port)
            if payload is None:
                continue
            for t, v in _samples(payload, fld, port):
                if t <= self._last.get(port, -(2**63)) or not np.isfinite(v):
                    self.repeated_samples[port] += 1
                    continue
                self._last[port] = t
                try:
                    upd = push(t, v)
                except EdgefuseError:
                    self.errors += 1
                    raise
                if upd is not None:
                    self._record(upd)
        return {}

    def _record(self, upd: Any) -> None:
        self.updates += 1
        est = upd.estimate
        self.history.append({"t_ns": upd.t_ns, "verdict": str(est.verdict), "offset_ns": est.offset_ns,
                             "uncertainty_ns": est.uncertainty_ns, "drift": upd.drift,
                             "delta_ns": upd.delta_ns, "reason": est.diagnostics.get("reason")})
        del self.history[:-_HISTORY]

    @property
    def drift_detected(self) -> bool:
        """True when the latest ``ok`` estimate disagrees with the reference offset."""
        return bool(self._est is not None and self._est.drift_detected)

    def report(self) -> dict[str, Any]:
        """Estimates so far (last 20), the reference offset, and the drift flag."""
        ok = [h for h in self.history if h["verdict"] == "ok"]
        return {"updates": self.updates, "drift_detected": self.drift_detected,
                "reference_offset_ns": None if self._est is None else self._est.reference_offset_ns,
                "latest_ok": ok[-1] if ok else None, "history": list(self.history),
                "skipped_repeated_or_nan": dict(self.repeated_samples),
                "convention": "t_a = t_b + offset_ns"}
