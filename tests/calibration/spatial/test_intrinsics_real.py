"""Camera intrinsics from REAL checkerboard images: OpenCV's sample views left01-14.jpg (one camera, 13
views, 9x6 board) against OpenCV's published calibration of the same views (tests/data/opencv_samples)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from edgefuse_calibration.spatial.intrinsics import Checkerboard, calibrate_intrinsics

from edgefuse.rig import load_rig

DATA = Path(__file__).resolve().parents[2] / "data" / "opencv_samples"
FILES = sorted(DATA.glob("left*.jpg"))


def _published() -> dict[str, Any]:
    fs = cv2.FileStorage(str(DATA / "left_intrinsics.yml"), cv2.FILE_STORAGE_READ)
    out = {"K": fs.getNode("camera_matrix").mat(), "D": fs.getNode("distortion_coefficients").mat().ravel(),
           "rms": fs.getNode("avg_reprojection_error").real(),
           "per_view": fs.getNode("per_view_reprojection_errors").mat().ravel()}
    fs.release()
    return out


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    assert len(FILES) == 13
    imgs = [cv2.imread(str(f)) for f in FILES]
    assert all(i is not None for i in imgs)
    return [i for i in imgs if i is not None]


def test_same_settings_reproduce_the_published_calibration(images: list[np.ndarray]) -> None:
    # OpenCV's sample: cornerSubPix half-window 11, CALIB_FIX_ASPECT_RATIO, no view rejected.
    pub = _published()
    res = calibrate_intrinsics(images, Checkerboard((9, 6), 0.025, subpix_window=11), fix_aspect_ratio=True,
                               outlier_floor_px=10.0)
    assert res.ok, res.reasons
    cam = res.camera
    assert cam is not None
    assert abs(cam.fx - pub["K"][0, 0]) < 0.5 and cam.fx == cam.fy
    assert abs(cam.cx - pub["K"][0, 2]) < 0.5 and abs(cam.cy - pub["K"][1, 2]) < 0.5
    assert np.allclose(cam.D[:2], pub["D"][:2], atol=0.01)
    assert abs(res.metrics["rms_px"] - pub["rms"]) < 0.03
    # the same view (left02) is the worst by far, as in the published per-view errors
    per_view = np.array([res.metrics["per_view_rms_px"][str(i)] for i in range(13)])
    assert int(np.argmax(per_view)) == int(np.argmax(pub["per_view"])) == 1
    # and the published value lies within the reported uncertainty
    assert abs(cam.fx - pub["K"][0, 0]) < 2 * res.std["fx"]


def test_outlier_view_is_rejected_on_real_data(images: list[np.ndarray]) -> None:
    res = calibrate_intrinsics(images, Checkerboard((9, 6), 0.025, subpix_window=11), fix_aspect_ratio=True)
    assert res.ok, res.reasons
    assert res.metrics["rejected_views"] == [1]
    assert res.metrics["n_views_used"] == 12
    assert res.metrics["rms_px"] < 0.3


def test_default_settings_lower_residual_and_report_uncertainty(images: list[np.ndarray]) -> None:
    pub = _published()
    res = calibrate_intrinsics(images, (9, 6), 0.025)
    assert res.ok, res.reasons
    cam = res.camera
    assert cam is not None
    assert res.metrics["rms_px"] < 0.25 < pub["rms"]  # smaller corner window: half the published residual
    assert abs(cam.fx - pub["K"][0, 0]) / pub["K"][0, 0] < 0.01
    assert abs(cam.cx - pub["K"][0, 2]) < 3 and abs(cam.cy - pub["K"][1, 2]) < 3
    assert 0 < res.std["fx"] < 2 and 0 < res.std["cx"] < 3
    assert set(res.metrics["std_opencv"]) == {"fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3"}


def test_too_few_real_views_refused(images: list[np.ndarray]) -> None:
    res = calibrate_intrinsics(images[:4], (9, 6), 0.025)
    assert res.verdict == "refused" and res.camera is None
    assert "found in 4 of 4 images (need 5)" in res.reasons[0]


def test_cli_on_real_images_writes_report_and_rig(tmp_path: Path) -> None:
    rig = tmp_path / "rig.yaml"
    rig.write_text("edgefuse_rig: 1\nbase_frame: base_link\nframes:\n  - {parent: base_link, child: left,"
                   " translation: [0, 0, 0], rotation: {rpy_deg: [0, 0, 0]}}\n")
    report = tmp_path / "r.json"
    out = subprocess.run([sys.executable, "-m", "edgefuse.cli", "calibrate", "intrinsics", *map(str, FILES),
                          "--pattern", "9x6", "--square", "0.025", "--camera", "left", "--rig", str(rig),
                          "--report", str(report), "--plot", str(tmp_path / "p.png")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "intrinsics: ok fx 532." in out.stdout and "±" in out.stdout
    rep = json.loads(report.read_text())
    assert rep["verdict"] == "ok" and rep["rig_written"] is True
    assert rep["std"]["fx"] > 0 and len(rep["images"]) == 13
    written = load_rig(rig).camera("left")
    assert written.model == "plumb_bob" and written.fx == pytest.approx(rep["camera"]["K"][0][0])
    assert cv2.imread(str(tmp_path / "p.png")) is not None


def test_cli_refusal_exits_4_and_leaves_rig(tmp_path: Path) -> None:
    rig = tmp_path / "rig.yaml"
    rig.write_text("edgefuse_rig: 1\nbase_frame: base_link\nframes:\n  - {parent: base_link, child: left,"
                   " translation: [0, 0, 0], rotation: {rpy_deg: [0, 0, 0]}}\n")
    before = rig.read_text()
    out = subprocess.run([sys.executable, "-m", "edgefuse.cli", "calibrate", "intrinsics", *map(str, FILES[:3]),
                          "--pattern", "9x6", "--square", "0.025", "--camera", "left", "--rig", str(rig)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 4, out.stdout + out.stderr
    assert "refused" in out.stdout and rig.read_text() == before
    bad = subprocess.run([sys.executable, "-m", "edgefuse.cli", "calibrate", "intrinsics", str(FILES[0]),
                          "--target", "charuco", "--square", "0.04"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "needs --squares" in bad.stderr and "Traceback" not in bad.stderr
