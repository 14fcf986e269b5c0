"""The libp2p peer id of a branch key, without importing libp2p (which costs the CLI
over a second per command).

A peer id of an Ed25519 key is the base58btc text of the identity multihash
(code 0x00, length 36) of the key's protobuf ``PublicKey{Type: Ed25519, Data: key}``
(bytes ``08 01 12 20`` then the 32-byte key). tests/test_cli_testnet.py checks
it against libp2p's ``ID.from_pubkey`` for random keys.
"""

from __future__ import annotations

from protocol.keys import PUBLIC_KEY_SIZE

from .errors import ConfigError

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PROTOBUF = bytes([0x08, 0x01, 0x12, PUBLIC_KEY_SIZE])


def base58btc(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def peer_id_of(public_key_raw: bytes) -> str:
    """The libp2p peer id (base58 string) of a branch's raw 32-byte public key.

    Raises ``ConfigError`` unless ``public_key_raw`` is 32 bytes.
    """
    if type(public_key_raw) is not bytes or len(public_key_raw) != PUBLIC_KEY_SIZE:
        raise ConfigError("public key must be 32 raw bytes")
    encoded = _ED25519_PROTOBUF + public_key_raw
    return base58btc(bytes([0x00, len(encoded)]) + encoded)
