"""Output-level fusion: detections, association, box / estimate fusion, multi-object tracking, Kalman
filters (linear, and batch EKF / UKF over a user's Numba model), metrics.

Edge types for pipelines: ``Detections2D``, ``Detections3D``, ``Tracks`` (:mod:`edgefuse.objects.types`);
vision_msgs conversions in :mod:`edgefuse.objects.msgs`.
"""

from __future__ import annotations

from edgefuse.objects.association import (
    AssociationError,
    assign,
    associate_camera,
    associate_frames,
    bev_iou,
    box_corners_3d,
    center_distance,
    iou_2d,
    linear_sum_assignment,
    mahalanobis_sq,
    project_boxes_3d,
)
from edgefuse.objects.boxfusion import (
    FusionError,
    FusionResult,
    covariance_intersection,
    fuse_class_scores,
    inverse_covariance_fusion,
    nms,
    soft_nms,
    weighted_boxes_fusion,
    weighted_boxes_fusion_3d,
)
from edgefuse.objects.kalman import FilterError, KalmanFilter, KalmanRun, constant_velocity_model
from edgefuse.objects.metrics import ClearMot, Hota, clear_mot, distance_similarity, hota
from edgefuse.objects.nonlinear import BatchEKF, BatchUKF, NonlinearRun, angle_mean, angle_residual, wrap_angle
from edgefuse.objects.tracker import MultiObjectTracker, TrackerConfig
from edgefuse.objects.types import (
    COASTING,
    CONFIRMED,
    DET2D_DTYPE,
    DET3D_DTYPE,
    TENTATIVE,
    TRACK_DTYPE,
    Detections2D,
    Detections3D,
    Tracks,
    detections_2d,
    detections_3d,
    sanitize_2d,
    sanitize_3d,
)

__all__ = [
    "COASTING", "CONFIRMED", "DET2D_DTYPE", "DET3D_DTYPE", "TENTATIVE", "TRACK_DTYPE",
    "AssociationError", "BatchEKF", "BatchUKF", "ClearMot", "Detections2D", "Detections3D", "FilterError",
    "FusionError", "FusionResult", "Hota", "KalmanFilter", "KalmanRun", "MultiObjectTracker", "NonlinearRun",
    "TrackerConfig", "Tracks", "angle_mean", "angle_residual",
    "assign", "associate_camera", "associate_frames", "bev_iou", "box_corners_3d", "center_distance", "clear_mot",
    "constant_velocity_model", "covariance_intersection", "detections_2d", "detections_3d",
    "distance_similarity", "fuse_class_scores", "hota", "inverse_covariance_fusion", "iou_2d",
    "linear_sum_assignment", "mahalanobis_sq", "nms", "project_boxes_3d", "sanitize_2d",
    "sanitize_3d", "soft_nms", "weighted_boxes_fusion", "weighted_boxes_fusion_3d", "wrap_angle",
]
