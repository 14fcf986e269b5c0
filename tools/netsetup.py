"""Homes for a whole local network at once: :mod:`node.testnet` builds them (the
``branchnet testnet`` command uses it), re-exported here for the tools and tests;
:func:`join_home` adds a branch outside genesis, for governance to admit."""

from __future__ import annotations

from pathlib import Path

from node.config import Home
from node.home import init_home
from node.p2p.host import peer_id_of
from node.testnet import create_network, dialable_address, free_ports, set_config

__all__ = ["create_network", "dialable_address", "free_ports", "join_home", "set_config"]


def join_home(base: Path, name: str, network: list[Home]) -> tuple[Home, str]:
    """A home for a new branch that is not in genesis (governance admits it later,
    PROTOCOL.md §15): a fresh key, the network's PSK and genesis, free ports, and every
    node of ``network`` as a peer. Returns the home and its public key (hex)."""
    from node.home import read_psk

    first = network[0]
    p2p, api = free_ports(2)
    home, key = init_home(Path(base) / name, moniker=name, mode="validator", p2p_listen=f"/ip4/127.0.0.1/tcp/{p2p}",
                          api_listen=f"127.0.0.1:{api}", psk_hex=read_psk(first.path / "network.psk"))
    home.genesis.write_bytes(first.genesis.read_bytes())
    peers = []
    for other in network:
        config = other.load_config()
        peers.append(f"{config.p2p.listen[0]}/p2p/{peer_id_of(_public_key(other))}")
    set_config(home, "p2p", "peers", peers)
    for k, v in _consensus_of(first).items():
        set_config(home, "consensus", k, v)
    return home, key.public_key.hex()


def _public_key(home: Home) -> bytes:
    from node.keyfile import load_key

    return load_key(home.key).public_key.raw


def _consensus_of(home: Home) -> dict:
    c = home.load_config().consensus
    return {"block_interval_ms": c.block_interval_ms, "empty_block_interval_ms": c.empty_block_interval_ms}
