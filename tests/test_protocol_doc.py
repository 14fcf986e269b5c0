"""Every worked example in docs/PROTOCOL.md §1-§10, recomputed from the code.

§11-§12 are in test_protocol_doc_p2p.py, §12's generated vectors in test_vectors.py.
Each test reads its example out of the markdown (so editing a number in the doc,
or the code behind it, fails here) and recomputes it with the code, and where the
example is about cryptography, with an independent computation as well (pure-Python
Edwards-curve arithmetic below, OpenSSL through ``cryptography``, libsodium through
PyNaCl). ``test_every_hex_example_is_checked`` (in test_protocol_doc_p2p.py) fails
when a new hex example appears in the doc without a test.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol import merkle
from protocol.encoding import decode, encode
from protocol.errors import DecodeError, ProtocolError
from protocol.genesis import MAX_GENESIS_BYTES, ChainParams, Genesis
from protocol.keys import PrivateKey, PublicKey
from protocol.records import MAX_RECORD_BYTES
from protocol.validators import MAX_VALIDATORS, Validator, ValidatorSet
from protocol.votes import MAX_VOTE_BYTES
from protocol_doc import ROOT, find, number, section, table_rows

H = bytes.fromhex

# ---------------------------------------------------------------- Edwards25519, from RFC 8032

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1)


def point_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + y1 * x2) * pow(1 + t, P - 2, P) % P,
            (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def point_mul(k: int, point: tuple[int, int]) -> tuple[int, int]:
    out = IDENTITY
    while k:
        if k & 1:
            out = point_add(out, point)
        point = point_add(point, point)
        k >>= 1
    return out


def point_decode(data: bytes) -> tuple[int, int] | None:
    """RFC 8032 §5.1.3 (None where it fails), without the canonical check."""
    y = int.from_bytes(data, "little") & (2**255 - 1)
    sign = data[31] >> 7
    y %= P
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = P - x
    return x, y


def point_encode(point: tuple[int, int]) -> bytes:
    x, y = point
    return (y | (x & 1) << 255).to_bytes(32, "little")


def openssl_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except Exception:
        return False


def libsodium_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    from nacl.bindings import crypto_sign_open

    try:
        crypto_sign_open(signature + message, public_key)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------- §2 encoding


def test_s2_non_shortest_examples_are_rejected():
    text = section("2.2")
    find(r"`cc05` for 5", text)
    find(r"`dc0001…` for a\s+one-element array", text)
    assert encode(5) == H("05")
    for data in ("cc05", "dc000105"):
        with pytest.raises(DecodeError):
            decode(H(data), max_size=64)


def test_s2_size_limits_are_the_codes():
    rows = {r[0]: r[1] for r in table_rows(section("2.3"))}
    assert rows["record (§5)"].startswith(f"{MAX_RECORD_BYTES} bytes")
    assert rows["vote, proposal (§9)"] == f"{MAX_VOTE_BYTES} bytes"
    cert = find(r"(\d[\d ]*) bytes \((\d+) × (\d+) \+ (\d+)\)", rows["commit certificate (§9)"])
    assert number(cert[1]) == int(cert[2]) * int(cert[3]) + int(cert[4]) == MAX_VALIDATORS * 96 + 64
    assert int(cert[2]) == MAX_VALIDATORS and int(cert[3]) == 20 + 64 + 12  # [bin 20, bin 64] with headers
    genesis = find(r"1 MiB \((\d[\d ]*) bytes\)", rows["genesis file (JSON, §10)"])
    assert number(genesis[1]) == MAX_GENESIS_BYTES == 1 << 20
    assert rows["block header, decoded on its own (§7)"] == "1024 bytes"
    assert rows["Merkle inclusion proof (§6)"] == "4096 bytes"


# ---------------------------------------------------------------- §3, §4 keys


def test_s3_branch_id_prefix():
    m = find(r"The prefix is the (\d+) ASCII bytes `([0-9a-f]+)`", section("3"))
    assert H(m[2]) == b"branchnet/branch-id" and len(H(m[2])) == int(m[1])
    key = PrivateKey.from_seed(bytes(32))
    assert key.branch_id == hashlib.sha256(H(m[2]) + key.public_key.raw).digest()[:20]


def _small_order_points() -> set[tuple[int, int]]:
    """The 8 points of order dividing 8: [L]Q for a point Q with a torsion part of order 8."""
    L = 2**252 + 27742317777372353535851937790883648493
    for y in range(2, 100):
        q = point_decode(y.to_bytes(32, "little"))
        if q is None:
            continue
        t = point_mul(L, q)
        if point_mul(4, t) != IDENTITY:  # order 8
            return {point_mul(k, t) for k in range(8)}
    raise AssertionError("no point with an order-8 component found")


def test_s4_public_key_checks_and_their_examples():
    text = section("4")
    L = int(find(r"`L = 2\^252 \+ (\d+)`", text)[1]) + 2**252
    base = point_decode((4 * pow(5, P - 2, P)).to_bytes(32, "little"))
    assert point_mul(L, base) == IDENTITY and point_mul(8, base) != IDENTITY  # L is the group order
    assert find(r"`p = 2\^255 − 19`", text)

    # the identity key: OpenSSL verifies R = identity, S = 0 for any message; the code refuses the key
    identity = H(find(r"identity key\s+`([0-9a-f]{64})`", text)[1])
    assert point_decode(identity) == IDENTITY
    forged = identity + bytes(32)
    assert find(r"the byte `01` and 63 zero bytes", text) and forged == b"\x01" + bytes(63)
    for message in (b"branchnet", b"anything at all"):
        assert openssl_verifies(identity, forged, message)
        assert not libsodium_verifies(identity, forged, message)
    with pytest.raises(DecodeError) as info:
        PublicKey(identity)
    assert info.value.reason == "bad_key"

    # the mixed-order key = key of seed 000102..1f + a point of order 8
    m = find(r"The key\s+`([0-9a-f]{64})` is the public key\s+of seed `000102…1f` \(§12\) plus "
             r"the point of order 8\s+`([0-9a-f]{64})`", text)
    mixed, torsion = H(m[1]), H(m[2])
    t = point_decode(torsion)
    assert point_mul(8, t) == IDENTITY and point_mul(4, t) != IDENTITY
    a = point_decode(PrivateKey.from_seed(bytes(range(32))).public_key.raw)
    assert point_encode(point_add(a, t)) == mixed
    assert point_mul(8, point_decode(mixed)) != IDENTITY       # passes check 3 ...
    assert point_mul(L, point_decode(mixed)) != IDENTITY       # ... fails check 4
    Ed25519PublicKey.from_public_bytes(mixed)                   # OpenSSL loads it
    with pytest.raises(DecodeError) as info:
        PublicKey(mixed)
    assert info.value.reason == "bad_key"


def test_s4_small_order_r_table_is_exactly_the_small_order_encodings():
    rows = [r for r in table_rows(section("4")) if re.fullmatch(r"`[0-9a-f]{64}`", r[0])]
    listed = {H(r[0].strip("`")) for r in rows}
    assert len(rows) == len(listed) == 7
    expected = {point_encode((0, y)) for _, y in _small_order_points()}  # y only: top bit cleared
    expected |= {P.to_bytes(32, "little"), (P + 1).to_bytes(32, "little")}  # non-canonical 0 and 1
    assert listed == expected
    for r in rows:  # the "point" column agrees
        y = int.from_bytes(H(r[0].strip("`")), "little")
        label = {0: "`y = 0`", 1: "`y = 1`", P - 1: "`y = p − 1`", P: "`y = p`", P + 1: "`y = p + 1`"}
        assert r[1].startswith(label.get(y, "two points of order 8"))


def test_s4_identity_r_signature_is_rejected_though_openssl_accepts_it():
    text = section("4")
    m = find(r"for the 9-byte message `branchnet` that is the signature\s+`([0-9a-f]{128})`", text)
    signature = H(m[1])
    seed = bytes(range(32))
    public = PrivateKey.from_seed(seed).public_key.raw
    # the construction the doc describes: R = identity, S = k·a mod L
    L = 2**252 + 27742317777372353535851937790883648493
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little") & (2**254 - 8) | 2**254
    r = point_encode(IDENTITY)
    k = int.from_bytes(hashlib.sha512(r + public + b"branchnet").digest(), "little") % L
    assert signature == r + (k * a % L).to_bytes(32, "little")
    assert openssl_verifies(public, signature, b"branchnet")
    assert not libsodium_verifies(public, signature, b"branchnet")  # the code's verifier


# ---------------------------------------------------------------- §5 records


def test_s5_payload_is_the_record_with_98_97_and_without_the_signature():
    import json

    text = section("5.1")
    find(r"the first byte `98` \(fixarray 8\) replaced by `97` \(fixarray 7\)\s+and the last 66 bytes "
         r"\(`c4 40` \+ the signature\) removed", text)
    vectors = json.loads((ROOT / "tests" / "vectors.json").read_text())
    record = H(vectors["record"]["record_bytes"])
    assert record[0] == 0x98 and record[-66:-64] == H("c440")
    assert b"\x97" + record[1:-66] == H(vectors["record"]["payload"])


def _spec_screen(text: str) -> str | None:
    """§5.3's procedure, with the patterns taken from the doc."""
    block = find(r"```\n(EMAIL .*?)```", section("5.3"), raw=True)[1]
    patterns = dict(re.findall(r"^(EMAIL|NATIONAL_ID|DIGIT_RUN)\s+= (.+)$", block, re.M))
    if re.search(patterns["EMAIL"], text):
        return "email"
    if re.search(patterns["NATIONAL_ID"], text):
        return "national_id"
    for m in re.finditer(patterns["DIGIT_RUN"], text):
        digits = [int(c) for c in m.group() if c in "0123456789"]
        total = sum(d if i % 2 == 0 else (2 * d - 9 if 2 * d > 9 else 2 * d)
                    for i, d in enumerate(reversed(digits)))
        if 13 <= len(digits) <= 19 and total % 10 == 0:
            return "card_number"
        if len(digits) >= 8:
            return "phone_number"
    return None


