"""protocol/blocks.py, validators.py and votes.py: headers, blocks, validator
sets, votes, proposals, commit certificates and duplicate-vote evidence."""

import dataclasses

import pytest

from factories import (
    CHAIN_ID,
    OTHER_CHAIN_ID,
    all_kinds,
    certify,
    decode_block,
    key,
    make_genesis,
    make_state,
    member_keys,
    next_block,
    outcome,
    validator_keys,
)
from protocol import merkle
from protocol.blocks import Block, Header, evidence_root
from protocol.encoding import encode
from protocol.errors import DecodeError, SignatureError, ValidationError
from protocol.hashing import sha256
from protocol.validators import Validator, ValidatorSet
from protocol.votes import (
    NIL,
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    DuplicateVoteEvidence,
    Proposal,
    Vote,
)

BH = b"\xab" * 32
BH2 = b"\xcd" * 32


def valset(keys, powers=None):
    powers = powers or [1] * len(keys)
    return ValidatorSet(Validator(k.branch_id, k.public_key, p) for k, p in zip(keys, powers))


def sample_block():
    state = make_state()
    block, _tx, rejected = next_block(state, all_kinds(member_keys(1)[0]))
    assert not rejected
    return state, block


# ---------------------------------------------------------------- header / block


def test_header_round_trip_and_hash():
    _, block = sample_block()
    h = block.header
    data = h.encode()
    assert Header.decode(data) == h
    assert h.hash == sha256(data) == block.hash
    assert h.to_json()["hash"] == h.hash.hex()
    assert h.prev_hash == make_genesis().hash


def test_block_round_trip_and_roots():
    _, block = sample_block()
    again = decode_block(block.encode())
    assert again == block
    assert block.header.records_root == merkle.root([r.raw for r in block.records])
    assert block.header.evidence_root == evidence_root(()) == merkle.EMPTY_ROOT


def test_record_inclusion_proofs():
    _, block = sample_block()
    for i, rec in enumerate(block.records):
        merkle.verify_inclusion(rec.raw, block.prove_record(i), block.header.records_root)
    with pytest.raises(ValidationError):
        merkle.verify_inclusion(block.records[0].raw, block.prove_record(1), block.header.records_root)


def test_block_roots_checked():
    _, block = sample_block()
    swapped = Block(block.header, (block.records[1], block.records[0]) + block.records[2:])
    with pytest.raises(ValidationError) as exc:
        decode_block(swapped.encode())
    assert (exc.value.reason, exc.value.field) == ("records_root", "header.records_root")
    bad_ev = dataclasses.replace(block.header, evidence_root=b"\x00" * 32)
    with pytest.raises(ValidationError) as exc:
        decode_block(Block(bad_ev, block.records).encode())
    assert exc.value.reason == "evidence_root"
    dup = block.records + (block.records[0],)
    hdr = dataclasses.replace(block.header, records_root=merkle.root([r.raw for r in dup]))
    with pytest.raises(ValidationError) as exc:
        decode_block(Block(hdr, dup).encode())
    assert (exc.value.reason, exc.value.field) == ("duplicate_record", "block.records[4]")


def test_block_record_errors_name_the_record():
    _, block = sample_block()
    arr = block.to_array()
    arr[1][2] = arr[1][2][:-1]
    with pytest.raises(DecodeError) as exc:
        decode_block(encode(arr))
    assert exc.value.field == "block.records[2].encoding"


def test_block_limits():
    _, block = sample_block()
    with pytest.raises(DecodeError) as exc:
        Block.decode(block.encode(), max_bytes=8 << 20, max_records=3)
    assert (exc.value.reason, exc.value.field) == ("too_long", "block.records")
    with pytest.raises(DecodeError) as exc:
        Block.decode(block.encode(), max_bytes=100, max_records=10)
    assert exc.value.reason == "oversize"


# ---------------------------------------------------------------- validator sets


