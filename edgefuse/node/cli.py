"""``edgefuse node`` and ``edgefuse play`` (added to the main parser by :mod:`edgefuse.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefuse._cli_common import EXIT_BUDGET, deferred_signals, interrupt_reason
from edgefuse.errors import NodeError

#: transport options that are always lists (zenoh endpoints)
_LIST_OPTIONS = {"connect", "listen"}


def parse_remaps(items: list[str] | None) -> dict[str, str]:
    """``FROM:=TO`` (ROS's remapping syntax) → ``{FROM: TO}``."""
    out: dict[str, str] = {}
    for item in items or []:
        if ":=" not in item:
            raise NodeError(f"--remap takes FROM:=TO, got {item!r}")
        src, dst = item.split(":=", 1)
        if not src.strip() or not dst.strip():
            raise NodeError(f"--remap takes FROM:=TO with both names, got {item!r}")
        out[src.strip()] = dst.strip()
    return out


def _value(text: str) -> Any:
    low = text.lower()
    if low in {"true", "false"}:
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``-o KEY=VALUE`` transport options: numbers and true/false are converted; a key given twice (and
    ``connect``/``listen`` always) collects a list."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise NodeError(f"-o takes KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        value = _value(raw.strip())
        if key in _LIST_OPTIONS:
            out.setdefault(key, []).append(value)
        elif key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def _say(text: str) -> None:
    print(f"edgefuse: {text}", file=sys.stderr, flush=True)


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target)


def cmd_node(args: argparse.Namespace, resolve: Callable[[str], Path]) -> int:
    from edgefuse.node.node import EdgefuseNode, NodeOptions

    if args.duration is not None and not args.duration > 0:
        raise NodeError(f"--duration must be > 0 seconds, got {args.duration}")
    options = NodeOptions(
        transport=args.transport, transport_options=parse_options(args.option), remap=parse_remaps(args.remap),
        record=args.record, overwrite=args.overwrite, clock=args.clock, queue_depth=args.queue_depth,
        stale_after_s=args.stale_after, drain_timeout_s=args.drain_timeout, rig=args.rig,
        node_name=args.name, input_qos=args.input_qos)
    if options.queue_depth < 1:
        raise NodeError(f"--queue-depth must be >= 1, got {options.queue_depth}")
    node = EdgefuseNode(resolve(args.pipeline), options)
    stopped_by: str | None = None
    try:
        try:
            node.configure()
            _say(f"node {args.name}: configured on {args.transport} (stages started in "
                 f"{node.started_ms or 0:.0f} ms)")
            node.activate()
            assert node.config is not None
            ins = ", ".join(c.wire_topic for c in node.inputs.counters.values())
            outs = ", ".join(options.remap.get(o.topic, o.topic) for o in node.config.outputs)
            _say(f"node {args.name}: active; subscribed to {ins}; publishing {outs}, /diagnostics")
            end = None if args.duration is None else time.monotonic() + args.duration
            while end is None or time.monotonic() < end:
                time.sleep(0.1)
                if node.fatal is not None:
                    break
        except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: how a node is stopped
            stopped_by = interrupt_reason(exc)
    finally:
        with deferred_signals():
            try:
                node.shutdown()
            finally:
                report = node.report()
                report.update(stopped_by=stopped_by, complete=node.fatal is None)
                _write_json(args.report, report)
    dropped = {n: c["dropped"] for n, c in report["inputs_live"].items() if c["dropped"]}
    received = sum(c["received"] for c in report["inputs_live"].values())
    _say(f"node {args.name}: finalized ({stopped_by or 'duration reached'}); {received} messages received, "
         f"{report['sets']} sets, outputs {report['output_counts']}, dropped {dropped or 'none'}"
         + (f"; report {args.report}" if args.report else "") + (f"; recorded {report['out']}" if args.record else ""))
    if args.check_budgets and report["budget_breaches"]:
        for line in report["budget_breaches"]:
            _say(f"budget breach: {line}")
        return EXIT_BUDGET
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from edgefuse.node.play import Player
    from edgefuse.transport.base import open_transport

    options = parse_options(args.option)
    transport = open_transport(args.transport, node_name=args.name, **options)
    transport.open()
    try:
        player = Player(args.bag, transport, rate=args.rate, loop=args.loop, clock=args.clock,
                        clock_hz=args.clock_hz, topics=args.topics, remap=parse_remaps(args.remap),
                        delay_s=args.delay, wait_subscribers=args.wait_subscribers,
                        wait_timeout_s=args.wait_timeout)
        stopped_by = None
        try:
            _say(f"play: publishing {args.bag} on {args.transport} at {args.rate}x"
                 + (" with /clock" if args.clock else ""))
            report = player.run()
        except KeyboardInterrupt as exc:
            stopped_by = interrupt_reason(exc)
            player.stop()
            report = player.report()
    finally:
        with deferred_signals():
            transport.close()
    report["stopped_by"] = stopped_by
    _write_json(args.report, report)
    for topic, why in report["skipped_topics"].items():
        _say(f"play: {topic} not played: {why}")
    total = sum(report["published"].values())
    late = report["lateness"].get("p99_ms")
    _say(f"play: {total} messages published" + (f" (p99 {late:.1f} ms behind schedule)" if late is not None else "")
         + (f"; {sum(report['errors'].values())} not sent" if report["errors"] else "")
         + (f"; {stopped_by}" if stopped_by else ""))
    return 0


def add_parsers(sub: Any, resolve: Callable[[str], Path]) -> None:
    from edgefuse.node.inputs import DEFAULT_DEPTH

    def transport_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--transport", default="zenoh",
                       help="zenoh (default; rmw_zenoh wire format), ros2 (rclpy) or ros1 (rospy)")
        p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                       help="transport option, e.g. -o mode=client -o connect=tcp/127.0.0.1:7447 (zenoh), "
                            "-o domain_id=3 (ros2, zenoh), -o master_uri=http://127.0.0.1:11311 (ros1)")
        p.add_argument("--remap", action="append", metavar="FROM:=TO", help="publish/subscribe FROM as TO")
        p.add_argument("--name", default="edgefuse", help="node name (default edgefuse)")
        p.add_argument("--report", help="write the JSON report here when stopped")

    p = sub.add_parser("node", help="run a pipeline live: subscribe to its inputs, publish its outputs")
    p.add_argument("pipeline", help="pipeline YAML, or a bundled pipeline name (e.g. radiate_demo)")
    transport_args(p)
    p.add_argument("--record", metavar="OUT", help="also write inputs and outputs to this MCAP bag")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bag at --record")
    p.add_argument("--clock", choices=["wall", "sim"], default="wall",
                   help="wall (host time, default) or sim (follow /clock, e.g. from 'edgefuse play --clock')")
    p.add_argument("--queue-depth", type=int, default=DEFAULT_DEPTH,
                   help=f"messages queued per input before the oldest is dropped (default {DEFAULT_DEPTH})")
    p.add_argument("--stale-after", type=float, default=1.0,
                   help="an input silent this long is STALE on /diagnostics (seconds, default 1)")
    p.add_argument("--drain-timeout", type=float, default=10.0,
                   help="on stop, process what is queued for at most this long, then drop it, counted")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until SIGINT/SIGTERM)")
    p.add_argument("--check-budgets", action="store_true", help="exit 3 when a latency budget was breached")
    p.add_argument("--rig", help="use this rig file instead of the pipeline's")
    p.add_argument("--input-qos", choices=["sensor_data", "reliable"], default="sensor_data",
                   help="QoS of the input subscriptions: sensor_data (best effort, default) or reliable "
                        "(no sample of a reliable publisher lost, e.g. to check a played bag)")
    p.set_defaults(func=lambda a: cmd_node(a, resolve))

    p = sub.add_parser("play", help="publish a recording onto a transport at its recorded pace")
    p.add_argument("bag", help="ROS 1 .bag, ROS 2 bag folder, .mcap or .db3")
    transport_args(p)
    p.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    p.add_argument("--loop", action="store_true", help="start again at the end, until stopped")
    p.add_argument("--clock", action="store_true", help="publish the recording's time on /clock")
    p.add_argument("--clock-hz", type=float, default=40.0, help="/clock rate (default 40 Hz)")
    p.add_argument("--topics", nargs="+", help="only these topics")
    p.add_argument("--delay", type=float, default=1.0,
                   help="seconds between advertising and the first message, for subscribers to match (default 1)")
    p.add_argument("--wait-subscribers", type=int, default=0, metavar="N",
                   help="before playing, wait until every played topic has N matched subscriptions "
                        "(choose the topics with --topics); an error after --wait-timeout")
    p.add_argument("--wait-timeout", type=float, default=30.0,
                   help="seconds --wait-subscribers waits (default 30)")
    p.set_defaults(func=cmd_play)
