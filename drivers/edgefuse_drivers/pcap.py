"""Packet captures (libpcap ``.pcap`` and ``.pcapng``) → UDP datagrams, for every packet-based driver.

Formats read:

- **libpcap** ("tcpdump" classic): a 24-byte file header (magic ``a1b2c3d4`` µs or ``a1b23c4d`` ns stamps,
  in the writer's byte order; version; snap length; link type), then records of a 16-byte header
  (seconds, sub-seconds, captured length, original length) and the captured bytes;
- **pcapng**: blocks of (type, total length, body, total length).  Read: Section Header (byte order),
  Interface Description (link type and ``if_tsresol`` per interface), Enhanced and Simple Packet blocks;
  other blocks (statistics, name resolution, custom) are skipped.  Several sections are allowed.

Link types: Ethernet (with 802.1Q / QinQ VLAN tags), Linux cooked capture v1 (SLL) and v2 (SLL2), raw IP
and BSD loopback (null).  IPv4 UDP datagrams are returned; fragmented datagrams are reassembled (at most
:data:`MAX_PENDING_FRAGMENTS` incomplete ones are kept at once).  Everything else (ARP, IPv6, TCP …) is
counted in :attr:`CaptureReader.skipped`.

Damaged input never raises and never hangs: a record or block that runs past the end of the file or
announces an impossible length ends the reading (the rest of the file cannot be framed), a frame whose
IP/UDP headers are inconsistent is dropped; both are counted in :attr:`CaptureReader.problems` (reason →
count) with the first byte offset in :attr:`CaptureReader.first_problem_offset`, and everything valid
before and around them is returned.  Only a file that is not a capture at all (bad magic, shorter than a
header) raises :class:`~edgefuse.errors.DriverError`.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgefuse.errors import DriverError

__all__ = [
    "MAX_PENDING_FRAGMENTS",
    "MAX_RECORD_BYTES",
    "CaptureReader",
    "UdpPacket",
    "read_udp",
    "write_pcap",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276
_LINKTYPES = {
    LINKTYPE_NULL: "null", LINKTYPE_ETHERNET: "ethernet", LINKTYPE_RAW: "raw", LINKTYPE_LINUX_SLL: "linux_sll",
    LINKTYPE_IPV4: "ipv4", LINKTYPE_LINUX_SLL2: "linux_sll2",
}
_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
#: upper bound on one record's captured length (IPv4 datagrams ≤ 64 kB, jumbo frames 9 kB)
MAX_RECORD_BYTES = 262_144
#: how many incomplete fragmented datagrams are kept at once (oldest dropped first, counted)
MAX_PENDING_FRAGMENTS = 64


@dataclass(frozen=True, slots=True)
class UdpPacket:
    """One UDP datagram of a capture: capture time (the capturing host's clock) [ns], addresses, ports,
    payload."""

    stamp_ns: int
    src: str
    src_port: int
    dst: str
    dst_port: int
    payload: bytes


@dataclass
class _Frag:
    parts: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None


class CaptureReader:
    """The UDP datagrams of a pcap/pcapng file, in file order (``for pkt in CaptureReader(path)``).

    After (or during) iteration: :attr:`frames` (link-layer frames read), :attr:`packets` (UDP datagrams
    returned), :attr:`skipped` (frames that are not IPv4/UDP, by kind), :attr:`repaired` (headers with a
    known writer bug that were read anyway), :attr:`problems` (damage, by
    reason), :attr:`format` (``"pcap"``/``"pcapng"``) and :attr:`link_types`.

    Raises (when iterating):
        DriverError: not a capture file (bad magic or shorter than a header).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.frames = 0
        self.packets = 0
        self.skipped: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.repaired: Counter[str] = Counter()
        self.first_problem_offset: int | None = None
        self.format = ""
        self.link_types: list[str] = []
        self._frags: dict[tuple[bytes, bytes, int, int], _Frag] = {}

    # -- reporting ---------------------------------------------------------------------------------
    def _problem(self, reason: str, offset: int) -> None:
        self.problems[reason] += 1
        if self.first_problem_offset is None:
            self.first_problem_offset = offset

    def report(self) -> str:
        """One line: counts, skipped kinds and problems."""
        parts = [f"{self.path.name}: {self.format or '?'} {'/'.join(self.link_types) or '?'}, "
                 f"{self.frames} frames, {self.packets} UDP datagrams"]
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())))
        if self.repaired:
            parts.append("repaired " + ", ".join(f"{k}: {v}" for k, v in sorted(self.repaired.items())))
        if self.problems:
            parts.append("PROBLEMS " + ", ".join(f"{k}: {v}" for k, v in sorted(self.problems.items()))
                         + f" (first at byte {self.first_problem_offset})")
        return "; ".join(parts)

    # -- reading -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[UdpPacket]:
        yield from self.iter_bytes(self.path.read_bytes())

    def iter_bytes(self, data: memoryview | bytes) -> Iterator[UdpPacket]:
        """The datagrams of a capture held in memory (what :meth:`__iter__` does with the file)."""
        view = memoryview(data)
        if len(view) >= 4 and int.from_bytes(view[:4], "little") == _PCAPNG_SHB:
            self.format = "pcapng"
            yield from self._iter_pcapng(view)
        else:
            self.format = "pcap"
            yield from self._iter_pcap(view)
        if self._frags:
            self.skipped["incomplete IPv4 fragments"] += len(self._frags)
            self._frags.clear()

    def _iter_pcap(self, data: memoryview) -> Iterator[UdpPacket]:
        if len(data) < 24:
            raise DriverError(f"not a packet capture: {len(data)} bytes, shorter than the 24-byte header",
                              file=self.path)
        magic = bytes(data[:4])
        if magic not in _PCAP_MAGIC:
            raise DriverError(f"not a packet capture: bad magic {magic.hex()} (expected pcap or pcapng)",
                              file=self.path)
        endian, sub_ns = _PCAP_MAGIC[magic]
        _vmaj, _vmin, _tz, _sig, _snaplen, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
        linktype &= 0x0FFFFFFF
        self.link_types = [_LINKTYPES.get(linktype, str(linktype))]
        if linktype not in _LINKTYPES:
            self._problem(f"unsupported link type {linktype}", 20)
            return
        rec = struct.Struct(endian + "IIII")
        off, n = 24, len(data)
        while off < n:
            if off + 16 > n:
                self._problem("truncated record header", off)
                return
            ts_s, ts_sub, incl, _orig = rec.unpack_from(data, off)
            if incl > MAX_RECORD_BYTES:
                self._problem("record length beyond the limit", off)
                return
            if off + 16 + incl > n:
                self._problem("truncated record", off)
                return
            self.frames += 1
            pkt = self._frame(data[off + 16 : off + 16 + incl], linktype, ts_s * 1_000_000_000 + ts_sub * sub_ns, off)
            if pkt is not None:
                yield pkt
            off += 16 + incl

    def _iter_pcapng(self, data: memoryview) -> Iterator[UdpPacket]:
        off, n = 0, len(data)
        endian = "<"
        ifaces: list[tuple[int, int, int]] = []  # (linktype, tick numerator ns, tick denominator)
        while off < n:
            if off + 12 > n:
                self._problem("truncated block header", off)
                return
            btype = int.from_bytes(data[off : off + 4], "little" if endian == "<" else "big")
            if btype == _PCAPNG_SHB:
                if off + 12 > n:
                    self._problem("truncated section header", off)
                    return
                bom = bytes(data[off + 8 : off + 12])
                endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else ""
                if not endian:
                    if off == 0:
                        raise DriverError("not a packet capture: bad pcapng byte-order magic", file=self.path)
                    self._problem("bad section header", off)
                    return
                ifaces = []
            (blen,) = struct.unpack_from(endian + "I", data, off + 4)
            if blen < 12 or blen % 4 or blen > MAX_RECORD_BYTES + 64:
                self._problem("impossible block length", off)
                return
            if off + blen > n:
                self._problem("truncated block", off)
                return
            (trailer,) = struct.unpack_from(endian + "I", data, off + blen - 4)
            if trailer != blen:
                self._problem("block length trailer mismatch", off)
                return
            body = data[off + 8 : off + blen - 4]
            if btype == 1 and len(body) >= 8:  # Interface Description Block
                linktype = struct.unpack_from(endian + "H", body, 0)[0]
                ifaces.append((linktype, *_tsresol(body[8:], endian)))
                name = _LINKTYPES.get(linktype, str(linktype))
                if name not in self.link_types:
                    self.link_types.append(name)
            elif btype in (6, 3):  # Enhanced / Simple Packet Block
                self.frames += 1
                pkt = self._pcapng_packet(btype, body, endian, ifaces, off)
                if pkt is not None:
                    yield pkt
            off += blen

    def _pcapng_packet(self, btype: int, body: memoryview, endian: str, ifaces: list[tuple[int, int, int]],
                       off: int) -> UdpPacket | None:
        if btype == 6:
            if len(body) < 20:
                self._problem("truncated packet block", off)
                return None
            iface, ts_hi, ts_lo, caplen, _orig = struct.unpack_from(endian + "IIIII", body, 0)
            if iface >= len(ifaces) or 20 + caplen > len(body):
                self._problem("packet block with a bad interface or length", off)
                return None
            linktype, num, den = ifaces[iface]
            stamp_ns = ((ts_hi << 32) | ts_lo) * num // den
            frame = body[20 : 20 + caplen]
        else:
            if not ifaces or len(body) < 4:
                self._problem("simple packet block without an interface", off)
                return None
            linktype, stamp_ns = ifaces[0][0], 0
            frame = body[4 : 4 + struct.unpack_from(endian + "I", body, 0)[0]]
        if linktype not in _LINKTYPES:
            self.skipped[f"link type {linktype}"] += 1
            return None
        return self._frame(frame, linktype, stamp_ns, off)

    def _frame(self, frame: memoryview, linktype: int, stamp_ns: int, off: int) -> UdpPacket | None:
        n = len(frame)
        if linktype == LINKTYPE_ETHERNET:
            if n < 14:
                self._problem("truncated Ethernet header", off)
                return None
            ethertype = int.from_bytes(frame[12:14], "big")
            pos = 14
            while ethertype in (0x8100, 0x88A8, 0x9100):  # VLAN tags
                if n < pos + 4:
                    self._problem("truncated VLAN tag", off)
                    return None
                ethertype = int.from_bytes(frame[pos + 2 : pos + 4], "big")
                pos += 4
        elif linktype == LINKTYPE_LINUX_SLL:
            if n < 16:
                self._problem("truncated Linux SLL header", off)
                return None
            ethertype, pos = int.from_bytes(frame[14:16], "big"), 16
        elif linktype == LINKTYPE_LINUX_SLL2:
            if n < 20:
                self._problem("truncated Linux SLL2 header", off)
                return None
            ethertype, pos = int.from_bytes(frame[0:2], "big"), 20
        elif linktype == LINKTYPE_NULL:
            if n < 4:
                self._problem("truncated loopback header", off)
                return None
            family = int.from_bytes(frame[0:4], "little")
            family = family if family < 256 else int.from_bytes(frame[0:4], "big")
            ethertype, pos = (0x0800 if family == 2 else 0), 4
        else:
            ethertype, pos = (0x0800 if n and frame[0] >> 4 == 4 else 0), 0
        if ethertype != 0x0800:
            self.skipped["IPv6" if ethertype == 0x86DD else "not IPv4"] += 1
            return None
        return self._ipv4(frame[pos:], stamp_ns, off)

    def _ipv4(self, ip: memoryview, stamp_ns: int, off: int) -> UdpPacket | None:
        if len(ip) < 20 or ip[0] >> 4 != 4:
            self._problem("truncated or invalid IPv4 header", off)
            return None
        ihl = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        if ihl < 20 or total < ihl:
            self._problem("inconsistent IPv4 lengths", off)
            return None
        if total > len(ip):
            # Some sensors (VLP-16 position packets) write a wrong IPv4 total length; a complete UDP
            # datagram inside the frame is still good (repaired: counted, not a problem).
            if ip[9] != 17 or len(ip) < ihl + 8 or int.from_bytes(ip[ihl + 4 : ihl + 6], "big") > len(ip) - ihl:
                self._problem("truncated IPv4 datagram", off)
                return None
            total = ihl + int.from_bytes(ip[ihl + 4 : ihl + 6], "big")
            self.repaired["IPv4 total length beyond the frame (UDP length used)"] += 1
        if ip[9] != 17:
            self.skipped["not UDP"] += 1
            return None
        flags_frag = int.from_bytes(ip[6:8], "big")
        more = bool(flags_frag & 0x2000)
        frag_off = (flags_frag & 0x1FFF) * 8
        body: memoryview | bytes = ip[ihl:total]
        src, dst = bytes(ip[12:16]), bytes(ip[16:20])
        if more or frag_off:
            whole = self._reassemble((src, dst, int.from_bytes(ip[4:6], "big"), ip[9]), frag_off, more,
                                     bytes(body), off)
            if whole is None:
                return None
            body = whole
        if len(body) < 8:
            self._problem("truncated UDP header", off)
            return None
        sport, dport, ulen = struct.unpack_from(">HHH", body, 0)
        if ulen < 8 or ulen > len(body):
            self._problem("UDP length inconsistent with the IP length", off)
            return None
        self.packets += 1
        return UdpPacket(stamp_ns, _ip(src), sport, _ip(dst), dport, bytes(body[8:ulen]))

    def _reassemble(self, key: tuple[bytes, bytes, int, int], frag_off: int, more: bool, chunk: bytes,
                    off: int) -> bytes | None:
        frag = self._frags.setdefault(key, _Frag())
        frag.parts[frag_off] = chunk
        if not more:
            frag.total = frag_off + len(chunk)
        if len(self._frags) > MAX_PENDING_FRAGMENTS:
            self._frags.pop(next(iter(self._frags)))
            self.skipped["incomplete IPv4 fragments"] += 1
        if frag.total is None or sum(len(b) for b in frag.parts.values()) < frag.total:
            return None
        self._frags.pop(key, None)
        buf = bytearray(frag.total)
        for start, part in frag.parts.items():
            if start + len(part) > len(buf):
                self._problem("IPv4 fragment runs past the datagram end", off)
                return None
            buf[start : start + len(part)] = part
        return bytes(buf)