def test_validator_set_order_hash_and_quorum():
    keys = validator_keys(4)
    vs = valset(keys, [1, 2, 3, 4])
    assert [v.branch_id for v in vs] == sorted(k.branch_id for k in keys)
    assert vs.total_power == 10 and len(vs) == 4
    assert vs == valset(list(reversed(keys)), [4, 3, 2, 1])  # order of construction does not matter
    assert vs.hash == sha256(encode([v.to_array() for v in vs]))
    assert vs.hash != valset(keys, [1, 2, 3, 5]).hash
    assert not vs.has_two_thirds(6) and vs.has_two_thirds(7)
    assert not vs.has_one_third(3) and vs.has_one_third(4)
    assert vs.power_of(keys[3].branch_id) == 4 and vs.power_of(b"\x00" * 20) == 0
    assert keys[0].branch_id in vs and b"\x00" * 20 not in vs


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda k: [], "empty"),
        (lambda k: [Validator(k[0].branch_id, k[1].public_key, 1)], "branch_id"),
        (lambda k: [Validator(k[0].branch_id, k[0].public_key, 0)], "power"),
        (lambda k: [Validator(k[0].branch_id, k[0].public_key, 2**40 + 1)], "power"),
        (lambda k: [Validator(k[0].branch_id, k[0].public_key, True)], "power"),
        (lambda k: [Validator(k[0].branch_id, k[0].public_key, 1)] * 2, "duplicate"),
    ],
    ids=["empty", "branch_id", "zero_power", "huge_power", "bool_power", "duplicate"],
)
def test_validator_set_rejects(make, reason):
    with pytest.raises(ValidationError) as exc:
        ValidatorSet(make(validator_keys(2)))
    assert exc.value.reason == reason


# ---------------------------------------------------------------- votes and proposals


def test_vote_round_trip_and_verify():
    keys = validator_keys(2)
    vs = valset(keys)
    for bh in (BH, NIL):
        v = Vote.create(keys[0], CHAIN_ID, PREVOTE, 5, 1, bh)
        assert Vote.decode(v.encode()) == v
        assert v.is_nil == (bh == NIL)
        v.verify(vs, CHAIN_ID)
    outsider = Vote.create(key("outsider"), CHAIN_ID, PREVOTE, 5, 1, BH)
    with pytest.raises(ValidationError) as exc:
        outsider.verify(vs, CHAIN_ID)
    assert exc.value.reason == "not_validator"
    forged = dataclasses.replace(Vote.create(keys[1], CHAIN_ID, PREVOTE, 5, 1, BH), validator=keys[0].branch_id)
    with pytest.raises(SignatureError):
        forged.verify(vs, CHAIN_ID)
    # changing any signed field breaks the signature
    v = Vote.create(keys[0], CHAIN_ID, PREVOTE, 5, 1, BH)
    for changed in (dict(type=PRECOMMIT), dict(height=6), dict(round=2), dict(block_hash=BH2), dict(block_hash=NIL)):
        with pytest.raises(SignatureError):
            dataclasses.replace(v, **changed).verify(vs, CHAIN_ID)


@pytest.mark.parametrize(
    "arr, field, reason",
    [
        ([3, 1, 0, BH, b"v" * 20, b"s" * 64], "vote.type", "type"),
        ([True, 1, 0, BH, b"v" * 20, b"s" * 64], "vote.type", "type"),
        ([1, 0, 0, BH, b"v" * 20, b"s" * 64], "vote.height", "range"),
        ([1, 1, -1, BH, b"v" * 20, b"s" * 64], "vote.round", "range"),
        ([1, 1, 0, b"x" * 31, b"v" * 20, b"s" * 64], "vote.block_hash", "size"),
        ([1, 1, 0, BH, b"v" * 19, b"s" * 64], "vote.validator", "size"),
        ([1, 1, 0, BH, b"v" * 20, b"s" * 63], "vote.signature", "size"),
        ([1, 1, 0, BH, b"v" * 20], "vote", "arity"),
    ],
)
def test_vote_decode_errors(arr, field, reason):
    with pytest.raises(DecodeError) as exc:
        Vote.decode(encode(arr))
    assert (exc.value.field, exc.value.reason) == (field, reason)


