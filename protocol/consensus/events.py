"""Inputs to :meth:`ConsensusState.apply`. Frozen, slotted; every one carries
``now`` (integer milliseconds, virtual or wall-clock — the node passes it in,
the state machine never reads a clock).

Votes and proposals must have had their signatures checked by the node
(:func:`protocol.consensus.check.check_message`) before they are fed here; the
state machine does not verify signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..validators import ValidatorSet
from ..votes import Proposal, Vote
from .steps import Step


@dataclass(frozen=True, slots=True)
class StartHeight:
    """Begin ``height`` with ``valset``. Fed once at boot (last committed + 1)
    and after carrying out every :class:`CommitBlock` (or after block sync)."""

    height: int
    valset: ValidatorSet
    now: int


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    proposal: Proposal
    now: int


@dataclass(frozen=True, slots=True)
class VoteReceived:
    vote: Vote
    now: int


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """The block behind ``block_hash`` is available and the node checked it:
    ``valid`` is the paper's valid(v). Reply to :class:`RequestBlock`."""

    block_hash: bytes
    valid: bool
    now: int


@dataclass(frozen=True, slots=True)
class BlockBuilt:
    """Reply to :class:`ProposeBlock`: the node built (and stored) a block."""

    height: int
    round: int
    block_hash: bytes
    now: int


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A :class:`ScheduleTimeout` deadline passed."""

    height: int
    round: int
    step: Step
    now: int


Event = StartHeight | ProposalReceived | VoteReceived | BlockReceived | BlockBuilt | TimeoutFired
