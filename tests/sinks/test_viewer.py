"""Output bags a viewer can show (issue 10, item 21): the rig's ``/tf_static``, CameraInfo, viewable images.

Before, output bags carried no ``/tf_static`` and no CameraInfo (Foxglove/RViz could not place the outputs
relative to each other), and a ``32FC3`` bird's-eye view was written only in that encoding, which no
viewer shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader

from edgefuse.bag import open_bag
from edgefuse.cli import resolve_pipeline
from edgefuse.envelope import Envelope
from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.msgs.types import CameraInfoData, ImageData, TransformData
from edgefuse.pipeline import PipelineRunner, load_pipeline
from edgefuse.replay import replay
from edgefuse.rig import load_rig
from edgefuse.sinks import RecordSink
from edgefuse.sinks.viewer import VIEWABLE_ENCODINGS, camera_info_topic, is_viewable, viewable_image

MS = 1_000_000
DEMO_RIG = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo" / "rig.yaml"

TINY_RIG = """\
edgefuse_rig: 1
base_frame: base_link
frames:
  - {parent: base_link, child: velodyne, translation: [0.0, 0.0, 1.8], rotation: {rpy_deg: [0.0, 0.0, 0.0]}}
  - parent: velodyne
    child: cam
    translation: [0.0, 0.0, -0.1]
    rotation: {matrix: [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]}
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

