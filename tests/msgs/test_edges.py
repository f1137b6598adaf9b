"""The one edge-type registry: core types, types other packages register through the entry point, conflicts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgefuse.errors import ConfigError
from edgefuse.msgs import edges
from edgefuse.msgs.types import ImageData, PointCloud


def test_core_types() -> None:
    assert edges.payload_class("PointCloud") is PointCloud
    assert edges.msgtype_of("Image") == "sensor_msgs/msg/Image"
    assert edges.type_of_msgtype("sensor_msgs/PointCloud2") == "PointCloud"  # ROS 1 spelling
    assert edges.msgtype_of("ImuBatch") is None  # internal only: nothing to publish it as
    assert edges.compatible("Image", "CompressedImage|Image") and not edges.compatible("Image", "PointCloud")
    assert edges.compatible(edges.ANY, "Image") and edges.compatible("Image", edges.ANY)


def test_plugin_types_load_without_importing_their_package_by_hand() -> None:
    code = ("import sys; from edgefuse.msgs import edges;"
            "print('edgefuse.objects' in sys.modules, edges.msgtype_of('Tracks'),"
            " edges.type_of_msgtype('vision_msgs/msg/Detection3DArray'), 'edgefuse.objects' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "vision_msgs/msg/Detection3DArray", "Detections3D", "True"]


def test_conflicting_registrations_are_refused() -> None:
    assert edges.register_edge_type("Image", ImageData, "sensor_msgs/msg/Image").name == "Image"  # idempotent
    with pytest.raises(ConfigError, match="already registered differently"):
        edges.register_edge_type("Image", PointCloud, "sensor_msgs/msg/Image")
    with pytest.raises(ConfigError, match="already decodes to edge type 'Image'"):
        edges.register_edge_type("MyImage", ImageData, "sensor_msgs/msg/Image")
