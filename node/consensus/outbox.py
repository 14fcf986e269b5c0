"""Consensus messages out: straight to each validator, re-sent while a height is stuck.

**Direct delivery.** Every consensus message we send goes to each connected
validator over ``/branchnet/{chain}/consensus/1`` (the topic's bytes as the
request, an empty answer), through a bounded queue per validator
(``MAX_QUEUED`` messages; when one is full its oldest message goes, counted)
drained by ``SENDERS_PER_PEER`` sender tasks, so a slow or silent validator
delays only its own copies. New messages go out before re-sends, and a vote
or proposal still waiting in a validator's queue is not queued again
(counted as ``coalesced``): on a starved machine re-sends otherwise fill the
queues faster than they drain, each new vote waits behind hundreds of copies,
rounds end before their votes arrive, and the height never commits
(measured: 4 validators on a loaded 2-core machine stayed at height 0 for
minutes while their queues grew by ~20 copies a second). Record batches on
gossip would otherwise delay votes by seconds under load (head-of-line
blocking in one gossip stream).

**Re-sends.** Gossip is lossy and a validator may have been down, so while a
height makes no progress for ``resend_interval`` the outbox re-sends our own
proposal and votes of that height (on the direct links and, for validators
we have no link to, on the consensus topic) and relays the other validators'
votes and proposals of the interesting rounds (the current one, and the
valid/locked round a proof of lock may need). Tendermint is live only if
correct validators eventually see each other's messages.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import trio

from protocol import wire
from protocol.consensus.state_machine import ConsensusState
from protocol.votes import PRECOMMIT, PREVOTE, Proposal, Vote

from ..candidates import CandidateBlocks
from ..metrics import NodeMetrics
from ..p2p.errors import P2PError

log = logging.getLogger("branchnet.consensus")

MAX_QUEUED = 256  # messages waiting for one validator
SENDERS_PER_PEER = 4  # requests in flight to one validator
SEND_TIMEOUT = 5.0
COMPACT_MIN_RECORDS = 64  # proposals with this many records go out in compact form


def encode_proposal(proposal: Proposal, candidates: CandidateBlocks, resend: int = 0, *, gossip: bool = False) -> bytes:
    """The proposal message for ``proposal``: compact (record hashes) when its block
    is big and in our candidates, else with the block inline when it fits the link
    (direct: 3 MiB, gossip: 900 KiB), else alone (peers fetch the block by hash)."""
    cand = candidates.get(proposal.block_hash)
    if cand is not None and len(cand.block.records) >= COMPACT_MIN_RECORDS:
        return wire.encode_compact_proposal(proposal, cand.block, resend)
    data = cand.block.encode() if cand is not None else None
    if data is not None and len(data) > (wire.MAX_INLINE_BLOCK_BYTES if gossip else wire.MAX_DIRECT_BLOCK_BYTES):
        data = None
    return wire.encode_proposal(proposal, data, resend)


class _PeerQueue:
    """One validator's messages: new ones first, then re-sends and relays; each vote
    or proposal at most once."""

    __slots__ = ("fresh", "again", "waiting", "ready")

    def __init__(self) -> None:
        self.fresh: deque[tuple[Vote | Proposal | None, bytes]] = deque()
        self.again: deque[tuple[Vote | Proposal | None, bytes]] = deque()
        self.waiting: set[Vote | Proposal] = set()  # the votes and proposals queued
        self.ready = trio.Event()

    def __len__(self) -> int:
        return len(self.fresh) + len(self.again)

    def in_order(self) -> list[bytes]:
        """What is queued, in the order it will be sent."""
        return [data for _, data in self.fresh] + [data for _, data in self.again]

    def push(self, msg: Vote | Proposal | None, data: bytes, *, resend: bool) -> None:
        (self.again if resend else self.fresh).append((msg, data))
        if msg is not None:
            self.waiting.add(msg)
        self.ready.set()

    def popleft(self) -> bytes:
        """The next message to send."""
        msg, data = (self.fresh or self.again).popleft()
        self.waiting.discard(msg)
        return data

    def drop_oldest(self) -> None:
        """Make room: the oldest re-send goes first (re-sends cover what is dropped)."""
        msg, _ = (self.again or self.fresh).popleft()
        self.waiting.discard(msg)


class ConsensusOutbox:
    def __init__(self, *, network: Any, chain_id: str, me: bytes, validator_peers: set[str],
                 cs: ConsensusState, candidates: CandidateBlocks, metrics: NodeMetrics,
                 resend_interval: float = 1.0):
        self.net = network
        self.me = me
        self.validator_peers = validator_peers
        self.cs = cs  # read only: the driver owns it
        self.candidates = candidates
        self.metrics = metrics
        self.resend_interval = resend_interval
        self.protocol = wire.consensus_protocol(chain_id)
        self.topic = wire.Topics.of(chain_id).consensus
        self._own: dict[tuple, Vote | Proposal] = {}  # our messages of the current height, to re-send
        self._resend = 0
        self._queues: dict[str, _PeerQueue] = {}
        self._nursery: trio.Nursery | None = None
        self.dropped = 0
        self.coalesced = 0  # re-sends skipped: the same message was still queued for that validator

    # ------------------------------------------------------------ service
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._resend_loop)
            task_status.started()

    def statistics(self) -> dict[str, int]:
        return {"queued": sum(len(q) for q in self._queues.values()), "dropped": self.dropped,
                "coalesced": self.coalesced, "resends": self._resend}

    # ------------------------------------------------------------ sending
    def new_height(self) -> None:
        """A new height started: our messages of the last one need no re-sending."""
        self._own.clear()

    def send_own_vote(self, vote: Vote) -> None:
        self._own[("vote", vote.type, vote.round)] = vote
        self.send_to_validators(wire.encode_vote(vote), vote)

    def send_own_proposal(self, proposal: Proposal) -> None:
        self._own[("proposal", proposal.round)] = proposal
        self.send_to_validators(encode_proposal(proposal, self.candidates), proposal)

    def send_to_validators(self, data: bytes, msg: Vote | Proposal | None = None, *, resend: bool = False) -> None:
        """Queue ``data`` (the encoding of ``msg``, if given) for every connected
        validator, except where ``msg`` is still queued; never blocks. A ``resend``
        waits until nothing new is queued for that validator."""
        for peer in self.net.connected_peers():
            if peer in self.validator_peers:
                self._enqueue(peer, data, msg, resend)

    def _enqueue(self, peer: str, data: bytes, msg: Vote | Proposal | None, resend: bool) -> None:
        queue = self._queues.get(peer)
        if queue is None:
            queue = self._queues[peer] = _PeerQueue()
            for _ in range(SENDERS_PER_PEER):
                self._nursery.start_soon(self._sender, peer, queue)
        if msg is not None and msg in queue.waiting:
            self.coalesced += 1  # the copy already queued goes out no later than this one would
            return
        if len(queue) >= MAX_QUEUED:
            queue.drop_oldest()
            self.dropped += 1
            self.metrics.reject("consensus_out", "queue_full")
        queue.push(msg, data, resend=resend)

    async def _sender(self, peer: str, queue: _PeerQueue) -> None:
        while True:
            if not queue:
                queue.ready = trio.Event()
                await queue.ready.wait()
                continue
            data = queue.popleft()
            try:
                await self.net.request(peer, self.protocol, data, timeout=SEND_TIMEOUT, retry=False)
            except P2PError as exc:  # lossy by design: re-sent while the height is stuck
                log.debug("direct consensus send to %s failed: %s", peer, exc)

    async def _gossip(self, data: bytes) -> None:
        try:
            await self.net.publish(self.topic, data, max_wait=0.05)
        except (P2PError, trio.TooSlowError) as exc:
            log.debug("consensus publish failed: %s", exc)

    # ------------------------------------------------------------ re-sending
    async def _resend_loop(self) -> None:
        last_height = -1
        while True:
            await trio.sleep(self.resend_interval)
            if self.cs.height != last_height:
                last_height = self.cs.height
                continue  # progress: nothing to re-send yet
            await self.resend_stuck_height()

    async def resend_stuck_height(self) -> None:
        """Re-send our messages of the height and relay the other validators' (see module doc)."""
        self._resend += 1
        for msg in list(self._own.values()):
            # re-encoded with a new resend counter: gossip drops repeats of identical bytes
            if isinstance(msg, Vote):
                fresh = wire.encode_vote(msg, self._resend)
                self.send_to_validators(fresh, msg, resend=True)
            else:
                self.send_to_validators(encode_proposal(msg, self.candidates, self._resend), msg, resend=True)
                fresh = encode_proposal(msg, self.candidates, self._resend, gossip=True)
            await self._gossip(fresh)
        self._relay_round_votes()

    def _relay_round_votes(self) -> None:
        """Relay the votes and proposals we hold from OTHER validators for the current
        round and for our valid/locked round (a proof-of-lock round) to every
        connected validator. A peer that missed them — or is locked on a value whose
        polka only we saw completely — can then move on. Duplicates are harmless
        (counted as such)."""
        cs = self.cs
        if cs.votes is None:
            return
        for r in sorted({r for r in (cs.round, cs.valid_round, cs.locked_round) if r >= 0}):
            for vote_type in (PREVOTE, PRECOMMIT):
                for vote in cs.votes.votes_in(r, vote_type):
                    if vote.validator != self.me:
                        self.send_to_validators(wire.encode_vote(vote, self._resend), vote, resend=True)
            proposal = cs.proposals.get(r)
            if proposal is not None and proposal.proposer != self.me:
                self.send_to_validators(encode_proposal(proposal, self.candidates, self._resend), proposal, resend=True)
