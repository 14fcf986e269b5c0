"""The node's view of the ledger: committed state and the one place blocks are committed.

One :class:`Chain` per node. :meth:`Chain.commit` (a block decided by
consensus) and :meth:`Chain.commit_batch` (certified blocks from block sync)
are the only ways the state advances; both hold ``lock``, as does
:meth:`Chain.check_candidate`, so validation and commits never interleave.

Threads: record signatures are verified in worker threads (libsodium releases
the GIL) and SQLite writes run in one; the ledger state itself is only ever
mutated on the trio thread, after the block is on disk (:meth:`commit`) — so
synchronous readers on the trio thread always see a whole block or none.
Block sync is the one exception to "on disk first": a range is applied in
memory block by block and written in one transaction at the end (one fsync
per range), while block sync applies the next range (:meth:`Chain.apply_batch`,
:meth:`Chain.write_batch`); it was certified by the network, so nothing
promised is lost if the write never happens — the node syncs it again. Writes
land in the order their blocks were applied, a consensus commit waits for them,
and a synced block's listeners hear of it only once it is on disk.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import trio

from protocol.blocks import Block
from protocol.errors import RemoteProtocolError, ValidationError
from protocol.genesis import Genesis
from protocol.keys import PublicKey, verify_many
from protocol.ledger import LedgerState, StateTransaction
from protocol.records import Record
from protocol.votes import CommitCertificate, verify_certificates

from .candidates import Candidate, CandidateBlocks
from .errors import ChainHalted
from .mempool import Mempool
from .metrics import NodeMetrics
from .runtime import REAL, Runtime
from .store import PreparedBlock, Store

log = logging.getLogger("branchnet.chain")


VERIFY_GROUP = 512  # signature checks per call into C: ~30 ms of checks per GIL release, ~300 KB of payloads


async def verify_signatures(records: list[Record], members: dict[bytes, PublicKey], runtime: Runtime = REAL) -> set[bytes]:
    """Hashes of the ``records`` whose signatures verify under their branch's key.

    Checked in one worker thread, in groups of ``VERIFY_GROUP`` with the GIL released once
    per group (``keys.verify_many``): checked one at a time, the thread waited for the GIL
    after every check whenever the trio thread ran Python. One thread, not two: the trio
    thread and the store's writer want the other core meanwhile (docs/PERFORMANCE.md,
    "Signature checks in groups")."""
    if not records:
        return set()

    def work() -> set[bytes]:
        ok = set()
        for i in range(0, len(records), VERIFY_GROUP):
            known = [r for r in records[i : i + VERIFY_GROUP] if r.branch_id in members]
            good = verify_many([r.signature_check(members[r.branch_id]) for r in known])
            ok.update(r.hash for r, verified in zip(known, good) if verified)
        return ok

    return await runtime.run_sync(work)


@dataclass(frozen=True, slots=True)
class Preverified:
    """What :meth:`Chain.preverify` checked ahead of commit."""

    records: set[bytes]  # hashes of records whose signatures verified (against the keys then)
    certified: set[bytes]  # hashes of blocks whose certificates verified against the set their header names


@dataclass(slots=True)
class BatchWrite:
    """Blocks :meth:`Chain.apply_batch` applied in memory, for :meth:`Chain.write_batch`."""

    via: str
    previous: trio.Event | None  # the write of the batch applied before this one
    prepared: list[PreparedBlock] = field(default_factory=list)
    done: list[tuple[Block, CommitCertificate, Any]] = field(default_factory=list)  # with the set that signed each
    bad_block: ValidationError | None = None  # the first block that failed, after the valid prefix
    written: trio.Event = field(default_factory=trio.Event)


class Chain:
    def __init__(self, genesis: Genesis, store: Store, state: LedgerState, *, mempool: Mempool,
                 candidates: CandidateBlocks, metrics: NodeMetrics, runtime: Runtime = REAL, halt_height: int = 0):
        self.genesis = genesis
        self.halt_height = halt_height  # [consensus] halt_height: nothing above it is committed (0: no limit)
        self.store = store
        self.state = state
        self.mempool = mempool
        self.candidates = candidates
        self.metrics = metrics
        self.runtime = runtime
        self.lock = trio.Lock()
        self._last_write: trio.Event | None = None  # set once the last batch applied is on disk
        self._unwritten: dict[int, bytes] = {}  # height -> hash of blocks applied, not yet durable
        self._held: list[int] = []  # heights written in a transaction the store holds open (write_batch(hold=True))
        self._halted: ChainHalted | None = None  # a batch's write failed: nothing more is committed
        self._height_changed = trio.Event()
        self._listeners: list[trio.MemorySendChannel] = []
        self._commit_listeners: list[Callable[[Block], None]] = []
        metrics.height.set(state.height)

    @property
    def height(self) -> int:
        return self.state.height

    def beyond_halt(self, height: int) -> bool:
        """Whether ``height`` is above the configured halt height (never committed, never started)."""
        return 0 < self.halt_height < height

    def decode_block(self, data: bytes) -> Block:
        """Decode a peer's block within the genesis limits. Raises DecodeError."""
        p = self.genesis.params
        return Block.decode(data, max_bytes=p.max_block_bytes, max_records=p.max_block_records, max_evidence=p.max_block_evidence)

    # ------------------------------------------------------------ validity
    async def _verified_records(self, block: Block, already: Iterable[bytes]) -> set[bytes]:
        """Hashes of ``block``'s records whose signatures are known good: checked before
        (``already``), held by the mempool (checked on entry), or verified now in threads."""
        known = set(already) | {r.hash for r in block.records if r.hash in self.mempool}
        unknown = [r for r in block.records if r.hash not in known]
        return known | await verify_signatures(unknown, self.state.members, self.runtime)

    async def check_candidate(self, cand: Candidate) -> bool:
        """The paper's valid(v) for the next height. Caches the verdict and transaction."""
        async with self.lock:
            block = cand.block
            # A verdict is for one height; the state changes only when a height commits.
            if cand.valid is not None and block.height == self.height + 1:
                return cand.valid
            if block.height != self.height + 1:
                return False  # not cached: it may become checkable later
            if block.header.time_ms > self.runtime.wall_ms() + self.genesis.params.max_clock_drift_ms:
                cand.valid = False
                self.metrics.reject("block", "time_in_future")
                return False
            cand.verified |= await self._verified_records(block, cand.verified)
            try:
                cand.tx = await self.runtime.run_sync(lambda: self.state.validate_block(block, verified=cand.verified))
                cand.valid = True
            except ValidationError as exc:
                cand.valid = False
                self.metrics.reject("block", exc.reason)
                log.warning("block %d %s invalid: %s", block.height, block.hash.hex()[:12], exc)
            return cand.valid

    # ------------------------------------------------------------ commit
    async def commit(self, block: Block, certificate: CommitCertificate, *, via: str, tx: StateTransaction | None = None) -> bool:
        """Commit ``block`` at the next height: on disk first, then in memory.
        Returns False if it was already committed.

        Raises ChainHalted if a *different* block is already committed at that height
        (a fork: it must never happen, and the node stops if it does), and
        ValidationError if ``block`` or ``certificate`` is not valid.
        """
        async with self.lock:
            await self._written()  # synced blocks first, so the disk has every height below
            if block.height <= self.height:
                self._check_no_fork(block)
                return False
            if self.beyond_halt(block.height):
                log.debug("not committing block %d: beyond halt height %d", block.height, self.halt_height)
                return False
            if block.height != self.height + 1:
                raise ValidationError(f"cannot commit height {block.height} on top of {self.height}", field="block.height", reason="height")
            signers = self.state.validators
            certificate.verify(signers, self.state.chain_id, height=block.height, block_hash=block.hash)
            if tx is None or tx.block is None or tx.block.hash != block.hash:
                cand = self.candidates.get(block.hash)
                verified = await self._verified_records(block, cand.verified if cand else ())
                tx = await self.runtime.run_sync(lambda: self.state.validate_block(block, verified=verified))
            try:
                await self.runtime.run_sync(self.store.commit_block, block, certificate, tx)
            except (OSError, sqlite3.Error) as exc:  # nothing changed in memory: stop with the reason
                raise ChainHalted(f"could not write block {block.height} to {self.store.path} ({exc}); free space or "
                                  f"fix the disk, then restart") from exc
            tx.commit()  # on the trio thread: readers never see half a block
            self.mempool.update(block)
        self._settle()  # the same transaction made held synced blocks durable
        self._after_commit(block, via, certificate, signers)
        return True

    def _check_no_fork(self, block: Block) -> None:
        have = self._unwritten.get(block.height)
        if have is None:
            stored = self.store.block(block.height)
            have = stored.block.hash if stored is not None else None
        if have is not None and have != block.hash:
            raise ChainHalted(f"fork at height {block.height}: have {have.hex()}, asked to commit {block.hash.hex()}")

    async def preverify(self, items: list[tuple[Block, CommitCertificate]]) -> "Preverified":
        """The stateless part of checking certified blocks, safe to run ahead of commit
        (block sync overlaps it with committing the previous range): the certificate of
        every block signed by a validator set known now (the one in force or the one
        announced next; raises ValidationError on the first bad one), and every record
        signature not already checked by the mempool. A block signed by a set that is
        not known yet (governance changed it within the range) has its certificate
        checked by :meth:`commit_batch` once the state before it is reached."""
        sets = {vs.hash: vs for vs in (self.state.validators, self.state.next_validators)}
        chain_id = self.state.chain_id

        def check_certs(chunk: list[tuple[Block, CommitCertificate]]) -> RemoteProtocolError | set[bytes]:
            known = [(cert, sets[block.header.validators_hash], block.height, block.hash)
                     for block, cert in chunk if block.header.validators_hash in sets]
            try:  # every signature of the chunk in one call into C (one GIL release)
                verify_certificates(known, chain_id)
            except RemoteProtocolError as exc:  # returned, not raised: a nursery would wrap it
                return exc
            return {block_hash for _, _, _, block_hash in known}

        half = (len(items) + 1) // 2
        results: list[RemoteProtocolError | set[bytes]] = [set(), set()]

        async def run(part: int, chunk: list) -> None:
            results[part] = await self.runtime.run_sync(check_certs, chunk)

        async with trio.open_nursery() as nursery:
            for part, chunk in enumerate((items[:half], items[half:])):
                if chunk:
                    nursery.start_soon(run, part, chunk)
        for result in results:  # the lowest bad height first
            if isinstance(result, RemoteProtocolError):
                raise result
        records = [r for block, _ in items for r in block.records if r.hash not in self.mempool]
        return Preverified(await verify_signatures(records, self.state.members, self.runtime), results[0] | results[1])

    async def commit_batch(self, items: list[tuple[Block, CommitCertificate]], *, via: str = "sync",
                           verified: "Preverified | None" = None) -> int:
        """Commit consecutive certified blocks (block sync). Returns how many were new.

        :meth:`apply_batch`, then :meth:`write_batch`: certificates and record
        signatures are checked first (:meth:`preverify`; pass its result as
        ``verified`` if it already ran); then each block is validated against the
        state and applied, in order, on the trio thread, and all of them are
        written in one SQLite transaction. Raises ValidationError on the first bad
        certificate or bad block (the blocks before it are committed, memory and
        disk alike), and ChainHalted on a fork or a failed write.
        """
        return await self.write_batch(await self.apply_batch(items, via=via, verified=verified))

    async def apply_batch(self, items: list[tuple[Block, CommitCertificate]], *, via: str = "sync",
                          verified: "Preverified | None" = None) -> "BatchWrite":
        """The first half of :meth:`commit_batch`: validate and apply the blocks in memory
        and queue their write behind any write still under way. Pass the result to
        :meth:`write_batch`, which must follow (block sync applies the next range while
        the one before is written: the write is half a synced record's wall time). Until
        it has, the state is ahead of the disk: nothing is lost if the write never
        happens, since the blocks are certified and the node syncs them again; a consensus
        commit waits for the write (:meth:`commit`), and the blocks' listeners, metrics
        and announcement come after it. Raises ChainHalted after a failed write."""
        if verified is None:
            verified = await self.preverify(items)
        async with self.lock:
            if self._halted is not None:
                raise self._halted
            fresh = []
            for block, cert in items:
                if block.height <= self.height:
                    self._check_no_fork(block)
                elif not self.beyond_halt(block.height):
                    fresh.append((block, cert))
            ok = verified.records | {r.hash for block, _ in fresh for r in block.records if r.hash in self.mempool}
            batch = BatchWrite(via, previous=self._last_write)
            for block, cert in fresh:
                signers = self.state.validators
                try:
                    if block.hash not in verified.certified:  # signed by a set this range changed to
                        cert.verify(self.state.validators, self.state.chain_id, height=block.height, block_hash=block.hash)
                    tx = self.state.validate_block(block, verified=ok)
                except ValidationError as exc:
                    batch.bad_block = exc  # the valid prefix is in memory already: it goes to disk too
                    break
                batch.prepared.append(self.store.prepare_block(block, cert, tx))
                tx.commit()
                self.mempool.update(block)
                self._unwritten[block.height] = block.hash
                batch.done.append((block, cert, signers))
                # let other tasks run between blocks; not a cancellation point: a batch is
                # applied whole once begun, and its write follows (a cancel here would leave
                # the blocks in memory with no write coming)
                await trio.lowlevel.cancel_shielded_checkpoint()
            self._last_write = batch.written
        return batch

    async def write_batch(self, batch: "BatchWrite", *, hold: bool = False) -> int:
        """The second half of :meth:`commit_batch`: write what :meth:`apply_batch` applied,
        after the batches applied before it (shielded: a write once begun is finished),
        then tell the blocks' listeners. Returns how many were new; raises the batch's
        ValidationError (after writing the valid prefix), or ChainHalted if the write
        fails (the node stops: memory is ahead of disk). ``hold`` (block sync, more
        ranges coming): the store may keep the transaction open for the next ranges
        (Store.write_prepared), and :meth:`flush` commits it. The listeners hear of the
        blocks once written, before that commit: synced blocks are certified, so a crash
        loses only blocks the node syncs again, the same blocks, and the held ranges keep
        no blocks in memory (holding them for their listeners cost 10-26 MB of RSS at
        16,384 held rows: docs/PERFORMANCE.md)."""
        with trio.CancelScope(shield=True):
            try:
                if batch.previous is not None:
                    await batch.previous.wait()
                if self._halted is None and batch.prepared:
                    try:
                        await self.runtime.run_sync(lambda: self.store.write_prepared(batch.prepared, hold=hold))
                    except Exception as exc:
                        first, last = batch.done[0][0].height, batch.done[-1][0].height
                        self._halted = ChainHalted(f"could not write blocks {first}..{last}: {exc}")
                        raise self._halted from exc
                    batch.prepared.clear()  # in SQLite now
                    self._held.extend(block.height for block, _, _ in batch.done)
            finally:
                batch.written.set()
        if self._halted is not None:
            raise self._halted
        self._settle()
        for block, cert, signers in batch.done:
            self._after_commit(block, batch.via, cert, signers)
        if batch.bad_block is not None:
            raise batch.bad_block
        return len(batch.done)

    def _settle(self) -> None:
        """Once the store holds no open transaction, the heights written in it are on disk
        (the fork check reads them there again)."""
        if self.store.holding:
            return
        for height in self._held:
            self._unwritten.pop(height, None)
        self._held = []

    async def flush(self) -> None:
        """Commit what block sync's writes left in an open transaction; ChainHalted if
        that fails."""
        with trio.CancelScope(shield=True):
            if self._halted is None and self.store.holding:
                try:
                    await self.runtime.run_sync(self.store.commit_held)
                except Exception as exc:
                    self._halted = ChainHalted(f"could not write synced blocks: {exc}")
                    raise self._halted from exc
        if self._halted is not None:
            raise self._halted
        self._settle()

    async def _written(self) -> None:
        """Wait until every applied batch is on disk (under ``lock``); ChainHalted if one failed."""
        if self._last_write is not None:
            await self._last_write.wait()
        if self._halted is not None:
            raise self._halted

    def _after_commit(self, block: Block, via: str, certificate: CommitCertificate, signers: Any) -> None:
        m = self.metrics
        m.height.set(block.height)
        m.observe_commit(block, certificate, signers)
        gov = self.state.gov
        m.validators.set(len(gov.validators))
        m.validator_power.set(gov.validators.total_power)
        m.members.set(len(gov.registry.members))
        m.open_proposals.set(len(gov.proposals))
        m.blocks_committed.labels(via).inc()
        m.records_committed.inc(len(block.records))
        m.mempool_records.set(len(self.mempool))
        self.candidates.prune(block.height)
        for listener in self._commit_listeners:
            listener(block)
        self._height_changed.set()
        self._height_changed = trio.Event()
        for ch in list(self._listeners):
            try:
                ch.send_nowait(block)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._listeners.remove(ch)  # a slow or gone subscriber is dropped, never blocks commits
                ch.close()  # its reader sees EndOfChannel

    # ------------------------------------------------------------ waiting
    async def wait_height(self, height: int) -> None:
        """Return once the committed height is at least ``height``."""
        while self.height < height:
            await self._height_changed.wait()

    def on_commit(self, listener: Callable[[Block], None]) -> None:
        """Call ``listener(block)`` for every block committed from now on, synchronously,
        after the state has moved (it must be quick and must not raise)."""
        self._commit_listeners.append(listener)

    def subscribe_blocks(self, buffer: int = 256) -> trio.MemoryReceiveChannel:
        """Every block committed from now on, in order. A subscriber that falls
        ``buffer`` blocks behind is dropped (its channel ends) rather than slow commits."""
        send, recv = trio.open_memory_channel(buffer)
        self._listeners.append(send)
        return recv
