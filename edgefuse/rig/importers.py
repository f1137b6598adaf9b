"""Importers: calibration formats users already have → :class:`~edgefuse.rig.Rig`.

Every importer returns a checked rig (all frames connected to ``base_frame``) and raises
:class:`~edgefuse.errors.CalibrationError` (with the file and, where known, the line) for bad input.

Frame conventions per source are stated in each function's docstring.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from edgefuse.errors import CalibrationError
from edgefuse.msgs.types import CameraInfoData
from edgefuse.rig.camera import CameraModel
from edgefuse.rig.rig import Rig, Sensor
from edgefuse.rig.transform import FrameGraph, Transform

F64 = npt.NDArray[np.float64]


# -- KITTI --------------------------------------------------------------------------------------
def _read_kitti_kv(path: str | Path) -> tuple[dict[str, F64], dict[str, int]]:
    """Parse ``KEY: v v v`` lines into float arrays (non-numeric values such as ``calib_time`` are
    skipped); also return each key's line number."""
    p = Path(path)
    values: dict[str, F64] = {}
    lines: dict[str, int] = {}
    for i, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if ":" not in raw:
            if raw.strip():
                raise CalibrationError(f"expected 'KEY: values', got {raw.strip()[:40]!r}", file=p, line=i)
            continue
        key, _, rest = raw.partition(":")
        try:
            values[key.strip()] = np.array(rest.split(), dtype=np.float64)
        except ValueError:
            continue  # e.g. calib_time: 09-Jan-2012 13:57:47
        lines[key.strip()] = i
    return values, lines


def _kitti_get(values: dict[str, F64], lines: dict[str, int], key: str, n: int, path: str | Path) -> F64:
    if key not in values:
        raise CalibrationError(f"missing {key!r}", file=path)
    v = values[key]
    if v.size != n:
        raise CalibrationError(f"{key} must have {n} values, got {v.size}", file=path, line=lines.get(key))
    return v


def _kitti_transform(R: F64, t: F64, path: str | Path, line: int | None, what: str) -> Transform:
    try:
        return Transform.from_rt(R.reshape(3, 3), t)
    except CalibrationError as exc:
        raise CalibrationError(f"{what}: {exc.message}", file=path, line=line) from None


def _rectified_cameras(
    graph: FrameGraph, cameras: dict[str, CameraModel], P: dict[int, F64], size: dict[int, tuple[int, int]],
    path: str | Path,
) -> None:
    """Add rectified cameras cam0..cam3: ``P_i = K_i [I | t_i]`` on rectified-cam0 coordinates, so
    ``t_i = K_i⁻¹ P_i[:, 3]`` (the stereo baseline, t_x = -f·b) and ``T_cam0_from_cami = Trans(-t_i)``."""
    for i, Pi in sorted(P.items()):
        K = Pi[:, :3].copy()
        t = np.linalg.solve(K, Pi[:, 3])
        if i != 0:
            graph.add("cam0", f"cam{i}", Transform.from_translation(-t))
        w, h = size[i]
        try:
            cameras[f"cam{i}"] = CameraModel(name=f"cam{i}", frame_id=f"cam{i}", width=w, height=h, K=K,
                                             D=np.zeros(0), model="pinhole")
        except CalibrationError as exc:
            raise CalibrationError(f"P{i}: {exc.message}", file=path) from None


