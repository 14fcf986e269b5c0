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


_ROTATED: dict[tuple[int, int], PrivateKey] = {}


def rotated_key(index: int, generation: int) -> PrivateKey:
    """Simulator node ``index``'s key after its ``generation + 1``-th key rotation."""
    key = _ROTATED.get((index, generation))
    if key is None:
        key = _ROTATED[(index, generation)] = PrivateKey.from_seed(
            sha256(b"branchnet-sim-rotated" + index.to_bytes(4, "big") + generation.to_bytes(4, "big")))
    return key
