"""Issue 5 fixes 4 and 5: naive-Bayes class-score product, zero-model box fusion."""

from __future__ import annotations

import numpy as np
import pytest

from edgefuse.objects import (
    FusionError,
    fuse_class_scores,
    nms,
    soft_nms,
    weighted_boxes_fusion,
    weighted_boxes_fusion_3d,
)

CAM = np.array([0.7, 0.2, 0.1])
RADAR = np.array([0.5, 0.4, 0.1])


def test_product_is_naive_bayes_with_uniform_prior() -> None:
    prod = fuse_class_scores([CAM, RADAR], method="product")
    np.testing.assert_allclose(prod, [0.795, 0.182, 0.023], atol=5e-4)
    ref = CAM * RADAR
    np.testing.assert_allclose(prod, ref / ref.sum(), rtol=1e-9)
    # weights are exponents: w = 2 counts the camera twice
    np.testing.assert_allclose(fuse_class_scores([CAM, RADAR], weights=[2, 1], method="product"),
                               CAM**2 * RADAR / (CAM**2 * RADAR).sum(), rtol=1e-9)
    np.testing.assert_allclose(fuse_class_scores([CAM, RADAR, CAM], method="product"),
                               fuse_class_scores([CAM, RADAR], weights=[2, 1], method="product"), rtol=1e-12)
    # sequential Bayes: fusing a third sensor into the fused posterior = fusing all three at once
    third = np.array([0.3, 0.3, 0.4])
    np.testing.assert_allclose(fuse_class_scores([prod, third], method="product"),
                               fuse_class_scores([CAM, RADAR, third], method="product"), rtol=1e-9)
    # batch rows, tiny probabilities (no underflow), a zero from one sensor vetoes its class
    batch = fuse_class_scores([np.stack([CAM, RADAR]), np.stack([RADAR, CAM])], method="product")
    np.testing.assert_allclose(batch, [prod, prod], rtol=1e-12)
    # 40 sensors: Π p underflows (1e-440) in linear space, not in the log domain used
    tiny = fuse_class_scores([np.array([1e-11, 2e-11, 0.0])] * 40, method="product")
    np.testing.assert_allclose(tiny, [1 / (1 + 2.0**40), 2.0**40 / (1 + 2.0**40), 0.0], rtol=1e-9, atol=1e-30)
    assert fuse_class_scores([CAM, np.array([0.0, 0.5, 0.5])], method="product")[0] < 1e-9


def test_geometric_mean_kept_as_its_own_method() -> None:
    geo = fuse_class_scores([CAM, RADAR], method="geometric")
    ref = np.sqrt(CAM * RADAR)
    np.testing.assert_allclose(geo, ref / ref.sum(), rtol=1e-9)
    w = np.array([3.0, 1.0]) / 4
    ref_w = CAM ** w[0] * RADAR ** w[1]
    np.testing.assert_allclose(fuse_class_scores([CAM, RADAR], weights=[3, 1], method="geometric"),
                               ref_w / ref_w.sum(), rtol=1e-9)
    # less confident than the product
    assert geo[0] < fuse_class_scores([CAM, RADAR], method="product")[0]
    with pytest.raises(FusionError, match="geometric"):
        fuse_class_scores([CAM, RADAR], method="bayes")
    with pytest.raises(FusionError, match="eps"):
        fuse_class_scores([CAM, RADAR], method="product", eps=0.0)


def test_zero_models_give_empty_results() -> None:
    for fn in (weighted_boxes_fusion, nms, soft_nms):
        r = fn([], [], [])
        assert r.boxes.shape == (0, 4) and r.scores.shape == (0,) and r.labels.shape == (0,)
        assert sum(r.rejected.values()) == 0
    r = weighted_boxes_fusion([], [], [], weights=[])
    assert r.boxes.shape == (0, 4)
    r3 = weighted_boxes_fusion_3d([], [], [])
    assert r3.boxes.shape == (0, 7) and r3.scores.shape == (0,)
    # still an error: lists of different lengths, weights that do not match
    with pytest.raises(FusionError):
        weighted_boxes_fusion([], [[0.5]], [])
    with pytest.raises(FusionError):
        weighted_boxes_fusion([], [], [], weights=[1.0])
