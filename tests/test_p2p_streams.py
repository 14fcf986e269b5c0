"""Request/response over long-lived libp2p streams (real hosts on 127.0.0.1)."""

import struct

import pytest
import trio

from node.p2p import FrameError, P2PConfig, PeerUnavailable, RequestFailed, RequestTimeout
from node.p2p.frames import FrameReader
from node.p2p.streams import HEADER_SIZE, KIND_REQUEST, KIND_RESPONSE, encode_frame
from node.p2p.testing import TEST_PSK, make_keys, network_of

P = "/branchnet/test-echo/1"
SMALL = P2PConfig(psk=TEST_PSK, max_frame_size=64 * 1024, handler_timeout=2.0)


async def echo(peer_id: str, request: bytes) -> bytes:
    if request == b"boom":
        raise ValueError("bad request")
    if request.startswith(b"sleep"):
        await trio.sleep(float(request[5:]))
    return b"echo:" + request


class FakeStream:
    def __init__(self, data: bytes, chunk: int = 3):
        self.data, self.chunk = data, chunk

    async def read(self, n):
        out, self.data = self.data[:min(n, self.chunk)], self.data[min(n, self.chunk):]
        return out


async def read_frame(stream, max_frame_size):
    return await FrameReader(stream, max_frame_size).read()


async def test_frame_codec_roundtrip_and_rejections():
    frame = encode_frame(KIND_REQUEST, 7, b"hello", 1024)
    assert await read_frame(FakeStream(frame), 1024) == (KIND_REQUEST, 7, b"hello")
    assert await read_frame(FakeStream(b""), 1024) is None
    with pytest.raises(FrameError, match="exceeds"):
        await read_frame(FakeStream(struct.pack(">I", 2000) + b"x" * 10), 1024)
    with pytest.raises(FrameError, match="shorter"):
        await read_frame(FakeStream(struct.pack(">I", 2) + b"xx"), 1024)
    with pytest.raises(FrameError, match="truncated"):
        await read_frame(FakeStream(frame[:-1]), 1024)
    with pytest.raises(FrameError, match="kind"):
        await read_frame(FakeStream(struct.pack(">IBI", HEADER_SIZE, 9, 1)), 1024)
    with pytest.raises(FrameError):
        encode_frame(KIND_REQUEST, 1, b"x" * 1024, 1024)


async def test_frames_are_cut_from_whatever_the_stream_holds():
    # Many frames in one read, one frame over many reads, and a clean end between frames.
    frames = [encode_frame(KIND_REQUEST, i, bytes([i]) * i * 50, 4096) for i in range(1, 9)]
    frames.append(encode_frame(KIND_RESPONSE, 9, b"", 4096))
    data = b"".join(frames)
    for chunk in (1, 7, len(data)):
        reader = FrameReader(FakeStream(data, chunk=chunk), 4096)
        got = [await reader.read() for _ in frames]
        assert got == [(KIND_REQUEST, i, bytes([i]) * i * 50) for i in range(1, 9)] + [(KIND_RESPONSE, 9, b"")]
        assert await reader.read() is None
    # a frame over the limit is refused from its length alone, before its bytes arrive
    reader = FrameReader(FakeStream(frames[0] + struct.pack(">I", 5000), chunk=len(data)), 4096)
    assert (await reader.read())[1] == 1
    with pytest.raises(FrameError, match="exceeds"):
        await reader.read()


async def test_round_trip_concurrent_errors_and_timeouts():
    async with network_of(2, config=SMALL) as (a, b):
        b.register_handler(P, echo)
        with trio.fail_after(60):
            assert await a.request(b.peer_id, P, b"hi", timeout=30) == b"echo:hi"

            # many concurrent requests pipelined on one stream, matched by id
            results = {}

            async def one(i):
                results[i] = await a.request(b.peer_id, P, b"%d" % i, timeout=30)

            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(one, i)
            assert results == {i: b"echo:%d" % i for i in range(100)}
            assert a.stream_stats.streams_opened == 1

            # handler exception: clear error on the client, server keeps serving
            with pytest.raises(RequestFailed, match="handler failed: ValueError: bad request"):
                await a.request(b.peer_id, P, b"boom", timeout=30)
            assert await a.request(b.peer_id, P, b"after", timeout=30) == b"echo:after"

            # our own oversize request is refused locally
            with pytest.raises(FrameError):
                await a.request(b.peer_id, P, b"x" * (64 * 1024), timeout=30)

            # server-side handler timeout becomes an error response
            with pytest.raises(RequestFailed, match="timed out"):
                await a.request(b.peer_id, P, b"sleep3", timeout=30)
            assert await a.request(b.peer_id, P, b"still", timeout=30) == b"echo:still"
            assert a.stream_stats.streams_opened == 1
            # client deadline, and nothing else came on the stream meanwhile: it is replaced
            with pytest.raises(RequestTimeout):
                await a.request(b.peer_id, P, b"sleep1", timeout=0.2)
            assert a.stream_stats.silent_streams_reset == 1
            assert await a.request(b.peer_id, P, b"after", timeout=30) == b"echo:after"
            assert a.stream_stats.streams_opened == 2
            assert b.stream_stats.handler_errors == 2

            # unknown protocol -> PeerUnavailable (cannot open the stream)
            with pytest.raises(PeerUnavailable):
                await a.request(b.peer_id, "/branchnet/nope/1", b"x", timeout=30)


