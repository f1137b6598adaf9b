"""merge_rig_file edits a rig file in place: only the calibrated values change, the rest stays as written."""

from __future__ import annotations

import difflib
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import edgefuse
from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, FrameGraph, Rig, Sensor, Transform, load_rig, loads_rig, merge_rig_file

DATA = Path(edgefuse.__file__).parent / "data"
BUNDLED = [DATA / "husky" / "rig.yaml", DATA / "demo" / "rig.yaml", DATA / "rig_example.yaml"]

HAND_WRITTEN = """\
# My test rig.  Hand-written: keep my comments!
edgefuse_rig: 1
base_frame: base_link   # the robot

frames:
- parent: base_link     # LiDAR on the roof
  child: velodyne
  translation:
    - 1.2      # x, measured with a tape
    - 0
    - 1.73
  rotation:
    rpy_deg: [0, 0, 90]   # yaw only
- {parent: velodyne, child: cam, translation: [0.1, 0, 0], rotation: {quaternion_xyzw: [0.5, -0.5, 0.5, -0.5]}}

cameras:
  cam:
    frame_id: cam
    model: plumb_bob
    width: 672
    height: 376
    intrinsics: [338.0, 338.7, 341.7, 200.7]   # fx fy cx cy from the datasheet
    D: [-0.18, 0.03, 0, 0, 0]

sensors:
  lidar:
    frame_id: velodyne
    kind: lidar
    topic: "/velodyne_points"   # quoted on purpose
  cam: {frame_id: cam, kind: camera, topic: /cam/image_raw}   # no offset yet
# end of file
"""


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines of a line diff."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


@pytest.fixture
def hand(tmp_path: Path) -> Path:
    p = tmp_path / "rig.yaml"
    p.write_text(HAND_WRITTEN, encoding="utf-8")
    return p


@pytest.mark.parametrize("bundled", BUNDLED, ids=lambda p: p.parent.name + "/" + p.name)
def test_time_offset_changes_only_its_line(bundled: Path, tmp_path: Path) -> None:
    path = tmp_path / "rig.yaml"
    shutil.copy(bundled, path)
    before = path.read_text(encoding="utf-8")
    rig = load_rig(path)
    name, sensor = next(iter(rig.sensors.items()))
    merged = merge_rig_file(path, Rig(base_frame=rig.base_frame,
                                      sensors={name: replace(sensor, time_offset_ns=-390_100_000)}))
    after = path.read_text(encoding="utf-8")
    removed, added = _changed_lines(before, after)
    assert len(removed) == len(added) == 1
    assert added[0] == removed[0].replace("time_offset_ns: 0", "time_offset_ns: -390100000")
    assert merged.sensor(name).time_offset_ns == load_rig(path).sensor(name).time_offset_ns == -390_100_000


def test_time_offset_added_where_missing_keeps_comments(hand: Path) -> None:
    rig = load_rig(hand)
    merge_rig_file(hand, Rig(base_frame=rig.base_frame, sensors={
        "cam": replace(rig.sensor("cam"), time_offset_ns=-5_000_000),
        "lidar": replace(rig.sensor("lidar"), time_offset_ns=12)}))
    expected = HAND_WRITTEN.replace(
        '    topic: "/velodyne_points"   # quoted on purpose\n',
        '    topic: "/velodyne_points"   # quoted on purpose\n    time_offset_ns: 12\n').replace(
        "topic: /cam/image_raw}", "topic: /cam/image_raw, time_offset_ns: -5000000}")
    assert hand.read_text(encoding="utf-8") == expected


def test_rpy_rotation_stays_rpy_and_block_translation_stays_block(hand: Path) -> None:
    new_T = Transform.from_euler([1.25, 0.0, 1.73], [0.0, 0.5, 90.0], degrees=True)
    merge_rig_file(hand, Rig(base_frame="base_link",
                             frames=FrameGraph.from_edges([("base_link", "velodyne", new_T)])))
    after = hand.read_text(encoding="utf-8")
    removed, added = _changed_lines(HAND_WRITTEN, after)
    assert removed == ["    - 1.2      # x, measured with a tape\n", "    rpy_deg: [0, 0, 90]   # yaw only\n"]
    assert added[0] == "    - 1.25      # x, measured with a tape\n"
    assert added[1].startswith("    rpy_deg: [0, 0.5") and added[1].endswith(", 90]   # yaw only\n")
    assert load_rig(hand).transform("base_link", "velodyne").allclose(new_T, 1e-12)


def test_quaternion_keeps_its_sign_and_flow_entry(hand: Path) -> None:
    old = load_rig(hand).transform("velodyne", "cam")
    new_T = Transform.from_rt(old.R @ Transform.from_euler([0, 0, 0], [0.0, 0.0, 1.0], degrees=True).R, old.t)
    merge_rig_file(hand, Rig(base_frame="base_link", frames=FrameGraph.from_edges([("velodyne", "cam", new_T)])))
    removed, added = _changed_lines(HAND_WRITTEN, hand.read_text(encoding="utf-8"))
    assert len(removed) == len(added) == 1
    head = "- {parent: velodyne, child: cam, translation: [0.1, 0, 0], rotation: {quaternion_xyzw: ["
    assert added[0].startswith(head)  # translation untouched
    q = [float(x) for x in added[0][len(head):].split("]")[0].split(",")]
    assert q[0] > 0 and q[3] < 0  # the sign the user wrote (w < 0), not the canonical w >= 0
    assert load_rig(hand).transform("velodyne", "cam").allclose(new_T, 1e-12)


