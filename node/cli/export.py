"""The export file format for offline audit (``branchnet chain export``; ``chain
verify --file`` re-checks it with :func:`protocol.audit.replay`).

Export format ``branchnet-export/1`` (docs/CLI.md §Export format)::

    one JSON header line, UTF-8, ending in "\\n":
      {"format": "branchnet-export/1", "chain_id": ..., "genesis": <genesis JSON>,
       "from": H1, "to": H2, "set_changes": [...]}
      (set_changes, only when H1 > 1 and the set ever changed up to H2: every
      certified set change up to H2, as record proofs carry them, PROTOCOL.md §15.6)
    then for each height H1..H2 in order, one frame:
      4-byte big-endian length N, then N bytes of canonical msgpack
      [block bytes, certificate bytes]

Nothing in the file is trusted by ``chain verify``: the auditor's own genesis
file is compared with the embedded one, every certificate is checked against
the validator set in force at its height (for a partial export: the genesis
set moved by the certified set changes) and, for an export from height 1,
every block is re-applied to a fresh LedgerState so every state root is
recomputed.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from protocol.encoding import decode, encode, expect_array, expect_bytes
from protocol.audit import RawBlock
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.proofs import set_changes_from_json, set_changes_json

EXPORT_FORMAT = "branchnet-export/1"
MAX_HEADER_LINE = 2 << 20
_LEN = struct.Struct(">I")


class ExportError(Exception):
    """An export file cannot be read as a chain."""


@dataclass(frozen=True)
class ExportHeader:
    chain_id: str
    genesis: Genesis
    first: int
    last: int
    set_changes: tuple = ()  # (header, certificate, valset) of every set change up to ``last``, for a partial export

    def to_line(self) -> bytes:
        doc = {"format": EXPORT_FORMAT, "chain_id": self.chain_id, "genesis": self.genesis.to_json(),
               "from": self.first, "to": self.last}
        if self.set_changes:
            doc["set_changes"] = set_changes_json(self.set_changes)
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------- export files


def write_export(out: BinaryIO, genesis: Genesis, blocks: Iterator[RawBlock], first: int, last: int,
                 progress: Callable[[int], None] | None = None, set_changes: tuple = ()) -> int:
    out.write(ExportHeader(genesis.chain_id, genesis, first, last, tuple(set_changes)).to_line())
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
    try:
        changes = set_changes_from_json(doc.get("set_changes", []))
    except ProtocolError as exc:
        raise ExportError(f"export header: {exc}") from None
    return ExportHeader(genesis.chain_id, genesis, first, last, changes)


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
