"""Camera + LiDAR frames for depth completion, as (image, sparse depth) pairs at the network's resolution.

Every recording is read from ``../shared/data`` with its own calibration and projected with edgefuse's
own projector (:class:`edgefuse.fusion.projection.Projector`, z-buffered, nearest point wins a pixel)
into the camera *after* the image has been downscaled: the intrinsics are scaled (pixel centres at
integer coordinates, so ``c' = s (c + 0.5) - 0.5``) and the LiDAR is projected straight into the small
image, so one LiDAR return makes one sparse-depth pixel.

Recordings and licences (each folder's SOURCE.md):

===================  =====================================  =========  ====================  ==========
name                 source                                 frames     licence               used for
===================  =====================================  =========  ====================  ==========
acfr_ouster          acfr_ouster_chessboard (Ouster-64,      11        Apache-2.0            training
                     fisheye camera, indoor)
opencalib_auto       opencalib_autocalib_v2 (3 street        3         Apache-2.0            training
                     frames, 2 vehicles)
opencalib_manual     opencalib_radar_lidar_camera            1         Apache-2.0            training
                     lidar2camera/manual_calib
radiate_fog          radiate_tiny_foggy (RADIATE fog_6_0,    34        MIT SDK; dataset      evaluation
                     HDL-32E, ZED left, dense fog)                     terms unverified      only
kitti                kitti_object_3frames                    3         CC BY-NC-SA 3.0       evaluation
                                                                                             only
nuscenes             nuscenes_demo_sample (CAM_FRONT)        1         CC BY-NC-SA 4.0       evaluation
                                                                                             only
===================  =====================================  =========  ====================  ==========

The shipped model is trained on the Apache-2.0 recordings only; the three others are whole recordings
(other sensors, other places) kept out for evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefuse.fusion.projection import Projector
from edgefuse.rig import EQUIDISTANT, PLUMB_BOB, from_kitti_object, from_nuscenes, load_rig

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
REPO = Path(__file__).resolve().parents[2]

#: network input width; every recording is downscaled to about this width (height follows the aspect)
TARGET_WIDTH = 336
MAX_DEPTH_M = 80.0
TRAIN_RECORDINGS = ("acfr_ouster", "opencalib_auto", "opencalib_manual")
EVAL_RECORDINGS = ("radiate_fog", "kitti", "nuscenes")


@dataclass
class Frame:
    recording: str
    name: str
    image: np.ndarray  # (H, W, 3) float32 RGB in [0, 1]
    depth: np.ndarray  # (H, W) float32 metres, 0 = no return (every projected LiDAR return)


def _scaled(K: np.ndarray, s: float) -> np.ndarray:
    K2 = np.array(K, dtype=np.float64).copy()
    K2[0, 0] *= s
    K2[1, 1] *= s
    K2[0, 1] *= s
    K2[0, 2] = s * (K2[0, 2] + 0.5) - 0.5
    K2[1, 2] = s * (K2[1, 2] + 0.5) - 0.5
    return K2


def make_frame(  # noqa: PLR0917 (a frame's camera parameters in the projector's order)
        recording: str, name: str, bgr: np.ndarray, xyz: np.ndarray, model_id: int, K: np.ndarray,
               D: np.ndarray, T_cam_from_lidar: np.ndarray, width: int = TARGET_WIDTH) -> Frame:
    """Downscale ``bgr`` to ``width`` (multiple-of-8 height, cropped from the top) and project ``xyz`` into it."""
    h0, w0 = bgr.shape[:2]
    s = width / w0
    h = round(h0 * s)
    small = cv2.resize(bgr, (width, h), interpolation=cv2.INTER_AREA)
    h8 = h - h % 8
    top = h - h8  # drop rows at the top (sky): the bottom has the LiDAR returns
    K2 = _scaled(K, s)
    K2[1, 2] -= top
    proj = Projector(model_id, K2, D, width, h8, T_cam_from_lidar, min_depth_m=0.5, max_depth_m=MAX_DEPTH_M,
                     max_points=xyz.shape[0])
    depth = proj.project(np.ascontiguousarray(xyz[:, :3], dtype=np.float64), copy=True).depth.astype(np.float32)
    rgb = cv2.cvtColor(small[top:], cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return Frame(recording, name, rgb, depth)


def imread(path: Path) -> np.ndarray:
    """``cv2.imread`` that fails loudly on a missing or unreadable file."""
    img = cv2.imread(str(path))
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return img


def _pcd_xyz(path: Path) -> np.ndarray:
    from edgefuse_calibration.spatial.pcd import pcd_xyz

    xyz = pcd_xyz(path)
    out: np.ndarray = xyz[np.all(np.isfinite(xyz), axis=1)]
    return out


def load_acfr() -> list[Frame]:
    root = DATA / "acfr_ouster_chessboard"
    sess = root / "session_2022-11-09_00-54-42"
    K = np.array([[959.554, 0.0, 940.789], [0.0, 960.194, 670.737], [0.0, 0.0, 1.0]])
    D = np.array([-0.097824, 0.141429, -0.148385, 0.055918])
    roll, pitch, yaw = -1.5781, 0.0238, -1.5619  # mean of the tool's 50 result sets (SOURCE.md)
    t = np.array([0.7642, -0.0197, -0.3542])
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    R = Rz @ Ry @ Rx  # p_L = R p_C + t
    T = np.eye(4)
    T[:3, :3] = R.T
    T[:3, 3] = -R.T @ t
    frames = []
    for i in range(1, 12):
        bgr = imread(sess / "images" / f"pose{i}.png")
        xyz = _pcd_xyz(sess / "pcd" / f"pose{i}_full.pcd")
        frames.append(make_frame("acfr_ouster", f"pose{i}", bgr, xyz, EQUIDISTANT, K, D, T))
    return frames


def _txt_calib(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vals = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            vals[k.strip()] = np.array([float(x) for x in v.split()])
    T = np.eye(4)
    T[:3, :] = vals["T"].reshape(3, 4)
    D = np.zeros(5)
    D[: len(vals["D"])] = vals["D"]
    return vals["K"].reshape(3, 3), D, T


def load_opencalib_auto() -> list[Frame]:
    root = DATA / "opencalib_autocalib_v2" / "auto_calib_v2.0" / "data" / "ours"
    frames = []
    for i in (1, 2, 3):
        d = root / str(i)
        img = d / "calib.jpg" if (d / "calib.jpg").exists() else d / "calib.png"
        K, D, T = _txt_calib(d / "calib.txt")
        frames.append(make_frame("opencalib_auto", str(i), imread(img), _pcd_xyz(d / "calib.pcd"),
                                 PLUMB_BOB, K, D, T))
    return frames


def load_opencalib_manual() -> list[Frame]:
    d = DATA / "opencalib_radar_lidar_camera" / "lidar2camera" / "manual_calib" / "data"
    intr = json.loads((d / "center_camera-intrinsic.json").read_text())["center_camera-intrinsic"]["param"]
    ext = json.loads((d / "top_center_lidar-to-center_camera-extrinsic.json").read_text())
    K = np.array(intr["cam_K"]["data"], dtype=np.float64)
    D = np.zeros(5)
    dist = np.array(intr["cam_dist"]["data"], dtype=np.float64).reshape(-1)
    D[: dist.size] = dist
    T = np.array(ext["top_center_lidar-to-center_camera-extrinsic"]["param"]["sensor_calib"]["data"], np.float64)
    return [make_frame("opencalib_manual", "0", imread(d / "0.png"), _pcd_xyz(d / "0.pcd"),
                       PLUMB_BOB, K, D, T)]


def _stamps(path: Path) -> dict[int, float]:
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out[int(parts[1])] = float(parts[3])
    return out


def load_radiate() -> list[Frame]:
    seq = DATA / "radiate_tiny_foggy" / "data" / "radiate" / "tiny_foggy"
    rig = load_rig(REPO / "edgefuse" / "data" / "demo" / "rig.yaml")
    cam = rig.camera("zed_left")
    model_id, K, D = cam.kernel_params()
    T = np.asarray(rig.transform(cam.frame_id, "lidar").matrix)
    lidar_t, cam_t = _stamps(seq / "velo_lidar.txt"), _stamps(seq / "zed_left.txt")
    cams = {k: v for k, v in cam_t.items() if (seq / "zed_left" / f"{k:06d}.png").exists()}
    frames = []
    for lf, ts in sorted(lidar_t.items()):
        cf = min(cams, key=lambda k: abs(cams[k] - ts))
        if abs(cams[cf] - ts) > 0.04:
            continue
        xyz = np.loadtxt(seq / "velo_lidar" / f"{lf:06d}.csv", delimiter=",")[:, :3]
        bgr = imread(seq / "zed_left" / f"{cf:06d}.png")
        frames.append(make_frame("radiate_fog", f"lidar{lf}_cam{cf}", bgr, xyz, model_id, np.asarray(K),
                                 np.asarray(D), T))
    return frames


def load_kitti() -> list[Frame]:
    root = DATA / "kitti_object_3frames" / "training"
    frames = []
    for i in range(3):
        bgr = imread(root / "image_2" / f"{i:06d}.png")
        rig = from_kitti_object(root / "calib" / f"{i:06d}.txt", image_size=(bgr.shape[1], bgr.shape[0]))
        cam = rig.camera("cam2")
        model_id, K, D = cam.kernel_params()
        T = np.asarray(rig.transform(cam.frame_id, "velodyne").matrix)
        xyz = np.fromfile(root / "velodyne" / f"{i:06d}.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
        frames.append(make_frame("kitti", f"{i:06d}", bgr, xyz.astype(np.float64), model_id, np.asarray(K),
                                 np.asarray(D), T))
    return frames


def load_nuscenes() -> list[Frame]:
    root = DATA / "nuscenes_demo_sample"
    rig = from_nuscenes(root / "calib_and_boxes_from_pkl.json")
    cam = rig.camera("CAM_FRONT")
    model_id, K, D = cam.kernel_params()
    T = np.asarray(rig.transform(cam.frame_id, "LIDAR_TOP").matrix)
    img = next(root.glob("*__CAM_FRONT__*.jpg"))
    pts = next(root.glob("*LIDAR_TOP*.pcd.bin"))
    xyz = np.fromfile(pts, dtype=np.float32).reshape(-1, 5)[:, :3].astype(np.float64)
    return [make_frame("nuscenes", "CAM_FRONT", imread(img), xyz, model_id, np.asarray(K),
                       np.asarray(D), T)]


LOADERS = {
    "acfr_ouster": load_acfr,
    "opencalib_auto": load_opencalib_auto,
    "opencalib_manual": load_opencalib_manual,
    "radiate_fog": load_radiate,
    "kitti": load_kitti,
    "nuscenes": load_nuscenes,
}


def load(names: tuple[str, ...]) -> list[Frame]:
    frames: list[Frame] = []
    for n in names:
        frames.extend(LOADERS[n]())
    return frames


def split_points(depth: np.ndarray, holdout: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split the valid pixels of ``depth`` at random: (input sparse depth, held-out target depth)."""
    valid = np.flatnonzero(depth.reshape(-1) > 0)
    held = rng.random(valid.size) < holdout
    inp = depth.copy().reshape(-1)
    tgt = np.zeros_like(inp)
    tgt[valid[held]] = inp[valid[held]]
    inp[valid[held]] = 0.0
    return inp.reshape(depth.shape), tgt.reshape(depth.shape)


if __name__ == "__main__":
    for n, loader in LOADERS.items():
        fr = loader()
        print(n, len(fr), fr[0].image.shape, [int((f.depth > 0).sum()) for f in fr][:5])
