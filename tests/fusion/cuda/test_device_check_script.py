"""``bench/device_check.sh --dry-run`` runs end to end without a GPU (CUDA simulator, tiny clouds) and
writes its JSON and summary, with every kernel agreeing with the CPU.  Slow (about 30 s): opt-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_device_check_dry_run(tmp_path: Path) -> None:
    env = {**os.environ, "EDGEFUSE_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "bench/device_check.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=480, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["cuda_status"]["available"] is True
    assert [k for k, s in report["steps"].items() if not s["ok"]] == []
    assert len(report["kernels"]) == 12
    for entry in report["kernels"].values():
        assert all(v is True for k, v in entry["agreement"].items() if isinstance(v, bool)), entry
        assert entry["cuda_device_allocations_steady"] == 0
        assert {"p50_ms", "p99_ms"} <= set(entry["cuda"]["with_copies"])
    assert "failed steps: none" in (tmp_path / "device_check.txt").read_text()
