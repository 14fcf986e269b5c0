"""The consensus outbox relays other validators' votes when a height is stuck,
and a validator that never answers delays only its own copies."""

from __future__ import annotations

import trio
import trio.testing

from factories import CHAIN_ID, make_genesis, validator_keys
from node.candidates import CandidateBlocks
from node.consensus.outbox import MAX_QUEUED, ConsensusOutbox
from node.metrics import NodeMetrics
from node.p2p.host import peer_id_of
from protocol import wire
from protocol.consensus import ConsensusState, StartHeight, VoteReceived
from protocol.votes import PRECOMMIT, PREVOTE, Vote

KEYS = validator_keys(4)
PEERS = [peer_id_of(k.public_key.raw) for k in KEYS[1:]]


class RecordingNetwork:
    """Just enough of P2PNetwork for the outbox: records direct sends; ``deaf``
    peers never answer."""

    def __init__(self, peers: list[str], deaf: frozenset[str] = frozenset()):
        self.peers = peers
        self.deaf = deaf
        self.sent: list[tuple[str, bytes]] = []

    def connected_peers(self):
        return list(self.peers)

    async def request(self, peer, protocol_id, body, *, timeout=None, retry=True):
        if peer in self.deaf:
            await trio.sleep_forever()
        self.sent.append((peer, body))
        return b""

    async def publish(self, topic, data, *, max_wait=None):
        pass


def _outbox(net: RecordingNetwork) -> tuple[ConsensusOutbox, ConsensusState]:
    genesis = make_genesis(KEYS)
    cs = ConsensusState(KEYS[0], CHAIN_ID)
    cs.apply(StartHeight(1, genesis.validators, 0))
    outbox = ConsensusOutbox(network=net, chain_id=CHAIN_ID, me=KEYS[0].branch_id, validator_peers=set(PEERS),
                             cs=cs, candidates=CandidateBlocks(), metrics=NodeMetrics())
    return outbox, cs


async def test_stuck_height_relays_other_validators_votes():
    net = RecordingNetwork(PEERS)
    outbox, cs = _outbox(net)
    value = b"\x42" * 32
    theirs = [Vote.create(k, CHAIN_ID, PREVOTE, 1, cs.round, value) for k in KEYS[1:3]]
    theirs.append(Vote.create(KEYS[3], CHAIN_ID, PRECOMMIT, 1, cs.round, b""))
    for v in theirs:
        cs.apply(VoteReceived(v, 0))
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        await outbox.resend_stuck_height()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    relayed: dict[str, set[Vote]] = {}
    for peer, body in net.sent:
        msg = wire.decode_consensus(body)
        if isinstance(msg, Vote):
            relayed.setdefault(peer, set()).add(msg)
    for peer in PEERS:  # every connected validator gets every other validator's vote
        assert set(theirs) <= relayed.get(peer, set())
    assert all(v.validator != KEYS[0].branch_id for vs in relayed.values() for v in vs)  # own votes go via send_own_vote


async def test_a_silent_validator_delays_only_its_own_copies():
    net = RecordingNetwork(PEERS, deaf=frozenset(PEERS[:1]))
    outbox, cs = _outbox(net)
    votes = [Vote.create(KEYS[0], CHAIN_ID, PREVOTE, 1, r, b"\x07" * 32) for r in range(MAX_QUEUED + 50)]
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        for v in votes:
            outbox.send_own_vote(v)
            await trio.testing.wait_all_tasks_blocked()  # the healthy peers' senders keep up
        nursery.cancel_scope.cancel()
    got = {peer: [wire.decode_consensus(b) for p, b in net.sent if p == peer] for peer in PEERS}
    assert got[PEERS[0]] == []
    assert got[PEERS[1]] == votes and got[PEERS[2]] == votes  # all of them, in order
    # the silent one's queue stayed bounded: the oldest went, counted
    assert outbox.statistics()["queued"] <= MAX_QUEUED and outbox.dropped > 0


async def test_re_sends_do_not_pile_up_or_delay_new_messages_to_a_slow_validator():
    # A starved validator takes its messages slowly; re-sending every second must not
    # fill its queue with copies, nor make a new message wait behind them.
    net = RecordingNetwork(PEERS, deaf=frozenset(PEERS[:1]))
    outbox, cs = _outbox(net)
    value = b"\x42" * 32
    theirs = [Vote.create(k, CHAIN_ID, PREVOTE, 1, cs.round, value) for k in KEYS[1:4]]
    for v in theirs:
        cs.apply(VoteReceived(v, 0))
    mine = [Vote.create(KEYS[0], CHAIN_ID, t, 1, cs.round, value) for t in (PREVOTE, PRECOMMIT)]
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        for v in mine:
            outbox.send_own_vote(v)
        await trio.testing.wait_all_tasks_blocked()  # the silent peer's senders hold one message each
        for _ in range(300):  # five minutes of a stuck height
            await outbox.resend_stuck_height()
            await trio.testing.wait_all_tasks_blocked()
        # each distinct message waits once at most (the silent peer's senders hold four more in flight)
        assert outbox.statistics()["queued"] <= len(mine) + len(theirs)
        assert outbox.dropped == 0 and outbox.statistics()["coalesced"] > 0
        late = Vote.create(KEYS[0], CHAIN_ID, PREVOTE, 1, cs.round + 1, value)
        outbox.send_own_vote(late)
        waiting = [wire.decode_consensus(data) for data in outbox._queues[PEERS[0]].in_order()]
        nursery.cancel_scope.cancel()
    assert waiting[0] == late  # a new message goes out before any re-send
    assert len(set(waiting)) == len(waiting)
    # the healthy peers got everything, over and over
    for peer in PEERS[1:]:
        got = {wire.decode_consensus(b) for p, b in net.sent if p == peer}
        assert set(mine) | {late} <= got
