"""Governance on the real daemon as OS processes (127.0.0.1): a branch that was never
in genesis starts outside the network, is admitted and voted into the validator set
through the API, and its signature counts in the certificates after an original
validator is killed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from cluster import ProcessNetwork, make_homes
from node.keyfile import load_key
from protocol.governance import GovProposal
from tools.netsetup import join_home, set_config
from waiting import wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).with_name("branchnet")
CLI = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "node.cli"]
WAIT = 120  # seconds, for any one condition: processes on a busy 2-core machine are slow, not wrong


def api(home) -> httpx.AsyncClient:
    config = home.load_config()
    token = home.api_token.read_text().strip()
    return httpx.AsyncClient(base_url=f"http://{config.api.listen}", timeout=15, headers={"Authorization": f"Bearer {token}"})


async def sign(client: httpx.AsyncClient, kind: str, body: dict) -> str:
    async def accepted() -> bool:  # 503 (catching up) is a "retry"
        r = await client.post("/v1/records/sign", json={"kind": kind, "body": body})
        assert r.status_code in (202, 503), r.text
        out["hash"] = r.json().get("hash")
        return r.status_code == 202

    out: dict = {}
    await wait_until(accepted, WAIT, f"{kind} accepted")
    return out["hash"]


async def committed(client: httpx.AsyncClient, record_hash: str) -> int:
    doc: dict = {}

    async def done() -> bool:
        r = await client.get(f"/v1/records/{record_hash}")
        doc.update(r.json() if r.status_code == 200 else {})
        assert doc.get("status") != "rejected", doc
        return doc.get("height") is not None

    await wait_until(done, WAIT, f"record {record_hash[:12]} committed")
    return doc["height"]


async def pass_proposal(clients, name: str, action: dict, voters) -> int:
    height = (await clients[0].get("/health")).json()["height"]
    pid = await sign(clients[0], GovProposal.KIND, {"name": name, "action": action, "expires_height": height + 1000})
    await committed(clients[0], pid)
    for c in voters:
        await committed(clients[0], await sign(c, "gov.vote", {"proposal": pid, "yes": True}))
    doc = (await clients[0].get("/v1/governance")).json()
    (p,) = [p for p in doc["proposals"] if p["id"] == pid]
    assert p["status"] == "passed", p
    return p["decided_height"]


async def signers_at(client: httpx.AsyncClient, height: int) -> set[str]:
    return {s["validator"] for s in (await client.get(f"/v1/blocks/{height}")).json()["certificate"]["signatures"]}


async def test_a_new_branch_is_admitted_and_voted_in_and_its_signature_counts(tmp_path):
    homes = make_homes(tmp_path, 4, fixed_ports=True, api=True, realtime=True)
    newcomer_home, public_key = join_home(tmp_path, "branch-04", homes)
    set_config(newcomer_home, "api", "enabled", True)
    newcomer_id = load_key(newcomer_home.key).branch_id.hex()
    net = ProcessNetwork(homes + [newcomer_home])
    clients = [api(h) for h in net.homes]
    try:
        net.start_all()
        await wait_until(lambda: min(net.height(i) for i in range(4)) >= 1, WAIT, "validators at height 1")
        assert net.height(4) == 0  # not a member: every peer refuses it

        await pass_proposal(clients, "admit-newcomer",
                            {"kind": "admit_member", "name": "Newcomer Branch", "public_key": public_key}, clients[:3])
        decided = await pass_proposal(clients, "newcomer-validates",
                                      {"kind": "set_power", "branch_id": newcomer_id, "power": 10}, clients[:3])
        await wait_until(lambda: net.height(4) >= decided + 2, WAIT, "the newcomer synced past the switch")

        # an original validator dies; blocks still commit, and the newcomer's signature is in their certificates
        net.kill(3)
        top = (await clients[0].get("/health")).json()["height"]
        record = await sign(clients[4], "branch.profile", {
            "name": "Newcomer Branch", "address": "No. 1 Zhongshan Road, Nanjing", "region": "CN-JS-320102",
            "lat_micro": 32_043_000, "lon_micro": 118_784_000, "hours": [], "contact_phone": "",
            "contact_url": "https://bank.example/newcomer"})
        height = await committed(clients[0], record)
        assert height > top and newcomer_id in await signers_at(clients[0], height)
        vals = (await clients[0].get("/v1/validators")).json()
        assert newcomer_id in {v["branch_id"] for v in vals["validators"]} and vals["total_power"] == 50

        # its record's proof verifies offline against the genesis file alone (§15.6), and a tampered one does not
        proof = (await clients[0].get(f"/v1/records/{record}/proof")).json()
        assert proof["member"] and len(proof["set_changes"]) >= 1
        good, bad = tmp_path / "proof.json", tmp_path / "tampered.json"
        good.write_text(json.dumps(proof))
        entry = bytearray.fromhex(proof["member"]["entry"])
        entry[-3] ^= 1  # the row's power: 10 becomes 11
        bad.write_text(json.dumps({**proof, "member": {**proof["member"], "entry": entry.hex()}}))
        ok, refused = [await trio.to_thread.run_sync(lambda f=f: subprocess.run(
            [*CLI, "proof", "verify", str(f), "--genesis", str(homes[0].genesis), "--json"],
            capture_output=True, text=True, timeout=60)) for f in (good, bad)]
        assert ok.returncode == 0 and json.loads(ok.stdout)["record"]["hash"] == record, ok.stderr
        assert refused.returncode == 1 and "bad_state_proof" in refused.stderr, refused.stderr
        for i in (0, 4):
            assert "Traceback" not in net.log(i)
    finally:
        for c in clients:
            await c.aclose()
        net.stop_all()


async def test_a_removed_validators_votes_no_longer_count(tmp_path):
    homes = make_homes(tmp_path, 4, fixed_ports=True, api=True, realtime=True)
    removed = load_key(homes[3].key).branch_id.hex()
    net = ProcessNetwork(homes)
    clients = [api(h) for h in homes]
    try:
        net.start_all()
        await wait_until(lambda: min(net.height(i) for i in range(4)) >= 1, WAIT, "validators at height 1")
        decided = await pass_proposal(clients, "remove-three", {"kind": "set_power", "branch_id": removed, "power": 0},
                                      clients[:3])
        effect = decided + 2  # §15.5: announced by decided + 1, decides blocks from decided + 2 on
        await wait_until(lambda: min(net.height(i) for i in range(4)) >= effect + 3, WAIT, "three blocks past the switch")

        # before the switch it still signed (it was running and voting); from the effect height on, never
        signers = {h: await signers_at(clients[0], h) for h in range(1, net.height(0) + 1)}
        assert any(removed in signers[h] for h in range(1, effect))
        assert [h for h in signers if h >= effect and removed in signers[h]] == []
        assert all(len(signers[h]) == 3 for h in signers if h >= effect)  # blocks commit with the three left
        vals = (await clients[0].get("/v1/validators")).json()
        assert removed not in {v["branch_id"] for v in vals["validators"]} and vals["total_power"] == 30

        # the removed branch stays a member: it still follows the chain and may publish records
        record = await sign(clients[3], "branch.profile", {
            "name": "Branch Three", "address": "No. 3 Zhongshan Road, Nanjing", "region": "CN-JS-320102",
            "lat_micro": 32_043_000, "lon_micro": 118_784_000, "hours": [], "contact_phone": "",
            "contact_url": "https://bank.example/three"})
        height = await committed(clients[0], record)
        assert removed not in await signers_at(clients[0], height)
        for i in range(4):
            assert "Traceback" not in net.log(i), net.log(i)[-3000:]
    finally:
        for c in clients:
            await c.aclose()
        net.stop_all()
