"""Frames of the request/response streams (``streams.py``): the wire format and its limits.

    frame   = length:u32be  payload             (length = len(payload))
    payload = kind:u8  request_id:u32be  body   (kind: 0 request, 1 response, 2 error)

``body`` is opaque bytes (callers use protocol.encoding); for ``error`` it is
a UTF-8 message. Frames are bounded by direction: a request frame's length is
at most ``DEFAULT_MAX_FRAME_SIZE`` (4 MiB: the largest request is a proposal
with an inline block of up to 3 MiB), a response or error frame's at most
``DEFAULT_MAX_RESPONSE_FRAME_SIZE`` (16 MiB + 5: a sync answer of up to 64
blocks and certificates, ``node.wire.MAX_RESPONSE_BYTES``; one block alone may
be 8 MiB). So a peer can make a server buffer at most 4 MiB per request, and
only a server we asked can send us more.

No I/O of its own: ``read_frame`` reads from any object with libp2p's
``async read(n)``.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import FrameError

KIND_REQUEST, KIND_RESPONSE, KIND_ERROR = 0, 1, 2
_LENGTH = struct.Struct(">I")
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size  # 5
DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024                                # request frames
DEFAULT_MAX_RESPONSE_FRAME_SIZE = 16 * 1024 * 1024 + HEADER_SIZE        # response/error frames


async def _read_exact(stream: Any, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = await stream.read(n - len(chunks))
        if not chunk:
            raise EOFError
        chunks += chunk
    return bytes(chunks)


async def read_frame(stream: Any, max_frame_size: int) -> tuple[int, int, bytes] | None:
    """Read one frame: (kind, request_id, body), or None on a clean EOF between frames.

    Raises ``FrameError`` (``reason``: oversize_frame, short_frame, truncated_frame,
    unknown_frame_kind).
    Stream errors (reset, closed) propagate as libp2p's exceptions.
    """
    try:
        first = await stream.read(_LENGTH.size)
    except EOFError:
        return None
    if not first:
        return None
    try:
        head = first if len(first) == _LENGTH.size else first + await _read_exact(
            stream, _LENGTH.size - len(first))
        (length,) = _LENGTH.unpack(head)
        if length > max_frame_size:
            raise FrameError(f"frame of {length} bytes exceeds the {max_frame_size}-byte limit",
                             reason="oversize_frame")
        if length < HEADER_SIZE:
            raise FrameError(f"frame of {length} bytes is shorter than its {HEADER_SIZE}-byte header",
                             reason="short_frame")
        payload = await _read_exact(stream, length)
    except EOFError:
        raise FrameError("stream ended inside a frame (truncated frame)", reason="truncated_frame") from None
    kind, request_id = _HEADER.unpack_from(payload)
    if kind not in (KIND_REQUEST, KIND_RESPONSE, KIND_ERROR):
        raise FrameError(f"unknown frame kind {kind}", reason="unknown_frame_kind")
    return kind, request_id, payload[HEADER_SIZE:]


def encode_frame(kind: int, request_id: int, body: bytes, max_frame_size: int) -> bytes:
    length = HEADER_SIZE + len(body)
    if length > max_frame_size:
        raise FrameError(f"frame of {length} bytes exceeds the {max_frame_size}-byte limit")
    return _LENGTH.pack(length) + _HEADER.pack(kind, request_id) + body
