"""Signed records: the envelope every branch publication travels in.

Wire form (docs/PROTOCOL.md §Records)::

    [version=1, kind, chain_id, branch_id, seq, time_ms, body, signature]

The signature covers ``encode(first seven fields)`` in domain ``record``.
A record's id is ``sha256(encoded record)``. Its *subject* is derived from kind
and body ("profile", "service/<id>", "status/<id>"); ``seq`` counts from 1 per
(branch, subject) and each accepted record must carry exactly last + 1, so
replays and reordering are rejected (checked against state, protocol/state.py).

This module does the stateless checks: shape, schema, size, chain id, and —
given the branch's public key — the signature.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .encoding import decode, encode, expect_array, expect_bytes, expect_int, expect_str
from .errors import DecodeError, ValidationError
from .hashing import sha256
from .keys import BRANCH_ID_SIZE, SIGNATURE_SIZE, Domain, PrivateKey, PublicKey
from . import field_types, pii, pii_tables
from .schema import BODY_TYPES, MAX_TIME_MS, Body, BranchProfile, EquipmentStatus, ServiceOffer, ServiceStatus, ServiceWithdraw, plain, screen_body

RECORD_VERSION = 1
MAX_RECORD_BYTES = 8192
MAX_SEQ = 2**53
_UINT_SIZE = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}  # msgpack's uint 8/16/32/64 headers: bytes after them


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    chain_id: str
    branch_id: bytes
    seq: int
    time_ms: int
    body: Body
    signature: bytes
    raw: bytes  # the canonical encoding, signature included
    hash: bytes  # sha256(raw): the record id
    # phone-like numbers its texts mention, (field, digits): the branch must have declared
    # each public in its profile (§5.3, checked against state by the ledger, §8)
    numbers: tuple[tuple[str, str], ...] = ()

    @property
    def subject(self) -> str:
        return self.body.subject()

    @staticmethod
    def unsigned_array(kind: str, chain_id: str, branch_id: bytes, seq: int, time_ms: int, body: Body) -> list:
        return [RECORD_VERSION, kind, chain_id, branch_id, seq, time_ms, body.to_array()]

    def body_bytes(self) -> bytes:
        """The body's encoding as ``raw`` holds it: the same bytes as
        ``encode(self.body.to_array())``, since ``raw`` is canonical (§4), without encoding
        the body again (the store keeps it so in the state's rows)."""
        raw = self.raw
        i = 2  # the 8-array's header, and the version: a positive fixint
        for _ in range(2):  # kind and chain id: a fixstr, or a str8 (32 to 64 bytes)
            head = raw[i]
            i += 1 + (head & 0x1F) if head < 0xC0 else 2 + raw[i + 1]
        i += 2 + BRANCH_ID_SIZE  # the branch id: a bin8
        for _ in range(2):  # seq and time: a positive fixint, or a uint 8, 16, 32 or 64
            head = raw[i]
            i += 1 if head < 0x80 else 1 + _UINT_SIZE[head]
        return raw[i:-2 - SIGNATURE_SIZE]  # the signature: a bin8 of 64 bytes

    def payload(self) -> bytes:
        """The signed bytes: the canonical 7-element array. ``raw`` is canonical, so it is
        ``raw`` with the 8-array header (0x98) made a 7-array header (0x97) and the
        trailing signature (bin8: c4 40 + 64 bytes) cut off."""
        return b"\x97" + self.raw[1:-66]

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, seq: int, time_ms: int, body: Body, *,
               branch_id: bytes | None = None) -> "Record":
        """Sign ``body`` as the branch of ``key`` (or as ``branch_id``, whose key ``key`` is
        after a rotation, §15). Re-validates the body so we never sign junk."""
        arr = cls.unsigned_array(body.KIND, chain_id, branch_id or key.branch_id, seq, time_ms, body)
        signature = key.sign(Domain.RECORD, chain_id, encode(arr))
        return cls.decode(encode(arr + [signature]), chain_id=chain_id)

    @classmethod
    def decode(cls, data: bytes, *, chain_id: str | None = None, digest: bytes | None = None) -> "Record":
        """Parse, schema-check and screen a record for personal data (§5.1-5.8).

        Does not check the signature (see verify) nor anything that needs state.
        Raises DecodeError or ValidationError naming the field. ``digest`` is
        ``sha256(data)`` when the caller has already computed it (its record id).
        """
        if _decode_c is not None:  # speed only: the commonest records, decoded in C (below)
            decoded = _decode_c(data, chain_id, digest)
            if decoded is not None:
                record, is_plain = decoded  # plain(record.body.screened_text()), or None: not answered in C
                if is_plain is None:
                    is_plain = plain(record.body.screened_text())
                return record if is_plain else record._screened()
        value = decode(data, max_size=MAX_RECORD_BYTES, check_types=False)  # every leaf is typed below
        version, kind, cid, branch_id, seq, time_ms, body, signature = expect_array(value, 8, "record")
        if version != RECORD_VERSION or type(version) is not int:
            raise DecodeError(f"unsupported record version {version!r}", field="record.version", reason="version")
        # Fast path (speed only): an envelope whose every field passes the checks below goes
        # straight to its body; anything else takes the checked path for its precise error.
        body_type = BODY_TYPES.get(kind) if type(kind) is str else None
        if (
            body_type is not None and type(cid) is str and len(cid) <= 64 and (chain_id is None or cid == chain_id)
            and type(branch_id) is bytes and len(branch_id) == BRANCH_ID_SIZE and type(seq) is int and 1 <= seq <= MAX_SEQ
            and type(time_ms) is int and 0 <= time_ms <= MAX_TIME_MS and type(signature) is bytes
            and len(signature) == SIGNATURE_SIZE
        ):
            body = body_type._parse(body, "record.body")
            numbers = () if plain(body.screened_text()) else screen_body(body, "record.body")
            return cls(body_type.KIND, cid, branch_id, seq, time_ms, body, signature, bytes(data), digest or sha256(data), numbers)
        kind = expect_str(kind, "record.kind", max_len=32)
        body_type = BODY_TYPES.get(kind)
        if body_type is None:
            raise ValidationError(f"unknown record kind {kind!r}", field="record.kind", reason="kind")
        kind = body_type.KIND  # one string object per kind, however many records hold it
        cid = expect_str(cid, "record.chain_id", max_len=64)
        if chain_id is not None and cid != chain_id:
            raise ValidationError(f"record is for chain {cid!r}, not {chain_id!r}", field="record.chain_id", reason="chain_id")
        branch_id = expect_bytes(branch_id, "record.branch_id", size=BRANCH_ID_SIZE)
        seq = expect_int(seq, "record.seq", lo=1, hi=MAX_SEQ)
        time_ms = expect_int(time_ms, "record.time_ms", hi=MAX_TIME_MS)
        body = body_type.from_array(body, "record.body", screen=False)
        signature = expect_bytes(signature, "record.signature", size=SIGNATURE_SIZE)
        numbers = screen_body(body, "record.body")
        return cls(kind, cid, branch_id, seq, time_ms, body, signature, bytes(data), digest or sha256(data), numbers)

    def _screened(self) -> "Record":
        """This record after the full personal-data screen of its body (§5.3), for a body
        whose fast pre-screen was not conclusive: raises, or notes the numbers it mentions."""
        numbers = screen_body(self.body, "record.body")
        return dataclasses.replace(self, numbers=numbers) if numbers else self

    def verify(self, public_key: PublicKey) -> None:
        """Raise ValidationError unless signed by ``public_key``, the branch's key in force
        (the caller looks it up: after a rotation it no longer derives the branch id)."""
        public_key.verify(self.signature, Domain.RECORD, self.chain_id, self.payload())

    def signature_check(self, public_key: PublicKey) -> tuple[PublicKey, bytes, str, str, bytes]:
        """:meth:`verify`'s check as keys.verify_many takes it (to check many at once)."""
        return public_key, self.signature, Domain.RECORD, self.chain_id, self.payload()

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly view (for APIs and CLIs; not a wire format)."""
        from .views import body_to_json

        return {
            "hash": self.hash.hex(),
            "kind": self.kind,
            "chain_id": self.chain_id,
            "branch_id": self.branch_id.hex(),
            "subject": self.subject,
            "seq": self.seq,
            "time_ms": self.time_ms,
            "body": body_to_json(self.body),
            "signature": self.signature.hex(),
        }


def _c_decoder():
    """protocol/_recordfast.c's ``decode_screened``, set up with the classes and vocabularies it
    builds and checks against, or None where the extension was not built (then every
    record is decoded in Python, to the same objects; tests/test_recordfast.py)."""
    try:
        from . import _recordfast
    except ImportError:
        return None
    classes = (Record, ServiceOffer, ServiceStatus, EquipmentStatus, ServiceWithdraw, field_types.Fee,
               field_types.OpeningHours, BranchProfile)
    _recordfast.setup(
        tuple((cls, tuple(f.name for f in dataclasses.fields(cls))) for cls in classes),
        (field_types.CATEGORIES, field_types.CHANNELS, field_types.ACCESSIBILITY, field_types.OWNERSHIP,
         field_types.STATUSES, field_types.FEE_BASES),
        tuple(sorted(field_types.RISK_RATED_CATEGORIES)),
        (ServiceOffer.KIND, ServiceStatus.KIND, ServiceWithdraw.KIND, BranchProfile.KIND),
        pii_tables.REFUSED_RANGES,
        pii.is_mobile,
        None if pii._C is None else pii._C.plain_c,  # the ASCII pre-screen, where _piiplain was built
    )
    return _recordfast.decode_screened


_decode_c = _c_decoder()