async def test_oversize_and_short_frames_from_a_peer_are_rejected_and_server_keeps_serving():
    from libp2p.custom_types import TProtocol
    from libp2p.peer.id import ID

    async with network_of(2, config=SMALL) as (a, b):
        b.register_handler(P, echo)
        with trio.fail_after(60):
            for bad in (struct.pack(">I", 10 * 1024 * 1024) + b"x" * 100,  # oversize
                        struct.pack(">I", 3) + b"abc"):                     # short
                raw = await a.host.new_stream(ID.from_base58(b.peer_id), [TProtocol(P)])
                await raw.write(bad)
                frame = await read_frame(raw, 1024)
                assert frame is not None and frame[1] == 0 and b"bad frame" in frame[2]
                with pytest.raises(EOFError):  # the server closed the stream
                    while await raw.read(10):
                        pass
                await raw.reset()
            assert b.stream_stats.bad_frames == 2
            assert await a.request(b.peer_id, P, b"ok", timeout=30) == b"echo:ok"


async def test_broken_stream_is_replaced_once():
    async with network_of(2, config=SMALL) as (a, b):
        b.register_handler(P, echo)
        with trio.fail_after(60):
            assert await a.request(b.peer_id, P, b"1", timeout=30) == b"echo:1"
            client = next(iter(a.requester._streams.values()))
            await client.stream.reset()  # break it under the requester
            assert await a.request(b.peer_id, P, b"2", timeout=30) == b"echo:2"
            assert a.stream_stats.streams_opened == 2


async def test_a_slow_answer_beside_answered_requests_keeps_the_stream(caplog):
    """A timeout replaces the stream only if the peer sent nothing on it meanwhile (see the
    round-trip test): here another request is answered on it while one handler is stuck."""
    stuck, release = trio.Event(), trio.Event()

    async def handler(peer_id: str, request: bytes) -> bytes:
        if request == b"stuck":
            stuck.set()
            await release.wait()
        return b"echo:" + request

    import logging

    caplog.set_level(logging.INFO, logger="node.p2p.streams")
    patient = P2PConfig(psk=TEST_PSK, max_frame_size=64 * 1024, handler_timeout=60.0)
    async with network_of(2, config=patient) as (a, b):
        b.register_handler(P, handler)
        with trio.fail_after(60):
            assert await a.request(b.peer_id, P, b"first", timeout=30) == b"echo:first"
            order = []

            async def slow():
                with pytest.raises(RequestTimeout):
                    await a.request(b.peer_id, P, b"stuck", timeout=3)
                order.append("timed out")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow)
                await stuck.wait()
                assert await a.request(b.peer_id, P, b"other", timeout=30) == b"echo:other"
                order.append("answered")
            release.set()
            assert order == ["answered", "timed out"]
            assert a.stream_stats.silent_streams_reset == 0 and a.stream_stats.request_timeouts == 1
            (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("no answer from")]
            assert "(request written, waiting for the answer; the last frame on the stream came " in line
            assert await a.request(b.peer_id, P, b"last", timeout=30) == b"echo:last"
            assert a.stream_stats.streams_opened == 1


async def test_a_slow_request_is_logged_with_where_its_time_went(monkeypatch, caplog):
    import logging
    import re

    import node.p2p.streams as streams

    monkeypatch.setattr(streams, "SLOW_SERVE", 0.2)
    caplog.set_level(logging.INFO, logger="node.p2p.streams")
    async with network_of(2, config=SMALL) as (a, b):
        b.register_handler(P, echo)
        with trio.fail_after(60):
            assert await a.request(b.peer_id, P, b"quick", timeout=30) == b"echo:quick"
            assert b.stream_stats.slow_requests_served == 0
            assert await a.request(b.peer_id, P, b"sleep0.3", timeout=30) == b"echo:sleep0.3"
            assert b.stream_stats.slow_requests_served == 1
    (line,) = [r.getMessage() for r in caplog.records if "served a" in r.getMessage()]
    assert line.startswith(f"served a {P} request from {a.peer_id} in ")
    waited, handled = re.search(r"([\d.]+) s waiting for a slot, ([\d.]+) s in the handler", line).groups()
    assert float(handled) >= 0.3 and float(waited) < 0.3  # (the slot was free: no other request)


