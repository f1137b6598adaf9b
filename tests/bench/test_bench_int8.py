"""bench/bench_int8.py's latency rows: the FP32 baseline is the faster of the original and the folded model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_int8 import _speedup_row


def test_the_baseline_is_the_faster_fp32() -> None:
    row = _speedup_row({"fp32": [80.0, 82.0, 81.0], "fp32_folded": [66.0, 64.0, 65.0], "int8": [40.0, 41.0, 39.0]})
    assert row["fp32_original"] == 81.0 and row["fp32_folded"] == 65.0 and row["fp32"] == 65.0
    assert row["speedup"] == pytest.approx(65.0 / 40.0) and row["runs"] == 3
    # a folded model that happens to run slower is not the baseline
    row = _speedup_row({"fp32": [60.0], "fp32_folded": [70.0], "int8": [30.0]})
    assert row["fp32"] == 60.0 and row["speedup"] == 2.0
    # no folded model (nothing to fold): the original alone
    row = _speedup_row({"fp32": [60.0], "int8": [40.0]})
    assert row["fp32"] == row["fp32_original"] == 60.0 and row["speedup"] == 1.5
