from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.envelope import Envelope
from edgefuse.errors import PipelineError
from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.msgs.types import ImageData
from edgefuse.pipeline import PipelineRunner, load_pipeline
from edgefuse.sinks import RecordSink

MS = 1_000_000


def _cloud(stamp_ns: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    # velodyne frame: x forward.  A wall 10 m ahead, in view of the camera, plus points behind it.
    n = 500
    x = np.full(n, 10.0, np.float32)
    y = rng.uniform(-4, 4, n).astype(np.float32)
    z = rng.uniform(-2.5, 3.5, n).astype(np.float32)
    x[:50] = -5.0  # behind the camera
    return pointcloud_from_arrays(stamp_ns, "velodyne", x=x, y=y, z=z,
                                  intensity=np.ones(n, np.float32))


def _image(stamp_ns: int) -> ImageData:
    img = np.zeros((48, 64, 3), np.uint8)
    img[..., 2] = 200  # red in BGR
    return ImageData(stamp_ns, "cam", "bgr8", img)


def _feed(runner: PipelineRunner, n: int = 6) -> None:
    for i in range(n):
        t = 1_000 * MS + i * 100 * MS
        runner.feed(Envelope("/lidar", t, t, _cloud(t, i), "sensor_msgs/msg/PointCloud2"))
        runner.feed(Envelope("/cam/image", t + 3 * MS, t + 3 * MS, _image(t + 3 * MS), "sensor_msgs/msg/Image"))


class Collect:
    def __init__(self) -> None:
        self.items: list[tuple[str, int, Any]] = []

    def open(self, outputs: Any) -> None:
        self.opened = list(outputs)  # topic -> edge type

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None:
        if hasattr(payload, "data"):
            payload = type(payload)(payload.stamp_ns, payload.frame_id, payload.encoding, payload.data.copy())
        else:
            payload = type(payload)(payload.stamp_ns, payload.frame_id, payload.points.copy(), payload.height,
                                    payload.width, payload.is_dense)
        self.items.append((topic, stamp_ns, payload))

    def close(self) -> None:
        self.closed = True


def test_projection_pipeline_end_to_end(tiny_pipeline: Path) -> None:
    cfg = load_pipeline(tiny_pipeline)
    sink = Collect()
    runner = PipelineRunner(cfg, [sink])
    runner.start()
    assert runner.start_ms["project"] >= 0.0
    _feed(runner)
    runner.finish()
    assert sink.closed
    rep = runner.report()
    assert rep["sets"] >= 5
    assert rep["stages"]["project"]["count"] == rep["sets"]
    assert rep["end_to_end"]["count"] == rep["sets"]
    assert rep["end_to_end"]["p99_ms"] is not None
    depths = [p for t, _, p in sink.items if t == "/out/depth"]
    clouds = [p for t, _, p in sink.items if t == "/out/colored"]
    assert len(depths) == len(clouds) == rep["sets"]
    d = depths[0].data
    assert d.shape == (48, 64) and d.dtype == np.float32
    hit = d[d > 0]
    # the wall is 10 m ahead of the lidar; the camera sits 0.1 m below it, so depth is 10 m
    assert hit.size > 50
    assert np.allclose(hit, hit[0], atol=1e-3)
    assert 9.5 < float(hit[0]) < 10.5
    col = clouds[0].points
    assert col.shape[0] > 50
    assert np.all(col["x"] == pytest.approx(10.0))
    rgb = col["rgb"].view(np.uint32)
    assert np.all((rgb >> 16) & 0xFF == 200) and np.all(rgb & 0xFFFF == 0)
    # output stamps are set stamps (latest member = the camera)
    assert all(stamp == p.stamp_ns for _, stamp, p in sink.items)


def test_digests_identical_and_mcap_written(tiny_pipeline: Path, tmp_path: Path) -> None:
    from edgefuse.bag import open_bag

    digests = []
    for k in range(2):
        sink = RecordSink(tmp_path / f"out{k}")
        runner = PipelineRunner(load_pipeline(tiny_pipeline), [sink])
        runner.start()
        _feed(runner)
        runner.finish()
        digests.append(sink.digests())
    assert digests[0] == digests[1]
    assert set(digests[0]) == {"/out/depth", "/out/colored"}
    with open_bag(tmp_path / "out0") as reader:
        topics = reader.topics
        assert topics["/out/depth"].msgtype == "sensor_msgs/msg/Image"
        assert topics["/out/depth"].count == sink.counts["/out/depth"]
        envs = list(reader.envelopes(["/out/depth"]))
        assert envs[0].payload.encoding == "32FC1"


def test_feed_wrong_payload_type_is_clear(tiny_pipeline: Path) -> None:
    runner = PipelineRunner(load_pipeline(tiny_pipeline), [])
    runner.start()
    with pytest.raises(PipelineError, match="expects PointCloud"):
        runner.feed(Envelope("/lidar", 1, 1, _image(1), "sensor_msgs/msg/Image"))
    assert runner.feed(Envelope("/unknown", 1, 1, None)) == 0
    assert runner.unknown_topic == 1


def test_budget_breach_reported(tiny_pipeline: Path) -> None:
    text = tiny_pipeline.read_text().replace("end_to_end_ms: 50", "end_to_end: {deadline_ms: 0.000001}")
    tiny_pipeline.write_text(text)
    runner = PipelineRunner(load_pipeline(tiny_pipeline), [])
    runner.start()
    _feed(runner)
    runner.finish()
    rep = runner.report()
    assert rep["end_to_end"]["deadline_misses"] == rep["sets"] > 0
    assert any(b.startswith("end_to_end:") and "samples over the" in b for b in rep["budget_breaches"])


def test_stage_error_is_counted_not_fatal(tiny_pipeline: Path) -> None:
    runner = PipelineRunner(load_pipeline(tiny_pipeline), [])
    runner.start()
    for i in range(3):
        t = 1_000 * MS + i * 100 * MS
        runner.feed(Envelope("/lidar", t, t, _cloud(t, i), ""))
        bad = ImageData(t, "cam", "bgr8", np.zeros((10, 10, 3), np.uint8))  # wrong size for the camera
        runner.feed(Envelope("/cam/image", t + MS, t + MS, bad, ""))
    runner.finish()
    rep = runner.report()
    assert rep["stages"]["project"]["errors"] >= 2
    assert "camera 'cam' is 64x48" in rep["stages"]["project"]["first_errors"][0]
