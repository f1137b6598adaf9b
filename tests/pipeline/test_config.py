from __future__ import annotations

from pathlib import Path

import pytest

from edgefuse.errors import ValidationError
from edgefuse.pipeline.config import check_pipeline, load_pipeline, ms_to_ns_params


def test_valid_pipeline_loads_in_topological_order(tiny_pipeline: Path) -> None:
    cfg = load_pipeline(tiny_pipeline)
    assert [s.name for s in cfg.stages] == ["project"]
    assert cfg.sync_inputs == ["lidar", "camera"]
    assert cfg.sync_params["max_interval_ns"] == 60_000_000
    assert cfg.e2e_budget is not None and cfg.e2e_budget.deadline_ms == 50
    assert cfg.inputs["lidar"].frame_id == "velodyne"
    assert [o.type for o in cfg.outputs] == ["Image", "PointCloud"]


def test_ms_params_become_ns() -> None:
    converted = ms_to_ns_params({"a_ms": 1.5, "b": 2, "n": {"c_ms": 2}})
    assert converted == {"a_ns": 1_500_000, "b": 2, "n": {"c_ns": 2_000_000}}


def test_every_problem_is_reported_at_once(tmp_path: Path, tiny_pipeline: Path) -> None:
    bad = """\
edgefuse_pipeline: 1
rig: rig.yaml
inputs:
  lidar: {topic: /lidar, type: PointCloud, sensor: lidar}
  camera: {topic: /cam/image, type: CompressedImage, sensor: cam}
  imu: {topic: /imu, type: Imu, frame_id: imu_link}
sync: {policy: approximate, inputs: [lidar, camera]}
stages:
  - {name: a, type: no_such_stage, in: {x: lidar}}
  - {name: project, type: lidar_camera_projection, in: {cloud: lidar, image: camera}, params: {camera: nope}}
  - {name: d1, type: decode_image, in: {image: d2.image}}
  - {name: d2, type: decode_image, in: {image: d1.image}}
  - {name: d3, type: decode_image, in: {image: camera}, params: {grayscale: 3, bogus: 1}}
outputs:
  - {topic: /o, from: missing.port}
"""
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    cfg, problems = check_pipeline(path)
    assert cfg is None
    text = "\n".join(str(p) for p in problems)
    assert "unknown stage type 'no_such_stage'" in text
    assert "type mismatch on edge camera -> project.image: CompressedImage is not Image" in text
    assert "camera 'nope' is not in the rig" in text
    assert "cycle in the stage graph" in text and "d1" in text and "d2" in text
    assert "parameter 'grayscale' must be bool" in text
    assert "no parameter 'bogus'" in text
    assert "calibration frame 'imu_link' is missing from the rig" in text
    assert "'from: missing.port' names no pipeline input" in text
    # every problem carries the file and a line number
    assert all(p.file == str(path) and p.line is not None for p in problems)
    lines = {p.line for p in problems}
    assert 9 in lines  # the unknown stage type's line
    with pytest.raises(ValidationError) as err:
        load_pipeline(path)
    assert len(err.value.problems) == len(problems)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("edgefuse_pipeline: 1\ninputs:\n  a: {topic: /a, type: Image\n")
    _, problems = check_pipeline(path)
    assert len(problems) == 1 and "YAML syntax error" in problems[0].message and problems[0].line is not None


def test_missing_calibration_transform(tmp_path: Path, tiny_pipeline: Path) -> None:
    text = tiny_pipeline.read_text().replace("params: {camera: cam, min_depth_m: 0.5}",
                                             "params: {camera: cam, cloud_frame: radar}")
    tiny_pipeline.write_text(text)
    _, problems = check_pipeline(tiny_pipeline)
    assert any("no calibration from frame 'radar'" in p.message for p in problems)


def test_bad_sync_params_and_budget(tmp_path: Path, tiny_pipeline: Path) -> None:
    text = tiny_pipeline.read_text().replace("params: {queue_size: 5, max_interval_ms: 60}",
                                             "params: {queue_size: 0, wobble: 1}")
    text = text.replace("budget_ms: 40", "budget_ms: -1")
    tiny_pipeline.write_text(text)
    _, problems = check_pipeline(tiny_pipeline)
    msgs = " | ".join(p.message for p in problems)
    assert "queue_size" in msgs
    assert "wobble" in msgs
    assert "budget must be > 0" in msgs


def test_no_knock_on_errors(tmp_path: Path, tiny_pipeline: Path) -> None:
    text = tiny_pipeline.read_text()
    text = text.replace("camera: {topic: /cam/image, type: Image, sensor: cam}",
                        "camera: {topic: /cam/image, type: Imgae, sensor: cam}")
    text = text.replace("params: {queue_size: 5, max_interval_ms: 60}", "params: {queue_size: 5, max_interval_ms: abc}")
    tiny_pipeline.write_text(text)
    _, problems = check_pipeline(tiny_pipeline)
    msgs = [p.message for p in problems]
    assert any("unknown type 'Imgae'" in m for m in msgs)
    assert any("sync.params.max_interval_ms must be a number of milliseconds" in m for m in msgs)
    assert not any("neither a pipeline input" in m for m in msgs), msgs
    assert not any("unknown parameter" in m for m in msgs), msgs


def test_outputs_of_stages_in_a_cycle_are_not_reported_twice(tmp_path: Path, tiny_pipeline: Path) -> None:
    text = tiny_pipeline.read_text().replace("""outputs:
""", """  - {name: d1, type: decode_image, in: {image: d2.image}}
  - {name: d2, type: decode_image, in: {image: d1.image}}
outputs:
  - {topic: /out/d1, from: d1.image}
""")
    tiny_pipeline.write_text(text)
    _, problems = check_pipeline(tiny_pipeline)
    msgs = [p.message for p in problems]
    assert any("cycle in the stage graph" in m for m in msgs)
    assert not any("/out/d1" in m for m in msgs), msgs


def test_broken_rig_reports_only_the_rig(tmp_path: Path, tiny_pipeline: Path) -> None:
    rig = tmp_path / "rig.yaml"
    rig.write_text(rig.read_text().replace("rotation: {rpy_deg: [0.0, 0.0, 0.0]}",
                                           "rotation: {matrix: [[1, 0, 0], [0, 2, 0], [0, 0, 1]]}"))
    _, problems = check_pipeline(tiny_pipeline)
    assert problems
    assert all(p.file == str(rig) for p in problems), [str(p) for p in problems]
