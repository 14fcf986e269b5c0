"""Peer manager: redial after a peer restarts, peer book persistence."""

import dataclasses
import logging

import pytest
import trio

from node.p2p import ConfigError, P2PConfig, P2PNetwork, PeerBook, peer_id_of
from node.p2p.testing import TEST_PSK, make_keys, running
from waiting import wait_until


def test_peer_book_round_trips_and_rejects_garbage():
    key = make_keys(1)[0]
    pid = peer_id_of(key.public_key.raw)
    book = PeerBook()
    book.add(f"/ip4/127.0.0.1/tcp/4001/p2p/{pid}", persistent=True)
    book.add(f"/ip4/127.0.0.1/tcp/4002/p2p/{pid}")
    again = PeerBook.from_json(book.to_json())
    assert again.addrs == book.addrs and again.persistent == {pid}
    with pytest.raises(ConfigError):
        book.add("/ip4/127.0.0.1/tcp/4001")
    for bad in ("nope", "{}", '{"version": 1, "peers": [{"addrs": ["/ip4/1.2.3.4/tcp/1"]}]}'):
        with pytest.raises(ConfigError):
            PeerBook.from_json(bad)


def _pubsub_peers(net: P2PNetwork) -> set[str]:
    return {str(p) for p in net.gossip.pubsub.peers}


async def test_persistent_peer_is_redialed_after_it_restarts(caplog):
    caplog.set_level(logging.INFO, logger="node.p2p.peers")
    a_key, b_key = make_keys(2)
    base = P2PConfig(psk=TEST_PSK, initial_backoff=0.1, max_backoff=0.4, dial_timeout=1.0)
    b1 = P2PNetwork(b_key, base)
    with trio.fail_after(120):
        async with running(b1):
            b_addr = b1.listen_addrs[0]
        port = b_addr.split("/tcp/")[1].split("/")[0]
        a = P2PNetwork(a_key, dataclasses.replace(base, persistent_peers=(b_addr,)))
        a.peers._connected_recheck = 3600  # a connected peer's keeper wakes only on libp2p's disconnect notice
        async with running(a):
            # b is down: a keeps failing and backing off
            await wait_until(lambda: a.peers.stats.redial_failures >= 2, 30, "two failed redials")
            b2 = P2PNetwork(b_key, dataclasses.replace(base, listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",)))
            async with running(b2):
                assert await a.wait_connected(1, 30) == [b2.peer_id]
                # let the connection settle: a peer stopped within ms of connecting
                # can leave libp2p with a stale connection (known limitation, see the
                # report). Settled = each side's pubsub has opened its stream to the other.
                await wait_until(lambda: b2.peer_id in _pubsub_peers(a) and a.peer_id in _pubsub_peers(b2), 20,
                                 "pubsub streams open both ways")
                # and a's keeper has seen the connection (its dial settles for 50 ms first: a
                # peer stopped within that is one a never saw connected, not one it lost)
                await wait_until(lambda: a.peers.stats.connections >= 1, 20, "a's keeper saw b connected")
            # b went down again; a notices the drop and reconnects on restart
            reconnects = a.peers.stats.reconnects
            b3 = P2PNetwork(b_key, dataclasses.replace(base, listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",)))
            async with running(b3):
                await wait_until(lambda: a.peers.stats.reconnects > reconnects, 30, "a reconnected to b")
                assert a.connected_peers() == [b3.peer_id]
    # the operator sees when the link dropped, then when it came back
    lines = [r.getMessage() for r in caplog.records if r.name == "node.p2p.peers"]
    lost = lines.index(f"lost the connection to {b1.peer_id}; redialing")
    assert f"reconnected to {b1.peer_id}" in lines[lost + 1:]
