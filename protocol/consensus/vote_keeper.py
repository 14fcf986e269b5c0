"""Votes of one height, counted by voting power.

Per (round, type) it keeps each validator's first vote and the power behind
every value (a 32-byte block hash, or NIL). A second, *different* vote from the
same validator for the same (round, type) is equivocation: it is not counted
(each validator's power counts once per (round, type)) and yields one
:class:`DuplicateVoteEvidence` per (validator, round, type).

Quorums (``ValidatorSet`` integer arithmetic):
* 2/3+ for a value v (L28, L36, L44, L49), 2/3+ for anything (L34, L47);
* 1/3+ of power voting (any type) in a round above ours (L55).

Raises nothing: callers (the state machine) check membership and shape first.
"""

from __future__ import annotations

from enum import Enum

from ..validators import ValidatorSet
from ..votes import NIL, PRECOMMIT, DuplicateVoteEvidence, Vote


class AddResult(Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"


class VoteKeeper:
    __slots__ = (
        "valset",
        "height",
        "_votes",
        "_power",
        "_any",
        "_round_voters",
        "_round_power",
        "precommit_quorums",
        "_one_third_rounds",
        "_evidence_keys",
    )

    def __init__(self, valset: ValidatorSet, height: int):
        self.valset = valset
        self.height = height
        self._votes: dict[tuple[int, int], dict[bytes, Vote]] = {}
        self._power: dict[tuple[int, int], dict[bytes, int]] = {}
        self._any: dict[tuple[int, int], int] = {}
        self._round_voters: dict[int, set[bytes]] = {}
        self._round_power: dict[int, int] = {}
        #: (round, value) pairs that reached 2/3+ precommits, in the order they did (L49)
        self.precommit_quorums: list[tuple[int, bytes]] = []
        self._one_third_rounds: list[int] = []
        self._evidence_keys: set[tuple[bytes, int, int]] = set()

    # Quorum predicates; one place so the arithmetic is ValidatorSet's.
    def _two_thirds(self, power: int) -> bool:
        return self.valset.has_two_thirds(power)

    def _one_third(self, power: int) -> bool:
        return self.valset.has_one_third(power)

    def add(self, vote: Vote) -> tuple[AddResult, DuplicateVoteEvidence | None]:
        """Count ``vote`` (caller checked height, membership and shape)."""
        key = (vote.round, vote.type)
        by_validator = self._votes.get(key)
        if by_validator is None:
            by_validator = self._votes[key] = {}
            self._power[key] = {}
            self._any[key] = 0
        old = by_validator.get(vote.validator)
        if old is not None:
            if old.block_hash == vote.block_hash:
                return AddResult.DUPLICATE, None
            ekey = (vote.validator, vote.round, vote.type)
            if ekey in self._evidence_keys:
                return AddResult.EQUIVOCATION, None
            self._evidence_keys.add(ekey)
            return AddResult.EQUIVOCATION, DuplicateVoteEvidence.from_votes(old, vote)
        power = self.valset.power_of(vote.validator)
        by_validator[vote.validator] = vote
        per_value = self._power[key]
        before = per_value.get(vote.block_hash, 0)
        per_value[vote.block_hash] = before + power
        self._any[key] += power
        voters = self._round_voters.get(vote.round)
        if voters is None:
            voters = self._round_voters[vote.round] = set()
            self._round_power[vote.round] = 0
        if vote.validator not in voters:
            voters.add(vote.validator)
            round_before = self._round_power[vote.round]
            self._round_power[vote.round] = round_before + power
            if not self._one_third(round_before) and self._one_third(round_before + power):
                self._one_third_rounds.append(vote.round)
        if (
            vote.type == PRECOMMIT
            and vote.block_hash != NIL
            and not self._two_thirds(before)
            and self._two_thirds(before + power)
        ):
            self.precommit_quorums.append((vote.round, vote.block_hash))
        return AddResult.ADDED, None

    def power_for(self, round: int, vote_type: int, value: bytes) -> int:
        per_value = self._power.get((round, vote_type))
        return per_value.get(value, 0) if per_value else 0

    def two_thirds_for(self, round: int, vote_type: int, value: bytes) -> bool:
        """2f+1 <type, h, round, value> (value may be NIL)."""
        return self._two_thirds(self.power_for(round, vote_type, value))

    def two_thirds_any(self, round: int, vote_type: int) -> bool:
        """2f+1 <type, h, round, *>."""
        return self._two_thirds(self._any.get((round, vote_type), 0))

    def highest_skip_round(self, current_round: int) -> int | None:
        """Highest round > ``current_round`` where f+1 power voted (L55)."""
        best = None
        for rnd in self._one_third_rounds:
            if rnd > current_round and (best is None or rnd > best):
                best = rnd
        return best

    def votes_for(self, round: int, vote_type: int, value: bytes) -> list[Vote]:
        by_validator = self._votes.get((round, vote_type), {})
        return [v for v in by_validator.values() if v.block_hash == value]

    def vote_of(self, round: int, vote_type: int, validator: bytes) -> Vote | None:
        by_validator = self._votes.get((round, vote_type))
        return by_validator.get(validator) if by_validator else None
