"""Rig look-ups shared by the stages that project into a camera."""

from __future__ import annotations

from typing import Any

from edgefuse.errors import CalibrationError


def lookup_camera(rig: Any, name: str) -> Any:
    """The rig camera ``name``, or None when the rig has no such camera."""
    try:
        return rig.camera(name)
    except (KeyError, CalibrationError):
        return None


def check_camera_link(rig: Any, camera_name: Any, cloud_frame: str | None) -> list[str]:
    """Load-time check: the camera exists and a transform links ``cloud_frame`` (when known) to it."""
    if rig is None:
        return ["needs a rig (calibration) but the pipeline names none"]
    cam = lookup_camera(rig, str(camera_name))
    if cam is None:
        return [f"camera '{camera_name}' is not in the rig (cameras: {', '.join(sorted(rig.cameras))})"]
    if cloud_frame is None:
        return []
    try:
        rig.transform(cam.frame_id, cloud_frame)
    except CalibrationError as exc:
        return [f"no calibration from frame '{cloud_frame}' to camera frame '{cam.frame_id}': {exc.message}"]
    return []