def _tsresol(options: memoryview, endian: str) -> tuple[int, int]:
    """(numerator ns, denominator) of one timestamp tick from an IDB's options (default 1 µs)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1 and pos + 5 <= len(options):
            v = options[pos + 4]
            if v & 0x80:
                return 1_000_000_000, 1 << min(v & 0x7F, 62)
            exp = v & 0x7F
            return (10 ** (9 - exp), 1) if exp <= 9 else (1, 10 ** (exp - 9))
        pos += 4 + ((length + 3) & ~3)
    return 1_000, 1


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def read_udp(path: str | Path) -> Iterator[UdpPacket]:
    """Shorthand for ``iter(CaptureReader(path))``."""
    return iter(CaptureReader(path))


def write_pcap(path: str | Path, packets: Sequence[tuple[int, bytes] | tuple[int, bytes, int]], *,
               src: str = "192.168.1.201", dst: str = "255.255.255.255", src_port: int = 2368,
               dst_port: int = 2368) -> int:
    """Write ``(stamp_ns, payload[, dst_port])`` UDP datagrams as a nanosecond libpcap file (Ethernet/IPv4,
    no fragmentation: payloads up to 65,507 bytes); returns the number written."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262_144, LINKTYPE_ETHERNET))
    sip, dip = bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split("."))
    for item in packets:
        stamp_ns, payload = int(item[0]), bytes(item[1])
        dport = int(item[2]) if len(item) > 2 else dst_port
        udp = struct.pack(">HHHH", src_port, dport, 8 + len(payload), 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, sip, dip) + udp
        frame = b"\xff" * 6 + b"\x60\x76\x88\x00\x00\x00" + b"\x08\x00" + ip
        out += struct.pack("<IIII", stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000, len(frame), len(frame))
        out += frame
    Path(path).write_bytes(bytes(out))
    return len(packets)
