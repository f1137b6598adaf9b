"""Spatial calibration: camera intrinsics, LiDAR-camera extrinsics (target-based and targetless),
cloud registration (LiDAR-LiDAR, radar-LiDAR) and sensor-to-sensor rotation from angular rates.

Every tool returns a verdict (``ok`` / ``refused`` / ``no_improvement``) with its reasons and metrics;
results are merged into a rig file only when the verdict is ``ok`` (:func:`write_result_to_rig`).
"""

from __future__ import annotations

from edgefuse_calibration.spatial._common import (
    NO_IMPROVEMENT,
    OK,
    REFUSED,
    SpatialResult,
    perturb,
    pose_error,
    random_perturbation,
    write_report,
    write_result_to_rig,
)
from edgefuse_calibration.spatial.board import (
    BoardFeatures,
    BoardGeometry,
    BoardSolveOptions,
    calibrate_board_recording,
    read_acfr_calibration,
    read_acfr_poses,
    segment_board_organized,
    solve_board_features,
)
from edgefuse_calibration.spatial.imu_camera import rotation_from_rates
from edgefuse_calibration.spatial.intrinsics import IntrinsicsResult, calibrate_intrinsics
from edgefuse_calibration.spatial.pcd import pcd_xyz, read_pcd
from edgefuse_calibration.spatial.registration import register_clouds
from edgefuse_calibration.spatial.target import (
    BoardObservation,
    fit_plane_ransac,
    observation_from,
    solve_plane_to_plane,
)
from edgefuse_calibration.spatial.targetless import (
    LidarCameraFrame,
    TargetlessOptions,
    image_edge_map,
    lidar_edge_points,
    refine_lidar_camera,
    scan_lines,
)

__all__ = [
    "NO_IMPROVEMENT",
    "OK",
    "REFUSED",
    "BoardFeatures",
    "BoardGeometry",
    "BoardObservation",
    "BoardSolveOptions",
    "IntrinsicsResult",
    "LidarCameraFrame",
    "SpatialResult",
    "TargetlessOptions",
    "calibrate_board_recording",
    "calibrate_intrinsics",
    "fit_plane_ransac",
    "image_edge_map",
    "lidar_edge_points",
    "observation_from",
    "pcd_xyz",
    "perturb",
    "pose_error",
    "random_perturbation",
    "read_acfr_calibration",
    "read_acfr_poses",
    "read_pcd",
    "refine_lidar_camera",
    "register_clouds",
    "rotation_from_rates",
    "scan_lines",
    "segment_board_organized",
    "solve_board_features",
    "solve_plane_to_plane",
    "write_report",
    "write_result_to_rig",
]
