"""Backing up and restoring the node database (``branchnet store backup|restore``).

**Backup** copies ``HOME/data/node.db`` with SQLite's online backup API in one
step: one read transaction, so the copy is the database as of one commit even
while the node keeps committing (WAL mode: the writer is never blocked). The
copy is checked (``PRAGMA quick_check``, the genesis it belongs to), written
to a temporary file, fsynced, and renamed into place (mode 0600).

**Restore** replaces a stopped node's database with a backup of the same
chain. What is not in the backup stays as it is: the consensus WAL (the
signer's last height, round and step: a restored validator still refuses to
sign anything it may have signed after the backup), the key and config. The
``signed_seq`` marks (the highest record sequence number the branch key signed
per subject) are merged from the database being replaced when it is readable,
so the node does not sign a second record with a number it used after the
backup. The database being replaced is kept aside (with its ``-wal``/``-shm``
files) as ``node.db.before-restore-<time>``; a stale ``-wal`` file is never
left next to the restored one.

Errors: :class:`BackupError` (the file is not a usable backup: unreadable,
damaged, or the backup target cannot be written), :class:`~.errors.WrongChain`
(another chain's database).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from protocol.genesis import Genesis

from ..fsutil import fsync_path
from .errors import WrongChain
from .schema import SCHEMA_VERSION, connect_reader

SIDE_FILES = ("-wal", "-shm")


class BackupError(Exception):
    """The backup cannot be made or used (the message names the file and the reason)."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    height: int
    chain_id: str
    genesis_hash: bytes
    size: int


def _meta(db: sqlite3.Connection, key: str) -> bytes | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return bytes(row[0]) if row else None


def describe(db: sqlite3.Connection, path: Path, genesis: Genesis) -> BackupInfo:
    """Check that ``db`` is an intact branchnet database of ``genesis``'s chain.
    Raises BackupError or WrongChain."""
    try:
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise BackupError(f"{path}: the database is damaged (quick_check: {check[0] if check else 'no answer'})")
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "blocks"} <= tables:
            raise BackupError(f"{path}: not a branchnet database (no meta/blocks tables)")
        stored = _meta(db, "genesis_hash")
        chain_id = (_meta(db, "chain_id") or b"?").decode("utf-8", "replace")
        version = int(_meta(db, "schema_version") or b"1")
        height = db.execute("SELECT COALESCE(MAX(height), 0) FROM blocks").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a readable SQLite database ({exc})") from None
    if stored != genesis.hash:
        raise WrongChain(f"{path} holds chain {chain_id!r} (genesis {stored.hex() if stored else '?'}), not this "
                         f"node's ({genesis.chain_id!r}, genesis {genesis.hash.hex()}); refusing to mix chains")
    if version > SCHEMA_VERSION:
        raise BackupError(f"{path}: schema version {version} is newer than this branchnet reads ({SCHEMA_VERSION})")
    return BackupInfo(path, height, chain_id, stored, path.stat().st_size)


def backup(db_path: Path, out: Path, genesis: Genesis) -> BackupInfo:
    """Copy the database at ``db_path`` (the node may be running) to ``out``."""
    db_path, out = Path(db_path), Path(out)
    if not db_path.is_file():
        raise BackupError(f"{db_path}: no such database (has the node run on this home?)")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        src = connect_reader(db_path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
                dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file (no -wal beside it)
                info = describe(dst, tmp, genesis)
            finally:
                dst.close()
        finally:
            src.close()
        fsync_path(tmp)
        os.replace(tmp, out)
        fsync_path(out.parent)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{db_path}: backup failed ({exc})") from None
    except OSError as exc:
        raise BackupError(f"{out}: cannot write the backup ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return BackupInfo(out, info.height, info.chain_id, info.genesis_hash, out.stat().st_size)


def inspect(path: Path, genesis: Genesis) -> BackupInfo:
    """Check a backup file without changing it. Raises BackupError or WrongChain."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: cannot open ({exc})") from None
    try:
        return describe(db, path, genesis)
    finally:
        db.close()


def restore(backup_file: Path, db_path: Path, genesis: Genesis) -> tuple[BackupInfo, Path | None]:
    """Replace the (stopped) node's database with ``backup_file``.

    Returns the backup's description and where the replaced database was kept
    (None if there was none). Raises BackupError or WrongChain before touching
    the node's files.
    """
    backup_file, db_path = Path(backup_file), Path(db_path)
    info = inspect(backup_file, genesis)
    current_marks = _signed_seqs(db_path, genesis)
    db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = db_path.with_name(f".{db_path.name}.restore-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        src = sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)
            if current_marks:
                dst.execute("BEGIN")
                dst.executemany("INSERT INTO signed_seq(branch_id, subject, seq) VALUES (?, ?, ?) "
                                "ON CONFLICT(branch_id, subject) DO UPDATE SET seq=MAX(seq, excluded.seq)", current_marks)
                dst.execute("COMMIT")
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
        fsync_path(tmp)
        kept = None
        if db_path.exists():
            kept = db_path.with_name(f"{db_path.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}")
            for suffix in SIDE_FILES:  # the old -wal/-shm go with the old database, never next to the new one
                side = Path(f"{db_path}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{kept}{suffix}"))
            os.replace(db_path, kept)
        else:
            for suffix in SIDE_FILES:
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, db_path)
        fsync_path(db_path.parent)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup_file}: restore failed ({exc})") from None
    except OSError as exc:
        raise BackupError(f"{db_path}: cannot write the restored database ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return info, kept


def _signed_seqs(db_path: Path, genesis: Genesis) -> list[tuple[bytes, str, int]]:
    """The signed_seq marks of the database being replaced, if it is readable and of this chain."""
    if not db_path.is_file():
        return []
    try:
        db = connect_reader(db_path)
        try:
            if _meta(db, "genesis_hash") != genesis.hash:
                return []
            return [(bytes(b), s, q) for b, s, q in db.execute("SELECT branch_id, subject, seq FROM signed_seq")]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return []  # damaged or pre-signed_seq: nothing to carry over


