"""Record proofs: a record, its Merkle inclusion proof, the committed header it
proves against and that header's commit certificate (docs/PROTOCOL.md §Blocks).

Anyone holding only the genesis file can check a proof offline with
:func:`verify_record_proof`: the certificate must carry precommits of more than
two thirds of the power of the set in force at the header's height (the genesis
set, walked through the certified set changes the proof carries), the record
bytes must be a leaf under the header's records root, and the record must be
signed by the genesis member it names or, with ``member``, by the key of its
member entry proven under the state root of a later certified header (a member
admitted after genesis, or a key rotated since: PROTOCOL.md §15.6).

JSON form (served by the node's API, not a wire format)::

    {"chain_id": str, "record": hex, "height": int, "index": int,
     "proof": {"index": int, "tree_size": int, "path": [hex, ...]},
     "header": hex(encoded header), "certificate": hex(encoded certificate),
     "set_changes": [...],
     "member": {"header": hex, "certificate": hex, "entry": hex(entry leaf),
                "branch_path": [hex, ...], "top_proof": [index, tree_size, [hex, ...]]}}   (optional)

Errors: :class:`DecodeError` for a malformed bundle, :class:`ValidationError`
(reasons ``wrong_chain``, ``wrong_height``, ``wrong_validators``,
``bad_certificate``, ``bad_set_change``, ``bad_proof``, ``bad_record``,
``bad_member_proof``, ``bad_state_proof``, ``not_member``, ``bad_signature``)
when it does not prove what it claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import merkle
from .blocks import Header
from .encoding import decode, expect_array, expect_bytes, expect_int, expect_str
from .errors import DecodeError, ProtocolError, SignatureError, ValidationError
from .genesis import Genesis
from .governance import SYSTEM_ID, MemberInfo
from .merkle import InclusionProof
from .state_tree import MAX_PATH, EntryProof
from .records import MAX_RECORD_BYTES, Record
from .keys import PublicKey
from .validators import MAX_VALIDATORS, Validator, ValidatorSet
from .votes import MAX_HEIGHT, CommitCertificate


@dataclass(frozen=True, slots=True)
class MemberProof:
    """The record's branch as the registry holds it after block ``header.height``
    (PROTOCOL.md §15.6): its system entry ``member/<branch id>`` (the entry leaf, §8)
    and that entry's proof under ``header.state_root`` (§8's entry proof of the system
    branch), with the header's certificate. ``header`` is at or above the record's height."""

    header: Header
    certificate: CommitCertificate
    entry: bytes  # encode([subject, seq, record_hash, height, member row]), §8 and §15.3
    branch_path: tuple[bytes, ...]  # the entry's path in the system branch's tree, depth 0 first (§8)
    top: InclusionProof  # the system branch's top leaf in the state tree

    @classmethod
    def of(cls, header: Header, certificate: CommitCertificate, proof: EntryProof) -> "MemberProof":
        return cls(header, certificate, proof.entry_leaf, proof.branch_path, proof.top)

    def entry_proof(self) -> EntryProof:
        return EntryProof(SYSTEM_ID, self.entry, self.branch_path, self.top)

    def to_json(self) -> dict[str, Any]:
        return {"header": self.header.encode().hex(), "certificate": self.certificate.encode().hex(), "entry": self.entry.hex(),
                "branch_path": [h.hex() for h in self.branch_path],
                "top_proof": [self.top.index, self.top.tree_size, [h.hex() for h in self.top.path]]}

    @classmethod
    def from_json(cls, obj: Any) -> "MemberProof":
        if type(obj) is not dict:
            raise DecodeError("expected an object", field="member", reason="type")
        header = _decode(Header.decode, _hex(_get(obj, "header", str, "member."), "member.header"), "member.header")
        certificate = _decode(CommitCertificate.decode, _hex(_get(obj, "certificate", str, "member."), "member.certificate"),
                              "member.certificate")
        entry = _hex(_get(obj, "entry", str, "member."), "member.entry")
        if len(entry) > MAX_ENTRY_BYTES:
            raise DecodeError("entry too large", field="member.entry", reason="oversize")
        raw_path = _get(obj, "branch_path", list, "member.")
        if len(raw_path) > MAX_PATH:
            raise DecodeError(f"more than {MAX_PATH} hashes", field="member.branch_path", reason="oversize")
        branch_path = []
        for i, h in enumerate(raw_path):
            value = _hex(h, f"member.branch_path[{i}]")
            if len(value) != 32:
                raise DecodeError("expected a 32-byte hash", field=f"member.branch_path[{i}]", reason="type")
            branch_path.append(value)
        item, f = _get(obj, "top_proof", list, "member."), "member.top_proof"
        if len(item) != 3 or type(item[2]) is not list:
            raise DecodeError("expected [index, tree_size, [hash, ...]]", field=f, reason="type")
        hashes = [_hex(h, f"{f}.path[{j}]") for j, h in enumerate(item[2][: merkle.MAX_PROOF_DEPTH + 1])]
        top = _decode(lambda a: InclusionProof.from_array(a, f), [item[0], item[1], hashes], f)
        return cls(header, certificate, entry, tuple(branch_path), top)


MAX_ENTRY_BYTES = 4096  # a member row is about 150 bytes


@dataclass(frozen=True, slots=True)
class RecordProof:
    chain_id: str
    record: bytes  # the record's canonical bytes (the Merkle leaf)
    height: int
    index: int
    proof: InclusionProof
    header: Header
    certificate: CommitCertificate
    # Every header below ``height`` that announced a new validator set, with its certificate
    # and that set, by height (PROTOCOL.md §15.6): the walk from the genesis set to the set
    # that signed ``header``. Empty while the chain kept its genesis set.
    set_changes: tuple[tuple[Header, CommitCertificate, ValidatorSet], ...] = ()
    # The record's branch under a certified state root (§15.6), for a branch admitted by
    # governance or a key rotated since genesis; None: the genesis member key signs.
    member: MemberProof | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "chain_id": self.chain_id,
            "record": self.record.hex(),
            "height": self.height,
            "index": self.index,
            "proof": {"index": self.proof.index, "tree_size": self.proof.tree_size, "path": [p.hex() for p in self.proof.path]},
            "header": self.header.encode().hex(),
            "certificate": self.certificate.encode().hex(),
            "set_changes": set_changes_json(self.set_changes),
        }
        if self.member is not None:
            out["member"] = self.member.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> "RecordProof":
        """Parse the JSON form. Raises DecodeError naming the field."""
        if not isinstance(obj, dict):
            raise DecodeError("expected an object", field="proof_bundle", reason="type")
        chain_id = _get(obj, "chain_id", str)
        height = _get(obj, "height", int)
        index = _get(obj, "index", int)
        if not 1 <= height <= MAX_HEIGHT:
            raise DecodeError("outside the valid height range", field="height", reason="range")
        p = _get(obj, "proof", dict)
        path = _get(p, "path", list, "proof.")
        inclusion = InclusionProof.from_array(
            [_get(p, "index", int, "proof."), _get(p, "tree_size", int, "proof."),
             [_hex(h, f"proof.path[{i}]") for i, h in enumerate(path[: merkle.MAX_PROOF_DEPTH + 1])]],
            "proof",
        )
        record = _hex(_get(obj, "record", str), "record")
        if len(record) > MAX_RECORD_BYTES:
            raise DecodeError("record too large", field="record", reason="oversize")
        header = _decode(Header.decode, _hex(_get(obj, "header", str), "header"), "header")
        certificate = _decode(CommitCertificate.decode, _hex(_get(obj, "certificate", str), "certificate"), "certificate")
        changes = set_changes_from_json(obj.get("set_changes", []))  # absent in proofs of nodes before governance
        member = obj.get("member")  # absent (or null) when the genesis key signs
        return cls(chain_id, record, height, index, inclusion, header, certificate, changes,
                   None if member is None else MemberProof.from_json(member))


MAX_SET_CHANGES = 100_000


def set_changes_json(changes: Any) -> list[dict[str, Any]]:
    """The JSON form of certified set changes (§15.6), as proofs and raw blocks carry them."""
    return [{"header": h.encode().hex(), "certificate": c.encode().hex(),
             "validators": [[v.branch_id.hex(), v.public_key.raw.hex(), v.power] for v in vs]} for h, c, vs in changes]


def set_changes_from_json(raw: Any, field: str = "set_changes") -> tuple[tuple[Header, CommitCertificate, ValidatorSet], ...]:
    """Parse :func:`set_changes_json`'s form. Raises DecodeError naming the field. Checks
    nothing about the chain: :func:`verify_record_proof` and protocol.audit do."""
    if type(raw) is not list or len(raw) > MAX_SET_CHANGES:
        raise DecodeError(f"expected a list of at most {MAX_SET_CHANGES}", field=field, reason="type")
    changes = []
    for i, item in enumerate(raw):
        f = f"{field}[{i}]"
        if type(item) is not dict:
            raise DecodeError("expected an object", field=f, reason="type")
        h = _decode(Header.decode, _hex(_get(item, "header", str, f + "."), f + ".header"), f + ".header")
        c = _decode(CommitCertificate.decode, _hex(_get(item, "certificate", str, f + "."), f + ".certificate"), f + ".certificate")
        changes.append((h, c, _valset(_get(item, "validators", list, f + "."), f + ".validators")))
    return tuple(changes)


def _valset(items: list, field: str) -> ValidatorSet:
    vals = []
    for i, item in enumerate(items[: MAX_VALIDATORS + 1]):
        if type(item) is not list or len(item) != 3 or type(item[2]) is not int:
            raise DecodeError("expected [branch_id, public_key, power]", field=f"{field}[{i}]", reason="type")
        try:
            vals.append(Validator(_hex(item[0], f"{field}[{i}]"), PublicKey(_hex(item[1], f"{field}[{i}]")), item[2]))
        except ProtocolError as exc:
            raise DecodeError(exc.message, field=f"{field}[{i}]", reason=exc.reason) from None
    try:
        return ValidatorSet(vals, derived_ids=False)
    except ProtocolError as exc:
        raise DecodeError(exc.message, field=field, reason=exc.reason) from None


def _decode(decoder: Any, data: bytes, field: str) -> Any:
    try:
        return decoder(data)
    except ProtocolError as exc:
        named = exc.field if exc.field.startswith(field) else field
        raise DecodeError(exc.message, field=named, reason=exc.reason) from None


def _get(obj: dict, name: str, typ: type, prefix: str = "") -> Any:
    if name not in obj:
        raise DecodeError("missing", field=prefix + name, reason="missing_field")
    value = obj[name]
    if type(value) is not typ:
        raise DecodeError(f"expected {typ.__name__}", field=prefix + name, reason="type")
    return value


def _hex(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise DecodeError("expected a hex string", field=field, reason="type")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DecodeError("not valid hex", field=field, reason="bad_hex") from None


def verify_record_proof(proof: RecordProof, genesis: Genesis) -> Record:
    """Check ``proof`` trusting only ``genesis``; return the proven record.

    Raises ValidationError with a specific ``reason`` (see the module docstring).
    """
    header = proof.header
    if proof.chain_id != genesis.chain_id or header.chain_id != genesis.chain_id:
        raise ValidationError(f"proof is for chain {header.chain_id!r}, not {genesis.chain_id!r}", field="header.chain_id", reason="wrong_chain")
    if header.height != proof.height:
        raise ValidationError(f"header is for height {header.height}, proof claims {proof.height}", field="height", reason="wrong_height")
    member = proof.member
    top = proof.height if member is None else member.header.height  # the set changes lead up to here
    if member is not None and (member.header.chain_id != genesis.chain_id or member.header.height < proof.height):
        raise ValidationError("the member entry's header is of another chain or below the record's height",
                              field="member.header", reason="bad_member_proof")
    trusted = genesis.validators
    last = 0
    record_header_checked = False
    for i, (h, cert, announced) in enumerate(proof.set_changes):  # §15.6: walk the certified set changes
        f = f"set_changes[{i}]"
        if h.chain_id != genesis.chain_id or not last < h.height < top:
            raise ValidationError("set changes must be of this chain, by height, below the record's (or the member "
                                  "entry's) header", field=f, reason="bad_set_change")
        if h.height >= proof.height and not record_header_checked:
            _check_certified(header, proof.certificate, trusted, genesis.chain_id, "")
            record_header_checked = True
        if h.validators_hash != trusted.hash or h.next_validators_hash != announced.hash:
            raise ValidationError("does not follow the set in force, or announces another set than it carries", field=f,
                                  reason="bad_set_change")
        try:
            cert.verify(trusted, genesis.chain_id, height=h.height, block_hash=h.hash)
        except ProtocolError as exc:
            raise ValidationError(f"certificate does not commit this header: {exc}", field=f + ".certificate",
                                  reason="bad_certificate") from None
        trusted, last = announced, h.height
    if not record_header_checked:
        _check_certified(header, proof.certificate, trusted, genesis.chain_id, "")
    if member is not None:
        _check_certified(member.header, member.certificate, trusted, genesis.chain_id, "member.")
    if proof.proof.index != proof.index:
        raise ValidationError("proof index differs from the record index", field="proof.index", reason="bad_proof")
    try:
        merkle.verify_inclusion(proof.record, proof.proof, header.records_root)
    except ValidationError as exc:
        raise ValidationError(f"record is not under the header's records root: {exc.message}", field="proof", reason="bad_proof") from None
    try:
        record = Record.decode(proof.record, chain_id=genesis.chain_id)
    except ProtocolError as exc:
        raise ValidationError(f"record does not decode: {exc}", field="record", reason="bad_record") from None
    key = _genesis_key(genesis, record) if member is None else _member_key(member, record)
    try:
        record.verify(key)
    except SignatureError:
        raise ValidationError("record signature does not verify", field="record.signature", reason="bad_signature") from None
    return record


def _check_certified(header: Header, certificate: CommitCertificate, trusted: ValidatorSet, chain_id: str, prefix: str) -> None:
    """``header`` is of the set in force ``trusted`` and ``certificate`` commits it."""
    if header.validators_hash != trusted.hash:
        raise ValidationError("header names another validator set than genesis and its certified changes",
                              field=prefix + "header.validators_hash", reason="wrong_validators")
    try:
        certificate.verify(trusted, chain_id, height=header.height, block_hash=header.hash)
    except ProtocolError as exc:
        raise ValidationError(f"certificate does not commit this header: {exc}", field=prefix + "certificate",
                              reason="bad_certificate") from None


def _genesis_key(genesis: Genesis, record: Record) -> PublicKey:
    member = next((m for m in genesis.members if m.branch_id == record.branch_id), None)
    if member is None:  # admitted by governance: its key is in the state, and this proof carries no member entry
        raise ValidationError("record's branch is not a genesis member and the proof carries no member entry",
                              field="record.branch_id", reason="not_member")
    return member.public_key


def _member_key(member: MemberProof, record: Record) -> PublicKey:
    """The key of the record's branch in the member entry, once the entry is shown to be
    under ``member.header``'s (certified) state root."""
    try:
        subject, _seq, _record_hash, height, row = expect_array(decode(member.entry, max_size=MAX_ENTRY_BYTES), 5, "member.entry")
        subject = expect_str(subject, "member.entry.subject", max_len=64)
        expect_int(_seq, "member.entry.seq", lo=1)
        expect_bytes(_record_hash, "member.entry.record_hash", size=32)
        expect_int(height, "member.entry.height", lo=1)
        info = None if row is None else MemberInfo.from_array(row, "member.entry.value")
    except ProtocolError as exc:
        raise ValidationError(f"not a member entry: {exc}", field=exc.field or "member.entry", reason="bad_member_proof") from None
    if subject != f"member/{record.branch_id.hex()}":
        raise ValidationError(f"the entry is {subject!r}, not the record's branch", field="member.entry.subject",
                              reason="bad_member_proof")
    if height > member.header.height:
        raise ValidationError("the entry is from after its header", field="member.entry.height", reason="bad_member_proof")
    try:
        member.entry_proof().verify(member.header.state_root)
    except ValidationError as exc:  # bad_path, bad_top_proof, wrong_state_root: all one reason here
        raise ValidationError(f"the member entry is not under the header's state root: {exc.message}",
                              field="member.branch_path", reason="bad_state_proof") from None
    if info is None:
        raise ValidationError("the branch was retired", field="member.entry.value", reason="not_member")
    return info.public_key
