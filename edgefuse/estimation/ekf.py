"""The 15-state extended Kalman filter (ekf_localization_node's behaviour; model in ``_kernels.py``)."""

from __future__ import annotations

from edgefuse.estimation.filter import StateEstimator


class Ekf(StateEstimator):
    """Extended Kalman filter: linearised prediction (analytic Jacobian), updates ``P − K·S·Kᵀ``
    (symmetrised; a non-finite result or a negative variance rejects the update as ``numerical``).

    Constructor arguments: :class:`~edgefuse.estimation.filter.StateEstimator`.
    """

    mode = 0
    kind = "ekf"


__all__ = ["Ekf"]
