"""The vectorised pinhole path of Projector (packed z-buffer, lazy uv/valid) against the general kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion import PINHOLE, PLUMB_BOB, RATIONAL, Projector, _kernels

from .projection_reference import reference_projection

F64 = npt.NDArray[np.float64]
WIDTH, HEIGHT = 320, 240
K = np.array([[300.0, 0.0, 159.5], [0.0, 305.0, 120.3], [0.0, 0.0, 1.0]])


def _general(xyz: npt.NDArray[Any], T: F64, model: int = PINHOLE) -> tuple[Any, ...]:
    """uv, valid, depth, index from the general (model-branching) kernels, bypassing the pinhole path."""
    n = xyz.shape[0]
    proj = Projector(model, K, None, WIDTH, HEIGHT, T)
    uv = np.empty((n, 2), np.float32)
    pix = np.empty(n, np.int32)
    zdepth = np.empty(n, np.float64)
    valid = np.empty(n, np.bool_)
    _kernels._project_points(np.ascontiguousarray(xyz), proj._Rt, model, proj._intr_t, proj._D_t, WIDTH, HEIGHT,
                             0.1, 200.0, np.inf, uv, pix, zdepth, valid)
    depth = np.zeros(WIDTH * HEIGHT, np.float32)
    index = np.full(WIDTH * HEIGHT, -1, np.int32)
    _kernels._zbuffer_points(pix, zdepth, depth, index, np.zeros(WIDTH * HEIGHT, np.int32), 0,
                             np.empty(n, np.int32))
    return uv, valid, depth.reshape(HEIGHT, WIDTH), index.reshape(HEIGHT, WIDTH)


def _cloud(rng: np.random.Generator, n: int, dtype: Any) -> npt.NDArray[Any]:
    xyz = np.stack([rng.uniform(-30, 30, n), rng.uniform(-20, 20, n), rng.uniform(-10, 60, n)], axis=1)
    xyz = np.concatenate([xyz, xyz[: n // 10], xyz[: n // 10] * 1.5]).astype(dtype)  # ties and occlusion
    xyz[::97] = np.nan
    xyz[3::97, 0] = np.inf
    xyz[5::97] = rng.uniform(-1e30, 1e30, size=xyz[5::97].shape)
    return np.ascontiguousarray(xyz[rng.permutation(xyz.shape[0])])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pinhole_path_equals_general_kernel(dtype: Any) -> None:
    rng = np.random.default_rng(31)
    T = np.eye(4)
    xyz = _cloud(rng, 20_000, dtype)
    proj = Projector(PINHOLE, K, None, WIDTH, HEIGHT, T)
    assert proj._pinhole
    for _ in range(2):  # second call: the z-buffer was left empty and the touched pixels are cleared
        result = proj.project(xyz)
        uv, valid, depth, index = _general(xyz, T)
        np.testing.assert_array_equal(result.depth, depth)
        np.testing.assert_array_equal(result.index, index)
        assert result.n_valid == int(valid.sum()) > 1000
        np.testing.assert_array_equal(result.valid, valid)
        np.testing.assert_array_equal(result.uv, uv)  # bit for bit, NaN where invalid
    assert not (proj._zbuf != _kernels._ZB_EMPTY).any()


def test_float32_depth_tie_is_decided_in_float64() -> None:
    # Same pixel, depths 10 and 10 + 1e-7 m: equal as float32, different as float64.
    near, far = 10.0, 10.0 + 1e-7
    assert np.float32(near) == np.float32(far)
    for order in ((far, near), (near, far)):
        xyz = np.array([[0.0, 0.0, order[0]], [0.0, 0.0, order[1]], [0.0, 0.0, 30.0]], dtype=np.float64)
        result = Projector(PINHOLE, K, None, WIDTH, HEIGHT, np.eye(4)).project(xyz)
        ref = reference_projection(xyz, PINHOLE, K, np.zeros(8), WIDTH, HEIGHT, np.eye(4))
        np.testing.assert_array_equal(result.index, ref.index)
        assert int(result.index[120, 160]) == order.index(near)
    # Exactly equal depths: the lower index wins.
    xyz = np.array([[0.0, 0.0, 30.0], [0.0, 0.0, 10.0], [0.0, 0.0, 10.0]])
    assert int(Projector(PINHOLE, K, None, WIDTH, HEIGHT, np.eye(4)).project(xyz).index[120, 160]) == 1


def test_zero_distortion_models_take_the_pinhole_path() -> None:
    rng = np.random.default_rng(32)
    xyz = _cloud(rng, 5000, np.float32)
    for model in (PLUMB_BOB, RATIONAL):
        proj = Projector(model, K, np.zeros(5), WIDTH, HEIGHT, np.eye(4))
        assert proj._pinhole
        result = proj.project(xyz)
        uv, valid, depth, index = _general(xyz, np.eye(4), model)
        np.testing.assert_array_equal(result.index, index)
        np.testing.assert_array_equal(result.depth, depth)
        np.testing.assert_array_equal(result.valid, valid)
        np.testing.assert_array_equal(result.uv, uv)
    assert not Projector(PLUMB_BOB, K, [0.1], WIDTH, HEIGHT, np.eye(4))._pinhole


def test_lazy_per_point_outputs_of_a_stale_result_raise() -> None:
    rng = np.random.default_rng(33)
    proj = Projector(PINHOLE, K, None, WIDTH, HEIGHT, np.eye(4))
    a, b = _cloud(rng, 500, np.float32), _cloud(rng, 400, np.float32)
    first = proj.project(a)
    kept = proj.project(a, copy=True)  # computed at once
    second = proj.project(b)
    with pytest.raises(RuntimeError, match="next"):
        _ = first.uv
    assert kept.uv.shape == (a.shape[0], 2) and kept.valid.sum() == kept.n_valid
    assert second.valid.shape == (b.shape[0],) and int(second.valid.sum()) == second.n_valid
    with pytest.raises(ValueError, match="read-only"):
        second.uv[0, 0] = 1.0


def test_pinhole_warmup_compiles_everything_for_readonly_inputs() -> None:
    proj = Projector(PINHOLE, K, None, WIDTH, HEIGHT, np.eye(4))
    proj.warmup()
    before = sum(len(getattr(f, "signatures", ())) for f in vars(_kernels).values())
    rng = np.random.default_rng(34)
    image = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image.setflags(write=False)
    for dtype in (np.float32, np.float64):
        pts = _cloud(rng, 300, dtype)
        pts.setflags(write=False)
        res = proj.project(pts)
        assert res.n_valid > 0
        assert proj.colorize(image, res).shape == (pts.shape[0], 3)
    assert sum(len(getattr(f, "signatures", ())) for f in vars(_kernels).values()) == before


def test_per_point_in_the_same_pass_equals_lazy() -> None:
    rng = np.random.default_rng(35)
    xyz = _cloud(rng, 8000, np.float32)
    proj = Projector(PINHOLE, K, None, WIDTH, HEIGHT, np.eye(4))
    lazy = proj.project(xyz, copy=True)
    eager = proj.project(xyz, per_point=True)
    np.testing.assert_array_equal(eager.uv, lazy.uv)
    np.testing.assert_array_equal(eager.valid, lazy.valid)
    np.testing.assert_array_equal(eager.index, lazy.index)
    assert eager.n_valid == lazy.n_valid == int(eager.valid.sum())


def _boundary_cloud(rng: np.random.Generator, T: F64, n: int) -> npt.NDArray[np.float32]:
    """float32 LiDAR points whose camera-frame pixels lie within ±1e-3 px of the image borders (and
    depths at the ends of the valid range), the cases a float32 pre-test could get wrong."""
    u = np.concatenate([rng.choice([-0.5, WIDTH - 0.5], n) + rng.uniform(-1e-3, 1e-3, n),
                        rng.uniform(-0.5, WIDTH - 0.5, n)])
    v = np.concatenate([rng.uniform(-0.5, HEIGHT - 0.5, n),
                        rng.choice([-0.5, HEIGHT - 0.5], n) + rng.uniform(-1e-3, 1e-3, n)])
    z = rng.choice([0.1, 0.1 + 1e-6, 200.0, 200.0 - 1e-5, 3.0, 150.0], 2 * n) * (1 + rng.uniform(-2e-7, 2e-7, 2 * n))
    u[:200] += rng.choice([-50.0, 50.0], 200)  # clearly outside the image
    z[200:400] *= -1.0                          # behind the camera
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    cam = np.stack([x, y, z], axis=1)
    lidar = (cam - T[:3, 3]) @ T[:3, :3]  # T maps LiDAR to camera
    return np.ascontiguousarray(lidar.astype(np.float32))


def test_float32_screen_keeps_every_valid_point_at_the_borders() -> None:
    rng = np.random.default_rng(5)
    c, s_ = np.cos(0.7), np.sin(0.7)
    T = np.eye(4)
    T[:3, :3] = np.array([[c, 0, s_], [0, 1, 0], [-s_, 0, c]]) @ np.array([[1, 0, 0], [0, c, -s_], [0, s_, c]])
    T[:3, 3] = [40.0, -25.0, 60.0]  # a rig origin far from the sensors: larger float32 errors
    xyz = _boundary_cloud(rng, T, 20_000)
    proj = Projector(PINHOLE, K, None, WIDTH, HEIGHT, T)
    result = proj.project(xyz)  # float32: screened path
    _, valid, depth, index = _general(xyz, T)
    assert 0.2 * len(xyz) < result.n_valid == int(valid.sum()) < len(xyz)  # both sides of every border
    np.testing.assert_array_equal(result.depth, depth)
    np.testing.assert_array_equal(result.index, index)
    mask = np.empty(len(xyz), np.bool_)
    _kernels._screen_pinhole_f32(xyz.reshape(-1), len(xyz), proj._Rt, proj._intr_t, WIDTH, HEIGHT, 0.1, 200.0, mask)
    assert mask[valid].all()  # a superset of the valid points ...
    assert mask.sum() < len(xyz)  # ... that still rejects some (behind the camera, far outside)
