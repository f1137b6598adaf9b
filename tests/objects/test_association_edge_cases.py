"""Issue 5 fixes 3 and 7: Mahalanobis gating of bad covariances, counted drops in association."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgefuse.objects import (
    assign,
    associate_frames,
    bev_iou,
    center_distance,
    iou_2d,
    mahalanobis_sq,
)

CHI2_2DOF_999 = 13.8


def test_mahalanobis_bad_covariances_never_gate_in() -> None:
    pred = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]])
    cov = np.stack([
        np.eye(2),                      # good
        -np.eye(2),                     # negative definite: was -d² < 0, passing any χ² gate
        np.full((2, 2), np.nan),        # NaN
        np.diag([1.0, -0.5]),           # indefinite
        np.array([[1.0, 2.0], [0.0, 1.0]]),  # not symmetric
        np.zeros((2, 2)),               # singular
    ])
    meas = pred + 0.1
    rej: Counter[str] = Counter()
    d2 = mahalanobis_sq(pred, cov, meas, rejected=rej)
    assert d2.shape == (6, 6)
    assert np.all(np.isfinite(d2[0])) and np.all(d2[0] >= 0)
    np.testing.assert_allclose(d2[0, 0], 0.02)
    assert np.all(np.isinf(d2[1:]) & (d2[1:] > 0))
    assert not np.any(d2[1:] < CHI2_2DOF_999)
    assert rej == Counter({"not_positive_definite": 4, "non_finite_covariance": 1})
    # NaN predictions and measurements: inf, counted, never NaN
    pred2 = np.array([[0.0, 0.0], [np.nan, 0.0]])
    meas2 = np.array([[0.1, 0.0], [0.0, np.inf], [0.2, 0.2]])
    rej2: Counter[str] = Counter()
    d = mahalanobis_sq(pred2, np.eye(2), meas2, rejected=rej2)
    assert not np.isnan(d).any()
    assert np.isinf(d[1]).all() and np.isinf(d[:, 1]).all()
    np.testing.assert_allclose(d[0, [0, 2]], [0.01, 0.08])
    assert rej2 == Counter({"non_finite_prediction": 1, "non_finite_measurement": 1})
    # the counter is optional and the distances are the same without it
    np.testing.assert_array_equal(mahalanobis_sq(pred, cov, meas), d2)


def test_mahalanobis_matches_direct_formula() -> None:
    rng = np.random.default_rng(51)
    pred = rng.normal(size=(5, 3))
    meas = rng.normal(size=(7, 3))
    A = rng.normal(size=(5, 3, 3))
    cov = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(3)
    d2 = mahalanobis_sq(pred, cov, meas)
    for i in range(5):
        for j in range(7):
            r = meas[j] - pred[i]
            assert d2[i, j] == pytest.approx(float(r @ np.linalg.solve(cov[i], r)), rel=1e-9)


def test_iou_and_distance_count_dropped_rows() -> None:
    a = np.array([[0, 0, 10, 10], [np.nan, 0, 5, 5], [10, 10, 0, 0], [3, 3, 3, 8]], dtype=float)
    b = np.array([[0, 0, 10, 10], [1, 1, 9, 9]], dtype=float)
    rej: Counter[str] = Counter()
    iou = iou_2d(a, b, rejected=rej)
    assert iou[0, 0] == 1.0 and np.all(iou[1:] == 0.0)
    assert rej == Counter({"non_finite_box": 1, "inverted_box": 1, "zero_size_box": 1})
    np.testing.assert_array_equal(iou_2d(a, b), iou)  # existing callers unchanged

    bev = np.array([[0, 0, 4, 2, 0.0], [0, 0, np.nan, 2, 0.0], [0, 0, -4, 2, 0.0], [0, 0, 4, 0, 0.0]])
    rej = Counter()
    m = bev_iou(bev, bev[:1], rejected=rej)
    assert m[0, 0] == pytest.approx(1.0) and np.all(m[1:] == 0.0)
    assert rej == Counter({"non_finite_box": 1, "inverted_box": 1, "zero_size_box": 1})

    rej = Counter()
    dist = center_distance(np.array([[0, 0], [np.nan, 1]]), np.array([[3, 4], [1, np.inf]]), rejected=rej)
    assert dist[0, 0] == 5.0 and np.isinf(dist[1]).all() and np.isinf(dist[:, 1]).all()
    assert rej == Counter({"non_finite_center": 2})


def test_assign_counts_nan_costs() -> None:
    cost = np.array([[0.1, np.nan], [np.inf, 0.2], [-np.inf, 5.0]])
    rej: Counter[str] = Counter()
    rows, cols, um_r, um_c = assign(cost, 1.0, rejected=rej)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1] and um_r.tolist() == [2] and um_c.size == 0
    assert rej == Counter({"non_finite_cost": 2})  # +inf is "forbidden", not a dropped input
    assert [x.tolist() for x in assign(cost, 1.0)] == [[0, 1], [0, 1], [2], []]


class _ShiftRig:
    """Just what associate_frames uses: ``transform(to, from).matrix`` (b is 1 m ahead of a in x)."""

    class _T:
        matrix = np.array([[1.0, 0, 0, 1.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    def transform(self, to: str, frm: str) -> _T:
        assert (to, frm) == ("a", "b")
        return self._T()


def test_associate_frames_counts_non_finite_centres() -> None:
    a = np.array([[1.0, 0, 0], [np.nan, 0, 0], [5.0, 5.0, 0]])
    b = np.array([[0.1, 0, 0], [4.0, 5.0, 0], [0, math.inf, 0]])
    rej: Counter[str] = Counter()
    rows, cols, dist = associate_frames(a, "a", b, "b", _ShiftRig(), max_distance_m=0.5, rejected=rej)
    assert rows.tolist() == [0, 2] and cols.tolist() == [0, 1]
    np.testing.assert_allclose(dist, [0.1, 0.0], atol=1e-12)
    assert rej == Counter({"non_finite_center": 2})


KITTI = Path(__file__).parents[1] / "data" / "kitti_object_3frames" / "training"


def test_associate_camera_counts_what_cannot_match() -> None:
    """A real KITTI frame (labels 000001) with bad rows added on both sides: the good pairs still match,
    the bad rows are counted by reason."""
    from edgefuse.objects import associate_camera
    from edgefuse.rig import from_kitti_object

    rig = from_kitti_object(KITTI / "calib" / "000001.txt")
    b2, b3c = [], []
    for line in (KITTI / "label_2" / "000001.txt").read_text().splitlines():
        f = line.split()
        if f[0] == "DontCare":
            continue
        h, w, length = map(float, f[8:11])
        x, y, z, ry = map(float, f[11:15])
        b2.append([float(v) for v in f[4:8]])
        b3c.append([x, y - h / 2, z, length, w, h, ry])
    T = rig.transform("velodyne", "cam0")
    cam = np.array(b3c)
    heading = np.stack([np.cos(cam[:, 6]), np.zeros(len(cam)), -np.sin(cam[:, 6])], axis=1) @ T.R.T
    b3 = np.column_stack([T.apply(cam[:, :3]), cam[:, 3:6], np.arctan2(heading[:, 1], heading[:, 0])])
    n = len(b3)
    bad3 = np.array([
        [np.nan, 0, 0, 4, 2, 1.5, 0],       # non-finite
        [10, 0, -1, 4, -2, 1.5, 0],         # negative width
        [10, 0, -1, 4, 2, 0.0, 0],          # zero height
        [-10, 0, -1, 4, 2, 1.5, 0],         # behind the camera: not projected
    ])
    bad2 = np.array([[np.nan, 0, 10, 10], [500, 200, 400, 300]], dtype=float)
    rej: Counter[str] = Counter()
    rows, cols, ious = associate_camera(np.vstack([b3, bad3]), "velodyne", np.vstack([np.array(b2), bad2]), rig,
                                        "cam2", min_iou=0.5, rejected=rej)
    assert rows.tolist() == list(range(n)) and cols.tolist() == list(range(n))
    assert ious.min() > 0.95
    assert rej == Counter({"non_finite_box": 2, "inverted_box": 2, "zero_size_box": 1, "not_projected": 1})
