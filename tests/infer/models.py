"""Small real ONNX models built with onnx.helper, and their cards (shared by the inference tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.infer.card import sha256_of

DEMO = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo"


def conv_model(path: Path, *, opset: int = 13, height: int | str = 64, width: int | str = 96, seed: int = 0) -> Path:
    """A two-layer conv net: ``image`` (1, 3, H, W) float32 → ``prob`` (1, 1, H, W) = sigmoid(conv1x1(relu(
    conv3x3(image))))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((1, 8, 1, 1)) * 0.5).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
        helper.make_node("Sigmoid", ["c2"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, height, width])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_card(model: Path, *, resize: tuple[int, int] | None = (64, 96), frame: str | None = None,
               extra: str = "", shape_hw: tuple[Any, Any] = (64, 96), sha: str | None = None) -> Path:
    """The card of :func:`conv_model`: rgb8 image, scale 1/255, ImageNet mean/std."""
    h, w = shape_hw
    frame_line = f"\n    frame: {frame}" if frame else ""
    resize_line = f"\n      resize: [{resize[0]}, {resize[1]}]" if resize else ""
    text = f"""edgefuse_model_card: 1
name: tiny_conv
model: {model.name}
sha256: {sha or sha256_of(model)}
inputs:
  - name: image
    edge: Image
    shape: [1, 3, {h}, {w}]
    dtype: float32
    layout: NCHW
    encoding: rgb8{frame_line}
    preprocess:{resize_line}
      scale: 0.00392156862745098
      mean: [0.485, 0.456, 0.406]
      std: [0.229, 0.224, 0.225]
outputs:
  - name: prob
    edge: Image
    shape: [1, 1, {h}, {w}]
    dtype: float32
    layout: NCHW
    encoding: 32FC1
training: {{data: "none (random weights, a test fixture)", licence: Apache-2.0}}
metric: {{name: cosine}}
{extra}"""
    card = model.with_suffix(".yaml")
    card.write_text(text, encoding="utf-8")
    return card


def demo_pipeline(folder: Path, model: Path, *, stage_params: str = "", wire: str = "decode.image") -> Path:
    """The bundled demo's camera + LiDAR pairs, decoded and run through ``model`` (stage ``net``)."""
    text = f"""edgefuse_pipeline: 1
name: infer_demo
rig: {DEMO / 'rig.yaml'}
bag: {DEMO}
inputs:
  lidar:  {{topic: /velodyne_points, type: PointCloud, sensor: lidar}}
  camera: {{topic: /zed_left/image_raw/compressed, type: CompressedImage, sensor: zed_left}}
sync:
  policy: approximate
  inputs: [lidar, camera]
  params: {{queue_size: 8, max_interval_ms: 50}}
stages:
  - name: decode
    type: decode_image
    in: {{image: camera}}
  - name: net
    type: onnx_model
    in: {{image: {wire}}}
    params: {{model: {model.name}{stage_params}}}
outputs:
  - {{topic: /edgefuse/prob, from: net.prob}}
"""
    path = folder / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path
