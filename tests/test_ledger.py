"""protocol/ledger.py: the state machine, block validation and build_block."""

import dataclasses

import pytest

from factories import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    OTHER_CHAIN_ID,
    all_kinds,
    build_chain,
    certify,
    key,
    make_genesis,
    make_state,
    member_keys,
    next_block,
    offer,
    profile,
    raw_record,
    record,
    status,
    validator_keys,
    withdraw,
)
from protocol import merkle
from protocol.blocks import Block, evidence_root
from protocol.errors import SignatureError, ValidationError
from protocol.ledger import LedgerState, admissible_evidence, evidence_admissible
from protocol.records import Record
from protocol.votes import PREVOTE, DuplicateVoteEvidence, Vote

M0, M1 = member_keys(2)
VALS = validator_keys(4)


def snapshot(state: LedgerState):
    return (state.height, state.last_block_hash, state.last_block_time_ms, state.state_root, list(state.entries()))


def apply_ok(state, *records):
    tx = state.begin()
    for r in records:
        tx.apply(r)
    tx.commit()


def expect_reject(state, rec, reason, field, cls=ValidationError):
    tx = state.begin()
    with pytest.raises(cls) as exc:
        tx.apply(rec)
    assert exc.value.reason == reason
    assert exc.value.field == field
    assert tx.records == [] and not tx.changes.get(rec.branch_id)


# ---------------------------------------------------------------- records on state


def test_apply_every_kind():
    state = make_state()
    assert state.state_root == merkle.EMPTY_ROOT
    recs = all_kinds(M0)
    apply_ok(state, *recs)
    assert state.entry(M0.branch_id, "profile").body == profile()
    offer_entry = state.entry(M0.branch_id, "service/cash-withdrawal")
    assert offer_entry.seq == 2 and offer_entry.body is None and offer_entry.record_hash == recs[3].hash
    status_entry = state.entry(M0.branch_id, "status/cash-withdrawal")
    assert status_entry.seq == 1 and status_entry.body is None  # a withdrawal clears the live status
    assert state.next_seq(M0.branch_id, "service/cash-withdrawal") == 3
    assert state.next_seq(M1.branch_id, "profile") == 1
    assert [s for _, e in state.entries(M0.branch_id) for s in [e.subject]] == sorted(
        ["profile", "service/cash-withdrawal", "status/cash-withdrawal"])


def test_replayed_seq():
    state = make_state()
    first = record(M0, offer(), 1)
    apply_ok(state, first)
    expect_reject(state, first, "replayed_seq", "record.seq")
    expect_reject(state, record(M0, offer(description="changed"), 1), "replayed_seq", "record.seq")
    # within one transaction too
    tx = state.begin()
    second = record(M0, offer(description="v2"), 2)
    tx.apply(second)
    with pytest.raises(ValidationError) as exc:
        tx.apply(second)
    assert exc.value.reason == "replayed_seq"


def test_seq_gap():
    state = make_state()
    expect_reject(state, record(M0, offer(), 2), "seq_gap", "record.seq")
    apply_ok(state, record(M0, offer(), 1))
    expect_reject(state, record(M0, offer(), 3), "seq_gap", "record.seq")


def test_seq_is_per_branch_and_subject():
    state = make_state()
    apply_ok(state, record(M0, offer("a"), 1), record(M0, offer("b"), 1), record(M1, offer("a"), 1),
             record(M0, profile(), 1), record(M0, status("a"), 1))


@pytest.mark.parametrize("body", [status("nope"), withdraw("nope")], ids=["status", "withdraw"])
def test_status_and_withdraw_need_an_offered_service(body):
    state = make_state()
    expect_reject(state, record(M0, body, 1), "no_such_service", "record.body.service_id")
    apply_ok(state, record(M1, offer("nope"), 1))  # another branch's offer does not count
    expect_reject(state, record(M0, body, 1), "no_such_service", "record.body.service_id")


def test_withdrawn_service_takes_no_status_or_second_withdrawal():
    state = make_state()
    apply_ok(state, record(M0, offer(), 1), record(M0, withdraw(), 2))
    expect_reject(state, record(M0, status(), 1), "no_such_service", "record.body.service_id")
    expect_reject(state, record(M0, withdraw(), 3), "no_such_service", "record.body.service_id")


