"""Helpers for tests and benchmarks: several P2PNetworks on 127.0.0.1 in one process."""

from __future__ import annotations

import dataclasses
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

import trio

from protocol.keys import PrivateKey

from .host import peer_id_of
from .network import P2PConfig, P2PNetwork

TEST_PSK = "5a" * 32


def make_keys(n: int) -> list[PrivateKey]:
    return [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(n)]


@asynccontextmanager
async def running(net: P2PNetwork, timeout: float = 30.0) -> AsyncIterator[P2PNetwork]:
    """Run ``net`` in its own nursery until the block exits (then stop it)."""
    async with trio.open_nursery() as nursery:
        with trio.fail_after(timeout):
            await nursery.start(net.run)
        try:
            yield net
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def network_of(n: int, *, topology: str = "mesh", allowlist: bool = True,
                     config: P2PConfig | None = None, keys: Sequence[PrivateKey] | None = None,
                     timeout: float = 60.0) -> AsyncIterator[list[P2PNetwork]]:
    """Start ``n`` nodes sharing a PSK (and an allowlist of each other), connected
    as a full ``mesh``, a ``line`` or ``none``; yield them; stop them all."""
    keys = list(keys or make_keys(n))
    base = config or P2PConfig(psk=TEST_PSK)
    allowed = frozenset(peer_id_of(k.public_key.raw) for k in keys) if allowlist else None
    nets = [P2PNetwork(k, dataclasses.replace(base, allowed_peers=allowed)) for k in keys]
    async with trio.open_nursery() as nursery:
        with trio.fail_after(timeout):
            for net in nets:
                await nursery.start(net.run)
            pairs: list[tuple[int, int]] = []
            if topology == "mesh":
                pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
            elif topology == "line":
                pairs = [(i, i + 1) for i in range(n - 1)]
            for i, j in pairs:
                await nets[i].connect(nets[j].listen_addrs[0])
            for i, net in enumerate(nets):
                degree = sum(1 for p in pairs if i in p)
                await net.wait_connected(degree, timeout)
        try:
            yield nets
        finally:
            nursery.cancel_scope.cancel()
