"""Offline chain access for auditors: the export file format, a read-only view of a
node's database, and the replay that re-checks a chain from genesis.

Export format ``branchnet-export/1`` (docs/CLI.md §Export format)::

    one JSON header line, UTF-8, ending in "\\n":
      {"format": "branchnet-export/1", "chain_id": ..., "genesis": <genesis JSON>,
       "from": H1, "to": H2}
    then for each height H1..H2 in order, one frame:
      4-byte big-endian length N, then N bytes of canonical msgpack
      [block bytes, certificate bytes]

Nothing in the file is trusted by ``chain verify``: the auditor's own genesis
file is compared with the embedded one, every certificate is checked against
the genesis validators and, for an export from height 1, every block is
re-applied to a fresh LedgerState so every state root is recomputed.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from protocol.blocks import Block
from protocol.encoding import decode, encode, expect_array, expect_bytes
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.ledger import LedgerState
from protocol.votes import CommitCertificate

EXPORT_FORMAT = "branchnet-export/1"
MAX_HEADER_LINE = 2 << 20
_LEN = struct.Struct(">I")

RawBlock = tuple[int, bytes, bytes]  # (height, block bytes, certificate bytes)


class ExportError(Exception):
    """An export file or database cannot be read as a chain (exit 1, or 2 if missing)."""


@dataclass(frozen=True)
class ExportHeader:
    chain_id: str
    genesis: Genesis
    first: int
    last: int

    def to_line(self) -> bytes:
        doc = {"format": EXPORT_FORMAT, "chain_id": self.chain_id, "genesis": self.genesis.to_json(),
               "from": self.first, "to": self.last}
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------- the node database, read-only


class ChainDB:
    """Read-only view of ``HOME/data/node.db`` (works while the node runs: WAL readers
    see a consistent snapshot inside one read transaction)."""

    def __init__(self, path: Path, genesis: Genesis):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such database (has the node run on this home?)")
        uri = self.path.resolve().as_uri()
        try:
            self._db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key='genesis_hash'").fetchone()
            except sqlite3.OperationalError:
                # A read-only copy (no -shm and a directory we cannot write): no writer can
                # exist, so read it as immutable.
                self._db.close()
                self._db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
                row = self._db.execute("SELECT value FROM meta WHERE key='genesis_hash'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ExportError(f"{self.path}: not a readable branchnet database ({exc})") from None
        if row is None or bytes(row[0]) != genesis.hash:
            self._db.close()
            raise ExportError(f"{self.path}: holds another chain than the genesis given (genesis hash differs)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ChainDB":
        self._db.execute("BEGIN")  # one snapshot for the whole read
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._db.execute("COMMIT")
        finally:
            self.close()

    @property
    def height(self) -> int:
        return self._db.execute("SELECT MAX(height) FROM blocks").fetchone()[0] or 0

    def blocks(self, first: int, last: int) -> Iterator[RawBlock]:
        expected = first
        cursor = self._db.execute(
            "SELECT height, block, certificate FROM blocks WHERE height>=? AND height<=? ORDER BY height", (first, last))
        for height, block, cert in cursor:
            if height != expected:
                raise ExportError(f"{self.path}: block {expected} is missing")
            yield height, bytes(block), bytes(cert)
            expected += 1
        if expected != last + 1:
            raise ExportError(f"{self.path}: block {expected} is missing")


# ---------------------------------------------------------------- export files


def write_export(out: BinaryIO, genesis: Genesis, blocks: Iterator[RawBlock], first: int, last: int,
                 progress: Callable[[int], None] | None = None) -> int:
    out.write(ExportHeader(genesis.chain_id, genesis, first, last).to_line())
    n = 0
    for height, block, cert in blocks:
        frame = encode([block, cert])
        out.write(_LEN.pack(len(frame)))
        out.write(frame)
        n += 1
        if progress:
            progress(height)
    return n


def read_export_header(f: BinaryIO) -> ExportHeader:
    line = f.readline(MAX_HEADER_LINE)
    if not line.endswith(b"\n"):
        raise ExportError("not a branchnet export (no JSON header line)")
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise ExportError("not a branchnet export (header is not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ExportError(f"not a {EXPORT_FORMAT} file (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    try:
        genesis = Genesis.from_json(doc.get("genesis"))
    except ProtocolError as exc:
        raise ExportError(f"export header: embedded genesis is invalid ({exc})") from None
    first, last = doc.get("from"), doc.get("to")
    if type(first) is not int or type(last) is not int or not 1 <= first <= last + 1:
        raise ExportError("export header: from/to must be heights with 1 <= from <= to + 1")
    if doc.get("chain_id") != genesis.chain_id:
        raise ExportError("export header: chain_id does not match the embedded genesis")
    return ExportHeader(genesis.chain_id, genesis, first, last)


def read_export_blocks(f: BinaryIO, header: ExportHeader) -> Iterator[RawBlock]:
    """Yield (height, block, certificate) frames; the height is the expected one (the
    block's own height is checked by the replay)."""
    max_frame = header.genesis.params.max_block_bytes + 1024 + 256 * 96 + 64
    for height in range(header.first, header.last + 1):
        prefix = f.read(4)
        if len(prefix) != 4:
            raise ExportError(f"block {height}: file ends early (truncated export)")
        (size,) = _LEN.unpack(prefix)
        if size > max_frame:
            raise ExportError(f"block {height}: frame of {size} bytes exceeds the limit")
        frame = f.read(size)
        if len(frame) != size:
            raise ExportError(f"block {height}: file ends early (truncated export)")
        try:
            block, cert = expect_array(decode(frame, max_size=max_frame), 2, "frame")
            yield height, expect_bytes(block, "frame.block"), expect_bytes(cert, "frame.certificate")
        except ProtocolError as exc:
            raise ExportError(f"block {height}: malformed frame ({exc})") from None
    if f.read(1):
        raise ExportError(f"trailing data after block {header.last}")


# ---------------------------------------------------------------- replay


class VerificationFailed(Exception):
    def __init__(self, height: int, reason: str):
        super().__init__(f"block {height}: {reason}")
        self.height = height
        self.reason = reason


@dataclass
class ReplayResult:
    height: int
    blocks: int
    records: int
    state_root: bytes | None  # None when the replay did not start at genesis
    last_hash: bytes


def replay(genesis: Genesis, blocks: Iterator[RawBlock], *, first: int = 1,
           progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Re-check blocks ``first``.. from ``blocks`` against ``genesis``.

    From height 1: full replay into a fresh LedgerState (certificate, header
    linkage, roots, every record and the state root). From a later height
    (a partial export) there is no state to replay onto, so only certificates,
    block roots and the hash chain inside the range are checked.
    Raises VerificationFailed with the first bad height; ExportError from the source.
    """
    p = genesis.params
    state = LedgerState(genesis) if first == 1 else None
    prev_hash: bytes | None = None
    n = records = 0
    height = first - 1
    for height, raw_block, raw_cert in blocks:
        try:
            block = Block.decode(raw_block, max_bytes=p.max_block_bytes + 1024, max_records=p.max_block_records,
                                 max_evidence=p.max_block_evidence)
            cert = CommitCertificate.decode(raw_cert)
            if block.height != height:
                raise VerificationFailed(height, f"holds block {block.height}")
            if state is not None:
                state.commit_block(block, cert)
            else:
                cert.verify(genesis.validators, genesis.chain_id, height=height, block_hash=block.hash)
                if block.header.chain_id != genesis.chain_id:
                    raise VerificationFailed(height, f"block is for chain {block.header.chain_id!r}")
                if prev_hash is not None and block.header.prev_hash != prev_hash:
                    raise VerificationFailed(height, "does not extend the previous block (prev_hash)")
        except ProtocolError as exc:
            raise VerificationFailed(height, str(exc)) from None
        prev_hash = block.hash
        n += 1
        records += len(block.records)
        if progress:
            progress(height)
    return ReplayResult(height, n, records, state.state_root if state else None, prev_hash or genesis.hash)
