"""Request/response over long-lived, pipelined libp2p streams.

Wire format (one libp2p stream per (client peer, protocol id), many requests):

    frame   = length:u32be  payload             (length = len(payload))
    payload = kind:u8  request_id:u32be  body   (kind: 0 request, 1 response, 2 error)

``body`` is opaque bytes (callers use protocol.encoding); for ``error`` it is
a UTF-8 message. A frame whose length exceeds ``max_frame_size`` or is
shorter than the 5-byte payload header is a peer fault: the stream is
reset, the fault counted and logged, and the handler keeps serving every
other stream. Requests are served concurrently (responses may come back out
of order and are matched by id), at most ``max_inbound_per_peer`` at a time
per peer; beyond that the server stops reading that peer's streams, so the
peer feels backpressure instead of errors.

Client side: ``Requester.request`` reuses one stream per (peer, protocol),
pipelines concurrent requests on it, and when the stream turns out to be
broken opens a new one and retries the request once (so handlers must be
idempotent: a request may reach the server twice if the stream breaks while
it is in flight). Errors: ``PeerUnavailable``, ``RequestTimeout``,
``RequestFailed``, and ``FrameError`` for our own oversize request.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import trio

from .errors import FrameError, PeerUnavailable, RequestFailed, RequestTimeout

logger = logging.getLogger("node.p2p.streams")

DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024
KIND_REQUEST, KIND_RESPONSE, KIND_ERROR = 0, 1, 2
_LENGTH = struct.Struct(">I")
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size  # 5
_MAX_ERROR_MESSAGE = 512

RequestHandler = Callable[[str, bytes], Awaitable[bytes]]


# -- framing ------------------------------------------------------------------

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

    Raises ``FrameError`` (oversize, short, truncated, unknown kind).
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
            raise FrameError(f"frame of {length} bytes exceeds the {max_frame_size}-byte limit")
        if length < HEADER_SIZE:
            raise FrameError(f"frame of {length} bytes is shorter than its {HEADER_SIZE}-byte header")
        payload = await _read_exact(stream, length)
    except EOFError:
        raise FrameError("stream ended inside a frame (truncated frame)") from None
    kind, request_id = _HEADER.unpack_from(payload)
    if kind not in (KIND_REQUEST, KIND_RESPONSE, KIND_ERROR):
        raise FrameError(f"unknown frame kind {kind}")
    return kind, request_id, payload[HEADER_SIZE:]


def encode_frame(kind: int, request_id: int, body: bytes, max_frame_size: int) -> bytes:
    length = HEADER_SIZE + len(body)
    if length > max_frame_size:
        raise FrameError(f"frame of {length} bytes exceeds the {max_frame_size}-byte limit")
    return _LENGTH.pack(length) + _HEADER.pack(kind, request_id) + body


# -- stats --------------------------------------------------------------------

@dataclass(slots=True)
class StreamStats:
    requests_sent: int = 0
    responses_received: int = 0
    request_errors: int = 0        # RequestFailed raised to callers
    request_timeouts: int = 0
    streams_opened: int = 0
    stream_retries: int = 0        # broken stream replaced and request retried
    requests_served: int = 0
    handler_errors: int = 0        # handler raised / timed out / oversize response
    bad_frames: int = 0            # peer sent oversize/short/truncated frames
    inbound_streams: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


# -- server -------------------------------------------------------------------

class RequestServer:
    """Serves registered protocols on inbound streams (no own tasks: libp2p runs one per stream)."""

    def __init__(self, host: Any, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_inbound_per_peer: int = 32, handler_timeout: float = 30.0,
                 stats: StreamStats | None = None) -> None:
        self._host = host
        self._max_frame_size = max_frame_size
        self._max_inbound_per_peer = max_inbound_per_peer
        self._handler_timeout = handler_timeout
        self._limiters: dict[str, trio.CapacityLimiter] = {}
        self.stats = stats or StreamStats()

    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None:
        """Serve ``protocol_id``: ``await handler(peer_id, request) -> response``.

        A handler exception becomes an error response ("handler failed: ...");
        it never closes the stream or the server.
        """
        from libp2p.custom_types import TProtocol

        async def on_stream(stream: Any) -> None:
            await self._serve_stream(protocol_id, handler, stream)

        self._host.set_stream_handler(TProtocol(protocol_id), on_stream)

    def _limiter(self, peer_id: str) -> trio.CapacityLimiter:
        limiter = self._limiters.get(peer_id)
        if limiter is None:
            if len(self._limiters) > 4096:
                self._limiters = {k: v for k, v in self._limiters.items() if v.borrowed_tokens}
            limiter = self._limiters[peer_id] = trio.CapacityLimiter(self._max_inbound_per_peer)
        return limiter

    async def _serve_stream(self, protocol_id: str, handler: RequestHandler, stream: Any) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        self.stats.inbound_streams += 1
        write_lock = trio.Lock()
        limiter = self._limiter(peer_id)
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    try:
                        frame = await read_frame(stream, self._max_frame_size)
                    except FrameError as exc:
                        self.stats.bad_frames += 1
                        logger.warning("peer %s sent a bad frame on %s: %s", peer_id, protocol_id, exc)
                        await self._send(stream, write_lock, KIND_ERROR, 0,
                                         f"bad frame: {exc}".encode())
                        break
                    except Exception as exc:  # reset / closed by the peer
                        logger.debug("stream %s from %s ended: %r", protocol_id, peer_id, exc)
                        break
                    if frame is None:
                        break
                    kind, request_id, body = frame
                    if kind != KIND_REQUEST:
                        self.stats.bad_frames += 1
                        logger.warning("peer %s sent a non-request frame on %s", peer_id, protocol_id)
                        break
                    token = object()
                    await limiter.acquire_on_behalf_of(token)
                    nursery.start_soon(self._serve_request, handler, peer_id, request_id, body,
                                       stream, write_lock, limiter, token)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await stream.close()
                except Exception:
                    pass

    async def _serve_request(self, handler: RequestHandler, peer_id: str, request_id: int,
                             body: bytes, stream: Any, write_lock: trio.Lock,
                             limiter: trio.CapacityLimiter, token: object) -> None:
        try:
            try:
                with trio.fail_after(self._handler_timeout):
                    response = await handler(peer_id, body)
                if not isinstance(response, (bytes, bytearray)):
                    raise TypeError(f"handler returned {type(response).__name__}, not bytes")
                frame = encode_frame(KIND_RESPONSE, request_id, bytes(response), self._max_frame_size)
                kind, body_out = KIND_RESPONSE, None
            except trio.TooSlowError:
                self.stats.handler_errors += 1
                kind, body_out = KIND_ERROR, f"handler timed out after {self._handler_timeout}s".encode()
            except FrameError as exc:
                self.stats.handler_errors += 1
                kind, body_out = KIND_ERROR, f"response too large: {exc}".encode()
            except Exception as exc:
                self.stats.handler_errors += 1
                logger.exception("request handler failed for peer %s", peer_id)
                message = f"handler failed: {type(exc).__name__}: {exc}"[:_MAX_ERROR_MESSAGE]
                kind, body_out = KIND_ERROR, message.encode("utf-8", "replace")
            if body_out is not None:
                frame = encode_frame(kind, request_id, body_out, self._max_frame_size)
            else:
                self.stats.requests_served += 1
            try:
                async with write_lock:
                    await stream.write(frame)
            except Exception as exc:
                logger.debug("could not answer %s: %r", peer_id, exc)
        finally:
            limiter.release_on_behalf_of(token)

    async def _send(self, stream: Any, lock: trio.Lock, kind: int, request_id: int, body: bytes) -> None:
        try:
            async with lock:
                await stream.write(encode_frame(kind, request_id, body[:_MAX_ERROR_MESSAGE],
                                                self._max_frame_size))
        except Exception:
            pass


# -- client -------------------------------------------------------------------

class _Broken(Exception):
    """The client stream broke before our response arrived."""


class _ClientStream:
    """One long-lived outbound stream with pipelined requests matched by id."""

    def __init__(self, stream: Any, max_frame_size: int) -> None:
        self.stream = stream
        self.max_frame_size = max_frame_size
        self.pending: dict[int, trio.MemorySendChannel[tuple[int, bytes]]] = {}
        self.next_id = 1
        self.write_lock = trio.Lock()
        self.broken: str | None = None
        self.done = trio.Event()

    def allocate_id(self) -> int:
        request_id = self.next_id
        self.next_id = 1 if request_id >= 0xFFFFFFFF else request_id + 1
        return request_id

    async def read_loop(self) -> None:
        reason = "stream closed by peer"
        try:
            while True:
                frame = await read_frame(self.stream, self.max_frame_size)
                if frame is None:
                    break
                kind, request_id, body = frame
                if kind == KIND_REQUEST:
                    reason = "peer sent a request frame on a client stream"
                    break
                if request_id == 0 and kind == KIND_ERROR:
                    reason = "peer rejected the stream: " + body.decode("utf-8", "replace")
                    break
                channel = self.pending.pop(request_id, None)
                if channel is not None:
                    channel.send_nowait((kind, body))
        except FrameError as exc:
            reason = f"peer sent a bad frame: {exc}"
        except Exception as exc:
            reason = f"stream broke: {exc!r}"
        finally:
            self.fail(reason)
            with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                try:
                    await self.stream.reset()
                except Exception:
                    pass

    def fail(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
        for channel in self.pending.values():
            channel.close()
        self.pending.clear()
        self.done.set()


class Requester:
    """Client side: ``await request(peer_id, protocol_id, body, timeout=...) -> bytes``.

    A service: run it with ``nursery.start(requester.run)``; it owns the reader
    task of every client stream.
    """

    def __init__(self, host: Any, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 default_timeout: float = 10.0, stats: StreamStats | None = None) -> None:
        self._host = host
        self._max_frame_size = max_frame_size
        self._default_timeout = default_timeout
        self._streams: dict[tuple[str, str], _ClientStream] = {}
        self._opening: dict[tuple[str, str], trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self.stats = stats or StreamStats()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for client in list(self._streams.values()):
                client.fail("requester stopped")
                with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                    try:
                        await client.stream.reset()
                    except Exception:
                        pass
            self._streams.clear()

    async def request(self, peer_id: str, protocol_id: str, body: bytes, *,
                      timeout: float | None = None, retry: bool = True) -> bytes:
        """Send ``body`` to ``peer_id`` on ``protocol_id`` and return the response body.

        Raises ``FrameError`` (our request is over the frame limit),
        ``PeerUnavailable`` (cannot open a stream / stream broke twice),
        ``RequestTimeout`` (no answer within ``timeout`` seconds), or
        ``RequestFailed`` (the peer answered with an error).
        """
        if self._nursery is None:
            raise RuntimeError("Requester.request called before run() started")
        encode_frame(KIND_REQUEST, 0, body, self._max_frame_size)  # size check up front
        timeout = self._default_timeout if timeout is None else timeout
        key = (str(peer_id), protocol_id)
        attempts = 2 if retry else 1
        try:
            with trio.fail_after(timeout):
                for attempt in range(attempts):
                    client = await self._client(key)
                    try:
                        return await self._exchange(client, body)
                    except _Broken as exc:
                        if self._streams.get(key) is client:
                            del self._streams[key]
                        if attempt + 1 >= attempts:
                            raise PeerUnavailable(f"{peer_id} {protocol_id}: {exc}") from None
                        self.stats.stream_retries += 1
                        logger.debug("stream to %s broke (%s); retrying once", peer_id, exc)
        except trio.TooSlowError:
            self.stats.request_timeouts += 1
            raise RequestTimeout(f"no response from {peer_id} on {protocol_id} "
                                 f"within {timeout}s") from None
        raise AssertionError("unreachable")

    async def _client(self, key: tuple[str, str]) -> _ClientStream:
        while True:
            client = self._streams.get(key)
            if client is not None and client.broken is None:
                return client
            opening = self._opening.get(key)
            if opening is None:
                break
            await opening.wait()
        event = self._opening[key] = trio.Event()
        try:
            stream = await self._open(*key)
            client = _ClientStream(stream, self._max_frame_size)
            self.stats.streams_opened += 1
            self._streams[key] = client
            assert self._nursery is not None
            self._nursery.start_soon(client.read_loop)
            return client
        finally:
            del self._opening[key]
            event.set()

    async def _open(self, peer_id: str, protocol_id: str) -> Any:
        from libp2p.custom_types import TProtocol
        from libp2p.peer.id import ID

        try:
            return await self._host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol_id)])
        except trio.Cancelled:
            raise
        except Exception as exc:
            raise PeerUnavailable(f"cannot open {protocol_id} stream to {peer_id}: {exc}") from exc

    async def _exchange(self, client: _ClientStream, body: bytes) -> bytes:
        request_id = client.allocate_id()
        send, receive = trio.open_memory_channel[tuple[int, bytes]](1)
        client.pending[request_id] = send
        try:
            try:
                async with client.write_lock:
                    if client.broken is not None:
                        raise _Broken(client.broken)
                    await client.stream.write(
                        encode_frame(KIND_REQUEST, request_id, body, self._max_frame_size))
            except (_Broken, trio.Cancelled):
                raise
            except Exception as exc:
                client.fail(f"write failed: {exc!r}")
                raise _Broken(client.broken) from None
            self.stats.requests_sent += 1
            try:
                kind, response = await receive.receive()
            except trio.EndOfChannel:
                raise _Broken(client.broken or "stream closed") from None
        finally:
            client.pending.pop(request_id, None)
        if kind == KIND_ERROR:
            self.stats.request_errors += 1
            raise RequestFailed(response.decode("utf-8", "replace"))
        self.stats.responses_received += 1
        return response

    def forget_peer(self, peer_id: str) -> None:
        """Drop cached streams to ``peer_id`` (e.g. after it disconnected)."""
        for key in [k for k in self._streams if k[0] == str(peer_id)]:
            self._streams.pop(key).fail("peer forgotten")
