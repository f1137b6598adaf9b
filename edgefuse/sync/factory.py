"""Build a synchronizer from a policy name and parameters (the pipeline loader's entry point).

:data:`PARAMS` lists the parameters each policy accepts; :func:`validate_params` returns every problem at
once (for ``edgefuse validate``); :func:`make_synchronizer` raises :class:`SyncError` naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgefuse.errors import SyncError
from edgefuse.sync.approximate import ApproximateTimeSynchronizer, check_approximate_params
from edgefuse.sync.base import Synchronizer, check_inputs, check_queue_size
from edgefuse.sync.collector import DeadlineCollector, check_collector_params
from edgefuse.sync.each import EachSynchronizer, check_each_params
from edgefuse.sync.exact import ExactTimeSynchronizer
from edgefuse.sync.imu import ImuWindowSynchronizer, check_imu_params
from edgefuse.sync.latest import LatestSynchronizer, check_latest_params

#: Allowed parameter names per policy.
PARAMS: dict[str, frozenset[str]] = {
    "exact": frozenset({"queue_size"}),
    "approximate": frozenset(
        {"queue_size", "max_interval_ns", "age_penalty", "inter_message_lower_bound_ns"}
    ),
    "latest": frozenset({"primary", "max_age_ns", "allow_future_ns", "queue_size"}),
    "imu_window": frozenset({"frame", "imu", "timeout_ns", "queue_size", "frame_queue_size", "orientation"}),
    "collector": frozenset({"offset_ns", "timeout_ns", "deadline_ns", "window_ns", "queue_size"}),
    "each": frozenset({"allow_out_of_order"}),
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "exact": {"queue_size": 100},
    "approximate": {
        "queue_size": 100,
        "max_interval_ns": None,
        "age_penalty": 0.1,
        "inter_message_lower_bound_ns": 0,
    },
    "latest": {"primary": None, "max_age_ns": None, "allow_future_ns": 0, "queue_size": 100},
    "imu_window": {
        "frame": None,
        "imu": None,
        "timeout_ns": 200_000_000,
        "queue_size": 4000,
        "frame_queue_size": 16,
        "orientation": None,
    },
    "collector": {"offset_ns": 0, "timeout_ns": None, "deadline_ns": None, "window_ns": 0, "queue_size": 16},
    "each": {"allow_out_of_order": False},
}

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