async def test_a_connection_whose_stream_opens_hang_is_closed():
    """Stream opens to a peer that time out STUCK_OPENS times in a row (each counted once,
    however many requests waited for it) close the connection, so that a kept link is
    dialed afresh; a stream opened in between starts the count again."""
    from node.p2p.streams import STUCK_OPENS

    async with network_of(2, config=SMALL) as (a, b):
        b.register_handler(P, echo)
        real_open, hang = a.requester._open, [True]

        async def open_or_hang(peer_id, protocol_id):
            if hang[0]:
                await trio.sleep_forever()
            return await real_open(peer_id, protocol_id)

        a.requester._open = open_or_hang

        async def timed_out() -> None:
            with pytest.raises(RequestTimeout):
                await a.request(b.peer_id, P, b"x", timeout=0.2)

        with trio.fail_after(60):
            for _ in range(STUCK_OPENS - 1):
                await timed_out()
            hang[0] = False
            assert await a.request(b.peer_id, P, b"opened", timeout=30) == b"echo:opened"  # the count starts again
            a.requester.forget_peer(b.peer_id)
            hang[0] = True
            for _ in range(STUCK_OPENS - 1):  # each open waited for by three requests: one count each
                async with trio.open_nursery() as nursery:
                    for _ in range(3):
                        nursery.start_soon(timed_out)
            assert a.stream_stats.stuck_connections_closed == 0 and b.peer_id in a.connected_peers()
            await timed_out()
            assert a.stream_stats.stuck_connections_closed == 1
            while b.peer_id in a.connected_peers():  # closed by the network's disconnect task
                await trio.sleep(0.01)


async def test_request_to_unknown_peer_is_unavailable():
    stranger = make_keys(3)[2]
    from node.p2p import peer_id_of

    async with network_of(1, config=SMALL) as (a,):
        with trio.fail_after(60), pytest.raises(PeerUnavailable):
            await a.request(peer_id_of(stranger.public_key.raw), P, b"x", timeout=30)


async def test_a_peer_without_the_protocol_is_a_quiet_counted_protocol_unsupported(caplog):
    import logging

    from node.p2p import ProtocolUnsupported

    caplog.set_level(logging.DEBUG)
    async with network_of(2, config=SMALL) as (a, b):
        with trio.fail_after(10):
            for _ in range(3):  # as a sync poll would, every second
                with pytest.raises(ProtocolUnsupported, match="does not serve /branchnet/nope/1"):
                    await a.request(b.peer_id, "/branchnet/nope/1", b"x", timeout=3)
        assert a.stream_stats.unsupported_protocol == 3
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING and "nope" in r.getMessage()]
    assert noisy == []
    ours = [r for r in caplog.records if r.name == "node.p2p.streams" and "nope" in r.getMessage()]
    assert len(ours) == 3 and all(r.levelno == logging.DEBUG and "\n" not in r.getMessage() for r in ours)


async def test_responses_may_be_16_mib_requests_only_4():
    """PROTOCOL.md §11.2: a sync answer (up to 16 MiB) fits one response frame."""
    from node.p2p.frames import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_RESPONSE_FRAME_SIZE, HEADER_SIZE

    sizes = {b"big": DEFAULT_MAX_RESPONSE_FRAME_SIZE - HEADER_SIZE, b"too big": DEFAULT_MAX_RESPONSE_FRAME_SIZE}

    async def sized(peer_id: str, request: bytes) -> bytes:
        return bytes(sizes[request])

    async with network_of(2, config=P2PConfig(psk=TEST_PSK)) as (a, b):
        b.register_handler(P, sized)
        with trio.fail_after(30):
            assert len(await a.request(b.peer_id, P, b"big", timeout=20)) == 16 * 1024 * 1024
            with pytest.raises(RequestFailed, match="response too large"):
                await a.request(b.peer_id, P, b"too big", timeout=20)
            with pytest.raises(FrameError):  # our own request over 4 MiB
                await a.request(b.peer_id, P, bytes(DEFAULT_MAX_FRAME_SIZE), timeout=5)


