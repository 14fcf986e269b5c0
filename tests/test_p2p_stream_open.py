"""node/p2p/stream_open.py: a stream open or frame write cut short by a deadline leaves
the connection whole (real hosts on 127.0.0.1)."""

import pytest
import trio
import trio.testing

from node.p2p.host import libp2p_id_of
from node.p2p.testing import network_of

P = "/branchnet/test-echo/1"


async def echo(peer_id: str, request: bytes) -> bytes:
    return b"echo:" + request


def muxed_conn(a, b):
    (conn,) = a.host.get_network().get_connections(libp2p_id_of(b.peer_id))
    return conn.muxed_conn


class BlockingNotifee:
    """A swarm notifee whose ``opened_stream`` waits until released."""

    def __init__(self):
        self.release = trio.Event()

    async def opened_stream(self, network, stream):
        await self.release.wait()

    async def closed_stream(self, network, stream):
        pass

    async def connected(self, network, conn):
        pass

    async def disconnected(self, network, conn):
        pass

    async def listen(self, network, multiaddr):
        pass

    async def listen_close(self, network, multiaddr):
        pass


@pytest.mark.parametrize("where", ["waiting to write its SYN", "after its SYN, in the swarm's notifees"])
async def test_a_cancelled_stream_open_gives_its_backlog_slot_back(where):
    # py-libp2p's Yamux lets 256 streams be open per connection; an open cancelled at
    # these points kept its slot and its stream for good (upstream catches Exception
    # only), and once all 256 were gone no new stream opened on the connection.
    async with network_of(2) as (a, b):
        b.register_handler(P, echo)
        mux = muxed_conn(a, b)
        notifee = BlockingNotifee()
        with trio.fail_after(30):
            await trio.testing.wait_all_tasks_blocked(0.05)  # the connection's own streams are open
            slots, before = mux.stream_backlog_semaphore.value, set(mux.streams)
            async with trio.open_nursery() as nursery:
                opening = trio.CancelScope()

                async def open_one():
                    with opening:
                        await a.host.new_stream(libp2p_id_of(b.peer_id), [P])
                    assert opening.cancelled_caught

                if where == "waiting to write its SYN":
                    await mux._write_lock.acquire()
                else:
                    a.host.get_network().register_notifee(notifee)
                nursery.start_soon(open_one)
                await trio.testing.wait_all_tasks_blocked(0.05)
                assert mux.stream_backlog_semaphore.value == slots - 1  # the open is under way, holding a slot
                assert a.statistics()["streams"]["lowest_free_stream_slots"] == slots - 1  # what /v1/status shows
                (ours,) = [sid for sid in mux.streams if sid not in before]
                opening.cancel()
                await trio.testing.wait_all_tasks_blocked(0.05)
                if where == "waiting to write its SYN":
                    mux._write_lock.release()
                else:
                    a.host.get_network().remove_notifee(notifee)
                    notifee.release.set()
            assert mux.stream_backlog_semaphore.value == slots
            assert a.statistics()["streams"]["lowest_free_stream_slots"] == slots
            assert ours not in mux.streams or mux.streams[ours].closed
            assert await a.request(b.peer_id, P, b"still", timeout=10) == b"echo:still"


async def test_a_frame_write_cut_by_a_deadline_is_written_whole():
    # A cancellation in the middle of a frame's write used to leave half a frame on the
    # wire: the peer's Noise layer then failed on the next message and dropped the
    # connection, every stream on it with it.
    async with network_of(2) as (a, b):
        b.register_handler(P, echo)
        mux = muxed_conn(a, b)
        secured = mux.secured_conn
        write, halfway, resume = secured.write, trio.Event(), trio.Event()

        async def write_in_two(data):  # a send the kernel takes in two goes
            if not halfway.is_set() and len(data) > 200:
                await write(data[:100])
                halfway.set()
                await resume.wait()
                return await write(data[100:])
            return await write(data)

        with trio.fail_after(30):
            stream = await a.host.new_stream(libp2p_id_of(b.peer_id), [P])
            secured.write = write_in_two
            async with trio.open_nursery() as nursery:
                sending = trio.CancelScope()

                async def send():
                    with sending:
                        await stream.write(b"x" * 1000)

                nursery.start_soon(send)
                await halfway.wait()
                sending.cancel()
                await trio.testing.wait_all_tasks_blocked(0.05)
                resume.set()
            secured.write = write
            assert await a.request(b.peer_id, P, b"after", timeout=10) == b"echo:after"
            assert muxed_conn(a, b) is mux  # the same connection: it was not broken



async def test_a_frame_the_peer_never_takes_closes_the_connection(monkeypatch):
    # Written whole means shielded from our deadlines: a write that cannot finish at all
    # (a peer that stopped reading) is bounded on its own, and the connection, which may
    # hold part of the frame, is closed rather than used again; requests go over a new one.
    from node.p2p import stream_open

    monkeypatch.setattr(stream_open, "FRAME_WRITE_TIMEOUT", 0.5)
    async with network_of(2) as (a, b):
        b.register_handler(P, echo)
        mux = muxed_conn(a, b)
        with trio.fail_after(30):
            stream = await a.host.new_stream(libp2p_id_of(b.peer_id), [P])
            mux.secured_conn.write = lambda data: trio.sleep_forever()  # the socket never drains
            with pytest.raises(Exception, match="frame write took over 0.5 s: connection closed"):
                await stream.write(b"x" * 1000)
            answer = None
            while answer is None:  # the closed connection is noticed and a new one dialed
                try:
                    answer = await a.request(b.peer_id, P, b"again", timeout=5)
                except Exception:
                    await trio.sleep(0.1)
            assert answer == b"echo:again" and muxed_conn(a, b) is not mux
