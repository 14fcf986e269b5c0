"""Consensus links (node/p2p/link.py): real P2PNetworks on 127.0.0.1, real TCP.

Each test waits on a condition with a bound (``wait_for``), never on a sleep."""

from __future__ import annotations

import dataclasses
from contextlib import asynccontextmanager

import pytest
import trio

from node.p2p.errors import PeerUnavailable
from node.p2p.frames import KIND_REQUEST, encode_frame
from node.p2p.link import LINK_HEADER, LINK_PROTOCOL, decode_port, encode_port
from node.p2p.network import P2PConfig
from node.p2p.psk import XSalsa20
from node.p2p.testing import TEST_PSK, network_of

PROTOCOL = "/branchnet/test/consensus/2"
LINKED = P2PConfig(psk=TEST_PSK, link_listen=("127.0.0.1", 0))


async def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def links_between(nets, received):
    """Make every net carry PROTOCOL on links with all the others, and record what each receives."""
    for net in nets:
        async def handler(peer, body, me=net):
            received.setdefault(me.peer_id, []).append((peer, body))
            return b""
        net.register_handler(PROTOCOL, handler)
        net.carry_on_link(PROTOCOL)
        net.set_link_peers(n.peer_id for n in nets if n is not net)


def both_linked(a, b) -> bool:
    return a.links.get(b.peer_id) is not None and b.links.get(a.peer_id) is not None


@asynccontextmanager
async def linked_pair(config: P2PConfig = LINKED):
    """Two networks on 127.0.0.1 with a link up between them, and what each receives."""
    received: dict[str, list] = {}
    async with network_of(2, config=config) as (a, b):
        links_between((a, b), received)
        await wait_for(lambda: both_linked(a, b), "a link")
        yield a, b, received


def test_port_answer_round_trips_and_rejects_garbage():
    assert decode_port(encode_port(26657)) == 26657
    assert decode_port(encode_port(None)) is None
    for bad in (b"\x00", b"\x00\x00", b"\x01\x02\x03"):
        with pytest.raises(ValueError):
            decode_port(bad)


async def test_notifications_go_over_the_link_both_ways():
    async with linked_pair() as (a, b, received):
        dialer = a if a.peer_id < b.peer_id else b
        assert dialer.links.get((b if dialer is a else a).peer_id).direction == "outbound"
        streams_before = a.stream_stats.as_dict()["inbound_streams"] + b.stream_stats.as_dict()["inbound_streams"]
        for i in range(50):
            await a.notify(b.peer_id, PROTOCOL, b"to b %d" % i)
            await b.notify(a.peer_id, PROTOCOL, b"to a %d" % i)
        await wait_for(lambda: len(received.get(a.peer_id, ())) == 50 and len(received.get(b.peer_id, ())) == 50,
                       "all notifications")
        assert [body for _, body in received[b.peer_id]] == [b"to b %d" % i for i in range(50)]  # in order
        assert {peer for peer, _ in received[b.peer_id]} == {a.peer_id}
        assert a.links.stats.frames_sent == b.links.stats.frames_sent == 50
        # no libp2p stream carried any of them
        assert a.stream_stats.as_dict()["inbound_streams"] + b.stream_stats.as_dict()["inbound_streams"] == streams_before


async def test_big_notifications_span_noise_messages_and_reads():
    import os

    bodies = [os.urandom(n) for n in (1, 65_519, 65_520, 200_000, 3 * 1024 * 1024)]
    async with linked_pair() as (a, b, received):
        async with trio.open_nursery() as nursery:  # at once: each frame is written whole, under the link's lock
            for body in bodies:
                nursery.start_soon(a.notify, b.peer_id, PROTOCOL, body)
        await wait_for(lambda: len(received.get(b.peer_id, ())) == len(bodies), "all of them")
        assert sorted(body for _, body in received[b.peer_id]) == sorted(bodies)
        assert a.links.stats.frames_sent == len(bodies)


async def test_other_protocols_and_unlinked_peers_use_libp2p():
    async with linked_pair() as (a, b, received):

        async def other(peer, body):
            received.setdefault("other", []).append(body)
            return b""
        b.register_handler("/branchnet/test/other/1", other)
        await a.notify(b.peer_id, "/branchnet/test/other/1", b"x")
        await wait_for(lambda: received.get("other") == [b"x"], "the other protocol")
        assert a.links.stats.frames_sent == 0


