"""Dependencies that match the code: every third-party module the packages import is declared — in the core
dependencies when imported at module level by the runtime, in an extra when it is an optional feature — and a
missing extra is refused with one line naming it, never silently."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

from edgefuse.errors import CalibrationError

ROOT = Path(__file__).resolve().parents[1]
#: import name -> distribution name where they differ
DIST = {"cv2": "opencv-python-headless", "ruamel": "ruamel.yaml", "serial": "pyserial", "backports": "backports.zstd",
        "zenoh": "eclipse-zenoh", "rclpy": "ros-rclpy"}
#: standard-library modules newer than the oldest Python we support (imported with a fallback)
NEW_STDLIB = {"compression"}
#: imports that only optional features use (imported lazily, refused with the extra's name when missing)
OPTIONAL = {"open3d": "calib", "matplotlib": "calib", "zenoh": "zenoh", "xxhash": "zenoh", "rclpy": "ros2",
            "distributed": "bench", "dask": "bench", "onnx": "quantize", "torch": "train"}
#: the optional ``train`` extra is for the scripts in models/ only: the runtime packages never import it
TRAIN_ONLY = {"torch"}


def _requirement_names(reqs: list[str]) -> set[str]:
    out = set()
    for r in reqs:
        name = r.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        out.add(name.strip().lower())
    return out


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for base in ("edgefuse", "drivers/edgefuse_drivers", "calibration/edgefuse_calibration", "models"):
        for path in (ROOT / base).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for n in names:
                    top = n.split(".")[0]
                    if (top not in sys.stdlib_module_names and top not in NEW_STDLIB and not top.startswith("edgefuse")
                            and top != "models"):
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _requirement_names(project["dependencies"])
    extras = {k: _requirement_names(v) for k, v in project["optional-dependencies"].items()}
    missing = []
    for module, where in sorted(_third_party_imports().items()):
        dist = DIST.get(module, module).lower()
        if module in OPTIONAL:
            if dist not in extras[OPTIONAL[module]]:
                missing.append(f"{module} (extra {OPTIONAL[module]})")
        elif dist not in core:
            missing.append(f"{module} used in {sorted(where)[:3]}")
    assert missing == []


def test_runtime_packages_never_import_the_training_stack() -> None:
    bad = {m: sorted(w for w in where if not w.startswith("models/"))
           for m, where in _third_party_imports().items() if m in TRAIN_ONLY}
    assert {m: w for m, w in bad.items() if w} == {}


def test_plots_without_matplotlib_name_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from edgefuse_calibration.report import plot_time_offset

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(CalibrationError, match=r"pip install 'edgefuse\[calib\]'"):
        plot_time_offset(tmp_path / "p.png", None, None, None)


def test_ros2_transport_without_rclpy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefuse.errors import TransportError
    from edgefuse.transport.base import open_transport

    monkeypatch.setitem(sys.modules, "rclpy", None)  # import rclpy -> ImportError, find_spec -> None
    with pytest.raises(TransportError, match=r"pip install 'edgefuse\[ros2\]'"):
        open_transport("ros2")
    from edgefuse.transport.ros2 import import_rclpy

    with pytest.raises(TransportError, match=r"pip install 'edgefuse\[ros2\]'"):
        import_rclpy()


def test_every_calibrate_kind_is_listed_whatever_is_installed() -> None:
    import argparse

    from edgefuse_calibration.cli import add_calibrate_parser

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cal = add_calibrate_parser(sub)
    kinds = next(a for a in cal._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(kinds) >= {"time", "intrinsics", "lidar-camera", "register", "imu-camera"}


def test_fleet_without_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefuse.bench.fleet import run_fleet
    from edgefuse.errors import ReplayError

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ReplayError, match=r"pip install 'edgefuse\[bench\]'"):
        run_fleet("radiate_demo", ["a", "b"], workers=2)
