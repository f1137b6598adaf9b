"""The ``edgefuse`` command line.

``edgefuse info BAG`` · ``edgefuse convert SRC OUT`` · ``edgefuse validate PIPELINE|RIG`` ·
``edgefuse stages [--json] [NAME]`` · ``edgefuse replay PIPELINE [--bag BAG] [--rate R | --max-speed]
[--out OUT [--overwrite]] [--check-budgets] [--report REPORT.json]`` ·
``edgefuse record SOURCE... OUT [--duration S]`` ·
``edgefuse node PIPELINE [--transport zenoh|ros2|ros1] [--remap FROM:=TO] [--record OUT]`` ·
``edgefuse play BAG [--transport …] [--rate R] [--loop] [--clock]`` ·
``edgefuse bench PIPELINE [--bag BAG…] [--repeats N] [--out DIR] [--workers N]`` · ``edgefuse bench compare A B`` ·
``edgefuse quantize MODEL --pipeline P --bag B --stage NAME --out MODEL.int8.onnx``.

Bad input prints one clear line on stderr and exits non-zero (2 for usage/input errors and failed writes,
3 for a budget breach; 130/143 after SIGINT/SIGTERM, once outputs are closed and the report is written);
``--trace`` shows the traceback instead.  ``node`` and ``play`` are stopped by SIGINT/SIGTERM as a matter of
course: they finalize (the report says ``stopped_by``) and exit 0 (``node --check-budgets``: 3 after a breach).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from edgefuse._cli_common import EXIT_BUDGET, EXIT_INPUT, run_command

__all__ = ["EXIT_BUDGET", "EXIT_INPUT", "build_parser", "main", "run_command"]


def bundled_pipelines() -> dict[str, Path]:
    """Pipelines shipped with edgefuse, by name (``radiate_demo`` …)."""
    root = resources.files("edgefuse") / "data" / "pipelines"
    out: dict[str, Path] = {}
    try:
        for entry in root.iterdir():
            if entry.name.endswith(".yaml"):
                out[entry.name[:-5]] = Path(str(entry))
    except (FileNotFoundError, NotADirectoryError):
        pass
    return out


def resolve_pipeline(name: str) -> Path:
    """A pipeline path, or the name of a bundled pipeline."""
    path = Path(name)
    if path.exists():
        return path
    bundled = bundled_pipelines()
    if name in bundled:
        return bundled[name]
    raise FileNotFoundError(
        f"pipeline {name} not found (bundled pipelines: {', '.join(sorted(bundled)) or 'none'})")


def _cmd_info(args: argparse.Namespace) -> int:
    from edgefuse.bag import bag_info, format_info
    from edgefuse.errors import ConfigError
    from edgefuse.sources.base import file_tool

    tool = file_tool(args.bag[0]) if len(args.bag) == 1 else None
    if tool is not None:  # a driver's recording: packet capture, NMEA log
        text, ok = tool.info_file(args.bag[0], as_json=args.json, metadata=args.metadata, sensor=args.sensor)
        print(text)
        return 0 if ok else EXIT_INPUT
    if args.metadata or args.sensor:
        raise ConfigError("--metadata/--sensor apply to packet captures (.pcap, .pcapng), not to bags")
    info = bag_info(args.bag, strict=args.strict)
    if args.json:
        print(json.dumps(_jsonable(info), indent=2, default=str))
    else:
        print(format_info(info))
    return 0


def _jsonable(obj: Any) -> Any:
    as_dict = getattr(obj, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj


def _cmd_validate(args: argparse.Namespace) -> int:
    from edgefuse._yaml import read_text
    from edgefuse.pipeline.config import check_pipeline

    bad = 0
    for name in args.files:
        path = resolve_pipeline(name)
        problems: list[Any]
        text, problems = read_text(path)  # refuses FIFOs, devices, huge and non-UTF-8 files before parsing
        kind = "file"
        if text is not None and _is_rig_text(text):
            from edgefuse.rig import validate_rig_text

            problems = list(validate_rig_text(text, str(path)))
            kind = "rig"
        elif text is not None:
            _, problems = check_pipeline(path, rig_override=args.rig, check_bag=True)
            kind = "pipeline"
        if problems:
            bad += 1
            for p in problems:
                print(str(p), file=sys.stderr)
            print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        else:
            print(f"{path}: valid {kind}")
    return EXIT_INPUT if bad else 0


def _is_rig_text(text: str) -> bool:
    return any(line.startswith("edgefuse_rig:") for line in text[:4096].splitlines())


def _cmd_stages(args: argparse.Namespace) -> int:
    from edgefuse.errors import ConfigError
    from edgefuse.stages import known_stage_types, stage_class

    names = known_stage_types()
    if args.name is not None and args.name not in names:
        raise ConfigError(f"unknown stage type {args.name!r} (known: {', '.join(names)})")
    described = []
    for name in [args.name] if args.name is not None else names:
        try:
            cls = stage_class(name)
        except (ImportError, AttributeError) as exc:  # a broken plugin: say so, list the others
            print(f"edgefuse: warning: stage type '{name}' unavailable ({exc})", file=sys.stderr)
            continue
        if cls is not None:
            described.append(cls.describe())
    if args.json:
        print(json.dumps(described[0] if args.name is not None and described else described, indent=2))
    else:
        print("\n\n".join(_format_stage(d) for d in described))
    return 0


def _format_stage(d: dict[str, Any]) -> str:
    lines = [f"{d['type']}  ({d['module']})"]
    if d["summary"]:
        lines.append(f"  {d['summary']}")
    ins = ", ".join(f"{p['port']}{'?' if p['optional'] else ''}: {p['type']}" for p in d["inputs"]) or "none"
    outs = ", ".join(f"{p['port']}: {p['type']}" for p in d["outputs"]) or "none"
    lines += [f"  in:  {ins}", f"  out: {outs}"]
    if not d["params"]:
        lines.append("  params: none")
        return "\n".join(lines)
    lines.append("  params:")
    width = max(len(p["name"]) for p in d["params"])
    for p in d["params"]:
        default = "required" if p["required"] else f"= {json.dumps(p['default'])}"
        unit = f" [{p['unit']}]" if p["unit"] else ""
        rng = f"  ({p['range']})" if p["range"] else ""
        doc = f"  {p['doc']}" if p["doc"] else ""
        lines.append(f"    {p['name']:<{width}}  {p['type']} {default}{unit}{rng}{doc}")
    return "\n".join(lines)


def _replay_pipeline(name: str) -> Path:
    """:func:`resolve_pipeline` for ``replay``, which says what it expected when given a recording or a folder."""
    path = Path(name)
    if path.exists() and (path.is_dir() or path.suffix.lower() in {".bag", ".mcap", ".db3"}):
        from edgefuse.errors import ReplayError

        bundled = ", ".join(sorted(bundled_pipelines())) or "none"
        expected = f"replay expects a pipeline: a pipeline YAML file or a bundled pipeline name ({bundled})"
        if _looks_like_recording(path):
            raise ReplayError(f"{expected}, but this is a recording; to replay it, name a pipeline and pass the "
                              f"recording with --bag: edgefuse replay PIPELINE --bag {name}", file=path)
        raise ReplayError(f"{expected}, but this is a folder", file=path)
    return resolve_pipeline(name)


def _looks_like_recording(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in {".bag", ".mcap", ".db3"}
    return (path / "metadata.yaml").is_file() or any(path.glob("*.mcap")) or any(path.glob("*.db3"))


def _cmd_replay(args: argparse.Namespace) -> int:
    from edgefuse.replay import format_report, replay, verdict_line

    result = replay(
        _replay_pipeline(args.pipeline), bag=args.bag, rate=args.rate, max_speed=args.max_speed, out=args.out,
        report_path=args.report, progress=None if args.quiet else sys.stderr, rig=args.rig,
        overwrite=args.overwrite,
    )
    print(format_report(result.report))
    print(verdict_line(result.report), flush=True)  # always the last line: budgets met or breached by how much
    return EXIT_BUDGET if args.check_budgets and result.breaches else 0


def _cmd_record(args: argparse.Namespace) -> int:
    from edgefuse.record import format_record, record

    result = record(args.sources, args.out, duration_s=args.duration, overwrite=args.overwrite,
                    progress=None if args.quiet else sys.stderr)
    print(format_record(result))
    if args.stats:
        print(json.dumps(_jsonable(result.source_stats), indent=2, default=str))
    return 0 if result.complete else EXIT_INPUT


def _cmd_quantize(args: argparse.Namespace) -> int:
    from edgefuse.infer.quantize import QuantizeOptions
    from edgefuse.quantize import quantize_from_bag

    opts = QuantizeOptions(method=args.method, fmt=args.format, per_channel=not args.per_tensor,
                           reduce_range=args.reduce_range, activations=args.activations, metric=args.metric,
                           metric_threshold=args.metric_threshold, tolerance=args.tolerance,
                           exclude=tuple(e.strip() for e in (args.exclude or "").split(",") if e.strip()),
                           auto_exclude=args.auto_exclude, auto_max_float=args.auto_max_float, fold=not args.no_fold)
    report = quantize_from_bag(args.model, resolve_pipeline(args.pipeline), args.bag, args.stage, args.out,
                               heldout_bag=args.heldout_bag, heldout_fraction=args.heldout_fraction, options=opts,
                               report_path=args.report, rig=args.rig, overwrite=args.overwrite)
    print(json.dumps(report.as_dict(), indent=2))
    print(report.verdict, file=sys.stderr)
    return 0 if report.written else EXIT_INPUT


def _add_quantize_parser(sub: Any) -> None:
    p = sub.add_parser("quantize", help="static INT8 quantization, calibrated on a bag replayed through a pipeline")
    p.add_argument("model", help="FP32 .onnx model (its card beside it)")
    p.add_argument("--pipeline", required=True, help="pipeline whose onnx_model stage runs MODEL")
    p.add_argument("--bag", required=True, help="calibration recording")
    p.add_argument("--stage", required=True, help="name of the onnx_model stage")
    p.add_argument("--out", required=True, help="INT8 model to write (its card is written beside it)")
    p.add_argument("--heldout-bag", help="judge on this recording (default: the last --heldout-fraction of --bag)")
    p.add_argument("--heldout-fraction", type=float, default=0.25, help="held-out share of --bag (default 0.25)")
    p.add_argument("--method", choices=["minmax", "entropy", "percentile"], default="minmax")
    p.add_argument("--format", choices=["qdq", "qoperator"], default="qdq")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weights")
    p.add_argument("--reduce-range", action="store_true", help="7-bit weights (CPUs without VNNI)")
    p.add_argument("--activations", choices=["uint8", "int8"], default="uint8")
    p.add_argument("--metric", default="cosine", help="cosine | argmax_agreement | mask_f1 (against FP32)")
    p.add_argument("--metric-threshold", type=float, default=0.5, help="mask_f1's threshold")
    p.add_argument("--tolerance", type=float, default=0.01, help="largest relative metric drop accepted")
    p.add_argument("--exclude", help="comma-separated node names or operator types kept in float (e.g. "
                                     "'ConvTranspose,Sigmoid' for a segmentation head); an entry matching no "
                                     "node is an error")
    p.add_argument("--auto-exclude", action="store_true",
                   help="mixed precision: when the all-INT8 model misses --tolerance, keep its most sensitive "
                        "blocks (conv + activation...) in float, the fewest that bring the held-out metric within it")
    p.add_argument("--auto-max-float", type=float, default=0.25,
                   help="most blocks --auto-exclude may keep in float, a fraction (default 0.25); beyond it the "
                        "model is refused")
    p.add_argument("--no-fold", action="store_true",
                   help="quantize the graph as it is, without folding constant Div/Mul/Add chains into Mul and "
                        "the Convs next to them first (the folds are checked against the original either way)")
    p.add_argument("--report", help="write the accuracy report (JSON) here")
    p.add_argument("--rig", help="use this rig file instead of the pipeline's")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_cmd_quantize)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgefuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", action="store_true", help="show the traceback on errors")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="topics, types, counts, rates, span, stamp gaps and disorder of a bag "
                                    "(or of a packet capture / NMEA log)")
    p.add_argument("bag", nargs="+", help="ROS 1 .bag file or ROS 2 bag folder (sqlite3 / MCAP); or one packet "
                                          "capture (.pcap, .pcapng: per UDP port counts, rates, sizes, sensor, "
                                          "decode problems) or NMEA log (.nmea)")
    p.add_argument("--metadata", help="packet captures: the Ouster sensor metadata JSON")
    p.add_argument("--sensor", help="packet captures: force the sensor (velodyne, ouster, hesai, ars548)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--strict", action="store_true",
                   help="exit 2 when the bag disagrees with its own index, fails a CRC check or is truncated")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("validate", help="check pipeline and rig files; list every problem")
    p.add_argument("files", nargs="+", help="pipeline YAML(s) (or bundled names) and/or rig YAML(s)")
    p.add_argument("--rig", help="use this rig file instead of the pipeline's")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("stages", help="list every stage type: ports, edge types and parameters")
    p.add_argument("name", nargs="?", help="only this stage type")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_stages)

    p = sub.add_parser("replay", help="replay a bag through a pipeline and report latency against budgets")
    p.add_argument("pipeline", help="pipeline YAML, or a bundled pipeline name (e.g. radiate_demo)")
    p.add_argument("--bag", help="recording to replay (default: the pipeline's 'bag:')")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rate", type=float, default=1.0, help="pace by recorded time at this speed (default 1.0)")
    g.add_argument("--max-speed", action="store_true", help="run flat out, no pacing")
    p.add_argument("--out", help="write outputs to this ROS 2 bag (MCAP); written as OUT.partial and moved to OUT "
                                 "when the run completes (an interrupted or failed run leaves OUT.partial)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing bag at --out (only once the new run has completed)")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--check-budgets", action="store_true", help="exit 3 when a latency budget is breached")
    p.add_argument("--rig", help="use this rig file instead of the pipeline's")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("record", help="record live sources (serial GNSS/IMU, cameras, any source URL) to an MCAP bag")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="source URL, e.g. nmea+serial:///dev/ttyUSB0?baud=9600")
    p.add_argument("out", help="bag folder to write; written as OUT.partial and moved to OUT when the recording ends "
                              "(--duration, every source ended, or SIGINT/SIGTERM)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bag at OUT")
    p.add_argument("--stats", action="store_true", help="also print each source's statistics (JSON)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_record)

    _add_quantize_parser(sub)

    from edgefuse.node.cli import add_parsers as add_node_parsers

    add_node_parsers(sub, resolve_pipeline)
    from edgefuse.convert import add_convert_parser

    add_convert_parser(sub)
    from edgefuse.bag.repair import add_repair_parser

    add_repair_parser(sub)
    from edgefuse.bench import add_bench_parser

    add_bench_parser(sub, resolve_pipeline)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: Any) -> None:
    """Sub-commands from other packages (``edgefuse.cli`` entry points, e.g. ``calibrate`` from
    edgefuse_calibration), loaded here so that edgefuse core never imports them at module import time."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="edgefuse.cli"):
        try:
            add = ep.load()
        except (ImportError, AttributeError) as exc:
            print(f"edgefuse: warning: command '{ep.name}' unavailable ({exc})", file=sys.stderr)
            continue
        add(sub)


def _version() -> str:
    from edgefuse import __version__

    return f"edgefuse {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    trace = "--trace" in argv  # accepted anywhere: `edgefuse --trace info X` or `edgefuse info X --trace`
    args = parser.parse_args([a for a in argv if a != "--trace"])
    args.trace = trace
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