async def test_a_broken_link_falls_back_to_libp2p_and_comes_back():
    async with linked_pair() as (a, b, received):
        first = a.links.get(b.peer_id)
        for net in (a, b):
            net.set_link_peers(())  # nobody redials: the next message finds no link
        await b.links.drop(a.peer_id)  # b's end goes away; a's reader sees it end
        await wait_for(lambda: a.links.get(b.peer_id) is None, "a notices")
        await a.notify(b.peer_id, PROTOCOL, b"while down")
        await wait_for(lambda: [m for _, m in received.get(b.peer_id, ())] == [b"while down"], "delivery")
        assert a.links.stats.frames_sent == 0
        for net, other in ((a, b), (b, a)):
            net.set_link_peers([other.peer_id])
        await wait_for(lambda: both_linked(a, b), "the link again")
        assert a.links.get(b.peer_id) is not first
        await a.notify(b.peer_id, PROTOCOL, b"linked again")
        await wait_for(lambda: len(received[b.peer_id]) == 2, "delivery on the new link")
        assert a.links.stats.frames_sent == 1


async def test_a_send_on_a_link_that_broke_goes_by_libp2p():
    async with linked_pair() as (a, b, received):
        await a.links.get(b.peer_id).tcp.aclose()  # under the link: its next write fails
        await a.notify(b.peer_id, PROTOCOL, b"not lost")
        await wait_for(lambda: [m for _, m in received.get(b.peer_id, ())] == [b"not lost"], "delivery")
        assert a.links.stats.send_failures == 1 and a.links.stats.frames_sent == 0


async def test_no_links_with_peers_that_are_not_wanted():
    received: dict[str, list] = {}
    async with network_of(3, config=LINKED) as nets:
        c, a, b = sorted(nets, key=lambda n: n.peer_id)  # c sorts first: c is the one to dial
        links_between((a, b), received)
        c.register_handler(PROTOCOL, lambda peer, body: trio.sleep(0))
        c.carry_on_link(PROTOCOL)
        c.set_link_peers([a.peer_id, b.peer_id])  # c wants links, a and b do not want c
        await wait_for(lambda: both_linked(a, b), "a link")
        await wait_for(lambda: c.links.stats.dial_failures >= 2, "a and b answer c: no link")
        assert c.links.up() == {} and c.peer_id not in a.links.up() and c.peer_id not in b.links.up()
        assert await a.links.answer_port(c.peer_id, b"") == b""
        assert decode_port(await a.links.answer_port(b.peer_id, b"")) == a.links.port


async def raw_link_connection(net, psk: str | None = TEST_PSK):
    """A TCP connection to ``net``'s link listener, with the PSK layer done by hand."""
    import os

    stream = await trio.open_tcp_stream("127.0.0.1", net.links.port)
    if psk is None:
        return stream, (lambda data: data)
    nonce = os.urandom(24)
    writer = XSalsa20(bytes.fromhex(psk), nonce)
    await stream.send_all(nonce)
    return stream, writer.xor


async def read_until_closed(stream, timeout: float = 15.0) -> None:
    with trio.fail_after(timeout):
        while await stream.receive_some(65536):
            pass


async def test_hostile_connections_are_refused_counted_and_the_node_keeps_linking():
    async with linked_pair(dataclasses.replace(LINKED, upgrade_timeout=1.0)) as (a, b, received):
        target = a
        # 1. another network key: the header does not decrypt to LINK_HEADER
        stream, xor = await raw_link_connection(target, psk="11" * 32)
        await stream.send_all(xor(LINK_HEADER))
        await read_until_closed(stream)
        # 2. the right key, then garbage where the Noise handshake should be
        stream, xor = await raw_link_connection(target)
        await stream.send_all(xor(LINK_HEADER + b"\xff" * 300))
        await read_until_closed(stream)
        # 3. silence: dropped after the handshake timeout
        stream, _ = await raw_link_connection(target)
        await read_until_closed(stream)
        refused = target.links.stats.refused
        await wait_for(lambda: sum(refused.values()) >= 3, "three refusals")
        assert refused.get("mismatch") == 1, refused
        assert sum(refused.values()) == 3
        assert target.rejections()[("link", "mismatch")] == 1
        # the real link is untouched and still carries messages
        await b.notify(a.peer_id, PROTOCOL, b"still here")
        await wait_for(lambda: received.get(a.peer_id) == [(b.peer_id, b"still here")], "delivery")
        assert b.links.stats.frames_sent == 1


