"""What a simulated node does besides its consensus state machine: the honest node's
duties (block sync, block fetch, the outbox's help for a stuck height, answers to round
summaries) and what Byzantine validators send instead of their signed messages.

Mixins of :class:`tools.sim.engine.Simulation`: they share its state (``self.nodes``,
``self.rng``, the event heap through ``self.push``, ``self.send``).
"""

from __future__ import annotations

from protocol.consensus import BlockReceived, Step
from protocol.consensus.gossip import SUMMARY_FANOUT, RoundSummary, answer_limit, missing_for, summarize
from protocol.votes import NIL, PRECOMMIT, PREVOTE, Proposal, Vote

from .world import _EVENT, _FETCH, _SYNC, _TICK, CHAIN_ID, FETCH_RETRY_MS, GOSSIP_MS, MAX_BACKOFF_MS, SimNode


class NodeDuties:
    """Block sync, block fetch and the outbox, as the node's services do them."""

    def sync(self, nd: SimNode, src: SimNode) -> None:
        """Block sync: take the next block + certificate from ``src``."""
        nd.syncing = False
        h = nd.state.height
        got = src.committed.get(h)
        if got is None or nd.state.step == Step.NEW_HEIGHT:
            return
        block_hash, cert = got
        nd.have.add(block_hash)
        self.record_commit(nd, h, block_hash, cert, -1)
        self.start_height(nd, h + 1)

    def fetch(self, nd: SimNode, height: int, block_hash: bytes) -> None:
        """RequestBlock for a block the node lacks: ask a reachable peer that holds
        it; retry while the node is still at that height."""
        if nd.state is None or nd.state.height != height or block_hash in nd.have:
            return
        groups = None if self.healed else self.groups
        holders = [p for p in self.nodes if p is not nd and p.alive and block_hash in p.have
                   and (groups is None or groups[p.idx] == groups[nd.idx])]
        if holders and block_hash in self.blocks:
            nd.have.add(block_hash)
            at = self.now + 2 * self.delay()
            self.push(at, _EVENT, nd.idx, nd.inc, BlockReceived(block_hash, self.blocks[block_hash], at))
        else:
            self.push(self.now + FETCH_RETRY_MS, _FETCH, nd.idx, nd.inc, (height, block_hash))

    def gossip_tick(self, nd: SimNode) -> None:
        """The node's outbox timer. While a height makes no progress: Byzantine nodes
        re-send what they sent; honest nodes help with the ``gossip_policy`` — the
        node's round summaries (after 1 s, then 2, 4, 8 s), or, for the broken
        "storm" variant, every vote and proposal to every peer every second. Also
        what block sync does when stuck: ask a node that is ahead."""
        st = nd.state if nd.alive else None
        stalled = st is not None and st.height == nd.mark
        nd.mark = st.height if st is not None else None
        if not stalled:
            nd.help_wait = GOSSIP_MS
        wait = nd.help_wait if self.gossip_policy == "summary" else GOSSIP_MS
        self.push(self.now + int(wait * self.rng.uniform(0.8, 1.2)), _TICK, nd.idx, 0, None)
        if not stalled or nd.mode == "silent":
            return
        nd.help_wait = min(nd.help_wait * 2, MAX_BACKOFF_MS)
        if not nd.syncing:  # block sync polls peers' status
            ahead = [p for p in self.nodes if p.alive and p.top >= st.height and p is not nd]
            if ahead:
                nd.syncing = True
                src = self.rng.choice(ahead)
                self.push(self.now + 2 * self.delay(), _SYNC, nd.idx, (nd.inc, src.idx), None)
        if nd.mode != "honest":
            for m in nd.sent:
                if m.round >= st.round - 1:
                    self.send(nd, m)
            return
        if self.gossip_policy == "storm":
            return self.storm(nd)
        summary = summarize(st)
        if summary is not None:
            peers = [p for p in self.nodes if p is not nd]
            self.send(nd, summary, self.rng.sample(peers, min(SUMMARY_FANOUT, len(peers))))

    def answer_summary(self, nd: SimNode, src: SimNode, summary: RoundSummary) -> None:
        """As the node's outbox: what the peer lacks, at most once per half interval."""
        st = nd.state
        if summary.height > st.height + 1 and not nd.syncing and src.top >= st.height:
            nd.syncing = True
            self.push(self.now + 2 * self.delay(), _SYNC, nd.idx, (nd.inc, src.idx), None)
        if nd.mode != "honest" or self.now - nd.answered.get(src.idx, -GOSSIP_MS) < GOSSIP_MS // 2:
            return
        nd.answered[src.idx] = self.now
        for msg in missing_for(st, summary, limit=answer_limit(st.valset)):
            self.send(nd, msg, [src])

    def storm(self, nd: SimNode) -> None:
        """The node before round summaries: its own messages of the height again, to
        every peer and on gossip, and every other vote and proposal of the current,
        valid and locked rounds to every peer."""
        st = nd.state
        own = [m for m in nd.sent if m.height == st.height]
        for m in own:
            self.send(nd, m)
            self.send(nd, m, via="gossip")
        if st.votes is None:
            return
        for r in sorted({x for x in (st.round, st.valid_round, st.locked_round) if x >= 0}):
            for vtype in (PREVOTE, PRECOMMIT):
                for vote in st.votes.votes_in(r, vtype):
                    if vote.validator != nd.bid:
                        self.send(nd, vote)
            p = st.proposals.get(r)
            if p is not None and p.proposer != nd.bid:
                self.send(nd, p)


class Byzantine:
    """Validators in a Byzantine mode: silent, random votes, or two versions of each message."""

    def byzantine_publish(self, nd: SimNode, msg) -> None:
        rng, key = self.rng, nd.key
        if nd.mode == "silent":
            return
        if nd.mode == "random":
            if type(msg) is Vote:
                msg = Vote.create(key, CHAIN_ID, msg.type, msg.height, msg.round, rng.randbytes(32))
            return self.publish(nd, msg)
        # equivocate: two versions, each to one half of the peers
        peers = [p for p in self.nodes if p is not nd]
        if type(msg) is Proposal:
            other = rng.randbytes(32)
            self.blocks[other] = not ("invalid" in self.faults and rng.random() < 0.3)
            side_a = frozenset(p.idx for p in rng.sample(peers, len(peers) // 2))
            self.byz_split[(msg.height, msg.round)] = (msg.block_hash, other, side_a)
            twin = Proposal.create(key, CHAIN_ID, msg.height, msg.round, msg.pol_round, other)
        else:
            split = self.byz_split.get((msg.height, msg.round))
            if split is not None:
                first, other, side_a = split
                msg = Vote.create(key, CHAIN_ID, msg.type, msg.height, msg.round, first)
            else:
                other = rng.choice((NIL, rng.randbytes(32))) if msg.block_hash != NIL else rng.randbytes(32)
                side_a = frozenset(p.idx for p in rng.sample(peers, len(peers) // 2))
            twin = Vote.create(key, CHAIN_ID, msg.type, msg.height, msg.round, other)
        self.publish(nd, msg, [p for p in peers if p.idx in side_a])
        self.publish(nd, twin, [p for p in peers if p.idx not in side_a])
