"""The pipeline executor: envelopes in → synchronizer → stages (timed) → sinks.

One :class:`PipelineRunner` serves all three ways of feeding a pipeline (replay, live drivers, a
transport): whoever drives it takes envelopes from a :class:`~edgefuse.sources.Source` (which has
already applied the rig's time offsets, see :meth:`PipelineConfig.time_offsets_ns`), calls
:meth:`PipelineRunner.feed` with each and :meth:`PipelineRunner.finish` at the end.  The runner never
changes a stamp.  Every stage call, the sinks and the whole path from
the arrival of a set's last member to the end of publishing (end-to-end) are timed against the budgets
of the pipeline YAML.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edgefuse import config as runtime_config
from edgefuse.envelope import Envelope
from edgefuse.errors import EdgefuseError, PipelineError
from edgefuse.msgs.edges import payload_class
from edgefuse.pipeline.config import OutputSpec, PipelineConfig
from edgefuse.pipeline.health import DEFAULT_GAP_PERIODS, HealthMonitor
from edgefuse.pipeline.latency import Int64Log, LatencyRecorder
from edgefuse.sinks.base import Sink
from edgefuse.stages.base import Stage
from edgefuse.sync.base import Synchronizer, SyncSet
from edgefuse.time import NS_PER_MS


@dataclass
class StageErrorLog:
    """Failures of one stage: every one counted, the first few kept as text."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(text)


#: :attr:`PipelineRunner.set_flags` bits: the set missed the end-to-end / processing / a stage's deadline
SET_E2E_LATE, SET_PROCESSING_LATE, SET_STAGE_LATE = 1, 2, 4


