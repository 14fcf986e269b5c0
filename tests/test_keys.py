"""protocol/keys.py: Ed25519 keys, branch ids, domain-separated signatures."""

import hashlib

import pytest

from factories import CHAIN_ID, OTHER_CHAIN_ID, key, member_keys, offer, record, validator_keys
from protocol.encoding import encode
from protocol.errors import DecodeError, SignatureError
from protocol.keys import (
    BRANCH_ID_SIZE,
    SIGNING_PREFIX,
    Domain,
    PrivateKey,
    PublicKey,
    branch_id_of,
    signing_bytes,
)
from protocol.votes import PRECOMMIT, PREVOTE, Proposal, Vote

ALICE = key("alice")
BOB = key("bob")


def test_branch_id_derivation():
    raw = ALICE.public_key.raw
    expected = hashlib.sha256(b"branchnet/branch-id" + raw).digest()[:20]
    assert branch_id_of(raw) == expected
    assert ALICE.branch_id == ALICE.public_key.branch_id == expected
    assert len(expected) == BRANCH_ID_SIZE
    assert ALICE.branch_id != BOB.branch_id


def test_seed_round_trip_and_determinism():
    again = PrivateKey.from_seed(ALICE.seed())
    assert again.public_key == ALICE.public_key
    assert again.sign(Domain.RECORD, CHAIN_ID, b"x") == ALICE.sign(Domain.RECORD, CHAIN_ID, b"x")
    assert PrivateKey.generate().public_key != PrivateKey.generate().public_key


@pytest.mark.parametrize("seed", [b"", b"x" * 31, b"x" * 33, "x" * 32], ids=["empty", "short", "long", "str"])
def test_bad_seed(seed):
    with pytest.raises(DecodeError) as exc:
        PrivateKey.from_seed(seed)
    assert exc.value.reason == "size" and exc.value.field == "private_key"


@pytest.mark.parametrize("raw", [b"", b"x" * 31, b"x" * 33, "x" * 32, bytearray(32)], ids=["empty", "short", "long", "str", "bytearray"])
def test_bad_public_key(raw):
    with pytest.raises(DecodeError) as exc:
        PublicKey(raw)
    assert exc.value.reason == "size" and exc.value.field == "public_key"


# Small-order points: the identity, a point of order 2 (y = -1), and the neutral element
# with the sign bit set (a non-canonical encoding of it).
IDENTITY = b"\x01" + b"\x00" * 31
ORDER_2 = b"\xec" + b"\xff" * 30 + b"\x7f"
L = 2**252 + 27742317777372353535851937790883648493


@pytest.mark.parametrize("raw", [IDENTITY, ORDER_2, b"\x01" + b"\x00" * 30 + b"\x80"], ids=["identity", "order-2", "noncanonical-identity"])
def test_small_order_or_non_canonical_public_keys_are_refused(raw):
    with pytest.raises(DecodeError) as exc:
        PublicKey(raw)
    assert exc.value.reason == "bad_key" and exc.value.field == "public_key"


def test_the_identity_key_forgery_does_not_verify():
    # With A = identity, R = identity and S = 0, the cofactorless equation [S]B = R + [k]A
    # holds for every message; OpenSSL accepted this. Our verifier must not.
    key = object.__new__(PublicKey)
    object.__setattr__(key, "raw", IDENTITY)  # bypass the constructor's check on purpose
    with pytest.raises(SignatureError):
        key.verify(IDENTITY + b"\x00" * 32, Domain.RECORD, CHAIN_ID, b"any payload")


def test_signature_with_s_not_below_l_is_rejected():
    sig = ALICE.sign(Domain.RECORD, CHAIN_ID, b"payload")
    s = int.from_bytes(sig[32:], "little")
    assert s + L < 2**256
    malleated = sig[:32] + (s + L).to_bytes(32, "little")  # the same point equation, non-canonical S
    ALICE.public_key.verify(sig, Domain.RECORD, CHAIN_ID, b"payload")
    with pytest.raises(SignatureError):
        ALICE.public_key.verify(malleated, Domain.RECORD, CHAIN_ID, b"payload")


