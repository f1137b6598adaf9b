"""Serial IMU sources.

``open_source("witmotion+serial:///dev/ttyUSB0?baud=9600&frame_id=imu&topic=/imu/data")``: a WitMotion
WT901-family module (:mod:`edgefuse_drivers.imu.witmotion`), live.  The module has no clock the host can
read against its own (its time packet is an unsynchronised RTC), so envelopes are stamped with the host's
wall-clock time the sample group's first byte arrived (``stamp_clock = "host"``); ``recv_ns`` is the host
monotonic time.  Further options: ``reconnect_attempts``, ``reconnect_delay_s`` (see
:class:`~edgefuse_drivers.serial.SerialStream`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets
from edgefuse_drivers.imu.witmotion import WitDecoder
from edgefuse_drivers.serial import SerialStream

__all__ = ["WitmotionSerialSource", "open_witmotion"]

IMU = "sensor_msgs/msg/Imu"


class WitmotionSerialSource:
    """A WitMotion IMU on a serial line (live)."""

    live = True
    stamp_clock: StampClock = "host"
    recv_clock: RecvClock = "host_monotonic"

    def __init__(self, port: str, *, baud: int = 9600, frame_id: str = "imu", topic: str = "/imu/data",
                 reconnect_attempts: int = 5, reconnect_delay_s: float = 0.2, read_timeout_s: float = 0.02) -> None:
        self.topic = topic
        self.decoder = WitDecoder(frame_id)
        self.stream = SerialStream(port, baudrate=baud, read_timeout_s=read_timeout_s,
                                   reconnect_attempts=reconnect_attempts, reconnect_delay_s=reconnect_delay_s)
        self.offsets = TimeOffsets()
        self.count = 0

    def open(self) -> WitmotionSerialSource:
        self.stream.open()
        return self

    def close(self) -> None:
        self.stream.close()

    def stop(self) -> None:
        """End :meth:`envelopes` within one read timeout (any thread)."""
        self.stream.stop()

    def __enter__(self) -> WitmotionSerialSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        return {self.topic: SourceTopic(self.topic, IMU)}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        """Samples as they complete, until :meth:`stop`/:meth:`close`.

        Raises:
            DriverError: the device was lost and did not come back.
        """
        want = topics is None or self.topic in topics
        for mono, wall, data in self.stream.chunks():
            done = self.decoder.feed(data, mono, wall) if data else [s for s in [self.decoder.flush()] if s]
            for imu, group in done:
                self.count += 1
                if want:
                    env = Envelope(self.topic, imu.stamp_ns, group.mono_ns, imu, IMU,
                                   {"temperature_c": group.temperature_c})
                    yield self.offsets.apply(env)

    def stats(self) -> dict[str, Any]:
        st = self.stream.stats
        return {"witmotion": self.decoder.stats.as_dict(), "messages": {self.topic: self.count},
                "serial": {"bytes_read": st.bytes_read, "disconnects": st.disconnects, "reconnects": st.reconnects,
                           "failed_reopens": st.failed_reopens, "events": list(st.events)}}


_INT = ("baud", "reconnect_attempts")
_FLOAT = ("reconnect_delay_s", "read_timeout_s")


def open_witmotion(url: str, **options: Any) -> WitmotionSerialSource:
    """Opener for ``witmotion+serial://`` URLs."""
    parts = urlsplit(str(url))
    opts: dict[str, Any] = {}
    for key, values in parse_qs(parts.query).items():
        try:
            opts[key] = int(values[-1]) if key in _INT else float(values[-1]) if key in _FLOAT else values[-1]
        except ValueError:
            raise SourceError(f"option {key}={values[-1]!r} is not a number", file=str(url)) from None
    opts.update(options)
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise SourceError("witmotion+serial:// needs a device, e.g. witmotion+serial:///dev/ttyUSB0", file=str(url))
    try:
        return WitmotionSerialSource(path, **opts)
    except TypeError as exc:
        raise SourceError(f"bad option: {exc}", file=str(url)) from None


open_witmotion.schemes = ("witmotion+serial",)  # type: ignore[attr-defined]
open_witmotion.suffixes = ()  # type: ignore[attr-defined]
