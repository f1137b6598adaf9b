"""Image conversion: encodings, zero-copy strided views, padding, big-endian, bad sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgefuse.errors import MessageError
from edgefuse.msgs import deserialize, from_payload, get_typestore, serialize, to_payload
from edgefuse.msgs.image import encoding_layout
from edgefuse.msgs.types import ImageData


def _image_msg(height: int, width: int, encoding: str, step: int, data: np.ndarray, *, big: int = 0) -> Any:
    ts = get_typestore()
    header = ts.types["std_msgs/msg/Header"](
        stamp=ts.types["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="cam"
    )
    return ts.types["sensor_msgs/msg/Image"](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=big, step=step, data=data
    )


@pytest.mark.parametrize(
    ("encoding", "dtype", "channels"),
    [
        ("mono8", np.uint8, 1),
        ("mono16", np.uint16, 1),
        ("bgr8", np.uint8, 3),
        ("rgb8", np.uint8, 3),
        ("bgra8", np.uint8, 4),
        ("rgba8", np.uint8, 4),
        ("8UC1", np.uint8, 1),
        ("8UC3", np.uint8, 3),
        ("8UC4", np.uint8, 4),
        ("16UC1", np.uint16, 1),
        ("16SC1", np.int16, 1),
        ("32FC1", np.float32, 1),
        ("64FC1", np.float64, 1),
        ("bayer_rggb8", np.uint8, 1),
        ("bayer_grbg8", np.uint8, 1),
    ],
)
def test_encodings_roundtrip(encoding: str, dtype: Any, channels: int) -> None:
    rng = np.random.default_rng(11)
    shape = (3, 5, channels) if channels > 1 else (3, 5)
    arr = (rng.normal(size=shape) * 100).astype(dtype)
    payload = ImageData(7, "cam", encoding, arr)
    raw = bytes(serialize(from_payload(payload), "sensor_msgs/msg/Image"))
    back = to_payload(deserialize(raw, "sensor_msgs/msg/Image"))
    assert back.data.dtype == np.dtype(dtype)
    assert back.data.shape == shape
    np.testing.assert_array_equal(back.data, arr)
    assert np.shares_memory(back.data, np.frombuffer(raw, np.uint8))


def test_padded_rows_are_a_zero_copy_strided_view() -> None:
    rng = np.random.default_rng(12)
    height, width, step = 4, 3, 16  # 3 px * 3 B = 9 B per row, 7 B padding
    rows = rng.integers(0, 255, (height, step), dtype=np.uint8)
    img = to_payload(_image_msg(height, width, "rgb8", step, rows.reshape(-1)))
    assert img.data.shape == (4, 3, 3)
    assert img.data.strides == (16, 3, 1)
    assert np.shares_memory(img.data, rows)
    np.testing.assert_array_equal(img.data, rows[:, :9].reshape(4, 3, 3))


def test_big_endian_16bit_is_native_copy() -> None:
    values = np.arange(6, dtype=np.uint16).reshape(2, 3) * 257 + 1
    data = values.astype(">u2").view(np.uint8).reshape(-1)
    img = to_payload(_image_msg(2, 3, "mono16", 6, data, big=1))
    assert img.data.dtype == np.dtype(np.uint16)
    assert img.data.dtype.isnative
    np.testing.assert_array_equal(img.data, values)


def test_step_too_small_16bit() -> None:
    with pytest.raises(MessageError, match=r"step 5 < width 3 \* 2 bytes \* 1 channels = 6"):
        to_payload(_image_msg(2, 3, "16UC1", 5, np.zeros(10, np.uint8)))


def test_step_too_small_simple() -> None:
    with pytest.raises(MessageError, match=r"step 8 < width 3 \* 1 bytes \* 3 channels = 9"):
        to_payload(_image_msg(2, 3, "bgr8", 8, np.zeros(18, np.uint8)))


def test_data_too_short() -> None:
    with pytest.raises(MessageError, match=r"image data has 17 bytes < step 9 \* height 2 = 18"):
        to_payload(_image_msg(2, 3, "bgr8", 9, np.zeros(17, np.uint8)))


def test_unknown_encoding() -> None:
    with pytest.raises(MessageError, match="unknown image encoding 'yuv422_weird'"):
        to_payload(_image_msg(1, 1, "yuv422_weird", 2, np.zeros(2, np.uint8)))
    with pytest.raises(MessageError, match="unknown image encoding"):
        encoding_layout("8FC1")


def test_payload_dtype_mismatch() -> None:
    with pytest.raises(MessageError, match="expected dtype uint16"):
        from_payload(ImageData(0, "c", "mono16", np.zeros((2, 2), np.uint8)))
    with pytest.raises(MessageError, match="expected 3 channel"):
        from_payload(ImageData(0, "c", "bgr8", np.zeros((2, 2), np.uint8)))
