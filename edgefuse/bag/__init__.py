"""edgefuse.bag: reading ROS 1/ROS 2 bags and writing ROS 2 bags (MCAP, sqlite3) with rosbags.

Public names are loaded lazily so ``import edgefuse.bag`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgefuse.bag.info import BagInfo, TopicStats, bag_info, format_info
    from edgefuse.bag.reader import BagReader, RawMessage, TopicInfo, open_bag
    from edgefuse.bag.writer import QOS_PRESETS, BagWriter

_WHERE = {
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
    "BagReader",
    "BagWriter",
    "RawMessage",
    "TopicInfo",
    "TopicStats",
    "bag_info",
    "format_info",
    "open_bag",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'edgefuse.bag' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"edgefuse.bag.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
