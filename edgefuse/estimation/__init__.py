"""State estimation: 15-state EKF / UKF over IMU, wheel odometry and GNSS (robot_localization's model).

- :class:`Ekf`, :class:`Ukf` (:mod:`edgefuse.estimation.filter` for the shared API);
- :class:`SensorSpec`: per-sensor update selection (15 booleans), differential / relative, thresholds;
- :mod:`edgefuse.estimation.navsat`: WGS84 → ECEF → local ENU and the navsat datum;
- :mod:`edgefuse.estimation.state`: state layout and rejection reasons.
"""

from __future__ import annotations

from edgefuse.estimation.ekf import Ekf
from edgefuse.estimation.filter import StateEstimator, sensors_from_mapping
from edgefuse.estimation.navsat import Datum, ecef_from_geodetic, enu_from_geodetic, geodetic_from_ecef
from edgefuse.estimation.sensors import FixArrays, ImuArrays, OdomArrays, Rows, SensorSpec
from edgefuse.estimation.state import REASONS, STATE_NAMES
from edgefuse.estimation.ukf import Ukf

__all__ = [
    "REASONS",
    "STATE_NAMES",
    "Datum",
    "Ekf",
    "FixArrays",
    "ImuArrays",
    "OdomArrays",
    "Rows",
    "SensorSpec",
    "StateEstimator",
    "Ukf",
    "ecef_from_geodetic",
    "enu_from_geodetic",
    "geodetic_from_ecef",
    "sensors_from_mapping",
]