def test_reoffer_after_withdraw_continues_seq():
    state = make_state()
    apply_ok(state, record(M0, offer(), 1), record(M0, status(), 1), record(M0, withdraw(), 2))
    expect_reject(state, record(M0, offer(), 1), "replayed_seq", "record.seq")
    apply_ok(state, record(M0, offer(title="Cash again"), 3))
    assert state.entry(M0.branch_id, "service/cash-withdrawal").body.title == "Cash again"
    apply_ok(state, record(M0, status(wait=1), 2))  # status seq continues too
    assert state.entry(M0.branch_id, "status/cash-withdrawal").body.wait_minutes == 1


def test_non_member_rejected():
    state = make_state()
    expect_reject(state, record(key("stranger"), offer()), "not_member", "record.branch_id")


def test_validators_may_publish():
    state = make_state()
    apply_ok(state, record(VALS[0], profile()))


def test_other_chain_rejected():
    state = make_state()
    expect_reject(state, record(M0, offer(), chain_id=OTHER_CHAIN_ID), "chain_id", "record.chain_id")


def test_bad_signature_rejected_unless_already_verified():
    state = make_state()
    forged = Record.decode(raw_record(M1, "service.offer", offer().to_array(), branch_id=M0.branch_id))
    expect_reject(state, forged, "bad_signature", "signature", SignatureError)
    tx = state.begin()
    tx.apply(forged, verify_signature=False)  # the caller vouches (mempool already verified)
    assert tx.records == [forged]


def test_record_size_limited_by_chain_params():
    state = make_state(make_genesis(params={"max_record_bytes": 300}))
    expect_reject(state, record(M0, offer()), "oversize", "record")
    small = record(M0, offer(description="", fees=(), accessibility=()))
    assert len(small.raw) <= 300
    apply_ok(state, small)


# ---------------------------------------------------------------- blocks


def test_block_with_one_invalid_record_is_invalid_and_state_unchanged():
    state = make_state()
    good = all_kinds(M0)
    block, tx, rejected = next_block(state, good)
    assert not rejected
    # same header, but one record replaced by one that does not apply (seq gap); roots recomputed
    bad_records = good[:2] + [record(M0, status(), 5)] + good[3:]
    header = dataclasses.replace(block.header, records_root=merkle.root([r.raw for r in bad_records]))
    bad = Block(header, tuple(bad_records))
    before = snapshot(state)
    with pytest.raises(ValidationError) as exc:
        state.validate_block(bad)
    assert exc.value.reason == "seq_gap"
    assert exc.value.field == "block.records[2].record.seq"
    assert snapshot(state) == before
    state.validate_block(block).commit()
    assert state.height == 1 and state.last_block_hash == block.hash


def test_state_root_mismatch():
    state = make_state()
    block, _, _ = next_block(state, all_kinds(M0))
    bad = Block(dataclasses.replace(block.header, state_root=b"\x00" * 32), block.records)
    before = snapshot(state)
    with pytest.raises(ValidationError) as exc:
        state.validate_block(bad)
    assert (exc.value.reason, exc.value.field) == ("state_root", "header.state_root")
    assert snapshot(state) == before


def test_state_root_deterministic_and_sensitive():
    batches = [all_kinds(M0), [record(M1, profile("Other")), record(M1, offer("fx", "fx"))]]
    _, s1 = build_chain(make_genesis(), batches, VALS)
    _, s2 = build_chain(make_genesis(), batches, VALS)
    assert s1.state_root == s2.state_root != merkle.EMPTY_ROOT
    changed = [all_kinds(M0), [record(M1, profile("Other")), record(M1, offer("fx", "fx", title="FX"))]]
    _, s3 = build_chain(make_genesis(), changed, VALS)
    assert s3.state_root != s1.state_root
    # same records, split differently into blocks: entry heights differ, so roots differ
    _, s4 = build_chain(make_genesis(), [batches[0] + batches[1]], VALS)
    assert s4.state_root != s1.state_root


def test_transaction_root_equals_committed_root():
    state = make_state()
    apply_ok(state, record(M1, offer("x")))
    block, tx, _ = next_block(state, all_kinds(M0))
    predicted = tx.state_root()
    assert predicted == block.header.state_root
    tx.commit()
    assert state.state_root == predicted