def test_signing_bytes_layout():
    assert signing_bytes(Domain.VOTE, CHAIN_ID, b"p") == encode([SIGNING_PREFIX, "vote", CHAIN_ID, b"p"])


def test_sign_and_verify():
    sig = ALICE.sign(Domain.RECORD, CHAIN_ID, b"payload")
    ALICE.public_key.verify(sig, Domain.RECORD, CHAIN_ID, b"payload")


@pytest.mark.parametrize(
    "domain, chain_id, payload, signer",
    [
        (Domain.VOTE, CHAIN_ID, b"payload", ALICE),        # other domain
        (Domain.PROPOSAL, CHAIN_ID, b"payload", ALICE),
        (Domain.RECORD, OTHER_CHAIN_ID, b"payload", ALICE),  # other chain
        (Domain.RECORD, CHAIN_ID, b"payloaD", ALICE),       # other payload
        (Domain.RECORD, CHAIN_ID, b"payload", BOB),         # other key
    ],
    ids=["vote_domain", "proposal_domain", "other_chain", "other_payload", "other_key"],
)
def test_signature_does_not_verify_elsewhere(domain, chain_id, payload, signer):
    sig = ALICE.sign(Domain.RECORD, CHAIN_ID, b"payload")
    with pytest.raises(SignatureError) as exc:
        signer.public_key.verify(sig, domain, chain_id, payload)
    assert exc.value.reason == "bad_signature" and exc.value.field == "signature"


@pytest.mark.parametrize("sig", [b"", b"\x00" * 63, b"\x00" * 65, "s" * 64, b"\x00" * 64], ids=["empty", "63", "65", "str", "zeros"])
def test_malformed_signatures(sig):
    with pytest.raises(SignatureError):
        ALICE.public_key.verify(sig, Domain.RECORD, CHAIN_ID, b"payload")


def test_unknown_domain_is_refused_when_signing():
    with pytest.raises(ValueError):
        ALICE.sign("gossip", CHAIN_ID, b"x")


def test_vote_signature_is_not_a_proposal_or_record_signature():
    """The same fields signed as a vote must not verify as a proposal or a record."""
    v = validator_keys(1)[0]
    vote = Vote.create(v, CHAIN_ID, PREVOTE, 3, 0, b"\x11" * 32)
    v.public_key.verify(vote.signature, Domain.VOTE, CHAIN_ID, vote.payload())
    for domain in (Domain.PROPOSAL, Domain.RECORD):
        with pytest.raises(SignatureError):
            v.public_key.verify(vote.signature, domain, CHAIN_ID, vote.payload())
    # a proposal carrying the vote's signature does not verify
    prop = Proposal(3, 0, -1, b"\x11" * 32, v.branch_id, vote.signature)
    from protocol.validators import Validator, ValidatorSet

    vs = ValidatorSet([Validator(v.branch_id, v.public_key, 1)])
    with pytest.raises(SignatureError):
        prop.verify(vs, CHAIN_ID)
    # a prevote signature is not a precommit signature
    with pytest.raises(SignatureError):
        Vote(PRECOMMIT, 3, 0, b"\x11" * 32, v.branch_id, vote.signature).verify(vs, CHAIN_ID)
    # another chain id fails
    with pytest.raises(SignatureError):
        vote.verify(vs, OTHER_CHAIN_ID)
    vote.verify(vs, CHAIN_ID)


def test_record_signature_is_not_a_vote_signature():
    m = member_keys(1)[0]
    rec = record(m, offer())
    with pytest.raises(SignatureError):
        m.public_key.verify(rec.signature, Domain.VOTE, CHAIN_ID, rec.payload())
    with pytest.raises(SignatureError):
        m.public_key.verify(rec.signature, Domain.RECORD, OTHER_CHAIN_ID, rec.payload())
    m.public_key.verify(rec.signature, Domain.RECORD, CHAIN_ID, rec.payload())
