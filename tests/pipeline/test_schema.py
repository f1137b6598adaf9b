"""The committed JSON Schemas (edgefuse/schemas/) are what the typed declarations generate, and the bundled
pipelines and rigs validate against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgefuse._yaml import load_yaml, plain
from edgefuse.pipeline.schema import SCHEMA_DIR, main, pipeline_schema, schema_texts

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "edgefuse" / "data" / "pipelines").glob("*.yaml"))
RIGS = [ROOT / "edgefuse" / "data" / p for p in ("demo/rig.yaml", "husky/rig.yaml", "rig_example.yaml")]


def test_committed_schemas_equal_the_generated_ones() -> None:
    for name, text in schema_texts().items():
        committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run python -m edgefuse.pipeline.schema"
    assert main(["--check"]) == 0


def test_stage_parameters_come_from_the_declarations() -> None:
    from edgefuse.stages import known_stage_types, stage_class

    cases = pipeline_schema()["$defs"]["stage"]["allOf"]
    by_type = {c["if"]["properties"]["type"]["const"]: c["then"] for c in cases}
    assert set(by_type) == set(known_stage_types())
    for name, then in by_type.items():
        cls = stage_class(name)
        assert cls is not None
        assert then["properties"]["params"] == cls.Params.json_schema()
    projection = by_type["lidar_camera_projection"]["properties"]["params"]["properties"]
    assert projection["min_depth_m"] == {"description": "points nearer than this are dropped [m]", "type": "number",
                                         "exclusiveMinimum": 0.0, "maximum": 10000.0, "default": 0.1}


def _validator(name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_bundled_pipelines_validate_against_the_schema(path: Path) -> None:
    data, problems = load_yaml(path)
    assert problems == []
    errors = [e.message for e in _validator("pipeline.schema.json").iter_errors(plain(data))]
    assert errors == []


@pytest.mark.parametrize("path", RIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_bundled_rigs_validate_against_the_schema(path: Path) -> None:
    data, problems = load_yaml(path)
    assert problems == []
    errors = [e.message for e in _validator("rig.schema.json").iter_errors(plain(data))]
    assert errors == []


def test_schema_catches_what_an_editor_should_flag() -> None:
    validator = _validator("pipeline.schema.json")
    data, _ = load_yaml(PIPELINES[-1])
    doc = plain(data)
    doc["stages"][1]["params"]["min_depth_m"] = -1.0  # out of range
    doc["stages"][0]["params"] = {"grayscale": "yes"}  # wrong type
    doc["sync"]["params"]["max_intervall_ms"] = 5  # typo
    messages = " | ".join(e.message for e in validator.iter_errors(doc))
    assert "-1.0 is less than or equal to the minimum of 0.0" in messages
    assert "'yes' is not of type 'boolean'" in messages
    assert "'max_intervall_ms' was unexpected" in messages
    rig_validator = _validator("rig.schema.json")
    rig, _ = load_yaml(RIGS[0])
    bad_rig = plain(rig)
    next(iter(bad_rig["cameras"].values()))["model"] = "kannala"
    assert any("kannala" in e.message for e in rig_validator.iter_errors(bad_rig))


def test_schemas_ship_with_the_package() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"schemas/*.json"' in text