def test_build_block_skips_and_reports_invalid_candidates():
    state = make_state()
    apply_ok(state, record(M0, offer("kept"), 1))
    good1 = record(M0, profile(), 1)
    replay = record(M0, offer("kept"), 1)
    stranger = record(key("stranger"), offer())
    orphan_status = record(M1, status("none"), 1)
    gap = record(M1, offer(), 2)
    good2 = record(M1, offer(), 1)
    block, tx, rejected = next_block(state, [good1, replay, stranger, orphan_status, gap, good2])
    assert block.records == (good1, good2)
    assert [(r, e.reason) for r, e in rejected] == [
        (replay, "replayed_seq"), (stranger, "not_member"), (orphan_status, "no_such_service"), (gap, "seq_gap"),
    ]
    before = snapshot(state)
    state.validate_block(block)  # the built block is valid
    assert snapshot(state) == before  # validate does not commit
    tx.commit()
    assert state.height == 1 and state.entry(M1.branch_id, "service/cash-withdrawal").seq == 1


def test_build_block_limits_and_time():
    state = make_state()
    recs = [record(M0, offer(f"s{i}")) for i in range(5)]
    block, _, rejected = next_block(state, recs, time_ms=0)
    assert block.header.time_ms == GENESIS_TIME_MS + 1  # clamped after the genesis time
    from protocol.ledger import build_block

    block, _, _ = build_block(state, height=1, round=0, time_ms=GENESIS_TIME_MS + 5, proposer=VALS[0].branch_id,
                              candidates=recs, max_records=2)
    assert block.records == tuple(recs[:2])
    small = make_state(make_genesis(params={"max_block_records": 3}))
    block, _, _ = next_block(small, recs)
    assert len(block.records) == 3


def test_too_many_records_in_block():
    state = make_state(make_genesis(params={"max_block_records": 2}))
    big = make_state()
    block, _, _ = next_block(big, all_kinds(M0)[:3])
    block = Block(dataclasses.replace(block.header, prev_hash=state.last_block_hash), block.records)
    with pytest.raises(ValidationError) as exc:
        state.validate_block(block)
    assert exc.value.reason == "too_many_records"


# ---------------------------------------------------------------- header checks


@pytest.mark.parametrize(
    "change, reason, field",
    [
        (dict(chain_id="other"), "chain_id", "header.chain_id"),
        (dict(height=2), "height", "header.height"),
        (dict(prev_hash=b"\x01" * 32), "prev_hash", "header.prev_hash"),
        (dict(time_ms=GENESIS_TIME_MS), "time", "header.time_ms"),
        (dict(time_ms=GENESIS_TIME_MS - 1), "time", "header.time_ms"),
        (dict(validators_hash=b"\x02" * 32), "validators_hash", "header.validators_hash"),
        (dict(next_validators_hash=b"\x02" * 32), "validators_hash", "header.validators_hash"),
        (dict(proposer=M0.branch_id), "proposer", "header.proposer"),
    ],
    ids=["chain_id", "height", "prev_hash", "time_equal", "time_before", "validators_hash", "next_validators_hash", "proposer"],
)
def test_header_chain_checks(change, reason, field):
    state = make_state()
    block, _, _ = next_block(state, [])
    state.check_header(block.header)
    with pytest.raises(ValidationError) as exc:
        state.check_header(dataclasses.replace(block.header, **change))
    assert (exc.value.reason, exc.value.field) == (reason, field)


def test_expected_proposer_and_second_height():
    genesis = make_genesis()
    chain, state = build_chain(genesis, [all_kinds(M0)], VALS)
    block, _, _ = next_block(state, [])
    state.check_header(block.header, expected_proposer=block.header.proposer)
    with pytest.raises(ValidationError) as exc:
        other = next(v.branch_id for v in state.validators if v.branch_id != block.header.proposer)
        state.check_header(block.header, expected_proposer=other)
    assert exc.value.reason == "proposer"
    assert block.header.prev_hash == state.last_block_hash and block.height == 2


# ---------------------------------------------------------------- commit with certificates, evidence


