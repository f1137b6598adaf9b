"""convert(): layout detection, limits, report, CLI adapter; the shipped demo and Husky bag."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

import edgefuse
from edgefuse.bag import open_bag
from edgefuse.convert import (
    ConvertReport,
    add_convert_parser,
    bag_digests,
    convert,
    detect_layout,
    run_convert,
)
from edgefuse.convert.build_demo import build_demo
from edgefuse.errors import ConvertError
from edgefuse.rig import load_rig

DATA = Path(__file__).resolve().parents[1] / "data"
RADIATE_DATA = DATA / "radiate_tiny_foggy"
KITTI_OBJECT = DATA / "kitti_object_3frames"
PACKAGE_DATA = Path(edgefuse.__file__).resolve().parent / "data"
DEMO = PACKAGE_DATA / "demo"


def test_detect_layout(kitti_raw: Any, tmp_path: Path) -> None:
    assert detect_layout(RADIATE_DATA) == "radiate"
    assert detect_layout(KITTI_OBJECT) == "kitti_object"
    assert detect_layout(kitti_raw.date_dir) == "kitti_raw"
    assert detect_layout(kitti_raw.drive_dir) == "kitti_raw"
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ConvertError, match="no known dataset layout"):
        detect_layout(tmp_path / "nothing")
    with pytest.raises(ConvertError, match="not found"):
        detect_layout(tmp_path / "missing")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="unknown layout"):
        convert(KITTI_OBJECT, tmp_path / "a", layout="nuscenes")  # type: ignore[arg-type]
    with pytest.raises(ConvertError, match="unknown storage"):
        convert(KITTI_OBJECT, tmp_path / "a", storage="rosbag1")  # type: ignore[arg-type]
    (tmp_path / "exists").mkdir()
    with pytest.raises(ConvertError, match="output exists"):
        convert(KITTI_OBJECT, tmp_path / "exists")


def test_max_frames_and_time_window(kitti_raw: Any, tmp_path: Path) -> None:
    report = convert(kitti_raw.drive_dir, tmp_path / "a", frames=2)
    assert report.counts["/velodyne_points"] == 2
    assert report.counts["/cam1/camera_info"] == 2
    s = kitti_raw.stamps_ns
    report = convert(kitti_raw.drive_dir, tmp_path / "b", window_ns=(s[1], s[2]))
    assert report.counts["/velodyne_points"] == 2
    assert report.counts["/imu/data"] == 1  # oxts stamps are 7 ns earlier: only frame 2 is inside
    assert report.start_ns == s[1]
    assert report.window_ns == (s[1], s[2])
    assert any("items outside left out" in n for n in report.notes)
    report = convert(kitti_raw.drive_dir, tmp_path / "c", window_ns="overlap")
    assert report.window_ns == (s[0] + 3000, s[2] - 7)  # cam3 starts last, oxts ends first


def test_report_json_roundtrip(tmp_path: Path) -> None:
    report = convert(RADIATE_DATA, tmp_path / "bag", compress_images=True)
    loaded = ConvertReport.from_dict(json.loads((tmp_path / "bag" / "convert_report.json").read_text()))
    assert loaded == report
    assert loaded.skipped_by_stream()["zed_left"] == 98
    text = report.summary()
    assert "/velodyne_points" in text
    assert "skipped 98 from zed_left" in text


def test_conversion_is_reproducible(tmp_path: Path) -> None:
    convert(RADIATE_DATA, tmp_path / "one", compress_images=True)
    convert(RADIATE_DATA, tmp_path / "two", compress_images=True)
    one, two = bag_digests(tmp_path / "one"), bag_digests(tmp_path / "two")
    assert one == two
    assert one["/velodyne_points"].count == 1


def test_rig_topics_and_alias(tmp_path: Path) -> None:
    report = convert(RADIATE_DATA, tmp_path / "bag", streams=["velo_lidar", "zed_left"])
    rig = load_rig(tmp_path / "bag" / "rig.yaml")
    assert rig.transform("velodyne", "lidar").allclose(rig.transform("lidar", "lidar"))
    assert rig.sensor_for_topic("/velodyne_points") is not None
    assert rig.sensor_for_topic("/zed_left/image_raw") is not None
    assert any("identity transform lidar -> velodyne" in n for n in report.notes)


# ------------------------------------------------------------------ CLI adapter


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgefuse")
    add_convert_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["convert", str(KITTI_OBJECT), str(tmp_path / "out"), "--start-s", "2.5",
                   "--compress-images", "--storage", "sqlite3", "--max-frames", "1"])
    assert args.func is run_convert
    assert args.start_s == 2_500_000_000
    assert run_convert(args) == 0
    out = capsys.readouterr().out
    assert "/cam2/image_raw/compressed" in out
    with open_bag(tmp_path / "out") as reader:
        assert reader.start_ns == 2_500_000_000


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefuse.cli import EXIT_INPUT, main

    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edgefuse: ") and "dataset folder not found" in err
    with pytest.raises(SystemExit):
        _parse(["convert", "a", "b", "--layout", "bogus"])
    with pytest.raises(SystemExit):
        _parse(["convert", "a", "b", "--time-window", "1", "x"])


def test_cli_time_window_exact(tmp_path: Path) -> None:
    args = _parse(["convert", str(RADIATE_DATA), str(tmp_path / "o"), "--time-window",
                   "1574859773.896853601", "1574859773.963626622", "--streams", "zed_left"])
    assert args.time_window == [1574859773_896853601, 1574859773_963626622]
    assert run_convert(args) == 0
    report = ConvertReport.from_dict(json.loads((tmp_path / "o" / "convert_report.json").read_text()))
    assert report.counts["/zed_left/image_raw"] == 2


# ------------------------------------------------------------------ shipped data


def test_demo_opens_and_matches_its_report() -> None:
    report = ConvertReport.from_dict(json.loads((DEMO / "convert_report.json").read_text()))
    with open_bag(DEMO) as reader:
        counts = {t: i.count for t, i in reader.topics.items()}
        msgtypes = {t: i.msgtype for t, i in reader.topics.items()}
    assert counts == report.counts
    assert counts == {"/tf_static": 1, "/zed_left/image_raw/compressed": 50, "/zed_left/camera_info": 50,
                      "/velodyne_points": 33, "/radar/polar/compressed": 14}
    assert msgtypes["/velodyne_points"] == "sensor_msgs/msg/PointCloud2"
    assert report.window_ns == (1574859772_427742418, 1574859775_766505217)
    assert report.skipped_by_stream() == {"velo_lidar": 18, "zed_left": 50}
    size = sum(p.stat().st_size for p in DEMO.iterdir())
    assert size < 25 * 2**20
    assert "RADIATE" in (DEMO / "SOURCE.md").read_text()
    assert "ICRA 2021" in (DEMO / "SOURCE.md").read_text()


def test_demo_digests_match_committed() -> None:
    committed = json.loads((DEMO / "digests.json").read_text())
    digests = bag_digests(DEMO)
    assert {t: {"count": d.count, "sha256": d.sha256} for t, d in digests.items()} == committed


def test_demo_payloads_are_sane() -> None:
    with open_bag(DEMO) as reader:
        env = next(iter(reader.envelopes(topics=["/velodyne_points"])))
        assert env.payload.points.dtype.names == ("x", "y", "z", "intensity", "ring")
        assert 19_000 < len(env.payload.points) < 24_000  # SOURCE.md: 19,261-23,678 points per frame
        tf = next(iter(reader.envelopes(topics=["/tf_static"])))
        assert tf.stamp_ns == 1574859772_427742418
    rig = load_rig(DEMO / "rig.yaml")
    assert rig.base_frame == "radar"
    assert "zed_left" in rig.cameras


def test_tf_static_is_the_shipped_demos_to_the_bit(tmp_path: Path) -> None:
    """The calibration the demo rebuild writes on /tf_static (from the RADIATE calibration file, which the
    excerpt in tests/data shares with the full sample) equals the shipped demo's bit for bit, on any machine:
    np.linalg.inv's last bit depends on the OpenBLAS kernel (2 ULP in zed_left's quaternion on an AMD EPYC)."""
    from edgefuse.convert.build_demo import DEMO_STREAMS

    convert(RADIATE_DATA, tmp_path / "bag", streams=DEMO_STREAMS, compress_images=True, frames=1)
    transforms = []
    for bag in (tmp_path / "bag", DEMO):
        with open_bag(bag) as reader:
            transforms.append(next(iter(reader.envelopes(topics=["/tf_static"]))).payload)
    rebuilt, shipped = transforms
    assert [(t.parent_frame, t.child_frame) for t in rebuilt] == [(t.parent_frame, t.child_frame) for t in shipped]
    for a, b in zip(rebuilt, shipped, strict=True):
        assert a.translation.tobytes() == b.translation.tobytes(), (a.child_frame, a.translation, b.translation)
        assert a.rotation_xyzw.tobytes() == b.rotation_xyzw.tobytes(), (a.child_frame, a.rotation_xyzw,
                                                                        b.rotation_xyzw)


def test_build_demo_source_paths(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's report paths are relative to the sample's root whether SRC is that root or the sequence
    folder; without SRC, $EDGEFUSE_RADIATE_DIR is used, and without both one line says what to give."""
    from edgefuse.convert.build_demo import main, sample_root

    seq = RADIATE_DATA / "data" / "radiate" / "tiny_foggy"
    assert sample_root(seq).resolve() == sample_root(RADIATE_DATA).resolve() == RADIATE_DATA.resolve()
    monkeypatch.delenv("EDGEFUSE_RADIATE_DIR", raising=False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "radiate_sdk" in err and "EDGEFUSE_RADIATE_DIR" in err


@pytest.mark.slow
@pytest.mark.skipif("EDGEFUSE_RADIATE_DIR" not in os.environ,
                    reason="set EDGEFUSE_RADIATE_DIR to the RADIATE tiny_foggy sample to rebuild the demo")
def test_demo_rebuild_is_identical(tmp_path: Path) -> None:
    build_demo(Path(os.environ["EDGEFUSE_RADIATE_DIR"]), tmp_path / "demo")
    assert bag_digests(tmp_path / "demo") == bag_digests(DEMO)
    for name in ("digests.json", "convert_report.json", "SOURCE.md", "rig.yaml"):
        assert (tmp_path / "demo" / name).read_bytes() == (DEMO / name).read_bytes()


def test_husky_bag_is_shipped() -> None:
    bag = PACKAGE_DATA / "husky" / "test1.bag"
    assert (PACKAGE_DATA / "husky" / "SOURCE.md").is_file()
    with open_bag(bag) as reader:
        counts = {t: i.count for t, i in reader.topics.items()}
    assert counts == {"/imu/data": 11_865, "/husky_velocity_controller/odom": 3_952, "/fix": 989}
