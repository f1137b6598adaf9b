"""Real recordings: Husky IMU↔wheel-odometry offset (with injected offsets) and EuRoC camera↔IMU."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from edgefuse_calibration.temporal import Signal, Verdict, estimate_time_offset, inject_offset
from edgefuse_calibration.temporal.visual import camera_rotation_rate

from .conftest import DATA

INJECTED_MS = [20, -20, 50, -50, 137, -137]
# the goal: max(2 ms, a tenth of the slower stream's period); odometry runs at 10 Hz -> 10 ms
TOLERANCE_NS = 10_000_000


def numpy_reference_offset_ns(a: Signal, b: Signal, dt_s: float = 0.005, max_lag_s: float = 1.0) -> float:
    """Independent check: both signals linearly resampled at ``dt_s`` on their overlap, plain Pearson
    correlation at every integer lag (numpy slicing), best lag in ns (``t_a = t_b + offset``)."""
    t0 = max(a.stamps_ns[0], b.stamps_ns[0]) / 1e9
    t1 = min(a.stamps_ns[-1], b.stamps_ns[-1]) / 1e9
    t = np.arange(t0, t1, dt_s)
    xa = np.interp(t, a.stamps_ns / 1e9, a.values)
    xb = np.interp(t, b.stamps_ns / 1e9, b.values)
    L = int(max_lag_s / dt_s)
    best, best_lag = -2.0, 0
    for lag in range(-L, L + 1):
        u = xa[max(0, lag):xa.size + min(0, lag)]
        v = xb[max(0, -lag):xb.size - max(0, lag)]
        r = float(np.corrcoef(u, v)[0, 1])
        if r > best:
            best, best_lag = r, lag
    return best_lag * dt_s * 1e9


def test_husky_offset_agrees_with_numpy_reference(husky: tuple[Signal, Signal]) -> None:
    imu, odom = husky
    ref = numpy_reference_offset_ns(imu, odom)
    for method in ("xcorr", "dtw"):
        est = estimate_time_offset(imu, odom, method=method)
        assert est.verdict is Verdict.OK, est.diagnostics
        assert est.offset_ns is not None and est.uncertainty_ns is not None
        # measured on this bag: about -390 ms (odometry stamps lag the IMU), sigma about 5-8 ms
        assert -420e6 < est.offset_ns < -360e6
        assert est.uncertainty_ns < 20e6
        assert abs(est.offset_ns - ref) < 15e6


@pytest.mark.parametrize("method", ["xcorr", "dtw"])
def test_husky_injected_offsets_recovered(husky: tuple[Signal, Signal], method: str) -> None:
    imu, odom = husky
    base = estimate_time_offset(imu, odom, method=method)
    assert base.ok and base.offset_ns is not None
    for ms in INJECTED_MS:
        est = estimate_time_offset(imu, inject_offset(odom, ms * 1_000_000), method=method)
        assert est.ok and est.offset_ns is not None, (ms, est.diagnostics)
        assert abs(est.offset_ns - base.offset_ns - ms * 1_000_000) <= TOLERANCE_NS, (ms, est.offset_ns)


def test_husky_injected_offsets_on_thinned_odometry(husky: tuple[Signal, Signal]) -> None:
    """The same goal when the injected shift is not a multiple of anything: odometry thinned to 5 Hz
    and shifted by odd amounts, NaN holes added."""
    imu, odom = husky
    thin = Signal(odom.stamps_ns[::2], odom.values[::2].copy(), "odom5hz")
    thin.values[300:320] = np.nan
    base = estimate_time_offset(imu, thin)
    assert base.ok and base.offset_ns is not None
    for ms in (13.7, -71.3):
        est = estimate_time_offset(imu, inject_offset(thin, int(ms * 1e6)))
        assert est.ok and est.offset_ns is not None
        assert abs(est.offset_ns - base.offset_ns - ms * 1e6) <= 20_000_000  # tenth of 200 ms


def test_husky_unrotated_imu_axis_is_refused() -> None:
    """The IMU is mounted rotated: its own z axis sees almost no yaw, and the tool says so."""
    from edgefuse_calibration.temporal import signals_from_bag

    from .conftest import HUSKY_BAG, IMU_SPEC, ODOM_SPEC

    imu_raw, odom = signals_from_bag(HUSKY_BAG, [IMU_SPEC, ODOM_SPEC])
    est = estimate_time_offset(imu_raw, odom)
    assert not est.ok and est.offset_ns is None


def _euroc() -> tuple[Signal, Signal]:
    root = DATA / "euroc_v101_micro"
    imu = np.loadtxt(root / "MicroEurocDataset/mav0/imu0/data_first1000.csv", delimiter=",", comments="#")
    gyro = Signal(imu[:, 0].astype(np.int64), imu[:, 1:4], "imu0_gyro", "rad/s")
    with open(root / "derived_cam0_rotation_rate.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if not r[0].startswith("#")]
    cam = Signal(np.array([int(r[0]) for r in rows]), np.array([[float(x) for x in r[1:4]] for r in rows]),
                 "cam0_rotation_rate", "rad/s")
    return gyro, cam


def test_euroc_camera_rate_reproduced_from_real_frames() -> None:
    import cv2

    root = DATA / "euroc_v101_micro/MicroEurocDataset/mav0/cam0"
    names = ["1403715275012143104", "1403715275062142976", "1403715275112143104"]
    K = np.array([[458.654, 0, 367.215], [0, 457.296, 248.375], [0, 0, 1]])
    D = np.array([-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05, 0.0])
    frames = [np.asarray(cv2.imread(str(root / "data" / f"{n}.png"), cv2.IMREAD_GRAYSCALE), dtype=np.uint8)
              for n in names]
    sig, info = camera_rotation_rate(np.array([int(n) for n in names]), frames, K, D)
    assert all(i["inliers"] >= 30 for i in info)
    _, cam = _euroc()
    rows = np.searchsorted(cam.stamps_ns, sig.stamps_ns)
    assert np.array_equal(cam.stamps_ns[rows], sig.stamps_ns)
    np.testing.assert_allclose(sig.values, cam.values[rows], atol=1e-9)


def test_euroc_micro_camera_imu_has_insufficient_excitation() -> None:
    """The 4.7 s camera window is the take-off phase: the camera barely rotates (< 0.031 rad/s), the
    gyro shows mostly its bias.  The honest answer is a refusal, for every method."""
    gyro, cam = _euroc()
    assert np.nanmax(np.abs(cam.values)) < 0.05
    for method, a, b in (("cca", gyro, cam),
                         ("xcorr", Signal(gyro.stamps_ns, np.linalg.norm(gyro.values, axis=1), "g"),
                          Signal(cam.stamps_ns, np.linalg.norm(cam.values, axis=1), "c"))):
        est = estimate_time_offset(a, b, method=method, max_lag_ns=200_000_000)
        assert est.verdict is Verdict.INSUFFICIENT_EXCITATION, (method, est.diagnostics)
        assert est.offset_ns is None
