"""The spatial CLI sub-commands, driven through argparse as `edgefuse calibrate` does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from edgefuse_calibration.spatial import pose_error
from edgefuse_calibration.spatial.cli import add_spatial_parsers

from edgefuse.rig import FrameGraph, Rig, Sensor, Transform, load_rig, save_rig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_spatial_parsers(p.add_subparsers(dest="cmd"))
    return p


def test_register_command_refuses_empty_cloud_and_leaves_rig(tmp_path: Path) -> None:
    rig = Rig(base_frame="a", frames=FrameGraph.from_edges([("a", "b", Transform.identity())]),
              sensors={"b": Sensor("b", "b", "lidar")})
    rp = tmp_path / "rig.yaml"
    save_rig(rig, rp)
    before = rp.read_text()
    np.save(tmp_path / "src.npy", np.zeros((0, 3)))
    np.save(tmp_path / "tgt.npy", np.random.default_rng(0).normal(size=(500, 3)))
    args = _parser().parse_args(["register", str(tmp_path / "src.npy"), str(tmp_path / "tgt.npy"),
                                 "--source-frame", "b", "--target-frame", "a", "--rig", str(rp),
                                 "--report", str(tmp_path / "r.json"), "--plot", str(tmp_path / "p.png")])
    assert args.func(args) == 4  # refused
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["verdict"] == "refused"
    assert rep["rig_written"] is False
    assert rp.read_text() == before
    assert (tmp_path / "p.png").stat().st_size > 0
    assert load_rig(rp).transform("a", "b").allclose(Transform.identity())


def test_imu_camera_command_rejects_garbage_rates(tmp_path: Path) -> None:
    import pytest

    from edgefuse.errors import CalibrationError

    bad = tmp_path / "bad.csv"
    bad.write_text("wx,wy\n1,oops\n")
    args = _parser().parse_args(["imu-camera", str(bad), str(bad)])
    with pytest.raises(CalibrationError, match="cannot read rates"):
        args.func(args)
    two = tmp_path / "two.csv"
    two.write_text("1,2\n3,4\n")
    args = _parser().parse_args(["imu-camera", str(two), str(two)])
    with pytest.raises(CalibrationError, match="at least 3 columns"):
        args.func(args)


def test_imu_camera_command_columns_bias_and_refusal(tmp_path: Path) -> None:
    from edgefuse_calibration.spatial._common import exp_so3

    rng = np.random.default_rng(3)
    R = exp_so3([0.1, 0.7, -0.4])
    gyro = rng.normal(0, 0.5, (400, 3))
    cam = gyro @ R.T + rng.normal(0, 0.01, (400, 3))
    # camera file: stamp, wx, wy, wz, tracks (extra trailing column); gyro file: stamp, biased wx, wy, wz
    np.savetxt(tmp_path / "cam.csv", np.column_stack([np.arange(400), cam, np.full(400, 300)]), delimiter=",")
    biased = gyro + np.array([0.02, -0.05, 0.08])
    np.savetxt(tmp_path / "imu.csv", np.column_stack([np.arange(400), biased]), delimiter=",")
    base = ["imu-camera", str(tmp_path / "cam.csv"), str(tmp_path / "imu.csv"), "--columns-a", "1,2,3",
            "--report", str(tmp_path / "r.json")]
    args = _parser().parse_args(base)
    assert args.func(args) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["verdict"] == "ok" and rep["metrics"]["rate_offset_rad_s"] is not None
    std = rep["metrics"]["rot_std_deg"]
    with_bias_err = pose_error(Transform.from_rt(np.asarray(rep["result"]["matrix"])[:3, :3], np.zeros(3)),
                               Transform.from_rt(R, np.zeros(3)))[0]
    args = _parser().parse_args([*base, "--no-bias"])
    assert args.func(args) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert "rate_offset_rad_s" not in rep["metrics"]
    no_bias_err = pose_error(Transform.from_rt(np.asarray(rep["result"]["matrix"])[:3, :3], np.zeros(3)),
                             Transform.from_rt(R, np.zeros(3)))[0]
    assert with_bias_err < 3 * std and no_bias_err > 3 * with_bias_err  # measured 0.11 vs 0.51 deg
    args = _parser().parse_args([*base, "--min-rate", "2.0"])  # demand more motion than there is
    assert args.func(args) == 4
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "refused"


def test_load_cloud_rejects_garbage_with_a_clear_error(tmp_path: Path) -> None:
    import pytest
    from edgefuse_calibration.spatial.cli import load_cloud

    from edgefuse.errors import CalibrationError

    (tmp_path / "bad.csv").write_text("x,y,z\n1,2,oops\n")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 20)  # 5 floats: not a multiple of 4 columns
    for name, message in (("bad.csv", "cannot read the cloud"), ("obj.npy", "cannot read the cloud"),
                          ("odd.bin", "not a multiple"), ("missing.npy", "not found")):
        with pytest.raises(CalibrationError, match=message):
            load_cloud(tmp_path / name)
    np.savetxt(tmp_path / "ok.csv", np.arange(12.0).reshape(4, 3), delimiter=",", header="x,y,z")
    np.testing.assert_array_equal(load_cloud(tmp_path / "ok.csv"), np.arange(12.0).reshape(4, 3))


HAND_RIG = """\
# hand-written rig: the comments, the rpy_deg form and the key order must survive a calibration
edgefuse_rig: 1
base_frame: base_link
frames:
  - parent: base_link
    child: velodyne          # roof mount
    translation: [1.2, 0.0, 1.73]
    rotation: {rpy_deg: [0.0, 0.0, 90.0]}
  - parent: velodyne
    child: cam
    translation: [0.1, 0.0, -0.2]   # from the CAD model
    rotation: {rpy_deg: [-90.0, 0.0, -90.0]}
sensors:
  lidar: {frame_id: velodyne, kind: lidar, topic: /velodyne_points}
"""


def test_spatial_result_changes_only_the_calibrated_edge(tmp_path: Path) -> None:
    """write_result_to_rig (what lidar-camera / register / imu-camera call) on a hand-written rig: only the
    calibrated edge's translation and rotation lines change, and the rotation stays rpy_deg; a result
    expressed the other way round (T_cam_from_velodyne) lands on the same edge, inverted."""
    from edgefuse_calibration.spatial._common import SpatialResult, write_result_to_rig

    rig_file = tmp_path / "rig.yaml"
    rig_file.write_text(HAND_RIG, encoding="utf-8")
    T = Transform.from_euler([0.12, 0.01, -0.19], [-90.5, 0.25, -89.0], degrees=True)  # T_velodyne_from_cam
    for result in (SpatialResult("lidar-camera", "ok", "velodyne", "cam", T),
                   SpatialResult("lidar-camera", "ok", "cam", "velodyne", T.inverse())):
        rig_file.write_text(HAND_RIG, encoding="utf-8")
        assert write_result_to_rig(result, rig_file)
        after = rig_file.read_text(encoding="utf-8").splitlines()
        before = HAND_RIG.splitlines()
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert [before[i].split(":")[0].strip() for i in changed] == ["translation", "rotation"]
        assert after[changed[0]].endswith("]   # from the CAD model")
        assert after[changed[1]].startswith("    rotation: {rpy_deg: [")
        assert load_rig(rig_file).transform("velodyne", "cam").allclose(T, 1e-9)
