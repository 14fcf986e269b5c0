"""The consensus outbox: a stuck height sends summaries, not vote storms; a
summary is answered with what the peer lacks; a validator that never answers
delays only its own copies."""

from __future__ import annotations

import trio
import trio.testing

from factories import CHAIN_ID, make_genesis, validator_keys
from node.candidates import CandidateBlocks
from node.consensus.outbox import MAX_QUEUED, ConsensusOutbox
from node.metrics import NodeMetrics
from node.p2p.errors import ProtocolUnsupported
from node.p2p.host import peer_id_of
from protocol import wire
from protocol.consensus import ConsensusState, StartHeight, VoteReceived
from protocol.consensus.gossip import RoundSummary, summarize
from protocol.votes import PRECOMMIT, PREVOTE, Proposal, Vote

KEYS = validator_keys(4)
PEERS = [peer_id_of(k.public_key.raw) for k in KEYS[1:]]


class RecordingNetwork:
    """Just enough of P2PNetwork for the outbox: records direct sends; ``deaf``
    peers never answer."""

    def __init__(self, peers: list[str], deaf: frozenset[str] = frozenset(), one_way: bool = True,
                 slow: dict[str, float] | None = None):
        self.peers = peers  # the peers we are linked to
        self.deaf = deaf
        self.slow = slow or {}  # peer -> seconds each frame to it takes to write
        self.one_way = one_way  # serves consensus/2
        self.sent: list[tuple[str, bytes]] = []  # each message, a bundle's one by one
        self.frames: list[tuple[str, str, bytes]] = []  # (peer, protocol id, body) as written
        self.published: list[tuple[str, bytes]] = []  # (topic, data) on gossip

    async def notify(self, peer, protocol_id, body, *, timeout=None):
        if not self.one_way:
            raise ProtocolUnsupported(f"{peer} does not serve {protocol_id}")
        if peer in self.deaf:
            await trio.sleep_forever()
        if peer in self.slow:
            await trio.sleep(self.slow[peer])
        self.frames.append((peer, protocol_id, body))
        self.sent.extend((peer, m) for m in (wire.decode_bundle(body) if wire.is_bundle(body) else [body]))

    def connected_peers(self):
        return list(self.peers)

    async def request(self, peer, protocol_id, body, *, timeout=None, retry=True):
        if peer in self.deaf:
            await trio.sleep_forever()
        self.frames.append((peer, protocol_id, body))
        self.sent.append((peer, body))
        return b""

    async def publish(self, topic, data, *, max_wait=None):
        self.published.append((topic, data))


def _outbox(net: RecordingNetwork) -> tuple[ConsensusOutbox, ConsensusState]:
    genesis = make_genesis(KEYS)
    cs = ConsensusState(KEYS[0], CHAIN_ID)
    cs.apply(StartHeight(1, genesis.validators, 0))
    outbox = ConsensusOutbox(network=net, chain_id=CHAIN_ID, me=KEYS[0].branch_id, validator_peers=set(PEERS),
                             cs=cs, candidates=CandidateBlocks(), metrics=NodeMetrics())
    return outbox, cs


async def test_a_stuck_height_sends_each_validator_one_summary_and_nothing_else():
    net = RecordingNetwork(PEERS)
    outbox, cs = _outbox(net)
    value = b"\x42" * 32
    for k in KEYS[1:3]:
        cs.apply(VoteReceived(Vote.create(k, CHAIN_ID, PREVOTE, 1, cs.round, value), 0))
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        await outbox.help_stuck_height()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert sorted(peer for peer, _ in net.sent) == sorted(PEERS)  # one message each, not every vote
    for _, body in net.sent:
        summary = wire.decode_consensus(body)
        assert isinstance(summary, RoundSummary) and summary.height == 1
        held = summary.votes(cs.round)
        assert held is not None and held.prevotes != bytes(len(held.prevotes))


async def test_a_missing_link_costs_nothing_and_only_a_validator_linked_to_none_gossips():
    # The peers we reach answer the unlinked validator's summaries with our messages;
    # re-publishing them on the topic made every node in the network receive them.
    vote = Vote.create(KEYS[0], CHAIN_ID, PREVOTE, 1, 0, b"\x42" * 32)
    for linked, gossiped in ((PEERS, False), (PEERS[:1], False), ([], True)):
        net = RecordingNetwork(linked)
        outbox, cs = _outbox(net)
        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run)
            outbox.send_own_vote(vote)
            for _ in range(3):
                await outbox.help_stuck_height()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert {p for p, m in net.sent if m == wire.encode_vote(vote)} == set(linked)
        if gossiped:
            assert len(net.published) == 3
            assert all(wire.decode_consensus(data) == vote for _, data in net.published)
        else:
            assert net.published == []


