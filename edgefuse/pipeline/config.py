"""Pipeline YAML: parse, check the whole graph at load time, and report every problem at once.

Format (see README "Pipeline YAML reference")::

    edgefuse_pipeline: 1
    name: radiate_demo
    rig: rig.yaml                      # calibration file, relative to this file (optional)
    bag: ../data/demo                  # default recording for `edgefuse replay` (optional)
    runtime: {numba_threads: 2, ort_threads: 1, numba_cache_dir: cache}   # cache dir relative to this file
    inputs:                            # name -> topic, edge type, rig sensor
      lidar:  {topic: /lidar/points, type: PointCloud, sensor: lidar}
      camera: {topic: /camera/image/compressed, type: CompressedImage, sensor: zed_left}
    sync:
      policy: approximate              # exact | approximate | latest | imu_window | collector
      inputs: [lidar, camera]          # default: every input not held
      params: {queue_size: 10, max_interval_ms: 60}   # *_ms values are converted to *_ns
      hold: {radar: {max_age_ms: 500}} # zero-order hold: latest radar (<= set stamp) joins each set
    stages:
      - name: decode
        type: decode_image
        in: {image: camera}            # port -> input name or <stage>.<output>
      - name: project
        type: lidar_camera_projection
        in: {cloud: lidar, image: decode.image}
        params: {camera: zed_left}
        budget_ms: 30                  # or budget: {deadline_ms: 30, p99_ms: 25, max_miss_rate: 0.01}
    outputs:                           # what sinks publish / record
      - {topic: /edgefuse/depth, from: project.depth}
    budgets:
      end_to_end_ms: 50                # or end_to_end: {deadline_ms: ..., ...}

Checked at load time (``edgefuse validate``): YAML syntax, unknown or missing keys, unknown stage types and
parameters, every stage parameter's type and range (from the stage's typed declaration, see
:mod:`edgefuse.stages.params`; each stage is then constructed, so what validates also constructs), edges
that name nothing, edge type mismatches, cycles, duplicate names, synchronizer parameters (names as
written, ``*_ms`` durations within ±:data:`MAX_DURATION_MS`), hold ages, budgets, the runtime section,
the rig file itself, and every calibration frame / camera a stage or input needs.  With
``check_bag=True`` (``edgefuse validate``) the pipeline's own ``bag:`` is opened and every input topic
must be in it.

Relative paths (``rig``, ``bag``, ``runtime.numba_cache_dir``) are relative to the pipeline file's folder.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefuse._yaml import Collector, load_yaml, plain
from edgefuse.errors import EdgefuseError, Problem, ValidationError
from edgefuse.msgs.edges import ANY, compatible, edge_types
from edgefuse.pipeline.budget import Budget, parse_budget
from edgefuse.stages.base import Stage, known_stage_types, stage_class
from edgefuse.stages.params import StageParams

TOP_KEYS = {"edgefuse_pipeline", "name", "description", "rig", "bag", "runtime", "inputs", "sync", "stages",
            "outputs", "budgets"}
INPUT_KEYS = {"topic", "type", "sensor", "frame_id"}
STAGE_KEYS = {"name", "type", "in", "params", "budget", "budget_ms"}
SYNC_KEYS = {"policy", "inputs", "params", "hold"}
RUNTIME_KEYS = {"numba_threads", "ort_threads", "numba_cache_dir"}
#: largest |duration| [ms] of a synchronizer parameter or hold age (one day)
MAX_DURATION_MS = 86_400_000
#: largest synchronizer queue size accepted
MAX_QUEUE = 1_000_000_000
#: largest thread count accepted in ``runtime:``
MAX_THREADS = 1024


@dataclass
class InputSpec:
    name: str
    topic: str
    type: str
    sensor: str | None = None
    frame_id: str | None = None


@dataclass
class StageSpec:
    name: str
    type_name: str
    cls: type[Stage]
    wiring: dict[str, str]
    #: the checked, typed parameters (an instance of ``cls.Params``)
    params: StageParams
    budget: Budget | None
    #: port → edge type (``cls.ports(params)``; the class's own ports when left empty)
    input_ports: dict[str, str] = field(default_factory=dict)
    output_ports: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.input_ports and not self.output_ports:
            self.input_ports, self.output_ports = dict(self.cls.inputs), dict(self.cls.outputs)


@dataclass
class OutputSpec:
    topic: str
    source: str
    type: str


@dataclass
class HoldSpec:
    name: str
    max_age_ns: int | None


@dataclass
class PipelineConfig:
    """A validated pipeline.  ``stages`` are in execution (topological) order."""

    path: Path | None
    name: str
    inputs: dict[str, InputSpec]
    sync_policy: str
    sync_inputs: list[str]
    sync_params: dict[str, Any]
    hold: list[HoldSpec]
    stages: list[StageSpec]
    outputs: list[OutputSpec]
    e2e_budget: Budget | None
    processing_budget: Budget | None = None
    rig_path: Path | None = None
    bag_path: Path | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    rig: Any = None

    def time_offsets_ns(self) -> dict[str, int]:
        """Input topic → the rig's time offset [ns] for it (``t_reference = t_sensor + offset``).

        Looked up by the input's rig sensor, then by its topic; 0 for an input the rig does not know (see
        README, "Unknown sensors have a zero offset").  Sources apply these (:meth:`Source.set_time_offsets`).
        """
        from edgefuse.errors import EdgefuseError

        out: dict[str, int] = {}
        for spec in self.inputs.values():
            offset = 0
            for key in (spec.sensor, spec.topic):
                if self.rig is None or key is None:
                    continue
                try:
                    offset = int(self.rig.time_offset_ns(key))
                    break
                except (KeyError, EdgefuseError):
                    continue
            out[spec.topic] = offset
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _convertible_ms(value: Any) -> bool:
    """A number of milliseconds whose nanoseconds fit int64 (NaN, inf and 1e308 stay as written)."""
    return _is_number(value) and math.isfinite(value) and abs(value) <= 9e12


def ms_to_ns_params(params: dict[str, Any]) -> dict[str, Any]:
    """``{max_interval_ms: 50}`` → ``{max_interval_ns: 50_000_000}``; a ``*_ms`` key whose value is a mapping
    (per input) converts each number in it; other nested mappings are converted recursively.

    Only finite numbers whose nanoseconds fit int64 are converted; anything else is left as written (and
    reported by :func:`ms_problems` or the synchronizer's own checks).
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key.endswith("_ms") and isinstance(value, dict):
            out[key[:-3] + "_ns"] = {k: round(v * 1_000_000) if _convertible_ms(v) else v for k, v in value.items()}
        elif isinstance(value, dict):
            out[key] = ms_to_ns_params(value)
        elif key.endswith("_ms") and _convertible_ms(value):
            out[key[:-3] + "_ns"] = round(value * 1_000_000)
        else:
            out[key] = value  # including a *_ms value that is no usable number: reported as written
    return out


def ms_problems(key: str, value: Any) -> list[str]:
    """Problems with a ``*_ms`` value (a number, or a mapping name → number): finite, within ±MAX_DURATION_MS."""
    items = value.items() if isinstance(value, dict) else [(None, value)]
    out = []
    for name, v in items:
        where = key if name is None else f"{key}.{name}"
        if not _is_number(v):
            out.append(f"{where} must be a number of milliseconds, got {v!r}")
        elif not math.isfinite(v):
            out.append(f"{where} must be a finite number of milliseconds, got {v!r}")
        elif abs(v) > MAX_DURATION_MS:
            out.append(f"{where} must be within ±{MAX_DURATION_MS} ms (one day), got {v!r}")
    return out


def _ns_problems(key: str, value: Any) -> list[str]:
    """Problems with a ``*_ns`` value given in nanoseconds: within ±MAX_DURATION_MS (as ns)."""
    limit = MAX_DURATION_MS * 1_000_000
    items = value.items() if isinstance(value, dict) else [(None, value)]
    out = []
    for name, v in items:
        where = key if name is None else f"{key}.{name}"
        if _is_number(v) and (not math.isfinite(v) or abs(v) > limit):
            out.append(f"{where} must be within ±{limit} ns (one day), got {v!r}")
    return out


def _count_problems(key: str, value: Any) -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_QUEUE:
        return [f"{key} must be at most {MAX_QUEUE}, got {value!r}"]
    return []


class _Collector(Collector):
    """The shared :class:`~edgefuse._yaml.Collector` plus what the pipeline checks need to avoid knock-on
    errors: names already reported as broken (later checks stay quiet about them)."""

    def __init__(self, file: str) -> None:
        super().__init__(file)
        self.broken_inputs: set[str] = set()
        self.broken_stages: set[str] = set()
        self.rig_failed = False
        self.all_stages: dict[str, Any] = {}


def load_pipeline(
    path: str | Path, *, rig_override: str | Path | None = None, check_bag: bool = False
) -> PipelineConfig:
    """Load and fully validate a pipeline file; raises :class:`ValidationError` listing every problem."""
    config, problems = check_pipeline(path, rig_override=rig_override, check_bag=check_bag)
    if problems or config is None:
        raise ValidationError(problems=problems or [Problem("invalid pipeline", str(path))], kind=str(path))
    return config


def check_pipeline(
    path: str | Path, *, rig_override: str | Path | None = None, check_bag: bool = False
) -> tuple[PipelineConfig | None, list[Problem]]:
    """Validate a pipeline file; returns ``(config or None, problems)`` without raising for content errors.

    ``check_bag``: also open the pipeline's own ``bag:`` (its topic list only) and report every input topic
    it lacks (``edgefuse validate`` does; ``replay --bag`` may replay another recording, so it does not).
    """
    path = Path(path)
    data, problems = load_yaml(path)
    if problems:
        return None, problems
    return check_pipeline_data(data, path, rig_override=rig_override, check_bag=check_bag)


def check_pipeline_data(
    data: Any, path: str | Path, *, rig_override: str | Path | None = None, check_bag: bool = False
) -> tuple[PipelineConfig | None, list[Problem]]:
    """Validate an already parsed pipeline document (as :func:`edgefuse._yaml.load_yaml` returns it) that
    was read from ``path`` (relative paths in it are relative to ``path``'s folder); see :func:`check_pipeline`.
    """
    path = Path(path)
    c = _Collector(str(path))
    if not isinstance(data, dict):
        c.add("a pipeline file must be a YAML mapping")
        return None, c.problems
    for key in data:
        if key not in TOP_KEYS:
            c.add(f"unknown top-level key '{key}' (known: {', '.join(sorted(TOP_KEYS))})", data, key)
    version = data.get("edgefuse_pipeline")
    if version != 1 or isinstance(version, bool):
        c.add(f"'edgefuse_pipeline: 1' expected first (got {version!r})", data, "edgefuse_pipeline")
    if "name" in data and not isinstance(data["name"], str):
        c.add(f"'name' must be a string, got {data['name']!r}", data, "name")

    base = path.parent
    rig, rig_path = _check_rig(data, base, rig_override, c)
    inputs = _check_inputs(data, c, rig)
    sync_policy, sync_inputs, sync_params, hold = _check_sync(data, inputs, c)
    stages = _check_stages(data, inputs, hold, rig, c)
    outputs = _check_outputs(data, inputs, stages, c)
    e2e_budget, processing_budget = _check_budgets(data, c)
    runtime = _check_runtime(data, base, c)
    bag_path = None
    if data.get("bag") is not None:
        if isinstance(data["bag"], str) and data["bag"]:
            bag_path = (base / data["bag"]).resolve()
            if check_bag:
                _check_bag_topics(bag_path, inputs, data, c)
        else:
            c.add("'bag' must be a path", data, "bag")
    if c.problems:
        return None, c.problems
    return PipelineConfig(
        path=path, name=str(data.get("name") or path.stem), inputs=inputs, sync_policy=sync_policy,
        sync_inputs=sync_inputs, sync_params=sync_params, hold=hold, stages=stages, outputs=outputs,
        e2e_budget=e2e_budget, processing_budget=processing_budget, rig_path=rig_path, bag_path=bag_path,
        runtime=runtime, rig=rig,
    ), []


def _check_bag_topics(bag_path: Path, inputs: dict[str, InputSpec], data: Any, c: _Collector) -> None:
    """Every input topic must be in the pipeline's own bag (only its topic list is read)."""
    from edgefuse.bag import open_bag

    try:
        mode = os.stat(bag_path).st_mode
    except OSError as exc:
        c.add(f"bag not found: {bag_path} ({exc.strerror or exc})", data, "bag")
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        c.add(f"bag {bag_path} is not a file or folder; not opened", data, "bag")
        return
    try:
        with open_bag(bag_path) as bag:
            topics = set(bag.topics)
    except (EdgefuseError, OSError) as exc:
        c.add(f"cannot read bag {bag_path}: {exc}", data, "bag")
        return
    raw = data.get("inputs")
    for name, spec in inputs.items():
        if spec.topic not in topics:
            node = raw.get(name) if isinstance(raw, dict) else None
            c.add(f"input '{name}': topic {spec.topic} is not in the bag {bag_path} "
                  f"(its topics: {', '.join(sorted(topics)) or 'none'})",
                  node if isinstance(node, dict) else data, "topic" if isinstance(node, dict) else "bag")


def _check_rig(data: Any, base: Path, override: str | Path | None, c: _Collector) -> tuple[Any, Path | None]:
    value = override if override is not None else data.get("rig")
    if value is None:
        return None, None
    if not isinstance(value, str | Path) or str(value) == "":
        c.add("'rig' must be a path to a rig YAML file", data, "rig")
        return None, None
    rig_path = Path(value) if override is not None else (base / value)
    try:
        os.stat(rig_path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # e.g. a name too long, a loop of links
        c.add(f"cannot read rig file {rig_path}: {exc.strerror or exc}", data, "rig")
        c.rig_failed = True
        return None, None
    if not rig_path.exists():
        c.add(f"rig file not found: {rig_path}", data, "rig")
        c.rig_failed = True
        return None, None
    from edgefuse.rig import validate_rig_file
    from edgefuse.rig.rigfile import check_rig_file

    try:
        rig, rig_problems = check_rig_file(rig_path)
    except OSError as exc:  # a path named inside the pipeline: its problem, with the line that names it
        c.add(f"cannot read rig file {rig_path}: {exc.strerror or exc}", data, "rig")
        c.rig_failed = True
        return None, None
    if rig_problems or rig is None:
        c.extend(rig_problems or validate_rig_file(rig_path))
        c.rig_failed = True
        return None, rig_path
    return rig, rig_path


def _check_inputs(data: Any, c: _Collector, rig: Any) -> dict[str, InputSpec]:
    raw = data.get("inputs")
    out: dict[str, InputSpec] = {}
    if not isinstance(raw, dict) or not raw:
        c.add("'inputs' must be a non-empty mapping of input name -> {topic, type}", data,
              "inputs" if "inputs" in data else None)
        return out
    topics: dict[str, str] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            c.add(f"input '{name}' must be a mapping with topic and type", raw, name)
            c.broken_inputs.add(str(name))
            continue
        for key in spec:
            if key not in INPUT_KEYS:
                c.add(f"input '{name}': unknown key '{key}' (known: {', '.join(sorted(INPUT_KEYS))})", spec, key)
        topic, typ = spec.get("topic"), spec.get("type")
        if not isinstance(topic, str) or not topic.startswith("/"):
            c.add(f"input '{name}': 'topic' must be an absolute topic name like /camera/image", spec,
                  "topic" if "topic" in spec else None)
            c.broken_inputs.add(str(name))
            continue
        if topic in topics:
            c.add(f"input '{name}': topic {topic} already used by input '{topics[topic]}'", spec, "topic")
        topics[topic] = str(name)
        known_types = edge_types()
        if not isinstance(typ, str) or typ not in known_types or typ == ANY:
            known = ", ".join(k for k in known_types if k != ANY)
            c.add(f"input '{name}': unknown type {typ!r} (known: {known})", spec, "type" if "type" in spec else None)
            c.broken_inputs.add(str(name))
            continue
        sensor = spec.get("sensor")
        frame_id = spec.get("frame_id")
        if sensor is not None and (not isinstance(sensor, str) or not sensor):
            c.add(f"input '{name}': 'sensor' must be a rig sensor or camera name, got {sensor!r}", spec, "sensor")
            sensor = None
        if frame_id is not None and (not isinstance(frame_id, str) or not frame_id):
            c.add(f"input '{name}': 'frame_id' must be a frame name, got {frame_id!r}", spec, "frame_id")
            frame_id = None
        if sensor is not None and c.rig_failed:
            pass  # the rig's own problems are reported; do not pile on
        elif sensor is not None:
            if rig is None:
                c.add(f"input '{name}': names rig sensor '{sensor}' but the pipeline has no rig", spec, "sensor")
            elif sensor not in rig.sensors and sensor not in rig.cameras:
                c.add(f"input '{name}': sensor '{sensor}' is not in the rig (known: "
                      f"{', '.join(sorted(set(rig.sensors) | set(rig.cameras)))})", spec, "sensor")
            elif frame_id is None:
                frame_id = _sensor_frame(rig, str(sensor))
        if frame_id is not None and rig is not None and not rig_has_frame(rig, str(frame_id)):
            c.add(f"input '{name}': calibration frame '{frame_id}' is missing from the rig", spec,
                  "frame_id" if "frame_id" in spec else "sensor")
        out[str(name)] = InputSpec(str(name), topic, str(typ), None if sensor is None else str(sensor),
                                   None if frame_id is None else str(frame_id))
    return out


def rig_has_frame(rig: Any, frame: str) -> bool:
    """Whether ``frame`` is part of the rig's frame graph."""
    from edgefuse.errors import CalibrationError

    try:
        rig.transform(frame, frame)
    except CalibrationError:
        return False
    return True


def _sensor_frame(rig: Any, sensor: str) -> str | None:
    if sensor in rig.sensors:
        return str(rig.sensors[sensor].frame_id)
    if sensor in rig.cameras:
        return str(rig.cameras[sensor].frame_id)
    return None


def _check_sync(
    data: Any, inputs: dict[str, InputSpec], c: _Collector
) -> tuple[str, list[str], dict[str, Any], list[HoldSpec]]:
    from edgefuse.sync import PARAMS, validate_params

    raw = data.get("sync")
    if raw is None:
        raw = {"policy": "approximate"}
    if not isinstance(raw, dict):
        c.add("'sync' must be a mapping with a policy", data, "sync")
        return "approximate", [], {}, []
    for key in raw:
        if key not in SYNC_KEYS:
            c.add(f"sync: unknown key '{key}' (known: {', '.join(sorted(SYNC_KEYS))})", raw, key)
    policy = raw.get("policy", "approximate")
    if not isinstance(policy, str):
        c.add(f"sync.policy must be a policy name, got {policy!r}", raw, "policy")
        policy = "approximate"
    hold = _check_hold(raw, inputs, c)
    held = {h.name for h in hold}
    sync_inputs_raw = raw.get("inputs")
    if sync_inputs_raw is None:
        sync_inputs = [n for n in inputs if n not in held]
    elif isinstance(sync_inputs_raw, list):
        sync_inputs = [str(n) for n in sync_inputs_raw]
        for i, n in enumerate(sync_inputs):
            if n not in inputs and n not in c.broken_inputs:
                c.add(f"sync.inputs: unknown input '{n}' (known: {', '.join(inputs)})", sync_inputs_raw, i)
            if n in held:
                c.add(f"sync.inputs: '{n}' is also held; an input is either synchronized or held", sync_inputs_raw, i)
    else:
        c.add("sync.inputs must be a list of input names", raw, "inputs")
        sync_inputs = []
    if not sync_inputs:
        c.add("sync: no inputs to synchronize", raw)
    params_raw = raw.get("params") or {}
    if not isinstance(params_raw, dict):
        c.add("sync.params must be a mapping", raw, "params")
        params_raw = {}
    params_plain = plain(params_raw)
    allowed = PARAMS.get(str(policy))
    for key, value in list(params_plain.items()):
        if allowed is not None and _ns_name(key) not in allowed:
            # reported as written (max_intervall_ms, not max_intervall_ns)
            c.add(f"sync: {policy}: unknown parameter {key!r}; allowed: {_allowed_names(allowed)}", params_raw, key)
            del params_plain[key]
            continue
        if key.endswith("_ms"):
            problems = ms_problems(key, value)
        elif key.endswith("_ns"):
            problems = _ns_problems(key, value)
        else:
            problems = _count_problems(key, value) if key.endswith("queue_size") else []
        for msg in problems:
            c.add(f"sync.params.{msg}", params_raw, key)
        if problems:
            del params_plain[key]
    params = ms_to_ns_params(params_plain)
    if sync_inputs and all(n in inputs for n in sync_inputs):
        for msg in validate_params(str(policy), sync_inputs, params):
            c.add(f"sync: {msg}", raw, "params" if "params" in raw else "policy")
    return str(policy), sync_inputs, params, hold


def _ns_name(key: str) -> str:
    return key[:-3] + "_ns" if key.endswith("_ms") else key


def _allowed_names(allowed: frozenset[str]) -> list[str]:
    """The parameter names a pipeline may write: each ``*_ns`` also as ``*_ms``."""
    return sorted(allowed | {k[:-3] + "_ms" for k in allowed if k.endswith("_ns")})


def _check_hold(raw: dict[str, Any], inputs: dict[str, InputSpec], c: _Collector) -> list[HoldSpec]:
    hold: list[HoldSpec] = []
    hold_raw = raw.get("hold") or {}
    if not isinstance(hold_raw, dict):
        c.add("sync.hold must map input name -> {max_age_ms}", raw, "hold")
        hold_raw = {}
    for name, hold_spec in hold_raw.items():
        if name not in inputs:
            c.add(f"sync.hold: unknown input '{name}'", hold_raw, name)
            continue
        spec = hold_spec or {}
        if not isinstance(spec, dict) or set(spec) - {"max_age_ms"}:
            c.add(f"sync.hold.{name}: only 'max_age_ms' is allowed", hold_raw, name)
            hold.append(HoldSpec(str(name), None))  # still held: no knock-on errors about it
            continue
        max_age = spec.get("max_age_ms")
        if max_age is not None:
            problems = ms_problems(f"sync.hold.{name}.max_age_ms", max_age)
            if not problems and max_age < 0:
                problems = [f"sync.hold.{name}.max_age_ms must be >= 0, got {max_age!r}"]
            for msg in problems:
                c.add(msg, spec, "max_age_ms")
            if problems:
                hold.append(HoldSpec(str(name), None))
                continue
        hold.append(HoldSpec(str(name), None if max_age is None else round(float(max_age) * 1_000_000)))
    return hold


def _check_stages(
    data: Any, inputs: dict[str, InputSpec], hold: list[HoldSpec], rig: Any, c: _Collector
) -> list[StageSpec]:
    raw = data.get("stages") or []
    if not isinstance(raw, list):
        c.add("'stages' must be a list", data, "stages")
        return []
    specs: dict[str, StageSpec] = {}
    nodes: dict[str, Any] = {}
    order: list[str] = []
    for i, st in enumerate(raw):
        if not isinstance(st, dict):
            c.add(f"stage #{i + 1} must be a mapping", raw, i)
            continue
        for key in st:
            if key not in STAGE_KEYS:
                c.add(f"stage #{i + 1}: unknown key '{key}' (known: {', '.join(sorted(STAGE_KEYS))})", st, key)
        name, typ = st.get("name"), st.get("type")
        if not isinstance(name, str) or not name.isidentifier():
            c.add(f"stage #{i + 1}: 'name' must be an identifier, got {name!r}", st, "name" if "name" in st else None)
            continue
        if name in specs or name in inputs:
            c.add(f"stage '{name}': name already used", st, "name")
            continue
        cls = stage_class(str(typ)) if isinstance(typ, str) else None
        if cls is None:
            c.add(f"stage '{name}': unknown stage type {typ!r} (known: {', '.join(known_stage_types())})", st,
                  "type" if "type" in st else None)
            c.broken_stages.add(name)
            continue
        raw_params = st.get("params")
        raw_params = {} if raw_params is None else plain(raw_params)
        if not isinstance(raw_params, dict):
            c.add(f"stage '{name}': 'params' must be a mapping", st, "params")
            raw_params = {}
        params, in_ports, out_ports = _stage_params(cls, name, raw_params, st, c)
        wiring = st.get("in") or {}
        if not isinstance(wiring, dict):
            c.add(f"stage '{name}': 'in' must map port -> source", st, "in")
            wiring = {}
        budget, err = parse_budget(st.get("budget", st.get("budget_ms")))
        if err:
            c.add(f"stage '{name}': {err}", st, "budget" if "budget" in st else "budget_ms")
        specs[name] = StageSpec(name, str(typ), cls, {str(k): str(v) for k, v in wiring.items()}, params, budget,
                                in_ports, out_ports)
        nodes[name] = st
        order.append(name)

    # Edges: ports, sources, types (held inputs are inputs like any other here).
    for name in order:
        spec, st = specs[name], nodes[name]
        wiring_node = st.get("in") or {}
        ports = {p.rstrip("?"): p.endswith("?") for p in spec.input_ports}
        accepted = {p.rstrip("?"): t for p, t in spec.input_ports.items()}
        if name in c.broken_stages and spec.cls.dynamic_ports:
            continue  # its ports are unknown: already reported
        for port, source in spec.wiring.items():
            if port not in ports:
                c.add(f"stage '{name}': type '{spec.type_name}' has no input port '{port}' "
                      f"(ports: {', '.join(ports) or 'none'})", wiring_node, port)
                continue
            produced = _source_type(source, inputs, specs)
            if produced is None and _is_broken(source, c):
                continue
            if produced is None:
                c.add(f"stage '{name}': input '{port}' comes from '{source}', which is neither a pipeline input "
                      f"nor <stage>.<output>", wiring_node, port)
            elif not compatible(produced, accepted[port]):
                c.add(f"stage '{name}': type mismatch on edge {source} -> {name}.{port}: "
                      f"{produced} is not {accepted[port]}", wiring_node, port)
        for port, optional in ports.items():
            if not optional and port not in spec.wiring:
                c.add(f"stage '{name}': required input port '{port}' is not connected", st,
                      "in" if "in" in st else None)
    # Cycles and execution order.
    ordered = _toposort(specs, c, nodes)
    c.all_stages = specs
    # Calibration: each stage checks what it needs from the rig (unless the rig itself is broken), then is
    # constructed (validate params, allocate buffers; nothing opened or compiled): what validates constructs.
    for name in ([] if c.rig_failed else ordered):
        spec = specs[name]
        if name in c.broken_stages:
            continue
        where = "params" if "params" in nodes[name] else "type"
        frames = {port: _source_frame(src, inputs) for port, src in spec.wiring.items()}
        rig_problems = spec.cls.check_rig(spec.params, rig, frames)
        for msg in rig_problems:
            c.add(f"stage '{name}': {msg}", nodes[name], where)
        if not rig_problems:
            _try_construct(spec, rig, nodes[name], where, c)
    return [specs[n] for n in ordered]


def _stage_params(cls: type[Stage], name: str, raw_params: dict[str, Any], st: Any,
                  c: _Collector) -> tuple[StageParams, dict[str, str], dict[str, str]]:
    """A stage's checked parameters (file names made relative to the pipeline file's folder) and its ports
    (:meth:`Stage.ports`); problems are recorded and the stage marked broken."""
    for key in cls.path_params:
        value = raw_params.get(key)
        if isinstance(value, str) and value and "\x00" not in value:
            raw_params[key] = str(Path(c.file).parent / os.path.expanduser(value))
    params, param_problems = cls.Params.parse(raw_params, f"stage type '{cls.type_name}'")
    where = "params" if "params" in st else "type"
    for msg in param_problems:
        c.add(f"stage '{name}': {msg}", st, where)
    if params is None:
        c.broken_stages.add(name)
        return cls.Params.defaults() or StageParams(), dict(cls.inputs), dict(cls.outputs)
    if not cls.dynamic_ports:
        return params, dict(cls.inputs), dict(cls.outputs)
    try:
        in_ports, out_ports = cls.ports(params)
    except EdgefuseError as exc:
        c.add(f"stage '{name}': {exc}", st, where)
        c.broken_stages.add(name)
        return params, {}, {}
    return params, in_ports, out_ports


def _try_construct(spec: StageSpec, rig: Any, node: Any, where: str, c: _Collector) -> None:
    """Construct the stage once; a failure is a problem at the stage's line (the declaration missed it)."""
    try:
        spec.cls(spec.name, spec.params, rig)
    except EdgefuseError as exc:
        message = exc.message
        prefix = f"stage '{spec.name}': "
        c.add(message if message.startswith(prefix) else prefix + message, node, where)
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, MemoryError) as exc:
        c.add(f"stage '{spec.name}' ({spec.type_name}) failed to construct: {exc}", node, where)


def _is_broken(source: str, c: _Collector) -> bool:
    """Whether ``source`` names an input or stage already reported as broken."""
    return source in c.broken_inputs or source.partition(".")[0] in c.broken_stages


def _source_frame(source: str, inputs: dict[str, InputSpec]) -> str | None:
    if source in inputs:
        return inputs[source].frame_id
    return None


def _source_type(source: str, inputs: dict[str, InputSpec], specs: dict[str, StageSpec]) -> str | None:
    if source in inputs:
        return inputs[source].type
    stage, _, port = source.partition(".")
    if stage in specs and port in specs[stage].output_ports:
        return specs[stage].output_ports[port]
    return None


def _toposort(specs: dict[str, StageSpec], c: _Collector, nodes: dict[str, Any]) -> list[str]:
    deps = {
        name: {src.partition(".")[0] for src in spec.wiring.values() if src.partition(".")[0] in specs}
        for name, spec in specs.items()
    }
    order: list[str] = []
    ready = [n for n in specs if not deps[n]]
    remaining = {n: set(d) for n, d in deps.items() if d}
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in list(remaining):
            remaining[m].discard(n)
            if not remaining[m]:
                del remaining[m]
                ready.append(m)
    if remaining:
        cycle = _find_cycle(remaining)
        first = cycle[0] if cycle else next(iter(remaining))
        c.add(f"cycle in the stage graph: {' -> '.join(cycle + cycle[:1])}", nodes[first], "in")
    return order


def _find_cycle(remaining: dict[str, set[str]]) -> list[str]:
    start = next(iter(remaining))
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        nxt = next((d for d in sorted(remaining.get(node, ())) if d in remaining), None)
        if nxt is None:
            return path
        node = nxt
    return path[seen[node]:]


def _check_outputs(
    data: Any, inputs: dict[str, InputSpec], stages: list[StageSpec], c: _Collector
) -> list[OutputSpec]:
    raw = data.get("outputs") or []
    specs = {s.name: s for s in stages} | c.all_stages  # stages in a cycle are reported already
    out: list[OutputSpec] = []
    if not isinstance(raw, list):
        c.add("'outputs' must be a list of {topic, from}", data, "outputs")
        return out
    seen: set[str] = set()
    for i, o in enumerate(raw):
        if not isinstance(o, dict) or set(o) - {"topic", "from"}:
            c.add(f"output #{i + 1} must be a mapping with exactly 'topic' and 'from'", raw, i)
            continue
        topic, source = o.get("topic"), o.get("from")
        if not isinstance(topic, str) or not topic.startswith("/"):
            c.add(f"output #{i + 1}: 'topic' must be an absolute topic name", o, "topic" if "topic" in o else None)
            continue
        if topic in seen:
            c.add(f"output #{i + 1}: topic {topic} written twice", o, "topic")
        seen.add(topic)
        typ = _source_type(str(source), inputs, specs)
        if typ is None and _is_broken(str(source), c):
            continue
        if typ is None:
            c.add(f"output {topic}: 'from: {source}' names no pipeline input or <stage>.<output>", o, "from")
            continue
        out.append(OutputSpec(topic, str(source), typ))
    return out


def _check_budgets(data: Any, c: _Collector) -> tuple[Budget | None, Budget | None]:
    raw = data.get("budgets") or {}
    if not isinstance(raw, dict):
        c.add("'budgets' must be a mapping", data, "budgets")
        return None, None
    known = {"end_to_end", "end_to_end_ms", "processing", "processing_ms"}
    for key in raw:
        if key not in known:
            c.add(f"budgets: unknown key '{key}' (known: {', '.join(sorted(known))})", raw, key)
    out: list[Budget | None] = []
    for name in ("end_to_end", "processing"):
        key = name if name in raw else f"{name}_ms"
        budget, err = parse_budget(raw.get(key))
        if err:
            c.add(f"budgets: {err}", raw, key)
        out.append(budget)
    return out[0], out[1]


def _check_runtime(data: Any, base: Path, c: _Collector) -> dict[str, Any]:
    """``runtime:`` thread counts (integers 0..MAX_THREADS) and ``numba_cache_dir`` (a path, relative to the
    pipeline file's folder; made absolute here, created only when a run starts)."""
    raw = data.get("runtime") or {}
    if not isinstance(raw, dict):
        c.add("'runtime' must be a mapping", data, "runtime")
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in RUNTIME_KEYS:
            c.add(f"runtime: unknown key '{key}' (known: {', '.join(sorted(RUNTIME_KEYS))})", raw, key)
        elif key == "numba_cache_dir":
            if not isinstance(value, str) or not value or "\x00" in value:
                c.add(f"runtime.numba_cache_dir must be a folder path, got {value!r}", raw, key)
            else:
                out[key] = str((base / os.path.expanduser(value)).absolute())
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_THREADS:
            c.add(f"runtime.{key} must be an integer >= 0 (at most {MAX_THREADS})", raw, key)
        else:
            out[str(key)] = value
    return out
