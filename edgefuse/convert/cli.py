"""``edgefuse convert SRC OUT …``: argparse adapter the edgefuse CLI wires in.

Usage (after ``add_convert_parser(subparsers)``)::

    edgefuse convert SRC OUT [--layout auto|radiate|kitti_object|kitti_raw] [--storage mcap|sqlite3]
                     [--max-frames N] [--start-s S] [--time-window START END | --overlap [--overlap-ignore S,…]]
                     [--compress-images [--jpeg-quality Q]] [--compress-bag] [--calib-frame N]
                     [--streams a,b] [--gps-offset-s S] [--on-error raise|skip]

Options are range-checked before any work (``--jpeg-quality`` 0-100, ``--max-frames`` >= 1, stamps and
windows from 0 with START <= END …); a bad one is one ``edgefuse: --option …`` line and exit status 2.

Times are decimal seconds parsed exactly (``--time-window 1574859772.43 1574859775.77`` is in the
dataset's clock, absolute unix seconds for RADIATE and KITTI raw; for KITTI object the synthesized
clock starts at ``--start-s``, default 1 s).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgefuse.time import ns_from_seconds


def _seconds(text: str) -> int:
    try:
        return ns_from_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a decimal number of seconds: {text!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


#: the largest stamp a ROS 2 bag holds (signed 64-bit ns)
_MAX_STAMP_NS = 2**63 - 1


def check_args(args: argparse.Namespace) -> None:
    """Range checks of the parsed options, before any work.

    Raises:
        ConvertError: one option out of range or without the option it needs, named in the message (the
            CLI prints it as one ``edgefuse: …`` line and exits 2).
    """
    from edgefuse.errors import ConvertError

    def seconds(ns: int) -> str:
        sign, ns = ("-" if ns < 0 else ""), abs(ns)
        return f"{sign}{ns // 10**9}.{ns % 10**9:09d}".rstrip("0").rstrip(".")

    if args.jpeg_quality is not None:
        if not 0 <= args.jpeg_quality <= 100:
            raise ConvertError(f"--jpeg-quality must be from 0 to 100, got {args.jpeg_quality}")
        if not args.compress_images:
            raise ConvertError("--jpeg-quality needs --compress-images (it sets the quality of compressed camera "
                               "images)")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConvertError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.calib_frame is not None and args.calib_frame < 0:
        raise ConvertError(f"--calib-frame must be a frame number >= 0, got {args.calib_frame}")
    if not 0 <= args.start_s <= _MAX_STAMP_NS:
        raise ConvertError(f"--start-s must be from 0 to {seconds(_MAX_STAMP_NS)} s, got {seconds(args.start_s)}")
    if args.time_window is not None:
        start, end = args.time_window
        for value in (start, end):
            if not 0 <= value <= _MAX_STAMP_NS:
                raise ConvertError(f"--time-window bounds must be from 0 to {seconds(_MAX_STAMP_NS)} s, got "
                                   f"{seconds(value)}")
        if start > end:
            raise ConvertError(f"--time-window START {seconds(start)} s is after END {seconds(end)} s")
    if args.overlap_ignore is not None and not args.overlap:
        raise ConvertError("--overlap-ignore needs --overlap")
    for option in ("streams", "overlap_ignore"):
        value = getattr(args, option)
        if value is not None and not _names(value):
            raise ConvertError(f"--{option.replace('_', '-')} needs at least one name, got {value!r}")


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` sub-command to an argparse ``subparsers`` object; returns its parser.

    The parser's default ``func`` is :func:`run_convert`.
    """
    from edgefuse.convert.kitti_object import DEFAULT_START_NS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "convert", help="convert a dataset folder (RADIATE, KITTI object, KITTI raw) to a ROS 2 bag",
        description="Convert a dataset folder to a ROS 2 bag (standard sensor_msgs types, calibration on "
                    "/tf_static, rig.yaml and convert_report.json inside the bag folder).")
    p.add_argument("src", type=Path, help="dataset folder; or a packet capture (.pcap, .pcapng) or NMEA log (.nmea): "
                                          "its decoded clouds / IMU / fixes / radar scans are written")
    p.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    p.add_argument("--layout", choices=("auto", "radiate", "kitti_object", "kitti_raw"), default="auto")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--max-frames", type=_integer, default=None, metavar="N",
                   help="at most N messages per topic (N >= 1)")
    p.add_argument("--start-s", type=_seconds, default=DEFAULT_START_NS, metavar="S",
                   help="KITTI object: stamp of frame 000000 in seconds (default 1)")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--time-window", type=_seconds, nargs=2, metavar=("START", "END"),
                        help="keep messages stamped in [START, END] (seconds, dataset clock)")
    window.add_argument("--overlap", action="store_true",
                        help="keep only the window every converted stream covers")
    p.add_argument("--overlap-ignore", default=None, metavar="STREAMS",
                   help="with --overlap: comma-separated streams (or topics) left out of the window's computation, "
                        "e.g. gps_imu when its clock is off; their messages outside the window are left out")
    p.add_argument("--compress-images", action="store_true",
                   help="write CompressedImage with the original PNG bytes instead of decoded Image")
    p.add_argument("--jpeg-quality", type=_integer, default=None, metavar="Q",
                   help="RADIATE with --compress-images: camera frames as JPEG at quality Q (0-100)")
    p.add_argument("--calib-frame", type=_integer, default=None, metavar="N",
                   help="KITTI object: use frame N's calibration for the bag (frames calibrated "
                        "differently are skipped and reported; default: the first frame)")
    p.add_argument("--compress-bag", action="store_true", help="zstd-compress the bag storage (MCAP chunks)")
    p.add_argument("--streams", default=None,
                   help="RADIATE: comma-separated subset of zed_left,zed_right,velo_lidar,radar,gps_imu")
    p.add_argument("--gps-offset-s", type=_seconds, default=0, metavar="S",
                   help="RADIATE: add S seconds to GPS/IMU stamps (default 0: keep their own clock)")
    p.add_argument("--metadata", default=None, help="packet captures: the Ouster sensor metadata JSON")
    p.add_argument("--sensor", default=None,
                   help="packet captures: force the sensor (velodyne, ouster, hesai, ars548)")
    p.add_argument("--overwrite", action="store_true", help="packet captures / NMEA logs: replace an existing OUT")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="unreadable items: stop (default) or report and go on")
    p.set_defaults(func=run_convert)
    return p


