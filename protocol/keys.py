"""Ed25519 keys, branch ids and domain-separated signatures.

Every signature covers ``encode(["branchnet/v1", domain, chain_id, payload])``
(docs/PROTOCOL.md §Signing), so nothing signed for one purpose (a record, a
vote, a proposal) or one network (chain id) verifies as another.

Key *files* are I/O and live in ``node/keyfile.py``; this module only turns
keys into bytes and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from msgpack import packb as _packb
from nacl.bindings import crypto_core_ed25519_is_valid_point as _valid_point
from nacl.bindings import crypto_sign_open as _sodium_sign_open
from nacl.exceptions import CryptoError as _CryptoError

from .encoding import encode
from .errors import DecodeError, SignatureError
from .hashing import sha256

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
BRANCH_ID_SIZE = 20
SIGNING_PREFIX = "branchnet/v1"


class Domain:
    """Signing domains. A signature is valid in exactly one of them."""

    RECORD = "record"
    VOTE = "vote"
    PROPOSAL = "proposal"
    ALL = frozenset({RECORD, VOTE, PROPOSAL})


def branch_id_of(public_key: bytes) -> bytes:
    """A branch id is the first 20 bytes of sha256("branchnet/branch-id" || public key)."""
    return sha256(b"branchnet/branch-id" + public_key)[:BRANCH_ID_SIZE]


def _c_verifier():
    """protocol/_verify.c, bound to the libsodium PyNaCl loaded, or None where the extension
    was not built or that library lacks the symbol (then PublicKey.verify and verify_many
    take the Python path: the same check, with two more copies)."""
    try:
        import nacl._sodium
        from . import _verify
    except ImportError:
        return None
    return _verify if _verify.bind(nacl._sodium.__file__) else None


_c = _c_verifier()
_fast_verify = None if _c is None else _c.verify
_fast_verify_many = None if _c is None else _c.verify_many
_MAX_C_HEAD = 0 if _c is None else _c.MAX_HEAD  # the longest head _verify.c takes; the Python path takes the rest
_heads: dict[tuple[str, str], bytes] = {}
_MAX_HEADS = 64  # (domain, chain id) pairs kept; a node uses a handful


def _signing_head(domain: str, chain_id: str) -> bytes:
    """The signing bytes up to the payload's bin header: ``signing_bytes`` without its
    last two bytes (an empty payload's header, c4 00)."""
    head = _heads.get((domain, chain_id))
    if head is None:
        head = _packb([SIGNING_PREFIX, domain, chain_id, b""], use_bin_type=True)[:-2]
        if len(_heads) < _MAX_HEADS:
            _heads[(domain, chain_id)] = head
    return head


def _c_head(signature: bytes, domain: str, chain_id: str, payload: bytes) -> bytes | None:
    """The signing bytes' head for _verify.c when it takes this check (types and sizes
    within its limits), else None: the Python path takes the rest."""
    if not (type(signature) is bytes and len(signature) == SIGNATURE_SIZE and type(domain) is str
            and type(chain_id) is str and type(payload) is bytes and len(payload) <= 0xFFFFFFFF):
        return None
    head = _signing_head(domain, chain_id)
    return head if len(head) <= _MAX_C_HEAD else None


def verify_many(checks: Sequence[tuple[PublicKey, bytes, str, str, bytes]]) -> list[bool]:
    """Whether each (public key, signature, domain, chain id, payload) verifies, as
    PublicKey.verify would say. Where the extension is built, all are checked in C with the
    GIL released once: a worker thread checking a batch one PublicKey.verify at a time
    waits for the GIL again after every check, up to CPython's switch interval (5 ms)
    whenever another thread runs Python (docs/PERFORMANCE.md)."""
    if _fast_verify_many is not None:
        prepared = []
        for key, signature, domain, chain_id, payload in checks:
            head = _c_head(signature, domain, chain_id, payload)
            if head is None:
                break
            prepared.append((key.raw, signature, head, payload))
        else:
            return [ok == 1 for ok in _fast_verify_many(prepared)]
    return [_verifies(*check) for check in checks]


def _verifies(key: PublicKey, signature: bytes, domain: str, chain_id: str, payload: bytes) -> bool:
    try:
        key.verify(signature, domain, chain_id, payload)
    except SignatureError:
        return False
    return True


def signing_bytes(domain: str, chain_id: str, payload: bytes) -> bytes:
    if type(domain) is str and type(chain_id) is str and type(payload) is bytes:
        return _packb([SIGNING_PREFIX, domain, chain_id, payload], use_bin_type=True)  # == encode(...), hot path
    return encode([SIGNING_PREFIX, domain, chain_id, payload])


@dataclass(frozen=True, slots=True)
class PublicKey:
    raw: bytes
    # derived from raw once: Record.verify compares it for every record (a hash each time otherwise)
    branch_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != PUBLIC_KEY_SIZE:
            raise DecodeError("public key must be 32 bytes", field="public_key", reason="size")
        if not _valid_point(self.raw):  # small order, off the curve, non-canonical: forgeable or unusable
            raise DecodeError("not a valid Ed25519 public key (small order, not on the curve or not canonical)",
                              field="public_key", reason="bad_key")
        object.__setattr__(self, "branch_id", branch_id_of(self.raw))

    def verify(self, signature: bytes, domain: str, chain_id: str, payload: bytes) -> None:
        """Raise SignatureError unless ``signature`` is valid for this key and domain.

        libsodium's rules (docs/PROTOCOL.md §4): RFC 8032 with the cofactorless
        equation, S < L, and neither A nor R of small order. It releases the GIL and
        verifies about 1.6x as fast as OpenSSL, which also accepted forgeries for
        small-order keys (any message verifies for the identity key with R = identity,
        S = 0)."""
        if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
            raise SignatureError("signature must be 64 bytes", field="signature")
        head = None if _fast_verify is None else _c_head(signature, domain, chain_id, payload)
        if head is not None:
            if _fast_verify(self.raw, signature, head, payload):
                return
            raise SignatureError(f"signature does not verify ({domain})", field="signature")
        try:
            _sodium_sign_open(signature + signing_bytes(domain, chain_id, payload), self.raw)
        except (_CryptoError, ValueError, TypeError):
            raise SignatureError(f"signature does not verify ({domain})", field="signature") from None

    def hex(self) -> str:
        return self.raw.hex()


class PrivateKey:
    """An Ed25519 signing key. Never encoded into anything that leaves the node."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: Ed25519PrivateKey):
        self._key = key
        self.public_key = PublicKey(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> "PrivateKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "PrivateKey":
        if type(seed) is not bytes or len(seed) != 32:
            raise DecodeError("private key seed must be 32 bytes", field="private_key", reason="size")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def branch_id(self) -> bytes:
        return self.public_key.branch_id

    def sign(self, domain: str, chain_id: str, payload: bytes) -> bytes:
        if domain not in Domain.ALL:
            raise ValueError(f"unknown signing domain {domain!r}")
        return self._key.sign(signing_bytes(domain, chain_id, payload))
