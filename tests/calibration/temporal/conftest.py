"""Fixtures of the temporal-calibration tests: real Husky signals and synthetic motion signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from edgefuse_calibration.temporal import Signal, signals_from_bag

from edgefuse.rig.transform import rotation_from_rpy

DATA = Path(__file__).resolve().parents[2] / "data"
HUSKY_BAG = DATA / "husky_imu_gps_odom_bag" / "test1.bag"
IMU_SPEC = "/imu/data:gyro_z"
ODOM_SPEC = "/husky_velocity_controller/odom:twist_yaw"
# base_link -> imu_link from robot_localization's launch file (see the bag's SOURCE.md):
# static_transform_publisher yaw=-pi/2 pitch=0 roll=pi/2  =>  R_base_from_imu = Rz(-90°)·Rx(90°)
R_BASE_FROM_IMU = rotation_from_rpy([90.0, 0.0, -90.0], degrees=True)

HUSKY_RIG = """edgefuse_rig: 1
base_frame: base_link
frames:
  - parent: base_link
    child: imu_link
    translation: [0.0, -0.3, 0.52]
    rotation: {rpy_deg: [90.0, 0.0, -90.0]}
sensors:
  imu: {frame_id: imu_link, topic: /imu/data, kind: imu}
  wheel_odom: {frame_id: base_link, topic: /husky_velocity_controller/odom, kind: odom}
"""


@pytest.fixture(scope="session")
def husky() -> tuple[Signal, Signal]:
    """(IMU yaw rate about base_link z, wheel-odometry yaw rate) from the real Husky bag."""
    imu, odom = signals_from_bag(HUSKY_BAG, [IMU_SPEC, ODOM_SPEC], [R_BASE_FROM_IMU, None])
    return imu, odom


def smooth_noise(rng: np.random.Generator, n: int, k: int, width: int, scale: float) -> npt.NDArray[np.float64]:
    """(n, k) band-limited random motion: white noise through a Hann window of ``width`` samples."""
    x = rng.normal(size=(n + 2 * width, k))
    h = np.hanning(width)
    h /= h.sum()
    out = np.stack([np.convolve(x[:, i], h, "same") for i in range(k)], axis=1)[width:width + n]
    scaled: npt.NDArray[np.float64] = out * scale / out.std()
    return scaled


def sample(t_s: npt.NDArray[np.float64], truth_t: npt.NDArray[np.float64],
           truth: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``truth`` (m, k) sampled at times ``t_s`` by linear interpolation."""
    return np.stack([np.interp(t_s, truth_t, truth[:, i]) for i in range(truth.shape[1])], axis=1)


def stamps(t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.round(t_s * 1e9).astype(np.int64)


@pytest.fixture
def pair_factory() -> object:
    """make(offset_s, rate_a, rate_b, duration_s, seed, noise, k) -> (a, b, true_offset_ns).

    ``b`` observes the same motion but stamps it ``offset_s`` late, so the true rig offset of b is
    ``-offset_s`` (t_a = t_b + offset)."""

    def make(offset_s: float = 0.0371, rate_a: float = 100.0, rate_b: float = 30.0,  # noqa: PLR0917
             duration_s: float = 60.0, seed: int = 0, noise: float = 0.02, k: int = 1) -> tuple[Signal, Signal, int]:
        rng = np.random.default_rng(seed)
        tt = np.arange(-5.0, duration_s + 5.0, 0.001)
        truth = smooth_noise(rng, tt.size, k, 400, 0.3)
        ta = np.arange(0.0, duration_s, 1.0 / rate_a)
        tb = np.arange(0.013, duration_s, 1.0 / rate_b)
        va = sample(ta, tt, truth) + rng.normal(scale=noise, size=(ta.size, k))
        vb = sample(tb - offset_s, tt, truth) + rng.normal(scale=noise, size=(tb.size, k))
        if k == 1:
            va, vb = va[:, 0], vb[:, 0]
        return Signal(stamps(ta), va, "a"), Signal(stamps(tb), vb, "b"), round(-offset_s * 1e9)

    return make
