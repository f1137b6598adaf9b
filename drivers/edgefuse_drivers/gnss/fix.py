"""NMEA sentences → epochs → ``NavSatFix`` + velocity, and the receiver clock offset.

**Epochs.** A receiver sends one burst of sentences per navigation epoch (GGA, RMC, VTG, GSA×n, GST …, in
a receiver-specific order).  :class:`EpochAssembler` groups them: an epoch ends when a sentence carries a
different UTC time than the epoch, when a sentence type it already holds comes again (receivers without
a fix send empty times), or when the caller flushes it (end of a log; a live line that went quiet).

**Fix.** The fix of an epoch comes from its GGA (no GGA: no fix message).  ``altitude`` is above the WGS84
ellipsoid as NavSatFix defines it: GGA's altitude above mean sea level plus its geoid separation (when the
receiver leaves the separation empty, the MSL altitude is used as is).  ``status``/``service`` from the
GGA fix quality: 0, 6 (dead reckoning), 7 (manual), 8 (simulator) → ``STATUS_NO_FIX`` (−1); 1, 3 →
``STATUS_FIX`` (0); 2 (DGPS/SBAS) → ``STATUS_SBAS_FIX`` (1); 4, 5 (RTK fixed/float) → ``STATUS_GBAS_FIX``
(2).  Service bits from the talkers of the epoch (GP → GPS 1, GL → GLONASS 2, BD/GB → COMPASS 4, GA →
GALILEO 8) and from the v4.1 system ids of ``GNGSA``.

**Covariance** (ENU order: east, north, up, as NavSatFix's).  With a GST in the epoch:
diag(lon_std², lat_std², alt_std²), ``COVARIANCE_TYPE_DIAGONAL_KNOWN``.  Otherwise from dilution of
precision: σ_h = HDOP·UERE on east and north, σ_v = VDOP·UERE (VDOP from GSA; without one 2·HDOP·UERE),
``COVARIANCE_TYPE_APPROXIMATED``.  UERE, the 1-σ user-equivalent range error, depends on the fix kind:
:data:`UERE_M` (4 m for a standalone single-frequency fix — the order of the GPS SPS performance standard's
signal-in-space error plus atmosphere and multipath — 1 m for DGPS/SBAS, 0.05 m RTK fixed, 0.5 m RTK
float); pass ``uere_m`` to use one value for all.  Neither: ``COVARIANCE_TYPE_UNKNOWN``, zeros.

**Velocity** from RMC (speed and course over ground) or, without RMC, VTG: a
:class:`~edgefuse_drivers.gnss.velocity.TwistStampedData` in ENU (see that module).  Sent only when
speed and course are both present and the RMC says the data is valid.

**Time.** The epoch's UTC time is its sentences' time of day on the date of its RMC (or the last RMC's
date, advanced over midnight; with no date at all, the host's UTC date closest to the receive time).
:class:`ClockOffsetEstimator` compares it with the host wall-clock time the epoch's first byte arrived:
``host − gnss`` per epoch = the host clock's error plus the receiver's output delay plus transmission.
The minimum over a window is the estimate (delays only add), the spread (standard deviation) of the
window is the jitter.
"""

from __future__ import annotations

import calendar
import math
import statistics
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edgefuse.msgs.types import NavSatFixData
from edgefuse_drivers.gnss.nmea import GGA, GSA, GST, RMC, VTG, Sentence
from edgefuse_drivers.gnss.velocity import TwistStampedData

__all__ = [
    "COV_APPROXIMATED",
    "COV_DIAGONAL_KNOWN",
    "COV_UNKNOWN",
    "UERE_M",
    "ClockOffsetEstimator",
    "Epoch",
    "EpochAssembler",
    "epoch_fix",
    "epoch_utc_ns",
    "epoch_velocity",
]

COV_UNKNOWN, COV_APPROXIMATED, COV_DIAGONAL_KNOWN = 0, 1, 2
STATUS_NO_FIX, STATUS_FIX, STATUS_SBAS_FIX, STATUS_GBAS_FIX = -1, 0, 1, 2
SERVICE_GPS, SERVICE_GLONASS, SERVICE_COMPASS, SERVICE_GALILEO = 1, 2, 4, 8

