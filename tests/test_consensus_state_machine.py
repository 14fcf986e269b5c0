"""Table-driven tests of protocol.consensus.state_machine, one per transition
of Algorithm 1 in "The latest gossip on BFT consensus" (line numbers in names).

Four validators of power 1; 2/3+ means 3 votes, f+1 means 2."""

from __future__ import annotations

import pytest

from protocol.consensus import (
    BlockBuilt,
    BlockReceived,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ConsensusParams,
    ConsensusState,
    ProposalReceived,
    ProposeBlock,
    RecordEvidence,
    RejectedInput,
    RequestBlock,
    ScheduleTimeout,
    StartHeight,
    Step,
    TimeoutFired,
    VoteReceived,
    proposer,
)
from protocol.keys import PrivateKey
from protocol.validators import Validator, ValidatorSet
from protocol.votes import NIL, PRECOMMIT, PREVOTE, Proposal, Vote

CHAIN = "test-chain"
KEYS = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(4)]
OUTSIDER = PrivateKey.from_seed(b"\x77" * 32)
VALSET = ValidatorSet(Validator(k.branch_id, k.public_key, 1) for k in KEYS)
BY_ID = {k.branch_id: k for k in KEYS}
PARAMS = ConsensusParams(
    timeout_propose_ms=100, timeout_propose_delta_ms=10,
    timeout_prevote_ms=50, timeout_prevote_delta_ms=5,
    timeout_precommit_ms=60, timeout_precommit_delta_ms=6,
)
A, B = b"\xaa" * 32, b"\xbb" * 32


def proposer_key(h: int, r: int) -> PrivateKey:
    return BY_ID[proposer(VALSET, h, r)]


def non_proposer_key(h: int, rounds=range(0, 4)) -> PrivateKey:
    for k in KEYS:
        if all(proposer(VALSET, h, r) != k.branch_id for r in rounds):
            return k
    return next(k for k in KEYS if proposer(VALSET, h, rounds[0]) != k.branch_id)


def others(me: PrivateKey) -> list[PrivateKey]:
    return [k for k in KEYS if k.branch_id != me.branch_id]


def vote(key, vtype, r, value, h=1) -> VoteReceived:
    return VoteReceived(Vote.create(key, CHAIN, vtype, h, r, value), 0)


def proposal(r, value, pol=-1, h=1, key=None) -> ProposalReceived:
    return ProposalReceived(Proposal.create(key or proposer_key(h, r), CHAIN, h, r, pol, value), 0)


def started(me: PrivateKey | None = None) -> ConsensusState:
    st = ConsensusState(me or non_proposer_key(1), CHAIN, PARAMS)
    st.apply(StartHeight(1, VALSET, 0))
    return st


def feed(st: ConsensusState, *events) -> list:
    out = []
    for ev in events:
        out.extend(st.apply(ev))
    return out


def of(actions, cls) -> list:
    return [a for a in actions if type(a) is cls]


def my_votes(actions) -> list[tuple[int, bytes]]:
    return [(a.vote.type, a.vote.block_hash) for a in of(actions, BroadcastVote)]


def with_block(st, r, value, valid=True, pol=-1) -> list:
    acts = feed(st, proposal(r, value, pol))
    return acts + feed(st, BlockReceived(value, valid, 0))


# --------------------------------------------------------------- L11 StartRound


def test_L11_start_round_non_proposer_schedules_propose_timeout():
    st = ConsensusState(non_proposer_key(1), CHAIN, PARAMS)
    acts = st.apply(StartHeight(1, VALSET, 1000))
    assert (st.height, st.round, st.step) == (1, 0, Step.PROPOSE)
    assert of(acts, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PROPOSE, 1100)]
    assert not of(acts, ProposeBlock)


def test_L18_proposer_without_valid_value_asks_for_a_block_then_L19_proposes_and_L22_prevotes():
    st = ConsensusState(proposer_key(1, 0), CHAIN, PARAMS)
    acts = st.apply(StartHeight(1, VALSET, 0))
    assert of(acts, ProposeBlock) == [ProposeBlock(1, 0)]
    acts = st.apply(BlockBuilt(1, 0, A, 5))
    [bp] = of(acts, BroadcastProposal)
    assert (bp.proposal.round, bp.proposal.pol_round, bp.proposal.block_hash) == (0, -1, A)
    assert bp.signer_state.step == Step.PROPOSE  # persist this before the proposal leaves
    assert my_votes(acts) == [(PREVOTE, A)]
    assert st.step == Step.PREVOTE


