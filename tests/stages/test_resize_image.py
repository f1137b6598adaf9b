"""``resize_image``: an image to a rig camera's resolution, keeping encoding, dtype and frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefuse.errors import PipelineError
from edgefuse.msgs.types import ImageData
from edgefuse.rig import load_rig
from edgefuse.stages.decode import ResizeImage, ResizeImageParams

RIG = Path(__file__).resolve().parents[2] / "edgefuse" / "data" / "demo" / "rig.yaml"


def test_depth_to_the_camera_size_nearest() -> None:
    stage = ResizeImage("up", {"camera": "zed_left"}, load_rig(RIG))
    stage.start()
    depth = np.arange(184 * 336, dtype=np.float32).reshape(184, 336)
    out = stage.process({"image": ImageData(5, "zed_left", "32FC1", depth)}, 5)["image"]
    assert out.encoding == "32FC1" and out.frame_id == "zed_left" and out.stamp_ns == 5
    assert out.data.shape == (376, 672) and out.data.dtype == np.float32
    ys = np.minimum((np.arange(376) * 184) // 376, 183)
    xs = np.arange(672) // 2
    np.testing.assert_array_equal(out.data, depth[ys][:, xs])  # every value is a source value (no mixing)


def test_bgr8_bilinear_stays_uint8() -> None:
    stage = ResizeImage("r", {"width": 4, "height": 2, "interpolation": "bilinear"})
    img = np.zeros((4, 8, 3), np.uint8)
    img[:, 4:] = 200
    out = stage.process({"image": ImageData(0, "c", "bgr8", img)}, 0)["image"]
    assert out.encoding == "bgr8" and out.data.dtype == np.uint8 and out.data.shape == (2, 4, 3)
    assert out.data[:, :2].max() == 0 and out.data[:, 2:].min() == 200


def test_parameters_and_rig_are_checked() -> None:
    assert ResizeImageParams.parse({"width": 4})[1]  # height missing
    assert ResizeImageParams.parse({"camera": "zed_left", "width": 4, "height": 2})[1]  # both
    half = ResizeImage("h", {"scale": 0.5})
    out = half.process({"image": ImageData(0, "c", "mono8", np.full((6, 10), 7, np.uint8))}, 0)["image"]
    assert out.data.shape == (3, 5) and (out.data == 7).all()
    with pytest.raises(PipelineError, match="not in the rig"):
        ResizeImage("r", {"camera": "nope"}, load_rig(RIG))
