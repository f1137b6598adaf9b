"""Stages point_painting, depth_densify and multi_camera_projection: direct use and pipeline validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.errors import MessageError, PipelineError
from edgefuse.fusion import Projector
from edgefuse.fusion.densify import DepthCompleter
from edgefuse.fusion.painting import paint_points
from edgefuse.fusion.projection import MultiCameraProjector
from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.msgs.types import ImageData
from edgefuse.pipeline.config import check_pipeline
from edgefuse.rig import from_kitti_object, from_nuscenes, save_rig
from edgefuse.stages import stage_class
from tests.fusion.projection_reference import KITTI, load_kitti

NUSCENES = Path(__file__).resolve().parents[1] / "data" / "nuscenes_demo_sample"


def _kitti_rig() -> Any:
    return from_kitti_object(KITTI / "calib" / "000000.txt", image_size=(1224, 370))


def _kitti_cloud() -> Any:
    xyz, _, _, _ = load_kitti("000000")
    intensity = np.arange(xyz.shape[0], dtype=np.float32)
    return pointcloud_from_arrays(5, "velodyne", x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], intensity=intensity)


def _rig_projector(rig: Any) -> Projector:
    cam = rig.camera("cam2")
    return Projector.from_camera(cam, np.asarray(rig.transform(cam.frame_id, "velodyne").matrix))


def test_point_painting_stage_matches_api() -> None:
    rig = _kitti_rig()
    cls = stage_class("point_painting")
    assert cls is not None
    stage = cls("paint", {"camera": "cam2", "fill": -1.0}, rig)
    stage.input_frames = {"cloud": "velodyne"}
    stage.start()
    cloud = _kitti_cloud()
    rng = np.random.default_rng(1)
    scores = rng.random((370, 1224, 3), dtype=np.float32)
    out = stage.process({"cloud": cloud, "scores": ImageData(5, "cam2", "32FC3", scores)}, 5)["painted"]
    assert out.points.dtype.names == ("x", "y", "z", "intensity", "score_0", "score_1", "score_2")
    assert out.frame_id == "velodyne" and out.points.shape == cloud.points.shape
    projection = _rig_projector(rig).project(np.stack([cloud.points[f] for f in "xyz"], axis=1))
    expected = paint_points(projection, scores, fill=-1.0)
    got = np.stack([out.points[f"score_{i}"] for i in range(3)], axis=1)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(out.points["intensity"], cloud.points["intensity"])
    assert np.count_nonzero(got[:, 0] != -1.0) == 20_259  # every point in view (see test_projection)
    # Named fields and a mono8 image; a wrong-size image is a clear MessageError.
    named = cls("paint2", {"camera": "cam2", "field_names": ["road"]}, rig)
    named.start()
    mono = (scores[:, :, 0] * 255).astype(np.uint8)
    painted = named.process({"cloud": cloud, "scores": ImageData(5, "cam2", "mono8", mono)}, 5)["painted"]
    assert painted.points.dtype.names[-1] == "road"
    with pytest.raises(MessageError, match=r"3 channel\(s\) but field_names names 1"):
        named.process({"cloud": cloud, "scores": ImageData(5, "cam2", "32FC3", scores)}, 5)
    with pytest.raises(MessageError, match="W x H"):
        named.process({"cloud": cloud, "scores": ImageData(5, "cam2", "mono8", mono[:100])}, 5)
    with pytest.raises(PipelineError, match="unique"):
        cls("bad", {"camera": "cam2", "field_names": ["a", "a"]}, rig)
    with pytest.raises(PipelineError, match="not in the rig"):
        cls("bad", {"camera": "nope"}, rig)


def test_depth_densify_stage() -> None:
    rig = _kitti_rig()
    cls = stage_class("depth_densify")
    assert cls is not None
    stage = cls("dense", {"camera": "cam2"}, rig)
    stage.start()
    cloud = _kitti_cloud()
    sparse = _rig_projector(rig).project(np.stack([cloud.points[f] for f in "xyz"], axis=1), copy=True).depth
    out = stage.process({"depth": ImageData(5, "cam2", "32FC1", sparse)}, 5)["depth"]
    assert out.encoding == "32FC1" and out.frame_id == "cam2"
    np.testing.assert_array_equal(out.data, DepthCompleter(370, 1224).complete(sparse))
    with pytest.raises(MessageError, match="32FC1"):
        stage.process({"depth": ImageData(5, "cam2", "mono8", np.zeros((370, 1224), np.uint8))}, 5)
    with pytest.raises(MessageError, match="shape"):
        stage.process({"depth": ImageData(5, "cam2", "32FC1", sparse[:10])}, 5)
    # Size from the first image when neither camera nor width/height is given.
    lazy = cls("lazy", {}, None)
    lazy.start()
    assert lazy.process({"depth": ImageData(5, "c", "32FC1", sparse)}, 5)["depth"].data.shape == (370, 1224)
    with pytest.raises(PipelineError, match="odd"):
        cls("bad", {"dilation_size": 4}, None)
    with pytest.raises(PipelineError, match="both"):
        cls("bad", {"width": 10}, None)


def test_multi_camera_projection_stage() -> None:
    rig = from_nuscenes(NUSCENES / "calib_and_boxes_from_pkl.json")
    cameras = ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_BACK"]
    cls = stage_class("multi_camera_projection")
    assert cls is not None
    stage = cls("multi", {"cameras": cameras}, rig)
    stage.input_frames = {"cloud": "LIDAR_TOP"}
    stage.start()
    xyz = np.fromfile(next(NUSCENES.glob("*LIDAR_TOP*.pcd.bin")), np.float32).reshape(-1, 5)[:, :3]
    cloud = pointcloud_from_arrays(7, "LIDAR_TOP", x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2])
    out = stage.process({"cloud": cloud}, 7)["assigned"].points
    expected = MultiCameraProjector.from_rig(rig, cameras, "LIDAR_TOP").project(np.ascontiguousarray(xyz))
    np.testing.assert_array_equal(out["camera"], expected.camera)
    np.testing.assert_array_equal(out["u"], expected.uv[:, 0])
    assert set(np.unique(out["camera"]).tolist()) == {-1, 0, 1, 2}
    with pytest.raises(PipelineError, match="unique"):
        cls("bad", {"cameras": ["CAM_FRONT", "CAM_FRONT"]}, rig)


PIPELINE = """\
edgefuse_pipeline: 1
name: painting
rig: rig.yaml
inputs:
  lidar: {topic: /lidar, type: PointCloud, frame_id: velodyne}
  scores: {topic: /scores, type: Image, frame_id: cam2}
