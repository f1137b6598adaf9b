"""Issue 5 fix 2: the object stages' rejection counts reach ``runner.report()`` (stages.<name>.details)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefuse.envelope import Envelope
from edgefuse.objects import detections_2d, detections_3d
from edgefuse.pipeline import PipelineRunner, load_pipeline

MS = 1_000_000
D2 = "vision_msgs/msg/Detection2DArray"
D3 = "vision_msgs/msg/Detection3DArray"

PIPELINE = """\
edgefuse_pipeline: 1
name: objects_report
inputs:
  cam_a: {topic: /cam/a, type: Detections2D}
  cam_b: {topic: /cam/b, type: Detections2D}
  lidar_a: {topic: /lidar/a, type: Detections3D}
  lidar_b: {topic: /lidar/b, type: Detections3D}
  tracked: {topic: /tracked, type: Detections3D}
sync: {policy: each, params: {allow_out_of_order: true}}
stages:
  - {name: nms1, type: nms, in: {detections: cam_a}}
  - {name: fuse, type: wbf, in: {a: cam_a, b: cam_b}}
  - {name: fuse3d, type: wbf_3d, in: {a: lidar_a, b: lidar_b}}
  - {name: tracker, type: track, in: {detections: tracked}, params: {min_hits: 1}}
outputs:
  - {topic: /nms, from: nms1.detections}
  - {topic: /fused, from: fuse.detections}
  - {topic: /fused3d, from: fuse3d.detections}
  - {topic: /tracks, from: tracker.tracks}
"""

GOOD2 = [10.0, 10.0, 50.0, 60.0]
GOOD3 = [5.0, 1.0, 0.0, 4.0, 2.0, 1.5, 0.1]


def _feed(runner: PipelineRunner, topic: str, msgtype: str, payload: object, stamp_ns: int) -> None:
    runner.feed(Envelope(topic, stamp_ns, stamp_ns, payload, msgtype))


def test_object_stage_rejections_in_runner_report(tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(PIPELINE)
    runner = PipelineRunner(load_pipeline(path), [])
    runner.start()
    t = 1_000 * MS
    # 2-D: one frame with a NaN, an inverted and a zero-size box beside a good one, one empty frame
    bad2 = np.array([GOOD2, [np.nan, 0, 5, 5], [40, 40, 30, 50], [5, 5, 5, 9]])
    _feed(runner, "/cam/a", D2, detections_2d(t, "cam", bad2, [0.9] * 4, [0] * 4), t)
    _feed(runner, "/cam/a", D2, detections_2d(t + 100 * MS, "cam", np.zeros((0, 4))), t + 100 * MS)
    _feed(runner, "/cam/b", D2, detections_2d(t + 150 * MS, "cam", [GOOD2], [0.8], [0]), t + 150 * MS)
    # 3-D: a NaN box, a negative size, a zero size, and an empty list
    bad3 = np.array([GOOD3, [np.nan, 0, 0, 4, 2, 1.5, 0], [0, 0, 0, -4, 2, 1.5, 0], [0, 0, 0, 4, 0, 1.5, 0]])
    _feed(runner, "/lidar/a", D3, detections_3d(t, "lidar", bad3), t)
    _feed(runner, "/lidar/a", D3, detections_3d(t + 50 * MS, "lidar", np.zeros((0, 7))), t + 50 * MS)
    _feed(runner, "/lidar/b", D3, detections_3d(t + 60 * MS, "lidar", [GOOD3]), t + 60 * MS)
    # tracker: three good frames, an empty one, one out of order, one from the future, one NaN box
    for k in range(3):
        s = t + k * 100 * MS
        _feed(runner, "/tracked", D3, detections_3d(s, "map", [[float(k), 0, 0, 4, 2, 1.5, 0]]), s)
    _feed(runner, "/tracked", D3, detections_3d(t + 300 * MS, "map", np.zeros((0, 7))), t + 300 * MS)
    _feed(runner, "/tracked", D3, detections_3d(t + 50 * MS, "map", [GOOD3]), t + 310 * MS)
    _feed(runner, "/tracked", D3, detections_3d(t + 10_000 * MS, "map", [GOOD3]), t + 320 * MS)
    _feed(runner, "/tracked", D3, detections_3d(t + 400 * MS, "map", [[np.nan, 0, 0, 4, 2, 1.5, 0]]),
          t + 400 * MS)
    runner.finish()
    rep = runner.report()["stages"]

    nms = rep["nms1"]["details"]
    assert nms["frames"] == 2 and nms["empty_inputs"] == 1 and nms["boxes_in"] == 4 and nms["boxes_out"] == 1
    assert nms["rejected"] == {"non_finite": 1, "inverted": 1, "zero_size": 1}

    wbf = rep["fuse"]["details"]
    assert wbf["frames"] == 2 and wbf["empty_inputs"] == 1  # the /cam/b-only set lacks the required input a
    assert wbf["rejected"] == {"non_finite": 1, "inverted": 1, "zero_size": 1}

    w3 = rep["fuse3d"]["details"]
    assert w3["frames"] == 2 and w3["empty_inputs"] == 1 and w3["boxes_in"] == 4 and w3["boxes_out"] == 1
    assert w3["rejected"] == {"non_finite": 1, "inverted": 1, "zero_size": 1}

    trk = rep["tracker"]["details"]
    assert trk["frames"] == 7 and trk["empty_inputs"] == 1
    assert trk["rejected"]["out_of_order"] == 1
    assert trk["rejected"]["from_future"] == 1
    assert trk["rejected"]["non_finite"] == 1
    assert trk["rejected"]["diverged"] == 0  # every known reason is listed
    assert trk["tracks_created"] == 1 and trk["tracks_alive"] == 1
    # the warm-up in start() left no trace in the counts
    assert rep["tracker"]["count"] == 7
