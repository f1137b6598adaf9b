"""Mutators for the YAML fuzz tests: structural mutations of parsed documents and text mutations.

Every mutator takes a seeded ``np.random.Generator``; documents are deep copies of what
:func:`edgefuse._yaml.loads_yaml` returns (ruamel containers, so line numbers survive where they can).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

#: values a mutation may put anywhere: wrong types, extremes, non-finite numbers, names that exist
GARBAGE: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 3, 2**31, 2**63, -(2**63), 10**30, 1e308, -1e308, math.nan, math.inf, -math.inf,
    0.5, -0.5, 1e-300, 7.25, "", " ", "x", "/t", "/lidar", "radar", "cam", "lidar", "velodyne", "base_link",
    "decode.image", "project.depth", "1e5", "50", "ÿ", "a" * 300, [], {}, [1, 2], [1.0, 2.0, 3.0], ["x", "x"],
    {"a": 1}, {"max_age_ms": math.nan}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 0, 0, 1],
)

TOKENS = ("&a ", "*a", "[", "]", "{", "}", ": ", "\n", "- ", "!!binary ", "!!set ", "? ", "'", '"', "#", "\t",
          "\x00", "\xff", "\u2028", "<<: *a", "---\n", "%YAML 1.2\n", ".nan", ".inf", "-.inf", "1e308", "0x",
          "2001-13-45", "~", "|\n", ">-\n", "\\", "&b [*b]", "9" * 5000)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> None:
    """Every (container, key) pair below ``node``."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _slots(node[k], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out)


def _perturb(value: Any, rng: np.random.Generator) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        factor = (-1, 0, 2, 10, 1e6, 1e-6, 1e300, math.nan, 0.5)[int(rng.integers(9))]
        out = value * factor
        return int(out) if isinstance(value, int) and isinstance(out, float) and math.isfinite(out) else out
    if isinstance(value, str):
        return value[: int(rng.integers(len(value) + 1))] + ("_" if rng.random() < 0.5 else "")
    return GARBAGE[int(rng.integers(len(GARBAGE)))]


def mutate_document(doc: Any, rng: np.random.Generator, n_mutations: int = 3) -> Any:
    """A deep copy of ``doc`` with ``n_mutations`` random edits (replace, delete, add, swap, perturb)."""
    doc = copy.deepcopy(doc)
    for _ in range(n_mutations):
        slots: list[tuple[Any, Any]] = []
        _slots(doc, slots)
        if not slots:
            return GARBAGE[int(rng.integers(len(GARBAGE)))]
        container, key = slots[int(rng.integers(len(slots)))]
        op = int(rng.integers(6))
        if op == 0:
            container[key] = copy.deepcopy(GARBAGE[int(rng.integers(len(GARBAGE)))])
        elif op == 1:
            del container[key]
        elif op == 2:
            extra = copy.deepcopy(GARBAGE[int(rng.integers(len(GARBAGE)))])
            if isinstance(container, dict):
                container[("bogus", "max_intervall_ms", "params", "type", "in")[int(rng.integers(5))]] = extra
            else:
                container.append(extra)
        elif op == 3:
            other_container, other_key = slots[int(rng.integers(len(slots)))]
            container[key] = copy.deepcopy(other_container[other_key])
        else:
            container[key] = _perturb(container[key], rng)
    return doc


def mutate_text(text: str, rng: np.random.Generator, n_mutations: int = 2) -> str:
    """``text`` with random character edits: YAML tokens inserted, spans deleted or repeated, characters swapped."""
    for _ in range(n_mutations):
        if not text:
            text = TOKENS[int(rng.integers(len(TOKENS)))]
            continue
        i = int(rng.integers(len(text)))
        op = int(rng.integers(4))
        if op == 0:
            text = text[:i] + TOKENS[int(rng.integers(len(TOKENS)))] + text[i:]
        elif op == 1:
            text = text[:i] + text[i + int(rng.integers(1, 40)):]
        elif op == 2:
            j = min(len(text), i + int(rng.integers(1, 80)))
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + chr(int(rng.integers(1, 0x300))) + text[i + 1:]
    return text


# -- stage parameters drawn from their declarations ------------------------------------------------
_WORDS: dict[str, tuple[Any, ...]] = {
    "camera": ("cam", "cam", "nope"),
    "cloud_frame": ("velodyne", "cam", "base_link", "nope"),
    "body_frame": ("velodyne", "base_link", "nope"),
    "time_field": ("auto", "t", "time", "timestamp", "offset_time", "stamp"),
    "base_link_frame": ("base_link", "velodyne", "nope"),
    "world_frame": ("odom", "map"),
    "intensity_field": ("intensity", "i"),
    "field_prefix": ("score_", "p"),
}
_STATE = ("x", "y", "z", "roll", "pitch", "yaw", "vx", "vy", "vz", "vroll", "vpitch", "vyaw", "ax", "ay", "az")


