"""RADIATE reader: exact stamps, counts per stream, skipped frames, payloads, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefuse.convert import convert, read_radiate
from edgefuse.convert.plan import parse_radiate_timestamps
from edgefuse.convert.radiate import parse_gps_imu_file, parse_gps_imu_quaternion
from edgefuse.errors import ConvertError
from edgefuse.msgs.types import CompressedImageData, ImageData, ImuData, NavSatFixData, PointCloud

RADIATE_DATA = Path(__file__).resolve().parents[1] / "data" / "radiate_tiny_foggy"
RADIATE_SEQ = RADIATE_DATA / "data" / "radiate" / "tiny_foggy"

# ------------------------------------------------------------------ timestamps files


def test_timestamps_parsed_exactly_to_int_ns() -> None:
    stamps = parse_radiate_timestamps(RADIATE_SEQ / "zed_left.txt")
    assert len(stamps) == 100
    assert stamps[1] == (1574859772_427742418, 1)
    assert stamps[100] == (1574859779_105105979, 100)
    # a float round trip loses these digits; the parser must not
    assert round(float("1574859772.427742418") * 1e9) != 1574859772_427742418
    lidar = parse_radiate_timestamps(RADIATE_SEQ / "velo_lidar.txt")
    assert sorted(lidar) == list(range(18, 60))
    assert lidar[18][0] == 1574859771_700975000


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Frame: 000001 Time: 1.5\nFrame: 000002 Tim: 2.0\n", 2),
        ("Frame: 000001 Time: 1.5\n\nFrame: 3 Time: abc\n", 3),
        ("Frame: x Time: 1.5\n", 1),
        ("Frame: 000001 Time: -1.5\n", 1),
        ("Frame: 000001 Time: 1.1234567891\n", 1),  # more than 9 decimals would lose precision
        ("Frame: 000001 Time: 1.5 extra\n", 1),
    ],
)
def test_garbage_timestamp_line_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "zed_left.txt"
    path.write_text(text)
    with pytest.raises(ConvertError) as info:
        parse_radiate_timestamps(path)
    assert info.value.file == str(path)
    assert info.value.line == line


# ------------------------------------------------------------------ counts on the full sequence layout


@pytest.fixture
def full_layout(tmp_path: Path) -> Path:
    """The real sequence's timestamps files with placeholder data files in the real numbers
    (SOURCE.md: 50 + 50 PNG, 60 CSV, 18 radar PNG, 250 GPS files in identical pairs)."""
    seq = tmp_path / "tiny_foggy"
    seq.mkdir()
    for name in ("zed_left", "zed_right", "velo_lidar", "Navtech_Polar", "GPS_IMU_Twist"):
        shutil.copy(RADIATE_SEQ / f"{name}.txt", seq / f"{name}.txt")
    for name, n, ext in (("zed_left", 50, "png"), ("zed_right", 50, "png"), ("velo_lidar", 60, "csv"),
                         ("Navtech_Polar", 18, "png")):
        (seq / name).mkdir()
        for i in range(1, n + 1):
            (seq / name / f"{i:06d}.{ext}").write_bytes(b"")
    (seq / "GPS_IMU_Twist").mkdir()
    for i in range(1, 251):
        (seq / "GPS_IMU_Twist" / f"{i:06d}.txt").write_text(f"pair {(i + 1) // 2}\n")
    return seq


def test_counts_and_skips_per_stream(full_layout: Path) -> None:
    plan = read_radiate(full_layout)
    assert plan.counts() == {
        "/zed_left/image_raw": 50, "/zed_right/image_raw": 50, "/velodyne_points": 42,
        "/radar/polar": 18, "/gps/fix": 125, "/imu/data": 125,
    }
    by_stream: dict[str, list[str]] = {}
    for s in plan.skipped:
        by_stream.setdefault(s.stream, []).append(s.item)
    assert by_stream["zed_left"] == [f"{i:06d}" for i in range(51, 101)]
    assert by_stream["velo_lidar"] == [f"{i:06d}" for i in [*range(1, 18), 60]]
    assert by_stream["gps_imu"] == [f"{i:06d}" for i in range(2, 251, 2)]
    assert "zed_right" not in by_stream
    assert "radar" not in by_stream
    zed_skip = next(s for s in plan.skipped if s.stream == "zed_left")
    assert zed_skip.line == 51
    assert zed_skip.file is not None
    assert zed_skip.file.endswith("zed_left.txt")
    assert all("no timestamp" in s.reason for s in plan.skipped if s.stream == "velo_lidar")
    # GPS clock: reported, not aligned
    gps = plan.span_ns("/gps/fix")
    assert gps == (1574859835_749949000, 1574859841_949949000)
    assert any("do not overlap" in n for n in plan.notes)
    # time order
    stamps = [it.stamp_ns for it in plan.items]
    assert stamps == sorted(stamps)
    assert plan.calibration is None  # no config/ above the tmp sequence


def test_gps_offset_shifts_only_gps(full_layout: Path) -> None:
    offset = -60_000_000_000
    plan = read_radiate(full_layout, gps_offset_ns=offset, streams=["gps_imu", "velo_lidar"])
    assert plan.span_ns("/gps/fix") == (1574859775_749949000, 1574859781_949949000)
    assert plan.span_ns("/velodyne_points") == (1574859771_700975000, 1574859775_804477000)
    assert any("shifted by -60.000000000 s" in n for n in plan.notes)
    assert not any("do not overlap" in n for n in plan.notes)


def test_unknown_stream_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="unknown RADIATE stream"):
        read_radiate(RADIATE_DATA, streams=["thermal"])
    with pytest.raises(ConvertError, match="not found"):
        read_radiate(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConvertError, match="no RADIATE sequence"):
        read_radiate(tmp_path / "empty")


# ------------------------------------------------------------------ payloads of the real excerpt


def test_real_excerpt_payloads() -> None:
    plan = read_radiate(RADIATE_DATA)  # finds data/radiate/tiny_foggy and config/default-calib.yaml
    assert plan.calibration == RADIATE_DATA / "config" / "default-calib.yaml"
    counts = plan.counts()
    assert counts["/zed_left/image_raw"] == 2
    assert counts["/velodyne_points"] == 1
    polar = sorted((RADIATE_SEQ / "Navtech_Polar").glob("*.png"))
    assert counts["/radar/polar"] == len(polar) >= 1  # the fixture holds a few scans (000008, 000010)
    assert counts["/gps/fix"] == counts["/imu/data"] == 3  # files 1..5: 1, 3, 5 kept, 2 and 4 duplicates
    items = {(it.topic, it.key): it for it in plan.items}

    lidar = items[("/velodyne_points", "000040")]
    assert lidar.stamp_ns == 1574859773_902848000
    cloud = lidar.load()
    assert isinstance(cloud, PointCloud)
    assert cloud.frame_id == "velodyne"
    ref = np.loadtxt(RADIATE_SEQ / "velo_lidar" / "000040.csv", delimiter=",")
    assert cloud.points.shape == (len(ref),) == (cloud.width,)
    assert cloud.points.dtype.names == ("x", "y", "z", "intensity", "ring")
    assert cloud.points["ring"].dtype == np.uint16
    np.testing.assert_array_equal(cloud.points["x"], ref[:, 0].astype(np.float32))
    np.testing.assert_array_equal(cloud.points["ring"], ref[:, 4].astype(np.uint16))

    image = items[("/zed_left/image_raw", "000022")].load()
    assert isinstance(image, ImageData)
    assert image.encoding == "bgr8"
    assert image.frame_id == "zed_left"
    np.testing.assert_array_equal(image.data, cv2.imread(str(RADIATE_SEQ / "zed_left" / "000022.png")))
    assert image.stamp_ns == 1574859773_896853601

    radar = items[("/radar/polar", "000008")].load()
    assert isinstance(radar, ImageData)
    assert radar.encoding == "mono8"
    assert radar.data.shape == (576, 400)

    fix = items[("/gps/fix", "000001")].load()
    assert isinstance(fix, NavSatFixData)
    assert fix.frame_id == "gps_imu"
    assert fix.latitude_deg == 55.892359288186391
    assert fix.longitude_deg == -3.321673745285121
    np.testing.assert_allclose(np.diag(fix.position_covariance), [0.026894760054574, 0.040273964608809,
                                                                  0.146884650049395])
    imu = items[("/imu/data", "000001")].load()
    assert isinstance(imu, ImuData)
    np.testing.assert_array_equal(imu.orientation, [-0.00388, 0.00605, -0.98632, -0.16469])
    np.testing.assert_array_equal(imu.angular_velocity, [-0.00266, -0.01089, 0.03308])
    np.testing.assert_array_equal(imu.linear_acceleration, [-0.52967, 0.51694, -0.04700])


def test_compressed_images_keep_png_bytes() -> None:
    plan = read_radiate(RADIATE_DATA, compress_images=True, streams=["zed_left"])
    item = plan.items[0]
    payload = item.load()
    assert isinstance(payload, CompressedImageData)
    assert payload.format == "png"
    assert payload.data.tobytes() == item.source.read_bytes()


def test_gps_file_parser() -> None:
    rows = parse_gps_imu_file(RADIATE_SEQ / "GPS_IMU_Twist" / "000003.txt")
    assert rows.shape == (18, 3)
    q = parse_gps_imu_quaternion(RADIATE_SEQ / "GPS_IMU_Twist" / "000003.txt")
    assert abs(np.linalg.norm(q) - 1.0) < 1e-4


# ------------------------------------------------------------------ bad data files


def test_corrupt_csv_line_reports_file_and_line(radiate_copy: Path) -> None:
    csv = radiate_copy / "data/radiate/tiny_foggy/velo_lidar/000040.csv"
    lines = csv.read_text().splitlines()
    lines[2] = "1.0,2.0,oops,3,4"
    csv.write_text("\n".join(lines) + "\n")
    plan = read_radiate(radiate_copy, streams=["velo_lidar"])
    with pytest.raises(ConvertError) as info:
        plan.items[0].load()
    assert info.value.file == str(csv)
    assert info.value.line == 3
    lines[2] = "1.0,2.0,3.0,4"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConvertError) as info:
        plan.items[0].load()
    assert info.value.line == 3
    assert "5 comma-separated" in info.value.message


def test_unreadable_png_raises_or_is_reported(radiate_copy: Path, tmp_path: Path) -> None:
    png = radiate_copy / "data/radiate/tiny_foggy/zed_left/000022.png"
    png.write_bytes(png.read_bytes()[:200])  # truncated
    with pytest.raises(ConvertError) as info:
        convert(radiate_copy, tmp_path / "bag1", streams=["zed_left"])
    assert info.value.file == str(png)
    assert not (tmp_path / "bag1").exists()  # the partial bag is removed
    report = convert(radiate_copy, tmp_path / "bag2", streams=["zed_left"], on_error="skip")
    assert report.counts["/zed_left/image_raw"] == 1
    bad = [s for s in report.skipped if s.reason.startswith("unreadable")]
    assert [(s.stream, s.item, s.file) for s in bad] == [("zed_left", "000022", str(png))]
