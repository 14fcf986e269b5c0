"""The consensus driver relays other validators' votes when a height is stuck."""

from __future__ import annotations

import trio
import trio.testing

from factories import CHAIN_ID, make_genesis, validator_keys
from node import wire
from node.chain import Chain
from node.config import ConsensusSection
from node.driver import ConsensusDriver
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.p2p.host import peer_id_of
from node.signer_store import SignerStore
from node.store import Store
from protocol.consensus.events import StartHeight, VoteReceived
from protocol.votes import PRECOMMIT, PREVOTE, Vote

KEYS = validator_keys(4)


class RecordingNetwork:
    """Just enough of P2PNetwork for the driver: records direct sends."""

    def __init__(self, me: str, peers: list[str]):
        self.peer_id = me
        self.peers = peers
        self.sent: list[tuple[str, bytes]] = []
        self.handlers = {}

    def register_handler(self, protocol_id, handler):
        self.handlers[protocol_id] = handler

    def connected_peers(self):
        return list(self.peers)

    async def request(self, peer, protocol_id, body, *, timeout=None, retry=True):
        self.sent.append((peer, body))
        return b""

    async def publish(self, topic, data, *, max_wait=None):
        pass


async def test_stuck_height_relays_other_validators_votes(tmp_path):
    genesis = make_genesis(KEYS)
    store = Store(tmp_path / "node.db", genesis)
    state = store.load_state()
    chain = Chain(genesis, store, state, Mempool(state), NodeMetrics())
    peers = [peer_id_of(k.public_key.raw) for k in KEYS[1:]]
    net = RecordingNetwork(peer_id_of(KEYS[0].public_key.raw), peers)
    driver = ConsensusDriver(chain=chain, key=KEYS[0], network=net, signer_store=SignerStore(tmp_path / "signer.json"),
                             config=ConsensusSection())
    cs = driver.cs
    cs.apply(StartHeight(1, genesis.validators, 0))
    value = b"\x42" * 32
    theirs = [Vote.create(k, CHAIN_ID, PREVOTE, 1, cs.round, value) for k in KEYS[1:3]]
    theirs.append(Vote.create(KEYS[3], CHAIN_ID, PRECOMMIT, 1, cs.round, b""))
    for v in theirs:
        cs.apply(VoteReceived(v, 0))
    async with trio.open_nursery() as nursery:
        driver._nursery = nursery
        await driver._relay_round_votes()
        await trio.testing.wait_all_tasks_blocked()
    relayed = {}
    for peer, body in net.sent:
        msg = wire.decode_consensus(body)
        if isinstance(msg, Vote):
            relayed.setdefault(peer, set()).add(msg)
    for peer in peers:  # every connected validator gets every other validator's vote
        assert {v for v in theirs} <= relayed.get(peer, set())
    assert all(v.validator != KEYS[0].branch_id for vs in relayed.values() for v in vs)  # own votes go via _own
