"""``sensor_msgs/Image`` and ``CompressedImage`` ↔ :class:`ImageData` / :class:`CompressedImageData`.

Image pixels are viewed zero-copy from the message's ``data`` buffer: the view is HxW (one channel)
or HxWxC, with row stride ``step`` so padded rows need no copy.  Multi-byte pixels of big-endian
images (``is_bigendian = 1``) are the one exception: they are copied into native byte order, so
every array edgefuse hands on is native-endian.

A valid ``Image`` (anything else raises :class:`~edgefuse.errors.MessageError`): a known
``encoding`` (:func:`encoding_layout`), ``step >= width * bytes per pixel`` (rows may be padded) and
``len(data) == step * height`` exactly, as the message definition states and cv_bridge checks
(trailing bytes mean the header disagrees with the buffer: an error, never silently ignored).  An
image without pixels (``width * height == 0``) has no data.  The result always has shape
``(height, width)`` or ``(height, width, channels)`` and the encoding's dtype.

A ``CompressedImage`` must hold data (no image encodes to 0 bytes); its ``format`` is passed on as
given (``jpeg``, ``png``, ``16UC1; compressedDepth png`` …) for the decoder to interpret.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError
from edgefuse.msgs._common import byte_array, header_stamp_ns, make_header, make_msg
from edgefuse.msgs.types import CompressedImageData, ImageData

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    "ENCODINGS",
    "compressed_from_msg",
    "encoding_layout",
    "image_from_msg",
    "msg_from_compressed",
    "msg_from_image",
]

#: Named encodings → (numpy type code without byte order, channels).
ENCODINGS: dict[str, tuple[str, int]] = {
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "bgr8": ("u1", 3),
    "rgb8": ("u1", 3),
    "bgra8": ("u1", 4),
    "rgba8": ("u1", 4),
    "bgr16": ("u2", 3),
    "rgb16": ("u2", 3),
    "bgra16": ("u2", 4),
    "rgba16": ("u2", 4),
    **{f"bayer_{p}8": ("u1", 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": ("u2", 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
}

_CV_RE = re.compile(r"^(8|16|32|64)(U|S|F)C([1-9][0-9]*)$")  # any channel count, as ROS allows
_CV_KIND = {"U": "u", "S": "i", "F": "f"}


def encoding_layout(encoding: str) -> tuple[np.dtype[Any], int]:
    """Native-order element dtype and channel count of an image encoding.

    Accepts the named encodings of :data:`ENCODINGS` and OpenCV-style ``<bits><U|S|F>C<n>``
    (``8UC3``, ``16SC1``, ``32FC1``, ``64FC1`` …).

    Raises:
        MessageError: unknown encoding.
    """
    if encoding in ENCODINGS:
        code, channels = ENCODINGS[encoding]
        return np.dtype(code), channels
    match = _CV_RE.match(encoding)
    if match is None or (match[2] == "F" and match[1] in {"8", "16"}):
        raise MessageError(f"unknown image encoding {encoding!r}")
    bits, kind, n_channels = match.groups()
    return np.dtype(f"{_CV_KIND[kind]}{int(bits) // 8}"), int(n_channels)


def image_from_msg(msg: Any) -> ImageData:
    """Convert a ``sensor_msgs/Image`` to :class:`ImageData` (zero-copy view, see module doc).

    Raises:
        MessageError: unknown encoding, ``step`` smaller than one row of pixels, ``len(data) !=
            step * height``, or data in an image without pixels.
    """
    encoding = str(msg.encoding)
    dtype, channels = encoding_layout(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * dtype.itemsize * channels
    if step < row_bytes:
        raise MessageError(
            f"image step {step} < width {width} * {dtype.itemsize} bytes * {channels} channels = {row_bytes}"
        )
    data = byte_array(msg.data, "image data")
    if data.size != step * height:
        rel, tail = ("<", "") if data.size < step * height else (">", ": trailing bytes the header does not describe")
        raise MessageError(
            f"image data has {data.size} bytes {rel} step {step} * height {height} = {step * height}{tail}"
        )
    if height * width == 0 and data.size:
        raise MessageError(f"image has no pixels ({width}x{height}) but {data.size} data bytes")
    element = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    shape: tuple[int, ...] = (height, width, channels) if channels > 1 else (height, width)
    strides: tuple[int, ...] = (step, dtype.itemsize * channels, dtype.itemsize)[: len(shape)]
    if height == 0 or width == 0:
        pixels: npt.NDArray[Any] = np.zeros(shape, dtype=dtype)
    else:
        pixels = np.ndarray(shape, dtype=element, buffer=data, offset=0, strides=strides)
        if not element.isnative:
            pixels = pixels.astype(dtype)
    return ImageData(
        stamp_ns=header_stamp_ns(msg), frame_id=str(msg.header.frame_id), encoding=encoding, data=pixels
    )


def msg_from_image(ts: Typestore, payload: ImageData) -> Any:
    """Build a ``sensor_msgs/msg/Image`` (little-endian, rows packed) from :class:`ImageData`.

    Raises:
        MessageError: unknown encoding, or an array whose dtype/shape does not match it.
    """
    dtype, channels = encoding_layout(payload.encoding)
    arr = np.asarray(payload.data)
    expected_ndim = 3 if channels > 1 else 2
    if arr.ndim == 3 and channels == 1 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise MessageError(f"image {payload.encoding}: expected {channels} channel(s), got shape {arr.shape}")
    if arr.dtype.kind != dtype.kind or arr.dtype.itemsize != dtype.itemsize:
        raise MessageError(f"image {payload.encoding}: expected dtype {dtype}, got {arr.dtype}")
    packed = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("<"))
    height, width = packed.shape[:2]
    return make_msg(
        ts,
        "sensor_msgs/msg/Image",
        header=make_header(ts, payload.stamp_ns, payload.frame_id),
        height=height,
        width=width,
        encoding=payload.encoding,
        is_bigendian=0,
        step=width * dtype.itemsize * channels,
        data=packed.reshape(-1).view(np.uint8),
    )


def compressed_from_msg(msg: Any) -> CompressedImageData:
    """Convert a ``sensor_msgs/CompressedImage``; ``data`` is the encoded bytes (zero-copy).

    Raises:
        MessageError: no data.
    """
    data = byte_array(msg.data, "CompressedImage data")
    if data.size == 0:
        raise MessageError(f"CompressedImage ({str(msg.format)!r}) has no data")
    return CompressedImageData(
        stamp_ns=header_stamp_ns(msg), frame_id=str(msg.header.frame_id), format=str(msg.format), data=data
    )


def msg_from_compressed(ts: Typestore, payload: CompressedImageData) -> Any:
    """Build a ``sensor_msgs/msg/CompressedImage`` from :class:`CompressedImageData`."""
    data = np.ascontiguousarray(payload.data).reshape(-1).view(np.uint8)
    return make_msg(
        ts,
        "sensor_msgs/msg/CompressedImage",
        header=make_header(ts, payload.stamp_ns, payload.frame_id),
        format=payload.format,
        data=data,
    )
