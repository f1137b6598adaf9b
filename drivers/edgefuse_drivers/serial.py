"""A serial line (RS-232/USB-serial, or a pseudo-terminal) read in chunks, with bounded reconnects.

:class:`SerialStream` is the byte transport the serial drivers share (NMEA GNSS, the WitMotion IMU).
It yields ``(mono_ns, wall_ns, data)`` chunks: the host's monotonic and wall-clock time right after the
read returned (the closest the host can come to when the bytes arrived) and the bytes; an empty ``data``
means the line was quiet for one read timeout, so a consumer can close an epoch without waiting for the
next burst.  A device that disappears (unplugged adapter, closed pseudo-terminal: the read fails or the
port vanishes) is recorded in :attr:`SerialStats.events`, then reopened up to ``reconnect_attempts`` times
``reconnect_delay_s`` apart; when that fails too, :meth:`SerialStream.chunks` raises
:class:`~edgefuse.errors.DriverError`.  :meth:`SerialStream.stop` (any thread) ends the iteration
within one read timeout.

:class:`LineSplitter` cuts a byte stream into lines (``\\n``-terminated, ``\\r`` stripped) and keeps with
each line the receive time of the chunk its first byte came in; lines longer than ``max_line`` (a
line-less stream of binary garbage) are dropped and counted instead of growing a buffer without bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edgefuse.errors import DriverError

__all__ = ["LineSplitter", "SerialStats", "SerialStream", "open_serial"]

#: at most this many events are kept verbatim (all are counted)
MAX_EVENTS = 50


@dataclass
class SerialStats:
    """What happened on the line: bytes read, disconnects, reconnects and the first events (texts)."""

    bytes_read: int = 0
    disconnects: int = 0
    reconnects: int = 0
    failed_reopens: int = 0
    events: list[str] = field(default_factory=list)

    def event(self, text: str) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append(text)


def open_serial(port: str, baudrate: int, timeout_s: float) -> Any:
    """Open ``port`` (a device path or a pyserial URL such as ``rfc2217://`` or ``loop://``) with pyserial."""
    try:
        import serial
    except ImportError:  # pragma: no cover - pyserial is a core dependency
        raise DriverError("pyserial is not installed (pip install pyserial)") from None
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DriverError(f"cannot open serial port: {exc}", file=port) from None


class SerialStream:
    """Chunks read from a serial port, reopened after a disconnect (see the module documentation).

    Args:
        port: device path (``/dev/ttyUSB0``, a pty slave ``/dev/pts/N``) or pyserial URL.
        baudrate: line speed [bit/s] (ignored by pseudo-terminals).
        read_timeout_s: longest one read blocks; also the granularity of :meth:`stop` and of quiet chunks.
        reconnect_attempts: reopen attempts after a disconnect before giving up (0: give up at once).
        reconnect_delay_s: pause before each reopen attempt.
        chunk_size: most bytes one read returns.
    """

    def __init__(self, port: str, *, baudrate: int = 9600, read_timeout_s: float = 0.05, reconnect_attempts: int = 5,
                 reconnect_delay_s: float = 0.2, chunk_size: int = 4096) -> None:
        self.port = port
        self.baudrate = int(baudrate)
        self.read_timeout_s = float(read_timeout_s)
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_delay_s = float(reconnect_delay_s)
        self.chunk_size = int(chunk_size)
        self.stats = SerialStats()
        self._port: Any = None
        self._stop = threading.Event()

    def open(self) -> SerialStream:
        if self._port is None:
            self._port = open_serial(self.port, self.baudrate, self.read_timeout_s)
        return self

    def close(self) -> None:
        self._stop.set()
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # closing a vanished device may fail; it is closed either way
                self.stats.event(f"close: {exc}")

    def stop(self) -> None:
        """Make :meth:`chunks` return within one read timeout (thread-safe)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _read(self) -> bytes:
        port = self._port
        if port is None:
            raise OSError("port closed")
        waiting = port.in_waiting
        data: bytes = port.read(max(1, min(int(waiting), self.chunk_size)))
        return data

    def chunks(self) -> Iterator[tuple[int, int, bytes]]:
        """``(mono_ns, wall_ns, data)`` until :meth:`stop`; ``data`` empty after a quiet read timeout.

        Raises:
            DriverError: the device is gone and could not be reopened within ``reconnect_attempts``.
        """
        self.open()
        while not self._stop.is_set():
            try:
                data = self._read()
            except Exception as exc:  # pyserial raises SerialException (an OSError) or OSError (EIO) on a lost device
                if self._stop.is_set():
                    return
                self._reconnect(exc)
                continue
            mono, wall = time.monotonic_ns(), time.time_ns()
            self.stats.bytes_read += len(data)
            yield mono, wall, data

    def _reconnect(self, exc: BaseException) -> None:
        self.stats.disconnects += 1
        self.stats.event(f"disconnected: {type(exc).__name__}: {exc}")
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as close_exc:
                self.stats.event(f"close after disconnect: {close_exc}")
        last = str(exc)
        for attempt in range(1, self.reconnect_attempts + 1):
            if self._stop.wait(self.reconnect_delay_s):
                return
            try:
                self._port = open_serial(self.port, self.baudrate, self.read_timeout_s)
            except DriverError as err:
                self.stats.failed_reopens += 1
                last = err.message
                continue
            self.stats.reconnects += 1
            self.stats.event(f"reconnected (attempt {attempt})")
            return
        raise DriverError(f"serial device lost ({exc}) and not back after {self.reconnect_attempts} reopen "
                          f"attempt(s): {last}", file=self.port)


class LineSplitter:
    """Cut chunks into lines; each line keeps the stamps of the chunk its first byte arrived in.

    ``overlong`` counts lines dropped for exceeding ``max_line`` bytes (their bytes in ``overlong_bytes``).
    """

    def __init__(self, max_line: int = 1024) -> None:
        self.max_line = int(max_line)
        self._buf = bytearray()
        self._stamp: tuple[int, int] | None = None
        self._dropping = False
        self.overlong = 0
        self.overlong_bytes = 0

    def feed(self, data: bytes, mono_ns: int, wall_ns: int) -> list[tuple[bytes, int, int]]:
        """Lines completed by ``data``: ``(line without the end of line, mono_ns, wall_ns)``."""
        out: list[tuple[bytes, int, int]] = []
        start = 0
        n = len(data)
        while start < n:
            if not self._buf and not self._dropping:
                self._stamp = (mono_ns, wall_ns)
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if self._dropping:
                self.overlong_bytes += len(piece)
            elif len(self._buf) + len(piece) > self.max_line:
                self.overlong += 1
                self.overlong_bytes += len(self._buf) + len(piece)
                self._buf.clear()
                self._dropping = True
            else:
                self._buf += piece
            if end < 0:
                break
            if not self._dropping:
                stamp = self._stamp or (mono_ns, wall_ns)
                out.append((bytes(self._buf).rstrip(b"\r"), stamp[0], stamp[1]))
            self._buf.clear()
            self._dropping = False
            start = end + 1
        return out

    def pending(self) -> bytes:
        """Bytes of an unfinished line (what is left at the end of a stream)."""
        return bytes(self._buf)
