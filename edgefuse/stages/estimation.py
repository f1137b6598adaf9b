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

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgefuse.errors import ConfigError, PipelineError
from edgefuse.estimation import Ekf, SensorSpec, StateEstimator, Ukf, sensors_from_mapping
from edgefuse.estimation.filter import DEFAULT_PROCESS_NOISE
from edgefuse.estimation.state import N_STATE, parse_matrix
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

__all__ = ["EkfLocalization", "LocalizationParams", "UkfLocalization"]

_PORT_KIND = {"imu0": "imu", "imu1": "imu", "odom0": "odom", "odom1": "odom", "gnss0": "gnss"}
#: largest |value| of a covariance or initial state entry
_MAX_ABS = 1e12


def _sensor_schema() -> dict[str, Any]:
    """JSON Schema of one ``sensors`` entry, from :class:`SensorSpec`'s fields."""
    hints = typing.get_type_hints(SensorSpec)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(SensorSpec):
        if f.name in ("name", "kind", "mask"):
            continue
        hint = hints[f.name]
        if f.name == "config":
            props[f.name] = {"description": "15 booleans (state order) or a list of state names",
                             "type": "array", "items": {"type": ["boolean", "string"]}}
        elif hint is bool:
            props[f.name] = {"type": "boolean"}
        elif hint is float:
            props[f.name] = {"type": "number"}
        else:
            props[f.name] = {"type": ["string", "null"]}
    entry = {"type": "object", "properties": props, "required": ["config"], "additionalProperties": False}
    return {"type": "object", "propertyNames": {"enum": sorted(_PORT_KIND)}, "additionalProperties": entry}


def _sensor_value_problems(port: str, entry: Mapping[str, Any]) -> list[str]:
    """Type and range of each field of one ``sensors`` entry (by :class:`SensorSpec`'s annotations)."""
    hints = typing.get_type_hints(SensorSpec)
    problems = []
    for key, value in entry.items():
        hint = hints.get(str(key))
        where = f"sensors.{port}.{key}"
        if hint is bool and not isinstance(value, bool):
            problems.append(f"{where} must be true or false, got {value!r}")
        elif hint is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{where} must be a number, got {value!r}")
                continue
            number = float(value)
            allow_inf = str(key).endswith("_rejection_threshold")
            if math.isnan(number) or (math.isinf(number) and not (allow_inf and number > 0)):
                problems.append(f"{where} must be a finite number{' (or .inf)' if allow_inf else ''}, got {value!r}")
            elif not math.isinf(number) and abs(number) > _MAX_ABS:
                problems.append(f"{where} must be within ±{_MAX_ABS:g}, got {value!r}")
            elif key in ("gravity_m_s2", "default_variance_m2") and not number > 0:
                problems.append(f"{where} must be > 0, got {value!r}")
        elif key == "frame_id" and value is not None and (not isinstance(value, str) or not value):
            problems.append(f"{where} must be a frame name, got {value!r}")
    return problems


def _matrix_problems(name: str, value: Any) -> list[str]:
    try:
        matrix = parse_matrix(value, name)
    except ConfigError as exc:
        return [exc.message]
    if float(np.abs(matrix).max()) > _MAX_ABS:
        return [f"{name} values must be within ±{_MAX_ABS:g}"]
    return []


_MATRIX_SCHEMA = {"type": "array", "items": {"anyOf": [{"type": "number"},
                                                      {"type": "array", "items": {"type": "number"}}]}}


