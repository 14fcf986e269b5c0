"""The node database's tables, and how connections to it are opened.

One SQLite database per node (``HOME/data/node.db``), WAL mode so readers see
a consistent snapshot while the writer commits. ``meta`` holds the genesis
hash, the chain id, the schema version and the last committed height.

Besides the chain (``blocks``, ``records``, ``state``, ``evidence``):
``pending`` holds every record this node acknowledged (HTTP 202) until it is
committed (deleted in the block's own transaction) or definitively rejected
(moved to ``rejected`` with its reason); ``signed_seq`` is the highest
sequence number this node's branch key signed per subject, so it never signs
two records with one number; ``peers`` remembers dialable addresses.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2  # 2: pending, rejected, signed_seq

# The indexes behind /v1/records' filters (ChainReader.records), by name: the columns
# each one orders. Block sync leaves them out while it writes a long history into a
# store that holds much less and builds them at its end (Store.defer_record_indexes):
# every row inserted into them lands at a random place, and sorting them once costs
# about a quarter of what inserting a million records into them row by row does
# (docs/PERFORMANCE.md). A store opened without them builds them first (an interrupted
# sync). ``records_by_height`` stays: its rows are appended in order, and listing
# without filters (the explorer) walks it.
RECORD_SEARCH_INDEXES = {
    "records_by_branch": "branch_id, height",
    "records_by_kind": "kind, height",
    "records_by_service": "service_id, height",
    "records_by_category": "category, height",
    "records_by_region": "region, height",
    "records_by_branch_service": "branch_id, service_id, height, idx",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, time_ms INTEGER NOT NULL,
    proposer BLOB NOT NULL, round INTEGER NOT NULL, num_records INTEGER NOT NULL,
    block BLOB NOT NULL, certificate BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, branch_id BLOB NOT NULL,
    kind TEXT NOT NULL, subject TEXT NOT NULL, service_id TEXT, category TEXT, region TEXT,
    seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, raw BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_height ON records(height, idx);
CREATE TABLE IF NOT EXISTS state (
    branch_id BLOB NOT NULL, subject TEXT NOT NULL, seq INTEGER NOT NULL, record_hash BLOB NOT NULL,
    height INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB,
    PRIMARY KEY (branch_id, subject));
CREATE TABLE IF NOT EXISTS evidence (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, validator BLOB NOT NULL, raw BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (peer_id TEXT PRIMARY KEY, addrs TEXT NOT NULL, last_seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (hash BLOB PRIMARY KEY, raw BLOB NOT NULL, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (hash BLOB PRIMARY KEY, reason TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS rejected_by_time ON rejected(at_ms);
CREATE TABLE IF NOT EXISTS observers (peer_id TEXT PRIMARY KEY, added_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rotation_grace (peer_id TEXT PRIMARY KEY, until_height INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS valset_changes (height INTEGER PRIMARY KEY, valset BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS signed_seq (
    branch_id BLOB NOT NULL, subject TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (branch_id, subject));
""" + "".join(f"CREATE INDEX IF NOT EXISTS {name} ON records({columns});\n" for name, columns in RECORD_SEARCH_INDEXES.items())


WRITER_AUTOCHECKPOINT_PAGES = 16384  # the writer's own checkpoint: a backstop (see connect_checkpointer)


def connect_writer(path: Path) -> sqlite3.Connection:
    """The one read-write connection (autocommit; transactions are explicit). SQLite's
    automatic checkpoint, which runs in the committing thread right after a commit, is
    left for when the WAL has grown to WRITER_AUTOCHECKPOINT_PAGES (64 MiB at 4 KiB
    pages) instead of 1,000 pages: the store's checkpointer thread does it before then."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
    return db


def connect_checkpointer(path: Path) -> sqlite3.Connection:
    """The checkpointer thread's connection: it only copies committed pages from the WAL
    into the database file (PASSIVE checkpoints, which never wait for the writer nor
    hold it up). ``synchronous=FULL``, so the database file is fsynced before the WAL
    may be reused: a power cut never loses what the WAL held."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("PRAGMA cache_size=16")  # pages; a checkpoint copies from the WAL, it needs no cache of ours
    return db


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection. A copy the caller may not write to (no ``-shm`` file
    and a read-only directory) has no writer either, so it is read as immutable."""
    uri = Path(path).resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        db.close()
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False, isolation_level=None)
    return db
