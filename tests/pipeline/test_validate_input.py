"""``edgefuse validate`` on hostile input (issue 10, item 10): every one of these is a reported problem with
file and line where there is one — never a traceback, a hang, an exhausted memory or a false "valid"."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from edgefuse.errors import Problem
from edgefuse.pipeline.config import check_pipeline

DEMO = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo"


def _check(path: Path) -> list[Problem]:
    config, problems = check_pipeline(path)
    assert (config is None) == bool(problems)
    return problems


def _edit(tiny_pipeline: Path, old: str, new: str) -> Path:
    text = tiny_pipeline.read_text()
    assert old in text
    tiny_pipeline.write_text(text.replace(old, new))
    return tiny_pipeline


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if needle in line)


def test_non_utf8_file_is_one_problem_with_its_line(tiny_pipeline: Path) -> None:
    data = tiny_pipeline.read_bytes().replace(b"name: tiny", b"name: tiny\xff\xfe")
    tiny_pipeline.write_bytes(data)
    problems = _check(tiny_pipeline)
    assert len(problems) == 1
    assert "not UTF-8" in problems[0].message and problems[0].line == 2


def test_nul_byte_is_one_problem_with_its_line(tiny_pipeline: Path) -> None:
    tiny_pipeline.write_bytes(tiny_pipeline.read_bytes().replace(b"sync:", b"sy\x00nc:"))
    problems = _check(tiny_pipeline)
    assert len(problems) == 1 and "NUL byte" in problems[0].message
    assert problems[0].line == _line_of(tiny_pipeline, "sy\x00nc:")


def test_huge_sync_interval_is_reported(tiny_pipeline: Path) -> None:
    _edit(tiny_pipeline, "max_interval_ms: 60", "max_interval_ms: 1e308")
    problems = _check(tiny_pipeline)
    assert [p.message for p in problems] == [
        "sync.params.max_interval_ms must be within ±86400000 ms (one day), got 1e+308"]
    assert problems[0].line == _line_of(tiny_pipeline, "max_interval_ms")


@pytest.mark.parametrize(("value", "needle"), [
    (".nan", "must be a finite number of milliseconds, got nan"),
    (".inf", "must be a finite number of milliseconds, got inf"),
    ("-5", "must be >= 0, got -5"),
    ("soon", "must be a number of milliseconds, got 'soon'"),
    ("1e308", "must be within ±86400000 ms"),
])
def test_bad_hold_age_is_reported(tiny_pipeline: Path, value: str, needle: str) -> None:
    _edit(tiny_pipeline, "  params: {queue_size: 5, max_interval_ms: 60}",
          f"  params: {{queue_size: 5, max_interval_ms: 60}}\n  hold: {{lidar: {{max_age_ms: {value}}}}}\n"
          "  inputs: [camera, imu]")
    _edit(tiny_pipeline, "  camera: {topic: /cam/image, type: Image, sensor: cam}",
          "  camera: {topic: /cam/image, type: Image, sensor: cam}\n  imu: {topic: /imu, type: Imu}")
    problems = _check(tiny_pipeline)
    hits = [p for p in problems if needle in p.message]
    assert hits and hits[0].message.startswith("sync.hold.lidar.max_age_ms"), problems
    assert hits[0].line == _line_of(tiny_pipeline, "max_age_ms")


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("end_to_end_ms: 50", "end_to_end_ms: 1e308", "budget must be at most 3.6e+06 ms (one hour)"),
    ("budget_ms: 40", "budget_ms: 1e308", "budget must be at most 3.6e+06 ms (one hour)"),
    ("budget_ms: 40", "budget: {deadline_ms: 10, p99_ms: 1e308}", "budget p99_ms must be at most"),
    ("budget_ms: 40", "budget: {deadline_ms: 10, max_miss_rate: .nan}", "max_miss_rate must be within [0, 1]"),
])
def test_absurd_budgets_are_not_valid(tiny_pipeline: Path, old: str, new: str, needle: str) -> None:
    _edit(tiny_pipeline, old, new)
    problems = _check(tiny_pipeline)
    assert any(needle in p.message for p in problems), problems


@pytest.mark.parametrize(("params", "needle"), [
    ("{camera: cam, min_depth_m: 50, max_depth_m: 10}", "min_depth_m (50) must be < max_depth_m (10)"),
    ("{camera: cam, max_points: -1}", "parameter 'max_points' must be >= 1"),
    ("{camera: cam, min_depth_m: .nan}", "parameter 'min_depth_m' must be a number, got nan"),
    ("{camera: cam, max_points: 100000000000}", "parameter 'max_points' must be >= 1 and <= 1e+07"),
])
def test_stage_parameters_that_would_fail_at_run_time_are_reported(tiny_pipeline: Path, params: str,
                                                                    needle: str) -> None:
    _edit(tiny_pipeline, "params: {camera: cam, min_depth_m: 0.5}", f"params: {params}")
    problems = _check(tiny_pipeline)
    assert any(needle in p.message for p in problems), problems
    assert all(p.line == _line_of(tiny_pipeline, "params: {camera") for p in problems)


def test_typo_in_a_sync_parameter_is_reported_as_written(tiny_pipeline: Path) -> None:
    _edit(tiny_pipeline, "max_interval_ms: 60", "max_intervall_ms: 60")
    problems = _check(tiny_pipeline)
    text = " | ".join(p.message for p in problems)
    assert "unknown parameter 'max_intervall_ms'" in text and "max_intervall_ns" not in text
    assert "'max_interval_ms'" in text  # the allowed names are listed as a pipeline writes them
    assert problems[0].line == _line_of(tiny_pipeline, "max_intervall_ms")


def test_per_input_ms_mapping_is_converted(tiny_pipeline: Path) -> None:
    _edit(tiny_pipeline, "max_interval_ms: 60", "inter_message_lower_bound_ms: {lidar: 90, camera: 30}")
    config, problems = check_pipeline(tiny_pipeline)
    assert problems == [] and config is not None
    assert config.sync_params["inter_message_lower_bound_ns"] == {"lidar": 90_000_000, "camera": 30_000_000}


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    result: list[list[Problem]] = []
    worker = threading.Thread(target=lambda: result.append(_check(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the reader before failing
        with open(fifo, "w"):
            pass
        pytest.fail("check_pipeline blocked on a FIFO")
    assert len(result[0]) == 1 and "not a regular file (a FIFO)" in result[0][0].message


def test_folder_and_oversized_file_are_refused(tmp_path: Path) -> None:
    assert "is a folder" in _check(tmp_path)[0].message
    big = tmp_path / "big.yaml"
    big.write_text("edgefuse_pipeline: 1\n" + "# padding\n" * 30_000)
    problems = _check(big)
    assert len(problems) == 1 and "bytes are not read" in problems[0].message


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["edgefuse_pipeline: 1", "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines.append("stages: [{name: a, type: decode_image, params: {grayscale: *x9}}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 3000
    start = time.perf_counter()
    problems = _check(bomb)
    assert time.perf_counter() - start < 5.0
    assert len(problems) == 1 and "alias bomb" in problems[0].message


@pytest.mark.parametrize(("text", "needle"), [
    ("edgefuse_pipeline: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
    ("edgefuse_pipeline: 1\nx: 2001-13-45\n", "YAML value error"),
    ("edgefuse_pipeline: 1\nx: !!set 3\n", "YAML error"),
    ("edgefuse_pipeline: 1\nx: \x07\n", "YAML error"),
    ("edgefuse_pipeline: 1\nx: " + "9" * 5000 + "\n", "YAML value error"),
])
def test_pathological_yaml_is_one_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    start = time.perf_counter()
    problems = _check(path)
    assert time.perf_counter() - start < 5.0
    assert len(problems) == 1 and needle in problems[0].message, problems


def test_self_referencing_alias_terminates(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("edgefuse_pipeline: 1\ninputs: &a {x: *a}\nstages: &b [*b]\n")
    problems = _check(path)  # ruamel resolves the inner alias to null: ordinary problems, no recursion
    assert problems and all("input" in p.message or "stage" in p.message or "sync" in p.message for p in problems)


def test_topic_missing_from_the_pipelines_own_bag(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"""\
edgefuse_pipeline: 1
bag: {DEMO}
inputs:
  camera: {{topic: /zed_left/image_raw/compressed, type: CompressedImage}}
  lidar: {{topic: /velodyne, type: PointCloud}}
sync: {{policy: approximate}}
""")
    config, problems = check_pipeline(pipeline, check_bag=True)
    assert config is None and len(problems) == 1
    assert "input 'lidar': topic /velodyne is not in the bag" in problems[0].message
    assert "/velodyne_points" in problems[0].message and problems[0].line == 5
    assert check_pipeline(pipeline)[1] == []  # replay --bag may use another recording: not checked there
    pipeline.write_text(pipeline.read_text().replace(str(DEMO), str(tmp_path / "nope")))
    assert "bag not found" in check_pipeline(pipeline, check_bag=True)[1][0].message


def test_runtime_section_is_checked(tiny_pipeline: Path) -> None:
    _edit(tiny_pipeline, "sync:", "runtime: {numba_threads: 100000, numba_cache_dir: 5}\nsync:")
    msgs = [p.message for p in _check(tiny_pipeline)]
    assert "runtime.numba_threads must be an integer >= 0 (at most 1024)" in msgs
    assert "runtime.numba_cache_dir must be a folder path, got 5" in msgs
