"""What the HTTP API refuses, on a real single-validator node (tests/api_node.py): malformed
requests, each rejected with its code and field and no change of state; writes without
the token, and reads too when ``auth_reads`` is on; the explorer switched off; a key
rotation to a key that is not pending. Last, that every operation of docs/openapi.json
answered a validated 2xx in the API tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
import trio

import factories as f

pytest.register_assert_rewrite("api_node")  # before its import below; also this module's plugin
from api_node import CONSENSUS, PROFILE, WAIT
from node.api.server import MAX_BODY_BYTES
from node.config import ApiSection
from node.node import BranchNode
from openapi_check import VALIDATED, document, validating_hooks
from protocol.keys import PrivateKey
from protocol.records import Record
from protocol.views import body_to_json
from tools.netsetup import create_network

pytest_plugins = ("api_node",)  # its fixtures: net, client, published


# ------------------------------------------------------------------ bad requests


def _records(net, published) -> dict[str, Any]:
    """Signed records that break one rule each (built lazily: they need the node's key)."""
    key, cid = net.key, net.genesis.chain_id
    prof = Record.create(key, cid, 1, f.GENESIS_TIME_MS, PROFILE)
    good = Record.create(key, cid, 1, f.GENESIS_TIME_MS, f.offer("never"))  # committable but for its signature
    return {
        "other_chain": Record.create(key, "branchnet-other", 1, f.GENESIS_TIME_MS, f.offer("x")).raw,
        "stranger": Record.create(f.key("stranger"), cid, 1, f.GENESIS_TIME_MS, f.offer("x")).raw,
        "bad_sig": good.raw[:-64] + bytes(64),
        "replay": Record.create(key, cid, 1, f.GENESIS_TIME_MS, f.offer("cash-withdrawal")).raw,
        "pii": f.raw_record(key, "service.withdraw", ["x", "call 13812345678"], chain_id=cid),
        "seq0": f.raw_record(key, "service.withdraw", ["x", ""], 0, chain_id=cid),
        "trailing": prof.raw + b"\x00",
    }


def _offer(**changes) -> dict[str, Any]:
    return body_to_json(f.offer("bad-one")) | changes


ZERO_HASH = "00" * 32
# (id, method, path, kwargs or callable(records) -> kwargs, auth, status, code, field)
BAD = [
    ("hash-not-hex", "GET", "/v1/records/xyz", {}, False, 400, "bad_hex", "hash"),
    ("hash-short", "GET", "/v1/records/abcd", {}, False, 400, "bad_hex", "hash"),
    ("record-unknown", "GET", f"/v1/records/{ZERO_HASH}", {}, False, 404, "not_found", "hash"),
    ("proof-unknown", "GET", f"/v1/records/{ZERO_HASH}/proof", {}, False, 404, "not_found", "hash"),
    ("height-not-int", "GET", "/v1/blocks/abc", {}, False, 400, "bad_param", "height"),
    ("height-unknown", "GET", "/v1/blocks/99999999", {}, False, 404, "not_found", "height"),
    ("block-hash-bad", "GET", "/v1/blocks/hash/zz", {}, False, 400, "bad_hex", "hash"),
    ("blocks-limit-high", "GET", "/v1/blocks?limit=101", {}, False, 400, "bad_param", "limit"),
    ("blocks-limit-neg", "GET", "/v1/blocks?limit=-1", {}, False, 400, "bad_param", "limit"),
    ("blocks-before-0", "GET", "/v1/blocks?before=0", {}, False, 400, "bad_param", "before"),
    ("records-cursor-no-colon", "GET", "/v1/records?cursor=12", {}, False, 400, "bad_param", "cursor"),
    ("records-cursor-junk", "GET", "/v1/records?cursor=1:x", {}, False, 400, "bad_param", "cursor"),
    ("records-cursor-height-0", "GET", "/v1/records?cursor=0:1", {}, False, 400, "bad_param", "cursor"),
    ("records-kind", "GET", "/v1/records?kind=nope", {}, False, 400, "bad_param", "kind"),
    ("records-branch", "GET", "/v1/records?branch=12", {}, False, 400, "bad_hex", "branch"),
    ("services-category", "GET", "/v1/services?category=casino", {}, False, 400, "bad_param", "category"),
    ("services-status", "GET", "/v1/services?status=maybe", {}, False, 400, "bad_param", "status"),
    ("services-offset", "GET", "/v1/services?offset=x", {}, False, 400, "bad_param", "offset"),
    ("branch-unknown", "GET", f"/v1/branches/{'00' * 20}", {}, False, 404, "not_found", "branch_id"),
    ("no-route", "GET", "/v1/nope", {}, False, 404, "not_found", ""),
    ("bad-method", "DELETE", "/v1/status", {}, False, 405, "method_not_allowed", ""),
    ("no-token", "POST", "/v1/records", {"json": {"record": "00"}}, None, 401, "unauthorized", "authorization"),
    ("wrong-token", "POST", "/v1/records/sign", {"json": {"kind": "branch.profile", "body": {}}}, "wrong", 401, "unauthorized", "authorization"),
    ("not-json", "POST", "/v1/records", {"content": b"{nope"}, True, 400, "bad_json", "body"),
    ("json-array", "POST", "/v1/records", {"json": []}, True, 400, "bad_json", "body"),
    ("too-large", "POST", "/v1/records", {"json": {"record": "00" * MAX_BODY_BYTES}}, True, 413, "too_large", "body"),
    ("missing-record", "POST", "/v1/records", {"json": {}}, True, 400, "missing_field", "record"),
    ("record-not-hex", "POST", "/v1/records", {"json": {"record": "xyz"}}, True, 400, "bad_hex", "record"),
    ("record-not-str", "POST", "/v1/records", {"json": {"record": 5}}, True, 400, "bad_hex", "record"),
    ("record-garbage", "POST", "/v1/records", {"json": {"record": "00"}}, True, 400, "type", "record"),
    ("record-trailing", "POST", "/v1/records", lambda r: {"json": {"record": r["trailing"].hex()}}, True, 400, "trailing", "record"),
    ("record-seq-0", "POST", "/v1/records", lambda r: {"json": {"record": r["seq0"].hex()}}, True, 400, "range", "record.seq"),
    ("record-pii", "POST", "/v1/records", lambda r: {"json": {"record": r["pii"].hex()}}, True, 400, "pii_phone_number", "record.body.reason"),
    ("other-chain", "POST", "/v1/records", lambda r: {"json": {"record": r["other_chain"].hex()}}, True, 400, "chain_id", "record.chain_id"),
    ("not-member", "POST", "/v1/records", lambda r: {"json": {"record": r["stranger"].hex()}}, True, 400, "not_member", "record"),
    ("bad-signature", "POST", "/v1/records", lambda r: {"json": {"record": r["bad_sig"].hex()}}, True, 400, "bad_signature", "record.signature"),
    ("replayed-seq", "POST", "/v1/records", lambda r: {"json": {"record": r["replay"].hex()}}, True, 400, "replayed_seq", "record"),
    ("sign-missing-kind", "POST", "/v1/records/sign", {"json": {"body": {}}}, True, 400, "missing_field", "kind"),
    ("sign-missing-body", "POST", "/v1/records/sign", {"json": {"kind": "service.offer"}}, True, 400, "missing_field", "body"),
    ("sign-bad-kind", "POST", "/v1/records/sign", {"json": {"kind": "service.teleport", "body": {}}}, True, 400, "kind", "kind"),
    ("sign-body-not-object", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": []}}, True, 400, "type", "body"),
    ("sign-empty-title", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": _offer(title="")}}, True, 400, "length", "body.title"),
    ("sign-unknown-field", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": _offer(colour="red")}}, True, 400, "unknown_field", "body.colour"),
    ("sign-risk-missing", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": _offer(category="loan")}}, True, 400, "risk_required", "body.risk_level"),
    ("sign-pii", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": _offer(description="ask for 13812345678")}}, True, 400, "pii_phone_number", "body.description"),
    ("sign-terms-currency", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": body_to_json(f.offer("x-loan", "loan", terms=f.loan_terms(currency="RMB")))}}, True, 400, "currency", "body.terms.loan.currency"),
    ("sign-fee-currency", "POST", "/v1/records/sign", {"json": {"kind": "service.offer", "body": _offer(fees=[{"label": "fee", "amount_minor": 5, "currency": "XYZ", "basis": "one_time"}])}}, True, 400, "currency", "body.fees[0].currency"),
    ("sign-quality-small-count", "POST", "/v1/records/sign", {"json": {"kind": "branch.quality", "body": body_to_json(f.quality()) | {"complaints": [{"category": "fees", "received": 3, "resolved": -1}]}}}, True, 400, "small_count", "body.complaints[0].received"),
    ("services-sort", "GET", "/v1/services?sort=cheap", {}, False, 400, "bad_param", "sort"),
    ("quality-period", "GET", "/v1/quality?period=2026-13", {}, False, 400, "bad_param", "period"),
    ("quality-sort", "GET", "/v1/quality?sort=best", {}, False, 400, "bad_param", "sort"),
    ("services-term", "GET", "/v1/services?term_months=601", {}, False, 400, "bad_param", "term_months"),
    ("sign-status-no-service", "POST", "/v1/records/sign", {"json": {"kind": "service.status", "body": body_to_json(f.status("no-such"))}}, True, 400, "no_such_service", "body.service_id"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
async def test_bad_requests_are_rejected_without_state_change(client, net, published, case):
    _id, method, path, kwargs, auth, status, code, field = case
    if callable(kwargs):
        kwargs = kwargs(_records(net, published))
    headers = net.auth if auth is True else ({"Authorization": f"Bearer {auth}"} if auth else {})
    before = (await client.get("/v1/status")).json()
    r = await client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    assert r.json()["error"]["field"] == field, r.text
    assert r.json()["error"]["message"]
    after = (await client.get("/v1/status")).json()
    assert after["mempool"] == before["mempool"] == 0
    assert after["state_root"] == before["state_root"]
    if after["height"] != before["height"]:  # only empty heartbeat blocks may have been committed meanwhile
        page = (await client.get("/v1/blocks", params={"before": after["height"] + 1, "limit": after["height"] - before["height"]})).json()
        assert all(b["num_records"] == 0 for b in page["blocks"])


# ------------------------------------------------------------------ auth


async def _own_node(tmp_path, *, auth_reads: bool):
    home = create_network(tmp_path, 1, fixed_ports=False, consensus=CONSENSUS)[0]
    cfg = home.load_config()
    node = BranchNode(home, config=dataclasses.replace(cfg, api=ApiSection(listen="127.0.0.1:0", auth_reads=auth_reads)))
    return home, node


async def test_token_required_for_writes_reads_open(tmp_path):
    home, node = await _own_node(tmp_path, auth_reads=False)
    token = home.api_token.read_text().strip()
    assert home.api_token.stat().st_mode & 0o777 == 0o600
    body = {"kind": "branch.profile", "body": body_to_json(PROFILE)}
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(node.run)
        host, port = node.api_address
        assert host == "127.0.0.1" and port > 0
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=WAIT, event_hooks=validating_hooks()) as c:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": token}, {"Authorization": f"Basic {token}"}):
                r = await c.post("/v1/records/sign", json=body, headers=headers)
                assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
                assert r.headers["www-authenticate"] == "Bearer"
                r = await c.post("/v1/records", json={"record": "00"}, headers=headers)
                assert r.status_code == 401
            assert len(node.mempool) == 0
            for path in ("/v1/status", "/v1/blocks", "/v1/services", "/metrics"):
                assert (await c.get(path)).status_code == 200
            r = await c.post("/v1/records/sign", json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 202
        nursery.cancel_scope.cancel()
    # cancelled: the port is closed
    with pytest.raises(OSError):
        await trio.open_tcp_stream(host, port)


async def test_auth_reads(tmp_path):
    home, node = await _own_node(tmp_path, auth_reads=True)
    token = home.api_token.read_text().strip()
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(node.run)
        host, port = node.api_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=WAIT, event_hooks=validating_hooks()) as c:
            for path in ("/v1/status", "/v1/blocks", "/v1/services", "/metrics", "/v1/events"):
                r = await c.get(path)
                assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path
            assert (await c.get("/v1/status", headers={"Authorization": f"Bearer {token}"})).status_code == 200
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/")).status_code == 200
            assert (await c.get("/v1/openapi.json")).status_code == 200
            assert (await c.get("/explorer/")).status_code == 200  # the page is public; its reads carry the token
            assert (await c.get("/v1/genesis", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        nursery.cancel_scope.cancel()


async def test_explorer_off(tmp_path):
    home = create_network(tmp_path, 1, fixed_ports=False, consensus=CONSENSUS)[0]
    cfg = home.load_config()
    node = BranchNode(home, config=dataclasses.replace(cfg, api=ApiSection(listen="127.0.0.1:0", explorer=False)))
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(node.run)
        host, port = node.api_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=WAIT, event_hooks=validating_hooks()) as c:
            assert (await c.get("/explorer/")).status_code == 404
            assert (await c.get("/v1/status")).status_code == 200
            assert (await c.get("/")).json()["explorer"] is None
            assert (await c.get("/", headers={"Accept": "text/html"})).status_code == 200  # nothing to redirect to
        nursery.cancel_scope.cancel()


async def test_keys_rotate_answers_without_rotating(client, net):
    """POST /v1/keys/rotate: the key in force is "committed" already; a key with no pending
    key file, or malformed hex, is refused (the rotation itself: tests/test_key_rotation.py)."""
    r = await client.post("/v1/keys/rotate", json={"public_key": net.key.public_key.hex()}, headers=net.auth)
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "committed", "public_key": net.key.public_key.hex(), "hash": None, "record": None}
    other = PrivateKey.generate().public_key.hex()
    r = await client.post("/v1/keys/rotate", json={"public_key": other}, headers=net.auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_pending_key", r.text
    r = await client.post("/v1/keys/rotate", json={"public_key": "zz" * 32}, headers=net.auth)
    assert r.status_code == 400 and r.json()["error"]["field"] == "public_key", r.text
    r = await client.post("/v1/keys/rotate", json={"public_key": other})
    assert r.status_code == 401


def test_every_documented_operation_was_validated(request):
    """Runs after both API modules (file order): each operation of openapi.json answered at
    least one test with a validated 2xx, in them or an API test module before this one."""
    modules = {"test_api.py", "test_api_guard.py"}
    items = [item for item in request.session.items if item.path.name in modules]
    ran_modules = {item.path.name for item in items}
    if ran_modules != modules or len(items) < _expected_tests(request):
        pytest.skip("only part of the API tests ran")
    ok = {(m, t) for (m, t, status) in VALIDATED if status.startswith("2")}
    documented = {(m.upper(), t) for t, ops in document()["paths"].items() for m in ops}
    assert documented - ok == set()


def _expected_tests(request) -> int:
    """How many tests the two modules hold (parametrized cases counted), to tell a full run
    from one narrowed by -k or a node id."""
    import test_api

    count = 0
    for module in (test_api, request.module):
        for name in dir(module):
            fn = getattr(module, name)
            if name.startswith("test_") and callable(fn):
                marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
                n = 1
                for m in marks:
                    n *= len(m.args[1])
                count += n
    return count
