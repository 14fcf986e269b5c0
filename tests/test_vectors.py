"""Test vectors: code, tests/vectors.json and docs/PROTOCOL.md §12 must agree.

1. Regenerating the vectors with the code (tools/gen_vectors.py) gives exactly
   tests/vectors.json.
2. The vectors check out *independently* of the generator: signatures verify,
   hashes and Merkle roots recompute from the spec's formulas, the bytes decode
   and re-encode unchanged, the block applies to the genesis state.
3. The fenced JSON blocks in docs/PROTOCOL.md are exactly tests/vectors.json.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from protocol import merkle
from protocol.blocks import Block, Header
from protocol.consensus.proposer import proposer
from protocol.encoding import decode, encode
from protocol.errors import DecodeError
from protocol.genesis import Genesis
from protocol.keys import PrivateKey, PublicKey, signing_bytes
from protocol.ledger import LedgerState
from protocol.records import Record
from protocol.votes import CommitCertificate, Proposal, Vote
from tools.gen_vectors import DOC_SECTIONS, ENCODING_SAMPLES, generate, markdown

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors.json").read_text(encoding="utf-8"))
DOC = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
H = bytes.fromhex


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


# ------------------------------------------------------------------ 1. code == vectors.json


def test_code_reproduces_vectors_json():
    assert json.loads(json.dumps(generate())) == VECTORS


# ------------------------------------------------------------------ 2. independent checks


def test_encoding_samples_roundtrip():
    assert [e["value"] for e in VECTORS["encoding"]] == [name for name, _ in ENCODING_SAMPLES]
    for (name, value), e in zip(ENCODING_SAMPLES, VECTORS["encoding"]):
        data = H(e["hex"])
        assert encode(value) == data, name
        decoded = decode(data, max_size=1024)
        assert encode(decoded) == data


@pytest.mark.parametrize(
    "data",
    [
        "cc05",  # 5 as uint8: not shortest
        "d000",  # 0 as int8
        "cd00ff",  # 255 as uint16
        "d90161",  # "a" as str8
        "c50001ff",  # 1-byte bin as bin16
        "dc000100",  # 1-element array as array16
        "ca3f800000",  # float32
        "c0c0",  # trailing byte
        "a2c3",  # truncated
        "a1ff",  # invalid UTF-8
    ],
)
def test_non_canonical_rejected(data):
    with pytest.raises(DecodeError):
        decode(H(data), max_size=1024)


def test_keys():
    for k in VECTORS["keys"]:
        key = PrivateKey.from_seed(H(k["seed"]))
        assert key.public_key.raw.hex() == k["public_key"]
        assert H(k["branch_id_preimage"]) == b"branchnet/branch-id" + H(k["public_key"])
        assert sha(H(k["branch_id_preimage"]))[:20].hex() == k["branch_id"]


def test_genesis():
    g = VECTORS["genesis"]
    genesis = Genesis.from_json(g["json"])
    assert encode(genesis.to_array()).hex() == g["genesis_array_bytes"]
    assert sha(H(g["genesis_array_bytes"])).hex() == g["genesis_hash"] == genesis.hash.hex()
    assert sha(H(g["validator_set_bytes"])).hex() == g["validators_hash"] == genesis.validators.hash.hex()
    vals = sorted(
        [H(v["branch_id"]), H(v["public_key"]), v["power"]] for v in g["json"]["validators"]
    )
    assert encode(vals).hex() == g["validator_set_bytes"]


def test_record():
    r = VECTORS["record"]
    f = r["fields"]
    data = H(r["record_bytes"])
    record = Record.decode(data, chain_id=VECTORS["chain_id"])
    assert record.raw == data and encode(decode(data, max_size=8192)) == data
    assert sha(data).hex() == r["record_id"] == record.hash.hex()
    assert record.subject == r["subject"] == "service/" + f["body"]["service_id"]
    assert encode(record.body.to_array()).hex() == r["body_bytes"]
    # the 8-element record array = the 7-element payload array + the signature
    arr = decode(data, max_size=8192)
    assert arr[:6] == [1, f["kind"], f["chain_id"], H(f["branch_id"]), f["seq"], f["time_ms"]]
    assert arr[6] == list(f["body"].values())
    assert encode(arr[:7]).hex() == r["payload"] == record.payload().hex()
    assert encode(["branchnet/v1", "record", f["chain_id"], H(r["payload"])]).hex() == r["signing_bytes"]
    assert arr[7].hex() == r["signature"]
    key = PrivateKey.from_seed(H(r["signer_seed"]))
    assert key.sign("record", f["chain_id"], H(r["payload"])).hex() == r["signature"]
    record.verify(key.public_key)


def test_profile_record_with_public_numbers():
    r = VECTORS["profile_record"]
    data = H(r["record_bytes"])
    record = Record.decode(data, chain_id=VECTORS["chain_id"])
    assert sha(data).hex() == r["record_id"] == record.hash.hex()
    arr = decode(data, max_size=8192)
    assert arr[6] == r["fields"]["body"] and len(arr[6]) == 9 and arr[6][8] == list(record.body.public_numbers)
    assert encode(arr[6]).hex() == r["body_bytes"] and encode(arr[6][:8]).hex() == r["body_bytes_without_public_numbers"]
    # without numbers the body is the 8-element array of old: the ninth element is there only when non-empty
    assert len(decode(H(r["body_bytes_without_public_numbers"]), max_size=8192)) == 8
    record.verify(PrivateKey.from_seed(H(r["signer_seed"])).public_key)


def test_terms_record():
    """An offer with loan terms (§5.6.1): 13 elements, the 13th is the terms; without it the
    12-element body is an offer as before; the other categories' terms decode too."""
    from protocol.schema import ServiceOffer
    from protocol.terms import OfferTerms

    r = VECTORS["terms_record"]
    data = H(r["record_bytes"])
    record = Record.decode(data, chain_id=VECTORS["chain_id"])
    assert sha(data).hex() == r["record_id"] == record.hash.hex() and record.subject == r["subject"]
    arr = decode(data, max_size=8192)
    assert arr[6] == r["fields"]["body"] and len(arr[6]) == 13 and encode(arr[6]).hex() == r["body_bytes"]
    assert encode(arr[6][12]).hex() == r["terms_bytes"]
    loan = arr[6][12][1]
    assert loan[0] <= loan[1] and loan[2:5] == ["floating", "lpr_5y", -50] and loan[5] <= loan[6] and loan[7] <= loan[8]
    assert ServiceOffer.from_array(arr[6][:12]).terms is None
    record.verify(PrivateKey.from_seed(H(r["signer_seed"])).public_key)
    for e in r["other_terms"]:
        assert encode(e["terms"]).hex() == e["terms_bytes"]
        t = OfferTerms.from_array(decode(H(e["terms_bytes"]), max_size=8192), "terms", category=e["category"],
                                  effective_from_ms=VECTORS["genesis"]["json"]["genesis_time_ms"])
        assert t.to_array() == e["terms"]


