"""Vote gossip without storms: tell peers what you hold, send them what they lack.

Gossip is lossy, and Tendermint is live only if correct validators eventually
see each other's votes, so a validator whose height makes no progress must
help its peers catch up. Re-sending every vote it holds to every peer would
cost each node 2·N·(N−1) messages a second — at ten validators on two cores
that took more CPU than there was, and the network never committed (a vote
storm). Instead a stuck validator sends each peer one small
:class:`RoundSummary` — its height, round and step, and for the rounds that
matter which validators' prevotes and precommits it holds and whether it holds
the round's proposal — and the peer answers with exactly the proposal and
votes it holds that the summary lacks (:func:`missing_for`). A bit cannot say
which of a validator's votes a peer holds, and a validator that voted twice
can leave a peer one vote short of a quorum, so each round also names the
value the sender holds a 2/3+ quorum of prevotes (its polka) and precommits
for: a peer holding a quorum the summary lacks sends the whole quorum. A peer one height
behind gets the precommits that decided that height. (CometBFT's peer round
state and ``HasVote``/``VoteSetBits`` do the same job, in
``consensus/reactor.go``.)

Pure: summaries are built from and answered against a
:class:`ConsensusState`; the node and the simulator share this code. Bitmaps
index validators in :class:`ValidatorSet` order (ascending branch id): bit
``i`` of byte ``i // 8`` (least significant first) is validator ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..encoding import expect_array, expect_bool, expect_bytes, expect_int, expect_list
from ..errors import DecodeError
from ..validators import MAX_VALIDATORS, ValidatorSet
from ..votes import MAX_HEIGHT, MAX_ROUND, PRECOMMIT, PREVOTE, Proposal, Vote
from .state_machine import ConsensusState

MAX_SUMMARY_ROUNDS = 6
SUMMARY_FANOUT = 3  # peers a stuck validator sends its summary to, picked anew each time


@dataclass(frozen=True, slots=True)
class RoundVotes:
    """What the sender holds for one round: who it holds a vote from, and for which
    value (if any) it holds more than 2/3 of the power — its polka and its decision."""

    round: int
    prevotes: bytes  # bitmap over the validator set
    precommits: bytes
    proposal: bool
    prevote_quorum: bytes | None = None  # the value with 2/3+ prevotes (b"" = nil), or None
    precommit_quorum: bytes | None = None

    def to_array(self) -> list:
        return [self.round, self.prevotes, self.precommits, self.proposal, self.prevote_quorum, self.precommit_quorum]

    @classmethod
    def from_array(cls, value: object, field: str) -> "RoundVotes":
        r, pv, pc, p, pq, cq = expect_array(value, 6, field)
        size = (MAX_VALIDATORS + 7) // 8
        return cls(expect_int(r, f"{field}.round", hi=MAX_ROUND), expect_bytes(pv, f"{field}.prevotes", max_len=size),
                   expect_bytes(pc, f"{field}.precommits", max_len=size), expect_bool(p, f"{field}.proposal"),
                   _quorum(pq, f"{field}.prevote_quorum"), _quorum(cq, f"{field}.precommit_quorum"))


def _quorum(value: object, field: str) -> bytes | None:
    if value is None:
        return None
    value = expect_bytes(value, field, max_len=32)
    if len(value) not in (0, 32):
        raise DecodeError("must be nil, empty (the nil value) or a 32-byte hash", field=field, reason="size")
    return value


@dataclass(frozen=True, slots=True)
class RoundSummary:
    """A validator's position and, for the rounds that matter, what it holds."""

    height: int
    round: int
    step: int
    rounds: tuple[RoundVotes, ...]

    def to_array(self) -> list:
        return [self.height, self.round, self.step, [r.to_array() for r in self.rounds]]

    @classmethod
    def from_array(cls, value: object, field: str = "summary") -> "RoundSummary":
        h, r, s, rounds = expect_array(value, 4, field)
        items = expect_list(rounds, f"{field}.rounds", max_len=MAX_SUMMARY_ROUNDS)
        return cls(expect_int(h, f"{field}.height", lo=1, hi=MAX_HEIGHT), expect_int(r, f"{field}.round", hi=MAX_ROUND),
                   expect_int(s, f"{field}.step", hi=4),
                   tuple(RoundVotes.from_array(x, f"{field}.rounds[{i}]") for i, x in enumerate(items)))

    def votes(self, round: int) -> RoundVotes | None:
        return next((r for r in self.rounds if r.round == round), None)


