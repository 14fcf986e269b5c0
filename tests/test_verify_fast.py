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
