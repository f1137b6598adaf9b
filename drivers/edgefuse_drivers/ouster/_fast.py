"""Numba kernels behind :meth:`OusterPcap.scans` and :meth:`LidarScan.xyz` (whole runs of packets per call).

- :func:`walk_records` indexes the plain records of a libpcap buffer (one IPv4 UDP datagram each, not a
  fragment, consistent lengths) without copying a byte: payload offset and length, destination port, capture
  time.  It stops at the first record it cannot take as plain (a VLAN tag, a fragment, anything not IPv4/UDP,
  a truncated or inconsistent record); the caller hands that one record to the Python reader, which
  reassembles, skips and counts, or raises exactly as it does when iterating, then resumes here.
- :func:`assemble` routes datagrams (LiDAR by port, then by size, as :meth:`OusterPcap.packets` does), checks
  every LiDAR and IMU packet with the same rules as :func:`parse_lidar_packet` / :func:`parse_imu_packet` and
  writes the valid columns of the LiDAR ones straight into the frame being built.  It returns to the caller
  when a packet starts another frame and when a packet fails a check (the caller parses that packet with the
  Python parser, which raises the error message, so the kernel never has to build one).
- :func:`xyz_into` applies the XYZ lookup table in one pass (same arithmetic as the NumPy expression:
  ``range_mm * 1e-3 * direction + offset``, no fused multiply-add), with the per-point time and return mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefuse._jit import njit

__all__ = ["PROFILE_CODES", "assemble", "walk_records", "xyz_into"]

#: profile name → kernel code
PROFILE_CODES = {"LEGACY": 0, "RNG15_RFL8_NIR8": 1, "RNG19_RFL8_SIG16_NIR16_DUAL": 2}
#: :func:`assemble` return events
DONE, NEW_FRAME, PYTHON = 0, 1, 2
_IMU_BYTES = 48


@njit(inline="always")
def _u16(b: Any, o: Any) -> Any:
    return np.int64(b[o]) | (np.int64(b[o + 1]) << 8)


@njit(inline="always")
def _u32(b: Any, o: Any) -> Any:
    return np.int64(b[o]) | (np.int64(b[o + 1]) << 8) | (np.int64(b[o + 2]) << 16) | (np.int64(b[o + 3]) << 24)


@njit(inline="always")
def _u32be(b: Any, o: Any) -> Any:
    return (np.int64(b[o]) << 24) | (np.int64(b[o + 1]) << 16) | (np.int64(b[o + 2]) << 8) | np.int64(b[o + 3])


@njit()
def walk_records(  # noqa: PLR0917 (one flat loop)
    data: Any, off: Any, big: Any, sub_ns: Any, limit: Any, linktype: Any, out_off: Any, out_len: Any,
    out_port: Any, out_ns: Any,
) -> Any:
    """Index plain records from ``off``: ``(count, offset reached, 1 if stopped at a record for Python)``."""
    n = data.shape[0]
    k = 0
    cap = out_off.shape[0]
    while off < n and k < cap:
        if off + 16 > n:
            return k, off, 1
        if big:
            ts_s, ts_sub, incl = _u32be(data, off), _u32be(data, off + 4), _u32be(data, off + 8)
        else:
            ts_s, ts_sub, incl = _u32(data, off), _u32(data, off + 4), _u32(data, off + 8)
        if incl > limit or off + 16 + incl > n:
            return k, off, 1
        f = off + 16
        if linktype == 1:  # Ethernet, no VLAN tag
            if incl < 14 or data[f + 12] != 0x08 or data[f + 13] != 0x00:
                return k, off, 1
            ip = f + 14
        elif linktype == 113:  # Linux SLL
            if incl < 16 or data[f + 14] != 0x08 or data[f + 15] != 0x00:
                return k, off, 1
            ip = f + 16
        else:  # raw IPv4
            ip = f
        avail = f + incl - ip
        if avail < 20 or data[ip] >> 4 != 4:
            return k, off, 1
        ihl = np.int64(data[ip] & 0x0F) * 4
        total = (np.int64(data[ip + 2]) << 8) | np.int64(data[ip + 3])
        if ihl < 20 or total < ihl or total > avail or data[ip + 9] != 17:
            return k, off, 1
        if (data[ip + 6] & 0x3F) != 0 or data[ip + 7] != 0:  # more fragments / fragment offset
            return k, off, 1
        u = ip + ihl
        if total - ihl < 8:
            return k, off, 1
        ulen = (np.int64(data[u + 4]) << 8) | np.int64(data[u + 5])
        if ulen < 8 or ulen > total - ihl:
            return k, off, 1
        out_off[k] = u + 8
        out_len[k] = ulen - 8
        out_port[k] = (np.int64(data[u + 2]) << 8) | np.int64(data[u + 3])
        out_ns[k] = ts_s * 1_000_000_000 + ts_sub * sub_ns
        k += 1
        off = f + incl
    return k, off, 0


@njit()
def _lidar_ok(  # noqa: PLR0917
    b: Any, o: Any, size: Any, expected: Any, prof: Any, w: Any, h: Any, cpp: Any, header: Any, col_bytes: Any,
    init_id: Any, sn: Any,
) -> Any:
    """Frame id of a LiDAR packet that passes every check of ``parse_lidar_packet``, else -1."""
    if size != expected:
        return -1
    if prof == 0:
        status_at = 16 + 12 * h
        frame_id = -1
        for c in range(cpp):
            co = o + c * col_bytes
            if _u32(b, co + status_at) == 0xFFFFFFFF:
                frame_id = _u16(b, co + 10)
                break
        if frame_id < 0:
            frame_id = _u16(b, o + 10)
    else:
        if _u16(b, o) != 1:
            return -1
        frame_id = _u16(b, o + 2)
        if init_id >= 0 and (_u16(b, o + 4) | (np.int64(b[o + 6]) << 16)) != init_id:
            return -1
        if sn >= 0 and (_u32(b, o + 7) | (np.int64(b[o + 11]) << 32)) != sn:
            return -1
    prev = -1
    for c in range(cpp):
        co = o + header + c * col_bytes
        valid = _u32(b, co + 16 + 12 * h) == 0xFFFFFFFF if prof == 0 else (b[co + 10] & 1) != 0
        if not valid:
            continue
        mid = _u16(b, co + 8)
        if mid >= w or mid <= prev:
            return -1
        prev = mid
        if b[co + 7] >= 0x80:  # timestamp beyond int64
            return -1
        if prof == 0 and _u16(b, co + 10) != frame_id:
            return -1
    return frame_id


@njit()
def _imu_ok(b: Any, o: Any, size: Any) -> Any:
    """An IMU packet that passes every check of ``parse_imu_packet``."""
    if size != _IMU_BYTES:
        return False
    v = b[o + 24 : o + 48].copy().view(np.float32)
    for i in range(6):
        x = np.float64(v[i])
        if not np.isfinite(x):
            return False
    for i in range(6):
        lim = 32.0 if i < 3 else 4000.0
        if abs(np.float64(v[i])) > lim:
            return False
    return not (b[o + 7] >= 0x80 or b[o + 15] >= 0x80 or b[o + 23] >= 0x80)


@njit()
def assemble(  # noqa: PLR0917 (one flat loop)
    buf: Any, offs: Any, lens: Any, ports: Any, i: Any, end: Any, lidar_port: Any, imu_port: Any, expected: Any,
    prof: Any, cpp: Any, header: Any, col_bytes: Any, init_id: Any, sn: Any, state: Any, ts: Any, valid: Any,
    rng: Any, refl: Any, nir: Any,
) -> Any:
    """Datagrams ``i..end-1`` into the frame in ``ts valid rng refl nir``; ``state`` = [building a frame
    (0/1), its frame id, frame id of the packet that starts the next].  Returns ``(index, event)``:
    ``DONE`` (all taken), ``NEW_FRAME`` (datagram ``index`` starts another frame: the caller ends the
    frame, starts a new one with ``state[2]`` and calls again from ``index``), ``PYTHON`` (datagram
    ``index`` failed a check: the caller parses it and goes on from ``index + 1``)."""
    w, h = rng.shape
    while i < end:
        size = lens[i]
        port = ports[i]
        o = offs[i]
        is_lidar = port == lidar_port or (port != imu_port and size == expected)
        if not is_lidar:
            if (port == imu_port or size == _IMU_BYTES) and not _imu_ok(buf, o, size):
                return i, 2
            i += 1
            continue
        fid = _lidar_ok(buf, o, size, expected, prof, w, h, cpp, header, col_bytes, init_id, sn)
        if fid < 0:
            return i, 2
        if state[0] == 0 or state[1] != fid:
            state[2] = fid
            return i, 1
        for c in range(cpp):
            co = o + header + c * col_bytes
            if prof == 0:
                if _u32(buf, co + 16 + 12 * h) != 0xFFFFFFFF:
                    continue
            elif (buf[co + 10] & 1) == 0:
                continue
            m = _u16(buf, co + 8)
            t = np.int64(0)
            for k in range(8):
                t |= np.int64(buf[co + k]) << (8 * k)
            ts[m] = t
            valid[m] = True
            if prof == 0:
                for r in range(h):
                    p = co + 16 + 12 * r
                    rng[m, r] = _u32(buf, p) & 0xFFFFF
                    refl[m, r] = _u16(buf, p + 4)
                    nir[m, r] = _u16(buf, p + 8)
            elif prof == 1:
                for r in range(h):
                    p = co + 12 + 4 * r
                    rng[m, r] = (_u16(buf, p) & 0x7FFF) * 8
                    refl[m, r] = buf[p + 2]
                    nir[m, r] = buf[p + 3]
            else:
                for r in range(h):
                    p = co + 12 + 16 * r
                    word = _u32(buf, p)
                    rng[m, r] = word & 0x7FFFF
                    refl[m, r] = word >> 24
                    nir[m, r] = _u16(buf, p + 12)
        i += 1
    return i, 0


@njit()
def xyz_into(  # noqa: PLR0917
    rng: Any, ts: Any, valid: Any, direction: Any, offset: Any, pts: Any, t: Any, ok: Any,
) -> Any:
    """``pts`` (W*H, 3), ``t`` (W*H,), ``ok`` (W*H,) of a frame, column by column."""
    w, h = rng.shape
    for i in range(w):
        ti = ts[i]
        vi = valid[i]
        for j in range(h):
            k = i * h + j
            r = np.float64(rng[i, j]) * 1e-3
            pts[k, 0] = r * direction[i, j, 0] + offset[i, j, 0]
            pts[k, 1] = r * direction[i, j, 1] + offset[i, j, 1]
            pts[k, 2] = r * direction[i, j, 2] + offset[i, j, 2]
            t[k] = ti
            ok[k] = vi and rng[i, j] > 0