def from_kitti_object(calib_path: str | Path, *, image_size: tuple[int, int] = (1242, 375)) -> Rig:
    """Rig from a KITTI 3D-object ``calib/NNNNNN.txt`` (P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo).

    Frames: ``velodyne`` (base), ``imu``, ``cam0`` … ``cam3``.  The camera frames are the *rectified*
    frames: ``R0_rect`` is folded into the velodyne→cam0 edge, ``T_cam0_from_velodyne =
    [R0_rect | 0] · Tr_velo_to_cam`` (the rectified cam0 frame is the unrectified one rotated by
    R0_rect), and each ``camI`` is ``cam0`` shifted by the baseline taken from ``P_I[:, 3]`` (see
    ``_rectified_cameras``).  Cameras are ``pinhole`` with ``K = P_I[:, :3]``, so projecting a velodyne
    point with the rig reproduces ``P_I · R0_rect · Tr_velo_to_cam`` exactly (up to rounding).
    KITTI calib files hold no image size; ``image_size`` (width, height) is used for all cameras
    (object frames range from 1224x370 to 1242x376).
    """
    values, lines = _read_kitti_kv(calib_path)
    R0 = _kitti_get(values, lines, "R0_rect", 9, calib_path).reshape(3, 3)
    Tv = _kitti_get(values, lines, "Tr_velo_to_cam", 12, calib_path).reshape(3, 4)
    Ti = _kitti_get(values, lines, "Tr_imu_to_velo", 12, calib_path).reshape(3, 4)
    P = {i: _kitti_get(values, lines, f"P{i}", 12, calib_path).reshape(3, 4) for i in range(4)}
    T_rect0_from_velo = _kitti_transform(R0, np.zeros(3), calib_path, lines["R0_rect"], "R0_rect") @ \
        _kitti_transform(Tv[:, :3], Tv[:, 3], calib_path, lines["Tr_velo_to_cam"], "Tr_velo_to_cam")
    T_velo_from_imu = _kitti_transform(Ti[:, :3], Ti[:, 3], calib_path, lines["Tr_imu_to_velo"],
                                       "Tr_imu_to_velo")
    graph = FrameGraph()
    graph.add("velodyne", "imu", T_velo_from_imu)
    graph.add("velodyne", "cam0", T_rect0_from_velo.inverse())
    cameras: dict[str, CameraModel] = {}
    _rectified_cameras(graph, cameras, P, dict.fromkeys(range(4), image_size), calib_path)
    sensors = {
        "velodyne": Sensor("velodyne", "velodyne", "lidar"),
        "imu": Sensor("imu", "imu", "imu"),
        **{f"cam{i}": Sensor(f"cam{i}", f"cam{i}", "camera") for i in range(4)},
    }
    return Rig(base_frame="velodyne", frames=graph, cameras=cameras, sensors=sensors).check()


