"""The ``online_time_offset`` pipeline stage on the real Husky bag (IMU vs wheel odometry)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from edgefuse.bag import open_bag
from edgefuse.errors import PipelineError
from edgefuse.stages import stage_class

from .conftest import HUSKY_BAG

IMU = "/imu/data"
ODOM = "/husky_velocity_controller/odom"
# the IMU is mounted with base z along its y axis (R_base_from_imu = Rz(-90°)·Rx(90°))
PARAMS = {"field_a": "gyro_y", "field_b": "twist_yaw", "window_s": 40.0, "hop_s": 20.0, "max_lag_ms": 800.0}


def run_stage(params: dict[str, Any], shift_b_after_s: float | None = None, shift_ms: float = 0.0) -> Any:
    cls = stage_class("online_time_offset")
    assert cls is not None
    stage = cls("toff", params)
    stage.start()
    with open_bag(HUSKY_BAG) as bag:
        envs = list(bag.envelopes([IMU, ODOM]))
    t0 = envs[0].stamp_ns
    for env in envs:
        payload = env.payload
        if env.topic == ODOM:
            if shift_b_after_s is not None and env.stamp_ns - t0 > shift_b_after_s * 1e9:
                payload = dataclasses.replace(payload, stamp_ns=payload.stamp_ns - int(shift_ms * 1e6))
            stage.process({"b": payload}, env.stamp_ns)
        else:
            stage.process({"a": payload}, env.stamp_ns)
    return stage


def test_stage_estimates_the_husky_offset_without_drift() -> None:
    stage = run_stage(PARAMS)
    rep = stage.report()
    assert rep["updates"] >= 10
    assert rep["latest_ok"] is not None
    # the offline estimate on the whole bag is -390 ms ± 8 ms
    assert -420e6 < rep["latest_ok"]["offset_ns"] < -360e6
    oks = [h for h in rep["history"] if h["verdict"] == "ok"]
    assert len(oks) >= 0.5 * len(rep["history"])
    assert not rep["drift_detected"]


def test_stage_flags_a_clock_jump() -> None:
    """Odometry stamps jump 80 ms earlier half-way through (the offset grows by 80 ms): drift."""
    stage = run_stage({**PARAMS, "reference_offset_ms": -390.0}, shift_b_after_s=150.0, shift_ms=80.0)
    rep = stage.report()
    assert rep["drift_detected"]
    assert abs(rep["latest_ok"]["delta_ns"] - 80e6) < 25e6


def test_stage_bad_params_and_inputs() -> None:
    cls = stage_class("online_time_offset")
    assert cls is not None
    with pytest.raises(PipelineError, match="field_a"):
        cls("x", {**PARAMS, "field_a": "yaw"})
    with pytest.raises(PipelineError, match="method"):
        cls("x", {**PARAMS, "method": "cca"})
    with pytest.raises(PipelineError, match="4 × max_lag"):
        cls("x", {**PARAMS, "window_s": 1.0})
    assert any("field_a" in p for p in cls.check_params({"field_b": "speed"}))
    stage = cls("x", PARAMS)
    with pytest.raises(PipelineError, match="before start"):
        stage.process({}, 0)
    stage.start()
    with open_bag(HUSKY_BAG) as bag:
        odom = next(iter(bag.envelopes([ODOM]))).payload
    with pytest.raises(PipelineError, match="gyro_y needs Imu, got Odometry"):
        stage.process({"a": odom}, 0)  # field gyro_y on an Odometry payload


def test_core_does_not_import_calibration() -> None:
    """The core (every built-in stage, the pipeline, replay, the CLI) never imports edgefuse_calibration."""
    code = ("import sys, edgefuse.stages.base as s, edgefuse.pipeline, edgefuse.replay, edgefuse.cli;"
            "names = s.known_stage_types();"
            "print('online_time_offset' in names, any(m.startswith('edgefuse_calibration') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_stage_is_a_plugin_found_through_the_entry_point() -> None:
    from edgefuse_calibration.stages import OnlineTimeOffset

    assert OnlineTimeOffset.type_name == "online_time_offset"
    assert stage_class("online_time_offset") is OnlineTimeOffset


def test_stage_in_a_replayed_pipeline(tmp_path: Any) -> None:
    """The stage through ``edgefuse replay`` (sync policy ``each``), estimates in the report."""
    import json

    from edgefuse.cli import main

    pipeline = tmp_path / "husky_time.yaml"
    pipeline.write_text(f"""edgefuse_pipeline: 1
name: husky_time_offset
bag: {HUSKY_BAG}
inputs:
  imu: {{topic: {IMU}, type: Imu}}
  odom: {{topic: {ODOM}, type: Odometry}}
sync:
  policy: each
stages:
  - name: toff
    type: online_time_offset
    in: {{a: imu, b: odom}}
    params: {{field_a: gyro_y, field_b: twist_yaw, window_s: 40, hop_s: 20, max_lag_ms: 800}}
outputs: []
""")
    report = tmp_path / "report.json"
    assert main(["replay", str(pipeline), "--max-speed", "--report", str(report)]) == 0
    details = json.loads(report.read_text())["stages"]["toff"]["details"]
    assert details["updates"] >= 10 and not details["drift_detected"]
    assert -420e6 < details["latest_ok"]["offset_ns"] < -360e6
