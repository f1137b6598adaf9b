"""The onnx_model stage in a pipeline: validate errors with file and line, and a real replay of the demo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edgefuse.errors import Problem
from edgefuse.pipeline.config import check_pipeline, load_pipeline
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.sources import open_source
from tests.infer.models import DEMO, conv_model, demo_pipeline, write_card


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _problems(path: Path) -> list[Problem]:
    _, problems = check_pipeline(path, check_bag=True)
    return problems


def test_a_matching_model_validates_and_its_ports_are_the_cards(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model)
    config = load_pipeline(demo_pipeline(tmp_path, model))
    net = next(s for s in config.stages if s.name == "net")
    assert net.input_ports == {"image": "Image"} and net.output_ports == {"prob": "Image"}
    assert config.outputs[0].type == "Image"


def test_edge_of_the_wrong_type_is_an_error_at_its_line(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model)
    pipe = demo_pipeline(tmp_path, model, wire="lidar")
    problems = _problems(pipe)
    assert [(p.file, p.line) for p in problems] == [(str(pipe), _line(pipe, "in: {image: lidar}"))]
    assert "type mismatch on edge lidar -> net.image: PointCloud is not Image" in problems[0].message


def test_model_that_does_not_match_its_card_is_an_error_at_the_stage(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx", height=32, width=32)  # the card says 64x96
    write_card(model)
    pipe = demo_pipeline(tmp_path, model)
    problems = _problems(pipe)
    assert len(problems) == 1 and problems[0].line == _line(pipe, "params: {model: tiny.onnx")
    assert "does not match its card" in problems[0].message
    assert "input 'image': card shape [1, 3, 64, 96], model shape [1, 3, 32, 32]" in problems[0].message


def test_card_problems_come_with_the_cards_file_and_line(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    card = write_card(model)
    card.write_text(card.read_text().replace("encoding: rgb8", "encoding: mono8"))
    problems = _problems(demo_pipeline(tmp_path, model))
    assert len(problems) == 1
    assert f"{card}:{_line(card, 'encoding: mono8')}: inputs[0]: encoding mono8 has 1 channel(s) but the shape's " \
           "C axis is 3" in problems[0].message


def test_not_onnx_model_file_is_a_validate_error(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model)
    model.write_bytes(b"<html>not found</html>")
    write_card(model)  # the card's sha256 is the bad file's: the content check must still refuse it
    problems = _problems(demo_pipeline(tmp_path, model))
    assert len(problems) == 1 and "is not an ONNX model" in problems[0].message


def test_frame_and_resolution_are_checked_against_the_rig(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model, resize=None, frame="radar")
    pipe = demo_pipeline(tmp_path, model, wire="decode.image")
    assert _problems(pipe) == []  # a stage output carries no frame known at load time
    text = pipe.read_text().replace("in: {image: decode.image}", "in: {image: camera_raw}")
    text = text.replace("inputs:\n", "inputs:\n  camera_raw: {topic: /zed_left/image_raw, type: Image, sensor: "
                                     "zed_left}\n")
    pipe.write_text(text)
    messages = [p.message for p in check_pipeline(pipe)[1]]
    assert any("expects frame 'radar' but the edge wired to it is in frame 'zed_left'" in m for m in messages)
    assert any("takes 96x64 images without resize, but camera 'zed_left' gives" in m for m in messages)


def test_replaying_the_demo_runs_the_model_on_every_pair(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model)
    config = load_pipeline(demo_pipeline(tmp_path, model, stage_params=", threads: 1"))
    runner = PipelineRunner(config, [])
    net = runner.stages[1]
    with open_source(DEMO, on_error="skip") as source:
        runner.start()
        frames = []
        for env in source.envelopes([s.topic for s in config.inputs.values()]):
            runner.feed(env)
            if env.topic == "/zed_left/image_raw/compressed":
                frames.append(env.payload)
        runner.finish()
    report = runner.report()
    details = report["stages"]["net"]["details"]
    assert details["provider"] == "CPUExecutionProvider" and details["threads"] == 1
    assert details["runs"] >= 25  # ~32 LiDAR/camera pairs in the demo (+1 warm-up)
    # the stage's output for a frame equals ONNX Runtime on an OpenCV-preprocessed tensor
    jpeg = frames[3]
    bgr = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    ref_in = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32), (96, 64))
    ref_in = ((ref_in / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32)
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, {"image": ref_in.transpose(2, 0, 1)[None]})[0]
    from edgefuse.msgs.types import ImageData

    decoded = ImageData(jpeg.stamp_ns, jpeg.frame_id, "bgr8", bgr)
    out = net.process({"image": decoded}, jpeg.stamp_ns)["prob"]
    assert out.encoding == "32FC1" and out.data.shape == (64, 96) and out.frame_id == jpeg.frame_id
    np.testing.assert_allclose(out.data, ref[0, 0], atol=2e-3)


def test_nan_image_from_upstream_is_counted_not_fatal(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model)
    config = load_pipeline(demo_pipeline(tmp_path, model))
    stage = PipelineRunner(config, []).stages[1]
    stage.start()
    from edgefuse.errors import InputDataError
    from edgefuse.msgs.types import ImageData

    img = np.full((20, 30, 3), np.nan, np.float32)
    with pytest.raises(InputDataError, match="NaN/inf"):
        stage.process({"image": ImageData(1, "zed_left", "32FC3", img)}, 1)
    details = stage.report()
    assert details is not None and details["rejected_inputs"] == {"nonfinite": 1}


def test_provider_params_are_validated_and_reported(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    write_card(model)
    pipe = demo_pipeline(tmp_path, model, stage_params=", precision: int8")
    problems = _problems(pipe)
    assert len(problems) == 1 and "precision int8 needs a QDQ-quantized model" in problems[0].message
    pipe = demo_pipeline(tmp_path, model, stage_params=", precision: fp64, cudnn_conv_algo_search: fastest")
    messages = " ".join(p.message for p in _problems(pipe))
    assert "precision" in messages and "fp64" in messages and "fastest" in messages
    pipe = demo_pipeline(tmp_path, model, stage_params=", precision: fp32, device_id: 1, gpu_mem_limit_mb: 512, "
                                                       "cudnn_conv_algo_search: exhaustive, threads: 1")
    assert _problems(pipe) == []
    stage = PipelineRunner(load_pipeline(pipe), []).stages[1]
    from edgefuse.stages.onnx_model import OnnxModelStage

    assert isinstance(stage, OnnxModelStage)
    s = stage.runtime.settings
    assert (s.precision, s.device_id, s.gpu_mem_limit_mb, s.cudnn_conv_algo_search) == ("fp32", 1, 512, "exhaustive")
    stage.start()
    details = stage.report()
    assert details is not None and details["precision"] == "fp32"
    assert details["trt_flags"] == {"fp16": False, "int8": False}
    assert details["nodes"]["by_provider"] == {"CPUExecutionProvider": details["nodes"]["profiled"]}
