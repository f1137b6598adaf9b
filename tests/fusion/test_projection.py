"""Projector / project_to_depth against the OpenCV + Python-loop reference, real KITTI data, bad input."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgefuse.errors import CalibrationError
from edgefuse.fusion import (
    EQUIDISTANT,
    PINHOLE,
    PLUMB_BOB,
    RATIONAL,
    CameraParamError,
    ProjectionResult,
    Projector,
    _kernels,
    project_to_depth,
)
from edgefuse.fusion.projection import PARALLEL_MIN_POINTS

from .projection_reference import load_kitti, reference_colors, reference_projection

F64 = npt.NDArray[np.float64]

WIDTH, HEIGHT = 640, 480

CAMERAS: dict[int, tuple[F64, F64]] = {
    PINHOLE: (np.array([[500.0, 0.0, 319.5], [0.0, 510.0, 240.2], [0.0, 0.0, 1.0]]), np.zeros(8)),
    PLUMB_BOB: (
        np.array([[480.0, 0.0, 322.1], [0.0, 478.5, 236.9], [0.0, 0.0, 1.0]]),
        np.array([-0.28, 0.07, 0.0012, -0.0009, -0.004, 0.0, 0.0, 0.0]),
    ),
    RATIONAL: (
        np.array([[610.0, 0.0, 318.0], [0.0, 605.0, 242.0], [0.0, 0.0, 1.0]]),
        np.array([0.45, -0.12, 0.001, 0.002, 0.01, 0.8, -0.05, 0.02]),
    ),
    EQUIDISTANT: (
        np.array([[300.0, 0.9, 320.4], [0.0, 301.0, 239.7], [0.0, 0.0, 1.0]]),
        np.array([0.02, -0.01, 0.003, -0.001, 0.0, 0.0, 0.0, 0.0]),
    ),
}


def _transform(rng: np.random.Generator) -> F64:
    """A random rigid T_cam_from_lidar."""
    R, _ = cv2.Rodrigues(rng.normal(size=3))
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = rng.uniform(-2.0, 2.0, size=3)
    return T


def _cloud(rng: np.random.Generator, T: F64, n: int, dtype: Any = np.float32) -> npt.NDArray[Any]:
    """Points in the LiDAR frame: most in front of the camera (some outside the image, some behind),
    plus exact duplicates (depth ties) and points further along the same ray (occlusion)."""
    z = rng.uniform(-5.0, 60.0, size=n)
    x = rng.uniform(-0.9, 0.9, size=n) * np.abs(z)
    y = rng.uniform(-0.7, 0.7, size=n) * np.abs(z)
    cam = np.stack([x, y, z], axis=1)
    cam = np.concatenate([cam, cam[: n // 10] * 1.7])  # same ray, further away
    lidar = (cam - T[:3, 3]) @ T[:3, :3]  # R^T (p - t)
    lidar = lidar.astype(dtype)
    lidar = np.concatenate([lidar, lidar[: n // 10]])  # bit-identical duplicates: depth ties
    return np.ascontiguousarray(lidar[rng.permutation(lidar.shape[0])])


def _assert_same(result: ProjectionResult, ref: Any, uv_atol: float = 1e-4) -> None:
    np.testing.assert_array_equal(result.valid, ref.valid)
    assert result.n_valid == int(ref.valid.sum())
    np.testing.assert_allclose(result.uv[ref.valid], ref.uv[ref.valid], rtol=0.0, atol=uv_atol)
    assert np.all(np.isnan(result.uv[~ref.valid]))
    np.testing.assert_array_equal(result.index, ref.index)
    np.testing.assert_array_equal(result.depth, ref.depth)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", [PINHOLE, PLUMB_BOB, RATIONAL, EQUIDISTANT])
def test_matches_opencv_reference(model: int, dtype: Any) -> None:
    rng = np.random.default_rng(100 + model)
    K, D = CAMERAS[model]
    T = _transform(rng)
    xyz = _cloud(rng, T, 4000, dtype)
    projector = Projector(model, K, D, WIDTH, HEIGHT, T, min_depth_m=0.5, max_depth_m=80.0)
    result = projector.project(xyz)
    ref = reference_projection(xyz, model, K, D, WIDTH, HEIGHT, T, min_depth_m=0.5, max_depth_m=80.0)
    assert 1000 < result.n_valid < xyz.shape[0]  # the test exercises both outcomes
    _assert_same(result, ref)
    # Ties really happen and are resolved to the lowest index (checked through the reference).
    winners = result.index[result.index >= 0]
    assert winners.size < result.n_valid


def test_depth_image_holds_winner_depth() -> None:
    rng = np.random.default_rng(7)
    K, D = CAMERAS[PLUMB_BOB]
    T = _transform(rng)
    xyz = _cloud(rng, T, 3000)
    result = Projector(PLUMB_BOB, K, D, WIDTH, HEIGHT, T).project(xyz)
    hit = result.index >= 0
    assert np.array_equal(hit, result.depth > 0)
    winner = result.index[hit]
    z = (xyz.astype(np.float64) @ T[:3, :3].T + T[:3, 3])[:, 2]
    np.testing.assert_array_equal(result.depth[hit], z[winner].astype(np.float32))
    assert np.all(result.valid[winner])


def test_parallel_kernel_is_identical_to_serial() -> None:
    rng = np.random.default_rng(11)
    K, D = CAMERAS[RATIONAL]
    T = _transform(rng)
    xyz = _cloud(rng, T, 60_000)
    serial = Projector(RATIONAL, K, D, WIDTH, HEIGHT, T, threads=1)
    parallel = Projector(RATIONAL, K, D, WIDTH, HEIGHT, T, threads=2)
    assert xyz.shape[0] >= PARALLEL_MIN_POINTS
    expected = serial.project(xyz, copy=True)
    # threads=2 starts on the serial path (see edgefuse/fusion/_parallel.py); the parallel kernel itself is
    # checked below and, forced through the wrapper, in tests/fusion/test_parallel_chooser.py.
    for _ in range(4):
        got = parallel.project(xyz)
        _assert_same(got, expected, uv_atol=0.0)
    # The kernel itself, with small uneven chunks.
    n = xyz.shape[0]
    outs = []
    for chunk in (0, 997):
        uv = np.empty((n, 2), np.float32)
        pix = np.empty(n, np.int32)
        zdepth = np.empty(n, np.float64)
        valid = np.empty(n, np.bool_)
        args = (xyz, serial._Rt, RATIONAL, serial._intr_t, serial._D_t, WIDTH, HEIGHT, 0.1, 200.0, np.inf,
                uv, pix, zdepth, valid)
        if chunk:
            _kernels._project_points_parallel(*args, chunk)
        else:
            _kernels._project_points(*args)
        outs.append((uv, pix, zdepth, valid))
    for a, b in zip(outs[0], outs[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_reuse_clears_previous_output() -> None:
    rng = np.random.default_rng(12)
    K, D = CAMERAS[PINHOLE]
    T = _transform(rng)
    dense = _cloud(rng, T, 20_000)
    sparse = _cloud(rng, T, 300)
    projector = Projector(PINHOLE, K, D, WIDTH, HEIGHT, T, max_points=1000)
    first = projector.project(dense)  # grows the buffers once
    assert projector.capacity == dense.shape[0]
    kept = first.copy()
    second = projector.project(sparse)
    fresh = project_to_depth(sparse, PINHOLE, K, D, WIDTH, HEIGHT, T)
    _assert_same(second, fresh, uv_atol=0.0)
    # Views were overwritten; the copy was not.
    assert first.depth is not kept.depth
    np.testing.assert_array_equal(first.depth, second.depth)
    assert kept.n_valid > second.n_valid
    assert int(np.count_nonzero(kept.index >= 0)) == kept.n_pixels
    # Empty cloud afterwards: an all-zero image.
    empty = projector.project(np.zeros((0, 3), np.float32))
    assert empty.n_valid == 0
    assert not empty.depth.any()
    assert np.all(empty.index == -1)


def test_result_views_are_read_only_and_copy_is_independent() -> None:
    rng = np.random.default_rng(13)
    K, D = CAMERAS[PINHOLE]
    T = _transform(rng)
    projector = Projector(PINHOLE, K, D, WIDTH, HEIGHT, T)
    result = projector.project(_cloud(rng, T, 500))
    with pytest.raises(ValueError, match="read-only"):
        result.depth[0, 0] = 1.0
    owned = projector.project(_cloud(rng, T, 500), copy=True)
    owned.depth[0, 0] = 5.0
    assert projector.project(np.zeros((0, 3))).depth[0, 0] == 0.0


@pytest.mark.parametrize("bilinear", [False, True])
def test_kitti_frame_projection_and_colours(bilinear: bool) -> None:
    xyz, K, T, image = load_kitti("000000")
    height, width = image.shape[:2]
    assert (width, height, xyz.shape[0]) == (1224, 370, 115_384)
    projector = Projector.from_camera(_Camera(K, width, height), T)
    projector.warmup()
    result = projector.project(xyz)
    # SOURCE.md counts 20,285 points with 0 <= u < W, 0 <= v < H (pixel corners at integers).  With our
    # convention (pixel centres at integers: -0.5 <= u < W - 0.5, same for v; z >= 0.1 m) it is 20,259.
    assert result.n_valid == 20_259
    assert abs(result.n_valid - 20_285) < 0.005 * 20_285
    ref = reference_projection(xyz, PINHOLE, K, np.zeros(8), width, height, T)
    _assert_same(result, ref)
    colours = projector.colorize(image, result, bilinear=bilinear)
    np.testing.assert_array_equal(colours, reference_colors(image, result.uv, result.valid, bilinear))
    assert not colours[~result.valid].any()
    assert colours[result.valid].mean() > 20  # real image content, not zeros


class _Camera:
    """Stand-in with the rig camera's kernel_params()/width/height interface."""

    def __init__(self, K: F64, width: int, height: int) -> None:
        self.K, self.width, self.height = K, width, height

    def kernel_params(self) -> tuple[int, F64, F64]:
        return PINHOLE, self.K.copy(), np.zeros(8)


