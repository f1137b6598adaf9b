"""NMEA GNSS sources: a log file, or a live serial line.

``open_source("nmea:///path/to/log")`` (or any path ending in ``.nmea``) reads a log of sentences (lines
that are not sentences — gpsd's ``#`` comments, JSON — are counted and skipped);
``open_source("nmea+serial:///dev/ttyUSB0?baud=9600")`` reads a receiver live through pyserial.  Query
parameters (or keyword options): ``baud``, ``frame_id`` (default ``gnss``), ``topic`` (the fix topic,
default ``/gnss/fix``; the velocity goes to ``<topic>``'s sibling ``vel``), ``stamp`` (``gnss``: the
GNSS UTC time of the epoch — header clock; ``host``: the host's wall-clock time the epoch's first byte
arrived), ``uere_m``, ``reconnect_attempts``, ``reconnect_delay_s``.

Each epoch (see :mod:`edgefuse_drivers.gnss.fix`) gives a ``sensor_msgs/msg/NavSatFix`` on the fix topic and,
when speed and course are known, a ``geometry_msgs/msg/TwistStamped`` on the velocity topic.  Live, the
envelope's ``meta`` holds ``gnss_utc_ns`` and ``host_wall_ns`` (both stamps, whichever is used), and
:meth:`NmeaSource.stats` reports the clock offset estimate (host − GNSS) and its jitter.  A log has no
receive times: envelopes are stamped and ordered by GNSS time (``recv_ns`` = stamp), epochs without a time
are counted (``unstamped``) and left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from edgefuse.envelope import Envelope
from edgefuse.errors import DriverError, SourceError
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.gnss.fix import ClockOffsetEstimator, Epoch, EpochAssembler, epoch_fix, epoch_velocity
from edgefuse_drivers.gnss.nmea import NmeaStats, parse_sentence
from edgefuse_drivers.gnss.velocity import TWIST_STAMPED
from edgefuse_drivers.serial import LineSplitter, SerialStream

__all__ = ["NmeaLogSource", "NmeaSerialSource", "NmeaSource", "open_nmea"]

NAVSATFIX = "sensor_msgs/msg/NavSatFix"


class NmeaSource:
    """Common part of the NMEA sources: sentences → epochs → envelopes, with counts."""

    live: bool = False
    stamp_clock: StampClock = "header"
    recv_clock: RecvClock = "recorded"

    def __init__(self, *, frame_id: str = "gnss", topic: str = "/gnss/fix", vel_topic: str | None = None,
                 stamp: str = "gnss", uere_m: float | None = None) -> None:
        if stamp not in ("gnss", "host"):
            raise SourceError(f"stamp must be 'gnss' or 'host', not {stamp!r}")
        self.frame_id = frame_id
        self.fix_topic = topic
        self.vel_topic = vel_topic if vel_topic is not None else topic.rsplit("/", 1)[0] + "/vel"
        self.stamp = stamp
        self.uere_m = uere_m
        self.nmea = NmeaStats()
        self.clock = ClockOffsetEstimator()
        self.assembler = EpochAssembler()
        self.offsets = TimeOffsets()
        self.unstamped = 0
        self.counts: dict[str, int] = {}

    def __enter__(self) -> NmeaSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> NmeaSource:
        return self

    def close(self) -> None:
        pass

    def topics(self) -> Mapping[str, SourceTopic]:
        return {self.fix_topic: SourceTopic(self.fix_topic, NAVSATFIX),
                self.vel_topic: SourceTopic(self.vel_topic, TWIST_STAMPED)}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:  # pragma: no cover
        raise NotImplementedError

    def _epoch_envelopes(self, epoch: Epoch, topics: Sequence[str] | None) -> list[Envelope]:
        utc = epoch.utc_ns
        if utc is not None and self.live:
            self.clock.add(utc, epoch.wall_ns)
        if self.stamp == "host" and self.live:
            stamp = epoch.wall_ns
        elif utc is not None:
            stamp = utc
        elif self.live:
            stamp = epoch.wall_ns  # a receiver without time (no fix yet): the host's time, marked in meta
        else:
            self.unstamped += 1
            return []
        recv = epoch.mono_ns if self.live else stamp
        meta: dict[str, Any] = {"gnss_utc_ns": utc, "stamp_source": "gnss" if stamp == utc else "host"}
        if self.live:
            meta["host_wall_ns"] = epoch.wall_ns
        if epoch.gga is not None:
            meta.update(quality=epoch.gga.quality, satellites=epoch.gga.satellites, hdop=epoch.gga.hdop)
        out: list[Envelope] = []
        fix = epoch_fix(epoch, stamp, self.frame_id, self.uere_m)
        if fix is not None and (topics is None or self.fix_topic in topics):
            out.append(Envelope(self.fix_topic, stamp, recv, fix, NAVSATFIX, dict(meta)))
        vel = epoch_velocity(epoch, stamp, self.frame_id + "_enu")
        if vel is not None and (topics is None or self.vel_topic in topics):
            out.append(Envelope(self.vel_topic, stamp, recv, vel, TWIST_STAMPED, dict(meta)))
        for env in out:
            self.counts[env.topic] = self.counts.get(env.topic, 0) + 1
            self.offsets.apply(env)
        return out

    def stats(self) -> dict[str, Any]:
        """Counts (sentences by type, bad checksums, malformed, unhandled, garbage bytes, epochs, messages
        per topic) and, live, the clock offset report and serial line events."""
        return {"nmea": self.nmea.as_dict(), "epochs": self.assembler.epochs, "unstamped": self.unstamped,
                "messages": dict(self.counts), "clock": self.clock.report()}


class NmeaLogSource(NmeaSource):
    """An NMEA log file (one sentence per line; other lines counted and skipped)."""

    live = False
    recv_clock: RecvClock = "recorded"

    def __init__(self, path: str | Path, **options: Any) -> None:
        if options.get("stamp", "gnss") != "gnss":
            raise SourceError("a log has no receive times: stamp must be 'gnss'", file=path)
        super().__init__(**options)
        self.path = Path(path)
        self.comment_lines = 0
        if not self.path.is_file():
            raise FileNotFoundError(f"No such file or directory: '{self.path}'")

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["comment_lines"] = self.comment_lines
        return out

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        with self.path.open("rb") as fh:
            for raw in fh:
                if raw.startswith(b"#"):
                    self.comment_lines += 1
                    continue
                s = parse_sentence(raw, self.nmea)
                if s is None:
                    continue
                done = self.assembler.feed(s, 0, 0)
                if done is not None:
                    yield from self._epoch_envelopes(done, topics)
        last = self.assembler.flush()
        if last is not None:
            yield from self._epoch_envelopes(last, topics)


class NmeaSerialSource(NmeaSource):
    """A receiver on a serial line (live).  See the module documentation for the options."""

    live = True
    recv_clock: RecvClock = "host_monotonic"

    def __init__(self, port: str, *, baud: int = 9600, reconnect_attempts: int = 5, reconnect_delay_s: float = 0.2,
                 read_timeout_s: float = 0.05, **options: Any) -> None:
        super().__init__(**options)
        self.stamp_clock = "header" if self.stamp == "gnss" else "host"
        self.port = port
        self.stream = SerialStream(port, baudrate=baud, read_timeout_s=read_timeout_s,
                                   reconnect_attempts=reconnect_attempts, reconnect_delay_s=reconnect_delay_s)
        self.lines = LineSplitter(max_line=1024)

    def open(self) -> NmeaSerialSource:
        self.stream.open()
        return self

    def close(self) -> None:
        self.stream.close()

    def stop(self) -> None:
        """End :meth:`envelopes` within one read timeout (any thread)."""
        self.stream.stop()

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        """Envelopes as epochs complete, until :meth:`stop`/:meth:`close`.

        Raises:
            DriverError: the device was lost and did not come back (see :class:`SerialStream`).
        """
        try:
            for mono, wall, data in self.stream.chunks():
                if not data:  # the line went quiet: the burst (epoch) is over
                    done = self.assembler.flush()
                    if done is not None:
                        yield from self._epoch_envelopes(done, topics)
                    continue
                for line, l_mono, l_wall in self.lines.feed(data, mono, wall):
                    s = parse_sentence(line, self.nmea)
                    if s is None:
                        continue
                    done = self.assembler.feed(s, l_mono, l_wall)
                    if done is not None:
                        yield from self._epoch_envelopes(done, topics)
        except DriverError:
            # the device is gone: the epoch received before it went is complete data, not lost with it
            last = self.assembler.flush()
            if last is not None:
                yield from self._epoch_envelopes(last, topics)
            raise
        last = self.assembler.flush()
        if last is not None:
            yield from self._epoch_envelopes(last, topics)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        st = self.stream.stats
        out["serial"] = {"bytes_read": st.bytes_read, "disconnects": st.disconnects, "reconnects": st.reconnects,
                         "failed_reopens": st.failed_reopens, "events": list(st.events),
                         "overlong_lines": self.lines.overlong}
        return out


_INT_OPTIONS = ("baud", "reconnect_attempts")
_FLOAT_OPTIONS = ("uere_m", "reconnect_delay_s", "read_timeout_s")


def _url_options(query: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        try:
            out[key] = int(value) if key in _INT_OPTIONS else float(value) if key in _FLOAT_OPTIONS else value
        except ValueError:
            raise SourceError(f"option {key}={value!r} is not a number") from None
    return out


def open_nmea(url: str | Path, **options: Any) -> NmeaSource:
    """Opener for ``nmea://`` (log file), ``nmea+serial://`` (live) URLs and ``.nmea`` files."""
    text = str(url)
    if "://" not in text:
        return NmeaLogSource(Path(text), **options)
    parts = urlsplit(text)
    merged = {**_url_options(parts.query), **options}
    path = unquote(parts.netloc + parts.path)
    scheme = parts.scheme.lower()
    if scheme == "nmea":
        return NmeaLogSource(Path(path), **merged)
    if scheme == "nmea+serial":
        if not path:
            raise SourceError("nmea+serial:// needs a device, e.g. nmea+serial:///dev/ttyUSB0?baud=9600", file=text)
        try:
            return NmeaSerialSource(path, **merged)
        except TypeError as exc:
            raise SourceError(f"bad option for {scheme}: {exc}", file=text) from None
    raise DriverError(f"not an NMEA URL: {text}")


open_nmea.schemes = ("nmea", "nmea+serial")  # type: ignore[attr-defined]
open_nmea.suffixes = (".nmea",)  # type: ignore[attr-defined]
