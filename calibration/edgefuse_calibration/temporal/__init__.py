"""Temporal alignment: time offsets between sensor streams from a shared motion signal.

Methods: normalised cross-correlation (:func:`estimate_offset_xcorr`), DTW constrained to offset +
linear drift (:func:`estimate_offset_dtw`, with the DTW primitives :func:`dtw_distance`,
:func:`dtw_path`, :func:`dtw_subsequence`, :func:`dtw_offset_drift`) and lagged CCA for multivariate
streams (:func:`estimate_offset_cca`).  Every estimate is an :class:`OffsetEstimate` with an
uncertainty and a :class:`Verdict`.  Motion signals come from bags (:func:`signals_from_bag`), camera
frames (:func:`camera_rotation_rate`), LiDAR scans (:func:`lidar_rotation_rate`) or orientation
streams (:func:`rotation_rate_from_orientations`); :class:`OnlineOffsetEstimator` re-estimates over a sliding
window and flags drift.  Convention: ``t_a = t_b + offset_ns`` (the rig's ``time_offset_ns`` of b
when a is the reference clock).
"""

from __future__ import annotations

from edgefuse_calibration.temporal.cca import canonical_correlations, estimate_offset_cca
from edgefuse_calibration.temporal.dtw import (
    LineWarp,
    dtw_distance,
    dtw_line_cost,
    dtw_offset_drift,
    dtw_path,
    dtw_subsequence,
    estimate_offset_dtw,
)
from edgefuse_calibration.temporal.estimate import METHODS, estimate_time_offset
from edgefuse_calibration.temporal.online import OnlineOffsetEstimator, OnlineUpdate
from edgefuse_calibration.temporal.signals import (
    inject_offset,
    parse_spec,
    rotation_rate_from_orientations,
    rotation_rate_from_rotations,
    signals_from_bag,
)
from edgefuse_calibration.temporal.types import OffsetEstimate, Signal, Verdict
from edgefuse_calibration.temporal.visual import camera_rotation_rate, lidar_rotation_rate
from edgefuse_calibration.temporal.xcorr import estimate_offset_xcorr

__all__ = [
    "METHODS",
    "LineWarp",
    "OffsetEstimate",
    "OnlineOffsetEstimator",
    "OnlineUpdate",
    "Signal",
    "Verdict",
    "camera_rotation_rate",
    "canonical_correlations",
    "dtw_distance",
    "dtw_line_cost",
    "dtw_offset_drift",
    "dtw_path",
    "dtw_subsequence",
    "estimate_offset_cca",
    "estimate_offset_dtw",
    "estimate_offset_xcorr",
    "estimate_time_offset",
    "inject_offset",
    "lidar_rotation_rate",
    "parse_spec",
    "rotation_rate_from_orientations",
    "rotation_rate_from_rotations",
    "signals_from_bag",
]