def from_kitti_raw(
    cam_to_cam: str | Path, velo_to_cam: str | Path, imu_to_velo: str | Path | None = None
) -> Rig:
    """Rig from the KITTI raw-data calibration files of one day.

    - ``calib_cam_to_cam.txt``: per camera xx in 00..03 ``S_xx`` (size), ``K_xx``, ``D_xx`` (k1 k2 p1 p2
      k3), ``R_xx``/``T_xx`` (``p_camxx = R_xx·p_cam00 + T_xx``), ``S_rect_xx``, ``R_rect_xx``,
      ``P_rect_xx`` (3x4, acting on rectified-cam0 coordinates).
    - ``calib_velo_to_cam.txt``: ``R``, ``T`` with ``p_cam00 = R·p_velo + T``.
    - ``calib_imu_to_velo.txt`` (optional): ``R``, ``T`` with ``p_velo = R·p_imu + T``.

    Frames: ``velodyne`` (base), ``imu``, unrectified ``cam0_unrect`` … ``cam3_unrect`` (cameras with
    those names, model ``plumb_bob``), and rectified ``cam0`` … ``cam3`` (``pinhole`` from P_rect, same
    meaning as :func:`from_kitti_object`).  ``cam0`` is ``cam0_unrect`` rotated by ``R_rect_00``:
    ``T_cam0_from_cam0_unrect = [R_rect_00 | 0]``.
    """
    cv, cl = _read_kitti_kv(cam_to_cam)
    vv, vl = _read_kitti_kv(velo_to_cam)
    graph = FrameGraph()
    T_cam_from_velo = _kitti_transform(_kitti_get(vv, vl, "R", 9, velo_to_cam),
                                       _kitti_get(vv, vl, "T", 3, velo_to_cam),
                                       velo_to_cam, vl.get("R"), "velo_to_cam")
    graph.add("velodyne", "cam0_unrect", T_cam_from_velo.inverse())
    sensors: dict[str, Sensor] = {"velodyne": Sensor("velodyne", "velodyne", "lidar")}
    if imu_to_velo is not None:
        iv, il = _read_kitti_kv(imu_to_velo)
        graph.add("velodyne", "imu", _kitti_transform(_kitti_get(iv, il, "R", 9, imu_to_velo),
                                                      _kitti_get(iv, il, "T", 3, imu_to_velo), imu_to_velo,
                                                      il.get("R"), "imu_to_velo"))
        sensors["imu"] = Sensor("imu", "imu", "imu")
    cameras: dict[str, CameraModel] = {}
    ids = [i for i in range(4) if f"K_{i:02d}" in cv]
    if not ids:
        raise CalibrationError("no K_00..K_03 entries", file=cam_to_cam)
    P: dict[int, F64] = {}
    size: dict[int, tuple[int, int]] = {}
    for i in ids:
        xx = f"{i:02d}"
        S = _kitti_get(cv, cl, f"S_{xx}", 2, cam_to_cam)
        K = _kitti_get(cv, cl, f"K_{xx}", 9, cam_to_cam).reshape(3, 3)
        D = _kitti_get(cv, cl, f"D_{xx}", 5, cam_to_cam)
        name = f"cam{i}_unrect"
        if i != 0:
            T_i_from_0 = _kitti_transform(_kitti_get(cv, cl, f"R_{xx}", 9, cam_to_cam),
                                          _kitti_get(cv, cl, f"T_{xx}", 3, cam_to_cam), cam_to_cam,
                                          cl.get(f"R_{xx}"), f"R_{xx}/T_{xx}")
            graph.add("cam0_unrect", name, T_i_from_0.inverse())
        try:
            cameras[name] = CameraModel(name=name, frame_id=name, width=int(S[0]), height=int(S[1]), K=K, D=D,
                                        model="plumb_bob")
        except CalibrationError as exc:
            raise CalibrationError(exc.message, file=cam_to_cam, line=cl.get(f"K_{xx}")) from None
        sensors[name] = Sensor(name, name, "camera")
        if f"P_rect_{xx}" in cv:
            P[i] = _kitti_get(cv, cl, f"P_rect_{xx}", 12, cam_to_cam).reshape(3, 4)
            Sr = _kitti_get(cv, cl, f"S_rect_{xx}", 2, cam_to_cam)
            size[i] = (int(Sr[0]), int(Sr[1]))
    if P:
        if 0 not in P:
            raise CalibrationError("P_rect_00 is required for rectified cameras", file=cam_to_cam)
        R_rect = _kitti_get(cv, cl, "R_rect_00", 9, cam_to_cam)
        T_unrect_from_rect = _kitti_transform(R_rect, np.zeros(3), cam_to_cam, cl.get("R_rect_00"),
                                              "R_rect_00").inverse()
        graph.add("cam0_unrect", "cam0", T_unrect_from_rect)
        _rectified_cameras(graph, cameras, P, size, cam_to_cam)
    return Rig(base_frame="velodyne", frames=graph, cameras=cameras, sensors=sensors).check()


# -- nuScenes -----------------------------------------------------------------------------------
def _as_matrix(v: Any, shape: tuple[int, ...], what: str, path: str | Path | None) -> F64:
    try:
        m = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{what} must be numbers", file=path) from None
    if m.shape != shape:
        raise CalibrationError(f"{what} must have shape {shape}, got {m.shape}", file=path)
    return m


