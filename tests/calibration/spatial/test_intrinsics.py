"""Camera intrinsics from SYNTHETIC checkerboard and ChArUco images rendered through a known camera."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from edgefuse_calibration.spatial import calibrate_intrinsics
from edgefuse_calibration.spatial.intrinsics import CharucoBoard
from edgefuse_calibration.spatial.synthetic import random_board_pose, render_board, render_texture

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform

PAT = (7, 5)
SQ = 0.05
TRUE = CameraModel(name="c", frame_id="c", width=400, height=300,
                   K=np.array([[330.0, 0, 205], [0, 328, 148], [0, 0, 1]]),
                   D=np.array([-0.12, 0.03, 0, 0, 0]), model="plumb_bob")


def _views(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [render_board(TRUE, random_board_pose(rng, PAT, SQ, distance_m=(0.6, 1.0), lateral_m=0.25),
                         PAT, SQ, rng=rng) for _ in range(n)]


def test_intrinsics_recovered_with_a_corrupted_view() -> None:
    views = _views(10, 5)
    # a view with corrupted geometry: the same board image shifted by a non-rigid warp
    bad = views[0].copy()
    bad[:, 200:] = np.roll(bad[:, 200:], 6, axis=0)
    res = calibrate_intrinsics([*views, bad], PAT, SQ, min_coverage=0.3)
    assert res.camera is not None, res.reasons
    assert abs(res.camera.fx - 330) / 330 < 0.01
    assert abs(res.camera.cx - 205) < 3
    assert res.metrics["rms_px"] < 0.5


def test_no_board_found_refused() -> None:
    blank = [np.full((300, 400), 128, np.uint8)] * 6
    res = calibrate_intrinsics(blank, PAT, SQ)
    assert res.verdict == "refused"
    assert res.camera is None
    assert "found in 0 of 6" in res.reasons[0]


def test_bad_input() -> None:
    with pytest.raises(CalibrationError):
        calibrate_intrinsics([], PAT, SQ)
    with pytest.raises(CalibrationError):
        calibrate_intrinsics([np.zeros((10, 10), np.uint8), np.zeros((11, 10), np.uint8)], PAT, SQ)
    with pytest.raises(CalibrationError):
        calibrate_intrinsics([np.zeros((10, 10), np.uint8)], PAT, SQ, model="kannala")


def _charuco_views(n: int, seed: int, camera: CameraModel = TRUE) -> tuple[CharucoBoard, list[np.ndarray]]:
    board = CharucoBoard((7, 5), 0.04, 0.03)
    texture = board.cv_board().generateImage((280, 200), marginSize=0)  # 1 mm per texture pixel
    rng = np.random.default_rng(seed)
    views = [render_texture(camera, random_board_pose(rng, (6, 4), 0.04, distance_m=(0.3, 0.5), lateral_m=0.12),
                            texture, 0.001, rng=rng) for _ in range(n)]
    return board, views


@pytest.fixture(scope="module")
def charuco() -> tuple[CharucoBoard, list[np.ndarray]]:
    return _charuco_views(12, 3)


def test_charuco_cli_writes_report(charuco: tuple[CharucoBoard, list[np.ndarray]], tmp_path: Path) -> None:
    import argparse

    import cv2
    from edgefuse_calibration.spatial.cli import add_spatial_parsers

    paths = []
    for k, im in enumerate(charuco[1]):
        paths.append(str(tmp_path / f"v{k}.png"))
        cv2.imwrite(paths[-1], im)
    parser = argparse.ArgumentParser()
    add_spatial_parsers(parser.add_subparsers())
    args = parser.parse_args(["intrinsics", *paths, "--target", "charuco", "--squares", "7x5", "--square", "0.04",
                              "--marker", "0.03", "--dictionary", "DICT_5X5_100",
                              "--report", str(tmp_path / "r.json")])
    rc = args.func(args)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rc == 0 and rep["verdict"] == "ok"
    assert rep["metrics"]["target"] == {"type": "charuco", "squares": [7, 5], "square_m": 0.04, "marker_m": 0.03,
                                        "dictionary": "DICT_5X5_100", "legacy": False}
    assert rep["metrics"]["n_views_used"] == 12 and rep["metrics"]["coverage"] >= 0.5
    assert abs(rep["camera"]["K"][0][0] - 330) < 5


def test_charuco_intrinsics_recovered_with_partly_hidden_boards(
        charuco: tuple[CharucoBoard, list[np.ndarray]]) -> None:
    board, views = charuco[0], [im.copy() for im in charuco[1]]
    for im in views[:4]:  # hide a third of the image: ChArUco still gives the visible corners
        im[:, : im.shape[1] // 3] = 128
    partial = board.detect(views[0])
    assert partial is not None and 6 <= len(partial[0]) < 24
    res = calibrate_intrinsics(views, board, min_coverage=0.3)
    assert res.ok, res.reasons
    assert res.camera is not None
    assert abs(res.camera.fx - 330) < max(3 * res.std["fx"], 1.0)
    assert abs(res.camera.cx - 205) < max(3 * res.std["cx"], 1.0)
    assert res.metrics["target"]["type"] == "charuco"


def test_equidistant_fisheye_intrinsics() -> None:
    fish = CameraModel(name="f", frame_id="f", width=400, height=300,
                   K=np.array([[180.0, 0, 198], [0, 181, 152], [0, 0, 1]]),
                       D=np.array([0.05, -0.02, 0.01, -0.003]), model="equidistant")
    rng = np.random.default_rng(11)
    views = [render_board(fish, random_board_pose(rng, PAT, SQ, distance_m=(0.35, 0.6), lateral_m=0.25),
                          PAT, SQ, rng=rng) for _ in range(10)]
    res = calibrate_intrinsics(views, PAT, SQ, model="equidistant", min_coverage=0.3)
    assert res.ok, res.reasons
    assert res.camera is not None and res.camera.model == "equidistant"
    assert abs(res.camera.fx - 180) < max(3 * res.std["fx"], 1.0)
    assert abs(res.camera.cy - 152) < max(3 * res.std["cy"], 1.0)
    assert "std_opencv" not in res.metrics  # OpenCV gives none for fisheye; the jackknife is there
    assert set(res.std) == {"fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4"}


def test_fronto_parallel_views_refused_focal_length_not_determined() -> None:
    # All boards square to the optical axis at one distance: the focal length trades off against the
    # distance (Zhang 2000), the fit is still tight, only the uncertainty shows it.
    rng = np.random.default_rng(2)
    views = []
    for _ in range(8):
        pos = np.array([rng.uniform(-0.25, 0.05), rng.uniform(-0.15, 0.0), 0.8])
        views.append(render_board(TRUE, Transform.from_rt(np.eye(3), pos), PAT, SQ, rng=rng))
    res = calibrate_intrinsics(views, PAT, SQ, min_coverage=0.2)
    assert res.verdict == "refused"
    assert any("focal length not determined" in r for r in res.reasons), res.reasons
    assert res.metrics["rms_px"] < 0.5


def test_board_definitions_checked() -> None:
    with pytest.raises(CalibrationError, match="marker size"):
        CharucoBoard((7, 5), 0.04, 0.05)
    with pytest.raises(CalibrationError, match="dictionary"):
        CharucoBoard((7, 5), 0.04, 0.03, dictionary="DICT_NOPE")
    with pytest.raises(CalibrationError, match="needs 55 markers"):
        CharucoBoard((11, 10), 0.04, 0.03, dictionary="DICT_4X4_50")
    with pytest.raises(CalibrationError, match="square size"):
        calibrate_intrinsics([np.zeros((10, 10), np.uint8)], (9, 6))
    with pytest.raises(CalibrationError, match="fix_aspect_ratio"):
        calibrate_intrinsics([np.zeros((10, 10), np.uint8)], PAT, SQ, model="equidistant", fix_aspect_ratio=True)


def test_undetermined_principal_point_and_unknown_uncertainty_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgefuse_calibration.spatial.intrinsics as intr

    views = _views(8, 5)
    strict = calibrate_intrinsics(views, PAT, SQ, min_coverage=0.3, max_center_std_px=0.01)
    assert strict.verdict == "refused" and strict.camera is not None  # measured, but not accepted
    assert any("principal point not determined" in r for r in strict.reasons), strict.reasons
    # a jackknife that yields NaN must refuse, not pass the gates (NaN > limit is False)
    monkeypatch.setattr(intr, "_jackknife_std", lambda *a, **k: np.full(9, np.nan))
    nan = calibrate_intrinsics(views, PAT, SQ, min_coverage=0.3)
    assert nan.verdict == "refused"
    assert any("uncertainty could not be estimated" in r for r in nan.reasons), nan.reasons
    with pytest.raises(CalibrationError, match="contradicts"):
        calibrate_intrinsics(views, intr.Checkerboard(PAT, SQ), 0.03)