async def test_a_summary_is_answered_with_what_the_peer_lacks():
    net = RecordingNetwork(PEERS)
    outbox, cs = _outbox(net)
    value = b"\x42" * 32
    theirs = [Vote.create(k, CHAIN_ID, PREVOTE, 1, cs.round, value) for k in KEYS[1:3]]  # no quorum yet
    for v in theirs:
        cs.apply(VoteReceived(v, 0))
    peer_cs = ConsensusState(KEYS[1], CHAIN_ID)  # the peer holds only its own prevote
    peer_cs.apply(StartHeight(1, make_genesis(KEYS).validators, 0))
    peer_cs.apply(VoteReceived(theirs[0], 0))
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        assert outbox.answer_summary(PEERS[0], summarize(peer_cs)) == 1
        assert outbox.answer_summary(PEERS[0], summarize(peer_cs)) == 0  # rate-limited: the answer is on its way
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    got = [wire.decode_consensus(b) for p, b in net.sent]
    assert got == theirs[1:] and all(p == PEERS[0] for p, _ in net.sent)


async def test_a_reproposal_is_followed_by_its_proof_of_lock():
    net = RecordingNetwork(PEERS)
    outbox, _ = _outbox(net)
    value = b"\x42" * 32
    proposal = Proposal.create(KEYS[0], CHAIN_ID, 1, 3, 1, value)
    pol = tuple(Vote.create(k, CHAIN_ID, PREVOTE, 1, 1, value) for k in KEYS[:3])
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        outbox.send_own_proposal(proposal, pol)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    for peer in PEERS:
        got = [wire.decode_consensus(b) for p, b in net.sent if p == peer]
        assert [m.proposal for m in got if isinstance(m, wire.ProposalMessage)] == [proposal]
        assert sorted(m.validator for m in got if isinstance(m, Vote)) == sorted(v.validator for v in pol)


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


async def test_a_stuck_height_does_not_pile_up_messages_for_a_slow_validator():
    # A starved validator takes its messages slowly; helping a stuck height every second
    # for five minutes must not fill its queue, nor make a new message wait behind old ones.
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
            await outbox.help_stuck_height()
            await trio.testing.wait_all_tasks_blocked()
        assert outbox.statistics()["queued"] <= len(mine) + 1  # summaries skip a busy peer
        assert outbox.dropped == 0 and outbox.statistics()["summaries_sent"] > 0
        late = Vote.create(KEYS[0], CHAIN_ID, PREVOTE, 1, cs.round + 1, value)
        outbox.send_own_vote(late)
        waiting = [data for data in outbox._queues[PEERS[0]].messages]
        nursery.cancel_scope.cancel()
    assert len(waiting) <= len(mine) + 2
    for peer in PEERS[1:]:
        got = {m for m in (wire.decode_consensus(b) for p, b in net.sent if p == peer) if isinstance(m, Vote)}
        assert set(mine) | {late} <= got


async def test_a_decided_height_waiting_for_the_gate_is_not_stuck(autojump_clock):
    # Between heartbeat blocks the height is decided and the next one's start waits for the
    # gate: no summaries then (an idle 16-validator devnet sent about 50 a node a minute,
    # each answered with votes). The same wait without the gate counts as stuck.
    for gated, expect_help in ((True, False), (False, True)):
        net = RecordingNetwork(PEERS)
        outbox, _ = _outbox(net)
        outbox.gated = lambda: gated
        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run)
            await trio.sleep(30)
            nursery.cancel_scope.cancel()
        assert (outbox.statistics()["summaries_sent"] > 0) is expect_help, gated


async def _send_own_votes(outbox, votes: list[Vote], *, gap: float, then: float) -> None:
    """Run ``outbox``, send ``votes`` as ours ``gap`` s apart, let it work ``then`` s more."""
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        for v in votes:
            outbox.send_own_vote(v)
            if gap:
                await trio.sleep(gap)
        await trio.sleep(then)
        nursery.cancel_scope.cancel()


def _votes_to(net: RecordingNetwork, peer: str) -> list[Vote]:
    """The votes ``net`` delivered to ``peer``, in order (round summaries left out)."""
    return [m for m in (wire.decode_consensus(b) for p, b in net.sent if p == peer) if isinstance(m, Vote)]