def test_s5_region_example():
    from protocol.schema import _REGION

    m = find(r"matches `([^`]+)` in full \(e\.g\. `([^`]+)`\)", section("5.5"))
    assert m[1] == _REGION.pattern and re.fullmatch(m[1], m[2])


# ---------------------------------------------------------------- §6, §8, §9


def test_s6_empty_tree():
    m = find(r'MTH\(\{\}\)\s+= H\(""\)\s+= ([0-9a-f]+)…([0-9a-f]+)', section("6"))
    empty = hashlib.sha256(b"").hexdigest()
    assert empty.startswith(m[1]) and empty.endswith(m[2]) and merkle.root([]).hex() == empty


def test_s8_key_of_the_vector_subject_and_the_entry_proof():
    import json

    from protocol.state_tree import EntryProof, key_of

    m = find(r'`key = H\("([^"]+)"\)`', section("12"))
    vectors = json.loads((ROOT / "tests" / "vectors.json").read_text())
    assert m[1] == vectors["record"]["subject"]
    assert hashlib.sha256(m[1].encode()).hexdigest() == vectors["state"]["key"]
    text = section("8")
    find(r"bit\(key, i\) = \(key\[i div 8\] >> \(7 − i mod 8\)\) & 1", text, raw=True)
    assert key_of(m[1]) >> 255 == hashlib.sha256(m[1].encode()).digest()[0] >> 7  # bit 0 is the top bit of byte 0
    find(r"entry_proof = \[branch_id, entry_leaf, branch_path, top_proof\]", text, raw=True)
    proof = EntryProof.decode(bytes.fromhex(vectors["state"]["entry_proof_bytes"]))
    assert proof.verify(bytes.fromhex(vectors["state"]["state_root"]))[0] == m[1]
    assert find(r"branch_path \| array ≤(\d+) of bin 32", text, raw=True)[1] == "256"
    # "about log2(n) + 1 (18–19 for 200,000)": the mean depth of a leaf in a trie over
    # n random keys is log2(n) + γ/ln 2 + 1/2 (Knuth, TAOCP 6.3)
    lo, hi = (int(x) for x in find(r"about log2\(n\) \+ 1 \((\d+)–(\d+) for 200,000\)", text).groups())
    import math
    assert lo <= math.log2(200_000) + 0.5772 / math.log(2) + 0.5 <= hi


