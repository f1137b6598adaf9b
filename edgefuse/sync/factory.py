"""Build a synchronizer from a policy name and parameters (the pipeline loader's entry point).

:data:`SPECS` declares the parameters of each policy (kind, default, doc); :data:`PARAMS` (the names) and
:func:`params_schema` (the JSON Schema of a pipeline's ``sync.params``) derive from it.
:func:`validate_params` returns every problem at once (for ``edgefuse validate``, which adds file and line
through the shared YAML problem collector); :func:`make_synchronizer` raises :class:`SyncError` naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgefuse.errors import SyncError
from edgefuse.sync.approximate import ApproximateTimeSynchronizer, check_approximate_params
from edgefuse.sync.base import Synchronizer, check_inputs, check_queue_size
from edgefuse.sync.collector import DeadlineCollector, check_collector_params
from edgefuse.sync.each import EachSynchronizer, check_each_params
from edgefuse.sync.exact import ExactTimeSynchronizer
from edgefuse.sync.imu import ImuWindowSynchronizer, check_imu_params
from edgefuse.sync.latest import LatestSynchronizer, check_latest_params

#: largest duration [ns] a pipeline may give a synchronizer parameter (one day; the pipeline checks it)
MAX_DURATION_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class SyncParam:
    """One synchronizer parameter: its kind, default and doc.

    Kinds: ``count`` (integer >= 1), ``duration`` (integer ns >= 0; a pipeline writes ``*_ms``),
    ``signed_duration`` (integer ns), ``number`` (>= 0), ``input`` (an input name), ``bool``, ``columns``
    (4 column indices).  ``per_input``: a mapping input name -> value is accepted too; ``optional``: null
    is accepted.
    """

    kind: Literal["count", "duration", "signed_duration", "number", "input", "bool", "columns"]
    default: Any
    doc: str
    per_input: bool = False
    optional: bool = False


#: Parameters per policy (names as the synchronizer classes take them: durations in ns).
SPECS: dict[str, dict[str, SyncParam]] = {
    "exact": {"queue_size": SyncParam("count", 100, "most messages held per input")},
    "approximate": {
        "queue_size": SyncParam("count", 100, "most messages held per input before the search gives up"),
        "max_interval_ns": SyncParam("duration", None, "largest spread of a set (null: any)", optional=True),
        "age_penalty": SyncParam("number", 0.1, "weight of a set's age against its spread"),
        "inter_message_lower_bound_ns": SyncParam("duration", 0, "smallest period of an input (speeds the search)",
                                                  per_input=True),
    },
    "latest": {
        "primary": SyncParam("input", None, "the triggering input (default: the first)", optional=True),
        "max_age_ns": SyncParam("duration", None, "oldest held message used (null: any age)", optional=True),
        "allow_future_ns": SyncParam("duration", 0, "a secondary up to this much newer than the primary is used"),
        "queue_size": SyncParam("count", 100, "most messages held per secondary input"),
    },
    "imu_window": {
        "frame": SyncParam("input", None, "the frame input (default: 'frame' or the first)", optional=True),
        "imu": SyncParam("input", None, "the IMU input (default: the other)", optional=True),
        "timeout_ns": SyncParam("duration", 200_000_000, "a waiting frame is emitted without IMU once a frame this "
                                "much newer arrives"),
        "queue_size": SyncParam("count", 4000, "most IMU samples buffered"),
        "frame_queue_size": SyncParam("count", 16, "most frames waiting for IMU"),
        "orientation": SyncParam("columns", None, "the 4 quaternion columns (x, y, z, w) slerped at the window ends",
                                 optional=True),
    },
    "collector": {
        "offset_ns": SyncParam("signed_duration", 0, "time offset added to incoming stamps", per_input=True),
        "timeout_ns": SyncParam("duration", None, "how long a set waits for each input (or deadline_ns)",
                                per_input=True, optional=True),
        "deadline_ns": SyncParam("duration", None, "how long a set waits in all (or timeout_ns)", optional=True),
        "window_ns": SyncParam("duration", 0, "stamps this close join the same set"),
        "queue_size": SyncParam("count", 16, "most open sets"),
    },
    "each": {"allow_out_of_order": SyncParam("bool", False, "release messages older than the input's last one")},
}

#: Allowed parameter names per policy.
PARAMS: dict[str, frozenset[str]] = {policy: frozenset(specs) for policy, specs in SPECS.items()}

_DEFAULTS: dict[str, dict[str, Any]] = {
    policy: {name: spec.default for name, spec in specs.items()} for policy, specs in SPECS.items()
}


def _value_schema(spec: SyncParam, *, ms: bool) -> dict[str, Any]:
    one: dict[str, Any]
    if spec.kind == "count":
        one = {"type": "integer", "minimum": 1}
    elif spec.kind in ("duration", "signed_duration"):
        limit = MAX_DURATION_NS // 1_000_000 if ms else MAX_DURATION_NS
        one = {"type": "number" if ms else "integer", "maximum": limit,
               "minimum": 0 if spec.kind == "duration" else -limit}
    elif spec.kind == "number":
        one = {"type": "number", "minimum": 0}
    elif spec.kind == "input":
        one = {"type": "string", "minLength": 1}
    elif spec.kind == "bool":
        one = {"type": "boolean"}
    else:
        one = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4}
    options = [one]
    if spec.per_input:
        options.append({"type": "object", "additionalProperties": one})
    if spec.optional:
        options.append({"type": "null"})
    return options[0] if len(options) == 1 else {"anyOf": options}


def params_schema(policy: str) -> dict[str, Any]:
    """JSON Schema of a pipeline's ``sync.params`` for ``policy``: every duration as ``*_ms`` (milliseconds,
    converted by the pipeline loader) or ``*_ns``."""
    props: dict[str, Any] = {}
    for name, spec in SPECS[policy].items():
        props[name] = {"description": spec.doc, **_value_schema(spec, ms=False)}
        if name.endswith("_ns"):
            props[name[:-3] + "_ms"] = {"description": spec.doc + " [ms]", **_value_schema(spec, ms=True)}
    return {"type": "object", "properties": props, "additionalProperties": False}


def _orientation_problems(value: Any) -> list[str]:
    if value is None or isinstance(value, slice):
        return []
    if (not isinstance(value, list | tuple) or len(value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return [f"orientation must be 4 column indices (x, y, z, w), got {value!r}"]
    return []


_MIN_INPUTS = {"exact": 2, "approximate": 2, "latest": 2, "imu_window": 2, "collector": 1, "each": 1}


def validate_params(policy: str, inputs: Sequence[str], params: Mapping[str, Any]) -> list[str]:
    """Every problem with a synchronizer configuration (empty list when it is valid).

    Args:
        policy: one of :data:`PARAMS`' keys.
        inputs: input names.
        params: parameter name -> value (as read from YAML: stamps and durations are integer ns).
    """
    if policy not in PARAMS:
        return [f"unknown sync policy {policy!r}; choose one of {sorted(PARAMS)}"]
    names = tuple(inputs) if not isinstance(inputs, str) else (inputs,)
    problems = check_inputs(names, _MIN_INPUTS[policy])
    unknown = sorted(set(params) - PARAMS[policy])
    problems += [
        f"{policy}: unknown parameter {name!r}; allowed: {sorted(PARAMS[policy])}" for name in unknown
    ]
    p = {**_DEFAULTS[policy], **{k: v for k, v in params.items() if k in PARAMS[policy]}}
    if policy == "exact":
        problems += check_queue_size(p["queue_size"])
    elif policy == "approximate":
        problems += check_approximate_params(
            names, p["queue_size"], p["max_interval_ns"], p["age_penalty"], p["inter_message_lower_bound_ns"]
        )
    elif policy == "latest":
        problems += check_latest_params(
            names, p["primary"], p["max_age_ns"], p["allow_future_ns"], p["queue_size"]
        )
    elif policy == "imu_window":
        problems += check_imu_params(
            names, p["frame"], p["imu"], p["timeout_ns"], p["queue_size"], p["frame_queue_size"]
        )
        problems += _orientation_problems(p["orientation"])
    elif policy == "each":
        problems += check_each_params(names, p["allow_out_of_order"])
    else:
        problems += check_collector_params(
            names, p["offset_ns"], p["timeout_ns"], p["deadline_ns"], p["window_ns"], p["queue_size"]
        )
    return problems


def make_synchronizer(policy: str, inputs: Sequence[str], **params: Any) -> Synchronizer:
    """Create the synchronizer for ``policy`` over ``inputs``.

    Raises:
        SyncError: unknown policy or bad parameters; the message names every offending parameter.
    """
    problems = validate_params(policy, inputs, params)
    if problems:
        raise SyncError(f"sync policy {policy!r}: " + "; ".join(problems))
    names = tuple(inputs)
    if policy == "exact":
        return ExactTimeSynchronizer(names, **params)
    if policy == "approximate":
        return ApproximateTimeSynchronizer(names, **params)
    if policy == "latest":
        return LatestSynchronizer(names, **params)
    if policy == "imu_window":
        return ImuWindowSynchronizer(names, **params)
    if policy == "each":
        return EachSynchronizer(names, **params)
    return DeadlineCollector(names, **params)