def test_model_ids_agree_with_rig() -> None:
    camera = pytest.importorskip("edgefuse.rig.camera")
    assert (camera.PINHOLE, camera.PLUMB_BOB, camera.RATIONAL, camera.EQUIDISTANT) == (0, 1, 2, 3)
    assert (PINHOLE, PLUMB_BOB, RATIONAL, EQUIDISTANT) == (0, 1, 2, 3)


def test_colorize_rounding_at_image_border() -> None:
    K, D = CAMERAS[PINHOLE]
    projector = Projector(PINHOLE, K, D, WIDTH, HEIGHT, np.eye(4))
    # Points landing exactly at u = -0.5 (inside) and u = W - 0.5 (outside) on the row v = cy.
    fx, cx = K[0, 0], K[0, 2]
    xs = np.array([(-0.5 - cx) / fx, (WIDTH - 0.5 - cx) / fx, (WIDTH - 0.5001 - cx) / fx]) * 10.0
    xyz = np.stack([xs, np.full(3, (240.0 - K[1, 2]) / K[1, 1] * 10.0), np.full(3, 10.0)], axis=1)
    result = projector.project(xyz)
    assert result.valid.tolist() == [True, False, True]
    image = np.arange(HEIGHT * WIDTH * 3, dtype=np.uint32).reshape(HEIGHT, WIDTH, 3).astype(np.uint8)
    for bilinear in (False, True):
        colours = projector.colorize(image, result, bilinear=bilinear)
        np.testing.assert_array_equal(colours, reference_colors(image, result.uv, result.valid, bilinear))


def test_max_radius_rejects_folded_points() -> None:
    K = CAMERAS[PLUMB_BOB][0]
    D = np.array([-0.4, 0.0, 0.0, 0.0, 0.0])  # r * (1 - 0.4 r^2) peaks at r = 0.913, then folds back
    xyz = np.array([[0.1, 0.0, 1.0], [1.5, 0.0, 1.0], [0.85, 0.0, 1.0]])
    # OpenCV's folded model puts r = 1.5 in the image (u = fx * 0.15 + cx) ...
    uv = cv2.projectPoints(xyz.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, D)[0].reshape(-1, 2)
    assert abs(float(uv[1, 0]) - (K[0, 0] * 0.15 + K[0, 2])) < 1e-3
    # ... the model's own valid radius drops it (tests/fusion/test_projection_fov.py has the details),
    default = project_to_depth(xyz, PLUMB_BOB, K, D, WIDTH, HEIGHT, np.eye(4))
    assert default.valid.tolist() == [True, False, True]
    assert abs(float(default.uv[0, 0]) - float(uv[0, 0])) < 1e-3
    # and max_radius adds a further limit.
    limited = project_to_depth(xyz, PLUMB_BOB, K, D, WIDTH, HEIGHT, np.eye(4), max_radius=0.8)
    assert limited.valid.tolist() == [True, False, False]


def test_rational_pole_is_invalid_not_an_error() -> None:
    K = CAMERAS[RATIONAL][0]
    D = np.array([0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0])  # 1 + k4 r^2 == 0 at r = 1
    xyz = np.array([[1.0, 0.0, 2.0], [0.6, 0.8, 1.0], [0.1, 0.0, 1.0]])  # r = 0.5, 1, 0.1
    result = project_to_depth(xyz, RATIONAL, K, D, WIDTH, HEIGHT, np.eye(4))
    assert not result.valid[1]
    assert result.valid[2]


# -- bad input ---------------------------------------------------------------------------------------


def _projector() -> Projector:
    K, D = CAMERAS[PLUMB_BOB]
    return Projector(PLUMB_BOB, K, D, WIDTH, HEIGHT, np.eye(4))


def test_nan_inf_and_behind_camera_points_are_invalid() -> None:
    nan, inf = np.nan, np.inf
    xyz = np.array(
        [
            [0.0, 0.0, 5.0],  # valid
            [nan, 0.0, 5.0],
            [0.0, inf, 5.0],
            [0.0, 0.0, -inf],
            [0.0, 0.0, inf],
            [1e30, 1e30, 1e-30],
            [0.0, 0.0, -5.0],  # behind
            [0.0, 0.0, 0.0],  # zero depth
            [0.0, 0.0, 0.05],  # closer than min_depth_m
            [0.0, 0.0, 250.0],  # beyond max_depth_m
            [1e38, 0.0, 1.0],  # far outside the image
        ],
        dtype=np.float32,
    )
    result = _projector().project(xyz)
    assert result.valid.tolist() == [True] + [False] * 10
    assert result.n_valid == 1
    assert result.n_pixels == 1
    assert np.all(np.isnan(result.uv[1:]))


@pytest.mark.parametrize(
    ("xyz", "error"),
    [
        (np.zeros((4, 3), dtype=np.int32), TypeError),
        (np.zeros((4, 3), dtype=np.float16), TypeError),
        (np.zeros((4, 4), dtype=np.float32), ValueError),
        (np.zeros(12, dtype=np.float32), ValueError),
        ([[0.0, 0.0, 1.0]], TypeError),
    ],
)
def test_bad_cloud_is_rejected(xyz: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        _projector().project(xyz)


def test_non_contiguous_and_big_endian_clouds_are_accepted() -> None:
    rng = np.random.default_rng(21)
    xyzi = rng.uniform(-5, 30, size=(500, 4)).astype(np.float32)
    strided = xyzi[:, :3]
    assert not strided.flags.c_contiguous
    projector = _projector()
    expected = projector.project(np.ascontiguousarray(strided), copy=True)
    _assert_same(projector.project(strided), expected, uv_atol=0.0)
    _assert_same(projector.project(strided.astype(">f4")), expected, uv_atol=0.0)


def test_colorize_rejects_wrong_image() -> None:
    projector = _projector()
    result = projector.project(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        projector.colorize(np.zeros((HEIGHT, WIDTH), np.uint8), result)
    with pytest.raises(ValueError, match="shape"):
        projector.colorize(np.zeros((WIDTH, HEIGHT, 3), np.uint8), result)
    with pytest.raises(TypeError):
        projector.colorize(np.zeros((HEIGHT, WIDTH, 3), np.float32), result)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_id": 7}, "model_id"),
        ({"K": np.eye(4)}, "K"),
        ({"K": np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 2]])}, "K"),
        ({"K": np.array([[-500.0, 0, 320], [0, 500, 240], [0, 0, 1]])}, "K"),
        ({"D": np.zeros(9)}, "D"),
        ({"D": np.array([0.1, 0, 0, 0, 0, 0.2])}, "D"),  # plumb_bob with k4 set
        ({"D": [np.nan]}, "D"),
        ({"width": 0}, "width"),
        ({"T_cam_from_lidar": np.eye(3)}, "T_cam_from_lidar"),
        ({"T_cam_from_lidar": np.diag([1.0, 1.0, 1.01, 1.0])}, "T_cam_from_lidar"),
        ({"T_cam_from_lidar": np.diag([1.0, 1.0, -1.0, 1.0])}, "T_cam_from_lidar"),  # reflection
    ],
)
def test_bad_camera_parameters_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    K, D = CAMERAS[PLUMB_BOB]
    params: dict[str, Any] = {"model_id": PLUMB_BOB, "K": K, "D": D[:5], "width": WIDTH, "height": HEIGHT,
                              "T_cam_from_lidar": np.eye(4)}
    params.update(kwargs)
    with pytest.raises(CameraParamError) as info:
        Projector(**params)
    assert info.value.field == field
    assert isinstance(info.value, CalibrationError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_depth_m": 0.0}, {"min_depth_m": 5.0, "max_depth_m": 1.0}, {"threads": 0}, {"max_points": -1},
     {"max_radius": 0.0}],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any]) -> None:
    K, D = CAMERAS[PINHOLE]
    with pytest.raises(ValueError, match="must"):
        Projector(PINHOLE, K, D, WIDTH, HEIGHT, np.eye(4), **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(0, 40), st.just(3)),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    )
)
def test_arbitrary_floats_never_break_invariants(xyz: npt.NDArray[np.float32]) -> None:
    K, D = CAMERAS[RATIONAL]
    projector = Projector(RATIONAL, K, D, 64, 48, np.eye(4), max_points=8)
    result = projector.project(xyz)
    hit = result.index >= 0
    assert np.array_equal(hit, result.depth > 0)
    assert result.n_valid == int(result.valid.sum()) >= int(hit.sum())
    assert np.all(result.valid[result.index[hit]])
    assert np.all(np.isfinite(result.uv[result.valid]))
    assert np.all(np.isnan(result.uv[~result.valid]))
    assert np.all((result.depth[hit] >= 0.1) & (result.depth[hit] <= 200.0))