async def test_messages_queued_for_a_slow_validator_go_as_one_bundle(autojump_clock):
    # Under load each message as its own request cost a frame (and an answer frame) apiece:
    # queues reached 100-330 messages on a 16-validator devnet. What queues while a frame
    # is written goes out as one bundle on consensus/2, in order, nothing answered.
    net = RecordingNetwork(PEERS, slow={PEERS[0]: 0.5})
    outbox, _ = _outbox(net)
    votes = [Vote.create(KEYS[0], CHAIN_ID, PREVOTE, 1, r, b"\x07" * 32) for r in range(40)]
    await _send_own_votes(outbox, votes, gap=0.01, then=5)
    for peer in PEERS:
        assert _votes_to(net, peer) == votes  # all, in order (and a round summary or two: the height is stuck)
        assert {protocol for p, protocol, _ in net.frames if p == peer} == {wire.consensus_push_protocol(CHAIN_ID)}
    slow_frames = [body for p, _, body in net.frames  # the round summaries aside
                   if p == PEERS[0] and (wire.is_bundle(body) or isinstance(wire.decode_consensus(body), Vote))]
    assert len(slow_frames) <= 3 and any(wire.is_bundle(b) for b in slow_frames), len(slow_frames)
    stats = outbox.statistics()
    assert stats["bundles_sent"] >= 1 and stats["frames_sent"] < 3 * len(votes)


async def test_an_answer_leaves_out_what_is_already_on_its_way(autojump_clock):
    # A stuck peer's summaries name votes that are still queued for it, or being written to
    # it; answering with them again made the duplicates (215 per validator per height at 16).
    net = RecordingNetwork(PEERS, slow={PEERS[0]: 2.0})
    outbox, cs = _outbox(net)
    value = b"\x42" * 32
    theirs = [Vote.create(k, CHAIN_ID, PREVOTE, 1, cs.round, value) for k in KEYS[1:3]]
    for v in theirs:
        cs.apply(VoteReceived(v, 0))
    peer_cs = ConsensusState(KEYS[1], CHAIN_ID)  # holds only its own prevote
    peer_cs.apply(StartHeight(1, make_genesis(KEYS).validators, 0))
    peer_cs.apply(VoteReceived(theirs[0], 0))
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run)
        assert outbox.answer_summary(PEERS[0], summarize(peer_cs)) == 1
        await trio.sleep(outbox.resend_interval)  # past the rate limit, the answer still being written
        assert outbox.answer_summary(PEERS[0], summarize(peer_cs)) == 0
        assert outbox.statistics()["deduplicated"] == 1
        await trio.sleep(5)
        assert outbox.answer_summary(PEERS[0], summarize(peer_cs)) == 1  # written: a later summary is answered again
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert _votes_to(net, PEERS[0]) == [theirs[1], theirs[1]]


async def test_a_validator_without_consensus_2_gets_each_message_as_a_request(autojump_clock):
    # An older node answers "na" for consensus/2: nothing is lost, it gets requests on consensus/1.
    net = RecordingNetwork(PEERS, one_way=False)
    outbox, _ = _outbox(net)
    votes = [Vote.create(KEYS[0], CHAIN_ID, PREVOTE, 1, r, b"\x07" * 32) for r in range(5)]
    await _send_own_votes(outbox, votes, gap=0, then=1)
    for peer in PEERS:
        assert _votes_to(net, peer) == votes
        assert all(protocol == wire.consensus_protocol(CHAIN_ID) and not wire.is_bundle(body)
                   for p, protocol, body in net.frames if p == peer)


async def test_validators_send_one_way_and_take_a_bundle_message_by_message(tmp_path, autojump_clock):
    from cluster import memory_network

    async with memory_network(tmp_path, 4) as nodes:
        with trio.fail_after(60):
            while min(n.chain.height for n in nodes) < 3:
                await trio.sleep(0.05)
        push, legacy = wire.consensus_push_protocol(CHAIN_ID_OF(nodes)), wire.consensus_protocol(CHAIN_ID_OF(nodes))
        stats = nodes[0].net.statistics()["memory"]
        assert stats["served_by_protocol"].get(push, 0) > 0 and legacy not in stats["served_by_protocol"]
        driver, peer = nodes[0].driver, nodes[1].net.peer_id
        received = driver.metrics.consensus_received

        def count(kind: str, outcome: str) -> float:
            return received.labels("direct", kind, outcome)._value.get()

        bundles, fresh = count("bundle", "new"), count("vote", "new")
        h = driver.chain.height + 1  # the height consensus works on, or waits to start
        votes = [Vote.create(n.key, n.chain.genesis.chain_id, PRECOMMIT, h, 5, b"") for n in nodes[1:]]
        await driver.receive_pushed(peer, wire.encode_bundle([wire.encode_vote(v) for v in votes]))
        assert count("bundle", "new") >= bundles + 1 and count("vote", "new") >= fresh + len(votes)
        await driver.receive_pushed(peer, bytes.fromhex("9207") + b"\x90")  # [7, []]: no bundle
        assert received.labels("direct", "bundle", "invalid")._value.get() == 1
        assert nodes[0].net.faults.rejections().get(("consensus", "size"), 0) == 1


def CHAIN_ID_OF(nodes) -> str:
    return nodes[0].chain.genesis.chain_id
