"""edgefuse.rig: runtime calibration — static frame graph, camera models, time offsets, rig files.

See ``edgefuse/rig/FORMAT.md`` for the rig YAML format and :mod:`edgefuse.rig.importers` for
KITTI / nuScenes / ROS CameraInfo / RADIATE / Kalibr importers.
"""

from __future__ import annotations

from edgefuse.rig.camera import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL, CameraModel
from edgefuse.rig.importers import (
    from_camera_info_yaml,
    from_kalibr_camchain,
    from_kitti_object,
    from_kitti_raw,
    from_nuscenes,
    from_radiate,
)
from edgefuse.rig.rig import SENSOR_KINDS, Rig, Sensor
from edgefuse.rig.rigfile import (
    dump_rig,
    load_rig,
    loads_rig,
    merge_rig_file,
    save_rig,
    validate_rig_file,
    validate_rig_text,
)
from edgefuse.rig.transform import CalibrationWarning, FrameGraph, Transform

__all__ = [
    "EQUIDISTANT",
    "PINHOLE",
    "PLUMB_BOB",
    "RATIONAL",
    "SENSOR_KINDS",
    "CalibrationWarning",
    "CameraModel",
    "FrameGraph",
    "Rig",
    "Sensor",
    "Transform",
    "dump_rig",
    "from_camera_info_yaml",
    "from_kalibr_camchain",
    "from_kitti_object",
    "from_kitti_raw",
    "from_nuscenes",
    "from_radiate",
    "load_rig",
    "loads_rig",
    "merge_rig_file",
    "save_rig",
    "validate_rig_file",
    "validate_rig_text",
]