async def test_a_frame_that_is_not_a_notification_is_a_fault_and_ends_the_link():
    async with linked_pair() as (a, b, received):
        link = a.links.get(b.peer_id)
        await link.send(encode_frame(KIND_REQUEST, 7, b"answer me", 1 << 20), 5.0)  # a request id: not one-way
        await wait_for(lambda: b.faults.rejections().get((PROTOCOL, "not_a_notification")) == 1, "the fault")
        await wait_for(lambda: link.closed, "the link closed")
        assert received == {}
        await wait_for(lambda: both_linked(a, b), "a new link")  # not a ban: one fault


async def test_a_noise_message_that_does_not_decrypt_is_a_fault_and_ends_the_link():
    import os

    async with linked_pair() as (a, b, received):
        link = a.links.get(b.peer_id)
        await link.conn.write(b"\x00\x20" + os.urandom(32))  # a 32-byte Noise message nobody encrypted
        await wait_for(lambda: b.faults.rejections().get((PROTOCOL, "undecryptable")) == 1, "the fault")
        await wait_for(lambda: link.closed, "the link closed")
        assert received == {}


async def test_a_banned_peer_loses_its_link():
    async with linked_pair() as (a, b, received):
        for _ in range(1000):
            if a.faults.is_banned(b.peer_id):
                break
            a.penalize(b.peer_id, "banned by hand", fault="malformed")
        assert a.faults.is_banned(b.peer_id)
        await wait_for(lambda: a.links.get(b.peer_id) is None and b.links.get(a.peer_id) is None, "the link dropped")
        assert await a.links.answer_port(b.peer_id, b"") == encode_port(a.links.port)  # wanted, but:
        with pytest.raises(PeerUnavailable):  # no link: libp2p, whose connection is closed too
            await a.notify(b.peer_id, PROTOCOL, b"x")
        assert a.links.stats.frames_sent == 0 and received == {}


def test_link_protocol_names():
    assert LINK_PROTOCOL == "/branchnet/link/1"
    assert LINK_HEADER == bytes([len(b"/branchnet/link/1\n")]) + b"/branchnet/link/1\n"


async def test_a_peer_that_keeps_ending_our_link_has_us_dial_again_only_after_a_backoff():
    """A link that a still-wanted peer ends soon after the handshake counts as a failed dial:
    without that, a peer that accepts and hangs up had us redialing (a Noise handshake each
    time) with no pause at all."""
    from node.p2p.link import MIN_BACKOFF

    async with linked_pair() as (a, b, received):
        dialer, other = (a, b) if a.peer_id < b.peer_id else (b, a)
        delays = []
        for _ in range(2):
            first = dialer.links.get(other.peer_id)
            assert first is not None and first.direction == "outbound"
            dropped_at = trio.current_time()
            await other.links.drop(dialer.peer_id)  # the far end hangs up; the dialer still wants it
            await wait_for(lambda: other.peer_id not in dialer.links._links, "the dialer's link ended")
            next_dial_at, delay = dialer.links._backoff[other.peer_id]
            assert next_dial_at >= dropped_at + 0.8 * delay  # not redialed at once
            delays.append(delay)
            await wait_for(lambda: both_linked(a, b), "the link again, after the backoff", timeout=30)
            assert dialer.links.get(other.peer_id) is not first
        assert delays == [MIN_BACKOFF, 2 * MIN_BACKOFF]  # and each quick end doubles it
        assert dialer.links.stats.dial_failures == 0  # the dials themselves succeeded


async def test_a_link_we_no_longer_want_is_dialed_at_once_when_wanted_again():
    async with linked_pair() as (a, b, received):
        dialer, other = (a, b) if a.peer_id < b.peer_id else (b, a)
        dialer.set_link_peers(())  # we close it ourselves: not the peer's doing
        await wait_for(lambda: other.peer_id not in dialer.links._links, "closed")
        assert other.peer_id not in dialer.links._backoff
