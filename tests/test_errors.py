"""Every error edgefuse and its sibling packages raise on purpose belongs to the EdgefuseError family, in the
right branch, and public code raises no bare ValueError/TypeError."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import edgefuse_calibration
import edgefuse_drivers
import pytest

import edgefuse
from edgefuse import errors

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (edgefuse, edgefuse_drivers, edgefuse_calibration)


def _modules() -> list[str]:
    names: list[str] = []
    for pkg in PACKAGES:
        names.append(pkg.__name__)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
                  if not m.name.endswith("__main__")]
    return names


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and not issubclass(obj, Warning)
                    and obj.__module__ == name):
                found[f"{name}.{attr}"] = obj
    return found


def test_every_exception_class_is_an_edgefuse_error() -> None:
    outside = [n for n, cls in _defined_exceptions().items() if not issubclass(cls, errors.EdgefuseError)]
    assert outside == []


@pytest.mark.parametrize(("dotted", "family"), [
    ("edgefuse.objects.association.AssociationError", errors.ObjectsError),
    ("edgefuse.objects.boxfusion.FusionError", errors.ObjectsError),
    ("edgefuse.objects.kalman.FilterError", errors.EstimationError),
    ("edgefuse.fusion.painting.FeatureArrayError", errors.MessageError),
    ("edgefuse.fusion.densify.DepthImageError", errors.MessageError),
    ("edgefuse.fusion.deskew.DeskewError", errors.MessageError),
    ("edgefuse.fusion.radar.RadarInputError", errors.MessageError),
    ("edgefuse.fusion.voxel.VoxelParamError", errors.ConfigError),
    ("edgefuse.fusion.projection.CameraParamError", errors.CalibrationError),
])
def test_module_errors_are_in_their_family(dotted: str, family: type[BaseException]) -> None:
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, family), f"{dotted} derives from {[b.__name__ for b in cls.__mro__[1:]]}"


def _bare_raises() -> list[str]:
    bad: list[str] = []
    for base in ("edgefuse", "drivers/edgefuse_drivers", "calibration/edgefuse_calibration"):
        for path in sorted((ROOT / base).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                        and isinstance(node.exc.func, ast.Name)
                        and node.exc.func.id in {"ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError"}):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} raises {node.exc.func.id}")
    return bad


def test_no_bare_builtin_errors_are_raised() -> None:
    """Public wrappers raise edgefuse errors (ParameterError / InputDataError are also ValueError/TypeError)."""
    assert _bare_raises() == []


def test_compat_errors_are_also_builtin_errors() -> None:
    assert issubclass(errors.ParameterError, errors.ConfigError) and issubclass(errors.ParameterError, ValueError)
    assert issubclass(errors.InputDataError, errors.MessageError) and issubclass(errors.InputDataError, TypeError)
