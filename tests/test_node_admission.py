"""Who may join: the network key (pnet) and the peer-id allowlist, on real nodes."""

from __future__ import annotations

import shutil

import pytest
import trio

from cluster import make_homes, running_nodes, wait_until
from node.home import init_home, read_psk
from node.p2p.errors import PeerUnavailable


async def test_a_node_with_another_network_key_cannot_connect(tmp_path):
    ours = make_homes(tmp_path / "ours", 1)
    theirs = make_homes(tmp_path / "theirs", 1)  # another consortium: another PSK
    async with running_nodes(ours + theirs, connect=False) as (a, b):
        with pytest.raises(PeerUnavailable):
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
            with trio.fail_after(10):
                await s.net.connect(a.listen_addrs[0])
        except PeerUnavailable:
            pass  # libp2p may report the drop to the dialer, or not (LIBP2P_NOTES)
        await wait_until(lambda: a.net.connection_stats.dropped_inbound >= 1, 10, "drop counted")
        await trio.sleep(0.3)
        assert s.peer_id not in a.net.connected_peers()
        assert s.peer_id in a.net.connection_stats.last_dropped