def test_intrinsics_form_and_unchanged_numbers_kept(hand: Path) -> None:
    cam = load_rig(hand).cameras["cam"]
    K = cam.K.copy()
    K[0, 0] = 337.9191448899105
    new = CameraModel(cam.name, cam.frame_id, cam.width, cam.height, K, np.array([-0.1839, 0.03, 0, 0, 0]),
                      cam.model)
    merge_rig_file(hand, Rig(base_frame="base_link", cameras={"cam": new}))
    removed, added = _changed_lines(HAND_WRITTEN, hand.read_text(encoding="utf-8"))
    assert removed == ["    intrinsics: [338.0, 338.7, 341.7, 200.7]   # fx fy cx cy from the datasheet\n",
                       "    D: [-0.18, 0.03, 0, 0, 0]\n"]
    assert added == ["    intrinsics: [337.9191448899105, 338.7, 341.7, 200.7]   # fx fy cx cy from the datasheet\n",
                     "    D: [-0.1839, 0.03, 0, 0, 0]\n"]
    back = load_rig(hand).cameras["cam"]
    assert np.array_equal(back.K, K)
    assert np.array_equal(back.D, new.D)


def test_new_entries_are_appended_without_empty_sections(tmp_path: Path) -> None:
    path = tmp_path / "rig.yaml"
    shutil.copy(DATA / "husky" / "rig.yaml", path)
    before = path.read_text(encoding="utf-8")
    K = np.array([[500.0, 0.0, 320.0], [0.0, 501.0, 240.0], [0.0, 0.0, 1.0]])
    T = Transform.from_euler([0.2, 0.0, 0.3], [-90.0, 0.0, -90.0], degrees=True)
    partial = Rig(base_frame="base_link", frames=FrameGraph.from_edges([("base_link", "cam", T)]),
                  cameras={"cam": CameraModel("cam", "cam", 640, 480, K, np.zeros(5), "plumb_bob")},
                  sensors={"cam": Sensor("cam", "cam", "camera", "/cam/image_raw", 7)})
    merge_rig_file(path, partial)
    after = path.read_text(encoding="utf-8")
    removed, added = _changed_lines(before, after)
    assert removed == []
    assert "cameras:\n" in added and "  cam:\n" in added and "  - parent: base_link\n" in added
    assert "  cam: {frame_id: cam, kind: camera, topic: /cam/image_raw, time_offset_ns: 7}\n" in added
    assert "{}" not in after and "[]" not in after
    rig = load_rig(path)
    assert rig.transform("base_link", "cam").allclose(T, 1e-12)
    assert rig.time_offset_ns("/cam/image_raw") == 7


def test_crlf_and_mode_are_kept(hand: Path) -> None:
    hand.write_bytes(HAND_WRITTEN.replace("\n", "\r\n").encode())
    os.chmod(hand, 0o640)
    rig = load_rig(hand)
    merge_rig_file(hand, Rig(base_frame="base_link", sensors={"cam": replace(rig.sensor("cam"), time_offset_ns=3)}))
    raw = hand.read_bytes()
    assert raw.count(b"\r\n") == HAND_WRITTEN.count("\n") and b"\n" not in raw.replace(b"\r\n", b"")
    assert stat.S_IMODE(hand.stat().st_mode) == 0o640
    assert load_rig(hand).sensor("cam").time_offset_ns == 3


def test_nothing_to_change_leaves_the_file_alone(hand: Path) -> None:
    rig = load_rig(hand)
    mtime = hand.stat().st_mtime_ns
    merge_rig_file(hand, Rig(base_frame="base_link", sensors={"cam": rig.sensor("cam")}))
    assert hand.read_text(encoding="utf-8") == HAND_WRITTEN
    assert hand.stat().st_mtime_ns == mtime


def test_an_alias_that_would_change_another_value_is_refused(tmp_path: Path) -> None:
    text = HAND_WRITTEN.replace("translation: [0.1, 0, 0]", "translation: &t [0.1, 0, 0]").replace(
        "\n\ncameras:", "\n- {parent: velodyne, child: cam2, translation: *t, rotation: {rpy_deg: [0, 0, 0]}}"
        "\n\ncameras:")
    path = tmp_path / "rig.yaml"
    path.write_text(text, encoding="utf-8")
    loads_rig(text)
    new_T = Transform.from_rt(load_rig(path).transform("velodyne", "cam2").R, [0.2, 0.0, 0.0])
    with pytest.raises(CalibrationError, match="cannot edit the rig file in place"):
        merge_rig_file(path, Rig(base_frame="base_link",
                                 frames=FrameGraph.from_edges([("velodyne", "cam2", new_T)])))
    assert path.read_text(encoding="utf-8") == text
