"""The ``edgefuse`` command line on the bundled recordings: what a user runs first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgefuse.cli import EXIT_BUDGET, EXIT_INPUT, bundled_pipelines, main

HUSKY = Path(__file__).parent / "data" / "husky_imu_gps_odom_bag" / "test1.bag"


def test_bundled_demo_pipeline_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert "radiate_demo" in bundled_pipelines()
    assert main(["validate", "radiate_demo"]) == 0
    assert "valid pipeline" in capsys.readouterr().out


def test_replay_demo_max_speed_report_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefuse.bag import open_bag

    report = tmp_path / "r.json"
    out = tmp_path / "out"
    rc = main(["replay", "radiate_demo", "--max-speed", "--report", str(report), "--out", str(out),
               "--check-budgets", "-q"])
    text = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert rc in (0, EXIT_BUDGET)  # budgets are timing; correctness is asserted below
    assert (rc == EXIT_BUDGET) == bool(data["budget_breaches"])
    assert data["sets"] == 32 and data["partial_sets"] == 0
    assert data["messages"] == 97  # 33 clouds + 50 images + 14 radar scans
    assert data["stages"]["project"]["count"] == 32
    assert data["stages"]["project"]["errors"] == 0
    for key in ("count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "deadline_misses"):
        assert key in data["end_to_end"]
    assert data["held_missing"]["radar"] == 0
    # the 4 Hz radar is held into every set, but each of its 14 scans is processed and published once
    assert data["stages"]["radar_points"]["count"] == 14
    assert data["stages"]["radar_points"]["reused_unchanged_inputs"] == 32 - 14
    assert data["outputs_written"]["/edgefuse/radar/points"] == 14
    assert data["outputs_written"]["/edgefuse/radar/colored"] == 32
    assert "end_to_end" in text and "project [lidar_camera_projection]" in text
    with open_bag(out) as reader:
        topics = reader.topics
        assert topics["/edgefuse/zed_left/depth"].count == 32
        assert topics["/edgefuse/lidar/colored"].count == 32
        env = next(iter(reader.envelopes(["/edgefuse/zed_left/depth"])))
        depth = env.payload.data
        assert depth.shape == (376, 672)
        assert 2000 < int((depth > 0).sum()) < 6000  # ~3-5k LiDAR returns land in the image (SOURCE.md)
        assert float(depth[depth > 0].min()) >= 0.5 and float(depth.max()) <= 100.0


def test_replay_twice_gives_identical_digests(tmp_path: Path) -> None:
    reports = []
    for k in range(2):
        path = tmp_path / f"r{k}.json"
        assert main(["replay", "radiate_demo", "--max-speed", "-q", "--report", str(path)]) in (0,)
        reports.append(json.loads(path.read_text()))
    assert reports[0]["output_digests"] == reports[1]["output_digests"]
    assert len(reports[0]["output_digests"]) == 4 + 4  # the outputs + /tf_static and 3 CameraInfo (sinks/viewer.py)


def test_check_budgets_exits_nonzero_on_breach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = bundled_pipelines()["radiate_demo"]
    text = src.read_text().replace("end_to_end_ms: 150", "end_to_end: {deadline_ms: 0.001}")
    assert "deadline_ms: 0.001" in text
    text = text.replace("rig: ../demo/rig.yaml", f"rig: {src.parent.parent / 'demo' / 'rig.yaml'}")
    text = text.replace("bag: ../demo", f"bag: {src.parent.parent / 'demo'}")
    pipeline = tmp_path / "tight.yaml"
    pipeline.write_text(text)
    assert main(["replay", str(pipeline), "--max-speed", "-q", "--check-budgets"]) == EXIT_BUDGET
    assert "BUDGET BREACHES" in capsys.readouterr().out
    assert main(["replay", str(pipeline), "--max-speed", "-q"]) == 0  # reported, not enforced


def test_paced_replay_respects_rate(tmp_path: Path) -> None:
    from edgefuse.replay import replay

    pipeline = bundled_pipelines()["radiate_demo"]
    res = replay(pipeline, rate=4.0)
    # 3.34 s recorded at 4x takes at least 0.83 s of wall time
    assert res.report["wall_s"] >= res.report["recorded_span_s"] / 4.0 * 0.98
    assert res.report["realtime_factor"] <= 4.0 * 1.05


def test_output_not_writable_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["replay", "radiate_demo", "--max-speed", "-q", "--out", str(blocker / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT
    assert len(err) == 1 and "cannot write output" in err[0] and "is not a folder" in err[0]
    existing = tmp_path / "exists"
    existing.mkdir()
    assert main(["replay", "radiate_demo", "--max-speed", "-q", "--out", str(existing)]) == EXIT_INPUT
    assert "already exists" in capsys.readouterr().err


def test_info_on_real_husky_bag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(HUSKY)]) == 0
    out = capsys.readouterr().out
    assert "/imu/data" in out and "11865" in out and "/fix" in out and "989" in out
    assert main(["info", "--json", str(HUSKY)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["message_count"] == 16806


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["info", "/nonexistent/bag.bag"], "edgefuse: "),
        (["replay", "no_such_pipeline"], "pipeline no_such_pipeline not found"),
        (["validate", "no_such_pipeline"], "not found"),
    ],
)
def test_bad_input_one_line_nonzero(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_garbage_bag_and_trace_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "garbage.bag"
    bad.write_bytes(os.urandom(4096))
    assert main(["info", str(bad)]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "garbage.bag" in err[0]
    from edgefuse.errors import BagError

    with pytest.raises(BagError):
        main(["--trace", "info", str(bad)])


def test_console_script_runs_as_a_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgefuse.cli", "validate", "radiate_demo"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "valid pipeline" in proc.stdout


@pytest.mark.parametrize("which", ["ros2_folder", "ros1_file", "plain_folder"])
def test_replay_given_a_recording_says_what_it_expected(which: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    demo = bundled_pipelines()["radiate_demo"].parent.parent / "demo"
    path = {"ros2_folder": demo, "ros1_file": HUSKY, "plain_folder": tmp_path}[which]
    assert main(["replay", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "replay expects a pipeline: a pipeline YAML file or a bundled pipeline name" in err[0]
    assert all(name in err[0] for name in bundled_pipelines())
    if which == "plain_folder":
        assert "but this is a folder" in err[0]
    else:
        assert "this is a recording" in err[0] and f"--bag {path}" in err[0]


_SLOW_CONVERT = """\
import sys, time
import edgefuse.convert.converter as converter
original = converter._write
def slow_write(*args, **kwargs):
    original(*args, **kwargs)
    print("wrote", file=sys.stderr, flush=True)
    time.sleep(0.1)
