"""Message definitions (ROS 2 ``.msg`` syntax) that rosbags' built-in typestores lack.

Written from the public interface definitions of the ROS 2 ``radar_msgs`` and ``vision_msgs``
(Humble, 4.x) packages: field names, types and order only.  ``RadarTrack``/``RadarTracks`` follow the ROS 2
``radar_msgs`` 0.2.x layout (branch ``ros2``); the ROS 1 (noetic) ``radar_msgs/RadarTrack`` is a different,
older message (``uint16 track_id``, ``string classification``, no covariances).
"""

from __future__ import annotations

EXTRA_MSG_DEFINITIONS: dict[str, str] = {
    "radar_msgs/msg/RadarReturn": """\
float32 range
float32 azimuth
float32 elevation
float32 doppler_velocity
float32 amplitude
""",
    "radar_msgs/msg/RadarScan": """\
std_msgs/Header header
radar_msgs/RadarReturn[] returns
""",
    "radar_msgs/msg/RadarTrack": """\
uint16 NO_CLASSIFICATION=0
uint16 STATIC=1
uint16 DYNAMIC=2
unique_identifier_msgs/UUID uuid
geometry_msgs/Point position
geometry_msgs/Vector3 velocity
geometry_msgs/Vector3 acceleration
geometry_msgs/Vector3 size
uint16 classification
float32[6] position_covariance
float32[6] velocity_covariance
float32[6] acceleration_covariance
float32[6] size_covariance
""",
    "radar_msgs/msg/RadarTracks": """\
std_msgs/Header header
radar_msgs/RadarTrack[] tracks
""",
    "vision_msgs/msg/Point2D": """\
float64 x
float64 y
""",
    "vision_msgs/msg/Pose2D": """\
vision_msgs/Point2D position
float64 theta
""",
    "vision_msgs/msg/BoundingBox2D": """\
vision_msgs/Pose2D center
float64 size_x
float64 size_y
""",
    "vision_msgs/msg/BoundingBox3D": """\
geometry_msgs/Pose center
geometry_msgs/Vector3 size
""",
    "vision_msgs/msg/ObjectHypothesis": """\
string class_id
float64 score
""",
    "vision_msgs/msg/ObjectHypothesisWithPose": """\
vision_msgs/ObjectHypothesis hypothesis
geometry_msgs/PoseWithCovariance pose
""",
    "vision_msgs/msg/Detection2D": """\
std_msgs/Header header
vision_msgs/ObjectHypothesisWithPose[] results
vision_msgs/BoundingBox2D bbox
string id
""",
    "vision_msgs/msg/Detection2DArray": """\
std_msgs/Header header
vision_msgs/Detection2D[] detections
""",
    "vision_msgs/msg/Detection3D": """\
std_msgs/Header header
vision_msgs/ObjectHypothesisWithPose[] results
vision_msgs/BoundingBox3D bbox
string id
""",
    "vision_msgs/msg/Detection3DArray": """\
std_msgs/Header header
vision_msgs/Detection3D[] detections
""",
}
