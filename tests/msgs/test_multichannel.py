from __future__ import annotations

import numpy as np
import pytest

from edgefuse.errors import MessageError
from edgefuse.msgs import deserialize, from_payload, serialize, to_payload
from edgefuse.msgs.types import ImageData


@pytest.mark.parametrize("channels", [5, 12])
def test_many_channel_feature_images_roundtrip(channels: int) -> None:
    data = np.arange(4 * 3 * channels, dtype=np.float32).reshape(4, 3, channels)
    msg = from_payload(ImageData(7, "bev", f"32FC{channels}", data), msgtype="sensor_msgs/msg/Image")
    back = to_payload(deserialize(serialize(msg, "sensor_msgs/msg/Image"), "sensor_msgs/msg/Image"))
    assert back.encoding == f"32FC{channels}"
    np.testing.assert_array_equal(back.data, data)


def test_zero_channels_is_rejected() -> None:
    msg = from_payload(ImageData(7, "x", "32FC1", np.zeros((2, 2), np.float32)), msgtype="sensor_msgs/msg/Image")
    msg.encoding = "32FC0"
    with pytest.raises(MessageError):
        to_payload(msg)
