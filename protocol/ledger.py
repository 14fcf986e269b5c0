"""The ledger state machine: the registry of branch services, and blocks applied to it.

Theory of operation
-------------------
State is, per member branch, a map ``subject -> Entry``: the branch profile
("profile"), each service offer ("service/<id>", value None once withdrawn) and
each live status ("status/<id>"). An entry remembers the sequence number, the
hash of the record that set it (the history pointer into the chain) and the
height it was committed at.

Applying a record: the branch must be a member, the signature must verify, the
sequence number must be exactly the subject's last + 1, a status or withdrawal
needs a currently offered service, and every phone-like number its texts mention
must be one the branch's profile declares public (§5.3). Applying a block applies every
record in order inside a :class:`StateTransaction` (an overlay over the
committed state); any invalid record makes the whole block invalid — nothing is
skipped, nothing half-applied. ``commit()`` folds the overlay in.

State root (docs/PROTOCOL.md §8): each entry is a leaf
``encode([subject, seq, record_hash, height, value])``. A branch root is the root
of a compressed binary Merkle tree over its entries keyed by ``sha256(subject)``
(protocol/state_tree.py); the state root is the RFC 6962 root over
``encode([branch_id, branch_root])`` sorted by branch id. Replaying the same
blocks always yields the same root, whatever order the entries arrived in.

A transaction re-hashes only what it changes: in each changed branch the paths
of the changed entries (about log2(n) + 1 nodes each, n the branch's size), and
the paths of the changed branches in the top tree (``merkle.LevelTree``; rebuilt
when a branch gains its first entry). :meth:`LedgerState.entry_proof` proves one
entry against the state root.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from typing import Any, Iterable, Iterator, NamedTuple

from . import governance, merkle, pii, state_tree
from .blocks import Block, Header, evidence_root
from .encoding import encode_checked
from .errors import ProtocolError, ValidationError
from .genesis import Genesis
from .keys import PublicKey
from .records import Record
from .schema import BODY_TYPES, ServiceStatus, ServiceWithdraw
from .validators import ValidatorSet
from .votes import CommitCertificate


class Entry(NamedTuple):
    """One subject's value in a branch's state. A named tuple (immutable, like a frozen
    dataclass): one is made for every record applied, at a third of a frozen dataclass's
    cost (0.7 against 2.0 µs)."""

    subject: str
    seq: int
    record_hash: bytes
    height: int
    kind: str
    body: Any  # BranchProfile | ServiceOffer | ServiceStatus, or None once withdrawn

    def leaf(self) -> bytes:
        value = None if self.body is None else self.body.to_array()
        return encode_checked([self.subject, self.seq, self.record_hash, self.height, value])  # every field checked on entry


def _top_leaf(branch_id: bytes, branch_root: bytes) -> bytes:
    # encode([branch_id, branch_root]) written out: a 2-array of two bin8 (ids of 20 bytes,
    # hashes of 32; both checked on entry), 1.6 against 2.7 µs a changed branch
    return merkle.leaf_hash(bytes((0x92, 0xC4, len(branch_id))) + branch_id + bytes((0xC4, len(branch_root))) + branch_root)


def _updated_tree(tree: merkle.LevelTree | None, order: list, changed: dict[Any, bytes], all_leaves) -> merkle.LevelTree:
    """``tree`` (one leaf per key of ``order``) with the leaves of ``changed`` replaced by
    path updates; ``tree`` None (keys were added, so positions moved): rebuilt from ``all_leaves()``."""
    if tree is None:
        return merkle.LevelTree(all_leaves())
    return tree.with_updates({bisect_left(order, k): h for k, h in changed.items()})


_STALE = object()  # a branch's tree after restore(): built on first use


def _entry_item(entry: Entry, record: Record | None) -> state_tree.Item:
    """``entry``'s update item (``Entry.leaf``'s, hashed). Its leaf's value is the body
    (§8): taken as bytes from ``record`` when that is the record that made the entry, not
    encoded again (speed only: 4.3 µs for an offer's encoding; the same bytes, since a
    decoded record is canonical and every body is the one encoding of its value)."""
    body = entry.body
    if body is None:
        value = None
    elif record is not None and record.hash == entry.record_hash:
        value = record.body_bytes()
    else:
        value = encode_checked(body.to_array())
    return state_tree.entry_item(entry.subject, entry.seq, entry.record_hash, entry.height, value)


class _BranchTree:
    """One branch's entries and its state tree (protocol/state_tree.py, §8).

    The tree is persistent: :meth:`pending` returns the new root node of a change
    (re-hashing only the changed entries' paths, about log2(n) + 1 nodes each)
    and shares every other node with the committed tree; :meth:`fold` keeps it.
    """

    __slots__ = ("entries", "_node")

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._node: Any = None  # the committed tree's root node (None: no entries)

    def put(self, entry: Entry) -> None:
        """Add a committed entry (restore only): the tree is rebuilt once, on next use."""
        self.entries[entry.subject] = entry
        self._node = _STALE

    def node(self) -> state_tree.Node:
        if self._node is _STALE:
            self._node = state_tree.build(state_tree.items_of((s, state_tree.leaf_hash(e.leaf())) for s, e in self.entries.items()))
        return self._node

    def root(self) -> bytes:
        return state_tree.hash_of(self.node())

    def pending(self, changed: dict[str, Entry], records: dict[str, Record] | None = None) -> state_tree.Node:
        """The root node this branch would have with ``changed`` folded in (nothing is mutated).
        ``records``: the record each changed entry came from, where it did (by subject)."""
        items = [_entry_item(e, records.get(s) if records else None) for s, e in changed.items()]
        items.sort()
        return state_tree.update(self.node(), items)

    def fold(self, changed: dict[str, Entry], node: state_tree.Node) -> None:
        """Fold in ``changed`` together with the root node :meth:`pending` computed for it."""
        self.entries.update(changed)
        self._node = node


class LedgerState:
    """Committed state at ``height`` (0 = genesis). Mutated only by ``StateTransaction.commit``.

    Besides the branches' entries it holds the governance state (``gov``: the
    member registry, the validator sets signing the next two heights, the chain
    parameters in force, the open proposals; protocol/governance.py), whose
    changes since genesis are entries of the system branch ``SYSTEM_ID`` in the
    same state tree — so a chain without governance has the roots it always had.
    """

    def __init__(self, genesis: Genesis):
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.gov = governance.GovState.at_genesis(genesis)
        self.height = 0
        self.last_block_hash = genesis.hash
        self.last_block_time_ms = genesis.genesis_time_ms
        self.committed_evidence: set[bytes] = set()
        self._branches: dict[bytes, _BranchTree] = {}
        self._order: list[bytes] = []  # branch ids with entries, sorted
        self._top: merkle.LevelTree | None = None  # the tree over branch roots; None: rebuild on next use
        self._version = 0  # bumped whenever committed state changes (a pending root is for one version)

    # ---------------------------------------------------------------- queries
    @property
    def validators(self) -> ValidatorSet:
        """The validator set that signs the next block."""
        return self.gov.validators

    @property
    def next_validators(self) -> ValidatorSet:
        """The set that signs the block after it (announced by the next header)."""
        return self.gov.next_validators

    @property
    def params(self) -> Any:
        """The chain parameters in force for the next block."""
        return self.gov.params

    @property
    def members(self) -> "MemberKeys":
        """Every member branch's current public key (a read-only mapping, O(1) lookups)."""
        return MemberKeys(self.gov.registry.members)

    def entry(self, branch_id: bytes, subject: str) -> Entry | None:
        tree = self._branches.get(branch_id)
        return tree.entries.get(subject) if tree else None

    def entries(self, branch_id: bytes | None = None) -> Iterator[tuple[bytes, Entry]]:
        ids = [branch_id] if branch_id is not None else sorted(self._branches)
        for bid in ids:
            tree = self._branches.get(bid)
            if tree:
                for subject in sorted(tree.entries):
                    yield bid, tree.entries[subject]

    def entry_proof(self, branch_id: bytes, subject: str) -> state_tree.EntryProof | None:
        """Proof that the entry ``subject`` of ``branch_id`` is in :attr:`state_root` (§8);
        None if there is no such entry. Check it with ``EntryProof.verify(state_root)``."""
        tree = self._branches.get(branch_id)
        entry = tree.entries.get(subject) if tree else None
        if entry is None:
            return None
        path = state_tree.path_of(tree.node(), subject)
        assert path is not None, "state tree lost an entry"
        top = merkle.prove(self._top_tree().levels[0], bisect_left(self._order, branch_id))
        return state_tree.EntryProof(branch_id, entry.leaf(), tuple(path), top)

    def next_seq(self, branch_id: bytes, subject: str) -> int:
        e = self.entry(branch_id, subject)
        return 1 if e is None else e.seq + 1

    @property
    def state_root(self) -> bytes:
        return self._top_tree().root()

    def _top_tree(self) -> merkle.LevelTree:
        if self._top is None:
            self._top = merkle.LevelTree([_top_leaf(b, self._branches[b].root()) for b in self._order])
        return self._top

    def restore(
        self,
        *,
        height: int,
        last_block_hash: bytes,
        last_block_time_ms: int,
        entries: Iterable[tuple[bytes, Entry]],
        committed_evidence: Iterable[bytes] = (),
    ) -> None:
        """Load committed state from storage (a fresh state only). The caller then
        checks ``state_root`` against the last committed header."""
        if self.height != 0 or self._branches:
            raise RuntimeError("restore() needs a fresh LedgerState")
        for bid, entry in entries:
            self._branches.setdefault(bid, _BranchTree()).put(entry)
        self._order = sorted(self._branches)
        system = self._branches.get(governance.SYSTEM_ID)
        if system is not None:
            self.gov.restore((e.subject, e.body) for e in system.entries.values())
        self.height = height
        self.last_block_hash = last_block_hash
        self.last_block_time_ms = last_block_time_ms
        self.committed_evidence = set(committed_evidence)
        self._top = None
        self._version += 1

    def begin(self, height: int | None = None) -> "StateTransaction":
        return StateTransaction(self, self.height + 1 if height is None else height)

    # ---------------------------------------------------------------- blocks
    def check_header(self, header: Header, *, expected_proposer: bytes | None = None) -> None:
        """Chain-linkage checks on a header for the next height. Raises ValidationError."""
        if header.chain_id != self.chain_id:
            raise ValidationError(f"block is for chain {header.chain_id!r}", field="header.chain_id", reason="chain_id")
        if header.height != self.height + 1:
            raise ValidationError(f"expected height {self.height + 1}, got {header.height}", field="header.height", reason="height")
        if header.prev_hash != self.last_block_hash:
            raise ValidationError("does not extend the last committed block", field="header.prev_hash", reason="prev_hash")
        if header.time_ms <= self.last_block_time_ms:
            raise ValidationError("block time must increase", field="header.time_ms", reason="time")
        if header.validators_hash != self.validators.hash or header.next_validators_hash != self.next_validators.hash:
            raise ValidationError("validator set hash mismatch", field="header.validators_hash", reason="validators_hash")
        if header.proposer not in self.validators:
            raise ValidationError("proposer is not a validator", field="header.proposer", reason="proposer")
        if expected_proposer is not None and header.proposer != expected_proposer:
            raise ValidationError("not this round's proposer", field="header.proposer", reason="proposer")

    def validate_block(self, block: Block, *, verified: frozenset[bytes] | set[bytes] = frozenset()) -> "StateTransaction":
        """Fully check ``block`` as the next block; return the (uncommitted) transaction.

        ``verified`` holds hashes of records whose signatures were already checked
        (by the mempool); all others are verified here. Raises ValidationError.
        """
        self.check_header(block.header)
        block.check_roots()
        if len(block.records) > self.params.max_block_records:
            raise ValidationError("too many records", field="block.records", reason="too_many_records")
        if len(block.evidence) > self.params.max_block_evidence:
            raise ValidationError("too much evidence", field="block.evidence", reason="too_much_evidence")
        for i, ev in enumerate(block.evidence):
            try:
                ev.verify(self.validators, self.chain_id)
            except ProtocolError as exc:
                raise ValidationError(exc.message, field=f"block.evidence[{i}]", reason="bad_evidence") from None
            if ev.hash in self.committed_evidence or ev.height > self.height or ev in block.evidence[:i]:
                raise ValidationError("evidence already committed, repeated in this block, or from the future", field=f"block.evidence[{i}]", reason="bad_evidence")
        tx = self.begin(block.height)
        tx.apply_all(block.records, verified=verified)
        tx.end_block(block.evidence)
        if tx.state_root() != block.header.state_root:
            raise ValidationError("state root does not match", field="header.state_root", reason="state_root")
        tx.block = block
        return tx

    def commit_block(self, block: Block, certificate: CommitCertificate, *, verified: Iterable[bytes] = ()) -> None:
        """Verify ``certificate`` and ``block``, then apply (used by sync and replay)."""
        certificate.verify(self.validators, self.chain_id, height=block.height, block_hash=block.hash)
        self.validate_block(block, verified=set(verified)).commit()


