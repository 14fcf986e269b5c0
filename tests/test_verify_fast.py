"""protocol/_verify.c: PublicKey.verify's check without copies must say exactly what
PyNaCl's crypto_sign_open says over the same signing bytes (docs/PROTOCOL.md §4)."""

import random

import pytest
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

from factories import CHAIN_ID, key
from protocol import keys
from protocol.errors import SignatureError
from protocol.keys import Domain, signing_bytes

fast = pytest.importorskip("protocol._verify")

L = 2**252 + 27742317777372353535851937790883648493  # the group order: S must be below it
IDENTITY = b"\x01" + bytes(31)  # the neutral point's encoding: small order


def reference(public_key: bytes, signature: bytes, domain: str, chain_id: str, payload: bytes) -> bool:
    try:
        crypto_sign_open(signature + signing_bytes(domain, chain_id, payload), public_key)
    except CryptoError:
        return False
    return True


def via_c(public_key: bytes, signature: bytes, domain: str, chain_id: str, payload: bytes) -> bool:
    return fast.verify(public_key, signature, keys._signing_head(domain, chain_id), payload)


def test_the_extension_is_bound_where_it_was_built():
    assert keys._fast_verify is fast.verify


def test_head_is_the_signing_bytes_up_to_the_payload():
    for domain in sorted(Domain.ALL):
        for payload in (b"", b"x" * 255, b"y" * 256, b"z" * 70_000):
            whole = signing_bytes(domain, CHAIN_ID, payload)
            head = keys._signing_head(domain, CHAIN_ID)
            assert whole.startswith(head) and whole.endswith(payload)
            assert len(whole) - len(head) - len(payload) == (2 if len(payload) < 256 else 3 if len(payload) < 65536 else 5)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65535, 65536, 70_000])
def test_agrees_with_crypto_sign_open_at_every_length_form(size):
    rng = random.Random(size)
    signer, other = key("alice"), key("bob")
    payload = rng.randbytes(size)
    sig = signer.sign(Domain.RECORD, CHAIN_ID, payload)
    pk = signer.public_key.raw
    cases = [
        (pk, sig, Domain.RECORD, CHAIN_ID, payload, True),
        (other.public_key.raw, sig, Domain.RECORD, CHAIN_ID, payload, False),
        (pk, sig, Domain.VOTE, CHAIN_ID, payload, False),
        (pk, sig, Domain.RECORD, CHAIN_ID + "x", payload, False),
        (pk, sig, Domain.RECORD, CHAIN_ID, payload + b"\0", False),
    ]
    if size:
        flipped = bytearray(payload)
        flipped[rng.randrange(size)] ^= 1 << rng.randrange(8)
        cases.append((pk, sig, Domain.RECORD, CHAIN_ID, bytes(flipped), False))
    for pk_, sig_, domain, chain_id, data, expected in cases:
        assert reference(pk_, sig_, domain, chain_id, data) is expected
        assert via_c(pk_, sig_, domain, chain_id, data) is expected


def test_agrees_on_every_single_bit_flip_of_a_signature():
    signer = key("carol")
    payload = b"\x97" + bytes(range(200))
    sig = signer.sign(Domain.RECORD, CHAIN_ID, payload)
    pk = signer.public_key.raw
    for bit in range(512):
        bad = bytearray(sig)
        bad[bit // 8] ^= 1 << (bit % 8)
        bad = bytes(bad)
        assert reference(pk, bad, Domain.RECORD, CHAIN_ID, payload) is False
        assert via_c(pk, bad, Domain.RECORD, CHAIN_ID, payload) is False


def test_agrees_on_non_canonical_s_and_small_order_points():
    signer = key("dave")
    payload = b"payload"
    sig = signer.sign(Domain.RECORD, CHAIN_ID, payload)
    pk = signer.public_key.raw
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + L).to_bytes(32, "little")  # the same point equation, S not reduced
    forged = IDENTITY + bytes(32)  # R = identity, S = 0: verifies for the identity key under a lax rule
    for pk_, sig_ in [(pk, malleated), (IDENTITY, forged), (pk, forged), (IDENTITY, sig)]:
        assert reference(pk_, sig_, Domain.RECORD, CHAIN_ID, payload) is False
        assert via_c(pk_, sig_, Domain.RECORD, CHAIN_ID, payload) is False


