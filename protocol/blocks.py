"""Blocks: header, body and their stateless checks (docs/PROTOCOL.md §Blocks).

Wire forms::

    header = [version=1, chain_id, height, round, time_ms, prev_hash,
              records_root, evidence_root, state_root,
              validators_hash, next_validators_hash, proposer_id]
    block  = [header, [record bytes, ...], [evidence, ...]]

* block hash    = sha256(encode(header))
* records_root  = RFC 6962 root over the records' canonical bytes
* evidence_root = RFC 6962 root over each evidence's canonical encoding
* prev_hash     = hash of block height-1; for height 1, the genesis hash
* state_root    = the ledger state root *after* applying this block

Checks that need the chain (height, prev hash, state root, who may publish)
live in protocol/ledger.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any, Sequence

from . import merkle
from .encoding import decode, encode, expect_array, expect_bytes, expect_int, expect_list, expect_str
from .errors import DecodeError, ProtocolError, ValidationError
from .hashing import HASH_SIZE, sha256
from .keys import BRANCH_ID_SIZE
from .records import Record
from .schema import MAX_TIME_MS
from .votes import MAX_HEIGHT, MAX_ROUND, Evidence, decode_evidence

BLOCK_VERSION = 1
HEADER_FIELDS = (
    "version", "chain_id", "height", "round", "time_ms", "prev_hash", "records_root",
    "evidence_root", "state_root", "validators_hash", "next_validators_hash", "proposer",
)


@dataclass(frozen=True, slots=True)
class Header:
    chain_id: str
    height: int
    round: int
    time_ms: int
    prev_hash: bytes
    records_root: bytes
    evidence_root: bytes
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer: bytes
    _hash: bytes | None = dataclass_field(default=None, init=False, repr=False, compare=False)  # computed once, on first use

    def to_array(self) -> list:
        return [
            BLOCK_VERSION, self.chain_id, self.height, self.round, self.time_ms, self.prev_hash,
            self.records_root, self.evidence_root, self.state_root, self.validators_hash,
            self.next_validators_hash, self.proposer,
        ]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @property
    def hash(self) -> bytes:
        digest = self._hash
        if digest is None:
            digest = sha256(self.encode())
            object.__setattr__(self, "_hash", digest)  # a cache of immutable fields, not a change
        return digest

    @classmethod
    def from_array(cls, value: Any, field: str = "header") -> "Header":
        # Fast path (speed only): a header whose every field passes the checks below, without
        # building eleven field names; anything else takes the checked path for its precise error.
        if type(value) is list and len(value) == 12:
            version, cid, height, rnd, time_ms, h5, h6, h7, h8, h9, h10, proposer = value
            if (
                version == BLOCK_VERSION and type(version) is int and type(cid) is str and 1 <= len(cid) <= 50
                and type(height) is int and 1 <= height <= MAX_HEIGHT and type(rnd) is int and 0 <= rnd <= MAX_ROUND
                and type(time_ms) is int and 0 <= time_ms <= MAX_TIME_MS
                and type(h5) is bytes and len(h5) == HASH_SIZE and type(h6) is bytes and len(h6) == HASH_SIZE
                and type(h7) is bytes and len(h7) == HASH_SIZE and type(h8) is bytes and len(h8) == HASH_SIZE
                and type(h9) is bytes and len(h9) == HASH_SIZE and type(h10) is bytes and len(h10) == HASH_SIZE
                and type(proposer) is bytes and len(proposer) == BRANCH_ID_SIZE
            ):
                return cls(cid, height, rnd, time_ms, h5, h6, h7, h8, h9, h10, proposer)
        return cls._from_array_checked(value, field)

    @classmethod
    def _from_array_checked(cls, value: Any, field: str) -> "Header":
        arr = expect_array(value, len(HEADER_FIELDS), field)
        if arr[0] != BLOCK_VERSION or type(arr[0]) is not int:
            raise DecodeError(f"unsupported block version {arr[0]!r}", field=f"{field}.version", reason="version")

        def h(i: int) -> bytes:
            return expect_bytes(arr[i], f"{field}.{HEADER_FIELDS[i]}", size=HASH_SIZE)

        return cls(
            expect_str(arr[1], f"{field}.chain_id", min_len=1, max_len=50),
            expect_int(arr[2], f"{field}.height", lo=1, hi=MAX_HEIGHT),
            expect_int(arr[3], f"{field}.round", hi=MAX_ROUND),
            expect_int(arr[4], f"{field}.time_ms", hi=MAX_TIME_MS),
            h(5), h(6), h(7), h(8), h(9), h(10),
            expect_bytes(arr[11], f"{field}.proposer", size=BRANCH_ID_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> "Header":
        return cls.from_array(decode(data, max_size=1024))

    def to_json(self) -> dict[str, Any]:
        return {name: (v.hex() if isinstance(v, bytes) else v) for name, v in zip(HEADER_FIELDS, self.to_array())} | {
            "hash": self.hash.hex()
        }


def evidence_root(evidence: Sequence[Evidence]) -> bytes:
    return merkle.root([e.encode() for e in evidence])


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    records: tuple[Record, ...]
    evidence: tuple[Evidence, ...] = ()
    _encoded: bytes | None = dataclass_field(default=None, init=False, repr=False, compare=False)  # once known
    _roots_ok: bool = dataclass_field(default=False, init=False, repr=False, compare=False)  # check_roots passed

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def to_array(self) -> list:
        return [self.header.to_array(), [r.raw for r in self.records], [e.to_array() for e in self.evidence]]

    def encode(self) -> bytes:
        """The canonical bytes (those it was decoded from, which decoding checked are canonical)."""
        data = self._encoded
        if data is None:
            data = encode(self.to_array())
            object.__setattr__(self, "_encoded", data)  # a cache of immutable fields, not a change
        return data

    def record_leaf_hashes(self) -> list[bytes]:
        return [merkle.leaf_hash(r.raw) for r in self.records]

    def prove_record(self, index: int) -> merkle.InclusionProof:
        return merkle.prove(self.record_leaf_hashes(), index)

    @classmethod
    def decode(cls, data: bytes, *, max_bytes: int, max_records: int, max_evidence: int = 64) -> "Block":
        """Parse a block and check what needs no chain state: shape, roots, limits.

        Raises DecodeError/ValidationError naming the field (``records[17].body.title``).
        """
        # check_types=False: the typed decoders below check the type of every leaf
        header_arr, records_arr, evidence_arr = expect_array(decode(data, max_size=max_bytes, check_types=False), 3, "block")
        header = Header.from_array(header_arr)
        raw_records = expect_list(records_arr, "block.records", max_len=max_records)
        records = []
        for i, raw in enumerate(raw_records):
            raw = expect_bytes(raw, f"block.records[{i}]")
            try:
                records.append(Record.decode(raw, chain_id=header.chain_id))
            except ProtocolError as exc:
                raise type(exc)(exc.message, field=f"block.records[{i}].{exc.field}", reason=exc.reason) from None
        evidence = tuple(
            decode_evidence(e, f"block.evidence[{i}]")
            for i, e in enumerate(expect_list(evidence_arr, "block.evidence", max_len=max_evidence))
        )
        block = cls(header, tuple(records), evidence)
        block.check_roots()
        object.__setattr__(block, "_encoded", bytes(data))  # decode() checked they are the canonical encoding
        return block

    def check_roots(self) -> None:
        """Raise ValidationError unless the header's roots match the body (checked once:
        decoding checks them, and a block is immutable)."""
        if self._roots_ok:
            return
        if merkle.root_of_hashes(self.record_leaf_hashes()) != self.header.records_root:
            raise ValidationError("records root does not match the records", field="header.records_root", reason="records_root")
        if evidence_root(self.evidence) != self.header.evidence_root:
            raise ValidationError("evidence root does not match the evidence", field="header.evidence_root", reason="evidence_root")
        seen = set()
        for i, r in enumerate(self.records):
            if r.hash in seen:
                raise ValidationError("record appears twice", field=f"block.records[{i}]", reason="duplicate_record")
            seen.add(r.hash)
        object.__setattr__(self, "_roots_ok", True)  # a cache of a check on immutable fields
