"""Deskew improves the geometric consistency of the REAL moving Ouster OS-1-128 sweeps (2.46 m/s).

Nothing here is synthesized: points keep their recorded positions and column times; the motion comes
from the poses file shipped with the capture (KITTI ``T_world_from_sensor`` at each frame's middle, the
ouster-sdk convention) or from the recorded IMU gyro.  A sweep of 1024 consecutive recorded columns is
taken to start at column ``c`` (columns ``c..1023`` of frame k, then ``0..c-1`` of frame k+1: the frame
boundary is a driver convention) so that its seam — where the same surfaces are seen 100 ms apart —
faces structure instead of the flat road behind the car.  See bench/deskew_real.py for the full study.

Each check also runs the motion as a no-op (scale 0) and with the wrong sign (scale -1) and asserts
that the same criterion rejects them, so the tests would fail if deskew did nothing or moved the wrong
way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial import cKDTree

from edgefuse.fusion.deskew import Motion, deskew, integrate_imu, so3_exp

PCAPS = Path(__file__).resolve().parents[1] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
N_SIDE = 8  # columns on each side of a seam
Sweep = tuple[F64, I64, B]  # (W, H, 3) points, (W,) column times, (W, H) valid
Seam = tuple[Sweep, int, B, float]  # sweep, start column, facing-surface mask, raw median gap


def _log_so3(R: F64) -> F64:
    th = float(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)))
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return np.zeros(3) if th < 1e-12 else np.asarray(th / (2 * np.sin(th)) * axis, dtype=np.float64)


@dataclass
class Cap:
    xyz: list[F64]  # (W, H, 3) per frame, sensor frame
    tcol: list[I64]  # (W,) column times [ns]
    ok: list[B]  # (W, H) valid, 1.5-40 m
    mids: list[int]  # frame middles [ns]: the poses' times
    T: F64  # (3, 4, 4) T_world_from_sensor
    imu_t: I64
    gyro: F64
    T_imu_from_sensor: F64


@pytest.fixture(scope="module")
def cap() -> Cap:
    from edgefuse_drivers.ouster import OusterPcap, xyz_lut

    src = OusterPcap(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", PCAPS / "OS-1-128_v2.3.0_1024x10.json")
    lut = xyz_lut(src.info)
    W, H = src.info.columns_per_frame, src.info.pixels_per_column
    xyz, tcol, ok, mids = [], [], [], []
    for sc in src.scans():
        p, _t, v = sc.xyz(lut)
        r = np.linalg.norm(p, axis=1)
        xyz.append(p.reshape(W, H, 3))
        ok.append((v & (r > 1.5) & (r < 40.0)).reshape(W, H))
        tc = sc.timestamp_ns.astype(np.int64)
        tcol.append(tc)
        mids.append(int((tc[sc.column_valid].min() + tc[sc.column_valid].max()) // 2))
    poses = np.loadtxt(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt").reshape(-1, 3, 4)
    imu = src.imu_batch()
    return Cap(xyz, tcol, ok, mids, np.array([np.vstack([p, [0, 0, 0, 1.0]]) for p in poses]),
               np.asarray(imu.stamps_ns, np.int64), np.asarray(imu.angular_velocity, np.float64),
               np.asarray(np.linalg.inv(src.info.T_sensor_from_imu), np.float64))


def _rel(cap: Cap, k: int) -> tuple[F64, F64, float]:
    """Body-frame (v, w, dt) of the pose segment k -> k+1."""
    dt = (cap.mids[k + 1] - cap.mids[k]) * 1e-9
    rel = np.linalg.inv(cap.T[k]) @ cap.T[k + 1]
    return rel[:3, 3] / dt, _log_so3(rel[:3, :3]) / dt, dt


def _pose_motion(cap: Cap, scale: float) -> Motion:
    """Piecewise constant velocity through the 3 poses (exact at the frame middles), times ``scale``."""
    R, p, v, w = [np.eye(3)], [np.zeros(3)], [], []
    for k in range(len(cap.mids) - 1):
        vb, wb, dt = _rel(cap, k)
        vb, wb = vb * scale, wb * scale
        v.append(R[k] @ vb)
        w.append(wb)
        R.append(R[k] @ so3_exp(wb * dt))
        p.append(p[k] + R[k] @ vb * dt)
    seg_t = (np.array(cap.mids[:-1]) - cap.mids[0]) * 1e-9
    return Motion(cap.mids[0], seg_t.astype(np.float64), np.array(R[:-1]), np.array(p[:-1]), np.array(v),
                  np.array(w), np.zeros((len(v), 3)), (-np.inf, np.inf))


def _sweep(cap: Cap, frame: int, start: int) -> Sweep:
    late = np.arange(cap.xyz[0].shape[0]) < start
    if start == 0:
        return cap.xyz[frame], cap.tcol[frame], cap.ok[frame]
    return (np.where(late[:, None, None], cap.xyz[frame + 1], cap.xyz[frame]),
            np.where(late, cap.tcol[frame + 1], cap.tcol[frame]),
            np.where(late[:, None], cap.ok[frame + 1], cap.ok[frame]))


def _deskewed(cap: Cap, sw: Sweep, variant: str, scale: float = 1.0) -> F64:
    """The sweep (W, H, 3) in the sensor frame at its middle time."""
    xyz, t, _ok = sw
    W, H, _ = xyz.shape
    ref = int((t.min() + t.max()) // 2)
    tt = np.repeat(t, H)
    if variant == "poses":
        out = deskew(xyz.reshape(-1, 3), tt, _pose_motion(cap, scale), reference_time_ns=ref).points
    else:  # IMU gyro + the poses' linear velocity
        k = min(int(np.searchsorted(cap.mids, ref, side="right")) - 1, len(cap.mids) - 2)
        lo, hi = max(int(t.min()), int(cap.imu_t[0])), min(int(t.max()), int(cap.imu_t[-1]))
        mot = integrate_imu(cap.imu_t, cap.gyro * scale, lo, hi,
                            initial_velocity_mps=cap.T_imu_from_sensor[:3, :3] @ _rel(cap, k)[0] * scale)
        out = deskew(xyz.reshape(-1, 3), tt, mot, reference_time_ns=ref, T_imu_from_lidar=cap.T_imu_from_sensor,
                     outside="extrapolate", max_extrapolation_ns=30_000_000).points
    return np.asarray(out, dtype=np.float64).reshape(W, H, 3)


def _plane_dist(target: F64, query: F64, k: int = 12, radius: float = 1.0) -> tuple[F64, F64]:
    """Distance of each query point to the local plane (k-NN PCA) of ``target``, and that plane's
    normal; NaN where the neighbourhood is missing or not a thin plane."""
    d = np.full(len(query), np.nan)
    nrm = np.full((len(query), 3), np.nan)
    dist, idx = cKDTree(target).query(query, k=k, distance_upper_bound=radius)
    full = np.flatnonzero(np.isfinite(dist[:, -1]))
    if len(full) == 0:
        return d, nrm
    nb = target[idx[full]]
    c = nb.mean(axis=1)
    q = nb - c[:, None]
    ev, evec = np.linalg.eigh(np.einsum("mki,mkj->mij", q, q) / (k - 1))
    good = (ev[:, 0] <= 0.02 * ev.sum(axis=1)) & (ev[:, 1] >= 0.01)
    n0 = evec[good, :, 0]
    nrm[full[good]] = n0
    d[full[good]] = np.abs(np.einsum("mi,mi->m", query[full[good]] - c[good], n0))
    return d, nrm


def _seam_sides(grid: F64, ok: B, start: int) -> tuple[F64, F64]:
    W = grid.shape[0]
    cs, ce = (start + np.arange(N_SIDE)) % W, (start - 1 - np.arange(N_SIDE)) % W
    return grid[cs][ok[cs]], grid[ce][ok[ce]]


SEAMS = [(f, c) for f in (0, 1) for c in range(0, 1024, 32)]


@pytest.fixture(scope="module")
def facing_seams(cap: Cap) -> list[Seam]:
    """Seams with ≥ 10 end-side points on vertical surfaces facing the motion (normals from the raw
    sweep), each with its raw median gap."""
    v, _w, _dt = _rel(cap, 0)
    vhat = v / np.linalg.norm(v)
    out = []
    for frame, c in SEAMS:
        sw = _sweep(cap, frame, c)
        s, e = _seam_sides(sw[0], sw[2], c)
        d, n = _plane_dist(s, e)
        facing = (np.abs(n[:, 2]) < 0.3) & (np.abs(n @ vhat) > 0.7)
        if facing.sum() >= 10:
            out.append((sw, c, facing, float(np.nanmedian(d[facing]))))
    return out


def _seam_gaps(cap: Cap, seams: list[Seam], variant: str,
               scale: float) -> tuple[F64, F64]:
    raw, after = [], []
    for sw, c, facing, raw_gap in seams:
        s, e = _seam_sides(_deskewed(cap, sw, variant, scale), sw[2], c)
        d = _plane_dist(s, e)[0][facing]
        if np.isfinite(d).any():
            raw.append(raw_gap)
            after.append(float(np.nanmedian(d)))
    return np.array(raw), np.array(after)


def _seams_improved(raw: F64, after: F64) -> bool:
    """The acceptance criterion: the median seam gap at most 40 % of the raw one, below 8 cm, and
    at least 85 % of the seams better."""
    return bool(np.median(after) < 0.4 * np.median(raw) and np.median(after) < 0.08
                and np.mean(after < raw) >= 0.85)


def test_raw_seam_gap_is_the_motion_over_one_sweep(cap: Cap, facing_seams: list[Seam]) -> None:
    """Before deskew, surfaces facing the motion are split by ≈ |v|·100 ms at the seam (real data)."""
    assert len(facing_seams) >= 15
    speed = float(np.linalg.norm(_rel(cap, 0)[0]))
    assert 2.3 < speed < 2.6
    raw = np.array([g for *_x, g in facing_seams])
    assert 0.6 * speed * 0.1 < np.median(raw) < 1.3 * speed * 0.1


@pytest.mark.parametrize("variant", ["poses", "imu"])
def test_deskew_closes_real_seams(cap: Cap, facing_seams: list[Seam],
                                  variant: str) -> None:
    """Deskewed (poses' constant velocity, or IMU gyro + velocity), the seams close: the criterion
    holds, and it rejects the same deskew as a no-op (scale 0) or with the wrong sign (scale -1)."""
    raw, after = _seam_gaps(cap, facing_seams, variant, 1.0)
    assert _seams_improved(raw, after), (np.median(raw), np.median(after), np.mean(after < raw))
    raw0, noop = _seam_gaps(cap, facing_seams, variant, 0.0)
    np.testing.assert_allclose(noop, raw0, atol=1e-9)  # scale 0 is exactly the raw sweep
    assert not _seams_improved(raw0, noop)
    rawn, neg = _seam_gaps(cap, facing_seams, variant, -1.0)
    assert not _seams_improved(rawn, neg)
    assert np.median(neg) > 1.5 * np.median(rawn)  # the wrong sign doubles the gap


def test_data_picks_the_poses_motion(cap: Cap, facing_seams: list[Seam]) -> None:
    """Scanning the motion scale, the seams are most consistent near the poses' motion (scale 1)."""
    seams = facing_seams[::2]
    scales = np.array([0.5, 0.75, 1.0, 1.25, 1.5])
    gap = np.array([np.median(_seam_gaps(cap, seams, "poses", float(s))[1]) for s in scales])
    assert int(np.argmin(gap)) == 2
    a, b, _c = np.polyfit(scales[1:4], gap[1:4], 2)
    assert a > 0 and 0.85 < -b / (2 * a) < 1.2


def _scan_to_scan(cap: Cap, a: Sweep, b: Sweep, variant: str | None,
                  scale: float = 1.0) -> float:
    """Median point-to-plane residual of sweep b against sweep a at the poses file's relative pose
    (every 5th point, residuals within 0.3 m)."""
    mot = _pose_motion(cap, 1.0)

    def pose(t: I64) -> F64:
        R, p = mot.pose_at(int((t.min() + t.max()) // 2))
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, p
        return T

    T_ab = np.linalg.inv(pose(a[1])) @ pose(b[1])
    ga = a[0] if variant is None else _deskewed(cap, a, variant, scale)
    gb = b[0] if variant is None else _deskewed(cap, b, variant, scale)
    pb = gb[b[2]][::5] @ T_ab[:3, :3].T + T_ab[:3, 3]
    d = _plane_dist(ga[a[2]], pb, k=10, radius=0.5)[0]
    return float(np.median(d[d < 0.3]))


def test_scan_to_scan_phase_shifted_pair(cap: Cap) -> None:
    """Recorded frame 0 against the sweep of frames 1–2 starting at column 512 (the opposite seam: the
    two sweeps are distorted differently): at the poses file's relative pose the point-to-plane
    residual drops with deskew, and rises with the wrong sign."""
    a, b = _sweep(cap, 0, 0), _sweep(cap, 1, 512)
    raw = _scan_to_scan(cap, a, b, None)
    fixed = _scan_to_scan(cap, a, b, "poses")
    neg = _scan_to_scan(cap, a, b, "poses", -1.0)
    assert fixed < 0.85 * raw, (raw, fixed)
    assert neg > 1.1 * raw, (raw, neg)


def test_scan_to_scan_recorded_pair_is_insensitive(cap: Cap) -> None:
    """Documented limit of this capture: two consecutive *recorded* frames at constant velocity are
    distorted alike (each azimuth is taken at the same time offset), so deskew barely changes their
    mutual consistency (within 10 %); the evidence has to come from the seams."""
    a, b = _sweep(cap, 0, 0), _sweep(cap, 1, 0)
    raw = _scan_to_scan(cap, a, b, None)
    fixed = _scan_to_scan(cap, a, b, "poses")
    assert 0.9 * raw < fixed < 1.1 * raw