def test_proposal():
    keys = validator_keys(2)
    vs = valset(keys)
    p = Proposal.create(keys[0], CHAIN_ID, 4, 2, 1, BH)
    assert Proposal.decode(p.encode()) == p
    p.verify(vs, CHAIN_ID)
    with pytest.raises(SignatureError):
        p.verify(vs, OTHER_CHAIN_ID)
    with pytest.raises(SignatureError):
        dataclasses.replace(p, pol_round=-1).verify(vs, CHAIN_ID)
    with pytest.raises(DecodeError) as exc:
        Proposal.decode(encode([4, 2, 2, BH, keys[0].branch_id, p.signature]))
    assert (exc.value.field, exc.value.reason) == ("proposal.pol_round", "range")
    with pytest.raises(DecodeError) as exc:
        Proposal.decode(encode([4, 2, 1, NIL, keys[0].branch_id, p.signature]))
    assert exc.value.field == "proposal.block_hash"
    with pytest.raises(ValidationError) as exc:
        Proposal.create(key("outsider"), CHAIN_ID, 4, 2, 1, BH).verify(vs, CHAIN_ID)
    assert exc.value.reason == "not_validator"


# ---------------------------------------------------------------- certificates


def _cert(keys, signers, *, height=7, round=0, block_hash=BH, chain_id=CHAIN_ID):
    return CommitCertificate.from_votes([Vote.create(keys[i], chain_id, PRECOMMIT, height, round, block_hash) for i in signers])


@pytest.mark.parametrize(
    "powers, signers, ok",
    [
        ([1, 1, 1], [0, 1], False),           # exactly 2/3: not enough
        ([1, 1, 1], [0, 1, 2], True),
        ([10, 10, 10, 10], [0, 1], False),
        ([10, 10, 10, 10], [0, 1, 2], True),  # 30/40 > 2/3
        ([1, 1, 1, 3], [3, 0], False),        # 4/6 == 2/3
        ([1, 1, 1, 3], [3, 0, 1], True),      # 5/6
        ([100], [0], True),
        ([2, 1], [0], False),                 # exactly 2/3 again
    ],
)
def test_certificate_quorum_edges(powers, signers, ok):
    keys = validator_keys(len(powers))
    vs = valset(keys, powers)
    cert = _cert(keys, signers)
    assert CommitCertificate.decode(cert.encode()) == cert
    if ok:
        cert.verify(vs, CHAIN_ID, height=7, block_hash=BH)
    else:
        with pytest.raises(ValidationError) as exc:
            cert.verify(vs, CHAIN_ID)
        assert (exc.value.reason, exc.value.field) == ("no_quorum", "certificate.signatures")


def test_certificate_rejections():
    keys = validator_keys(4)
    vs = valset(keys)
    cert = _cert(keys, [0, 1, 2])
    with pytest.raises(ValidationError) as exc:
        cert.verify(vs, CHAIN_ID, height=8)
    assert exc.value.reason == "height"
    with pytest.raises(ValidationError) as exc:
        cert.verify(vs, CHAIN_ID, block_hash=BH2)
    assert exc.value.reason == "block_hash"
    with pytest.raises(SignatureError) as exc:
        cert.verify(vs, OTHER_CHAIN_ID)
    assert exc.value.field == "certificate.signatures"
    # prevotes are not precommits
    prevotes = [Vote.create(keys[i], CHAIN_ID, PREVOTE, 7, 0, BH) for i in range(4)]
    as_cert = CommitCertificate(7, 0, BH, tuple(sorted((v.validator, v.signature) for v in prevotes)))
    with pytest.raises(SignatureError):
        as_cert.verify(vs, CHAIN_ID)
    # a signer from outside the set
    outsider = _cert(keys + [key("outsider")], [0, 1, 2, 4])
    with pytest.raises(ValidationError) as exc:
        outsider.verify(vs, CHAIN_ID)
    assert exc.value.reason == "not_validator"
    # round is signed
    with pytest.raises(SignatureError):
        dataclasses.replace(cert, round=1).verify(vs, CHAIN_ID)
    with pytest.raises(ValueError):
        CommitCertificate.from_votes([Vote.create(keys[0], CHAIN_ID, PRECOMMIT, 7, 0, BH),
                                      Vote.create(keys[1], CHAIN_ID, PRECOMMIT, 7, 0, BH2)])


