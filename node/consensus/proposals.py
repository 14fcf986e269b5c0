"""The blocks behind proposals: taken from the message, rebuilt, or fetched.

A proposal names its block by hash. The block arrives inline (small blocks),
as a *compact* proposal (header + record hashes: every validator's mempool
already holds the records, so the block is rebuilt locally), or not at all.
When the state machine asks for a block (``RequestBlock``), :class:`ProposalBlocks`
finds it among the candidates or fetches it — the records a compact proposal
lacks by hash from the peers, else the whole block — checks it
(:meth:`Chain.check_candidate`, the paper's valid(v)) and hands the verdict
back as ``BlockReceived``.

It owns the state of that work: which peer proposed which block (asked first),
the compact proposals whose records are missing, and the fetches in flight
(one task per block, in its own nursery, ending when the height moves on).
Nothing fetched is trusted: records are hash-checked, and their signatures are
verified with the block.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

from protocol import wire
from protocol.blocks import Block
from protocol.consensus.events import BlockReceived
from protocol.errors import RemoteProtocolError
from protocol.records import Record

from ..candidates import Candidate, CandidateBlocks
from ..chain import Chain, verify_signatures
from ..mempool import Mempool
from ..metrics import NodeMetrics
from ..p2p.errors import P2PError
from ..sync.client import SyncClient

log = logging.getLogger("branchnet.consensus")

MAX_PENDING_COMPACT = 16
FETCH_ATTEMPTS = 20


class ProposalBlocks:
    def __init__(self, *, chain: Chain, candidates: CandidateBlocks, mempool: Mempool, client: SyncClient,
                 network: Any, metrics: NodeMetrics, deliver: Callable[[BlockReceived], Awaitable[None]],
                 current_height: Callable[[], int], now_ms: Callable[[], int]):
        self.chain = chain
        self.candidates = candidates
        self.mempool = mempool
        self.client = client
        self.net = network
        self.metrics = metrics
        self.deliver = deliver  # feeds the verdict to the consensus driver
        self.current_height = current_height
        self.now_ms = now_ms
        self._proposed_by: dict[bytes, str] = {}  # block hash -> peer that sent the proposal
        self._compact: dict[bytes, wire.CompactProposal] = {}  # block hash -> compact proposal lacking records
        self._fetching: set[bytes] = set()
        self.fetched = {"records": 0, "blocks": 0}  # missing proposal data fetched from peers
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def new_height(self, height: int) -> None:
        self._proposed_by = {h: p for h, p in self._proposed_by.items() if h in self.candidates}
        self._compact = {h: m for h, m in self._compact.items() if m.proposal.height >= height}

    # ------------------------------------------------------------ incoming proposals
    async def take_block_of(self, peer: str, msg: wire.ProposalMessage | wire.CompactProposal) -> None:
        """Keep whatever block ``msg`` carries (the proposal itself was checked)."""
        proposal = msg.proposal
        self._proposed_by[proposal.block_hash] = peer
        if proposal.block_hash in self.candidates:
            return
        if isinstance(msg, wire.CompactProposal):
            self._rebuild_compact(msg)
            return
        if msg.block is None:
            return
        try:
            block = self.chain.decode_block(msg.block)
        except RemoteProtocolError as exc:
            self.metrics.reject("consensus", f"block_{exc.reason}")
            return
        if block.hash != proposal.block_hash or block.header.proposer != proposal.proposer:
            self.metrics.reject("consensus", "proposal_block_mismatch")
            return
        cand = self.candidates.add(block)
        if block.height == self.chain.height + 1:  # verify record signatures now, off the driver
            unknown = [r for r in block.records if r.hash not in self.mempool]
            cand.verified |= await verify_signatures(unknown, self.chain.state.members, self.chain.runtime)

    def _rebuild_compact(self, msg: wire.CompactProposal) -> None:
        """Rebuild a compact proposal's block from the mempool. If a record is missing,
        the proposal is kept and :meth:`request_block` fetches what lacks."""
        if msg.header.hash != msg.proposal.block_hash or msg.header.proposer != msg.proposal.proposer:
            self.metrics.reject("consensus", "proposal_block_mismatch")
            return
        records = [self.mempool.get(h) for h in msg.record_hashes]
        if any(r is None for r in records):
            self.metrics.reject("consensus", "compact_missing_records")
            if len(self._compact) < MAX_PENDING_COMPACT:
                self._compact[msg.proposal.block_hash] = msg
            return
        self._add_compact_block(msg, records, {r.hash for r in records})

    def _add_compact_block(self, msg: wire.CompactProposal, records: list[Record], verified: set[bytes]) -> Candidate | None:
        block = Block(msg.header, tuple(records), tuple(msg.evidence))
        try:
            block.check_roots()  # the hashes really are this header's records
        except RemoteProtocolError as exc:
            self.metrics.reject("consensus", f"block_{exc.reason}")
            return None
        return self.candidates.add(block, verified)

    # ------------------------------------------------------------ RequestBlock
    def request_block(self, height: int, block_hash: bytes) -> None:
        """Find or fetch the block, check it, and deliver ``BlockReceived`` (never blocks)."""
        cand = self.candidates.get(block_hash)
        if cand is not None:
            self._nursery.start_soon(self._check_and_deliver, cand)
        elif block_hash not in self._fetching:
            self._fetching.add(block_hash)
            self._nursery.start_soon(self._fetch, height, block_hash)

    async def _check_and_deliver(self, cand: Candidate) -> None:
        valid = await self.chain.check_candidate(cand)
        if cand.block.height == self.current_height():
            await self.deliver(BlockReceived(cand.block.hash, valid, self.now_ms()))

    def _peers_to_ask(self, block_hash: bytes) -> list[str]:
        peers = self.net.connected_peers()
        first = self._proposed_by.get(block_hash)
        if first in peers:
            peers.remove(first)
            peers.insert(0, first)
        return peers

    async def _fetch(self, height: int, block_hash: bytes) -> None:
        try:
            for attempt in range(FETCH_ATTEMPTS):
                if self.current_height() != height or self.chain.height >= height:
                    return
                peers = self._peers_to_ask(block_hash)
                compact = self._compact.pop(block_hash, None)
                cand = await self._complete_compact(compact, peers) if compact is not None else None
                if cand is None:
                    cand = await self._fetch_whole(block_hash, peers)
                if cand is not None:
                    await self._check_and_deliver(cand)
                    return
                await trio.sleep(min(0.1 * 2**attempt, 2.0))
        finally:
            self._fetching.discard(block_hash)

    async def _fetch_whole(self, block_hash: bytes, peers: list[str]) -> Candidate | None:
        for peer in peers:
            try:
                block = await self.client.fetch_block(peer, block_hash)
            except (P2PError, RemoteProtocolError, trio.TooSlowError) as exc:
                if isinstance(exc, RemoteProtocolError) and exc.reason != "not_found":
                    self.metrics.reject("sync", exc.reason)
                log.debug("block fetch from %s failed: %s", peer, exc)
                continue
            self.fetched["blocks"] += 1
            self.metrics.proposal_data_fetched.labels("blocks").inc()
            return self.candidates.add(block)
        return None

    async def _complete_compact(self, msg: wire.CompactProposal, peers: list[str]) -> Candidate | None:
        """Complete a compact proposal with records fetched by hash; None if that fails
        (then the whole block is fetched). Fetched records' signatures are checked with the block."""
        have = {h: r for h in msg.record_hashes if (r := self.mempool.get(h)) is not None}
        missing = [h for h in dict.fromkeys(msg.record_hashes) if h not in have]
        if len(missing) > wire.MAX_RECORDS_REQUEST:
            return None
        fetched: dict[bytes, Record] = {}
        for peer in peers:
            want = [h for h in missing if h not in fetched]
            try:
                fetched.update(await self.client.fetch_records(peer, want))
            except (P2PError, RemoteProtocolError, trio.TooSlowError) as exc:
                if isinstance(exc, RemoteProtocolError):
                    self.metrics.reject("sync", exc.reason)
                log.debug("record fetch from %s failed: %s", peer, exc)
                continue
            if len(fetched) == len(missing):
                self.fetched["records"] += len(fetched)
                self.metrics.proposal_data_fetched.labels("records").inc(len(fetched))
                records = [have.get(h) or fetched[h] for h in msg.record_hashes]
                return self._add_compact_block(msg, records, set(have))
        return None
