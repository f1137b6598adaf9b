"""JSON Schemas of the pipeline and rig files, generated from the typed declarations.

The pipeline schema takes each stage's parameters from its :class:`~edgefuse.stages.params.StageParams`
declaration (``if type == X then params: <X's schema>``, ports included), the synchronizer parameters from
:data:`edgefuse.sync.factory.SPECS` (``if policy == X then params: ...``), edge types from the registry and
budgets from :mod:`edgefuse.pipeline.budget`; the rig schema comes from :func:`edgefuse.rig.rigfile.rig_schema`.
Both are committed in ``edgefuse/schemas/`` (shipped with the package, for editors); a test checks that
the committed files equal what this module generates.  Regenerate with::

    python -m edgefuse.pipeline.schema            # writes edgefuse/schemas/*.schema.json
    python -m edgefuse.pipeline.schema --check    # exit 1 when the committed files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgefuse.msgs.edges import ANY, edge_types
from edgefuse.pipeline.budget import MAX_BUDGET_MS
from edgefuse.pipeline.config import MAX_DURATION_MS, MAX_THREADS, RUNTIME_KEYS
from edgefuse.rig.rigfile import rig_schema
from edgefuse.stages.base import known_stage_types, stage_class
from edgefuse.sync.factory import SPECS, params_schema

__all__ = ["SCHEMA_DIR", "pipeline_schema", "rig_schema", "schema_texts", "write_schemas"]

#: where the committed schemas live (package data)
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def _budget_defs() -> dict[str, Any]:
    ms = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_BUDGET_MS}
    long_form = {
        "type": "object", "additionalProperties": False, "required": ["deadline_ms"],
        "properties": {
            "deadline_ms": {**ms, "description": "every sample above it is a deadline miss"},
            "p99_ms": {**ms, "description": "also breach when the p99 exceeds it"},
            "max_miss_rate": {"type": "number", "minimum": 0, "maximum": 1,
                              "description": "breach when misses exceed max(1, floor(rate x count))"},
        },
    }
    return {"budget_ms": {**ms, "description": "deadline [ms]"},
            "budget": {"anyOf": [{"$ref": "#/$defs/budget_ms"}, long_form]}}


def _stage_def() -> dict[str, Any]:
    names = known_stage_types()
    cases = []
    for name in names:
        cls = stage_class(name)
        if cls is None:
            continue
        ports = [p.rstrip("?") for p in cls.inputs]
        required_ports = [p for p in cls.inputs if not p.endswith("?")]
        in_schema: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
        if not cls.dynamic_ports:
            in_schema["propertyNames"] = {"enum": ports}
        then: dict[str, Any] = {"properties": {"params": cls.Params.json_schema(), "in": in_schema}}
        if required_ports:
            then["required"] = ["in"]
            then["properties"]["in"]["required"] = required_ports
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        cases.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                      "then": {"description": doc, **then}})
    return {
        "type": "object", "additionalProperties": False, "required": ["name", "type"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "type": {"enum": names, "description": "stage type (edgefuse stages lists them)"},
            "in": {"type": "object", "description": "port -> pipeline input or <stage>.<output>",
                   "additionalProperties": {"type": "string"}},
            "params": {"type": "object"},
            "budget": {"$ref": "#/$defs/budget"},
            "budget_ms": {"$ref": "#/$defs/budget_ms"},
        },
        "allOf": cases,
    }


def _sync_def() -> dict[str, Any]:
    policies = sorted(SPECS)
    max_age = {"type": "number", "minimum": 0, "maximum": MAX_DURATION_MS,
               "description": "older held messages are missing from the set [ms]"}
    return {
        "type": "object", "additionalProperties": False,
        "properties": {
            "policy": {"enum": policies, "default": "approximate"},
            "inputs": {"type": "array", "items": {"type": "string"},
                       "description": "inputs to synchronize (default: every input that is not held)"},
            "params": {"type": "object", "description": "*_ms values are converted to *_ns"},
            "hold": {"type": "object", "description": "zero-order hold: input -> {max_age_ms}",
                     "additionalProperties": {"anyOf": [
                         {"type": "null"},
                         {"type": "object", "additionalProperties": False, "properties": {"max_age_ms": max_age}},
                     ]}},
        },
        "allOf": [
            {"if": {"properties": {"policy": {"const": p}}, "required": ["policy"]},
             "then": {"properties": {"params": params_schema(p)}}}
            for p in policies
        ] + [{"if": {"not": {"required": ["policy"]}},
              "then": {"properties": {"params": params_schema("approximate")}}}],
    }


def pipeline_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the pipeline file (README "Pipeline YAML reference")."""
    types = [t for t in edge_types() if t != ANY]
    thread = {"type": "integer", "minimum": 0, "maximum": MAX_THREADS}
    runtime_props: dict[str, Any] = {
        "numba_threads": {**thread, "description": "Numba threads for parallel kernels (0: Numba's default)"},
        "ort_threads": {**thread, "description": "ONNX Runtime intra-op threads (0: its default)"},
        "numba_cache_dir": {"type": "string", "minLength": 1,
                            "description": "compiled-kernel cache, relative to this file's folder"},
    }
    assert set(runtime_props) == RUNTIME_KEYS
    input_def = {
        "type": "object", "additionalProperties": False, "required": ["topic", "type"],
        "properties": {
            "topic": {"type": "string", "pattern": "^/"},
            "type": {"enum": types, "description": "edge type"},
            "sensor": {"type": "string", "minLength": 1, "description": "rig sensor or camera"},
            "frame_id": {"type": "string", "minLength": 1,
                         "description": "calibration frame (overrides the sensor's)"},
        },
    }
    output_def = {
        "type": "object", "additionalProperties": False, "required": ["topic", "from"],
        "properties": {"topic": {"type": "string", "pattern": "^/"},
                       "from": {"type": "string", "description": "pipeline input or <stage>.<output>"}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://edgefuse.invalid/schemas/pipeline.schema.json",
        "title": "edgefuse pipeline",
        "description": "An edgefuse pipeline file (README, 'Pipeline YAML reference'). Generated by "
                       "python -m edgefuse.pipeline.schema; do not edit.",
        "type": "object",
        "additionalProperties": False,
        "required": ["edgefuse_pipeline", "inputs"],
        "properties": {
            "edgefuse_pipeline": {"const": 1, "description": "format version"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "rig": {"type": "string", "minLength": 1, "description": "rig file, relative to this file"},
            "bag": {"type": "string", "minLength": 1, "description": "default recording, relative to this file"},
            "runtime": {"type": "object", "additionalProperties": False, "properties": runtime_props},
            "inputs": {"type": "object", "minProperties": 1, "additionalProperties": {"$ref": "#/$defs/input"}},
            "sync": {"$ref": "#/$defs/sync"},
            "stages": {"type": "array", "items": {"$ref": "#/$defs/stage"}},
            "outputs": {"type": "array", "items": output_def},
            "budgets": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "end_to_end": {"$ref": "#/$defs/budget"}, "end_to_end_ms": {"$ref": "#/$defs/budget_ms"},
                    "processing": {"$ref": "#/$defs/budget"}, "processing_ms": {"$ref": "#/$defs/budget_ms"},
                },
            },
        },
        "$defs": {"input": input_def, "sync": _sync_def(), "stage": _stage_def(), **_budget_defs()},
    }


def schema_texts() -> dict[str, str]:
    """File name → JSON text of every schema, as committed in :data:`SCHEMA_DIR`."""
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
            for name, schema in (("pipeline.schema.json", pipeline_schema()), ("rig.schema.json", rig_schema()))}


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in schema_texts().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgefuse.pipeline.schema", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed schemas are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = [name for name, text in schema_texts().items()
                 if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"stale: {SCHEMA_DIR / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