@dataclass(frozen=True, kw_only=True)
class LocalizationParams(StageParams):
    """Parameters of ``ekf_localization`` and ``ukf_localization``."""

    # RUF009: `param` returns a dataclass field (like `field()`); ruff cannot tell for these annotations
    sensors: dict[str, Any] = param(  # noqa: RUF009
        min_len=1, max_len=len(_PORT_KIND), schema=_sensor_schema(),
        doc="port -> sensor parameters (config: 15 booleans or state names, ...)")
    base_link_frame: str = param("base_link", min_len=1, doc="frame of the twist and of the robot")
    world_frame: str = param("odom", min_len=1, doc="frame of the pose")
    process_noise_covariance: Any = param(  # noqa: RUF009
        DEFAULT_PROCESS_NOISE, schema=_MATRIX_SCHEMA, doc="15 diagonal values, 225 row-major values or 15 rows of 15")
    initial_estimate_covariance: Any = param(  # noqa: RUF009
        (1e-9,) * N_STATE, schema=_MATRIX_SCHEMA, doc="15 diagonal values, 225 row-major values or 15 rows of 15")
    initial_state: tuple[float, ...] | None = param(None, min_len=N_STATE, max_len=N_STATE, ge=-_MAX_ABS,
                                                    le=_MAX_ABS, doc="15 values in state order (default zeros)")
    two_d_mode: bool = param(False, doc="fuse in the plane (z, roll, pitch and their rates held at 0)")
    history_length_s: float = param(1.0, unit="s", ge=0.0, le=3600.0,
                                    doc="out-of-order window (0: reject older measurements)")
    history_size: int = param(512, ge=2, le=65_536, doc="most states kept for out-of-order replay")
    max_future_s: float = param(5.0, unit="s", ge=0.0, le=86_400.0,
                                doc="reject measurements this far ahead of the filter time")
    future_reset_count: int = param(10, ge=1, le=1_000_000, doc="accept a time jump after this many future rejections")
    publish_rate_hz: float = param(0.0, unit="Hz", ge=0.0, le=1e6, doc="0: publish after every set")
    alpha: float = param(1e-3, gt=0.0, le=1.0, doc="UKF sigma-point spread")
    beta: float = param(2.0, ge=-1e3, le=1e3, doc="UKF prior knowledge of the distribution (2: Gaussian)")
    kappa: float = param(0.0, ge=-1e3, le=1e3, doc="UKF secondary scaling")

    def check(self) -> list[str]:
        """Sensors on known ports with valid sensor parameters; valid covariance matrices."""
        problems = [f"sensors: '{k}' is not a port (ports: {sorted(_PORT_KIND)})" for k in self.sensors
                    if k not in _PORT_KIND]
        if not problems:
            if not all(isinstance(v, Mapping) for v in self.sensors.values()):
                problems.append("sensors: each sensors entry must be a mapping")
            else:
                for port, entry in self.sensors.items():
                    problems += _sensor_value_problems(port, entry)
            if not problems:
                try:
                    sensors_from_mapping({k: {"kind": _PORT_KIND[k], **dict(v)} for k, v in self.sensors.items()})
                except ConfigError as exc:
                    problems.append(f"sensors: {exc.message}")
                except (TypeError, ValueError) as exc:  # a sensor field given a value of the wrong type
                    problems.append(f"sensors: {exc}")
        problems += _matrix_problems("process_noise_covariance", self.process_noise_covariance)
        problems += _matrix_problems("initial_estimate_covariance", self.initial_estimate_covariance)
        return problems


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
    Params = LocalizationParams
    params: LocalizationParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        self.input_frames: dict[str, str | None] = {}
        self._sensor_params = {k: {"kind": _PORT_KIND[k], **dict(v)} for k, v in p.sensors.items()}
        self._period_ns = int(1e9 / p.publish_rate_hz) if p.publish_rate_hz > 0 else 0
        self._next_pub: int | None = None
        self.filter = self._build({})

    def _build(self, frames: Mapping[str, str | None]) -> StateEstimator:
        p = self.params
        specs = dict(self._sensor_params)
        for port, frame in frames.items():
            if port in specs and frame and "frame_id" not in specs[port]:
                specs[port] = {**specs[port], "frame_id": frame}
        try:
            return self.filter_class(
                sensors_from_mapping(specs), rig=self.rig, base_frame=p.base_link_frame,
                world_frame=p.world_frame, process_noise=p.process_noise_covariance,
                initial_covariance=p.initial_estimate_covariance, initial_state=p.initial_state,
                two_d_mode=p.two_d_mode, history_length_s=p.history_length_s,
                history_size=p.history_size, max_future_s=p.max_future_s,
                future_reset_count=p.future_reset_count, alpha=p.alpha, beta=p.beta, kappa=p.kappa,
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

