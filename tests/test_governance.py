"""protocol/governance.py through protocol/ledger.py: proposals, votes, tallies,
validator-set switches, key rotation, jailing, and the state surviving a restore."""

import pytest

from factories import CHAIN_ID, certify, key, make_genesis, member_keys, next_block, offer, profile, record, validator_keys
from protocol.errors import SignatureError, ValidationError
from protocol.governance import SYSTEM_ID, Action, GovProposal, GovVote, KeyRotation
from protocol.ledger import LedgerState
from protocol.records import Record
from protocol.votes import PRECOMMIT, PREVOTE, CommitCertificate, DuplicateVoteEvidence, Vote

VALS = validator_keys(4)
M0, M1 = member_keys(2)
NEW = key("new-branch")


def commit(state: LedgerState, records=(), evidence=()):
    """Build, check like a peer would (validate_block on a copy's view) and commit one block."""
    block, tx, rejected = next_block(state, records, evidence=evidence)
    assert not rejected, rejected
    peer = LedgerState(state.genesis)
    peer.restore(height=state.height, last_block_hash=state.last_block_hash,
                 last_block_time_ms=state.last_block_time_ms, entries=list(state.entries()),
                 committed_evidence=list(state.committed_evidence))
    peer.commit_block(block, certify(block, signers_of(state)))
    tx.commit()
    assert peer.state_root == state.state_root
    return block


def signers_of(state):
    by_id = {k.branch_id: k for k in (*VALS, M0, M1, NEW)}
    return [by_id[v.branch_id] for v in state.validators]


def propose(signer, name, action, expires=50, seq=1):
    return record(signer, GovProposal(name, action, expires), seq)


def vote(signer, proposal_record, yes=True, seq=1):
    return record(signer, GovVote(proposal_record.hash, yes), seq)


def passed(state, proposal_record, voters=VALS[:3]):
    commit(state, [proposal_record])
    commit(state, [vote(v, proposal_record) for v in voters])


def system_entry(state, subject):
    e = state.entry(SYSTEM_ID, subject)
    return None if e is None else e.body


def test_admit_member_then_it_publishes():
    state = LedgerState(make_genesis())
    early = record(NEW, profile(), 1)
    with pytest.raises(ValidationError) as exc:
        state.begin().apply(early)
    assert exc.value.reason == "not_member"
    p = propose(VALS[0], "admit-new", Action("admit_member", name="New Branch", public_key=NEW.public_key.raw))
    commit(state, [p])
    assert system_entry(state, f"proposal/{p.hash.hex()}").status == "open"
    commit(state, [vote(VALS[0], p), vote(VALS[1], p)])  # 20 of 40: not yet
    assert NEW.branch_id not in state.members
    commit(state, [vote(VALS[2], p)])  # 30 of 40 > 2/3
    decided = system_entry(state, f"proposal/{p.hash.hex()}")
    assert (decided.status, decided.decided_height) == ("passed", state.height)
    assert state.members[NEW.branch_id] == NEW.public_key
    assert NEW.branch_id not in state.validators  # admitted with power 0
    commit(state, [early])
    assert state.entry(NEW.branch_id, "profile") is not None


def test_set_power_switches_the_validator_set_two_heights_later():
    state = LedgerState(make_genesis())
    p = propose(VALS[0], "m0-validates", Action("set_power", branch_id=M0.branch_id, power=10))
    commit(state, [p])
    h = state.height + 1
    block_h = commit(state, [vote(v, p) for v in VALS[:3]])  # passes at h
    assert block_h.height == h
    old = make_genesis().validators
    assert block_h.header.validators_hash == old.hash and block_h.header.next_validators_hash == old.hash
    assert M0.branch_id in state.next_validators and M0.branch_id not in state.validators
    block_h1 = commit(state, [])
    assert block_h1.header.validators_hash == old.hash
    assert block_h1.header.next_validators_hash == state.validators.hash != old.hash  # announced
    block_h2 = commit(state, [])  # signed by the new set (certify() used all five keys)
    assert block_h2.header.validators_hash == state.validators.hash
    assert M0.branch_id in state.validators and state.validators.total_power == 50


