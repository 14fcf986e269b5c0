"""Who may join: the network key (pnet) and the peer-id allowlist, on real nodes.

Both are enforced by the libp2p host (the PSK in the transport, the allowlist in
its resource manager), so these stay on real libp2p over 127.0.0.1; the
in-memory network only models an allowlist."""

from __future__ import annotations

import shutil

import pytest
import trio

from cluster import make_homes, running_nodes
from node.home import init_home, read_psk
from node.p2p.errors import PeerUnavailable
from waiting import wait_until


async def test_a_node_with_another_network_key_cannot_connect(tmp_path):
    ours = make_homes(tmp_path / "ours", 1)
    theirs = make_homes(tmp_path / "theirs", 1)  # another consortium: another PSK
    async with running_nodes(ours + theirs, connect=False) as (a, b):
        with pytest.raises(PeerUnavailable):
            # a PSK mismatch may stall the handshake; the node's 5 s dial timeout ends it
            # (libp2p's own stall lasts 30 s)
            with trio.fail_after(20):
                await b.net.connect(a.listen_addrs[0])
        assert b.peer_id not in a.net.connected_peers()
        assert a.peer_id not in b.net.connected_peers()


async def test_an_unknown_peer_id_is_dropped_and_counted(tmp_path):
    ours = make_homes(tmp_path / "net", 1)
    psk = read_psk(ours[0].path / "network.psk")
    stranger, _ = init_home(tmp_path / "stranger", moniker="stranger", psk_hex=psk)  # right key, not a member
    shutil.copy(ours[0].genesis, stranger.genesis)
    (stranger.config).write_text(ours[0].config.read_text())
    async with running_nodes(ours + [stranger], connect=False) as (a, s):
        try:
            with trio.fail_after(30):
                await s.net.connect(a.listen_addrs[0])
        except PeerUnavailable:
            pass  # libp2p may report the drop to the dialer, or not (LIBP2P_NOTES)
        await wait_until(lambda: a.net.connection_stats.dropped_inbound >= 1, 30, "drop counted")
        # the dialer's end of the dropped connection closes too (a never lists it: the
        # allowlist refuses it before the swarm adds the connection)
        await wait_until(lambda: a.peer_id not in s.net.connected_peers(), 30, "the stranger's side closed")
        assert s.peer_id not in a.net.connected_peers()
        assert s.peer_id in a.net.connection_stats.last_dropped
