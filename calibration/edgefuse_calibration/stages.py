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
from typing import Any, ClassVar

import numpy as np

from edgefuse.errors import EdgefuseError, PipelineError
from edgefuse.msgs.types import ImuBatch, ImuData, OdometryData
from edgefuse.stages.base import Param, Stage

__all__ = ["FIELDS", "OnlineTimeOffset"]

FIELDS = ("gyro_x", "gyro_y", "gyro_z", "gyro_norm", "twist_x", "twist_y", "twist_z", "twist_yaw", "speed")
_IMU_FIELDS = FIELDS[:4]
_METHODS = ("xcorr", "dtw")
_HISTORY = 20


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
    params: ClassVar[dict[str, Param]] = {
        "field_a": Param(str, required=True, doc="scalar taken from stream a (see module doc)"),
        "field_b": Param(str, required=True, doc="scalar taken from stream b"),
        "method": Param(str, "xcorr", doc="xcorr | dtw"),
        "window_s": Param((int, float), 30.0, doc="estimation window"),
        "hop_s": Param((int, float), 5.0, doc="re-estimate every hop of data time"),
        "max_lag_ms": Param((int, float), 500.0, doc="search range ±"),
        "drift_threshold_ms": Param((int, float), 10.0, doc="flag drift beyond max(this, 3σ)"),
        "reference_offset_ms": Param((int, float), None, doc="expected offset (default: first ok estimate)"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.p
        for key in ("field_a", "field_b"):
            if p[key] not in FIELDS:
                raise PipelineError(f"stage '{name}': {key} {p[key]!r} is not one of {', '.join(FIELDS)}")
        if p["method"] not in _METHODS:
            raise PipelineError(f"stage '{name}': method {p['method']!r} is not one of {', '.join(_METHODS)}")
        for key in ("window_s", "hop_s", "max_lag_ms", "drift_threshold_ms"):
            if not float(p[key]) > 0:
                raise PipelineError(f"stage '{name}': {key} must be > 0, got {p[key]}")
        if float(p["max_lag_ms"]) * 1e-3 * 4 > float(p["window_s"]):
            raise PipelineError(f"stage '{name}': window_s ({p['window_s']}) must be at least 4 × max_lag"
                                f" ({p['max_lag_ms']} ms)")
        self._est: Any = None
        self._last: dict[str, int] = {}
        self.updates = 0
        self.repeated_samples = {"a": 0, "b": 0}
        self.history: list[dict[str, Any]] = []
        self.errors = 0

    def start(self) -> None:
        """Create the estimator."""
        from edgefuse_calibration.temporal import OnlineOffsetEstimator

        p = self.p
        ref = p["reference_offset_ms"]
        self._est = OnlineOffsetEstimator(
            window_ns=int(float(p["window_s"]) * 1e9), hop_ns=int(float(p["hop_s"]) * 1e9),
            method=p["method"], drift_threshold_ns=int(float(p["drift_threshold_ms"]) * 1e6),
            reference_offset_ns=None if ref is None else int(float(ref) * 1e6),
            max_lag_ns=int(float(p["max_lag_ms"]) * 1e6))
        self._last = {}

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        """Feed the new samples; an update (when due) is recorded for :meth:`report`."""
        if self._est is None:
            raise PipelineError(f"stage '{self.name}': process() before start()")
        for port, fld, push in (("a", self.p["field_a"], self._est.push_a),
                                ("b", self.p["field_b"], self._est.push_b)):
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
