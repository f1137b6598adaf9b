"""``edgefuse calibrate time``: writes the rig only for an ok verdict, refuses otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from edgefuse_calibration.cli import EXIT_INPUT, EXIT_REFUSED, main

from edgefuse.rig import load_rig

from .conftest import HUSKY_BAG, HUSKY_RIG, IMU_SPEC, ODOM_SPEC


@pytest.fixture
def rig_path(tmp_path: Path) -> Path:
    p = tmp_path / "rig.yaml"
    p.write_text(HUSKY_RIG, encoding="utf-8")
    return p


def test_time_writes_rig_report_and_plot(rig_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["calibrate", "time", str(HUSKY_BAG), "--signal-a", IMU_SPEC, "--signal-b", ODOM_SPEC,
               "--frame-a", "base_link", "--rig", str(rig_path), "--sensor", "wheel_odom",
               "--report", str(tmp_path / "r.json"), "--plot", str(tmp_path / "p.png")])
    assert rc == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["verdict"] == "ok" and rep["rig_written"] is True
    rig = load_rig(rig_path)
    assert rig.sensor("wheel_odom").time_offset_ns == rep["offset_ns"] == rep["time_offset_ns"]
    assert -420e6 < rep["offset_ns"] < -360e6
    assert rig.sensor("imu").time_offset_ns == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote wheel_odom.time_offset_ns" in capsys.readouterr().out


def test_time_adds_reference_sensor_offset(rig_path: Path) -> None:
    rig_path.write_text(HUSKY_RIG.replace("kind: imu}", "kind: imu, time_offset_ns: 5000000}"))
    assert main(["calibrate", "time", str(HUSKY_BAG), "--signal-a", IMU_SPEC, "--signal-b", ODOM_SPEC,
                 "--rotate-a", "90,0,-90", "--rig", str(rig_path), "--sensor", "wheel_odom"]) == 0
    off = load_rig(rig_path).sensor("wheel_odom").time_offset_ns
    assert -415e6 < off < -355e6


def test_refusal_leaves_rig_untouched(rig_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = rig_path.read_bytes()
    # the IMU's own z axis (no rotation) barely sees the yaw: insufficient excitation
    rc = main(["calibrate", "time", str(HUSKY_BAG), "--signal-a", IMU_SPEC, "--signal-b", ODOM_SPEC,
               "--rig", str(rig_path), "--sensor", "wheel_odom", "--report", str(tmp_path / "r.json")])
    assert rc == EXIT_REFUSED
    assert rig_path.read_bytes() == before
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["verdict"] != "ok" and rep["offset_ns"] is None and rep["rig_written"] is False
    assert "verdict" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--signal-b", "/nope:twist_yaw"], "not in"),
    (["--signal-b", "/husky_velocity_controller/odom:bogus"], "bad signal spec"),
    (["--signal-b", "/imu/data:twist_yaw"], "needs nav_msgs/Odometry"),
    (["--signal-b", ODOM_SPEC, "--sensor", "ghost"], "--rig and --sensor go together"),
    (["--signal-b", ODOM_SPEC, "--rotate-a", "1,2"], "roll,pitch,yaw"),
])
def test_bad_input_exits_2(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["calibrate", "time", str(HUSKY_BAG), "--signal-a", IMU_SPEC, *extra])
    assert rc == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith("edgefuse: ") and message in err


def test_unknown_sensor_in_rig(rig_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = rig_path.read_bytes()
    rc = main(["calibrate", "time", str(HUSKY_BAG), "--signal-a", IMU_SPEC, "--signal-b", ODOM_SPEC,
               "--rig", str(rig_path), "--sensor", "ghost"])
    assert rc == EXIT_INPUT and "unknown sensor" in capsys.readouterr().err
    assert rig_path.read_bytes() == before


def test_time_on_the_bundled_rig_changes_only_the_offset_line(tmp_path: Path) -> None:
    """The README's command on the bundled Husky rig (comments, rpy_deg, flow sensors): the written file
    differs from the original in the calibrated sensor's time_offset_ns and nowhere else."""
    import edgefuse

    bundled = Path(edgefuse.__file__).parent / "data" / "husky" / "rig.yaml"
    rig_file = tmp_path / "husky_rig.yaml"
    shutil.copy(bundled, rig_file)
    before = rig_file.read_text(encoding="utf-8").splitlines(keepends=True)
    assert main(["calibrate", "time", str(HUSKY_BAG), "--signal-a", IMU_SPEC, "--signal-b", ODOM_SPEC,
                 "--frame-a", "base_link", "--rig", str(rig_file), "--sensor", "wheel_odom"]) == 0
    after = rig_file.read_text(encoding="utf-8").splitlines(keepends=True)
    offset = load_rig(rig_file).sensor("wheel_odom").time_offset_ns
    assert -420e6 < offset < -360e6
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1
    line = before[changed[0]]
    assert line.lstrip().startswith("wheel_odom:")
    assert after[changed[0]] == line.replace("time_offset_ns: 0}", f"time_offset_ns: {offset}}}")
