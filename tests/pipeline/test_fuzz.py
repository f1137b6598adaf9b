"""What validates also constructs and starts; mutated pipeline and rig YAML never raise anything but edgefuse
errors (issue 9 item 7, issue 10's fuzz suite for YAML).

Default run: a few hundred parameter sets and YAML documents.  ``pytest -m slow``: >= 1e5 mutated pipeline and
rig documents, and parameter sets with values up to the declared upper bounds.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ruamel.yaml import YAML

from edgefuse._yaml import loads_yaml
from edgefuse.errors import EdgefuseError
from edgefuse.pipeline import PipelineRunner
from edgefuse.pipeline.config import check_pipeline_data
from edgefuse.rig import loads_rig, validate_rig_text
from edgefuse.stages import known_stage_types, stage_class
from tests.pipeline._mutate import mutate_document, mutate_text, random_params
from tests.pipeline.conftest import PIPELINE, RIG


def _frames(cls: Any) -> dict[str, str | None]:
    return {p.rstrip("?"): ("velodyne" if p.startswith("cloud") else None) for p in cls.inputs}


def _fuzzable() -> list[str]:
    """Stage types whose parameters are all values: a stage that reads files its parameters name (the ONNX
    model and its card) needs real files, which random parameters are not; tests/infer covers it with real
    models, including missing and broken files."""
    out = []
    for name in known_stage_types():
        cls = stage_class(name)
        if cls is not None and not cls.path_params:
            out.append(name)
    return out


def _construct_and_start(n_per_type: int, seed: int, *, big: bool) -> Counter[str]:
    """For each stage type, ``n_per_type`` random parameter sets: each one validation accepts (declaration,
    then the rig check) must construct and start; each one it rejects must be refused by the constructor."""
    rng = np.random.default_rng(seed)
    rig = loads_rig(RIG)
    accepted: Counter[str] = Counter()
    for type_name in _fuzzable():
        cls = stage_class(type_name)
        assert cls is not None
        for _ in range(n_per_type):
            raw = random_params(cls, rng, big=big)
            params, _ = cls.Params.parse(raw, type_name)
            if params is None:
                with pytest.raises(EdgefuseError):
                    cls("s", raw, rig)
                continue
            frames = _frames(cls)
            if cls.check_rig(params, rig, frames):
                continue
            try:
                stage = cls("s", raw, rig)
                stage.input_frames = frames
                stage.start()
                stage.stop()
            except Exception as exc:
                pytest.fail(f"{type_name} {raw!r} passed validation but failed: {type(exc).__name__}: {exc}")
            accepted[type_name] += 1
    return accepted


def test_what_validates_constructs_and_starts() -> None:
    accepted = _construct_and_start(20, seed=1, big=False)
    assert sum(accepted.values()) >= 100, accepted  # the generator must mostly produce valid sets
    assert set(accepted) == set(_fuzzable()), accepted


@pytest.mark.slow
def test_what_validates_constructs_and_starts_up_to_the_bounds() -> None:
    accepted = _construct_and_start(300, seed=2, big=True)
    assert set(accepted) == set(_fuzzable()), accepted


def _dump(doc: Any) -> str:
    buf = io.StringIO()
    YAML().dump(doc, buf)
    return buf.getvalue()


def _fuzz_yaml(tmp_path: Path, n: int, seed: int) -> Counter[str]:
    """``n`` mutated documents (pipeline and rig; structural and text mutations).  Validation returns
    problems or a config and never raises; every config it returns builds a runner that starts."""
    rng = np.random.default_rng(seed)
    (tmp_path / "rig.yaml").write_text(RIG)
    path = tmp_path / "pipeline.yaml"
    base_pipeline, _ = loads_yaml(PIPELINE)
    base_rig, _ = loads_yaml(RIG)
    seen: Counter[str] = Counter()
    for i in range(n):
        kind = ("pipeline_doc", "pipeline_text", "rig_doc", "rig_text")[i % 4]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy overflow warnings on absurd rig values
                if kind == "pipeline_doc":
                    config, problems = check_pipeline_data(mutate_document(base_pipeline, rng), path)
                elif kind == "pipeline_text":
                    data, problems = loads_yaml(mutate_text(PIPELINE, rng), str(path))
                    config = None
                    if not problems:
                        config, problems = check_pipeline_data(data, path)
                elif kind == "rig_doc":
                    config, problems = None, validate_rig_text(_dump(mutate_document(base_rig, rng)))
                else:
                    config, problems = None, validate_rig_text(mutate_text(RIG, rng))
                if config is not None:
                    runner = PipelineRunner(config)
                    runner.start()
                    runner.finish()
        except Exception as exc:
            pytest.fail(f"{kind} #{i} (seed {seed}): {type(exc).__name__}: {exc}")
        seen[f"{kind}:{'valid' if not problems else 'problems'}"] += 1
        assert all(p.file is not None for p in problems)
    return seen


def test_mutated_yaml_never_raises(tmp_path: Path) -> None:
    seen = _fuzz_yaml(tmp_path, 400, seed=3)
    assert sum(seen.values()) == 400
    assert any(k.endswith(":valid") for k in seen), seen  # some mutations keep a document valid


@pytest.mark.slow
def test_mutated_yaml_never_raises_1e5(tmp_path: Path) -> None:
    seen = _fuzz_yaml(tmp_path, 100_000, seed=4)
    assert sum(seen.values()) == 100_000