def test_L16_proposer_reproposes_valid_value_with_valid_round():
    me = proposer_key(1, 1)
    st = ConsensusState(me, CHAIN, PARAMS)
    st.apply(StartHeight(1, VALSET, 0))
    if proposer(VALSET, 1, 0) == me.branch_id:
        st.apply(BlockBuilt(1, 0, A, 0))
    else:
        with_block(st, 0, A)
    feed(st, *[vote(k, PREVOTE, 0, A) for k in others(me)])
    assert st.valid_value == A and st.valid_round == 0
    feed(st, *[vote(k, PRECOMMIT, 0, NIL) for k in others(me)[:2]])
    acts = st.apply(TimeoutFired(1, 0, Step.PRECOMMIT, 500))
    [bp] = of(acts, BroadcastProposal)
    assert (bp.proposal.round, bp.proposal.pol_round, bp.proposal.block_hash) == (1, 0, A)
    assert not of(acts, ProposeBlock)


def test_L16_a_reproposal_carries_its_proof_of_lock_and_a_peer_that_lacked_it_prevotes_it():
    """Simulator seed 9014: the proposer's polka counts an equivocator's prevote for A
    that a peer never got (it got the equivocator's prevote for B). Without the proof
    of lock the peer waits out the propose timeout and prevotes nil, in every round
    the value is re-proposed; with ``pol_votes`` sent after the proposal it prevotes A."""
    me, p0 = proposer_key(1, 1), proposer_key(1, 0)
    equivocator, peer = [k for k in KEYS if k.branch_id not in (me.branch_id, p0.branch_id)]
    st = started(me)
    assert my_votes(with_block(st, 0, A)) == [(PREVOTE, A)]
    feed(st, vote(peer, PREVOTE, 0, NIL), vote(p0, PREVOTE, 0, A),
         vote(equivocator, PREVOTE, 0, B), vote(equivocator, PREVOTE, 0, A))
    assert (st.locked_round, st.locked_value, st.valid_round) == (0, A, 0)
    feed(st, vote(peer, PRECOMMIT, 0, NIL), vote(p0, PRECOMMIT, 0, NIL))
    [bp] = of(st.apply(TimeoutFired(1, 0, Step.PRECOMMIT, 500)), BroadcastProposal)
    assert (bp.proposal.round, bp.proposal.pol_round, bp.proposal.block_hash) == (1, 0, A)
    pol = {(v.validator, v.round, v.type, v.block_hash) for v in bp.pol_votes}
    assert pol == {(k.branch_id, 0, PREVOTE, A) for k in (me, p0, equivocator)}

    other = started(peer)  # missed round 0's proposal; got the equivocator's B
    feed(other, vote(p0, PREVOTE, 0, A), vote(equivocator, PREVOTE, 0, B), vote(me, PREVOTE, 0, A))
    _in_round(other, 1)
    acts = feed(other, ProposalReceived(bp.proposal, 0), BlockReceived(A, True, 0))
    assert my_votes(acts) == [] and other.step == Step.PROPOSE  # L28: no polka for round 0 here
    acts = feed(other, *[VoteReceived(v, 0) for v in bp.pol_votes])
    assert my_votes(acts) == [(PREVOTE, A)]

    # crashed right after the proposal's write-ahead: the restart re-releases it with the
    # same proof (the lock's prevotes are persisted with the lock)
    again = ConsensusState(me, CHAIN, PARAMS, bp.signer_state)
    [bp2] = of(again.apply(StartHeight(1, VALSET, 600)), BroadcastProposal)
    assert bp2.proposal == bp.proposal and set(bp2.pol_votes) == set(bp.pol_votes)


def test_a_fresh_proposal_carries_no_votes():
    st = ConsensusState(proposer_key(1, 0), CHAIN, PARAMS)
    st.apply(StartHeight(1, VALSET, 0))
    [bp] = of(st.apply(BlockBuilt(1, 0, A, 5)), BroadcastProposal)
    assert bp.proposal.pol_round == -1 and bp.pol_votes == ()