class MemberKeys(Mapping):
    """branch id -> current public key, over a registry's members (no copy)."""

    __slots__ = ("_members",)

    def __init__(self, members: dict[bytes, Any]):
        self._members = members

    def __getitem__(self, branch_id: bytes) -> PublicKey:
        return self._members[branch_id].public_key

    def __contains__(self, branch_id: object) -> bool:
        return branch_id in self._members

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


ENTRY_BODY_TYPES = {**BODY_TYPES, **governance.SYSTEM_BODY_TYPES}  # what a stored state entry's kind decodes as
_GOV_BODY_TYPES = frozenset(governance.GOV_BODY_TYPES)  # bodies governance checks and applies (by exact type)


class StateTransaction:
    """An overlay of record applications over a LedgerState, at one height."""

    def __init__(self, base: LedgerState, height: int):
        self.base = base
        self.height = height
        self.changes: dict[bytes, dict[str, Entry]] = {}
        self.records: list[Record] = []
        self.block: Block | None = None
        self._gov: governance.GovState | None = None  # copied from base.gov on the first governance change
        self._edits = 0
        self._pending: tuple | None = None  # (base version, edits, branch updates, top tree)
        self._sources: dict[bytes, dict[str, Record]] = {}  # branch -> subject -> the record its changed entry came from

    @property
    def gov(self) -> governance.GovState:
        """The governance state as of this overlay (read only; see _gov_for_write)."""
        return self._gov if self._gov is not None else self.base.gov

    def _gov_for_write(self) -> governance.GovState:
        if self._gov is None:
            self._gov = self.base.gov.copy()
        return self._gov

    def _put_system(self, system: "governance.SystemChanges") -> None:
        changed = self.changes.setdefault(governance.SYSTEM_ID, {})
        for subject, (kind, body) in system.items():
            prev = self.entry(governance.SYSTEM_ID, subject)
            changed[subject] = Entry(subject, 1 if prev is None else prev.seq + 1, bytes(32), self.height, kind, body)
        self._edits += 1

    def entry(self, branch_id: bytes, subject: str) -> Entry | None:
        changed = self.changes.get(branch_id)
        if changed is not None and subject in changed:
            return changed[subject]
        return self.base.entry(branch_id, subject)

    def check(self, record: Record, *, verify_signature: bool = True) -> None:
        """Raise ValidationError unless ``record`` applies on top of this overlay."""
        self._check(record, verify_signature)

    def _check(self, record: Record, verify_signature: bool) -> str:
        """check(), returning the record's subject (apply needs it too)."""
        base = self.base
        if record.chain_id != base.chain_id:
            raise ValidationError(f"record is for chain {record.chain_id!r}", field="record.chain_id", reason="chain_id")
        gov = self._gov if self._gov is not None else base.gov
        branch_id = record.branch_id
        member = gov.registry.members.get(branch_id)
        if member is None:
            raise ValidationError("branch is not a member of this network", field="record.branch_id", reason="not_member")
        if len(record.raw) > gov.params.max_record_bytes:
            raise ValidationError("record exceeds max_record_bytes", field="record", reason="oversize")
        body = record.body
        subject = body.subject()
        # self.entry(), written out: this runs once for every record a node checks
        changed = self.changes.get(branch_id)
        prev = changed.get(subject) if changed is not None else None  # (the overlay holds Entries, never None)
        if prev is None:
            tree = base._branches.get(branch_id)
            prev = tree.entries.get(subject) if tree is not None else None
        expected = 1 if prev is None else prev.seq + 1
        if record.seq != expected:
            reason = "replayed_seq" if record.seq < expected else "seq_gap"
            raise ValidationError(f"seq {record.seq} for {subject}, expected {expected}", field="record.seq", reason=reason)
        body_type = type(body)
        if body_type is ServiceStatus or body_type is ServiceWithdraw:
            offer = self.entry(branch_id, f"service/{body.service_id}")
            if offer is None or offer.body is None:
                raise ValidationError(f"service {body.service_id!r} is not on offer", field="record.body.service_id", reason="no_such_service")
        if record.numbers:  # §5.3: phone-like numbers in its texts must be the branch's declared public numbers
            profile = self.entry(branch_id, "profile")
            pii.check_declared(record.numbers, () if profile is None or profile.body is None else profile.body.declared_numbers())
        if body_type in _GOV_BODY_TYPES:
            governance.check_record(gov, record, self.height)
        # A signature checked before (verify_signature False) was checked against the key its
        # branch id derives from; once a branch's key has rotated, that may not be the key in
        # force, so its records are always checked here, against the key in force now.
        if verify_signature or member.rotated:
            record.verify(member.public_key)
        return subject

    def apply(self, record: Record, *, verify_signature: bool = True) -> None:
        subject = self._check(record, verify_signature)
        body = record.body
        branch_id = record.branch_id
        changed = self.changes.get(branch_id)
        if changed is None:
            changed = self.changes[branch_id] = {}
        body_type = type(body)
        if body_type is ServiceWithdraw:  # a withdrawn service has no live status
            changed[subject] = Entry(subject, record.seq, record.hash, self.height, record.kind, None)
            status = self.entry(branch_id, f"status/{body.service_id}")
            if status is not None and status.body is not None:
                changed[status.subject] = Entry(status.subject, status.seq, status.record_hash, status.height, status.kind, None)
        else:
            changed[subject] = Entry(subject, record.seq, record.hash, self.height, record.kind, body)
            sources = self._sources.get(branch_id)
            if sources is None:
                sources = self._sources[branch_id] = {}
            sources[subject] = record
        if body_type in _GOV_BODY_TYPES:
            system: governance.SystemChanges = {}
            governance.apply_record(self._gov_for_write(), record, self.height, system)
            self._put_system(system)
        self.records.append(record)
        self._edits += 1

    def end_block(self, evidence: Iterable[Any] = ()) -> None:
        """After a block's records: governance's end of block (jail the equivocators of
        ``evidence``, tally, switch the validator sets and parameters)."""
        system: governance.SystemChanges = {}
        governance.end_block(self._gov_for_write(), self.height, [ev.validator for ev in evidence], system)
        if system:
            self._put_system(system)

    def apply_all(self, records: Iterable[Record], *, verified: frozenset[bytes] | set[bytes] = frozenset()) -> None:
        for i, record in enumerate(records):
            try:
                self.apply(record, verify_signature=record.hash not in verified)
            except ValidationError as exc:
                raise type(exc)(exc.message, field=f"block.records[{i}].{exc.field}", reason=exc.reason) from None

    def _computed(self) -> tuple[dict[bytes, state_tree.Node], merkle.LevelTree]:
        """Roots with this overlay folded in, computed once per (base version, overlay)."""
        base = self.base
        key = (base._version, self._edits)
        if self._pending is not None and self._pending[:2] == key:
            return self._pending[2], self._pending[3]
        updates = {}
        for bid, changed in self.changes.items():
            tree = base._branches.get(bid)
            updates[bid] = (tree or _BranchTree()).pending(changed, self._sources.get(bid))
        new_ids = [bid for bid in updates if bid not in base._branches]
        order = sorted(base._order + new_ids) if new_ids else base._order
        top = _updated_tree(
            None if new_ids else base._top_tree(), order, {bid: _top_leaf(bid, state_tree.hash_of(u)) for bid, u in updates.items()},
            lambda: [_top_leaf(bid, state_tree.hash_of(updates[bid]) if bid in updates else base._branches[bid].root()) for bid in order],
        )
        self._pending = (*key, updates, top)
        return updates, top

    def state_root(self) -> bytes:
        if not self.changes:
            return self.base.state_root
        return self._computed()[1].root()

    def commit(self) -> None:
        """Fold this overlay into the base state (and advance height if it holds a block)."""
        base = self.base
        if self.changes:
            updates, top = self._computed()
            for bid, changed in self.changes.items():
                tree = base._branches.get(bid)
                if tree is None:
                    tree = base._branches[bid] = _BranchTree()
                    insort(base._order, bid)
                tree.fold(changed, updates[bid])
            base._top = top
        if self._gov is not None:
            base.gov = self._gov
        base._version += 1
        if self.block is not None:
            base.height = self.block.height
            base.last_block_hash = self.block.hash
            base.last_block_time_ms = self.block.header.time_ms
            base.committed_evidence.update(e.hash for e in self.block.evidence)
        self.changes = {}
        self._sources = {}
        self._pending = None


