"""``branchnet testnet``, ``keys show`` identity cards, ``genesis add-validator --keys-file`` and
``config add-peer``: setting up a network from the command line (offline, CliRunner).

The nodes it creates run in tests/test_readme_quickstart.py (real processes).
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from node.cli import cli
from node.config import Home
from node.home import read_psk
from node.keyfile import load_key
from node.testnet import set_config
from node.p2p.host import peer_id_of
from protocol.genesis import Genesis


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_testnet_creates_a_dialable_network(tmp_path: Path) -> None:
    d = tmp_path / "net"
    r = run("testnet", "--nodes", "4", "--observers", "2", "--dir", str(d), "--chain-id", "acme-test", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    names = [n["name"] for n in doc["nodes"]]
    assert names == ["branch-00", "branch-01", "branch-02", "branch-03", "observer-00", "observer-01"]
    assert [n["role"] for n in doc["nodes"]] == ["validator"] * 4 + ["observer"] * 2

    homes = [Home(d / name) for name in names]
    genesis_texts = {h.genesis.read_text() for h in homes}
    assert len(genesis_texts) == 1
    genesis = Genesis.loads(homes[0].genesis.read_bytes())
    assert genesis.chain_id == "acme-test" and doc["genesis_hash"] == genesis.hash.hex()
    assert len([m for m in genesis.members if m.power]) == 4 and len(genesis.members) == 6
    assert len({read_psk(h.path / "network.psk") for h in homes}) == 1

    configs = [h.load_config() for h in homes]  # each is a valid config
    ports = [c.api.listen.rsplit(":", 1)[1] for c in configs] + [c.p2p.listen[0].rsplit("/", 1)[1] for c in configs]
    assert len(set(ports)) == len(ports) and "0" not in ports
    assert all(c.api.listen.startswith("127.0.0.1:") and c.p2p.listen[0].startswith("/ip4/127.0.0.1/tcp/") for c in configs)

    dialable = {n["name"]: n["p2p"] for n in doc["nodes"]}
    for h, c in zip(homes, configs):
        peer_id = peer_id_of(load_key(h.key).public_key.raw)
        assert dialable[h.path.name] == f"{c.p2p.listen[0]}/p2p/{peer_id}"
    for i, c in enumerate(configs[:4]):  # validators: a full mesh of the others
        assert set(c.p2p.peers) == {dialable[n] for n in names[:4] if n != names[i]}
    for c in configs[4:]:  # observers: two validators each
        assert len(c.p2p.peers) == 2 and set(c.p2p.peers) <= {dialable[n] for n in names[:4]}


def test_testnet_human_output_says_how_to_start_each_node(tmp_path: Path) -> None:
    d = tmp_path / "net"
    r = run("testnet", "--nodes", "2", "--dir", str(d))
    assert r.exit_code == 0, r.output
    genesis = Genesis.loads((d / "branch-00" / "genesis.json").read_bytes())
    assert f"genesis hash: {genesis.hash.hex()}" in r.stdout
    for name in ("branch-00", "branch-01"):
        assert f"branchnet run --home {d / name}" in r.stdout


def test_testnet_refuses_a_used_directory_and_bad_input(tmp_path: Path) -> None:
    d = tmp_path / "net"
    d.mkdir()
    (d / "something").write_text("x")
    r = run("testnet", "--nodes", "4", "--dir", str(d))
    assert r.exit_code == 2 and "not empty" in r.stderr
    assert sorted(p.name for p in d.iterdir()) == ["something"]
    r = run("testnet", "--nodes", "0", "--dir", str(tmp_path / "a"))
    assert r.exit_code == 2 and "--nodes" in r.stderr
    r = run("testnet", "--nodes", "1", "--dir", str(tmp_path / "b"), "--chain-id", "Not Valid!")
    assert r.exit_code == 2 and "--chain-id" in r.stderr and not (tmp_path / "b").exists()


def test_peer_id_without_libp2p_matches_libp2p() -> None:
    from libp2p.crypto.ed25519 import Ed25519PublicKey
    from libp2p.peer.id import ID

    from node.peerid import peer_id_of as fast
    from protocol.keys import PrivateKey

    for _ in range(20):
        raw = PrivateKey.generate().public_key.raw
        assert fast(raw) == peer_id_of(raw) == str(ID.from_pubkey(Ed25519PublicKey.from_bytes(raw)))


def test_identity_card_builds_genesis_and_peers(tmp_path: Path) -> None:
    """keys show --json -> genesis add-validator --keys-file -> config add-peer (the README's hand-over files)."""
    cards = []
    for i, name in enumerate(("Lujiazui Branch", "Haidian Branch")):
        h = tmp_path / f"h{i}"
        r = run("init", "--home", str(h), "--moniker", name, "--p2p-listen", f"/ip4/127.0.0.1/tcp/{27000 + i}")
        assert r.exit_code == 0, r.output
        r = run("keys", "show", "--home", str(h), "--json")
        card = json.loads(r.stdout)
        assert card["name"] == name and card["addresses"] == [f"/ip4/127.0.0.1/tcp/{27000 + i}/p2p/{card['peer_id']}"]
        (tmp_path / f"{i}.branch.json").write_text(r.stdout)
        cards.append(card)
    g = tmp_path / "genesis.json"
    assert run("genesis", "new", "--chain-id", "t", "--out", str(g)).exit_code == 0
    for i in range(2):
        r = run("genesis", "add-validator", str(g), "--keys-file", str(tmp_path / f"{i}.branch.json"))
        assert r.exit_code == 0, r.output
    doc = json.loads(g.read_text())
    assert [(v["name"], v["public_key"]) for v in doc["validators"]] == [(c["name"], c["public_key"]) for c in cards]
    r = run("genesis", "add-member", str(g), "--keys-file", str(tmp_path / "0.branch.json"), "--public-key", "00" * 32)
    assert r.exit_code == 2 and "exactly one" in r.stderr

    files = [str(tmp_path / f"{i}.branch.json") for i in range(2)]
    r = run("config", "add-peer", "--home", str(tmp_path / "h0"), *files)
    assert r.exit_code == 0, r.output
    assert Home(tmp_path / "h0").load_config().p2p.peers == tuple(cards[1]["addresses"])  # its own skipped
    r = run("config", "add-peer", "--home", str(tmp_path / "h0"), *files, "--json")
    assert json.loads(r.stdout)["added"] == []  # no duplicates
    r = run("config", "add-peer", "--home", str(tmp_path / "h0"), "/ip4/127.0.0.1/tcp/1")
    assert r.exit_code == 2 and "/p2p/PEER_ID" in r.stderr
    assert Home(tmp_path / "h0").load_config().p2p.peers == tuple(cards[1]["addresses"])


def test_a_home_given_as_a_string_is_a_path(tmp_path: Path) -> None:
    home = Home(str(tmp_path))
    assert home.path == tmp_path and home.config == tmp_path / "config.toml"
    home.config.write_text("[api]\nlisten = \"127.0.0.1:0\"\n")
    set_config(home, "api", "listen", "127.0.0.1:8080")
    assert 'listen = "127.0.0.1:8080"' in home.config.read_text()
