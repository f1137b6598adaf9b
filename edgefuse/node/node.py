""":class:`EdgefuseNode`: a pipeline run live on a transport, as a managed (lifecycle) node.

Threads:

- the transport's receive threads (one path per input subscription) only append the serialized message
  to that input's bounded queue (:mod:`edgefuse.node.inputs`: drop-oldest, counted) — a receiver never
  waits for the pipeline;
- **one processing thread** takes queued messages in arrival order, decodes them (fast path or rosbags),
  applies the rig's time offsets and feeds the :class:`~edgefuse.pipeline.runner.PipelineRunner`, which
  synchronizes, runs the stages and hands the outputs to the sinks (the transport publisher, and the MCAP
  recorder with ``record``);
- a diagnostics thread publishes ``/diagnostics`` once per second (:mod:`edgefuse.node.diagnostics`).

Lifecycle (:mod:`edgefuse.node.lifecycle`): ``configure`` loads the pipeline, connects the transport,
starts the stages (Numba kernels compile, models load: never on the first message), advertises the
outputs and opens the recording; ``activate`` subscribes and starts the threads; ``deactivate``
unsubscribes and processes what is queued (or drops it, counted, after ``drain_timeout_s``);
``cleanup`` flushes the synchronizer, stops the stages, closes the recording validly and disconnects;
``shutdown`` does whatever of those is still due.  SIGINT/SIGTERM in ``edgefuse node`` = shutdown.

Clock: ``"wall"`` (host time: stamps for header-less messages, staleness, diagnostics stamps) or
``"sim"`` (the latest ``/clock`` message, as a node driven by ``edgefuse play --clock`` or a simulator
needs).  The clock-driven collector synchronizer is polled with this clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgefuse.envelope import Envelope
from edgefuse.errors import EdgefuseError, NodeError, PipelineError
from edgefuse.node.diagnostics import DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, Diagnostics, Status, to_message
from edgefuse.node.inputs import DEFAULT_DEPTH, LiveInputs
from edgefuse.node.lifecycle import ACTIVE, INACTIVE, STATE_NAMES, TRANSITION_IDS, Lifecycle, TransitionEvent
from edgefuse.node.publish import TransportSink
from edgefuse.pipeline.config import PipelineConfig, load_pipeline
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.sinks import RecordSink
from edgefuse.sources.base import TimeOffsets
from edgefuse.transport.base import RELIABLE, SENSOR_DATA, Publisher, QoS, Received, Subscription, Transport

CLOCK_TOPIC = "/clock"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
TRANSITION_EVENT_TYPE = "lifecycle_msgs/msg/TransitionEvent"
#: transition events are kept for late joiners (the last 10)
TRANSITION_QOS = QoS("reliable", "transient_local", 10)


@dataclass
class NodeOptions:
    """How :class:`EdgefuseNode` runs (the ``edgefuse node`` flags)."""

    transport: str = "zenoh"
    transport_options: dict[str, Any] = field(default_factory=dict)
    #: pipeline topic → topic on the wire (inputs and outputs)
    remap: dict[str, str] = field(default_factory=dict)
    record: str | Path | None = None
    overwrite: bool = False
    clock: Literal["wall", "sim"] = "wall"
    queue_depth: int = DEFAULT_DEPTH
    stale_after_s: float = 1.0
    diagnostics_period_s: float = 1.0
    diagnostics_window_s: float = 5.0
    drain_timeout_s: float = 10.0
    rig: str | Path | None = None
    node_name: str = "edgefuse"
    #: QoS of the input subscriptions: "sensor_data" (best effort, what sensor drivers publish with; a sample
    #: the middleware drops is counted in ``transport_stats``) or "reliable" (every sample of a reliable
    #: publisher is delivered or retried, e.g. a bag played to check that live equals replay)
    input_qos: Literal["sensor_data", "reliable"] = "sensor_data"


class EdgefuseNode(Lifecycle):
    """A pipeline as a live, managed node (see the module documentation)."""

    def __init__(self, pipeline: str | Path, options: NodeOptions | None = None,
                 transport: Transport | None = None) -> None:
        """``transport``: an already built (not yet opened) transport instead of ``options.transport``."""
        super().__init__()
        self.pipeline = Path(pipeline)
        self.options = options or NodeOptions()
        self._given_transport = transport
        self.transport: Transport | None = None
        self.config: PipelineConfig | None = None
        self.runner: PipelineRunner | None = None
        self.publisher: TransportSink | None = None
        self.recorder: RecordSink | None = None
        self.inputs = LiveInputs(self.options.queue_depth)
        self.offsets = TimeOffsets()
        self.diagnostics: Diagnostics | None = None
        self._subs: list[Subscription] = []
        self._diag_pub: Publisher | None = None
        self._event_pub: Publisher | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._runner_lock = threading.Lock()
        self._sim_ns: int | None = None
        self._typestore: Any = None
        self._wall_minus_mono = time.time_ns() - time.monotonic_ns()
        self.active_since_ns = 0
        self.type_mismatch = 0
        self.feed_errors: list[str] = []
        self.feed_error_count = 0
        self.clock_received = 0
        self.diagnostics_published = 0
        self.discarded_at_stop = 0
        self.started_ms: float | None = None
        self.fatal: str | None = None
        #: what report() gives once the runner and transport are released (after cleanup/shutdown)
        self._final_report: dict[str, Any] | None = None
        self._last_transport_stats: dict[str, Any] | None = None
        self.listeners.append(self._publish_transition)

    # -- clock -------------------------------------------------------------------------------------
    def now_ns(self) -> int:
        """The node's clock (ns since the epoch): wall time, or the latest ``/clock`` in sim mode (0 before
        the first one)."""
        if self.options.clock == "sim":
            return self._sim_ns or 0
        return time.time_ns()

    def _wall_of(self, recv_mono_ns: int) -> int:
        return recv_mono_ns + self._wall_minus_mono

    # -- lifecycle callbacks -----------------------------------------------------------------------
    def on_configure(self) -> None:
        from edgefuse.msgs.edges import msgtype_of
        from edgefuse.transport.base import open_transport

        opts = self.options
        config = load_pipeline(self.pipeline, rig_override=opts.rig)
        msgtypes = {}
        for name, spec in config.inputs.items():
            msgtype = msgtype_of(spec.type)
            if msgtype is None:
                raise NodeError(f"input '{name}' has edge type {spec.type}, which names no ROS message type: "
                                "a live node must know what to subscribe to", file=self.pipeline)
            msgtypes[name] = msgtype
        self.config = config
        self.offsets.set(config.time_offsets_ns())
        transport = self._given_transport or open_transport(
            opts.transport, node_name=opts.node_name, **opts.transport_options)
        transport.open()
        self.transport = transport
        self._typestore = getattr(transport, "typestore", None)
        try:
            self.publisher = TransportSink(transport, remap=opts.remap)
            self.recorder = RecordSink(opts.record, overwrite=opts.overwrite, rig=config.rig,
                                       viewer_extras=opts.record is not None)
            runner = PipelineRunner(config, [self.publisher, self.recorder])
            t0 = time.perf_counter_ns()
            runner.start()  # stages start (JIT, models), sinks open (publishers advertised, bag opened)
            self.started_ms = (time.perf_counter_ns() - t0) / 1e6
            self.runner = runner
            if opts.record is not None:
                for name, spec in config.inputs.items():
                    self.recorder.add_input_topic(spec.topic, msgtypes[name])
            self.inputs = LiveInputs(opts.queue_depth)
            for name, spec in config.inputs.items():
                self.inputs.add(name, spec.topic, opts.remap.get(spec.topic, spec.topic), msgtypes[name])
            self.diagnostics = Diagnostics(config.name, window_s=opts.diagnostics_window_s,
                                           stale_after_s=opts.stale_after_s, hardware_id=opts.node_name)
            self._diag_pub = transport.advertise(DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, RELIABLE)
        except BaseException:
            self._release()
            raise

    def on_activate(self) -> None:
        assert self.transport is not None
        assert self.config is not None
        self._stop.clear()
        self.inputs.reopen()
        input_qos = RELIABLE if self.options.input_qos == "reliable" else SENSOR_DATA
        self.active_since_ns = time.monotonic_ns()
        try:
            for name in self.config.inputs:
                c = self.inputs.counters[name]
                self._subs.append(self.transport.subscribe(c.wire_topic, c.msgtype, self.inputs.callback(name),
                                                           input_qos))
            if self.options.clock == "sim":
                self._subs.append(self.transport.subscribe(CLOCK_TOPIC, CLOCK_TYPE, self._on_clock, SENSOR_DATA))
        except BaseException:
            self._unsubscribe()
            raise
        self._threads = [threading.Thread(target=self._process_loop, name="edgefuse-processing", daemon=True),
                         threading.Thread(target=self._diagnostics_loop, name="edgefuse-diagnostics", daemon=True)]
        for t in self._threads:
            t.start()

    def on_deactivate(self) -> None:
        self._unsubscribe()
        self.inputs.close()  # the processing thread empties the queues, then ends
        deadline = time.monotonic() + self.options.drain_timeout_s
        processing = self._threads[0] if self._threads else None
        while processing is not None and processing.is_alive() and time.monotonic() < deadline:
            processing.join(0.05)
        self._stop.set()
        self.discarded_at_stop += self.inputs.discard("shutdown")
        for t in self._threads:
            t.join(5.0)
        self._threads = []
        self._publish_diagnostics()  # the final numbers

    def on_cleanup(self) -> None:
        self._release()

    def on_shutdown(self, previous: int) -> None:
        if previous == ACTIVE:
            self.on_deactivate()
        if previous in (ACTIVE, INACTIVE):
            self._release()

    def on_error(self, previous: int) -> None:
        self._stop.set()
        self._unsubscribe()
        self.inputs.close()
        self.discarded_at_stop += self.inputs.discard("shutdown")
        for t in self._threads:
            t.join(5.0)
        self._threads = []
        self._release()

    def _unsubscribe(self) -> None:
        subs, self._subs = self._subs, []
        for s in subs:
            try:
                s.close()
            except EdgefuseError as exc:
                self._note_error(f"unsubscribing {s.topic}: {exc}")

    def _release(self) -> None:
        """Flush the synchronizer, stop the stages, close the sinks (the bag validly) and the transport."""
        runner, self.runner = self.runner, None
        try:
            if runner is not None:
                if self.recorder is not None and self.fatal is not None:
                    self.recorder.mark_incomplete(self.fatal)
                with self._runner_lock:
                    runner.finish()
                self._final_report = runner.report()
        finally:
            for pub in (self._diag_pub, self._event_pub):
                if pub is not None:
                    pub.close()
            self._diag_pub = None
            self._event_pub = None
            transport, self.transport = self.transport, None
            if transport is not None:
                self._last_transport_stats = self._transport_stats(transport)
                transport.close()

    # -- receive side ------------------------------------------------------------------------------
    def _on_clock(self, msg: Received) -> None:
        from edgefuse.msgs import deserialize
        from edgefuse.time import ns_from_ros

        try:
            clock = deserialize(msg.data, CLOCK_TYPE, fmt=msg.fmt, typestore=self._typestore)
        except EdgefuseError:
            return
        self._sim_ns = ns_from_ros(clock.clock)
        self.clock_received += 1

    # -- processing thread ---------------------------------------------------------------------------
    def _process_loop(self) -> None:
        assert self.config is not None
        topic_of = {name: spec.topic for name, spec in self.config.inputs.items()}
        collector = self.config.sync_policy == "collector"
        while not self._stop.is_set():
            item = self.inputs.pop(0.05)
            if item is None:
                if self.inputs.closed and not self.inputs.queued():
                    return
                if collector:
                    self._poll()
                continue
            name, msg = item
            self.inputs.counters[name].processed += 1  # taken off the queue (decoded or not)
            env = self._decode(name, topic_of[name], msg)
            if env is None:
                continue
            try:
                with self._runner_lock:
                    if self.runner is None:
                        return
                    self.runner.feed(env)
                    if collector:
                        self.runner.poll(self.now_ns())
            except PipelineError as exc:
                self.type_mismatch += 1
                self._note_error(str(exc))
            except Exception as exc:  # a bug must not kill the node silently: counted, reported
                self._note_error(f"{type(exc).__name__}: {exc}")

    def _poll(self) -> None:
        with self._runner_lock:
            if self.runner is not None:
                self.runner.poll(self.now_ns())

    def _decode(self, name: str, topic: str, msg: Received) -> Envelope | None:
        """The envelope of one received message (``None``, counted, when it does not decode)."""
        counters = self.inputs.counters[name]
        try:
            payload, stamp = decode_received(msg, self._typestore)
        except Exception as exc:  # malformed bytes: counted by input, the node goes on
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            counters.decode_error(f"{msg.topic}: {text}")
            return None
        wall = self._wall_of(msg.recv_ns)
        if self.recorder is not None and self.options.record is not None:
            self.recorder.write_input_raw(topic, wall, msg.data, msg.msgtype, fmt=msg.fmt, typestore=self._typestore)
        env = Envelope(topic=topic, stamp_ns=stamp if stamp is not None else wall, recv_ns=msg.recv_ns,
                       payload=payload, msgtype=msg.msgtype, meta={"recv_wall_ns": wall})
        if msg.source_ns is not None:
            env.meta["source_ns"] = msg.source_ns
        return self.offsets.apply(env)

    def _note_error(self, text: str) -> None:
        self.feed_error_count += 1
        if len(self.feed_errors) < 5:
            self.feed_errors.append(text)

    # -- diagnostics -------------------------------------------------------------------------------
    def _diagnostics_loop(self) -> None:
        period = self.options.diagnostics_period_s
        while not self._stop.wait(period):
            self._publish_diagnostics()

    def statuses(self) -> list[Status]:
        """The diagnostic statuses now (also what ``/diagnostics`` publishes)."""
        diag, runner, config = self.diagnostics, self.runner, self.config
        if diag is None or runner is None or config is None:
            return []
        now = time.monotonic_ns()
        out = []
        with self._runner_lock:
            for spec in config.stages:
                p99 = None if spec.budget is None else spec.budget.p99_ms
                out.append(diag.latency_status(f"stage/{spec.name}", runner.stage_latency[spec.name], p99, now))
            e2e_p99 = None if config.e2e_budget is None else config.e2e_budget.p99_ms
            out.append(diag.latency_status("end_to_end", runner.e2e, e2e_p99, now))
            proc_p99 = None if config.processing_budget is None else config.processing_budget.p99_ms
            out.append(diag.latency_status("processing", runner.processing, proc_p99, now))
        for name, c in self.inputs.counters.items():
            out.append(diag.input_status(name, c, now, self.active_since_ns))
        diag.last = out
        return out

    def _publish_diagnostics(self) -> None:
        from edgefuse.msgs import serialize
        from edgefuse.msgs.typestore import get_typestore

        pub, transport = self._diag_pub, self.transport
        if pub is None or transport is None:
            return
        statuses = self.statuses()
        try:
            ts = self._typestore or get_typestore()
            raw = serialize(to_message(statuses, self.now_ns(), ts), DIAGNOSTICS_TYPE, fmt=transport.fmt,
                            typestore=ts)
            pub.publish(raw)
            self.diagnostics_published += 1
        except EdgefuseError as exc:
            self._note_error(f"diagnostics: {exc}")

    def _publish_transition(self, event: TransitionEvent) -> None:
        """``/<node>/transition_event`` (lifecycle_msgs/msg/TransitionEvent), when the transport is up."""
        from edgefuse.msgs import serialize
        from edgefuse.msgs._common import make_msg
        from edgefuse.msgs.typestore import get_typestore

        transport = self.transport
        if transport is None:
            return
        try:
            if self._event_pub is None:
                self._event_pub = transport.advertise(f"/{self.options.node_name}/transition_event",
                                                      TRANSITION_EVENT_TYPE, TRANSITION_QOS)
            ts = self._typestore or get_typestore()
            msg = make_msg(
                ts, TRANSITION_EVENT_TYPE, timestamp=self.now_ns(),
                transition=make_msg(ts, "lifecycle_msgs/msg/Transition", id=TRANSITION_IDS[event.transition],
                                    label=event.transition),
                start_state=make_msg(ts, "lifecycle_msgs/msg/State", id=event.start,
                                     label=STATE_NAMES[event.start]),
                goal_state=make_msg(ts, "lifecycle_msgs/msg/State", id=event.goal, label=STATE_NAMES[event.goal]))
            self._event_pub.publish(serialize(msg, TRANSITION_EVENT_TYPE, fmt=transport.fmt, typestore=ts))
        except EdgefuseError as exc:
            self._note_error(f"transition event: {exc}")

    # -- report ------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The run's report: the replay report's sections (latency, sync, health, output digests) plus
        the live receive side (per input: received, dropped by reason, decode errors), the transport's
        counters, the lifecycle history and the last diagnostics."""
        if self.runner is not None:
            with self._runner_lock:
                base = self.runner.report()
        else:
            base = dict(self._final_report or {})
        rec = self.recorder
        base.update(
            mode="live",
            transport=self.options.transport,
            transport_stats=self._transport_stats(),
            state=self.state_name,
            lifecycle=[e.text for e in self.history],
            start_total_ms=self.started_ms,
            inputs_live={name: c.as_dict() for name, c in self.inputs.counters.items()},
            dropped_at_stop=self.discarded_at_stop,
            type_mismatch=self.type_mismatch,
            feed_errors=self.feed_error_count,
            first_feed_errors=list(self.feed_errors),
            clock=self.options.clock,
            clock_messages=self.clock_received,
            diagnostics_published=self.diagnostics_published,
            diagnostics=[s.as_dict() for s in (self.diagnostics.last if self.diagnostics else [])],
            published=None if self.publisher is None else self.publisher.report(),
            output_digests={} if rec is None else rec.digests(),
            output_counts={} if rec is None else dict(rec.counts),
            out=None if rec is None or rec.path is None else str(rec.path),
        )
        return base

    def _transport_stats(self, transport: Transport | None = None) -> dict[str, Any]:
        t = transport or self.transport
        if t is None:
            return dict(self._last_transport_stats or {})
        try:
            return dict(t.stats())
        except EdgefuseError as exc:
            return {"error": str(exc)}


def decode_received(msg: Received, typestore: Any = None) -> tuple[Any, int | None]:
    """``(payload, header stamp or None)`` of a received message, decoded as a bag reader would (fast path
    where the type has one; types edgefuse does not convert stay rosbags messages).  ``typestore``: the
    transport's (ROS 1 definitions differ from ROS 2's); None: edgefuse's.

    Raises:
        MessageError: the bytes do not decode or convert.
    """
    from edgefuse.msgs import fastpath
    from edgefuse.msgs.convert import decode_to_payload
    from edgefuse.msgs.serde import deserialize

    data = bytes(msg.data) if isinstance(msg.data, memoryview) else msg.data
    payload, stamp, _ = decode_to_payload(
        data, msg.msgtype, msg.fmt, fast=typestore is None and fastpath.supports(msg.msgtype, fmt=msg.fmt),
        decode=lambda: deserialize(data, msg.msgtype, fmt=msg.fmt, typestore=typestore),
    )
    return payload, stamp

