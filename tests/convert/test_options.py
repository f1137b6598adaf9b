"""convert's options: range-checked up front with one clear line (issue 10 item 11), and an --overlap that
says which stream is off and offers the way forward (item 18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgefuse.cli import EXIT_INPUT, main
from edgefuse.convert import convert, read_dataset
from edgefuse.errors import ConvertError

from .conftest import KITTI_OBJECT, RADIATE_DATA


@pytest.mark.parametrize(("options", "message"), [
    (["--compress-images", "--jpeg-quality", "500"], "--jpeg-quality must be from 0 to 100, got 500"),
    (["--compress-images", "--jpeg-quality", "-1"], "--jpeg-quality must be from 0 to 100, got -1"),
    (["--jpeg-quality", "90"], "--jpeg-quality needs --compress-images"),
    (["--max-frames", "0"], "--max-frames must be at least 1, got 0"),
    (["--max-frames", "-3"], "--max-frames must be at least 1, got -3"),
    (["--calib-frame", "-1"], "--calib-frame must be a frame number >= 0, got -1"),
    (["--time-window", "1574859775", "1574859772.5"], "--time-window START 1574859775 s is after END 1574859772.5 s"),
    (["--time-window", "0", "99999999999999999999"], "--time-window bounds must be from 0 to"),
    (["--start-s", "99999999999999999999"], "--start-s must be from 0 to"),
    (["--overlap-ignore", "gps_imu"], "--overlap-ignore needs --overlap"),
    (["--streams", ","], "--streams needs at least one name"),
    (["--overlap", "--overlap-ignore", " , "], "--overlap-ignore needs at least one name"),
])
def test_bad_option_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str],
                                       message: str) -> None:
    out = tmp_path / "bag"
    assert main(["convert", str(RADIATE_DATA), str(out), *options]) == EXIT_INPUT
    captured = capsys.readouterr()
    assert captured.err == f"edgefuse: {captured.err.removeprefix('edgefuse: ').strip()}\n"  # one line
    assert message in captured.err
    assert "Warning" not in captured.err + captured.out
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("options", "message"), [
    (["--streams", "velodyne"], "a stream selection (--streams) only applies to RADIATE; this dataset is kitti_object"),
    (["--compress-images", "--jpeg-quality", "80"], "a JPEG quality (--jpeg-quality) only applies to RADIATE"),
    (["--gps-offset-s", "60"], "a GPS offset (--gps-offset-s) only applies to RADIATE"),
])
def test_option_for_another_layout_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              options: list[str], message: str) -> None:
    assert main(["convert", str(KITTI_OBJECT), str(tmp_path / "bag"), *options]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_api_range_checks(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="JPEG quality must be an integer from 0 to 100, got 500"):
        convert(RADIATE_DATA, tmp_path / "a", compress_images=True, camera_jpeg_quality=500)
    with pytest.raises(ConvertError, match="JPEG quality must be an integer from 0 to 100, got True"):
        convert(RADIATE_DATA, tmp_path / "a", compress_images=True, camera_jpeg_quality=True)
    with pytest.raises(ConvertError, match="needs compressed images"):
        convert(RADIATE_DATA, tmp_path / "a", camera_jpeg_quality=90)
    with pytest.raises(ConvertError, match=r"time window start .* is after its end"):
        convert(RADIATE_DATA, tmp_path / "a", window_ns=(5, 3))
    with pytest.raises(ConvertError, match="time window bounds must be stamps from 0"):
        convert(RADIATE_DATA, tmp_path / "a", window_ns=(-5, 3))
    with pytest.raises(ConvertError, match="max frames must be an integer >= 0"):
        convert(RADIATE_DATA, tmp_path / "a", frames=-1)
    with pytest.raises(ConvertError, match="need --overlap"):
        convert(RADIATE_DATA, tmp_path / "a", overlap_ignore=["gps_imu"])
    assert list(tmp_path.iterdir()) == []


def test_jpeg_quality_bounds_are_accepted(tmp_path: Path) -> None:
    for q in (0, 100):
        report = convert(RADIATE_DATA, tmp_path / f"q{q}", streams=["zed_left"], compress_images=True,
                         camera_jpeg_quality=q)
        assert report.counts["/zed_left/image_raw/compressed"] == 2


def test_overlap_names_the_stream_that_is_off_and_the_way_forward(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """RADIATE's GPS/IMU clock runs a minute after the other sensors: --overlap says so (which stream, by how
    much) and offers --overlap-ignore, --streams and --gps-offset-s; --overlap-ignore gps_imu then works."""
    plan = read_dataset(RADIATE_DATA)
    gps_start = plan.span_ns("/gps/fix")
    others = [plan.span_ns(t) for t in plan.topics if t not in ("/gps/fix", "/imu/data")]
    others_end = min(s[1] for s in others if s is not None)
    assert gps_start is not None
    gap_s = (gps_start[0] - others_end) / 1e9
    assert 55 < gap_s < 65

    out = tmp_path / "bag"
    assert main(["convert", str(RADIATE_DATA), str(out), "--overlap"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    span = f"{gps_start[0] / 1e9:.3f}..{gps_start[1] / 1e9:.3f}"
    assert f"gps_imu ({span} s) starts {gap_s:.3f} s after the others" in err
    assert "--overlap-ignore gps_imu" in err and "--streams without gps_imu" in err and "--gps-offset-s" in err
    assert not out.exists()

    assert main(["convert", str(RADIATE_DATA), str(out), "--overlap", "--overlap-ignore", "gps_imu"]) == 0
    capsys.readouterr()
    report = convert(RADIATE_DATA, tmp_path / "api", window_ns="overlap", overlap_ignore=["gps_imu"])
    assert report.window_ns is not None
    assert report.window_ns[1] < gps_start[0]
    assert "/gps/fix" not in report.counts or report.counts["/gps/fix"] == 0
    with pytest.raises(ConvertError, match="bogus is not a stream or topic being converted"):
        convert(RADIATE_DATA, tmp_path / "x", window_ns="overlap", overlap_ignore=["bogus"])
    # a topic works as well as a stream name
    report = convert(RADIATE_DATA, tmp_path / "topics", window_ns="overlap", overlap_ignore=["/gps/fix", "/imu/data"])
    assert report.window_ns is not None


@pytest.mark.slow
@pytest.mark.skipif("EDGEFUSE_RADIATE_DIR" not in os.environ,
                    reason="set EDGEFUSE_RADIATE_DIR to the RADIATE tiny_foggy sample (radiate_sdk)")
def test_readme_overlap_example_on_the_demos_source(tmp_path: Path) -> None:
    """The README's overlap example on the folder the demo came from: the demo's window, without GPS."""
    out = tmp_path / "radiate"
    assert main(["convert", os.environ["EDGEFUSE_RADIATE_DIR"], str(out), "--compress-images", "--overlap",
                 "--overlap-ignore", "gps_imu"]) == 0
    report = convert(Path(os.environ["EDGEFUSE_RADIATE_DIR"]), tmp_path / "api", compress_images=True,
                     window_ns="overlap", overlap_ignore=["gps_imu", "zed_right"])
    assert report.window_ns == (1574859772_427742418, 1574859775_766505217)  # the demo's window