sync:
  policy: approximate
  params: {queue_size: 5, max_interval_ms: 60}
stages:
  - name: paint
    type: point_painting
    in: {cloud: lidar, scores: scores}
    params: {camera: %(camera)s, field_names: [car, road], fill: .nan}
  - name: project
    type: lidar_camera_projection
    in: {cloud: lidar}
    params: {camera: cam2}
  - name: dense
    type: depth_densify
    in: {depth: project.depth}
    params: {camera: cam2, large_hole_size: %(hole)s}
  - name: multi
    type: multi_camera_projection
    in: {cloud: lidar}
    params: {cameras: [cam2, cam3]}
outputs:
  - {topic: /painted, from: paint.painted}
  - {topic: /dense, from: dense.depth}
  - {topic: /assigned, from: multi.assigned}
"""


def test_pipeline_validation(tmp_path: Path) -> None:
    save_rig(_kitti_rig(), tmp_path / "rig.yaml")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE % {"camera": "cam2", "hole": 31})
    config, problems = check_pipeline(path)
    assert problems == [] and config is not None
    path.write_text(PIPELINE % {"camera": "cam9", "hole": "big"})
    _, problems = check_pipeline(path)
    text = "\n".join(str(p) for p in problems)
    assert "camera 'cam9' is not in the rig" in text
    assert "large_hole_size" in text
