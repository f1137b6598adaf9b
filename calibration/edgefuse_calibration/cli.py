"""``edgefuse calibrate …``: calibration commands writing into rig files.

``edgefuse calibrate time BAG --signal-a TOPIC:FIELD --signal-b TOPIC:FIELD [--method xcorr|dtw|cca]
[--max-lag-ms MS] [--rotate-a R,P,Y] [--frame-a FRAME] [--rig RIG.yaml --sensor NAME]
[--report R.json] [--plot P.png]`` estimates the offset of stream b relative to stream a
(``t_a = t_b + offset``).  With ``--rig`` and ``--sensor`` it writes sensor NAME's ``time_offset_ns``
(= stream a's own rig offset + the estimate) into the rig file, but only when the verdict is ``ok``;
otherwise nothing is written and the command exits 4, printing the verdict and its reason.

``add_calibrate_parser(subparsers)`` is what ``edgefuse`` loads (entry point group ``edgefuse.cli``).
Spatial sub-commands come from ``edgefuse_calibration.spatial.cli``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse._cli_common import run_command
from edgefuse.errors import CalibrationError

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_REFUSED = 4


def add_calibrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``calibrate`` (with sub-commands ``time`` and, when available, the spatial ones)."""
    p = subparsers.add_parser("calibrate", help="estimate calibration (time offsets, extrinsics) into a rig file")
    sub = p.add_subparsers(dest="calibrate_command", metavar="KIND", required=True)
    _add_time_parser(sub)
    # Every kind is always listed: what an optional extra provides (open3d for registration, matplotlib for
    # plots) is imported when used and, when missing, refused with one line naming the extra to install.
    from edgefuse_calibration.spatial.cli import add_spatial_parsers

    add_spatial_parsers(sub)
    return p  # type: ignore[no-any-return]


def _add_time_parser(sub: Any) -> None:
    t = sub.add_parser(
        "time", help="time offset between two streams of a bag from a shared motion signal",
        description="Estimate the time offset of stream b relative to stream a (t_a = t_b + offset) from"
                    " a motion signal both observe, e.g. gyro yaw rate and wheel-odometry yaw rate.")
    t.add_argument("bag", help="ROS 1 .bag or ROS 2 bag folder")
    t.add_argument("--signal-a", required=True, metavar="TOPIC:FIELD",
                   help="reference stream, e.g. /imu/data:gyro_z (fields: gyro_x/y/z, gyro, gyro_norm,"
                        " twist_yaw, twist_x/y/z, speed)")
    t.add_argument("--signal-b", required=True, metavar="TOPIC:FIELD", help="stream to align, e.g. /odom:twist_yaw")
    t.add_argument("--method", choices=("xcorr", "dtw", "cca"), default="xcorr")
    t.add_argument("--max-lag-ms", type=float, default=1000.0, help="search range ± (default 1000 ms)")
    t.add_argument("--rotate-a", metavar="R,P,Y",
                   help="rotate stream a's IMU rates by roll,pitch,yaw (degrees; R = Rz·Ry·Rx) first")
    t.add_argument("--frame-a", metavar="FRAME",
                   help="with --rig: express stream a's IMU rates in FRAME using the rig transform from the"
                        " frame of the sensor that publishes stream a's topic")
    t.add_argument("--rig", type=Path, help="rig YAML to update (only when the verdict is ok)")
    t.add_argument("--sensor", help="rig sensor whose time_offset_ns is written (stream b's sensor)")
    t.add_argument("--report", type=Path, help="write a JSON report here")
    t.add_argument("--plot", type=Path, help="write a PNG plot here")
    t.set_defaults(func=cmd_time)


