"""Equivocation has consequences, on the real daemon as OS processes (127.0.0.1): the
test kills a validator and takes its key, speaks consensus to the others as that
validator over libp2p (the direct consensus protocol a validator uses, §11.2), and
signs two prevotes for different blocks at one height and round. The honest nodes
turn them into duplicate-vote evidence, a proposer commits it, and the equivocator
is jailed: out of the validator set from two heights later (§15.5), while the chain
goes on committing without it. Restarted, its node follows the chain but never signs; a
fresh observer started last syncs the whole history across the change to the same state."""

from __future__ import annotations

import logging
import os

import pytest
import trio

from cluster import ProcessNetwork, make_homes
from node.home import read_psk
from node.keyfile import load_key
from node.p2p.errors import P2PError
from node.p2p.network import P2PConfig, P2PNetwork
from protocol import wire
from protocol.votes import PREVOTE, Vote
from test_governance_processes import WAIT, api, signers_at
from tools.adversary.runner import Target
from waiting import wait_until

pytestmark = pytest.mark.slow


async def test_an_equivocating_validator_is_removed_by_its_committed_evidence(tmp_path):
    homes = make_homes(tmp_path, 4, observers=1, fixed_ports=True, api=True, realtime=True)
    net = ProcessNetwork(homes)
    clients = [api(h) for h in homes]
    key = load_key(homes[3].key)
    cheat = key.branch_id.hex()
    chain_id = net.genesis.chain_id
    honest = [Target.from_home(h) for h in homes[:3]]
    try:
        for i in range(4):
            net.start(i)  # the observer (4) starts last, with nothing
        await wait_until(lambda: min(net.height(i) for i in range(4)) >= 2, WAIT, "validators at height 2")
        net.kill(3)  # from here on the test holds validator 3's key, and nobody else signs with it
        killed_at = net.height(0)

        p2p = P2PNetwork(key, P2PConfig(listen_addrs=("/ip4/127.0.0.1/tcp/0",), psk=read_psk(homes[3].psk(homes[3].load_config())),
                                        allowed_peers=None, max_backoff=1.0, dial_timeout=3.0, request_timeout=5.0,
                                        libp2p_log_level=logging.CRITICAL))
        sent: list[int] = []

        async def equivocate() -> None:
            """Two prevotes of validator 3 for different blocks at the honest nodes' next
            height, round 0, to each honest node (a node already past it drops them as stale:
            the caller tries again at the new height)."""
            height = min(net.height(i) for i in range(3)) + 1
            if sent and sent[-1] == height:
                return
            sent.append(height)
            votes = [Vote.create(key, chain_id, PREVOTE, height, 0, os.urandom(32)) for _ in range(2)]
            for target in honest:
                for vote in votes:
                    try:
                        await p2p.request(target.peer_id, wire.consensus_protocol(chain_id), wire.encode_vote(vote),
                                          timeout=5, retry=False)
                    except P2PError:
                        pass  # not connected yet, or a slow answer: the next attempt sends again

        async def jailed() -> bool:
            doc = (await clients[0].get("/v1/governance")).json()
            (row,) = [m for m in doc["members"] if m["branch_id"] == cheat]
            if row["jailed"]:
                return True
            await equivocate()
            return False

        async with trio.open_nursery() as nursery:
            await nursery.start(p2p.run)
            for target in honest:
                p2p.add_persistent_peer(target.p2p_addr)
            await wait_until(lambda: len(p2p.connected_peers()) >= 3, WAIT, "the test connected to the honest nodes as validator 3")
            await wait_until(jailed, WAIT, "validator 3 jailed by its committed evidence")
            nursery.cancel_scope.cancel()

        # the evidence is in a committed block, names validator 3 at a height the test signed twice
        top = net.height(0)
        blocks = [(await clients[0].get(f"/v1/blocks/{h}")).json() for h in range(killed_at + 1, top + 1)]
        with_evidence = [b for b in blocks if b["evidence"]]
        assert with_evidence, "no committed evidence"
        evidence_height = with_evidence[0]["header"]["height"]
        for b in with_evidence:
            for ev in b["evidence"]:
                assert ev["kind"] == "duplicate_vote" and ev["validator"] == cheat and ev["height"] in sent, ev

        # out of the set from evidence_height + 2 (§15.5); the chain commits on with the three left
        effect = evidence_height + 2
        await wait_until(lambda: min(net.height(i) for i in range(3)) >= effect + 2, WAIT, "two blocks past the switch")
        vals = (await clients[0].get("/v1/validators")).json()
        assert cheat not in {v["branch_id"] for v in vals["validators"]} and vals["total_power"] == 30
        assert (await clients[0].get(f"/v1/blocks/{effect}")).json()["header"]["validators_hash"] != \
            (await clients[0].get(f"/v1/blocks/{evidence_height}")).json()["header"]["validators_hash"]

        # its node comes back with its own key: it follows the chain, and no certificate holds its signature
        net.start(3)
        restart = net.height(0)
        await wait_until(lambda: net.height(3) >= restart + 2, WAIT, "the jailed validator's node caught up")
        for h in range(effect, net.height(0) + 1):
            signers = await signers_at(clients[0], h)
            assert cheat not in signers and len(signers) == 3, (h, signers)

        # a fresh observer syncs every block across the change and reaches the same state root
        net.start(4)
        target = net.height(0)
        await wait_until(lambda: net.height(4) >= target, WAIT, "the fresh observer synced")
        status = (await clients[4].get("/v1/status")).json()
        header = (await clients[0].get(f"/v1/blocks/{status['height']}")).json()["header"]
        assert status["state_root"] == header["state_root"] and status["last_block_hash"] == net.block_hash(0, status["height"]).hex()
        assert all(net.block_hash(4, h) == net.block_hash(0, h) for h in range(1, target + 1))
        for i in range(5):
            assert "Traceback" not in net.log(i), net.log(i)[-3000:]
        assert "equivocation by " + cheat in "".join(net.log(i) for i in range(3))
    finally:
        for c in clients:
            await c.aclose()
        net.stop_all()
