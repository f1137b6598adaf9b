"""The ekf_localization stage inside the runner, on the start of the real Husky bag."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefuse.bag import open_bag
from edgefuse.pipeline import PipelineRunner, load_pipeline
from edgefuse.pipeline.config import OutputSpec
from tests.stages._sinks import ListSink

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "edgefuse" / "data" / "pipelines" / "husky_localization.yaml"


def test_husky_pipeline_first_20_seconds() -> None:
    config = load_pipeline(PIPELINE)
    sink = ListSink()
    runner = PipelineRunner(config, [sink])
    runner.start()
    n = 0
    with open_bag(config.bag_path) as reader:  # type: ignore[arg-type]
        for env in reader.envelopes([s.topic for s in config.inputs.values()]):
            runner.feed(env)
            n += 1
            if n >= 850:  # ~20 s
                break
    runner.finish()
    rep = runner.report()
    assert rep["stages"]["ekf"]["errors"] == 0
    assert rep["outputs_written"]["/odometry/filtered"] > 400  # 30 Hz of filter time
    stamps = [s for _, s, _ in sink.items]
    assert stamps == sorted(stamps)
    last = sink.items[-1][2]
    assert last.frame_id == "odom" and last.child_frame_id == "base_link"
    assert np.all(np.isfinite(last.position)) and np.all(np.isfinite(last.pose_covariance))
    assert np.linalg.norm(last.position[:2]) > 5.0  # it drove ~15 m in 20 s
    stage = runner.stages[0]
    report = stage.report()
    assert report is not None
    assert report["accepted"]["imu0"] > 1500 and report["accepted"]["gnss0"] > 40
    assert sum(report["rejected_total"].values()) == 0


def test_output_spec_type() -> None:
    config = load_pipeline(PIPELINE)
    assert [o.topic for o in config.outputs] == ["/odometry/filtered"]
    assert isinstance(config.outputs[0], OutputSpec)