def test_old_set_cannot_certify_after_the_switch():
    state = LedgerState(make_genesis())
    passed(state, propose(VALS[0], "drop-v3", Action("set_power", branch_id=VALS[3].branch_id, power=0)))
    commit(state, [])
    assert VALS[3].branch_id not in state.validators
    block, tx, _ = next_block(state, [])
    # three of the old four are 30 of the new 30: enough; the dropped one adds nothing
    state.validate_block(block)
    cert = certify(block, [VALS[3], VALS[0]])
    with pytest.raises(ValidationError):
        state.commit_block(block, cert)


@pytest.mark.parametrize("power,reason", [(20, "power_change_too_large"), (14, "power_change_too_large")])
def test_power_change_bound_refuses(power, reason):
    state = LedgerState(make_genesis())
    p = propose(VALS[0], "big", Action("set_power", branch_id=M0.branch_id, power=power))
    passed(state, p)
    decided = system_entry(state, f"proposal/{p.hash.hex()}")
    assert (decided.status, decided.reason) == ("refused", reason)
    assert M0.branch_id not in state.next_validators


@pytest.mark.parametrize(
    "make,reason,field",
    [
        (lambda: propose(M0, "x", Action("set_power", branch_id=M0.branch_id, power=1)), "not_validator", "record.branch_id"),
        (lambda: propose(VALS[0], "x", Action("retire_member", branch_id=NEW.branch_id)), "not_member", "record.body.action.branch_id"),
        (lambda: propose(VALS[0], "x", Action("admit_member", name="Member 0", public_key=NEW.public_key.raw)), "duplicate_name", "record.body.action.name"),
        (lambda: propose(VALS[0], "x", Action("admit_member", name="Other", public_key=M1.public_key.raw)), "duplicate_key", "record.body.action.public_key"),
        (lambda: propose(VALS[0], "x", Action("set_param", name="max_block_records", value=10), expires=1), "expiry", "record.body.expires_height"),
        (lambda: record(VALS[0], GovVote(b"\x07" * 32, True)), "no_such_proposal", "record.body.proposal"),
        (lambda: propose(VALS[0], "x", Action("set_param", name="max_block_bytes", value=16 << 20)), "above_genesis",
         "record.body.action.value"),
        (lambda: record(M0, KeyRotation(M1.public_key.raw)), "duplicate_key", "record.body.public_key"),
    ],
)
def test_refused_governance_records(make, reason, field):
    state = LedgerState(make_genesis())
    commit(state, [])
    tx = state.begin()
    with pytest.raises(ValidationError) as exc:
        tx.apply(make())
    assert (exc.value.reason, exc.value.field) == (reason, field)
    assert tx.records == [] and not tx.changes


def test_a_validator_may_hold_sixteen_open_proposals():
    state = LedgerState(make_genesis())
    many = [propose(VALS[0], f"p{i}", Action("set_param", name="max_clock_drift_ms", value=20_000 + i)) for i in range(16)]
    commit(state, many)
    with pytest.raises(ValidationError) as exc:
        state.begin().apply(propose(VALS[0], "p16", Action("set_param", name="max_clock_drift_ms", value=1)))
    assert exc.value.reason == "too_many_proposals"
    state.begin().apply(propose(VALS[1], "other", Action("set_param", name="max_clock_drift_ms", value=1)))


def test_proposal_expires_and_late_votes_are_refused():
    state = LedgerState(make_genesis())
    p = propose(VALS[0], "slow", Action("set_param", name="max_block_records", value=100), expires=3)
    commit(state, [p])  # height 1
    commit(state, [vote(VALS[0], p)])
    commit(state, [])  # height 3: expires at its end
    assert system_entry(state, f"proposal/{p.hash.hex()}").status == "expired"
    with pytest.raises(ValidationError) as exc:
        state.begin().apply(vote(VALS[1], p))
    assert exc.value.reason == "no_such_proposal"


