"""Transports for the live node: Zenoh (rmw_zenoh wire format), ROS 2 (rclpy) and ROS 1 (rospy)."""

from edgefuse.transport.base import (
    LATCHED,
    RELIABLE,
    SENSOR_DATA,
    Publisher,
    QoS,
    Received,
    Subscription,
    Transport,
    known_transports,
    open_transport,
    register_transport,
)

__all__ = ["LATCHED", "RELIABLE", "SENSOR_DATA", "Publisher", "QoS", "Received", "Subscription", "Transport",
           "known_transports", "open_transport", "register_transport"]
