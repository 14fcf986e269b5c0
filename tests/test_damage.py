"""Damage is found at start and never run on.

Each case damages one file of a validator's home that has committed a few
blocks, starts the daemon as ``branchnet run`` would, and checks: exit code 1,
ONE line on stderr naming the file, what is wrong and how to recover, no
traceback, and nothing changed on disk.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from cluster import make_homes, running_nodes, signed_offer, wait_until
from node import daemon
from node.config import Home
from node.p2p.memory import MemoryHub
from tools.netsetup import set_config


def _build_pristine(base: Path) -> Home:
    (home,) = make_homes(base, 1)

    async def run() -> None:
        async with running_nodes([home], hub=MemoryHub()) as (node,):
            record = signed_offer(node.key, node.genesis.chain_id, "svc-1")
            await node.ingest.submit(record.raw)
            await wait_until(lambda: node.chain.height >= 3 and node.chain.store.record(record.hash), 60, "3 blocks")

    trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    return home


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Home:
    return _build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def home(pristine: Home, tmp_path: Path) -> Home:
    copy = tmp_path / "home"
    shutil.copytree(pristine.path, copy)
    return Home(copy)


def _snapshot(home: Home) -> dict[str, str]:
    out = {}
    for p in sorted(home.path.rglob("*")):
        if p.name.endswith(("-wal", "-shm")) or p.name == "node.pid":
            continue
        out[str(p.relative_to(home.path))] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _sql(home: Home, statement: str) -> None:
    db = sqlite3.connect(home.db)
    db.execute(statement)
    db.commit()
    db.close()


def _free_port_in_use() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


HELD: list[socket.socket] = []


def _hold_port(home: Home, section: str) -> str:
    s = _free_port_in_use()
    HELD.append(s)
    port = s.getsockname()[1]
    if section == "p2p":
        set_config(home, "p2p", "listen", [f"/ip4/127.0.0.1/tcp/{port}"])
    else:
        set_config(home, "api", "enabled", True)
        set_config(home, "api", "listen", f"127.0.0.1:{port}")
    return f"127.0.0.1:{port}"


# (name, damage(home) -> text the error must contain (a format string over {home}), regex the line must match)
CASES = [
    ("config empty", lambda h: h.config.write_text(""), r"{home}/config.toml is empty .*; restore {home}/config.toml from your backup"),
    ("config truncated", lambda h: _truncate(h.config, 200), r"{home}/config.toml lacks .* \(truncated\?\); restore"),
    ("bad allow_peers", lambda h: set_config(h, "p2p", "allow_peers", ["not-a-peer"]),
     r"{home}/config.toml \[p2p\] allow_peers: 'not-a-peer' is not a libp2p peer id"),
    ("bad api address", lambda h: set_config(h, "api", "listen", "256.1.1.1:26657"),
     r"{home}/config.toml \[api\] listen: '256.1.1.1' is neither an IP address nor a host name"),
    ("unresolvable api host", lambda h: (set_config(h, "api", "enabled", True), set_config(h, "api", "listen", "no-such-host.invalid:1")),
     r"no-such-host.invalid:1: cannot resolve 'no-such-host.invalid' .* \(api listen, config.toml \[api\] listen\)"),
    ("p2p port in use", lambda h: _hold_port(h, "p2p"), r"127.0.0.1:\d+ is already in use \(p2p listen, config.toml \[p2p\] listen\)"),
    ("api port in use", lambda h: _hold_port(h, "api"), r"127.0.0.1:\d+ is already in use \(api listen, config.toml \[api\] listen\)"),
    ("psk is a directory", lambda h: ((h.path / "network.psk").unlink(), (h.path / "network.psk").mkdir()),
     r"{home}/network.psk: is a directory, not a network key file"),
    ("binary psk", lambda h: (h.path / "network.psk").write_bytes(b"\xff\xfe\x00garbage" * 8),
     r"{home}/network.psk: network key file "),
    ("genesis missing", lambda h: h.genesis.unlink(), r"{home}/genesis.json: genesis file not found"),
    ("key damaged", lambda h: h.key.write_text("{"), r"{home}/node_key.json: not valid JSON"),
    ("db truncated", lambda h: _truncate(h.db, 1000), r"store {home}/data/node.db is damaged: .*; the node will not run on damaged data"),
    ("db header overwritten", lambda h: h.db.write_bytes(b"\x00" * 100 + h.db.read_bytes()[100:]),
     r"store {home}/data/node.db is damaged: not a readable SQLite database"),
    ("db random bytes", lambda h: h.db.write_bytes(bytes(range(256)) * 64),
     r"store {home}/data/node.db is damaged: not a readable SQLite database"),
    ("db is a directory", lambda h: (h.db.unlink(), h.db.mkdir()), r"store {home}/data/node.db is damaged: it is a directory"),
    ("a block row deleted", lambda h: _sql(h, "DELETE FROM blocks WHERE height=2"),
     r"store {home}/data/node.db is damaged: block 2 is missing .*branchnet store rebuild --home {home}"),
    ("the last block row deleted", lambda h: _sql(h, "DELETE FROM blocks WHERE height=(SELECT MAX(height) FROM blocks)"),
     r"store {home}/data/node.db is damaged: its last block is \d+ but height \d+ was committed"),
    ("meta deleted", lambda h: _sql(h, "DELETE FROM meta"),
     r"store {home}/data/node.db is damaged: its metadata \(the genesis hash it belongs to\) is missing"),
    ("consensus WAL deleted", lambda h: h.consensus_wal.unlink(),
     r"{home}/data/consensus.wal is missing: this validator cannot know what it signed before, so it will not sign; "
     r"to recover, .*branchnet signer reset --home {home} --resume-height H\+2"),
    ("consensus WAL damaged", lambda h: h.consensus_wal.write_bytes(b"garbage"),
     r"{home}/data/consensus.wal is not a consensus WAL \(bad header\); to recover"),
]


@pytest.mark.parametrize("name, damage, expected", CASES, ids=[c[0] for c in CASES])
def test_damage_stops_the_node_with_one_line_and_changes_nothing(home: Home, capsys, name, damage, expected):
    import re

    damage(home)
    before = _snapshot(home)
    try:
        code = daemon.main(str(home.path))
    finally:
        while HELD:
            HELD.pop().close()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert re.fullmatch(r"error: " + expected.format(home=re.escape(str(home.path))) + r".*", errors[0]), errors[0]
    assert _snapshot(home) == before
