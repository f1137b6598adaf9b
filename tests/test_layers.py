"""Dependencies point one way (ARCHITECTURE.md): no module of a lower layer imports one of a higher layer,
lazy imports inside functions included, and the core never imports the drivers or calibration packages."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgefuse"

#: layer of each top-level module/package of edgefuse; a module may import its own layer or lower ones.
LAYERS: dict[str, int] = {
    "__init__": 0, "time": 0, "errors": 0, "envelope": 0, "config": 0, "_jit": 0, "_lazy": 0, "_yaml": 0,
    "_cli_common": 0, "_kernels_linalg": 0,
    "msgs": 1, "transport": 1,
    "rig": 2, "sync": 2, "fusion": 2, "objects": 2, "estimation": 2, "bag": 2, "infer": 2,
    "sources": 3, "sinks": 3, "stages": 3, "convert": 3,
    "pipeline": 4,
    "replay": 5, "node": 5, "record": 5, "bench": 5, "quantize": 5,
    "cli": 6,
}


def _top(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def _violations() -> list[str]:
    bad: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = _top(path)
        assert top in LAYERS, f"{path}: add '{top}' to LAYERS (and to ARCHITECTURE's picture)"
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] in {"edgefuse_drivers", "edgefuse_calibration"}:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module} (the core never imports it)")
            elif parts[0] == "edgefuse" and len(parts) > 1:
                target = parts[1]
                if target in LAYERS and LAYERS[target] > LAYERS[top]:
                    bad.append(f"{path.relative_to(ROOT)}:{line} ({top}, layer {LAYERS[top]}) imports {module} "
                               f"(layer {LAYERS[target]})")
    return bad


def test_no_lower_layer_imports_a_higher_one() -> None:
    assert _violations() == []


def test_the_check_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: a lazy upward import inside a function is found."""
    pkg = tmp_path / "edgefuse"
    (pkg / "msgs").mkdir(parents=True)
    (pkg / "msgs" / "bad.py").write_text("def f():\n    from edgefuse.pipeline import runner\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations() == ["edgefuse/msgs/bad.py:2 (msgs, layer 1) imports edgefuse.pipeline (layer 4)"]


def test_calibration_does_not_import_the_cli_module() -> None:
    cal = ROOT / "calibration" / "edgefuse_calibration"
    found = [f"{p.relative_to(ROOT)}:{line}" for p in sorted(cal.rglob("*.py")) for line, m in _imports(p)
             if m == "edgefuse.cli" or m.startswith("edgefuse.cli.")]
    assert found == []