def _equal_set(n: int) -> ValidatorSet:
    keys = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(n)]
    return ValidatorSet(Validator(k.branch_id, k.public_key, 10) for k in keys)


def test_s9_quorum_examples():
    text = section("9.3")
    m = find(r"With (\d+) equal validators that is (\d+) and (\d+)\. With (\d+) equal\s+validators both must sign",
             text)
    n, two_thirds, one_third, pair = (int(x) for x in m.groups())
    valset = _equal_set(n)
    assert min(k for k in range(n + 1) if valset.has_two_thirds(10 * k)) == two_thirds
    assert min(k for k in range(n + 1) if valset.has_one_third(10 * k)) == one_third
    two = _equal_set(pair)
    assert not two.has_two_thirds(10) and two.has_two_thirds(20)
    remark = find(r"`(\d+) \* 3 > (\d+) \* 2`, while `(\d+) \* 3 > (\d+) \* 2` is false", section("12"))
    both, total, one, total2 = (int(x) for x in remark.groups())
    assert both * 3 > total * 2 and not one * 3 > total2 * 2 and total == total2 == 20


# ---------------------------------------------------------------- §10 genesis


def test_s10_chain_params_defaults_and_order():
    rows = [r for r in table_rows(section("10")) if re.fullmatch(r"\d", r[0])]
    defaults = ChainParams()
    names = [r[1] for r in rows]
    assert names == list(defaults.__dataclass_fields__)
    for r in rows:
        assert number(re.match(r"[\d ]+", r[2]).group()) == getattr(defaults, r[1]), r
    m = find(r"values above 16 MiB − 32 KiB \((\d[\d ]*)\)", section("10"))
    assert number(m[1]) == 16 * 2**20 - 32 * 2**10
    from protocol import wire

    # a block of that size and the largest certificate still fit one sync response
    assert number(m[1]) + MAX_VALIDATORS * 96 + 64 + 64 <= wire.MAX_RESPONSE_BYTES - 4096


