"""Record proofs for branches whose key is not the genesis one (PROTOCOL.md §15.6): a
member admitted by governance, or a key rotated since genesis. The proof carries the
branch's member entry with its state path under a later certified header, and the
certified set changes up to that header; a verifier holding only the genesis file
checks it offline. Every tampering is refused with its own reason."""

import dataclasses

import pytest

from openapi_check import validate_schema
from factories import CHAIN_ID, certify, key, make_genesis, offer, profile, record
from protocol import merkle
from protocol.encoding import decode, encode
from protocol.errors import DecodeError, ValidationError
from protocol.governance import SYSTEM_ID, Action, GovVote, KeyRotation
from protocol.ledger import LedgerState
from protocol.proofs import MemberProof, RecordProof, verify_record_proof
from protocol.records import Record
from test_governance import M0, NEW, VALS, commit, propose

ALL = {k.branch_id: k for k in (*VALS, M0, NEW)}


def keys_of(valset):
    return [ALL[v.branch_id] for v in valset]


class Chain:
    """A state, its blocks and the certified set changes, as a node keeps them."""

    def __init__(self):
        self.genesis = make_genesis()
        self.state = LedgerState(self.genesis)
        self.blocks = {}
        self.changes = []

    def commit(self, records=()):
        signing = self.state.validators
        block = commit(self.state, records)
        self.blocks[block.height] = (block, certify(block, keys_of(signing)))
        if block.header.next_validators_hash != block.header.validators_hash:
            self.changes.append((block.header, self.blocks[block.height][1], self.state.validators))
        return block

    def proof(self, rec, member=None):
        height = next(h for h, (b, _) in self.blocks.items() if rec in b.records)
        block, cert = self.blocks[height]
        top = member.header.height if member else height
        return RecordProof(CHAIN_ID, rec.raw, height, block.records.index(rec), block.prove_record(block.records.index(rec)),
                           block.header, cert, tuple(c for c in self.changes if c[0].height < top), member)

    def member(self, branch_id):
        """The member entry of ``branch_id`` under the last block's state root."""
        block, cert = self.blocks[self.state.height]
        return MemberProof.of(block.header, cert, self.state.entry_proof(SYSTEM_ID, f"member/{branch_id.hex()}"))


def admitted_then_voted_in():
    """NEW is admitted (blocks 1-2), publishes at 3, gets power (4-5; block 6 announces the
    set signing from 7 on), and the member entry is taken after block 8."""
    c = Chain()
    admit = propose(VALS[0], "admit-new", Action("admit_member", name="New Branch", public_key=NEW.public_key.raw))
    c.commit([admit])
    c.commit([record(v, GovVote(admit.hash, True)) for v in VALS[:3]])
    rec = record(NEW, profile(), 1)
    c.commit([rec])
    power = propose(VALS[0], "new-power", Action("set_power", branch_id=NEW.branch_id, power=10))
    c.commit([power])
    c.commit([record(v, GovVote(power.hash, True)) for v in VALS[:3]])
    for _ in range(3):
        c.commit()
    assert [h.height for h, _, _ in c.changes] == [6] and c.state.height == 8
    return c, rec


def test_a_record_of_a_member_admitted_after_genesis_verifies_offline():
    c, rec = admitted_then_voted_in()
    proof = c.proof(rec, c.member(NEW.branch_id))
    assert verify_record_proof(RecordProof.from_json(proof.to_json()), c.genesis) == rec
    assert "member" not in c.proof(rec).to_json()  # absent unless carried
    validate_schema(proof.to_json(), {"$ref": "#/components/schemas/RecordProof"})  # what the API documents

    with pytest.raises(ValidationError) as exc:  # no member entry: genesis does not know the branch
        verify_record_proof(c.proof(rec), c.genesis)
    assert exc.value.reason == "not_member"
    with pytest.raises(ValidationError) as exc:  # the member header is above a set change the proof leaves out
        verify_record_proof(dataclasses.replace(proof, set_changes=()), c.genesis)
    assert (exc.value.reason, exc.value.field) == ("wrong_validators", "member.header.validators_hash")


def _tampered(proof, **changes):
    return dataclasses.replace(proof, member=dataclasses.replace(proof.member, **changes))


def _row_with(leaf, **fields):
    subject, seq, record_hash, height, row = decode(leaf, max_size=4096)
    name, public_key, power, jailed, rotated = row
    row = [fields.get("name", name), fields.get("public_key", public_key), fields.get("power", power),
           fields.get("jailed", jailed), rotated]
    return encode([fields.get("subject", subject), seq, record_hash, height, row])


