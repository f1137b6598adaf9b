"""The chunked, vectorised deskew kernel against the slow reference where its fast paths branch:
chunk edges, many segments with unsorted times, large rotation angles (libm instead of the Taylor
polynomial), NaN and outside times inside runs, in place on more than one chunk, and the number of
compiled specialisations."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion import _deskew_kernels as _k
from edgefuse.fusion.deskew import ConstantVelocity, Deskewer, deskew
from edgefuse.msgs.types import ImuBatch
from tests.fusion.test_deskew_kernels import ref_constant_velocity, ref_imu_deskew, ref_imu_poses

F64 = npt.NDArray[np.float64]


def _extrinsic(rng: np.random.Generator) -> F64:
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rng.normal(size=3) * 0.5).as_matrix()
    T[:3, 3] = rng.normal(size=3) * 0.3
    return T


@pytest.mark.parametrize("n", [1, 511, 512, 513, 1500])
def test_chunk_edges_match_reference(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    pts = rng.normal(size=(n, 3)) * 30.0
    t = np.sort(rng.integers(0, 100_000_000, n)).astype(np.int64)
    v, w = np.array([12.0, -1.5, 0.3]), np.array([0.2, -0.1, 1.4])
    T_il = _extrinsic(rng)
    res = deskew(pts, t, ConstantVelocity(v, w, stamp_ns=20_000_000), reference_time_ns=50_000_000,
                 T_imu_from_lidar=T_il)
    expect = ref_constant_velocity(pts, t, v, w, 20_000_000, 50_000_000, T_il)
    np.testing.assert_allclose(res.points, expect, atol=1e-6, rtol=0)


def test_unsorted_times_over_many_imu_segments() -> None:
    """Random time order: the segment changes from point to point (runs of one point)."""
    rng = np.random.default_rng(21)
    t0 = 3_000_000_000
    stamps = t0 - 2_000_000 + np.arange(0, 110_000_000, 2_500_000, dtype=np.int64)  # 400 Hz: 40+ segments
    gyro = np.cumsum(rng.normal(size=(len(stamps), 3)) * 0.1, axis=0) + np.array([0.3, -0.2, 1.2])
    n = 1300
    pts = rng.normal(size=(n, 3)) * 40.0
    t = t0 + rng.integers(0, 100_000_000, n).astype(np.int64)  # not sorted
    T_il = _extrinsic(rng)
    lo, hi = int(t.min()), int(t.max())
    res = deskew(pts, t, ImuBatch(stamps, gyro, np.zeros_like(gyro)), reference_time_ns="mid", T_imu_from_lidar=T_il)
    assert len(res.motion.seg_t) > 30
    expect = ref_imu_deskew(pts, t, ref_imu_poses(stamps, gyro, lo, hi), (lo + hi) // 2, T_il)
    np.testing.assert_allclose(res.points, expect, atol=1e-6, rtol=0)


def test_large_rotation_angles_use_libm() -> None:
    """|w s| well beyond the Taylor range (0.5 rad): the run falls back to libm sin/cos."""
    rng = np.random.default_rng(22)
    n = 900
    pts = rng.normal(size=(n, 3)) * 50.0
    t = np.sort(rng.integers(0, 100_000_000, n)).astype(np.int64)
    v, w = np.array([3.0, 1.0, 0.0]), np.array([4.0, -9.0, 25.0])  # 27 rad/s: up to 2.7 rad over the sweep
    assert np.linalg.norm(w) * 0.1 > 5 * _k.POLY_MAX_ANGLE
    res = deskew(pts, t, ConstantVelocity(v, w), reference_time_ns="start")
    expect = ref_constant_velocity(pts, t, v, w, int(t.min()), int(t.min()), np.eye(4))
    np.testing.assert_allclose(res.points, expect, atol=1e-6, rtol=0)


def test_nan_and_outside_times_inside_runs_and_across_chunks() -> None:
    rng = np.random.default_rng(23)
    n = 1400
    stamps = np.arange(0, 6, dtype=np.int64) * 10_000_000  # IMU covers [0, 50] ms
    gyro = np.tile([0.1, 0.0, 0.6], (6, 1))
    pts = rng.normal(size=(n, 3)) * 20.0
    t = np.sort(rng.uniform(0.0, 0.09, n))  # float seconds; beyond 55 ms: outside
    bad = rng.choice(n, 40, replace=False)
    t[bad[:20]] = np.nan
    t[bad[20:]] = np.inf
    outside = np.isfinite(t) & (t > 0.055)
    imu = ImuBatch(stamps, gyro, np.zeros_like(gyro))
    r = deskew(pts, t, imu, reference_time_ns=0, time_unit="s", outside="nan")
    assert r.n_nonfinite_time == 40 and r.n_outside == int(outside.sum())
    assert np.all(np.isnan(r.points[bad])) and np.all(np.isnan(r.points[outside]))
    good = np.isfinite(t) & ~outside
    # the constant-rate IMU equals a constant velocity with the same rate
    cv = deskew(pts[good], t[good], ConstantVelocity((0, 0, 0), (0.1, 0.0, 0.6), stamp_ns=0), reference_time_ns=0,
                time_unit="s")
    np.testing.assert_allclose(r.points[good], cv.points, atol=1e-9)
    ext = deskew(pts, t, imu, reference_time_ns=0, time_unit="s", outside="extrapolate")
    assert ext.n_outside == int(outside.sum()) and np.all(np.isfinite(ext.points[outside]))


def test_in_place_over_several_chunks() -> None:
    rng = np.random.default_rng(24)
    n = 2000
    pts = rng.normal(size=(n, 3)) * 20.0
    t = np.repeat(np.sort(rng.integers(0, 100_000_000, n // 16)), 16).astype(np.int64)
    motion = ConstantVelocity((8.0, 0.0, 0.0), (0.0, 0.1, 0.9))
    expect = deskew(pts, t, motion, reference_time_ns="end").points.copy()
    buf = pts.copy()
    Deskewer().deskew(buf, t, motion, reference_time_ns="end", out=buf)
    np.testing.assert_array_equal(buf, expect)


def test_scratch_rows_do_not_alias_in_4k() -> None:
    for chunk in (256, 512, 1024):
        rows, width = _k.scratch_shape(chunk)
        assert width >= chunk and rows == _k.SCRATCH_ROWS
        for a in range(rows):
            for b in range(a + 1, rows):
                off = ((b - a) * width * 8) % 4096
                assert 64 <= off <= 4096 - 64, (chunk, a, b, off)


def _n_compiled(kernel: Any) -> int:
    return len(kernel.signatures)


def test_warmup_compiles_few_specialisations() -> None:
    """In a fresh interpreter (other tests compile other variants): warm-up compiles the main
    kernel per point dtype and layout only (4), the time conversion per time dtype (7)."""
    code = ("from edgefuse.fusion import _deskew_kernels as k\n"
            "from edgefuse.fusion.deskew import Deskewer\n"
            "Deskewer().warmup()\n"
            "print(len(k._deskew_points.signatures), len(k._point_tau.signatures))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    n_main, n_tau = (int(x) for x in out.stdout.split())
    assert n_main == 4
    assert n_tau == 7


def test_warmup_covers_common_inputs() -> None:
    d = Deskewer()
    d.warmup()
    n_main = _n_compiled(_k._deskew_points)
    n_tau = _n_compiled(_k._point_tau)
    # a structured cloud deskewed in place with its uint32 time field, as the pipeline stage does
    rec = np.zeros(10, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("t", "u4")])
    rec["t"] = np.arange(10) * 1000
    view = np.lib.stride_tricks.as_strided(rec["x"], shape=(10, 3), strides=(rec.itemsize, 4))
    d.deskew(view, rec["t"], ConstantVelocity((1, 0, 0), (0, 0, 1)), reference_time_ns=0, out=view)
    for tt in (np.arange(10, dtype=np.int64), np.arange(10, dtype=np.float64) * 1e-6):
        d.deskew(np.ones((10, 3), np.float64), tt, ConstantVelocity((1, 0, 0), (0, 0, 1)), reference_time_ns=0)
    assert _n_compiled(_k._deskew_points) == n_main
    assert _n_compiled(_k._point_tau) == n_tau
