"""The node's view of the ledger: committed state, store, mempool, candidate blocks.

One :class:`Chain` per node. It is the only place blocks get committed
(:meth:`commit`), whether decided by consensus or fetched by sync, and it holds
``lock`` while it validates or commits so the two paths never interleave.
Signature checks of records not already verified by the mempool run in worker
threads (``cryptography`` releases the GIL); state mutation happens on the trio
thread, so synchronous readers (the API) always see a consistent state.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import trio

from protocol.blocks import Block
from protocol.errors import ProtocolError, ValidationError
from protocol.genesis import Genesis
from protocol.ledger import LedgerState, StateTransaction
from protocol.records import Record
from protocol.votes import CommitCertificate

from .mempool import Mempool
from .metrics import NodeMetrics
from .store import Store

log = logging.getLogger("branchnet.chain")
CANDIDATE_CACHE = 64


class ChainHalted(Exception):
    """Something that must never happen happened (e.g. a fork). The node stops."""


@dataclass
class Candidate:
    block: Block
    verified: set[bytes] = field(default_factory=set)  # record hashes whose signatures were checked
    valid: bool | None = None
    reason: str = ""
    tx: StateTransaction | None = None


async def verify_records_in_threads(records: list[Record], state: LedgerState, *, threads: int = 2) -> set[bytes]:
    """Verify signatures of ``records`` across worker threads; return the hashes that verified."""
    if not records:
        return set()

    def work(chunk: list[Record]) -> set[bytes]:
        ok = set()
        for r in chunk:
            key = state.members.get(r.branch_id)
            if key is None:
                continue
            try:
                r.verify(key)
            except ProtocolError:
                continue
            ok.add(r.hash)
        return ok

    if len(records) < 64:
        return await trio.to_thread.run_sync(work, records)
    size = (len(records) + threads - 1) // threads
    results: list[set[bytes]] = []

    async def run(chunk: list[Record]) -> None:
        results.append(await trio.to_thread.run_sync(work, chunk))

    async with trio.open_nursery() as nursery:
        for i in range(0, len(records), size):
            nursery.start_soon(run, records[i : i + size])
    return set().union(*results)


class Chain:
    def __init__(self, genesis: Genesis, store: Store, state: LedgerState, mempool: Mempool, metrics: NodeMetrics):
        self.genesis = genesis
        self.store = store
        self.state = state
        self.mempool = mempool
        self.metrics = metrics
        self.lock = trio.Lock()
        self.candidates: OrderedDict[bytes, Candidate] = OrderedDict()
        self._height_changed = trio.Event()
        self._listeners: list[trio.MemorySendChannel] = []
        self.submitted_at: dict[bytes, float] = {}  # record hash -> monotonic submit time (finality metric)
        metrics.height.set(state.height)

    @property
    def height(self) -> int:
        return self.state.height

    # ------------------------------------------------------------ candidates
    def add_candidate(self, block: Block, verified: set[bytes] | None = None) -> Candidate:
        cand = self.candidates.get(block.hash)
        if cand is None:
            cand = self.candidates[block.hash] = Candidate(block)
            while len(self.candidates) > CANDIDATE_CACHE:
                self.candidates.popitem(last=False)
        if verified:
            cand.verified |= verified
        return cand

    def decode_block(self, data: bytes) -> Block:
        p = self.genesis.params
        return Block.decode(data, max_bytes=p.max_block_bytes, max_records=p.max_block_records, max_evidence=p.max_block_evidence)

    async def _verified_records(self, block: Block, already: set[bytes]) -> set[bytes]:
        """Hashes of ``block``'s records whose signatures are known good: checked before
        (``already``), held by the mempool (checked on entry), or verified now in threads."""
        in_mempool = {r.hash for r in block.records if r.hash in self.mempool}
        unknown = [r for r in block.records if r.hash not in already and r.hash not in in_mempool]
        return already | in_mempool | await verify_records_in_threads(unknown, self.state)

    async def check_candidate(self, cand: Candidate) -> bool:
        """The paper's valid(v) for the next height. Caches the verdict and transaction."""
        async with self.lock:
            block = cand.block
            # A verdict is for one height; the state changes only when a height commits.
            if cand.valid is not None and block.height == self.height + 1:
                return cand.valid
            if block.height != self.height + 1:
                return False  # not cached: it may become checkable later
            drift = self.genesis.params.max_clock_drift_ms
            if block.header.time_ms > int(time.time() * 1000) + drift:
                cand.valid, cand.reason = False, "time_in_future"
                return False
            verified = await self._verified_records(block, cand.verified)
            cand.verified |= verified
            try:
                cand.tx = await trio.to_thread.run_sync(lambda: self.state.validate_block(block, verified=verified))
                cand.valid = True
            except ValidationError as exc:
                cand.valid, cand.reason = False, exc.reason
                self.metrics.reject("block", exc.reason)
                log.warning("block %d %s invalid: %s", block.height, block.hash.hex()[:12], exc)
            return cand.valid

    # ------------------------------------------------------------ commit
    async def commit(self, block: Block, certificate: CommitCertificate, *, via: str, tx: StateTransaction | None = None) -> bool:
        """Commit ``block`` at the next height. Returns False if it was already committed.

        Raises ChainHalted if a *different* block is already committed at that height
        (that would be a fork: it must never happen, and the node stops if it does).
        """
        async with self.lock:
            if block.height <= self.height:
                stored = self.store.block(block.height)
                if stored is not None and stored.block.hash != block.hash:
                    raise ChainHalted(f"fork at height {block.height}: have {stored.block.hash.hex()}, asked to commit {block.hash.hex()}")
                return False
            if block.height != self.height + 1:
                raise ValidationError(f"cannot commit height {block.height} on top of {self.height}", field="block.height", reason="height")
            certificate.verify(self.state.validators, self.state.chain_id, height=block.height, block_hash=block.hash)
            if tx is None or tx.block is None or tx.block.hash != block.hash:
                cand = self.candidates.get(block.hash)
                verified = await self._verified_records(block, cand.verified if cand else set())
                tx = await trio.to_thread.run_sync(lambda: self.state.validate_block(block, verified=verified))
            await trio.to_thread.run_sync(self.store.commit_block, block, certificate, tx)
            tx.commit()  # on the trio thread: readers never see half a block
            self.mempool.update(block)
            self.candidates.pop(block.hash, None)
        self._after_commit(block, via)
        return True

    async def preverify(self, items: list[tuple[Block, CommitCertificate]]) -> set[bytes]:
        """The stateless part of checking certified blocks, safe to run ahead of commit
        (block sync overlaps it with committing the previous range): every certificate
        (raises ProtocolError on the first bad one) and every record signature not
        already checked by the mempool. Returns the hashes of records that verified."""
        validators, chain_id = self.state.validators, self.state.chain_id

        errors: list[ProtocolError | None] = [None, None]

        def check_certs(part: int, chunk: list[tuple[Block, CommitCertificate]]) -> None:
            try:
                for block, cert in chunk:
                    cert.verify(validators, chain_id, height=block.height, block_hash=block.hash)
            except ProtocolError as exc:  # a nursery would wrap it in an ExceptionGroup
                errors[part] = exc

        half = (len(items) + 1) // 2
        async with trio.open_nursery() as nursery:
            for part, chunk in enumerate((items[:half], items[half:])):
                if chunk:
                    nursery.start_soon(trio.to_thread.run_sync, check_certs, part, chunk)
        for exc in errors:  # the lowest bad height first
            if exc is not None:
                raise exc
        all_records = [r for block, _ in items for r in block.records if r.hash not in self.mempool]
        return await verify_records_in_threads(all_records, self.state)

    async def commit_batch(self, items: list[tuple[Block, CommitCertificate]], *, via: str = "sync",
                           verified: set[bytes] | None = None) -> int:
        """Commit consecutive certified blocks (block sync). Returns how many were new.

        Certificates and record signatures are checked in worker threads first
        (:meth:`preverify`; pass its result as ``verified`` if it already ran);
        then each block is validated against the state in order, and all of them
        are written in one SQLite transaction. Raises ProtocolError on the first
        bad certificate (nothing is applied) or bad block (the blocks before it are
        committed, memory and disk alike), and ChainHalted on a fork.
        """
        # Certificates were checked against the genesis validator set, which is the only
        # one there is (validator-set changes would have to re-check them here).
        if verified is None:
            verified = await self.preverify(items)
        async with self.lock:
            fresh = []
            for block, cert in items:
                if block.height <= self.height:
                    stored = self.store.block(block.height)
                    if stored is not None and stored.block.hash != block.hash:
                        raise ChainHalted(f"fork at height {block.height}: have {stored.block.hash.hex()}, peer sent {block.hash.hex()}")
                    continue
                fresh.append((block, cert))
            ok = verified | {r.hash for block, _ in fresh for r in block.records if r.hash in self.mempool}
            prepared: list = []
            done: list[Block] = []

            def apply_range() -> None:
                # One worker-thread hop for the whole range (a hop per block cost more than
                # validating it). Each block validates on top of the previous one, so the
                # state advances here, under self.lock. Readers on the trio thread only take
                # snapshots (sorted()/list() of the dicts, atomic under the GIL) and point
                # lookups; they may see the state ahead of the disk until the write below.
                for block, cert in fresh:
                    tx = self.state.validate_block(block, verified=ok)
                    prepared.append(self.store.prepare_block(block, cert, tx))
                    tx.commit()
                    done.append(block)

            bad_block: ProtocolError | None = None
            try:
                await trio.to_thread.run_sync(apply_range)
            except ProtocolError as exc:
                bad_block = exc  # the valid prefix is in memory already: it goes to disk below
            if prepared:
                try:
                    await trio.to_thread.run_sync(self.store.write_prepared, prepared)
                except Exception as exc:  # memory is ahead of disk now: stop rather than diverge
                    raise ChainHalted(f"could not write blocks {done[0].height}..{done[-1].height}: {exc}") from exc
            for block in done:
                self.mempool.update(block)
        for block in done:
            self._after_commit(block, via)
        if bad_block is not None:
            raise bad_block
        return len(done)

    def _after_commit(self, block: Block, via: str) -> None:
        m = self.metrics
        m.height.set(block.height)
        m.blocks_committed.labels(via).inc()
        m.records_committed.inc(len(block.records))
        m.mempool_records.set(len(self.mempool))
        now = trio.current_time()
        for r in block.records:
            t0 = self.submitted_at.pop(r.hash, None)
            if t0 is not None:
                m.finality.observe(now - t0)
        for h in [h for h, c in self.candidates.items() if c.block.height <= block.height]:
            del self.candidates[h]
        self._height_changed.set()
        self._height_changed = trio.Event()
        for ch in list(self._listeners):
            try:
                ch.send_nowait(block)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._listeners.remove(ch)  # a slow or gone subscriber is dropped, never blocks commits
                ch.close()  # its reader sees EndOfChannel

    async def wait_height(self, height: int) -> None:
        while self.height < height:
            await self._height_changed.wait()

    def subscribe_blocks(self, buffer: int = 256) -> trio.MemoryReceiveChannel:
        send, recv = trio.open_memory_channel(buffer)
        self._listeners.append(send)
        return recv
