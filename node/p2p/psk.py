"""The libp2p private-network key (PSK v1): its file format and its cipher, XSalsa20.

No I/O and no libp2p here; ``pnet.py`` puts this on connections.

**Key file** (libp2p/specs ``pnet/README.md``, the format go-libp2p, js-libp2p
and rust-libp2p read and write): three lines,

    /key/swarm/psk/1.0.0/
    /base16/
    <64 hex digits: the 32-byte key>

``parse_key_file`` also accepts the older branchnet form, one line of 64 hex
digits, so existing homes keep working; ``format_key_file`` writes the
standard form. Both raise ``ValueError`` with a one-line reason.

**Cipher.** Each direction of a connection is XOR-ed with the XSalsa20
keystream of (key, the sender's 24-byte nonce). XSalsa20 (Bernstein,
"Extending the Salsa20 nonce", 2008) is HSalsa20(key, nonce[0:16]) -> a
32-byte subkey, run once per direction here in pure Python (a few tens of
microseconds), then Salsa20(subkey, nonce[16:24]) from block counter 0, which
pycryptodome (a py-libp2p dependency) runs in C.
"""

from __future__ import annotations

import re
import struct

KEY_SIZE = 32
NONCE_SIZE = 24
KEY_FILE_HEADER = "/key/swarm/psk/1.0.0/"
KEY_FILE_ENCODING = "/base16/"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MAX_KEY_FILE = 4096

# "expand 32-byte k" as four little-endian words.
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_MASK = 0xFFFFFFFF


# -- key file ----------------------------------------------------------------------

def parse_key_file(data: bytes) -> bytes:
    """The 32-byte key in a PSK key file (standard three-line or legacy one-line form).

    Raises ``ValueError`` saying what is wrong (never echoing key material).
    """
    if len(data) > _MAX_KEY_FILE:
        raise ValueError(f"is {len(data)} bytes, too large for a network key file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("is not a text file (expected a libp2p PSK key file)") from None
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) == 1 and _HEX64.fullmatch(lines[0]):  # legacy: bare hex
        return bytes.fromhex(lines[0])
    if not lines or lines[0] != KEY_FILE_HEADER:
        raise ValueError(f"does not start with {KEY_FILE_HEADER!r} "
                         "(nor is it one line of 64 hex characters)")
    if len(lines) != 3:
        raise ValueError(f"has {len(lines)} lines; a PSK key file has 3: "
                         f"{KEY_FILE_HEADER}, {KEY_FILE_ENCODING} and the key")
    if lines[1] != KEY_FILE_ENCODING:
        raise ValueError(f"uses encoding {lines[1][:32]!r}; only {KEY_FILE_ENCODING!r} is supported")
    if not _HEX64.fullmatch(lines[2]):
        raise ValueError(f"key line must be 64 hex characters (32 bytes), "
                         f"not {len(lines[2])} characters")
    return bytes.fromhex(lines[2])


def format_key_file(key: bytes) -> str:
    """The standard key file text for a 32-byte key."""
    if type(key) is not bytes or len(key) != KEY_SIZE:
        raise ValueError("a network key is 32 bytes")
    return f"{KEY_FILE_HEADER}\n{KEY_FILE_ENCODING}\n{key.hex()}\n"


# -- XSalsa20 ------------------------------------------------------------------------

def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
    x[b] ^= _rotl((x[a] + x[d]) & _MASK, 7)
    x[c] ^= _rotl((x[b] + x[a]) & _MASK, 9)
    x[d] ^= _rotl((x[c] + x[b]) & _MASK, 13)
    x[a] ^= _rotl((x[d] + x[c]) & _MASK, 18)


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20: 20 Salsa20 rounds without the final addition; words 0, 5, 10, 15, 6..9."""
    if len(key) != KEY_SIZE or len(nonce16) != 16:
        raise ValueError("hsalsa20 takes a 32-byte key and a 16-byte input")
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    x = [_SIGMA[0], k[0], k[1], k[2], k[3], _SIGMA[1], n[0], n[1],
         n[2], n[3], _SIGMA[2], k[4], k[5], k[6], k[7], _SIGMA[3]]
    for _ in range(10):
        _quarter(x, 0, 4, 8, 12)    # columns
        _quarter(x, 5, 9, 13, 1)
        _quarter(x, 10, 14, 2, 6)
        _quarter(x, 15, 3, 7, 11)
        _quarter(x, 0, 1, 2, 3)     # rows
        _quarter(x, 5, 6, 7, 4)
        _quarter(x, 10, 11, 8, 9)
        _quarter(x, 15, 12, 13, 14)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


class XSalsa20:
    """One direction's keystream: ``xor(data)`` en/decrypts the next ``len(data)`` bytes."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes, nonce: bytes) -> None:
        from Crypto.Cipher import Salsa20

        if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
            raise ValueError("xsalsa20 takes a 32-byte key and a 24-byte nonce")
        self._cipher = Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])

    def xor(self, data: bytes) -> bytes:
        return self._cipher.encrypt(data)
