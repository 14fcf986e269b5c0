"""Generate the test vectors of docs/PROTOCOL.md §12 (and tests/vectors.json).

    python -m tools.gen_vectors            # prints the vectors as JSON

Everything is deterministic: fixed Ed25519 seeds (RFC 8032 signing is
deterministic), a fixed chain id and fixed times, so the output never changes
unless the protocol does. tests/test_vectors.py recomputes these with the code
and compares them with tests/vectors.json and with the copy in PROTOCOL.md.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from protocol import merkle, state_tree
from protocol.consensus.proposer import proposer as proposer_of
from protocol.encoding import encode
from protocol.genesis import Genesis
from protocol.hashing import sha256
from protocol.keys import Domain, PrivateKey, branch_id_of, signing_bytes
from protocol.ledger import LedgerState, build_block
from protocol.records import Record
from protocol.quality import BranchQuality, ComplaintCount
from protocol.schema import BranchProfile, Fee, OpeningHours, ServiceOffer
from protocol.terms import DepositRate, DepositTerms, InvestmentTerms, LoanTerms, OfferTerms
from protocol.votes import PRECOMMIT, CommitCertificate, Proposal, Vote
from tools.gen_pii_spec import examples as pii_examples

CHAIN_ID = "branchnet-vectors"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RECORD_TIME_MS = GENESIS_TIME_MS + 60_000
BLOCK_TIME_MS = GENESIS_TIME_MS + 61_000

SEED_1 = bytes(range(32))
SEED_2 = sha256(b"branchnet-vector-2")

MERKLE_LEAVES = [f"branchnet-leaf-{i}".encode() for i in range(5)]
MERKLE_PROOF_INDEX = 2

# Canonical encodings of sample values: the boundaries of every msgpack form used.
ENCODING_SAMPLES: list[tuple[str, Any]] = [
    ("nil", None),
    ("false", False),
    ("true", True),
    ("int 0", 0),
    ("int 127", 127),
    ("int 128", 128),
    ("int 255", 255),
    ("int 256", 256),
    ("int 65535", 65535),
    ("int 65536", 65536),
    ("int 4294967295", 2**32 - 1),
    ("int 4294967296", 2**32),
    ("int 18446744073709551615", 2**64 - 1),
    ("int -1", -1),
    ("int -32", -32),
    ("int -33", -33),
    ("int -128", -128),
    ("int -129", -129),
    ("int -32768", -32768),
    ("int -32769", -32769),
    ("int -2147483648", -(2**31)),
    ("int -2147483649", -(2**31) - 1),
    ("int -9223372036854775808", -(2**63)),
    ("str empty", ""),
    ("str 'branchnet/v1'", "branchnet/v1"),
    ("str 32 x 'a' (str8)", "a" * 32),
    ("str 'ü' (2 UTF-8 bytes)", "\u00fc"),
    ("bin empty", b""),
    ("bin 00ff", b"\x00\xff"),
    ("array empty", []),
    ("array [1, 'a', h'01', nil, true]", [1, "a", b"\x01", None, True]),
    ("array of 16 zeros (array16)", [0] * 16),
]


def _genesis() -> tuple[Genesis, PrivateKey, PrivateKey]:
    k1, k2 = PrivateKey.from_seed(SEED_1), PrivateKey.from_seed(SEED_2)
    doc = {
        "chain_id": CHAIN_ID,
        "genesis_time_ms": GENESIS_TIME_MS,
        "validators": [
            {"name": "Vector Branch One", "public_key": k1.public_key.hex(), "power": 10},
            {"name": "Vector Branch Two", "public_key": k2.public_key.hex(), "power": 10},
        ],
    }
    return Genesis.from_json(doc), k1, k2


def _offer_body() -> ServiceOffer:
    return ServiceOffer(
        service_id="wealth.fund-a1",
        category="wealth",
        title="Balanced Fund A1",
        description="Mixed bond and equity fund, sold on behalf of its issuer.",
        channels=("counter", "low_counter"),
        hours=(OpeningHours(0, 540, 1020), OpeningHours(5, 600, 900)),
        fees=(
            Fee("Subscription fee", 150, "CNY", "percent_bp"),
            Fee("Account maintenance", 0, "CNY", "free"),
        ),
        risk_level=3,
        ownership="consigned",
        issuer="Example Asset Management Co.",
        accessibility=("wheelchair", "large_print"),
        effective_from_ms=GENESIS_TIME_MS,
    )


def _profile_body() -> BranchProfile:
    return BranchProfile(
        name="Vector Sub-branch",
        address="No. 18 Jianguomen Inner Street, Beijing 100005",
        region="CN-BJ-110101",
        lat_micro=39_904_000,
        lon_micro=116_407_000,
        hours=(OpeningHours(0, 540, 1020),),
        contact_phone="+86 10 6512 0000",
        contact_url="https://bank.example/branches/vector",
        public_numbers=("400-820-8888", "+852 2233 3000"),
    )


def _loan_offer_body() -> ServiceOffer:
    return ServiceOffer(
        service_id="loan.home-flex",
        category="loan",
        title="Home loan, floating rate",
        description="First and second homes; rate reset yearly on the 1-year LPR.",
        channels=("counter", "appointment"),
        hours=(),
        fees=(Fee("Appraisal fee", 0, "CNY", "free"),),
        risk_level=2,
        ownership="own",
        issuer="",
        accessibility=("wheelchair",),
        effective_from_ms=GENESIS_TIME_MS,
        terms=OfferTerms(GENESIS_TIME_MS + 90 * 86_400_000, loan=LoanTerms(
            rate_min_bp=310, rate_max_bp=385, rate_type="floating", rate_reference="lpr_5y", spread_bp=-50,
            term_min_months=12, term_max_months=360, amount_min_minor=100_000_00, amount_max_minor=10_000_000_00,
            currency="CNY", repayment_methods=("equal_installment", "equal_principal"), collateral_required=True,
            collateral_kinds=("real_estate",), early_repayment_fee_bp=100)),
    )


TERMS_EXAMPLES = (  # (category, terms) of §5.6.1, beside the loan of the signed vector
    ("deposit", OfferTerms(0, deposit=DepositTerms((DepositRate(0, 10), DepositRate(3, 105), DepositRate(12, 140),
                                                    DepositRate(36, 175)), 50_00, "CNY", "demand_rate", True))),
    ("wealth", OfferTerms(0, investment=InvestmentTerms(250, 380, True, 12, 10_000_00, "CNY", "at_maturity"))),
    ("fx", OfferTerms(GENESIS_TIME_MS + 86_400_000)),
)


def _quality_body() -> BranchQuality:
    return BranchQuality("2026-01", (ComplaintCount("fees", 12, 11), ComplaintCount("waiting_time", 6, 6),
                                     ComplaintCount("card", -1, -1)), 18, 66, 9, 27, 9_950)


def _hexlist(items) -> list[str]:
    return [x.hex() for x in items]


def generate() -> dict[str, Any]:
    genesis, k1, k2 = _genesis()
    out: dict[str, Any] = {"chain_id": CHAIN_ID}

    # ---------------------------------------------------------------- encoding
    out["encoding"] = [{"value": name, "hex": encode(value).hex()} for name, value in ENCODING_SAMPLES]

    # ---------------------------------------------------------------- keys
    keys = []
    for label, key in (("seed = bytes(range(32))", k1), ('seed = sha256("branchnet-vector-2")', k2)):
        pk = key.public_key.raw
        keys.append(
            {
                "label": label,
                "seed": key.seed().hex(),
                "public_key": pk.hex(),
                "branch_id_preimage": (b"branchnet/branch-id" + pk).hex(),
                "branch_id": branch_id_of(pk).hex(),
            }
        )
    out["keys"] = keys

    # ---------------------------------------------------------------- genesis
    valset = genesis.validators
    out["genesis"] = {
        "json": genesis.to_json(),
        "genesis_array_bytes": encode(genesis.to_array()).hex(),
        "genesis_hash": genesis.hash.hex(),
        "validator_set_bytes": encode([v.to_array() for v in valset]).hex(),
        "validators_hash": valset.hash.hex(),
        "total_power": valset.total_power,
    }

    # ---------------------------------------------------------------- record
    body = _offer_body()
    record = Record.create(k1, CHAIN_ID, 1, RECORD_TIME_MS, body)
    unsigned = encode(Record.unsigned_array(body.KIND, CHAIN_ID, k1.branch_id, 1, RECORD_TIME_MS, body))
    out["record"] = {
        "signer_seed": k1.seed().hex(),
        "fields": {
            "version": 1,
            "kind": record.kind,
            "chain_id": record.chain_id,
            "branch_id": record.branch_id.hex(),
            "seq": record.seq,
            "time_ms": record.time_ms,
            "body": {
                "service_id": body.service_id,
                "category": body.category,
                "title": body.title,
                "description": body.description,
                "channels": list(body.channels),
                "hours": [h.to_array() for h in body.hours],
                "fees": [f.to_array() for f in body.fees],
                "risk_level": body.risk_level,
                "ownership": body.ownership,
                "issuer": body.issuer,
                "accessibility": list(body.accessibility),
                "effective_from_ms": body.effective_from_ms,
            },
        },
        "subject": record.subject,
        "body_bytes": encode(body.to_array()).hex(),
        "payload": unsigned.hex(),
        "signing_bytes": signing_bytes(Domain.RECORD, CHAIN_ID, unsigned).hex(),
        "signature": record.signature.hex(),
        "record_bytes": record.raw.hex(),
        "record_id": record.hash.hex(),
    }

    # ---------------------------------------------------------------- proposer rotation (§11.1)
    valset_keys = {k.branch_id: k for k in (k1, k2)}
    block_proposer = proposer_of(valset, 1, 0)
    out["proposer"] = {
        "total_power": valset.total_power,
        "steps": [proposer_of(valset, step, 0).hex() for step in range(4)],
        "height_1_round_0": block_proposer.hex(),
    }

    # ---------------------------------------------------------------- profile with public numbers (§5.5)
    profile = _profile_body()
    profile_record = Record.create(k2, CHAIN_ID, 1, RECORD_TIME_MS, profile)
    out["profile_record"] = {
        "signer_seed": k2.seed().hex(),
        "fields": {"version": 1, "kind": profile_record.kind, "chain_id": CHAIN_ID, "branch_id": k2.branch_id.hex(), "seq": 1,
                   "time_ms": RECORD_TIME_MS, "body": profile.to_array()[:5] + [[h.to_array() for h in profile.hours]] + profile.to_array()[6:]},
        "body_bytes": encode(profile.to_array()).hex(),
        "body_bytes_without_public_numbers": encode(profile.to_array()[:8]).hex(),
        "record_bytes": profile_record.raw.hex(),
        "record_id": profile_record.hash.hex(),
    }

    # ---------------------------------------------------------------- offer with terms (§5.6.1)
    loan = _loan_offer_body()
    loan_record = Record.create(k1, CHAIN_ID, 1, RECORD_TIME_MS, loan)
    out["terms_record"] = {
        "signer_seed": k1.seed().hex(),
        "fields": {"version": 1, "kind": loan_record.kind, "chain_id": CHAIN_ID, "branch_id": k1.branch_id.hex(), "seq": 1,
                   "time_ms": RECORD_TIME_MS, "body": loan.to_array()},
        "subject": loan_record.subject,
        "terms_bytes": encode(loan.terms.to_array()).hex(),
        "body_bytes": encode(loan.to_array()).hex(),
        "record_bytes": loan_record.raw.hex(),
        "record_id": loan_record.hash.hex(),
        "other_terms": [{"category": c, "terms": t.to_array(), "terms_bytes": encode(t.to_array()).hex()}
                        for c, t in TERMS_EXAMPLES],
    }

    # ---------------------------------------------------------------- branch.quality (§5.10)
    quality = _quality_body()
    quality_record = Record.create(k2, CHAIN_ID, 1, RECORD_TIME_MS, quality)
    out["quality_record"] = {
        "signer_seed": k2.seed().hex(),
        "fields": {"version": 1, "kind": quality_record.kind, "chain_id": CHAIN_ID, "branch_id": k2.branch_id.hex(),
                   "seq": 1, "time_ms": RECORD_TIME_MS, "body": quality.to_array()},
        "subject": quality_record.subject,
        "body_bytes": encode(quality.to_array()).hex(),
        "record_bytes": quality_record.raw.hex(),
        "record_id": quality_record.hash.hex(),
    }

    # ---------------------------------------------------------------- personal-data screening (§5.3)
    out["pii"] = pii_examples()

    # ---------------------------------------------------------------- block + state
    state = LedgerState(genesis)
    block, tx, rejected = build_block(
        state, height=1, round=0, time_ms=BLOCK_TIME_MS, proposer=block_proposer, candidates=[record]
    )
    assert not rejected and len(block.records) == 1
    state.validate_block(block)  # the block is valid as built
    h = block.header
    entry = tx.entry(k1.branch_id, record.subject)
    entry_leaf = entry.leaf()
    branch_root = merkle.leaf_hash(entry_leaf)  # one entry: its leaf hash is the branch root (§8)
    top_leaf = encode([k1.branch_id, branch_root])
    tx.commit()
    entry_proof = state.entry_proof(k1.branch_id, record.subject)
    out["state"] = {
        "entry_leaf": entry_leaf.hex(),
        "entry_leaf_hash": merkle.leaf_hash(entry_leaf).hex(),
        "key": sha256(record.subject.encode("utf-8")).hex(),
        "branch_root": branch_root.hex(),
        "top_leaf": top_leaf.hex(),
        "state_root": merkle.root([top_leaf]).hex(),
        "empty_state_root": merkle.EMPTY_ROOT.hex(),
        "entry_proof_bytes": entry_proof.encode().hex(),
    }
    assert entry_proof.verify(h.state_root)[0] == record.subject
    out["state_tree"] = state_tree_vector()
    assert out["state"]["state_root"] == h.state_root.hex()
    out["block"] = {
        "header_fields": {
            "version": 1,
            "chain_id": h.chain_id,
            "height": h.height,
            "round": h.round,
            "time_ms": h.time_ms,
            "prev_hash": h.prev_hash.hex(),
            "records_root": h.records_root.hex(),
            "evidence_root": h.evidence_root.hex(),
            "state_root": h.state_root.hex(),
            "validators_hash": h.validators_hash.hex(),
            "next_validators_hash": h.next_validators_hash.hex(),
            "proposer": h.proposer.hex(),
        },
        "record_leaf_hash": merkle.leaf_hash(record.raw).hex(),
        "header_bytes": h.encode().hex(),
        "block_hash": block.hash.hex(),
        "block_bytes": block.encode().hex(),
    }

    # ---------------------------------------------------------------- merkle
    leaf_hashes = [merkle.leaf_hash(x) for x in MERKLE_LEAVES]
    proof = merkle.prove(leaf_hashes, MERKLE_PROOF_INDEX)
    out["merkle"] = {
        "empty_root": merkle.EMPTY_ROOT.hex(),
        "leaves": _hexlist(MERKLE_LEAVES),
        "leaf_hashes": _hexlist(leaf_hashes),
        "root": merkle.root(MERKLE_LEAVES).hex(),
        "proof": {
            "index": proof.index,
            "tree_size": proof.tree_size,
            "path": _hexlist(proof.path),
            "proof_bytes": proof.encode().hex(),
        },
    }

    # ---------------------------------------------------------------- votes
    vote = Vote.create(k1, CHAIN_ID, PRECOMMIT, 1, 0, block.hash)
    vote2 = Vote.create(k2, CHAIN_ID, PRECOMMIT, 1, 0, block.hash)
    cert = CommitCertificate.from_votes([vote, vote2])
    cert.verify(valset, CHAIN_ID, height=1, block_hash=block.hash)
    proposal = Proposal.create(valset_keys[block_proposer], CHAIN_ID, 1, 0, -1, block.hash)
    out["vote"] = {
        "type": vote.type,
        "height": vote.height,
        "round": vote.round,
        "block_hash": vote.block_hash.hex(),
        "validator": vote.validator.hex(),
        "payload": vote.payload().hex(),
        "signing_bytes": signing_bytes(Domain.VOTE, CHAIN_ID, vote.payload()).hex(),
        "signature": vote.signature.hex(),
        "vote_bytes": vote.encode().hex(),
    }
    out["proposal"] = {
        "height": proposal.height,
        "round": proposal.round,
        "pol_round": proposal.pol_round,
        "block_hash": proposal.block_hash.hex(),
        "proposer": proposal.proposer.hex(),
        "payload": proposal.payload().hex(),
        "signing_bytes": signing_bytes(Domain.PROPOSAL, CHAIN_ID, proposal.payload()).hex(),
        "signature": proposal.signature.hex(),
        "proposal_bytes": proposal.encode().hex(),
    }
    out["certificate"] = {
        "height": cert.height,
        "round": cert.round,
        "block_hash": cert.block_hash.hex(),
        "signatures": [[v.hex(), s.hex()] for v, s in cert.signatures],
        "certificate_bytes": cert.encode().hex(),
        "certificate_hash": cert.hash.hex(),
    }
    return out


def _flat(value: Any) -> bool:
    """Scalars, and short arrays / small objects of scalars, go on one line."""
    if isinstance(value, (dict, list)):
        items = list(value.values()) if isinstance(value, dict) else value
        return (
            all(not isinstance(x, (dict, list)) for x in items)
            and len(items) <= 4
            and len(json.dumps(value, ensure_ascii=False)) <= 100
        )
    return True


def _fmt(value: Any, indent: int) -> str:
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and not _flat(value):
        items = [f"{pad}{json.dumps(k)}: {_fmt(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and not _flat(value):
        items = [pad + _fmt(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def dumps(vectors: dict[str, Any]) -> str:
    """JSON, indented, with short arrays of scalars kept on one line (same data as json.dumps)."""
    return _fmt(vectors, 0) + "\n"


STATE_TREE_CANDIDATES = [f"service/tree-{i}" for i in range(64)]


def _key_bits(subject: str, n: int) -> str:
    key = int.from_bytes(sha256(subject.encode("utf-8")), "big")
    return "".join(str(key >> (255 - d) & 1) for d in range(n))


def state_tree_vector() -> dict[str, Any]:
    """A branch tree of three entries (§8) that shows every kind of node: the first three
    candidate subjects (in list order) whose keys all share bit 0, of which the first
    differs from the other two at bit 1 and those two differ at bit 2."""
    bits = {s: _key_bits(s, 3) for s in STATE_TREE_CANDIDATES}
    a, b, c = next((a, b, c) for a in STATE_TREE_CANDIDATES for b in STATE_TREE_CANDIDATES for c in STATE_TREE_CANDIDATES
                   if bits[a][0] == bits[b][0] == bits[c][0] and bits[b][1] == bits[c][1] != bits[a][1]
                   and bits[b][2] == "0" and bits[c][2] == "1")
    leaves = {s: encode([s, 1, sha256(b"record " + s.encode()), 1, None]) for s in (a, b, c)}
    lh = {s: merkle.leaf_hash(leaf) for s, leaf in leaves.items()}
    depth2 = state_tree.inner_hash(lh[b], lh[c])  # b has bit 2 = 0, c has 1
    depth1 = state_tree.inner_hash(lh[a], depth2) if _key_bits(a, 2)[1] == "0" else state_tree.inner_hash(depth2, lh[a])
    root = state_tree.inner_hash(depth1, state_tree.EMPTY) if _key_bits(a, 1) == "0" else state_tree.inner_hash(state_tree.EMPTY, depth1)
    node = state_tree.update(None, state_tree.items_of(lh.items()))
    assert state_tree.hash_of(node) == root
    path = state_tree.path_of(node, c)
    assert state_tree.root_from_path(leaves[c], path) == root
    return {
        "entries": [{"subject": s, "key": sha256(s.encode("utf-8")).hex(), "first_key_bits": _key_bits(s, 3),
                     "entry_leaf": leaves[s].hex(), "leaf_hash": lh[s].hex()} for s in (a, b, c)],
        "node_depth_2": depth2.hex(),
        "node_depth_1": depth1.hex(),
        "branch_root": root.hex(),
        "path_of_third": [x.hex() for x in path],
    }


# The order and captions of the per-section fenced blocks in docs/PROTOCOL.md §12.
DOC_SECTIONS = (
    ("encoding", "Canonical encodings of sample values"),
    ("keys", "Keys and branch ids"),
    ("genesis", "Genesis, genesis hash and validator-set hash"),
    ("record", "A signed service.offer record"),
    ("proposer", "The proposer rotation of these validators (§11.1)"),
    ("profile_record", "A signed branch.profile record declaring public numbers (§5.5)"),
    ("terms_record", "A signed service.offer record with loan terms, and the terms of other categories (§5.6.1)"),
    ("quality_record", "A signed branch.quality record (§5.10)"),
    ("pii", "Personal-data screening (§5.3): offers with these fields, and the verdict"),
    ("block", "The block at height 1 holding that record"),
    ("state", "The state root after that block, and the entry proof of its one entry"),
    ("state_tree", "A branch tree of three entries (§8), and the path of the third"),
    ("merkle", "A Merkle tree of 5 leaves and the inclusion proof of leaf 2"),
    ("vote", "A precommit vote"),
    ("proposal", "A proposal"),
    ("certificate", "The commit certificate of the block"),
)


def markdown(vectors: dict[str, Any]) -> str:
    """The fenced JSON blocks for docs/PROTOCOL.md (tests check the doc matches)."""
    parts = ["<!-- vectors:begin (generated by `python -m tools.gen_vectors --markdown`; do not edit) -->\n"]
    parts.append("```json\n" + dumps({"chain_id": vectors["chain_id"]}) + "```\n")
    for key, caption in DOC_SECTIONS:
        parts.append(f"\n**{caption}** (`{key}`)\n\n```json\n" + dumps({key: vectors[key]}) + "```\n")
    parts.append("<!-- vectors:end -->\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    vectors = generate()
    sys.stdout.write(markdown(vectors) if "--markdown" in argv else dumps(vectors))


if __name__ == "__main__":
    main()