def test_certificates_checked_together_fail_as_they_would_one_after_another(monkeypatch):
    """verify_certificates (a synced range's certificates, every signature in one call into
    C) raises exactly what verifying them one by one raises first — whichever problem each
    has and in whatever order — and accepts what that accepts, in one verify_many call."""
    import itertools

    from protocol import votes as votes_module

    keys = validator_keys(4) + [key("outsider")]
    vs = valset(keys[:4])
    bad_sig = _cert(keys, [0, 1, 2])
    bad_sig = CommitCertificate(7, 0, BH, ((bad_sig.signatures[0][0], bytes(64)),) + bad_sig.signatures[1:])
    kinds = {  # (certificate, height and block hash it is checked against)
        "good": (_cert(keys, [0, 1, 2]), 7, BH),
        "height": (_cert(keys, [0, 1, 2]), 8, BH),
        "block": (_cert(keys, [0, 1, 2]), 7, BH2),
        "signature": (bad_sig, 7, BH),
        "outsider": (_cert(keys, [0, 1, 2, 4]), 7, BH),
        "quorum": (_cert(keys, [0, 3]), 7, BH),
        "order": (CommitCertificate(7, 0, BH, tuple(reversed(_cert(keys, [0, 1, 2]).signatures))), 7, BH),
    }

    def one_by_one(items):
        for cert, height, block_hash in items:
            cert.verify(vs, CHAIN_ID, height=height, block_hash=block_hash)

    def outcome(fn, *args):  # the error's message too (which signer)
        try:
            return ("ok", fn(*args))
        except ValidationError as exc:
            return (type(exc), exc.reason, exc.field, str(exc))

    calls = []
    real = votes_module.verify_many
    monkeypatch.setattr(votes_module, "verify_many", lambda checks: calls.append(len(checks)) or real(checks))
    for n in range(4):
        for combo in itertools.product(kinds, repeat=n):
            items = [kinds[k] for k in combo]
            expected = outcome(one_by_one, items)
            calls.clear()
            got = outcome(votes_module.verify_certificates, [(c, vs, h, b) for c, h, b in items], CHAIN_ID)
            assert got == expected, combo
            assert len(calls) == 1, combo
    assert outcome(one_by_one, [kinds["good"]] * 3) == ("ok", None)


def test_certificate_counts_each_signer_once():
    """A signer listed twice must not count twice (bug fixed: verify now checks order)."""
    keys = validator_keys(4)
    vs = valset(keys)
    cert = _cert(keys, [0, 1])
    doubled = CommitCertificate(cert.height, cert.round, cert.block_hash, cert.signatures + cert.signatures[:1])
    with pytest.raises(ValidationError) as exc:
        doubled.verify(vs, CHAIN_ID)
    assert exc.value.reason == "order"
    with pytest.raises(DecodeError) as exc:
        CommitCertificate.decode(doubled.encode())
    assert exc.value.reason == "order"


# ---------------------------------------------------------------- evidence


def test_duplicate_vote_evidence():
    keys = validator_keys(4)
    vs = valset(keys)
    a = Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH2)
    b = Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH)
    ev = DuplicateVoteEvidence.from_votes(a, b)
    assert ev.vote_a.block_hash < ev.vote_b.block_hash
    assert (ev.validator, ev.height) == (keys[0].branch_id, 9)
    ev.verify(vs, CHAIN_ID)
    assert DuplicateVoteEvidence.from_array(ev.to_array()) == ev
    assert ev.hash == sha256(ev.encode())
    # nil and a block in the same round is equivocation too
    DuplicateVoteEvidence.from_votes(Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, NIL), a).verify(vs, CHAIN_ID)


