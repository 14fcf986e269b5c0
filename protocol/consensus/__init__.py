"""Tendermint consensus as a sans-IO state machine.

Drive it like h11: ``actions = state.apply(event)``, carry the actions out in
order, feed back the events they ask for. See :mod:`.state_machine` for the
theory of operation and :mod:`.actions` for what each action requires.
"""

from .actions import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ProposeBlock,
    RecordEvidence,
    RejectedInput,
    RequestBlock,
    ScheduleTimeout,
)
from .check import check_message
from .events import BlockBuilt, BlockReceived, Event, ProposalReceived, StartHeight, TimeoutFired, VoteReceived
from .gate import HeightGate
from .params import ConsensusParams
from .proposer import proposer
from .signer import DoubleSignError, SignerState, check_hrs, sign_proposal, sign_vote
from .state_machine import ConsensusState
from .steps import Step
from .vote_keeper import AddResult, VoteKeeper

__all__ = [
    "Action",
    "AddResult",
    "BlockBuilt",
    "BlockReceived",
    "BroadcastProposal",
    "BroadcastVote",
    "CommitBlock",
    "ConsensusParams",
    "ConsensusState",
    "DoubleSignError",
    "Event",
    "HeightGate",
    "ProposalReceived",
    "ProposeBlock",
    "RecordEvidence",
    "RejectedInput",
    "RequestBlock",
    "ScheduleTimeout",
    "SignerState",
    "StartHeight",
    "Step",
    "TimeoutFired",
    "VoteKeeper",
    "VoteReceived",
    "check_hrs",
    "check_message",
    "proposer",
    "sign_proposal",
    "sign_vote",
]
