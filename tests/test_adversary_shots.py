"""The adversary's shots are pure: what an equivocating validator key produces."""

from __future__ import annotations

import random

import pytest

from node.p2p.host import keypair_of
from protocol import wire
from protocol.errors import DecodeError
from protocol.keys import PrivateKey
from protocol.votes import Vote
from tools.adversary.shots import Arsenal


def _arsenal(validator_key: PrivateKey | None, validators: tuple[bytes, ...] = ()) -> Arsenal:
    member = PrivateKey.generate()
    return Arsenal(random.Random(5), member, keypair_of(member), "branchnet-test", list(validators), lambda: 41,
                   validator_key=validator_key)


def test_equivocation_is_two_conflicting_messages_of_the_held_key_for_the_height_in_progress():
    validator = PrivateKey.generate()
    arsenal = _arsenal(validator)
    variants = set()
    for _ in range(30):
        shot = arsenal.next(["equivocate"])
        assert (shot.channel, shot.protocol) in {("request", wire.consensus_protocol("branchnet-test")),
                                                 ("notify", wire.consensus_push_protocol("branchnet-test"))}
        first, second = (wire.decode_consensus(body) for body in (shot.data, *shot.extra))
        a, b = (m if isinstance(m, Vote) else m.proposal for m in (first, second))
        variants.add(shot.kind)
        assert type(a) is type(b) and (a.height, a.round) == (b.height, b.round) == (42, 0)
        assert a.block_hash != b.block_hash
        signer = (lambda m: m.validator) if isinstance(a, Vote) else (lambda m: m.proposer)
        assert signer(a) == signer(b) == validator.branch_id
    assert variants == {"equivocate/prevote", "equivocate/precommit", "equivocate/proposal"}


def test_without_a_validator_key_there_is_no_equivocation():
    assert "equivocate" not in _arsenal(None).families


def test_hostile_bundles_go_one_way_on_consensus_2_and_break_the_format_or_carry_only_invalid_messages():
    arsenal = _arsenal(None, (PrivateKey.generate().branch_id,))
    push = wire.consensus_push_protocol("branchnet-test")
    kinds = set()
    for _ in range(400):
        shot = arsenal.next(["consensus"])
        if not shot.kind.startswith("consensus/bundle_"):
            continue
        kinds.add(shot.kind)
        assert (shot.channel, shot.protocol) == ("notify", push) and wire.is_bundle(shot.data)
        try:
            messages = wire.decode_bundle(shot.data)
        except DecodeError:
            continue
        for message in messages:  # a well-formed bundle: each message is refused on its own
            try:
                msg = wire.decode_consensus(message)
            except DecodeError:
                continue
            assert isinstance(msg, Vote) and msg.validator == arsenal.key.branch_id  # a member's vote, not a validator's
    assert kinds == {f"consensus/bundle_{v}" for v in ("mixed", "nested", "empty", "too_many", "not_bytes", "mutated")}
    for bad in ("nested", "empty", "too_many", "not_bytes"):  # refused whole, by the decoder
        shot = next(s for s in iter(lambda: arsenal.next(["consensus"]), None) if s.kind == f"consensus/bundle_{bad}")
        if bad == "nested":
            (inner,) = wire.decode_bundle(shot.data)
            with pytest.raises(DecodeError):
                wire.decode_consensus(inner)
        else:
            with pytest.raises(DecodeError):
                wire.decode_bundle(shot.data)