class PipelineRunner:
    """Runs a validated :class:`PipelineConfig`."""

    def __init__(self, config: PipelineConfig, sinks: Iterable[Sink] = (), *,
                 gap_periods: float = DEFAULT_GAP_PERIODS) -> None:
        """``gap_periods``: an input's gap longer than this many nominal periods is reported (see
        :mod:`edgefuse.pipeline.health`)."""
        from edgefuse.sync import HoldingSynchronizer, make_synchronizer

        self.config = config
        self.sinks = list(sinks)
        self.rig = config.rig
        policy = make_synchronizer(config.sync_policy, config.sync_inputs, **config.sync_params)
        self._holding: HoldingSynchronizer | None = None
        if config.hold:
            self._holding = HoldingSynchronizer(policy, {h.name: h.max_age_ns for h in config.hold})
        self.sync: Synchronizer = policy if self._holding is None else self._holding
        self._by_topic = {spec.topic: spec for spec in config.inputs.values()}
        self.stages: list[Stage] = []
        for spec in config.stages:
            try:
                stage = spec.cls(spec.name, spec.params, self.rig)
            except EdgefuseError:
                raise
            except (ValueError, TypeError, KeyError) as exc:
                raise PipelineError(f"stage '{spec.name}' ({spec.type_name}) failed to construct: {exc}") from exc
            stage.input_frames = {port: config.inputs[src].frame_id if src in config.inputs else None
                                  for port, src in spec.wiring.items()}
            self.stages.append(stage)
        self.stage_latency = {
            s.name: LatencyRecorder(s.name, None if s.budget is None else s.budget.deadline_ns)
            for s in config.stages
        }
        e2e_budget = config.e2e_budget
        self.e2e = LatencyRecorder("end_to_end", None if e2e_budget is None else e2e_budget.deadline_ns)
        self.sink_latency = LatencyRecorder("sinks")
        proc_budget = config.processing_budget
        self.processing = LatencyRecorder("processing", None if proc_budget is None else proc_budget.deadline_ns)
        self.sync_wait_wall = LatencyRecorder("sync_wait")
        self.sync_wait_data = LatencyRecorder("sync_wait_data_time")
        # one row per set, for timelines (edgefuse bench): the set's stamp and what missed its deadline
        self.set_stamps = Int64Log()
        self.set_flags = Int64Log()  # bit 0: end-to-end, bit 1: processing, bit 2: a stage over its deadline
        self.start_ms: dict[str, float] = {}
        self.stage_errors: dict[str, StageErrorLog] = {s.name: StageErrorLog() for s in config.stages}
        self.stage_skipped: dict[str, int] = {s.name: 0 for s in config.stages}
        self.stage_reused: dict[str, int] = {s.name: 0 for s in config.stages}
        self._last_outputs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.sets = 0
        self.partial_sets = 0
        self.fed: dict[str, int] = {name: 0 for name in config.inputs}
        self.health = HealthMonitor(config.inputs, gap_periods, held=[h.name for h in config.hold])
        self.unknown_topic = 0
        self.type_mismatch = 0
        self.outputs_written: dict[str, int] = {o.topic: 0 for o in config.outputs}
        self._started = False
        self._outputs_by_source: dict[str, list[OutputSpec]] = {}
        for o in config.outputs:
            self._outputs_by_source.setdefault(o.source, []).append(o)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Apply runtime settings, start every stage (JIT compile, model load) and open the sinks."""
        rt = self.config.runtime
        runtime_config.configure(
            numba_threads=rt.get("numba_threads"), ort_threads=rt.get("ort_threads"),
            numba_cache_dir=rt.get("numba_cache_dir"),
        )
        for stage in self.stages:
            t0 = time.perf_counter_ns()
            stage.start()
            self.start_ms[stage.name] = (time.perf_counter_ns() - t0) / NS_PER_MS
        outputs = {o.topic: o.type for o in self.config.outputs}
        for sink in self.sinks:
            sink.open(outputs)
        self._started = True

    def feed(self, env: Envelope) -> int:
        """Deliver one envelope; returns the number of sets processed because of it."""
        if not self._started:
            raise PipelineError("PipelineRunner.feed() before start()")
        spec = self._by_topic.get(env.topic)
        if spec is None:
            self.unknown_topic += 1
            return 0
        expected = payload_class(spec.type)
        if expected is not None and not isinstance(env.payload, expected):
            self.type_mismatch += 1
            raise PipelineError(
                f"input '{spec.name}' expects {spec.type} but {env.topic} carries {type(env.payload).__name__}"
                f" ({env.msgtype})", topic=env.topic, stamp_ns=env.stamp_ns)
        env.meta["inject_ns"] = time.perf_counter_ns()
        self.fed[spec.name] += 1
        self.health.observe(spec.name, env.stamp_ns)
        sets = self.sync.push(spec.name, env.stamp_ns, env)
        for s in sets:
            self._process(s, trigger_stamp_ns=env.stamp_ns)
        return len(sets)

    def poll(self, now_ns: int) -> int:
        """For clock-driven synchronizers (collector): emit sets whose deadline passed."""
        sets = self.sync.poll(now_ns)
        for s in sets:
            self._process(s, trigger_stamp_ns=None)
        return len(sets)

    def finish(self) -> None:
        """End of stream: flush the synchronizer, stop stages, close sinks."""
        try:
            for s in self.sync.flush():
                self._process(s, trigger_stamp_ns=None)
        finally:
            try:
                for stage in self.stages:
                    stage.stop()
            finally:
                self._close_sinks()

    def _close_sinks(self) -> None:
        """Close every sink, even when one fails; the first failure is raised after all were tried."""
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as exc:  # re-raised below, after the other sinks closed
                first = first or exc
        if first is not None:
            raise first

    # -- per set ---------------------------------------------------------------------------------
    def _process(self, sset: SyncSet, trigger_stamp_ns: int | None) -> None:
        """Run the stages on one set, publish the outputs and time it all.

        Freshness: synchronized members are always new; a held (zero-order hold) member is new only
        when it differs from the one the previous set held.  A stage whose inputs are all unchanged
        since its last run is not run again: its previous outputs stay available to later stages but
        are not published again, so a 4 Hz radar held into 10 Hz sets is processed and published
        once per scan.
        """
        self.sets += 1
        if sset.missing:
            self.partial_sets += 1
        members: dict[str, Envelope] = sset.members
        fresh: set[str] = set(members) - set(sset.unchanged)
        inject = max((e.meta.get("inject_ns", 0) for e in members.values()), default=time.perf_counter_ns())
        if trigger_stamp_ns is not None:
            self.sync_wait_data.add(max(0, trigger_stamp_ns - sset.stamp_ns))
        emitted = time.perf_counter_ns()
        values: dict[str, Any] = {name: env.payload for name, env in members.items()}
        # Data time of every value: an input's (offset-corrected) stamp; a stage output's is the newest
        # stamp among the inputs it was computed from.  Outputs are published with it, so a held 4 Hz
        # radar scan's products keep the scan's stamp rather than the 10 Hz set's.
        stamps: dict[str, int] = {name: env.stamp_ns for name, env in members.items()}
        stage_late = 0
        for stage, spec in zip(self.stages, self.config.stages, strict=True):
            ins: dict[str, Any] = {}
            runnable = True
            any_fresh = False
            stamp = -(2**63)
            for port, src in spec.wiring.items():
                if src in values:
                    ins[port] = values[src]
                    stamp = max(stamp, stamps[src])
                    any_fresh = any_fresh or src in fresh
                elif (port + "?") not in spec.input_ports:
                    runnable = False
            if not runnable:
                self.stage_skipped[stage.name] += 1
                continue
            if not any_fresh and stage.name in self._last_outputs:
                self.stage_reused[stage.name] += 1
                last_stamp, last_outs = self._last_outputs[stage.name]
                for port, payload in last_outs.items():
                    values[f"{stage.name}.{port}"] = payload
                    stamps[f"{stage.name}.{port}"] = last_stamp
                continue
            t0 = time.perf_counter_ns()
            try:
                outs = stage.process(ins, stamp)
            except Exception as exc:  # one bad set must not end the run: counted, reported
                self.stage_errors[stage.name].add(_error_text(exc, sset.stamp_ns))
                # nothing from this stage for this set; until an input changes it is not retried on the
                # same data, and stages fed by it are skipped (counted as missing input)
                self._last_outputs[stage.name] = (stamp, {})
                continue
            rec = self.stage_latency[stage.name]
            took = time.perf_counter_ns() - t0
            rec.add(took)
            if rec.budget_ns is not None and took > rec.budget_ns:
                stage_late = SET_STAGE_LATE
            self._last_outputs[stage.name] = (stamp, outs)
            for port, payload in outs.items():
                key = f"{stage.name}.{port}"
                values[key] = payload
                stamps[key] = stamp
                fresh.add(key)
        t0 = time.perf_counter_ns()
        for source, specs in self._outputs_by_source.items():
            payload = values.get(source)
            if payload is None or source not in fresh:
                continue
            for o in specs:
                for sink in self.sinks:
                    sink.write(o.topic, stamps[source], payload)
                self.outputs_written[o.topic] += 1
        done = time.perf_counter_ns()
        self.sink_latency.add(done - t0)
        self.sync_wait_wall.add(max(0, emitted - inject))
        self.processing.add(done - emitted)
        self.e2e.add(done - inject)
        self.set_stamps.add(sset.stamp_ns)
        e2e_late = self.e2e.budget_ns is not None and done - inject > self.e2e.budget_ns
        proc_late = self.processing.budget_ns is not None and done - emitted > self.processing.budget_ns
        self.set_flags.add((SET_E2E_LATE if e2e_late else 0) | (SET_PROCESSING_LATE if proc_late else 0) | stage_late)

    # -- reporting -------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Latency, counts, drops and errors as a JSON-ready dict."""
        stages = {}
        breaches: list[str] = []
        for stage, spec in zip(self.stages, self.config.stages, strict=True):
            summary = self.stage_latency[spec.name].summary()
            entry = summary.as_dict()
            entry.update(type=spec.type_name, start_ms=self.start_ms.get(spec.name),
                         errors=self.stage_errors[spec.name].count,
                         first_errors=self.stage_errors[spec.name].first,
                         skipped_missing_input=self.stage_skipped[spec.name],
                         reused_unchanged_inputs=self.stage_reused[spec.name])
            details = stage.report()
            if details is not None:
                entry["details"] = _plain(details)
            stages[spec.name] = entry
            if spec.budget is not None:
                breaches += spec.budget.breaches(summary)
        e2e = self.e2e.summary()
        if self.config.e2e_budget is not None:
            breaches += self.config.e2e_budget.breaches(e2e)
        processing = self.processing.summary()
        if self.config.processing_budget is not None:
            breaches += self.config.processing_budget.breaches(processing)
        sync_stats = self.sync.stats
        return {
            "pipeline": self.config.name,
            "sets": self.sets,
            "partial_sets": self.partial_sets,
            "inputs_fed": dict(self.fed),
            "unknown_topic_messages": self.unknown_topic,
            "held_missing": {} if self._holding is None else self._holding.held_missing,
            "sync": {"policy": self.config.sync_policy, "stats": _plain(sync_stats)},
            "stages": stages,
            "sinks": self.sink_latency.summary().as_dict(),
            "sync_wait": self.sync_wait_wall.summary().as_dict(),
            "processing": processing.as_dict(),
            "end_to_end": e2e.as_dict(),
            "sync_wait_data_time": self.sync_wait_data.summary().as_dict(),
            "outputs_written": dict(self.outputs_written),
            "budget_breaches": breaches,
            "health": self.health.report(sync_stats),
        }


def _error_text(exc: BaseException, stamp_ns: int) -> str:
    """One line for a stage failure: the set's stamp, and the exception's type unless it is edgefuse's own."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, EdgefuseError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    elif exc.stamp_ns is not None:
        return text  # says its stamp already
    return f"set {stamp_ns} ns: {text}"


def _plain(obj: Any) -> Any:
    """Dataclasses (e.g. the synchronizer's stats) as plain JSON-ready dicts."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj
