"""Hesai LiDARs: PandarXT32 point-cloud packets (:mod:`edgefuse_drivers.hesai.xt32`) and
:class:`~edgefuse_drivers.hesai.source.HesaiPacketSource` over nebula packet bags (``hesai://``)."""

from __future__ import annotations

from edgefuse_drivers.hesai.xt32 import POINT_DTYPE, ReturnType, Xt32Calibration, Xt32Decoder, Xt32Sweep

__all__ = ["POINT_DTYPE", "ReturnType", "Xt32Calibration", "Xt32Decoder", "Xt32Sweep"]