def from_nuscenes(
    source: str | Path | Mapping[str, Any], *, image_size: tuple[int, int] = (1600, 900),
    base_frame: str = "ego",
) -> Rig:
    """Rig from nuScenes calibration: all sensors as children of the ego frame.

    ``source`` is either

    - a mapping ``channel → calibrated_sensor record`` (``translation`` [x, y, z] m, ``rotation``
      quaternion **[w, x, y, z]** as nuScenes stores it, ``camera_intrinsic`` 3x3 or ``[]`` for non
      cameras), i.e. ``T_ego_from_sensor``; or
    - an mmdetection3d info record (dict or JSON file path) with ``lidar_points.lidar2ego`` and
      ``images.<CHANNEL>.{cam2ego, cam2img}`` 4x4/3x3 matrices (e.g.
      ``calib_and_boxes_from_pkl.json``).

    Frames and sensors are named after the channels (``CAM_FRONT``, ``LIDAR_TOP``, …); cameras are
    ``pinhole`` (nuScenes images are undistorted) of size ``image_size``.  Sensor kind comes from the
    channel prefix (CAM → camera, LIDAR → lidar, RADAR → radar).  Topics are left unset.
    """
    path: str | Path | None = None
    data: Any = source
    if isinstance(source, (str, Path)):
        path = source
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, Mapping):
        raise CalibrationError("nuScenes calibration must be a JSON object", file=path)
    records: dict[str, tuple[Transform, F64 | None]] = {}
    try:
        if "images" in data or "lidar_points" in data:
            lp = data.get("lidar_points") or {}
            if "lidar2ego" in lp:
                T_ego_from_lidar = Transform(_as_matrix(lp["lidar2ego"], (4, 4), "lidar2ego", path))
                records["LIDAR_TOP"] = (T_ego_from_lidar, None)
            for ch, img in (data.get("images") or {}).items():
                T = Transform(_as_matrix(img["cam2ego"], (4, 4), f"{ch}.cam2ego", path))
                records[ch] = (T, _as_matrix(img["cam2img"], (3, 3), f"{ch}.cam2img", path))
        else:
            for ch, rec in data.items():
                t = _as_matrix(rec["translation"], (3,), f"{ch}.translation", path)
                q = _as_matrix(rec["rotation"], (4,), f"{ch}.rotation (w, x, y, z)", path)
                intr = rec.get("camera_intrinsic") or None
                K = None if intr is None else _as_matrix(intr, (3, 3), f"{ch}.camera_intrinsic", path)
                records[str(ch)] = (Transform.from_quat_wxyz(t, q), K)
    except KeyError as exc:
        raise CalibrationError(f"missing key {exc.args[0]!r} in nuScenes calibration", file=path) from None
    except CalibrationError as exc:
        raise CalibrationError(exc.message, file=exc.file or path) from None
    if not records:
        raise CalibrationError("no sensors found in nuScenes calibration", file=path)
    graph = FrameGraph()
    cameras: dict[str, CameraModel] = {}
    sensors: dict[str, Sensor] = {}
    for ch, (T, K) in records.items():
        graph.add(base_frame, ch, T)
        kind = "camera" if ch.startswith("CAM") else "radar" if ch.startswith("RADAR") else "lidar"
        sensors[ch] = Sensor(ch, ch, kind)
        if K is not None:
            cameras[ch] = CameraModel(name=ch, frame_id=ch, width=image_size[0], height=image_size[1], K=K,
                                      D=np.zeros(0), model="pinhole")
    return Rig(base_frame=base_frame, frames=graph, cameras=cameras, sensors=sensors).check()


# -- ROS CameraInfo YAML --------------------------------------------------------------------------
def _load_yaml(path: str | Path) -> Any:
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if text.startswith("%YAML:1.0"):  # OpenCV FileStorage header, not valid YAML 1.2
        text = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CalibrationError(f"YAML syntax error: {getattr(exc, 'problem', exc)}", file=p,
                               line=mark.line + 1 if mark is not None else None) from None


def _ros_matrix(doc: Mapping[str, Any], key: str, rows: int, cols: int, path: str | Path) -> F64:
    node = doc.get(key)
    if not isinstance(node, Mapping) or "data" not in node:
        raise CalibrationError(f"{key} must be a mapping with rows, cols, data", file=path)
    data = np.asarray(node["data"], dtype=np.float64).reshape(-1)
    r, c = int(node.get("rows", rows)), int(node.get("cols", cols))
    if data.size != r * c:
        raise CalibrationError(f"{key}: {data.size} values for {r}x{c}", file=path)
    if rows and cols and (r, c) != (rows, cols):
        raise CalibrationError(f"{key} must be {rows}x{cols}, got {r}x{c}", file=path)
    return data.reshape(r, c) if r > 0 else data


