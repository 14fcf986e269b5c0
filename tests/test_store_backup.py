"""``branchnet store backup`` and ``store restore`` (node/store/backup.py).

The multi-process test: four validator processes on 127.0.0.1; a backup of one
while it runs; restore refused while it runs and for another chain's backup;
then it is stopped, its database wiped, the backup restored, and the node
restarts at the backup's height and catches up with the other three. The
other tests are offline (CliRunner): damaged files, a chain mismatch, the
signed_seq marks of the replaced database kept.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cluster import ProcessNetwork, make_homes
from node.cli import cli
from node.store import Store
from node.testnet import create_network
from protocol.genesis import Genesis
from waiting import wait_until_blocking

BIN = Path(sys.executable).with_name("branchnet")
CLI = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "node.cli"]
WAIT = 120  # seconds, for any one condition: four processes on a busy 2-core machine are slow, not wrong


def branchnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def other_chain_db(tmp_path: Path) -> Path:
    """A (valid, empty) database of another genesis."""
    (home,) = create_network(tmp_path / "other", 1, chain_id="other-chain", fixed_ports=False)
    path = tmp_path / "other.db"
    Store(path, Genesis.loads(home.genesis.read_bytes())).close()
    return path


@pytest.mark.slow
def test_backup_while_running_then_wipe_restore_and_catch_up(tmp_path: Path) -> None:
    homes = make_homes(tmp_path, 4, fixed_ports=True, realtime=True)
    net = ProcessNetwork(homes)
    node, home = 3, homes[3]
    h = ["--home", str(home.path)]

    def heights() -> str:
        return f"heights {[net.height(i) for i in range(4)]}"

    try:
        net.start_all()
        wait_until_blocking(lambda: min(net.height(i) for i in range(4)) >= 3, WAIT, "height 3 everywhere",
                            interval=0.3, detail=heights)

        out = tmp_path / "node3.backup"
        r = branchnet("store", "backup", *h, "--out", str(out), "--json")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        backed_up = info["height"]
        assert backed_up >= 3 and info["genesis_hash"] == net.genesis.hash.hex() and out.stat().st_mode & 0o077 == 0
        r = branchnet("store", "backup", *h, "--out", str(out))
        assert r.returncode == 2 and "already exists" in r.stderr

        r = branchnet("store", "restore", *h, str(out))
        assert r.returncode == 2 and "is running" in r.stderr

        assert net.stop(node) == 0, net.log(node)[-2000:]
        stopped_at = net.height(node)
        assert stopped_at >= backed_up
        wait_until_blocking(lambda: min(net.height(i) for i in range(3)) >= stopped_at + 3, WAIT,
                            "the other three commit on", interval=0.3, detail=heights)

        r = branchnet("store", "restore", *h, str(other_chain_db(tmp_path)))
        assert r.returncode == 2 and "other-chain" in r.stderr and "refusing" in r.stderr
        for suffix in ("", "-wal", "-shm"):  # wipe the database; the key, config and consensus WAL stay
            Path(f"{home.db}{suffix}").unlink(missing_ok=True)
        r = branchnet("store", "restore", *h, str(out), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["height"] == backed_up and json.loads(r.stdout)["previous_database_kept"] is None
        assert net.height(node) == backed_up

        log_before = len(net.log(node))
        net.start(node)
        wait_until_blocking(lambda: "up at height" in net.log(node)[log_before:], WAIT, "the restored node to start",
                            interval=0.3, detail=lambda: net.log(node)[-1500:])
        assert f"up at height {backed_up} of chain" in net.log(node)[log_before:]
        target = max(net.height(i) for i in range(3))
        wait_until_blocking(lambda: net.height(node) >= target + 2, WAIT, "the restored node to catch up and commit",
                            interval=0.3, detail=heights)
        for height in range(1, target + 1):
            assert len({net.block_hash(i, height) for i in range(4)}) == 1, f"fork at height {height}"
        assert net.stop(node) == 0 and "stopped cleanly" in net.log(node)
    finally:
        net.stop_all()


def test_restore_refuses_damaged_foreign_and_missing_backups(tmp_path: Path) -> None:
    (home,) = create_network(tmp_path / "net", 1, fixed_ports=False)
    h = ["--home", str(home.path)]
    Store(home.db, Genesis.loads(home.genesis.read_bytes())).close()
    before = home.db.read_bytes()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\0" + os.urandom(4000))
    r = run("store", "restore", *h, str(garbage))
    assert r.exit_code == 1 and r.stderr.startswith("error: ")
    r = run("store", "restore", *h, str(tmp_path / "none.db"))
    assert r.exit_code == 1 and "no such backup" in r.stderr
    r = run("store", "restore", *h, str(other_chain_db(tmp_path)))
    assert r.exit_code == 2 and "other-chain" in r.stderr
    assert home.db.read_bytes() == before  # nothing touched

    home.pid_file.write_text(f"{os.getpid()}\n")  # a live pid: "a node runs here"
    r = run("store", "restore", *h, str(garbage))
    assert r.exit_code == 2 and "running" in r.stderr


def test_restore_keeps_the_newer_signed_seq_marks_and_the_old_database(tmp_path: Path) -> None:
    (home,) = create_network(tmp_path / "net", 1, fixed_ports=False)
    h = ["--home", str(home.path)]
    genesis = Genesis.loads(home.genesis.read_bytes())
    Store(home.db, genesis).close()
    backup = tmp_path / "b.db"
    assert run("store", "backup", *h, "--out", str(backup)).exit_code == 0
    db = sqlite3.connect(home.db)  # after the backup, the branch key signed seq 7 of a subject
    db.execute("INSERT INTO signed_seq VALUES (?, ?, ?)", (b"\1" * 20, "svc/x", 7))
    db.commit()
    db.close()
    r = run("store", "restore", *h, str(backup), "--json")
    assert r.exit_code == 0, r.output
    kept = Path(json.loads(r.stdout)["previous_database_kept"])
    assert kept.exists() and not Path(f"{home.db}-wal").exists()
    store = Store(home.db, genesis)
    try:
        assert store.signed_seqs()[(b"\1" * 20, "svc/x")] == 7
    finally:
        store.close()
