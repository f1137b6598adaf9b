"""Continental automotive radars: ARS548 (SOME/IP over UDP) and SRR520 (CAN-FD frames over UDP).

Pure per-packet decoders (:func:`decode_ars548`, :class:`Srr520Decoder` for the multi-frame SRR520 lists)
and :class:`~edgefuse_drivers.continental.source.ContinentalPacketSource` over nebula packet bags.
"""

from __future__ import annotations

from edgefuse_drivers.continental.ars548 import (
    Ars548DetectionList,
    Ars548ObjectList,
    decode_ars548,
    decode_detection_list,
    decode_object_list,
)

__all__ = [
    "Ars548DetectionList",
    "Ars548ObjectList",
    "decode_ars548",
    "decode_detection_list",
    "decode_object_list",
]