TINY_PIPELINE = """\
edgefuse_pipeline: 1
name: tiny_bev
rig: rig.yaml
inputs:
  lidar: {topic: /lidar, type: PointCloud, sensor: lidar}
  camera: {topic: /cam/image, type: Image}
sync: {policy: approximate, params: {queue_size: 5, max_interval_ms: 60}}
stages:
  - name: project
    type: lidar_camera_projection
    in: {cloud: lidar, image: camera}
    params: {camera: cam, min_depth_m: 0.5}
  - name: bev
    type: bev_grid
    in: {cloud: lidar}
    params: {x_range: [0.0, 12.8], y_range: [-6.4, 6.4], resolution_m: 0.2}
outputs:
  - {topic: /out/depth, from: project.depth}
  - {topic: /out/bev, from: bev.image}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "rig.yaml").write_text(TINY_RIG)
    path = tmp_path / "pipeline.yaml"
    path.write_text(TINY_PIPELINE)
    return path


def _run_tiny(pipeline: Path, sink: RecordSink) -> None:
    runner = PipelineRunner(load_pipeline(pipeline), [sink])
    runner.start()
    for i in range(5):
        t = 1_000 * MS + i * 100 * MS
        rng = np.random.default_rng(i)
        n = 400
        x = rng.uniform(2, 12, n).astype(np.float32)
        y = rng.uniform(-4, 4, n).astype(np.float32)
        z = rng.uniform(-1.5, 2.5, n).astype(np.float32)
        cloud = pointcloud_from_arrays(t, "velodyne", x=x, y=y, z=z, intensity=rng.uniform(0, 1, n).astype(np.float32))
        runner.feed(Envelope("/lidar", t, t, cloud, "sensor_msgs/msg/PointCloud2"))
        image = ImageData(t + 3 * MS, "cam", "bgr8", np.full((48, 64, 3), 90, np.uint8))
        runner.feed(Envelope("/cam/image", t + 3 * MS, t + 3 * MS, image, "sensor_msgs/msg/Image"))
    runner.finish()


def _messages(bag: Path, topic: str) -> list[tuple[int, Any]]:
    with open_bag(bag) as reader:
        return [(env.recv_ns, env.payload) for env in reader.envelopes([topic])]


def _durability(bag: Path) -> dict[str, Any]:
    with Reader(bag) as reader:
        return {c.topic: [q.durability for q in c.ext.offered_qos_profiles]  # type: ignore[union-attr]
                for c in reader.connections}


def test_demo_output_bag_has_tf_static_and_camera_info(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = replay(resolve_pipeline("radiate_demo"), max_speed=True, out=out).report
    rig = load_rig(DEMO_RIG)
    with open_bag(out) as reader:
        topics = reader.topics
    for topic in ("/tf_static", "/zed_left/camera_info", "/zed_right/camera_info", "/edgefuse/zed_left/camera_info"):
        assert topics[topic].count == 1, topic
        assert report["output_counts"][topic] == 1 and len(report["output_digests"][topic]) == 64
    assert report["output_extras_skipped"] == {}
    depth = _messages(out, "/edgefuse/zed_left/depth")
    stamp0 = depth[0][0]  # the first output written (the first set's depth image)
    [(t_tf, transforms)] = _messages(out, "/tf_static")
    assert t_tf == stamp0
    by_child: dict[str, TransformData] = {tf.child_frame: tf for tf in transforms}
    assert set(by_child) == {"lidar", "zed_left", "zed_right", "velodyne"}
    for tf in transforms:
        T = rig.transform(tf.parent_frame, tf.child_frame)
        assert tf.stamp_ns == stamp0
        np.testing.assert_allclose(tf.translation, T.t, atol=1e-12)
        q = np.asarray(T.to_quat_xyzw())
        assert min(np.abs(tf.rotation_xyzw - q).max(), np.abs(tf.rotation_xyzw + q).max()) < 1e-12
    [(t_info, info)] = _messages(out, "/zed_left/camera_info")
    assert isinstance(info, CameraInfoData) and t_info == stamp0 and info.stamp_ns == stamp0
    cam = rig.camera("zed_left")
    assert (info.frame_id, info.width, info.height, info.distortion_model) == ("zed_left", 672, 376, "plumb_bob")
    np.testing.assert_array_equal(info.k, cam.K)
    np.testing.assert_array_equal(info.d, cam.D)
    [(_, beside)] = _messages(out, "/edgefuse/zed_left/camera_info")
    np.testing.assert_array_equal(beside.k, cam.K)
    qos = _durability(out)
    for topic in ("/tf_static", "/zed_left/camera_info", "/edgefuse/zed_left/camera_info"):
        assert qos[topic] == [QosDurability.TRANSIENT_LOCAL], topic  # latched
    # 32FC1 depth is viewable as it is: no companion.
    assert "/edgefuse/zed_left/depth/viewable" not in topics


def test_bev_gets_a_viewable_companion_and_outputs_keep_their_digests(tiny: Path, tmp_path: Path) -> None:
    plain = RecordSink(tmp_path / "plain", viewer_extras=False)
    _run_tiny(tiny, plain)
    rig = load_pipeline(tiny).rig
    full = RecordSink(tmp_path / "full", rig=rig)
    _run_tiny(tiny, full)
    # The outputs are bit for bit what they were; the extras have digests of their own.
    assert set(plain.digests()) == {"/out/depth", "/out/bev"}
    assert {t: full.digests()[t] for t in plain.digests()} == plain.digests()
    assert set(full.digests()) == {"/out/depth", "/out/bev", "/out/bev/viewable", "/tf_static", "/cam/camera_info",
                                   "/out/camera_info"}
    bev = _messages(tmp_path / "full", "/out/bev")
    viewable = _messages(tmp_path / "full", "/out/bev/viewable")
    assert len(bev) == len(viewable) == full.counts["/out/bev"] == 5
    for (t_raw, raw), (t_view, view) in zip(bev, viewable, strict=True):
        assert raw.encoding == "32FC3" and view.encoding == "rgb8"
        assert t_raw == t_view and raw.stamp_ns == view.stamp_ns and view.frame_id == raw.frame_id
        assert view.data.shape == (*raw.data.shape[:2], 3) and view.data.dtype == np.uint8
        np.testing.assert_array_equal(view.data, viewable_image(raw).data)
        assert view.data.max() == 255
    assert "/out/depth/viewable" not in full.digests()
    [(_, info)] = _messages(tmp_path / "full", "/out/camera_info")  # beside /out/depth (frame cam, 64x48)
    assert info.frame_id == "cam" and (info.width, info.height) == (64, 48)
    # Without a rig: no transforms, no CameraInfo, but still the viewable companion.
    norig = RecordSink(None)
    _run_tiny(tiny, norig)
    assert set(norig.digests()) == {"/out/depth", "/out/bev", "/out/bev/viewable"}
    assert norig.digests()["/out/bev/viewable"] == full.digests()["/out/bev/viewable"]


def test_viewable_normalisation() -> None:
    data = np.zeros((2, 3, 3), np.float32)
    data[..., 0] = [[0.0, 1.0, 2.0], [3.0, 4.0, np.nan]]  # min 0, max 4; NaN -> 0
    data[..., 1] = 7.0  # constant -> 0
    data[..., 2] = [[-1.0, np.inf, 1.0], [0.0, 0.0, 0.0]]  # inf -> 0; [-1, 1] -> [0, 255]
    view = viewable_image(ImageData(5, "f", "32FC3", data))
    assert view.encoding == "rgb8" and view.stamp_ns == 5 and view.frame_id == "f"
    np.testing.assert_array_equal(view.data[..., 0], [[0, 64, 128], [191, 255, 0]])
    np.testing.assert_array_equal(view.data[..., 1], np.zeros((2, 3)))
    np.testing.assert_array_equal(view.data[..., 2], [[0, 0, 255], [128, 128, 128]])
    two = viewable_image(ImageData(0, "f", "32FC2", np.dstack([data[..., 0], data[..., 2]])))
    assert two.encoding == "rgb8" and not two.data[..., 2].any()
    five = np.random.default_rng(3).normal(size=(4, 5, 5)).astype(np.float32)
    view5 = viewable_image(ImageData(0, "f", "32FC5", five))
    np.testing.assert_array_equal(view5.data, viewable_image(ImageData(0, "f", "32FC3", five[..., :3].copy())).data)
    mono = viewable_image(ImageData(0, "f", "64FC1", np.array([[1.0, 3.0]])))
    assert mono.encoding == "mono8" and mono.data.tolist() == [[0, 255]]
    assert is_viewable("32FC1") and is_viewable("bgr8") and not is_viewable("32FC3") and not is_viewable("64FC1")
    assert all(is_viewable(e) for e in VIEWABLE_ENCODINGS)


def test_camera_info_topics(tmp_path: Path) -> None:
    demo = load_rig(DEMO_RIG)
    assert camera_info_topic(demo, "zed_left") == "/zed_left/camera_info"  # /zed_left/image_raw/compressed
    assert camera_info_topic(demo, "zed_right") == "/zed_right/camera_info"  # no topic: the camera's name
    (tmp_path / "rig.yaml").write_text(TINY_RIG.replace("kind: lidar, time_offset_ns: 0}", "kind: lidar, "
                                       "time_offset_ns: 0}\n  front: {frame_id: cam, topic: /front/image_color, "
                                       "kind: camera, time_offset_ns: 0}"))
    assert camera_info_topic(load_rig(tmp_path / "rig.yaml"), "cam") == "/front/camera_info"


def test_extra_never_replaces_an_output(tiny: Path, tmp_path: Path) -> None:
    text = tiny.read_text().replace("/out/depth", "/cam/camera_info").replace("from: bev.image}", "from: bev.image}\n"
                                                                              "  - {topic: /out/bev/viewable, "
                                                                              "from: project.depth}")
    tiny.write_text(text)
    sink = RecordSink(tmp_path / "o", rig=load_pipeline(tiny).rig)
    _run_tiny(tiny, sink)
    assert "/cam/camera_info" in sink.extras_skipped and "/out/bev/viewable" in sink.extras_skipped
    images = _messages(tmp_path / "o", "/cam/camera_info")
    assert all(isinstance(p, ImageData) for _, p in images)  # the output, not a CameraInfo
    assert all(p.encoding == "32FC1" for _, p in _messages(tmp_path / "o", "/out/bev/viewable"))


def test_extras_decode_with_foxglove_mcap(tiny: Path, tmp_path: Path) -> None:
    """Read back with Foxglove's own mcap reader and ROS 2 decoder (no rosbags code)."""
    mcap_reader = pytest.importorskip("mcap.reader", reason="test extra 'mcap' not installed")
    mcap_ros2 = pytest.importorskip("mcap_ros2.decoder", reason="test extra 'mcap-ros2-support' not installed")
    _run_tiny(tiny, RecordSink(tmp_path / "o", rig=load_pipeline(tiny).rig))
    [path] = list((tmp_path / "o").glob("*.mcap"))
    with path.open("rb") as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[mcap_ros2.DecoderFactory()])
        got: dict[str, list[Any]] = {}
        for _, channel, _, msg in reader.iter_decoded_messages():
            got.setdefault(channel.topic, []).append(msg)
    [tf] = got["/tf_static"]
    assert {(t.header.frame_id, t.child_frame_id) for t in tf.transforms} == {("base_link", "velodyne"),
                                                                              ("velodyne", "cam")}
    [info] = got["/cam/camera_info"]
    assert (info.width, info.height, list(info.k)) == (64, 48, [50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0])
    view = got["/out/bev/viewable"][0]
    assert (view.encoding, view.step) == ("rgb8", view.width * 3) and len(bytes(view.data)) == view.step * view.height
