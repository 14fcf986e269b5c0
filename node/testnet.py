"""Create the files of a whole local network at once (``branchnet testnet``, devnets, tests, demos).

A real consortium builds its genesis with ``branchnet genesis`` step by step;
this does the same steps for N local branches in one call: every home (key,
config, API token), one genesis, one network key, distinct loopback ports and
each node's ``[p2p] peers`` filled in with dialable ``/ip4/.../tcp/.../p2p/ID``
addresses. ``tools/netsetup.py`` re-exports it for the tools and tests.

Raises :class:`node.home.HomeExists` if a home already holds a key (nothing is
overwritten); ``OSError`` for files it cannot write.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from protocol.genesis import Genesis

from .config import Home
from .home import init_home, new_psk
from .peerid import peer_id_of


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
    if n < 1 or observers < 0 or spare_members < 0:
        raise ValueError("a network needs at least one validator (and no negative counts)")
    total = n + observers
    ports = free_ports(3 * (total + spare_members)) if fixed_ports else [0] * (3 * (total + spare_members))
    homes, keys = [], []
    for i in range(total + spare_members):
        role = "validator" if i < n else "observer"
        name = f"branch-{i:02d}" if i < n else f"observer-{i - n:02d}" if i < total else f"member-{i - total:02d}"
        home, key = init_home(base / name, moniker=name, mode=role,
                              p2p_listen=f"/ip4/127.0.0.1/tcp/{ports[3 * i]}",
                              api_listen=f"127.0.0.1:{ports[3 * i + 1]}", psk_hex=psk)
        if fixed_ports and role == "validator":  # its consensus links (an ephemeral port could take another's)
            set_config(home, "p2p", "link_listen", f"127.0.0.1:{ports[3 * i + 2]}")
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
        addrs = [f"/ip4/127.0.0.1/tcp/{ports[3 * i]}/p2p/{peer_id_of(k.public_key.raw)}" for i, k in enumerate(keys)]
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


def dialable_address(home: Home) -> str:
    """``/ip4/IP/tcp/PORT/p2p/PEER_ID`` of a home whose config listens on a fixed port
    (the first listen address; 0.0.0.0 is given as 127.0.0.1)."""
    from .keyfile import load_key

    config = home.load_config()
    listen = config.p2p.listen[0].replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/")
    return f"{listen}/p2p/{peer_id_of(load_key(home.key).public_key.raw)}"
