"""The OpenCV camera source on a small MJPEG video made at test time from real EuRoC frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from edgefuse_drivers.camera.opencv import CameraSource

from edgefuse.errors import DriverError
from edgefuse.msgs import deserialize, from_payload, serialize, to_payload
from edgefuse.msgs.types import CompressedImageData, ImageData
from edgefuse.sources import open_source

FRAMES = (Path(__file__).resolve().parents[2] / "data" / "euroc_v101_micro" / "MicroEurocDataset" / "mav0" / "cam0"
          / "data")
N = 12


def real_frames() -> list[np.ndarray]:
    """12 frames: the 3 real EuRoC images, each also shifted by a few pixels (as a moving camera would)."""
    images = [np.asarray(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in sorted(FRAMES.glob("*.png"))]
    assert len(images) == 3
    out = []
    for shift in range(4):
        for im in images:
            out.append(cv2.cvtColor(np.roll(im, 3 * shift, axis=1), cv2.COLOR_GRAY2BGR))
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cam") / "euroc.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 20.0, (752, 480))
    for frame in real_frames():
        writer.write(frame)
    writer.release()
    return path


def test_mjpeg_file_passed_through_without_reencoding(video: Path) -> None:
    src = open_source(f"camera://{video}?frame_id=cam0&start_ns=1000")
    assert isinstance(src, CameraSource) and not src.live
    with src:
        assert src.topics()["/camera/image"].msgtype == "sensor_msgs/msg/CompressedImage"
        envs = list(src.envelopes())
    assert len(envs) == N and src.stats()["compressed_passthrough"]
    assert [e.stamp_ns for e in envs] == [1000 + i * 50_000_000 for i in range(N)]  # 20 fps presentation times
    decoded = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    originals = real_frames()
    for env, original in zip(envs, originals, strict=True):
        p = env.payload
        assert isinstance(p, CompressedImageData) and p.format == "jpeg" and p.frame_id == "cam0"
        assert bytes(p.data[:2]) == b"\xff\xd8" and bytes(p.data[-2:]) == b"\xff\xd9"
        ok, ffmpeg_frame = decoded.read()
        assert ok
        ours = np.asarray(cv2.imdecode(p.data, cv2.IMREAD_COLOR))
        # the same JPEG bytes the file holds: libjpeg and FFmpeg's decoder agree to rounding
        assert np.abs(ours.astype(int) - np.asarray(ffmpeg_frame)).max() <= 3
        assert np.abs(ours.astype(int) - original).mean() < 5  # and it is the real image (JPEG loss only)
    raw = serialize(from_payload(envs[0].payload), "sensor_msgs/msg/CompressedImage")
    assert np.array_equal(to_payload(deserialize(raw, "sensor_msgs/msg/CompressedImage")).data, envs[0].payload.data)


def test_decoded_frames_when_passthrough_is_off(video: Path) -> None:
    with open_source(str(video), passthrough=False) as src:
        envs = list(src.envelopes())
    assert len(envs) == N
    p = envs[0].payload
    assert isinstance(p, ImageData) and p.encoding == "bgr8" and p.data.shape == (480, 752, 3)
    assert envs[0].msgtype == "sensor_msgs/msg/Image"


def test_truncated_file_is_reported(video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    src = open_source(str(cut))
    got = []
    with src:
        it = src.envelopes()
        with pytest.raises(DriverError, match=r"video ends after \d+ of 12 frames"):  # noqa: PT012
            for env in it:
                got.append(env)
    assert 1 <= len(got) < N


def test_missing_device_and_gstreamer_reported() -> None:
    with pytest.raises(DriverError, match="cannot open"):
        open_source("camera:///dev/video99").open()
    if "GStreamer:                   YES" not in cv2.getBuildInformation():
        with pytest.raises(DriverError, match="GStreamer"):
            open_source("camera+gst://videotestsrc ! appsink").open()
