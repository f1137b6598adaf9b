"""Every CUDA kernel against its CPU kernel, under Numba's CUDA simulator, on small real clouds.

The checks run in a child process (``_sim_checks.py``) that sets ``NUMBA_ENABLE_CUDASIM=1`` before
``numba.cuda`` is imported: the simulator then replaces ``numba.cuda`` in that process only, and this
test process keeps the real CUDA target (and its CPU kernels) untouched.

What these tests cannot show: the simulator runs each CUDA thread as a Python thread, one at a time
under the GIL, so (1) a data race that real warps would expose cannot appear here (the kernels are
written so that every cross-thread write is an atomic or has a single owner, and the results must be
order-independent, which is what the bit-identical comparisons check for the orders the simulator
happens to use); (2) nothing about speed, occupancy or memory bandwidth; (3) ``math`` functions run
with the host's C library, not libdevice, and floating-point operations are never fused (FMA), so the
GPU may differ from these bit-identical results within ``edgefuse.fusion.cuda.TOLERANCES``.
``bench/device_check.sh`` checks the same kernels on a real GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("_sim_checks.py")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sim() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_ENABLE_CUDASIM")}
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_the_child_ran_on_the_simulator(sim: dict[str, Any]) -> None:
    assert sim["status"][0] is True and "simulator" in sim["status"][1]
    assert sim["auto"][0] == "cuda"


@pytest.mark.parametrize("model", ["pinhole", "plumb_bob", "rational", "equidistant"])
def test_projection_and_zbuffer_match_the_cpu_for_every_camera_model(sim: dict[str, Any], model: str) -> None:
    for dt in ("float32", "float64"):
        r = sim[f"projection.{model}.{dt}"]
        assert r["n_valid"][0] == r["n_valid"][1] > 50  # a real part of the cloud is in view
        assert r["n_pixels"] > 30
        # z-buffer winners and pixels bit-identical; float outputs identical too on the simulator
        assert r["index"] and r["depth"] and r["uv"] and r["valid"], r
    assert sim[f"projection.{model}.steady_allocations"] == 0  # same or smaller cloud: nothing allocated
    assert sim[f"projection.{model}.timing_keys"] == ["d2h_s", "h2d_s", "kernel_s"]


@pytest.mark.parametrize("cloud", ["kitti", "nuscenes"])
def test_dynamic_voxelization_is_bit_identical(sim: dict[str, Any], cloud: str) -> None:
    for dt in ("float32", "float64"):
        r = sim[f"dynamic.{cloud}.{dt}"]
        assert r["m"][0] == r["m"][1] > 20
        assert r["point_voxel"] and r["coords"] and r["num_points"]
        assert r["steady_allocations"] == 0


@pytest.mark.parametrize("cloud", ["kitti", "nuscenes"])
@pytest.mark.parametrize("on_cap", ["stop", "continue"])
def test_hard_voxelization_is_bit_identical_below_and_at_the_cap(sim: dict[str, Any], cloud: str,
                                                                 on_cap: str) -> None:
    for dt in ("float32", "float64"):
        for cap in (500, 12):
            r = sim[f"hard.{cloud}.{dt}.{on_cap}.{cap}"]
            assert r["m"][0] == r["m"][1] == min(cap, r["m"][0])
            assert r["voxels"] and r["coords"] and r["num_points"], r
            assert r["stats"][0] == r["stats"][1]  # outside, dropped (cap), dropped (full voxel)
        assert sim[f"hard.{cloud}.{dt}.{on_cap}.12"]["stats"][0][1] > 0  # the cap was reached


@pytest.mark.parametrize("cloud", ["kitti", "nuscenes"])
def test_pillar_features_are_bit_identical(sim: dict[str, Any], cloud: str) -> None:
    r = sim[f"pillars.{cloud}"]
    assert r["m"][0] == r["m"][1] > 10 and r["coords"] and r["features"]


def test_bev_grid_matches(sim: dict[str, Any]) -> None:
    for norm in ("0", "64"):
        r = sim[f"bev.{norm}"]
        assert r["occupied"] > 10
        assert all(r["exact"]) and r["max_abs"] == 0.0  # GPU: mean intensity within TOLERANCES
        assert r["steady_allocations"] == 0


@pytest.mark.parametrize("motion", ["cv", "imu"])
def test_deskew_matches(sim: dict[str, Any], motion: str) -> None:
    for outside in ("extrapolate", "nan"):
        r = sim[f"deskew.{motion}.{outside}"]
        assert r["n_outside"][0] == r["n_outside"][1]
        assert r["nan_same"] and r["max_abs"] <= 1e-9
        assert r["steady_allocations"] == 0
    assert sim[f"deskew.{motion}.nan"]["n_outside"][0] == (30 if motion == "imu" else 0)
