"""End to end: the real ``branchnet`` executable against a real 1-validator node
running as a separate OS process (``branchnet run``).

Publishes a service, lists it, fetches and verifies its proof offline, checks
``chain verify``/``chain export`` against the running node's database, then
stops the node by its pid (SIGTERM, bounded wait). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tools.netsetup import create_network
from waiting import wait_until_blocking

try:
    import node.api  # noqa: F401
    import protocol.proofs  # noqa: F401

    HAVE_API = True
except ImportError:
    HAVE_API = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_API, reason="needs the node's HTTP API (node/api.py) and protocol/proofs.py"),
]

BIN = Path(sys.executable).with_name("branchnet")
CLI = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "node.cli"]
START_TIMEOUT_S = 60  # generous bounds: a busy machine is slow, not wrong
STOP_TIMEOUT_S = 30


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM a node this test started (by its pid), SIGKILL if it does not stop in time."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)


def branchnet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def running_node(tmp_path: Path):
    (home,) = create_network(tmp_path, 1)
    log = (tmp_path / "node.log").open("wb")
    proc = subprocess.Popen([*CLI, "run", "--home", str(home.path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def api_up() -> bool:
            r = branchnet("status", "--home", str(home.path), "--json")
            if r.returncode == 0:
                return True
            assert proc.poll() is None, f"node exited with {proc.returncode}:\n{(tmp_path / 'node.log').read_text()[-3000:]}"
            assert r.returncode == 3, r.stderr  # only "unreachable" is expected while it starts
            return False

        wait_until_blocking(api_up, START_TIMEOUT_S, "the node's API", interval=0.2)
        yield home.path, proc
    finally:
        _stop(proc)
        log.close()


def test_publish_list_prove_verify_against_a_real_node(running_node, tmp_path: Path) -> None:
    home, proc = running_node
    h = ["--home", str(home)]

    r = branchnet("service", "publish", *h, "--id", "fx-exchange", "--category", "fx", "--title", "Foreign exchange",
                  "--channel", "counter", "--hours", "mon-fri 09:00-16:30", "--fee", "cash=0.50 CNY per_transaction",
                  "--fee", "margin=150 CNY percent_bp", "--accessibility", "wheelchair", "--json")
    assert r.returncode == 0, r.stderr
    published = json.loads(r.stdout)
    assert published["status"] == "committed" and published["height"] >= 1
    record_hash = published["hash"]

    r = branchnet("service", "publish", *h, "--id", "fx-exchange", "--category", "fx", "--title", "Again")
    assert r.returncode == 1 and "service update" in r.stderr

    r = branchnet("service", "list", *h, "--category", "fx", "--json")
    assert r.returncode == 0, r.stderr
    services = json.loads(r.stdout)["services"]
    assert [(s["service_id"], s["record_hash"]) for s in services] == [("fx-exchange", record_hash)]
    assert services[0]["offer"]["fees"][0]["amount_minor"] == 50

    proof = tmp_path / "proof.json"
    r = branchnet("proof", "get", record_hash, "--out", str(proof), *h)
    assert r.returncode == 0, r.stderr
    genesis = home / "genesis.json"
    r = branchnet("proof", "verify", str(proof), "--genesis", str(genesis), "--json")
    assert r.returncode == 0, r.stderr
    verified = json.loads(r.stdout)
    assert verified["ok"] and verified["record"]["hash"] == record_hash
    assert verified["record"]["body"]["service_id"] == "fx-exchange"

    doc = json.loads(proof.read_text())
    doc["record"] = doc["record"].replace("fx-exchange".encode().hex(), "fx-exchangf".encode().hex())
    proof.write_text(json.dumps(doc))
    r = branchnet("proof", "verify", str(proof), "--genesis", str(genesis))
    assert r.returncode == 1 and r.stderr.startswith("error: proof does not verify")

    # offline commands on the running node's database (read-only, WAL)
    r = branchnet("chain", "verify", *h, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["height"] >= published["height"]
    export = tmp_path / "chain.bnx"
    assert branchnet("chain", "export", *h, "--out", str(export)).returncode == 0
    r = branchnet("chain", "verify", "--file", str(export), "--genesis", str(genesis), "--json")
    assert r.returncode == 0, r.stderr

    # update changes only what is given (issue 16 finding 7); --replace publishes exactly what is given
    r = branchnet("service", "update", *h, "--id", "fx-exchange", "--fee", "cash=0.40 CNY per_transaction", "--json")
    assert r.returncode == 0, r.stderr
    r = branchnet("service", "list", *h, "--category", "fx", "--json")
    (offer,) = [s["offer"] for s in json.loads(r.stdout)["services"]]
    assert [(f["label"], f["amount_minor"]) for f in offer["fees"]] == [("cash", 40), ("margin", 150)]
    assert offer["title"] == "Foreign exchange"
    assert offer["hours"] and offer["accessibility"] == ["wheelchair"]
    r = branchnet("service", "update", *h, "--id", "fx-exchange", "--replace", "--fee", "cash=0.40 CNY per_transaction")
    assert r.returncode == 2 and "--category" in r.stderr
    r = branchnet("service", "update", *h, "--id", "fx-exchange", "--replace", "--category", "fx", "--title", "FX",
                  "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "committed"
    r = branchnet("service", "list", *h, "--category", "fx", "--json")
    (offer,) = [s["offer"] for s in json.loads(r.stdout)["services"]]
    assert offer["title"] == "FX" and offer["fees"] == [] and offer["hours"] == []

    r = branchnet("service", "withdraw", "no-such", "--reason", "test", *h)
    assert r.returncode == 1 and "no_such_service" in r.stderr

    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=STOP_TIMEOUT_S) == 0
    r = branchnet("status", *h)
    assert r.returncode == 3 and r.stderr.startswith("error: cannot reach the node")


LOAN_TOML = """id = "{id}"
category = "loan"
title = "Home loan {id}"
risk = "R2"
channels = ["counter"]
fees = ["appraisal=0 CNY free"]