def test_a_later_vote_replaces_the_earlier():
    state = LedgerState(make_genesis())
    p = propose(VALS[0], "p", Action("set_param", name="max_block_records", value=100))
    commit(state, [p])
    commit(state, [vote(VALS[0], p, yes=False), vote(VALS[1], p), vote(VALS[2], p)])
    assert system_entry(state, f"proposal/{p.hash.hex()}").status == "open"
    commit(state, [vote(VALS[0], p, yes=True, seq=2)])
    assert system_entry(state, f"proposal/{p.hash.hex()}").status == "passed"
    commit(state, [])
    assert state.params.max_block_records == 100


def test_key_rotation():
    state = LedgerState(make_genesis())
    commit(state, [record(M0, profile(), 1)])
    rotate = record(M0, KeyRotation(NEW.public_key.raw))
    after_old = record(M0, offer(), 1)  # signed by the old key
    tx = state.begin()
    tx.apply(rotate)
    with pytest.raises(SignatureError):
        tx.apply(after_old, verify_signature=False)  # even if pre-verified against the old key
    fresh = Record.create(NEW, CHAIN_ID, 1, record(M0, offer()).time_ms, offer(), branch_id=M0.branch_id)
    commit(state, [rotate, fresh])
    assert state.members[M0.branch_id] == NEW.public_key
    assert state.entry(M0.branch_id, "service/cash-withdrawal") is not None


def test_a_rotated_branch_is_always_checked_against_the_key_in_force():
    """Signatures checked ahead of apply (mempool, block sync) were checked against the
    key of the state then; after a rotation they do not count, in later blocks too,
    and after rotating back to the first key."""
    state = LedgerState(make_genesis())
    commit(state, [record(M0, KeyRotation(NEW.public_key.raw))])
    stale = record(M0, profile(), 1)  # the old key, "verified" by a node that had not seen the rotation
    block, tx, rejected = next_block(state, [stale])
    assert [r for r, _ in rejected] == [stale] and not block.records
    tx = state.begin()
    with pytest.raises(SignatureError):
        tx.apply_all([stale], verified={stale.hash})
    back = Record.create(NEW, CHAIN_ID, 2, stale.time_ms, KeyRotation(M0.public_key.raw), branch_id=M0.branch_id)
    commit(state, [back])
    assert state.members[M0.branch_id] == M0.public_key
    forged = Record.create(NEW, CHAIN_ID, 1, stale.time_ms, profile(), branch_id=M0.branch_id)  # the retired key
    with pytest.raises(SignatureError):
        state.begin().apply_all([forged], verified={forged.hash})
    commit(state, [stale])  # the first key is in force again


def test_a_validator_rotates_its_key_and_signs_with_the_new_one():
    state = LedgerState(make_genesis())
    commit(state, [record(VALS[1], KeyRotation(NEW.public_key.raw))])
    assert state.next_validators.get(VALS[1].branch_id).public_key == NEW.public_key
    commit(state, [])  # the switch: the rotated key signs from here
    block, tx, _ = next_block(state, [])
    keys = [VALS[0], NEW, VALS[2]]  # 30 of 40, with the rotated validator's new key
    state.commit_block(block, CommitCertificate.from_votes(
        [Vote.create(k, CHAIN_ID, PRECOMMIT, block.height, 0, block.hash, validator=VALS[1].branch_id if k is NEW else None)
         for k in keys]))
    assert state.height == block.height


def test_equivocation_jails_the_validator():
    state = LedgerState(make_genesis())
    commit(state, [])
    a, b = (Vote.create(VALS[3], CHAIN_ID, PREVOTE, 1, 0, h) for h in (b"\x01" * 32, b"\x02" * 32))
    commit(state, [], evidence=[DuplicateVoteEvidence.from_votes(a, b)])
    assert VALS[3].branch_id in state.validators and VALS[3].branch_id not in state.next_validators
    assert system_entry(state, f"member/{VALS[3].branch_id.hex()}").jailed
    # a passed set_power restores it, within the bound: back to 10 of 30 in force is a third
    commit(state, [])
    back = propose(VALS[0], "unjail", Action("set_power", branch_id=VALS[3].branch_id, power=10))
    passed(state, back, VALS[:3])
    assert system_entry(state, f"proposal/{back.hash.hex()}").reason == "power_change_too_large"
    passed(state, propose(VALS[0], "unjail-9", Action("set_power", branch_id=VALS[3].branch_id, power=9)), VALS[:3])
    assert state.next_validators.power_of(VALS[3].branch_id) == 9


