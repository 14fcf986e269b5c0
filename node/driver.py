"""The consensus driver: the one task that owns the consensus state machine.

It turns gossip, timers and chain progress into :mod:`protocol.consensus`
events, and carries out the actions the state machine returns:

============================  ==================================================
action                        what the driver does (and feeds back)
============================  ==================================================
ProposeBlock(h, r)            reap the mempool, build the block (worker thread),
                              cache it as a valid candidate -> BlockBuilt
BroadcastProposal(p, signer)  fsync the signer state, THEN gossip the proposal
                              (block inline when small, else peers fetch it)
BroadcastVote(v, signer)      fsync the signer state, THEN gossip the vote
ScheduleTimeout(h, r, s, t)   timer heap -> TimeoutFired at t
RequestBlock(h, hash)         check the cached candidate or fetch it from peers
                              -> BlockReceived(hash, valid)
CommitBlock(h, r, hash, cert) Chain.commit (one SQLite transaction), announce,
                              then StartHeight(h + 1) once the gate opens
RecordEvidence(ev)            keep it for the next block we propose
RejectedInput(reason)         count it
============================  ==================================================

Gossip is lossy, so the driver re-sends its proposal and votes for the current
height every ``resend_interval`` while the height makes no progress, and asks
peers for blocks it is missing. A node that learns of heights beyond its own
pokes block sync; blocks synced by :mod:`node.sync` advance the chain and the
driver moves consensus to the next height.

The next height starts when there is something to do: records in the mempool
(after ``block_interval_ms``), ``empty_block_interval_ms`` elapsed (a heartbeat
block), or a peer already sent a message for it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

import trio

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
from protocol.consensus.params import ConsensusParams
from protocol.consensus.state_machine import ConsensusState
from protocol.errors import ProtocolError
from protocol.keys import PrivateKey
from protocol.blocks import Block
from protocol.ledger import build_block
from protocol.records import Record
from protocol.votes import PRECOMMIT, PREVOTE, DuplicateVoteEvidence, Proposal, Vote

from . import wire
from .chain import Chain, verify_records_in_threads
from .config import ConsensusSection
from .p2p.errors import P2PError
from .p2p.host import peer_id_of
from .signer_store import SignerStore

log = logging.getLogger("branchnet.consensus")
COMPACT_MIN_RECORDS = 64  # proposals with this many records go out in compact form


@dataclass(frozen=True, slots=True)
class _Wake:
    """Something changed (records arrived, a deadline passed, the chain advanced)."""

    reason: str


def consensus_params(genesis_params: Any) -> ConsensusParams:
    p = genesis_params
    return ConsensusParams(
        timeout_propose_ms=p.timeout_propose_ms,
        timeout_propose_delta_ms=p.timeout_delta_ms,
        timeout_prevote_ms=p.timeout_prevote_ms,
        timeout_prevote_delta_ms=p.timeout_delta_ms,
        timeout_precommit_ms=p.timeout_precommit_ms,
        timeout_precommit_delta_ms=p.timeout_delta_ms,
    )


def _brief(x: Any) -> str:
    name = type(x).__name__
    inner = getattr(x, "vote", None) or getattr(x, "proposal", None)
    if inner is not None:
        return f"{name}({inner.height}/{inner.round} {getattr(inner, 'type', 'P')} {inner.block_hash.hex()[:6]})"
    h = getattr(x, "block_hash", None)
    return f"{name}({getattr(x, 'height', '')}/{getattr(x, 'round', '')} {h.hex()[:6] if h else ''})"


def now_ms() -> int:
    return int(trio.current_time() * 1000)


class ConsensusDriver:
    def __init__(self, *, chain: Chain, key: PrivateKey, network: Any, signer_store: SignerStore,
                 config: ConsensusSection, sync: Any = None, resend_interval: float = 1.0):
        self.chain = chain
        self.key = key
        self.net = network
        self.signer_store = signer_store
        self.config = config
        self.sync = sync
        self.metrics = chain.metrics
        self.chain_id = chain.genesis.chain_id
        self.records_topic, self.consensus_topic, self.blocks_topic = wire.topics(self.chain_id)
        self.cs = ConsensusState(key, self.chain_id, consensus_params(chain.genesis.params), signer_store.load())
        self.resend_interval = resend_interval
        self._send, self._recv = trio.open_memory_channel[Any](4096)
        self._internal: list[Any] = []
        self._timers: list[tuple[int, int, TimeoutFired]] = []
        self._timer_seq = itertools.count()
        self._timer_changed = trio.Event()
        self._waiting_for: int | None = None  # next height, while its start is gated
        self._last_commit_at = trio.current_time()
        self._own: dict[str, Any] = {}  # own Vote / ProposalMessage of the current height, for re-sending
        self._resend = 0
        self._block_peer: dict[bytes, str] = {}  # block hash -> peer that proposed it
        self._fetching: set[bytes] = set()
        self._compact: dict[bytes, Any] = {}  # block hash -> compact proposal whose records we lack
        self.fetched = {"records": 0, "blocks": 0}  # missing proposal data fetched from peers
        self._evidence: dict[bytes, DuplicateVoteEvidence] = {}
        self._nursery: trio.Nursery | None = None
        self._wake_at: float | None = None  # a gate wake-up is already scheduled for then
        self._direct_protocol = wire.consensus_protocol(self.chain_id)
        self._validator_peers = {peer_id_of(v.public_key.raw) for v in chain.state.validators} - {network.peer_id}
        network.register_handler(self._direct_protocol, self.handle_direct)

    # ------------------------------------------------------------ service
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        consensus_in = await self.net.subscribe(self.consensus_topic)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._timer_loop)
            nursery.start_soon(self._resend_loop)
            nursery.start_soon(self._gossip_reader, consensus_in)
            nursery.start_soon(self._chain_watcher)
            task_status.started()
            self._start_height(self.chain.height + 1)
            await self._main_loop()

    def poke(self, reason: str = "records") -> None:
        """Non-blocking nudge from other tasks (new records, chain advanced)."""
        try:
            self._send.send_nowait(_Wake(reason))
        except trio.WouldBlock:
            pass

    def statistics(self) -> dict[str, Any]:
        cs = self.cs
        return {
            "height": cs.height, "round": cs.round, "step": cs.step.name.lower(),
            "waiting_for_height": self._waiting_for, "rejected": dict(cs.rejected),
            "pending_evidence": len(self._evidence), "signer_writes": self.signer_store.writes,
            "fetched": dict(self.fetched),
        }

    # ------------------------------------------------------------ main loop
    async def _main_loop(self) -> None:
        while True:
            if self._internal:
                event = self._internal.pop(0)
            else:
                event = await self._recv.receive()
            if isinstance(event, _Wake):
                self._maybe_start_next()
                continue
            if isinstance(event, (ProposalReceived, VoteReceived)):
                h = event.proposal.height if isinstance(event, ProposalReceived) else event.vote.height
                if self._waiting_for is not None and h >= self._waiting_for:
                    self._start_height(self._waiting_for)  # a peer already moved on
                if h > self.cs.height + 1 and self.sync is not None:
                    self.sync.poke(h - 1)
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

    def _feed(self, event: Any) -> None:
        self._internal.append(event)

    def _start_height(self, height: int) -> None:
        if height <= self.cs.height:
            return
        self._waiting_for = None
        self._own.clear()
        self._block_peer = {h: p for h, p in self._block_peer.items() if h in self.chain.candidates}
        self._compact = {h: m for h, m in self._compact.items() if m.proposal.height >= height}
        self._feed_first(StartHeight(height, self.chain.state.validators, now_ms()))

    def _feed_first(self, event: Any) -> None:
        self._internal.insert(0, event)

    def _maybe_start_next(self) -> None:
        if self.chain.height >= self.cs.height and self.cs.height > 0 and self._waiting_for is None:
            # sync (or our own commit path) moved the chain past consensus
            self._waiting_for = self.chain.height + 1
        nxt = self._waiting_for
        if nxt is None:
            return
        if nxt <= self.chain.height:
            self._waiting_for = nxt = self.chain.height + 1
        since = trio.current_time() - self._last_commit_at
        has_records = len(self.chain.mempool) > 0
        if (has_records and since * 1000 >= self.config.block_interval_ms) or since * 1000 >= self.config.empty_block_interval_ms:
            self._start_height(nxt)
        else:
            wait = (self.config.block_interval_ms if has_records else self.config.empty_block_interval_ms) / 1000 - since
            at = trio.current_time() + max(wait, 0.001)
            if self._wake_at is None or at < self._wake_at - 0.0005:
                self._wake_at = at
                self._nursery.start_soon(self._wake_later, at)

    async def _wake_later(self, at: float) -> None:
        await trio.sleep_until(at)
        if self._wake_at == at:
            self._wake_at = None
        self.poke("gate")

    # ------------------------------------------------------------ actions
    async def _carry_out(self, action: Any) -> None:
        if isinstance(action, ScheduleTimeout):
            heapq.heappush(self._timers, (action.deadline_ms, next(self._timer_seq),
                                          TimeoutFired(action.height, action.round, action.step, action.deadline_ms)))
            self._timer_changed.set()
        elif isinstance(action, BroadcastVote):
            await self._persist_signer(action.signer_state)
            self._own[f"vote{action.vote.type}/{action.vote.round}"] = action.vote
            await self._publish(wire.encode_vote(action.vote))
        elif isinstance(action, BroadcastProposal):
            await self._persist_signer(action.signer_state)
            cand = self.chain.candidates.get(action.proposal.block_hash)
            block_bytes = cand.block.encode() if cand else None
            if block_bytes is not None and len(block_bytes) > wire.MAX_DIRECT_BLOCK_BYTES:
                block_bytes = None  # peers fetch it by hash
            self._own[f"proposal/{action.proposal.round}"] = wire.ProposalMessage(action.proposal, block_bytes)
            if cand is not None and len(cand.block.records) >= COMPACT_MIN_RECORDS:
                # the records are in every validator's mempool already: send hashes, not records
                await self._publish(wire.encode_compact_proposal(action.proposal, cand.block))
            else:
                await self._publish(wire.encode_proposal(action.proposal, block_bytes))
        elif isinstance(action, ProposeBlock):
            await self._propose_block(action.height, action.round)
        elif isinstance(action, RequestBlock):
            self._request_block(action.height, action.block_hash)
        elif isinstance(action, CommitBlock):
            await self._commit(action)
        elif isinstance(action, RecordEvidence):
            self._evidence[action.evidence.hash] = action.evidence
            log.warning("equivocation by %s at height %d", action.evidence.validator.hex(), action.evidence.height)
        elif isinstance(action, RejectedInput):
            self.metrics.reject("consensus", action.reason)

    async def _persist_signer(self, signer_state: Any) -> None:
        # Write before you act: the signature must not leave before its state is durable.
        await trio.to_thread.run_sync(self.signer_store.save, signer_state)
        self.metrics.signer_writes.inc()

    async def _publish(self, data: bytes, *, gossip: bool = False) -> None:
        """Send a consensus message to every connected validator over its direct
        stream (without waiting for answers); with ``gossip`` also on the topic,
        which reaches validators we have no direct connection to (re-sends)."""
        for peer in self.net.connected_peers():
            if peer in self._validator_peers:
                self._nursery.start_soon(self._send_direct, peer, data)
        if gossip:
            try:
                await self.net.publish(self.consensus_topic, data, max_wait=0.05)
            except (P2PError, trio.TooSlowError) as exc:  # lossy by design; re-sent later
                log.debug("consensus publish failed: %s", exc)

    async def _send_direct(self, peer: str, data: bytes) -> None:
        try:
            await self.net.request(peer, self._direct_protocol, data, timeout=5, retry=False)
        except (P2PError, trio.TooSlowError) as exc:
            log.debug("direct consensus send to %s failed: %s", peer, exc)

    async def handle_direct(self, peer: str, data: bytes) -> bytes:
        """Server side of /branchnet/{chain}/consensus/1."""
        await self._on_consensus_message(peer, data)
        return b""

    async def _propose_block(self, height: int, round: int) -> None:
        chain = self.chain
        mempool = chain.mempool
        if height != chain.height + 1:
            return  # the chain moved on (sync); the timeout covers us
        candidates = mempool.reap(self.config.max_block_records)
        verified = {r.hash for r in candidates}
        evidence = [e for e in self._evidence.values() if e.hash not in chain.state.committed_evidence]
        async with chain.lock:
            block, tx, rejected = await trio.to_thread.run_sync(lambda: build_block(
                chain.state, height=height, round=round, time_ms=int(time.time() * 1000), proposer=self.key.branch_id,
                candidates=candidates, evidence=evidence, verified=verified, max_records=self.config.max_block_records))
        for record, exc in rejected:
            mempool.remove([record], reason=exc.reason)
            self.metrics.reject("mempool", exc.reason)
        cand = chain.add_candidate(block, verified)
        cand.valid, cand.tx = True, tx
        log.info("proposing block %d round %d with %d records", height, round, len(block.records))
        self._feed(BlockBuilt(height, round, block.hash, now_ms()))

    def _request_block(self, height: int, block_hash: bytes) -> None:
        cand = self.chain.candidates.get(block_hash)
        if cand is not None:
            self._nursery.start_soon(self._check_and_feed, cand)
        elif block_hash not in self._fetching:
            self._fetching.add(block_hash)
            self._nursery.start_soon(self._fetch_block, height, block_hash)

    async def _check_and_feed(self, cand: Any) -> None:
        valid = await self.chain.check_candidate(cand)
        if cand.block.height == self.cs.height:
            await self._send.send(BlockReceived(cand.block.hash, valid, now_ms()))

    async def _fetch_block(self, height: int, block_hash: bytes) -> None:
        try:
            for attempt in range(20):
                if self.cs.height != height or self.chain.height >= height:
                    return
                peers = self.net.connected_peers()
                first = self._block_peer.get(block_hash)
                if first in peers:
                    peers.remove(first)
                    peers.insert(0, first)
                compact = self._compact.pop(block_hash, None)
                if compact is not None:
                    cand = await self._fetch_missing_records(compact, peers)
                    if cand is not None:
                        await self._check_and_feed(cand)
                        return
                for peer in peers:
                    try:
                        reply = await self.net.request(peer, wire.sync_protocol(self.chain_id),
                                                       wire.encode([wire.REQ_BLOCK, block_hash]), timeout=5)
                        status, payload = wire.decode_response(reply)
                        if status != wire.OK:
                            continue
                        block = self.chain.decode_block(payload)
                    except (P2PError, ProtocolError, trio.TooSlowError) as exc:
                        log.debug("block fetch from %s failed: %s", peer, exc)
                        continue
                    if block.hash != block_hash:
                        self.metrics.reject("sync", "wrong_block")
                        continue
                    self.fetched["blocks"] += 1
                    self.metrics.proposal_data_fetched.labels("blocks").inc()
                    await self._check_and_feed(self.chain.add_candidate(block))
                    return
                await trio.sleep(min(0.1 * 2**attempt, 2.0))
        finally:
            self._fetching.discard(block_hash)

    async def _commit(self, action: CommitBlock) -> None:
        cand = self.chain.candidates.get(action.block_hash)
        if cand is None:
            stored = self.chain.store.block(action.height)
            if stored is not None and stored.block.hash == action.block_hash:
                pass  # sync got there first
            else:
                log.error("decided block %s at %d is not available; waiting for sync", action.block_hash.hex()[:12], action.height)
                if self.sync is not None:
                    self.sync.poke(action.height)
                return
        else:
            certificate = self.cs.last_commit_certificate() or action.certificate
            committed = await self.chain.commit(cand.block, certificate, via="consensus", tx=cand.tx)
            if committed:
                self.metrics.commit_round.observe(action.round)
                log.info("committed block %d (round %d, %d records)", action.height, action.round, len(cand.block.records))
                try:
                    await self.net.publish(self.blocks_topic, wire.encode_new_block(action.height, action.block_hash), max_wait=0.05)
                except (P2PError, trio.TooSlowError):
                    pass
        for h in [h for h, e in self._evidence.items() if h in self.chain.state.committed_evidence]:
            del self._evidence[h]
        self._last_commit_at = trio.current_time()
        self._waiting_for = action.height + 1
        self._maybe_start_next()

    # ------------------------------------------------------------ tasks
    async def _timer_loop(self) -> None:
        while True:
            if not self._timers:
                await self._timer_changed.wait()
                self._timer_changed = trio.Event()
                continue
            deadline = self._timers[0][0]
            with trio.move_on_at(deadline / 1000):
                await self._timer_changed.wait()
                self._timer_changed = trio.Event()
                continue
            now = now_ms()
            while self._timers and self._timers[0][0] <= now:
                _, _, event = heapq.heappop(self._timers)
                if event.height == self.cs.height:
                    await self._send.send(TimeoutFired(event.height, event.round, event.step, now))

    async def _resend_loop(self) -> None:
        last_height = -1
        while True:
            await trio.sleep(self.resend_interval)
            if self.cs.height != last_height:
                last_height = self.cs.height
                continue  # progress: nothing to re-send yet
            self._resend += 1
            for msg in list(self._own.values()):
                # re-encode with a new resend counter: gossip dedups identical bytes
                if isinstance(msg, Vote):
                    fresh = wire.encode_vote(msg, self._resend)
                else:  # over gossip only small blocks travel inline; peers fetch big ones by hash
                    block = msg.block if msg.block and len(msg.block) <= wire.MAX_INLINE_BLOCK_BYTES else None
                    fresh = wire.encode_proposal(msg.proposal, block, self._resend)
                await self._publish(fresh, gossip=True)
            await self._relay_round_votes()

    async def _relay_round_votes(self) -> None:
        """While a height is stuck, relay the votes and proposals we hold from OTHER
        validators for the current round and for our valid/locked round (a proof-of-lock
        round), directly to every connected validator. A peer that missed them — or is
        locked on a value whose polka only we saw completely — can then move on: Tendermint
        is live only if correct nodes eventually see each other's messages, and gossip is
        lossy. Duplicates are harmless (counted as such)."""
        cs = self.cs
        if cs.votes is None:
            return
        rounds = {r for r in (cs.round, cs.valid_round, cs.locked_round) if r >= 0}
        me = self.key.branch_id
        for r in sorted(rounds):
            for vote_type in (PREVOTE, PRECOMMIT):
                for vote in cs.votes.votes_in(r, vote_type):
                    if vote.validator != me:
                        await self._publish(wire.encode_vote(vote, self._resend))
            proposal = cs.proposals.get(r)
            if proposal is not None and proposal.proposer != me:
                cand = self.chain.candidates.get(proposal.block_hash)
                if cand is not None and len(cand.block.records) >= COMPACT_MIN_RECORDS:
                    await self._publish(wire.encode_compact_proposal(proposal, cand.block, self._resend))
                else:
                    data = cand.block.encode() if cand is not None else None
                    if data is not None and len(data) > wire.MAX_DIRECT_BLOCK_BYTES:
                        data = None
                    await self._publish(wire.encode_proposal(proposal, data, self._resend))

    async def _chain_watcher(self) -> None:
        blocks = self.chain.subscribe_blocks()
        async for _ in blocks:
            self.poke("chain")

    async def _gossip_reader(self, channel: Any) -> None:
        async for peer, data in channel:
            await self._on_consensus_message(peer, data)

    def _rebuild_compact(self, msg: Any) -> None:
        """Rebuild a compact proposal's block from the mempool. If a record is missing,
        nothing is cached and the normal RequestBlock path fetches the full block."""
        if msg.proposal.block_hash in self.chain.candidates:
            return
        if msg.header.hash != msg.proposal.block_hash or msg.header.proposer != msg.proposal.proposer:
            self.metrics.reject("consensus", "proposal_block_mismatch")
            return
        mempool = self.chain.mempool
        records = [mempool.get(h) for h in msg.record_hashes]
        if any(r is None for r in records):
            # The RequestBlock path fetches the missing records by hash (or the whole block).
            self.metrics.reject("consensus", "compact_missing_records")
            if len(self._compact) < 16:
                self._compact[msg.proposal.block_hash] = msg
            return
        self._add_compact_block(msg, records, {r.hash for r in records})

    def _add_compact_block(self, msg: Any, records: list[Record], verified: set[bytes]) -> Any:
        block = Block(msg.header, tuple(records), tuple(msg.evidence))
        try:
            block.check_roots()  # the hashes really are this header's records
        except ProtocolError as exc:
            self.metrics.reject("consensus", f"block_{exc.reason}")
            return None
        return self.chain.add_candidate(block, verified)

    async def _fetch_missing_records(self, msg: Any, peers: list[str]) -> Any:
        """Complete a compact proposal with records fetched by hash (sync request 4);
        returns the candidate, or None (then the caller fetches the whole block).
        Fetched records are not trusted: their signatures are checked with the block."""
        mempool = self.chain.mempool
        have = {h: r for h in msg.record_hashes if (r := mempool.get(h)) is not None}
        missing = [h for h in dict.fromkeys(msg.record_hashes) if h not in have]
        if len(missing) > wire.MAX_RECORDS_REQUEST:
            return None
        fetched: dict[bytes, Record] = {}
        for peer in peers:
            want = [h for h in missing if h not in fetched]
            try:
                reply = await self.net.request(peer, wire.sync_protocol(self.chain_id),
                                               wire.encode([wire.REQ_RECORDS, want]), timeout=5)
                status, payload = wire.decode_response(reply)
                if status != wire.OK or type(payload) is not list or len(payload) != len(want):
                    continue
                for h, raw in zip(want, payload):
                    if raw is None:
                        continue
                    if type(raw) is not bytes:
                        raise ProtocolError("record entry is not bytes", reason="malformed")
                    record = Record.decode(raw, chain_id=self.chain_id)
                    if record.hash != h:
                        raise ProtocolError("peer sent another record than asked", reason="wrong_record")
                    fetched[h] = record
            except (P2PError, ProtocolError, trio.TooSlowError) as exc:
                if isinstance(exc, ProtocolError):
                    self.metrics.reject("sync", exc.reason)
                log.debug("record fetch from %s failed: %s", peer, exc)
                continue
            if len(fetched) == len(missing):
                self.fetched["records"] += len(fetched)
                self.metrics.proposal_data_fetched.labels("records").inc(len(fetched))
                records = [have.get(h) or fetched[h] for h in msg.record_hashes]
                return self._add_compact_block(msg, records, set(have))
        return None

    async def _on_consensus_message(self, peer: str, data: bytes) -> None:
        """Decode, filter, verify a consensus message (gossip or direct) and feed it."""
        try:
            msg = wire.decode_consensus(data)
        except ProtocolError as exc:
            self.metrics.reject("consensus", exc.reason)
            return
        height = msg.height if isinstance(msg, Vote) else msg.proposal.height
        if height <= self.chain.height:
            self.metrics.reject("consensus", "stale_height")
            return
        item = msg if isinstance(msg, Vote) else msg.proposal
        try:
            check_message(item, self.chain.state.validators, self.chain_id)
        except ProtocolError as exc:
            self.metrics.reject("consensus", exc.reason)
            return
        if isinstance(msg, Vote):
            self.metrics.votes_received.inc()
            await self._send.send(VoteReceived(msg, now_ms()))
            return
        proposal: Proposal = msg.proposal
        self._block_peer[proposal.block_hash] = peer
        if isinstance(msg, wire.CompactProposal):
            self._rebuild_compact(msg)
        elif msg.block is not None and proposal.block_hash not in self.chain.candidates:
            try:
                block = self.chain.decode_block(msg.block)
            except ProtocolError as exc:
                self.metrics.reject("consensus", f"block_{exc.reason}")
                return
            if block.hash != proposal.block_hash or block.header.proposer != proposal.proposer:
                self.metrics.reject("consensus", "proposal_block_mismatch")
                return
            cand = self.chain.add_candidate(block)
            if block.height == self.chain.height + 1:  # pre-verify record signatures off the driver
                unknown = [r for r in block.records if r.hash not in self.chain.mempool]
                cand.verified |= await verify_records_in_threads(unknown, self.chain.state)
        await self._send.send(ProposalReceived(proposal, now_ms()))
