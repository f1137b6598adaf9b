"""PointPainting (PointPainter / paint_points / append_point_fields) against a Python-loop reference."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion import PINHOLE, PLUMB_BOB, ProjectionResult, Projector
from edgefuse.fusion.painting import FeatureArrayError, PointPainter, append_point_fields, paint_points

from .projection_reference import load_kitti

K = np.array([[480.0, 0.0, 322.1], [0.0, 478.5, 236.9], [0.0, 0.0, 1.0]])
D = np.array([-0.28, 0.07, 0.0012, -0.0009, -0.004])
W, H = 640, 480


def reference_paint(result: ProjectionResult, features: npt.NDArray[Any], fill: float,
                    visible_only: bool) -> npt.NDArray[np.float32]:
    """One point at a time: nearest pixel of each valid point (winner only if visible_only)."""
    feats = features if features.ndim == 3 else features[:, :, None]
    out = np.full((result.uv.shape[0], feats.shape[2]), fill, dtype=np.float32)
    for i in range(result.uv.shape[0]):
        if not result.valid[i]:
            continue
        col = math.floor(float(result.uv[i, 0]) + 0.5)
        row = math.floor(float(result.uv[i, 1]) + 0.5)
        if visible_only and result.index[row, col] != i:
            continue
        out[i] = feats[row, col].astype(np.float32)
    return out


def _scene(rng: np.random.Generator, n: int) -> tuple[Projector, npt.NDArray[np.float32]]:
    z = rng.uniform(-3.0, 40.0, size=n)
    xyz = np.stack([rng.uniform(-0.9, 0.9, n) * np.abs(z), rng.uniform(-0.7, 0.7, n) * np.abs(z), z], axis=1)
    xyz = np.concatenate([xyz, xyz[: n // 5] * 1.5]).astype(np.float32)  # occluded points on the same rays
    xyz[::53] = np.nan
    return Projector(PLUMB_BOB, K, D, W, H, np.eye(4)), np.ascontiguousarray(xyz)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.float64, np.int16])
@pytest.mark.parametrize("visible_only", [False, True])
@pytest.mark.parametrize("fill", [0.0, float("nan"), -1.0])
def test_matches_reference(dtype: Any, visible_only: bool, fill: float) -> None:
    rng = np.random.default_rng(5)
    projector, xyz = _scene(rng, 5000)
    result = projector.project(xyz)
    if np.dtype(dtype).kind == "f":
        features = rng.normal(size=(H, W, 5)).astype(dtype)
    else:
        features = rng.integers(0, 120, size=(H, W, 5)).astype(dtype)
    painter = PointPainter(fill=fill, visible_only=visible_only, max_points=100, channels=2)
    painter.warmup()
    got = painter.paint(result, features)
    expected = reference_paint(result, features.astype(np.float32), fill, visible_only)
    np.testing.assert_array_equal(got, expected)  # NaN fill compares equal position-wise
    n_expected = int(result.n_pixels) if visible_only else result.n_valid
    assert painter.n_painted == n_expected
    assert painter.capacity == (xyz.shape[0], 5)  # grown once to the cloud and the channels
    with pytest.raises(ValueError, match="read-only"):
        got[0, 0] = 1.0


def test_two_dimensional_scores_and_non_contiguous_features() -> None:
    rng = np.random.default_rng(6)
    projector, xyz = _scene(rng, 2000)
    result = projector.project(xyz)
    scores = rng.random((H, 2 * W), dtype=np.float32)[:, ::2]  # non-contiguous (H, W)
    got = paint_points(result, scores)
    assert got.shape == (xyz.shape[0], 1)
    np.testing.assert_array_equal(got, reference_paint(result, np.ascontiguousarray(scores), 0.0, False))
    big_endian = np.ascontiguousarray(scores).astype(">f4")
    np.testing.assert_array_equal(paint_points(result, big_endian), got)


def test_kitti_frame_painted_with_its_image() -> None:
    xyz, K_kitti, T, image = load_kitti("000000")
    h, w = image.shape[:2]
    projector = Projector(PINHOLE, K_kitti, None, w, h, T)
    result = projector.project(xyz)
    painted = paint_points(result, image, fill=-1.0)
    # Painting with the image is nearest-pixel colorizing, as float32.
    colours = projector.colorize(image, result)
    np.testing.assert_array_equal(painted[result.valid], colours[result.valid].astype(np.float32))
    assert np.all(painted[~result.valid] == -1.0)
    assert result.n_valid == 20_259


def test_bad_features() -> None:
    rng = np.random.default_rng(7)
    projector, xyz = _scene(rng, 100)
    result = projector.project(xyz)
    painter = PointPainter()
    with pytest.raises(FeatureArrayError, match="640x480"):
        painter.paint(result, np.zeros((W, H, 3), np.float32))
    with pytest.raises(FeatureArrayError, match="shape"):
        painter.paint(result, np.zeros((H, W, 3, 1), np.float32))
    with pytest.raises(FeatureArrayError, match="0 channels"):
        painter.paint(result, np.zeros((H, W, 0), np.float32))
    with pytest.raises(FeatureArrayError, match="complex"):
        painter.paint(result, np.zeros((H, W, 2), np.complex64))
    with pytest.raises(FeatureArrayError, match="bool"):
        painter.paint(result, np.zeros((H, W), bool))
    with pytest.raises(FeatureArrayError, match="numpy array"):
        painter.paint(result, [[0.0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ProjectionResult"):
        painter.paint(object(), np.zeros((H, W), np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels"):
        PointPainter(channels=0)
    # Empty cloud: an empty (0, C) result.
    empty = painter.paint(projector.project(np.zeros((0, 3), np.float32)), np.zeros((H, W, 3), np.float32))
    assert empty.shape == (0, 3)


def test_no_allocation_in_steady_state() -> None:
    rng = np.random.default_rng(8)
    projector, xyz = _scene(rng, 50_000)
    features = rng.random((H, W, 4), dtype=np.float32)
    painter = PointPainter(max_points=xyz.shape[0])
    painter.warmup()
    projector.warmup()
    for _ in range(8):  # past the projector's kernel-variant measurements
        painter.paint(projector.project(xyz), features)
    tracemalloc.start()
    try:
        for _ in range(3):
            painter.paint(projector.project(xyz), features)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024


def test_append_point_fields() -> None:
    points = np.zeros(4, dtype=np.dtype({"names": ["x", "y", "z", "intensity"],
                                         "formats": ["<f4", "<f4", "<f4", "<f4"],
                                         "offsets": [0, 4, 8, 16], "itemsize": 32}))
    points["x"] = [1, 2, 3, 4]
    scores = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = append_point_fields(points, ["car", "road"], scores)
    assert out.dtype.names == ("x", "y", "z", "intensity", "car", "road")
    assert out.dtype.itemsize == 24  # padding dropped
    np.testing.assert_array_equal(out["x"], points["x"])
    np.testing.assert_array_equal(out["road"], scores[:, 1])
    reused = append_point_fields(points[:3], ["car", "road"], scores[:3], out=np.empty(10, out.dtype))
    assert reused.shape == (3,)
    with pytest.raises(ValueError, match="clashing"):
        append_point_fields(points, ["x", "road"], scores)
    with pytest.raises(ValueError, match="shape"):
        append_point_fields(points, ["car"], scores)
    with pytest.raises(TypeError, match="structured"):
        append_point_fields(np.zeros(4, np.float32), ["car"], scores[:, :1])


def test_no_compilation_after_warmup_for_readonly_inputs() -> None:
    from edgefuse.fusion import _densify_kernels, _kernels
    from edgefuse.fusion.densify import DepthCompleter

    def signatures() -> int:
        return sum(len(getattr(obj, "signatures", ())) for module in (_kernels, _densify_kernels)
                   for obj in vars(module).values())

    rng = np.random.default_rng(9)
    projector, xyz = _scene(rng, 20_000)
    painter = PointPainter()
    completer = DepthCompleter(H, W)
    projector.warmup()
    painter.warmup()
    completer.warmup()
    before = signatures()
    xyz.setflags(write=False)
    for dtype in (np.float32, np.uint8):
        features = np.zeros((H, W, 3), dtype)
        features.setflags(write=False)
        for _ in range(8):
            painter.paint(projector.project(xyz), features)
    depth = projector.project(xyz, copy=True).depth
    depth.setflags(write=False)
    completer.complete(depth)
    assert signatures() == before
