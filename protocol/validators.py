"""Validator sets: who votes, with how much power.

A validator set is ordered by branch id. Its hash covers (branch id, public key,
power) of every member; names are display metadata and are not hashed.
Quorum arithmetic is integer-only: ``power * 3 > total * 2`` is "more than two
thirds", ``power * 3 > total`` is "more than one third".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .encoding import encode
from .errors import ValidationError
from .hashing import sha256
from .keys import PublicKey, branch_id_of

MAX_VALIDATORS = 256
MAX_POWER = 2**40


@dataclass(frozen=True, slots=True)
class Validator:
    branch_id: bytes
    public_key: PublicKey
    power: int
    name: str = ""

    def to_array(self) -> list:
        return [self.branch_id, self.public_key.raw, self.power]


class ValidatorSet:
    """An immutable, ordered set of validators with quorum helpers."""

    __slots__ = ("validators", "_by_id", "total_power", "hash")

    def __init__(self, validators: Iterable[Validator], *, derived_ids: bool = True):
        """``derived_ids``: every branch id must derive from its key (§3), as in genesis;
        governance's sets (§15) may hold rotated keys, whose branch ids do not."""
        vals = sorted(validators, key=lambda v: v.branch_id)
        if not vals:
            raise ValidationError("validator set is empty", field="validators", reason="empty")
        if len(vals) > MAX_VALIDATORS:
            raise ValidationError(f"more than {MAX_VALIDATORS} validators", field="validators", reason="too_many")
        by_id: dict[bytes, Validator] = {}
        for i, v in enumerate(vals):
            field = f"validators[{i}]"
            if derived_ids and v.branch_id != branch_id_of(v.public_key.raw):
                raise ValidationError("branch id does not match public key", field=field, reason="branch_id")
            if type(v.power) is not int or not 1 <= v.power <= MAX_POWER:
                raise ValidationError(f"power must be in [1, {MAX_POWER}]", field=field, reason="power")
            if v.branch_id in by_id:
                raise ValidationError("duplicate validator", field=field, reason="duplicate")
            by_id[v.branch_id] = v
        self.validators: tuple[Validator, ...] = tuple(vals)
        self._by_id = by_id
        self.total_power = sum(v.power for v in vals)
        self.hash = sha256(encode([v.to_array() for v in vals]))

    def __len__(self) -> int:
        return len(self.validators)

    def __iter__(self):
        return iter(self.validators)

    def __contains__(self, branch_id: object) -> bool:
        return branch_id in self._by_id

    def get(self, branch_id: bytes) -> Validator | None:
        return self._by_id.get(branch_id)

    def power_of(self, branch_id: bytes) -> int:
        v = self._by_id.get(branch_id)
        return v.power if v else 0

    def has_two_thirds(self, power: int) -> bool:
        """More than two thirds of total power."""
        return power * 3 > self.total_power * 2

    def has_one_third(self, power: int) -> bool:
        """More than one third of total power (at least one honest member)."""
        return power * 3 > self.total_power

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValidatorSet) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"ValidatorSet(n={len(self)}, total_power={self.total_power}, hash={self.hash.hex()[:12]})"