async def test_a_protocol_that_holds_every_slot_of_a_peer_does_not_hold_back_another():
    """Record pushes that are slow to serve must not delay the same peer's consensus
    messages: the inbound budget is per (peer, protocol). (With one budget per peer
    the echo below waits for a slot until fail_after.)"""
    config = P2PConfig(psk=TEST_PSK, max_inbound_per_peer=4, handler_timeout=30.0)
    release, full = trio.Event(), trio.Event()
    entered = 0

    async def slow(peer_id: str, request: bytes) -> bytes:
        nonlocal entered
        entered += 1
        if entered == 4:
            full.set()
        await release.wait()
        return b"late"

    async with network_of(2, config=config) as (a, b):
        b.register_handler("/branchnet/test-slow/1", slow)
        b.register_handler(P, echo)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(8):  # twice the budget: four wait for a slot
                    nursery.start_soon(lambda: a.request(b.peer_id, "/branchnet/test-slow/1", b"x", timeout=30))
                await full.wait()  # every slot of the slow protocol is taken
                assert await a.request(b.peer_id, P, b"fast", timeout=30) == b"echo:fast"
                assert entered == 4
                release.set()


async def test_a_notification_is_served_one_way_and_never_answered():
    # consensus/2 (PROTOCOL.md §11.2): request id 0 is served, and nothing comes back;
    # requests on the same stream keep their answers.
    got = []

    async def record(peer_id: str, request: bytes) -> bytes:
        if request == b"boom":
            raise ValueError("a notification's handler failed")
        got.append(request)
        return b"never sent"

    async with network_of(2, config=SMALL) as (a, b):
        b.register_handler(P, record)
        with trio.fail_after(60):
            for body in (b"one", b"boom", b"two"):
                await a.notify(b.peer_id, P, body, timeout=30)
            assert await a.request(b.peer_id, P, b"three", timeout=30) == b"never sent"
            while len(got) < 3:
                await trio.sleep(0.01)
        assert got == [b"one", b"two", b"three"]
        assert a.stream_stats.notifications_sent == 2 + 1 and a.stream_stats.responses_received == 1
        assert a.stream_stats.request_errors == 0 and a.stream_stats.streams_opened == 1
        assert b.stream_stats.served_by_protocol[P] == 4 and a.stream_stats.sent_by_protocol[P] == 4


async def test_yamux_credits_the_window_in_batches_not_per_read():
    # py-libp2p 0.8.1 answered nearly every read with a WINDOW_UPDATE frame even with
    # PY_YAMUX_RELEASE_ON_READ=0 (its "partial slack" branch): 17,588 of a validator's
    # 40,953 frames written under load. Now one per half window of data consumed.
    from libp2p.stream_muxer.yamux.yamux import YamuxStream

    updates = []
    original = YamuxStream.send_window_update

    async def counted(self, increment, skip_lock=False):
        updates.append(increment)
        await original(self, increment, skip_lock)

    YamuxStream.send_window_update = counted
    try:
        async with network_of(2, config=SMALL) as (a, b):
            b.register_handler(P, echo)
            with trio.fail_after(60):
                for i in range(200):  # ~20 KiB each way: far below half a 256 KiB window
                    assert await a.request(b.peer_id, P, b"%0100d" % i, timeout=30) == b"echo:%0100d" % i
                updates.clear()
                for i in range(40):  # 40 x 16 KiB each way: more than a window, so credit must flow
                    body = bytes([i]) * 16_000
                    assert await a.request(b.peer_id, P, body, timeout=30) == b"echo:" + body
    finally:
        YamuxStream.send_window_update = original
    assert 2 <= len(updates) <= 16, len(updates)  # ~1.3 MB over 128 KiB batches, not one per read


async def test_yamux_measures_rtt_once_then_every_few_minutes():
    # py-libp2p pinged every connection every 30 s for the RTT its window tuning uses: at an
    # idle validator of 16 + 48, 113 of its 145 Yamux frames a minute. The node pings every
    # YAMUX_RTT_INTERVAL instead; the first measurement (0.5 s after the connection) stays.
    from libp2p.stream_muxer.yamux import yamux

    from node.p2p.host import YAMUX_RTT_INTERVAL, YAMUX_SWEEP_INTERVAL, libp2p_id_of

    async with network_of(2, config=SMALL) as (a, b):
        assert yamux.RTT_MEASURE_INTERVAL == YAMUX_RTT_INTERVAL == 300.0
        # and its stale-stream sweep, a timer per connection, every 120 s instead of 30
        assert yamux._STALE_STREAM_SWEEP_INTERVAL == YAMUX_SWEEP_INTERVAL == 120.0
        conns = a.host.get_network().connections.get(libp2p_id_of(b.peer_id), ())
        assert conns
        with trio.fail_after(30):
            while not any(c.muxed_conn.rtt() > 0 for c in conns):
                await trio.sleep(0.05)