def test_quality_record():
    r = VECTORS["quality_record"]
    data = H(r["record_bytes"])
    record = Record.decode(data, chain_id=VECTORS["chain_id"])
    assert sha(data).hex() == r["record_id"] == record.hash.hex()
    assert record.kind == "branch.quality" and record.subject == r["subject"] == "quality/" + r["fields"]["body"][0]
    arr = decode(data, max_size=8192)
    assert arr[6] == r["fields"]["body"] and encode(arr[6]).hex() == r["body_bytes"]
    assert all(n == -1 or n >= 5 for _, received, resolved in arr[6][1] for n in (received, resolved))
    record.verify(PrivateKey.from_seed(H(r["signer_seed"])).public_key)


def test_pii_examples():
    for e in VECTORS["pii"]:
        assert e["verdict"] in ("accepted", "phone_like", "refused")
        assert ("reason" in e) == (e["verdict"] == "refused") and ("numbers" in e) != (e["verdict"] == "refused")
    issue = {"2026-01-01 to 2026-03-31", "31.12.2026", "20260101", "0900-1700", "09.00-17.00", "1000000.00 CNY",
             "20000-50000 CNY", "50000000 CNY"}
    assert all(e["verdict"] == "accepted" for e in VECTORS["pii"] if e["fields"].get("description") in issue)