[terms]
valid_until_ms = 0

[terms.loan]
rate_min_bp = {rate}
rate_max_bp = {rate}
rate_type = "fixed"
rate_reference = "none"
spread_bp = 0
term_min_months = {tmin}
term_max_months = {tmax}
amount_min_minor = 10000000
amount_max_minor = 500000000
currency = "CNY"
repayment_methods = ["equal_installment"]
collateral_required = true
collateral_kinds = ["real_estate"]
early_repayment_fee_bp = 100
"""


def test_loan_terms_published_from_a_file_listed_by_term_and_rate(running_node, tmp_path: Path) -> None:
    """`service publish --file` with [terms], then `service list --category loan --term 12m --sort rate`."""
    home, _ = running_node
    h = ["--home", str(home)]
    for sid, rate, tmin, tmax in (("loan-b", 420, 6, 36), ("loan-a", 365, 12, 60), ("loan-long", 300, 60, 360)):
        f = tmp_path / f"{sid}.toml"
        f.write_text(LOAN_TOML.format(id=sid, rate=rate, tmin=tmin, tmax=tmax))
        r = branchnet("service", "publish", *h, "--file", str(f), "--json")
        assert r.returncode == 0, r.stderr
    r = branchnet("service", "list", *h, "--category", "loan", "--term", "12m", "--sort", "rate", "--json")
    assert r.returncode == 0, r.stderr
    assert [(s["service_id"], s["rate_bp"]) for s in json.loads(r.stdout)["services"]] == [("loan-a", 365), ("loan-b", 420)]
    r = branchnet("service", "list", *h, "--category", "loan", "--term", "1y", "--sort", "rate")
    assert r.returncode == 0, r.stderr
    assert r.stdout.index("loan-a") < r.stdout.index("loan-b") and "3.65%" in r.stdout and "loan-long" not in r.stdout
    r = branchnet("service", "show", *h, json.loads(branchnet("service", "list", *h, "--json").stdout)["services"][0]["branch_id"], "loan-a")
    assert r.returncode == 0 and "3.65% fixed; 12-60 months" in r.stdout, r.stdout + r.stderr
    r = branchnet("service", "list", *h, "--category", "loan", "--as-of", "2020-01-01T00:00:00+08:00", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["total"] == 0 and json.loads(r.stdout)["as_of_height"] == 0, r.stderr
    r = branchnet("service", "list", *h, "--category", "loan", "--as-of", "2100-01-01T00:00:00Z", "--term", "12m", "--sort", "rate")
    assert r.returncode == 0 and r.stdout.index("loan-a") < r.stdout.index("loan-b") and "on offer at 2100" in r.stdout, r.stdout
    r = branchnet("service", "list", *h, "--term", "12 weeks")
    assert r.returncode == 2 and "--term" in r.stderr

    # a month's service quality, corrected once: the list shows the latest version
    q = {"period": "2026-09", "complaints": [{"category": "fees", "received": 12, "resolved": 11},
                                             {"category": "card", "received": -1, "resolved": -1}],
         "resolution_median_hours": 18, "resolution_p90_hours": 66, "wait_avg_minutes": 9, "wait_p90_minutes": 27,
         "self_service_availability_bp": 9950}
    qf = tmp_path / "quality.json"
    for median in (18, 16):
        qf.write_text(json.dumps(q | {"resolution_median_hours": median}))
        r = branchnet("branch", "quality", "publish", *h, "--file", str(qf), "--json")
        assert r.returncode == 0, r.stderr
    r = branchnet("branch", "quality", "list", *h, "--json")
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)["branches"]
    assert row["seq"] == 2 and row["quality"]["resolution_median_hours"] == 16
    r = branchnet("branch", "quality", "list", *h, "--period", "2026-09")
    assert r.returncode == 0 and "fees 12/11, card <5/<5" in r.stdout and "16 h / 66 h" in r.stdout, r.stdout
    qf.write_text(json.dumps(q | {"complaints": [{"category": "fees", "received": 3, "resolved": -1}]}))
    r = branchnet("branch", "quality", "publish", *h, "--file", str(qf))
    assert r.returncode == 2 and "body.complaints[0].received" in r.stderr, r.stderr

    # the independent offline replay of this chain (terms, quality, a correction) matches every state root
    r = branchnet("chain", "verify", *h, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["height"] >= row["height"]


def test_keys_rotate_against_a_real_node(running_node) -> None:
    """The sole validator of a real node (``branchnet run``) rotates its key: the record
    commits, the node restarts in place (same process) with the new key and peer id,
    signs blocks and records with it, and the chain verifies from genesis."""
    home, proc = running_node
    h = ["--home", str(home)]
    before = json.loads(branchnet("keys", "show", *h, "--json").stdout)
    r = branchnet("service", "publish", *h, "--id", "fx-exchange", "--category", "fx", "--title", "Foreign exchange",
                  "--json")
    assert r.returncode == 0, r.stderr

    r = branchnet("keys", "rotate", *h, "--json", "--timeout", "120", timeout=180)
    assert r.returncode == 0, r.stderr
    rotated = json.loads(r.stdout)
    assert rotated["status"] == "committed" and rotated["height"] >= 1
    assert rotated["branch_id"] == before["branch_id"] and rotated["old_public_key"] == before["public_key"]
    assert rotated["public_key"] != before["public_key"] and rotated["peer_id"] != before["peer_id"]
    assert proc.poll() is None  # restarted in place, not exited

    after = json.loads(branchnet("keys", "show", *h, "--json").stdout)
    assert after["branch_id"] == before["branch_id"] and after["public_key"] == rotated["public_key"]
    assert after["retired_keys"] == {str(rotated["height"]): before["public_key"]} and "pending_public_key" not in after
    assert not (home / "node_key.pending.json").exists()
    status = json.loads(branchnet("status", *h, "--json").stdout)
    assert status["branch_id"] == before["branch_id"] and status["peer_id"] == rotated["peer_id"]

    r = branchnet("service", "update", *h, "--id", "fx-exchange", "--title", "Foreign exchange (new key)", "--json")
    assert r.returncode == 0, r.stderr
    updated = json.loads(r.stdout)
    assert updated["height"] > rotated["height"] + 1  # blocks after the switch, signed by the new key
    r = branchnet("chain", "verify", *h, "--json")
    assert r.returncode == 0, r.stderr


def test_keys_rotate_survives_kill_9_of_the_node(running_node, tmp_path: Path) -> None:
    """kill -9 right after the node acknowledged the branch.key record (committed or not
    yet): started again, the node comes back consistent and `keys rotate` finishes."""
    home, proc = running_node
    h = ["--home", str(home)]
    before = json.loads(branchnet("keys", "show", *h, "--json").stdout)
    r = branchnet("keys", "rotate", *h, "--no-wait", "--json", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    submitted = json.loads(r.stdout)
    assert submitted["status"] == "submitted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=STOP_TIMEOUT_S)
    log = (tmp_path / "node2.log").open("wb")
    again = subprocess.Popen([*CLI, "run", *h], stdout=log, stderr=subprocess.STDOUT)
    try:
        def api_up() -> bool:
            assert again.poll() is None, f"node exited with {again.returncode}:\n{(tmp_path / 'node2.log').read_text()[-3000:]}"
            return branchnet("status", *h, "--json").returncode == 0

        wait_until_blocking(api_up, START_TIMEOUT_S, "the restarted node's API", interval=0.2)
        def switched() -> bool:  # committed before the kill (promoted at start) or re-sent and committed now
            r = branchnet("status", *h, "--json")
            doc = json.loads(r.stdout) if r.returncode == 0 else {}
            return doc.get("public_key") == submitted["public_key"] and doc.get("key_rotation") is None

        wait_until_blocking(switched, 120, "the node to switch to the new key", interval=0.3)
        assert not (home / "node_key.pending.json").exists()
        after = json.loads(branchnet("keys", "show", *h, "--json").stdout)
        assert after["branch_id"] == before["branch_id"] and after["public_key"] == submitted["public_key"]
        r = branchnet("service", "publish", *h, "--id", "fx-exchange", "--category", "fx", "--title", "FX", "--json")
        assert r.returncode == 0, r.stderr
        assert branchnet("chain", "verify", *h).returncode == 0
    finally:
        _stop(again)
        log.close()