#: 1-σ user-equivalent range error [m] by GGA fix quality (see the module documentation)
UERE_M: dict[int, float] = {1: 4.0, 2: 1.0, 3: 4.0, 4: 0.05, 5: 0.5}
_STATUS = {1: STATUS_FIX, 2: STATUS_SBAS_FIX, 3: STATUS_FIX, 4: STATUS_GBAS_FIX, 5: STATUS_GBAS_FIX}
_SERVICE_OF_TALKER = {"GP": SERVICE_GPS, "GL": SERVICE_GLONASS, "GA": SERVICE_GALILEO, "BD": SERVICE_COMPASS,
                      "GB": SERVICE_COMPASS, "GQ": SERVICE_GPS}
_SERVICE_OF_SYSTEM = {1: SERVICE_GPS, 2: SERVICE_GLONASS, 3: SERVICE_GALILEO, 4: SERVICE_COMPASS, 5: SERVICE_GPS}
_DAY_NS = 86_400 * 1_000_000_000


@dataclass
class Epoch:
    """The sentences of one navigation epoch and when its first byte arrived (host clocks, ns)."""

    mono_ns: int
    wall_ns: int
    time_s: float | None = None
    gga: GGA | None = None
    rmc: RMC | None = None
    vtg: VTG | None = None
    gst: GST | None = None
    gsa: list[GSA] = field(default_factory=list)
    utc_ns: int | None = None
    sentences: int = 0

    def holds(self, s: Sentence) -> bool:
        return ((isinstance(s, GGA) and self.gga is not None) or (isinstance(s, RMC) and self.rmc is not None)
                or (isinstance(s, VTG) and self.vtg is not None) or (isinstance(s, GST) and self.gst is not None))

    def add(self, s: Sentence) -> None:
        self.sentences += 1
        if isinstance(s, GGA):
            self.gga = s
        elif isinstance(s, RMC):
            self.rmc = s
        elif isinstance(s, VTG):
            self.vtg = s
        elif isinstance(s, GST):
            self.gst = s
        else:
            self.gsa.append(s)
        t = getattr(s, "time_s", None)
        if self.time_s is None and t is not None:
            self.time_s = t


class EpochAssembler:
    """Groups sentences into :class:`Epoch` objects and dates them (see the module documentation)."""

    def __init__(self) -> None:
        self._epoch: Epoch | None = None
        self._date: tuple[int, int, int] | None = None
        self._last_utc_ns: int | None = None
        self.epochs = 0

    def feed(self, s: Sentence, mono_ns: int, wall_ns: int) -> Epoch | None:
        """Add ``s`` (received at the given host times); returns the epoch it closed, if any."""
        done: Epoch | None = None
        cur = self._epoch
        t = getattr(s, "time_s", None)
        if cur is not None and ((t is not None and cur.time_s is not None and abs(t - cur.time_s) > 1e-3)
                                or cur.holds(s)):
            done = self.flush()
            cur = None
        if cur is None:
            cur = self._epoch = Epoch(mono_ns, wall_ns)
        cur.add(s)
        return done

    def flush(self) -> Epoch | None:
        """Close the open epoch (end of input, quiet line) and return it, dated."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return None
        self.epochs += 1
        epoch.utc_ns = self._utc(epoch)
        return epoch

    def _utc(self, epoch: Epoch) -> int | None:
        if epoch.time_s is None:
            return None
        tod_ns = round(epoch.time_s * 1e9)
        if epoch.rmc is not None and epoch.rmc.date is not None:
            self._date = epoch.rmc.date
        if self._date is not None:
            y, m, d = self._date
            day_ns = calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)) * 1_000_000_000
            utc = day_ns + tod_ns
            if self._last_utc_ns is not None and utc < self._last_utc_ns - _DAY_NS // 2:
                utc += _DAY_NS  # past midnight since the last date
        else:  # no date yet: the UTC day that puts the epoch closest to the host's clock
            day_ns = (epoch.wall_ns // _DAY_NS) * _DAY_NS
            utc = min((day_ns + k * _DAY_NS + tod_ns for k in (-1, 0, 1)), key=lambda u: abs(u - epoch.wall_ns))
        self._last_utc_ns = utc
        return utc


def epoch_utc_ns(epoch: Epoch) -> int | None:
    """The epoch's GNSS (UTC) time [ns since 1970], None when its sentences carry no time."""
    return epoch.utc_ns


