"""Importers on real calibration files (copied into tests/data with their SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefuse.errors import CalibrationError
from edgefuse.rig import (
    CameraModel,
    Transform,
    from_camera_info_yaml,
    from_kalibr_camchain,
    from_kitti_object,
    from_kitti_raw,
    from_nuscenes,
    from_radiate,
    load_rig,
    save_rig,
)
from edgefuse.rig.importers import radiate_stereo_rectification

DATA = Path(__file__).resolve().parents[1] / "data"
KITTI = DATA / "kitti_object_3frames" / "training"
NUSC = DATA / "nuscenes_demo_sample"
RADIATE = DATA / "radiate_tiny_foggy"


def _kitti_values(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = np.array(v.split(), dtype=np.float64)
    return out


def _velodyne() -> np.ndarray:
    pts = np.fromfile(KITTI / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)
    return pts[:, :3].astype(np.float64)


def test_kitti_object_matches_devkit_projection() -> None:
    calib = KITTI / "calib" / "000000.txt"
    rig = from_kitti_object(calib, image_size=(1224, 370))  # frame 000000's image is 1224x370
    v = _kitti_values(calib)
    R0 = np.eye(4)
    R0[:3, :3] = v["R0_rect"].reshape(3, 3)
    Tr = np.eye(4)
    Tr[:3] = v["Tr_velo_to_cam"].reshape(3, 4)
    pts = _velodyne()
    hom = np.c_[pts, np.ones(len(pts))]
    for i in range(4):
        h = (v[f"P{i}"].reshape(3, 4) @ R0 @ Tr @ hom.T).T
        ref = h[:, :2] / h[:, 2:]
        pc = rig.transform(f"cam{i}", "velodyne").apply(pts)
        uv, valid = rig.camera(f"cam{i}").project(pc)
        inside = valid & rig.camera(f"cam{i}").in_image(uv)
        assert inside.sum() > 15000
        np.testing.assert_allclose(uv[inside], ref[inside], rtol=0, atol=1e-6)
    # SOURCE.md: 20,285 points land in image_2 (its own rounding of the bounds; ours differs by < 1 %)
    uv, valid = rig.camera("cam2").project(rig.transform("cam2", "velodyne").apply(pts))
    assert abs(int((valid & rig.camera("cam2").in_image(uv)).sum()) - 20285) < 200
    # imu edge is Tr_imu_to_velo as given
    Ti = v["Tr_imu_to_velo"].reshape(3, 4)
    np.testing.assert_allclose(rig.transform("velodyne", "imu").matrix[:3], Ti, atol=1e-15)


def test_kitti_object_rig_survives_save_load(tmp_path: Path) -> None:
    rig = from_kitti_object(KITTI / "calib" / "000000.txt")
    save_rig(rig, tmp_path / "kitti.yaml")
    back = load_rig(tmp_path / "kitti.yaml")
    pts = _velodyne()[:5000]
    a = rig.camera("cam2").project(rig.transform("cam2", "velodyne").apply(pts))[0]
    b = back.camera("cam2").project(back.transform("cam2", "velodyne").apply(pts))[0]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_kitti_object_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "calib.txt"
    text = (KITTI / "calib" / "000000.txt").read_text().replace("R0_rect: 9.999128000000e-01 ", "R0_rect: ")
    bad.write_text(text)
    with pytest.raises(CalibrationError, match="R0_rect must have 9 values, got 8") as info:
        from_kitti_object(bad)
    assert info.value.file == str(bad)
    assert info.value.line == 5


def _write_kitti_raw(tmp: Path) -> tuple[Path, Path, Path]:
    """KITTI raw calibration files (format of calib_cam_to_cam.txt etc.), values from the object calib."""
    v = _kitti_values(KITTI / "calib" / "000000.txt")

    def fmt(a: np.ndarray) -> str:
        return " ".join(f"{x:.12e}" for x in np.asarray(a).reshape(-1))

    K = v["P0"].reshape(3, 4)[:, :3]
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    R1 = Transform.from_euler(np.zeros(3), [0.001, -0.002, 0.003]).R
    for i in range(4):
        xx = f"{i:02d}"
        R = np.eye(3) if i == 0 else R1
        T = np.zeros(3) if i == 0 else np.array([-0.54 * i, 0.005, -0.002])
        lines += [f"S_{xx}: 1.392000e+03 5.120000e+02", f"K_{xx}: {fmt(K)}",
                  f"D_{xx}: -3.728755e-01 2.037299e-01 2.219027e-03 1.383707e-03 -7.233722e-02",
                  f"R_{xx}: {fmt(R)}", f"T_{xx}: {fmt(T)}", f"S_rect_{xx}: 1.242000e+03 3.750000e+02",
                  f"R_rect_{xx}: {fmt(v['R0_rect'])}", f"P_rect_{xx}: {fmt(v[f'P{i}'])}"]
    c2c = tmp / "calib_cam_to_cam.txt"
    c2c.write_text("\n".join(lines) + "\n")
    Tr = v["Tr_velo_to_cam"].reshape(3, 4)
    v2c = tmp / "calib_velo_to_cam.txt"
    v2c.write_text(f"calib_time: 15-Mar-2012 11:37:16\nR: {fmt(Tr[:, :3])}\nT: {fmt(Tr[:, 3])}\n"
                   "delta_f: 0.000000e+00 0.000000e+00\ndelta_c: 0.000000e+00 0.000000e+00\n")
    Ti = v["Tr_imu_to_velo"].reshape(3, 4)
    i2v = tmp / "calib_imu_to_velo.txt"
    i2v.write_text(f"calib_time: 25-May-2012 16:47:16\nR: {fmt(Ti[:, :3])}\nT: {fmt(Ti[:, 3])}\n")
    return c2c, v2c, i2v


def test_kitti_raw_matches_object_and_unrectified_chain(tmp_path: Path) -> None:
    c2c, v2c, i2v = _write_kitti_raw(tmp_path)
    raw = from_kitti_raw(c2c, v2c, i2v)
    obj = from_kitti_object(KITTI / "calib" / "000000.txt")
    for i in range(4):
        assert raw.transform(f"cam{i}", "velodyne").allclose(obj.transform(f"cam{i}", "velodyne"), 1e-12)
        np.testing.assert_array_equal(raw.camera(f"cam{i}").K, obj.camera(f"cam{i}").K)
    assert raw.camera("cam2").width == 1242
    assert raw.camera("cam2_unrect").width == 1392
    assert raw.camera("cam1_unrect").model == "plumb_bob"
    # unrectified camera i: p_i = R_i p_cam00 + T_i
    T_10 = raw.transform("cam1_unrect", "cam0_unrect")
    np.testing.assert_allclose(T_10.t, [-0.54, 0.005, -0.002], atol=1e-12)
    assert raw.transform("velodyne", "imu").allclose(obj.transform("velodyne", "imu"), 1e-12)


def test_nuscenes_info_json_projects_lidar_into_cam_front() -> None:
    import json

    rig = from_nuscenes(NUSC / "calib_and_boxes_from_pkl.json")
    assert set(rig.cameras) == {"CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT",
                                "CAM_BACK_RIGHT"}
    assert rig.base_frame == "ego"
    assert rig.sensor("LIDAR_TOP").kind == "lidar"
    info = json.loads((NUSC / "calib_and_boxes_from_pkl.json").read_text())
    pts = np.fromfile(next(NUSC.glob("*LIDAR_TOP*.pcd.bin")), dtype=np.float32).reshape(-1, 5)[:, :3]
    pts = pts.astype(np.float64)
    assert len(pts) == 34688
    counts = {}
    for ch, img in info["images"].items():
        cam = rig.camera(ch)
        pc = rig.transform(ch, "LIDAR_TOP").apply(pts)  # static chain via ego: inv(cam2ego) · lidar2ego
        uv, valid = cam.project(pc)
        inside = valid & cam.in_image(uv)
        counts[ch] = int(inside.sum())
        assert np.all(pc[inside, 2] > 0)
        assert 3.0 < np.median(pc[inside, 2]) < 40.0
        # The info file's lidar2cam also compensates the ego motion between the LiDAR stamp and the
        # (earlier) camera stamp; the static rig must differ from it by speed x dt, nothing else.
        dt_s = info["timestamp"] - img["timestamp"]
        lidar2cam = np.asarray(img["lidar2cam"])
        shift_m = np.linalg.norm(rig.transform(ch, "LIDAR_TOP").t - lidar2cam[:3, 3])
        if dt_s > 0.005:
            assert 8.0 < shift_m / dt_s < 11.0, (ch, shift_m, dt_s)  # ~9.3 m/s ego speed
        else:  # CAM_BACK_LEFT is 0.5 ms before the LiDAR: both paths agree to a few mm / pixels
            h = (np.asarray(img["cam2img"]) @ (pts @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]).T).T
            np.testing.assert_allclose(uv[inside], h[inside, :2] / h[inside, 2:], rtol=0, atol=3.0)
    # SOURCE.md counts with the motion-compensated lidar2cam: FRONT 3,067, BACK 4,826, BACK_LEFT 4,097
    assert abs(counts["CAM_BACK_LEFT"] - 4097) <= 20
    assert abs(counts["CAM_FRONT"] - 3067) < 0.1 * 3067
    assert abs(counts["CAM_BACK"] - 4826) < 0.05 * 4826


def test_nuscenes_calibrated_sensor_records_wxyz() -> None:
    info_rig = from_nuscenes(NUSC / "calib_and_boxes_from_pkl.json")
    records = {}
    for ch in ("CAM_FRONT", "LIDAR_TOP"):
        T = info_rig.transform("ego", ch)
        q = T.to_quat_xyzw()
        records[ch] = {"translation": T.t.tolist(), "rotation": [q[3], q[0], q[1], q[2]],
                       "camera_intrinsic": info_rig.camera(ch).K.tolist() if ch.startswith("CAM") else []}
    rig = from_nuscenes(records)
    expected = info_rig.transform("CAM_FRONT", "LIDAR_TOP")
    assert rig.transform("CAM_FRONT", "LIDAR_TOP").allclose(expected, 1e-6)
    assert "LIDAR_TOP" not in rig.cameras
    records["CAM_FRONT"]["rotation"] = [0.5, 0.5, 0.5, 0.6]
    with pytest.raises(CalibrationError, match="norm"):
        from_nuscenes(records)


ROS_YAML = """\
image_width: 752
image_height: 480
camera_name: cam0
camera_matrix:
  rows: 3
  cols: 3
  data: [458.654, 0.0, 367.215, 0.0, 457.296, 248.375, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [458.654, 0, 367.215, 0, 0, 457.296, 248.375, 0, 0, 0, 1, 0]
"""


def test_camera_info_yaml(tmp_path: Path) -> None:
    path = tmp_path / "cam0.yaml"
    path.write_text(ROS_YAML)
    rig = from_camera_info_yaml(path, topic="/cam0/image_raw")
    cam = rig.camera("cam0")
    assert (cam.model, cam.width, cam.height, cam.frame_id) == ("plumb_bob", 752, 480, "cam0")
    np.testing.assert_array_equal(cam.D, [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05, 0.0])
    assert cam.fx == 458.654
    assert cam.cy == 248.375
    assert rig.sensor_for_topic("/cam0/image_raw") is not None
    path.write_text(ROS_YAML.replace("cols: 5\n  data: [-0.28340811,", "cols: 5\n  data: ["))
    with pytest.raises(CalibrationError, match="distortion_coefficients: 4 values for 1x5"):
        from_camera_info_yaml(path)
    path.write_text(ROS_YAML.replace("distortion_model: plumb_bob", "distortion_model: fov"))
    with pytest.raises(CalibrationError, match="unsupported distortion_model 'fov'"):
        from_camera_info_yaml(path)
    path.write_text(ROS_YAML.replace("image_width: 752", "image_width: [752"))
    with pytest.raises(CalibrationError, match="YAML syntax error") as info:
        from_camera_info_yaml(path)
    assert info.value.line is not None


def test_radiate_lidar_to_camera_convention_and_counts() -> None:
    calib = RADIATE / "config" / "default-calib.yaml"
    rig = from_radiate(calib)
    lidar = np.loadtxt(RADIATE / "data/radiate/tiny_foggy/velo_lidar/000040.csv", delimiter=",")[:, :3]
    assert rig.base_frame == "radar"
    # lidar -> radar is T_lidar (rotation only 1e-3 degrees)
    np.testing.assert_allclose(rig.transform("radar", "lidar").t, [0.6003, -0.120102, 0.250012])
    # SDK convention, written out independently: p_cam = M^T p_lidar + (T_lidar - T_cam)
    R_l, T_l = np.array([0.0001655, 0.000213, 0.000934]), np.array([0.6003, -0.120102, 0.250012])
    cams = {"right": (np.array([0.8493049332, 0.37113944, 0.000076230]),
                      np.array([0.4593822, -0.0600343, 0.287433309324]), 3680),
            "left": (np.array([1.278946, -0.530201, 0.000132]),
                     np.array([0.34001, -0.06988923, 0.287893]), 3759)}
    F = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    counts = {}
    for side, (R_c, T_c, expected) in cams.items():
        a, b, c = np.deg2rad(R_l - R_c)
        Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        Rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
        M = F @ Rx @ Ry @ Rz
        ref = lidar @ M + (T_l - T_c)  # row-vector form of M^T p + t
        pc = rig.transform(f"zed_{side}", "lidar").apply(lidar)
        np.testing.assert_allclose(pc, ref, rtol=0, atol=1e-12)
        cam = rig.camera(f"zed_{side}")
        assert cam.model == "plumb_bob"
        assert cam.D[2:].tolist() == [0, 0, 0]
        # SOURCE.md counts: the SDK's overlay = pinhole with the file's K on the rectified image.
        sdk = CameraModel("sdk", cam.frame_id, 672, 376, cam.K, np.zeros(0), "pinhole")
        uv, valid = sdk.project(pc)
        inside = valid & (uv[:, 0] >= 0) & (uv[:, 0] < 672) & (uv[:, 1] >= 0) & (uv[:, 1] < 376)
        assert int(inside.sum()) == expected
        # the unrectified distorted model sees more (barrel distortion widens the field of view)
        uv, valid = cam.project(pc)
        counts[side] = int((valid & cam.in_image(uv)).sum())
        assert expected < counts[side] < 1.5 * expected
    rect = from_radiate(calib, rectified=True)
    r = radiate_stereo_rectification(calib)
    np.testing.assert_array_equal(rect.camera("zed_right").K, r["P2"][:, :3])
    for side in ("left", "right"):
        cam = rect.camera(f"zed_{side}")
        uv, valid = cam.project(rect.transform(f"zed_{side}", "lidar").apply(lidar))
        n = int((valid & cam.in_image(uv)).sum())
        assert 3500 < n < counts[side]


KALIBR = """\
cam0:
  T_cam_imu:
  - [0.0148655429818, -0.999880929698, 0.00414029679422, -0.0216401454975]
  - [0.999557249008, 0.0149672133247, 0.025715529948, -0.064676986768]
  - [-0.0257744366974, 0.00375618835797, 0.999660727178, 0.00981073058949]
  - [0.0, 0.0, 0.0, 1.0]
  camera_model: pinhole
  distortion_coeffs: [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05]
  distortion_model: radtan
  intrinsics: [458.654, 457.296, 367.215, 248.375]
  resolution: [752, 480]
  rostopic: /cam0/image_raw
  timeshift_cam_imu: 0.0021
cam1:
  T_cam_imu:
  - [0.0125552670891, -0.999755099723, 0.0182237714554, -0.0198435579556]
  - [0.999598781151, 0.0130119051815, 0.0251588363115, 0.0453689425024]
  - [-0.0253898008918, 0.0179005838253, 0.999517347078, 0.00786212447038]
  - [0.0, 0.0, 0.0, 1.0]
  camera_model: pinhole
  distortion_coeffs: [-0.0139, 0.0018, -0.0017, 0.0003]
  distortion_model: equidistant
  intrinsics: [457.587, 456.134, 379.999, 255.238]
  resolution: [752, 480]
  rostopic: /cam1/image_raw
  timeshift_cam_imu: -0.0005
"""


def test_kalibr_camchain_imucam(tmp_path: Path) -> None:
    path = tmp_path / "camchain-imucam.yaml"
    path.write_text(KALIBR)
    rig = from_kalibr_camchain(path)
    assert rig.base_frame == "imu0"
    assert rig.camera("cam0").model == "plumb_bob"
    assert rig.camera("cam0").D.tolist()[-1] == 0.0
    assert rig.camera("cam1").model == "equidistant"
    assert rig.time_offset_ns("/cam0/image_raw") == 2_100_000
    assert rig.time_offset_ns("cam1") == -500_000
    T_cam0_imu = np.array([[0.0148655429818, -0.999880929698, 0.00414029679422, -0.0216401454975],
                           [0.999557249008, 0.0149672133247, 0.025715529948, -0.064676986768],
                           [-0.0257744366974, 0.00375618835797, 0.999660727178, 0.00981073058949],
                           [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(rig.transform("cam0", "imu0").matrix, T_cam0_imu, atol=1e-12)
    path.write_text(KALIBR.replace("distortion_model: equidistant", "distortion_model: fov"))
    with pytest.raises(CalibrationError, match="cam1: distortion_model 'fov'"):
        from_kalibr_camchain(path)
