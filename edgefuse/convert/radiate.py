"""RADIATE sequence folder → time-ordered messages.

Layout of one RADIATE sequence (as in the RADIATE SDK's sample data)::

    <seq>/zed_left.txt, zed_right.txt, velo_lidar.txt, Navtech_Polar.txt, GPS_IMU_Twist.txt
    <seq>/zed_left/NNNNNN.png, zed_right/NNNNNN.png        672x376 BGR, 15 Hz, unrectified
    <seq>/velo_lidar/NNNNNN.csv                            x,y,z,intensity,ring per line, 10 Hz
    <seq>/Navtech_Polar/NNNNNN.png                         576 range bins (rows, 0.173611 m) x 400 azimuths
    <seq>/GPS_IMU_Twist/NNNNNN.txt                         18 lines (see :func:`parse_gps_imu_file`)
    <config>/default-calib.yaml                            the calibration (found upwards from <seq>)

Timestamps files have lines ``Frame: NNNNNN Time: <unix seconds>``; they are parsed exactly to
integer ns.  A frame is converted only when it has both a stamp and a file; every other frame is
reported as skipped (the sample sequence lists 100 left-camera stamps for 50 images, and its LiDAR
frames 1-17 and 60 have no stamp).  GPS/IMU files come in identical pairs; the second of each pair
is reported as a duplicate.  GPS/IMU stamps are kept as recorded (their clock runs ≈ 60 s after
the other sensors in the sample); a non-overlap is reported, and ``gps_offset_ns`` shifts them
when the user knows the offset.

Output topics and frames:

==========================================  ======================  ===========
topic                                       type                    frame_id
==========================================  ======================  ===========
/zed_left/image_raw[/compressed]            Image (bgr8) / PNG      zed_left
/zed_right/image_raw[/compressed]           Image (bgr8) / PNG      zed_right
/velodyne_points                            PointCloud2             velodyne
/radar/polar[/compressed]                   Image (mono8) / PNG     radar
/gps/fix                                    NavSatFix               gps_imu
/imu/data                                   Imu                     gps_imu
==========================================  ======================  ===========

The LiDAR cloud has fields x, y, z, intensity (float32; x right, y forward, z up, metres) and
ring (uint16, 0-31).  No per-point time field is written: the files do not say which instant of
the 100 ms sweep the frame stamp refers to, so one could not be derived honestly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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
    parse_radiate_timestamps,
)
from edgefuse.convert.report import SkippedItem
from edgefuse.errors import ConvertError
from edgefuse.msgs.types import ImuData, NavSatFixData, PointCloud
from edgefuse.time import NS_PER_S, seconds_from_ns

#: RADIATE streams this reader converts, in topic order.
STREAMS = ("zed_left", "zed_right", "velo_lidar", "radar", "gps_imu")

#: Markers of a RADIATE sequence folder (any one suffices).
TIMESTAMP_FILES = ("zed_left.txt", "zed_right.txt", "velo_lidar.txt", "Navtech_Polar.txt",
                   "GPS_IMU_Twist.txt")

CALIB_NAME = "default-calib.yaml"

LIDAR_DTYPE = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32),
                        ("intensity", np.float32), ("ring", np.uint16)])

FRAME_LIDAR = "velodyne"
FRAME_RADAR = "radar"
FRAME_GPS_IMU = "gps_imu"
TOPIC_LIDAR = "/velodyne_points"
TOPIC_GPS = "/gps/fix"
TOPIC_IMU = "/imu/data"


def find_sequence(root: Path) -> Path:
    """Return the RADIATE sequence folder at or below ``root`` (at most 3 levels down).

    Raises:
        ConvertError: none or several sequence folders found.
    """
    if not root.is_dir():
        raise ConvertError("dataset folder not found", file=root)
    if _is_sequence(root):
        return root
    found = sorted({p for depth in ("*", "*/*", "*/*/*") for p in root.glob(depth)
                    if p.is_dir() and _is_sequence(p)})
    if not found:
        raise ConvertError("no RADIATE sequence found (no zed_left.txt / velo_lidar.txt / "
                           "Navtech_Polar.txt / GPS_IMU_Twist.txt)", file=root)
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found)
        raise ConvertError(f"several RADIATE sequences found ({names}); give one", file=root)
    return found[0]


def _is_sequence(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TIMESTAMP_FILES)


def find_calibration(seq: Path, levels: int = 4) -> Path | None:
    """Find ``default-calib.yaml`` in ``seq``, ``seq/config`` or ``config/`` of a parent folder."""
    for folder in [seq, *list(seq.parents)[:levels]]:
        for cand in (folder / CALIB_NAME, folder / "config" / CALIB_NAME):
            if cand.is_file():
                return cand
    return None


def read_radiate(
    root: Path,
    *,
    compress_images: bool = False,
    streams: Collection[str] | None = None,
    gps_offset_ns: int = 0,
    calibration: Path | None = None,
    camera_jpeg_quality: int | None = None,
) -> DatasetPlan:
    """Scan a RADIATE sequence and plan its conversion.

    Args:
        root: the sequence folder, or a folder with exactly one sequence at most 3 levels below.
        compress_images: write camera and radar images as CompressedImage (the PNG bytes as they
            are) instead of decoded Image messages.
        streams: subset of :data:`STREAMS` to convert (default: all present).
        gps_offset_ns: added to every GPS/IMU stamp (0: keep the recorded stamps).
        calibration: the ``default-calib.yaml`` to use (default: searched upwards from the sequence).
        camera_jpeg_quality: with ``compress_images``, re-encode the camera PNGs as JPEG at this
            quality (radar scans always keep their lossless PNG bytes).

    Returns:
        the plan; its ``skipped`` lists every frame without file or stamp and every duplicate
        GPS/IMU file, its ``notes`` the GPS/IMU clock situation and the streams not converted.

    Raises:
        ConvertError: missing folder, unknown stream name, malformed timestamps file.
    """
    seq = find_sequence(Path(root))
    wanted = tuple(STREAMS if streams is None else streams)
    unknown = sorted(set(wanted) - set(STREAMS))
    if unknown:
        raise ConvertError(f"unknown RADIATE stream(s) {unknown}; known: {list(STREAMS)}")
    suffix = "/compressed" if compress_images else ""
    image_type = MSG_COMPRESSED_IMAGE if compress_images else MSG_IMAGE
    plan = DatasetPlan(layout="radiate", root=seq, topics={}, items=[])
    calib = calibration if calibration is not None else find_calibration(seq)
    if calibration is not None and not calibration.is_file():
        raise ConvertError("calibration file not found", file=calibration)
    plan.calibration = calib
    if calib is None:
        plan.notes.append("no default-calib.yaml found: no /tf_static, no camera_info, no rig.yaml")

    for stream in STREAMS:
        if stream not in wanted:
            continue
        if stream in ("zed_left", "zed_right"):
            topic = f"/{stream}/image_raw{suffix}"
            _plan_frames(plan, seq, stream, folder_name=stream, topic=topic, msgtype=image_type, ext=".png",
                         loader=partial(_load_png, frame_id=stream, compressed=compress_images,
                                        jpeg_quality=camera_jpeg_quality))
            if topic in plan.topics:
                plan.camera_topics[topic] = (stream, f"/{stream}/camera_info")
        elif stream == "velo_lidar":
            _plan_frames(plan, seq, stream, folder_name="velo_lidar", topic=TOPIC_LIDAR,
                         msgtype=MSG_POINTCLOUD2, ext=".csv", loader=load_lidar_csv)
        elif stream == "radar":
            _plan_frames(plan, seq, stream, folder_name="Navtech_Polar", topic=f"/radar/polar{suffix}",
                         msgtype=image_type, ext=".png",
                         loader=partial(_load_png, frame_id=FRAME_RADAR, compressed=compress_images))
        else:
            _plan_gps_imu(plan, seq, gps_offset_ns)

    if "radar" in wanted and (seq / "Navtech_Cartesian.txt").is_file():
        plan.notes.append("Navtech_Cartesian not converted (a resampling of Navtech_Polar)")
    if (seq / "annotations").is_dir():
        plan.notes.append("annotations/ not converted (boxes in radar Cartesian pixels)")
    for topic in plan.topics:
        plan.frame_of_topic[topic] = _frame_of(topic)
    plan.sort()
    return plan


def _frame_of(topic: str) -> str:
    if topic.startswith(("/zed_left/", "/zed_right/")):
        return topic.split("/")[1]
    if topic.startswith("/radar/"):
        return FRAME_RADAR
    return FRAME_LIDAR if topic == TOPIC_LIDAR else FRAME_GPS_IMU


def _load_png(path: Path, stamp_ns: int, *, frame_id: str, compressed: bool,
              jpeg_quality: int | None = None) -> object:
    return load_image(path, stamp_ns, frame_id, compressed=compressed, jpeg_quality=jpeg_quality)


def _plan_frames(plan: DatasetPlan, seq: Path, stream: str, *, folder_name: str, topic: str, msgtype: str,
                 ext: str, loader: Callable[[Path, int], Any]) -> None:
    """Pair a ``<folder>.txt`` timestamps file with ``<folder>/NNNNNN<ext>`` files."""
    stamps_file = seq / f"{folder_name}.txt"
    folder = seq / folder_name
    if not stamps_file.is_file() and not folder.is_dir():
        plan.notes.append(f"stream {stream}: not present ({folder_name}.txt and {folder_name}/ missing)")
        return
    stamps = parse_radiate_timestamps(stamps_file) if stamps_file.is_file() else {}
    files = _numbered_files(folder, ext, stream, plan)
    plan.topics[topic] = msgtype
    for frame in sorted(set(stamps) | set(files)):
        key = f"{frame:06d}"
        if frame not in files:
            plan.skipped.append(SkippedItem(stream, key, f"no {ext[1:]} file (stamp only)",
                                            str(stamps_file), stamps[frame][1]))
            continue
        if frame not in stamps:
            plan.skipped.append(SkippedItem(stream, key, "no timestamp", str(files[frame])))
            continue
        stamp_ns = stamps[frame][0]
        path = files[frame]
        plan.items.append(Item(stamp_ns, topic, stream, key, path,
                               partial(loader, path, stamp_ns)))


def _numbered_files(folder: Path, ext: str, stream: str, plan: DatasetPlan) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.suffix != ext:
            continue
        if not path.stem.isdigit():
            plan.skipped.append(SkippedItem(stream, path.name, "file name is not a frame number",
                                            str(path)))
            continue
        out[int(path.stem)] = path
    return out


def load_lidar_csv(path: Path, stamp_ns: int) -> PointCloud:
    """Read a RADIATE ``velo_lidar/NNNNNN.csv`` (lines ``x,y,z,intensity,ring``).

    Returns:
        unorganized :class:`PointCloud` with :data:`LIDAR_DTYPE` points in frame ``velodyne``
        (x right, y forward, z up, metres; intensity 0-255 as float32; ring 0-31 uint16).

    Raises:
        ConvertError: a line is not 5 comma-separated numbers, or a ring is not a small integer
            (file and line set).
    """
    try:
        values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        _raise_bad_csv_line(path, stamp_ns)
        raise  # pragma: no cover - _raise_bad_csv_line always raises
    if values.size == 0:
        values = np.zeros((0, 5))
    if values.shape[1] != 5:
        _raise_bad_csv_line(path, stamp_ns)
    ring = values[:, 4]
    bad = np.flatnonzero((ring != np.round(ring)) | (ring < 0) | (ring > 65535))
    if bad.size:
        raise ConvertError(f"ring {ring[bad[0]]!r} is not an integer in 0..65535", file=path,
                           line=_data_line_number(path, int(bad[0])), stamp_ns=stamp_ns)
    points = np.empty(len(values), dtype=LIDAR_DTYPE)
    for i, name in enumerate(("x", "y", "z", "intensity")):
        points[name] = values[:, i]
    points["ring"] = ring.astype(np.uint16)
    finite = bool(np.isfinite(values[:, :4]).all())
    return PointCloud(stamp_ns=stamp_ns, frame_id=FRAME_LIDAR, points=points, height=1,
                      width=len(points), is_dense=finite)


def _data_line_number(path: Path, row: int) -> int:
    """1-based line number of the ``row``-th non-empty line."""
    seen = -1
    with path.open(encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return lineno
    return row + 1


def _raise_bad_csv_line(path: Path, stamp_ns: int) -> None:
    """Find the first malformed line of a LiDAR CSV and raise a ConvertError naming it."""
    with path.open(encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            parts = text.split(",")
            if len(parts) != 5:
                raise ConvertError(f"expected 5 comma-separated values (x,y,z,intensity,ring), got "
                                   f"{len(parts)}: {text[:60]!r}", file=path, line=lineno, stamp_ns=stamp_ns)
            try:
                [float(p) for p in parts]
            except ValueError:
                raise ConvertError(f"not a number in {text[:60]!r}", file=path, line=lineno,
                                   stamp_ns=stamp_ns) from None
    raise ConvertError("malformed CSV", file=path, stamp_ns=stamp_ns)


# --------------------------------------------------------------------------------------------
# GPS / IMU


def _plan_gps_imu(plan: DatasetPlan, seq: Path, gps_offset_ns: int) -> None:
    stamps_file = seq / "GPS_IMU_Twist.txt"
    folder = seq / "GPS_IMU_Twist"
    if not stamps_file.is_file() and not folder.is_dir():
        plan.notes.append("stream gps_imu: not present (GPS_IMU_Twist.txt and GPS_IMU_Twist/ missing)")
        return
    stamps = parse_radiate_timestamps(stamps_file) if stamps_file.is_file() else {}
    files = _numbered_files(folder, ".txt", "gps_imu", plan)
    plan.topics[TOPIC_GPS] = MSG_NAVSATFIX
    plan.topics[TOPIC_IMU] = MSG_IMU
    previous: tuple[int, bytes, str] | None = None
    duplicates = 0
    for frame in sorted(set(stamps) | set(files)):
        key = f"{frame:06d}"
        if frame not in files:
            plan.skipped.append(SkippedItem("gps_imu", key, "no txt file (stamp only)", str(stamps_file),
                                            stamps[frame][1]))
            continue
        if frame not in stamps:
            plan.skipped.append(SkippedItem("gps_imu", key, "no timestamp", str(files[frame])))
            continue
        path = files[frame]
        content = path.read_bytes()
        stamp_ns = stamps[frame][0] + gps_offset_ns
        if previous is not None and previous[0] == stamp_ns and previous[1] == content:
            plan.skipped.append(SkippedItem("gps_imu", key, "duplicate of the previous frame (same stamp "
                                            "and content)", str(path)))
            duplicates += 1
            continue
        previous = (stamp_ns, content, key)
        plan.items.append(Item(stamp_ns, TOPIC_GPS, "gps_imu", key, path,
                               partial(_load_gps, path, stamp_ns)))
        plan.items.append(Item(stamp_ns, TOPIC_IMU, "gps_imu", key, path,
                               partial(_load_imu, path, stamp_ns)))
    if duplicates:
        plan.notes.append(f"gps_imu: {duplicates} duplicate GPS_IMU_Twist files skipped "
                          "(identical stamp and content as the previous file)")
    if gps_offset_ns:
        plan.notes.append(f"gps_imu: stamps shifted by {seconds_from_ns(gps_offset_ns):+.9f} s "
                          "(gps offset given by the user)")
    plan.notes.append("gps_imu: twist lines (17-18) not converted")
    _note_gps_overlap(plan)


def _note_gps_overlap(plan: DatasetPlan) -> None:
    gps = [it.stamp_ns for it in plan.items if it.stream == "gps_imu"]
    other = [it.stamp_ns for it in plan.items if it.stream != "gps_imu"]
    if not gps or not other:
        return
    g0, g1, o0, o1 = min(gps), max(gps), min(other), max(other)
    if g0 > o1 or g1 < o0:
        gap = (g0 - o1) if g0 > o1 else (o0 - g1)
        side = "after the last" if g0 > o1 else "before the first"
        plan.notes.append(
            f"gps_imu: stamps {g0 / NS_PER_S:.3f}..{g1 / NS_PER_S:.3f} s do not overlap the other sensors "
            f"({o0 / NS_PER_S:.3f}..{o1 / NS_PER_S:.3f} s); they start {gap / NS_PER_S:.3f} s {side} "
            "stamp of the others. Converted with their own stamps, not aligned "
            "(shift them with --gps-offset-s if the offset is known)")


def parse_gps_imu_file(path: Path) -> np.ndarray:
    """Parse a RADIATE ``GPS_IMU_Twist/NNNNNN.txt`` into an (18, 3) float64 array.

    Lines: 1 lat (deg), lon (deg), alt (m); 2-4 position covariance 3x3 (m²); 5 orientation
    quaternion x, y, z, w (4 values, the one 4-value line: returned as row 4 with w dropped — use
    :func:`parse_gps_imu_quaternion`); 6 angular velocity (rad/s); 7 linear acceleration (m/s²);
    8-10, 11-13, 14-16 orientation, angular-velocity and linear-acceleration covariances; 17 twist
    linear (m/s); 18 twist angular (rad/s).

    Raises:
        ConvertError: not 18 lines of comma-separated numbers (file and line set).
    """
    rows, _ = _parse_gps_imu(path)
    return rows


def parse_gps_imu_quaternion(path: Path) -> np.ndarray:
    """The orientation (x, y, z, w) of a RADIATE GPS/IMU file, float64 (4,)."""
    _, quat = _parse_gps_imu(path)
    return quat


def _parse_gps_imu(path: Path) -> tuple[np.ndarray, np.ndarray]:
    lines = [ln for ln in path.read_text(encoding="ascii", errors="replace").splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != 18:
        raise ConvertError(f"expected 18 lines, got {len(lines)}", file=path)
    rows = np.zeros((18, 3))
    quat = np.zeros(4)
    for i, raw in enumerate(lines):
        parts = [p for p in raw.strip().split(",")]
        want = 4 if i == 4 else 3
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ConvertError(f"not a number in {raw.strip()[:60]!r}", file=path, line=i + 1) from None
        if len(values) != want:
            raise ConvertError(f"expected {want} comma-separated values, got {len(values)}",
                               file=path, line=i + 1)
        if i == 4:
            quat[:] = values
            rows[i] = values[:3]
        else:
            rows[i] = values
    if not np.isfinite(rows).all() or not np.isfinite(quat).all():
        raise ConvertError("non-finite value", file=path)
    return rows, quat


def _load_gps(path: Path, stamp_ns: int) -> NavSatFixData:
    rows, _ = _parse_gps_imu(path)
    return NavSatFixData(
        stamp_ns=stamp_ns, frame_id=FRAME_GPS_IMU, status=0, service=1,
        latitude_deg=float(rows[0, 0]), longitude_deg=float(rows[0, 1]), altitude_m=float(rows[0, 2]),
        position_covariance=rows[1:4].copy(), position_covariance_type=3,
    )


def _load_imu(path: Path, stamp_ns: int) -> ImuData:
    rows, quat = _parse_gps_imu(path)
    return ImuData(
        stamp_ns=stamp_ns, frame_id=FRAME_GPS_IMU,
        orientation=quat.copy(), orientation_covariance=rows[7:10].copy(),
        angular_velocity=rows[5].copy(), angular_velocity_covariance=rows[10:13].copy(),
        linear_acceleration=rows[6].copy(), linear_acceleration_covariance=rows[13:16].copy(),
    )