def test_a_proposer_that_equivocates_is_jailed_and_the_evidence_round_trips():
    from protocol.blocks import Block
    from protocol.votes import DuplicateProposalEvidence, Proposal

    state = LedgerState(make_genesis())
    commit(state, [])
    a, b = (Proposal.create(VALS[2], CHAIN_ID, 1, 0, -1, h) for h in (b"\x01" * 32, b"\x02" * 32))
    ev = DuplicateProposalEvidence.from_proposals(b, a)
    block = commit(state, [], evidence=[ev])
    again = Block.decode(block.encode(), max_bytes=1 << 20, max_records=10, max_evidence=10)
    assert again.evidence == (ev,) and again.hash == block.hash
    assert VALS[2].branch_id not in state.next_validators
    assert system_entry(state, f"member/{VALS[2].branch_id.hex()}").jailed


def test_governance_state_survives_a_restore():
    state = LedgerState(make_genesis())
    p = propose(VALS[0], "m0", Action("set_power", branch_id=M0.branch_id, power=10))
    q = propose(VALS[1], "open-one", Action("set_param", name="max_block_records", value=100))
    passed(state, p)
    commit(state, [q])
    again = LedgerState(state.genesis)
    again.restore(height=state.height, last_block_hash=state.last_block_hash,
                  last_block_time_ms=state.last_block_time_ms, entries=list(state.entries()))
    assert again.state_root == state.state_root
    assert again.validators.hash == state.validators.hash and again.next_validators.hash == state.next_validators.hash
    assert set(again.gov.proposals) == {q.hash} and again.params == state.params
    assert dict(again.members) == dict(state.members)


def test_a_record_proof_walks_the_certified_set_changes():
    """§15.6: after the set changed, a record proof carries each certified change from
    genesis on, and verifies against the genesis file alone."""
    from protocol.proofs import RecordProof, verify_record_proof

    genesis = make_genesis()
    state = LedgerState(genesis)
    passed(state, propose(VALS[0], "m0", Action("set_power", branch_id=M0.branch_id, power=10)))
    announcing = commit(state, [])  # announces the new set
    changes = [(announcing.header, certify(announcing, VALS), state.validators)]
    assert announcing.header.next_validators_hash != announcing.header.validators_hash
    rec = record(M1, profile(), 1)
    block = commit(state, [rec])
    cert = certify(block, signers_of_set(state, block))
    proof = RecordProof(CHAIN_ID, rec.raw, block.height, 0, block.prove_record(0), block.header, cert, tuple(changes))
    assert verify_record_proof(RecordProof.from_json(proof.to_json()), genesis) == rec
    bare = RecordProof(CHAIN_ID, rec.raw, block.height, 0, block.prove_record(0), block.header, cert)
    with pytest.raises(ValidationError) as exc:
        verify_record_proof(bare, genesis)
    assert exc.value.reason == "wrong_validators"
    forged_set = make_genesis(validators=[*VALS[:3], M1], members=[]).validators  # a set the old one never certified
    with pytest.raises(ValidationError) as exc:
        verify_record_proof(RecordProof(CHAIN_ID, rec.raw, block.height, 0, block.prove_record(0), block.header, cert,
                                        ((announcing.header, changes[0][1], forged_set),)), genesis)
    assert exc.value.reason == "bad_set_change"
    weak = certify(announcing, VALS[:2])  # 20 of 40 cannot move trust to a new set
    with pytest.raises(ValidationError) as exc:
        verify_record_proof(RecordProof(CHAIN_ID, rec.raw, block.height, 0, block.prove_record(0), block.header, cert,
                                        ((announcing.header, weak, changes[0][2]),)), genesis)
    assert exc.value.reason == "bad_certificate"


def signers_of_set(state, block):
    """Keys of the set that signed ``block`` (the state after it still names that set as current
    unless it switched at this block; here it did not)."""
    by_id = {k.branch_id: k for k in (*VALS, M0, M1, NEW)}
    return [by_id[v.branch_id] for v in state.validators]
