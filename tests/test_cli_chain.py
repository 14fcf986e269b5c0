"""The branchnet CLI, offline chain commands: chain verify / export, store rebuild.

A node home is built by hand: genesis file plus a SQLite store filled the way
the node fills it (build_block, CommitCertificate.from_votes, Store.commit_block).
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli
from node.cli.export import EXPORT_FORMAT
from node.store import Store
from protocol.blocks import Header
from protocol.encoding import decode, encode
from protocol.ledger import LedgerState
import factories as f

BLOCKS = 8


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _empty_home(tmp_path_factory: pytest.TempPathFactory, name: str):
    """A home with a genesis of 4 validators and 2 members and an empty store:
    (home, validator keys, member keys, genesis, store, state)."""
    home = tmp_path_factory.mktemp(name) / "home"
    (home / "data").mkdir(parents=True)
    vals, members = f.validator_keys(4), f.member_keys(2)
    genesis = f.make_genesis(vals, members)
    (home / "genesis.json").write_text(genesis.dumps())
    return home, vals, members, genesis, Store(home / "data" / "node.db", genesis), LedgerState(genesis)


@pytest.fixture(scope="module")
def chain_home(tmp_path_factory: pytest.TempPathFactory):
    """A home with BLOCKS committed blocks; returns (home, genesis, final state root)."""
    home, vals, members, genesis, store, state = _empty_home(tmp_path_factory, "chain")
    branch = members[0]
    batches = [[f.record(branch, f.profile(), 1), f.record(branch, f.offer("cash"), 1)]]
    batches += [[f.record(branch, f.offer(f"svc-{h}"), 1), f.record(branch, f.status("cash", wait=h), h - 1)]
                for h in range(2, BLOCKS)]
    batches.append([])  # an empty heartbeat block
    for batch in batches:
        block, tx, rejected = f.next_block(state, batch)
        assert not rejected, rejected
        store.commit_block(block, f.certify(block, vals[:3]), tx)  # 3 of 4: just over 2/3
        tx.commit()
    store.close()
    return home, genesis, state.state_root.hex()


def test_verify_home_replays_every_block(chain_home) -> None:
    home, genesis, root = chain_home
    r = run("chain", "verify", "--home", str(home), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["ok"], doc["height"], doc["blocks"], doc["state_root"]) == (True, BLOCKS, BLOCKS, root)
    assert doc["records"] == 2 * (BLOCKS - 1) and doc["blocks_per_s"] > 0
    human = run("chain", "verify", "--home", str(home))
    assert human.exit_code == 0 and root in human.stdout and "blocks/s" in human.stdout


def test_verify_home_needs_matching_genesis_and_a_database(chain_home, tmp_path: Path) -> None:
    home, _genesis, _root = chain_home
    other = tmp_path / "other.json"
    other.write_text(f.make_genesis(f.validator_keys(1), []).dumps())
    r = run("chain", "verify", "--home", str(home), "--genesis", str(other))
    assert r.exit_code == 2 and "another chain" in r.stderr
    r = run("chain", "verify", "--home", str(tmp_path), "--genesis", str(other))
    assert r.exit_code == 2 and "no such database" in r.stderr


def test_export_then_verify_offline(chain_home, tmp_path: Path) -> None:
    home, genesis, root = chain_home
    out = tmp_path / "chain.bnx"
    r = run("chain", "export", "--home", str(home), "--out", str(out))
    assert r.exit_code == 0, r.output
    header, frames = _read(out)
    assert header["format"] == EXPORT_FORMAT and (header["from"], header["to"]) == (1, BLOCKS)
    assert header["chain_id"] == genesis.chain_id and len(frames) == BLOCKS
    g = tmp_path / "trusted-genesis.json"
    g.write_text(genesis.dumps())
    r = run("chain", "verify", "--file", str(out), "--genesis", str(g), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["state_root"] == root
    r = run("chain", "verify", "--file", str(out))
    assert r.exit_code == 2 and "--genesis" in r.stderr


def test_partial_export_checks_certificates_and_links(chain_home, tmp_path: Path) -> None:
    home, genesis, _root = chain_home
    out = tmp_path / "part.bnx"
    assert run("chain", "export", "--home", str(home), "--out", str(out), "--from", "3", "--to", "5").exit_code == 0
    assert _read(out)[0]["from"] == 3 and len(_read(out)[1]) == 3
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["from"], doc["height"], doc["state_root"]) == (3, 5, None)
    assert run("chain", "export", "--home", str(home), "--out", str(out), "--to", str(BLOCKS + 1)).exit_code == 1


def test_tampered_block_in_export_fails_at_its_height(chain_home, tmp_path: Path) -> None:
    home, _genesis, _root = chain_home
    out = tmp_path / "chain.bnx"
    assert run("chain", "export", "--home", str(home), "--out", str(out)).exit_code == 0
    header, frames = _read(out)
    block, cert = frames[4]  # height 5
    assert b"svc-5" in block
    frames[4] = (block.replace(b"svc-5", b"svc-9"), cert)  # same length: still decodes
    _write(out, header, frames)
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: verification failed at height 5:") and "root" in r.stderr
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout) == {"ok": False, "height": 5, "error": r.stderr.split(": ", 2)[2].strip()}


def test_swapped_certificate_and_truncation_are_caught(chain_home, tmp_path: Path) -> None:
    home, _genesis, _root = chain_home
    out = tmp_path / "chain.bnx"
    assert run("chain", "export", "--home", str(home), "--out", str(out)).exit_code == 0
    header, frames = _read(out)
    frames[2] = (frames[2][0], frames[3][1])  # height 3 with the certificate of height 4
    _write(out, header, frames)
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"))
    assert r.exit_code == 1 and "height 3" in r.stderr and "certificate" in r.stderr
    header, frames = _read(tmp_path / "chain.bnx")
    _write(out, header, frames[:2])
    data = out.read_bytes()
    out.write_bytes(data[:-10])
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"))
    assert r.exit_code == 1 and "block 2" in r.stderr and "truncated" in r.stderr


def test_tampered_database_fails_verify_and_rebuild(chain_home, tmp_path: Path) -> None:
    import shutil

    src, _genesis, _root = chain_home
    home = tmp_path / "home"
    shutil.copytree(src, home)
    db = sqlite3.connect(home / "data" / "node.db")
    (blk,) = db.execute("SELECT block FROM blocks WHERE height=6").fetchone()
    db.execute("UPDATE blocks SET block=? WHERE height=6", (bytes(blk).replace(b"svc-6", b"svc-x"),))
    db.commit()
    db.close()
    r = run("chain", "verify", "--home", str(home))
    assert r.exit_code == 1 and "height 6" in r.stderr
    r = run("store", "rebuild", "--home", str(home))
    assert r.exit_code == 1 and "block 6" in r.stderr


def test_store_rebuild_restores_the_state_table(chain_home, tmp_path: Path) -> None:
    import shutil

    src, genesis, root = chain_home
    home = tmp_path / "home"
    shutil.copytree(src, home)
    db = sqlite3.connect(home / "data" / "node.db")
    db.execute("DELETE FROM state")
    db.commit()
    db.close()
    r = run("store", "rebuild", "--home", str(home), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"height": BLOCKS, "state_root": root}
    store = Store(home / "data" / "node.db", genesis)
    try:
        assert store.load_state().state_root.hex() == root
    finally:
        store.close()
    (home / "node.pid").write_text("1\n")  # pid 1 is alive: a node "is running"
    r = run("store", "rebuild", "--home", str(home))
    assert r.exit_code == 2 and "running" in r.stderr


# ---------------------------------------------------------------- helpers


def _read(path: Path) -> tuple[dict, list[tuple[bytes, bytes]]]:
    data = path.read_bytes()
    line, _, rest = data.partition(b"\n")
    frames = []
    while rest:
        (n,) = struct.unpack(">I", rest[:4])
        block, cert = decode(rest[4 : 4 + n], max_size=n)
        frames.append((block, cert))
        rest = rest[4 + n :]
    return json.loads(line), frames


def _write(path: Path, header: dict, frames: list[tuple[bytes, bytes]]) -> None:
    body = b"".join(struct.pack(">I", len(fr)) + fr for fr in (encode([b, c]) for b, c in frames))
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)


@pytest.fixture(scope="module")
def governed_home(tmp_path_factory: pytest.TempPathFactory):
    """A home whose set changed: a member is voted power 10 at block 2, block 3 announces the
    new set, blocks 4..8 are signed by it (50 power: the genesis set's 40 alone is not 2/3 of it)."""
    from protocol.governance import Action, GovProposal, GovVote

    home, vals, members, genesis, store, state = _empty_home(tmp_path_factory, "governed")
    keys = {k.branch_id: k for k in (*vals, *members)}
    proposal = f.record(vals[0], GovProposal("m0-validates", Action("set_power", branch_id=members[0].branch_id, power=10), 50))
    batches = [[proposal], [f.record(v, GovVote(proposal.hash, True)) for v in vals]] + [[] for _ in range(3, BLOCKS + 1)]
    for batch in batches:
        signing = [keys[v.branch_id] for v in state.validators]
        block, tx, rejected = f.next_block(state, batch)
        assert not rejected, rejected
        store.commit_block(block, f.certify(block, signing), tx)
        tx.commit()
    assert len(state.validators) == 5
    store.close()
    return home, genesis


@pytest.mark.parametrize("first, last", [(5, 8), (2, 6), (2, 3)], ids=["after_the_change", "across_the_change", "ends_announcing"])
def test_partial_export_checks_certificates_against_the_set_in_force(governed_home, tmp_path: Path, first, last) -> None:
    home, genesis = governed_home
    out = tmp_path / "part.bnx"
    assert run("chain", "export", "--home", str(home), "--out", str(out), "--from", str(first), "--to", str(last)).exit_code == 0
    header, frames = _read(out)
    assert [Header.decode(bytes.fromhex(c["header"])).height for c in header["set_changes"]] == [3]
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"), "--json")
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["from"], json.loads(r.stdout)["height"]) == (first, last)

    # without the set changes the export cannot be checked past the change: refused at the first block signed by the new set
    _write(out, {k: v for k, v in header.items() if k != "set_changes"}, frames)
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["height"] == (first if first > 3 else 3), r.output
    # a set change carrying another set than its header announces
    forged = dict(header, set_changes=[dict(header["set_changes"][0], validators=header["set_changes"][0]["validators"][:4])])
    _write(out, forged, frames)
    r = run("chain", "verify", "--file", str(out), "--genesis", str(home / "genesis.json"))
    assert r.exit_code == 1 and "set" in r.stderr, r.stderr
