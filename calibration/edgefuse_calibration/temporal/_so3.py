"""Small SO(3) helpers."""

from __future__ import annotations

import numpy as np

from edgefuse_calibration.temporal.types import F64


def log_so3(R: F64) -> F64:
    """Rotation vector (axis · angle, rad) of a rotation matrix."""
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(c))
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-9:
        small: F64 = 0.5 * w
        return small
    if np.pi - angle < 1e-6:
        # near pi: axis from the largest diagonal entry of (R + I) / 2
        M = (R + np.eye(3)) / 2.0
        i = int(np.argmax(np.diag(M)))
        axis: F64 = M[:, i] / np.sqrt(max(M[i, i], 1e-300))
        return axis * angle
    rv: F64 = w * (angle / (2.0 * np.sin(angle)))
    return rv


def procrustes_rotation(A: F64, B: F64) -> F64:
    """Rotation R minimising Σ‖a_i − R b_i‖² for paired rows of A (N, 3) and B (N, 3) (Kabsch)."""
    H = B.T @ A
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R: F64 = Vt.T @ D @ U.T
    return R


def angle_deg(R: F64) -> float:
    """Rotation angle of R in degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))
