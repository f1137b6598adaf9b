"""IMU-camera (or IMU-anything) rotation from paired angular velocities.

A rigid rig rotates as one body, so the angular velocity seen by sensor *a* and *b* (each in its own
frame) obey ``ω_a = R_a_from_b · ω_b``.  Given time-aligned rate samples (e.g. gyro and a camera's
rotation rate from feature tracking, or a ground-truth body frame), ``R_a_from_b`` is the Kabsch
rotation of the two rate sets.  Refused when the rates do not excite at least two independent axes
(the rotation about a single excited axis is unobservable) or too few samples are moving.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import Transform
from edgefuse_calibration.spatial._common import OK, REFUSED, SpatialResult, kabsch


def rotation_from_rates(
    omega_a: npt.ArrayLike, omega_b: npt.ArrayLike, *, a_frame: str = "camera", b_frame: str = "imu",
    min_rate_rad_s: float = 0.05, min_samples: int = 20, min_axis_ratio: float = 0.1,
) -> SpatialResult:
    """``R_a_from_b`` (as a rotation-only ``T``) from (N, 3) rate samples in rad/s, paired row by row.

    Rows with a non-finite value or with both rates below ``min_rate_rad_s`` are dropped.  Refused when
    fewer than ``min_samples`` rows remain or when the second singular value of the ``b`` rates is below
    ``min_axis_ratio`` times the first (motion about one axis only).  ``metrics``: residual RMS (rad/s),
    singular values, samples used, and a first-order rotation uncertainty (deg).
    """
    a = np.asarray(omega_a, dtype=np.float64)
    b = np.asarray(omega_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3:
        raise CalibrationError(f"rates must be two (N, 3) arrays of the same shape, got {a.shape} and {b.shape}")
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    ok &= (np.linalg.norm(a, axis=1) > min_rate_rad_s) | (np.linalg.norm(b, axis=1) > min_rate_rad_s)
    a, b = a[ok], b[ok]
    res = SpatialResult("imu_camera_rotation", REFUSED, a_frame, b_frame)
    res.metrics["n_samples"] = len(a)
    if len(a) < min_samples:
        res.reasons.append(f"only {len(a)} moving samples (need {min_samples}): insufficient excitation")
        return res
    sv = np.linalg.svd(b - 0.0, compute_uv=False)
    res.metrics["rate_singular_values"] = sv.tolist()
    if sv[1] < min_axis_ratio * sv[0]:
        res.reasons.append(f"motion excites one axis only (singular values {sv.round(3).tolist()}): the"
                           " rotation about it is unobservable")
        return res
    R = kabsch(b, a)
    r = a - b @ R.T
    rms = float(np.sqrt(np.mean(np.sum(r * r, axis=1))))
    # first-order: each rotation component's std ~ noise / (singular value of the lever)
    sd = rms / np.sqrt(3) / np.maximum(sv[[1, 2, 2]], 1e-12)
    res.metrics.update(residual_rms_rad_s=rms, rot_std_deg=float(np.degrees(np.linalg.norm(sd[:2]))))
    res.T = Transform.from_rt(R, np.zeros(3))
    res.verdict = OK
    return res
