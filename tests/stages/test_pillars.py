"""PointPillars contract end to end in a pipeline, without torch: a real KITTI cloud (tests/data/
kitti_object_3frames, SOURCE.md there) → ``pillars_input`` (our voxelizer) → ``onnx_model`` running a small
ONNX model built with onnx.helper that has the OpenPCDet / CUDA-PointPillars contract (``voxels [N,32,4]``,
``voxel_num [N]``, ``voxel_idxs [N,4]`` → ``cls_preds``, ``box_preds``, ``dir_cls_preds``) → ``pointpillars_decode``
(our Numba decoder) → ``wbf_3d``.

The model scatters each pillar's point count into the head's 248 x 216 feature map (a 2 x 2 block of pillars
per cell) and scores the Car anchor of rotation 0 ``logit = 0.1 * count - 5`` (every other anchor -20), with
zero box residuals and direction logits, so every decoded box is that anchor at a cell whose pillars hold at
least 29 points; the test recomputes the counts from the cloud with numpy and checks the boxes against them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.envelope import Envelope
from edgefuse.infer.card import sha256_of
from edgefuse.msgs.types import PointCloud
from edgefuse.pipeline.config import load_pipeline
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.stages.pillars import PillarsInputStage
from tests.stages._sinks import ListSink

ROOT = Path(__file__).resolve().parents[2]
KITTI = ROOT / "tests" / "data" / "kitti_object_3frames" / "training" / "velodyne"
NY, NX, A, C, B = 248, 216, 6, 3, 2  # OpenPCDet KITTI PointPillars head: 3 classes x 2 rotations, 2 dir bins
RANGE = (0.0, -39.68, -3.0, 69.12, 39.68, 1.0)


def contract_model(path: Path) -> Path:
    """A real ONNX model with the PointPillars contract (see the module docs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w_cls = np.zeros(A * C, np.float32)
    w_cls[0] = 0.1
    b_cls = np.full(A * C, -20.0, np.float32)
    b_cls[0] = -5.0
    consts: dict[str, np.ndarray] = {
              "i2": np.array(2, np.int64), "i3": np.array(3, np.int64), "two": np.array(2, np.int32),
              "nx": np.array(NX, np.int32), "canvas": np.zeros(NY * NX, np.float32),
              "shape": np.array([1, NY, NX, 1], np.int64), "w_cls": w_cls, "b_cls": b_cls,
              "z_box": np.zeros(A * 7, np.float32), "z_dir": np.zeros(A * B, np.float32)}
    nodes = [
        helper.make_node("Gather", ["voxel_idxs", "i2"], ["y"], axis=1),
        helper.make_node("Gather", ["voxel_idxs", "i3"], ["x"], axis=1),
        helper.make_node("Div", ["y", "two"], ["fy"]),
        helper.make_node("Div", ["x", "two"], ["fx"]),
        helper.make_node("Mul", ["fy", "nx"], ["row"]),
        helper.make_node("Add", ["row", "fx"], ["flat32"]),
        helper.make_node("Cast", ["flat32"], ["flat"], to=TensorProto.INT64),
        helper.make_node("Cast", ["voxel_num"], ["count"], to=TensorProto.FLOAT),
        # the points of the pillars are read too, so voxels is a real input: + 0 * sum(voxels)
        helper.make_node("ReduceSum", ["voxels"], ["vsum"], keepdims=0),
        helper.make_node("Mul", ["vsum", "canvas"], ["zero_canvas"]),
        helper.make_node("ScatterElements", ["zero_canvas", "flat", "count"], ["bev"], axis=0, reduction="add"),
        helper.make_node("Reshape", ["bev", "shape"], ["map"]),
        helper.make_node("Mul", ["map", "w_cls"], ["cls_w"]),
        helper.make_node("Add", ["cls_w", "b_cls"], ["cls_preds"]),
        helper.make_node("Mul", ["map", "z_box"], ["box_preds"]),
        helper.make_node("Mul", ["map", "z_dir"], ["dir_cls_preds"]),
    ]
    graph = helper.make_graph(
        nodes, "pointpillars_contract",
        [helper.make_tensor_value_info("voxels", TensorProto.FLOAT, ["N", 32, 4]),
         helper.make_tensor_value_info("voxel_num", TensorProto.INT32, ["N"]),
         helper.make_tensor_value_info("voxel_idxs", TensorProto.INT32, ["N", 4])],
        [helper.make_tensor_value_info("cls_preds", TensorProto.FLOAT, [1, NY, NX, A * C]),
         helper.make_tensor_value_info("box_preds", TensorProto.FLOAT, [1, NY, NX, A * 7]),
         helper.make_tensor_value_info("dir_cls_preds", TensorProto.FLOAT, [1, NY, NX, A * B])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


CARD = """edgefuse_model_card: 1
name: pointpillars_contract_fixture
model: {model}
sha256: {sha}
description: test fixture with the OpenPCDet PointPillars contract (see models/pointpillars/README.md)
inputs:
  - {{name: voxels, edge: Tensor, shape: [N, 32, 4], dtype: float32}}
  - {{name: voxel_num, edge: Tensor, shape: [N], dtype: int32}}
  - {{name: voxel_idxs, edge: Tensor, shape: [N, 4], dtype: int32}}
outputs:
  - {{name: cls_preds, edge: Tensor, shape: [1, 248, 216, 18], dtype: float32}}
  - {{name: box_preds, edge: Tensor, shape: [1, 248, 216, 42], dtype: float32}}
  - {{name: dir_cls_preds, edge: Tensor, shape: [1, 248, 216, 12], dtype: float32}}
training: {{data: "none (hand-set weights, a test fixture)", licence: Apache-2.0}}
"""

PIPELINE = """edgefuse_pipeline: 1
name: pointpillars_contract
inputs:
  lidar: {topic: /kitti/velodyne, type: PointCloud}
sync:
  policy: each
  inputs: [lidar]
stages:
  - name: pillars
    type: pillars_input
    in: {cloud: lidar}
    params: {max_pillars: 40000}
  - name: net
    type: onnx_model
    in: {voxels: pillars.voxels, voxel_num: pillars.voxel_num, voxel_idxs: pillars.voxel_idxs}
    params: {model: pp.onnx}
  - name: decode
    type: pointpillars_decode
    in: {cls_preds: net.cls_preds, box_preds: net.box_preds, dir_cls_preds: net.dir_cls_preds}
    params: {max_candidates: 100000}
  - name: fuse
    type: wbf_3d
    in: {a: decode.detections}
    params: {iou_thr: 0.1}
outputs:
  - {topic: /objects/raw, from: decode.detections}
  - {topic: /objects, from: fuse.detections}
"""


def _cloud(name: str, stamp_ns: int) -> PointCloud:
    raw = np.fromfile(KITTI / name, dtype=np.float32).reshape(-1, 4)
    pts = np.zeros(raw.shape[0], np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")]))
    for j, k in enumerate(("x", "y", "z", "intensity")):
        pts[k] = raw[:, j]
    return PointCloud(stamp_ns, "velodyne", pts)


def _expected_counts(cloud: PointCloud) -> np.ndarray:
    """Points per feature cell (248 x 216), each pillar capped at 32 points, computed with numpy."""
    p = cloud.points  # cells as the voxelizer (and SECOND) computes them: floor((p - min) / size) in float32
    x, y, z = (p[k].astype(np.float32) for k in ("x", "y", "z"))
    f32 = np.float32
    ix = np.floor((x - f32(RANGE[0])) / f32(0.16)).astype(np.int64)
    iy = np.floor((y - f32(RANGE[1])) / f32(0.16)).astype(np.int64)
    iz = np.floor((z - f32(RANGE[2])) / f32(4.0)).astype(np.int64)
    ok = (ix >= 0) & (ix < 432) & (iy >= 0) & (iy < 496) & (iz == 0)
    per_pillar = np.bincount(iy[ok] * 432 + ix[ok], minlength=496 * 432).reshape(496, 432)
    capped: np.ndarray = np.minimum(per_pillar, 32)
    out: np.ndarray = capped.reshape(NY, 2, NX, 2).sum(axis=(1, 3))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[Any], list[PointCloud]]:
    tmp = tmp_path_factory.mktemp("pp")
    model = contract_model(tmp / "pp.onnx")
    (tmp / "pp.yaml").write_text(CARD.format(model=model.name, sha=sha256_of(model)))
    (tmp / "pipe.yaml").write_text(PIPELINE)
    sink = ListSink()
    runner = PipelineRunner(load_pipeline(tmp / "pipe.yaml"), [sink])
    runner.start()
    clouds = [_cloud(name, (k + 1) * 100_000_000) for k, name in enumerate(("000000.bin", "000001.bin"))]
    for c in clouds:
        runner.feed(Envelope("/kitti/velodyne", c.stamp_ns, c.stamp_ns, c, "sensor_msgs/msg/PointCloud2"))
    runner.finish()
    return runner.report(), sink.items, clouds


def test_every_stage_ran_without_errors(run: tuple[dict[str, Any], list[Any], list[Any]]) -> None:
    report, items, _ = run
    for name in ("pillars", "net", "decode", "fuse"):
        assert report["stages"][name]["count"] == 2, name
        assert report["stages"][name]["errors"] == 0, (name, report["stages"][name]["first_errors"])
    pillars = report["stages"]["pillars"]["details"]
    assert pillars["dropped_pillars"] == 0 and pillars["points_outside"] > 0  # KITTI sees behind the car too
    assert report["stages"]["net"]["details"]["rejected_inputs"] == {}
    assert sorted({t for t, _, _ in items}) == ["/objects", "/objects/raw"]


def test_decoded_boxes_are_the_anchors_of_the_dense_cells(run: tuple[dict[str, Any], list[Any], list[Any]]) -> None:
    _, items, clouds = run
    raw = [p for t, _, p in items if t == "/objects/raw"]
    for dets, cloud in zip(raw, clouds, strict=True):
        counts = _expected_counts(cloud)
        want = np.argwhere(counts >= 29)  # 0.1 * c - 5 >= logit(0.1) = -2.197
        boxes = dets.boxes
        assert dets.frame_id == "velodyne" and dets.stamp_ns == cloud.stamp_ns
        assert len(boxes) == len(want) > 20
        assert (boxes["label"] == 0).all()  # Car
        np.testing.assert_allclose(boxes["l"], 3.9, rtol=1e-5)
        np.testing.assert_allclose(boxes["w"], 1.6, rtol=1e-5)
        np.testing.assert_allclose(boxes["z"], -1.78 + 1.56 / 2, atol=1e-5)
        # anchor centres: x_min .. x_max in nx steps (OpenPCDet align_center=False)
        cx = np.rint((boxes["x"] - RANGE[0]) / ((RANGE[3] - RANGE[0]) / (NX - 1))).astype(int)
        cy = np.rint((boxes["y"] - RANGE[1]) / ((RANGE[4] - RANGE[1]) / (NY - 1))).astype(int)
        got_counts = counts[cy, cx]
        expect_score = 1.0 / (1.0 + np.exp(-(0.1 * got_counts - 5.0)))
        np.testing.assert_allclose(boxes["score"], expect_score, atol=1e-5)
        assert sorted(zip(cy.tolist(), cx.tolist(), strict=True)) == sorted(map(tuple, want.tolist()))
        assert (np.diff(boxes["score"]) <= 0).all()  # sorted by score


def test_wbf_merges_the_overlapping_anchors(run: tuple[dict[str, Any], list[Any], list[Any]]) -> None:
    _, items, _ = run
    raw = [p for t, _, p in items if t == "/objects/raw"]
    fused = [p for t, _, p in items if t == "/objects"]
    for r, f in zip(raw, fused, strict=True):
        assert 0 < len(f) < len(r) / 2  # neighbouring cells 0.32 m apart: 3.9 m boxes overlap
        assert (f.boxes["label"] == 0).all() and np.isfinite(f.boxes["x"]).all()
        assert f.boxes["score"].max() <= r.boxes["score"].max() + 1e-6


def test_empty_cloud_gives_one_empty_pillar() -> None:
    stage = PillarsInputStage("p", {})
    stage.start()
    empty = PointCloud(0, "velodyne", np.zeros(0, np.dtype([(k, "<f4") for k in ("x", "y", "z", "intensity")])))
    out = stage.process({"cloud": empty}, 0)
    assert out["voxels"].data.shape == (1, 32, 4) and out["voxel_num"].data.tolist() == [0]
    assert out["voxel_idxs"].data.dtype == np.int32 and stage.report() == {
        "points_outside": 0, "dropped_pillars": 0, "dropped_points": 0, "empty_clouds": 1}
