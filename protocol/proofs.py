"""Record proofs: a record, its Merkle inclusion proof, the committed header it
proves against and that header's commit certificate (docs/PROTOCOL.md §Blocks).

Anyone holding only the genesis file can check a proof offline with
:func:`verify_record_proof`: the certificate must carry precommits of more than
two thirds of the genesis validators' power for the header's hash, the header
must belong to the genesis chain and validator set, the record bytes must be a
leaf under the header's records root, and the record must be signed by the
genesis member it names.

JSON form (served by the node's API, not a wire format)::

    {"chain_id": str, "record": hex, "height": int, "index": int,
     "proof": {"index": int, "tree_size": int, "path": [hex, ...]},
     "header": hex(encoded header), "certificate": hex(encoded certificate)}

Errors: :class:`DecodeError` for a malformed bundle, :class:`ValidationError`
(reasons ``wrong_chain``, ``wrong_height``, ``wrong_validators``,
``bad_certificate``, ``bad_proof``, ``bad_record``, ``not_member``,
``bad_signature``) when it does not prove what it claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import merkle
from .blocks import Header
from .errors import DecodeError, ProtocolError, SignatureError, ValidationError
from .genesis import Genesis
from .merkle import InclusionProof
from .records import MAX_RECORD_BYTES, Record
from .keys import PublicKey
from .validators import MAX_VALIDATORS, Validator, ValidatorSet
from .votes import MAX_HEIGHT, CommitCertificate


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

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "record": self.record.hex(),
            "height": self.height,
            "index": self.index,
            "proof": {"index": self.proof.index, "tree_size": self.proof.tree_size, "path": [p.hex() for p in self.proof.path]},
            "header": self.header.encode().hex(),
            "certificate": self.certificate.encode().hex(),
            "set_changes": set_changes_json(self.set_changes),
        }

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
        changes = []
        raw_changes = obj.get("set_changes", [])  # absent in proofs of nodes before governance
        if type(raw_changes) is not list or len(raw_changes) > MAX_SET_CHANGES:
            raise DecodeError(f"expected a list of at most {MAX_SET_CHANGES}", field="set_changes", reason="type")
        for i, item in enumerate(raw_changes):
            f = f"set_changes[{i}]"
            if type(item) is not dict:
                raise DecodeError("expected an object", field=f, reason="type")
            h = _decode(Header.decode, _hex(_get(item, "header", str, f + "."), f + ".header"), f + ".header")
            c = _decode(CommitCertificate.decode, _hex(_get(item, "certificate", str, f + "."), f + ".certificate"), f + ".certificate")
            changes.append((h, c, _valset(_get(item, "validators", list, f + "."), f + ".validators")))
        return cls(chain_id, record, height, index, inclusion, header, certificate, tuple(changes))


MAX_SET_CHANGES = 100_000


def set_changes_json(changes: Any) -> list[dict[str, Any]]:
    """The JSON form of certified set changes (§15.6), as proofs and raw blocks carry them."""
    return [{"header": h.encode().hex(), "certificate": c.encode().hex(),
             "validators": [[v.branch_id.hex(), v.public_key.raw.hex(), v.power] for v in vs]} for h, c, vs in changes]


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
    trusted = genesis.validators
    last = 0
    for i, (h, cert, announced) in enumerate(proof.set_changes):  # §15.6: walk the certified set changes
        f = f"set_changes[{i}]"
        if h.chain_id != genesis.chain_id or not last < h.height < proof.height:
            raise ValidationError("set changes must be of this chain, by height, below the record's", field=f, reason="bad_set_change")
        if h.validators_hash != trusted.hash or h.next_validators_hash != announced.hash:
            raise ValidationError("does not follow the set in force, or announces another set than it carries", field=f,
                                  reason="bad_set_change")
        try:
            cert.verify(trusted, genesis.chain_id, height=h.height, block_hash=h.hash)
        except ProtocolError as exc:
            raise ValidationError(f"certificate does not commit this header: {exc}", field=f + ".certificate",
                                  reason="bad_certificate") from None
        trusted, last = announced, h.height
    if header.validators_hash != trusted.hash:
        raise ValidationError("header names another validator set than genesis and its certified changes", field="header.validators_hash",
                              reason="wrong_validators")
    try:
        proof.certificate.verify(trusted, genesis.chain_id, height=proof.height, block_hash=header.hash)
    except ProtocolError as exc:
        raise ValidationError(f"certificate does not commit this header: {exc}", field="certificate", reason="bad_certificate") from None
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
    member = next((m for m in genesis.members if m.branch_id == record.branch_id), None)
    if member is None:  # admitted by governance: its key is in the state, which this proof does not carry
        raise ValidationError("record's branch is not a genesis member (a member admitted later cannot be proven "
                              "from genesis alone yet)", field="record.branch_id", reason="not_member")
    try:
        record.verify(member.public_key)
    except SignatureError:
        raise ValidationError("record signature does not verify", field="record.signature", reason="bad_signature") from None
    return record
