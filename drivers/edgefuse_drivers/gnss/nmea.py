"""NMEA 0183 sentence parser: GGA, RMC, VTG, GSA and GST, checksums verified.

A sentence is ``$<talker><type>,<fields…>*<two hex digits>``; the checksum is the XOR of every byte
between ``$`` and ``*``.  Talkers accepted: ``GP`` (GPS), ``GN`` (combined GNSS), ``GL`` (GLONASS), ``GA``
(Galileo), ``BD``/``GB`` (BeiDou) and ``GQ`` (QZSS).  Field layouts follow NMEA 0183 v4.11 as documented by
receiver manuals (u-blox "ZED-F9P Interface Description", section "NMEA protocol"; NovAtel OEM7 "Commands
and Logs Reference Manual", logs GPGGA/GPRMC/GPVTG/GPGSA/GPGST), with the optional trailing fields of
v2.3 (mode indicator) and v4.1 (GSA system id, RMC navigation status) read when present.

:func:`parse_sentence` never raises on bad input: it returns ``None`` and counts why in
:class:`NmeaStats` (``bad_checksum``, ``malformed``, ``unhandled`` per type, ``garbage_bytes`` for
bytes before the ``$``), so a line carrying random bytes costs a count, never the stream.

Units: latitude/longitude in degrees (south/west negative), times as seconds of the UTC day, speeds in
m/s (converted from knots / km/h), angles in degrees, altitudes and standard deviations in metres.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from edgefuse.errors import MessageError

__all__ = [
    "GGA",
    "GSA",
    "GST",
    "KNOT_M_S",
    "RMC",
    "TALKERS",
    "VTG",
    "NmeaStats",
    "Sentence",
    "checksum",
    "parse_sentence",
]

#: 1 knot in m/s (1852 m per hour)
KNOT_M_S = 1852.0 / 3600.0
#: talker ids accepted, with the constellation each stands for
TALKERS: dict[str, str] = {"GP": "gps", "GN": "gnss", "GL": "glonass", "GA": "galileo", "BD": "beidou",
                           "GB": "beidou", "GQ": "qzss"}


@dataclass(frozen=True, slots=True)
class GGA:
    """Fix data.  ``quality``: 0 invalid, 1 GPS/SPS, 2 DGPS/SBAS, 3 PPS, 4 RTK fixed, 5 RTK float,
    6 dead reckoning, 7 manual, 8 simulator.  ``altitude_msl_m`` above mean sea level; ``geoid_sep_m``
    the geoid height above the WGS84 ellipsoid (NaN when not sent)."""

    talker: str
    time_s: float | None
    latitude_deg: float
    longitude_deg: float
    quality: int
    satellites: int
    hdop: float
    altitude_msl_m: float
    geoid_sep_m: float


@dataclass(frozen=True, slots=True)
class RMC:
    """Recommended minimum data.  ``date`` is (year, month, day) or None; ``valid`` is the A/V status;
    ``mode`` the v2.3 mode indicator (``A`` autonomous, ``D`` differential, ``N`` not valid …, ``""``)."""

    talker: str
    time_s: float | None
    valid: bool
    latitude_deg: float
    longitude_deg: float
    speed_m_s: float
    course_deg: float
    date: tuple[int, int, int] | None
    mode: str


@dataclass(frozen=True, slots=True)
class VTG:
    """Course and speed over ground (true course in degrees, speed in m/s; NaN when absent)."""

    talker: str
    course_deg: float
    speed_m_s: float
    mode: str


@dataclass(frozen=True, slots=True)
class GSA:
    """DOP and active satellites.  ``fix_type``: 1 none, 2 2-D, 3 3-D; ``system_id`` (v4.1): 1 GPS,
    2 GLONASS, 3 Galileo, 4 BeiDou, 5 QZSS (0: not sent)."""

    talker: str
    fix_type: int
    prns: tuple[int, ...]
    pdop: float
    hdop: float
    vdop: float
    system_id: int


@dataclass(frozen=True, slots=True)
class GST:
    """Pseudorange error statistics: 1-sigma standard deviations [m] of latitude, longitude and altitude
    (NaN when absent), RMS of the range residuals, error-ellipse axes and orientation."""

    talker: str
    time_s: float | None
    rms: float
    semi_major_m: float
    semi_minor_m: float
    orientation_deg: float
    lat_std_m: float
    lon_std_m: float
    alt_std_m: float


Sentence = GGA | RMC | VTG | GSA | GST


@dataclass
class NmeaStats:
    """Counts of what the parser saw."""

    sentences: dict[str, int] = field(default_factory=dict)
    unhandled: dict[str, int] = field(default_factory=dict)
    bad_checksum: int = 0
    malformed: int = 0
    garbage_bytes: int = 0
    empty_lines: int = 0

    @property
    def parsed(self) -> int:
        return sum(self.sentences.values())

    def as_dict(self) -> dict[str, object]:
        return {"sentences": dict(self.sentences), "unhandled": dict(self.unhandled),
                "bad_checksum": self.bad_checksum, "malformed": self.malformed,
                "garbage_bytes": self.garbage_bytes}


class _BadFieldError(MessageError):
    """A field that cannot be read (internal: turned into a ``malformed`` count)."""


def checksum(body: bytes) -> int:
    """XOR of ``body`` (the bytes between ``$`` and ``*``)."""
    value = 0
    for b in body:
        value ^= b
    return value


def _float(text: str) -> float:
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise _BadFieldError(text) from None
    if not math.isfinite(value):
        raise _BadFieldError(text)
    return value


def _int(text: str, default: int = 0) -> int:
    if not text:
        return default
    if not text.isdigit():
        raise _BadFieldError(text)
    return int(text)


def _time(text: str) -> float | None:
    """``hhmmss.ss`` → seconds of the day."""
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise _BadFieldError(text)
    h, m = int(text[0:2]), int(text[2:4])
    s = _float(text[4:])
    if h > 23 or m > 59 or not 0.0 <= s < 61.0:
        raise _BadFieldError(text)
    return h * 3600.0 + m * 60.0 + s


def _date(text: str) -> tuple[int, int, int] | None:
    """``ddmmyy`` → (year, month, day); two-digit years are 1980–2079 (GPS epoch onwards)."""
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise _BadFieldError(text)
    d, m, y = int(text[0:2]), int(text[2:4]), int(text[4:6])
    if not (1 <= d <= 31 and 1 <= m <= 12):
        raise _BadFieldError(text)
    return (2000 + y if y < 80 else 1900 + y), m, d


def _angle(value: str, hemi: str, deg_digits: int, neg: str, pos: str) -> float:
    """``ddmm.mmmm`` / ``dddmm.mmmm`` with its hemisphere letter → signed degrees (NaN when empty)."""
    if not value:
        return math.nan
    if hemi not in (neg, pos) or len(value) < deg_digits + 2 or not value[:deg_digits].isdigit():
        raise _BadFieldError(value)
    deg = int(value[:deg_digits])
    minutes = _float(value[deg_digits:])
    if not 0.0 <= minutes < 60.0 or deg > (90 if deg_digits == 2 else 180):
        raise _BadFieldError(value)
    out = deg + minutes / 60.0
    return -out if hemi == neg else out


def _field(fields: list[str], i: int) -> str:
    return fields[i] if i < len(fields) else ""


def _gga(talker: str, f: list[str]) -> GGA:
    if len(f) < 10:
        raise _BadFieldError("short")
    return GGA(talker, _time(f[0]), _angle(f[1], f[2], 2, "S", "N"), _angle(f[3], f[4], 3, "W", "E"),
               _int(f[5]), _int(f[6]), _float(f[7]), _float(f[8]), _float(_field(f, 10)))


def _rmc(talker: str, f: list[str]) -> RMC:
    if len(f) < 9:
        raise _BadFieldError("short")
    if f[1] not in ("A", "V"):
        raise _BadFieldError(f[1])
    return RMC(talker, _time(f[0]), f[1] == "A", _angle(f[2], f[3], 2, "S", "N"), _angle(f[4], f[5], 3, "W", "E"),
               _float(f[6]) * KNOT_M_S, _float(f[7]), _date(f[8]), _field(f, 11))


def _vtg(talker: str, f: list[str]) -> VTG:
    if len(f) < 4:
        raise _BadFieldError("short")
    if len(f) >= 8 and f[1] in ("T", ""):  # v2+: course,T,course,M,knots,N,kmh,K[,mode]
        speed = _float(f[6]) / 3.6 if f[6] else _float(f[4]) * KNOT_M_S
        return VTG(talker, _float(f[0]), speed, _field(f, 8))
    # NMEA 1.x: course true, course magnetic, knots, km/h (no unit letters)
    return VTG(talker, _float(f[0]), _float(f[2]) * KNOT_M_S, "")


def _gsa(talker: str, f: list[str]) -> GSA:
    if len(f) < 17:
        raise _BadFieldError("short")
    prns = tuple(_int(p) for p in f[2:14] if p)
    return GSA(talker, _int(f[1]), prns, _float(f[14]), _float(f[15]), _float(f[16]), _int(_field(f, 17)))


def _gst(talker: str, f: list[str]) -> GST:
    if len(f) < 8:
        raise _BadFieldError("short")
    return GST(talker, _time(f[0]), _float(f[1]), _float(f[2]), _float(f[3]), _float(f[4]), _float(f[5]),
               _float(f[6]), _float(f[7]))


_PARSERS: dict[str, Callable[[str, list[str]], Sentence]] = {
    "GGA": _gga, "RMC": _rmc, "VTG": _vtg, "GSA": _gsa, "GST": _gst,
}


def parse_sentence(line: bytes, stats: NmeaStats | None = None) -> Sentence | None:
    """One sentence (a line without its end of line), or None (bad checksum, malformed, unhandled type,
    a line that is not a sentence) — counted in ``stats``.

    Bytes before the last ``$`` of the line (garbage on the line glued to a sentence) are counted as
    ``garbage_bytes`` and skipped.  A sentence without ``*hh`` is counted malformed: NMEA 0183 makes the
    checksum optional, but every receiver we read sends it and a line without one cannot be trusted.
    """
    st = stats if stats is not None else NmeaStats()
    line = line.strip(b"\r\n \t\x00")
    if not line:
        st.empty_lines += 1
        return None
    start = line.rfind(b"$")
    if start < 0:
        st.garbage_bytes += len(line)
        return None
    st.garbage_bytes += start
    star = line.find(b"*", start)
    if star < 0 or len(line) != star + 3:
        st.malformed += 1
        return None
    body = line[start + 1:star]
    try:
        want = int(line[star + 1:star + 3], 16)
    except ValueError:
        st.malformed += 1
        return None
    if checksum(body) != want:
        st.bad_checksum += 1
        return None
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        st.malformed += 1
        return None
    fields = text.split(",")
    address = fields[0]
    if len(address) != 5 or not address.isalnum():
        st.malformed += 1
        return None
    talker, kind = address[:2], address[2:]
    parser = _PARSERS.get(kind)
    if parser is None or talker not in TALKERS:
        st.unhandled[address] = st.unhandled.get(address, 0) + 1
        return None
    try:
        sentence = parser(talker, fields[1:])
    except _BadFieldError:
        st.malformed += 1
        return None
    st.sentences[kind] = st.sentences.get(kind, 0) + 1
    return sentence
