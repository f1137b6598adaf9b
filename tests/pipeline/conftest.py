from __future__ import annotations

from pathlib import Path

import pytest

RIG = """\
edgefuse_rig: 1
base_frame: base_link
frames:
  - parent: base_link
    child: velodyne
    translation: [0.0, 0.0, 1.8]
    rotation: {rpy_deg: [0.0, 0.0, 0.0]}
  - parent: velodyne
    child: cam
    translation: [0.0, 0.0, -0.1]
    rotation: {matrix: [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]}  # camera z forward = velodyne x
cameras:
  cam:
    frame_id: cam
    model: pinhole
    width: 64
    height: 48
    K: [[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]]
    D: []
sensors:
  lidar: {frame_id: velodyne, topic: /lidar, kind: lidar, time_offset_ns: 0}
"""

PIPELINE = """\
edgefuse_pipeline: 1
name: tiny
rig: rig.yaml
inputs:
  lidar: {topic: /lidar, type: PointCloud, sensor: lidar}
  camera: {topic: /cam/image, type: Image, sensor: cam}
sync:
  policy: approximate
  params: {queue_size: 5, max_interval_ms: 60}
stages:
  - name: project
    type: lidar_camera_projection
    in: {cloud: lidar, image: camera}
    params: {camera: cam, min_depth_m: 0.5}
    budget_ms: 40
outputs:
  - {topic: /out/depth, from: project.depth}
  - {topic: /out/colored, from: project.colored_cloud}
budgets:
  end_to_end_ms: 50
"""


@pytest.fixture
def tiny_pipeline(tmp_path: Path) -> Path:
    (tmp_path / "rig.yaml").write_text(RIG)
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path
