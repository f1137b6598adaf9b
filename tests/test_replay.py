"""Replay on damaged input: bounded, reported degradation — outputs closed, report written, clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefuse.bag import open_bag
from edgefuse.cli import EXIT_INPUT, main

HUSKY = Path(__file__).parent / "data" / "husky_imu_gps_odom_bag" / "test1.bag"

PIPELINE = """\
edgefuse_pipeline: 1
inputs:
  imu: {topic: /imu/data, type: Imu}
  odom: {topic: /husky_velocity_controller/odom, type: Odometry}
sync: {policy: approximate, params: {queue_size: 10}}
outputs:
  - {topic: /out/odom, from: odom}
"""


@pytest.fixture
def corrupt_mid(tmp_path: Path) -> Path:
    data = bytearray(HUSKY.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = b"\xff" * 2000  # garbage inside a compressed chunk
    path = tmp_path / "corrupt_mid.bag"
    path.write_bytes(bytes(data))
    return path


def test_corrupt_middle_keeps_outputs_and_report(tmp_path: Path, corrupt_mid: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    report, out = tmp_path / "r.json", tmp_path / "out"
    rc = main(["replay", str(pipeline), "--bag", str(corrupt_mid), "--max-speed", "-q",
               "--report", str(report), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT
    assert len(err) == 1 and "replay stopped after" in err[0] and "corrupt bag" in err[0]
    data = json.loads(report.read_text())
    assert data["complete"] is False and "corrupt bag" in data["error"]
    assert 0 < data["messages"] < 15817
    written = data["output_counts"]["/out/odom"]
    assert written > 0
    with open_bag(out) as reader:  # the partial output is a finished, readable bag
        assert reader.topics["/out/odom"].count == written


def test_complete_run_is_marked_complete(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    report = tmp_path / "r.json"
    assert main(["replay", str(pipeline), "--bag", str(HUSKY), "--max-speed", "-q", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["complete"] is True and data["error"] is None
    assert data["messages"] == 11865 + 3952
    assert isinstance(data["sync"]["stats"], dict) and data["sync"]["stats"]["policy"] == "approximate"


@pytest.mark.parametrize("rate", ["nan", "0", "-2", "inf"])
def test_bad_rate(rate: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "radiate_demo", "--rate", rate, "-q"]) == EXIT_INPUT
    assert "--rate must be a finite number > 0" in capsys.readouterr().err


def test_report_path_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "radiate_demo", "--max-speed", "-q", "--report", str(tmp_path)]) == EXIT_INPUT
    assert "this is a folder" in capsys.readouterr().err