def _rotation_a(args: argparse.Namespace, rig: Any) -> Any:
    if args.rotate_a and args.frame_a:
        raise CalibrationError("give either --rotate-a or --frame-a, not both")
    if args.rotate_a:
        from edgefuse.rig.transform import rotation_from_rpy

        try:
            rpy = [float(x) for x in args.rotate_a.split(",")]
        except ValueError:
            rpy = []
        if len(rpy) != 3:
            raise CalibrationError(f"--rotate-a expects roll,pitch,yaw in degrees, got {args.rotate_a!r}")
        return rotation_from_rpy(rpy, degrees=True)
    if args.frame_a:
        if rig is None:
            raise CalibrationError("--frame-a needs --rig")
        topic = args.signal_a.rpartition(":")[0]
        s = rig.sensor_for_topic(topic)
        if s is None:
            raise CalibrationError(f"--frame-a: no rig sensor publishes {topic}", file=args.rig)
        return rig.transform(args.frame_a, s.frame_id).R
    return None


def cmd_time(args: argparse.Namespace) -> int:
    """Run ``calibrate time``; returns the exit code."""
    from edgefuse.rig import load_rig, merge_rig_file
    from edgefuse.rig.rig import Rig
    from edgefuse_calibration.report import plot_time_offset, write_json_report
    from edgefuse_calibration.temporal.estimate import estimate_time_offset
    from edgefuse_calibration.temporal.signals import signals_from_bag

    if (args.rig is None) != (args.sensor is None):
        raise CalibrationError("--rig and --sensor go together (the sensor whose offset is written)")
    rig = load_rig(args.rig) if args.rig is not None else None
    if rig is not None:
        rig.sensor(args.sensor)  # unknown sensor: clear error before any work
    R_a = _rotation_a(args, rig)
    a, b = signals_from_bag(args.bag, [args.signal_a, args.signal_b], [R_a, None])
    est = estimate_time_offset(a, b, method=args.method, max_lag_ns=int(args.max_lag_ms * 1e6))
    report: dict[str, Any] = {"command": "calibrate time", "bag": str(args.bag), "signal_a": args.signal_a,
                              "signal_b": args.signal_b, "convention": "t_a = t_b + offset_ns",
                              "samples": {"a": len(a), "b": len(b)},
                              "rotation_a": None if R_a is None else np.asarray(R_a),
                              **est.to_dict(), "rig_written": False}
    if est.ok and rig is not None and est.offset_ns is not None:
        topic_a = args.signal_a.rpartition(":")[0]
        base = rig.time_offset_ns(topic_a)
        new = int(base + est.offset_ns)
        s = rig.sensor(args.sensor)
        merge_rig_file(args.rig, Rig(base_frame=rig.base_frame, sensors={s.name: replace(s, time_offset_ns=new)}))
        report.update(rig_written=True, rig=str(args.rig), sensor=args.sensor, time_offset_ns=new,
                      reference_offset_ns=base)
    if args.report:
        write_json_report(args.report, report)
    if args.plot:
        plot_time_offset(args.plot, est, a, b)
    if not est.ok:
        print(f"edgefuse: calibrate time: verdict {est.verdict}: {est.diagnostics.get('reason', '')}"
              + ("; rig not changed" if rig is not None else ""), file=sys.stderr)
        return EXIT_REFUSED
    assert est.offset_ns is not None
    assert est.uncertainty_ns is not None
    line = (f"{args.signal_b} relative to {args.signal_a}: offset {est.offset_ns / 1e6:+.2f} ms"
            f" ± {est.uncertainty_ns / 1e6:.2f} ms ({est.method}, verdict ok)")
    if report["rig_written"]:
        line += f"; wrote {args.sensor}.time_offset_ns = {report['time_offset_ns']} to {args.rig}"
    print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m edgefuse_calibration.cli calibrate time …``), with the same
    error handling as ``edgefuse``: one ``edgefuse: …`` line and exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="edgefuse")
    parser.add_argument("--trace", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    add_calibrate_parser(sub)
    args = parser.parse_args(argv)
    return run_command(args)

if __name__ == "__main__":
    sys.exit(main())