def test_a_tampered_member_proof_is_refused_with_a_reason():
    c, rec = admitted_then_voted_in()
    proof = c.proof(rec, c.member(NEW.branch_id))
    m = proof.member
    other = key("someone-else")
    flipped_top = merkle.InclusionProof(m.top.index, m.top.tree_size, (bytes(32),) + m.top.path[1:])
    early, early_cert = c.blocks[2]
    cases = {
        # another key in the entry: the path no longer leads to the certified state root
        "key": (_tampered(proof, entry=_row_with(m.entry, public_key=other.public_key.raw)), "bad_state_proof"),
        "power": (_tampered(proof, entry=_row_with(m.entry, power=7)), "bad_state_proof"),
        "top_proof": (_tampered(proof, top=flipped_top), "bad_state_proof"),
        "branch_path": (_tampered(proof, branch_path=(bytes(32),) + m.branch_path[1:]), "bad_state_proof"),
        "short_path": (_tampered(proof, branch_path=m.branch_path[:-1]), "bad_state_proof"),
        "not_an_entry": (_tampered(proof, entry=encode("member")), "bad_member_proof"),
        # another branch's entry (here: a well-formed row under another subject)
        "subject": (_tampered(proof, entry=_row_with(m.entry, subject=f"member/{VALS[1].branch_id.hex()}")), "bad_member_proof"),
        # a member header below the record's height
        "below": (_tampered(proof, header=early.header, certificate=early_cert), "bad_member_proof"),
        # the member header's certificate by too little of the set in force (30 of 50)
        "weak": (_tampered(proof, certificate=certify(c.blocks[8][0], VALS[:3])), "bad_certificate"),
    }
    for name, (bad, reason) in cases.items():
        with pytest.raises(ValidationError) as exc:
            verify_record_proof(bad, c.genesis)
        assert exc.value.reason == reason, (name, exc.value)


def test_a_retired_members_entry_proves_nothing():
    c, rec = admitted_then_voted_in()
    retire = propose(VALS[1], "retire-new", Action("retire_member", branch_id=NEW.branch_id))
    c.commit([retire])
    c.commit([record(v, GovVote(retire.hash, True)) for v in VALS])  # 40 of 50
    assert NEW.branch_id not in c.state.members
    with pytest.raises(ValidationError) as exc:
        verify_record_proof(c.proof(rec, c.member(NEW.branch_id)), c.genesis)
    assert (exc.value.reason, exc.value.field) == ("not_member", "member.entry.value")


def test_a_record_signed_after_a_key_rotation_verifies_offline_and_the_old_key_does_not():
    c = Chain()
    before = record(M0, profile(), 1)  # the genesis key, before the rotation: proven from genesis alone
    rotate = record(M0, KeyRotation(NEW.public_key.raw))
    c.commit([before, rotate])
    after = Record.create(NEW, CHAIN_ID, 1, before.time_ms, offer(), branch_id=M0.branch_id)
    c.commit([after])
    assert verify_record_proof(c.proof(before), c.genesis) == before
    with pytest.raises(ValidationError) as exc:  # the genesis key does not sign it
        verify_record_proof(c.proof(after), c.genesis)
    assert exc.value.reason == "bad_signature"
    proof = c.proof(after, c.member(M0.branch_id))  # the member header is the record's own
    assert proof.member.header == proof.header
    assert verify_record_proof(RecordProof.from_json(proof.to_json()), c.genesis) == after
    with pytest.raises(ValidationError) as exc:  # the new key does not sign the old record
        verify_record_proof(c.proof(before, c.member(M0.branch_id)), c.genesis)
    assert exc.value.reason == "bad_signature"


def test_every_entry_proof_of_a_chain_with_set_changes_verifies():
    c, _ = admitted_then_voted_in()
    for bid, entry in list(c.state.entries()):
        proof = c.state.entry_proof(bid, entry.subject)
        assert proof.verify(c.state.state_root)[0] == entry.subject and proof.entry_leaf == entry.leaf()
    assert c.state.entry_proof(SYSTEM_ID, "member/" + "00" * 20) is None


@pytest.mark.parametrize("member, field", [
    ("x", "member"),
    ({"header": "00"}, "member.header"),
    ("branch_path", "member.branch_path"),
    ("top_proof", "member.top_proof"),
])
def test_a_malformed_member_object_is_a_decode_error(member, field):
    c, rec = admitted_then_voted_in()
    doc = c.proof(rec, c.member(NEW.branch_id)).to_json()
    if member == "branch_path":
        doc["member"]["branch_path"] = ["00" * 31]  # not a 32-byte hash
    elif member == "top_proof":
        doc["member"]["top_proof"] = doc["member"]["top_proof"][:2]
    else:
        doc["member"] = member
    with pytest.raises(DecodeError) as exc:
        RecordProof.from_json(doc)
    assert exc.value.field.startswith(field)
