"""``edgefuse calibrate`` sub-commands for spatial calibration.

:func:`add_spatial_parsers` adds ``intrinsics``, ``lidar-camera`` (targetless), ``lidar-camera-board`` (chessboard
poses: images + organized scans, or recorded features), ``register`` and ``imu-camera`` to the
``calibrate`` sub-parsers; each parser gets ``func=<handler(args) -> int>`` as its default.  Every command
writes a JSON report (``--report``), a PNG (``--plot``) where it has one, and merges its result into
``--rig`` **only when the verdict is ok**.  Exit status: 0 ok, 4 refused or no improvement (nothing written).
Bad input raises :class:`edgefuse.errors.CalibrationError` (the edgefuse CLI prints one line, exit 2).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import Rig, load_rig, merge_rig_file
from edgefuse_calibration.spatial._common import SpatialResult, write_report, write_result_to_rig

EXIT_REFUSED = 4  # as `edgefuse calibrate time`: a refusal writes nothing to the rig and exits 4


def load_cloud(path: str | Path, columns: int | None = None) -> npt.NDArray[np.float64]:
    """(N, 3) xyz from ``.npy`` ((N, ≥3)), ``.csv`` (x,y,z,… per row, e.g. RADIATE) or a raw float32
    ``.bin`` with ``columns`` values per point (default 4, KITTI; nuScenes ``.pcd.bin`` has 5)."""
    p = Path(path)
    if not p.is_file():
        raise CalibrationError("cloud file not found", file=p)
    if p.suffix in (".npy", ".csv"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy warns on an empty CSV; that is reported below
                a = np.load(p, allow_pickle=False) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=2,
                                                                                          comments="#")
        except (OSError, ValueError, EOFError) as exc:
            raise CalibrationError(f"cannot read the cloud: {exc}", file=p) from None
    else:
        n = columns or (5 if p.name.endswith(".pcd.bin") else 4)
        raw = np.fromfile(p, dtype=np.float32)
        if raw.size % n:
            raise CalibrationError(f"{raw.size} floats is not a multiple of {n} columns", file=p)
        a = raw.reshape(-1, n)
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 3:
        raise CalibrationError(f"expected (N, >=3) points, got {a.shape}", file=p)
    return a[:, :3]


def _load_image(path: str) -> npt.NDArray[np.uint8]:
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is None:
        raise CalibrationError("cannot read image", file=path)
    return np.asarray(im, dtype=np.uint8)


def _finish(result: SpatialResult, args: argparse.Namespace, rig: Rig | None) -> int:
    written = False
    if rig is not None and args.rig and result.ok:
        written = write_result_to_rig(result, args.rig)
    rep = result.to_dict()
    rep["rig_written"] = written
    if args.report:
        write_report(rep, args.report)
    verdict = result.verdict + ("" if result.ok else ": " + "; ".join(result.reasons))
    print(f"{result.tool}: {verdict}" + (f" (written to {args.rig})" if written else ""))
    return 0 if result.ok else EXIT_REFUSED


def _intrinsics_target(args: argparse.Namespace) -> Any:
    from edgefuse_calibration.spatial.intrinsics import CharucoBoard, Checkerboard

    def pair(text: str, what: str) -> tuple[int, int]:
        try:
            a, b = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise CalibrationError(f"{what} must be COLSxROWS, e.g. 9x6; got {text!r}") from None
        return a, b

    if args.target == "charuco":
        if not args.squares or args.marker is None:
            raise CalibrationError("--target charuco needs --squares COLSxROWS and --marker SIZE_M")
        return CharucoBoard(pair(args.squares, "--squares"), args.square, args.marker, args.dictionary,
                            legacy=args.legacy)
    if not args.pattern:
        raise CalibrationError("--target checkerboard needs --pattern COLSxROWS (inner corners)")
    return Checkerboard(pair(args.pattern, "--pattern"), args.square, subpix_window=args.subpix_window)


def _cmd_intrinsics(args: argparse.Namespace) -> int:
    from edgefuse_calibration.spatial.intrinsics import calibrate_intrinsics

    target = _intrinsics_target(args)
    images = [_load_image(p) for p in args.images]
    res = calibrate_intrinsics(images, target, model=args.model, name=args.camera,
                               frame_id=args.frame or args.camera, fix_aspect_ratio=args.fix_aspect_ratio)
    written = False
    if res.ok and res.camera is not None and args.rig:
        rig = load_rig(args.rig)
        if res.camera.frame_id not in rig.frames:
            raise CalibrationError(f"camera frame {res.camera.frame_id!r} is not in the rig", file=args.rig)
        merge_rig_file(args.rig, Rig(base_frame=rig.base_frame, cameras={res.camera.name: res.camera}))
        written = True
    rep = res.to_dict()
    rep["rig_written"] = written
    rep["images"] = [str(p) for p in args.images]
    if args.report:
        write_report(rep, args.report)
    if args.plot and res.camera is not None:
        canvas = np.zeros((res.camera.height, res.camera.width, 3), np.uint8)
        rejected = set(res.metrics.get("rejected_views", []))
        for k, uv in res.corners.items():
            colour = (0, 0, 255) if k in rejected else (0, 255, 0)  # rejected outlier views in red
            for u, v in uv:
                cv2.circle(canvas, (round(u), round(v)), 3, colour, -1)
        cv2.putText(canvas, f"coverage {res.metrics.get('coverage', 0):.0%} rms {res.metrics.get('rms_px', 0):.3f}px",
                    (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        cv2.imwrite(args.plot, canvas)
    summary = ""
    if res.camera is not None and res.std:
        c, sd = res.camera, res.std
        summary = (f" fx {c.fx:.2f}±{sd['fx']:.2f} fy {c.fy:.2f}±{sd['fy']:.2f} cx {c.cx:.2f}±{sd['cx']:.2f}"
                   f" cy {c.cy:.2f}±{sd['cy']:.2f} px, RMS {res.metrics.get('rms_px', 0):.3f} px")
    print(f"intrinsics: {res.verdict}" + ("" if res.ok else ": " + "; ".join(res.reasons)) + summary)
    return 0 if res.ok else EXIT_REFUSED


def _cmd_lidar_camera(args: argparse.Namespace) -> int:
    from edgefuse_calibration.spatial.targetless import (
        LidarCameraFrame,
        TargetlessOptions,
        overlay_edges,
        refine_lidar_camera,
    )

    rig = load_rig(args.rig)
    cam = rig.camera(args.camera)
    if len(args.image) != len(args.cloud):
        raise CalibrationError("give one --cloud per --image")
    frames = [LidarCameraFrame(load_cloud(c, args.cloud_columns), _load_image(i))
              for i, c in zip(args.image, args.cloud, strict=True)]
    T0 = rig.transform(cam.frame_id, args.lidar_frame)
    opt = TargetlessOptions(refine_translation=not args.rotation_only)
    res = refine_lidar_camera(frames, cam, T0, options=opt, camera_frame=cam.frame_id, lidar_frame=args.lidar_frame)
    if args.plot:
        shown: dict[str, Any] = {"initial": T0}
        if res.T is not None and res.verdict == "ok":
            shown["refined"] = res.T
        cv2.imwrite(args.plot, overlay_edges(frames[0], cam, shown))
    return _finish(res, args, rig)


def _pair_floats(text: str, what: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise CalibrationError(f"{what} must be two numbers AxB, got {text!r}") from None
    return a, b


def _load_scan(path: str) -> npt.NDArray[np.float64]:
    """An organized scan (rows, cols, 3), or (rows, cols, 4) with the intensity last when the file has it:
    an organized ``.pcd`` (field ``intensity``), a ``.npy`` array or a ``.npz`` (keys ``xyz`` and, optional,
    ``intensity`` (rows, cols))."""
    from edgefuse_calibration.spatial.pcd import pcd_organized_scan

    p = Path(path)
    if not p.is_file():
        raise CalibrationError("scan file not found", file=p)
    if p.suffix == ".pcd":
        return pcd_organized_scan(p)
    try:
        a = np.load(p, allow_pickle=False)
        if p.suffix == ".npz":
            if "xyz" not in a:
                raise CalibrationError("the .npz scan has no 'xyz' array", file=p)
            inten = np.asarray(a["intensity"], np.float64) if "intensity" in a else None
            a = np.asarray(a["xyz"], dtype=np.float64)
            if inten is not None:
                if inten.shape != a.shape[:2]:
                    raise CalibrationError(f"the .npz intensity is {inten.shape}, its xyz {a.shape}", file=p)
                a = np.concatenate([a[..., :3], inten[..., None]], axis=2)
    except (OSError, ValueError, EOFError) as exc:
        raise CalibrationError(f"cannot read the scan: {exc}", file=p) from None
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise CalibrationError(f"an organized scan must have shape (rows, cols, 3) or (rows, cols, 4) with the"
                               f" intensity last, got {a.shape}", file=p)
    return a


def _cmd_lidar_camera_board(args: argparse.Namespace) -> int:
    from edgefuse_calibration.spatial.board import (
        BoardGeometry,
        BoardSolveOptions,
        board_overlay,
        calibrate_board_recording,
        features_from_metrics,
        read_acfr_poses,
        read_board_features_csv,
        solve_board_features,
        write_board_features_csv,
    )

    rig = load_rig(args.rig)
    opt = BoardSolveOptions(min_poses=args.min_poses, max_rot_std_deg=args.max_rot_std_deg,
                            max_trans_std_m=args.max_trans_std_m)
    if args.features:
        head = Path(args.features).read_text(encoding="utf-8", errors="replace")[:200] \
            if Path(args.features).is_file() else ""
        if head.startswith("pose,sensor,"):
            cams, lids, fnames = read_board_features_csv(args.features)
        else:
            cams, lids = read_acfr_poses(args.features)
            fnames = [f"sample{i + 1}" for i in range(len(cams))]
        cam_frame = rig.camera(args.camera).frame_id if args.camera else args.camera_frame
        if not cam_frame:
            raise CalibrationError("give --camera (a rig camera) or --camera-frame with --features")
        opt.use_points = False
        res = solve_board_features(cams, lids, options=opt, camera_frame=cam_frame, lidar_frame=args.lidar_frame,
                                   pose_names=fnames)
        return _finish(res, args, rig)
    if not args.camera or not args.pattern or args.square is None or not args.board_size:
        raise CalibrationError("give --camera, --pattern, --square and --board-size (or --features)")
    cam = rig.camera(args.camera)
    cols, rows = (int(v) for v in _pair_floats(args.pattern, "--pattern"))
    board = BoardGeometry((cols, rows), args.square, _pair_floats(args.board_size, "--board-size"),
                          _pair_floats(args.pattern_offset, "--pattern-offset"))
    images = [_load_image(i) for i in args.image or []]
    scans = [_load_scan(c) for c in args.cloud or []]
    names = [Path(i).stem for i in args.image or []]
    if len(names) != len(scans):
        names = [f"pose{i + 1}" for i in range(len(images))]
    res = calibrate_board_recording(images, scans, cam, board, options=opt, camera_frame=cam.frame_id,
                                    lidar_frame=args.lidar_frame, pose_names=names)
    if args.save_features:
        write_board_features_csv(args.save_features, *features_from_metrics(res.metrics.get("features", [])))
    if args.plot and images and scans and len(images) == len(scans):
        T = res.T if res.T is not None else rig.transform(cam.frame_id, args.lidar_frame)
        k = 0
        used = res.metrics.get("used_poses") or []
        if used:
            k = names.index(used[0])
        cv2.imwrite(args.plot, board_overlay(images[k], scans[k], cam, board, T,
                                             title=f"{res.verdict}: {names[k]}"))
    return _finish(res, args, rig)


def _cmd_register(args: argparse.Namespace) -> int:
    from edgefuse_calibration.spatial.registration import RegistrationChecks, register_clouds

    rig = load_rig(args.rig)
    T0 = rig.transform(args.target_frame, args.source_frame)
    src = load_cloud(args.source, args.cloud_columns)
    tgt = load_cloud(args.target, args.cloud_columns)
    checks = RegistrationChecks(start_rot_deg=args.guess_error_deg, start_trans_m=args.guess_error_m)
    res = register_clouds(src, tgt, T0, method=args.method, planar=args.planar, voxel_m=args.voxel,
                          source_frame=args.source_frame, target_frame=args.target_frame, checks=checks,
                          lock=tuple(args.lock or ()))
    if args.plot:
        T = res.T if res.T is not None else T0
        _plot_bev(args.plot, T.apply(src), tgt)
    return _finish(res, args, rig)


def _plot_bev(path: str, src: npt.NDArray[np.float64], tgt: npt.NDArray[np.float64], half_m: float = 50.0) -> None:
    size = 800
    img = np.zeros((size, size, 3), np.uint8)
    for pts, col in ((tgt, (0, 200, 0)), (src, (0, 0, 255))):
        p = pts[np.isfinite(pts).all(axis=1)]
        u = ((p[:, 0] + half_m) / (2 * half_m) * size).astype(int)
        v = ((half_m - p[:, 1]) / (2 * half_m) * size).astype(int)
        ok = (u >= 0) & (u < size) & (v >= 0) & (v < size)
        img[v[ok], u[ok]] = col
    cv2.imwrite(path, img)


def _cmd_imu_camera(args: argparse.Namespace) -> int:
    from edgefuse_calibration.spatial.imu_camera import rotation_from_rates

    def columns(text: str | None, path: str) -> list[int] | None:
        if text is None:
            return None
        try:
            cols = [int(v) for v in text.split(",")]
        except ValueError:
            raise CalibrationError(f"--columns must be three comma-separated indices, got {text!r}") from None
        if len(cols) != 3 or min(cols) < 0:
            raise CalibrationError(f"--columns must be three indices >= 0, got {text!r}", file=path)
        return cols

    def rates(path: str, cols: list[int] | None) -> npt.NDArray[np.float64]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy warns on an empty file; that is reported below
                values = np.loadtxt(path, delimiter=",", ndmin=2, comments="#", usecols=cols)
        except (OSError, ValueError, IndexError) as exc:
            raise CalibrationError(f"cannot read rates: {exc}", file=path) from None
        if values.shape[0] == 0:
            raise CalibrationError("no rate rows", file=path)
        if values.shape[1] < 3:
            raise CalibrationError(f"need at least 3 columns (wx,wy,wz last, or --columns), got {values.shape[1]}",
                                   file=path)
        return values[:, -3:]

    a = rates(args.rates_a, columns(args.columns_a, args.rates_a))
    b = rates(args.rates_b, columns(args.columns_b, args.rates_b))
    rig = load_rig(args.rig) if args.rig else None
    res = rotation_from_rates(a, b, a_frame=args.a_frame, b_frame=args.b_frame, estimate_bias=not args.no_bias,
                              min_rate_rad_s=args.min_rate, max_rot_std_deg=args.max_rot_std_deg)
    if res.ok and rig is not None and res.T is not None:
        # rotation only: keep the rig's translation between the frames
        from edgefuse.rig import Transform

        res.T = Transform.from_rt(res.T.R, rig.transform(args.a_frame, args.b_frame).t)
    return _finish(res, args, rig)


def _common(p: argparse.ArgumentParser, rig_required: bool = True) -> None:
    p.add_argument("--rig", required=rig_required, help="rig YAML: initial guess, and merge target when ok")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--plot", help="write a PNG overlay/plot here")


def add_spatial_parsers(sub: Any) -> None:
    """Register the spatial sub-commands on ``sub`` (the ``calibrate`` sub-parsers action)."""
    p = sub.add_parser("intrinsics", help="camera intrinsics from checkerboard or ChArUco images")
    p.add_argument("images", nargs="+")
    p.add_argument("--target", default="checkerboard", choices=["checkerboard", "charuco"])
    p.add_argument("--pattern", help="checkerboard inner corners COLSxROWS, e.g. 9x6")
    p.add_argument("--squares", help="ChArUco board squares COLSxROWS, e.g. 7x5")
    p.add_argument("--square", type=float, required=True, help="square size in metres")
    p.add_argument("--marker", type=float, help="ChArUco marker size in metres")
    p.add_argument("--dictionary", default="DICT_5X5_100", help="ChArUco ArUco dictionary (OpenCV name)")
    p.add_argument("--legacy", action="store_true", help="ChArUco board in the pre-4.6 OpenCV layout")
    p.add_argument("--subpix-window", type=int, default=5, help="checkerboard corner refinement half-size, px")
    p.add_argument("--fix-aspect-ratio", action="store_true", help="keep fx == fy (pinhole models)")
    p.add_argument("--model", default="plumb_bob", choices=["plumb_bob", "rational_polynomial", "equidistant"])
    p.add_argument("--camera", default="camera", help="camera name in the rig")
    p.add_argument("--frame", help="camera frame_id (default: the camera name)")
    _common(p, rig_required=False)
    p.set_defaults(func=_cmd_intrinsics)

    p = sub.add_parser("lidar-camera", help="targetless LiDAR->camera refinement from a rough rig guess")
    p.add_argument("--camera", required=True, help="camera name in the rig")
    p.add_argument("--lidar-frame", required=True)
    p.add_argument("--image", action="append", required=True, help="image file (repeat per frame)")
    p.add_argument("--cloud", action="append", required=True, help="cloud file .bin/.npy/.csv (repeat)")
    p.add_argument("--cloud-columns", type=int, help="float32 values per point in .bin clouds")
    p.add_argument("--rotation-only", action="store_true", help="keep the translation of the guess")
    _common(p)
    p.set_defaults(func=_cmd_lidar_camera)

    p = sub.add_parser("lidar-camera-board", help="target-based LiDAR->camera extrinsics from chessboard poses")
    p.add_argument("--camera", help="camera name in the rig (its intrinsics and frame)")
    p.add_argument("--camera-frame", help="with --features and no --camera: the camera frame")
    p.add_argument("--lidar-frame", required=True)
    p.add_argument("--image", action="append", help="image of one board pose (repeat, in pose order)")
    p.add_argument("--cloud", action="append",
                   help="organized scan of the same pose: .pcd (organized; its intensity field is used when present)"
                        " or .npy (rows, cols, 3 or 4: intensity last) / .npz (xyz, optional intensity) (repeat)")
    p.add_argument("--features", help="instead of images/scans: recorded board features, the plain CSV of"
                   " --save-features (header pose,sensor,centre_x,...) or ACFR's poses.csv")
    p.add_argument("--save-features", help="write the features found in the images/scans as a plain CSV")
    p.add_argument("--pattern", help="inner corners COLSxROWS, e.g. 5x7")
    p.add_argument("--square", type=float, help="square size in metres")
    p.add_argument("--board-size", help="outer board size WIDTHxHEIGHT in metres (along cols x rows)")
    p.add_argument("--pattern-offset", default="0x0", help="grid centre minus board centre, metres (e.g. 0.002x0)")
    p.add_argument("--min-poses", type=int, default=3)
    p.add_argument("--max-rot-std-deg", type=float, default=0.5, help="refuse above this jackknife rotation spread")
    p.add_argument("--max-trans-std-m", type=float, default=0.05, help="refuse above this jackknife translation spread")
    _common(p)
    p.set_defaults(func=_cmd_lidar_camera_board)

    p = sub.add_parser("register", help="LiDAR-LiDAR / radar-LiDAR extrinsics by ICP")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--source-frame", required=True)
    p.add_argument("--target-frame", required=True)
    p.add_argument("--method", default="point_to_plane", choices=["point_to_plane", "gicp", "point_to_point"])
    p.add_argument("--planar", action="store_true", help="x, y, yaw only (2-D radar)")
    p.add_argument("--voxel", type=float, default=0.1)
    p.add_argument("--cloud-columns", type=int)
    p.add_argument("--guess-error-deg", type=float, default=2.0,
                   help="expected rotation error of the rig guess (start spread; a result moving > 3x is refused)")
    p.add_argument("--guess-error-m", type=float, default=0.2, help="expected translation error of the rig guess")
    p.add_argument("--lock", action="append", choices=["x", "y", "yaw"],
                   help="with --planar: keep this component at the guess (repeat)")
    _common(p)
    p.set_defaults(func=_cmd_register)

    p = sub.add_parser("imu-camera", help="rotation between two sensors from paired angular rates")
    p.add_argument("rates_a", help="CSV, last 3 columns wx,wy,wz (rad/s) in frame A")
    p.add_argument("rates_b", help="CSV, same rows, rates in frame B (e.g. the IMU)")
    p.add_argument("--a-frame", default="camera")
    p.add_argument("--b-frame", default="imu")
    p.add_argument("--no-bias", action="store_true", help="do not estimate a constant rate offset (gyro bias)")
    p.add_argument("--columns-a", help="0-based columns of wx,wy,wz in RATES_A, e.g. 1,2,3 (default: the last 3)")
    p.add_argument("--columns-b", help="the same for RATES_B (e.g. 1,2,3 for a EuRoC imu0/data.csv)")
    p.add_argument("--min-rate", type=float, default=0.05,
                   help="rad/s: rates below are not motion; each stream must vary by this much on 2 axes")
    p.add_argument("--max-rot-std-deg", type=float, default=1.0, help="refuse above this rotation uncertainty")
    _common(p, rig_required=False)
    p.set_defaults(func=_cmd_imu_camera)