def test_public_key_verify_says_the_same_with_and_without_the_extension(monkeypatch):
    signer = key("erin")
    payloads = [b"", b"a" * 300, b"b" * 66_000]
    signed = [(p, signer.sign(Domain.PROPOSAL, CHAIN_ID, p)) for p in payloads]

    def outcomes() -> list[bool]:
        out = []
        for p, sig in signed:
            for data in (p, p + b"!"):
                try:
                    signer.public_key.verify(sig, Domain.PROPOSAL, CHAIN_ID, data)
                    out.append(True)
                except SignatureError as exc:
                    assert exc.field == "signature"
                    out.append(False)
        return out

    with_c = outcomes()
    assert with_c == [True, False] * len(payloads)
    monkeypatch.setattr(keys, "_fast_verify", None)
    assert outcomes() == with_c


def test_bad_arguments_raise_instead_of_reading_past_them():
    pk, sig = key("frank").public_key.raw, bytes(64)
    head = keys._signing_head(Domain.RECORD, CHAIN_ID)
    with pytest.raises(ValueError):
        fast.verify(pk[:31], sig, head, b"")
    with pytest.raises(ValueError):
        fast.verify(pk, sig[:63], head, b"")
    with pytest.raises(ValueError):
        fast.verify(pk, sig, b"h" * 257, b"")
    with pytest.raises(TypeError):
        fast.verify(pk, sig, head, bytearray(b""))
    with pytest.raises(TypeError):
        fast.verify(pk, sig, head)


def test_the_head_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(keys, "_heads", {})
    for i in range(keys._MAX_HEADS + 50):
        keys._signing_head(Domain.RECORD, f"chain-{i}")
    assert len(keys._heads) == keys._MAX_HEADS
    assert keys._signing_head(Domain.RECORD, "chain-999") == signing_bytes(Domain.RECORD, "chain-999", b"")[:-2]


# ------------------------------------------------------------ many checks at once (keys.verify_many)

def _checks(n: int):
    """(public key, signature, domain, chain id, payload) checks, every third one broken."""
    out, expected = [], []
    for i in range(n):
        signer = key(f"signer-{i % 5}")
        payload = bytes([i % 256]) * (i * 37 % 400)
        sig = signer.sign(Domain.VOTE, CHAIN_ID, payload)
        if i % 3 == 2:
            sig = sig[:10] + bytes([sig[10] ^ 4]) + sig[11:]
        out.append((signer.public_key, sig, Domain.VOTE, CHAIN_ID, payload))
        expected.append(i % 3 != 2)
    return out, expected


def test_verify_many_says_what_each_check_says(monkeypatch):
    checks, expected = _checks(40)
    assert [reference(k.raw, s, d, c, p) for k, s, d, c, p in checks] == expected
    assert keys.verify_many(checks) == expected
    assert keys.verify_many([]) == []
    raw = [(k.raw, s, keys._signing_head(d, c), p) for k, s, d, c, p in checks]
    assert fast.verify_many(raw) == bytes(expected)
    monkeypatch.setattr(keys, "_fast_verify_many", None)  # the Python path
    assert keys.verify_many(checks) == expected


def test_verify_many_takes_the_python_path_for_what_the_c_does_not_take():
    checks, expected = _checks(6)
    short = (checks[0][0], checks[0][1][:63], *checks[0][2:])  # a signature of 63 bytes: invalid, not an error
    long_chain = key("x").public_key, key("x").sign(Domain.VOTE, "c" * 64 + "\u4e2d" * 60, b"p"), Domain.VOTE, "c" * 64 + "\u4e2d" * 60, b"p"
    assert len(keys._signing_head(Domain.VOTE, long_chain[3])) > 256
    assert keys.verify_many([*checks, short, long_chain]) == [*expected, False, True]


def test_verify_many_refuses_malformed_checks():
    pk, sig = key("frank").public_key.raw, bytes(64)
    head = keys._signing_head(Domain.RECORD, CHAIN_ID)
    for bad in ([(pk, sig, head)], [(pk, sig, head, "text")], [[pk, sig, head, b""]], 7):
        with pytest.raises(TypeError):
            fast.verify_many(bad)
    for bad in ([(pk[:31], sig, head, b"")], [(pk, sig + b"x", head, b"")], [(pk, sig, b"h" * 257, b"")]):
        with pytest.raises(ValueError):
            fast.verify_many(bad)


