"""The 15-state unscented Kalman filter (ukf_localization_node's behaviour).

Prediction pushes 2·15+1 scaled sigma points (``alpha``, ``beta``, ``kappa``; robot_localization's
defaults 0.001, 2, 0) through the same motion model as the EKF, with angle-aware means.  Every
measurement is a linear selection of the state once expressed in the filter frames (gravity and the
GNSS lever arm use the current orientation as known), so the unscented update is exactly the Kalman
update and both filters share it.
"""

from __future__ import annotations

from edgefuse.estimation.filter import StateEstimator


class Ukf(StateEstimator):
    """Unscented Kalman filter; constructor arguments as :class:`~edgefuse.estimation.filter.StateEstimator`
    (``alpha``, ``beta``, ``kappa`` set the sigma-point spread)."""

    mode = 1
    kind = "ukf"


__all__ = ["Ukf"]
