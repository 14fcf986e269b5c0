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

No I/O of its own: :class:`FrameReader` reads from any object with libp2p's
``async read(n)`` (up to ``n`` bytes, at least one; empty or ``EOFError`` at the end).
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


READ_CHUNK = 64 * 1024  # what one read asks the stream for: every frame already there


class FrameReader:
    """The frames of one stream, in order.

    Reads whatever the stream holds (up to :data:`READ_CHUNK`, or the rest of a
    bigger frame) and cuts frames from it: one ``read`` per Yamux frame that
    arrives, not two per frame of ours (its length, then its payload). Each
    ``read`` of a py-libp2p stream takes its locks and checkpoints, and a
    consensus vote is one small frame. What is read ahead stays here, at most
    one chunk beyond the frame being read, so the server's per-peer budget
    (``streams.py``) still holds a peer back.
    """

    __slots__ = ("_stream", "_max", "_buf")

    def __init__(self, stream: Any, max_frame_size: int) -> None:
        self._stream = stream
        self._max = max_frame_size
        self._buf = bytearray()

    async def read(self) -> tuple[int, int, bytes] | None:
        """The next frame: (kind, request_id, body), or None on a clean EOF between frames.

        Raises ``FrameError`` (``reason``: oversize_frame, short_frame, truncated_frame,
        unknown_frame_kind). Stream errors (reset, closed) propagate as libp2p's exceptions.
        """
        buf = self._buf
        while True:
            if len(buf) >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(buf)
                if length > self._max:
                    raise FrameError(f"frame of {length} bytes exceeds the {self._max}-byte limit",
                                     reason="oversize_frame")
                if length < HEADER_SIZE:
                    raise FrameError(f"frame of {length} bytes is shorter than its {HEADER_SIZE}-byte header",
                                     reason="short_frame")
                end = _LENGTH.size + length
                if len(buf) >= end:
                    kind, request_id = _HEADER.unpack_from(buf, _LENGTH.size)
                    if kind not in (KIND_REQUEST, KIND_RESPONSE, KIND_ERROR):
                        raise FrameError(f"unknown frame kind {kind}", reason="unknown_frame_kind")
                    body = bytes(buf[_LENGTH.size + HEADER_SIZE:end])
                    del buf[:end]
                    return kind, request_id, body
                want = max(READ_CHUNK, end - len(buf))
            else:
                want = READ_CHUNK
            try:
                chunk = await self._stream.read(want)
            except EOFError:
                chunk = b""
            if not chunk:
                if buf:
                    raise FrameError("stream ended inside a frame (truncated frame)", reason="truncated_frame")
                return None
            buf += chunk


def encode_frame(kind: int, request_id: int, body: bytes, max_frame_size: int) -> bytes:
    length = HEADER_SIZE + len(body)
    if length > max_frame_size:
        raise FrameError(f"frame of {length} bytes exceeds the {max_frame_size}-byte limit")
    return _LENGTH.pack(length) + _HEADER.pack(kind, request_id) + body
