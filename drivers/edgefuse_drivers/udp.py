"""A reusable live UDP receiver for packet-based sensor drivers (LiDAR, radar).

:class:`UdpReceiver` binds a socket to ``host:port`` (optionally joining a multicast group), asks for a
large kernel receive buffer, and runs a receive thread that stamps every datagram on arrival with the
host's monotonic clock (``recv_ns``) and wall clock (``wall_ns``) and puts it into a bounded queue.

Nothing is lost silently: a datagram that arrives while the queue is full is dropped and counted in
``stats.dropped_queue``; datagrams the kernel dropped because the socket buffer was full are counted in
``stats.dropped_kernel`` where Linux reports them (``SO_RXQ_OVFL``); socket errors are counted in
``stats.errors``.  ``get(timeout)`` never blocks longer than ``timeout``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass

from edgefuse.errors import DriverError

__all__ = ["Datagram", "UdpReceiver", "UdpStats"]

_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux
DEFAULT_RCVBUF = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Datagram:
    """One received datagram: payload, host monotonic and wall-clock receive times [ns], sender."""

    payload: bytes
    recv_ns: int
    wall_ns: int
    src: tuple[str, int]


@dataclass
class UdpStats:
    received: int = 0
    bytes: int = 0
    dropped_queue: int = 0
    dropped_kernel: int = 0
    errors: int = 0


class UdpReceiver:
    """Receive UDP datagrams on ``host:port`` in a background thread (see the module documentation).

    ``port=0`` picks a free port (read :attr:`port` after :meth:`start`).  Use as a context manager or
    call :meth:`start` / :meth:`close`.

    Raises:
        DriverError: the socket cannot be bound (address in use, bad host).
    """

    def __init__(self, host: str = "0.0.0.0", port: int = 2368, *, rcvbuf: int = DEFAULT_RCVBUF,
                 queue_size: int = 8192, max_datagram: int = 65_535, multicast_group: str | None = None) -> None:
        self.host = host
        self.port = int(port)
        self.requested_rcvbuf = int(rcvbuf)
        self.rcvbuf = 0
        self.max_datagram = int(max_datagram)
        self.multicast_group = multicast_group
        self.stats = UdpStats()
        self._queue: queue.Queue[Datagram] = queue.Queue(maxsize=max(1, int(queue_size)))
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._kernel_drops_seen = 0

    def __enter__(self) -> UdpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> UdpReceiver:
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.requested_rcvbuf)
            with contextlib.suppress(OSError):  # not Linux: kernel drops are not reported
                sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
            bind_host = "" if self.multicast_group else self.host
            sock.bind((bind_host, self.port))
            if self.multicast_group:
                mreq = struct.pack("4s4s", socket.inet_aton(self.multicast_group),
                                   socket.inet_aton(self.host if self.host not in ("", "0.0.0.0") else "0.0.0.0"))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.settimeout(0.1)
        except OSError as exc:
            sock.close()
            raise DriverError(f"cannot receive UDP on {self.host}:{self.port}: {exc}") from exc
        self.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"udp-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close the socket (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def get(self, timeout: float | None = 0.1) -> Datagram | None:
        """The next datagram, or None when none arrived within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        anc = socket.CMSG_SPACE(4)
        while not self._stop.is_set():
            try:
                data, ancdata, _flags, src = sock.recvmsg(self.max_datagram, anc)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    break
                self.stats.errors += 1
                time.sleep(0.01)
                continue
            recv_ns, wall_ns = time.monotonic_ns(), time.time_ns()
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                    total = struct.unpack("=I", value[:4])[0]
                    if total > self._kernel_drops_seen:
                        self.stats.dropped_kernel += total - self._kernel_drops_seen
                        self._kernel_drops_seen = total
            self.stats.received += 1
            self.stats.bytes += len(data)
            try:
                self._queue.put_nowait(Datagram(data, recv_ns, wall_ns, (str(src[0]), int(src[1]))))
            except queue.Full:
                self.stats.dropped_queue += 1
