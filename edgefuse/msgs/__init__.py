"""edgefuse.msgs: ROS messages (rosbags typestore classes) ↔ numpy-backed payloads.

Public names are loaded lazily so ``import edgefuse.msgs`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefuse._lazy import lazy_exports

if TYPE_CHECKING:
    from edgefuse.msgs.convert import can_convert, from_payload, imu_batch, register_conversion, to_payload
    from edgefuse.msgs.pointcloud import (
        field,
        finite_mask,
        pointcloud_from_arrays,
        pointcloud_from_structured,
        xyz,
    )
    from edgefuse.msgs.serde import deserialize, serialize
    from edgefuse.msgs.typestore import (
        get_typestore,
        new_typestore,
        normalize_msgtype,
        register_bag_types,
        register_definitions,
    )

_WHERE = {
    "can_convert": "convert",
    "from_payload": "convert",
    "register_conversion": "convert",
    "imu_batch": "convert",
    "to_payload": "convert",
    "field": "pointcloud",
    "finite_mask": "pointcloud",
    "pointcloud_from_arrays": "pointcloud",
    "pointcloud_from_structured": "pointcloud",
    "xyz": "pointcloud",
    "deserialize": "serde",
    "serialize": "serde",
    "get_typestore": "typestore",
    "new_typestore": "typestore",
    "normalize_msgtype": "typestore",
    "register_bag_types": "typestore",
    "register_definitions": "typestore",
}

__all__ = [
    "can_convert",
    "deserialize",
    "field",
    "finite_mask",
    "from_payload",
    "get_typestore",
    "imu_batch",
    "new_typestore",
    "normalize_msgtype",
    "pointcloud_from_arrays",
    "pointcloud_from_structured",
    "register_bag_types",
    "register_conversion",
    "register_definitions",
    "serialize",
    "to_payload",
    "xyz",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
