"""Record proofs verify with only the genesis, and every tampered part is caught."""

import dataclasses
import json

import pytest

import factories as f
from protocol.errors import DecodeError, ValidationError
from protocol.ledger import build_block
from protocol.proofs import RecordProof, verify_record_proof
from protocol.records import Record
from protocol.votes import PRECOMMIT, CommitCertificate, Vote

VALIDATORS = f.validator_keys(4)
MEMBERS = f.member_keys(2)
GENESIS = f.make_genesis(VALIDATORS, MEMBERS)


def _chain():
    m0, m1 = MEMBERS
    batches = [
        [f.record(m0, f.profile(), 1), f.record(m0, f.offer(), 1), f.record(m1, f.offer("fx", "fx"), 1)],
        [f.record(m1, f.offer("loan-home", "loan"), 1), f.record(m0, f.status(), 1), f.record(m0, f.withdraw(), 2),
         f.record(VALIDATORS[0], f.profile("Validator branch"), 1)],
    ]
    out, _ = f.build_chain(GENESIS, batches, VALIDATORS[:3])  # 30 of 40 power: > 2/3
    return [(f.decode_block(b), cert) for b, cert in out]


CHAIN = _chain()


def proof_for(height: int, index: int) -> RecordProof:
    block, cert = CHAIN[height - 1]
    return RecordProof(GENESIS.chain_id, block.records[index].raw, height, index, block.prove_record(index), block.header, cert)


ALL = [(h, i) for h, (b, _) in enumerate(CHAIN, 1) for i in range(len(b.records))]


@pytest.mark.parametrize("height, index", ALL)
def test_every_record_proves_and_survives_json(height, index):
    proof = proof_for(height, index)
    again = RecordProof.from_json(json.loads(json.dumps(proof.to_json())))
    assert again == proof
    record = verify_record_proof(again, GENESIS)
    assert record == CHAIN[height - 1][0].records[index]


def _reason(proof, genesis=GENESIS) -> str:
    with pytest.raises(ValidationError) as info:
        verify_record_proof(proof, genesis)
    return info.value.reason


def test_tampering_each_part_is_caught():
    p = proof_for(2, 1)
    block, cert = CHAIN[1]
    other_block, other_cert = CHAIN[0]
    hdr = p.header
    cases = {
        "record bytes": (dataclasses.replace(p, record=block.records[2].raw), "bad_proof"),
        "record index": (dataclasses.replace(p, index=2), "bad_proof"),
        "proof path": (dataclasses.replace(p, proof=dataclasses.replace(p.proof, path=(b"\x00" * 32,) + p.proof.path[1:])), "bad_proof"),
        "proof shape": (dataclasses.replace(p, proof=dataclasses.replace(p.proof, path=p.proof.path[:-1])), "bad_proof"),
        "records root": (dataclasses.replace(p, header=dataclasses.replace(hdr, records_root=b"\x11" * 32)), "bad_certificate"),
        "state root": (dataclasses.replace(p, header=dataclasses.replace(hdr, state_root=b"\x11" * 32)), "bad_certificate"),
        "header height": (dataclasses.replace(p, header=dataclasses.replace(hdr, height=1)), "wrong_height"),
        "claimed height": (dataclasses.replace(p, height=1), "wrong_height"),
        "header chain": (dataclasses.replace(p, header=dataclasses.replace(hdr, chain_id="branchnet-other")), "wrong_chain"),
        "proof chain": (dataclasses.replace(p, chain_id="branchnet-other"), "wrong_chain"),
        "validators": (dataclasses.replace(p, header=dataclasses.replace(hdr, validators_hash=b"\x22" * 32)), "wrong_validators"),
        "other block's cert": (dataclasses.replace(p, certificate=other_cert), "bad_certificate"),
        "too few signers": (dataclasses.replace(p, certificate=dataclasses.replace(cert, signatures=cert.signatures[:2])), "bad_certificate"),
        "forged signature": (dataclasses.replace(p, certificate=dataclasses.replace(
            cert, signatures=((cert.signatures[0][0], bytes(64)),) + cert.signatures[1:])), "bad_certificate"),
    }
    for name, (proof, reason) in cases.items():
        assert _reason(proof) == reason, name


def test_outsiders_cannot_certify():
    """A header certified by keys outside genesis, even with a consistent Merkle proof, is refused."""
    outsiders = f.validator_keys(8)[4:]
    p = proof_for(1, 0)
    votes = [Vote.create(k, GENESIS.chain_id, PRECOMMIT, 1, 0, p.header.hash) for k in outsiders]
    assert _reason(dataclasses.replace(p, certificate=CommitCertificate.from_votes(votes))) == "bad_certificate"


def test_record_membership_is_checked():
    """Same validators, another genesis that admits a stranger: its certified record is not provable here."""
    stranger = f.key("stranger")
    other_genesis = f.make_genesis(VALIDATORS, MEMBERS + [stranger])
    out, _ = f.build_chain(other_genesis, [[f.record(stranger, f.offer(), 1)]], VALIDATORS)
    block = f.decode_block(out[0][0])
    proof = RecordProof(GENESIS.chain_id, block.records[0].raw, 1, 0, block.prove_record(0), block.header, out[0][1])
    assert verify_record_proof(proof, other_genesis) == block.records[0]
    assert _reason(proof, GENESIS) == "not_member"


def test_record_signature_is_checked():
    """Even a certified block cannot vouch for a record with a forged signature."""
    good = f.record(MEMBERS[0], f.offer(), 1)
    forged = Record.decode(good.raw[:-64] + bytes(64))
    state = f.make_state(GENESIS)
    block, _, rejected = build_block(state, height=1, round=0, time_ms=f.GENESIS_TIME_MS + 1000,
                                     proposer=f.proposer_of(state), candidates=[forged], verified={forged.hash})
    assert not rejected
    proof = RecordProof(GENESIS.chain_id, forged.raw, 1, 0, block.prove_record(0), block.header, f.certify(block, VALIDATORS))
    assert _reason(proof) == "bad_signature"


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.pop("header"), "header"),
        (lambda d: d.update(record="zz"), "record"),
        (lambda d: d.update(height="1"), "height"),
        (lambda d: d.update(height=0), "height"),
        (lambda d: d["proof"].update(path=["00"]), "proof.path[0]"),
        (lambda d: d["proof"].update(index=99), "proof.index"),
        (lambda d: d.update(certificate="c0"), "certificate"),
        (lambda d: d.update(header=d["header"][:-2]), "header"),
    ],
)
def test_malformed_json_bundle(change, field):
    doc = proof_for(1, 1).to_json()
    change(doc)
    with pytest.raises(DecodeError) as info:
        RecordProof.from_json(doc)
    assert info.value.field.startswith(field)