def camera_from_info_yaml(path: str | Path, *, frame_id: str | None = None) -> CameraModel:
    """A :class:`CameraModel` from a ROS ``camera_calibration_parsers`` YAML file (``image_width``,
    ``image_height``, ``camera_name``, ``camera_matrix``, ``distortion_model``,
    ``distortion_coefficients``, ``rectification_matrix``, ``projection_matrix``).

    The camera is named ``camera_name``; ``frame_id`` defaults to it.  The model describes the raw
    (unrectified) image: K and D.  R and P are read and checked but not used.
    """
    doc = _load_yaml(path)
    if not isinstance(doc, Mapping):
        raise CalibrationError("a CameraInfo YAML file must be a mapping", file=path)
    for key in ("image_width", "image_height", "camera_matrix", "distortion_coefficients"):
        if key not in doc:
            raise CalibrationError(f"missing key {key!r}", file=path)
    name = str(doc.get("camera_name") or Path(path).stem)
    K = _ros_matrix(doc, "camera_matrix", 3, 3, path)
    D = _ros_matrix(doc, "distortion_coefficients", 0, 0, path).reshape(-1)
    R = _ros_matrix(doc, "rectification_matrix", 3, 3, path) if "rectification_matrix" in doc else np.eye(3)
    has_p = "projection_matrix" in doc
    Pm = _ros_matrix(doc, "projection_matrix", 3, 4, path) if has_p else np.c_[K, np.zeros(3)]
    info = CameraInfoData(stamp_ns=0, frame_id=frame_id or name, width=int(doc["image_width"]),
                          height=int(doc["image_height"]),
                          distortion_model=str(doc.get("distortion_model", "plumb_bob")),
                          d=D, k=K, r=R, p=Pm)
    try:
        return CameraModel.from_camera_info(info, name=name)
    except CalibrationError as exc:
        raise CalibrationError(exc.message, file=path) from None


def from_camera_info_yaml(path: str | Path, *, frame_id: str | None = None, topic: str | None = None) -> Rig:
    """A one-camera rig from a ROS CameraInfo YAML file; ``base_frame`` is the camera's frame."""
    cam = camera_from_info_yaml(path, frame_id=frame_id)
    return Rig(base_frame=cam.frame_id, cameras={cam.name: cam},
               sensors={cam.name: Sensor(cam.name, cam.frame_id, "camera", topic)}).check()


# -- RADIATE --------------------------------------------------------------------------------------
_RADIATE_F = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _rx_ry_rz_deg(a: F64) -> F64:
    """``Rx·Ry·Rz`` of angles in degrees, the same bits on every machine: ``math`` sine/cosine (libm, not
    NumPy's SIMD loops) and each product entry rounded once from its exact value (BLAS kernels differ
    in summation order and fused multiply-adds from one CPU to another)."""
    x, y, z = (float(v) for v in np.deg2rad(a))
    cx, sx, cy, sy, cz, sz = math.cos(x), math.sin(x), math.cos(y), math.sin(y), math.cos(z), math.sin(z)
    rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]]
    ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]]
    rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]]
    return np.array(_matmul3_rounded(_matmul3_rounded(rx, ry), rz), dtype=np.float64)