def test_a_certificate_names_its_first_problem_in_signer_order():
    """The certificate's signatures are checked together now: the error is still the one a
    check signer by signer meets first (a bad signature before an outsider, or the outsider
    before a bad signature)."""
    from protocol.errors import ValidationError
    from protocol.validators import Validator, ValidatorSet
    from protocol.votes import PRECOMMIT, CommitCertificate, Vote

    members = sorted([key(f"v{i}") for i in range(4)], key=lambda k: k.branch_id)
    vs = ValidatorSet(Validator(k.branch_id, k.public_key, 10) for k in members)
    block_hash = bytes(range(32))

    def cert(signers, broken):
        votes = [Vote.create(k, CHAIN_ID, PRECOMMIT, 3, 0, block_hash) for k in signers]
        sigs = sorted((v.validator, v.signature[:5] + bytes([v.signature[5] ^ 1]) + v.signature[6:] if v.validator in broken else v.signature)
                      for v in votes)
        return CommitCertificate(3, 0, block_hash, tuple(sigs))

    cert(members[:3], set()).verify(vs, CHAIN_ID)
    outsider = next(k for k in (key(f"outsider-{i}") for i in range(1000))
                    if members[0].branch_id < k.branch_id < members[1].branch_id)  # signs second of three
    signers = [members[0], outsider, members[1]]
    with pytest.raises(SignatureError):  # the bad signature comes first
        cert(signers, {members[0].branch_id}).verify(vs, CHAIN_ID)
    with pytest.raises(ValidationError) as exc:  # the outsider comes first
        cert(signers, {members[1].branch_id}).verify(vs, CHAIN_ID)
    assert exc.value.reason == "not_validator" and not isinstance(exc.value, SignatureError)
    with pytest.raises(SignatureError):
        cert(members[:3], {members[1].branch_id}).verify(vs, CHAIN_ID)


def test_verify_many_assembles_each_message_whatever_the_order_of_their_lengths():
    """Each message is assembled in turn in one buffer the size of the longest: long after
    short, short after long, past the C's stack buffer (16 KiB), and a list or a tuple."""
    signer = key("grace")
    head = keys._signing_head(Domain.RECORD, CHAIN_ID)
    lengths = [0, 20_000, 3, 70_000, 16_384 - len(head) - 5, 16_384 - len(head) - 4, 1, 255, 65_536]
    checks, expected = [], []
    for i, n in enumerate(lengths):
        payload = bytes([(i * 7 + j) % 251 for j in range(n)])
        sig = signer.sign(Domain.RECORD, CHAIN_ID, payload)
        for broken in (False, True):
            checks.append((signer.public_key.raw, sig, head, payload + b"!" if broken else payload))
            expected.append(not broken)
    assert fast.verify_many(checks) == bytes(expected)
    assert fast.verify_many(tuple(reversed(checks))) == bytes(reversed(expected))
    assert [reference(pk, s, Domain.RECORD, CHAIN_ID, p) for pk, s, _, p in checks] == expected


def test_verify_signatures_checks_every_group(monkeypatch):
    """node.chain.verify_signatures checks records in groups: every group counts, a bad
    signature or an unknown branch in any of them is left out, whatever the group size."""
    import trio

    from factories import offer_record
    from node import chain
    from node.runtime import REAL, Runtime
    from protocol.records import Record

    keys_ = [key(f"member-{i}") for i in range(4)]
    members = {k.branch_id: k.public_key for k in keys_}
    stranger = key("stranger")
    records, good = [], set()
    for i in range(23):
        signer = stranger if i % 7 == 3 else keys_[i % 4]
        record = offer_record(signer, seq=1, service_id=f"s-{i}")
        if i % 5 == 1:  # the signature of another record
            other = offer_record(signer, seq=2, service_id=f"s-{i}")
            record = Record.decode(record.raw[:-64] + other.signature)
        elif signer is not stranger:
            good.add(record.hash)
        records.append(record)
    assert 0 < len(good) < len(records)
    for group in (1, 3, 5, 512):
        monkeypatch.setattr(chain, "VERIFY_GROUP", group)
        for runtime in (REAL, Runtime(threads=False)):
            assert trio.run(chain.verify_signatures, records, members, runtime) == good
    assert trio.run(chain.verify_signatures, [], members) == set()