def build_block(
    state: LedgerState,
    *,
    height: int,
    round: int,
    time_ms: int,
    proposer: bytes,
    candidates: Iterable[Record],
    evidence: Iterable = (),
    verified: frozenset[bytes] | set[bytes] = frozenset(),
    max_records: int | None = None,
) -> tuple[Block, StateTransaction, list[tuple[Record, ValidationError]]]:
    """Build the next block from ``candidates`` in order, skipping records that do not apply.

    Returns the block, its transaction (not committed) and the rejected records
    with reasons, so the mempool can drop them. ``time_ms`` is clamped to be
    strictly after the last block.
    """
    limit = state.params.max_block_records if max_records is None else min(max_records, state.params.max_block_records)
    budget = state.params.max_block_bytes - 4096
    tx = state.begin(height)
    rejected: list[tuple[Record, ValidationError]] = []
    size = 0
    for record in candidates:
        if len(tx.records) >= limit or size + len(record.raw) + 5 > budget:
            break
        try:
            tx.apply(record, verify_signature=record.hash not in verified)
        except ValidationError as exc:
            rejected.append((record, exc))
            continue
        size += len(record.raw) + 5
    ev = tuple(evidence)[: state.params.max_block_evidence]
    tx.end_block(ev)
    header = Header(
        chain_id=state.chain_id,
        height=height,
        round=round,
        time_ms=max(time_ms, state.last_block_time_ms + 1),
        prev_hash=state.last_block_hash,
        records_root=merkle.root([r.raw for r in tx.records]),
        evidence_root=evidence_root(ev),
        state_root=tx.state_root(),
        validators_hash=state.validators.hash,
        next_validators_hash=state.next_validators.hash,
        proposer=proposer,
    )
    block = Block(header, tuple(tx.records), ev)
    tx.block = block
    return block, tx, rejected


def admissible_evidence(state: LedgerState, evidence: Iterable) -> list:
    """The items of ``evidence`` that the next block on ``state`` may carry, in order, at
    most ``max_block_evidence``: what :meth:`LedgerState.validate_block` accepts (§7.4).
    Evidence of the height being decided (an equivocation seen during it) waits for the
    block after; evidence that no longer verifies against the set in force (its
    validator left the set) is dropped. A proposer that put either in its block would
    have it refused by every validator, round after round."""
    out: list = []
    seen: set[bytes] = set()
    for ev in evidence:
        if len(out) >= state.params.max_block_evidence:
            break
        if ev.hash not in seen and evidence_admissible(state, ev):
            seen.add(ev.hash)
            out.append(ev)
    return out


def evidence_admissible(state: LedgerState, ev: Any) -> bool:
    """Whether the block after ``state`` may carry ``ev`` (§7.4): below that block's height,
    not committed yet, and it verifies against the set in force."""
    if ev.height > state.height or ev.hash in state.committed_evidence:
        return False
    try:
        ev.verify(state.validators, state.chain_id)
    except ProtocolError:
        return False
    return True
