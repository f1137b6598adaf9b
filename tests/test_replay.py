"""Replay on damaged input and under faults: bounded, reported degradation — bad messages and failing stages
counted and skipped; signals, full disks and unwritable paths end in closed outputs, a report marked
incomplete and one clear line; a failed run never blocks its rerun."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse import replay as replay_module
from edgefuse.bag import open_bag
from edgefuse.cli import EXIT_INPUT, main

HUSKY = Path(__file__).parent / "data" / "husky_imu_gps_odom_bag" / "test1.bag"
HUSKY_MESSAGES = 11865 + 3952  # /imu/data + odometry

PIPELINE = """\
edgefuse_pipeline: 1
inputs:
  imu: {topic: /imu/data, type: Imu}
  odom: {topic: /husky_velocity_controller/odom, type: Odometry}
sync: {policy: approximate, params: {queue_size: 10}}
outputs:
  - {topic: /out/odom, from: odom}
"""

CROP_PIPELINE = """\
edgefuse_pipeline: 1
name: crop
inputs:
  lidar: {topic: /lidar, type: PointCloud}
sync: {policy: each}
stages:
  - name: crop
    type: pointcloud_crop
    in: {cloud: lidar}
    params: {max_range_m: 4.0}
outputs:
  - {topic: /out/cloud, from: crop.cloud}