converter._write = slow_write
from edgefuse.cli import main
sys.exit(main(["convert", sys.argv[1], sys.argv[2]]))
"""


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_convert_interrupted_keeps_a_closed_partial_bag(tmp_path: Path, signum: int, status: int) -> None:
    """A real signal mid-conversion (slowed down so that it lands mid-run): the bag is closed validly and kept
    as OUT.partial with its report marked incomplete, one line is printed, the exit status is 128 + signal."""
    from mcap.reader import make_reader

    src = Path(__file__).parent / "data" / "radiate_tiny_foggy"
    out = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CONVERT, str(src), str(out)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        wrote = 0
        while wrote < 5:
            line = proc.stderr.readline()
            assert line, "convert ended before it could be interrupted"
            wrote += line.strip() == "wrote"
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
    name = signal.Signals(signum).name
    assert proc.returncode == status, rest
    errors = [line for line in rest.splitlines() if line.startswith("edgefuse:")]
    assert "Traceback" not in rest and len(errors) == 1, rest
    partial = tmp_path / "bag.partial"
    assert f"interrupted by {name}" in errors[0] and str(partial) in errors[0]
    assert not out.exists()
    report = json.loads((partial / "convert_report.json").read_text())
    assert report["complete"] is False and report["error"] == f"interrupted by {name}"
    written = sum(t["count"] for t in report["topics"].values())
    assert written >= 5
    with (partial / "bag.mcap").open("rb") as f:  # indexed read: needs the footer and summary
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        assert summary.statistics.message_count == written == sum(1 for _ in reader.iter_messages())


def test_signals_are_deferred_inside_critical_sections() -> None:
    """Inside handle_signals, SIGTERM is a KeyboardInterrupt that names it; inside deferred_signals it waits
    for the block to end (a record is never cut in half); the previous handler comes back afterwards."""
    from edgefuse._cli_common import deferred_signals, handle_signals, interrupt_message, interrupt_signal

    steps: list[str] = []

    def critical_section() -> None:
        with handle_signals():
            with deferred_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                steps.append("finished the block")
            steps.append("after the block")

    def plain() -> None:
        with handle_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as info:
        critical_section()
    assert steps == ["finished the block"]
    assert interrupt_signal(info.value) == signal.SIGTERM
    assert interrupt_message(info.value) == "interrupted by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as info:
        plain()
    assert interrupt_signal(info.value) == signal.SIGTERM and time.monotonic() - t0 < 4


def test_stages_lists_every_stage_with_ports_and_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    from edgefuse.stages import known_stage_types

    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    for name in known_stage_types():  # built-ins and the entry-point plugin (online_time_offset)
        assert f"\n{name}  (" in f"\n{out}"
    assert "  in:  cloud: PointCloud, image?: Image" in out
    assert "min_depth_m  float = 0.1 [m]  (> 0 and <= 10000)  points nearer than this are dropped" in out
    assert main(["stages", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["type"] for d in listed] == known_stage_types()
    assert main(["stages", "--json", "online_time_offset"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["module"] == "edgefuse_calibration.stages"
    assert one["inputs"] == [{"port": "a", "type": "Imu|ImuBatch|Odometry", "optional": True},
                             {"port": "b", "type": "Imu|ImuBatch|Odometry", "optional": True}]
    window = next(p for p in one["params"] if p["name"] == "window_s")
    assert window == {"name": "window_s", "type": "float", "required": False, "default": 30.0, "unit": "s",
                      "range": "> 0 and <= 3600", "doc": "estimation window"}
    assert main(["stages", "no_such_stage"]) == EXIT_INPUT
    assert "unknown stage type 'no_such_stage'" in capsys.readouterr().err


def test_validate_refuses_hostile_files_with_file_and_line(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"edgefuse_pipeline: 1\nname: caf\xe9\n")
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"edgefuse_rig: 1\nbase_frame: a\x00\n")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "edgefuse.cli", "validate", str(latin1), str(nul), str(fifo)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_INPUT, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{latin1}:2: not UTF-8 text (byte 0xe9)" in proc.stderr
    assert f"{nul}:2: NUL byte in the file" in proc.stderr
    assert f"{fifo}: is not a regular file (a FIFO); not read" in proc.stderr


def test_validate_names_a_topic_missing_from_the_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = bundled_pipelines()["radiate_demo"]
    text = src.read_text().replace("rig: ../demo/rig.yaml", f"rig: {src.parent.parent / 'demo' / 'rig.yaml'}")
    text = text.replace("bag: ../demo", f"bag: {src.parent.parent / 'demo'}")
    text = text.replace("topic: /velodyne_points", "topic: /velodyne")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(text)
    assert main(["validate", str(pipeline)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "input 'lidar': topic /velodyne is not in the bag" in err
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "topic: /velodyne," in row)
    assert f"{pipeline}:{line}: input 'lidar'" in err
