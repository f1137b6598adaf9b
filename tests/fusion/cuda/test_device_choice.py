"""Device choice without a GPU: ``auto`` runs on the CPU and says why, ``cuda`` falls back with one log
line and a report entry, a CUDA failure at run time falls back too; the buffer pool reuses its arrays.

This process imports the real ``numba.cuda`` (no simulator): on a machine without a GPU/driver it is
unavailable, which is the case these tests are about (skipped where a GPU is usable)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgefuse.errors import ParameterError, PipelineError
from edgefuse.fusion.cuda import BufferPool, cuda_status, resolve_device
from edgefuse.stages._device import StageDevice
from edgefuse.stages.voxel import BevGridStage

no_gpu = pytest.mark.skipif(cuda_status()[0], reason="a usable CUDA GPU is present")


@no_gpu
def test_auto_and_cuda_resolve_to_cpu_with_the_reason() -> None:
    ok, why = cuda_status()
    assert ok is False and why
    device, reason = resolve_device("auto")
    assert device == "cpu" and why in reason
    assert resolve_device("cuda")[0] == "cpu"
    assert resolve_device("cpu") == ("cpu", "device: cpu requested")
    with pytest.raises(ParameterError, match="device must be one of"):
        resolve_device("gpu")


@no_gpu
def test_stage_asking_for_cuda_logs_one_line_reports_and_runs_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    from edgefuse.msgs.types import PointCloud

    with caplog.at_level(logging.WARNING, logger="edgefuse.stages"):
        stage = BevGridStage("bev", {"device": "cuda", "x_range": [0, 4], "y_range": [0, 4], "resolution_m": 1.0,
                                     "channels": ["density"], "density_log_norm": 0})
    lines = [r for r in caplog.records if "stage 'bev'" in r.getMessage()]
    assert len(lines) == 1 and "running on cpu" in lines[0].getMessage()
    report = stage.report()
    assert report is not None and report["device"]["device"] == "cpu" and report["device"]["requested"] == "cuda"
    stage.start()
    pts = np.zeros(3, dtype=[("x", np.float32), ("y", np.float32), ("z", np.float32)])
    pts["x"] = [0.5, 0.5, 3.5]
    out = stage.process({"cloud": PointCloud(1, "lidar", pts, 1, 3, True)}, 1)
    assert out["image"].data[0, 0, 0] == 2 and out["image"].data[0, 3, 0] == 1


def test_device_parameter_is_checked() -> None:
    with pytest.raises(PipelineError, match="device"):
        BevGridStage("bev", {"device": "gpu"})


def test_a_cuda_failure_at_run_time_falls_back_once(caplog: pytest.LogCaptureFixture) -> None:
    dev = StageDevice("s", "cpu")
    dev.device = "cuda"  # as if CUDA had been usable at start
    calls: list[str] = []
    rebuilt: list[bool] = []

    def call() -> int:
        calls.append(dev.device)
        if dev.device == "cuda":
            raise MemoryError("out of device memory")  # what numba-cuda raises is a CudaAPIError
        return 7

    with caplog.at_level(logging.WARNING, logger="edgefuse.stages"):
        assert dev.run(call, lambda: rebuilt.append(True)) == 7
        assert dev.run(call, lambda: rebuilt.append(True)) == 7
    assert calls == ["cuda", "cpu", "cpu"] and rebuilt == [True]
    assert [r.getMessage() for r in caplog.records if "stage 's'" in r.getMessage()] == [
        "stage 's': device: cuda failed at run time (MemoryError: out of device memory), running on cpu"]
    assert dev.report()["fallbacks"] == 1 and dev.report()["device"] == "cpu"


def test_input_errors_are_not_taken_for_cuda_failures() -> None:
    dev = StageDevice("s", "cpu")
    dev.device = "cuda"

    def call() -> None:
        raise ParameterError("bad cloud")

    with pytest.raises(ParameterError):
        dev.run(call, lambda: None)
    assert dev.device == "cuda" and dev.fallbacks == 0


def test_buffer_pool_reuses_and_grows_geometrically() -> None:
    pool = BufferPool(allocate=np.empty)
    a = pool.get("pts", 100, (3,), np.float32)
    assert a.shape == (100, 3) and pool.allocations == 1
    assert pool.get("pts", 100, (3,), np.float32) is a
    assert pool.get("pts", 40, (3,), np.float32) is a  # smaller: the same array (slice it)
    assert pool.allocations == 1
    b = pool.get("pts", 101, (3,), np.float32)
    assert b.shape == (200, 3) and pool.allocations == 2  # grown to twice, not to 101
    pool.get("pts", 150, (3,), np.float32)
    assert pool.allocations == 2
    pool.get("pts", 10, (3,), np.float64)  # another dtype under that name: replaced
    assert pool.allocations == 3 and pool.nbytes == 10 * 3 * 8 and len(pool) == 1
