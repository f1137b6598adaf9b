"""ModelRuntime: file problems told apart, provider fallback said once, graph cache, IO binding, input checks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from edgefuse.errors import InputDataError, ModelError
from edgefuse.infer import ModelRuntime, inspect_model, load_card
from tests.infer.models import conv_model, write_card


@pytest.fixture
def model(tmp_path: Path) -> Path:
    m = conv_model(tmp_path / "tiny.onnx")
    write_card(m)
    return m


def _runtime(model: Path, tmp_path: Path, **kw: object) -> ModelRuntime:
    return ModelRuntime(model, load_card(model.with_suffix(".yaml")), cache_folder=tmp_path / "cache", **kw)  # type: ignore[arg-type]


def test_not_onnx_truncated_and_old_opset_are_told_apart(tmp_path: Path, model: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_bytes(b"this is a text file, not a model\n")
    with pytest.raises(ModelError, match="is not an ONNX model"):
        inspect_model(text)
    data = model.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ModelError, match="is truncated"):
        ModelRuntime(cut)
    old = conv_model(tmp_path / "old.onnx", opset=5)
    with pytest.raises(ModelError, match="opset 5; ONNX Runtime supports opset 7 and later"):
        ModelRuntime(old)
    future = conv_model(tmp_path / "future.onnx", opset=99)
    rt = ModelRuntime(future, cache=False)
    with pytest.raises(ModelError, match="unsupported opset"):
        rt.start()


def test_sha256_mismatch_is_refused(tmp_path: Path, model: Path) -> None:
    write_card(model, sha="a" * 64)
    with pytest.raises(ModelError, match=r"has sha256 .* says aaaa"):
        ModelRuntime(model, load_card(model.with_suffix(".yaml")))


def test_missing_gpu_provider_falls_back_to_cpu_and_says_why(tmp_path: Path, model: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback is not exercised")
    rt = _runtime(model, tmp_path, providers=["tensorrt", "cuda", "cpu"])
    with caplog.at_level(logging.WARNING, logger="edgefuse.infer"):
        rt.start()
    rep = rt.report()
    assert rep["provider"] == "CPUExecutionProvider"
    assert [s["provider"] for s in rep["skipped_providers"]] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert all("not installed" in s["reason"] for s in rep["skipped_providers"])
    said = [r.getMessage() for r in caplog.records if "CUDAExecutionProvider skipped" in r.getMessage()]
    assert len(said) == 1 and "not installed in this ONNX Runtime build" in said[0]
    assert "CUDAExecutionProvider" in rep["provider_reason"]
    rt.run({"image": np.zeros((1, 3, 64, 96), np.float32)})
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 2  # said once, not per run


def test_graph_cache_is_written_then_used(tmp_path: Path, model: Path) -> None:
    first = _runtime(model, tmp_path)
    first.start()
    assert first.report()["cache_hit"] is False and first.cache_file is not None and first.cache_file.is_file()
    assert first.sha256[:20] in first.cache_file.name and "cpu" in first.cache_file.name
    second = _runtime(model, tmp_path)
    second.start()
    assert second.report()["cache_hit"] is True and second.cache_file == first.cache_file
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 96)).astype(np.float32)
    np.testing.assert_allclose(second.run({"image": x})["prob"], first.run({"image": x})["prob"], atol=1e-5)
    # a damaged cache file is rebuilt, not fatal
    first.cache_file.write_bytes(b"garbage")
    third = _runtime(model, tmp_path)
    third.start()
    assert third.report()["cache_hit"] is False and third.cache_file is not None and third.cache_file.stat().st_size > 7


def test_io_binding_gives_the_same_outputs(tmp_path: Path, model: Path) -> None:
    x = np.random.default_rng(2).uniform(-2, 2, (1, 3, 64, 96)).astype(np.float32)
    plain = _runtime(model, tmp_path, io_binding="off")
    bound = _runtime(model, tmp_path, io_binding="on")
    plain.start()
    bound.start()
    assert bound.report()["io_binding"] is True and plain.report()["io_binding"] is False
    np.testing.assert_array_equal(bound.run({"image": x})["prob"], plain.run({"image": x})["prob"])


def test_bad_inputs_at_run_time_are_refused_and_counted(tmp_path: Path, model: Path) -> None:
    rt = _runtime(model, tmp_path)
    rt.start()
    with pytest.raises(InputDataError, match=r"must have shape \[1, 3, 64, 96\], got \[1, 3, 32, 96\]"):
        rt.run({"image": np.zeros((1, 3, 32, 96), np.float32)})
    with pytest.raises(InputDataError, match="must be float32, got float64"):
        rt.run({"image": np.zeros((1, 3, 64, 96))})
    with pytest.raises(InputDataError, match="model inputs are"):
        rt.run({"img": np.zeros((1, 3, 64, 96), np.float32)})
    x = np.zeros((1, 3, 64, 96), np.float32)
    x[0, 1, 5, 7] = np.nan
    x[0, 2, 9, 9] = np.inf
    with pytest.raises(InputDataError, match="2 NaN/inf"):
        rt.run({"image": x})
    rep = rt.report()
    assert rep["rejected_inputs"] == {"shape": 1, "dtype": 1, "names": 1, "nonfinite": 1}
    assert rep["runs"] == 1  # only the warm-up ran


@pytest.mark.parametrize("spinning", [True, False])
def test_thread_spinning_reaches_the_session(tmp_path: Path, model: Path, spinning: bool) -> None:
    rt = _runtime(model, tmp_path, threads=2, spinning=spinning)
    rt.start()
    opts = rt.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == ("1" if spinning else "0")
    assert opts.intra_op_num_threads == 2 and rt.report()["thread_spinning"] is spinning
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 96)).astype(np.float32)
    assert rt.run({"image": x})["prob"].shape[0] == 1
