"""The rig: frames + cameras + sensors + per-sensor time offsets, in one object.

Time-offset sign convention (used everywhere in edgefuse)::

    t_reference_ns = t_sensor_ns + time_offset_ns

i.e. ``time_offset_ns`` is what must be *added* to a sensor's stamp to express it in the rig's
reference clock.  A camera whose stamps are 5 ms late (the exposure really happened 5 ms before the
stamp) has ``time_offset_ns = -5_000_000``.  Kalibr's ``timeshift_cam_imu`` (``t_imu = t_cam + shift``)
is exactly this offset for the camera when the IMU clock is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from edgefuse.errors import CalibrationError
from edgefuse.rig.camera import CameraModel
from edgefuse.rig.transform import FrameGraph, Transform

SENSOR_KINDS = ("camera", "lidar", "radar", "imu", "gnss", "odom")


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor of the rig: its data ``frame_id``, ROS ``topic`` (may be None), ``kind``
    (one of :data:`SENSOR_KINDS`) and clock offset ``time_offset_ns`` (see module docstring)."""

    name: str
    frame_id: str
    kind: str
    topic: str | None = None
    time_offset_ns: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SENSOR_KINDS:
            raise CalibrationError(f"sensor {self.name!r}: unknown kind {self.kind!r}"
                                   f" (expected one of: {', '.join(SENSOR_KINDS)})")
        if isinstance(self.time_offset_ns, bool) or not isinstance(self.time_offset_ns, int):
            raise CalibrationError(f"sensor {self.name!r}: time_offset_ns must be an int,"
                                   f" got {self.time_offset_ns!r}")


@dataclass
class Rig:
    """A calibrated sensor rig.

    ``frames`` holds the static transforms, ``cameras`` maps camera name → :class:`CameraModel`,
    ``sensors`` maps sensor name → :class:`Sensor`, and ``base_frame`` is the frame the rig is
    expressed in (usually ``base_link``).  Use :meth:`check` (called by the YAML loader and the
    importers) to verify that every referenced frame exists and is connected to ``base_frame``.
    """

    base_frame: str
    frames: FrameGraph = field(default_factory=FrameGraph)
    cameras: dict[str, CameraModel] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frames.add_frame(self.base_frame)

    # -- queries ------------------------------------------------------------------------------
    def transform(self, to_frame: str, from_frame: str) -> Transform:
        """``T_to_from_from`` (maps points in ``from_frame`` into ``to_frame``)."""
        return self.frames.lookup(to_frame, from_frame)

    def camera(self, name: str) -> CameraModel:
        """The camera model called ``name`` (CalibrationError listing the known cameras if absent)."""
        try:
            return self.cameras[name]
        except KeyError:
            known = ", ".join(sorted(self.cameras)) or "none"
            raise CalibrationError(f"unknown camera {name!r} (known cameras: {known})") from None

    def sensor(self, name: str) -> Sensor:
        """The sensor called ``name``."""
        try:
            return self.sensors[name]
        except KeyError:
            known = ", ".join(sorted(self.sensors)) or "none"
            raise CalibrationError(f"unknown sensor {name!r} (known sensors: {known})") from None

    def sensor_for_topic(self, topic: str) -> Sensor | None:
        """The sensor publishing ``topic``, or None when no sensor declares it."""
        for s in self.sensors.values():
            if s.topic == topic:
                return s
        return None

    def time_offset_ns(self, sensor_or_topic: str, default: int = 0) -> int:
        """Clock offset of a sensor (looked up by name, then by topic): ``t_ref = t_sensor + offset``.

        Sensors the rig does not know get ``default`` (0: assume they already stamp in the reference
        clock).
        """
        s = self.sensors.get(sensor_or_topic) or self.sensor_for_topic(sensor_or_topic)
        return s.time_offset_ns if s is not None else default

    def to_reference_ns(self, sensor_or_topic: str, stamp_ns: int) -> int:
        """``stamp_ns`` of that sensor expressed in the reference clock."""
        return int(stamp_ns) + self.time_offset_ns(sensor_or_topic)

    # -- consistency --------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every inconsistency: frames not connected to ``base_frame``, cameras/sensors whose
        ``frame_id`` is unknown, duplicate topics."""
        out: list[str] = []
        for f in self.frames.frames:
            if not self.frames.connected(f, self.base_frame):
                out.append(f"frame {f!r} is not connected to base_frame {self.base_frame!r}")
        for name, cam in self.cameras.items():
            if cam.frame_id not in self.frames:
                out.append(f"camera {name!r}: frame_id {cam.frame_id!r} is not in the frame graph")
        seen: dict[str, str] = {}
        for name, s in self.sensors.items():
            if s.frame_id not in self.frames:
                out.append(f"sensor {name!r}: frame_id {s.frame_id!r} is not in the frame graph")
            if s.topic is not None:
                if s.topic in seen:
                    out.append(f"sensor {name!r}: topic {s.topic!r} is already used by sensor"
                               f" {seen[s.topic]!r}")
                seen[s.topic] = name
        return out

    def check(self) -> Rig:
        """Raise :class:`CalibrationError` listing every problem from :meth:`problems`; return self."""
        p = self.problems()
        if p:
            raise CalibrationError("; ".join(p))
        return self

    # -- editing ------------------------------------------------------------------------------
    def merged(self, partial: Rig) -> Rig:
        """A new rig: this one updated with everything ``partial`` defines.

        Each edge of ``partial`` replaces the edge of the same child frame (or is added); cameras
        and sensors replace those of the same name.  ``base_frame`` stays this rig's.  This is how
        calibration tools write results into an existing rig file (see :func:`merge_rig_file`).
        The result is checked (:meth:`check`).
        """
        frames = self.frames.copy()
        for e in partial.frames:
            frames.replace(e.parent, e.child, e.T_parent_from_child)
        out = Rig(base_frame=self.base_frame, frames=frames,
                  cameras={**self.cameras, **partial.cameras}, sensors={**self.sensors, **partial.sensors})
        return out.check()

    def with_time_offset(self, sensor: str, time_offset_ns: int) -> Rig:
        """A copy with one sensor's clock offset changed."""
        s = self.sensor(sensor)
        return Rig(base_frame=self.base_frame, frames=self.frames.copy(), cameras=dict(self.cameras),
                   sensors={**self.sensors, sensor: replace(s, time_offset_ns=int(time_offset_ns))})

    def to_yaml(self) -> str:
        """This rig in the edgefuse rig YAML format (see ``edgefuse/rig/FORMAT.md``)."""
        from edgefuse.rig.rigfile import dump_rig

        return dump_rig(self)
