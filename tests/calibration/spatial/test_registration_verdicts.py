"""Registration verdict rules on SYNTHETIC scenes: degenerate geometry (plane, corridor, line), too few
correspondences, multi-start / contrast refusals, locked components and several scan pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from edgefuse_calibration.spatial import perturb, pose_error, register_clouds
from edgefuse_calibration.spatial.registration import RegistrationChecks

from edgefuse.errors import CalibrationError
from edgefuse.rig import Transform


def _plane(rng: np.random.Generator, n: int = 6000) -> np.ndarray:
    return np.asarray(np.c_[rng.uniform(-10, 10, n), rng.uniform(-10, 10, n), np.zeros(n)], dtype=np.float64)


def _corridor(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """Two parallel walls and a floor along x: translation along x is unconstrained."""
    return np.vstack([np.c_[rng.uniform(-20, 20, n), np.full(n, 2.0), rng.uniform(0, 3, n)],
                      np.c_[rng.uniform(-20, 20, n), np.full(n, -2.0), rng.uniform(0, 3, n)],
                      np.c_[rng.uniform(-20, 20, n), rng.uniform(-2, 2, n), np.zeros(n)]])


def _walls2d(rng: np.random.Generator, n: int = 3000) -> np.ndarray:
    """A 2-D scene (z = 0) with walls in two directions and a small box: x, y, yaw all pinned."""
    return np.vstack([np.c_[rng.uniform(-20, 20, n), np.full(n, 5.0), np.zeros(n)],
                      np.c_[np.full(n, 8.0), rng.uniform(-20, 20, n), np.zeros(n)],
                      np.c_[rng.uniform(-3, -1, n), np.full(n, -4.0), np.zeros(n)]])


def test_flat_plane_is_refused_as_degenerate() -> None:
    rng = np.random.default_rng(10)
    p = _plane(rng)
    guess = perturb(Transform.identity(), [0.0, 0.0, 0.02], [0.1, 0.1, 0.05])
    res = register_clouds(p + rng.normal(0, 0.01, p.shape), p, guess)
    assert res.verdict == "refused"
    assert res.T is None
    deg = [r for r in res.reasons if r.startswith("degenerate geometry")]
    assert deg, res.reasons
    for name in ("translation along x", "translation along y", "rotation about z"):
        assert name in deg[0]


def test_corridor_leaves_translation_along_it_unconstrained() -> None:
    rng = np.random.default_rng(11)
    c = _corridor(rng)
    res = register_clouds(c + rng.normal(0, 0.01, c.shape), c,
                          perturb(Transform.identity(), [0.0, 0.0, 0.01], [0.2, 0.1, 0.05]))
    assert res.verdict == "refused"
    deg = next(r for r in res.reasons if r.startswith("degenerate geometry"))
    assert "translation along x" in deg
    assert "translation along y" not in deg
    eig = np.asarray(res.metrics["information_eigenvalues"])
    assert eig[0] < 0.01 < eig[1]


def test_planar_line_is_refused() -> None:
    rng = np.random.default_rng(12)
    n = 3000
    line = np.c_[rng.uniform(-20, 20, n), np.full(n, 5.0), np.zeros(n)]
    res = register_clouds(line + np.array([0.3, 0.1, 0.0]), line, Transform.identity(), planar=True)
    assert res.verdict == "refused"
    assert any("translation along x" in r for r in res.reasons if r.startswith("degenerate"))


def test_too_few_correspondences_refused() -> None:
    rng = np.random.default_rng(13)
    w = _walls2d(rng)
    src = w[rng.choice(len(w), 40, replace=False)]
    res = register_clouds(src, w, Transform.identity(), planar=True, min_points=10)
    assert res.verdict == "refused"
    assert any(r.startswith("too few correspondences") for r in res.reasons)


def test_planar_recovered_with_uncertainty_and_all_checks_reported() -> None:
    rng = np.random.default_rng(14)
    w = _walls2d(rng)
    T_true = perturb(Transform.identity(), [0.0, 0.0, np.deg2rad(2.0)], [0.2, -0.15, 0.0])
    src = T_true.inverse().apply(w) + rng.normal(0, 0.01, w.shape) * [1, 1, 0]
    res = register_clouds(src, w, Transform.identity(), planar=True)
    assert res.verdict == "ok", res.reasons
    assert res.T is not None
    dr, dt = pose_error(res.T, T_true)
    assert dr < 0.05
    assert dt < 0.01
    m = res.metrics
    assert m["n_agreeing_starts"] == 5
    assert m["contrast"] > 0.5
    assert min(m["axis_contrast"].values()) > 0.5
    assert m["cost"] < m["cost_initial"]
    assert 0 < m["sigma_rot_deg"][0] < 0.05


def test_wrong_scene_pair_is_never_ok() -> None:
    """Source and target from unrelated random clutter: no alignment exists; must not be ok."""
    rng = np.random.default_rng(15)
    a = np.c_[rng.uniform(-20, 20, (800, 2)), np.zeros(800)]
    b = np.c_[rng.uniform(-20, 20, (8000, 2)), np.zeros(8000)]
    res = register_clouds(a, b, Transform.identity(), planar=True, max_corr_m=(1.0, 0.5), min_fitness=0.0)
    assert res.verdict != "ok", res.metrics


def test_jump_beyond_expected_guess_error_refused() -> None:
    """A scene that repeats every 4 m along x: a guess 1.8 m off converges to the wrong copy (or to none)."""
    rng = np.random.default_rng(16)
    posts = np.vstack([np.c_[rng.normal(x, 0.05, 200), rng.normal(y, 0.05, 200), np.zeros(200)]
                       for x in np.arange(-20, 21, 4.0) for y in (3.0, -3.0)])
    res = register_clouds(posts + np.array([1.8, 0.0, 0.0]), posts, Transform.identity(), planar=True,
                          checks=RegistrationChecks(start_rot_deg=1.0, start_trans_m=0.2))
    assert res.verdict != "ok"
    if res.T is not None:  # no_improvement keeps the guess
        assert res.T.allclose(Transform.identity(), 1e-12)


def test_locked_component_kept_and_several_pairs() -> None:
    rng = np.random.default_rng(17)
    scenes = [_walls2d(rng) + np.array([dx, 0.0, 0.0]) for dx in (0.0, 0.7, 1.4, 2.1)]
    T_true = perturb(Transform.identity(), [0.0, 0.0, np.deg2rad(2.0)], [0.3, -0.2, 0.0])
    srcs = [T_true.inverse().apply(s) for s in scenes]
    guess = perturb(Transform.identity(), [0.0, 0.0, 0.0], [0.0, -0.35, 0.0])
    res = register_clouds(srcs, scenes, guess, planar=True, lock=("y",))
    assert res.verdict == "ok", res.reasons
    assert res.T is not None
    assert res.metrics["locked"] == ["y"]
    assert len(res.metrics["subset_spread"]) == 2
    D = res.T.matrix @ np.linalg.inv(guess.matrix)  # the update: no y translation
    assert abs(D[1, 3]) < 1e-9
    assert abs(np.degrees(np.arctan2(res.T.R[1, 0], res.T.R[0, 0])) - 2.0) < 0.5


def test_bad_arguments() -> None:
    rng = np.random.default_rng(18)
    w = _walls2d(rng)
    with pytest.raises(CalibrationError):
        register_clouds(w, w, Transform.identity(), lock=("y",))  # lock needs planar
    with pytest.raises(CalibrationError):
        register_clouds(w, w, Transform.identity(), planar=True, lock=("x", "y", "yaw"))
    with pytest.raises(CalibrationError):
        register_clouds([w, w], [w], Transform.identity(), planar=True)
    with pytest.raises(CalibrationError):
        register_clouds([w, w], [w, w], Transform.identity())  # several pairs: planar only
    with pytest.raises(CalibrationError):
        register_clouds(w, w, Transform.identity(), planar=True, method="gicp")


def test_register_cli_lock_and_guess_error_flags(tmp_path: Path) -> None:
    """The ``register`` command passes --lock / --guess-error-*; a refused run leaves the rig unchanged."""
    from edgefuse_calibration.spatial.cli import add_spatial_parsers

    from edgefuse.rig import FrameGraph, Rig, Sensor, load_rig, save_rig

    rng = np.random.default_rng(19)
    n = 3000
    line = np.c_[rng.uniform(-20, 20, n), np.full(n, 5.0), np.zeros(n)]
    np.save(tmp_path / "src.npy", line + np.array([0.3, 0.0, 0.0]))
    np.save(tmp_path / "tgt.npy", line)
    rig = Rig(base_frame="lidar", frames=FrameGraph.from_edges([("lidar", "radar", Transform.identity())]),
              sensors={"r": Sensor("r", "radar", "radar"), "l": Sensor("l", "lidar", "lidar")})
    save_rig(rig, tmp_path / "rig.yaml")
    ap = argparse.ArgumentParser()
    add_spatial_parsers(ap.add_subparsers())
    args = ap.parse_args(["register", str(tmp_path / "src.npy"), str(tmp_path / "tgt.npy"), "--source-frame", "radar",
                          "--target-frame", "lidar", "--planar", "--lock", "yaw", "--guess-error-m", "0.5",
                          "--rig", str(tmp_path / "rig.yaml"), "--report", str(tmp_path / "rep.json")])
    assert args.lock == ["yaw"]
    assert args.func(args) == 4  # a line: x unconstrained -> refused
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["verdict"] == "refused"
    assert not rep["rig_written"]
    assert load_rig(tmp_path / "rig.yaml").transform("lidar", "radar").allclose(Transform.identity(), 1e-12)
