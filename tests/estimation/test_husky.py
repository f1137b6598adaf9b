"""The real Husky bag (robot_localization's test1.bag, shipped as edgefuse/data/husky/test1.bag).

robot_localization's regression test for this bag (test_ekf_localization_node_bag1.test: odometry
vx, vy, vz + IMU roll, pitch, yaw, vroll, vpitch, ax, ay, az with gravity removed, the bag's process
noise) expects the final position (-40.0454, -76.9988, -2.6974) within 1.0452 m: an independent
reference for our EKF and UKF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefuse.estimation import Ekf, SensorSpec, Ukf
from edgefuse.estimation.filter import StateEstimator
from edgefuse.estimation.offline import load_streams, run_streams
from edgefuse.rig import load_rig

ROOT = Path(__file__).resolve().parents[2]
BAG = ROOT / "edgefuse" / "data" / "husky" / "test1.bag"
RIG = ROOT / "edgefuse" / "data" / "husky" / "rig.yaml"
RL_FINAL = np.array([-40.0454, -76.9988, -2.6974])
RL_TOL = 1.0452
Q = [0.05, 0.05, 0.06, 0.03, 0.03, 0.06, 0.025, 0.025, 0.04, 0.01, 0.01, 0.02, 0.01, 0.01, 0.015]
SENSORS = [
    SensorSpec("imu0", "imu", ["roll", "pitch", "yaw", "vroll", "vpitch", "ax", "ay", "az"],
               remove_gravitational_acceleration=True),
    SensorSpec("odom0", "odom", ["vx", "vy", "vz"]),
]


@pytest.fixture(scope="module")
def streams() -> dict[str, object]:
    return load_streams(BAG, {"imu0": "/imu/data", "odom0": "/husky_velocity_controller/odom"})  # type: ignore[return-value]


def test_husky_imu_mounting_gives_level_orientation() -> None:
    rig = load_rig(RIG)
    R_bi = rig.transform("base_link", "imu_link").R
    # the bag's first IMU sample: gravity reaction along the IMU's +y becomes the base's +z
    a_imu = np.array([0.54276156, 9.60821943, 0.20593104])
    a_base = R_bi @ a_imu
    assert a_base[2] > 9.5 and abs(a_base[0]) < 0.3 and abs(a_base[1]) < 0.6


@pytest.mark.parametrize("cls", [Ekf, Ukf])
def test_husky_final_position_matches_robot_localization(cls: type[StateEstimator], streams: dict) -> None:  # type: ignore[type-arg]
    est = cls(SENSORS, rig=load_rig(RIG), process_noise=Q)
    out = run_streams(est, streams, keep_states=False)
    d = float(np.linalg.norm(est.x[:3] - RL_FINAL))
    assert d < RL_TOL, f"final {est.x[:3]} is {d:.3f} m from robot_localization's {RL_FINAL}"
    assert d < 0.5  # measured 0.24 m (EKF) / 0.25 m (UKF)
    assert est.replayed > 0  # the IMU arrives ~26 ms after its stamp: rows were inserted and replayed
    assert est.rejection_totals() == {}
    assert est.healthy()
    assert int((out["status"] != 0).sum()) == 0
