"""edgefuse.bag: reading ROS 1/ROS 2 bags and writing ROS 2 bags (MCAP, sqlite3) with rosbags.

Public names are loaded lazily so ``import edgefuse.bag`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefuse._lazy import lazy_exports

if TYPE_CHECKING:
    from edgefuse.bag._errors import BagIntegrityError
    from edgefuse.bag.info import BagInfo, TopicStats, bag_info, format_info
    from edgefuse.bag.integrity import BagIntegrityWarning, IntegrityProblem
    from edgefuse.bag.reader import BagReader, RawMessage, TopicInfo, open_bag
    from edgefuse.bag.repair import RepairResult, repair_bag
    from edgefuse.bag.writer import QOS_PRESETS, BagWriter

_WHERE = {
    "BagIntegrityError": "_errors",
    "BagIntegrityWarning": "integrity",
    "IntegrityProblem": "integrity",
    "RepairResult": "repair",
    "repair_bag": "repair",
    "BagInfo": "info",
    "TopicStats": "info",
    "bag_info": "info",
    "format_info": "info",
    "BagReader": "reader",
    "RawMessage": "reader",
    "TopicInfo": "reader",
    "open_bag": "reader",
    "QOS_PRESETS": "writer",
    "BagWriter": "writer",
}

__all__ = [
    "QOS_PRESETS",
    "BagInfo",
    "BagIntegrityError",
    "BagIntegrityWarning",
    "BagReader",
    "BagWriter",
    "IntegrityProblem",
    "RawMessage",
    "RepairResult",
    "TopicInfo",
    "TopicStats",
    "bag_info",
    "format_info",
    "open_bag",
    "repair_bag",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
