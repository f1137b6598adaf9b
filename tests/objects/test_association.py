"""Association: IoU kernels vs slow references, assignment vs scipy, camera association on KITTI labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

from edgefuse.objects import (
    AssociationError,
    assign,
    associate_camera,
    bev_iou,
    center_distance,
    iou_2d,
    linear_sum_assignment,
    mahalanobis_sq,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "kitti_object_3frames" / "training"


def _iou_ref(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _corners(b: np.ndarray) -> np.ndarray:
    x, y, l, w, yaw = b  # noqa: E741
    c, s = math.cos(yaw), math.sin(yaw)
    loc = np.array([[l / 2, w / 2], [-l / 2, w / 2], [-l / 2, -w / 2], [l / 2, -w / 2]])
    return np.asarray(loc @ np.array([[c, s], [-s, c]]) + [x, y])


def _inside(p: np.ndarray, poly: np.ndarray) -> bool:
    for k in range(4):
        a, b = poly[k], poly[(k + 1) % 4]
        if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) < -1e-12:
            return False
    return True


def _bev_iou_ref(a: np.ndarray, b: np.ndarray) -> float:
    """Vertex enumeration: corners inside the other box + edge intersections, sorted by angle."""
    pa, pb = _corners(a), _corners(b)
    pts = [p for p in pa if _inside(p, pb)] + [p for p in pb if _inside(p, pa)]
    for i in range(4):
        p1, p2 = pa[i], pa[(i + 1) % 4]
        for j in range(4):
            q1, q2 = pb[j], pb[(j + 1) % 4]
            d = (p2[0] - p1[0]) * (q2[1] - q1[1]) - (p2[1] - p1[1]) * (q2[0] - q1[0])
            if abs(d) < 1e-15:
                continue
            t = ((q1[0] - p1[0]) * (q2[1] - q1[1]) - (q1[1] - p1[1]) * (q2[0] - q1[0])) / d
            u = ((q1[0] - p1[0]) * (p2[1] - p1[1]) - (q1[1] - p1[1]) * (p2[0] - p1[0])) / d
            if 0 <= t <= 1 and 0 <= u <= 1:
                pts.append(p1 + t * (p2 - p1))
    if len(pts) < 3:
        return 0.0
    P = np.array(pts)
    c = P.mean(axis=0)
    P = P[np.argsort(np.arctan2(P[:, 1] - c[1], P[:, 0] - c[0]))]
    inter = 0.5 * abs(np.sum(P[:, 0] * np.roll(P[:, 1], -1) - np.roll(P[:, 0], -1) * P[:, 1]))
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))


def test_iou_2d_matches_reference() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((30, 2)) * 10
    a = np.hstack([a, a + rng.random((30, 2)) * 5 + 0.1])
    b = rng.random((20, 2)) * 10
    b = np.hstack([b, b + rng.random((20, 2)) * 5 + 0.1])
    got = iou_2d(a, b)
    ref = np.array([[_iou_ref(x, y) for y in b] for x in a])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert iou_2d(np.zeros((0, 4)), b).shape == (0, 20)


def test_bev_iou_exact_cases_and_reference() -> None:
    sq = np.array([[0.0, 0.0, 2.0, 2.0, 0.0]])
    assert bev_iou(sq, sq)[0, 0] == pytest.approx(1.0)
    # axis-aligned: equals 2-D IoU
    shifted = np.array([[1.0, 0.0, 2.0, 2.0, 0.0]])
    assert bev_iou(sq, shifted)[0, 0] == pytest.approx(1 / 3)
    # unit-area square rotated by 45° over an axis-aligned one: intersection is an octagon
    rot = np.array([[0.0, 0.0, 2.0, 2.0, math.pi / 4]])
    inter = 8 * (math.sqrt(2) - 1)  # regular octagon of inradius 1
    assert bev_iou(sq, rot)[0, 0] == pytest.approx(inter / (8 - inter), rel=1e-12)
    # yaw + π is the same box
    assert bev_iou(rot, rot + np.array([0, 0, 0, 0, math.pi]))[0, 0] == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    A = np.column_stack([rng.normal(0, 2, (40, 2)), rng.uniform(1, 5, (40, 2)), rng.uniform(-4, 4, 40)])
    B = np.column_stack([rng.normal(0, 2, (30, 2)), rng.uniform(1, 5, (30, 2)), rng.uniform(-4, 4, 30)])
    ref = np.array([[_bev_iou_ref(x, y) for y in B] for x in A])
    np.testing.assert_allclose(bev_iou(A, B), ref, atol=1e-9)
    assert (ref > 0).sum() > 100  # the random set really overlaps
    # (N, 7) rows are accepted
    A7 = np.column_stack([A[:, :2], np.zeros(40), A[:, 2:4], np.ones(40), A[:, 4]])
    np.testing.assert_allclose(bev_iou(A7, B), ref, atol=1e-9)


@pytest.mark.parametrize("shape", [(8, 8), (5, 9), (9, 5), (1, 7), (30, 30), (40, 25)])
def test_linear_sum_assignment_equals_scipy(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for trial in range(20):
        c = rng.random(shape) * 100
        if trial % 3 == 1:
            c = np.round(c / 10)  # many ties
        if trial % 3 == 2:
            mask = rng.random(shape) < 0.3
            c[mask] = np.inf
        try:
            r_ref, c_ref = scipy_lsa(c)
        except ValueError:
            with pytest.raises(AssociationError):
                linear_sum_assignment(c)
            continue
        r, col = linear_sum_assignment(c)
        assert len(r) == min(shape)
        assert np.all(np.diff(r) > 0)
        assert len(set(col.tolist())) == len(col)
        assert c[r, col].sum() == pytest.approx(c[r_ref, c_ref].sum(), rel=1e-12, abs=1e-9)


def test_linear_sum_assignment_infeasible_and_bad() -> None:
    c = np.array([[np.inf, np.inf], [1.0, 2.0]])
    with pytest.raises(AssociationError, match="infeasible"):
        linear_sum_assignment(c)
    with pytest.raises(AssociationError, match="NaN"):
        linear_sum_assignment(np.array([[np.nan, 1.0]]))
    r, col = linear_sum_assignment(np.zeros((0, 3)))
    assert r.size == 0 and col.size == 0
    r, col = linear_sum_assignment(np.array([[1.0, 5.0], [2.0, 0.0]]), maximize=True)
    assert col.tolist() == [1, 0]


def test_assign_gates_and_leaves_unmatched() -> None:
    cost = np.array([[1.0, 50.0, np.inf], [2.0, 0.5, 80.0], [90.0, 95.0, 99.0]])
    rows, cols, um_r, um_c = assign(cost, max_cost=10.0)
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 0, 1: 1}
    assert um_r.tolist() == [2] and um_c.tolist() == [2]
    rows, cols, um_r, um_c = assign(np.zeros((0, 4)), 1.0)
    assert rows.size == 0 and um_c.tolist() == [0, 1, 2, 3]


def test_gating_distances() -> None:
    pred = np.array([[0.0, 0.0], [10.0, 0.0]])
    cov = np.stack([np.diag([1.0, 4.0]), np.array([[np.nan, 0], [0, 1.0]])])
    z = np.array([[1.0, 2.0], [10.0, 1.0]])
    d2 = mahalanobis_sq(pred, cov, z)
    assert d2[0, 0] == pytest.approx(1.0 + 1.0)
    assert d2[0, 1] == pytest.approx(100.0 + 0.25)
    assert np.all(np.isinf(d2[1]))  # NaN covariance: nothing gates in
    np.testing.assert_allclose(center_distance(pred, z), [[math.sqrt(5), math.sqrt(101)], [math.sqrt(85), 1.0]])


def _kitti_labels(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    boxes2d, boxes3d, names = [], [], []
    for line in path.read_text().splitlines():
        f = line.split()
        if f[0] == "DontCare":
            continue
        h, w, l = map(float, f[8:11])  # noqa: E741
        x, y, z, ry = map(float, f[11:15])
        names.append(f[0])
        boxes2d.append([float(v) for v in f[4:8]])
        boxes3d.append([x, y - h / 2, z, l, w, h, ry])
    return np.array(boxes2d), np.array(boxes3d), names


def test_camera_association_on_kitti_labels() -> None:
    """KITTI 3-D labels (rectified cam0) → velodyne frame → projected into cam2 through the rig; each
    must match its own labelled 2-D box."""
    from edgefuse.rig import from_kitti_object

    rig = from_kitti_object(DATA / "calib" / "000001.txt")
    b2, b3cam, names = _kitti_labels(DATA / "label_2" / "000001.txt")
    # camera box (x right, y down, z forward; ry about y) → velodyne-frame box with yaw about z
    T = rig.transform("velodyne", "cam0")
    centers = T.apply(b3cam[:, :3])
    heading_cam = np.stack([np.cos(b3cam[:, 6]), np.zeros(len(b3cam)), -np.sin(b3cam[:, 6])], axis=1)
    heading_velo = heading_cam @ T.R.T
    yaw = np.arctan2(heading_velo[:, 1], heading_velo[:, 0])
    b3 = np.column_stack([centers, b3cam[:, 3], b3cam[:, 4], b3cam[:, 5], yaw])
    perm = np.random.default_rng(3).permutation(len(b2))
    rows, cols, ious = associate_camera(b3, "velodyne", b2[perm], rig, "cam2", min_iou=0.5)
    assert len(rows) == len(b2) == 3, names
    assert np.all(perm[cols] == rows)
    assert ious.min() > 0.95  # measured 0.98-0.99
