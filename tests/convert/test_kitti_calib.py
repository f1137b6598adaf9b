"""KITTI object frames from different drives: one bag holds one calibration, never a wrong one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgefuse.bag import open_bag
from edgefuse.convert import convert
from edgefuse.errors import ConvertError
from edgefuse.rig import load_rig

KITTI = Path(__file__).parents[1] / "data" / "kitti_object_3frames" / "training"


def _two_drives(root: Path) -> Path:
    """Frames 000000 (real) and 000001 (same data, focal length changed: 'another drive')."""
    base = root / "training"
    for sub, ext in (("calib", ".txt"), ("image_2", ".png"), ("velodyne", ".bin")):
        (base / sub).mkdir(parents=True)
        for frame in ("000000", "000001"):
            shutil.copy(KITTI / sub / f"000000{ext}", base / sub / f"{frame}{ext}")
    calib = (base / "calib" / "000001.txt").read_text().splitlines()
    calib = [line.replace("P2: 7.070493000000e+02", "P2: 7.215377000000e+02") for line in calib]
    (base / "calib" / "000001.txt").write_text("\n".join(calib) + "\n")
    assert "7.215377" in (base / "calib" / "000001.txt").read_text()
    return root


def test_frames_with_another_calibration_are_skipped_and_reported(tmp_path: Path) -> None:
    src = _two_drives(tmp_path / "kitti")
    report = convert(src, tmp_path / "bag0", layout="kitti_object")
    skipped = {(s.stream, s.item) for s in report.skipped}
    assert ("image_2", "000001") in skipped and ("velodyne", "000001") in skipped
    assert any("another calibration" in n for n in report.notes)
    with open_bag(tmp_path / "bag0") as reader:
        assert reader.topics["/velodyne_points"].count == 1
    # the rig camera takes the size of the reference frame's image (1224 x 370 for frame 000000)
    rig = load_rig(tmp_path / "bag0" / "rig.yaml")
    cam = rig.camera("cam2")
    assert (cam.width, cam.height) == (1224, 370)
    assert cam.K[0, 0] == pytest.approx(707.0493)

    report1 = convert(src, tmp_path / "bag1", layout="kitti_object", calib_frame=1)
    assert {(s.stream, s.item) for s in report1.skipped} >= {("image_2", "000000"), ("velodyne", "000000")}
    rig1 = load_rig(tmp_path / "bag1" / "rig.yaml")
    assert rig1.camera("cam2").K[0, 0] == pytest.approx(721.5377)
    assert np.isfinite(rig1.transform("cam2", "velodyne").matrix).all()


def test_unknown_calib_frame_is_a_clear_error(tmp_path: Path) -> None:
    src = _two_drives(tmp_path / "kitti")
    with pytest.raises(ConvertError, match="no calib file for frame 000007"):
        convert(src, tmp_path / "bag", layout="kitti_object", calib_frame=7)