# ---------------------------------------------------------------------- L22


@pytest.mark.parametrize(
    "lock, valid, expected",
    [
        (None, True, A),  # L23 unlocked, valid -> prevote v
        (None, False, NIL),  # L26 invalid -> nil
        ((0, B), True, NIL),  # locked on another value -> nil
        ((0, A), True, A),  # locked on v -> v
    ],
)
def test_L22_prevote_for_proposal_respects_validity_and_lock(lock, valid, expected):
    st = started()
    if lock:
        st.locked_round, st.locked_value = lock
    acts = with_block(st, 0, A, valid)
    assert my_votes(acts) == [(PREVOTE, expected)]
    assert st.step == Step.PREVOTE


def test_L22_waits_for_the_block_and_requests_it():
    st = started()
    acts = feed(st, proposal(0, A))
    assert of(acts, RequestBlock) == [RequestBlock(1, A)]
    assert my_votes(acts) == [] and st.step == Step.PROPOSE
    assert my_votes(st.apply(BlockReceived(A, True, 1))) == [(PREVOTE, A)]


# ---------------------------------------------------------------------- L28


def _in_round(st, r):
    while st.round < r:
        st.step = Step.PRECOMMIT
        st.apply(TimeoutFired(1, st.round, Step.PRECOMMIT, 0))


@pytest.mark.parametrize(
    "lock, expected",
    [
        (None, A),  # unlocked
        ((0, B), A),  # lockedRound <= vr -> accept v
        ((1, B), NIL),  # locked after vr on another value -> nil
        ((1, A), A),  # locked on v itself
    ],
)
def test_L28_proposal_with_valid_round_and_polka(lock, expected):
    me = non_proposer_key(1)
    st = started(me)
    _in_round(st, 2)
    feed(st, *[vote(k, PREVOTE, 0, A) for k in KEYS[:3]])
    if lock:
        st.locked_round, st.locked_value = lock
    acts = with_block(st, 2, A, pol=0)
    assert my_votes(acts) == [(PREVOTE, expected)]


def test_L28_without_polka_in_valid_round_waits_for_the_timeout():
    st = started()
    _in_round(st, 2)
    acts = with_block(st, 2, A, pol=0)
    assert my_votes(acts) == [] and st.step == Step.PROPOSE
    assert my_votes(st.apply(TimeoutFired(1, 2, Step.PROPOSE, 1))) == [(PREVOTE, NIL)]  # L57


# ----------------------------------------------------------- L34 / L36 / L44


def test_L34_two_thirds_of_any_prevotes_schedules_prevote_timeout_once():
    me = non_proposer_key(1)
    st = started(me)
    with_block(st, 0, A)  # we prevote A
    o = others(me)
    acts = feed(st, vote(o[0], PREVOTE, 0, B), vote(o[1], PREVOTE, 0, NIL))
    assert of(acts, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PREVOTE, 50)]
    assert not of(feed(st, vote(o[2], PREVOTE, 0, B)), ScheduleTimeout)


def test_L36_polka_in_prevote_step_locks_and_precommits():
    me = non_proposer_key(1)
    st = started(me)
    with_block(st, 0, A)
    acts = feed(st, *[vote(k, PREVOTE, 0, A) for k in others(me)[:2]])
    assert my_votes(acts) == [(PRECOMMIT, A)]
    assert (st.locked_round, st.locked_value, st.valid_round, st.valid_value) == (0, A, 0, A)
    assert st.step == Step.PRECOMMIT
    bv = of(acts, BroadcastVote)[0]
    assert bv.signer_state.lock_round == 0 and len(bv.signer_state.lock_votes) == 3  # proof of lock persisted


def test_L36_polka_after_precommit_step_only_updates_valid_value():
    me = non_proposer_key(1)
    st = started(me)
    st.apply(TimeoutFired(1, 0, Step.PROPOSE, 0))  # prevote nil
    st.apply(TimeoutFired(1, 0, Step.PREVOTE, 0))  # precommit nil (L61)
    acts = with_block(st, 0, A) + feed(st, *[vote(k, PREVOTE, 0, A) for k in others(me)])
    assert my_votes(acts) == []
    assert st.locked_round == -1 and (st.valid_round, st.valid_value) == (0, A)