@pytest.mark.parametrize(
    "other, reason",
    [
        (lambda k: Vote.create(k[1], CHAIN_ID, PREVOTE, 9, 1, BH), "mismatch"),     # another validator
        (lambda k: Vote.create(k[0], CHAIN_ID, PREVOTE, 9, 2, BH), "mismatch"),     # another round
        (lambda k: Vote.create(k[0], CHAIN_ID, PRECOMMIT, 9, 1, BH), "mismatch"),   # another type
        (lambda k: Vote.create(k[0], CHAIN_ID, PREVOTE, 10, 1, BH), "mismatch"),    # another height
        (lambda k: Vote.create(k[0], CHAIN_ID, PREVOTE, 9, 1, BH2), "not_conflicting"),
    ],
    ids=["validator", "round", "type", "height", "same_block"],
)
def test_evidence_rejected(other, reason):
    keys = validator_keys(4)
    a = Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH2)
    with pytest.raises(ValidationError) as exc:
        DuplicateVoteEvidence(a, other(keys)).verify(valset(keys), CHAIN_ID)
    assert exc.value.reason == reason


def test_evidence_signatures_checked():
    keys = validator_keys(4)
    vs = valset(keys)
    a = Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH)
    b = dataclasses.replace(a, block_hash=BH2)  # signature of a, claimed for BH2
    with pytest.raises(SignatureError):
        DuplicateVoteEvidence.from_votes(a, b).verify(vs, CHAIN_ID)
    with pytest.raises(SignatureError):
        DuplicateVoteEvidence.from_votes(a, Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH2)).verify(vs, OTHER_CHAIN_ID)


def test_evidence_decode_order():
    keys = validator_keys(1)
    a = Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH)
    b = Vote.create(keys[0], CHAIN_ID, PREVOTE, 9, 1, BH2)
    with pytest.raises(DecodeError) as exc:
        DuplicateVoteEvidence.from_array([b.to_array(), a.to_array()])
    assert (exc.value.field, exc.value.reason) == ("evidence", "order")
    with pytest.raises(DecodeError) as exc:
        DuplicateVoteEvidence.from_array([a.to_array(), a.to_array()])
    assert exc.value.reason == "order"


def test_certify_helper_builds_valid_certificate():
    state, block = sample_block()
    certify(block, validator_keys(4)[:3]).verify(state.validators, CHAIN_ID, height=1, block_hash=block.hash)


# ---------------------------------------------------------------- fast paths == checked paths
# Header and CommitCertificate accept well-formed arrays on a fast path; these compare it
# with the checked path (which names the field of any error) over mostly-valid, slightly
# broken inputs: the same object or the same error, whichever path runs.

from hypothesis import given, settings, strategies as st  # noqa: E402



odd = st.sampled_from([None, True, False, 1.5, "", "c" * 50, "c" * 51, -1, 0, 1, 2**31, 2**31 + 1, 2**53, 2**53 + 1,
                       2**62, 2**62 + 1, b"", b"x" * 19, b"x" * 20, b"x" * 21, b"x" * 31, b"x" * 32, b"x" * 33, b"x" * 64,
                       b"x" * 65, [], [b"v" * 20]])


def edge(valid, *limits):
    """Valid values, often exactly at a limit."""
    return st.one_of(valid, st.sampled_from(limits))


def near(fields):
    """Arrays of valid values (``fields``: per element, a strategy of valid values and the
    values at or just past its limits) with up to two elements replaced by a limit value
    or an odd one, sometimes cut short or one longer."""
    valid = st.tuples(*[v for v, _ in fields]).map(list)
    limit_edits = st.sampled_from([(i, v) for i, (_, limits) in enumerate(fields) for v in limits])
    edit = st.one_of(limit_edits, limit_edits, st.tuples(st.integers(0, len(fields) - 1), odd))
    ends = st.sampled_from([None, None, None, "cut", "extend"])

    def apply(args):
        arr, changes, end = args
        for i, v in changes:
            arr[i] = v
        return arr[:-1] if end == "cut" else arr + [0] if end == "extend" else arr
    return st.tuples(valid, st.lists(edit, min_size=1, max_size=2), ends).map(apply) | valid


