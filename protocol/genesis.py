"""The genesis file: what a network starts from (docs/PROTOCOL.md §Genesis).

JSON, UTF-8::

    {
      "chain_id": "branchnet-demo",                # [a-z0-9][a-z0-9-]{0,49}
      "genesis_time_ms": 1767225600000,
      "validators": [                              # voting branches
        {"name": "...", "public_key": "<64 hex>", "power": 10,
         "branch_id": "<40 hex>"}                  # optional; must match the key
      ],
      "members": [ ... same shape, no power ... ],  # optional non-voting branches
      "params": { "max_block_records": 10000, ... } # optional, see ChainParams
    }

Loading checks everything and raises ValidationError naming the field. The
genesis hash is ``sha256(encode(Genesis.to_array()))`` and is the previous-block
hash of height 1.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any

from .encoding import encode
from .errors import ProtocolError, ValidationError
from .hashing import sha256
from .keys import PublicKey, branch_id_of
from .validators import MAX_POWER, Validator, ValidatorSet

_CHAIN_ID = re.compile(r"[a-z0-9][a-z0-9\-]{0,49}")
MAX_GENESIS_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Chain-wide limits and consensus timing. All integers. The comment after each
    field is its meaning in docs/CLI.md (python -m tools.gen_cli_reference)."""

    max_block_records: int = 10_000  # records per block; governance may lower it, never above genesis
    max_block_bytes: int = 8 << 20  # encoded block size in bytes (8 MiB); governance may lower it
    max_record_bytes: int = 8192  # encoded record size in bytes (at most 8192); governance may lower it
    max_block_evidence: int = 64  # evidence items per block; governance may lower it
    timeout_propose_ms: int = 1000  # consensus: how long to wait for a proposal in round 0
    timeout_prevote_ms: int = 500  # consensus: how long to wait for more prevotes after 2/3 of any
    timeout_precommit_ms: int = 500  # consensus: how long to wait for more precommits after 2/3 of any
    timeout_delta_ms: int = 500  # consensus: each timeout grows by this much per round
    max_clock_drift_ms: int = 10_000  # how far ahead of a validator's clock a block time may be

    def to_array(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def from_json(cls, value: Any) -> "ChainParams":
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ValidationError("must be an object", field="params", reason="type")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValidationError(f"unknown parameter(s) {', '.join(sorted(unknown))}", field="params", reason="unknown")
        for name, v in value.items():
            if type(v) is not int or not 1 <= v <= 2**40:
                raise ValidationError("must be a positive integer", field=f"params.{name}", reason="range")
        params = cls(**value)
        if params.max_record_bytes > 8192:
            raise ValidationError("cannot exceed the protocol limit of 8192", field="params.max_record_bytes", reason="range")
        return params


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    public_key: PublicKey
    power: int  # 0 for non-voting members

    @property
    def branch_id(self) -> bytes:
        return self.public_key.branch_id


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    validators: ValidatorSet
    members: tuple[Member, ...]  # every branch allowed to publish, validators included
    params: ChainParams

    def to_array(self) -> list:
        return [
            self.chain_id,
            self.genesis_time_ms,
            [[m.name, m.public_key.raw, m.power] for m in self.members],
            self.params.to_array(),
        ]

    @property
    def hash(self) -> bytes:
        return sha256(encode(self.to_array()))

    def to_json(self) -> dict[str, Any]:
        def member(m: Member, with_power: bool) -> dict[str, Any]:
            d: dict[str, Any] = {"name": m.name, "branch_id": m.branch_id.hex(), "public_key": m.public_key.hex()}
            if with_power:
                d["power"] = m.power
            return d

        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [member(m, True) for m in self.members if m.power > 0],
            "members": [member(m, False) for m in self.members if m.power == 0],
            "params": {f.name: getattr(self.params, f.name) for f in fields(self.params)},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def loads(cls, data: bytes | str) -> "Genesis":
        if isinstance(data, bytes):
            if len(data) > MAX_GENESIS_BYTES:
                raise ValidationError("genesis file is larger than 1 MiB", field="genesis", reason="oversize")
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("not UTF-8", field="genesis", reason="utf8") from None
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, and ints over the str-conversion limit
            raise ValidationError(f"not valid JSON ({exc})", field="genesis", reason="json") from None
        return cls.from_json(doc)

    @classmethod
    def from_json(cls, doc: Any) -> "Genesis":
        if not isinstance(doc, dict):
            raise ValidationError("must be a JSON object", field="genesis", reason="type")
        unknown = set(doc) - {"chain_id", "genesis_time_ms", "validators", "members", "params"}
        if unknown:
            raise ValidationError(f"unknown field(s) {', '.join(sorted(unknown))}", field="genesis", reason="unknown")
        chain_id = doc.get("chain_id")
        if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
            raise ValidationError("must match [a-z0-9][a-z0-9-]{0,49}", field="chain_id", reason="format")
        gtime = doc.get("genesis_time_ms")
        if type(gtime) is not int or not 0 <= gtime < 2**53:
            raise ValidationError("must be a non-negative integer (ms since epoch)", field="genesis_time_ms", reason="range")
        validators = _members(doc.get("validators"), "validators", voting=True)
        if not validators:
            raise ValidationError("at least one validator is required", field="validators", reason="empty")
        others = _members(doc.get("members", []), "members", voting=False)
        all_members = validators + others
        ids = [m.branch_id for m in all_members]
        if len(set(ids)) != len(ids):
            raise ValidationError("a branch is listed twice", field="members", reason="duplicate")
        names = [m.name for m in all_members]
        if len(set(names)) != len(names):
            raise ValidationError("two branches share a name", field="members", reason="duplicate_name")
        valset = ValidatorSet(Validator(m.branch_id, m.public_key, m.power, m.name) for m in validators)
        return cls(chain_id, gtime, valset, tuple(all_members), ChainParams.from_json(doc.get("params")))


def _members(items: Any, field: str, *, voting: bool) -> list[Member]:
    if not isinstance(items, list):
        raise ValidationError("must be a list", field=field, reason="type")
    if len(items) > 1024:
        raise ValidationError("too many entries", field=field, reason="too_many")
    out = []
    for i, item in enumerate(items):
        f = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise ValidationError("must be an object", field=f, reason="type")
        allowed = {"name", "public_key", "branch_id"} | ({"power"} if voting else set())
        unknown = set(item) - allowed
        if unknown:
            raise ValidationError(f"unknown field(s) {', '.join(sorted(unknown))}", field=f, reason="unknown")
        name = item.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 120:
            raise ValidationError("name must be 1-120 characters", field=f"{f}.name", reason="format")
        try:
            raw = bytes.fromhex(item.get("public_key", ""))
            key = PublicKey(raw)
        except ProtocolError as exc:
            if exc.reason == "bad_key":
                raise ValidationError(exc.message, field=f"{f}.public_key", reason="bad_key") from None
            raise ValidationError("must be 64 hex characters (Ed25519)", field=f"{f}.public_key", reason="format") from None
        except (ValueError, TypeError):
            raise ValidationError("must be 64 hex characters (Ed25519)", field=f"{f}.public_key", reason="format") from None
        if "branch_id" in item and item["branch_id"] != branch_id_of(raw).hex():
            raise ValidationError("does not match the public key", field=f"{f}.branch_id", reason="branch_id")
        power = item.get("power", 0)
        if voting and (type(power) is not int or not 1 <= power <= MAX_POWER):
            raise ValidationError(f"power must be an integer in [1, {MAX_POWER}]", field=f"{f}.power", reason="range")
        out.append(Member(name, key, power if voting else 0))
    return out
