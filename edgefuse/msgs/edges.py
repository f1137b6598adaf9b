"""The one edge-type registry: names used in pipeline YAML ↔ payload classes ↔ ROS message types.

An *edge type* is what a pipeline input, a stage port or an output carries (``PointCloud``, ``Image``,
``Detections3D`` …).  Each has a payload class (what stages see) and, where it can be published or
recorded, a ROS message type.  The core payloads of :mod:`edgefuse.msgs.types` are registered here;
packages above this layer register their own (``edgefuse.objects`` registers the vision_msgs
detections) through the ``edgefuse.edge_types`` entry-point group, loaded the first time the registry
is consulted — so no module has to import another only for its side effects, and sinks and the
pipeline checks never reach into each other for type tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from edgefuse.errors import ConfigError
from edgefuse.msgs import types as payloads

__all__ = [
    "ANY",
    "EdgeType",
    "compatible",
    "edge_type",
    "edge_types",
    "msgtype_of",
    "normalize_msgtype",
    "payload_class",
    "register_edge_type",
    "type_of_msgtype",
]

#: The wildcard port type: accepts (or produces) any edge type.
ANY = "Any"


@dataclass(frozen=True)
class EdgeType:
    """One edge type.

    Attributes:
        name: the name used in pipeline YAML and stage declarations.
        payload: the payload class stages receive (None only for :data:`ANY`).
        msgtype: the ROS 2 message type it is published/recorded as (None: not publishable).
        reads_from: ROS message types that decode into this edge type (a subscription or bag topic of one
            of these types may feed an input of this edge type).
    """

    name: str
    payload: type | None
    msgtype: str | None
    reads_from: tuple[str, ...] = ()


_EDGES: dict[str, EdgeType] = {}
_BY_MSGTYPE: dict[str, str] = {}
_PLUGINS_LOADED = False


def normalize_msgtype(msgtype: str) -> str:
    """``sensor_msgs/Imu`` (ROS 1 style) → ``sensor_msgs/msg/Imu``."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    return msgtype


def register_edge_type(
    name: str, payload: type | None, msgtype: str | None = None, *, reads_from: tuple[str, ...] | None = None
) -> EdgeType:
    """Register an edge type (idempotent for an identical registration).

    ``reads_from`` defaults to ``(msgtype,)``.  A message type read by two edge types is an error, as is
    re-registering a name with different content.

    Raises:
        ConfigError: a conflicting registration.
    """
    reads = tuple(normalize_msgtype(m) for m in (reads_from if reads_from is not None else
                                                  ((msgtype,) if msgtype else ())))
    edge = EdgeType(name, payload, None if msgtype is None else normalize_msgtype(msgtype), reads)
    old = _EDGES.get(name)
    if old is not None:
        if old != edge:
            raise ConfigError(f"edge type '{name}' is already registered differently ({old})")
        return old
    for m in reads:
        if m in _BY_MSGTYPE and _BY_MSGTYPE[m] != name:
            raise ConfigError(f"message type {m} already decodes to edge type '{_BY_MSGTYPE[m]}'")
    _EDGES[name] = edge
    for m in reads:
        _BY_MSGTYPE[m] = name
    return edge


def _load_plugins() -> None:
    """Load the ``edgefuse.edge_types`` entry points once (each a callable that registers its types)."""
    global _PLUGINS_LOADED  # noqa: PLW0603
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group="edgefuse.edge_types"):
        register: Callable[[], None] = ep.load()
        register()


def edge_types() -> dict[str, EdgeType]:
    """Every registered edge type by name (plugins loaded), :data:`ANY` included."""
    _load_plugins()
    return dict(_EDGES)


def edge_type(name: str) -> EdgeType | None:
    """The edge type called ``name``, or None."""
    if name not in _EDGES:
        _load_plugins()
    return _EDGES.get(name)


def payload_class(name: str) -> type | None:
    """The payload class of edge type ``name`` (None for :data:`ANY` or an unknown name)."""
    edge = edge_type(name)
    return None if edge is None else edge.payload


def msgtype_of(name: str) -> str | None:
    """The ROS message type edge type ``name`` is published as, or None."""
    edge = edge_type(name)
    return None if edge is None else edge.msgtype


def type_of_msgtype(msgtype: str) -> str | None:
    """Edge type name for a ROS message type, or None when edgefuse has no payload for it."""
    key = normalize_msgtype(msgtype)
    if key not in _BY_MSGTYPE:
        _load_plugins()
    return _BY_MSGTYPE.get(key)


def compatible(produced: str, accepted: str) -> bool:
    """Whether an edge carrying ``produced`` may feed a port that accepts ``accepted`` (``A|B`` unions allowed)."""
    accepted_set = set(accepted.split("|"))
    return produced == ANY or ANY in accepted_set or produced in accepted_set


for _name, _payload, _msgtype in (
    ("Image", payloads.ImageData, "sensor_msgs/msg/Image"),
    ("CompressedImage", payloads.CompressedImageData, "sensor_msgs/msg/CompressedImage"),
    ("PointCloud", payloads.PointCloud, "sensor_msgs/msg/PointCloud2"),
    ("Imu", payloads.ImuData, "sensor_msgs/msg/Imu"),
    ("ImuBatch", payloads.ImuBatch, None),
    ("NavSatFix", payloads.NavSatFixData, "sensor_msgs/msg/NavSatFix"),
    ("CameraInfo", payloads.CameraInfoData, "sensor_msgs/msg/CameraInfo"),
    ("Odometry", payloads.OdometryData, "nav_msgs/msg/Odometry"),
    ("RadarScan", payloads.RadarScanData, "radar_msgs/msg/RadarScan"),
    ("RadarTracks", payloads.RadarTracksData, "radar_msgs/msg/RadarTracks"),
    ("Transform", payloads.TransformData, None),
    ("Tensor", payloads.TensorData, None),
):
    register_edge_type(_name, _payload, _msgtype)
register_edge_type(ANY, None, None)
