"""The mempool: validated records waiting for a block.

* Each record is validated exactly once. The node decodes it (:meth:`Mempool.precheck`
  does the cheap stateful checks), verifies its signature in a worker thread,
  then :meth:`Mempool.add` stores it. Duplicates are recognised by hash before
  any signature work; recently rejected hashes are remembered so re-gossiped
  junk is not re-verified.
* Records are kept per (branch, subject) by sequence number. :meth:`reap` hands
  out, subject by subject in first-arrival order, the run of records whose
  sequence numbers continue the committed one without a gap — exactly what can
  go into the next block.
* Bounded by count and bytes; a full mempool rejects with ``mempool_full``.
* :meth:`update` after each commit drops committed and superseded records.

Errors, by whose fault (node/errors.py):

* :class:`MempoolRejected` (a ``ValidationError``): the record itself cannot
  go into a block — not a member, stale or conflicting sequence, oversize, bad
  signature. The sender's fault.
* :class:`AlreadyKnown` (a ``MempoolRejected``): a copy of a record we hold or
  committed already (``duplicate``, ``replayed_seq``). From a peer that is the
  normal overlap of gossip and pushes, not a fault.
* :class:`MempoolFull`: our capacity, nobody's fault; retry later.

Each carries a ``reason`` slug and is counted in ``rejected`` (exported as metrics).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Iterable

from protocol.blocks import Block
from protocol.errors import ValidationError
from protocol.governance import GOV_BODY_TYPES, check_record as check_governance
from protocol.ledger import LedgerState
from protocol.records import Record

MAX_SEQ_AHEAD = 1024
REJECTED_CACHE = 16_384


class MempoolRejected(ValidationError):
    """The record cannot go into a block; ``reason`` says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message, field="record", reason=reason)


class AlreadyKnown(MempoolRejected):
    """A record we already hold or committed: a peer's copy is normal overlap."""


class MempoolFull(Exception):
    """The mempool is at its bound: nobody's fault, retry later."""

    reason = "mempool_full"

    def __init__(self, message: str = "mempool is full; retry later"):
        super().__init__(message)
        self.message = message


@dataclass
class MempoolStats:
    size: int
    bytes: int
    added: int
    committed: int
    rejected: dict[str, int]