@pytest.mark.parametrize("model", [PINHOLE, PLUMB_BOB, RATIONAL, EQUIDISTANT])
def test_two_pass_kernel_is_identical_to_one_pass(model: int) -> None:
    rng = np.random.default_rng(200 + model)
    K, D = CAMERAS[model]
    T = _transform(rng)
    xyz = _cloud(rng, T, 30_000)
    xyz[::101] = np.nan
    xyz[5::101, 1] = np.inf
    xyz[7::101] = rng.uniform(-1e30, 1e30, size=xyz[7::101].shape)  # overflow in float64 products
    projector = Projector(model, K, D, WIDTH, HEIGHT, T, max_radius=2.0)
    n = xyz.shape[0]
    outs = []
    for two_pass in (False, True):
        uv = np.empty((n, 2), np.float32)
        pix = np.empty(n, np.int32)
        zdepth = np.empty(n, np.float64)
        valid = np.empty(n, np.bool_)
        args = (xyz, projector._Rt, model, projector._intr_t, projector._D_t, WIDTH, HEIGHT, 0.5, 80.0,
                projector._max_r2, uv, pix, zdepth, valid)
        if two_pass:
            _kernels._project_points_2pass(*args, np.empty(n, np.int32))
        else:
            _kernels._project_points(*args)
        outs.append((uv, pix, zdepth, valid))
    assert outs[0][3].sum() > 1000
    for a, b in zip(outs[0], outs[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_projector_switches_serial_variants_without_changing_results() -> None:
    rng = np.random.default_rng(17)
    K, D = CAMERAS[PLUMB_BOB]
    T = _transform(rng)
    xyz = _cloud(rng, T, 12_000)  # above TWO_PASS_MIN_POINTS: the projector times both variants
    projector = Projector(PLUMB_BOB, K, D, WIDTH, HEIGHT, T, min_depth_m=0.5, max_depth_m=80.0)
    ref = reference_projection(xyz, PLUMB_BOB, K, D, WIDTH, HEIGHT, T, min_depth_m=0.5, max_depth_m=80.0)
    for _ in range(8):  # alternates the variants while measuring, then keeps the faster
        _assert_same(projector.project(xyz), ref)
    assert projector._variant_chooser.prefers_parallel is not None


def test_steady_state_projection_allocates_no_arrays() -> None:
    import tracemalloc

    rng = np.random.default_rng(18)
    K, D = CAMERAS[PINHOLE]
    T = _transform(rng)
    xyz = _cloud(rng, T, 100_000)
    projector = Projector(PINHOLE, K, D, WIDTH, HEIGHT, T, max_points=xyz.shape[0])
    projector.warmup()
    for _ in range(8):  # past the variant measurement phase
        projector.project(xyz)
    tracemalloc.start()
    try:
        for _ in range(5):
            projector.project(xyz)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024  # the result object and views only; one per-point array is >= 120 kB
