"""Rig YAML: load, roundtrip, merge, and every bad-input path reported with file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgefuse
from edgefuse.errors import CalibrationError, ValidationError
from edgefuse.rig import (
    FrameGraph,
    Rig,
    Sensor,
    Transform,
    load_rig,
    merge_rig_file,
    save_rig,
    validate_rig_file,
    validate_rig_text,
)

EXAMPLE = Path(edgefuse.__file__).parent / "data" / "rig_example.yaml"

GOOD = """\
edgefuse_rig: 1
base_frame: base_link
frames:
  - parent: base_link
    child: velodyne
    translation: [1.0, 0.0, 1.5]
    rotation: {rpy_deg: [0, 0, 90]}
  - parent: velodyne
    child: cam
    translation: [0.1, 0.0, 0.0]
    rotation: {quaternion_xyzw: [-0.5, 0.5, -0.5, 0.5]}
cameras:
  cam:
    frame_id: cam
    model: plumb_bob
    width: 640
    height: 480
    K: [[500, 0, 320], [0, 500, 240], [0, 0, 1]]
    D: [-0.2, 0.05, 0.001, 0.0, 0.0]
sensors:
  lidar: {frame_id: velodyne, topic: /points, kind: lidar, time_offset_ns: 0}
  cam: {frame_id: cam, topic: /image, kind: camera, time_offset_ns: -5000000}
"""


def _problems(text: str) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in validate_rig_text(text, "rig.yaml")]


def test_load_good_file(tmp_path: Path) -> None:
    path = tmp_path / "rig.yaml"
    path.write_text(GOOD)
    rig = load_rig(path)
    assert rig.base_frame == "base_link"
    T = rig.transform("base_link", "velodyne")
    np.testing.assert_allclose(T.apply([1.0, 0.0, 0.0]), [1.0, 1.0, 1.5], atol=1e-12)  # yaw 90°
    # the quaternion above is the standard LiDAR(x fwd, y left, z up) -> optical frame rotation
    np.testing.assert_allclose(rig.transform("velodyne", "cam").apply([0.0, 0.0, 1.0]), [1.1, 0.0, 0.0],
                               atol=1e-12)
    assert rig.camera("cam").model == "plumb_bob"
    assert rig.sensor_for_topic("/image") == Sensor("cam", "cam", "camera", "/image", -5_000_000)
    assert rig.time_offset_ns("/image") == -5_000_000
    assert rig.time_offset_ns("cam") == -5_000_000
    assert rig.time_offset_ns("/unknown") == 0
    assert rig.to_reference_ns("cam", 1_000_000_000) == 995_000_000
    assert validate_rig_file(path) == []


def test_example_file_loads_and_roundtrips(tmp_path: Path) -> None:
    rig = load_rig(EXAMPLE)
    assert set(rig.cameras) == {"cam_left", "cam_right"}
    out = tmp_path / "out.yaml"
    save_rig(rig, out)
    back = load_rig(out)
    assert back.to_yaml() == rig.to_yaml()
    for e in rig.frames:
        assert back.transform(e.parent, e.child).allclose(e.T_parent_from_child, 1e-15)
    for name, cam in rig.cameras.items():
        np.testing.assert_array_equal(back.camera(name).K, cam.K)
        np.testing.assert_array_equal(back.camera(name).D, cam.D)
    assert back.sensors == rig.sensors


def test_roundtrip_keeps_nearly_orthonormal_matrix_exactly(tmp_path: Path) -> None:
    R = np.array([[6.927964e-03, -9.999722e-01, -2.757829e-03],
                  [-1.162982e-03, 2.749836e-03, -9.999955e-01],
                  [9.999753e-01, 6.931141e-03, -1.143899e-03]])  # KITTI Tr_velo_to_cam, ortho to ~1e-7
    rig = Rig(base_frame="velodyne", frames=FrameGraph.from_edges(
        [("velodyne", "cam0", Transform.from_rt(R, [1e-5, -2.5e-7, 3.0]))]))
    path = tmp_path / "r.yaml"
    save_rig(rig, path)
    assert "matrix" in path.read_text()
    back = load_rig(path)
    np.testing.assert_array_equal(back.transform("velodyne", "cam0").matrix,
                                  rig.transform("velodyne", "cam0").matrix)


def test_merge_partial_rig(tmp_path: Path) -> None:
    path = tmp_path / "rig.yaml"
    path.write_text(GOOD)
    new_T = Transform.from_euler([1.2, 0.0, 1.6], [0.0, 0.0, 0.5])
    partial = Rig(base_frame="base_link", frames=FrameGraph.from_edges([("base_link", "velodyne", new_T)]),
                  sensors={"imu": Sensor("imu", "velodyne", "imu", "/imu", 250)})
    merged = merge_rig_file(path, partial)
    again = load_rig(path)
    assert again.transform("base_link", "velodyne").allclose(new_T, 1e-15)
    before = load_rig_text(GOOD).transform("velodyne", "cam")
    assert again.transform("velodyne", "cam").allclose(before, 1e-15)
    assert again.time_offset_ns("/imu") == 250
    assert set(merged.sensors) == {"lidar", "cam", "imu"}
    with pytest.raises(CalibrationError, match="cycle"):
        load_rig(path).merged(Rig(base_frame="cam", frames=FrameGraph.from_edges(
            [("cam", "base_link", Transform.identity())])))


def load_rig_text(text: str) -> Rig:
    from edgefuse.rig import loads_rig

    return loads_rig(text)


def test_syntax_error_is_one_problem_with_line() -> None:
    text = GOOD.replace("model: plumb_bob", "model: [plumb_bob")
    probs = _problems(text)
    assert len(probs) == 1
    line, msg = probs[0]
    assert msg.startswith("YAML syntax error")
    assert line is not None
    assert 15 <= line <= 20


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = """\
edgefuse_rig: 1
base_frame: base_link
colour: blue
frames:
  - parent: base_link
    child: velodyne
    translation: [1.0, 0.0]
    rotation: {rpy_deg: [0, 0, 90]}
  - parent: base_link
    child: cam
    translation: [0, 0, 0]
    rotation: {matrix: [[1, 0.01, 0], [0, 1, 0], [0, 0, 1]]}
  - parent: velodyne
    child: cam
    translation: [0, 0, 0]
    rotation: {quaternion_xyzw: [0, 0, 0, 1]}
  - parent: odom
    child: gps
    translation: [0, 0, 0]
    rotation: {quaternion_xyzw: [0, 0, 0, 1]}
