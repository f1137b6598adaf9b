"""vision_msgs round trips (through CDR) and the object pipeline stages."""

from __future__ import annotations

import numpy as np
import pytest

from edgefuse.msgs import deserialize, serialize
from edgefuse.msgs.edges import edge_types
from edgefuse.objects import Detections2D, Tracks, detections_2d, detections_3d
from edgefuse.objects.msgs import (
    from_detection2d_array,
    from_detection3d_array,
    to_detection2d_array,
    to_detection3d_array,
)
from edgefuse.stages import stage_class
from edgefuse.stages.objects import TrackStage, WbfStage


def _roundtrip(msg: object, msgtype: str) -> object:
    return deserialize(serialize(msg, msgtype), msgtype)


def test_detection2d_roundtrip() -> None:
    cov = np.stack([np.diag([4.0, 9.0]), np.full((2, 2), np.nan)])
    d = detections_2d(1_500_000_123, "cam", [[10, 20, 50, 80], [0, 0, 5, 5]], [0.9, 0.3], [2, 0], cov)
    back = from_detection2d_array(_roundtrip(to_detection2d_array(d), "vision_msgs/msg/Detection2DArray"))
    assert back.stamp_ns == d.stamp_ns and back.frame_id == "cam"
    np.testing.assert_allclose(back.xyxy(), d.xyxy())
    np.testing.assert_array_equal(back.boxes["label"], [2, 0])
    np.testing.assert_allclose(back.boxes["cov"][0], cov[0])
    assert np.all(np.isnan(back.boxes["cov"][1]))
    names = ["car", "bus", "truck"]
    msg = to_detection2d_array(d, class_names=names)
    assert msg.detections[0].results[0].hypothesis.class_id == "truck"
    assert from_detection2d_array(msg, class_names=names).boxes["label"].tolist() == [2, 0]


def test_detection3d_and_tracks_roundtrip() -> None:
    cov = np.diag([0.1, 0.2, 0.3, 0.05])[None].repeat(2, axis=0)
    d = detections_3d(7, "lidar", [[1, 2, 3, 4, 2, 1.5, 0.3], [5, 6, 7, 1, 1, 1, -2.9]], [0.8, 0.7], [1, 1], cov)
    back = from_detection3d_array(_roundtrip(to_detection3d_array(d), "vision_msgs/msg/Detection3DArray"))
    np.testing.assert_allclose(back.array7(), d.array7(), atol=1e-12)
    np.testing.assert_allclose(back.boxes["cov"], cov)
    from edgefuse.objects.types import TRACK_DTYPE

    t = np.zeros(1, TRACK_DTYPE)
    t["id"], t["x"], t["l"], t["w"], t["h"], t["cov"] = 42, 3.0, 4.0, 2.0, 1.5, np.nan
    msg = to_detection3d_array(Tracks(9, "map", t))
    assert msg.detections[0].id == "42"
    assert from_detection3d_array(msg).boxes["id"].tolist() == [42]


def test_object_stages() -> None:
    wbf_cls = stage_class("wbf")  # loads the built-in stage modules
    assert wbf_cls is not None
    assert {"Detections2D", "Detections3D", "Tracks"} <= set(edge_types())
    assert wbf_cls.check_params({"iou_thr": 0.5, "conf_type": "max", "bogus": 1}) == [
        "stage type 'wbf' has no parameter 'bogus' (known: conf_type, iou_thr, normalized, skip_box_thr, weights)"
    ]
    wbf = wbf_cls("fuse", {"iou_thr": 0.5})
    assert isinstance(wbf, WbfStage)
    wbf.start()
    a = detections_2d(5, "cam", [[100, 100, 200, 200], [300, 300, 300, 350]], [0.9, 0.8], [0, 0])
    b = detections_2d(5, "cam", [[102, 98, 204, 202]], [0.7], [0])
    out = wbf.process({"a": a, "b": b}, 5)["detections"]
    assert isinstance(out, Detections2D) and len(out) == 1
    assert wbf.rejected["zero_size"] == 1
    nms_cls = stage_class("nms")
    assert nms_cls is not None
    nms = nms_cls("nms", {"method": "gaussian"})
    nms.start()
    res = nms.process({"detections": a}, 5)["detections"]
    assert len(res) == 1
    track_cls = stage_class("track")
    assert track_cls is not None
    trk = track_cls("trk", {"min_hits": 1})
    assert isinstance(trk, TrackStage)
    trk.start()
    for k in range(3):
        tr = trk.process({"detections": detections_3d(k * 10**8, "base", [[k, 0, 0, 4, 2, 1.5, 0]])}, k * 10**8)
    assert isinstance(tr["tracks"], Tracks) and len(tr["tracks"]) == 1
    trk.process({"detections": detections_3d(10**10, "base", [[0, 0, 0, 4, 2, 1.5, 0]])}, 3 * 10**8)
    assert trk.rejected["from_future"] == 1
    from edgefuse.errors import PipelineError

    with pytest.raises(PipelineError):
        track_cls("bad", {"motion": "cv", "filter": "ukf"})
    w3 = stage_class("wbf_3d")
    assert w3 is not None
    s3 = w3("w3", {})
    s3.start()
    r3 = s3.process({"a": detections_3d(1, "l", [[0, 0, 0, 4, 2, 1.5, 0.1]]),
                     "b": detections_3d(1, "l", [[0.2, 0, 0, 4, 2, 1.5, 0.0]])}, 1)["detections"]
    assert len(r3) == 1
