"""Minimal libpcap reader: capture records → UDP datagrams (Ethernet / Linux SLL / raw IPv4, VLAN,
IPv4 fragment reassembly).

Format (libpcap, "tcpdump" classic): a 24-byte global header (magic ``0xa1b2c3d4`` for microsecond
or ``0xa1b23c4d`` for nanosecond stamps, in the writer's byte order; version; snaplen; link type),
then records of a 16-byte header (seconds, sub-seconds, captured length, original length) and the
captured bytes.  pcapng is not supported (clear error).

Anything malformed (bad magic, a record running past the end of the file, a captured length larger
than the snap length, inconsistent IP/UDP lengths) raises :class:`~edgefuse.errors.DriverError`
with the file and byte offset; non-IPv4/non-UDP frames are skipped and counted in
:attr:`PcapReader.skipped`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgefuse.errors import DriverError

__all__ = ["PcapReader", "UdpDatagram", "read_udp"]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
#: upper bound on one record's captured length (jumbo frames are 9 kB; IPv4 datagrams ≤ 64 kB)
MAX_RECORD_BYTES = 262_144
#: how many incomplete fragmented datagrams are kept at once (oldest dropped first, counted)
MAX_PENDING_FRAGMENTS = 64
_Fragments = dict[tuple[bytes, bytes, int], dict[int, bytes]]


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """One UDP datagram: capture time (host clock) [ns], addresses, ports and payload bytes."""

    capture_ns: int
    src: str
    dst: str
    src_port: int
    dst_port: int
    payload: bytes


class PcapReader:
    """Iterate the UDP datagrams of a libpcap file (``iter(reader)``).

    ``skipped`` counts frames that were not IPv4/UDP (ARP, IPv6, TCP …) and dropped incomplete
    fragments, by reason.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.skipped: dict[str, int] = {}

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def __iter__(self) -> Iterator[UdpDatagram]:
        data = self.path.read_bytes()
        return self._iter_bytes(data)

    def _fail(self, message: str, offset: int) -> DriverError:
        return DriverError(f"{message} (byte offset {offset})", file=self.path)

    def _header(self, data: bytes) -> tuple[str, int, int, int]:
        """``(byte order, ns per sub-second unit, record length limit, link type)`` of the global header."""
        if len(data) < 24:
            raise self._fail(f"not a pcap file: {len(data)} bytes, shorter than the 24-byte header", 0)
        magic = data[:4]
        if magic == b"\x0a\x0d\x0d\x0a":
            raise self._fail("pcapng files are not supported; convert with `editcap -F pcap`", 0)
        if magic not in _MAGIC:
            raise self._fail(f"not a pcap file: bad magic {magic.hex()}", 0)
        endian, sub_ns = _MAGIC[magic]
        _vmaj, _vmin, _tz, _sig, snaplen, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
        linktype &= 0x0FFFFFFF
        if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4):
            raise self._fail(f"unsupported pcap link type {linktype}", 20)
        return endian, sub_ns, min(max(snaplen, 65_535), MAX_RECORD_BYTES), linktype

    def _record(self, data: bytes, off: int, hdr: tuple[str, int, int, int], fragments: _Fragments,
                frag_total: dict[tuple[bytes, bytes, int], int]) -> tuple[int, UdpDatagram | None]:
        """The record at ``off``: ``(offset of the next record, its datagram or None)``."""
        endian, sub_ns, limit, linktype = hdr
        n = len(data)
        if off + 16 > n:
            raise self._fail(f"truncated record header: {n - off} of 16 bytes", off)
        ts_s, ts_sub, incl, _orig = struct.unpack_from(endian + "IIII", data, off)
        if incl > limit:
            raise self._fail(f"record captured length {incl} exceeds the limit {limit}", off)
        if off + 16 + incl > n:
            raise self._fail(f"truncated record: {incl} bytes announced, {n - off - 16} left", off)
        frame = data[off + 16 : off + 16 + incl]
        stamp_ns = ts_s * 1_000_000_000 + ts_sub * sub_ns
        return off + 16 + incl, self._udp_of(frame, linktype, stamp_ns, off, fragments, frag_total)

    def _iter_bytes(self, data: bytes) -> Iterator[UdpDatagram]:
        hdr = self._header(data)
        fragments: _Fragments = {}
        frag_total: dict[tuple[bytes, bytes, int], int] = {}
        off = 24
        n = len(data)
        while off < n:
            off, dgram = self._record(data, off, hdr, fragments, frag_total)
            if dgram is not None:
                yield dgram
        self._end(fragments)

    def _end(self, fragments: _Fragments) -> None:
        for _ in fragments:
            self._skip("incomplete IPv4 fragments")

    def _udp_of(  # noqa: PLR0917 (one argument per parsing state)
        self,
        frame: bytes,
        linktype: int,
        stamp_ns: int,
        off: int,
        fragments: _Fragments,
        frag_total: dict[tuple[bytes, bytes, int], int],
    ) -> UdpDatagram | None:
        if linktype == LINKTYPE_ETHERNET:
            if len(frame) < 14:
                raise self._fail(f"truncated Ethernet frame ({len(frame)} bytes)", off)
            ethertype = int.from_bytes(frame[12:14], "big")
            pos = 14
            while ethertype in (0x8100, 0x88A8):  # VLAN tags
                if len(frame) < pos + 4:
                    raise self._fail("truncated VLAN tag", off)
                ethertype = int.from_bytes(frame[pos + 2 : pos + 4], "big")
                pos += 4
        elif linktype == LINKTYPE_LINUX_SLL:
            if len(frame) < 16:
                raise self._fail(f"truncated Linux SLL frame ({len(frame)} bytes)", off)
            ethertype = int.from_bytes(frame[14:16], "big")
            pos = 16
        else:
            ethertype = 0x0800 if frame[:1] and frame[0] >> 4 == 4 else 0
            pos = 0
        if ethertype != 0x0800:
            self._skip("not IPv4")
            return None
        ip = frame[pos:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            raise self._fail("truncated or invalid IPv4 header", off)
        ihl = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        if ihl < 20 or total < ihl or total > len(ip):
            raise self._fail(f"inconsistent IPv4 lengths (header {ihl}, total {total}, captured {len(ip)})", off)
        if ip[9] != 17:
            self._skip("not UDP")
            return None
        flags_frag = int.from_bytes(ip[6:8], "big")
        more = bool(flags_frag & 0x2000)
        frag_off = (flags_frag & 0x1FFF) * 8
        body = ip[ihl:total]
        src, dst = ip[12:16], ip[16:20]
        if more or frag_off:
            key = (src, dst, int.from_bytes(ip[4:6], "big"))
            parts = fragments.setdefault(key, {})
            parts[frag_off] = body
            if not more:
                frag_total[key] = frag_off + len(body)
            if len(fragments) > MAX_PENDING_FRAGMENTS:
                oldest = next(iter(fragments))
                fragments.pop(oldest)
                frag_total.pop(oldest, None)
                self._skip("incomplete IPv4 fragments")
            if key not in frag_total or sum(len(b) for b in parts.values()) < frag_total[key]:
                return None
            buf = bytearray(frag_total[key])
            for start, chunk in parts.items():
                if start + len(chunk) > len(buf):
                    raise self._fail("IPv4 fragment runs past the datagram end", off)
                buf[start : start + len(chunk)] = chunk
            fragments.pop(key)
            frag_total.pop(key)
            body = bytes(buf)
        if len(body) < 8:
            raise self._fail(f"truncated UDP header ({len(body)} bytes)", off)
        sport, dport, ulen = struct.unpack_from(">HHH", body, 0)
        if ulen < 8 or ulen > len(body):
            raise self._fail(f"UDP length {ulen} inconsistent with {len(body)} bytes", off)
        return UdpDatagram(stamp_ns, _ip(src), _ip(dst), sport, dport, body[8:ulen])


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def read_udp(path: str | Path) -> Iterator[UdpDatagram]:
    """Shorthand for ``iter(PcapReader(path))``."""
    return iter(PcapReader(path))
