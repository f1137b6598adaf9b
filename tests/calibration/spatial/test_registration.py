"""ICP registration (LiDAR-LiDAR) on a SYNTHETIC room scene, refusal cases, and the rig write rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgefuse_calibration.spatial import perturb, pose_error, register_clouds, write_result_to_rig
from edgefuse_calibration.spatial._common import exp_so3

from edgefuse.rig import FrameGraph, Rig, Sensor, Transform, load_rig, save_rig


def _room(rng: np.random.Generator) -> np.ndarray:
    """Points on a floor, three walls and two boxes (metres)."""
    n = 3000
    floor = np.c_[rng.uniform(-10, 10, n), rng.uniform(-10, 10, n), np.zeros(n)]
    w1 = np.c_[np.full(n, 10.0), rng.uniform(-10, 10, n), rng.uniform(0, 3, n)]
    w2 = np.c_[rng.uniform(-10, 10, n), np.full(n, 10.0), rng.uniform(0, 3, n)]
    w3 = np.c_[rng.uniform(-10, 10, n), np.full(n, -10.0), rng.uniform(0, 3, n)]
    box = np.c_[rng.uniform(2, 3, n), rng.uniform(-4, -3, n), rng.uniform(0, 1, n)]
    box2 = np.c_[np.full(n, -3.0), rng.uniform(1, 3, n), rng.uniform(0, 2, n)]
    return np.vstack([floor, w1, w2, w3, box, box2])


def _rig() -> Rig:
    g = FrameGraph()
    T = Transform.from_rt(exp_so3([0.01, -0.02, 0.3]), [1.0, 0.5, 0.2])
    g.add("lidar_a", "lidar_b", T)
    return Rig(base_frame="lidar_a", frames=g,
               sensors={"a": Sensor("a", "lidar_a", "lidar"), "b": Sensor("b", "lidar_b", "lidar")})


def test_lidar_lidar_recovered_and_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    world = _room(rng)
    rig = _rig()
    T_ab = rig.transform("lidar_a", "lidar_b")
    src = T_ab.inverse().apply(world) + rng.normal(0, 0.01, world.shape)
    tgt = world + rng.normal(0, 0.01, world.shape)
    guess = perturb(T_ab, np.deg2rad([1.0, -1.0, 2.0]), [0.15, -0.1, 0.05])
    res = register_clouds(src, tgt, guess, source_frame="lidar_b", target_frame="lidar_a")
    assert res.verdict == "ok", res.reasons
    assert res.T is not None
    dr, dt = pose_error(res.T, T_ab)
    assert dr < 0.2
    assert dt < 0.03
    p = tmp_path / "rig.yaml"
    wrong = Rig(base_frame="lidar_a", frames=FrameGraph.from_edges([("lidar_a", "lidar_b", guess)]),
                sensors=rig.sensors)
    save_rig(wrong, p)
    assert write_result_to_rig(res, p)
    assert load_rig(p).transform("lidar_a", "lidar_b").allclose(res.T, 1e-9)


def test_registration_refusals() -> None:
    rng = np.random.default_rng(1)
    world = _room(rng)
    T = Transform.identity()
    empty = register_clouds(np.zeros((0, 3)), world, T)
    assert empty.verdict == "refused"
    nan = register_clouds(np.full((500, 3), np.nan), world, T)
    assert nan.verdict == "refused"
    far = register_clouds(world + np.array([500.0, 0, 0]), world, T)
    assert far.verdict == "refused"
    assert "fitness" in far.reasons[0]


def test_exact_guess_is_kept() -> None:
    rng = np.random.default_rng(2)
    world = _room(rng)
    res = register_clouds(world, world, Transform.identity(), voxel_m=0.0)
    assert res.verdict in ("ok", "no_improvement")
    assert res.T is not None
    dr, dt = pose_error(res.T, Transform.identity())
    assert dr < 0.01
    assert dt < 0.001
