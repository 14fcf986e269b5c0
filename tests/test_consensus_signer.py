"""The double-sign guard, restart behaviour, proposer selection, vote keeper
and the signature-check helper of protocol.consensus."""

from __future__ import annotations

from collections import Counter

import pytest

from protocol.consensus import (
    BroadcastProposal,
    BroadcastVote,
    ConsensusState,
    DoubleSignError,
    SignerState,
    StartHeight,
    Step,
    TimeoutFired,
    VoteKeeper,
    check_message,
    proposer,
    sign_proposal,
    sign_vote,
)
from protocol.errors import ValidationError
from protocol.keys import PrivateKey
from protocol.validators import Validator, ValidatorSet
from protocol.votes import NIL, PRECOMMIT, PREVOTE, Vote

from test_consensus_state_machine import CHAIN, KEYS, PARAMS, VALSET, A, B, non_proposer_key, vote

KEY = KEYS[0]


def test_signer_signs_forward_and_records_hrs():
    s1, v1 = sign_vote(SignerState(), KEY, CHAIN, PREVOTE, 1, 0, A)
    assert (s1.height, s1.round, s1.step) == (1, 0, Step.PREVOTE)
    v1.verify(VALSET, CHAIN)
    s2, v2 = sign_vote(s1, KEY, CHAIN, PRECOMMIT, 1, 0, A, (v1,))
    assert (s2.lock_round, s2.lock_hash, s2.lock_votes, s2.earlier) == (0, A, (v1,), (v1,))


def test_signer_refuses_conflicting_message_at_same_hrs():
    s1, _ = sign_vote(SignerState(), KEY, CHAIN, PREVOTE, 1, 0, A)
    with pytest.raises(DoubleSignError) as e:
        sign_vote(s1, KEY, CHAIN, PREVOTE, 1, 0, B)
    assert e.value.reason == "conflict"


@pytest.mark.parametrize("h, r, vtype", [(1, 0, PREVOTE), (1, 1, PREVOTE), (0, 9, PRECOMMIT)])
def test_signer_refuses_to_step_back(h, r, vtype):
    s, _ = sign_vote(SignerState(), KEY, CHAIN, PRECOMMIT, 1, 1, NIL)
    with pytest.raises(DoubleSignError) as e:
        sign_vote(s, KEY, CHAIN, vtype, h, r, A)
    assert e.value.reason == "step_back"


def test_signer_rereleases_the_identical_message():
    s1, v1 = sign_vote(SignerState(), KEY, CHAIN, PREVOTE, 1, 0, A)
    s2, v2 = sign_vote(s1, KEY, CHAIN, PREVOTE, 1, 0, A)
    assert v1 == v2 and s1 == s2


def test_signer_proposal_then_votes_same_round():
    s, p = sign_proposal(SignerState(), KEY, CHAIN, 1, 0, -1, A)
    with pytest.raises(DoubleSignError):
        sign_proposal(s, KEY, CHAIN, 1, 0, -1, B)
    s, _ = sign_vote(s, KEY, CHAIN, PREVOTE, 1, 0, A)
    with pytest.raises(DoubleSignError):
        sign_proposal(s, KEY, CHAIN, 1, 0, -1, A)


def test_signer_state_roundtrips_canonically():
    s, v = sign_vote(SignerState(), KEY, CHAIN, PREVOTE, 3, 2, A)
    s, _ = sign_vote(s, KEY, CHAIN, PRECOMMIT, 3, 2, A, (v,))
    assert SignerState.decode(s.encode()) == s


def test_lock_does_not_carry_to_the_next_height():
    s, v = sign_vote(SignerState(), KEY, CHAIN, PRECOMMIT, 1, 0, A, ())
    s, _ = sign_vote(s, KEY, CHAIN, PREVOTE, 2, 0, B)
    assert (s.lock_round, s.lock_hash) == (-1, NIL)


def test_state_machine_never_double_signs_after_restart():
    me = non_proposer_key(1)
    st = ConsensusState(me, CHAIN, PARAMS)
    st.apply(StartHeight(1, VALSET, 0))
    st.apply(TimeoutFired(1, 0, Step.PROPOSE, 0))  # prevote nil, persisted
    persisted = st.signer_state
    # restart: round state is gone, only the signer state survives
    st2 = ConsensusState(me, CHAIN, PARAMS, signer_state=persisted)
    acts = st2.apply(StartHeight(1, VALSET, 0))
    [again] = [a.vote for a in acts if type(a) is BroadcastVote]
    assert again.block_hash == NIL and st2.step == Step.PREVOTE  # re-released, same bytes
    acts = st2.apply(TimeoutFired(1, 0, Step.PROPOSE, 1))  # stale step: nothing
    assert not [a for a in acts if type(a) in (BroadcastVote, BroadcastProposal)]