def test_commit_block_checks_certificate():
    genesis = make_genesis()
    state = LedgerState(genesis)
    block, _, _ = next_block(state, all_kinds(M0))
    before = snapshot(state)
    with pytest.raises(ValidationError) as exc:
        state.commit_block(block, certify(block, VALS[:2]))  # 20/40 power
    assert exc.value.reason == "no_quorum"
    with pytest.raises(ValidationError) as exc:
        other, _, _ = next_block(state, [])
        state.commit_block(block, certify(other, VALS[:3]))
    assert exc.value.reason == "block_hash"
    assert snapshot(state) == before
    state.commit_block(block, certify(block, VALS[:3]))
    assert state.height == 1 and state.last_block_hash == block.hash


def _evidence(height=1, block_hashes=(b"\x01" * 32, b"\x02" * 32)):
    a, b = (Vote.create(VALS[1], CHAIN_ID, PREVOTE, height, 0, bh) for bh in block_hashes)
    return DuplicateVoteEvidence.from_votes(a, b)


def test_evidence_in_blocks():
    genesis = make_genesis()
    chain, state = build_chain(genesis, [[]], VALS)  # height 1
    ev = _evidence(1)
    block, tx, _ = next_block(state, [], evidence=[ev])
    assert block.header.evidence_root == evidence_root([ev])
    state.validate_block(block).commit()
    assert ev.hash in state.committed_evidence
    # committed evidence cannot come back
    again, _, _ = next_block(state, [], evidence=[ev])
    with pytest.raises(ValidationError) as exc:
        state.validate_block(again)
    assert (exc.value.reason, exc.value.field) == ("bad_evidence", "block.evidence[0]")


@pytest.mark.parametrize(
    "evidence, index",
    [
        (lambda: [_evidence(5)], 0),                                # from the future
        (lambda: [_evidence(1), _evidence(1)], 1),                 # repeated in one block (bug fixed)
        (lambda: [DuplicateVoteEvidence(_evidence(1).vote_a, dataclasses.replace(_evidence(1).vote_b, round=1))], 0),
        (lambda: [DuplicateVoteEvidence.from_votes(*(Vote.create(key("x"), CHAIN_ID, PREVOTE, 1, 0, bh)
                                                     for bh in (b"\x01" * 32, b"\x02" * 32)))], 0),  # non-validator
    ],
    ids=["future", "repeated", "mismatch", "non_validator"],
)
def test_bad_evidence(evidence, index):
    chain, state = build_chain(make_genesis(), [[]], VALS)
    block, _, _ = next_block(state, [], evidence=evidence())
    before = snapshot(state)
    with pytest.raises(ValidationError) as exc:
        state.validate_block(block)
    assert (exc.value.reason, exc.value.field) == ("bad_evidence", f"block.evidence[{index}]")
    assert snapshot(state) == before


def test_replay_through_commit_block():
    genesis = make_genesis()
    batches = [all_kinds(M0), [record(M1, profile("B")), record(M1, offer("loan-1", "loan"))], []]
    chain, built = build_chain(genesis, batches, VALS)
    replica = LedgerState(genesis)
    from factories import decode_block

    for data, cert in chain:
        replica.commit_block(decode_block(data), cert)
    assert replica.state_root == built.state_root
    assert replica.height == built.height == 3
    assert replica.last_block_hash == built.last_block_hash


def test_admissible_evidence_is_what_the_next_block_may_carry():
    """A proposer holds evidence of the height it is deciding (an equivocation seen during
    it): a block carrying it is refused by everyone ("from the future"), round after round,
    so the proposer keeps it for the block after."""
    chain, state = build_chain(make_genesis(), [[]], VALS)  # height 1: the next block is 2
    now, current, future = _evidence(1), _evidence(2), _evidence(3)
    stranger = DuplicateVoteEvidence.from_votes(*(Vote.create(key("x"), CHAIN_ID, PREVOTE, 1, 0, bh)
                                                  for bh in (b"\x01" * 32, b"\x02" * 32)))
    assert admissible_evidence(state, [current, now, future, now, stranger]) == [now]
    assert [evidence_admissible(state, e) for e in (current, now, future, stranger)] == [False, True, False, False]
    block, _, _ = next_block(state, [], evidence=admissible_evidence(state, [current, now]))
    state.validate_block(block).commit()
    assert admissible_evidence(state, [current, now]) == [current]  # one height later it may go in; the other is committed
    block, _, _ = next_block(state, [], evidence=[current])
    state.validate_block(block)