"""


@pytest.fixture
def husky_pipeline(tmp_path: Path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    return path


@pytest.fixture
def corrupt_mid(tmp_path: Path) -> Path:
    data = bytearray(HUSKY.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = b"\xff" * 2000  # garbage inside a compressed chunk
    path = tmp_path / "corrupt_mid.bag"
    path.write_bytes(bytes(data))
    return path


def _mcap_messages(bag_folder: Path) -> int:
    """Messages in the bag's MCAP file, read through its index (the ``mcap`` package's seeking reader, which
    needs the footer and summary)."""
    from mcap.reader import make_reader

    (storage,) = bag_folder.glob("*.mcap")
    with storage.open("rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        count = sum(1 for _ in reader.iter_messages())
    assert count == summary.statistics.message_count
    return count


# -- a recording corrupt part-way -----------------------------------------------------------------------


def test_corrupt_middle_keeps_outputs_and_report(tmp_path: Path, corrupt_mid: Path, husky_pipeline: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    report, out = tmp_path / "r.json", tmp_path / "out"
    rc = main(["replay", str(husky_pipeline), "--bag", str(corrupt_mid), "--max-speed", "-q",
               "--report", str(report), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT
    assert len(err) == 1 and "replay stopped after" in err[0] and "corrupt bag" in err[0]
    assert f"outputs closed in {out}.partial" in err[0]
    data = json.loads(report.read_text())
    assert data["complete"] is False and "corrupt bag" in data["error"]
    assert 0 < data["messages"] < HUSKY_MESSAGES
    written = data["output_counts"]["/out/odom"]
    assert written > 0
    # the partial output is a finished, readable bag, named so that nobody takes it for a result
    assert not out.exists() and data["out"] == f"{out}.partial"
    with open_bag(Path(data["out"])) as reader:
        assert reader.topics["/out/odom"].count == written
    assert _mcap_messages(Path(data["out"])) == written


def test_complete_run_is_marked_complete(tmp_path: Path, husky_pipeline: Path) -> None:
    report = tmp_path / "r.json"
    assert main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q",
                 "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["complete"] is True and data["error"] is None
    assert data["messages"] == HUSKY_MESSAGES
    assert data["skipped_messages"] == {}
    assert isinstance(data["sync"]["stats"], dict) and data["sync"]["stats"]["policy"] == "approximate"


@pytest.mark.parametrize("rate", ["nan", "0", "-2", "inf"])
def test_bad_rate(rate: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "radiate_demo", "--rate", rate, "-q"]) == EXIT_INPUT
    assert "--rate must be a finite number > 0" in capsys.readouterr().err


def test_report_path_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "radiate_demo", "--max-speed", "-q", "--report", str(tmp_path)]) == EXIT_INPUT
    assert "this is a folder" in capsys.readouterr().err


# -- 1. SIGINT / SIGTERM mid-replay ----------------------------------------------------------------------


def _start_and_wait_for_progress(argv: list[str], lines: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``edgefuse`` as a process and return once it has printed ``lines`` progress lines."""
    proc = subprocess.Popen([sys.executable, "-m", "edgefuse.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        while sum(1 for s in seen if s.startswith("replay:") and "msgs" in s) < lines:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
    finally:
        watchdog.cancel()
    assert proc.poll() is None, f"finished before it could be interrupted: {seen}"
    return proc, seen


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_replay_closes_outputs_and_writes_report(tmp_path: Path, husky_pipeline: Path,
                                                            signum: int, status: int) -> None:
    report, out = tmp_path / "r.json", tmp_path / "out"
    proc, _ = _start_and_wait_for_progress(
        ["replay", str(husky_pipeline), "--bag", str(HUSKY), "--rate", "0.5", "--out", str(out),
         "--report", str(report)], lines=2)
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == status, rest
    assert "Traceback" not in rest
    errors = [line for line in rest.splitlines() if line.startswith("edgefuse:")]
    assert len(errors) == 1, rest
    assert f"interrupted by {name}" in errors[0] and f"{out}.partial" in errors[0] and str(report) in errors[0]
    data = json.loads(report.read_text())
    assert data["complete"] is False and data["error"] == f"interrupted by {name}"
    assert 0 < data["messages"] < HUSKY_MESSAGES
    written = data["output_counts"]["/out/odom"]
    assert written > 0
    assert not out.exists() and data["out"] == f"{out}.partial"
    assert _mcap_messages(out.with_name("out.partial")) == written


# -- 2. full disk, read-only and unwritable paths ---------------------------------------------------------


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Any]:
    """``mount(name, size, read_only)``: a tmpfs of ``size`` at tmp_path/name (needs root; skipped where
    mounting is not permitted).  Unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, size: str, read_only: bool = False) -> Path:
        target = tmp_path / name
        target.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); needs root")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)  # lazy: even if a file is still open


def test_report_on_dev_full_is_refused_before_the_run(tmp_path: Path, husky_pipeline: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    out = tmp_path / "out"
    t0 = time.monotonic()
    rc = main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q",
               "--report", "/dev/full", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT
    assert len(err) == 1 and "cannot write the report" in err[0] and "No space left on device" in err[0]
    assert not out.exists() and not out.with_name("out.partial").exists()  # refused before anything started
    assert time.monotonic() - t0 < 30


def test_read_only_folders_are_refused_before_the_run(mount_tmpfs: Any, tmp_path: Path, husky_pipeline: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ro = mount_tmpfs("ro", "1m", read_only=True)
    rc = main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q",
               "--report", str(ro / "r.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT and len(err) == 1
    assert "cannot write the report" in err[0] and "Read-only file system" in err[0]
    rc = main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q", "--out", str(ro / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT and len(err) == 1
    assert "cannot write output" in err[0] and "read-only file system" in err[0]


def test_disk_full_mid_run_closes_what_it_can(mount_tmpfs: Any, tmp_path: Path, husky_pipeline: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    full = mount_tmpfs("full", "2m")  # the odometry outputs need ~2.7 MB
    report, out = tmp_path / "r.json", full / "out"
    rc = main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q",
               "--report", str(report), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT
    assert len(err) == 1 and "No space left on device" in err[0] and f"{out}.partial" in err[0]
    data = json.loads(report.read_text())
    assert data["complete"] is False and "No space left on device" in data["error"]
    assert 0 < data["messages"] < HUSKY_MESSAGES
    assert not out.exists() and data["out"] == f"{out}.partial"
    assert list(Path(data["out"]).glob("*.mcap"))  # what was written is kept, clearly named
    # a file system that is full already is refused before the run
    _fill(full)
    rc = main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q",
               "--out", str(full / "again")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT and len(err) == 1 and "no space left" in err[0]


def test_report_that_cannot_be_written_at_the_end(mount_tmpfs: Any, tmp_path: Path, husky_pipeline: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The report folder fills up during the run: the outputs are complete, one line says the report is
    not, exit 2, and no half-written report is left."""
    small = mount_tmpfs("small", "64k")
    report = small / "r.json"
    original = replay_module._write_report

    def fill_then_write(rep: dict[str, Any], path: Any) -> Any:
        _fill(small)
        return original(rep, path)

    monkeypatch.setattr(replay_module, "_write_report", fill_then_write)
    out = tmp_path / "out"
    rc = main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q",
               "--report", str(report), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INPUT
    assert len(err) == 1 and "cannot write the report" in err[0] and "completed" in err[0]
    assert not report.exists() and not list(small.glob(".*.tmp"))
    assert _mcap_messages(out) > 0  # the outputs are complete and in place


def _fill(folder: Path) -> None:
    """Fill the file system of ``folder`` completely."""
    with (folder / "filler").open("ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


# -- 3. malformed messages and failing stages --------------------------------------------------------------


def _write_cloud_bag(path: Path, bad: dict[int, str], n: int = 20) -> None:
    """A ROS 2 MCAP bag of ``n`` PointCloud2 on /lidar at 10 Hz (50 random points each), valid CDR throughout;
    message k in ``bad`` has malformed content: ``"huge_step"`` (point_step 2^31), ``"count3"`` (x with count
    3), ``"no_x"`` (a single field ``a``)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from edgefuse.msgs.typestore import get_typestore

    ts = get_typestore()
    pc2, pf = ts.types["sensor_msgs/msg/PointCloud2"], ts.types["sensor_msgs/msg/PointField"]
    header, stamp = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    xyz = [pf(name=c, offset=4 * i, datatype=7, count=1) for i, c in enumerate("xyz")]

    def cloud(t: int, fields: list[Any], point_step: int, width: int, data: np.ndarray[Any, Any]) -> Any:
        return pc2(header=header(stamp=stamp(sec=t // 10**9, nanosec=t % 10**9), frame_id="velodyne"),
                   height=1, width=width, fields=fields, is_bigendian=False, point_step=point_step,
                   row_step=(point_step * width) % 2**32, data=data, is_dense=True)

    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/lidar", "sensor_msgs/msg/PointCloud2", typestore=ts)
        for k in range(n):
            t = 10**9 + k * 10**8
            kind = bad.get(k)
            if kind == "huge_step":
                msg = cloud(t, xyz, 2**31, 0, np.zeros(0, np.uint8))
            elif kind == "count3":
                fields = [pf(name="x", offset=0, datatype=7, count=3), pf(name="y", offset=12, datatype=7, count=1),
                          pf(name="z", offset=16, datatype=7, count=1)]
                msg = cloud(t, fields, 20, 4, np.zeros(80, np.uint8))
            elif kind == "no_x":
                msg = cloud(t, [pf(name="a", offset=0, datatype=7, count=1)], 4, 4, np.zeros(16, np.uint8))
            else:
                pts = np.random.default_rng(k).uniform(-5, 5, (50, 3)).astype(np.float32)
                msg = cloud(t, xyz, 12, 50, pts.view(np.uint8).reshape(-1))
            writer.write(conn, t, ts.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2"))


@pytest.fixture
def crop_pipeline(tmp_path: Path) -> Path:
    path = tmp_path / "crop.yaml"
    path.write_text(CROP_PIPELINE)
    return path


def test_malformed_messages_are_counted_and_skipped(tmp_path: Path, crop_pipeline: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "bad_clouds"
    _write_cloud_bag(bag, {5: "huge_step", 8: "count3", 11: "no_x"})
    report, out = tmp_path / "r.json", tmp_path / "out"
    rc = main(["replay", str(crop_pipeline), "--bag", str(bag), "--max-speed", "-q", "--report", str(report),
               "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    data = json.loads(report.read_text())
    assert data["complete"] is True
    skipped = data["skipped_messages"].get("lidar", {"count": 0, "reasons": {}, "first": []})
    crop = data["stages"]["crop"]
    # each bad cloud is either left out by the source (does not convert) or fails the stage, never both,
    # and the 17 good ones all come through
    assert skipped["count"] + crop["errors"] == 3
    assert skipped["count"] >= 1 and skipped["first"][0].startswith("message 5 ")  # point_step 2^31
    assert all(reason.startswith("does not convert") for reason in skipped["reasons"])
    assert sum(skipped["reasons"].values()) == skipped["count"]
    assert len(crop["first_errors"]) == crop["errors"]
    assert crop["count"] == 17 and data["output_counts"]["/out/cloud"] == 17
    assert data["messages"] == 20 - skipped["count"]
    assert "SKIPPED MESSAGES lidar" in text
    if crop["errors"]:
        assert "STAGE ERRORS crop" in text
    with open_bag(out) as reader:
        assert reader.topics["/out/cloud"].count == 17


def test_a_stage_raising_anything_is_counted_and_the_run_goes_on(tmp_path: Path, crop_pipeline: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from edgefuse.stages.voxel import PointCloudCropStage

    bag = tmp_path / "clouds"
    _write_cloud_bag(bag, {})
    original = PointCloudCropStage.process
    failing = {10**9 + 3 * 10**8: RuntimeError("boom"), 10**9 + 7 * 10**8: IndexError("index 9 is out of bounds"),
               10**9 + 9 * 10**8: ZeroDivisionError()}

    def process(self: PointCloudCropStage, inputs: Any, stamp_ns: int) -> dict[str, Any]:
        if stamp_ns in failing:
            raise failing[stamp_ns]
        return original(self, inputs, stamp_ns)

    monkeypatch.setattr(PointCloudCropStage, "process", process)
    report = tmp_path / "r.json"
    assert main(["replay", str(crop_pipeline), "--bag", str(bag), "--max-speed", "-q",
                 "--report", str(report)]) == 0
    text = capsys.readouterr().out
    data = json.loads(report.read_text())
    crop = data["stages"]["crop"]
    assert data["complete"] is True and data["sets"] == 20
    assert crop["errors"] == 3 and crop["count"] == 17 and data["output_counts"]["/out/cloud"] == 17
    assert crop["first_errors"] == [f"set {10**9 + 3 * 10**8} ns: RuntimeError: boom",
                                    f"set {10**9 + 7 * 10**8} ns: IndexError: index 9 is out of bounds",
                                    f"set {10**9 + 9 * 10**8} ns: ZeroDivisionError"]
    assert "STAGE ERRORS crop: 3 set(s) failed" in text and "RuntimeError: boom" in text


# -- 4. a failed or interrupted run never blocks its rerun ----------------------------------------------


def test_failed_run_does_not_block_rerun_and_overwrite(tmp_path: Path, corrupt_mid: Path, husky_pipeline: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    base = ["replay", str(husky_pipeline), "--max-speed", "-q", "--out", str(out)]
    assert main([*base, "--bag", str(corrupt_mid)]) == EXIT_INPUT
    assert not out.exists() and out.with_name("out.partial").is_dir()
    capsys.readouterr()
    # the rerun is not blocked; the leftover .partial is replaced and then gone
    assert main([*base, "--bag", str(HUSKY)]) == 0
    assert not out.with_name("out.partial").exists()
    full = _mcap_messages(out)
    assert full > 0 and (out / "out.mcap").is_file()  # the storage file is named after the final folder
    # a complete output is not replaced silently ...
    assert main([*base, "--bag", str(HUSKY)]) == EXIT_INPUT
    assert "--overwrite" in capsys.readouterr().err
    # ... nor by a run that fails: the old result stays until a new one is complete
    assert main([*base, "--bag", str(corrupt_mid), "--overwrite"]) == EXIT_INPUT
    assert _mcap_messages(out) == full
    assert main([*base, "--bag", str(HUSKY), "--overwrite"]) == 0
    assert _mcap_messages(out) == full and not out.with_name("out.partial").exists()
    # --overwrite replaces bags only
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert main(["replay", str(husky_pipeline), "--bag", str(HUSKY), "--max-speed", "-q", "--out", str(other),
                 "--overwrite"]) == EXIT_INPUT
    assert "not a ROS 2 bag folder" in capsys.readouterr().err and (other / "keep.txt").exists()


# -- 19. the first, slow start says what it is doing -----------------------------------------------------


def test_slow_start_says_kernels_compile_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefuse.replay import StartNotice

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr(replay_module, "numba_cache_dir", lambda: cache)
    stream = io.StringIO()
    with StartNotice(stream, after_s=0.05):  # a cold cache: kernels compiled and cached during the start
        time.sleep(0.5)
        (cache / "kernel.nbi").write_bytes(b"")
    first, second = stream.getvalue().splitlines()
    assert "compiling Numba kernels" in first and "first run only" in first and str(cache) in first
    assert second.startswith("replay: kernels compiled in ") and f"cached in {cache}" in second
    stream = io.StringIO()
    with StartNotice(stream, after_s=0.05):  # a warm cache: loaded, nothing compiled
        time.sleep(0.5)
    first, second = stream.getvalue().splitlines()
    assert f"loading Numba kernels cached in {cache}" in first
    assert second.startswith("replay: stages started in ")
    stream = io.StringIO()
    with StartNotice(stream, after_s=5.0):  # a quick start says nothing
        pass
    assert stream.getvalue() == ""
    monkeypatch.setattr(replay_module, "numba_cache_dir", lambda: None)
    stream = io.StringIO()
    with StartNotice(stream, after_s=0.05):
        time.sleep(0.5)
    assert "not cached" in stream.getvalue() and "EDGEFUSE_NUMBA_CACHE_DIR" in stream.getvalue()


def test_replay_announces_a_slow_start_unless_quiet(tmp_path: Path, crop_pipeline: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from edgefuse.stages.voxel import PointCloudCropStage

    bag = tmp_path / "clouds"
    _write_cloud_bag(bag, {}, n=3)
    original = PointCloudCropStage.start

    def slow_start(self: PointCloudCropStage) -> None:
        time.sleep(0.5)
        original(self)

    monkeypatch.setattr(PointCloudCropStage, "start", slow_start)
    monkeypatch.setattr(replay_module, "START_NOTICE_AFTER_S", 0.05)
    assert main(["replay", str(crop_pipeline), "--bag", str(bag), "--max-speed"]) == 0
    err = capsys.readouterr().err
    assert "replay: starting stages:" in err and "Numba kernels" in err
    assert "replay: stages started in" in err or "replay: kernels compiled in" in err
    assert main(["replay", str(crop_pipeline), "--bag", str(bag), "--max-speed", "-q"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_cold_cache_first_run_says_it_compiles(tmp_path: Path) -> None:
    """A real first run (empty Numba cache): the notice comes while kernels compile, then says they were."""
    env = {**os.environ, "EDGEFUSE_NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "edgefuse.cli", "replay", "radiate_demo", "--max-speed"],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "compiling Numba kernels, which takes a while on the first run only" in proc.stderr
    assert "kernels compiled in" in proc.stderr and str(tmp_path / "cache") in proc.stderr