def run_convert(args: argparse.Namespace) -> int:
    """Run a conversion from parsed arguments; print the report summary.

    Returns:
        0 on success.

    Raises:
        ConvertError: an option is out of range (:func:`check_args`) or the conversion failed; the
            ``edgefuse`` CLI prints it as one line and exits 2
            (``--trace`` shows the traceback), like every other command.
    """
    from edgefuse.convert.converter import convert
    from edgefuse.sources.base import file_tool

    tool = file_tool(args.src)
    if tool is not None:  # a driver's recording (packet capture, NMEA log): decoded through its source
        print(tool.convert_file(args.src, args.out, overwrite=args.overwrite, metadata=args.metadata,
                                sensor=args.sensor))
        return 0
    check_args(args)
    window: Any = "overlap" if args.overlap else (tuple(args.time_window) if args.time_window else None)
    streams = _names(args.streams) if args.streams is not None else None
    ignore = _names(args.overlap_ignore) if args.overlap_ignore is not None else []
    report = convert(args.src, args.out, layout=args.layout, storage=args.storage,
                     frames=args.max_frames, compress_images=args.compress_images,
                     start_ns=args.start_s, window_ns=window, streams=streams,
                     gps_offset_ns=args.gps_offset_s, on_error=args.on_error,
                     camera_jpeg_quality=args.jpeg_quality, compress=args.compress_bag,
                     calib_frame=args.calib_frame, overlap_ignore=ignore)
    print(report.summary())
    return 0
