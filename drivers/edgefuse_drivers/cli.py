"""``edgefuse drivers …``: sensor-driver tools.

``edgefuse drivers play-pcap CAPTURE --to udp://HOST[:PORT] [--rate R] [--port P] [--port-map CAP:SEND …]
[--loop N]`` re-sends the UDP payloads of a pcap/pcapng capture at their recorded pace (``--rate 2`` twice as
fast, ``--rate 0`` as fast as possible), e.g. to feed a live driver (``velodyne://HOST:PORT``) without the
sensor.  With a PORT every datagram goes to it; without, each goes to the destination port it was captured
with; ``--port-map 7502:17502`` sends the datagrams captured to port 7502 to port 17502 instead (a sensor
with several ports, e.g. an Ouster's LiDAR and IMU ports).  ``--port`` keeps only datagrams sent to that
destination port.  Prints one summary line (datagrams sent, span,
capture problems).

``add_drivers_parser(subparsers)`` is what ``edgefuse`` loads (entry point group ``edgefuse.cli``).
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from edgefuse.errors import DriverError

__all__ = ["add_drivers_parser", "play_pcap"]


def add_drivers_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("drivers", help="sensor-driver tools (replay packet captures over UDP)")
    sub = p.add_subparsers(dest="drivers_command", metavar="TOOL", required=True)
    play = sub.add_parser("play-pcap", help="re-send a capture's UDP payloads at their recorded pace")
    play.add_argument("capture", help=".pcap or .pcapng file")
    play.add_argument("--to", required=True, metavar="udp://HOST[:PORT]",
                      help="where to send the payloads (no PORT: the captured destination ports)")
    play.add_argument("--port-map", action="append", default=[], metavar="CAP:SEND",
                      help="send datagrams captured to port CAP to port SEND (repeatable)")
    play.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1; 0 = as fast as possible)")
    play.add_argument("--port", type=int, default=None, help="only datagrams to this destination port")
    play.add_argument("--loop", type=int, default=1, help="play the capture this many times (default 1)")
    play.set_defaults(func=_cmd_play)
    return p  # type: ignore[no-any-return]


def _cmd_play(args: argparse.Namespace) -> int:
    port_map: dict[int, int] = {}
    for item in args.port_map:
        cap, _, send = item.partition(":")
        if not (cap.isdigit() and send.isdigit() and int(cap) < 65536 and 0 < int(send) < 65536):
            raise DriverError(f"--port-map must be CAPTURED_PORT:SEND_PORT, not {item!r}")
        port_map[int(cap)] = int(send)
    sent, span_s, report = play_pcap(args.capture, args.to, rate=args.rate, port=args.port, loop=args.loop,
                                     port_map=port_map)
    print(f"sent {sent} datagrams to {args.to} over {span_s:.3f} s; {report}", flush=True)
    return 0


def play_pcap(capture: str, to: str, *, rate: float = 1.0, port: int | None = None,
              loop: int = 1, port_map: dict[int, int] | None = None) -> tuple[int, float, str]:
    """Send ``capture``'s UDP payloads to ``to`` (``udp://host[:port]``; no port: each datagram's captured
    destination port, remapped by ``port_map``); returns (datagrams, seconds, report).

    Raises:
        DriverError: a bad ``--to`` URL or rate, or the capture is not a capture file.
    """
    from edgefuse_drivers.pcap import CaptureReader

    url = urlsplit(to)
    try:
        to_port = url.port
    except ValueError:
        to_port = -1
    if url.scheme != "udp" or not url.hostname or to_port in {-1, 0}:
        raise DriverError(f"--to must be udp://HOST[:PORT], not {to!r}")
    port_map = port_map or {}
    if not rate >= 0:  # also NaN
        raise DriverError(f"--rate must be >= 0, not {rate}")
    reader = CaptureReader(capture)
    packets = [(p.stamp_ns, p.payload, port_map.get(p.dst_port, to_port or p.dst_port)) for p in reader
               if port is None or p.dst_port == port]
    sent = 0
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(max(1, loop)):
            t0_cap = packets[0][0] if packets else 0
            t0 = time.monotonic()
            for stamp_ns, payload, dport in packets:
                if rate > 0:
                    due = t0 + (stamp_ns - t0_cap) / 1e9 / rate
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                sock.sendto(payload, (url.hostname, dport))
                sent += 1
    return sent, time.monotonic() - start, reader.report()


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `python -m edgefuse_drivers.cli`
    from edgefuse._cli_common import run_command

    parser = argparse.ArgumentParser(prog="edgefuse")
    add_drivers_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.trace = False
    return run_command(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
