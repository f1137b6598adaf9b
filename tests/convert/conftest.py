"""Fixtures of the convert tests: paths of the copied test data and the KITTI raw generator."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
RADIATE_DATA = DATA / "radiate_tiny_foggy"
RADIATE_SEQ = RADIATE_DATA / "data" / "radiate" / "tiny_foggy"
KITTI_OBJECT = DATA / "kitti_object_3frames"


def _load_fixture_module() -> ModuleType:
    name = "edgefuse_tests_kitti_raw_fixture"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("kitti_raw_fixture.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kitti_raw_module() -> ModuleType:
    """The KITTI raw fixture generator module (tests/convert/kitti_raw_fixture.py)."""
    return _load_fixture_module()


@pytest.fixture
def kitti_raw(tmp_path: Path, kitti_raw_module: ModuleType) -> object:
    """A freshly generated 3-frame KITTI raw drive under tmp_path (see kitti_raw_fixture.py)."""
    return kitti_raw_module.make_kitti_raw(tmp_path / "raw", 3)


@pytest.fixture
def radiate_copy(tmp_path: Path) -> Path:
    """A writable copy of the small RADIATE excerpt (tests/data/radiate_tiny_foggy) in tmp_path."""
    dst = tmp_path / "radiate_tiny_foggy"
    shutil.copytree(RADIATE_DATA, dst)
    for path in dst.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dst
