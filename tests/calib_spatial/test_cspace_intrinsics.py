"""Camera intrinsics from SYNTHETIC checkerboard images rendered through a known camera."""

from __future__ import annotations

import numpy as np
import pytest
from edgefuse_calibration.spatial import calibrate_intrinsics
from edgefuse_calibration.spatial.synthetic import random_board_pose, render_board

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel

PAT = (7, 5)
SQ = 0.05
TRUE = CameraModel(name="c", frame_id="c", width=400, height=300, K=[[330, 0, 205], [0, 328, 148], [0, 0, 1]],
                   D=[-0.12, 0.03, 0, 0, 0], model="plumb_bob")


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
