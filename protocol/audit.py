"""Audit replay: re-check a chain from genesis, trusting only the genesis file.

Pure: blocks come in as bytes (from an export file or a database), results
and failures go out as values. ``branchnet chain verify`` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from .blocks import Block
from .errors import ProtocolError
from .genesis import Genesis
from .ledger import LedgerState
from .votes import CommitCertificate

RawBlock = tuple[int, bytes, bytes]  # (height, block bytes, certificate bytes)


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
    Raises VerificationFailed with the first bad height; whatever ``blocks`` raises propagates.
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
