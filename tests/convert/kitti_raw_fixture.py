"""Lay out a tiny KITTI raw drive (2-3 frames) following the public raw-data layout.

Built from the real KITTI object frame in tests/data/kitti_object_3frames (image, Velodyne scan,
calibration) plus synthetic OXTS lines and synthetic nanosecond timestamps::

    <tmp>/2011_09_26/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <tmp>/2011_09_26/2011_09_26_drive_0001_sync/
        image_00..03/{timestamps.txt, data/0000000000.png …}   00/01 grey, 02/03 colour
        velodyne_points/{timestamps.txt, timestamps_start.txt, timestamps_end.txt, data/*.bin}
        oxts/{timestamps.txt, dataformat.txt, data/*.txt}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "kitti_object_3frames" / "training"
DATE = "2011_09_26"
DRIVE = f"{DATE}_drive_0001_sync"
#: base stamps: 2011-09-26 13:02:25.964389445 UTC = 1317042145.964389445 s
BASE_TEXT = "2011-09-26 13:02:25.964389445"
BASE_NS = 1317042145_964389445
PERIOD_NS = 103_621_773  # deliberately not a round number, so ns precision matters


@dataclass
class RawFixture:
    """Paths and ground truth of a generated drive."""

    date_dir: Path
    drive_dir: Path
    stamps_ns: list[int]  # velodyne stamps; image_0c = +c µs, oxts = -7 ns
    clouds: list[np.ndarray]  # (N, 4) float32 per frame
    oxts: list[np.ndarray]  # (30,) float64 per frame


def _kitti_kv(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip():
            out[key.strip()] = np.array(rest.split(), dtype=np.float64)
    return out


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.12e}" for v in np.asarray(values, dtype=np.float64).ravel())


def stamp_text(stamp_ns: int) -> str:
    """KITTI timestamp line for a stamp in the fixture's day (UTC)."""
    day_start = BASE_NS - (13 * 3600 + 2 * 60 + 25) * 1_000_000_000 - 964389445
    rel = stamp_ns - day_start
    sec, nsec = divmod(rel, 1_000_000_000)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"2011-09-26 {h:02d}:{m:02d}:{s:02d}.{nsec:09d}"


def make_kitti_raw(root: Path, n_frames: int = 3, *, seed: int = 0, point_stride: int = 20) -> RawFixture:
    """Write the drive under ``root`` and return its ground truth."""
    rng = np.random.default_rng(seed)
    date_dir = root / DATE
    drive = date_dir / DRIVE
    calib = _kitti_kv(DATA / "calib" / "000000.txt")
    P = {i: calib[f"P{i}"].reshape(3, 4) for i in range(4)}
    color = cv2.imread(str(DATA / "image_2" / "000000.png"), cv2.IMREAD_COLOR)
    assert color is not None
    h, w = color.shape[:2]

    date_dir.mkdir(parents=True)
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for i in range(4):
        fx = P[i][0, 0]
        lines += [
            f"S_{i:02d}: 1.392000e+03 5.120000e+02",
            f"K_{i:02d}: {_fmt(P[i][:, :3])}",
            f"D_{i:02d}: {_fmt(np.zeros(5))}",
            f"R_{i:02d}: {_fmt(np.eye(3))}",
            f"T_{i:02d}: {_fmt(np.array([P[i][0, 3] / fx, 0.0, 0.0]))}",
            f"S_rect_{i:02d}: {_fmt(np.array([w, h]))}",
            f"R_rect_{i:02d}: {_fmt(calib['R0_rect'] if i == 0 else np.eye(3))}",
            f"P_rect_{i:02d}: {_fmt(P[i])}",
        ]
    (date_dir / "calib_cam_to_cam.txt").write_text("\n".join(lines) + "\n")
    tv = calib["Tr_velo_to_cam"].reshape(3, 4)
    (date_dir / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {_fmt(tv[:, :3])}\nT: {_fmt(tv[:, 3])}\n"
        "delta_f: 0.000000e+00 0.000000e+00\ndelta_c: 0.000000e+00 0.000000e+00\n")
    ti = calib["Tr_imu_to_velo"].reshape(3, 4)
    (date_dir / "calib_imu_to_velo.txt").write_text(
        f"calib_time: 25-May-2012 16:47:16\nR: {_fmt(ti[:, :3])}\nT: {_fmt(ti[:, 3])}\n")

    stamps = [BASE_NS + k * PERIOD_NS for k in range(n_frames)]
    grey = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    for cam in range(4):
        folder = drive / f"image_{cam:02d}"
        (folder / "data").mkdir(parents=True)
        (folder / "timestamps.txt").write_text("".join(stamp_text(s + cam * 1000) + "\n" for s in stamps))
        for k in range(n_frames):
            img = grey if cam < 2 else color
            cv2.imwrite(str(folder / "data" / f"{k:010d}.png"), np.roll(img, 3 * k, axis=1))

    scan = np.fromfile(DATA / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)[::point_stride]
    clouds = []
    velo = drive / "velodyne_points"
    (velo / "data").mkdir(parents=True)
    for k in range(n_frames):
        cloud = scan.copy()
        cloud[:, 0] += np.float32(0.5 * k)
        clouds.append(cloud)
        cloud.tofile(velo / "data" / f"{k:010d}.bin")
    for name, shift in (("timestamps.txt", 0), ("timestamps_start.txt", -50_000_000),
                        ("timestamps_end.txt", 50_000_000)):
        (velo / name).write_text("".join(stamp_text(s + shift) + "\n" for s in stamps))

    oxts_dir = drive / "oxts"
    (oxts_dir / "data").mkdir(parents=True)
    (oxts_dir / "timestamps.txt").write_text("".join(stamp_text(s - 7) + "\n" for s in stamps))
    (oxts_dir / "dataformat.txt").write_text("lat: latitude of the oxts-unit (deg)\n")
    oxts = []
    for k in range(n_frames):
        v = np.zeros(30)
        v[0:3] = [49.015003 + 1e-5 * k, 8.434338, 116.4 + 0.1 * k]  # lat, lon, alt
        v[3:6] = [*rng.uniform(-0.1, 0.1, 2), rng.uniform(-3, 3)]  # roll, pitch, yaw
        v[6:11] = rng.normal(0, 3, 5)  # vn ve vf vl vu
        v[11:17] = rng.normal(0, 1, 6)  # ax ay az af al au
        v[17:23] = rng.normal(0, 0.1, 6)  # wx wy wz wf wl wu
        v[23:25] = [0.35, 0.05]  # pos_accuracy, vel_accuracy
        v[25:30] = [4, 10, 4, 4, 6]  # navstat numsats posmode velmode orimode
        oxts.append(v)
        ints = {25, 26, 27, 28, 29}
        (oxts_dir / "data" / f"{k:010d}.txt").write_text(
            " ".join(str(int(x)) if i in ints else repr(float(x)) for i, x in enumerate(v)) + "\n")
    return RawFixture(date_dir, drive, stamps, clouds, oxts)
