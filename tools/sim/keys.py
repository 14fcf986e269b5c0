"""Deterministic validator keys, generated once per process."""

from __future__ import annotations

from protocol.hashing import sha256
from protocol.keys import PrivateKey

MAX_NODES = 100
_KEYS: list[PrivateKey] = []


def sim_keys(n: int) -> list[PrivateKey]:
    """The first ``n`` simulator keys (Ed25519, from fixed seeds)."""
    if n > MAX_NODES:
        raise ValueError(f"at most {MAX_NODES} simulated validators")
    while len(_KEYS) < n:
        _KEYS.append(PrivateKey.from_seed(sha256(b"branchnet-sim-key" + len(_KEYS).to_bytes(4, "big"))))
    return _KEYS[:n]
