"""NMEA 0183 GNSS receivers: sentence parser, epochs → NavSatFix + ENU velocity, log and serial sources."""

from edgefuse_drivers.gnss.fix import ClockOffsetEstimator, EpochAssembler, epoch_fix, epoch_velocity
from edgefuse_drivers.gnss.nmea import NmeaStats, parse_sentence
from edgefuse_drivers.gnss.source import NmeaLogSource, NmeaSerialSource, NmeaSource, open_nmea
from edgefuse_drivers.gnss.velocity import TwistStampedData

__all__ = [
    "ClockOffsetEstimator",
    "EpochAssembler",
    "NmeaLogSource",
    "NmeaSerialSource",
    "NmeaSource",
    "NmeaStats",
    "TwistStampedData",
    "epoch_fix",
    "epoch_velocity",
    "open_nmea",
    "parse_sentence",
]
