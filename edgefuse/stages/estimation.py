"""State-estimation stages: ``ekf_localization`` and ``ukf_localization`` (15-state filters over IMU,
wheel odometry and GNSS; :mod:`edgefuse.estimation`).

Ports (all optional; wire the ones you have): ``imu0``, ``imu1`` (Imu), ``odom0``, ``odom1``
(Odometry), ``gnss0`` (NavSatFix).  The filter consumes each measurement as it arrives, so sets may be
partial: use the ``collector`` sync policy with a short ``deadline_ms`` (a reorder window; anything
still out of order within ``history_length_s`` is inserted and replayed by the filter).  Members of one
set are applied in stamp order.

Output ``odometry`` (Odometry): pose in ``world_frame`` and twist in ``base_link_frame`` with 6×6
covariances, after every set (or at ``publish_rate_hz`` of filter time).  Rejected measurements are
counted per sensor and reason (:meth:`EkfLocalization.report`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from edgefuse.errors import ConfigError, PipelineError
from edgefuse.estimation import Ekf, StateEstimator, Ukf, sensors_from_mapping
from edgefuse.estimation.filter import DEFAULT_PROCESS_NOISE
from edgefuse.stages.base import Param, Stage, register_stage

_PORT_KIND = {"imu0": "imu", "imu1": "imu", "odom0": "odom", "odom1": "odom", "gnss0": "gnss"}


@register_stage("ekf_localization")
class EkfLocalization(Stage):
    """15-state EKF (robot_localization's ekf_localization_node behaviour).

    ``sensors`` maps each wired port to its parameters: ``config`` (15 booleans, or a list of state
    names), ``differential``, ``relative``, ``remove_gravitational_acceleration``,
    ``*_rejection_threshold``, ``frame_id`` and, for GNSS, ``yaw_offset_rad``,
    ``magnetic_declination_rad``, ``use_odometry_yaw``, ``zero_altitude``, ``default_variance_m2``
    (:class:`edgefuse.estimation.SensorSpec`).  A sensor's frame defaults to its pipeline input's
    frame, then to the message's ``frame_id``; transforms to the base come from the rig.
    """

    filter_class: ClassVar[type[StateEstimator]] = Ekf
    inputs: ClassVar[dict[str, str]] = {
        "imu0?": "Imu", "imu1?": "Imu", "odom0?": "Odometry", "odom1?": "Odometry", "gnss0?": "NavSatFix",
    }
    outputs: ClassVar[dict[str, str]] = {"odometry": "Odometry"}
    params: ClassVar[dict[str, Param]] = {
        "sensors": Param(dict, required=True, doc="port -> sensor parameters (config: 15 booleans, ...)"),
        "base_link_frame": Param(str, "base_link"),
        "world_frame": Param(str, "odom"),
        "process_noise_covariance": Param(list, list(DEFAULT_PROCESS_NOISE), doc="15 diagonal or 225 values"),
        "initial_estimate_covariance": Param(list, [1e-9] * 15, doc="15 diagonal or 225 values"),
        "initial_state": Param(list, None, doc="15 values (default zeros)"),
        "two_d_mode": Param(bool, False),
        "history_length_s": Param(float, 1.0, doc="out-of-order window (0: reject older measurements)"),
        "history_size": Param(int, 512),
        "max_future_s": Param(float, 5.0, doc="reject measurements this far ahead of the filter time"),
        "future_reset_count": Param(int, 10, doc="accept a time jump after this many future rejections"),
        "publish_rate_hz": Param(float, 0.0, doc="0: publish after every set"),
        "alpha": Param(float, 1e-3, doc="UKF sigma-point spread"),
        "beta": Param(float, 2.0),
        "kappa": Param(float, 0.0),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.p
        self.input_frames: dict[str, str | None] = {}
        sensors = dict(p["sensors"])
        problems = [f"'{k}' is not a port (ports: {sorted(_PORT_KIND)})" for k in sensors if k not in _PORT_KIND]
        if problems:
            raise PipelineError(f"stage '{name}': sensors: " + "; ".join(problems))
        self._sensor_params = {k: {"kind": _PORT_KIND[k], **dict(v)} for k, v in sensors.items()
                               if isinstance(v, Mapping)}
        if len(self._sensor_params) != len(sensors):
            raise PipelineError(f"stage '{name}': each sensors entry must be a mapping")
        self._period_ns = int(1e9 / p["publish_rate_hz"]) if p["publish_rate_hz"] > 0 else 0
        self._next_pub: int | None = None
        self.filter = self._build({})

    def _build(self, frames: Mapping[str, str | None]) -> StateEstimator:
        p = self.p
        specs = dict(self._sensor_params)
        for port, frame in frames.items():
            if port in specs and frame and "frame_id" not in specs[port]:
                specs[port] = {**specs[port], "frame_id": frame}
        try:
            return self.filter_class(
                sensors_from_mapping(specs), rig=self.rig, base_frame=p["base_link_frame"],
                world_frame=p["world_frame"], process_noise=p["process_noise_covariance"],
                initial_covariance=p["initial_estimate_covariance"], initial_state=p["initial_state"],
                two_d_mode=p["two_d_mode"], history_length_s=p["history_length_s"],
                history_size=p["history_size"], max_future_s=p["max_future_s"],
                future_reset_count=p["future_reset_count"], alpha=p["alpha"], beta=p["beta"], kappa=p["kappa"],
            )
        except ConfigError as exc:
            raise PipelineError(f"stage '{self.name}': {exc.message}") from None

    def start(self) -> None:
        """Rebuild with the pipeline inputs' frames (known now) and compile the kernel."""
        if any(self.input_frames.values()):
            self.filter = self._build(self.input_frames)
        self.filter.warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        items = sorted(((getattr(v, "stamp_ns", 0), port, v) for port, v in inputs.items()
                        if port in self._sensor_params), key=lambda it: it[0])
        for _, port, payload in items:
            self.filter.add(port, payload)
        t = self.filter.stamp_ns
        if t is None:
            return {}
        if self._period_ns:
            if self._next_pub is not None and t < self._next_pub:
                return {}
            self._next_pub = (t // self._period_ns + 1) * self._period_ns
        return {"odometry": self.filter.odometry()}

    def report(self) -> dict[str, Any]:
        """Accepted / rejected (per sensor and reason) / replayed counts."""
        return self.filter.report()


@register_stage("ukf_localization")
class UkfLocalization(EkfLocalization):
    """15-state UKF (ukf_localization_node's behaviour); parameters as ``ekf_localization`` plus
    ``alpha``, ``beta``, ``kappa``."""

    filter_class: ClassVar[type[StateEstimator]] = Ukf


__all__ = ["EkfLocalization", "UkfLocalization"]
