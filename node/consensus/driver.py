"""The consensus driver: the one task that owns the consensus state machine.

It turns peers' messages, timers and chain progress into
:mod:`protocol.consensus` events, and carries out the actions the state
machine returns, in order:

============================  ==================================================
action                        what the driver does (and feeds back)
============================  ==================================================
ProposeBlock(h, r)            reap the mempool, build the block (worker thread),
                              keep it as a valid candidate -> BlockBuilt
BroadcastProposal(p, signer,  WAL: the signer state and the proposed block, one
  pol_votes)                  fsync; THEN send the proposal, then its proof of
                              lock (the prevotes of its pol_round)
BroadcastVote(v, signer)      WAL: the signer state and the block voted for (if
                              not nil), one fsync; THEN send the vote
ScheduleTimeout(h, r, s, t)   timer heap -> TimeoutFired at t
RequestBlock(h, hash)         find or fetch and check the block (ProposalBlocks)
                              -> BlockReceived(hash, valid)
CommitBlock(h, r, hash, cert) Chain.commit (one SQLite transaction), announce,
                              then StartHeight(h + 1) once the height gate opens
RecordEvidence(ev)            keep it for the next block we propose
RejectedInput(reason)         count it
============================  ==================================================

Crash recovery (:mod:`.wal`): at start the WAL gives back the last signer
state (the state machine resumes the height it was in, lock included) and
every block we proposed or voted for above the committed height; those go
among the candidates (pinned), so they can be served, re-proposed and
committed even if every validator crashed before storing them. A validator
whose signer state is ahead of its store (a wiped or restored database), or
whose operator set a resume height, syncs up to it before it signs anything.

Its helpers own their own state: :class:`.outbox.ConsensusOutbox` (bounded
per-validator queues, re-sends while a height is stuck),
:class:`.proposals.ProposalBlocks` (the blocks behind proposals),
:class:`protocol.consensus.HeightGate` (when the next height starts). Incoming
messages (gossip or direct) are decoded, filtered and signature-checked here,
on the trio thread, before they reach the state machine; a peer's bad message
is counted and dropped. A node that learns of heights beyond its own tells
block sync; blocks synced advance the chain and the driver moves consensus to
the next height.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import trio

from protocol import wire
from protocol.consensus.actions import (
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ProposeBlock,
    RecordEvidence,
    RejectedInput,
    RequestBlock,
    ScheduleTimeout,
)
from protocol.consensus.check import check_message
from protocol.consensus.events import BlockBuilt, BlockReceived, ProposalReceived, StartHeight, TimeoutFired, VoteReceived
from protocol.consensus.gate import HeightGate
from protocol.consensus.gossip import RoundSummary
from protocol.consensus.params import ConsensusParams
from protocol.consensus.signer import SignerState
from protocol.consensus.state_machine import ConsensusState
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.keys import PrivateKey
from protocol.ledger import admissible_evidence, build_block, evidence_admissible
from protocol.votes import Evidence, Proposal, Vote

from ..candidates import CandidateBlocks
from ..chain import Chain
from ..config import ConsensusSection
from ..errors import StorageDamaged
from ..mempool import Mempool
from ..metrics import NodeMetrics
from ..p2p.errors import P2PError
from ..p2p.faults import fault_of
from ..p2p.host import validator_peer_ids
from ..sync import BlockSync, SyncClient
from .outbox import ConsensusOutbox
from .proposals import ProposalBlocks
from .wal import ConsensusWAL, WalDamaged

log = logging.getLogger("branchnet.consensus")


@dataclass(frozen=True, slots=True)
class _Wake:
    """Check the height gate again (records arrived, the chain advanced, a deadline passed)."""


_WAKE = _Wake()


def _brief(x: Any) -> str:
    name = type(x).__name__
    inner = getattr(x, "vote", None) or getattr(x, "proposal", None)
    if inner is not None:
        return f"{name}({inner.height}/{inner.round} {getattr(inner, 'type', 'P')} {inner.block_hash.hex()[:6]})"
    h = getattr(x, "block_hash", None)
    return f"{name}({getattr(x, 'height', '')}/{getattr(x, 'round', '')} {h.hex()[:6] if h else ''})"


def now_ms() -> int:
    return int(trio.current_time() * 1000)


def timer_due(deadline_ms: int, now: float) -> bool:
    """Whether a timer for ``deadline_ms`` is due at trio time ``now`` (seconds), judged
    exactly as ``trio.move_on_at(deadline_ms / 1000)`` judges it: ``int(now * 1000)``
    can fall 1 ms short of a deadline that move_on_at already found passed (1.001 s *
    1000 = 1000.999...), and the timer loop then spun without ever yielding (on a
    MockClock for ever, since virtual time only moves when every task waits)."""
    return deadline_ms / 1000 <= now


class ConsensusDriver:
    def __init__(self, *, chain: Chain, mempool: Mempool, candidates: CandidateBlocks, key: PrivateKey,
                 network: Any, wal: ConsensusWAL, config: ConsensusSection, metrics: NodeMetrics,
                 sync: BlockSync | None = None, resend_interval: float = 1.0, branch_id: bytes | None = None,
                 keys: tuple[PrivateKey, ...] | list[PrivateKey] = ()):
        """``branch_id``: ours, when ``key`` does not derive it (a rotated key); ``keys``: the
        branch's other keys (a rotation pending or retired): the state machine signs each
        height with the one its validator set holds."""
        self.chain = chain
        self.mempool = mempool
        self.candidates = candidates
        self.key = key
        self.me = key.branch_id if branch_id is None else branch_id
        self.net = network
        self.wal = wal
        self.config = config
        self.metrics = metrics
        self.sync = sync
        self.chain_id = chain.genesis.chain_id
        self.runtime = chain.runtime
        recovered = wal.load()
        self.cs = ConsensusState(key, self.chain_id, ConsensusParams.of_chain(chain.genesis.params), recovered.signer,
                                 recovered.signed_before(), branch_id=self.me)
        for other in keys:
            self.cs.add_key(other)
        # sign nothing below this height: where we signed last, or where the operator said to resume
        self.first_signing_height = max(recovered.signer.height, recovered.resume_height)
        for block_hash, (height, raw) in recovered.blocks.items():
            if height > chain.height:
                self._restore_block(block_hash, raw)
        self.gate = HeightGate(config.block_interval_ms, max(config.block_interval_ms, config.empty_block_interval_ms))
        self.topics = wire.Topics.of(self.chain_id)
        self._events, self._incoming = trio.open_memory_channel[Any](4096)
        self._internal: list[Any] = []  # events the driver feeds itself; they go first
        self._timers: list[tuple[int, int, TimeoutFired]] = []
        self._timer_seq = itertools.count()
        self._timer_changed = trio.Event()
        self._waiting_for: int | None = None  # the next height, while its start is gated
        self._last_commit_at = trio.current_time()
        self._gate_deadline: float | None = None  # trio time at which the gate opens by itself
        self._gate_changed = trio.Event()
        self._evidence: dict[bytes, Evidence] = {}
        self.outbox = ConsensusOutbox(network=network, chain_id=self.chain_id, me=self.me,
                                      validator_peers=validator_peer_ids(chain.state, network.peer_id), cs=self.cs,
                                      candidates=candidates, metrics=metrics, resend_interval=resend_interval,
                                      gated=lambda: self._waiting_for is not None)
        chain.on_commit(self._follow_validators)
        self.proposals = ProposalBlocks(chain=chain, candidates=candidates, mempool=mempool,
                                        client=SyncClient(network, self.chain_id, chain.decode_block), network=network,
                                        metrics=metrics, deliver=self._events.send, current_height=lambda: self.cs.height,
                                        now_ms=now_ms)
        network.register_handler(wire.consensus_protocol(self.chain_id), self.receive_direct)
        network.register_handler(wire.consensus_push_protocol(self.chain_id), self.receive_pushed)
        network.carry_on_link(self.outbox.protocol)
        self._follow_validators(None)

    def _follow_validators(self, _block: Any) -> None:
        """After a commit: send consensus messages to the validators of the next two
        heights (governance may have changed them), and keep consensus links
        (node/p2p/link.py) with them while we are one of them."""
        state = self.chain.state
        self.outbox.validator_peers = validator_peer_ids(state, self.net.peer_id)
        signs = any(v.branch_id == self.me for vs in (state.validators, state.next_validators) for v in vs)
        self.net.set_link_peers(self.outbox.validator_peers if signs else ())

    # ------------------------------------------------------------ service
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        consensus_in = await self.net.subscribe(self.topics.consensus)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.outbox.run)
            await nursery.start(self.proposals.run)
            nursery.start_soon(self._timer_loop)
            nursery.start_soon(self._gate_loop)
            nursery.start_soon(self._gossip_reader, consensus_in)
            nursery.start_soon(self._chain_watcher)
            task_status.started()
            await self._sync_before_signing()
            self._start_height(self.chain.height + 1)
            await self._main_loop()

    def _restore_block(self, block_hash: bytes, raw: bytes) -> None:
        try:
            block = self.chain.decode_block(raw)
        except RemoteProtocolError as exc:
            raise WalDamaged(f"{self.wal.path}: a block does not decode ({exc})") from None
        if block.hash != block_hash:
            raise WalDamaged(f"{self.wal.path}: a block does not match its hash")
        self.candidates.add(block)
        self.candidates.pin(block_hash)

    async def _sync_before_signing(self) -> None:
        """Wait until the chain is one below the first height we may sign at."""
        target = self.first_signing_height - 1
        if self.chain.height < target:
            log.warning("signing resumes at height %d: syncing from %d to %d first",
                        self.first_signing_height, self.chain.height, target)
            if self.sync is not None:
                self.sync.peer_is_at(target)
            await self.chain.wait_height(target)

    def add_signing_key(self, key: PrivateKey) -> None:
        """Another key of our branch (a key rotation, node/keyring.py). Never blocks; the
        state machine signs with it the heights whose validator set holds it, from the
        next height it starts (never the one in progress)."""
        self.cs.add_key(key)

    def notify_records(self) -> None:
        """Records arrived (never blocks): the height gate may open sooner."""
        self._wake()

    def _wake(self) -> None:
        try:
            self._events.send_nowait(_WAKE)
        except trio.WouldBlock:
            pass  # the loop is busy and will look at the gate anyway

    def statistics(self) -> dict[str, Any]:
        cs = self.cs
        return {
            "height": cs.height, "round": cs.round, "step": cs.step.name.lower(),
            "waiting_for_height": self._waiting_for, "rejected": dict(cs.rejected),
            "pending_evidence": len(self._evidence), "signer_writes": self.wal.writes,
            "fetched": dict(self.proposals.fetched), "outbox": self.outbox.statistics(),
        }

    # ------------------------------------------------------------ main loop
    async def _main_loop(self) -> None:
        while True:
            event = self._internal.pop(0) if self._internal else await self._incoming.receive()
            if event is _WAKE:
                self._maybe_start_next()
                continue
            if isinstance(event, (ProposalReceived, VoteReceived)):
                h = event.proposal.height if isinstance(event, ProposalReceived) else event.vote.height
                if self._waiting_for is not None and h >= self._waiting_for:
                    self._start_height(self._waiting_for)  # a peer already moved on
                if h > self.cs.height + 1 and self.sync is not None:
                    self.sync.peer_is_at(h - 1)
            if self._waiting_for is not None and isinstance(event, (TimeoutFired, BlockReceived, BlockBuilt)):
                continue  # stale: the height it belongs to is decided
            await self._apply(event)

    async def _apply(self, event: Any) -> None:
        actions = self.cs.apply(event)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("h=%d r=%d %s <- %s -> %s", self.cs.height, self.cs.round, self.cs.step.name, _brief(event),
                      [_brief(a) for a in actions])
        for action in actions:
            await self._carry_out(action)

    def _start_height(self, height: int) -> None:
        if height <= self.cs.height or self.chain.beyond_halt(height):  # [consensus] halt_height: the node stops
            return
        self._waiting_for = None
        self._gate_deadline = None
        self.outbox.new_height()
        self.proposals.new_height(height)
        self.cs.params = ConsensusParams.of_chain(self.chain.state.params)  # governance may change the timeouts (§15)
        self._internal.insert(0, StartHeight(height, self.chain.state.validators, now_ms()))

    def _maybe_start_next(self) -> None:
        """Start the next height if the gate is open, else arm the gate's timer."""
        if self.chain.height >= self.cs.height and self.cs.height > 0 and self._waiting_for is None:
            self._waiting_for = self.chain.height + 1  # sync (or our own commit) moved the chain on
        if self._waiting_for is None:
            return
        self._waiting_for = max(self._waiting_for, self.chain.height + 1)
        now = trio.current_time()
        last_ms = int(self._last_commit_at * 1000)
        start_ms = self.gate.next_start(last_commit_ms=last_ms, pending_records=len(self.mempool))
        deadline = self._last_commit_at + (start_ms - last_ms) / 1000
        # Judged by the trio-time deadline the gate loop sleeps until, not by rounding ``now``
        # to ms: woken at ``deadline``, int(now * 1000) can be 1 ms short, and the loop would
        # re-arm the same deadline and spin without yielding (forever on a MockClock).
        if now >= deadline:
            self._start_height(self._waiting_for)
        else:
            self._gate_deadline = deadline
            self._gate_changed.set()

    # ------------------------------------------------------------ actions
    async def _carry_out(self, action: Any) -> None:
        if isinstance(action, ScheduleTimeout):
            heapq.heappush(self._timers, (action.deadline_ms, next(self._timer_seq),
                                          TimeoutFired(action.height, action.round, action.step, action.deadline_ms)))
            self._timer_changed.set()
        elif isinstance(action, BroadcastVote):
            await self._write_ahead(action.signer_state, action.vote.height, action.vote.block_hash)
            self.outbox.send_own_vote(action.vote)
        elif isinstance(action, BroadcastProposal):
            await self._write_ahead(action.signer_state, action.proposal.height, action.proposal.block_hash)
            self.outbox.send_own_proposal(action.proposal, action.pol_votes)
        elif isinstance(action, ProposeBlock):
            await self._propose_block(action.height, action.round)
        elif isinstance(action, RequestBlock):
            self.proposals.request_block(action.height, action.block_hash)
        elif isinstance(action, CommitBlock):
            await self._commit(action)
        elif isinstance(action, RecordEvidence):
            self._evidence[action.evidence.hash] = action.evidence
            log.warning("equivocation by %s at height %d", action.evidence.validator.hex(), action.evidence.height)
        elif isinstance(action, RejectedInput):
            self.metrics.reject("consensus", action.reason)

    async def _write_ahead(self, signer_state: SignerState, height: int, block_hash: bytes) -> None:
        """Write before you act: the signature must not leave before its signer state,
        and the block it is for, are durable (one fsync)."""
        blocks = []
        if block_hash and not self.wal.has_block(block_hash):
            cand = self.candidates.get(block_hash)
            if cand is None:  # valid(v) was checked, so we hold it: not having it is our bug
                raise LocalProtocolError(f"signing for block {block_hash.hex()[:12]} that is not held", field="wal")
            blocks.append((height, block_hash, cand.block.encode()))
            self.candidates.pin(block_hash)
        try:
            await self.runtime.run_sync(self.wal.append, signer_state, blocks)
        except OSError as exc:  # a full or failing disk: stop rather than sign what we could not write
            raise StorageDamaged(f"cannot write {self.wal.path} ({exc.strerror or exc}); the validator stops rather "
                                 f"than sign without it: free space or fix the disk, then restart") from exc
        self.metrics.signer_writes.inc()

    async def _propose_block(self, height: int, round: int) -> None:
        chain = self.chain
        if height != chain.height + 1:
            return  # the chain moved on (sync); the timeout covers us
        candidates = self.mempool.reap(self.config.max_block_records)
        verified = {r.hash for r in candidates}
        evidence = admissible_evidence(chain.state, self._evidence.values())  # not of this height: it waits for the next
        wall_ms = self.runtime.wall_ms()
        async with chain.lock:
            block, tx, rejected = await self.runtime.run_sync(lambda: build_block(
                chain.state, height=height, round=round, time_ms=wall_ms, proposer=self.me,
                candidates=candidates, evidence=evidence, verified=verified, max_records=self.config.max_block_records))
        for record, exc in rejected:
            self.mempool.remove([record], reason=exc.reason)
            self.metrics.reject("mempool", exc.reason)
        cand = self.candidates.add(block, verified)
        cand.valid, cand.tx = True, tx
        log.info("proposing block %d round %d with %d records", height, round, len(block.records))
        self._internal.append(BlockBuilt(height, round, block.hash, now_ms()))

    async def _commit(self, action: CommitBlock) -> None:
        cand = self.candidates.get(action.block_hash)
        if cand is None:
            stored = self.chain.store.block(action.height)
            if stored is None or stored.block.hash != action.block_hash:
                log.error("decided block %s at %d is not available; waiting for sync", action.block_hash.hex()[:12], action.height)
                if self.sync is not None:
                    self.sync.peer_is_at(action.height)
                return
            # else block sync committed it first
        else:
            certificate = self.cs.last_commit_certificate() or action.certificate
            if await self.chain.commit(cand.block, certificate, via="consensus", tx=cand.tx):
                self.metrics.commit_round.observe(action.round)
                log.info("committed block %d (round %d, %d records)", action.height, action.round, len(cand.block.records))
                # every validator announces what it commits, to the other nodes only (node.py): the
                # same bytes are one gossip message, so a peer linked to several takes the first copy
                try:
                    await self.net.publish(self.topics.blocks, wire.encode_new_block(action.height, action.block_hash),
                                           max_wait=0.05)
                except (P2PError, trio.TooSlowError):
                    pass  # announcements are a hint; the next one, or a slow poll, covers a lost one
        state = self.chain.state  # drop what is committed, and what no block can carry any more (its validator left the set)
        for h in [h for h, e in self._evidence.items() if e.height <= state.height and not evidence_admissible(state, e)]:
            del self._evidence[h]
        await self.runtime.run_sync(self.wal.prune, self.chain.height)
        self._last_commit_at = trio.current_time()
        self._waiting_for = action.height + 1
        self._drop_timers_through(action.height)
        self.outbox.height_decided()
        self._maybe_start_next()

    def _drop_timers_through(self, height: int) -> None:
        """Forget the timeouts of ``height`` and below (decided: they would fire into nothing),
        so the timer task does not wake for them between heartbeat blocks."""
        kept = [t for t in self._timers if t[2].height > height]
        if len(kept) != len(self._timers):
            heapq.heapify(kept)
            self._timers = kept
            self._timer_changed.set()

    # ------------------------------------------------------------ tasks
    async def _timer_loop(self) -> None:
        while True:
            if not self._timers:
                await self._timer_changed.wait()
                self._timer_changed = trio.Event()
                continue
            with trio.move_on_at(self._timers[0][0] / 1000):
                await self._timer_changed.wait()
                self._timer_changed = trio.Event()
                continue
            now = trio.current_time()
            while self._timers and timer_due(self._timers[0][0], now):
                _, _, event = heapq.heappop(self._timers)
                if event.height == self.cs.height:
                    await self._events.send(TimeoutFired(event.height, event.round, event.step, now_ms()))

    async def _gate_loop(self) -> None:
        """Wake the main loop when the armed gate deadline passes."""
        while True:
            deadline = self._gate_deadline
            if deadline is None:
                await self._gate_changed.wait()
                self._gate_changed = trio.Event()
                continue
            with trio.move_on_at(deadline):
                await self._gate_changed.wait()
                self._gate_changed = trio.Event()
                continue
            if self._gate_deadline == deadline:
                self._gate_deadline = None
                self._wake()

    async def _chain_watcher(self) -> None:
        """Blocks committed by sync (or by us) may let consensus move to the next height."""
        seen = self.chain.height
        while True:
            await self.chain.wait_height(seen + 1)
            seen = self.chain.height
            self._wake()

    async def _gossip_reader(self, channel: Any) -> None:
        async for peer, data in channel:
            await self._receive(peer, data, via="gossip")

    def _already_have(self, item: Vote | Proposal) -> bool:
        cs = self.cs
        if item.height != cs.height or cs.votes is None:
            return False
        if isinstance(item, Vote):
            return cs.votes.has_vote(item)
        return cs.proposals.get(item.round) == item

    def _on_summary(self, peer: str, summary: RoundSummary) -> None:
        """A stuck peer says what it holds: answer with what it lacks, and sync if it is ahead."""
        if summary.height > self.chain.height + 1 and self.sync is not None:
            self.sync.peer_is_at(summary.height - 1)
        self.outbox.answer_summary(peer, summary)

    async def receive_pushed(self, peer: str, data: bytes) -> bytes:
        """Server side of /branchnet/{chain}/consensus/2 (one way): a message, or a bundle of
        them fed one by one in their order. A bundle that does not decode is counted and
        penalises ``peer``; each message in it is judged on its own."""
        if not wire.is_bundle(data):
            await self._receive(peer, data, via="direct")
            return b""
        try:
            messages = wire.decode_bundle(data)
        except RemoteProtocolError as exc:
            self.metrics.consensus_received.labels("direct", "bundle", "invalid").inc()
            self.metrics.reject("consensus", exc.reason)
            self.net.penalize(peer, exc.reason, fault=fault_of(exc), protocol="consensus")
            return b""
        self.metrics.consensus_received.labels("direct", "bundle", "new").inc()
        for message in messages:
            await self._receive(peer, message, via="direct")
        return b""

    async def receive_direct(self, peer: str, data: bytes) -> bytes:
        """Server side of /branchnet/{chain}/consensus/1: the message, answered with nothing."""
        await self._receive(peer, data, via="direct")
        return b""

    async def _receive(self, peer: str, data: bytes, *, via: str) -> None:
        """Decode, filter and signature-check a consensus message, then feed it. Stale
        and duplicate messages are dropped before any signature work; a message that
        does not decode or verify is counted and penalises ``peer`` (the sender, or
        the origin of a gossip message) on the transport."""
        counted = self.metrics.consensus_received
        kind = "invalid"
        try:
            msg = wire.decode_consensus(data)
            kind = _kind_of(msg)
            if isinstance(msg, RoundSummary):
                counted.labels(via, kind, "new").inc()
                self._on_summary(peer, msg)
                return
            item = msg if isinstance(msg, Vote) else msg.proposal
            if item.height <= self.chain.height:
                counted.labels(via, kind, "stale").inc()
                self.metrics.reject("consensus", "stale_height")
                return
            if self._already_have(item):
                counted.labels(via, kind, "duplicate").inc()
                self.metrics.reject("consensus", "duplicate_vote" if isinstance(item, Vote) else "duplicate_proposal")
                return
            check_message(item, self.chain.state.validators, self.chain_id)
        except RemoteProtocolError as exc:
            counted.labels(via, kind, "invalid").inc()
            self.metrics.reject("consensus", exc.reason)
            self.net.penalize(peer, exc.reason, fault=fault_of(exc), protocol="consensus")
            return
        counted.labels(via, kind, "new").inc()
        if isinstance(msg, Vote):
            self.metrics.votes_received.inc()
            await self._events.send(VoteReceived(msg, now_ms()))
            return
        await self.proposals.take_block_of(peer, msg)
        await self._events.send(ProposalReceived(msg.proposal, now_ms()))


def _kind_of(msg: Any) -> str:
    if isinstance(msg, Vote):
        return "vote"
    if isinstance(msg, RoundSummary):
        return "summary"
    return "compact_proposal" if isinstance(msg, wire.CompactProposal) else "proposal"
