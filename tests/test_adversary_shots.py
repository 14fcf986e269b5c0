"""The adversary's shots are pure: what an equivocating validator key produces."""

from __future__ import annotations

import random

from node.p2p.host import keypair_of
from protocol import wire
from protocol.keys import PrivateKey
from protocol.votes import Vote
from tools.adversary.shots import Arsenal


def _arsenal(validator_key: PrivateKey | None) -> Arsenal:
    member = PrivateKey.generate()
    return Arsenal(random.Random(5), member, keypair_of(member), "branchnet-test", [], lambda: 41,
                   validator_key=validator_key)


def test_equivocation_is_two_conflicting_messages_of_the_held_key_for_the_height_in_progress():
    validator = PrivateKey.generate()
    arsenal = _arsenal(validator)
    variants = set()
    for _ in range(30):
        shot = arsenal.next(["equivocate"])
        assert shot.channel == "request" and shot.protocol == wire.consensus_protocol("branchnet-test")
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
