"""Bags edgefuse writes open in other tools: read with Foxglove's `mcap` library + its ROS 2 decoder,
which share no code with rosbags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.cli import main

mcap_reader = pytest.importorskip("mcap.reader", reason="test extra 'mcap' not installed")
mcap_ros2 = pytest.importorskip("mcap_ros2.decoder", reason="test extra 'mcap-ros2-support' not installed")

DEMO = Path(__file__).parents[1] / "edgefuse" / "data" / "demo" / "demo.mcap"


def _read(path: Path, topic: str) -> list[Any]:
    with path.open("rb") as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[mcap_ros2.DecoderFactory()])
        return [msg for _, _, _, msg in reader.iter_decoded_messages(topics=[topic])]


def test_replay_output_decodes_with_foxglove_mcap(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["replay", "radiate_demo", "--max-speed", "-q", "--out", str(out)]) == 0
    files = list(out.glob("*.mcap"))
    assert len(files) == 1 and (out / "metadata.yaml").exists()
    depth = _read(files[0], "/edgefuse/zed_left/depth")
    assert len(depth) == 32
    img = depth[0]
    assert (img.encoding, img.width, img.height, img.step) == ("32FC1", 672, 376, 672 * 4)
    arr = np.frombuffer(bytes(img.data), np.float32).reshape(376, 672)
    assert (arr > 0).sum() > 2000
    clouds = _read(files[0], "/edgefuse/lidar/colored")
    assert [f.name for f in clouds[0].fields] == ["x", "y", "z", "rgb"]
    assert clouds[0].point_step == 16 and clouds[0].width * 16 == len(bytes(clouds[0].data))


def test_bundled_demo_decodes_with_foxglove_mcap() -> None:
    tf = _read(DEMO, "/tf_static")
    assert len(tf) == 1
    assert ("lidar", "zed_left") in {(t.header.frame_id, t.child_frame_id) for t in tf[0].transforms}
    clouds = _read(DEMO, "/velodyne_points")
    assert len(clouds) == 33
    assert {f.name for f in clouds[0].fields} >= {"x", "y", "z", "intensity", "ring"}