def test_restart_keeps_the_lock_and_its_proof():
    me = non_proposer_key(1)
    others = [k for k in KEYS if k is not me]
    st = ConsensusState(me, CHAIN, PARAMS)
    st.apply(StartHeight(1, VALSET, 0))
    st.locked_round = -1
    from test_consensus_state_machine import with_block

    with_block(st, 0, A)
    for k in others[:2]:
        st.apply(vote(k, PREVOTE, 0, A))
    assert st.locked_value == A
    st2 = ConsensusState(me, CHAIN, PARAMS, signer_state=st.signer_state)
    st2.apply(StartHeight(1, VALSET, 0))
    assert (st2.locked_round, st2.locked_value, st2.valid_value) == (0, A, A)
    assert st2.votes.two_thirds_for(0, PREVOTE, A)  # can prove the lock to peers


def test_signer_refusal_is_counted_not_raised():
    me = non_proposer_key(1)
    s, _ = sign_vote(SignerState(), me, CHAIN, PRECOMMIT, 1, 5, NIL)
    st = ConsensusState(me, CHAIN, PARAMS, signer_state=s)
    st.apply(StartHeight(1, VALSET, 0))  # resumes at round 5
    st.round = 6
    st.step = Step.PROPOSE
    st.signer_state = SignerState(1, 9, 3)
    st.apply(TimeoutFired(1, 6, Step.PROPOSE, 0))
    assert st.rejected["signer_refused"] == 1 and st.step == Step.PREVOTE


# ------------------------------------------------------------------ proposer


def _valset(powers):
    keys = [PrivateKey.from_seed(bytes([50 + i]) * 32) for i in range(len(powers))]
    return ValidatorSet(Validator(k.branch_id, k.public_key, p) for k, p in zip(keys, powers))


def test_proposer_is_weighted_round_robin_over_a_period():
    vs = _valset([1, 2, 3, 7])
    counts = Counter(proposer(vs, h, 0) for h in range(vs.total_power))
    assert {vs.get(b).power: c for b, c in counts.items()} == {1: 1, 2: 2, 3: 3, 7: 7}


def test_proposer_is_a_pure_function_of_valset_height_round():
    vs = _valset([1, 1, 1, 1])
    seq = [proposer(vs, h, r) for h in range(1, 6) for r in range(3)]
    assert seq == [proposer(_valset([1, 1, 1, 1]), h, r) for h in range(1, 6) for r in range(3)]
    assert proposer(vs, 1, 0) == vs.validators[1].branch_id  # ties go to the lowest branch id first
    assert proposer(vs, 0, 0) == vs.validators[0].branch_id


# -------------------------------------------------------------- vote keeper


def test_vote_keeper_quorums_by_power():
    vs = _valset([1, 1, 1, 4])  # total 7; 2/3+ needs 5; 1/3+ needs 3
    keys = [PrivateKey.from_seed(bytes([50 + i]) * 32) for i in range(4)]
    vk = VoteKeeper(vs, 1)
    for k in keys[:2]:
        vk.add(Vote.create(k, CHAIN, PREVOTE, 1, 0, A))
    assert vk.highest_skip_round(-1) is None  # 2 of 7 is not 1/3+
    vk.add(Vote.create(keys[2], CHAIN, PREVOTE, 1, 0, A))
    assert not vk.two_thirds_for(0, PREVOTE, A) and vk.highest_skip_round(-1) == 0
    vk.add(Vote.create(keys[3], CHAIN, PREVOTE, 1, 0, NIL))
    assert vk.two_thirds_any(0, PREVOTE) and not vk.two_thirds_for(0, PREVOTE, A)
    assert vk.highest_skip_round(-1) == 0
    vk.add(Vote.create(keys[3], CHAIN, PRECOMMIT, 1, 2, A))
    vk.add(Vote.create(keys[0], CHAIN, PRECOMMIT, 1, 2, A))
    assert vk.precommit_quorums == [(2, A)]


# -------------------------------------------------------------- check_message


def test_check_message_verifies_signature_and_membership():
    v = Vote.create(KEY, CHAIN, PREVOTE, 1, 0, A)
    check_message(v, VALSET, CHAIN)
    with pytest.raises(ValidationError):
        check_message(v, VALSET, "other-chain")
    with pytest.raises(ValidationError):
        check_message(Vote(PREVOTE, 1, 0, B, v.validator, v.signature), VALSET, CHAIN)
    outsider = PrivateKey.from_seed(b"\x99" * 32)
    with pytest.raises(ValidationError):
        check_message(Vote.create(outsider, CHAIN, PREVOTE, 1, 0, A), VALSET, CHAIN)