def test_s1_s10_time_and_chain_id_ranges():
    find(r"`genesis_time_ms`, which is `\[0, 2\^53 − 1\]`", section("1"))
    find(r"integer `\[0, 2\^53 − 1\]`", section("10"))
    base = {"chain_id": "x", "validators": [{"name": "v", "power": 1,
                                              "public_key": PrivateKey.from_seed(bytes(32)).public_key.hex()}]}
    Genesis.from_json(dict(base, genesis_time_ms=2**53 - 1))
    with pytest.raises(ProtocolError):
        Genesis.from_json(dict(base, genesis_time_ms=2**53))
    pattern = find(r"string matching `([^`]+)` in full: 1\.\.50 characters", section("10"))[1]
    Genesis.from_json(dict(base, genesis_time_ms=0, chain_id="a" * 50))
    with pytest.raises(ProtocolError):
        Genesis.from_json(dict(base, genesis_time_ms=0, chain_id="a" * 51))
    assert re.fullmatch(pattern, "a" * 50) and not re.fullmatch(pattern, "a" * 51)
    find(r"\| 2 \| chain_id \| str 1\.\.50 \|", section("5.1"))
    find(r"\| 1 \| chain_id \| str 1\.\.50 \|", section("7.1"))


def test_s5_4_enumerations_of_terms_and_quality_are_the_codes():
    from protocol import quality, terms

    rows = {r[0]: [v.strip("` ") for v in r[1].split(",")] for r in table_rows(section("5.4"))}
    assert rows["rate type"] == list(terms.RATE_TYPES)
    assert rows["rate reference"] == list(terms.RATE_REFERENCES)
    assert rows["repayment method"] == list(terms.REPAYMENT_METHODS)
    assert rows["collateral kind"] == list(terms.COLLATERAL_KINDS)
    assert rows["early withdrawal"] == list(terms.EARLY_WITHDRAWAL)
    assert rows["redemption"] == list(terms.REDEMPTION)
    assert rows["complaint category"] == list(quality.COMPLAINT_CATEGORIES)


def test_s5_6_1_term_tables_list_the_fields_in_array_order():
    import dataclasses

    from protocol.terms import DepositTerms, InvestmentTerms, LoanTerms

    text = section("5.6")
    for name, cls in (("loan", LoanTerms), ("deposit", DepositTerms), ("investment", InvestmentTerms)):
        block = find(rf"`{name}` \((\d+) elements.*?\n\n(\|.*?)\n\n", text, raw=True)
        rows = table_rows(block[2])[1:]
        assert int(block[1]) == len(rows) == len(dataclasses.fields(cls)), name
        assert [r[1] for r in rows] == [f.name for f in dataclasses.fields(cls)], name


