"""Outputs of :meth:`ConsensusState.apply`: what the node must do, and what it
must feed back when done (malachite's "resume with"). Frozen, slotted.

Actions are returned in order and must be carried out in order. Signed
messages carry the ``signer_state`` to persist (atomically, fsynced) *before*
the message leaves the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..votes import CommitCertificate, DuplicateProposalEvidence, DuplicateVoteEvidence, Proposal, Vote
from .signer import SignerState
from .steps import Step


@dataclass(frozen=True, slots=True)
class ProposeBlock:
    """We are the proposer and have no valid value: build a block for
    (height, round) from the mempool (getValue()). Feed back
    ``BlockBuilt(height, round, block_hash, now)``. If never fed back, the
    propose timeout makes us prevote nil."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class BroadcastProposal:
    """Persist ``signer_state`` (fsync), then gossip ``proposal`` and its block,
    and after it, to the same peers, ``pol_votes``. Nothing to feed back: the
    state machine already counted its own message. The gossip layer should
    re-send it while the round makes no progress.

    ``pol_votes`` (empty unless ``proposal.pol_round`` ≥ 0) are the prevotes we
    hold for the proposal's value in ``pol_round`` — more than 2/3 of the power,
    its proof of lock (an equivocator's vote for the value included). A peer may
    prevote the value only once it holds them (L28); one that missed a single one
    of them, such as an equivocator's vote sent only to some peers, would
    otherwise prevote nil and the round would be lost."""

    proposal: Proposal
    signer_state: SignerState
    pol_votes: tuple[Vote, ...] = ()


@dataclass(frozen=True, slots=True)
class BroadcastVote:
    """Persist ``signer_state`` (fsync), then gossip ``vote``. Nothing to feed
    back (already counted). Re-send while the round makes no progress."""

    vote: Vote
    signer_state: SignerState


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """At ``deadline_ms`` feed ``TimeoutFired(height, round, step, now)``.
    Stale timeouts are ignored, so never cancelling them is fine."""

    height: int
    round: int
    step: Step
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class RequestBlock:
    """We need valid(v) for ``block_hash`` at ``height``: fetch the block if
    missing, check it, then feed ``BlockReceived(block_hash, valid, now)``."""

    height: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """``block_hash`` is decided at ``height`` (final). Store block,
    ``certificate`` and the new ledger state in one transaction, then feed
    ``StartHeight(height + 1, next_valset, now)``."""

    height: int
    round: int
    block_hash: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    """A validator equivocated: keep ``evidence`` for inclusion in a block.
    Emitted once per (validator, height, round, vote type), and once per
    (proposer, height, round) for conflicting proposals."""

    evidence: DuplicateVoteEvidence | DuplicateProposalEvidence


@dataclass(frozen=True, slots=True)
class RejectedInput:
    """An input was dropped without changing state; ``reason`` is a stable
    slug (also counted in ``ConsensusState.rejected``). The node may penalise
    the peer that sent it."""

    reason: str


Action = (
    ProposeBlock
    | BroadcastProposal
    | BroadcastVote
    | ScheduleTimeout
    | RequestBlock
    | CommitBlock
    | RecordEvidence
    | RejectedInput
)