hashes = st.binary(min_size=32, max_size=32)
hash_field = (hashes, [b"x" * 31, b"x" * 33, "h" * 32])
header_fields = [(st.just(1), [0, 2, True]), (st.sampled_from(["chain", "c" * 50]), ["", "c" * 51, b"chain"]),
                 (edge(st.integers(1, 2**62), 1, 2**62), [0, 2**62 + 1]), (edge(st.integers(0, 2**31), 0, 2**31), [-1, 2**31 + 1]),
                 (edge(st.integers(0, 2**53), 0, 2**53), [-1, 2**53 + 1]), *[hash_field] * 6,
                 (st.binary(min_size=20, max_size=20), [b"v" * 19, b"v" * 21])]


VALID_HEADER = [1, "chain", 7, 0, 1_767_225_600_000, *[bytes([i]) * 32 for i in range(6)], b"v" * 20]


def single_edits(valid: list, fields) -> list:
    """``valid`` with one element at each of its limits in turn: a deterministic floor under
    the property tests below, which mix limits, odd values and lengths at random."""
    out = []
    for i, (_, limits) in enumerate(fields):
        for v in limits:
            arr = list(valid)
            arr[i] = v
            out.append(arr)
    return out


@settings(max_examples=600, deadline=None)
@given(st.one_of(near(header_fields), st.lists(odd, max_size=13), st.sampled_from(single_edits(VALID_HEADER, header_fields))))
def test_header_fast_path_matches_checked_path(arr):
    assert outcome(Header.from_array, arr, "h") == outcome(Header._from_array_checked, arr, "h")


validator_ids = st.lists(st.binary(min_size=20, max_size=20), max_size=4).map(sorted)
pairs = validator_ids.flatmap(lambda ids: st.tuples(*[st.tuples(st.just(v), st.binary(min_size=64, max_size=64)).map(list)
                                                     for v in ids]).map(list))
certificate_fields = [(edge(st.integers(1, 2**62), 1, 2**62), [0, 2**62 + 1]), (edge(st.integers(0, 2**31), 0, 2**31), [-1, 2**31 + 1]),
                      (hashes, [b"", b"x" * 31, b"x" * 33]), (pairs, [[[b"v" * 20]], [b"v" * 20], [[b"v" * 20, b"s" * 64, b""]], [[b"v" * 20, b"s" * 63]],
                                                [[b"v" * 20, b"s" * 65]], [[b"v" * 19, b"s" * 64]], [[b"v" * 20, b"s" * 64]] * 2,
                                                [[b"w" * 20, b"s" * 64], [b"v" * 20, b"s" * 64]], [[b"v" * 20, "s" * 64]]])]
valid_certificates = st.tuples(*[v for v, _ in certificate_fields]).map(list)


def broken_signatures(cert: list):
    """A certificate whose signature list has one pair changed, repeated or swapped."""
    sigs = cert[3]
    if not sigs:
        return st.just(cert)
    k = len(sigs)
    change = st.one_of(
        st.tuples(st.integers(0, k - 1), st.integers(0, 1), odd).map(lambda t: ("set", t)),
        st.integers(0, k - 1).map(lambda i: ("repeat", i)),
        st.integers(0, k - 1).map(lambda i: ("not a pair", i)),
        st.just(("reverse", None)),
    )

    def apply(c):
        kind, arg = c
        new = [list(p) for p in sigs]
        if kind == "set":
            new[arg[0]][arg[1]] = arg[2]
        elif kind == "repeat":
            new.insert(arg, list(new[arg]))
        elif kind == "not a pair":
            new[arg] = new[arg] + [b""]
        else:
            new.reverse()
        return cert[:3] + [new]
    return change.map(apply)


@settings(max_examples=600, deadline=None)
@given(st.one_of(near(certificate_fields), valid_certificates.flatmap(broken_signatures), st.lists(odd, max_size=5),
                 st.sampled_from(single_edits([7, 0, b"b" * 32, [[b"\x01" * 20, b"s" * 64], [b"\x02" * 20, b"s" * 64]]],
                                              certificate_fields))))
def test_certificate_fast_path_matches_checked_path(arr):
    assert outcome(CommitCertificate.from_array, arr, "c") == outcome(CommitCertificate._from_array_checked, arr, "c")