def test_block_header_and_state():
    b, s, g = VECTORS["block"], VECTORS["state"], VECTORS["genesis"]
    hf = b["header_fields"]
    header = Header.decode(H(b["header_bytes"]))
    assert [hf[k] if not isinstance(hf[k], str) or k == "chain_id" else H(hf[k]) for k in hf] == header.to_array()
    assert sha(H(b["header_bytes"])).hex() == b["block_hash"]
    assert hf["prev_hash"] == g["genesis_hash"]
    assert hf["validators_hash"] == hf["next_validators_hash"] == g["validators_hash"]
    record_bytes = H(VECTORS["record"]["record_bytes"])
    assert sha(b"\x00" + record_bytes).hex() == b["record_leaf_hash"] == hf["records_root"]  # one leaf: root = leaf hash
    assert hf["evidence_root"] == sha(b"").hex() == s["empty_state_root"]
    # state: one branch, one entry
    entry = decode(H(s["entry_leaf"]), max_size=8192)
    assert entry == [VECTORS["record"]["subject"], 1, H(VECTORS["record"]["record_id"]), 1, decode(H(VECTORS["record"]["body_bytes"]), max_size=8192)]
    # one entry in the branch: its leaf hash is carried up to be the branch root (§8)
    assert sha(b"\x00" + H(s["entry_leaf"])).hex() == s["entry_leaf_hash"] == s["branch_root"]
    assert sha(VECTORS["record"]["subject"].encode()).hex() == s["key"]
    assert encode([H(VECTORS["record"]["fields"]["branch_id"]), H(s["branch_root"])]).hex() == s["top_leaf"]
    assert sha(b"\x00" + H(s["top_leaf"])).hex() == s["state_root"] == hf["state_root"]
    # its entry proof: no branch path (the root is the leaf), a one-leaf top proof
    assert decode(H(s["entry_proof_bytes"]), max_size=8192) == [
        H(VECTORS["record"]["fields"]["branch_id"]), H(s["entry_leaf"]), [], [0, 1, []]]
    # the whole block decodes, and applies to the genesis state
    genesis = Genesis.from_json(g["json"])
    block = Block.decode(H(b["block_bytes"]), max_bytes=genesis.params.max_block_bytes, max_records=genesis.params.max_block_records)
    assert block.encode() == H(b["block_bytes"]) and block.hash.hex() == b["block_hash"]
    state = LedgerState(genesis)
    cert = CommitCertificate.decode(H(VECTORS["certificate"]["certificate_bytes"]))
    state.commit_block(block, cert)
    assert state.height == 1 and state.state_root.hex() == s["state_root"]


def test_block_1_is_proposed_by_the_proposer_of_height_1_round_0():
    """§11.1: the proposer of (height, round) is the winner of step (height + round) mod total."""
    genesis = Genesis.from_json(VECTORS["genesis"]["json"])
    p, ids = VECTORS["proposer"], [k["branch_id"] for k in VECTORS["keys"]]
    assert p["total_power"] == genesis.validators.total_power == 20
    # two equal powers: step 0 ties, the lower branch id (Branch One) wins; then they alternate
    assert sorted(ids) == ids and p["steps"] == [ids[0], ids[1], ids[0], ids[1]]
    assert [proposer(genesis.validators, s, 0).hex() for s in range(4)] == p["steps"]
    assert p["height_1_round_0"] == p["steps"][1] == proposer(genesis.validators, 1, 0).hex()
    header = VECTORS["block"]["header_fields"]
    assert header["height"] == 1 and header["round"] == 0
    assert header["proposer"] == VECTORS["proposal"]["proposer"] == p["height_1_round_0"]