def test_L36_needs_valid_block():
    me = non_proposer_key(1)
    st = started(me)
    with_block(st, 0, A, valid=False)  # prevote nil
    acts = feed(st, *[vote(k, PREVOTE, 0, A) for k in others(me)])
    assert my_votes(acts) == [] and st.locked_round == -1


def test_L44_two_thirds_nil_prevotes_precommit_nil():
    me = non_proposer_key(1)
    st = started(me)
    st.apply(TimeoutFired(1, 0, Step.PROPOSE, 0))
    acts = feed(st, *[vote(k, PREVOTE, 0, NIL) for k in others(me)[:2]])
    assert my_votes(acts) == [(PRECOMMIT, NIL)] and st.step == Step.PRECOMMIT


# --------------------------------------------------------------- L47 / L49


def test_L47_two_thirds_of_any_precommits_schedules_precommit_timeout():
    me = non_proposer_key(1)
    st = started(me)
    o = others(me)
    acts = feed(st, vote(o[0], PRECOMMIT, 0, NIL), vote(o[1], PRECOMMIT, 0, B), vote(o[2], PRECOMMIT, 0, NIL))
    assert ScheduleTimeout(1, 0, Step.PRECOMMIT, 60) in acts


def test_L49_commit_on_two_thirds_precommits_with_valid_block():
    me = non_proposer_key(1)
    st = started(me)
    with_block(st, 0, A)
    acts = feed(st, *[vote(k, PRECOMMIT, 0, A) for k in others(me)])
    [commit] = of(acts, CommitBlock)
    assert (commit.height, commit.round, commit.block_hash) == (1, 0, A)
    commit.certificate.verify(VALSET, CHAIN, height=1, block_hash=A)
    assert st.step == Step.COMMIT and st.decision == A


def test_L49_commit_for_a_later_round_without_the_proposal_fetches_the_block():
    st = started()
    acts = feed(st, *[vote(k, PRECOMMIT, 2, A) for k in KEYS[:3] if k is not st.key][:3])
    acts += feed(st, *[vote(k, PRECOMMIT, 2, A) for k in KEYS if k is not st.key])
    assert RequestBlock(1, A) in acts and not of(acts, CommitBlock)
    [commit] = of(st.apply(BlockReceived(A, True, 0)), CommitBlock)
    assert commit.round == 2


def test_L49_invalid_block_is_never_committed():
    st = started()
    feed(st, *[vote(k, PRECOMMIT, 0, A) for k in others(st.key)])
    assert not of(st.apply(BlockReceived(A, False, 0)), CommitBlock)


def test_late_precommits_extend_the_last_commit_certificate():
    me = non_proposer_key(1)
    st = started(me)
    with_block(st, 0, A)
    o = others(me)
    feed(st, *[vote(k, PREVOTE, 0, A) for k in o[:2]])  # we precommit A
    feed(st, *[vote(k, PRECOMMIT, 0, A) for k in o[:2]])
    assert len(st.last_commit.signatures) == 3
    st.apply(StartHeight(2, VALSET, 0))
    assert not of(st.apply(vote(o[2], PRECOMMIT, 0, A)), RejectedInput)  # late precommit for height 1
    cert = st.last_commit_certificate()
    assert len(cert.signatures) == 4
    cert.verify(VALSET, CHAIN)


# ---------------------------------------------------------------------- L55


def test_L55_f_plus_one_in_a_later_round_skips_to_it():
    me = non_proposer_key(1, range(0, 6))
    st = started(me)
    o = others(me)
    st.apply(vote(o[0], PREVOTE, 5, NIL))
    assert st.round == 0  # f = 1 is not enough
    acts = st.apply(vote(o[1], PRECOMMIT, 5, NIL))
    assert (st.round, st.step) == (5, Step.PROPOSE)
    assert ScheduleTimeout(1, 5, Step.PROPOSE, 150) in acts


# ----------------------------------------------------------- timeouts L57-L65


