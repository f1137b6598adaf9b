from __future__ import annotations

from pathlib import Path

from edgefuse.bag import bag_info, format_info

SRR520 = Path(__file__).parents[1] / "data" / "nebula_radar_lidar_packets" / "srr520" / "1708578209"


def test_info_says_which_types_cannot_be_decoded() -> None:
    info = bag_info(SRR520)
    assert info.undefined_types == ["nebula_msgs/msg/NebulaPackets"]
    (stats,) = info.topics.values()
    assert stats.stamp_source == "record" and stats.count == 4
    text = format_info(info)
    assert "nebula_msgs/msg/NebulaPackets is defined neither in the bag nor in edgefuse's typestore" in text
