"""KITTI 3D-object benchmark folder → time-ordered messages.

Layout (``training/`` or ``testing/``, or the folder holding those)::

    image_2/NNNNNN.png     left colour camera, rectified (≈1242x375)
    velodyne/NNNNNN.bin    float32 x, y, z, reflectance per point (Velodyne HDL-64E frame, metres)
    calib/NNNNNN.txt       P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
    label_2/NNNNNN.txt     3D boxes (not converted)

The benchmark frames carry no timestamps and are not a sequence.  Stamps are synthesized at
10 Hz from the frame number: ``stamp_ns = start_ns + int(NNNNNN) * 100_000_000``, so the same
frame gets the same stamp whichever subset is converted.  ``start_ns`` defaults to
:data:`DEFAULT_START_NS` (1 s: a zero stamp means "latest" to tf2 and is avoided).

Topics: ``/cam2/image_raw`` (Image ``bgr8``, or ``/cam2/image_raw/compressed`` with the PNG bytes),
``/cam2/camera_info`` (one per image, from that frame's calib file), ``/velodyne_points``
(PointCloud2 x, y, z, intensity float32 in frame ``velodyne``; intensity = KITTI reflectance 0..1).
Frames ``cam2``/``velodyne`` are the rig importer's names (:func:`edgefuse.rig.importers.from_kitti_object`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from edgefuse.convert.plan import (
    MSG_COMPRESSED_IMAGE,
    MSG_IMAGE,
    MSG_POINTCLOUD2,
    DatasetPlan,
    Item,
    load_image,
    load_kitti_bin,
)
from edgefuse.convert.report import SkippedItem
from edgefuse.errors import ConvertError

DEFAULT_START_NS = 1_000_000_000
FRAME_PERIOD_NS = 100_000_000
FRAME_CAMERA = "cam2"
FRAME_LIDAR = "velodyne"
TOPIC_LIDAR = "/velodyne_points"


def find_object_root(root: Path) -> Path:
    """Return the folder holding ``image_2``/``velodyne``/``calib`` (``root`` or ``root/training``).

    Raises:
        ConvertError: neither holds any of those folders.
    """
    if not root.is_dir():
        raise ConvertError("dataset folder not found", file=root)
    for cand in (root, root / "training", root / "testing"):
        if any((cand / sub).is_dir() for sub in ("image_2", "velodyne")) and (cand / "calib").is_dir():
            return cand
    raise ConvertError("not a KITTI object folder (no image_2/ or velodyne/ beside calib/)", file=root)


def read_kitti_object(root: Path, *, compress_images: bool = False,
                      start_ns: int = DEFAULT_START_NS, calib_frame: int | None = None) -> DatasetPlan:
    """Scan a KITTI object folder and plan its conversion (see the module docstring).

    A frame with an image but no point cloud (or the reverse) converts what exists and reports the
    missing part; a frame without calib file gets no CameraInfo (reported).

    KITTI object frames come from different drives with different calibrations, but a bag has one
    ``/tf_static``.  The calibration of ``calib_frame`` (default: the first frame) becomes the bag's
    rig; frames whose calibration differs are skipped and reported (convert them in another bag with
    ``calib_frame`` set to one of them), never written with the wrong calibration.  The rig camera
    takes the size of that frame's image.

    Raises:
        ConvertError: not a KITTI object folder, or a file name that is not a frame number.
    """
    base = find_object_root(Path(root))
    suffix = "/compressed" if compress_images else ""
    image_topic = f"/{FRAME_CAMERA}/image_raw{suffix}"
    plan = DatasetPlan(layout="kitti_object", root=base, topics={}, items=[])
    images = _numbered(base / "image_2", ".png")
    clouds = _numbered(base / "velodyne", ".bin")
    calibs = _numbered(base / "calib", ".txt")
    if images:
        plan.topics[image_topic] = MSG_COMPRESSED_IMAGE if compress_images else MSG_IMAGE
        plan.camera_topics[image_topic] = (FRAME_CAMERA, f"/{FRAME_CAMERA}/camera_info")
        plan.frame_of_topic[image_topic] = FRAME_CAMERA
    if clouds:
        plan.topics[TOPIC_LIDAR] = MSG_POINTCLOUD2
        plan.frame_of_topic[TOPIC_LIDAR] = FRAME_LIDAR
    for frame in sorted(set(images) | set(clouds) | set(calibs)):
        key = f"{frame:06d}"
        stamp_ns = start_ns + frame * FRAME_PERIOD_NS
        if frame in images:
            plan.items.append(Item(stamp_ns, image_topic, "image_2", key, images[frame],
                                   partial(load_image, images[frame], stamp_ns, FRAME_CAMERA,
                                           compressed=compress_images)))
        elif frame in clouds:
            plan.skipped.append(SkippedItem("image_2", key, "no image file", str(base / "image_2")))
        if frame in clouds:
            plan.items.append(Item(stamp_ns, TOPIC_LIDAR, "velodyne", key, clouds[frame],
                                   partial(load_kitti_bin, clouds[frame], stamp_ns, FRAME_LIDAR)))
        elif frame in images:
            plan.skipped.append(SkippedItem("velodyne", key, "no point cloud file", str(base / "velodyne")))
        if frame in calibs:
            plan.item_calibration[key] = calibs[frame]
        elif frame in images:
            plan.skipped.append(SkippedItem("calib", key, "no calib file: no camera_info for this frame",
                                            str(base / "calib")))
    if calibs:
        ref = min(calibs) if calib_frame is None else calib_frame
        if ref not in calibs:
            raise ConvertError(f"no calib file for frame {ref:06d}", file=base / "calib")
        plan.calibration = calibs[ref]
        ref_values = _calib_values(calibs[ref])
        differs = sorted(f for f, path in calibs.items() if not _same_calib(_calib_values(path), ref_values))
        if differs:
            keys = {f"{f:06d}" for f in differs}
            for item in [it for it in plan.items if it.key in keys]:
                plan.items.remove(item)
                plan.skipped.append(SkippedItem(item.stream, item.key,
                                                f"calibration differs from {plan.calibration.name} (the bag's "
                                                f"/tf_static); convert it separately with --calib-frame "
                                                f"{int(item.key)}", str(item.source)))
            plan.notes.append(f"{len(differs)} frame(s) with another calibration skipped: "
                              + ", ".join(f"{f:06d}" for f in differs))
        if ref in images:
            shape = _png_size(images[ref])
            if shape is not None:
                plan.camera_size = shape
        plan.notes.append(f"/tf_static from {plan.calibration.name}; "
                          "camera_info per frame from its own calib")
    else:
        plan.notes.append("no calib files: no /tf_static, no camera_info, no rig.yaml")
    plan.notes.append(f"stamps synthesized at 10 Hz: start {start_ns} ns + frame number x 100 ms "
                      "(KITTI object frames have no timestamps)")
    if (base / "label_2").is_dir():
        plan.notes.append("label_2/ not converted")
    plan.sort()
    return plan


def _calib_values(path: Path) -> dict[str, tuple[float, ...]]:
    out: dict[str, tuple[float, ...]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            out[key.strip()] = tuple(float(v) for v in rest.split())
        except ValueError:
            out[key.strip()] = ()
    return out


def _same_calib(a: dict[str, tuple[float, ...]], b: dict[str, tuple[float, ...]]) -> bool:
    keys = ("P2", "R0_rect", "Tr_velo_to_cam")
    return all(len(a.get(k, ())) == len(b.get(k, ())) and
               all(abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(a.get(k, ()), b.get(k, ()), strict=True))
               for k in keys)


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk (no decode)."""
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _numbered(folder: Path, ext: str) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.suffix != ext:
            continue
        if not path.stem.isdigit():
            raise ConvertError("file name is not a frame number", file=path)
        out[int(path.stem)] = path
    return out