class Mempool:
    def __init__(self, state: LedgerState, *, max_records: int = 50_000, max_bytes: int = 64 << 20):
        self.state = state
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._by_hash: dict[bytes, Record] = {}
        self._by_subject: OrderedDict[tuple[bytes, str], dict[int, Record]] = OrderedDict()
        self._bytes = 0
        self._recently_rejected: OrderedDict[bytes, str] = OrderedDict()
        self.rejected: Counter[str] = Counter()
        self.added = 0
        self.committed = 0

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, record_hash: bytes) -> bool:
        return record_hash in self._by_hash

    def get(self, record_hash: bytes) -> Record | None:
        return self._by_hash.get(record_hash)

    def statistics(self) -> MempoolStats:
        return MempoolStats(len(self._by_hash), self._bytes, self.added, self.committed, dict(self.rejected))

    def _reject(self, record_hash: bytes, reason: str, message: str, *, remember: bool = True,
                kind: type[MempoolRejected] = MempoolRejected) -> MempoolRejected:
        self.rejected[reason] += 1
        if remember:
            self._recently_rejected[record_hash] = reason
            if len(self._recently_rejected) > REJECTED_CACHE:
                self._recently_rejected.popitem(last=False)
        return kind(reason, message)

    def precheck_hash(self, record_hash: bytes) -> None:
        """What the record's hash alone tells, before it is decoded: raises AlreadyKnown for a
        copy of what we hold, MempoolRejected for one we rejected recently."""
        if record_hash in self._by_hash:
            raise self._reject(record_hash, "duplicate", "record is already in the mempool", remember=False, kind=AlreadyKnown)
        earlier = self._recently_rejected.get(record_hash)
        if earlier is not None:
            raise self._reject(record_hash, earlier, f"record was rejected before ({earlier})", remember=False)

    def precheck(self, record: Record) -> None:
        """Cheap checks before the signature is verified. Raises MempoolRejected
        (AlreadyKnown for a copy of what we hold or committed) or MempoolFull."""
        self.precheck_hash(record.hash)
        state = self.state
        if record.chain_id != state.chain_id:
            raise self._reject(record.hash, "chain_id", f"record is for chain {record.chain_id!r}")
        if record.branch_id not in state.members:
            raise self._reject(record.hash, "not_member", "branch is not a member of this network")
        if len(record.raw) > state.params.max_record_bytes:
            raise self._reject(record.hash, "oversize", "record exceeds max_record_bytes")
        if isinstance(record.body, GOV_BODY_TYPES):  # §15: who may propose and vote, on what
            try:
                check_governance(state.gov, record, state.height + 1)
            except ValidationError as exc:  # not remembered: it depends on the state (a proposal not committed here yet)
                raise self._reject(record.hash, exc.reason, exc.message, remember=False) from None
        key = (record.branch_id, record.subject)
        next_seq = state.next_seq(*key)
        if record.seq < next_seq:
            raise self._reject(record.hash, "replayed_seq", f"seq {record.seq} already committed (next is {next_seq})", kind=AlreadyKnown)
        if record.seq >= next_seq + MAX_SEQ_AHEAD:
            raise self._reject(record.hash, "seq_too_far", f"seq {record.seq} is more than {MAX_SEQ_AHEAD} ahead of {next_seq}")
        pending = self._by_subject.get(key)
        if pending and record.seq in pending:
            raise self._reject(record.hash, "seq_conflict", f"another record already holds seq {record.seq} for {record.subject}")
        if len(self._by_hash) >= self.max_records or self._bytes + len(record.raw) > self.max_bytes:
            self.rejected["mempool_full"] += 1
            raise MempoolFull()

    def reject_invalid_signature(self, record: Record) -> MempoolRejected:
        return self._reject(record.hash, "bad_signature", "signature does not verify")

    def add(self, record: Record) -> None:
        """Store a record whose signature was verified. Re-runs precheck (state may have moved)."""
        self.precheck(record)
        self._by_hash[record.hash] = record
        self._by_subject.setdefault((record.branch_id, record.subject), {})[record.seq] = record
        self._bytes += len(record.raw)
        self.added += 1

    def reap(self, max_records: int, max_bytes: int | None = None) -> list[Record]:
        """Records that can go into the next block, in order, gap-free per subject."""
        out: list[Record] = []
        size = 0
        for (branch_id, subject), pending in self._by_subject.items():
            seq = self.state.next_seq(branch_id, subject)
            while seq in pending:
                record = pending[seq]
                if len(out) >= max_records or (max_bytes is not None and size + len(record.raw) > max_bytes):
                    return out
                out.append(record)
                size += len(record.raw)
                seq += 1
        return out

    def next_seq(self, branch_id: bytes, subject: str) -> int:
        """The sequence number a new record for (branch, subject) should carry,
        counting records still waiting here (for signing our own records)."""
        seq = self.state.next_seq(branch_id, subject)
        pending = self._by_subject.get((branch_id, subject), {})
        while seq in pending:
            seq += 1
        return seq

    def newest(self, branch_id: bytes, subject: str) -> Record | None:
        """The pending record of (branch, subject) with the highest sequence number."""
        pending = self._by_subject.get((branch_id, subject))
        return pending[max(pending)] if pending else None

    def verified_hashes(self) -> set[bytes]:
        return set(self._by_hash)

    def remove(self, records: Iterable[Record], reason: str | None = None) -> None:
        """Drop ``records``; with a ``reason``, count them as rejected. They are not
        remembered as rejected: such reasons depend on state (a status that reached the
        block before its offer), and the origin's re-send must be able to succeed."""
        for record in records:
            self._drop(record)
            if reason:
                self._reject(record.hash, reason, reason, remember=False)

    def _drop(self, record: Record) -> None:
        if self._by_hash.pop(record.hash, None) is None:
            return
        self._bytes -= len(record.raw)
        key = (record.branch_id, record.subject)
        pending = self._by_subject.get(key)
        if pending is not None:
            pending.pop(record.seq, None)
            if not pending:
                del self._by_subject[key]

    def update(self, block: Block) -> None:
        """After ``block`` committed (state already advanced): drop committed and superseded records."""
        if not self._by_hash:  # nothing pending (as for an observer syncing): nothing to drop
            return
        touched = set()
        for record in block.records:
            if record.hash in self._by_hash:
                self.committed += 1
            self._drop(record)
            touched.add((record.branch_id, record.subject))
        for key in touched:
            pending = self._by_subject.get(key)
            if not pending:
                continue
            next_seq = self.state.next_seq(*key)
            for seq in [s for s in pending if s < next_seq]:
                stale = pending[seq]
                self._drop(stale)
                self.rejected["superseded"] += 1
