"""KITTI raw drive (``_sync`` or ``_extract``) → time-ordered messages.

Layout (as distributed by the KITTI raw data page)::

    <date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <date>/<date>_drive_<NNNN>_sync/
        image_00/timestamps.txt, image_00/data/0000000000.png   grey left  (mono8)
        image_01/…                                              grey right (mono8)
        image_02/…, image_03/…                                  colour left/right (bgr8 as decoded)
        velodyne_points/timestamps.txt, velodyne_points/data/0000000000.bin   float32 x,y,z,reflectance
        oxts/timestamps.txt, oxts/data/0000000000.txt            30 values per file (see OXTS_FIELDS)

Line ``i`` of a ``timestamps.txt`` (``2011-09-26 13:02:25.964389445``, UTC) is the stamp of data
file ``i`` (10-digit index); stamps are parsed exactly to integer ns.  A stamp without file or a
file without stamp is skipped and reported.

Topics and frames (frame names as :func:`edgefuse.rig.importers.from_kitti_raw` uses them):
``/camN/image_raw[/compressed]`` + ``/camN/camera_info`` in frame ``camN`` (N = 0..3),
``/velodyne_points`` (x, y, z, intensity float32) in ``velodyne``, ``/gps/fix`` (NavSatFix) and
``/imu/data`` (Imu) in ``imu``.

OXTS → Imu: orientation from roll, pitch, yaw (``R = Rz(yaw)·Ry(pitch)·Rx(roll)``: IMU axes x
forward, y left, z up in an east-north-up world, yaw 0 = east); angular velocity ``wx, wy, wz`` and
linear acceleration ``ax, ay, az`` (IMU axes); covariances unknown (all zero, as ROS defines).
OXTS → NavSatFix: lat, lon, alt; status STATUS_FIX and service GPS (the OXTS ``navstat``/``posmode``
codes are not mapped: their tables are not part of the data); covariance diagonal
``pos_accuracy²`` (COVARIANCE_TYPE_DIAGONAL_KNOWN).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.convert.plan import (
    MSG_COMPRESSED_IMAGE,
    MSG_IMAGE,
    MSG_IMU,
    MSG_NAVSATFIX,
    MSG_POINTCLOUD2,
    DatasetPlan,
    Item,
    load_image,
    load_kitti_bin,
    parse_kitti_timestamps,
)
from edgefuse.convert.report import SkippedItem
from edgefuse.errors import ConvertError
from edgefuse.msgs.types import ImuData, NavSatFixData

#: The 30 OXTS values per line, in KITTI's documented order.
OXTS_FIELDS = (
    "lat", "lon", "alt", "roll", "pitch", "yaw", "vn", "ve", "vf", "vl", "vu",
    "ax", "ay", "az", "af", "al", "au", "wx", "wy", "wz", "wf", "wl", "wu",
    "pos_accuracy", "vel_accuracy", "navstat", "numsats", "posmode", "velmode", "orimode",
)
OXTS = {name: i for i, name in enumerate(OXTS_FIELDS)}

CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt")
CAMERAS = ("image_00", "image_01", "image_02", "image_03")
FRAME_LIDAR = "velodyne"
FRAME_IMU = "imu"
TOPIC_LIDAR = "/velodyne_points"
TOPIC_GPS = "/gps/fix"
TOPIC_IMU = "/imu/data"


def _is_drive(folder: Path) -> bool:
    return any((folder / sub / "timestamps.txt").is_file() for sub in (*CAMERAS, "velodyne_points", "oxts"))


def find_drive(root: Path) -> Path:
    """Return the drive folder: ``root`` itself, or the single ``*_drive_*`` folder inside ``root``.

    Raises:
        ConvertError: no drive, or several drives (convert one at a time).
    """
    if not root.is_dir():
        raise ConvertError("dataset folder not found", file=root)
    if _is_drive(root):
        return root
    drives = sorted(p for p in root.iterdir() if p.is_dir() and _is_drive(p))
    if not drives:
        raise ConvertError("not a KITTI raw drive (no image_0x/, velodyne_points/ or oxts/ with "
                           "timestamps.txt)", file=root)
    if len(drives) > 1:
        raise ConvertError(f"{len(drives)} drives found ({', '.join(p.name for p in drives)}); "
                           "convert one drive folder at a time", file=root)
    return drives[0]


def read_kitti_raw(root: Path, *, compress_images: bool = False) -> DatasetPlan:
    """Scan a KITTI raw drive and plan its conversion (see the module docstring).

    Args:
        root: the drive folder (``<date>_drive_<NNNN>_sync``) or the date folder holding one drive.
            Calibration files are looked up in the drive's parent (the date folder).
        compress_images: keep PNG bytes (CompressedImage) instead of decoding.

    Raises:
        ConvertError: not a drive, malformed timestamps file.
    """
    drive = find_drive(Path(root))
    plan = DatasetPlan(layout="kitti_raw", root=drive, topics={}, items=[])
    suffix = "/compressed" if compress_images else ""
    image_type = MSG_COMPRESSED_IMAGE if compress_images else MSG_IMAGE
    for index, cam in enumerate(CAMERAS):
        frame_id = f"cam{index}"
        topic = f"/{frame_id}/image_raw{suffix}"
        if _plan_stream(plan, drive / cam, cam, topic=topic, msgtype=image_type, ext=".png",
                        loader=partial(_load_png, frame_id=frame_id, compressed=compress_images)):
            plan.camera_topics[topic] = (frame_id, f"/{frame_id}/camera_info")
            plan.frame_of_topic[topic] = frame_id
    _plan_stream(plan, drive / "velodyne_points", "velodyne_points", topic=TOPIC_LIDAR,
                 msgtype=MSG_POINTCLOUD2, ext=".bin", loader=partial(_load_bin, frame_id=FRAME_LIDAR))
    if _plan_stream(plan, drive / "oxts", "oxts", topic=TOPIC_GPS, msgtype=MSG_NAVSATFIX, ext=".txt",
                    loader=load_oxts_navsat):
        plan.topics[TOPIC_IMU] = MSG_IMU
        plan.items.extend(
            Item(it.stamp_ns, TOPIC_IMU, it.stream, it.key, it.source, partial(load_oxts_imu, it.source,
                                                                                 it.stamp_ns))
            for it in list(plan.items) if it.topic == TOPIC_GPS)
    for topic in (TOPIC_LIDAR, TOPIC_GPS, TOPIC_IMU):
        if topic in plan.topics:
            plan.frame_of_topic[topic] = FRAME_LIDAR if topic == TOPIC_LIDAR else FRAME_IMU
    calib_dir = drive.parent
    missing = [name for name in CALIB_FILES if not (calib_dir / name).is_file()]
    if missing:
        plan.notes.append(f"calibration incomplete in {calib_dir} (missing {', '.join(missing)}): "
                          "no /tf_static, no camera_info, no rig.yaml")
    else:
        plan.calibration = calib_dir
    plan.sort()
    return plan


def _load_png(path: Path, stamp_ns: int, *, frame_id: str, compressed: bool) -> object:
    return load_image(path, stamp_ns, frame_id, compressed=compressed)


def _load_bin(path: Path, stamp_ns: int, *, frame_id: str) -> object:
    return load_kitti_bin(path, stamp_ns, frame_id)


def _plan_stream(plan: DatasetPlan, folder: Path, stream: str, *, topic: str, msgtype: str, ext: str,
                 loader: Callable[[Path, int], Any]) -> bool:
    """Pair ``folder/timestamps.txt`` lines with ``folder/data/<10-digit index><ext>``; False if absent."""
    stamps_file = folder / "timestamps.txt"
    data = folder / "data"
    if not stamps_file.is_file():
        if data.is_dir():
            plan.notes.append(f"{stream}: data/ without timestamps.txt, not converted")
            n = sum(1 for p in data.iterdir() if p.suffix == ext)
            plan.skipped.extend(SkippedItem(stream, f"{i:010d}", "no timestamp", str(stamps_file))
                                for i in range(n))
        return False
    stamps = parse_kitti_timestamps(stamps_file)
    files: dict[int, Path] = {}
    if data.is_dir():
        for path in sorted(data.iterdir()):
            if path.suffix != ext:
                continue
            if not path.stem.isdigit():
                plan.skipped.append(SkippedItem(stream, path.name, "file name is not an index", str(path)))
                continue
            files[int(path.stem)] = path
    plan.topics[topic] = msgtype
    for index in sorted(set(range(len(stamps))) | set(files)):
        key = f"{index:010d}"
        if index not in files:
            plan.skipped.append(SkippedItem(stream, key, f"no {ext[1:]} file (stamp only)",
                                            str(stamps_file), index + 1))
        elif index >= len(stamps):
            plan.skipped.append(SkippedItem(stream, key, "no timestamp", str(files[index])))
        else:
            plan.items.append(Item(stamps[index], topic, stream, key, files[index],
                                   partial(loader, files[index], stamps[index])))
    return True


def parse_oxts_line(path: Path) -> np.ndarray:
    """Read an OXTS data file: 30 space-separated numbers (see :data:`OXTS_FIELDS`), float64 (30,).

    Raises:
        ConvertError: not exactly one line of 30 numbers (file and line set).
    """
    lines = [ln for ln in path.read_text(encoding="ascii", errors="replace").splitlines() if ln.strip()]
    if len(lines) != 1:
        raise ConvertError(f"expected one line of 30 values, got {len(lines)} lines", file=path)
    parts = lines[0].split()
    if len(parts) != len(OXTS_FIELDS):
        raise ConvertError(f"expected {len(OXTS_FIELDS)} values, got {len(parts)}", file=path, line=1)
    try:
        values = np.array([float(p) for p in parts])
    except ValueError:
        raise ConvertError(f"not a number in {lines[0][:60]!r}", file=path, line=1) from None
    return values


def quat_xyzw_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of ``Rz(yaw)·Ry(pitch)·Rx(roll)`` (angles in rad), float64 (4,)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    ])


def load_oxts_imu(path: Path, stamp_ns: int) -> ImuData:
    """OXTS file → :class:`ImuData` in frame ``imu`` (see the module docstring)."""
    v = parse_oxts_line(path)
    zeros = np.zeros((3, 3))
    return ImuData(
        stamp_ns=stamp_ns, frame_id=FRAME_IMU,
        orientation=quat_xyzw_from_rpy(v[OXTS["roll"]], v[OXTS["pitch"]], v[OXTS["yaw"]]),
        orientation_covariance=zeros.copy(),
        angular_velocity=v[[OXTS["wx"], OXTS["wy"], OXTS["wz"]]],
        angular_velocity_covariance=zeros.copy(),
        linear_acceleration=v[[OXTS["ax"], OXTS["ay"], OXTS["az"]]],
        linear_acceleration_covariance=zeros.copy(),
    )


def load_oxts_navsat(path: Path, stamp_ns: int) -> NavSatFixData:
    """OXTS file → :class:`NavSatFixData` in frame ``imu`` (see the module docstring)."""
    v = parse_oxts_line(path)
    var = float(v[OXTS["pos_accuracy"]]) ** 2
    return NavSatFixData(
        stamp_ns=stamp_ns, frame_id=FRAME_IMU, status=0, service=1,
        latitude_deg=float(v[OXTS["lat"]]), longitude_deg=float(v[OXTS["lon"]]),
        altitude_m=float(v[OXTS["alt"]]),
        position_covariance=np.diag([var, var, var]), position_covariance_type=2,
    )
