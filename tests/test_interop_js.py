"""Interop: a stock js-libp2p node joins a devnet and verifies a block (tests/interop/).

The js peer (js-libp2p 3.3, @libp2p/tcp, @libp2p/pnet, @chainsafe/libp2p-noise,
@chainsafe/libp2p-yamux, @libp2p/gossipsub; exact versions in
tests/interop/package-lock.json) reads the devnet's network.psk as it is written
on disk, dials a validator through the standard private network, takes a block
announcement from gossip, fetches that block and its certificate over
``/branchnet/{chain}/sync/1`` and checks them itself (block hash, records root,
Ed25519 certificate signatures, quorum). It is first run with another network's
key, which must fail and be counted on the validator.

Set-up: ``npm ci`` into a cache directory keyed by the lock file and the script
($BRANCHNET_INTEROP_CACHE, default under the system temp dir), once per version.
Skips, saying why, without Node.js >= 20 and npm, or when the npm registry
cannot be reached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import trio

from cluster import make_homes, running_nodes, wait_until
from node.home import new_psk, write_psk
from tools.netsetup import set_config
from node.p2p.host import peer_id_of
from protocol.keys import PrivateKey

INTEROP = Path(__file__).parent / "interop"
SCRIPT = "branchnet_peer.mjs"
FILES = ("package.json", "package-lock.json", SCRIPT)
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                  "ENETUNREACH", "EHOSTUNREACH", "network request", "request to https")

pytestmark = pytest.mark.slow


def _node_major(node: str) -> int:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    try:
        return int(out.strip().lstrip("v").split(".")[0])
    except ValueError:
        return 0


@pytest.fixture(scope="session")
def js_peer() -> Path:
    """A directory holding the js peer script and its node_modules (``npm ci``, cached)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the js-libp2p interop test (not on PATH)")
    if _node_major(node) < 20:
        pytest.skip("the js-libp2p interop test needs Node.js >= 20")
    digest = hashlib.sha256(b"".join((INTEROP / f).read_bytes() for f in FILES)).hexdigest()[:16]
    root = Path(os.environ.get("BRANCHNET_INTEROP_CACHE")
                or Path(tempfile.gettempdir()) / f"branchnet-interop-{os.getuid()}")
    root.mkdir(parents=True, exist_ok=True)
    target = root / digest
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one npm ci per cache, whoever else runs the suite
        if not (target / "node_modules" / ".package-lock.json").exists():
            staging = Path(tempfile.mkdtemp(prefix="staging-", dir=root))
            for f in FILES:
                shutil.copy(INTEROP / f, staging / f)
            try:
                done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                                      cwd=staging, capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                shutil.rmtree(staging, ignore_errors=True)
                pytest.skip("npm ci took over 10 minutes (is the npm registry reachable?)")
            if done.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                output = done.stdout + done.stderr
                reasons = [line for line in output.splitlines()
                           if any(marker in line for marker in NETWORK_ERRORS)]
                if reasons:
                    pytest.skip(f"npm registry unreachable: {reasons[0].strip()}")
                raise AssertionError(f"npm ci failed:\n{output[-4000:]}")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return target


async def _run_js_peer(js_dir: Path, spec: dict, tmp: Path, name: str) -> dict:
    spec_file = tmp / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    with trio.fail_after(spec["timeout_ms"] / 1000 + 15):
        done = await trio.run_process(["node", str(js_dir / SCRIPT), str(spec_file)], cwd=js_dir,
                                      capture_stdout=True, capture_stderr=True, check=False)
    lines = done.stdout.decode().strip().splitlines()
    assert lines, f"js peer printed nothing (exit {done.returncode}): {done.stderr.decode()[-2000:]}"
    result = json.loads(lines[-1])
    result["exit_code"] = done.returncode
    return result


async def test_js_libp2p_peer_joins_with_standard_pnet_and_verifies_a_block(js_peer: Path, tmp_path: Path):
    homes = make_homes(tmp_path / "net", 2)
    js_key = PrivateKey.generate()
    js_peer_id = peer_id_of(js_key.public_key.raw)
    for home in homes:
        set_config(home, "p2p", "allow_peers", [js_peer_id])
    other_network_key = tmp_path / "other.psk"
    write_psk(other_network_key, new_psk())
    async with running_nodes(homes) as nodes:
        validator = nodes[0]
        await wait_until(lambda: validator.chain.height >= 2, 60, "the devnet committing blocks")
        genesis = validator.genesis
        spec = {
            "seed": js_key.seed().hex(),
            "psk_file": str(homes[0].psk(validator.config)),  # the key file as branchnet wrote it
            "dial": validator.listen_addrs[0],
            "chain_id": genesis.chain_id,
            "validators": [{"public_key": v.public_key.hex(), "power": v.power}
                           for v in genesis.validators],
            "timeout_ms": 60_000,
        }

        refused = await _run_js_peer(js_peer, dict(spec, psk_file=str(other_network_key),
                                                   timeout_ms=10_000), tmp_path, "refused")
        assert not refused["ok"] and refused["steps"] == [], refused
        await wait_until(lambda: validator.net.connection_stats.psk_failures >= 1, 5,
                         "the wrong key counted")

        height_before = validator.chain.height
        result = await _run_js_peer(js_peer, spec, tmp_path, "joined")
        heights = (height_before, validator.chain.height)  # a stalled devnet announces nothing
        assert result["ok"] and result["exit_code"] == 0, (result, "validator heights", heights)
        assert result["peer_id"] == js_peer_id
        steps = {s["name"]: s for s in result["steps"]}
        assert steps["connected"]["remote"] == validator.peer_id
        assert steps["certificate"]["power"] * 3 > steps["certificate"]["total"] * 2
        height, block_hash = result["verified"]["height"], result["verified"]["block_hash"]
        stored = validator.chain.store.block(height)
        assert stored.block.hash.hex() == block_hash  # the js peer's own hash of what it got
        assert validator.net.connection_stats.psk_failures == 1
        assert validator.net.connection_stats.dropped_inbound == 0