def _rfc6962_mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, recursive, over leaf hashes (reference for the doc's split rule)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return sha(b"\x01" + _rfc6962_mth(hashes[:k]) + _rfc6962_mth(hashes[k:]))


def test_merkle():
    m = VECTORS["merkle"]
    leaves = [H(x) for x in m["leaves"]]
    hashes = [sha(b"\x00" + x) for x in leaves]
    assert [h.hex() for h in hashes] == m["leaf_hashes"]
    assert _rfc6962_mth(hashes).hex() == m["root"] == merkle.root(leaves).hex()
    assert m["empty_root"] == sha(b"").hex() == merkle.root([]).hex()
    p = m["proof"]
    assert decode(H(p["proof_bytes"]), max_size=4096) == [p["index"], p["tree_size"], [H(x) for x in p["path"]]]
    proof = merkle.InclusionProof.decode(H(p["proof_bytes"]))
    merkle.verify_inclusion(leaves[p["index"]], proof, H(m["root"]))
    # audit path of leaf 2 in a 5-leaf tree: leaf 3, node(0,1), leaf 4
    assert p["path"] == [m["leaf_hashes"][3], sha(b"\x01" + hashes[0] + hashes[1]).hex(), m["leaf_hashes"][4]]


def _bit(key: bytes, i: int) -> int:
    return (key[i // 8] >> (7 - i % 8)) & 1


def test_state_tree_of_three_entries():
    """§8 by hand: all three keys share bit 0, the first leaves the others at bit 1, they split at bit 2."""
    t = VECTORS["state_tree"]
    (a, b, c) = t["entries"]
    for e in t["entries"]:
        key = sha(e["subject"].encode("utf-8"))
        assert key.hex() == e["key"] and "".join(str(_bit(key, i)) for i in range(3)) == e["first_key_bits"]
        assert decode(H(e["entry_leaf"]), max_size=1024)[0] == e["subject"]
        assert sha(b"\x00" + H(e["entry_leaf"])).hex() == e["leaf_hash"]
    ka, kb, kc = (H(e["key"]) for e in t["entries"])
    assert _bit(ka, 0) == _bit(kb, 0) == _bit(kc, 0) and _bit(kb, 1) == _bit(kc, 1) != _bit(ka, 1)
    assert (_bit(kb, 2), _bit(kc, 2)) == (0, 1)
    la, lb, lc = (H(e["leaf_hash"]) for e in t["entries"])
    d2 = sha(b"\x01" + lb + lc)
    d1 = sha(b"\x01" + la + d2) if _bit(ka, 1) == 0 else sha(b"\x01" + d2 + la)
    empty = sha(b"")
    root = sha(b"\x01" + d1 + empty) if _bit(ka, 0) == 0 else sha(b"\x01" + empty + d1)
    assert [d2.hex(), d1.hex(), root.hex()] == [t["node_depth_2"], t["node_depth_1"], t["branch_root"]]
    # the third entry's path, depth 0 first: the empty side, the first entry's leaf, the second's
    assert t["path_of_third"] == [empty.hex(), a["leaf_hash"], b["leaf_hash"]]
    r = lc
    for d in (2, 1, 0):
        s = H(t["path_of_third"][d])
        r = sha(b"\x01" + s + r) if _bit(kc, d) else sha(b"\x01" + r + s)
    assert r.hex() == t["branch_root"]


def test_rfc6962_shape_for_many_sizes():
    for n in range(1, 40):
        hashes = [sha(bytes([i])) for i in range(n)]
        root = _rfc6962_mth(hashes)
        assert merkle.root_of_hashes(hashes) == root
        for i in range(n):
            assert merkle.root_from_proof(hashes[i], merkle.prove(hashes, i)) == root


def test_vote_proposal_certificate():
    v, p, c, g = VECTORS["vote"], VECTORS["proposal"], VECTORS["certificate"], VECTORS["genesis"]
    chain = VECTORS["chain_id"]
    genesis = Genesis.from_json(g["json"])
    vote = Vote.decode(H(v["vote_bytes"]))
    assert vote.encode().hex() == v["vote_bytes"]
    assert encode([v["type"], v["height"], v["round"], H(v["block_hash"]), H(v["validator"])]).hex() == v["payload"]
    assert signing_bytes("vote", chain, H(v["payload"])).hex() == v["signing_bytes"]
    assert encode(["branchnet/v1", "vote", chain, H(v["payload"])]).hex() == v["signing_bytes"]
    vote.verify(genesis.validators, chain)
    prop = Proposal.decode(H(p["proposal_bytes"]))
    assert encode([p["height"], p["round"], p["pol_round"], H(p["block_hash"]), H(p["proposer"])]).hex() == p["payload"]
    assert encode(["branchnet/v1", "proposal", chain, H(p["payload"])]).hex() == p["signing_bytes"]
    prop.verify(genesis.validators, chain)
    cert = CommitCertificate.decode(H(c["certificate_bytes"]))
    assert cert.encode().hex() == c["certificate_bytes"]
    assert sha(H(c["certificate_bytes"])).hex() == c["certificate_hash"]
    assert c["block_hash"] == VECTORS["block"]["block_hash"]
    assert [list(x) for x in c["signatures"]] == sorted(c["signatures"])
    assert c["signatures"][0][1] == v["signature"]
    cert.verify(genesis.validators, chain, height=1, block_hash=H(c["block_hash"]))
    # one signature of two equal powers is not "more than two thirds"
    short = CommitCertificate(cert.height, cert.round, cert.block_hash, cert.signatures[:1])
    with pytest.raises(Exception):
        short.verify(genesis.validators, chain)
    # the same signature is not valid in another domain or chain
    pk = PublicKey(H(VECTORS["keys"][0]["public_key"]))
    with pytest.raises(Exception):
        pk.verify(H(v["signature"]), "proposal", chain, H(v["payload"]))
    with pytest.raises(Exception):
        pk.verify(H(v["signature"]), "vote", chain + "-other", H(v["payload"]))


# ------------------------------------------------------------------ 3. doc == vectors.json


def _doc_vectors() -> dict:
    m = re.search(r"<!-- vectors:begin.*?-->(.*?)<!-- vectors:end -->", DOC, re.S)
    assert m, "docs/PROTOCOL.md lacks the vectors:begin/end markers"
    merged: dict = {}
    for block in re.findall(r"```json\n(.*?)```", m.group(1), re.S):
        part = json.loads(block)
        assert not set(part) & set(merged), f"duplicate keys {set(part) & set(merged)}"
        merged.update(part)
    return merged


def test_doc_vectors_equal_vectors_json():
    assert _doc_vectors() == VECTORS
    assert {k for k, _ in DOC_SECTIONS} | {"chain_id"} == set(VECTORS)


def test_doc_pii_tables_are_the_code():
    from tools.gen_pii_spec import markdown as pii_markdown

    m = re.search(r"<!-- pii-tables:begin.*?<!-- pii-tables:end -->\n", DOC, re.S)
    assert m and m.group(0) == pii_markdown(), "regenerate §5.3.9 with: python -m tools.gen_pii_spec"


def test_doc_vectors_block_is_generated_text():
    m = re.search(r"<!-- vectors:begin.*?<!-- vectors:end -->\n", DOC, re.S)
    assert m.group(0) == markdown(VECTORS), "regenerate with: python -m tools.gen_vectors --markdown"


def test_every_vector_hex_string_is_in_the_doc():
    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                yield from walk(v)
        elif isinstance(x, list):
            for v in x:
                yield from walk(v)
        elif isinstance(x, str) and re.fullmatch(r"(?:[0-9a-f]{2}){2,}", x):
            yield x

    missing = [h for h in walk(VECTORS) if h not in DOC]
    assert not missing
