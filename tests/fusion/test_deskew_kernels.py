"""Deskew kernels against a slow, obviously-correct reference (per point scipy Rotation + 4×4 matrices)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.transform import Rotation

from edgefuse.fusion.deskew import ConstantVelocity, Deskewer, Motion, deskew, integrate_imu, so3_exp
from edgefuse.msgs.types import ImuBatch

F64 = npt.NDArray[np.float64]


# -- reference ------------------------------------------------------------------------------------
def _h(R: F64, p: F64) -> F64:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = p
    return T


def ref_constant_velocity(  # noqa: PLR0917
    pts: F64, t_ns: npt.NDArray[np.int64], v: F64, w: F64, stamp_ns: int,
                          ref_ns: int, T_il: F64) -> F64:
    """Body pose at t relative to the body at ``stamp``: (Exp(w dt), v dt); one point at a time."""

    def pose(t: int) -> F64:
        dt = (t - stamp_ns) * 1e-9
        return _h(Rotation.from_rotvec(w * dt).as_matrix(), v * dt)

    T_ref_inv = np.linalg.inv(pose(ref_ns))
    out = np.empty_like(pts, dtype=np.float64)
    for i in range(len(pts)):
        T = np.linalg.inv(T_il) @ T_ref_inv @ pose(int(t_ns[i])) @ T_il
        out[i] = (T @ np.r_[pts[i], 1.0])[:3]
    return out


def ref_imu_poses(  # noqa: PLR0917
    stamps: npt.NDArray[np.int64], gyro: F64, t0: int, t1: int, accel: F64 | None = None,
                  v0: F64 | None = None, g0: F64 | None = None) -> tuple[list[int], list[Rotation], list[F64],
                                                                           list[F64], list[F64], list[F64]]:
    """Integrate with scipy: samples at t0, the stamps strictly inside, t1 (linear interpolation)."""
    inner = [int(s) for s in stamps if t0 < s < t1]
    ts = [t0, *inner, t1]

    def at(vals: F64, t: int) -> F64:
        return np.array([np.interp(t, stamps, vals[:, j]) for j in range(3)])

    gs = [at(gyro, t) for t in ts]
    fs = [at(accel, t) for t in ts] if accel is not None else None
    Rs = [Rotation.identity()]
    ps = [np.zeros(3)]
    vs = [np.zeros(3) if v0 is None else np.asarray(v0, float)]
    ws: list[F64] = []
    acs: list[F64] = []
    for k in range(len(ts) - 1):
        h = (ts[k + 1] - ts[k]) * 1e-9
        wk = 0.5 * (gs[k] + gs[k + 1])
        Rn = Rs[k] * Rotation.from_rotvec(wk * h)
        ak = 0.5 * (Rs[k].apply(fs[k]) + Rn.apply(fs[k + 1])) + g0 if fs is not None and g0 is not None \
            else np.zeros(3)
        ps.append(ps[k] + vs[k] * h + 0.5 * ak * h * h)
        vs.append(vs[k] + ak * h)
        Rs.append(Rn)
        ws.append(wk)
        acs.append(ak)
    return ts, Rs, ps, vs, ws, acs


def ref_imu_deskew(pts: F64, t_ns: npt.NDArray[np.int64], poses: tuple[list[int], list[Rotation], list[F64],
                                                                       list[F64], list[F64], list[F64]],
                   ref_ns: int, T_il: F64) -> F64:
    ts, Rs, ps, vs, ws, acs = poses

    def pose(t: int) -> F64:
        k = int(np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ws) - 1))
        s = (t - ts[k]) * 1e-9
        R = Rs[k] * Rotation.from_rotvec(ws[k] * s)
        return _h(R.as_matrix(), ps[k] + vs[k] * s + 0.5 * acs[k] * s * s)

    T_ref_inv = np.linalg.inv(pose(ref_ns))
    out = np.empty_like(pts, dtype=np.float64)
    for i in range(len(pts)):
        T = np.linalg.inv(T_il) @ T_ref_inv @ pose(int(t_ns[i])) @ T_il
        out[i] = (T @ np.r_[pts[i], 1.0])[:3]
    return out


def _extrinsic(rng: np.random.Generator) -> F64:
    return _h(Rotation.from_rotvec(rng.normal(size=3) * 0.5).as_matrix(), rng.normal(size=3) * 0.3)


def _sweep(rng: np.random.Generator, n: int, t0: int = 1_700_000_000_000_000_000,
           dur_ns: int = 100_000_000, per_time: int = 1) -> tuple[F64, npt.NDArray[np.int64]]:
    pts = rng.normal(size=(n, 3)) * 30.0
    cols = -(-n // per_time)
    col_t = t0 + np.sort(rng.integers(0, dur_ns, cols))
    return pts, np.repeat(col_t, per_time)[:n].astype(np.int64)


# -- tests ----------------------------------------------------------------------------------------
def test_so3_exp_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        w = rng.normal(size=3) * rng.uniform(0, 3)
        np.testing.assert_allclose(so3_exp(w), Rotation.from_rotvec(w).as_matrix(), atol=1e-14)
    np.testing.assert_array_equal(so3_exp(np.zeros(3)), np.eye(3))


@pytest.mark.parametrize("per_time", [1, 16])
@pytest.mark.parametrize("ref", ["start", "end", "mid", "stamp"])
def test_constant_velocity_matches_reference(per_time: int, ref: str) -> None:
    rng = np.random.default_rng(2 + per_time)
    pts, t = _sweep(rng, 600, per_time=per_time)
    v = np.array([12.0, -1.5, 0.3])
    w = np.array([0.2, -0.1, 1.4])
    T_il = _extrinsic(rng)
    stamp = int(t.min()) + 30_000_000
    ref_ns = {"start": int(t.min()), "end": int(t.max()), "mid": (int(t.min()) + int(t.max())) // 2,
              "stamp": stamp}[ref]
    res = deskew(pts, t, ConstantVelocity(v, w, stamp_ns=stamp),
                 reference_time_ns=ref_ns if ref == "stamp" else ref,  # type: ignore[arg-type]
                 T_imu_from_lidar=T_il)
    assert res.reference_time_ns == ref_ns
    expect = ref_constant_velocity(pts, t, v, w, stamp, ref_ns, T_il)
    np.testing.assert_allclose(res.points, expect, atol=1e-6, rtol=0)
    assert res.n_outside == 0 and res.n_nonfinite_time == 0


def test_constant_velocity_float32_and_time_units() -> None:
    rng = np.random.default_rng(5)
    pts, t = _sweep(rng, 300, t0=0)
    v, w = np.array([5.0, 0.0, 0.0]), np.array([0.0, 0.0, 2.0])
    expect = ref_constant_velocity(pts, t, v, w, 10_000_000, 10_000_000, np.eye(4))
    base = deskew(pts, t, ConstantVelocity(v, w), reference_time_ns=10_000_000)
    np.testing.assert_allclose(base.points, expect, atol=1e-6)
    # float seconds relative to a header stamp, as Velodyne drivers publish them
    stamp = 1_000_000_000_000
    rel_s = (t * 1e-9).astype(np.float64)
    r = deskew(pts, rel_s, ConstantVelocity(v, w), reference_time_ns=stamp + 10_000_000,
               time_origin_ns=stamp, time_unit="s")
    np.testing.assert_allclose(r.points, expect, atol=1e-6)
    # uint32 ns offsets (ouster_ros ``t``), float32 points: float32 rounding only
    r32 = deskew(pts.astype(np.float32), t.astype(np.uint32), ConstantVelocity(v, w),
                 reference_time_ns=stamp + 10_000_000, time_origin_ns=stamp)
    assert r32.points.dtype == np.float32
    np.testing.assert_allclose(r32.points, expect, atol=2e-5 * 60)


def test_identity_motion_is_identity() -> None:
    rng = np.random.default_rng(6)
    pts, t = _sweep(rng, 200)
    r = deskew(pts, t, ConstantVelocity((0, 0, 0), (0, 0, 0)), reference_time_ns="start")
    np.testing.assert_allclose(r.points, pts, atol=1e-12)


def test_recovers_static_scene_seen_from_moving_sensor() -> None:
    """Physical check: a static world seen by a sensor moving at constant (v, w) is made rigid again."""
    rng = np.random.default_rng(7)
    world = rng.uniform(-40, 40, size=(2000, 3))
    t = np.sort(rng.integers(0, 100_000_000, 2000)).astype(np.int64)
    v, w = np.array([15.0, 0.5, 0.0]), np.array([0.0, 0.05, 0.8])
    meas = np.empty_like(world)
    for i in range(len(world)):  # sensor pose at t: (Exp(w t), v t) in the frame at t = 0
        R = so3_exp(w * t[i] * 1e-9)
        meas[i] = R.T @ (world[i] - v * t[i] * 1e-9)
    r = deskew(meas, t, ConstantVelocity(v, w), reference_time_ns=0)
    np.testing.assert_allclose(r.points, world, atol=1e-9)
    assert np.abs(meas - world).max() > 1.0  # the smear was real


@pytest.mark.parametrize("mode", ["gyro", "gyro+velocity", "gyro+accel"])
def test_imu_integration_matches_reference(mode: str) -> None:
    rng = np.random.default_rng(len(mode))
    use_accel = mode == "gyro+accel"
    t0 = 5_000_000_000
    stamps = t0 - 7_000_000 + np.arange(0, 140_000_000, 5_000_000, dtype=np.int64)  # 200 Hz
    gyro = np.cumsum(rng.normal(size=(len(stamps), 3)) * 0.05, axis=0) + np.array([0.1, -0.2, 0.9])
    accel = rng.normal(size=(len(stamps), 3)) * 0.5 + np.array([0.0, 0.0, 9.81])
    pts, t = _sweep(rng, 500, t0=t0, per_time=4)
    T_il = _extrinsic(rng)
    lo, hi = int(t.min()), int(t.max())
    v0 = np.array([10.0, 0.5, -0.1])
    g0 = np.array([0.05, -0.02, -9.81])
    kw = {"gyro": {}, "gyro+velocity": {"initial_velocity_mps": v0},
          "gyro+accel": {"accel_mps2": accel, "initial_velocity_mps": v0, "gravity_mps2": g0}}[mode]
    motion = integrate_imu(stamps, gyro, lo, hi, **kw)
    assert motion.origin_ns == lo and motion.window_ns == (lo, hi)
    poses = ref_imu_poses(stamps, gyro, lo, hi, accel if use_accel else None,
                          None if mode == "gyro" else v0, g0)
    for ref_ns in (lo, hi, (lo + hi) // 2 + 1234):
        res = deskew(pts, t, motion, reference_time_ns=ref_ns, T_imu_from_lidar=T_il)
        expect = ref_imu_deskew(pts, t, poses, ref_ns, T_il)
        np.testing.assert_allclose(res.points, expect, atol=1e-6, rtol=0)
    # an ImuBatch integrates the gyro over the sweep itself
    batch = ImuBatch(stamps, gyro, accel)
    res = deskew(pts, t, batch, reference_time_ns="end", T_imu_from_lidar=T_il)
    expect = ref_imu_deskew(pts, t, ref_imu_poses(stamps, gyro, lo, hi), hi, T_il)
    np.testing.assert_allclose(res.points, expect, atol=1e-6, rtol=0)


def test_imu_constant_rate_equals_constant_velocity() -> None:
    rng = np.random.default_rng(12)
    w = np.array([0.3, -0.4, 1.1])
    stamps = np.arange(-10, 121, 10, dtype=np.int64) * 1_000_000
    pts, t = _sweep(rng, 400, t0=0)
    a = deskew(pts, t, ImuBatch(stamps, np.tile(w, (len(stamps), 1)), np.zeros((len(stamps), 3))),
               reference_time_ns=50_000_000)
    b = deskew(pts, t, ConstantVelocity((0, 0, 0), w), reference_time_ns=50_000_000)
    np.testing.assert_allclose(a.points, b.points, atol=1e-9)


def test_deskewer_reuses_buffers_and_warms_up() -> None:
    rng = np.random.default_rng(13)
    d = Deskewer(capacity=1000)
    d.warmup()
    pts, t = _sweep(rng, 800)
    motion = ConstantVelocity((3, 0, 0), (0, 0, 0.3))
    r1 = d.deskew(pts, t, motion, reference_time_ns="start")
    first = r1.points.copy()
    r2 = d.deskew(pts, t, motion, reference_time_ns="start")
    assert np.shares_memory(r1.points, r2.points)
    np.testing.assert_array_equal(first, r2.points)
    assert d.reallocations == 0
    d.deskew(*_sweep(rng, 1500), motion, reference_time_ns="start")
    assert d.reallocations == 1


def test_in_place_into_structured_view() -> None:
    """``out`` may be a strided view, e.g. the x/y/z of a structured point array."""
    rng = np.random.default_rng(14)
    pts, t = _sweep(rng, 100, t0=0)
    rec = np.zeros(100, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("i", "f4"), ("t", "u4")])
    view = np.lib.stride_tricks.as_strided(rec["x"], shape=(100, 3), strides=(rec.itemsize, 4))
    view[:] = pts
    rec["t"] = t
    motion = ConstantVelocity((4, 0, 0), (0, 0, 1.0))
    expect = deskew(pts.astype(np.float32), t, motion, reference_time_ns=0).points
    Deskewer().deskew(view, rec["t"], motion, reference_time_ns=0, out=view)
    np.testing.assert_allclose(view, expect, atol=1e-5)
    assert np.all(rec["i"] == 0)


def test_motion_pose_at_matches_reference_integration() -> None:
    rng = np.random.default_rng(15)
    stamps = np.arange(0, 11, dtype=np.int64) * 10_000_000
    gyro = rng.normal(size=(11, 3))
    m = integrate_imu(stamps, gyro, 0, 100_000_000)
    _ts, Rs, *_ = ref_imu_poses(stamps, gyro, 0, 100_000_000)
    R_end, p_end = m.pose_at(100_000_000)
    np.testing.assert_allclose(R_end, Rs[-1].as_matrix(), atol=1e-12)
    np.testing.assert_allclose(p_end, 0.0)
    assert isinstance(m, Motion) and len(m.seg_t) == 10
