"""``branchnet rollback`` (issue 16), with real node processes on 127.0.0.1.

* a sole validator's rollback is refused while it runs (pid lock), then refused
  because it signed at the last height, with one line naming the command that
  makes it safe; that command followed, the rollback removes the block and its
  state (the store opens and verifies at h-1);
* in a 4-validator network, a stopped validator rolled back (following the
  printed command if it signed at h) takes block h again from its peers: the
  same block, and it goes on committing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import ProcessNetwork, make_homes
from node.store import Store
from waiting import wait_until_blocking

REPO = Path(__file__).parent.parent
WAIT = 120


def branchnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def rollback_following_the_advice(home: Path) -> tuple[subprocess.CompletedProcess, bool]:
    """Roll back; if refused for the signer, run the command the refusal names and
    roll back again. Returns the last result and whether the signer was reset."""
    first = branchnet("rollback", "--home", str(home), "--json")
    if first.returncode == 0:
        return first, False
    assert first.returncode == 1, first.stderr
    assert "refusing to roll back" in first.stderr and first.stderr.count("\n") == 1, first.stderr
    reset = re.search(r"branchnet signer reset --home (\S+) --resume-height (\d+)", first.stderr)
    assert reset, first.stderr
    done = branchnet("signer", "reset", "--home", reset.group(1), "--resume-height", reset.group(2))
    assert done.returncode == 0, done.stderr
    return branchnet("rollback", "--home", str(home), "--json"), True


def store_state(net: ProcessNetwork, i: int) -> tuple[int, bytes | None]:
    """(height, hash of the block above it or None), with the state verified against the last header."""
    store = Store(net.homes[i].db, net.genesis)
    try:
        state = store.load_state()
        above = store.block(state.height + 1)
        return state.height, above.block.hash if above else None
    finally:
        store.close()


def test_the_signer_rule(tmp_path):
    from types import SimpleNamespace

    from node.cli.rollback import signer_conflict
    from node.consensus.wal import ConsensusWAL
    from protocol.consensus.signer import SignerState

    home = SimpleNamespace(path=tmp_path, consensus_wal=tmp_path / "data" / "consensus.wal")
    assert signer_conflict(home, 5) is None  # no WAL: an observer
    home.consensus_wal.parent.mkdir()

    def wal(height: int, round: int, resume: int = 0) -> None:
        ConsensusWAL(home.consensus_wal, home=tmp_path).create(SignerState(height=height, round=round), resume_height=resume)

    wal(4, 0)
    assert signer_conflict(home, 5) is None  # signed below the height rolled back
    for signed in (5, 6):
        wal(signed, 1)
        assert f"--resume-height {signed + 2}" in signer_conflict(home, 5)
    wal(6, 1, resume=7)
    assert signer_conflict(home, 5) is None  # signs nothing below 7 any more
    wal(0, -1, resume=0)
    assert signer_conflict(home, 1) is None  # never signed


@pytest.mark.slow
def test_a_validator_that_signed_the_last_height_is_refused_until_its_signer_mark_is_raised(tmp_path):
    homes = make_homes(tmp_path, 1, fixed_ports=True, realtime=True)  # a sole validator signs every height
    home = homes[0].path
    net = ProcessNetwork(homes)
    try:
        net.start(0)
        wait_until_blocking(lambda: net.height(0) >= 3, WAIT, "height 3", detail=lambda: net.log(0)[-1500:])
        running = branchnet("rollback", "--home", str(home))
        assert running.returncode == 2 and "is running on this home; stop it first" in running.stderr, running.stderr
        assert net.stop(0) == 0, net.log(0)[-2000:]
    finally:
        net.stop_all()
    h = net.height(0)

    refused = branchnet("rollback", "--home", str(home))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr  # one line
    signed_at = re.search(r"this validator signed at height (\d+)", refused.stderr)
    assert signed_at and int(signed_at.group(1)) >= h, refused.stderr
    assert f"branchnet signer reset --home {home} --resume-height" in refused.stderr, refused.stderr
    assert net.height(0) == h  # nothing changed

    result, reset = rollback_following_the_advice(home)
    assert reset and result.returncode == 0, result.stderr
    assert f'"removed_height": {h}' in result.stdout and f'"height": {h - 1}' in result.stdout
    assert store_state(net, 0) == (h - 1, None)  # block h gone, state verified at h-1

    again = branchnet("rollback", "--home", str(home))  # the signer mark is above h-1 now: no refusal
    assert again.returncode == 0, again.stderr
    assert store_state(net, 0) == (h - 2, None)


@pytest.mark.slow
def test_a_rolled_back_validator_takes_the_same_block_again_from_its_peers(tmp_path):
    homes = make_homes(tmp_path, 4, fixed_ports=True, realtime=True)
    net = ProcessNetwork(homes)
    try:
        net.start_all()
        wait_until_blocking(lambda: min(net.height(i) for i in range(4)) >= 3, WAIT, "height 3 everywhere",
                            detail=lambda: [net.height(i) for i in range(4)])
        assert net.stop(3) == 0, net.log(3)[-2000:]
        h = net.height(3)
        block_h = net.block_hash(3, h)

        result, reset = rollback_following_the_advice(homes[3].path)
        assert result.returncode == 0, result.stderr
        assert store_state(net, 3) == (h - 1, None)

        net.start(3)
        wait_until_blocking(lambda: net.height(3) >= h + 2, WAIT, f"the rolled-back node past height {h + 1}",
                            detail=lambda: ([net.height(i) for i in range(3)], net.height(3), net.log(3)[-1500:]))
        assert net.block_hash(3, h) == block_h == net.block_hash(0, h)
        for i in range(4):
            assert net.stop(i) == 0, net.log(i)[-2000:]
    finally:
        net.stop_all()
    assert "stopped cleanly" in net.log(3).rsplit("received SIGTERM", 1)[-1]
