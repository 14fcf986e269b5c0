"""Hash function and domain tags used everywhere (docs/PROTOCOL.md §Hashing)."""

from __future__ import annotations

import hashlib

HASH_SIZE = 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
