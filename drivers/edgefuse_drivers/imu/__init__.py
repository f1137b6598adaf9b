"""Serial IMUs: the WitMotion WT901 family (WIT standard protocol)."""

from edgefuse_drivers.imu.source import WitmotionSerialSource, open_witmotion
from edgefuse_drivers.imu.witmotion import WitDecoder, WitStats, euler_to_quaternion, packet

__all__ = ["WitDecoder", "WitStats", "WitmotionSerialSource", "euler_to_quaternion", "open_witmotion", "packet"]
