"""Round summaries: what a stuck validator tells peers, and what they send back (pure)."""

from __future__ import annotations

import pytest

from protocol import wire
from protocol.consensus import BlockReceived, ConsensusParams, ConsensusState, ProposalReceived, StartHeight, VoteReceived
from protocol.consensus.gossip import RoundSummary, RoundVotes, missing_for, summarize
from protocol.consensus.proposer import proposer
from protocol.errors import DecodeError
from protocol.keys import PrivateKey
from protocol.validators import Validator, ValidatorSet
from protocol.votes import PRECOMMIT, PREVOTE, Proposal, Vote

CHAIN = "test-chain"
KEYS = sorted((PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(4)), key=lambda k: k.branch_id)
VALSET = ValidatorSet(Validator(k.branch_id, k.public_key, 1) for k in KEYS)
A = b"\xaa" * 32


def node(me: PrivateKey) -> ConsensusState:
    st = ConsensusState(me, CHAIN, ConsensusParams())
    st.apply(StartHeight(1, VALSET, 0))
    return st


def prevote(k: PrivateKey, r: int = 0, value: bytes = A, h: int = 1) -> Vote:
    return Vote.create(k, CHAIN, PREVOTE, h, r, value)


def test_a_summary_marks_exactly_the_votes_held_and_round_trips():
    st = node(KEYS[0])
    for k in (KEYS[1], KEYS[3]):
        st.apply(VoteReceived(prevote(k), 0))
    s = summarize(st)
    held = s.votes(0)
    assert held.prevotes == bytes([0b1010]) and held.precommits == b"\x00" and not held.proposal
    again = wire.decode_consensus(wire.encode_round_summary(s, 7))
    assert again == s


def test_missing_for_a_peer_at_our_height_is_what_its_bitmaps_lack():
    me, peer = node(KEYS[0]), node(KEYS[2])
    votes = [prevote(k) for k in KEYS[1:3]]  # two of four: no quorum anywhere
    for v in votes:
        me.apply(VoteReceived(v, 0))
    peer.apply(VoteReceived(votes[0], 0))
    assert missing_for(me, summarize(peer), limit=100) == [votes[1]]  # only what its bitmap lacks
    assert len(missing_for(me, summarize(node(KEYS[3])), limit=1)) == 1  # bounded


def test_a_quorum_the_peer_lacks_is_sent_whole():
    """An equivocator's other vote can leave the peer one short of a polka its bitmap
    hides: the peer then gets every vote of our quorum."""
    me, peer = node(KEYS[0]), node(KEYS[1])
    quorum = [prevote(k) for k in KEYS[1:4]]  # 3 of 4 for A
    for v in quorum:
        me.apply(VoteReceived(v, 0))
    twin = prevote(KEYS[3], value=b"\xbb" * 32)  # KEYS[3] voted twice; the peer holds the other vote
    for v in (quorum[0], quorum[1], twin):
        peer.apply(VoteReceived(v, 0))
    s = summarize(peer)
    assert s.votes(0).prevote_quorum is None and summarize(me).votes(0).prevote_quorum == A
    assert set(missing_for(me, s, limit=100)) == set(quorum)


def test_a_peer_one_height_behind_gets_the_precommits_that_decided_it():
    me = node(KEYS[0])
    value = A
    prop_key = next(k for k in KEYS if k.branch_id == proposer(VALSET, 1, 0))
    me.apply(ProposalReceived(Proposal.create(prop_key, CHAIN, 1, 0, -1, value), 0))
    me.apply(BlockReceived(value, True, 0))
    precommits = [Vote.create(k, CHAIN, PRECOMMIT, 1, 0, value) for k in KEYS[1:]]
    for k in KEYS[1:]:
        me.apply(VoteReceived(prevote(k), 0))
    for v in precommits:
        me.apply(VoteReceived(v, 0))
    assert me.last_commit is not None and me.last_commit.height == 1
    me.apply(StartHeight(2, VALSET, 0))
    behind = node(KEYS[3])  # still at height 1, holding nothing
    answer = missing_for(me, summarize(behind), limit=100)
    assert answer and all(isinstance(v, Vote) and v.type == PRECOMMIT and v.height == 1 for v in answer)
    two_thirds = sum(VALSET.power_of(v.validator) for v in answer)
    assert VALSET.has_two_thirds(two_thirds)  # enough for it to decide


def test_peers_further_away_get_nothing():
    me = node(KEYS[0])
    far = RoundSummary(5, 0, 1, ())
    assert missing_for(me, far, limit=100) == []


@pytest.mark.parametrize("bad", [
    [6, [1, 0, 1, [[0, b"\x00" * 40, b"", False, None, None]]], 0],  # bitmap longer than any validator set
    [6, [1, 0, 1, [[0, b"", b"", False, b"\x01" * 5, None]]], 0],  # a quorum value that is no hash
    [6, [0, 0, 1, []], 0],  # height 0
    [6, [1, 0, 1, [[0, b"", b"", False, None, None]] * 7], 0],  # too many rounds
])
def test_malformed_summaries_are_decode_errors(bad):
    with pytest.raises(DecodeError):
        wire.decode_consensus(wire.encode(bad))


def test_round_votes_bitmap_round_trip():
    rv = RoundVotes(3, b"\x01", b"\x02", True, b"", b"\x07" * 32)
    assert RoundVotes.from_array(rv.to_array(), "x") == rv
