"""IMU-camera (or IMU-anything) rotation from paired angular velocities.

A rigid rig rotates as one body, so the angular velocity seen by sensor *a* and *b* (each in its own
frame) obey ``ω_a = R_a_from_b · ω_b``.  Given time-aligned rate samples (e.g. gyro and a camera's
rotation rate from feature tracking, or a ground-truth body frame), ``R_a_from_b`` is the Kabsch
rotation of the two rate sets.  A gyro's bias makes that ``ω_a = R_a_from_b · ω_b + c``: by default the
constant ``c`` is estimated too (Kabsch on the mean-removed rates), which on EuRoC's real gyro (bias up
to 0.076 rad/s) cuts the rotation error from 0.49° to 0.14°.  Refused when the rates do not excite at
least two independent axes (the rotation about a single excited axis is unobservable), too few samples
are moving, or the fit does not explain the rates (see :func:`rotation_from_rates`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import Transform
from edgefuse_calibration.spatial._common import OK, REFUSED, SpatialResult, kabsch


def rotation_from_rates(
    omega_a: npt.ArrayLike, omega_b: npt.ArrayLike, *, a_frame: str = "camera", b_frame: str = "imu",
    min_rate_rad_s: float = 0.05, min_samples: int = 20, min_axis_ratio: float = 0.1, estimate_bias: bool = True,
    max_rot_std_deg: float = 1.0, min_explained: float = 0.5,
) -> SpatialResult:
    """``R_a_from_b`` (as a rotation-only ``T``) from (N, 3) rate samples in rad/s, paired row by row.

    Rows with a non-finite value or with both rates below ``min_rate_rad_s`` are dropped.  Refused when
    fewer than ``min_samples`` rows remain; when either stream (bias removed) varies by less than
    ``min_rate_rad_s`` RMS along its second principal axis (a constant gyro bias, or vibration of one
    sensor while the other hardly turns, is not shared motion); when ``b``'s second singular value is
    below ``min_axis_ratio`` times its first (motion about one axis only); when the first-order rotation
    uncertainty exceeds ``max_rot_std_deg``; or when the fit explains less than ``min_explained`` of
    ``a``'s rate variation (a gross mismatch: wrong pairing, a time offset, a unit or sign error, or two
    bodies; noise alone lowers it too, which is why the uncertainty, not this, judges precision).
    ``metrics``: residual RMS (rad/s), singular values, RMS rate per principal axis of each stream, samples
    used, the rotation uncertainty (deg), explained variance and, with ``estimate_bias``, the constant rate
    offset ``c`` (rad/s, frame a; ``-R·bias_b`` when only sensor b is biased).
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
    mean_a = a.mean(axis=0) if estimate_bias else np.zeros(3)
    mean_b = b.mean(axis=0) if estimate_bias else np.zeros(3)
    a0, b0 = a - mean_a, b - mean_b
    sv_a, sv = (np.linalg.svd(x0, compute_uv=False) for x0 in (a0, b0))
    res.metrics["rate_singular_values"] = sv.tolist()
    one_axis = sv[1] < min_axis_ratio * sv[0]
    for name, sing in ((a_frame, sv_a), (b_frame, sv)):
        spread = sing / np.sqrt(len(a0))  # RMS rate along each principal axis (after the bias, with estimate_bias)
        res.metrics[f"rate_rms_per_axis_rad_s_{name}"] = spread.tolist()
        if spread[0] < min_rate_rad_s or (spread[1] < min_rate_rad_s and not one_axis):
            res.reasons.append(f"insufficient excitation: the {name} rates vary by {spread.round(4).tolist()} rad/s"
                               f" RMS along their principal axes; at least two must reach {min_rate_rad_s} rad/s")
    if res.reasons:
        return res
    if one_axis:
        res.reasons.append(f"motion excites one axis only (singular values {sv.round(3).tolist()}): the"
                           " rotation about it is unobservable")
        return res
    R = kabsch(b0, a0)
    c = mean_a - R @ mean_b
    r = a - b @ R.T - c
    rms = float(np.sqrt(np.mean(np.sum(r * r, axis=1))))
    # first-order: each rotation component's std ~ noise / (singular value of the lever)
    sd = rms / np.sqrt(3) / np.maximum(sv[[1, 2, 2]], 1e-12)
    rot_std = float(np.degrees(np.linalg.norm(sd[:2])))
    explained = 1.0 - float(np.sum(r * r)) / max(float(np.sum(a0 * a0)), 1e-300)
    res.metrics.update(residual_rms_rad_s=rms, rot_std_deg=rot_std, explained_variance=explained)
    if estimate_bias:
        res.metrics["rate_offset_rad_s"] = c.tolist()
    if not explained >= min_explained:
        res.reasons.append(f"the rotated rates of {b_frame} explain only {100 * explained:.1f} % of the {a_frame}"
                           f" rate variation (need {100 * min_explained:.1f} %): wrong pairing, a time offset,"
                           " a unit or sign error, or not one rigid body")
    if not rot_std <= max_rot_std_deg:
        res.reasons.append(f"rotation not determined: first-order uncertainty {rot_std:.2f} deg >"
                           f" {max_rot_std_deg} deg (more motion, or less noisy rates)")
    if res.reasons:
        return res
    res.T = Transform.from_rt(R, np.zeros(3))
    res.verdict = OK
    return res
