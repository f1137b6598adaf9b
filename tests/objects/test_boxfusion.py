"""Box fusion vs ensemble_boxes (exact equality), 3-D WBF, estimate fusion, class-score fusion, bad input."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from ensemble_boxes import nms as eb_nms
from ensemble_boxes import soft_nms as eb_soft_nms
from ensemble_boxes import weighted_boxes_fusion as eb_wbf

from edgefuse.objects import (
    FusionError,
    covariance_intersection,
    fuse_class_scores,
    inverse_covariance_fusion,
    nms,
    soft_nms,
    weighted_boxes_fusion,
    weighted_boxes_fusion_3d,
)


def _models(rng: np.random.Generator, m: int = 3, n: int = 60, labels: int = 4,
            quantize: bool = False) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    base = rng.random((n, 2)) * 0.85
    wh = rng.random((n, 2)) * 0.15 + 0.01
    bl, sl, ll = [], [], []
    for _ in range(m):
        keep = rng.random(n) < 0.85
        c = base[keep] + rng.normal(0, 0.01, (keep.sum(), 2))
        b = np.hstack([c, c + wh[keep] * rng.uniform(0.9, 1.1, (keep.sum(), 2))])
        s = rng.random(keep.sum())
        if quantize:
            s = np.round(s, 1)
        bl.append(b)
        sl.append(s)
        ll.append(rng.integers(0, labels, keep.sum()))
    return bl, sl, ll


def _eb(fn: Any, *args: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.mark.parametrize("conf_type", ["avg", "max", "box_and_model_avg", "absent_model_aware_avg"])
@pytest.mark.parametrize("weights", [None, [2.0, 1.0, 3.0]])
def test_wbf_equals_ensemble_boxes(conf_type: str, weights: list[float] | None) -> None:
    rng = np.random.default_rng(11)
    for trial in range(15):
        bl, sl, ll = _models(rng, quantize=trial % 5 == 4)
        for skip, thr, overflow in ((0.0, 0.55, False), (0.2, 0.4, True)):
            rb, rs, rl = _eb(eb_wbf, bl, sl, ll, weights=weights, iou_thr=thr, skip_box_thr=skip,
                             conf_type=conf_type, allows_overflow=overflow)
            r = weighted_boxes_fusion(bl, sl, ll, weights=weights, iou_thr=thr, skip_box_thr=skip,
                                      conf_type=conf_type, allows_overflow=overflow)
            assert np.array_equal(r.boxes, rb)
            assert np.array_equal(r.scores, rs)
            assert np.array_equal(r.labels, rl)


def test_wbf_with_score_ties_uses_numpy_order() -> None:
    rng = np.random.default_rng(5)
    bl, sl, ll = _models(rng, n=80, labels=2)
    sl = [np.round(s * 4) / 4 + 0.01 for s in sl]  # heavy ties
    rb, rs, rl = _eb(eb_wbf, bl, sl, ll)
    r = weighted_boxes_fusion(bl, sl, ll)
    assert np.array_equal(r.boxes, rb) and np.array_equal(r.scores, rs) and np.array_equal(r.labels, rl)


def test_nms_and_soft_nms_equal_ensemble_boxes() -> None:
    rng = np.random.default_rng(12)
    for _ in range(10):
        bl, sl, ll = _models(rng)
        rb, rs, rl = _eb(eb_nms, bl, sl, ll, iou_thr=0.5)
        r = nms(bl, sl, ll, iou_thr=0.5)
        assert np.array_equal(r.boxes, rb) and np.array_equal(r.scores, rs) and np.array_equal(r.labels, rl)
        rb, rs, rl = _eb(eb_nms, bl, list(sl), ll, iou_thr=0.3, weights=[1, 2, 3])  # it rebinds list items
        r = nms(bl, sl, ll, iou_thr=0.3, weights=[1, 2, 3])
        assert np.array_equal(r.boxes, rb) and np.array_equal(r.scores, rs)
        for name, code in (("linear", 1), ("gaussian", 2)):
            rb, rs, rl = _eb(eb_soft_nms, bl, [s.copy() for s in sl], ll, method=code, iou_thr=0.4, sigma=0.3,
                             thresh=0.05)
            r = soft_nms(bl, sl, ll, method=name, iou_thr=0.4, sigma=0.3, thresh=0.05)
            assert np.array_equal(r.boxes, rb) and np.array_equal(r.scores, rs) and np.array_equal(r.labels, rl)
            assert r.decayed_scores is not None and np.all(r.decayed_scores <= r.scores + 1e-15)
            assert np.all(r.decayed_scores > 0.05)


def test_bad_boxes_are_rejected_and_counted() -> None:
    bl = [np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.4, 0.6], [0.2, 0.2, 0.2, 0.4], [np.nan, 0, 0.1, 0.1]]),
          np.array([[0.11, 0.1, 0.31, 0.3]])]
    sl = [np.array([0.9, 0.8, 0.7, 0.6]), np.array([0.5])]
    ll = [np.zeros(4), np.zeros(1)]
    for r in (weighted_boxes_fusion(bl, sl, ll), nms(bl, sl, ll), soft_nms(bl, sl, ll)):
        assert r.rejected == {"inverted": 1, "zero_size": 1, "non_finite": 1}
        assert np.all(np.isfinite(r.boxes))
    assert weighted_boxes_fusion(bl, sl, ll).boxes.shape == (1, 4)
    # empty inputs
    e = weighted_boxes_fusion([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0)])
    assert e.boxes.shape == (0, 4) and sum(e.rejected.values()) == 0
    assert nms([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0)]).boxes.shape == (0, 4)
    with pytest.raises(FusionError, match="weights"):
        weighted_boxes_fusion(bl, sl, ll, weights=[1.0])
    with pytest.raises(FusionError, match="conf_type"):
        weighted_boxes_fusion(bl, sl, ll, conf_type="median")
    with pytest.raises(FusionError, match="boxes"):
        weighted_boxes_fusion([np.zeros((2, 4))], [np.zeros(3)], [np.zeros(2)])


def test_wbf_pixel_coordinates_without_clipping() -> None:
    bl = [np.array([[100.0, 100, 200, 220]]), np.array([[104.0, 98, 204, 216]])]
    r = weighted_boxes_fusion(bl, [np.array([0.8]), np.array([0.4])], [np.zeros(1), np.zeros(1)], clip=False)
    expect = (0.8 * bl[0][0] + 0.4 * bl[1][0]) / 1.2
    np.testing.assert_allclose(r.boxes[0], expect, rtol=1e-6)  # float32 accumulation as ensemble_boxes


def test_wbf_3d_yaw_aware() -> None:
    # two models see the same car with heading near ±π (wrap-around) and one with the axis flipped
    boxes = [np.array([[10.0, 5.0, 0.0, 4.0, 2.0, 1.5, math.pi - 0.05]]),
             np.array([[10.2, 5.1, 0.1, 4.2, 1.8, 1.5, -math.pi + 0.03]]),
             np.array([[9.9, 4.9, 0.0, 4.1, 2.0, 1.6, 0.01]])]
    scores = [np.array([0.9]), np.array([0.8]), np.array([0.5])]
    labels = [np.zeros(1), np.zeros(1), np.zeros(1)]
    r = weighted_boxes_fusion_3d(boxes, scores, labels, iou_thr=0.3)
    assert r.boxes.shape == (1, 7)
    yaw = r.boxes[0, 6]
    # axis mean of (π-0.05, π+0.03, π+0.01) weighted 0.9/0.8/0.5, facing the top box (≈ π)
    expect = math.pi + (0.9 * -0.05 + 0.8 * 0.03 + 0.5 * 0.01) / 2.2
    assert math.cos(yaw - expect) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(r.boxes[0, :6], (0.9 * boxes[0][0, :6] + 0.8 * boxes[1][0, :6]
                                                + 0.5 * boxes[2][0, :6]) / 2.2)
    assert r.scores[0] == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    # a box rotated by 90° at the same centre overlaps little in BEV → separate cluster
    boxes[2][0, 6] = math.pi / 2
    r2 = weighted_boxes_fusion_3d(boxes, scores, labels, iou_thr=0.5)
    assert r2.boxes.shape[0] == 2
    bad = weighted_boxes_fusion_3d([np.array([[0, 0, 0, -1.0, 1, 1, 0], [0, 0, 0, 1, 0, 1, 0]])],
                                   [np.array([0.5, 0.5])], [np.zeros(2)])
    assert bad.rejected == {"inverted": 1, "zero_size": 1, "non_finite": 0}


def test_inverse_covariance_and_covariance_intersection() -> None:
    x = np.array([[0.0, 0.0], [2.0, 1.0]])
    P = np.array([np.diag([1.0, 4.0]), np.diag([4.0, 1.0])])
    xf, Pf = inverse_covariance_fusion(x, P)
    np.testing.assert_allclose(Pf, np.diag([0.8, 0.8]))
    np.testing.assert_allclose(xf, [0.4, 0.8])
    _xc, Pc, om = covariance_intersection(x, P)
    assert om.sum() == pytest.approx(1.0)
    assert om[0] == pytest.approx(0.5, abs=1e-4)  # symmetric problem
    # CI is consistent: P_ci ≥ the information-fusion covariance; trace not above either input's
    assert np.all(np.linalg.eigvalsh(Pc - Pf) >= -1e-12)
    assert np.trace(Pc) <= min(np.trace(P[0]), np.trace(P[1])) + 1e-9
    # identical estimates: CI gives back the estimate, information fusion halves the covariance
    _xi, Pi, _ = covariance_intersection(x[[0, 0]], P[[0, 0]])
    np.testing.assert_allclose(Pi, P[0], atol=1e-9)
    np.testing.assert_allclose(inverse_covariance_fusion(x[[0, 0]], P[[0, 0]])[1], P[0] / 2)
    # three estimates use the fast-CI weights
    _, P3, om3 = covariance_intersection(np.vstack([x, [[1, 1]]]), np.concatenate([P, [np.eye(2)]]))
    assert om3.shape == (3,) and om3.sum() == pytest.approx(1.0)
    assert np.all(np.linalg.eigvalsh(P3) > 0)


@pytest.mark.parametrize("bad", [np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[np.nan, 0], [0, 1.0]]),
                                 np.array([[1.0, 0.5], [0.0, 1.0]])])
def test_estimate_fusion_rejects_bad_covariance(bad: np.ndarray) -> None:
    x = np.zeros((2, 2))
    P = np.stack([np.eye(2), bad])
    with pytest.raises(FusionError, match="covariance 1"):
        inverse_covariance_fusion(x, P)
    with pytest.raises(FusionError, match="covariance 1"):
        covariance_intersection(x, P)


def test_class_score_fusion() -> None:
    cam = np.array([0.7, 0.2, 0.1])
    radar = np.array([0.4, 0.4, 0.2])
    np.testing.assert_allclose(fuse_class_scores([cam, radar]), [0.55, 0.3, 0.15])
    prod = fuse_class_scores([cam, radar], method="geometric")  # "product" is naive Bayes: test_boxfusion_edge_cases.py
    ref = np.sqrt(cam * radar)
    np.testing.assert_allclose(prod, ref / ref.sum(), rtol=1e-9)
    np.testing.assert_allclose(fuse_class_scores([cam, radar], weights=[3, 1]), 0.75 * cam + 0.25 * radar)
    batch = fuse_class_scores([np.stack([cam, radar]), np.stack([radar, cam])], method="max")
    assert batch.shape == (2, 3) and np.allclose(batch.sum(axis=1), 1.0)
    with pytest.raises(FusionError):
        fuse_class_scores([cam, np.array([np.nan, 0.5, 0.5])])
    with pytest.raises(FusionError):
        fuse_class_scores([cam, radar[:2]])
