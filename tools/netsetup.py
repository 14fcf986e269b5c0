"""Create the files of a whole local network at once (devnets, tests, demos).

A real consortium builds its genesis with ``branchnet genesis`` step by step;
this does the same steps for N local branches in one call.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from protocol.genesis import Genesis

from node.config import Home
from node.home import init_home, new_psk
from node.p2p.host import peer_id_of


def free_ports(n: int) -> list[int]:
    """Ask the OS for ``n`` free loopback ports (bound then released)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def create_network(base: Path, n: int, *, chain_id: str = "branchnet-devnet", observers: int = 0,
                   genesis_time_ms: int = 1_767_225_600_000, params: dict | None = None,
                   fixed_ports: bool = True, consensus: dict | None = None, observer_links: int = 2,
                   spare_members: int = 0) -> list[Home]:
    """Homes for ``n`` validators (+ ``observers``), sharing one genesis and network key.

    With ``fixed_ports`` each node gets OS-chosen free ports written into its
    config and persistent peers (for separate processes): validators list every
    other validator (a full mesh among themselves), an observer lists
    ``observer_links`` validators, round-robin, so observers stay off the
    validators' hot path however many there are. Without ``fixed_ports``, nodes
    listen on tcp/0 and the caller connects them.

    ``spare_members`` adds genesis members that run no node (homes
    ``member-NN``, not returned): an identity for ``python -m tools.adversary``.
    """
    base = Path(base)
    psk = new_psk()
    total = n + observers
    ports = free_ports(2 * (total + spare_members)) if fixed_ports else [0] * (2 * (total + spare_members))
    homes, keys = [], []
    for i in range(total + spare_members):
        role = "validator" if i < n else "observer"
        name = f"branch-{i:02d}" if i < n else f"observer-{i - n:02d}" if i < total else f"member-{i - total:02d}"
        home, key = init_home(base / name, moniker=name, mode=role,
                              p2p_listen=f"/ip4/127.0.0.1/tcp/{ports[2 * i]}",
                              api_listen=f"127.0.0.1:{ports[2 * i + 1]}", psk_hex=psk)
        homes.append(home)
        keys.append(key)
    doc = {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "validators": [{"name": h.path.name, "public_key": k.public_key.hex(), "power": 10} for h, k in zip(homes[:n], keys[:n])],
        "members": [{"name": h.path.name, "public_key": k.public_key.hex()} for h, k in zip(homes[n:], keys[n:])],
        "params": params or {},
    }
    genesis = Genesis.from_json(doc)
    text = genesis.dumps()
    for home in homes:
        home.genesis.write_text(text)
    if fixed_ports:
        addrs = [f"/ip4/127.0.0.1/tcp/{ports[2 * i]}/p2p/{peer_id_of(k.public_key.raw)}" for i, k in enumerate(keys)]
        for i, home in enumerate(homes):
            if i < n:
                peers = [a for j, a in enumerate(addrs[:n]) if j != i]
            else:
                peers = [addrs[(i - n + k) % n] for k in range(min(observer_links, n))]
            set_config(home, "p2p", "peers", peers)
    if consensus:
        for home in homes:
            for k, v in consensus.items():
                set_config(home, "consensus", k, v)
    return homes[:total]


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


def set_config(home: Home, section: str, key: str, value) -> None:
    """Rewrite one key of config.toml, keeping its comments."""
    lines = home.config.read_text().splitlines()
    out, current, done = [], None, False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if current == section and not done:
                out.append(f"{key} = {json.dumps(value)}")
                done = True
            current = stripped[1:-1]
        elif current == section and stripped.split("=")[0].strip() == key and not stripped.startswith("#"):
            out.append(f"{key} = {json.dumps(value)}")
            done = True
            continue
        out.append(line)
    if not done:
        if current != section:
            out.append(f"[{section}]")
        out.append(f"{key} = {json.dumps(value)}")
    home.config.write_text("\n".join(out) + "\n")
