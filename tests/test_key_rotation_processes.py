"""Key rotation on the real daemon as OS processes over libp2p (127.0.0.1): a validator
runs ``branchnet keys rotate``; the record commits, its node restarts in place with its
new peer id (the other nodes' allowlists follow the registry), and it goes on signing
blocks and records under its branch id; a record signed by the old key after the
rotation is refused (``bad_signature``, counted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from cluster import ProcessNetwork, make_homes, signed_offer
from node.keyfile import load_branch_key
from test_governance_processes import WAIT, api, committed, sign, signers_at
from waiting import wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).with_name("branchnet")
CLI = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "node.cli"]


async def test_a_validator_rotates_its_key_and_keeps_signing(tmp_path):
    homes = make_homes(tmp_path, 4, fixed_ports=True, api=True, realtime=True)
    net = ProcessNetwork(homes)
    clients = [api(h) for h in homes]
    branch = load_branch_key(homes[3].key).branch_id.hex()
    old_key = load_branch_key(homes[3].key).key  # the test keeps a copy: a leaked old key
    try:
        net.start_all()
        await wait_until(lambda: min(net.height(i) for i in range(4)) >= 1, WAIT, "validators at height 1")
        pid = net.procs[3].pid
        before = (await clients[3].get("/v1/status")).json()
        rotate = await trio.to_thread.run_sync(lambda: subprocess.run(
            [*CLI, "keys", "rotate", "--home", str(homes[3].path), "--json", "--timeout", str(WAIT)],
            capture_output=True, text=True, timeout=WAIT + 60))
        assert rotate.returncode == 0, rotate.stderr + net.log(3)[-3000:]
        done = json.loads(rotate.stdout)
        assert done["status"] == "committed" and done["branch_id"] == branch
        assert net.procs[3].pid == pid and net.procs[3].poll() is None  # restarted in place

        async def reconnected() -> bool:
            r = await clients[3].get("/v1/status")
            doc = r.json() if r.status_code == 200 else {}
            return doc.get("peer_id") == done["peer_id"] and doc.get("peers", 0) >= 2

        await wait_until(reconnected, WAIT, "the rotated validator back with its new peer id")
        assert done["peer_id"] != before["peer_id"]

        record = await sign(clients[3], "branch.profile", {
            "name": "Branch Three", "address": "No. 3 Zhongshan Road, Nanjing", "region": "CN-JS-320102",
            "lat_micro": 32_043_000, "lon_micro": 118_784_000, "hours": [], "contact_phone": "",
            "contact_url": "https://bank.example/three"})
        height = await committed(clients[0], record)
        assert height > done["height"] + 1
        doc = (await clients[0].get(f"/v1/records/{record}")).json()
        assert doc["record"]["branch_id"] == branch

        # the old key still signs well-formed records, but none is taken after the rotation
        stale = signed_offer(old_key, net.genesis.chain_id, "old-key-offer")
        for c in clients[:3]:
            r = await c.post("/v1/records", json={"record": stale.raw.hex()})
            assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == "bad_signature", r.text
        metrics = (await clients[0].get("/metrics")).text
        assert 'branchnet_rejected_total{reason="bad_signature",source="api"}' in metrics or \
            'branchnet_rejected_total{source="api",reason="bad_signature"}' in metrics, metrics[-2000:]
        assert (await clients[0].get(f"/v1/records/{stale.hash.hex()}")).status_code == 404

        checked = [done["height"] + 1]  # from h + 2 the set holds the new key

        async def signs_again() -> bool:
            top = (await clients[0].get("/health")).json()["height"]
            while checked[0] < top:
                checked[0] += 1
                if branch in await signers_at(clients[0], checked[0]):
                    return True
            return False

        await wait_until(signs_again, WAIT, "the rotated validator's new-key signature in a certificate")
        for i in range(4):
            assert "Traceback" not in net.log(i), net.log(i)[-3000:]
    finally:
        for c in clients:
            await c.aclose()
        net.stop_all()