def _matmul3_rounded(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    """3x3 product, each entry the exact sum of products rounded once to float64."""
    return [[float(sum(Fraction(a[i][k]) * Fraction(b[k][j]) for k in range(3))) for j in range(3)]
            for i in range(3)]


def _fma(a: float, b: float, c: float) -> float:
    """``a·b + c`` with one rounding (a fused multiply-add on any machine)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _inverse_reproducible(T: Transform) -> Transform:
    """``T.inverse()`` with the same bits on every machine.

    ``Transform.inverse`` uses ``np.linalg.inv`` (LAPACK ``dgesv`` in NumPy's OpenBLAS), whose last bits
    depend on the kernels OpenBLAS picks for the CPU: on an AMD EPYC (Haswell kernels) the RADIATE
    ``lidar <- zed_left`` quaternion came out 2 ULP from the shipped demo's.  Modelling ``dgesv`` step by
    step reproduces both: LU with partial pivoting, multipliers and back substitution by the pivots'
    reciprocals, the back substitution summed from the last column -- without fused multiply-adds it
    gives that machine's bits, with them the shipped demo's.  This computes the fused variant with every
    operation rounded exactly once (no dependence on the CPU or the BLAS), so the demo rebuilds
    identically everywhere.  The translation is ``-R⁻¹·t``, fused multiply-adds in column order.
    """
    a = [[float(v) for v in row] for row in T.R]
    perm = [0, 1, 2]
    for j in range(3):
        p = max(range(j, 3), key=lambda i: abs(a[i][j]))
        a[j], a[p] = a[p], a[j]
        perm[j], perm[p] = perm[p], perm[j]
        if a[j][j] == 0.0:
            raise CalibrationError("singular rotation matrix")
        r = 1.0 / a[j][j]
        for i in range(j + 1, 3):
            a[i][j] *= r
            for k in range(j + 1, 3):
                a[i][k] = _fma(-a[i][j], a[j][k], a[i][k])
    inv = np.empty((3, 3))
    for col in range(3):
        x = [1.0 if perm[i] == col else 0.0 for i in range(3)]
        for i in range(3):  # unit lower triangle
            for k in range(i):
                x[i] = _fma(-a[i][k], x[k], x[i])
        for i in reversed(range(3)):  # upper triangle, by the reciprocal of the pivot
            s = x[i]
            for k in reversed(range(i + 1, 3)):
                s = _fma(-a[i][k], x[k], s)
            x[i] = s * (1.0 / a[i][i])
        inv[:, col] = x
    t = [float(v) for v in T.t]
    t_inv = [-_fma(inv[i, 2], t[2], _fma(inv[i, 1], t[1], inv[i, 0] * t[0])) for i in range(3)]
    return Transform.from_rt(inv, t_inv)


def radiate_stereo_rectification(calib_path: str | Path) -> dict[str, F64]:
    """``cv2.stereoRectify`` of the RADIATE ZED pair as the RADIATE SDK does it (zero disparity,
    alpha = 0): returns ``R1``, ``R2`` (3x3), ``P1``, ``P2`` (3x4)."""
    import cv2

    doc = _radiate_doc(calib_path)
    cams = {side: _radiate_intrinsics(doc, f"{side}_cam_calib", calib_path) for side in ("left", "right")}
    st = doc["stereo_calib"]
    R = np.asarray(st["R"], dtype=np.float64)
    T = np.array([[st["TX"]], [st["TY"]], [st["TZ"]]], dtype=np.float64)
    (kl, dl, size), (kr, dr, _) = cams["left"], cams["right"]
    R1, R2, P1, P2, *_ = cv2.stereoRectify(kl, dl[:4], kr, dr[:4], size, R, T, flags=cv2.CALIB_ZERO_DISPARITY,
                                           alpha=0)
    return {k: np.asarray(v, dtype=np.float64) for k, v in (("R1", R1), ("R2", R2), ("P1", P1), ("P2", P2))}


def radiate_rectify_maps(calib_path: str | Path, side: str = "left") -> tuple[npt.NDArray[np.float32],
                                                                            npt.NDArray[np.float32]]:
    """``cv2.remap`` maps that rectify a RADIATE ZED ``side`` image (``left``/``right``) as the RADIATE SDK
    does before it overlays LiDAR points: the unrectified plumb_bob camera to the ``pinhole`` camera of
    ``from_radiate(calib_path, rectified=True)`` (same size).  ``cv2.remap(img, *maps, cv2.INTER_LINEAR)``."""
    import cv2

    if side not in ("left", "right"):
        raise CalibrationError(f"side must be 'left' or 'right', got {side!r}", file=calib_path)
    K, D, size = _radiate_intrinsics(_radiate_doc(calib_path), f"{side}_cam_calib", calib_path)
    rect = radiate_stereo_rectification(calib_path)
    R, P = (rect["R1"], rect["P1"]) if side == "left" else (rect["R2"], rect["P2"])
    mx, my = cv2.initUndistortRectifyMap(K, D[:4], R, P[:, :3], size, cv2.CV_32FC1)
    return np.asarray(mx, dtype=np.float32), np.asarray(my, dtype=np.float32)


def _radiate_doc(calib_path: str | Path) -> Mapping[str, Any]:
    doc = _load_yaml(calib_path)
    if not isinstance(doc, Mapping):
        raise CalibrationError("RADIATE calibration must be a mapping", file=calib_path)
    for key in ("lidar_calib", "left_cam_calib", "right_cam_calib"):
        if not isinstance(doc.get(key), Mapping):
            raise CalibrationError(f"missing section {key!r}", file=calib_path)
    return doc


def _radiate_vec(sec: Mapping[str, Any], key: str, what: str, path: str | Path) -> F64:
    return _as_matrix(sec.get(key), (3,), f"{what}.{key}", path)


def _radiate_intrinsics(
    doc: Mapping[str, Any], key: str, path: str | Path
) -> tuple[F64, F64, tuple[int, int]]:
    sec = doc[key]
    try:
        K = np.array([[sec["fx"], 0.0, sec["cx"]], [0.0, sec["fy"], sec["cy"]], [0.0, 0.0, 1.0]],
                     dtype=np.float64)
        D = np.array([sec["k1"], sec["k2"], sec.get("p1", 0.0), sec.get("p2", 0.0), sec.get("k3", 0.0)],
                     dtype=np.float64)
        w, h = (int(v) for v in sec["res"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{key}: bad or missing intrinsics ({exc})", file=path) from None
    return K, D, (w, h)


def from_radiate(calib_path: str | Path, *, rectified: bool = False) -> Rig:
    """Rig from the RADIATE SDK's ``config/default-calib.yaml``.

    RADIATE gives each sensor a translation ``T`` (m) and Euler angles ``R`` (degrees) relative to the
    radar, the reference frame.  The SDK does not compose these as poses; it builds the LiDAR→camera
    transform as ``p_cam = Mᵀ·p_lidar + t`` with ``t = T_lidar - T_cam``,
    ``M = F·Rx(ΔR0)·Ry(ΔR1)·Rz(ΔR2)``, ``ΔR = R_lidar - R_cam`` and the axis swap
    ``F = [[1,0,0],[0,0,1],[0,-1,0]]`` (LiDAR x right / y forward / z up → camera x right / y down /
    z forward).  This importer keeps that convention exactly for the ``zed_left``/``zed_right``
    ← ``lidar`` edges: ``T_zed_from_lidar = [Mᵀ | t]``.

    ``lidar`` → ``radar`` is derived with the same formula with the radar (``T = R = 0``) in the
    camera's place and without ``F`` (LiDAR and radar share the x-right / y-forward / z-up axes):
    ``T_radar_from_lidar = [(Rx·Ry·Rz)(R_lidar)ᵀ | T_lidar]``.  The SDK itself never maps LiDAR points
    into the radar image with a rotation; with the shipped ``R_lidar`` ≤ 0.001° this is a translation
    to within 2e-5 rad.

    Frames: ``radar`` (base) ← ``lidar`` ← ``zed_left``, ``zed_right``.  Cameras (named like their
    frames) are the **unrectified** ZED cameras, ``plumb_bob`` with ``D = [k1, k2, p1, p2, k3]`` from
    the file (p1 = p2 = k3 = 0 in the shipped file).  With ``rectified=True`` they are instead
    ``pinhole`` cameras with K from ``cv2.stereoRectify`` (P1/P2, as the SDK rectifies) on the same
    frames: this matches how the SDK overlays LiDAR on the rectified images (it does not apply the
    rectifying rotation to the points).  Sensors: ``radar``, ``lidar``, ``zed_left``, ``zed_right``.
    """
    doc = _radiate_doc(calib_path)
    lid = doc["lidar_calib"]
    T_l = _radiate_vec(lid, "T", "lidar_calib", calib_path)
    R_l = _radiate_vec(lid, "R", "lidar_calib", calib_path)
    graph = FrameGraph()
    graph.add("radar", "lidar", Transform.from_rt(_rx_ry_rz_deg(R_l).T, T_l))
    cameras: dict[str, CameraModel] = {}
    rect = radiate_stereo_rectification(calib_path) if rectified else None
    for side in ("left", "right"):
        key = f"{side}_cam_calib"
        sec = doc[key]
        T_c, R_c = _radiate_vec(sec, "T", key, calib_path), _radiate_vec(sec, "R", key, calib_path)
        M = _RADIATE_F @ _rx_ry_rz_deg(R_l - R_c)
        T_cam_from_lidar = Transform.from_rt(M.T, T_l - T_c)
        name = f"zed_{side}"
        graph.add("lidar", name, _inverse_reproducible(T_cam_from_lidar))
        K, D, (w, h) = _radiate_intrinsics(doc, key, calib_path)
        if rect is not None:
            P = rect["P1" if side == "left" else "P2"]
            cameras[name] = CameraModel(name=name, frame_id=name, width=w, height=h, K=P[:, :3].copy(),
                                        D=np.zeros(0), model="pinhole")
        else:
            cameras[name] = CameraModel(name=name, frame_id=name, width=w, height=h, K=K, D=D,
                                        model="plumb_bob")
    sensors = {
        "radar": Sensor("radar", "radar", "radar"),
        "lidar": Sensor("lidar", "lidar", "lidar"),
        "zed_left": Sensor("zed_left", "zed_left", "camera"),
        "zed_right": Sensor("zed_right", "zed_right", "camera"),
    }
    return Rig(base_frame="radar", frames=graph, cameras=cameras, sensors=sensors).check()


# -- Kalibr -----------------------------------------------------------------------------------------
def from_kalibr_camchain(path: str | Path, *, imu_frame: str = "imu0") -> Rig:
    """Rig from a Kalibr ``camchain.yaml`` / ``camchain-imucam.yaml``.

    Each ``camN`` has ``camera_model: pinhole``, ``intrinsics: [fu, fv, pu, pv]``,
    ``distortion_model`` (``radtan`` → ``plumb_bob`` with D = [k1, k2, r1, r2, 0], ``equidistant``,
    ``none``), ``distortion_coeffs``, ``resolution: [w, h]``, optional ``rostopic``,
    ``T_cn_cnm1`` (4x4, ``p_camN = T·p_camN-1``), and in imucam files ``T_cam_imu``
    (``p_cam = T·p_imu``) and ``timeshift_cam_imu`` (s, ``t_imu = t_cam + shift``).

    With ``T_cam_imu`` present the base frame is ``imu_frame`` and each camera's
    ``time_offset_ns = round(timeshift_cam_imu · 1e9)``; otherwise it is ``cam0``.
    """
    doc = _load_yaml(path)
    if not isinstance(doc, Mapping) or not doc:
        raise CalibrationError("a Kalibr camchain must be a mapping of camN entries", file=path)
    names = sorted((k for k in doc if str(k).startswith("cam")), key=lambda s: int(str(s)[3:] or 0))
    if not names:
        raise CalibrationError("no camN entries", file=path)
    has_imu = all("T_cam_imu" in doc[n] for n in names)
    base = imu_frame if has_imu else names[0]
    graph = FrameGraph()
    cameras: dict[str, CameraModel] = {}
    sensors: dict[str, Sensor] = {}
    for i, n in enumerate(names):
        c = doc[n]
        try:
            fu, fv, pu, pv = (float(x) for x in c["intrinsics"])
            w, h = (int(x) for x in c["resolution"])
            dm = str(c.get("distortion_model", "none"))
            dc = np.asarray(c.get("distortion_coeffs", []), dtype=np.float64)
            if c.get("camera_model", "pinhole") != "pinhole":
                raise CalibrationError(f"{n}: camera_model {c.get('camera_model')!r} is not supported"
                                       " (pinhole only)",
                                       file=path)
            if dm == "radtan":
                model, D = "plumb_bob", np.r_[dc, np.zeros(5 - dc.size)] if dc.size <= 5 else dc
            elif dm == "equidistant":
                model, D = "equidistant", dc
            elif dm == "none":
                model, D = "pinhole", np.zeros(0)
            else:
                raise CalibrationError(f"{n}: distortion_model {dm!r} is not supported", file=path)
            K = np.array([[fu, 0.0, pu], [0.0, fv, pv], [0.0, 0.0, 1.0]])
            cameras[n] = CameraModel(name=n, frame_id=n, width=w, height=h, K=K, D=D, model=model)
            if has_imu:
                T_cam_imu = Transform(_as_matrix(c["T_cam_imu"], (4, 4), f"{n}.T_cam_imu", path))
                graph.add(base, n, T_cam_imu.inverse())
            elif i > 0:
                T = Transform(_as_matrix(c["T_cn_cnm1"], (4, 4), f"{n}.T_cn_cnm1", path))
                graph.add(names[i - 1], n, T.inverse())
            shift = float(c.get("timeshift_cam_imu", 0.0))
        except KeyError as exc:
            raise CalibrationError(f"{n}: missing key {exc.args[0]!r}", file=path) from None
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{n}: malformed entry ({exc})", file=path) from None
        except CalibrationError as exc:
            raise CalibrationError(exc.message, file=path) from None
        sensors[n] = Sensor(n, n, "camera", c.get("rostopic"), round(shift * 1e9))
    if has_imu:
        sensors[imu_frame] = Sensor(imu_frame, imu_frame, "imu")
    return Rig(base_frame=base, frames=graph, cameras=cameras, sensors=sensors).check()


__all__: Sequence[str] = [
    "camera_from_info_yaml",
    "from_camera_info_yaml",
    "from_kalibr_camchain",
    "from_kitti_object",
    "from_kitti_raw",
    "from_nuscenes",
    "from_radiate",
    "radiate_stereo_rectification",
]
