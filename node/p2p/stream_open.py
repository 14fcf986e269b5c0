"""Stream opens and frame writes that a deadline cuts short leave the connection whole.

py-libp2p 0.8.1's ``Yamux.open_stream`` takes one of the connection's 256 backlog
slots (``stream_backlog_semaphore``) and registers the stream, then writes its SYN
frame; only ``Exception`` is caught around the write, so a cancellation (trio's
``Cancelled`` is a ``BaseException``) while it waits for the connection's write lock,
or at the checkpoint after the write, leaves the stream registered and its slot
taken, with nobody holding the stream to close it. ``SwarmConn.new_stream`` then
awaits the stream's state lock and the swarm's notifees; a cancellation there loses
an opened stream the same way. Every request of ours has a deadline, so under load
(a CPU-starved node, a busy connection) opens are cancelled now and then, and each
one can leak a slot (two hosts on 127.0.0.1, opens cancelled at random points
within 3 ms: 9 slots lost in 57 cancelled opens). Once a connection's 256 slots are gone,
every new stream on it waits forever while its existing streams (gossip) keep
working — what 16 + 48 processes showed: observers that could open no new stream to
one validator for a whole run (docs/PERFORMANCE.md, "Why no new stream opened").
And ``Yamux._write_frame`` could be cancelled in the middle of a frame: the part
already sent desynchronised the peer's Yamux parser, whose next streams then hung in
negotiation until the connection died.

:func:`install_cancel_safe_opens` replaces the three: an open cancelled or failing
before the caller has the stream releases its slot and drops its bookkeeping
(``Yamux.open_stream``: its SYN is not on the wire), or resets the stream, whose SYN
went out, so the peer forgets it too (``SwarmConn.new_stream``; shielded, at most
``RESET_TIMEOUT`` seconds); a frame is written whole, shielded from cancellation, or
after ``FRAME_WRITE_TIMEOUT`` the connection is closed (``Yamux._write_frame``; the
peer is then not reading). Idempotent.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import trio

log = logging.getLogger("node.p2p.stream_open")
FRAME_WRITE_TIMEOUT = 20.0  # seconds one Yamux frame may take to reach the socket once it holds the write lock
RESET_TIMEOUT = 1.0  # seconds a cancelled open's reset may take (it waits for the write lock)
_INSTALLED = "_branchnet_cancel_safe_open"


def _give_back(conn: Any, stream: Any) -> None:
    """Release ``stream``'s backlog slot and forget it (no await: atomic under trio)."""
    if not stream._backlog_slot_released:
        stream._backlog_slot_released = True
        if stream._owns_backlog_slot:
            conn.stream_backlog_semaphore.release()
    stream.closed = stream.send_closed = stream.recv_closed = True
    for table in (conn.streams, conn.stream_buffers, conn.stream_events):
        table.pop(stream.stream_id, None)


async def reset_quietly(stream: Any, timeout: float = RESET_TIMEOUT) -> None:
    """Reset ``stream`` (a libp2p net stream or a Yamux stream), shielded from cancellation
    and for at most ``timeout`` seconds (it waits for the connection's write lock); a
    stream or connection already gone is no error."""
    with trio.CancelScope(shield=True), trio.move_on_after(timeout):
        try:
            await stream.reset()
        except Exception as exc:  # the connection is going: its streams go with it
            log.debug("resetting a stream failed: %s", exc)


def stream_slots(host: Any) -> dict[str, int]:
    """``open_streams`` (Yamux streams on all connections) and ``lowest_free_stream_slots``
    (the fewest of the 256 backlog slots left on any one connection; 256 with none): the
    gauge that would have shown the leak this module fixes as it happened."""
    lowest, total = 256, 0
    for conn in host.get_network().get_connections():
        muxed = getattr(conn, "muxed_conn", None)
        semaphore = getattr(muxed, "stream_backlog_semaphore", None)
        if semaphore is not None:
            lowest = min(lowest, semaphore.value)
            total += len(muxed.streams)
    return {"open_streams": total, "lowest_free_stream_slots": lowest}


def install_cancel_safe_opens() -> None:
    from libp2p.io.exceptions import ConnectionClosedError
    from libp2p.network.connection.swarm_connection import SwarmConn
    from libp2p.stream_muxer.exceptions import MuxedStreamError
    from libp2p.stream_muxer.yamux.yamux import (
        FLAG_SYN, TYPE_WINDOW_UPDATE, YAMUX_HEADER_FORMAT, Yamux, YamuxStream,
    )

    if getattr(Yamux, _INSTALLED, False):
        return

    async def write_frame_whole(self: Any, data: bytes) -> None:
        """Write one frame, all of it or (after FRAME_WRITE_TIMEOUT) none more and the
        connection closed: a frame cut by a cancellation would corrupt the session for
        every stream on it (the peer's Noise layer fails on the next message and drops
        the connection; 2 of 2 trials, within 60 cancelled opens)."""
        async with self._write_lock:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + FRAME_WRITE_TIMEOUT) as scope:
                await self.secured_conn.write(data)
        if scope.cancelled_caught:  # part of the frame may be on the wire: the connection is broken
            with trio.CancelScope(shield=True), trio.move_on_after(RESET_TIMEOUT):
                await self.secured_conn.close()
            raise ConnectionClosedError(f"a frame write took over {FRAME_WRITE_TIMEOUT:g} s: connection closed")

    async def write_frame(self: Any, data: bytes) -> None:
        await write_frame_whole(self, data)
        await trio.lowlevel.checkpoint()  # as upstream's

    async def open_stream(self: Any) -> Any:
        await self.stream_backlog_semaphore.acquire()
        stream = None
        try:
            async with self.streams_lock:
                if self.event_shutting_down.is_set():
                    raise MuxedStreamError("Connection is shutting down")
                stream_id = self.next_stream_id
                self.next_stream_id += 2
                stream = YamuxStream(stream_id, self, True)
                stream._owns_backlog_slot = True
                self.streams[stream_id] = stream
                self.stream_buffers[stream_id] = bytearray()
                self.stream_events[stream_id] = trio.Event()
            syn = struct.pack(YAMUX_HEADER_FORMAT, 0, TYPE_WINDOW_UPDATE, FLAG_SYN, stream_id, 0)
            await write_frame_whole(self, syn)
            return stream  # no checkpoint between the SYN written and the caller holding the stream
        except BaseException as exc:
            if stream is None:
                self.stream_backlog_semaphore.release()
            else:
                _give_back(self, stream)
            if isinstance(exc, Exception) and not isinstance(exc, MuxedStreamError):
                raise MuxedStreamError(f"Failed to send SYN: {exc}") from exc
            raise

    add_stream = SwarmConn._add_stream

    async def new_stream(self: Any) -> Any:
        muxed = await self.muxed_conn.open_stream()
        try:
            return await add_stream(self, muxed)
        except BaseException:
            added = next((s for s in self.streams if s.muxed_stream is muxed), None)
            await reset_quietly(added if added is not None else muxed)
            if not muxed._backlog_slot_released:  # the reset did not finish in time
                _give_back(muxed.conn, muxed)
            raise

    Yamux.open_stream = open_stream
    Yamux._write_frame = write_frame
    SwarmConn.new_stream = new_stream
    setattr(Yamux, _INSTALLED, True)