def _number(d: Any, kind: str, rng: np.random.Generator, big: bool) -> Any:
    info = d.info
    lo = info.ge if info.ge is not None else (info.gt if info.gt is not None else -1e3)
    hi = info.le if info.le is not None else (info.lt if info.lt is not None else 1e3)
    default = d.default if isinstance(d.default, int | float) and not isinstance(d.default, bool) else lo
    cap = hi if big else min(hi, max(abs(default) * 4, lo + 16))
    r = rng.random()
    if r < 0.3:
        value: Any = default
    elif r < 0.75:
        value = rng.uniform(lo, cap)
    elif r < 0.85:
        value = lo
    elif r < 0.92:
        value = cap
    elif r < 0.96:
        value = lo - 1 if rng.random() < 0.5 else hi + 1
    else:
        value = GARBAGE[int(rng.integers(len(GARBAGE)))]
    if kind == "int" and isinstance(value, float) and math.isfinite(value) and rng.random() < 0.9:
        value = int(value)
    return value


def _value(d: Any, kind: Any, rng: np.random.Generator, big: bool) -> Any:  # noqa: PLR0911
    if kind.optional and rng.random() < 0.2:
        return None
    base = kind.base
    if base in ("int", "float"):
        return _number(d, base, rng, big)
    if base == "bool":
        return bool(rng.random() < 0.5) if rng.random() < 0.97 else GARBAGE[int(rng.integers(len(GARBAGE)))]
    if base == "choice":
        if rng.random() < 0.97:
            return kind.choices[int(rng.integers(len(kind.choices)))]
        return GARBAGE[int(rng.integers(len(GARBAGE)))]
    if base == "str":
        words = _WORDS.get(d.name, ("x", "cam"))
        if rng.random() < 0.97:
            return words[0] if rng.random() < 0.5 else words[int(rng.integers(len(words)))]
        return GARBAGE[int(rng.integers(len(GARBAGE)))]
    if base == "list":
        n = kind.length if kind.length is not None else int(rng.integers(0, 5))
        if rng.random() < 0.05:
            n += 1
        if d.name == "cameras":
            return [("cam", "cam", "nope")[int(rng.integers(3))] for _ in range(max(n, 1))][:2]
        if d.name in ("x_range", "y_range", "z_range", "box_min", "box_max", "azimuth_deg", "elevation_deg"):
            values = [_number(d, "float", rng, big) for _ in range(n)]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            return sorted(values) if numeric and rng.random() < 0.9 else values
        return [_value(d, kind.item, rng, big) for _ in range(n)]
    if base == "map":  # ekf sensors
        ports = [p for p in ("imu0", "imu1", "odom0", "odom1", "gnss0") if rng.random() < 0.4] or ["odom0"]
        if rng.random() < 0.05:
            ports.append("imu9")
        out: dict[str, Any] = {}
        for port in ports:
            names = [s for s in _STATE if rng.random() < 0.3] or ["vx"]
            entry: dict[str, Any] = {"config": names if rng.random() < 0.8 else [rng.random() < 0.5 for _ in range(15)]}
            if rng.random() < 0.1:
                entry[("differential", "yaw_offset_rad", "frame_id", "bogus", "pose_rejection_threshold")[
                    int(rng.integers(5))]] = GARBAGE[int(rng.integers(len(GARBAGE)))]
            out[port] = entry
        return out
    # any: a covariance
    r = rng.random()
    if r < 0.5:
        return [float(v) for v in rng.uniform(1e-9, 1.0, 15)]
    if r < 0.75:
        return [float(v) for v in np.diag(rng.uniform(1e-9, 1.0, 15)).reshape(-1)]
    if r < 0.9:
        return np.diag(rng.uniform(1e-9, 1.0, 15)).tolist()
    return GARBAGE[int(rng.integers(len(GARBAGE)))]


def random_params(cls: Any, rng: np.random.Generator, *, big: bool = False) -> dict[str, Any]:
    """A raw parameter mapping for stage class ``cls``: mostly valid values drawn from the declaration,
    sometimes out of range, of the wrong type, missing or unknown.  ``big`` also draws upper bounds."""
    out: dict[str, Any] = {}
    for d in cls.Params.declared():
        if (d.required and rng.random() >= 0.03) or (not d.required and rng.random() < 0.6):
            out[d.name] = _value(d, d.kind, rng, big)
    if rng.random() < 0.03:
        out["bogus"] = 1
    return out
