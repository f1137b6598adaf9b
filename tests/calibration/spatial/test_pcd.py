"""PCD reader (ascii / binary / binary_compressed LZF) and the OpenCalib radar->camera sample (REAL files
copied into tests/data/opencalib_radar_lidar_camera, see SUBSET.md there)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from edgefuse_calibration.spatial.pcd import lzf_decompress, pcd_xyz, read_pcd

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform

OC = Path(__file__).resolve().parents[2] / "data" / "opencalib_radar_lidar_camera"
HEADER = "VERSION 0.7\nFIELDS x y z ring\nSIZE 4 4 4 2\nTYPE F F F U\nCOUNT 1 1 1 1\nWIDTH {n}\nHEIGHT 1\n" \
         "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {kind}\n"


def _lzf_literals(b: bytes) -> bytes:
    """A valid LZF stream made of literal runs only (control byte = run length - 1)."""
    out = bytearray()
    for i in range(0, len(b), 32):
        chunk = b[i:i + 32]
        out.append(len(chunk) - 1)
        out += chunk
    return bytes(out)


def _cloud(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.zeros(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("ring", "<u2")])
    for f in "xyz":
        a[f] = rng.normal(size=n) * 10
    a["ring"] = rng.integers(0, 64, n)
    return a


def test_ascii_binary_and_compressed_roundtrip(tmp_path: Path) -> None:
    a = _cloud(100, 1)
    assert a.dtype.names is not None
    asc = tmp_path / "a.pcd"
    rows = "\n".join(f"{r['x']!r} {r['y']!r} {r['z']!r} {r['ring']}" for r in a.tolist() and
                     [dict(zip(a.dtype.names, v, strict=True)) for v in a.tolist()])
    asc.write_text(HEADER.format(n=100, kind="ascii") + rows + "\n")
    b = read_pcd(asc)
    assert np.allclose(b["x"], a["x"]) and np.array_equal(b["ring"], a["ring"])
    binf = tmp_path / "b.pcd"
    binf.write_bytes(HEADER.format(n=100, kind="binary").encode() + a.tobytes())
    assert np.array_equal(read_pcd(binf), a)
    cols = b"".join(np.ascontiguousarray(a[f]).tobytes() for f in a.dtype.names)  # field by field
    comp = _lzf_literals(cols)
    cf = tmp_path / "c.pcd"
    cf.write_bytes(HEADER.format(n=100, kind="binary_compressed").encode()
                   + np.array([len(comp), len(cols)], "<u4").tobytes() + comp)
    assert np.array_equal(read_pcd(cf), a)
    assert pcd_xyz(cf).shape == (100, 3)


def test_lzf_back_reference_and_corruption(tmp_path: Path) -> None:
    # "abc" literal, then a back reference of length 6 at offset 3 (overlapping copy) -> "abcabcabc"
    stream = bytes([2]) + b"abc" + bytes([(4 << 5) | 0, 2])
    assert lzf_decompress(stream, 9) == b"abcabcabc"
    with pytest.raises(ValueError, match="LZF produced 9 bytes"):
        lzf_decompress(stream, 10)
    with pytest.raises(ValueError, match="out of range"):
        lzf_decompress(bytes([(1 << 5) | 0, 50]), 3)  # reference before the start
    bad = tmp_path / "bad.pcd"
    bad.write_bytes(HEADER.format(n=10, kind="binary_compressed").encode()
                    + np.array([5, 140], "<u4").tobytes() + b"\x1f\x00")
    with pytest.raises(CalibrationError):
        read_pcd(bad)
    (tmp_path / "nohdr.pcd").write_text("VERSION 0.7\nFIELDS x\n")
    with pytest.raises(CalibrationError):
        read_pcd(tmp_path / "nohdr.pcd")
    (tmp_path / "short.pcd").write_bytes(HEADER.format(n=10, kind="binary").encode() + b"\x00" * 7)
    with pytest.raises(CalibrationError):
        read_pcd(tmp_path / "short.pcd")


def test_opencalib_ascii_subset() -> None:
    a = read_pcd(OC / "lidar2camera" / "manual_calib" / "data" / "0_every50.pcd")
    assert len(a) == 1565
    assert a.dtype.names == ("x", "y", "z", "intensity")
    assert a[0]["x"] == pytest.approx(21.647913) and a[0]["intensity"] == 11.0  # first line of 0.pcd


def _param(p: Path) -> dict:  # type: ignore[type-arg]
    return next(iter(json.loads(p.read_text()).values()))["param"]  # type: ignore[no-any-return]


def test_opencalib_radar_objects_project_like_opencv() -> None:
    """Radar objects through the published radar->camera extrinsic land where cv2.projectPoints puts them."""
    d = OC / "radar2camera" / "manual_calib" / "data"
    intr = _param(d / "center_camera-intrinsic.json")
    K = np.array(intr["cam_K"]["data"], dtype=np.float64)
    dist = np.array(intr["cam_dist"]["data"][0] + [0.0])
    cam = CameraModel(name="c", frame_id="c", width=1920, height=1200, K=K, D=dist, model="plumb_bob")
    T = Transform(np.array(_param(d / "radar-to-center_camera-extrinsic.json")["sensor_calib"]["data"]), normalize=True)
    # columns 4, 5 = position_x, position_y (the header merges two names: rows have one column more)
    rows = np.loadtxt(d / "front_radar.csv", delimiter=",", skiprows=1, ndmin=2)
    assert rows.shape[1] == 26
    pts = np.stack([rows[:, 4], rows[:, 5], np.zeros(len(rows))], axis=1)
    assert len(pts) == 575
    pc = T.apply(pts)
    uv, valid = cam.project(pc)
    inside = valid & cam.in_image(np.where(valid[:, None], uv, -10.0))
    assert inside.sum() > 100
    ref, _ = cv2.projectPoints(pc[inside], np.zeros(3), np.zeros(3), K, dist)
    assert np.allclose(uv[inside], ref.reshape(-1, 2), atol=1e-6)
    # radar objects on the road plane ahead project below the horizon row (cy) of the image
    assert np.median(uv[inside, 1]) > K[1, 2] - 50
