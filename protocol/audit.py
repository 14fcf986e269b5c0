"""Audit replay: re-check a chain from genesis, trusting only the genesis file.

Pure: blocks come in as bytes (from an export file or a database), results
and failures go out as values. ``branchnet chain verify`` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from .blocks import Block, Header
from .errors import ProtocolError
from .genesis import Genesis
from .ledger import LedgerState
from .validators import ValidatorSet
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


SetChange = tuple[Header, CommitCertificate, ValidatorSet]  # a header announcing a new set, its certificate, that set


def replay(genesis: Genesis, blocks: Iterator[RawBlock], *, first: int = 1,
           progress: Callable[[int], None] | None = None, set_changes: Sequence[SetChange] = ()) -> ReplayResult:
    """Re-check blocks ``first``.. from ``blocks`` against ``genesis``.

    From height 1: full replay into a fresh LedgerState (certificate, header
    linkage, roots, every record and the state root). From a later height
    (a partial export) there is no state to replay onto, so only certificates,
    block roots and the hash chain inside the range are checked, each certificate
    against the set in force at its height: the genesis set moved by
    ``set_changes`` (every certified set change up to the last height, by height,
    PROTOCOL.md §15.6), those below ``first`` checked as a record proof's are,
    those inside the range against the range's own blocks.
    Raises VerificationFailed with the first bad height; whatever ``blocks`` raises propagates.
    """
    p = genesis.params
    state = LedgerState(genesis) if first == 1 else None
    trusted, announced = (None, {}) if state is not None else _set_in_force(genesis, set_changes, first)
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
                if block.header.validators_hash != trusted.hash:
                    raise VerificationFailed(height, "names another validator set than the one in force (genesis and "
                                                     "the export's certified set changes)")
                cert.verify(trusted, genesis.chain_id, height=height, block_hash=block.hash)
                if block.header.chain_id != genesis.chain_id:
                    raise VerificationFailed(height, f"block is for chain {block.header.chain_id!r}")
                if prev_hash is not None and block.header.prev_hash != prev_hash:
                    raise VerificationFailed(height, "does not extend the previous block (prev_hash)")
                if block.header.next_validators_hash != block.header.validators_hash:
                    change = announced.get(height)
                    if change is None or change[0].hash != block.hash:
                        raise VerificationFailed(height, "announces a validator set the export does not carry")
                    trusted = change[2]
        except ProtocolError as exc:
            raise VerificationFailed(height, str(exc)) from None
        prev_hash = block.hash
        n += 1
        records += len(block.records)
        if progress:
            progress(height)
    return ReplayResult(height, n, records, state.state_root if state else None, prev_hash or genesis.hash)


def _set_in_force(genesis: Genesis, changes: Sequence[SetChange], first: int) -> tuple[ValidatorSet, dict[int, SetChange]]:
    """The set in force at ``first``, walked from genesis through the changes below it (each
    certified by the set before it, §15.6), and the changes from ``first`` on by height
    (each carrying the set its header announces). Raises VerificationFailed."""
    trusted, last = genesis.validators, 0
    later: dict[int, SetChange] = {}
    for header, cert, valset in changes:
        h = header.height
        if header.chain_id != genesis.chain_id or h <= last or header.next_validators_hash != valset.hash:
            raise VerificationFailed(min(h, first), "the export's set changes are not of this chain, in height order, "
                                                    "each with the set its header announces")
        last = h
        if h >= first:
            later[h] = (header, cert, valset)
            continue
        try:
            if header.validators_hash != trusted.hash:
                raise VerificationFailed(h, "set change does not follow the set in force")
            cert.verify(trusted, genesis.chain_id, height=h, block_hash=header.hash)
        except ProtocolError as exc:
            raise VerificationFailed(h, f"set change: {exc}") from None
        trusted = valset
    return trusted, later
