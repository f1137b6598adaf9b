"""Filter front end: bad input is rejected with a counted reason and the filter stays healthy;
out-of-order rows are replayed; streaming equals batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefuse.errors import ConfigError
from edgefuse.estimation import Ekf, SensorSpec, Ukf
from edgefuse.estimation.filter import StateEstimator
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData

S = 1_000_000_000


def odom(t_ns: int, vx: float = 1.0, cov: float = 0.01) -> OdometryData:
    return OdometryData(t_ns, "odom", "base_link", np.zeros(3), np.array([0, 0, 0, 1.0]), np.eye(6) * cov,
                        np.array([vx, 0, 0.0]), np.zeros(3), np.eye(6) * cov)


def imu(t_ns: int, yaw: float = 0.0) -> ImuData:
    q = np.array([0, 0, math.sin(yaw / 2), math.cos(yaw / 2)])
    return ImuData(t_ns, "base_link", q, np.eye(3) * 1e-3, np.zeros(3), np.eye(3) * 1e-4,
                   np.array([0, 0, 9.80665]), np.eye(3) * 1e-2)


def fix(t_ns: int, north_m: float = 0.0, status: int = 0) -> NavSatFixData:
    return NavSatFixData(t_ns, "base_link", status, 1, 42.0 + north_m / 111_000.0, -71.0, 10.0,
                         np.eye(3) * 0.5, 2)


def make(cls: type[StateEstimator] = Ekf, **kw: object) -> StateEstimator:
    sensors = [
        SensorSpec("odom0", "odom", ["vx", "vy", "vz"]),
        SensorSpec("imu0", "imu", ["roll", "pitch", "yaw", "vyaw", "ax", "ay", "az"],
                   remove_gravitational_acceleration=True),
        SensorSpec("gnss0", "gnss", ["x", "y"]),
    ]
    est = cls(sensors, **kw)  # type: ignore[arg-type]
    est.warmup()
    return est


def drive(est: StateEstimator, seconds: float = 2.0, start_ns: int = 0) -> None:
    for k in range(int(seconds * 10)):
        t = start_ns + k * (S // 10)
        est.add("odom0", odom(t))
        est.add("imu0", imu(t + S // 20))


def test_clean_drive_moves_forward() -> None:
    est = make(initial_covariance=[1.0] * 15)
    drive(est, 2.0)
    # 1 m/s from the first odometry at t=0 to the last IMU at 1.95 s
    assert est.x[0] == pytest.approx(1.95, abs=0.05)
    assert est.x[6] == pytest.approx(1.0, abs=0.01)
    assert est.rejection_totals() == {}
    assert est.healthy()
    od = est.odometry()
    assert od.frame_id == "odom" and od.child_frame_id == "base_link"
    assert od.pose_covariance.shape == (6, 6) and od.pose_covariance[0, 0] > 0


def test_nan_covariance_rejected() -> None:
    est = make()
    drive(est, 1.0)
    bad = odom(2 * S)
    bad.twist_covariance[0, 0] = np.nan
    before = est.x.copy()
    st = est.add("odom0", bad)
    assert est.rejected["odom0"] == {"nan": 1}
    assert st.tolist() == [7]
    assert np.array_equal(est.x, before) and est.healthy()
    bad_val = odom(3 * S, vx=np.nan)
    est.add("odom0", bad_val)
    assert est.rejected["odom0"] == {"nan": 2}
    drive(est, 1.0, start_ns=4 * S)
    assert est.healthy()


def test_non_psd_covariance_rejected() -> None:
    est = make()
    drive(est, 1.0)
    neg = odom(2 * S)
    neg.twist_covariance[0, 0] = -0.5
    est.add("odom0", neg)
    asym = odom(3 * S)
    asym.twist_covariance[0, 1] = 0.3  # not symmetric
    est.add("odom0", asym)
    indefinite = odom(4 * S)
    indefinite.twist_covariance[0, 1] = indefinite.twist_covariance[1, 0] = 0.5  # |offdiag| > variances
    est.add("odom0", indefinite)
    assert est.rejected["odom0"] == {"not_psd": 3}
    assert est.healthy()
    # zero covariance (sensors publish zeros) is accepted with a floor
    est.add("odom0", odom(5 * S, cov=0.0))
    assert est.rejected["odom0"] == {"not_psd": 3} and est.healthy()


def test_out_of_order_and_duplicate_within_a_sensor() -> None:
    est = make()
    drive(est, 1.0)
    t_last = est.stamp_ns
    assert t_last is not None
    est.add("odom0", odom(int(0.9 * S)))  # same stamp as the previous odometry
    est.add("odom0", odom(int(0.5 * S)))  # older than the previous odometry
    assert est.rejected["odom0"] == {"duplicate": 1, "out_of_order": 1}
    assert est.healthy()


def test_older_than_history_rejected_and_no_history_mode() -> None:
    est = make(history_length_s=0.5)
    drive(est, 3.0)
    st = est.add("gnss0", fix(int(1.0 * S)))  # 2 s older than the filter time
    assert st.tolist() == [5] and est.rejected["gnss0"] == {"too_old": 1}
    est0 = make(history_length_s=0.0)
    drive(est0, 1.0)
    est0.add("gnss0", fix(int(0.92 * S)))
    assert est0.rejected["gnss0"] == {"too_old": 1}
    assert est.healthy() and est0.healthy()


def test_cross_sensor_lag_is_replayed_and_equals_in_order() -> None:
    rng = np.random.default_rng(7)
    msgs: list[tuple[str, int, object]] = []
    for k in range(40):
        t = k * (S // 10)
        msgs.append(("odom0", t, odom(t, vx=1.0 + 0.1 * rng.normal())))
        msgs.append(("imu0", t + S // 30, imu(t + S // 30, yaw=0.05 * k)))
    in_order = make()
    for name, _, m in sorted(msgs, key=lambda it: it[1]):
        in_order.add(name, m)
    late = make()
    # the IMU arrives 80 ms after its stamp: behind the next odometry
    arrival = sorted(msgs, key=lambda it: it[1] + (80_000_000 if it[0] == "imu0" else 0))
    for name, _, m in arrival:
        late.add(name, m)
    assert late.replayed > 0
    assert late.rejection_totals() == {}
    np.testing.assert_allclose(late.x, in_order.x, atol=1e-9)
    np.testing.assert_allclose(late.P, in_order.P, atol=1e-12)


def test_future_measurements_rejected_then_time_jump_accepted() -> None:
    est = make(max_future_s=2.0, future_reset_count=3)
    drive(est, 1.0)
    far = 3600 * S
    est.add("odom0", odom(far))
    est.add("odom0", odom(far + S // 10))
    assert est.rejected["odom0"] == {"future": 2}
    assert est.stamp_ns is not None and est.stamp_ns < 2 * S
    est.add("odom0", odom(far + 2 * S // 10))  # third in a row: the clock really jumped
    assert est.time_jumps == 1 and est.stamp_ns == far + 2 * S // 10
    assert est.healthy()


def test_gnss_without_fix_rejected_and_datum_from_first_fix() -> None:
    est = make()
    drive(est, 1.0)
    est.add("gnss0", fix(int(1.0 * S), status=-1))
    assert est.rejected["gnss0"] == {"no_fix": 1}
    assert est.datum is None
    est.add("gnss0", fix(int(1.05 * S), north_m=0.0))
    assert est.datum is not None and est.datum.latitude_deg == 42.0
    for k in range(20):  # fixes 5 m north of the datum pull the estimate north (world yaw = ENU here)
        t = int(1.1 * S) + k * S // 10
        est.add("gnss0", fix(t, north_m=5.0))
    assert est.x[1] > 2.0
    assert est.healthy()


def test_zero_time_step_across_sensors_is_fine() -> None:
    est = make()
    est.add("odom0", odom(S))
    est.add("imu0", imu(S))  # same stamp, another sensor: dt = 0, no prediction
    assert est.rejection_totals() == {} and est.stamp_ns == S


def test_unknown_frame_counted() -> None:
    est = make()
    m = imu(S)
    m.frame_id = "somewhere"
    est.add("imu0", m)
    assert est.rejected["imu0"].get("unknown_frame", 0) == 3  # orientation, angular velocity, acceleration
    assert est.healthy()


def test_mahalanobis_threshold_counts() -> None:
    sensors = [SensorSpec("odom0", "odom", ["vx"], twist_rejection_threshold=2.0)]
    est = Ekf(sensors, initial_covariance=[0.01] * 15)
    est.add("odom0", odom(S, vx=0.0))
    est.add("odom0", odom(S + S // 100, vx=50.0))
    assert est.rejected["odom0"] == {"mahalanobis": 1}
    assert abs(est.x[6]) < 0.1


def test_streaming_equals_batch_and_ukf_runs() -> None:
    from edgefuse.estimation.offline import Stream, build_rows
    from edgefuse.estimation.sensors import ImuArrays, OdomArrays

    odoms = [odom(k * S // 10, vx=1.0) for k in range(30)]
    imus = [imu(k * S // 10 + S // 20, yaw=0.02 * k) for k in range(30)]
    for cls in (Ekf, Ukf):
        a = make(cls)
        for o, i in zip(odoms, imus, strict=True):
            a.add("odom0", o)
            a.add("imu0", i)
        b = make(cls)
        streams = {"odom0": Stream(OdomArrays.from_payloads(odoms), np.arange(0, 60, 2)),
                   "imu0": Stream(ImuArrays.from_payloads(imus), np.arange(1, 60, 2))}
        b.run(build_rows(b, streams))
        np.testing.assert_allclose(a.x, b.x, atol=1e-12)
        np.testing.assert_allclose(a.P, b.P, atol=1e-12)
        assert a.healthy()


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="15 booleans"):
        SensorSpec("x", "odom", [True, False])
    with pytest.raises(ConfigError, match="unknown state"):
        SensorSpec("x", "odom", ["vq"])
    with pytest.raises(ConfigError, match="GNSS"):
        SensorSpec("x", "gnss", ["yaw"])
    with pytest.raises(ConfigError, match="kind"):
        SensorSpec("x", "lidar", ["x"])
    with pytest.raises(ConfigError, match="positive semi-definite"):
        Ekf([SensorSpec("o", "odom", ["vx"])], process_noise=[-1.0] * 15)
    with pytest.raises(ConfigError, match="unique"):
        Ekf([SensorSpec("o", "odom", ["vx"]), SensorSpec("o", "odom", ["vy"])])
