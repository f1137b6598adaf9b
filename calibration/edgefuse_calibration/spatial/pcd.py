"""A small reader for PCL ``.pcd`` files (v0.7): ``ascii``, ``binary`` and ``binary_compressed`` (LZF).

:func:`read_pcd` returns a numpy structured array with one field per PCD field (``COUNT`` > 1 fields
get a sub-array).  Only what the format defines is accepted; anything else raises
:class:`edgefuse.errors.CalibrationError` with the file name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError, InputDataError

_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8",
          ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8"}


def lzf_decompress(data: bytes, out_len: int) -> bytes:
    """Decompress an LZF block (liblzf format) whose decompressed size is ``out_len``.

    Raises:
        InputDataError: the block is corrupt or does not decompress to ``out_len`` bytes.
    """
    out = bytearray(out_len)
    i = 0
    o = 0
    n = len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # literal run of ctrl + 1 bytes
            ln = ctrl + 1
            if i + ln > n or o + ln > out_len:
                raise InputDataError("LZF literal run overflows")
            out[o:o + ln] = data[i:i + ln]
            i += ln
            o += ln
        else:  # back reference
            ln = ctrl >> 5
            if ln == 7:
                if i >= n:
                    raise InputDataError("LZF truncated length")
                ln += data[i]
                i += 1
            if i >= n:
                raise InputDataError("LZF truncated offset")
            ref = o - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            ln += 2
            if ref < 0 or o + ln > out_len:
                raise InputDataError("LZF back reference out of range")
            for _ in range(ln):  # may overlap: byte by byte
                out[o] = out[ref]
                o += 1
                ref += 1
    if o != out_len:
        raise InputDataError(f"LZF produced {o} bytes, header says {out_len}")
    return bytes(out)


def read_pcd(path: str | Path) -> npt.NDArray[Any]:
    """Points of a PCD file as a structured array (fields named as in the file)."""
    p = Path(path)
    raw = p.read_bytes()
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise CalibrationError("PCD header has no DATA line", file=p)
        line = raw[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key.upper()] = vals
        if key.upper() == "DATA":
            break
    try:
        names = header["FIELDS"]
        sizes = [int(v) for v in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(v) for v in header.get("COUNT", ["1"] * len(names))]
        n = int(header["POINTS"][0]) if "POINTS" in header else \
            int(header["WIDTH"][0]) * int(header.get("HEIGHT", ["1"])[0])
        kind = header["DATA"][0].lower()
    except (KeyError, IndexError, ValueError):
        raise CalibrationError("PCD header lacks or garbles FIELDS/SIZE/TYPE/POINTS/DATA", file=p) from None
    if not len(names) == len(sizes) == len(types) == len(counts):
        raise CalibrationError("PCD header: FIELDS, SIZE, TYPE and COUNT differ in length", file=p)
    fields: list[tuple[str, str] | tuple[str, str, tuple[int]]] = []
    for nm, sz, ty, ct in zip(names, sizes, types, counts, strict=True):
        dt = _TYPES.get((ty.upper(), sz))
        if dt is None:
            raise CalibrationError(f"PCD field {nm!r}: unsupported TYPE {ty} SIZE {sz}", file=p)
        fields.append((nm, dt) if ct == 1 else (nm, dt, (ct,)))
    dtype = np.dtype(fields)
    body = raw[pos:]
    try:
        if kind == "ascii":
            rows = np.loadtxt(body.decode("ascii").splitlines(), ndmin=2, dtype=np.float64)
            if rows.shape[0] < n or rows.shape[1] != sum(counts):
                raise CalibrationError(f"PCD ascii body has shape {rows.shape}, header says {n} x {sum(counts)}",
                                       file=p)
            out = np.zeros(n, dtype=dtype)
            col = 0
            for nm, ct in zip(names, counts, strict=True):
                v = rows[:n, col:col + ct]
                out[nm] = v[:, 0] if ct == 1 else v
                col += ct
            return out
        if kind == "binary":
            if len(body) < n * dtype.itemsize:
                raise CalibrationError("PCD binary body is truncated", file=p)
            return np.frombuffer(body, dtype=dtype, count=n).copy()
        if kind == "binary_compressed":
            comp, size = (int(v) for v in np.frombuffer(body[:8], dtype="<u4"))
            flat = lzf_decompress(body[8:8 + comp], size)
            out = np.zeros(n, dtype=dtype)
            off = 0
            for nm, sz, ct in zip(names, sizes, counts, strict=True):  # column-major: field by field
                sub = dtype[nm]
                ln = n * sz * ct
                out[nm] = np.frombuffer(flat[off:off + ln], dtype=sub.base).reshape((n, *sub.shape))
                off += ln
            return out
    except ValueError as exc:
        raise CalibrationError(f"PCD body cannot be decoded: {exc}", file=p) from None
    raise CalibrationError(f"PCD DATA {kind!r} is not supported", file=p)


def pcd_xyz(path: str | Path) -> npt.NDArray[np.float64]:
    """(N, 3) float64 x, y, z of a PCD file."""
    a = read_pcd(path)
    if a.dtype.names is None or not {"x", "y", "z"} <= set(a.dtype.names):
        raise CalibrationError("PCD file has no x, y, z fields", file=path)
    return np.stack([a["x"], a["y"], a["z"]], axis=1).astype(np.float64)


def pcd_organized_xyz(path: str | Path) -> npt.NDArray[np.float64]:
    """x, y, z of an organized PCD file as (HEIGHT, WIDTH, 3) float64 (e.g. an Ouster scan: 64 x 1024)."""
    height, width = _organized_shape(path)
    xyz = pcd_xyz(path)
    if len(xyz) != height * width:
        raise CalibrationError(f"PCD has {len(xyz)} points, header says {height} x {width}", file=path)
    return xyz.reshape(height, width, 3)


def pcd_organized_scan(path: str | Path) -> npt.NDArray[np.float64]:
    """An organized PCD scan as (HEIGHT, WIDTH, 4) float64, x, y, z and the returns' ``intensity``, or
    (HEIGHT, WIDTH, 3) when the file has no intensity field."""
    height, width = _organized_shape(path)
    a = read_pcd(path)
    if a.dtype.names is None or not {"x", "y", "z"} <= set(a.dtype.names):
        raise CalibrationError("PCD file has no x, y, z fields", file=path)
    if len(a) != height * width:
        raise CalibrationError(f"PCD has {len(a)} points, header says {height} x {width}", file=path)
    cols = ["x", "y", "z"] + (["intensity"] if "intensity" in a.dtype.names else [])
    return np.stack([np.asarray(a[c], np.float64) for c in cols], axis=1).reshape(height, width, len(cols))


def _organized_shape(path: str | Path) -> tuple[int, int]:
    p = Path(path)
    height = width = 0
    with p.open("rb") as fh:
        for _ in range(64):
            line = fh.readline().decode("ascii", errors="replace").split()
            if not line:
                continue
            if line[0].upper() == "WIDTH":
                width = int(line[1])
            elif line[0].upper() == "HEIGHT":
                height = int(line[1])
            elif line[0].upper() == "DATA":
                break
    if height < 2 or width < 2:
        raise CalibrationError(f"PCD file is not organized (WIDTH {width}, HEIGHT {height})", file=p)
    return height, width
