"""Hostile rig files: every case is a reported problem with file and line (never a traceback, a hang or a
rig that validates and then breaks the run)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from edgefuse.errors import Problem, ValidationError
from edgefuse.rig import load_rig, validate_rig_file, validate_rig_text
from tests.rig.test_rigfile import GOOD


def _problems(text: str) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in validate_rig_text(text)]


def _line(text: str, needle: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), 1) if needle in row)


def test_non_utf8_and_nul_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rig.yaml"
    path.write_bytes(GOOD.encode().replace(b"base_frame: base_link", b"base_frame: base\xe9link"))
    problems = validate_rig_file(path)
    assert len(problems) == 1 and "not UTF-8" in problems[0].message and problems[0].line == 2
    path.write_bytes(GOOD.encode().replace(b"cameras:", b"cam\x00eras:"))
    problems = validate_rig_file(path)
    assert len(problems) == 1 and "NUL byte" in problems[0].message
    assert problems[0].line == _line(GOOD, "cameras:")
    with pytest.raises(ValidationError, match="NUL byte"):
        load_rig(path)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "rig.yaml"
    os.mkfifo(fifo)
    result: list[list[Problem]] = []
    worker = threading.Thread(target=lambda: result.append(validate_rig_file(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():
        with open(fifo, "w"):
            pass
        pytest.fail("validate_rig_file blocked on a FIFO")
    assert "not a regular file (a FIFO)" in result[0][0].message


def test_alias_bomb_is_refused_quickly() -> None:
    lines = [GOOD.rstrip("\n"), "x0: &x0 [a, a, a, a, a, a, a, a, a]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, 10)]
    start = time.perf_counter()
    problems = _problems("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 5.0
    assert problems == [(None, "the document expands to more than 100000 nodes through aliases (an alias bomb?); "
                                "not read")]


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("translation: [1.0, 0.0, 1.5]", "translation: [1.0e308, 0.0, 1.5]", "translation [m] must be within ±1e+09"),
    ("quaternion_xyzw: [-0.5, 0.5, -0.5, 0.5]", "quaternion_xyzw: [-1e300, 0.5, -0.5, 0.5]",
     "quaternion_xyzw must be within ±1e+06"),
    ("rotation: {rpy_deg: [0, 0, 90]}", "rotation: {matrix: [[1e300, 0, 0], [0, 1, 0], [0, 0, 1]]}",
     "rotation matrix entries must be within [-1, 1]"),
    ("model: plumb_bob", "model: [plumb_bob]", "model must be a model name, got ['plumb_bob']"),
    ("width: 640", "width: 10000000", "width must be at most 32768 px"),
    ("width: 640", "width: 30000\n    height: 30000", "width x height must be at most 134217728 px"),
    ("time_offset_ns: 0", "time_offset_ns: 100000000000000000000", "time_offset_ns must be within ±"),
])
def test_values_that_would_break_a_run_are_problems(old: str, new: str, needle: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    if "height: 30000" in text:
        text = text.replace("    height: 480\n", "", 1)
    problems = _problems(text)
    hits = [(line, msg) for line, msg in problems if needle in msg]
    assert hits, problems
    assert hits[0][0] == _line(text, new.splitlines()[0].split(":")[0].strip() + ":")


def test_duplicate_key_message_keeps_context_and_line() -> None:
    text = GOOD.replace("    width: 640\n", "    width: 640\n    width: 641\n")
    (line, msg), = _problems(text)
    assert msg.startswith("YAML syntax error: while constructing a mapping")
    assert "duplicate" in msg and line == _line(text, "width: 641")