def _service(epoch: Epoch) -> int:
    bits = 0
    talkers = [s.talker for s in (epoch.gga, epoch.rmc, epoch.vtg, epoch.gst) if s is not None]
    talkers += [g.talker for g in epoch.gsa]
    for t in talkers:
        bits |= _SERVICE_OF_TALKER.get(t, 0)
    for g in epoch.gsa:
        if g.prns:
            bits |= _SERVICE_OF_SYSTEM.get(g.system_id, 0)
    return bits or SERVICE_GPS


def epoch_fix(epoch: Epoch, stamp_ns: int, frame_id: str, uere_m: float | None = None) -> NavSatFixData | None:
    """The NavSatFix of ``epoch`` (None without a GGA or without a position)."""
    gga = epoch.gga
    if gga is None or math.isnan(gga.latitude_deg) or math.isnan(gga.longitude_deg):
        return None
    status = _STATUS.get(gga.quality, STATUS_NO_FIX)
    alt = gga.altitude_msl_m + (0.0 if math.isnan(gga.geoid_sep_m) else gga.geoid_sep_m)
    cov = np.zeros((3, 3))
    cov_type = COV_UNKNOWN
    gst = epoch.gst
    if gst is not None and not any(math.isnan(v) for v in (gst.lat_std_m, gst.lon_std_m, gst.alt_std_m)):
        cov[0, 0], cov[1, 1], cov[2, 2] = gst.lon_std_m ** 2, gst.lat_std_m ** 2, gst.alt_std_m ** 2
        cov_type = COV_DIAGONAL_KNOWN
    elif not math.isnan(gga.hdop) and gga.hdop > 0:
        uere = uere_m if uere_m is not None else UERE_M.get(gga.quality, UERE_M[1])
        vdops = [g.vdop for g in epoch.gsa if not math.isnan(g.vdop) and g.vdop > 0]
        sigma_h = gga.hdop * uere
        sigma_v = (vdops[0] if vdops else 2.0 * gga.hdop) * uere
        cov[0, 0] = cov[1, 1] = sigma_h ** 2
        cov[2, 2] = sigma_v ** 2
        cov_type = COV_APPROXIMATED
    return NavSatFixData(stamp_ns=stamp_ns, frame_id=frame_id, status=status, service=_service(epoch),
                         latitude_deg=gga.latitude_deg, longitude_deg=gga.longitude_deg, altitude_m=alt,
                         position_covariance=cov, position_covariance_type=cov_type)


def epoch_velocity(epoch: Epoch, stamp_ns: int, frame_id: str) -> TwistStampedData | None:
    """ENU velocity of ``epoch`` from RMC (else VTG); None when speed or course is missing or RMC is void."""
    if epoch.rmc is not None:
        if not epoch.rmc.valid:
            return None
        speed, course = epoch.rmc.speed_m_s, epoch.rmc.course_deg
        if math.isnan(course) and epoch.vtg is not None:
            course = epoch.vtg.course_deg
    elif epoch.vtg is not None:
        if epoch.vtg.mode == "N":
            return None
        speed, course = epoch.vtg.speed_m_s, epoch.vtg.course_deg
    else:
        return None
    if math.isnan(speed):
        return None
    if math.isnan(course):
        if speed != 0.0:
            return None
        course = 0.0
    c = math.radians(course)
    return TwistStampedData(stamp_ns, frame_id, np.array([speed * math.sin(c), speed * math.cos(c), 0.0]),
                            np.zeros(3))


class ClockOffsetEstimator:
    """Host wall clock − GNSS time, per epoch: estimate (window minimum), median and jitter (std dev).

    Args:
        window: epochs kept.
    """

    def __init__(self, window: int = 64) -> None:
        self._samples: deque[int] = deque(maxlen=int(window))
        self.count = 0

    def add(self, gnss_ns: int, host_wall_ns: int) -> None:
        self._samples.append(int(host_wall_ns) - int(gnss_ns))
        self.count += 1

    @property
    def offset_ns(self) -> int | None:
        """Estimated ``host − gnss`` [ns] (None before the first epoch)."""
        return min(self._samples) if self._samples else None

    @property
    def jitter_ns(self) -> float | None:
        """Standard deviation of ``host − gnss`` over the window [ns] (None with fewer than 2 epochs)."""
        return statistics.pstdev(self._samples) if len(self._samples) >= 2 else None

    def report(self) -> dict[str, float | int | None]:
        s = self._samples
        return {"epochs": self.count, "offset_ns": self.offset_ns,
                "median_ns": int(statistics.median(s)) if s else None, "jitter_ns": self.jitter_ns}
