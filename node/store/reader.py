"""Read-only queries of the node database, on a connection of their own.

:class:`ChainReader` never writes. It has its own SQLite connection and lock,
so a reader never waits behind the writer's fsync (WAL: readers see the last
committed transaction). Calls block on disk: from trio, run them in a worker
thread. The CLI opens one directly (:meth:`ChainReader.open`) to export or
verify a chain while the node runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from protocol.audit import RawBlock
from protocol.blocks import Block, Header
from protocol.encoding import decode
from protocol.genesis import Genesis
from protocol.governance import ValsetBody
from protocol.validators import ValidatorSet
from protocol.ledger import Entry
from protocol.records import Record
from protocol.ledger import ENTRY_BODY_TYPES
from protocol.votes import CommitCertificate

from .errors import StoreCorrupted, WrongChain
from .schema import connect_reader

RECORD_COUNT = "SELECT MAX(rowid) FROM records"  # about how many records: see ChainReader.record_count


@dataclass(frozen=True, slots=True)
class StoredBlock:
    block: Block
    certificate: CommitCertificate


class ChainReader:
    """Read queries over a branchnet database. Thread-safe (one lock per connection)."""

    def __init__(self, path: Path, genesis: Genesis, *, connection: sqlite3.Connection | None = None):
        self.path = Path(path)
        self.genesis = genesis
        self._rlock = threading.Lock()
        self._rdb = connection if connection is not None else connect_reader(self.path)

    @classmethod
    def open(cls, path: Path, genesis: Genesis) -> "ChainReader":
        """Open an existing database read-only, checking it holds ``genesis``'s chain.
        Raises FileNotFoundError, WrongChain, or StoreCorrupted (not a database)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such database (has the node run on this home?)")
        try:
            reader = cls(path, genesis)
            row = reader._one("SELECT value FROM meta WHERE key='genesis_hash'")
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupted(path, f"not a readable branchnet database ({exc})") from None
        if row is None or bytes(row[0]) != genesis.hash:
            chain = reader._one("SELECT value FROM meta WHERE key='chain_id'")
            reader.close()
            raise WrongChain.between(path, chain and bytes(chain[0]).decode("utf-8", "replace"),
                                     row and bytes(row[0]), genesis)
        return reader

    def close(self) -> None:
        with self._rlock:
            self._rdb.close()

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._rlock:
            return self._rdb.execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        rows = self._read(sql, args)
        return rows[0] if rows else None

    @contextmanager
    def snapshot(self) -> Iterator["ChainReader"]:
        """Run several reads against one consistent snapshot (one read transaction)."""
        with self._rlock:
            self._rdb.execute("BEGIN")
        try:
            yield self
        finally:
            with self._rlock:
                self._rdb.execute("COMMIT")

    # ------------------------------------------------------------ blocks
    @property
    def height(self) -> int:
        return self._read("SELECT MAX(height) FROM blocks")[0][0] or 0

    def block(self, height: int) -> StoredBlock | None:
        row = self._one("SELECT block, certificate FROM blocks WHERE height=?", (height,))
        return self._stored(row) if row else None

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        row = self._one("SELECT block, certificate FROM blocks WHERE hash=?", (block_hash,))
        return self._stored(row) if row else None

    def raw_blocks(self, start: int, count: int) -> list[RawBlock]:
        """(height, block bytes, certificate bytes) for heights start..start+count-1 (for sync)."""
        return self._read(
            "SELECT height, block, certificate FROM blocks WHERE height>=? AND height<? ORDER BY height", (start, start + count)
        )

    def iter_raw_blocks(self, first: int, last: int) -> Iterator[RawBlock]:
        """Every block first..last in order; raises StoreCorrupted at the first missing height."""
        expected = first
        while expected <= last:
            rows = self.raw_blocks(expected, min(256, last - expected + 1))
            if not rows:
                raise StoreCorrupted(self.path, f"block {expected} is missing")
            for height, block, cert in rows:
                if height != expected:
                    raise StoreCorrupted(self.path, f"block {expected} is missing")
                yield height, bytes(block), bytes(cert)
                expected += 1

    def raw_block_by_hash(self, block_hash: bytes) -> bytes | None:
        """The stored block bytes (what a peer is sent), without decoding them."""
        row = self._one("SELECT block FROM blocks WHERE hash=?", (block_hash,))
        return row[0] if row else None

    def headers(self, start: int, count: int, *, descending: bool = False) -> list[Header]:
        order = "DESC" if descending else "ASC"
        cmp = "<=" if descending else ">="
        rows = self._read(f"SELECT block FROM blocks WHERE height{cmp}? ORDER BY height {order} LIMIT ?", (start, count))
        return [Header.from_array(decode(b, max_size=self.genesis.params.max_block_bytes + 1024)[0]) for (b,) in rows]

    def set_changes(self, below: int) -> list[tuple[Header, CommitCertificate, ValidatorSet]]:
        """Every committed header below height ``below`` that announces a new validator set,
        with its certificate and that set, by height (PROTOCOL.md §15.6)."""
        rows = self._read("SELECT b.block, b.certificate, v.valset FROM valset_changes v JOIN blocks b ON b.height = v.height "
                          "WHERE v.height < ? ORDER BY v.height", (below,))
        out = []
        for block, cert, valset in rows:
            header = Header.from_array(decode(block, max_size=self.genesis.params.max_block_bytes + 1024)[0])
            out.append((header, CommitCertificate.decode(cert), ValsetBody.from_array(decode(valset, max_size=1 << 20)).valset))
        return out

    def signing_set(self, height: int) -> ValidatorSet:
        """The validator set that signed block ``height``: the one the last header below it
        announced (``valset_changes``), else the genesis set. Raises ProtocolError if the
        stored set does not decode."""
        row = self._one("SELECT valset FROM valset_changes WHERE height < ? ORDER BY height DESC LIMIT 1", (height,))
        if row is None:
            return self.genesis.validators
        return ValsetBody.from_array(decode(row[0], max_size=1 << 20)).valset

    def _stored(self, row: tuple[bytes, bytes]) -> StoredBlock:
        p = self.genesis.params
        block = Block.decode(row[0], max_bytes=p.max_block_bytes + 1024, max_records=p.max_block_records, max_evidence=p.max_block_evidence)
        return StoredBlock(block, CommitCertificate.decode(row[1]))

    # ------------------------------------------------------------ records
    def raw_records(self, hashes: list[bytes]) -> dict[bytes, bytes]:
        """hash -> stored record bytes for the committed ones among ``hashes``, without decoding."""
        return self._by_hash("raw", hashes)

    def heights_of(self, hashes: list[bytes]) -> dict[bytes, int]:
        """hash -> height of the committed ones among ``hashes``."""
        return self._by_hash("height", hashes)

    def record_count(self) -> int:
        """About how many records are committed (exact unless a block was rolled back): the
        largest rowid, found without walking the table. On the readers' connection, so it
        never waits behind a write."""
        return self._one(RECORD_COUNT)[0] or 0

    def _by_hash(self, column: str, hashes: list[bytes]) -> dict:
        out: dict = {}
        for i in range(0, len(hashes), 500):  # under SQLite's bound-parameter limit
            chunk = hashes[i : i + 500]
            out.update(self._read(f"SELECT hash, {column} FROM records WHERE hash IN ({','.join('?' * len(chunk))})", tuple(chunk)))
        return out

    def record(self, record_hash: bytes) -> tuple[Record, int, int] | None:
        row = self._one("SELECT raw, height, idx FROM records WHERE hash=?", (record_hash,))
        if row is None:
            return None
        raw, height, idx = row
        return Record.decode(raw), height, idx

    def raw_record_at(self, record_hash: bytes) -> tuple[bytes, int, int] | None:
        """(stored bytes, height, index in block) of a committed record, without decoding it."""
        row = self._one("SELECT raw, height, idx FROM records WHERE hash=?", (record_hash,))
        return (bytes(row[0]), row[1], row[2]) if row else None

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
        if before is not None:  # height<=? first: an index on (…, height) seeks to it instead of walking down
            where.append("height<=? AND (height<? OR idx<?)")
            args.extend((before[0], before[0], before[1]))
        sql = "SELECT raw, height, idx FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY height DESC, idx DESC LIMIT ?"
        args.append(limit)
        return [(Record.decode(raw), h, i) for raw, h, i in self._read(sql, tuple(args))]

    def offers_as_of(self, time_ms: int) -> tuple[int, list[tuple[Record, int]]]:
        """What was on offer at ``time_ms`` by what had been committed then: the last height
        whose block time is ≤ ``time_ms``, and for each (branch, service subject) the offer in
        force at that instant, with its height: walking back from the subject's newest record
        up to that height, the first offer that had taken effect (effective_from_ms ≤ time_ms),
        if its validity window (PROTOCOL.md §5.6.1) still held; nothing after a withdraw.
        Reads every offer and withdraw up to that height (one pass, no index on time)."""
        top = self._one("SELECT MAX(height) FROM blocks WHERE time_ms<=?", (time_ms,))
        height = top[0] if top and top[0] is not None else 0
        rows = self._read("SELECT raw, height FROM records WHERE kind IN ('service.offer', 'service.withdraw') "
                          "AND height<=? ORDER BY height, idx", (height,))
        history: dict[tuple[bytes, str], list[tuple[Record, int]]] = {}
        for raw, h in rows:
            record = Record.decode(raw)
            key = (record.branch_id, record.subject)
            if record.kind == "service.withdraw":
                history[key] = []
            else:
                history.setdefault(key, []).append((record, h))
        out = []
        for versions in history.values():
            for record, h in reversed(versions):
                offer = record.body
                if offer.effective_from_ms <= time_ms:
                    until = offer.terms.valid_until_ms if offer.terms is not None else 0
                    if until == 0 or time_ms < until:
                        out.append((record, h))
                    break
        return height, out

    # ------------------------------------------------------------ state, peers
    def iter_state(self) -> Iterator[tuple[bytes, Entry]]:
        for row in self._read("SELECT branch_id, subject, seq, record_hash, height, kind, body FROM state"):
            yield row[0], _entry_from_row(row[1:])

    def state_size(self) -> int:
        """How many state entries (subjects) the last committed block left."""
        return self._read("SELECT COUNT(*) FROM state")[0][0]

    def pending_records(self) -> list[tuple[bytes, bytes, int]]:
        """(hash, raw, received_ms) of every acknowledged record not committed yet, oldest first."""
        return self._read("SELECT hash, raw, received_ms FROM pending ORDER BY received_ms, hash")

    def is_pending(self, record_hash: bytes) -> bool:
        return self._one("SELECT 1 FROM pending WHERE hash=?", (record_hash,)) is not None

    def rejection(self, record_hash: bytes) -> tuple[str, int] | None:
        """(reason, at_ms) if this acknowledged record was definitively rejected."""
        return self._one("SELECT reason, at_ms FROM rejected WHERE hash=?", (record_hash,))

    def signed_seqs(self) -> dict[tuple[bytes, str], int]:
        """(branch id, subject) -> the highest sequence number this node signed."""
        return {(b, s): q for b, s, q in self._read("SELECT branch_id, subject, seq FROM signed_seq")}

    def evidence_hashes(self) -> list[bytes]:
        return [h for (h,) in self._read("SELECT hash FROM evidence")]

    def observers(self) -> dict[str, int]:
        """Peers allowed at runtime besides the members: peer id -> when (ms)."""
        return dict(self._read("SELECT peer_id, added_ms FROM observers ORDER BY peer_id"))

    def rotation_grace(self) -> dict[str, int]:
        """Old peer ids of members that rotated their own key: peer id -> last height allowed."""
        return dict(self._read("SELECT peer_id, until_height FROM rotation_grace ORDER BY peer_id"))

    def load_peers(self) -> dict[str, list[str]]:
        return {pid: json.loads(addrs) for pid, addrs in self._read("SELECT peer_id, addrs FROM peers")}


_KIND_NAMES = {kind: kind for kind in ENTRY_BODY_TYPES}  # the protocol's own strings: one per kind, not one per entry


def _entry_from_row(row: tuple) -> Entry:
    subject, seq, record_hash, height, kind, body = row
    value = None
    if body is not None:
        value = ENTRY_BODY_TYPES[kind].from_array(decode(body, max_size=1 << 20))
    return Entry(subject, seq, record_hash, height, _KIND_NAMES.get(kind, kind), value)