def test_L57_propose_timeout_prevotes_nil():
    st = started()
    assert my_votes(st.apply(TimeoutFired(1, 0, Step.PROPOSE, 100))) == [(PREVOTE, NIL)]
    assert st.step == Step.PREVOTE


def test_L57_waits_once_more_for_a_proposed_block_still_being_checked():
    st = started()
    feed(st, proposal(0, A))  # the block is requested, not yet checked
    acts = st.apply(TimeoutFired(1, 0, Step.PROPOSE, 100))
    assert my_votes(acts) == [] and st.step == Step.PROPOSE
    assert of(acts, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PROPOSE, 200)]  # the same timeout again
    assert my_votes(st.apply(BlockReceived(A, True, 150))) == [(PREVOTE, A)]  # valid(v) came within it


def test_L57_the_second_propose_timeout_prevotes_nil():
    st = started()
    feed(st, proposal(0, A))
    st.apply(TimeoutFired(1, 0, Step.PROPOSE, 100))
    assert my_votes(st.apply(TimeoutFired(1, 0, Step.PROPOSE, 200))) == [(PREVOTE, NIL)]
    assert st.step == Step.PREVOTE
    assert st.apply(BlockReceived(A, True, 250)) == [] and st.step == Step.PREVOTE  # too late for this round


def test_L57_extends_each_round_once_and_only_for_a_proposal_whose_block_is_unknown():
    st = started()
    feed(st, proposal(0, A), BlockReceived(A, False, 50))  # checked and invalid: L22 prevoted nil at once
    assert st.step == Step.PREVOTE
    st.apply(TimeoutFired(1, 0, Step.PRECOMMIT, 300))  # round 1: no proposal at all
    assert my_votes(st.apply(TimeoutFired(1, 1, Step.PROPOSE, 400))) == [(PREVOTE, NIL)]
    st.apply(TimeoutFired(1, 1, Step.PRECOMMIT, 500))  # round 2: a proposal whose block is late
    feed(st, proposal(2, B))
    assert my_votes(st.apply(TimeoutFired(1, 2, Step.PROPOSE, 600))) == []
    assert my_votes(st.apply(TimeoutFired(1, 2, Step.PROPOSE, 720))) == [(PREVOTE, NIL)]


def test_L61_prevote_timeout_precommits_nil():
    st = started()
    st.apply(TimeoutFired(1, 0, Step.PROPOSE, 100))
    assert my_votes(st.apply(TimeoutFired(1, 0, Step.PREVOTE, 150))) == [(PRECOMMIT, NIL)]
    assert st.step == Step.PRECOMMIT


def test_L65_precommit_timeout_starts_next_round_with_longer_timeouts():
    st = started()
    acts = st.apply(TimeoutFired(1, 0, Step.PRECOMMIT, 1000))
    assert (st.round, st.step) == (1, Step.PROPOSE)
    assert ScheduleTimeout(1, 1, Step.PROPOSE, 1110) in acts


@pytest.mark.parametrize("h, r, step", [(1, 3, Step.PROPOSE), (2, 0, Step.PROPOSE), (1, 1, Step.PRECOMMIT)])
def test_L58_L62_L66_stale_timeouts_are_ignored(h, r, step):
    st = started()
    assert st.apply(TimeoutFired(h, r, step, 5)) == []
    assert (st.round, st.step) == (0, Step.PROPOSE)


def test_L60_timeout_in_wrong_step_is_ignored():
    st = started()
    assert st.apply(TimeoutFired(1, 0, Step.PREVOTE, 5)) == []


# ------------------------------------------------------ evidence and rejection


def test_equivocation_yields_evidence_once_and_counts_power_once_for_any():
    me = non_proposer_key(1)
    st = started(me)
    bad = others(me)[0]
    acts = feed(st, vote(bad, PREVOTE, 0, A), vote(bad, PREVOTE, 0, B), vote(bad, PREVOTE, 0, NIL))
    [ev] = [a.evidence for a in of(acts, RecordEvidence)]
    assert ev.validator == bad.branch_id
    ev.verify(VALSET, CHAIN)
    assert st.votes._any[(0, PREVOTE)] == 1
    assert st.votes.power_for(0, PREVOTE, A) == st.votes.power_for(0, PREVOTE, B) == 1