def test_s5_9_currency_table_is_the_frozen_table():
    from protocol.currencies import ISO_4217

    block = find(r"```\n([A-Z ]+(?:\n[A-Z ]+)*)\n```", section("5.9"), raw=True)[1]
    assert block.split() == sorted(ISO_4217)


def test_s5_10_quality_k_period_and_fields():
    import dataclasses

    from protocol import quality

    text = section("5.10")
    rows = table_rows(text)[1:]
    assert [r[1] for r in rows] == [f.name for f in dataclasses.fields(quality.BranchQuality)]
    assert find(r"`(\S+)` in full \(`YYYY-MM`\)", text)[1].replace("\\|", "|") == quality._PERIOD.pattern
    assert number(find(r"an exact count in \[(\d+), 10\^6\]: k = (\d+)", text)[2]) == quality.MIN_COUNT == 5


# ---------------------------------------------------------------- §15 governance


def test_governance_example_and_tables():
    from protocol.governance import ACTIONS, Action, GovProposal
    from protocol.keys import branch_id_of

    text = section("15")
    key_hex = find(r"public key `([0-9a-f]{64})`", text)[1]
    body_hex = find(r"expiring after height (\d+):\s*```\s*([0-9a-f]+)\s*```", text, raw=True)
    expires, data = int(body_hex[1]), H(body_hex[2])
    body = GovProposal.from_array(decode(data, max_size=len(data)))
    assert body == GovProposal("admit-new", Action("admit_member", name="New Branch", public_key=H(key_hex)), expires)
    assert encode(body.to_array()) == data
    assert branch_id_of(body.action.public_key) != bytes(20)  # the system branch id derives from no key
    kinds = [row[0].strip("`") for row in table_rows(find(r"### 15\.2 Actions\n\n(\|.*?)\n\n", text, raw=True)[1])[1:]]
    assert kinds == list(ACTIONS)


def _member_example() -> dict:
    """§15.6's worked example: the entry leaf, its branch path, the top proof and the state root."""
    text = section("15.6")
    leaf = find(r"Its entry leaf\s*```\s*([0-9a-f]+)\s*```", text, raw=True)[1]
    path = find(r"`branch_path` = `\[([0-9a-f, ]*)\]`", text)[1]
    top = find(r"`top_proof` = `\[(\d+), (\d+), \[([0-9a-f, ]*)\]\]`", text)
    root = find(r"the state root `([0-9a-f]{64})`", text)[1]
    return {"leaf": leaf, "branch_path": [h for h in path.replace(" ", "").split(",") if h],
            "top": (int(top[1]), int(top[2]), [h for h in top[3].replace(" ", "").split(",") if h]), "root": root}


def test_member_entry_proof_example():
    """§15.6: the code and an independent walk (hashlib: §8's branch tree, then RFC 9162)
    reach the doc's state root."""
    from protocol.governance import SYSTEM_ID, MemberInfo
    from protocol.state_tree import EntryProof

    ex = _member_example()
    leaf = H(ex["leaf"])
    subject, seq, record_hash, height, row = decode(leaf, max_size=len(leaf))
    key_hex = find(r"public key `([0-9a-f]{64})`", section("15"))[1]
    assert (seq, record_hash, height) == (2, bytes(32), 5)
    assert MemberInfo.from_array(row).to_array() == ["New Branch", H(key_hex), 10, False, False]
    index, size, hashes = ex["top"]
    proof = EntryProof(SYSTEM_ID, leaf, tuple(map(H, ex["branch_path"])), merkle.InclusionProof(index, size, tuple(map(H, hashes))))
    assert proof.verify(H(ex["root"]))[0] == subject

    k = int.from_bytes(hashlib.sha256(subject.encode()).digest(), "big")
    r = hashlib.sha256(b"\x00" + leaf).digest()
    for d in range(len(ex["branch_path"]) - 1, -1, -1):  # §8: from the deepest sibling up
        sibling = H(ex["branch_path"][d])
        r = hashlib.sha256(b"\x01" + (sibling + r if k >> (255 - d) & 1 else r + sibling)).digest()
    r = hashlib.sha256(b"\x00" + encode([bytes(20), r])).digest()
    fn, sn = index, size - 1  # RFC 9162 §2.1.3.2
    for h in map(H, hashes):
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + h + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + h).digest()
        fn, sn = fn >> 1, sn >> 1
    assert r == H(ex["root"])
