from __future__ import annotations

from pathlib import Path

from edgefuse.pipeline.config import check_pipeline

PIPELINE = """\
edgefuse_pipeline: 1
inputs:
  cam_dets: {topic: /cam/dets, type: Detections2D}
  lidar_dets: {topic: /lidar/dets, type: Detections3D}
sync: {policy: approximate}
stages:
  - {name: nms1, type: nms, in: {detections: cam_dets}}
  - {name: fuse, type: wbf, in: {a: nms1.detections}}
  - {name: fuse3d, type: wbf_3d, in: {a: lidar_dets}}
  - {name: tracker, type: track, in: {detections: fuse3d.detections}}
outputs:
  - {topic: /fused, from: fuse.detections}
  - {topic: /tracks, from: tracker.tracks}
"""


def test_object_stages_wire_with_optional_ports(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    cfg, problems = check_pipeline(path)
    assert problems == [], [str(p) for p in problems]
    assert cfg is not None
    assert [o.type for o in cfg.outputs] == ["Detections2D", "Tracks"]


def test_object_edge_type_mismatch_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.replace("in: {a: lidar_dets}", "in: {a: cam_dets}"))
    _, problems = check_pipeline(path)
    assert any("Detections2D is not Detections3D" in p.message for p in problems)
