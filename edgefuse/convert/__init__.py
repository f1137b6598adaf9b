"""edgefuse.convert: dataset folders (RADIATE, KITTI object, KITTI raw) → ROS 2 bags.

Readers turn a folder into a :class:`DatasetPlan` (a time-ordered stream of
``(topic, stamp_ns, payload)``); :func:`convert` writes it to a bag with /tf_static, CameraInfo,
``rig.yaml`` and ``convert_report.json``; :func:`add_convert_parser`/:func:`run_convert` are the
CLI adapter.  The demo recording in ``edgefuse/data/demo`` is built by
``python -m edgefuse.convert.build_demo``.

Public names are loaded lazily so ``import edgefuse.convert`` (and the CLI) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefuse._lazy import lazy_exports

if TYPE_CHECKING:
    from edgefuse.convert.cli import add_convert_parser, run_convert
    from edgefuse.convert.converter import (
        bag_digests,
        convert,
        detect_layout,
        overlap_window,
        read_dataset,
        static_transforms,
    )
    from edgefuse.convert.kitti_object import read_kitti_object
    from edgefuse.convert.kitti_raw import read_kitti_raw
    from edgefuse.convert.plan import DatasetPlan, Item
    from edgefuse.convert.radiate import read_radiate
    from edgefuse.convert.report import ConvertReport, SkippedItem, TopicStats

_WHERE = {
    "add_convert_parser": "cli",
    "run_convert": "cli",
    "bag_digests": "converter",
    "convert": "converter",
    "detect_layout": "converter",
    "overlap_window": "converter",
    "read_dataset": "converter",
    "static_transforms": "converter",
    "read_kitti_object": "kitti_object",
    "read_kitti_raw": "kitti_raw",
    "DatasetPlan": "plan",
    "Item": "plan",
    "read_radiate": "radiate",
    "ConvertReport": "report",
    "SkippedItem": "report",
    "TopicStats": "report",
}

__all__ = [
    "ConvertReport",
    "DatasetPlan",
    "Item",
    "SkippedItem",
    "TopicStats",
    "add_convert_parser",
    "bag_digests",
    "convert",
    "detect_layout",
    "overlap_window",
    "read_dataset",
    "read_kitti_object",
    "read_kitti_raw",
    "read_radiate",
    "run_convert",
    "static_transforms",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
