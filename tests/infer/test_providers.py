"""GPU provider options, fallback of a failing provider, and the per-node provider summary.

No GPU here: a failing TensorRT/CUDA provider is simulated by making ONNX Runtime's session creation raise
TensorRT's engine-build error for the TensorRT provider list, and by a CUDA session whose runs raise the CUDA
driver/runtime mismatch error.  The options are checked as built; that TensorRT accepts them, builds FP16 /
INT8 engines and caches them is for the device check (bench/device_check.sh) on a GPU.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edgefuse.errors import ModelError
from edgefuse.infer import ModelRuntime, load_card
from edgefuse.infer import providers as prov
from edgefuse.infer.providers import ProviderSettings, is_qdq, model_op_types, provider_options, trt_cache_folder
from tests.infer.models import conv_model, write_card

ROOT = Path(__file__).resolve().parents[2]
DEPTH = ROOT / "edgefuse" / "data" / "models" / "depth_completion"
TRT_ERROR = ("[ONNXRuntimeError] : 1 : FAIL : TensorRT EP failed to create engine from network for fused node: "
             "TensorrtExecutionProvider_TRTKernel_graph_main_0\n[TensorRT] builder log follows")
CUDA_ERROR = ("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 35: CUDA driver version is insufficient for CUDA "
              "runtime version ; GPU=0 ; hostname=jetson\nstack trace follows")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    m = conv_model(tmp_path / "tiny.onnx")
    write_card(m)
    return m


def test_qdq_models_are_told_from_float_models() -> None:
    int8_ops = model_op_types(DEPTH / "depth_completion_concat.int8.onnx")
    fp32_ops = model_op_types(DEPTH / "depth_completion_concat.onnx")
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Exp"} <= int8_ops and is_qdq(int8_ops)
    assert {"Conv", "Exp", "Resize"} <= fp32_ops and not is_qdq(fp32_ops)
    assert ModelRuntime(DEPTH / "depth_completion_concat.int8.onnx", cache=False).qdq is True
    assert ModelRuntime(DEPTH / "depth_completion_concat.onnx", cache=False).qdq is False


def test_tensorrt_options_cache_keyed_by_model_ort_gpu_and_precision(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prov, "gpu_identity", lambda device_id=0: f"NVIDIA H100 80GB HBM3-sm90-d{device_id}")
    sha = "ab" * 32
    q = provider_options("TensorrtExecutionProvider", ProviderSettings(), qdq=True, sha256=sha, cache_root=tmp_path)
    assert q["trt_fp16_enable"] == "True" and q["trt_int8_enable"] == "True"
    assert q["trt_int8_use_native_calibration_table"] == "False" and "trt_int8_calibration_table_name" not in q
    assert q["trt_engine_cache_enable"] == "True" and q["trt_timing_cache_enable"] == "True"
    folder = Path(q["trt_engine_cache_path"])
    assert folder.is_dir() and folder.parent == tmp_path / "trt" and q["trt_timing_cache_path"] == str(folder)
    assert folder.name == f"{sha[:20]}-ort{ort.__version__}-NVIDIA_H100_80GB_HBM3-sm90-d0-fp16int8"
    f32 = provider_options("TensorrtExecutionProvider", ProviderSettings(precision="fp32"), qdq=False, sha256=sha,
                           cache_root=tmp_path)
    assert f32["trt_fp16_enable"] == "False" and f32["trt_int8_enable"] == "False"
    assert f32["trt_engine_cache_path"].endswith("-fp32")
    other_gpu = provider_options("TensorrtExecutionProvider", ProviderSettings(device_id=1), qdq=True, sha256=sha,
                                 cache_root=tmp_path)
    assert other_gpu["device_id"] == "1" and other_gpu["trt_engine_cache_path"] != q["trt_engine_cache_path"]
    assert trt_cache_folder(tmp_path, sha, True, False, gpu="Orin").name.endswith("-Orin-fp16")
    no_cache = ProviderSettings(trt_engine_cache=False, trt_workspace_mb=512)
    nocache = provider_options("TensorrtExecutionProvider", no_cache, qdq=False, sha256=sha, cache_root=tmp_path)
    assert "trt_engine_cache_enable" not in nocache and nocache["trt_max_workspace_size"] == str(512 << 20)
    cuda = provider_options("CUDAExecutionProvider", ProviderSettings(
        device_id=2, cudnn_conv_algo_search="exhaustive", gpu_mem_limit_mb=1024,
        arena_extend_strategy="same_as_requested"), qdq=False, sha256=sha, cache_root=tmp_path)
    assert cuda == {"device_id": "2", "cudnn_conv_algo_search": "EXHAUSTIVE", "gpu_mem_limit": str(1 << 30),
                    "arena_extend_strategy": "kSameAsRequested"}
    assert provider_options("CPUExecutionProvider", ProviderSettings(), qdq=True, sha256=sha, cache_root=tmp_path) == {}


def test_int8_needs_a_qdq_model_and_settings_are_checked(model: Path) -> None:
    with pytest.raises(ModelError, match="precision int8 needs a QDQ-quantized model"):
        ModelRuntime(model, settings=ProviderSettings(precision="int8"))
    rt = ModelRuntime(DEPTH / "depth_completion_concat.int8.onnx", cache=False,
                      settings=ProviderSettings(precision="int8"))
    assert rt.report()["trt_flags"] == {"fp16": True, "int8": True}
    with pytest.raises(ModelError, match="cudnn_conv_algo_search must be one of"):
        ProviderSettings(cudnn_conv_algo_search="fastest")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="gpu_mem_limit_mb must be > 0"):
        ProviderSettings(gpu_mem_limit_mb=0)


def test_gpu_identity_is_none_without_a_cuda_driver() -> None:
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA driver")
    prov.gpu_identity.cache_clear()
    assert prov.gpu_identity(0) is None
    assert "-unknown-gpu-" in trt_cache_folder(Path("/x"), "c" * 64, True, False).name


class _Binding:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


class _BrokenCudaSession:
    """A session ONNX Runtime opened on CUDA whose every run fails with the driver/runtime mismatch."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def get_providers(self) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def io_binding(self) -> _Binding:
        return _Binding()

    def run(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError(CUDA_ERROR)

    def run_with_iobinding(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError(CUDA_ERROR)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def broken_gpu(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str]]:
    """ONNX Runtime with TensorRT and CUDA 'installed': TensorRT fails to build its engine, CUDA fails at runs.
    Returns the (providers, optimized_model_filepath) of every session creation."""
    real = ort.InferenceSession
    calls: list[tuple[Any, str]] = []

    def session(path: str, so: Any = None, providers: Any = None, **kw: Any) -> Any:
        calls.append((providers, so.optimized_model_filepath if so is not None else ""))
        first = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        if first == "TensorrtExecutionProvider":
            raise RuntimeError(TRT_ERROR)
        cpu = real(path, so, providers=["CPUExecutionProvider"], **kw)
        return _BrokenCudaSession(cpu) if first == "CUDAExecutionProvider" else cpu

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(prov, "gpu_identity", lambda device_id=0: "Orin-sm87")
    return calls


def test_engine_build_failure_and_driver_mismatch_fall_back_to_cpu(tmp_path: Path, model: Path,
                                                                    broken_gpu: list[tuple[Any, str]],
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    rt = ModelRuntime(model, load_card(model.with_suffix(".yaml")), cache_folder=tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="edgefuse.infer"):
        rt.start()
    rep = rt.report()
    assert rep["provider"] == "CPUExecutionProvider"
    trt, cuda = rep["skipped_providers"]
    assert trt["provider"] == "TensorrtExecutionProvider" and trt["error"] == TRT_ERROR.splitlines()[0]
    assert trt["reason"].startswith("failed to initialize: ")
    assert cuda["provider"] == "CUDAExecutionProvider" and cuda["error"] == CUDA_ERROR.splitlines()[0]
    assert cuda["reason"].startswith("failed at its first run: ")
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "TensorrtExecutionProvider failed" in m]) == 1
    assert len([m for m in lines if "CUDAExecutionProvider failed" in m]) == 1
    assert not any("builder log follows" in m or "stack trace" in m for m in lines)  # first lines only
    # what TensorRT was asked for: FP16, engine + timing cache under the graph cache root, no graph cache
    trt_providers, trt_optimized = broken_gpu[0]
    name, opts = trt_providers[0]
    assert name == "TensorrtExecutionProvider" and opts["trt_fp16_enable"] == "True"
    assert opts["trt_int8_enable"] == "False" and trt_optimized == ""
    assert Path(opts["trt_engine_cache_path"]).parent == tmp_path / "cache" / "trt"
    assert "Orin-sm87-fp16" in opts["trt_engine_cache_path"]
    assert broken_gpu[1][0][0] == ("CUDAExecutionProvider", {
        "device_id": "0", "cudnn_conv_algo_search": "HEURISTIC", "arena_extend_strategy": "kNextPowerOfTwo"})
    # the CPU session serves, with the same outputs as ONNX Runtime on the CPU directly
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 96)).astype(np.float32)
    direct = ModelRuntime(model, cache=False, providers=["cpu"])
    direct.start()
    np.testing.assert_allclose(rt.run({"image": x})["prob"], direct.run({"image": x})["prob"], atol=1e-6)
    assert rt.report()["io_binding"] is False and rt.report()["nodes"]["by_provider"].keys() == {"CPUExecutionProvider"}


