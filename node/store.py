"""The node's SQLite store: blocks, certificates, records, current state, evidence, peers.

One database per node, WAL mode, ``synchronous=FULL``. A block, its commit
certificate, its records and the state entries it changed are written in ONE
transaction (:meth:`Store.commit_block`), so a crash at any instant leaves the
node at the last committed height or the next, never in between.

On open, :meth:`Store.load_state` rebuilds the in-memory LedgerState from the
``state`` table and checks it against the last block's header (state root, hash
linkage) and certificate. A mismatch raises :class:`StoreCorrupted` with the
recovery command; the node never resyncs silently over damaged data.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from protocol.blocks import Block, Header
from protocol.encoding import decode, encode
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.ledger import Entry, LedgerState, StateTransaction
from protocol.records import Record
from protocol.schema import BODY_TYPES, BranchProfile, ServiceOffer
from protocol.votes import CommitCertificate

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, time_ms INTEGER NOT NULL,
    proposer BLOB NOT NULL, round INTEGER NOT NULL, num_records INTEGER NOT NULL,
    block BLOB NOT NULL, certificate BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, branch_id BLOB NOT NULL,
    kind TEXT NOT NULL, subject TEXT NOT NULL, service_id TEXT, category TEXT, region TEXT,
    seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, raw BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_branch ON records(branch_id, height);
CREATE INDEX IF NOT EXISTS records_by_kind ON records(kind, height);
CREATE INDEX IF NOT EXISTS records_by_service ON records(service_id, height);
CREATE INDEX IF NOT EXISTS records_by_category ON records(category, height);
CREATE INDEX IF NOT EXISTS records_by_region ON records(region, height);
CREATE INDEX IF NOT EXISTS records_by_height ON records(height, idx);
CREATE TABLE IF NOT EXISTS state (
    branch_id BLOB NOT NULL, subject TEXT NOT NULL, seq INTEGER NOT NULL, record_hash BLOB NOT NULL,
    height INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB,
    PRIMARY KEY (branch_id, subject));
CREATE TABLE IF NOT EXISTS evidence (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, validator BLOB NOT NULL, raw BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (peer_id TEXT PRIMARY KEY, addrs TEXT NOT NULL, last_seen_ms INTEGER NOT NULL);
"""


class StoreError(Exception):
    """Base class of store errors."""


class StoreCorrupted(StoreError):
    """The database does not match its own certificates. The node must stop."""

    def __init__(self, path: Path, detail: str):
        super().__init__(
            f"store {path} is damaged: {detail}.\n"
            f"  The node will not run on damaged data. To rebuild the state from the verified blocks run:\n"
            f"    branchnet store rebuild --home {path.parent.parent}\n"
            f"  or move {path} aside and let the node sync from its peers."
        )
        self.detail = detail


class WrongChain(StoreError):
    """The database belongs to another chain (genesis hash differs)."""


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    block_row: tuple
    record_rows: list[tuple]
    state_rows: list[tuple]
    evidence_rows: list[tuple]


@dataclass(frozen=True, slots=True)
class StoredBlock:
    block: Block
    certificate: CommitCertificate