def _snapshot(st):
    return (st.height, st.round, st.step, st.locked_round, st.valid_round, dict(st.proposals),
            {k: dict(v) for k, v in st.votes._power.items()}, dict(st._future))


@pytest.mark.parametrize(
    "event, reason",
    [
        (VoteReceived(Vote.create(OUTSIDER, CHAIN, PREVOTE, 1, 0, A), 0), "not_validator"),
        (ProposalReceived(Proposal.create(OUTSIDER, CHAIN, 1, 0, -1, A), 0), "not_validator"),
        (VoteReceived(Vote(PREVOTE, 1, 0, b"short", KEYS[0].branch_id, b"\0" * 64), 0), "malformed"),
        (VoteReceived(Vote(7, 1, 0, A, KEYS[0].branch_id, b"\0" * 64), 0), "malformed"),
        (VoteReceived(Vote.create(KEYS[0], CHAIN, PREVOTE, 1, 500, A), 0), "round_too_far"),
        (VoteReceived(Vote.create(KEYS[0], CHAIN, PREVOTE, 9, 0, A), 0), "height_too_far"),
        ("wrong_proposer", "wrong_proposer"),
        ("stale", "stale_height"),
    ],
)
def test_bad_input_is_rejected_without_state_change(event, reason):
    me = non_proposer_key(1)
    st = ConsensusState(me, CHAIN, PARAMS)
    st.apply(StartHeight(1, VALSET, 0))
    if event == "wrong_proposer":
        wrong = next(k for k in KEYS if k.branch_id != proposer(VALSET, 1, 0))
        event = ProposalReceived(Proposal.create(wrong, CHAIN, 1, 0, -1, A), 0)
    elif event == "stale":
        st.height = 3  # pretend we moved on
        event = VoteReceived(Vote.create(KEYS[0], CHAIN, PREVOTE, 1, 0, A), 0)
    before = _snapshot(st)
    acts = st.apply(event)
    assert acts == [RejectedInput(reason)]
    assert st.rejected == {reason: 1}
    assert _snapshot(st) == before


def test_future_height_messages_are_buffered_and_replayed_on_start_height():
    me = non_proposer_key(2)
    st = started(me)
    st.apply(proposal(0, B, h=2))
    feed(st, *[vote(k, PREVOTE, 0, B, h=2) for k in others(me)])
    assert st.votes.power_for(0, PREVOTE, B) == 0
    acts = st.apply(StartHeight(2, VALSET, 0))
    assert RequestBlock(2, B) in acts
    acts = st.apply(BlockReceived(B, True, 0))
    assert my_votes(acts) == [(PREVOTE, B), (PRECOMMIT, B)]


def test_buffer_is_bounded():
    st = ConsensusState(KEYS[0], CHAIN, ConsensusParams(max_buffered_per_height=2))
    st.apply(StartHeight(1, VALSET, 0))
    feed(st, *[vote(k, PREVOTE, 0, A, h=2) for k in KEYS[:3]])
    assert st.rejected == {"buffer_full": 1}


def test_same_events_give_same_actions():
    def run():
        st = ConsensusState(proposer_key(1, 0), CHAIN, PARAMS)
        acts = st.apply(StartHeight(1, VALSET, 0)) + st.apply(BlockBuilt(1, 0, A, 1))
        return acts + feed(st, *[vote(k, t, 0, A) for t in (PREVOTE, PRECOMMIT) for k in KEYS])
    assert run() == run()


def test_conflicting_proposals_from_the_proposer_become_evidence_once():
    st = started(non_proposer_key(1))
    first = feed(st, proposal(0, A))
    assert of(first, RecordEvidence) == []
    actions = feed(st, proposal(0, B))
    (ev,) = [a.evidence for a in of(actions, RecordEvidence)]
    assert ev.validator == proposer(VALSET, 1, 0) and ev.height == 1
    assert {ev.proposal_a.block_hash, ev.proposal_b.block_hash} == {A, B}
    ev.verify(VALSET, CHAIN)
    assert of(feed(st, proposal(0, b"\xcc" * 32)), RecordEvidence) == []  # once per round
    assert st.rejected["conflicting_proposal"] == 2