def test_failure_at_the_first_real_run_falls_back(tmp_path: Path, broken_gpu: list[tuple[Any, str]],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # symbolic H, W: the warm-up's guessed shapes prove nothing, so the first real frame decides
    model = conv_model(tmp_path / "dyn.onnx", height="h", width="w")
    rt = ModelRuntime(model, cache_folder=tmp_path / "cache", providers=["cuda", "cpu"])
    with caplog.at_level(logging.WARNING, logger="edgefuse.infer"):
        rt.start()
        assert rt.provider == "CUDAExecutionProvider" and rt.report()["skipped_providers"] == []
        x = np.random.default_rng(4).standard_normal((1, 3, 40, 24)).astype(np.float32)
        out = rt.run({"image": x})["prob"]
    assert out.shape == (1, 1, 40, 24) and rt.provider == "CPUExecutionProvider"
    (cuda,) = rt.report()["skipped_providers"]
    assert cuda["provider"] == "CUDAExecutionProvider" and cuda["reason"].startswith("failed at its first run")
    assert len([r for r in caplog.records if "CUDAExecutionProvider failed at its first run" in r.getMessage()]) == 1
    direct = ModelRuntime(model, cache=False, providers=["cpu"], profile_warmup=False)
    np.testing.assert_allclose(out, direct.run({"image": x})["prob"], atol=1e-6)
    assert rt.run({"image": x})["prob"].shape == (1, 1, 40, 24) and rt.report()["runs"] == 3  # warm-up on the CPU + 2


def _optimized_node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("name", ["tiny", "depth_completion_concat.onnx", "depth_completion_concat.int8.onnx"])
def test_every_node_reports_its_provider_and_profiling_stops_after_warmup(
        tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    profiles = tmp_path / "tmp"
    profiles.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(profiles))
    path = model if name == "tiny" else DEPTH / name
    warm = None if name == "tiny" else {"image": np.zeros((1, 3, 64, 96), np.float32),
                                        "sparse_depth": np.zeros((1, 1, 64, 96), np.float32)}
    rt = ModelRuntime(path, cache_folder=tmp_path / "cache")
    rt.start(warm)
    nodes = rt.report()["nodes"]
    assert rt.cache_file is not None
    assert nodes["by_provider"] == {"CPUExecutionProvider": _optimized_node_count(rt.cache_file)}
    assert nodes["profiled"] == len(rt.nodes) > 0 and nodes["outside_provider"] == []
    assert list(profiles.iterdir()) == []  # the profile file and its folder are gone
    assert rt.session.end_profiling() == ""  # profiling already ended: steady-state runs are not profiled
    if warm is not None:
        rt.run(warm)
    assert list(profiles.iterdir()) == []
    # a second start loads the cached optimized graph: the same nodes, the same providers
    again = ModelRuntime(path, cache_folder=tmp_path / "cache")
    again.start(warm)
    assert again.cache_hit and again.nodes == rt.nodes
    off = ModelRuntime(path, cache_folder=tmp_path / "cache", profile_warmup=False)
    off.start(warm)
    assert off.report()["nodes"] is None and off.nodes == {} and list(profiles.iterdir()) == []