cameras:
  cam:
    frame_id: camera_optical
    model: kannala
    width: 640
    height: 480
    K: [[500, 0, 320], [0, 500, 240], [0, 0, 1]]
    D: [0, 0, 0, 0]
  cam2:
    frame_id: base_link
    model: plumb_bob
    width: 640
    height: 480
    K: [[-500, 0, 320], [0, 500, 240], [0, 0, 1]]
    D: [0, 0, 0, 0]
sensors:
  lidar: {frame_id: velodyne_top, kind: lidar}
  imu: {frame_id: base_link, kind: accelerometer, time_offset_ns: 0.5}
"""
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    problems = validate_rig_file(path)
    assert all(p.file == str(path) for p in problems)
    got = {(p.line, p.message) for p in problems}

    def has(line: int, fragment: str) -> bool:
        return any(ln == line and fragment in msg for ln, msg in got)

    assert has(3, "unknown key 'colour'")
    assert has(7, "translation must have 3 elements, got 2")
    assert has(12, "not orthonormal")
    assert has(12, "0.01")
    assert has(13, "'cam' already has parent 'base_link'")
    assert has(17, "not connected to base_frame 'base_link'")
    assert has(24, "unknown model 'kannala'")
    assert has(23, "frame_id 'camera_optical' is not in the frame graph")
    assert has(34, "focal lengths must be positive")
    assert has(35, "D for model plumb_bob must have 5")
    assert has(37, "frame_id 'velodyne_top' is not in the frame graph")
    assert has(38, "unknown kind 'accelerometer'")
    assert has(38, "time_offset_ns must be an integer")
    with pytest.raises(ValidationError) as info:
        load_rig(path)
    assert info.value.kind == "calibration"
    assert len(info.value.problems) == len(problems) >= 10
    assert f"{path}:3: unknown key 'colour'" in str(info.value)


def test_camera_frame_missing_and_focal_length() -> None:
    text = GOOD.replace("frame_id: cam\n    model", "frame_id: cam_optical\n    model").replace(
        "K: [[500, 0, 320]", "K: [[-500, 0, 320]")
    probs = _problems(text)
    assert any(ln == 18 and "focal lengths must be positive" in m for ln, m in probs)
    text2 = GOOD.replace("frame_id: cam\n    model", "frame_id: cam_optical\n    model")
    assert _problems(text2) == [(14, "camera 'cam': frame_id 'cam_optical' is not in the frame graph")]


def test_cycle_duplicate_topic_and_duplicate_key() -> None:
    cyc = GOOD.replace("  - parent: base_link\n    child: velodyne", "  - parent: cam\n    child: velodyne")
    probs = _problems(cyc)
    assert any("cycle" in m for _, m in probs)
    dup = GOOD.replace("/image, kind: camera", "/points, kind: camera")
    msg = "topic '/points' is already used by sensor 'lidar'"
    assert any(ln == 22 and msg in m for ln, m in _problems(dup))
    twice = GOOD.replace("    width: 640\n", "    width: 640\n    width: 641\n")
    probs = _problems(twice)
    assert len(probs) == 1
    assert "duplicate" in probs[0][1].lower()


def test_missing_version_and_wrong_types() -> None:
    assert any("edgefuse_rig" in m for _, m in _problems(GOOD.replace("edgefuse_rig: 1\n", "")))
    assert any("list of 3 numbers" in m or "finite numbers" in m
               for _, m in _problems(GOOD.replace("[1.0, 0.0, 1.5]", "[1.0, a, 1.5]")))
    assert _problems("- just\n- a list\n")[0][0] == 1
