"""``/v1/peers`` and ``branchnet peers`` (issue 16, finding 6): each connected peer
with its branch name, remote address, direction, connected-since and last round
trip, and the bytes on the wire each way. Two validators over real libp2p on 127.0.0.1, in this process."""

from __future__ import annotations

import time

import msgspec

from cluster import inprocess_network
from node.api import views
from node.api.models_node import Peers
from waiting import wait_until


async def test_peers_show_branch_address_direction_since_and_round_trip(tmp_path):
    before_ms = int(time.time() * 1000)
    async with inprocess_network(tmp_path, 2) as (a, b):
        # validators ask each other for sync status: a round trip each way soon
        await wait_until(lambda: all(views.peers(n)["peers"] and views.peers(n)["peers"][0]["last_round_trip_ms"] is not None
                                     for n in (a, b)), 60, "a round trip measured on both sides",
                         detail=lambda: (views.peers(a), views.peers(b)))
        doc_a, doc_b = views.peers(a), views.peers(b)
        wire_a = a.net.statistics()["connections"]  # one connection: its bytes are all of a's
    for doc in (doc_a, doc_b):
        msgspec.convert(doc, Peers)  # the documented model, no field beyond it
        assert doc["count"] == 1
    pa, pb = doc_a["peers"][0], doc_b["peers"][0]
    assert (pa["peer_id"], pb["peer_id"]) == (b.net.peer_id, a.net.peer_id)
    assert (pa["name"], pb["name"]) == (b.config.node.moniker, a.config.node.moniker)
    assert {pa["direction"], pb["direction"]} == {"inbound", "outbound"}  # one dialed the other
    for p in (pa, pb):
        assert p["address"].startswith("/ip4/127.0.0.1/tcp/")
        assert before_ms - 1000 <= p["connected_since_ms"] <= int(time.time() * 1000) + 1000
        assert p["last_round_trip_ms"] >= 0
        assert p["bytes_sent"] > 0 and p["bytes_received"] > 0  # counted per connection by the network-key layer
    assert pa["bytes_sent"] <= wire_a["bytes_sent"] and pa["bytes_received"] <= wire_a["bytes_received"]
