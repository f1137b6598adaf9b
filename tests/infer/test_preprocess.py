"""Pre-processing kernels against OpenCV (resize) and numpy (normalization, layout)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefuse.infer.card import CardInput, CardOutput, Preprocess
from edgefuse.infer.preprocess import CloudToTensor, ImageToTensor, tensor_to_image
from edgefuse.msgs.types import ImageData, PointCloud

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _spec(layout: str, resize: tuple[int, int] | None, interp: str = "bilinear") -> CardInput:
    shape = (1, 3, 48, 80) if layout == "NCHW" else (1, 48, 80, 3)
    return CardInput("image", "Image", shape, "float32", layout, encoding="rgb8",
                     preprocess=Preprocess(resize, interp, 1 / 255, MEAN, STD))  # type: ignore[arg-type]


@pytest.mark.parametrize(("layout", "interp"), [("NCHW", "bilinear"), ("NHWC", "bilinear"), ("NCHW", "nearest")])
def test_image_to_tensor_matches_opencv_resize_and_numpy_normalization(layout: str, interp: str) -> None:
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    tensor = ImageToTensor(_spec(layout, (48, 80), interp))(ImageData(1, "cam", "bgr8", bgr))
    flag = cv2.INTER_LINEAR if interp == "bilinear" else cv2.INTER_NEAREST
    ref = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32), (80, 48), interpolation=flag)
    ref = (ref / 255.0 - np.array(MEAN)) / np.array(STD)
    ref = ref.transpose(2, 0, 1)[None] if layout == "NCHW" else ref[None]
    assert tensor.shape == ref.shape and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, ref, atol=1e-4 if interp == "nearest" else 2e-3)


def test_mono_image_cannot_feed_an_rgb_model() -> None:
    from edgefuse.errors import InputDataError

    with pytest.raises(InputDataError, match="mono8 cannot be turned into the model's rgb8"):
        ImageToTensor(_spec("NCHW", (48, 80)))(ImageData(1, "cam", "mono8", np.zeros((10, 10), np.uint8)))


def test_cloud_to_tensor_pads_and_truncates() -> None:
    dtype = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32),
                      ("ring", np.uint16)])
    pts = np.zeros(5, dtype)
    for i, f in enumerate(("x", "y", "z", "intensity")):
        pts[f] = np.arange(5) + 10 * i
    spec = CardInput("points", "PointCloud", (1, 4, 4), "float32", "NPF", fields=("x", "y", "z", "intensity"))
    conv = CloudToTensor(spec)
    out = conv(PointCloud(1, "lidar", pts[:3]))
    assert out.shape == (1, 4, 4)
    np.testing.assert_array_equal(out[0, :3, 0], [0, 1, 2])
    np.testing.assert_array_equal(out[0, 3], 0)
    out = conv(PointCloud(1, "lidar", pts))
    np.testing.assert_array_equal(out[0, :, 3], [30, 31, 32, 33])
    assert conv.truncated == 1


def test_tensor_to_image_layouts() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    img = tensor_to_image(CardOutput("o", "Image", (1, 2, 3, 4), "float32", "NCHW", encoding="32FC3"), x, 5, "f")
    assert img.encoding == "32FC2" and img.data.shape == (3, 4, 2) and img.data[1, 2, 1] == x[0, 1, 1, 2]
    one = tensor_to_image(CardOutput("o", "Image", (1, 1, 3, 4), "float32", "NCHW", encoding="32FC1"), x[:, :1], 5, "f")
    assert one.encoding == "32FC1" and one.data.shape == (3, 4)


def test_sparse_min_keeps_every_return_and_the_nearest_wins() -> None:
    """A projected LiDAR depth image halved: nearest would drop the returns on odd rows/columns; sparse_min keeps
    each one (the smallest depth of each 2 x 2 footprint), 0 where the footprint has none."""
    rng = np.random.default_rng(3)
    src = np.zeros((376, 672), np.float32)
    ys, xs = rng.integers(0, 376, 3000), rng.integers(0, 672, 3000)
    src[ys, xs] = rng.uniform(0.5, 80.0, 3000).astype(np.float32)
    spec = CardInput("sparse_depth", "Image", (1, 1, 188, 336), "float32", "NCHW", encoding="32FC1",
                     preprocess=Preprocess(resize=(188, 336), interpolation="sparse_min"))
    out = ImageToTensor(spec)(ImageData(0, "cam", "32FC1", src))[0, 0]
    blocks = src.reshape(188, 2, 336, 2).transpose(0, 2, 1, 3).reshape(188, 336, 4)
    want = np.where(blocks > 0, blocks, np.inf).min(axis=2)
    want[~np.isfinite(want)] = 0.0
    np.testing.assert_array_equal(out, want)
    nearest = ImageToTensor(CardInput("d", "Image", (1, 1, 188, 336), "float32", "NCHW", encoding="32FC1",
                                      preprocess=Preprocess(resize=(188, 336), interpolation="nearest")))
    assert int((out > 0).sum()) > 2 * int((nearest(ImageData(0, "cam", "32FC1", src))[0, 0] > 0).sum())
