"""Request/response over long-lived, pipelined libp2p streams.

One libp2p stream per (client peer, protocol id) carries many requests, in
the frames of ``frames.py`` (request frames up to 4 MiB, responses up to
16 MiB + 5). A frame over its limit or shorter than the 5-byte payload
header is a peer fault: the stream is reset, the fault counted and logged,
and the handler keeps serving every other stream. Requests are served
concurrently (responses may come back out of order and are matched by id),
at most ``max_inbound_per_peer`` at a time per peer and protocol; beyond that
the server stops reading that peer's stream of that protocol, so the peer feels
backpressure instead of errors. Per protocol, not per peer: with one budget a
validator's record pushes (slow: every record decoded, screened and verified)
held all 32 slots and its consensus messages waited behind them, 0.7 to 3.4 s
per message under API load at 15-20 % CPU per node.

A request frame with id 0 (:data:`NOTIFICATION_ID`) is a notification: served
like any request, under the same budget, and never answered, not even with an
error (``Requester.notify`` sends one; the consensus outbox sends every
consensus message this way on ``/branchnet/{chain}/consensus/2``).

Client side: ``Requester.request`` reuses one stream per (peer, protocol),
pipelines concurrent requests on it, and when the stream turns out to be
broken opens a new one and retries the request once (so handlers must be
idempotent: a request may reach the server twice if the stream breaks while
it is in flight). Errors: ``PeerUnavailable`` (``ProtocolUnsupported`` when
the peer does not serve the protocol: counted, logged on one DEBUG line, and
py-libp2p's own multi-line ERROR for it is filtered out), ``RequestTimeout``,
``RequestFailed``, and ``FrameError`` for our own oversize request.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import trio

from .errors import FrameError, PeerUnavailable, ProtocolUnsupported, RequestFailed, RequestTimeout
from .faults import PeerFaults
from .frames import (DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_RESPONSE_FRAME_SIZE, HEADER_SIZE,  # noqa: F401
                     FrameReader, KIND_ERROR, KIND_REQUEST, KIND_RESPONSE, encode_frame)
from .host import libp2p_id_of
from .stream_open import reset_quietly

logger = logging.getLogger("node.p2p.streams")

NOTIFICATION_ID = 0  # a request frame with this id is one-way: served, never answered

_MAX_ERROR_MESSAGE = 512
STUCK_OPENS = 3  # stream opens to a peer timed out in a row before its connection is closed (Requester)
SLOW_SERVE = 5.0  # seconds from reading a request to answering it, past which it is logged (_note_slow)
CLIENT_RESET_TIMEOUT = 0.5  # seconds a client stream's reset may take (stream_open.reset_quietly)
OPENING = "opening a stream"  # a request's phase while it opens the stream it will use

RequestHandler = Callable[[str, bytes], Awaitable[bytes]]


# -- stats --------------------------------------------------------------------

@dataclass(slots=True)
class StreamStats:
    requests_sent: int = 0
    responses_received: int = 0
    request_errors: int = 0        # RequestFailed raised to callers
    request_timeouts: int = 0
    silent_streams_reset: int = 0  # timed out with no frame from the peer meanwhile: stream replaced
    stuck_connections_closed: int = 0  # STUCK_OPENS stream opens in a row timed out: connection closed
    slow_requests_served: int = 0  # took SLOW_SERVE s or more from reading to answering (logged)
    streams_opened: int = 0
    stream_retries: int = 0        # broken stream replaced and request retried
    requests_served: int = 0
    handler_errors: int = 0        # handler raised / timed out / oversize response
    bad_frames: int = 0            # peer sent oversize/short/truncated frames
    inbound_streams: int = 0
    unsupported_protocol: int = 0  # a peer answered "na" to a protocol we asked it for
    notifications_sent: int = 0    # one-way requests (id 0) written
    served_by_protocol: dict = field(default_factory=dict)  # protocol id -> request frames read
    sent_by_protocol: dict = field(default_factory=dict)    # protocol id -> request frames written

    def as_dict(self) -> dict[str, Any]:
        return {name: dict(v) if isinstance(v := getattr(self, name), dict) else v for name in self.__slots__}


def count_by(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


# -- server -------------------------------------------------------------------

class RequestServer:
    """Serves registered protocols on inbound streams (no own tasks: libp2p runs one per stream)."""

    def __init__(self, host: Any, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_response_frame_size: int = DEFAULT_MAX_RESPONSE_FRAME_SIZE,
                 max_inbound_per_peer: int = 32, handler_timeout: float = 30.0,
                 stats: StreamStats | None = None, faults: PeerFaults | None = None) -> None:
        self._host = host
        self.faults = faults or PeerFaults()
        self.protocols: set[str] = set()  # served here: what escapes their handling is our bug
        self._handlers: dict[str, RequestHandler] = {}
        self._max_frame_size = max_frame_size
        self._max_response_frame_size = max_response_frame_size
        self._max_inbound_per_peer = max_inbound_per_peer
        self._handler_timeout = handler_timeout
        self._limiters: dict[tuple[str, str], trio.CapacityLimiter] = {}  # (peer id, protocol id)
        self.stats = stats or StreamStats()

    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None:
        """Serve ``protocol_id``: ``await handler(peer_id, request) -> response``.

        A handler exception becomes an error response ("handler failed: ...");
        it never closes the stream or the server.
        """
        from libp2p.custom_types import TProtocol

        async def on_stream(stream: Any) -> None:
            await self._serve_stream(protocol_id, handler, stream)

        self.protocols.add(protocol_id)
        self._handlers[protocol_id] = handler
        self._host.set_stream_handler(TProtocol(protocol_id), on_stream)

    async def serve_notifications(self, protocol_id: str, stream: Any) -> None:
        """Serve ``stream`` (a consensus link, ``link.py``) as a stream of ``protocol_id``
        that may carry notifications only: a request that wants an answer is a protocol
        violation. Returns when the stream ends; closes it."""
        handler = self._handlers.get(protocol_id)
        if handler is None:
            await stream.close()
            return
        await self._serve_stream(protocol_id, handler, stream, notifications_only=True)

    def _limiter(self, peer_id: str, protocol_id: str) -> trio.CapacityLimiter:
        key = (peer_id, protocol_id)
        limiter = self._limiters.get(key)
        if limiter is None:
            if len(self._limiters) > 4096:
                self._limiters = {k: v for k, v in self._limiters.items() if v.borrowed_tokens}
            limiter = self._limiters[key] = trio.CapacityLimiter(self._max_inbound_per_peer)
        return limiter

    async def _serve_stream(self, protocol_id: str, handler: RequestHandler, stream: Any, *,
                            notifications_only: bool = False) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        self.stats.inbound_streams += 1
        write_lock = trio.Lock()
        limiter = self._limiter(peer_id, protocol_id)
        frames = FrameReader(stream, self._max_frame_size)
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    try:
                        frame = await frames.read()
                    except FrameError as exc:
                        self.stats.bad_frames += 1
                        self.faults.report(peer_id, protocol_id, exc.reason, fault="malformed", detail=str(exc))
                        if not notifications_only:  # a link's far end reads notifications only
                            await self._send(stream, write_lock, KIND_ERROR, 0, f"bad frame: {exc}".encode())
                        break
                    except Exception as exc:  # reset / closed by the peer
                        logger.debug("stream %s from %s ended: %r", protocol_id, peer_id, exc)
                        break
                    if frame is None:
                        break
                    kind, request_id, body = frame
                    if kind != KIND_REQUEST:
                        self.stats.bad_frames += 1
                        self.faults.report(peer_id, protocol_id, "not_a_request", fault="protocol_violation")
                        break
                    if notifications_only and request_id != NOTIFICATION_ID:
                        self.stats.bad_frames += 1
                        self.faults.report(peer_id, protocol_id, "not_a_notification", fault="protocol_violation")
                        break
                    count_by(self.stats.served_by_protocol, protocol_id)
                    token = object()
                    read_at = trio.current_time()
                    await limiter.acquire_on_behalf_of(token)
                    nursery.start_soon(self._serve_request, handler, peer_id, request_id, body,
                                       stream, write_lock, limiter, token, protocol_id, read_at)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await stream.close()
                except Exception:
                    pass

    async def _serve_request(self, handler: RequestHandler, peer_id: str, request_id: int,
                             body: bytes, stream: Any, write_lock: trio.Lock,
                             limiter: trio.CapacityLimiter, token: object, protocol_id: str,
                             read_at: float) -> None:
        started = trio.current_time()
        handled: float | None = None
        try:
            try:
                with trio.fail_after(self._handler_timeout):
                    response = await handler(peer_id, body)
                handled = trio.current_time()
                if not isinstance(response, (bytes, bytearray)):
                    raise TypeError(f"handler returned {type(response).__name__}, not bytes")
                frame = encode_frame(KIND_RESPONSE, request_id, bytes(response),
                                     self._max_response_frame_size)
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
                frame = encode_frame(kind, request_id, body_out, self._max_response_frame_size)
            else:
                self.stats.requests_served += 1
            if request_id == NOTIFICATION_ID:  # one-way: the sender waits for no answer
                if body_out is not None:
                    logger.debug("notification from %s not served: %s", peer_id, body_out[:200])
                return
            try:
                async with write_lock:
                    await stream.write(frame)
            except Exception as exc:
                logger.debug("could not answer %s: %r", peer_id, exc)
        finally:
            limiter.release_on_behalf_of(token)
            self._note_slow(peer_id, protocol_id, read_at, started, handled)

    def _note_slow(self, peer_id: str, protocol_id: str, read_at: float, started: float, handled: float | None) -> None:
        """Log a request that took SLOW_SERVE seconds or more from reading it to the end of its
        answer, and where the time went: waiting for a slot (the per-peer, per-protocol limit),
        the handler, writing the answer (Yamux's flow control, the stream's write lock)."""
        end = trio.current_time()
        if end - read_at < SLOW_SERVE:
            return
        self.stats.slow_requests_served += 1
        handler_end = end if handled is None else handled
        logger.info("served a %s request from %s in %.1f s: %.1f s waiting for a slot, %.1f s in the handler, "
                    "%.1f s writing the answer", protocol_id, peer_id, end - read_at, started - read_at,
                    handler_end - started, end - handler_end)

    async def _send(self, stream: Any, lock: trio.Lock, kind: int, request_id: int, body: bytes) -> None:
        try:
            async with lock:
                await stream.write(encode_frame(kind, request_id, body[:_MAX_ERROR_MESSAGE],
                                                self._max_response_frame_size))
        except Exception:
            pass


# -- client -------------------------------------------------------------------

class _Broken(Exception):
    """The client stream broke before our response arrived."""


class _ClientStream:
    """One long-lived outbound stream with pipelined requests matched by id."""

    def __init__(self, stream: Any, max_frame_size: int, protocol_id: str = "") -> None:
        self.stream = stream
        self.protocol_id = protocol_id
        self.max_frame_size = max_frame_size
        self.pending: dict[int, trio.MemorySendChannel[tuple[int, bytes]]] = {}
        self.next_id = 1
        self.write_lock = trio.Lock()
        self.broken: str | None = None
        self.done = trio.Event()
        self.last_frame_at = -math.inf  # trio time of the last frame the peer sent on it

    def allocate_id(self) -> int:
        request_id = self.next_id
        self.next_id = 1 if request_id >= 0xFFFFFFFF else request_id + 1
        return request_id

    async def read_loop(self) -> None:
        reason = "stream closed by peer"
        frames = FrameReader(self.stream, self.max_frame_size)
        try:
            while True:
                frame = await frames.read()
                if frame is None:
                    break
                self.last_frame_at = trio.current_time()
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
            await reset_quietly(self.stream, CLIENT_RESET_TIMEOUT)

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
                 max_response_frame_size: int = DEFAULT_MAX_RESPONSE_FRAME_SIZE,
                 default_timeout: float = 10.0, stats: StreamStats | None = None,
                 on_stuck_connection: Callable[[str], None] | None = None) -> None:
        _quiet_unsupported_protocol_errors()
        # called with a peer id when streams to it could not be opened STUCK_OPENS times in a
        # row: the connection is closed (P2PNetwork) so that it is dialed afresh
        self._on_stuck_connection = on_stuck_connection
        self._open_timeouts: dict[str, int] = {}  # peer id -> stream opens timed out in a row
        self._host = host
        self._max_frame_size = max_frame_size
        self._max_response_frame_size = max_response_frame_size
        self._default_timeout = default_timeout
        self._streams: dict[tuple[str, str], _ClientStream] = {}
        self._opening: dict[tuple[str, str], trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self.stats = stats or StreamStats()
        self.round_trips: dict[str, float] = {}  # peer id -> seconds of its last answered request

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
                await reset_quietly(client.stream, CLIENT_RESET_TIMEOUT)
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
        client, started = None, trio.current_time()
        phase = [""]  # where a request that times out was: opening a stream, writing, or waiting
        try:
            with trio.fail_after(timeout):
                for attempt in range(attempts):
                    client, phase[0] = None, "waiting for a stream being opened"
                    client = await self._client(key, phase)
                    try:
                        started = trio.current_time()
                        response = await self._exchange(client, body, phase)
                        self.round_trips[key[0]] = trio.current_time() - started
                        return response
                    except _Broken as exc:
                        if self._streams.get(key) is client:
                            del self._streams[key]
                        if attempt + 1 >= attempts:
                            raise PeerUnavailable(f"{peer_id} {protocol_id}: {exc}") from None
                        self.stats.stream_retries += 1
                        logger.debug("stream to %s broke (%s); retrying once", peer_id, exc)
        except trio.TooSlowError:
            self.stats.request_timeouts += 1
            if client is not None and client.broken is None and client.last_frame_at < started:
                self._drop_silent(key, client, timeout)
            elif phase[0] == OPENING:
                self._stuck_open(key, timeout)
            else:
                logger.info("no answer from %s on %s within %gs (%s; the last frame on the stream came %s)", peer_id,
                            protocol_id, timeout, phase[0], "never" if client is None or client.last_frame_at == -math.inf
                            else f"{trio.current_time() - client.last_frame_at:.1f} s ago")
            raise RequestTimeout(f"no response from {peer_id} on {protocol_id} "
                                 f"within {timeout}s") from None
        raise AssertionError("unreachable")

    def _stuck_open(self, key: tuple[str, str], timeout: float) -> None:
        """A stream to the peer could not be opened within the request's timeout. Seen in
        16 + 48 runs: an observer's every stream open to one validator hung, every 10 s for
        the whole run, while the connection's older streams (gossip) kept working. After
        STUCK_OPENS in a row with no stream opened in between, close the connection (a kept
        link is redialed, over a new connection)."""
        peer = key[0]
        n = self._open_timeouts[peer] = self._open_timeouts.get(peer, 0) + 1
        logger.info("no answer from %s on %s within %gs: could not open a stream (%d in a row)", peer, key[1], timeout, n)
        if n >= STUCK_OPENS and self._on_stuck_connection is not None:
            self._open_timeouts.pop(peer, None)
            self.stats.stuck_connections_closed += 1
            logger.info("closing the connection to %s: %d stream opens in a row timed out", peer, n)
            self._on_stuck_connection(peer)

    def _drop_silent(self, key: tuple[str, str], client: _ClientStream, timeout: float) -> None:
        """A request went unanswered and the peer sent nothing else on its stream meanwhile:
        the stream may be dead while the connection lives (16 + 48 processes under load: an
        observer's requests to one validator timed out again and again, every 10-15 s, until
        the end of the run, while gossip from it kept coming). Reset it; the next request opens
        a new one. A slow handler beside answered requests leaves the stream alone."""
        self.stats.silent_streams_reset += 1
        logger.info("no answer from %s on %s within %gs and nothing else on that stream: opening a new one",
                    key[0], key[1], timeout)
        client.fail("no frame from the peer while a request waited")
        if self._streams.get(key) is client:
            del self._streams[key]
        if self._nursery is not None:  # (None: the requester is stopping; the connection goes with it)
            self._nursery.start_soon(reset_quietly, client.stream, CLIENT_RESET_TIMEOUT)

    async def notify(self, peer_id: str, protocol_id: str, body: bytes, *, timeout: float | None = None) -> None:
        """Send ``body`` to ``peer_id`` on ``protocol_id`` one way: a request frame with id
        0 (:data:`NOTIFICATION_ID`), which the server serves and never answers. Returns once
        the frame is written (Yamux's flow control and the server's per-(peer, protocol)
        budget are the backpressure), so a caller learns of a peer's silence only when
        its writes stall. Never retried. Raises ``FrameError`` (over the frame limit),
        ``PeerUnavailable`` (no stream, or it broke), ``RequestTimeout`` (the write did
        not finish within ``timeout``)."""
        if self._nursery is None:
            raise RuntimeError("Requester.notify called before run() started")
        frame = encode_frame(KIND_REQUEST, NOTIFICATION_ID, body, self._max_frame_size)
        timeout = self._default_timeout if timeout is None else timeout
        key = (str(peer_id), protocol_id)
        try:
            with trio.fail_after(timeout):
                client = await self._client(key)
                async with client.write_lock:
                    if client.broken is not None:
                        raise PeerUnavailable(f"{peer_id} {protocol_id}: {client.broken}")
                    try:
                        await client.stream.write(frame)
                    except trio.Cancelled:
                        raise
                    except Exception as exc:
                        client.fail(f"write failed: {exc!r}")
                        if self._streams.get(key) is client:
                            del self._streams[key]
                        raise PeerUnavailable(f"{peer_id} {protocol_id}: {client.broken}") from None
                count_by(self.stats.sent_by_protocol, protocol_id)
                self.stats.notifications_sent += 1
        except trio.TooSlowError:
            self.stats.request_timeouts += 1
            raise RequestTimeout(f"notification to {peer_id} on {protocol_id} not written within {timeout}s") from None

    async def _client(self, key: tuple[str, str], phase: list[str] | None = None) -> _ClientStream:
        while True:
            client = self._streams.get(key)
            if client is not None and client.broken is None:
                return client
            opening = self._opening.get(key)
            if opening is None:
                break
            await opening.wait()
        event = self._opening[key] = trio.Event()
        if phase is not None:
            phase[0] = OPENING  # (this request opens it; the others wait for it)
        try:
            stream = await self._open(*key)
            self._open_timeouts.pop(key[0], None)
            client = _ClientStream(stream, self._max_response_frame_size, key[1])
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

        try:
            return await self._host.new_stream(libp2p_id_of(peer_id), [TProtocol(protocol_id)])
        except trio.Cancelled:
            raise
        except Exception as exc:
            if _is_unsupported_protocol(exc):
                self.stats.unsupported_protocol += 1
                logger.debug("peer %s does not serve %s", peer_id, protocol_id)
                raise ProtocolUnsupported(f"{peer_id} does not serve {protocol_id}") from None
            raise PeerUnavailable(f"cannot open {protocol_id} stream to {peer_id}: {exc}") from exc

    async def _exchange(self, client: _ClientStream, body: bytes, phase: list[str]) -> bytes:
        request_id = client.allocate_id()
        send, receive = trio.open_memory_channel[tuple[int, bytes]](1)
        client.pending[request_id] = send
        try:
            try:
                phase[0] = "writing the request"
                async with client.write_lock:
                    if client.broken is not None:
                        raise _Broken(client.broken)
                    await client.stream.write(
                        encode_frame(KIND_REQUEST, request_id, body, self._max_frame_size))
                    count_by(self.stats.sent_by_protocol, client.protocol_id)
            except (_Broken, trio.Cancelled):
                raise
            except Exception as exc:
                client.fail(f"write failed: {exc!r}")
                raise _Broken(client.broken) from None
            self.stats.requests_sent += 1
            phase[0] = "request written, waiting for the answer"
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
        self.round_trips.pop(str(peer_id), None)


# -- a peer that does not serve a protocol ---------------------------------------

def _is_unsupported_protocol(exc: BaseException) -> bool:
    """True if multistream-select was answered "na" (py-libp2p wraps it in StreamFailure)."""
    from libp2p.protocol_muxer.exceptions import MultiselectClientError, ProtocolNotSupportedError

    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ProtocolNotSupportedError) or (
                isinstance(seen, MultiselectClientError)
                and str(seen).startswith("protocols not supported")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _DropUnsupportedProtocolErrors(logging.Filter):
    """py-libp2p logs a 7-line ERROR whenever a peer answers "na" to a new stream
    (``BasicHost.new_stream``); ``Requester._open`` counts and reports that case itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Failed to open stream to peer")
                    and "not supported" in message)


def _quiet_unsupported_protocol_errors() -> None:
    lib_logger = logging.getLogger("libp2p.host.basic_host")
    if not any(isinstance(f, _DropUnsupportedProtocolErrors) for f in lib_logger.filters):
        lib_logger.addFilter(_DropUnsupportedProtocolErrors())
