"""PointPillars head decoding (Numba) against a numpy reference written from OpenPCDet's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefuse.errors import InputDataError, ParameterError
from edgefuse.objects.pillars_decode import KITTI_POINTPILLARS, AnchorConfig, PillarsDecoder, make_anchors
from edgefuse.objects.types import Detections3D

NY, NX, A, C = 248, 216, 6, 3


def reference_anchors(cfg: AnchorConfig) -> np.ndarray:
    """OpenPCDet AnchorGenerator (align_center=False): per class a [nz, ny, nx, 1, R, 7] grid, concatenated
    on the anchor-size axis, then flattened to (ny * nx * A, 7)."""
    nx, ny = cfg.feature_shape
    r = cfg.point_range
    per_class = []
    for size, bottom in zip(cfg.sizes, cfg.bottom_heights, strict=True):
        x_stride = (r[3] - r[0]) / (nx - 1)
        y_stride = (r[4] - r[1]) / (ny - 1)
        xs = np.arange(r[0], r[3] + 1e-5, x_stride, dtype=np.float64)[:nx]
        ys = np.arange(r[1], r[4] + 1e-5, y_stride, dtype=np.float64)[:ny]
        zs = np.array([bottom])
        rots = np.array(cfg.rotations)
        gx, gy, gz = np.meshgrid(xs, ys, zs, indexing="ij")  # [nx, ny, nz]
        grid = np.stack([gx, gy, gz], axis=-1)[:, :, :, None, None, :]  # [nx, ny, nz, 1, 1, 3]
        grid = np.broadcast_to(grid, (nx, ny, 1, 1, len(rots), 3))
        sz = np.broadcast_to(np.array(size), (nx, ny, 1, 1, len(rots), 3))
        rot = np.broadcast_to(rots[None, None, None, None, :, None], (nx, ny, 1, 1, len(rots), 1))
        anchors = np.concatenate([grid, sz, rot], axis=-1).copy()
        anchors[..., 2] += anchors[..., 5] / 2
        per_class.append(anchors.transpose(2, 1, 0, 3, 4, 5))  # [nz, ny, nx, 1, R, 7]
    return np.concatenate(per_class, axis=-3).reshape(-1, 7)


def reference_decode(cfg: AnchorConfig, cls: np.ndarray, box: np.ndarray, dirs: np.ndarray,
                     thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    anchors = reference_anchors(cfg)
    cls = cls.reshape(-1, cfg.n_classes).astype(np.float64)
    box = box.reshape(-1, 7).astype(np.float64)
    dirs = dirs.reshape(-1, cfg.num_dir_bins)
    xa, ya, za, dxa, dya, dza, ra = anchors.T
    diag = np.sqrt(dxa**2 + dya**2)
    out = np.stack([box[:, 0] * diag + xa, box[:, 1] * diag + ya, box[:, 2] * dza + za,
                    np.exp(box[:, 3]) * dxa, np.exp(box[:, 4]) * dya, np.exp(box[:, 5]) * dza,
                    box[:, 6] + ra], axis=1)
    period = 2 * np.pi / cfg.num_dir_bins
    val = out[:, 6] - cfg.dir_offset
    rot = val - np.floor(val / period + cfg.dir_limit_offset) * period
    out[:, 6] = rot + cfg.dir_offset + period * np.argmax(dirs, axis=1)
    scores = 1 / (1 + np.exp(-cls))
    best = scores.max(axis=1)
    label = scores.argmax(axis=1)
    keep = np.flatnonzero(best >= thresh)
    order = keep[np.lexsort((keep, -best[keep]))]
    return out[order], best[order], label[order]


def _tensors(rng: np.random.Generator, n_pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cls = rng.uniform(-12, -4, (1, NY, NX, A * C)).astype(np.float32)
    flat = cls.reshape(-1)
    flat[rng.choice(flat.size, n_pos, replace=False)] = rng.uniform(-2, 4, n_pos).astype(np.float32)
    box = rng.normal(0, 0.3, (1, NY, NX, A * 7)).astype(np.float32)
    dirs = rng.normal(0, 1, (1, NY, NX, A * 2)).astype(np.float32)
    return cls, box, dirs


def test_anchors_match_openpcdet_layout() -> None:
    got = make_anchors(KITTI_POINTPILLARS)
    assert got.shape == (NY, NX, A, 7)
    np.testing.assert_allclose(got.reshape(-1, 7), reference_anchors(KITTI_POINTPILLARS), atol=2e-5)
    # first cell: Car rotations 0 and 1.57, then Pedestrian, Cyclist; z = bottom + h / 2
    np.testing.assert_allclose(got[0, 0, 0], [0.0, -39.68, -1.78 + 0.78, 3.9, 1.6, 1.56, 0.0], atol=1e-5)
    np.testing.assert_allclose(got[0, 0, 1, 6], 1.57, atol=1e-6)
    np.testing.assert_allclose(got[0, 0, 2, 3:6], [0.8, 0.6, 1.73], atol=1e-6)
    np.testing.assert_allclose(got[-1, -1, 5, :2], [69.12, 39.68], atol=1e-4)


def test_decode_matches_reference_on_hand_built_tensors() -> None:
    rng = np.random.default_rng(7)
    cls, box, dirs = _tensors(rng, 400)
    dec = PillarsDecoder(score_thresh=0.1)
    det = dec.decode(cls, box, dirs, stamp_ns=42, frame_id="velodyne")
    ref_box, ref_score, ref_label = reference_decode(KITTI_POINTPILLARS, cls, box, dirs, 0.1)
    assert isinstance(det, Detections3D) and det.stamp_ns == 42 and det.frame_id == "velodyne"
    assert len(det) == ref_box.shape[0] > 100
    np.testing.assert_allclose(det.array7(), ref_box, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(det.boxes["score"], ref_score, rtol=1e-6)
    np.testing.assert_array_equal(det.boxes["label"], ref_label)
    assert np.all(det.boxes["id"] == -1) and np.all(np.isnan(det.boxes["cov"]))
    assert np.all(np.diff(det.boxes["score"]) <= 0)


def test_single_anchor_by_hand() -> None:
    """One Pedestrian anchor (rotation 1.57) in cell (y=10, x=20), residuals worked out by hand."""
    cls = np.full((1, NY, NX, A * C), -20.0, np.float32)
    box = np.zeros((1, NY, NX, A * 7), np.float32)
    dirs = np.zeros((1, NY, NX, A * 2), np.float32)
    a = 3  # Pedestrian, second rotation
    cls[0, 10, 20, a * C + 1] = 2.0  # Pedestrian logit
    box[0, 10, 20, a * 7:(a + 1) * 7] = [0.5, -1.0, 0.25, math.log(2.0), 0.0, 0.0, 0.1]
    dirs[0, 10, 20, a * 2:(a + 1) * 2] = [0.0, 1.0]  # bin 1
    det = PillarsDecoder().decode(cls, box, dirs)
    assert len(det) == 1
    x_a = 20 * 69.12 / (NX - 1)
    y_a = -39.68 + 10 * 79.36 / (NY - 1)
    diag = math.hypot(0.8, 0.6)  # 1.0
    heading = 1.57 + 0.1 - 0.78539
    heading = heading - math.floor(heading / math.pi) * math.pi + 0.78539 + math.pi
    want = [x_a + 0.5 * diag, y_a - 1.0 * diag, -0.6 + 1.73 / 2 + 0.25 * 1.73, 1.6, 0.6, 1.73, heading]
    np.testing.assert_allclose(det.array7()[0], want, atol=1e-4)
    assert det.boxes["label"][0] == 1
    assert det.boxes["score"][0] == pytest.approx(1 / (1 + math.exp(-2.0)), rel=1e-6)


def test_threshold_and_max_candidates() -> None:
    rng = np.random.default_rng(3)
    cls, box, dirs = _tensors(rng, 300)
    full = PillarsDecoder(score_thresh=0.3).decode(cls, box, dirs)
    capped_dec = PillarsDecoder(score_thresh=0.3, max_candidates=25)
    capped = capped_dec.decode(cls, box, dirs)
    assert len(capped) == 25 and capped_dec.n_above == len(full) > 25
    np.testing.assert_array_equal(capped.array7(), full.array7()[:25])
    np.testing.assert_array_equal(capped.boxes["score"], full.boxes["score"][:25])
    assert np.all(full.boxes["score"] >= 0.3)


def test_nonfinite_outputs_are_dropped_and_counted() -> None:
    cls = np.full((1, NY, NX, A * C), -20.0, np.float32)
    box = np.zeros((1, NY, NX, A * 7), np.float32)
    dirs = np.zeros((1, NY, NX, A * 2), np.float32)
    cls[0, 0, 0, 0] = 3.0
    cls[0, 0, 1, 0] = 3.0
    cls[0, 0, 2, 0] = np.nan  # never passes the threshold
    box[0, 0, 1, 3] = np.inf  # exp(inf) length
    dec = PillarsDecoder()
    det = dec.decode(cls, box, dirs)
    assert len(det) == 1 and dec.n_nonfinite == 1 and np.isfinite(det.array7()).all()


def test_bad_inputs_raise_edgefuse_errors() -> None:
    dec = PillarsDecoder()
    cls, box, dirs = _tensors(np.random.default_rng(0), 1)
    with pytest.raises(InputDataError, match="cls_preds must have shape"):
        dec.decode(cls[:, :, :-1], box, dirs)
    with pytest.raises(InputDataError, match="floating point"):
        dec.decode(cls.astype(np.int32), box, dirs)
    with pytest.raises(InputDataError, match="numpy array"):
        dec.decode([1, 2], box, dirs)
    with pytest.raises(ParameterError):
        PillarsDecoder(score_thresh=1.5)
    with pytest.raises(ParameterError):
        AnchorConfig(class_names=("Car",), sizes=(), bottom_heights=(0.0,))


def test_custom_head_geometry() -> None:
    """A user's own export (one class, 4 bins, other range) decodes with its own AnchorConfig."""
    cfg = AnchorConfig(class_names=("Vehicle",), sizes=((4.5, 2.0, 1.6),), bottom_heights=(-1.9,),
                       rotations=(0.0, 0.785, 1.57), point_range=(-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                       voxel_size=(0.32, 0.32, 8.0), feature_stride=2, num_dir_bins=4, dir_offset=0.0)
    dec = PillarsDecoder(cfg, max_candidates=100_000)
    ny, nx, _ = dec.shapes["cls_preds"]
    assert (nx, ny) == (160, 160)
    rng = np.random.default_rng(11)
    cls = rng.uniform(-9, -1.5, (1, ny, nx, 3)).astype(np.float32)
    box = rng.normal(0, 0.2, (1, ny, nx, 21)).astype(np.float32)
    dirs = rng.normal(0, 1, (1, ny, nx, 12)).astype(np.float32)
    det = dec.decode(cls, box, dirs)
    ref_box, ref_score, _ = reference_decode(cfg, cls, box, dirs, 0.1)
    assert len(det) == ref_box.shape[0] > 0
    np.testing.assert_allclose(det.array7(), ref_box, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(det.boxes["score"], ref_score, rtol=1e-6)


def test_ties_at_the_cut_keep_the_lowest_anchor_indices() -> None:
    cls = np.full((1, NY, NX, A * C), -20.0, np.float32)
    box = np.zeros((1, NY, NX, A * 7), np.float32)
    dirs = np.zeros((1, NY, NX, A * 2), np.float32)
    cls[0, 5, :, 0] = 1.0  # 216 Car anchors (rotation 0) tied, in row y = 5
    cls[0, 7, 3, 0] = 2.0  # one better
    det = PillarsDecoder(max_candidates=11).decode(cls, box, dirs)
    assert len(det) == 11
    xs = np.linspace(0.0, 69.12, NX)
    np.testing.assert_allclose(det.boxes["x"], np.r_[xs[3], xs[:10]], atol=1e-4)
    assert np.all(det.boxes["score"][1:] == det.boxes["score"][1])
