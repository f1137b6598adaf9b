"""Typed stage parameters (edgefuse.stages.params): one declaration gives type, default, unit, range and doc,
and validation, the JSON Schema and ``edgefuse stages`` all derive from it."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, dataclass
from typing import Any, Literal

import pytest

from edgefuse.errors import PipelineError
from edgefuse.stages import Stage, StageParams, known_stage_types, param, stage_class
from edgefuse.stages.params import Declared


@dataclass(frozen=True, kw_only=True)
class _Example(StageParams):
    name: str = param(min_len=1, doc="required")
    ratio: float = param(0.5, ge=0.0, le=1.0, doc="a share")
    count: int = param(3, ge=1, le=10, unit="px")
    mode: Literal["a", "b"] = param("a")
    axis: Literal[0, 1] = param(1)
    pair: tuple[float, float] = param((0.0, 1.0), ge=-5.0, le=5.0)
    names: tuple[str, ...] | None = param(None, min_len=1, max_len=3, unique=True)
    fill: float = param(0.0, ge=-1.0, le=1.0, finite=False, nan=True)
    box: tuple[float, float, float] | None = param(None, ge=-10.0, le=10.0, finite=False)

    def check(self) -> list[str]:
        return ["pair must be increasing"] if self.pair[1] <= self.pair[0] else []


def _problems(raw: dict[str, Any]) -> list[str]:
    return _Example.parse(raw, "stage type 'example'")[1]


def test_parse_gives_typed_converted_values() -> None:
    p, problems = _Example.parse({"name": "x", "ratio": 1, "pair": [-1, 2], "names": ["a", "b"]})
    assert problems == [] and p is not None
    assert p.ratio == 1.0 and isinstance(p.ratio, float)  # an integer is accepted for a float and converted
    assert p.pair == (-1.0, 2.0) and p.names == ("a", "b")  # YAML lists become tuples
    assert (p.count, p.mode, p.axis, p.fill, p.box) == (3, "a", 1, 0.0, None)
    with pytest.raises(FrozenInstanceError):
        p.ratio = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "needle"), [
    ({}, "stage type 'example' needs parameter 'name'"),
    ({"name": "x", "bogus": 1}, "stage type 'example' has no parameter 'bogus' (known: axis, box, count"),
    ({"name": 3}, "parameter 'name' must be str, got 3"),
    ({"name": ""}, "parameter 'name' must not be empty"),
    ({"name": "x", "ratio": True}, "parameter 'ratio' must be float, got True"),
    ({"name": "x", "ratio": "0.5"}, "parameter 'ratio' must be float, got '0.5'"),
    ({"name": "x", "ratio": 1.5}, "parameter 'ratio' must be >= 0 and <= 1, got 1.5"),
    ({"name": "x", "ratio": math.nan}, "parameter 'ratio' must be a number, got nan"),
    ({"name": "x", "ratio": math.inf}, "parameter 'ratio' must be a finite number, got inf"),
    ({"name": "x", "ratio": 10**400}, "parameter 'ratio' must be >= 0 and <= 1, got 1000"),
    ({"name": "x", "count": 2.0}, "parameter 'count' must be int, got 2.0"),
    ({"name": "x", "count": 0}, "parameter 'count' must be >= 1 and <= 10 px, got 0"),
    ({"name": "x", "count": 2**70}, "parameter 'count' must be >= 1 and <= 10 px"),
    ({"name": "x", "mode": "c"}, "parameter 'mode' must be one of a, b, got 'c'"),
    ({"name": "x", "axis": True}, "parameter 'axis' must be one of 0, 1, got True"),  # True == 1, but not an axis
    ({"name": "x", "pair": [1.0]}, "parameter 'pair' must have 2 elements, got 1"),
    ({"name": "x", "pair": "01"}, "parameter 'pair' must be a list of 2 float"),
    ({"name": "x", "pair": [0, 9]}, "parameter 'pair[1]' must be >= -5 and <= 5, got 9.0"),
    ({"name": "x", "pair": [1, 0]}, "pair must be increasing"),
    ({"name": "x", "names": []}, "parameter 'names' must not be empty"),
    ({"name": "x", "names": ["a", "b", "c", "d"]}, "parameter 'names' takes at most 3 elements, got 4"),
    ({"name": "x", "names": ["a", "a"]}, "parameter 'names' must hold unique elements"),
    ({"name": "x", "names": ["a", ""]}, "parameter 'names[1]' must not be empty"),
    ({"name": "x", "fill": 2.0}, "parameter 'fill' must be >= -1 and <= 1, got 2.0"),
    ({"name": "x", "box": [0, 0, math.nan]}, "parameter 'box[2]' must be a number, got nan"),
])
def test_every_problem_comes_from_the_declaration(raw: dict[str, Any], needle: str) -> None:
    problems = _problems(raw)
    assert any(needle in p for p in problems), problems


def test_nan_and_inf_only_where_declared() -> None:
    p, problems = _Example.parse({"name": "x", "fill": math.nan, "box": [-math.inf, 0, math.inf]})
    assert problems == [] and p is not None
    assert math.isnan(p.fill) and p.box == (-math.inf, 0.0, math.inf)


def test_all_problems_at_once() -> None:
    problems = _problems({"ratio": 2, "count": "x", "mode": 1, "extra": 0})
    assert len(problems) == 5  # missing name, unknown extra, ratio, count, mode


def _declared(type_name: str) -> tuple[Declared, ...]:
    cls = stage_class(type_name)
    assert cls is not None
    return cls.Params.declared()


@pytest.mark.parametrize("type_name", known_stage_types())
def test_every_number_has_a_range_and_every_parameter_a_doc(type_name: str) -> None:
    """Every numeric parameter (and every number inside a list) is range-checked at validation time."""
    for d in _declared(type_name):
        kind = d.kind.item if d.kind.base == "list" else d.kind
        assert kind is not None
        if kind.base in ("int", "float"):
            assert d.info.ge is not None or d.info.gt is not None, (type_name, d.name)
            assert d.info.le is not None or d.info.lt is not None, (type_name, d.name)
        if kind.base == "any":
            assert d.info.schema is not None, (type_name, d.name)  # checked by the class's check()
        assert d.info.doc, (type_name, d.name)


@pytest.mark.parametrize("type_name", known_stage_types())
def test_defaults_pass_their_own_declaration(type_name: str) -> None:
    cls = stage_class(type_name)
    assert cls is not None
    required = {d.name for d in cls.Params.declared() if d.required}
    defaults = {d.name: d.default for d in cls.Params.declared() if not d.required}
    problems = cls.Params.parse(defaults, type_name)[1]
    assert all("needs parameter" in p for p in problems), problems
    assert {p.split("'")[-2] for p in problems} == required


def test_stage_takes_raw_or_typed_parameters() -> None:
    from edgefuse.stages.objects import NmsParams, NmsStage, WbfParams

    from_raw = NmsStage("a", {"method": "gaussian", "iou_thr": 0.4})
    typed = NmsParams.parse({"method": "gaussian", "iou_thr": 0.4})[0]
    assert typed is not None
    from_typed = NmsStage("b", typed)
    assert from_raw.params == from_typed.params
    assert from_typed.params.iou_thr == 0.4  # typed attribute access, no dict look-up
    with pytest.raises(PipelineError, match="parameter 'iou_thr' must be >= 0 and <= 1"):
        NmsStage("c", {"iou_thr": 2.0})
    with pytest.raises(PipelineError, match="expected NmsParams"):
        NmsStage("d", WbfParams.parse({})[0])


@pytest.mark.parametrize(("type_name", "raw", "needle"), [
    # each of these passed `edgefuse validate` before and failed when the stage was constructed
    ("deskew", {"time_unit": "days"}, "parameter 'time_unit' must be one of auto, ns, us, ms, s"),
    ("deskew", {"max_extrapolation_ms": -1.0}, "parameter 'max_extrapolation_ms' must be >= 0"),
    ("bev_grid", {"resolution_m": -0.1}, "parameter 'resolution_m' must be > 0"),
    ("bev_grid", {"resolution_m": 1e-5}, "cells (at most 16777216)"),
    ("bev_grid", {"channels": ["max_z", "height"]}, "parameter 'channels[1]' must be one of max_z"),
    ("bev_grid", {"x_range": [10, 0]}, "x_range must be [min, max] with max > min"),
    ("depth_densify", {"dilation_size": 4}, "dilation_size must be odd"),
    ("depth_densify", {"width": 10}, "give both width and height"),
    ("lidar_camera_projection", {"camera": "c", "min_depth_m": 50.0, "max_depth_m": 10.0},
     "min_depth_m (50) must be < max_depth_m (10)"),
    ("lidar_camera_projection", {"camera": "c", "max_points": -1}, "parameter 'max_points' must be >= 1"),
    ("radar_polar_points", {"azimuth_axis": 2}, "parameter 'azimuth_axis' must be one of 0, 1"),
    ("radar_polar_points", {"n_range": 0}, "parameter 'n_range' must be >= 3"),
    # a 1 x 1 scan made the extractor's warm-up write past its buffers (heap corruption, found by the fuzz test)
    ("radar_polar_points", {"n_azimuth": 1, "threshold": -1.0}, "parameter 'n_azimuth' must be >= 3"),
    ("pointcloud_crop", {"box_min": [0, 0, 0]}, "give both box_min and box_max"),
    ("pointcloud_crop", {"min_range_m": 5.0, "max_range_m": 1.0}, "need 0 <= min_m < max_m"),
    ("ground_removal", {"threshold_m": -1.0}, "parameter 'threshold_m' must be > 0"),
    ("ground_removal", {"seed": -3}, "parameter 'seed' must be >= 0"),
    ("nms", {"method": "soft"}, "parameter 'method' must be one of hard, linear, gaussian"),
    ("wbf", {"weights": [1.0, 0.0]}, "parameter 'weights[1]' must be > 0"),
    ("wbf", {"conf_type": "mean"}, "parameter 'conf_type' must be one of avg"),
    ("track", {"motion": "cv", "filter": "ukf"}, "motion 'cv' does not go with filter 'ukf'"),
    ("track", {"meas_std_m": 0.0}, "parameter 'meas_std_m' must be > 0"),
    ("ekf_localization", {"sensors": {"imu9": {"config": ["x"]}}}, "sensors: 'imu9' is not a port"),
    ("ekf_localization", {"sensors": {"imu0": {"config": ["bogus"]}}}, "unknown state variable"),
    ("ekf_localization", {"sensors": {"imu0": {"config": ["yaw"], "yaw_offset_rad": "north"}}},
     "sensors.imu0.yaw_offset_rad must be a number"),
    ("ekf_localization", {"sensors": {"imu0": {"config": ["yaw"]}}, "process_noise_covariance": [1.0] * 14},
     "process_noise_covariance must have 15 (diagonal) or 225 values"),
    ("ekf_localization", {"sensors": {"imu0": {"config": ["yaw"]}}, "history_size": 1},
     "parameter 'history_size' must be >= 2"),
    ("online_time_offset", {"field_a": "yaw", "field_b": "speed"}, "parameter 'field_a' must be one of gyro_x"),
    ("online_time_offset", {"field_a": "gyro_z", "field_b": "speed", "window_s": 1.0}, "4 × max_lag"),
])
def test_runtime_failures_are_now_validation_problems(type_name: str, raw: dict[str, Any], needle: str) -> None:
    cls = stage_class(type_name)
    assert cls is not None
    problems = cls.check_params(raw)
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize("type_name", known_stage_types())
def test_json_schema_and_description_are_derived(type_name: str) -> None:
    cls = stage_class(type_name)
    assert cls is not None
    schema = cls.Params.json_schema()
    declared = cls.Params.declared()
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == [d.name for d in declared]
    assert schema.get("required", []) == [d.name for d in declared if d.required]
    info = cls.describe()
    assert info["type"] == type_name
    assert [p["name"] for p in info["params"]] == [d.name for d in declared]
    assert {p["port"] for p in info["inputs"]} == {p.rstrip("?") for p in cls.inputs}


def test_a_plugin_style_stage_declares_parameters_the_same_way() -> None:
    class Scale(Stage):
        Params = _Example
        params: _Example

        def process(self, inputs: Any, stamp_ns: int) -> dict[str, Any]:
            return {}

    stage = Scale("s", {"name": "n", "count": 5})
    assert stage.params.count == 5
    assert Scale.check_params({"name": "n", "count": 11}) == ["parameter 'count' must be >= 1 and <= 10 px, got 11"]