def _bitmap(valset: ValidatorSet, voters: set[bytes]) -> bytes:
    bits = bytearray((len(valset) + 7) // 8)
    for i, v in enumerate(valset):
        if v.branch_id in voters:
            bits[i // 8] |= 1 << (i % 8)
    return bytes(bits)


def _has_bit(bits: bytes, i: int) -> bool:
    return i // 8 < len(bits) and bool(bits[i // 8] >> (i % 8) & 1)


def _interesting_rounds(cs: ConsensusState) -> list[int]:
    """The current round and the one before it, the valid and locked rounds, and the
    proof-of-lock rounds of proposals held: where a peer may need votes."""
    rounds = {cs.round, cs.round - 1, cs.valid_round, cs.locked_round}
    rounds |= {p.pol_round for p in cs.proposals.values() if p.pol_round >= 0}
    return sorted(r for r in rounds if r >= 0)[-MAX_SUMMARY_ROUNDS:]


def _quorum_value(cs: ConsensusState, r: int, vote_type: int) -> bytes | None:
    for value in {v.block_hash for v in cs.votes.votes_in(r, vote_type)}:
        if cs.votes.two_thirds_for(r, vote_type, value):
            return value
    return None


def summarize(cs: ConsensusState) -> RoundSummary | None:
    """This validator's summary for its peers (None before its first height)."""
    if cs.votes is None or cs.valset is None:
        return None
    rounds = []
    for r in _interesting_rounds(cs):
        pv = {v.validator for v in cs.votes.votes_in(r, PREVOTE)}
        pc = {v.validator for v in cs.votes.votes_in(r, PRECOMMIT)}
        rounds.append(RoundVotes(r, _bitmap(cs.valset, pv), _bitmap(cs.valset, pc), r in cs.proposals,
                                 _quorum_value(cs, r, PREVOTE), _quorum_value(cs, r, PRECOMMIT)))
    return RoundSummary(cs.height, cs.round, int(cs.step), tuple(rounds))


def answer_limit(valset: ValidatorSet) -> int:
    """Most messages in one answer: two rounds' worth of votes and proposals."""
    return 4 * len(valset) + 4


def missing_for(cs: ConsensusState, peer: RoundSummary, *, limit: int) -> list[Vote | Proposal]:
    """What ``cs`` holds that the peer's summary lacks, latest rounds first, at most ``limit`` messages:
    for a peer at our height, proposals and votes of its rounds and ours; for a
    peer one height behind, the precommits that decided that height."""
    if cs.votes is None or cs.valset is None:
        return []
    out: list[Vote | Proposal] = []
    if peer.height == cs.height - 1 and cs.last_commit is not None and cs.last_commit.height == peer.height:
        valset, votes = cs.last_commit_votes()
        held = peer.votes(cs.last_commit.round)
        index = {v.branch_id: i for i, v in enumerate(valset or cs.valset)}
        for vote in votes:
            if held is None or not _has_bit(held.precommits, index[vote.validator]):
                out.append(vote)
        return out[:limit]
    if peer.height != cs.height:
        return []
    index = {v.branch_id: i for i, v in enumerate(cs.valset)}
    rounds = {peer.round, peer.round - 1} | {r.round for r in peer.rounds} | set(_interesting_rounds(cs))
    for r in sorted((x for x in rounds if x >= 0), reverse=True):  # the latest first: a peer behind needs them to move on
        held = peer.votes(r)
        proposal = cs.proposals.get(r)
        if proposal is not None and (held is None or not held.proposal):
            out.append(proposal)
        for vote_type in (PREVOTE, PRECOMMIT):
            bits = None if held is None else (held.prevotes if vote_type == PREVOTE else held.precommits)
            theirs = None if held is None else (held.prevote_quorum if vote_type == PREVOTE else held.precommit_quorum)
            ours = _quorum_value(cs, r, vote_type)
            # A bit says "holds a vote of that validator", not which: a validator that voted
            # twice can leave the peer one short of a quorum we hold. Then send the quorum whole.
            whole = ours if ours is not None and theirs != ours else None
            for vote in cs.votes.votes_in(r, vote_type):
                if bits is None or not _has_bit(bits, index[vote.validator]) or vote.block_hash == whole:
                    out.append(vote)
        if len(out) >= limit:
            break
    return out[:limit]
