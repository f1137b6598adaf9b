"""KITTI object and KITTI raw (generated fixture): exact stamps, and conversion roundtrips through a bag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from edgefuse.bag import open_bag
from edgefuse.convert import convert, read_kitti_object, read_kitti_raw
from edgefuse.convert.kitti_raw import OXTS, OXTS_FIELDS, parse_oxts_line, quat_xyzw_from_rpy
from edgefuse.convert.plan import ns_from_kitti_timestamp, parse_kitti_timestamps
from edgefuse.errors import ConvertError
from edgefuse.msgs.types import CameraInfoData, ImageData, ImuData, NavSatFixData, PointCloud, TransformData

KITTI_OBJECT = Path(__file__).resolve().parents[1] / "data" / "kitti_object_3frames"
TRAINING = KITTI_OBJECT / "training"


def _envelopes(bag: Path) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    with open_bag(bag) as reader:
        for env in reader.envelopes():
            out.setdefault(env.topic, []).append(env)
    return out


def _kitti_calib(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip():
            out[key.strip()] = np.array(rest.split(), dtype=np.float64)
    return out


# ------------------------------------------------------------------ KITTI object


def test_kitti_object_plan_synthesizes_10hz_stamps() -> None:
    plan = read_kitti_object(KITTI_OBJECT, start_ns=5_000_000_000)
    assert plan.root == TRAINING
    assert plan.counts() == {"/cam2/image_raw": 1, "/velodyne_points": 1}
    assert {it.stamp_ns for it in plan.items} == {5_000_000_000}
    assert any("10 Hz" in n for n in plan.notes)


def test_kitti_object_roundtrip_through_bag(tmp_path: Path) -> None:
    bag = tmp_path / "kitti_object"
    report = convert(KITTI_OBJECT, bag)  # layout auto-detected
    assert report.layout == "kitti_object"
    assert report.counts == {"/tf_static": 1, "/cam2/image_raw": 1, "/cam2/camera_info": 1,
                             "/velodyne_points": 1}
    assert (bag / "rig.yaml").is_file()
    assert (bag / "convert_report.json").is_file()
    env = _envelopes(bag)
    with open_bag(bag) as reader:
        assert {t: i.count for t, i in reader.topics.items()} == report.counts

    image = env["/cam2/image_raw"][0]
    assert image.stamp_ns == 1_000_000_000 == image.recv_ns
    assert isinstance(image.payload, ImageData)
    assert image.payload.encoding == "bgr8"
    np.testing.assert_array_equal(image.payload.data, cv2.imread(str(TRAINING / "image_2" / "000000.png")))

    cloud = env["/velodyne_points"][0].payload
    assert isinstance(cloud, PointCloud)
    assert cloud.frame_id == "velodyne"
    ref = np.fromfile(TRAINING / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)
    for i, name in enumerate(("x", "y", "z", "intensity")):
        np.testing.assert_array_equal(cloud.points[name], ref[:, i])

    info = env["/cam2/camera_info"][0].payload
    assert isinstance(info, CameraInfoData)
    assert info.frame_id == "cam2"
    assert (info.width, info.height) == (1224, 370)  # the image's size, not the importer default
    P2 = _kitti_calib(TRAINING / "calib" / "000000.txt")["P2"].reshape(3, 4)
    np.testing.assert_allclose(info.k, P2[:, :3], rtol=1e-9)

    tf = env["/tf_static"][0].payload
    assert all(isinstance(t, TransformData) for t in tf)
    assert {t.child_frame for t in tf} >= {"cam2", "velodyne"} - {tf[0].parent_frame}


def test_kitti_object_compressed_keeps_png_bytes(tmp_path: Path) -> None:
    report = convert(KITTI_OBJECT, tmp_path / "b", layout="kitti_object", compress_images=True,
                     storage="sqlite3", start_ns=0)
    assert report.counts["/cam2/image_raw/compressed"] == 1
    env = _envelopes(tmp_path / "b")
    payload = env["/cam2/image_raw/compressed"][0].payload
    assert payload.data.tobytes() == (TRAINING / "image_2" / "000000.png").read_bytes()
    assert env["/cam2/camera_info"][0].payload.width == 1224  # size read from the PNG header


def test_kitti_object_missing_parts_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "training"
    for sub in ("image_2", "velodyne", "calib"):
        (root / sub).mkdir(parents=True)
    (root / "calib" / "000000.txt").write_bytes((TRAINING / "calib" / "000000.txt").read_bytes())
    (root / "velodyne" / "000000.bin").write_bytes(np.zeros(8, np.float32).tobytes())
    (root / "image_2" / "000001.png").write_bytes((TRAINING / "image_2" / "000000.png").read_bytes())
    plan = read_kitti_object(tmp_path)
    reasons = {(s.stream, s.item): s.reason for s in plan.skipped}
    assert reasons == {("image_2", "000000"): "no image file", ("velodyne", "000001"): "no point cloud file",
                       ("calib", "000001"): "no calib file: no camera_info for this frame"}
    (root / "velodyne" / "000002.bin").write_bytes(b"\0" * 10)
    plan = read_kitti_object(tmp_path)
    bad = next(it for it in plan.items if it.key == "000002")
    with pytest.raises(ConvertError, match="multiple of 16"):
        bad.load()


# ------------------------------------------------------------------ KITTI raw


def test_kitti_timestamp_parse_exact() -> None:
    assert ns_from_kitti_timestamp("2011-09-26 13:02:25.964389445") == 1317042145_964389445
    assert ns_from_kitti_timestamp("1970-01-01 00:00:00") == 0
    assert ns_from_kitti_timestamp("1970-01-01 00:00:01.5") == 1_500_000_000
    bad_lines = ("2011-09-26 13:02:25.9643894451", "2011-09-26T13:02:25.1", "garbage",
                 "2011-09-26 13:02:25.x")
    for bad in bad_lines:
        with pytest.raises(ValueError, match=r"fractional|does not match"):
            ns_from_kitti_timestamp(bad)


@given(st.integers(min_value=0, max_value=86_399_999_999_999))
def test_kitti_timestamp_roundtrip_property(ns_of_day: int) -> None:
    sec, nsec = divmod(ns_of_day, 1_000_000_000)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    text = f"2011-09-26 {h:02d}:{m:02d}:{s:02d}.{nsec:09d}"
    assert ns_from_kitti_timestamp(text) == 1316995200_000000000 + ns_of_day


def test_kitti_timestamps_garbage_line(tmp_path: Path) -> None:
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:02:25.964389445\nnot a time\n")
    with pytest.raises(ConvertError) as info:
        parse_kitti_timestamps(path)
    assert (info.value.file, info.value.line) == (str(path), 2)


def test_kitti_raw_plan(kitti_raw: Any) -> None:
    plan = read_kitti_raw(kitti_raw.date_dir)  # date folder with one drive
    assert plan.root == kitti_raw.drive_dir
    assert plan.counts() == {f"/cam{i}/image_raw": 3 for i in range(4)} | {
        "/velodyne_points": 3, "/gps/fix": 3, "/imu/data": 3}
    velo = [it.stamp_ns for it in plan.items if it.topic == "/velodyne_points"]
    assert velo == kitti_raw.stamps_ns
    cam3 = [it.stamp_ns for it in plan.items if it.topic == "/cam3/image_raw"]
    assert cam3 == [s + 3000 for s in kitti_raw.stamps_ns]
    imu = [it.stamp_ns for it in plan.items if it.topic == "/imu/data"]
    assert imu == [s - 7 for s in kitti_raw.stamps_ns]
    assert plan.calibration == kitti_raw.date_dir
    assert not plan.skipped


def test_kitti_raw_missing_file_and_extra_file_reported(kitti_raw: Any) -> None:
    (kitti_raw.drive_dir / "image_01" / "data" / "0000000001.png").unlink()
    extra = kitti_raw.drive_dir / "velodyne_points" / "data" / "0000000003.bin"
    extra.write_bytes(b"")
    plan = read_kitti_raw(kitti_raw.drive_dir)
    assert {(s.stream, s.item, s.reason, s.line) for s in plan.skipped} == {
        ("image_01", "0000000001", "no png file (stamp only)", 2),
        ("velodyne_points", "0000000003", "no timestamp", None),
    }


def test_kitti_raw_roundtrip_through_bag(kitti_raw: Any, tmp_path: Path) -> None:
    bag = tmp_path / "raw_bag"
    report = convert(kitti_raw.drive_dir, bag)
    assert report.layout == "kitti_raw"
    assert report.counts == {"/tf_static": 1, **{f"/cam{i}/image_raw": 3 for i in range(4)},
                             **{f"/cam{i}/camera_info": 3 for i in range(4)},
                             "/velodyne_points": 3, "/gps/fix": 3, "/imu/data": 3}
    env = _envelopes(bag)
    grey = env["/cam0/image_raw"][1].payload
    assert grey.encoding == "mono8"
    src = cv2.imread(str(kitti_raw.drive_dir / "image_00" / "data" / "0000000001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(grey.data, src)
    assert env["/cam2/image_raw"][0].payload.encoding == "bgr8"

    for k, e in enumerate(env["/velodyne_points"]):
        assert e.stamp_ns == kitti_raw.stamps_ns[k]
        for i, name in enumerate(("x", "y", "z", "intensity")):
            np.testing.assert_array_equal(e.payload.points[name], kitti_raw.clouds[k][:, i])

    v = kitti_raw.oxts[2]
    imu = env["/imu/data"][2].payload
    assert isinstance(imu, ImuData)
    assert imu.frame_id == "imu"
    expected = Rotation.from_euler("ZYX", [v[OXTS["yaw"]], v[OXTS["pitch"]], v[OXTS["roll"]]]).as_quat()
    assert min(np.abs(imu.orientation - expected).max(), np.abs(imu.orientation + expected).max()) < 1e-12
    np.testing.assert_array_equal(imu.angular_velocity, v[17:20])
    np.testing.assert_array_equal(imu.linear_acceleration, v[11:14])
    fix = env["/gps/fix"][2].payload
    assert isinstance(fix, NavSatFixData)
    assert (fix.latitude_deg, fix.longitude_deg, fix.altitude_m) == tuple(v[:3])
    np.testing.assert_allclose(fix.position_covariance, np.eye(3) * 0.35**2)

    tf = env["/tf_static"][0]
    assert tf.stamp_ns == min(report.start_ns or 0, tf.stamp_ns)
    children = {t.child_frame for t in tf.payload}
    assert {"imu", "cam0", "cam2"} <= children | {tf.payload[0].parent_frame}
    info = env["/cam2/camera_info"][0].payload
    assert info.frame_id == "cam2"
    assert info.width == grey.data.shape[1]


def test_oxts_field_order_and_bad_line(tmp_path: Path) -> None:
    assert len(OXTS_FIELDS) == 30
    assert OXTS_FIELDS[:6] == ("lat", "lon", "alt", "roll", "pitch", "yaw")
    assert OXTS_FIELDS[-5:] == ("navstat", "numsats", "posmode", "velmode", "orimode")
    path = tmp_path / "0000000000.txt"
    path.write_text(" ".join(["1.0"] * 29) + "\n")
    with pytest.raises(ConvertError) as info:
        parse_oxts_line(path)
    assert info.value.line == 1
    assert "30 values" in info.value.message
    path.write_text(" ".join(["1.0"] * 29 + ["x"]) + "\n")
    with pytest.raises(ConvertError, match="not a number"):
        parse_oxts_line(path)


def test_quaternion_from_rpy_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    for r, p, y in rng.uniform(-3, 3, (20, 3)):
        q = quat_xyzw_from_rpy(r, p, y)
        ref = Rotation.from_euler("ZYX", [y, p, r]).as_quat()
        assert min(np.abs(q - ref).max(), np.abs(q + ref).max()) < 1e-12
