"""Detections go through the same sinks and bags as sensor payloads (registered vision_msgs conversions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefuse.bag import open_bag
from edgefuse.objects import detections_2d
from edgefuse.sinks import RecordSink


def test_detections_recorded_and_read_back(tmp_path: Path) -> None:
    dets = detections_2d(42, "cam", np.array([[1.0, 2.0, 30.0, 40.0], [5.0, 6.0, 7.0, 9.0]]),
                         scores=[0.9, 0.4], labels=[1, 3])
    sink = RecordSink(tmp_path / "out")
    sink.open({"/dets": "Detections2D"})
    sink.write("/dets", 42, dets)
    sink.close()
    with open_bag(tmp_path / "out") as reader:
        assert reader.topics["/dets"].msgtype == "vision_msgs/msg/Detection2DArray"
        (env,) = list(reader.envelopes(["/dets"]))
    back = env.payload
    assert env.stamp_ns == 42 and back.frame_id == "cam"
    np.testing.assert_allclose(back.xyxy(), dets.xyxy())
    np.testing.assert_allclose(back.boxes["score"], [0.9, 0.4], rtol=1e-6)
    assert list(back.boxes["label"]) == [1, 3]
