"""Consensus messages out: straight to each validator, and help for stuck peers.

**Direct delivery.** Every consensus message we send goes to each connected
validator over ``/branchnet/{chain}/consensus/2``, one way (a request frame
with id 0 that is never answered: no answer frame per vote, and no sender
waiting for one), through a bounded queue per validator (``MAX_QUEUED``
messages; when one is full its oldest message goes, counted) drained by one
sender task, so a slow or silent validator delays only its own copies.
Whatever is queued for a validator while the previous frame is written goes
out as one frame, a bundle (``[7, [message, ...]]``, at most
``wire.MAX_BUNDLE_MESSAGES`` messages, no more than
``wire.BUNDLE_TARGET_BYTES`` unless one message alone is bigger): under load a
peer gets a few frames instead of hundreds. A message already queued for, or
being written to, a validator is not queued for it again (an answer to a
summary often names votes still on their way). A peer that does not serve
``consensus/2`` (an older node) gets each message alone as a request on
``consensus/1``, answered empty. Record batches on gossip would otherwise
delay votes by seconds under load (head-of-line blocking in one gossip stream).
A proposal that re-proposes a value (``pol_round`` ≥ 0) is followed by its
proof of lock, the prevotes of that round we hold for it (PROTOCOL.md §11.2).

**A stuck height.** Gossip is lossy and a validator may have been down. While
a height makes no progress (a decided height whose successor waits for the
height gate, as between heartbeat blocks, is not stuck), the outbox sends
``SUMMARY_FANOUT`` validators picked at random one :class:`protocol.consensus.gossip.RoundSummary` of what
we hold — after ``resend_interval``, then after twice that, up to
``MAX_BACKOFF`` (with jitter), and never to a peer whose queue still holds
messages. A peer answers with exactly the proposal and votes we lack
(:meth:`answer_summary`: at most one answer per peer per ``resend_interval /
2``, at most ``4·N + 4`` messages, the latest rounds first). Asking a few peers, not all, keeps the
answers from arriving N−1 times over: a stuck node costs the network O(N)
messages per interval, not the O(N²) of re-sending every vote to every peer
(the vote storm that stopped ten validators on two cores).

**A missing link costs nothing.** A validator we have no link to is not sent
anything on our behalf: it gets our messages from the validators it does
reach, which hold them (we sent them there) and answer its summaries with
them. Only a validator linked to no validator at all puts its own messages on
the consensus topic, where gossip relays can reach the others. (Re-publishing
them on the topic whenever one link was missing made every node in the
network receive every such node's messages each stuck round: at 31 validators
under load, with links dropping, 522 gossip copies per validator per height.)
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from typing import Any, Callable

import trio

from protocol import wire
from protocol.consensus.gossip import SUMMARY_FANOUT, RoundSummary, answer_limit, missing_for, summarize
from protocol.consensus.state_machine import ConsensusState
from protocol.votes import Proposal, Vote

from ..candidates import CandidateBlocks
from ..metrics import NodeMetrics
from ..p2p.errors import P2PError, ProtocolUnsupported

log = logging.getLogger("branchnet.consensus")

MAX_QUEUED = 256  # messages waiting for one validator
SEND_TIMEOUT = 5.0
MAX_BACKOFF = 8.0  # seconds between summaries of a height that stays stuck
BUSY_QUEUE = 2  # a peer with more queued than this gets no summary (it would only pile up)
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
    __slots__ = ("messages", "held", "ready", "one_way")

    def __init__(self) -> None:
        self.messages: deque[bytes] = deque()
        self.held: set[bytes] = set()  # queued or being written: not queued again
        self.ready = trio.Event()
        self.one_way = True  # the peer serves consensus/2 (until it answers "na")


class ConsensusOutbox:
    def __init__(self, *, network: Any, chain_id: str, me: bytes, validator_peers: set[str],
                 cs: ConsensusState, candidates: CandidateBlocks, metrics: NodeMetrics,
                 resend_interval: float = 1.0, gated: Callable[[], bool] = lambda: False):
        self.net = network
        self.me = me
        self.validator_peers = validator_peers
        self.cs = cs  # read only: the driver owns it
        self.candidates = candidates
        self.metrics = metrics
        self.resend_interval = resend_interval
        self.gated = gated  # True while our last height is decided and the next one's start waits (the height gate)
        self.protocol = wire.consensus_push_protocol(chain_id)
        self.legacy_protocol = wire.consensus_protocol(chain_id)
        self.topic = wire.Topics.of(chain_id).consensus
        self._own: dict[tuple, Vote | Proposal] = {}  # our messages of the current height, to re-send
        self._height_started = trio.Event()  # set (and replaced) when the driver starts a height
        self._stuck_wait = trio.CancelScope()  # the re-sender's wait for its next look at a stuck height
        self._resend = 0
        self._queues: dict[str, _PeerQueue] = {}
        self._answered_at: dict[str, float] = {}  # peer -> when we last answered its summary
        self._rng = random.Random()
        self._nursery: trio.Nursery | None = None
        self.dropped = 0
        self.summaries_sent = 0
        self.answers_sent = 0
        self.deduplicated = 0
        self.frames_sent = 0
        self.bundles_sent = 0

    # ------------------------------------------------------------ service
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._resend_loop)
            task_status.started()

    def statistics(self) -> dict[str, int]:
        return {"queued": sum(len(q.messages) for q in self._queues.values()), "dropped": self.dropped,
                "stuck_rounds": self._resend, "summaries_sent": self.summaries_sent, "answers_sent": self.answers_sent,
                "deduplicated": self.deduplicated, "frames_sent": self.frames_sent, "bundles_sent": self.bundles_sent}

    # ------------------------------------------------------------ sending
    def new_height(self) -> None:
        """A new height started: our messages of the last one need no re-sending."""
        self._own.clear()
        self._height_started.set()
        self._height_started = trio.Event()

    def height_decided(self) -> None:
        """Our height is committed and the gate holds the next one: the re-sender need not
        look again before the next height starts."""
        self._stuck_wait.deadline = math.inf

    def send_own_vote(self, vote: Vote) -> None:
        self._own[("vote", vote.type, vote.round)] = vote
        self.send_to_validators(wire.encode_vote(vote))

    def send_own_proposal(self, proposal: Proposal, pol_votes: tuple[Vote, ...] = ()) -> None:
        """``proposal``, then ``pol_votes``, its proof of lock (the prevotes of its
        ``pol_round``): a peer lacking one of them could not prevote it."""
        self._own[("proposal", proposal.round)] = proposal
        self.send_to_validators(encode_proposal(proposal, self.candidates))
        for vote in pol_votes:
            self._own[("pol", proposal.round, vote.validator, vote.block_hash)] = vote
            self.send_to_validators(wire.encode_vote(vote))

    def send_to_validators(self, data: bytes) -> None:
        """Queue ``data`` for every connected validator; never blocks."""
        for peer in self.net.connected_peers():
            if peer in self.validator_peers:
                self._enqueue(peer, data, "own")

    def _enqueue(self, peer: str, data: bytes, kind: str) -> bool:
        """Queue ``data`` for ``peer`` unless it is already queued or being written to it;
        ``kind`` (own, relay, summary) labels the count. Returns whether it was queued."""
        queue = self._queues.get(peer)
        if queue is None:
            queue = self._queues[peer] = _PeerQueue()
            self._nursery.start_soon(self._sender, peer, queue)
        if data in queue.held:
            self.deduplicated += 1
            self.metrics.consensus_sent.labels("deduplicated").inc()
            return False
        if len(queue.messages) >= MAX_QUEUED:
            queue.held.discard(queue.messages.popleft())  # the oldest is the least useful; re-sends cover it
            self.dropped += 1
            self.metrics.reject("consensus_out", "queue_full")
        queue.messages.append(data)
        queue.held.add(data)
        self.metrics.consensus_sent.labels(kind).inc()
        queue.ready.set()
        return True

    async def _sender(self, peer: str, queue: _PeerQueue) -> None:
        while True:
            if not queue.messages:
                queue.ready = trio.Event()
                await queue.ready.wait()
                continue
            batch = take_bundle(queue.messages) if queue.one_way else [queue.messages.popleft()]
            self.frames_sent += 1
            self.metrics.consensus_sent.labels("frame_bundle" if len(batch) > 1 else "frame_single").inc()
            try:
                if len(batch) > 1:
                    self.bundles_sent += 1
                    await self.net.notify(peer, self.protocol, wire.encode_bundle(batch), timeout=SEND_TIMEOUT)
                elif queue.one_way:
                    await self.net.notify(peer, self.protocol, batch[0], timeout=SEND_TIMEOUT)
                else:
                    await self.net.request(peer, self.legacy_protocol, batch[0], timeout=SEND_TIMEOUT, retry=False)
            except ProtocolUnsupported:
                log.info("validator %s does not serve %s: sending it requests on %s", peer, self.protocol,
                         self.legacy_protocol)
                queue.one_way = False
                for data in reversed(batch):  # not lost: they go again, one request each
                    queue.messages.appendleft(data)
                continue
            except P2PError as exc:  # lossy by design: re-sent while the height is stuck
                log.debug("direct consensus send to %s failed: %s", peer, exc)
            for data in batch:
                queue.held.discard(data)

    async def _gossip(self, data: bytes) -> None:
        try:
            await self.net.publish(self.topic, data, max_wait=0.05)
        except (P2PError, trio.TooSlowError) as exc:
            log.debug("consensus publish failed: %s", exc)

    # ------------------------------------------------------------ a stuck height
    async def _resend_loop(self) -> None:
        """Help a height that makes no progress: ``resend_interval`` after it started, then
        after twice that, up to MAX_BACKOFF. Woken by a new height, not by a clock: while our
        last height is decided and the gate holds the next one back (an idle chain between
        heartbeat blocks) there is nothing to help with, and this task sleeps."""
        while True:
            started = self._height_started
            if self.gated():
                await started.wait()
                continue
            wait = self.resend_interval
            while True:
                with trio.move_on_after(wait * self._rng.uniform(0.8, 1.2)) as self._stuck_wait:
                    await started.wait()
                if started.is_set() or self.gated():
                    break
                await self.help_stuck_height()
                wait = min(wait * 2, MAX_BACKOFF)

    async def help_stuck_height(self) -> None:
        """Send a few validators our summary (see the module docstring); linked to no
        validator at all, put our own messages on the consensus topic again."""
        self._resend += 1
        summary = summarize(self.cs)
        if summary is None:
            return
        data = wire.encode_round_summary(summary, self._resend)
        linked = sorted(self.validator_peers.intersection(self.net.connected_peers()))
        idle = [p for p in linked if (q := self._queues.get(p)) is None or len(q.messages) <= BUSY_QUEUE]
        for peer in self._rng.sample(idle, min(SUMMARY_FANOUT, len(idle))):
            self._enqueue(peer, data, "summary")
            self.summaries_sent += 1
        if self.validator_peers and not linked:
            for msg in list(self._own.values()):  # re-encoded: gossip drops repeats of identical bytes
                fresh = (wire.encode_vote(msg, self._resend) if isinstance(msg, Vote)
                         else encode_proposal(msg, self.candidates, self._resend, gossip=True))
                await self._gossip(fresh)

    def answer_summary(self, peer: str, summary: RoundSummary) -> int:
        """Queue for ``peer`` what its summary says it lacks; returns how many messages."""
        if peer not in self.validator_peers:
            return 0
        now = trio.current_time()
        if now - self._answered_at.get(peer, -1e9) < self.resend_interval / 2:
            return 0  # answered a moment ago: what we sent is still on its way
        self._answered_at[peer] = now
        answer = missing_for(self.cs, summary, limit=answer_limit(self.cs.valset)) if self.cs.valset else []
        queued = 0
        for msg in answer:
            data = wire.encode_vote(msg) if isinstance(msg, Vote) else encode_proposal(msg, self.candidates)
            queued += self._enqueue(peer, data, "relay")
        self.answers_sent += queued
        return queued


def take_bundle(messages: deque[bytes]) -> list[bytes]:
    """Take from the front of ``messages`` (not empty) what goes in one frame: the first
    message, then more while the bundle stays within ``wire.BUNDLE_TARGET_BYTES`` and
    ``wire.MAX_BUNDLE_MESSAGES`` (each message costs its length and at most 5 bytes of
    msgpack header)."""
    batch = [messages.popleft()]
    size = len(batch[0]) + 5
    while messages and len(batch) < wire.MAX_BUNDLE_MESSAGES and size + len(messages[0]) + 5 <= wire.BUNDLE_TARGET_BYTES:
        data = messages.popleft()
        batch.append(data)
        size += len(data) + 5
    return batch
