"""The node's SQLite store: blocks, certificates, records, current state, evidence, peers.

``synchronous=FULL``. A block, its commit certificate, its records and the
state entries it changed are written in ONE transaction
(:meth:`Store.write_prepared`), so a crash at any instant leaves the node at
the last committed height or the next, never in between.

:class:`Store` is the one writer; its read queries (inherited from
:class:`.reader.ChainReader`) use a connection of their own, so readers never
wait behind a commit's fsync. All calls block on disk: from trio, run them in
a worker thread.

On open, :meth:`Store.load_state` rebuilds the in-memory LedgerState from the
``state`` table and checks it against the last block's header (state root, hash
linkage) and certificate. A mismatch raises :class:`StoreCorrupted` with the
recovery command; the node never resyncs silently over damaged data.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from protocol.blocks import Block
from protocol.encoding import encode, encode_checked
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.ledger import Entry, LedgerState, StateTransaction
from protocol.governance import ValsetBody
from protocol.schema import BranchProfile, ServiceOffer
from protocol.votes import CommitCertificate

from ..malloc import give_back_free_memory
from .errors import StoreCorrupted, WrongChain
from .reader import RECORD_COUNT, ChainReader, StoredBlock
from .schema import RECORD_SEARCH_INDEXES, SCHEMA, SCHEMA_VERSION, connect_checkpointer, connect_writer

log = logging.getLogger("branchnet.store")

ROWS_PER_STATEMENT = 1024  # rows one write statement carries (Store._many)
CHECKPOINT_AFTER_ROWS = 2000  # rows written since the checkpointer last ran that make it run again
HOLD_ROWS = 32768  # records (and blocks) a held transaction takes before it commits (Store.write_prepared)
HOLD_SECONDS = 4.0  # and the longest it stays open (8 ranges at 8,000 records/s)


@lru_cache(maxsize=64)
def _placeholders(width: int, rows: int) -> str:
    """``(?,?),(?,?)``: ``rows`` rows of ``width`` values."""
    row = "(" + ",".join("?" * width) + ")"
    return ",".join([row] * rows)


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    block_row: tuple
    record_rows: list[tuple]
    state_rows: list[tuple]
    evidence_rows: list[tuple]
    valset_row: tuple | None = None  # (height, set) when the header announces a new validator set (§15.6)


class _Checkpointer:
    """Copies committed pages from the WAL into the database file, in a thread of its own.

    SQLite's automatic checkpoint runs in the connection that commits, right after the
    commit: a node syncing a long history wrote every page twice and waited for a second
    fsync in its writer thread, which bounds the sync (the writer was busy or waiting on
    the disk 96 % of the time, syncing a million records). Here a PASSIVE checkpoint from
    another connection runs beside the writer's next transaction. The thread starts with
    the first :meth:`wake` (a store that only ever writes a little never starts it), and a
    failed checkpoint is logged and counted: the WAL still holds every commit, and the
    writer's own checkpoint (``connect_writer``) is the backstop.

    After a checkpoint woken by a synced range (a write of several blocks) the heap's free
    pages go back to the system (``malloc_trim``, node/malloc.py): what the ranges in
    flight and their decoding freed between the state's long-lived allocations, about 7 MB
    of a node syncing a million records. Not after a consensus block: ``malloc_trim``
    holds the malloc arena while it walks the heap, and validators at saturation trimming
    after every block finalised later (docs/PERFORMANCE.md)."""

    def __init__(self, path: Path):
        self._path = path
        self._cond = threading.Condition()
        self._due = self._closed = self._trim = False
        self._thread: threading.Thread | None = None
        self.runs = 0  # checkpoints done
        self.failures = 0

    def wake(self, *, trim: bool = False) -> None:
        """Checkpoint soon; ``trim``: and give the heap's free pages back after it."""
        with self._cond:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
                self._thread.start()
            self._due = True
            self._trim |= trim
            self._cond.notify()

    def _run(self) -> None:
        db = None
        try:
            while True:
                with self._cond:
                    while not (self._due or self._closed):
                        self._cond.wait()
                    if self._closed:
                        return
                    trim, self._due, self._trim = self._trim, False, False
                try:
                    if db is None:
                        db = connect_checkpointer(self._path)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                    if trim:
                        give_back_free_memory()
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint of %s failed (%s); the writer's own checkpoint will take over", self._path, exc)
                    self.failures += 1  # after the log line: whoever sees the count finds the line
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        """Stop the thread (after the checkpoint under way, if any)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()


class Store(ChainReader):
    """The node database, read-write. Safe to call from several threads (a lock
    serialises the writes; reads have their own connection and lock)."""

    def __init__(self, path: Path, genesis: Genesis):
        """Open (or create) the database of ``genesis``'s chain. Raises WrongChain, or
        StoreCorrupted for a file that is not a branchnet database or lost its
        metadata — in both cases before anything is written."""
        path = Path(path)
        self._lock = threading.RLock()
        self._held_rows = 0  # rows written in the transaction write_prepared(hold=True) left open
        self._held_since = 0.0
        self._held_trim = False
        self._lost: str | None = None  # why held rows were rolled back: no write may follow
        if path.is_dir():
            raise StoreCorrupted(path, "it is a directory, not a database file")
        try:
            self._db = connect_writer(path)
            self._max_variables = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupted(path, f"not a readable SQLite database ({exc})") from None
        try:
            with self._tx():
                self._open_or_create(path, genesis)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreCorrupted(path, f"not a readable SQLite database ({exc})") from None
        except BaseException:
            self._db.close()
            raise
        self._checkpointer = _Checkpointer(path)
        self._rows_since_checkpoint = 0
        super().__init__(path, genesis)

    def _open_or_create(self, path: Path, genesis: Genesis) -> None:
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "blocks" in tables or "meta" in tables:  # ours already: check before touching anything
            stored = self._meta("genesis_hash") if "meta" in tables else None
            if stored is None:
                raise StoreCorrupted(path, "its metadata (the genesis hash it belongs to) is missing")
            if stored != genesis.hash:
                chain = self._meta("chain_id")
                raise WrongChain.between(path, chain and bytes(chain).decode("utf-8", "replace"), bytes(stored), genesis)
            version = int(self._meta("schema_version") or b"1")
            if version > SCHEMA_VERSION:
                raise StoreCorrupted(path, f"schema version {version} is newer than this branchnet reads ({SCHEMA_VERSION})")
        elif tables:
            raise StoreCorrupted(path, f"it holds tables that are not branchnet's ({', '.join(sorted(tables)[:5])})")
        if "records" in tables and (missing := self._missing_record_indexes()):  # a block sync was cut short
            log.warning("building %d search indexes of the records that an interrupted block sync left out "
                        "(%d records; about a second per 100,000)", len(missing), self._record_count())
        for statement in filter(str.strip, SCHEMA.split(";")):
            self._db.execute(statement)  # IF NOT EXISTS: a version-1 store gains the newer tables
        if "meta" not in tables:
            self._set_meta("genesis_hash", genesis.hash)
            self._set_meta("chain_id", genesis.chain_id.encode())
        if self._meta("schema_version") != str(SCHEMA_VERSION).encode():
            self._set_meta("schema_version", str(SCHEMA_VERSION).encode())

    # ------------------------------------------------------------ plumbing
    class _Tx:
        def __init__(self, store: "Store"):
            self.store = store

        def __enter__(self):
            self.store._lock.acquire()
            try:
                self.store._check_not_lost()
                self.store._commit_held()  # a held transaction commits on its own first
                self.store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise

        def __exit__(self, exc_type, exc, tb):
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()

    def _tx(self) -> "_Tx":
        return Store._Tx(self)

    def _many(self, head: str, rows: Sequence[tuple], tail: str = "") -> None:
        """``head VALUES (?, ...), (?, ...) tail`` over ``rows``, in statements of up to
        ROWS_PER_STATEMENT rows: what ``executemany`` does, in far fewer steps.

        The sqlite3 module releases the GIL around every step, and ``executemany`` steps
        once per row. A worker thread writing thousands of rows while the trio thread runs
        Python gets the GIL back only when the trio thread gives it up — at worst once per
        switch interval (5 ms): 4,000 records took 70 ms alone and 32-39 s beside a busy
        thread, 0.2 s in these statements (``python -m tools.bench_store``;
        docs/PERFORMANCE.md, "Two things the GIL hid")."""
        if not rows:
            return
        width = len(rows[0])
        per = max(1, min(ROWS_PER_STATEMENT, self._max_variables // width))
        for i in range(0, len(rows), per):
            chunk = rows[i:i + per]
            self._db.execute(f"{head} VALUES {_placeholders(width, len(chunk))} {tail}",
                             [value for row in chunk for value in row])

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def checkpoints(self) -> dict[str, int]:
        """WAL checkpoints of the checkpointer thread so far: ``{"done": n, "failed": n}``."""
        return {"done": self._checkpointer.runs, "failed": self._checkpointer.failures}

    def close(self) -> None:
        self._checkpointer.close()
        super().close()
        with self._lock:
            try:
                if self._lost is None:
                    self._commit_held()
            finally:
                self._db.close()

    # ------------------------------------------------------------ writes
    def commit_block(self, block: Block, certificate: CommitCertificate, tx: StateTransaction) -> None:
        """Write block, certificate, records, changed state and evidence in one transaction.

        Call before ``tx.commit()``: the rows are taken from the transaction's changes.
        """
        self.write_prepared([self.prepare_block(block, certificate, tx)])

    def prepare_block(self, block: Block, certificate: CommitCertificate, tx: StateTransaction) -> PreparedBlock:
        """Compute the rows a block writes (before ``tx.commit()``, which clears its changes)."""
        h = block.header
        region_of: dict[bytes, str | None] = {}

        def region(branch_id: bytes) -> str | None:
            if branch_id not in region_of:
                e = tx.entry(branch_id, "profile")
                region_of[branch_id] = e.body.region if e and isinstance(e.body, BranchProfile) else None
            return region_of[branch_id]

        rows = []
        for i, r in enumerate(block.records):
            body = r.body
            sid = getattr(body, "service_id", None)
            category = body.category if isinstance(body, ServiceOffer) else None
            if category is None and sid is not None:
                offer = tx.entry(r.branch_id, f"service/{sid}")
                category = offer.body.category if offer and isinstance(offer.body, ServiceOffer) else None
            rows.append((r.hash, h.height, i, r.branch_id, r.kind, r.subject, sid, category, region(r.branch_id), r.seq, r.time_ms, r.raw))
        by_hash = {r.hash: r for r in block.records}

        def body(e: Entry) -> bytes | None:  # the bytes of the record it came from, not encoded again
            if e.body is None:
                return None
            r = by_hash.get(e.record_hash)
            return r.body_bytes() if r is not None and r.body is e.body else encode_checked(e.body.to_array())

        state_rows = [(bid, e.subject, e.seq, e.record_hash, e.height, e.kind, body(e))
                      for bid, changed in tx.changes.items() for e in changed.values()]
        valset_row = None
        if h.next_validators_hash != h.validators_hash:  # the set it announces is the state's next one
            announced = tx.base.next_validators
            assert announced.hash == h.next_validators_hash, "a validated block announces the state's next set"
            valset_row = (h.height, encode(ValsetBody(announced).to_array()))
        return PreparedBlock(
            (h.height, block.hash, h.time_ms, h.proposer, h.round, len(block.records), block.encode(), certificate.encode()),
            rows, state_rows, [(e.hash, h.height, e.validator, e.encode()) for e in block.evidence], valset_row,
        )

    def write_prepared(self, items: list[PreparedBlock], *, hold: bool = False) -> None:
        """Write prepared blocks (consecutive heights) in ONE transaction: one fsync per batch.

        ``hold`` (block sync, with more ranges coming): leave the transaction open for the
        next call, until it holds HOLD_ROWS records and blocks or has been open
        HOLD_SECONDS; :meth:`commit_held` or any other write commits it. Every random
        index page a transaction touches (a record's hash, its branch and service, the
        state's key) is written to the WAL once per transaction, so one transaction over
        four 4,096-record ranges wrote 11.8 GB for a million records where one per range
        wrote 25.8; with the search indexes left out, eight ranges rather than four took
        the million-record sync from 7,248-7,253 to 7,632-7,781 records/s
        (docs/PERFORMANCE.md). Held blocks are durable, and readers see them,
        only once :attr:`holding` is false again (they are certified blocks: a crash
        loses only what the node syncs again). If a held transaction is rolled back,
        the store refuses every later write: memory is ahead of disk."""
        if not items:  # nothing to write (and no transaction left open with nothing held)
            return
        records = [row for p in items for row in p.record_rows]
        with self._lock:
            self._check_not_lost()
            earlier = self._held_rows
            if not earlier:
                self._db.execute("BEGIN IMMEDIATE")
                self._held_since = time.monotonic()
            try:  # each table's rows in a few statements; a later block's state rows after an earlier's
                self._many("INSERT INTO blocks(height, hash, time_ms, proposer, round, num_records, block, certificate)",
                           [p.block_row for p in items])
                self._many("INSERT INTO records", records)
                self._many("INSERT OR REPLACE INTO state", [row for p in items for row in p.state_rows])
                self._many("INSERT OR IGNORE INTO evidence", [row for p in items for row in p.evidence_rows])
                self._many("INSERT INTO valset_changes", [p.valset_row for p in items if p.valset_row is not None])
                self._many("DELETE FROM pending WHERE hash IN (SELECT column1 FROM (", [(row[0],) for row in records], "))")
                self._set_meta("height", str(items[-1].block_row[0]).encode())
            except BaseException as exc:
                self._roll_back(exc, earlier)
                raise
            self._held_rows += len(records) + len(items)
            self._rows_since_checkpoint += len(records) + sum(len(p.state_rows) for p in items)
            self._held_trim |= len(items) > 1
            if not (hold and self._held_rows < HOLD_ROWS and time.monotonic() - self._held_since < HOLD_SECONDS):
                self._commit_held(earlier)
            elif len(items) > 1:  # a synced range stays held: its heap goes back now all the same, not a commit later
                self._checkpointer.wake(trim=True)

    @property
    def holding(self) -> bool:
        """Whether written blocks wait in an open transaction (see :meth:`write_prepared`)."""
        return self._held_rows > 0

    def commit_held(self) -> None:
        """Commit the transaction :meth:`write_prepared` held open, if any."""
        with self._lock:
            self._check_not_lost()
            self._commit_held()

    def _commit_held(self, earlier: int | None = None) -> None:
        """COMMIT; ``earlier``: the rows held before the caller's own (all, by default)."""
        if not self._held_rows:
            return
        try:
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._roll_back(exc, self._held_rows if earlier is None else earlier)
            raise
        self._held_rows = 0
        if self._rows_since_checkpoint >= CHECKPOINT_AFTER_ROWS:
            self._rows_since_checkpoint = 0
            self._checkpointer.wake(trim=self._held_trim)
        self._held_trim = False

    def _roll_back(self, exc: BaseException, earlier: int) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if earlier:
            self._lost = f"blocks written in an open transaction were rolled back ({exc})"
        self._held_rows = 0

    def _check_not_lost(self) -> None:
        if self._lost is not None:
            raise sqlite3.OperationalError(f"{self._lost}; restart the node (it syncs them again)")

    def write_pending(self, records: list[tuple[bytes, bytes, int]], signed: list[tuple[bytes, str, int]]) -> None:
        """Make acknowledged records durable — (hash, raw, received_ms), unless already
        committed — and raise the signed-sequence marks — (branch_id, subject, seq) —
        in ONE transaction (one fsync for a whole group of submissions)."""
        with self._tx():
            self._many("INSERT OR IGNORE INTO pending SELECT * FROM (", records,
                       ") WHERE NOT EXISTS (SELECT 1 FROM records WHERE records.hash = column1)")
            self._many("INSERT INTO signed_seq", signed,
                       "ON CONFLICT(branch_id, subject) DO UPDATE SET seq = MAX(seq, excluded.seq)")

    def reject_pending(self, rejections: list[tuple[bytes, str, int]], *, keep: int = 100_000) -> None:
        """Move pending records that can never commit to ``rejected`` — (hash, reason,
        at_ms) — keeping the newest ``keep`` rejections."""
        with self._tx():
            self._db.executemany("DELETE FROM pending WHERE hash=?", [(h,) for h, _, _ in rejections])
            self._db.executemany("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?)", rejections)
            self._db.execute("DELETE FROM rejected WHERE hash IN (SELECT hash FROM rejected ORDER BY at_ms DESC "
                             "LIMIT -1 OFFSET ?)", (keep,))

    def set_observer(self, peer_id: str, allowed: bool, now_ms: int) -> None:
        """Let a peer that is not a member (an auditor's observer) connect, or stop
        letting it; durable before the allowlist changes."""
        with self._tx():
            if allowed:
                self._db.execute("INSERT OR IGNORE INTO observers VALUES (?, ?)", (peer_id, now_ms))
            else:
                self._db.execute("DELETE FROM observers WHERE peer_id=?", (peer_id,))

    def set_rotation_grace(self, added: dict[str, int], expired_below: int) -> None:
        """Keep the old peer ids ``added`` (peer id -> last height allowed) and forget those whose
        last height is below ``expired_below``, in one transaction."""
        with self._tx():
            self._db.executemany("INSERT OR REPLACE INTO rotation_grace VALUES (?, ?)", list(added.items()))
            self._db.execute("DELETE FROM rotation_grace WHERE until_height < ?", (expired_below,))

    def save_peers(self, peers: dict[str, list[str]], now_ms: int) -> None:
        with self._tx():
            for pid, addrs in peers.items():
                self._db.execute("INSERT OR REPLACE INTO peers VALUES (?,?,?)", (pid, json.dumps(addrs), now_ms))

    # ------------------------------------------------------------ the records' search indexes
    def _missing_record_indexes(self) -> list[str]:
        present = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        return [name for name in RECORD_SEARCH_INDEXES if name not in present]

    def _record_count(self) -> int:
        """ChainReader.record_count on the writer's connection (opening: no reader yet)."""
        return self._db.execute(RECORD_COUNT).fetchone()[0] or 0

    def missing_record_indexes(self) -> list[str]:
        """The records' search indexes (schema.RECORD_SEARCH_INDEXES) the store lacks now."""
        with self._lock:
            return self._missing_record_indexes()

    def defer_record_indexes(self) -> list[str]:
        """Drop the records' search indexes before a long block sync writes into this store
        (one transaction); :meth:`build_record_indexes` builds them again, and so does
        opening the store if the sync never got there. Until then /v1/records' filters
        walk the records in height order instead (answers stay right; slower). Returns the
        ones dropped."""
        with self._tx():
            missing = self._missing_record_indexes()
            dropped = [name for name in RECORD_SEARCH_INDEXES if name not in missing]
            for name in dropped:
                self._db.execute(f"DROP INDEX {name}")
        return dropped

    def build_record_indexes(self) -> list[str]:
        """Build the records' search indexes this store lacks (one transaction, a sort of
        every record per index: 0.6-1.7 s per million records and index on the reference
        machine). Returns the ones built."""
        with self._tx():
            missing = self._missing_record_indexes()
            for name in missing:
                self._db.execute(f"CREATE INDEX {name} ON records({RECORD_SEARCH_INDEXES[name]})")
        return missing

    # ------------------------------------------------------------ state
    def load_state(self, *, verify_certificate: bool = True) -> LedgerState:
        """Rebuild the LedgerState and check it against the last header and certificate."""
        state = LedgerState(self.genesis)
        height = self.check_heights()
        if height == 0:
            if self._read("SELECT COUNT(*) FROM state")[0][0]:
                raise StoreCorrupted(self.path, "state entries exist but no block does")
            return state
        try:
            last = self.block(height)
            header = last.block.header
            state.restore(height=height, last_block_hash=last.block.hash, last_block_time_ms=header.time_ms,
                          entries=list(self.iter_state()), committed_evidence=self.evidence_hashes())
            if verify_certificate:
                # Against the set that signed it, not the state's (the set of the NEXT height): the
                # two differ right after a switch (§15.5), e.g. a key rotation two heights back.
                signing = self.signing_set(height)
                if signing.hash != header.validators_hash:
                    raise StoreCorrupted(self.path, f"the validator set stored for block {height} is not the one "
                                                    "its header names")
                last.certificate.verify(signing, state.chain_id, height=height, block_hash=last.block.hash)
        except ProtocolError as exc:
            raise StoreCorrupted(self.path, f"block {height} does not decode or verify ({exc})") from None
        if state.state_root != header.state_root:
            raise StoreCorrupted(self.path, f"state root at height {height} does not match the block header")
        return state

    def check_heights(self) -> int:
        """The committed height, after checking that blocks 1..height are all there and
        agree with the height recorded at the last commit. Raises StoreCorrupted."""
        count, low, high = self._read("SELECT COUNT(*), MIN(height), MAX(height) FROM blocks")[0]
        recorded = self._meta("height")
        recorded = int(recorded) if recorded is not None else 0
        if count and (low != 1 or high != count):
            have = {h for (h,) in self._read("SELECT height FROM blocks")}
            first = next(h for h in range(1, high + 2) if h not in have)
            raise StoreCorrupted(self.path, f"block {first} is missing (it holds {count} blocks up to height {high})")
        if (high or 0) != recorded:
            raise StoreCorrupted(self.path, f"its last block is {high or 0} but height {recorded} was committed "
                                            f"(block {max(high or 0, recorded)} is missing)")
        return high or 0

    def rebuild_state(self, progress=None) -> LedgerState:
        """Replay every stored block from genesis, verifying certificates; rewrite the state table."""
        state = self._replay(self.height, progress)
        with self._tx():
            self._write_state(state)
        return state

    def rollback_last_block(self, progress=None) -> tuple[StoredBlock, LedgerState]:
        """Remove the last committed block and everything it wrote (records, evidence,
        a validator-set change); the state is rebuilt by replaying blocks 1..h-1, as
        ``rebuild_state`` does. One transaction. Returns the removed block and the state
        at h-1. Pending records and the signed-sequence marks are kept (marks only
        rise). Raises StoreCorrupted, and ValueError at height 0."""
        height = self.check_heights()
        if height == 0:
            raise ValueError("the store holds no block: nothing to roll back")
        removed = self.block(height)
        state = self._replay(height - 1, progress)
        with self._tx():
            for table in ("blocks", "records", "evidence", "valset_changes"):
                self._db.execute(f"DELETE FROM {table} WHERE height=?", (height,))
            self._write_state(state)
            self._set_meta("height", str(height - 1).encode())
        return removed, state

    def _write_state(self, state: LedgerState) -> None:
        self._db.execute("DELETE FROM state")
        self._db.executemany(
            "INSERT INTO state VALUES (?,?,?,?,?,?,?)",
            [(bid, e.subject, e.seq, e.record_hash, e.height, e.kind, None if e.body is None else encode(e.body.to_array()))
             for bid, e in state.entries()],
        )

    def _replay(self, height: int, progress=None) -> LedgerState:
        """The state after stored blocks 1..height, each certificate verified."""
        state = LedgerState(self.genesis)
        for h in range(1, height + 1):
            try:
                stored = self.block(h)
            except ProtocolError as exc:
                raise StoreCorrupted(self.path, f"block {h} does not decode ({exc})") from None
            if stored is None:
                raise StoreCorrupted(self.path, f"block {h} is missing")
            try:
                stored.certificate.verify(state.validators, state.chain_id, height=h, block_hash=stored.block.hash)
                state.validate_block(stored.block).commit()
            except ProtocolError as exc:
                raise StoreCorrupted(self.path, f"block {h} fails verification ({exc})") from None
            if progress:
                progress(h, height)
        return state
