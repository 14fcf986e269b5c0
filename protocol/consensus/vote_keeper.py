"""Votes of one height, counted by voting power.

Per (round, type) it keeps each validator's votes and the power behind every
value (a 32-byte block hash, or NIL). A second, *different* vote from the same
validator for the same (round, type) is equivocation and yields one
:class:`DuplicateVoteEvidence` per (validator, round, type).

Counting follows the paper's message semantics: "2f+1 <PREVOTE, h, r, id(v)>"
means senders of *that* message, so an equivocator's power counts once for
each distinct value it signed (at most ``MAX_VALUES_PER_VALIDATOR`` values, the
rest are dropped) and once in "2/3+ for anything". Safety is unaffected (two
2/3+ quorums still share an honest validator); liveness needs it: otherwise
an equivocator's vote for the proof-of-lock value, arriving after its other
vote, could never be counted and a locked honest node could never convince
the others (the simulator found exactly that). CometBFT reaches the same
effect with peer-claimed majorities (``SetPeerMaj23``).

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


MAX_VALUES_PER_VALIDATOR = 4


class VoteKeeper:
    __slots__ = (
        "valset",
        "height",
        "_votes",
        "_extra",
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
        self._votes: dict[tuple[int, int], dict[bytes, Vote]] = {}  # first vote per validator
        self._extra: dict[tuple[int, int, bytes], list[Vote]] = {}  # equivocating votes
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
        power = self.valset.power_of(vote.validator)
        per_value = self._power[key]
        if old is not None:
            if old.block_hash == vote.block_hash:
                return AddResult.DUPLICATE, None
            xkey = (vote.round, vote.type, vote.validator)
            extra = self._extra.setdefault(xkey, [])
            if any(x.block_hash == vote.block_hash for x in extra):
                return AddResult.DUPLICATE, None
            evidence = None
            ekey = (vote.validator, vote.round, vote.type)
            if ekey not in self._evidence_keys:
                self._evidence_keys.add(ekey)
                evidence = DuplicateVoteEvidence.from_votes(old, vote)
            if len(extra) + 1 < MAX_VALUES_PER_VALIDATOR:
                extra.append(vote)
                self._count_value(per_value, vote, power)
            return AddResult.EQUIVOCATION, evidence
        by_validator[vote.validator] = vote
        self._count_value(per_value, vote, power)
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
        return AddResult.ADDED, None

    def _count_value(self, per_value: dict[bytes, int], vote: Vote, power: int) -> None:
        before = per_value.get(vote.block_hash, 0)
        per_value[vote.block_hash] = before + power
        if (
            vote.type == PRECOMMIT
            and vote.block_hash != NIL
            and not self._two_thirds(before)
            and self._two_thirds(before + power)
        ):
            self.precommit_quorums.append((vote.round, vote.block_hash))

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
        """The counted votes for ``value``: one per validator."""
        return [v for v in self.votes_in(round, vote_type) if v.block_hash == value]

    def has_vote(self, vote: Vote) -> bool:
        first = self.vote_of(vote.round, vote.type, vote.validator)
        if first is None:
            return False
        if first.block_hash == vote.block_hash:
            return True
        extra = self._extra.get((vote.round, vote.type, vote.validator), ())
        return any(x.block_hash == vote.block_hash for x in extra)

    def votes_in(self, round: int, vote_type: int) -> list[Vote]:
        """Every counted vote of (round, type) — what a node's gossip relays."""
        by_validator = self._votes.get((round, vote_type))
        if not by_validator:
            return []
        votes = list(by_validator.values())
        if self._extra:
            for (r, t, _), extra in self._extra.items():
                if r == round and t == vote_type:
                    votes.extend(extra)
        return votes

    def vote_of(self, round: int, vote_type: int, validator: bytes) -> Vote | None:
        by_validator = self._votes.get((round, vote_type))
        return by_validator.get(validator) if by_validator else None