class Store:
    """Synchronous SQLite store. Safe to call from one trio task plus worker threads (a lock serialises)."""

    def __init__(self, path: Path, genesis: Genesis):
        self.path = Path(path)
        self.genesis = genesis
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._tx():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            stored = self._meta("genesis_hash")
            if stored is None:
                self._set_meta("genesis_hash", genesis.hash)
                self._set_meta("chain_id", genesis.chain_id.encode())
                self._set_meta("schema_version", str(SCHEMA_VERSION).encode())
            elif stored != genesis.hash:
                raise WrongChain(f"{self.path} holds chain {self._meta('chain_id')!r} with another genesis; use another --home")

    # ------------------------------------------------------------ plumbing
    class _Tx:
        def __init__(self, store: "Store"):
            self.store = store

        def __enter__(self):
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, exc, tb):
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()

    def _tx(self) -> "_Tx":
        return Store._Tx(self)

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ writes
    def commit_block(self, block: Block, certificate: CommitCertificate, tx: StateTransaction) -> None:
        """Write block, certificate, records, changed state and evidence in one transaction.

        Call before ``tx.commit()``: the rows are taken from the transaction's changes.
        """
        self.write_prepared([self.prepare_block(block, certificate, tx)])

    def prepare_block(self, block: Block, certificate: CommitCertificate, tx: StateTransaction) -> "PreparedBlock":
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
        state_rows = [
            (bid, e.subject, e.seq, e.record_hash, e.height, e.kind, None if e.body is None else encode(e.body.to_array()))
            for bid, changed in tx.changes.items()
            for e in changed.values()
        ]
        return PreparedBlock(
            (h.height, block.hash, h.time_ms, h.proposer, h.round, len(block.records), block.encode(), certificate.encode()),
            rows, state_rows, [(e.hash, h.height, e.validator, e.encode()) for e in block.evidence],
        )

    def write_prepared(self, items: list["PreparedBlock"]) -> None:
        """Write prepared blocks (consecutive heights) in ONE transaction: one fsync per batch."""
        with self._tx():
            for p in items:
                self._db.execute(
                    "INSERT INTO blocks(height, hash, time_ms, proposer, round, num_records, block, certificate) VALUES (?,?,?,?,?,?,?,?)",
                    p.block_row,
                )
                self._db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", p.record_rows)
                self._db.executemany("INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?)", p.state_rows)
                self._db.executemany("INSERT OR IGNORE INTO evidence VALUES (?,?,?,?)", p.evidence_rows)
            if items:
                self._set_meta("height", str(items[-1].block_row[0]).encode())

    def save_peers(self, peers: dict[str, list[str]], now_ms: int) -> None:
        with self._tx():
            for pid, addrs in peers.items():
                self._db.execute("INSERT OR REPLACE INTO peers VALUES (?,?,?)", (pid, json.dumps(addrs), now_ms))

    def load_peers(self) -> dict[str, list[str]]:
        return {pid: json.loads(addrs) for pid, addrs in self._query("SELECT peer_id, addrs FROM peers")}

    # ------------------------------------------------------------ reads
    @property
    def height(self) -> int:
        row = self._query("SELECT MAX(height) FROM blocks")
        return row[0][0] or 0

    def block(self, height: int) -> StoredBlock | None:
        rows = self._query("SELECT block, certificate FROM blocks WHERE height=?", (height,))
        return self._stored(rows[0]) if rows else None

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        rows = self._query("SELECT block, certificate FROM blocks WHERE hash=?", (block_hash,))
        return self._stored(rows[0]) if rows else None

    def raw_blocks(self, start: int, count: int) -> list[tuple[int, bytes, bytes]]:
        """(height, block bytes, certificate bytes) for heights start..start+count-1 (for sync)."""
        return self._query(
            "SELECT height, block, certificate FROM blocks WHERE height>=? AND height<? ORDER BY height", (start, start + count)
        )

    def raw_block_by_hash(self, block_hash: bytes) -> bytes | None:
        """The stored block bytes (what a peer is sent), without decoding them."""
        rows = self._query("SELECT block FROM blocks WHERE hash=?", (block_hash,))
        return rows[0][0] if rows else None

    def raw_records(self, hashes: list[bytes]) -> dict[bytes, bytes]:
        """hash -> stored record bytes for the committed ones among ``hashes``, without decoding."""
        out: dict[bytes, bytes] = {}
        for i in range(0, len(hashes), 500):  # under SQLite's bound-parameter limit
            chunk = hashes[i : i + 500]
            out.update(self._query(f"SELECT hash, raw FROM records WHERE hash IN ({','.join('?' * len(chunk))})", tuple(chunk)))
        return out

    def headers(self, start: int, count: int, *, descending: bool = False) -> list[Header]:
        order = "DESC" if descending else "ASC"
        cmp = "<=" if descending else ">="
        rows = self._query(f"SELECT block FROM blocks WHERE height{cmp}? ORDER BY height {order} LIMIT ?", (start, count))
        return [Header.from_array(decode(b, max_size=self.genesis.params.max_block_bytes + 1024)[0]) for (b,) in rows]

    def record(self, record_hash: bytes) -> tuple[Record, int, int] | None:
        rows = self._query("SELECT raw, height, idx FROM records WHERE hash=?", (record_hash,))
        if not rows:
            return None
        raw, height, idx = rows[0]
        return Record.decode(raw), height, idx

    def records(self, *, branch_id: bytes | None = None, kind: str | None = None, service_id: str | None = None,
                category: str | None = None, region: str | None = None, before_height: int | None = None,
                before: tuple[int, int] | None = None, limit: int = 50) -> list[tuple[Record, int, int]]:
        """Committed records matching the filters, newest first: (record, height, index in block).
        ``before_height`` keeps heights below it; ``before`` = (height, index) keeps positions
        before that one, so a page can end in the middle of a block."""
        where, args = [], []
        for col, val in (("branch_id", branch_id), ("kind", kind), ("service_id", service_id), ("category", category), ("region", region)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        if before_height is not None:
            where.append("height<?")
            args.append(before_height)
        if before is not None:
            where.append("(height<? OR (height=? AND idx<?))")
            args.extend((before[0], before[0], before[1]))
        sql = "SELECT raw, height, idx FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY height DESC, idx DESC LIMIT ?"
        args.append(limit)
        return [(Record.decode(raw), h, i) for raw, h, i in self._query(sql, tuple(args))]

    def _stored(self, row: tuple[bytes, bytes]) -> StoredBlock:
        p = self.genesis.params
        block = Block.decode(row[0], max_bytes=p.max_block_bytes + 1024, max_records=p.max_block_records, max_evidence=p.max_block_evidence)
        return StoredBlock(block, CommitCertificate.decode(row[1]))

    # ------------------------------------------------------------ state
    def iter_state(self) -> Iterator[tuple[bytes, Entry]]:
        for row in self._query("SELECT branch_id, subject, seq, record_hash, height, kind, body FROM state"):
            yield row[0], _entry_from_row(row[1:])

    def load_state(self, *, verify_certificate: bool = True) -> LedgerState:
        """Rebuild the LedgerState and check it against the last header and certificate."""
        state = LedgerState(self.genesis)
        height = self.height
        if height == 0:
            if self._query("SELECT COUNT(*) FROM state")[0][0]:
                raise StoreCorrupted(self.path, "state entries exist but no block does")
            return state
        try:
            last = self.block(height)
            entries = list(self.iter_state())
            evidence = [h for (h,) in self._query("SELECT hash FROM evidence")]
            header = last.block.header
            state.restore(height=height, last_block_hash=last.block.hash, last_block_time_ms=header.time_ms,
                          entries=entries, committed_evidence=evidence)
            if verify_certificate:
                last.certificate.verify(state.validators, state.chain_id, height=height, block_hash=last.block.hash)
        except ProtocolError as exc:
            raise StoreCorrupted(self.path, f"block {height} does not decode or verify ({exc})") from None
        if state.state_root != header.state_root:
            raise StoreCorrupted(self.path, f"state root at height {height} does not match the block header")
        return state

    def rebuild_state(self, progress=None) -> LedgerState:
        """Replay every stored block from genesis, verifying certificates; rewrite the state table."""
        state = LedgerState(self.genesis)
        height = self.height
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
        with self._tx():
            self._db.execute("DELETE FROM state")
            self._db.executemany(
                "INSERT INTO state VALUES (?,?,?,?,?,?,?)",
                [(bid, e.subject, e.seq, e.record_hash, e.height, e.kind, None if e.body is None else encode(e.body.to_array()))
                 for bid, e in state.entries()],
            )
        return state


def _entry_from_row(row: tuple) -> Entry:
    subject, seq, record_hash, height, kind, body = row
    value = None
    if body is not None:
        value = BODY_TYPES[kind].from_array(decode(body, max_size=16384))
    return Entry(subject, seq, record_hash, height, kind, value)
