"""The HTTP edge: no input gets a 500, and every error has the documented shape.

The app runs in-process (ASGI) over a node on the in-memory network."""

from __future__ import annotations

import json

import httpx
import pytest

from cluster import make_homes, running_nodes, signed_offer
from node.api import make_app
from node.p2p.memory import MemoryHub
from openapi_check import validating_hooks


@pytest.fixture
async def api(tmp_path, autojump_clock):
    (home,) = make_homes(tmp_path, 1)
    async with running_nodes([home], hub=MemoryHub()) as (node,):
        token = home.api_token.read_text().strip()
        transport = httpx.ASGITransport(app=make_app(node))
        async with httpx.AsyncClient(transport=transport, base_url="http://node", event_hooks=validating_hooks(),
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            client.node = node
            yield client


def _error(r: httpx.Response) -> dict:
    doc = r.json()
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "field", "message"}, doc
    return doc["error"]


async def test_a_lone_surrogate_is_a_400_naming_the_field(api):
    body = {"kind": "service.offer", "body": {"service_id": "fx", "category": "fx", "title": "FX \ud800 desk"}}
    r = await api.post("/v1/records/sign", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert _error(r) == {"code": "bad_text", "field": "body.body.title", "message": "not valid Unicode (a lone surrogate)"}


@pytest.mark.parametrize("value", [2**70, -1, 1.5, "5", None, [], {}])
async def test_odd_numbers_in_a_body_are_400s(api, value):
    offer = signed_offer(api.node.key, api.node.genesis.chain_id, "fx").to_json()["body"]
    offer["fees"] = [{"name": "Commission", "amount": value, "currency": "CNY", "basis": "per_transaction"}]
    r = await api.post("/v1/records/sign", json={"kind": "service.offer", "body": offer})
    assert r.status_code == 400, r.text
    assert _error(r)["field"].startswith("body")


async def test_405_lists_every_method_of_the_path(api):
    r = await api.put("/v1/records", json={})
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert _error(r)["code"] == "method_not_allowed"


async def test_headers_over_the_limit_get_431_in_the_error_shape(api):
    r = await api.get("/v1/status", headers={"x-big": "a" * 20_000})
    assert r.status_code == 431
    assert _error(r)["code"] == "headers_too_large"
    assert api.node.metrics.rejected_counts()["api/headers_too_large"] == 1


async def test_a_client_that_leaves_mid_body_is_not_an_internal_error(api, caplog):
    app = make_app(api.node)
    token = api.node.home.api_token.read_text().strip()
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/v1/records",
             "raw_path": b"/v1/records", "query_string": b"", "root_path": "", "server": ("node", 80), "client": ("c", 1),
             "headers": [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"),
                         (b"content-length", b"1000")]}
    messages = [{"type": "http.request", "body": b'{"record": "', "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        pass

    await app(scope, receive, send)
    counts = api.node.metrics.rejected_counts()
    assert counts.get("api/client_disconnect") == 1 and "api/internal" not in counts
    assert not [r for r in caplog.records if r.exc_info]


async def test_overload_is_a_503_with_retry_after(api):
    api.node.admission.limit = 0  # as if late commits had cut it to nothing
    offer = signed_offer(api.node.key, api.node.genesis.chain_id, "fx").to_json()["body"]
    r = await api.post("/v1/records/sign", json={"kind": "service.offer", "body": offer})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert _error(r)["code"] == "overloaded"
    assert api.node.metrics.rejected_counts()["api/overloaded"] == 1


async def test_records_that_cannot_commit_are_refused_not_acknowledged(api):
    from protocol.records import Record
    from protocol.schema import ServiceStatus

    node = api.node
    cid = node.genesis.chain_id
    gap = Record.create(node.key, cid, 2, node.runtime.wall_ms(), signed_offer(node.key, cid, "fx").body)
    r = await api.post("/v1/records", json={"record": gap.raw.hex()})
    assert r.status_code == 400 and _error(r)["code"] == "seq_gap", r.text
    orphan = Record.create(node.key, cid, 1, node.runtime.wall_ms(), ServiceStatus("never-offered", "open", 5, ()))
    r = await api.post("/v1/records", json={"record": orphan.raw.hex()})
    assert r.status_code == 400 and _error(r)["code"] == "no_such_service", r.text
    assert len(node.mempool) == 0 and not node.chain.store.pending_records()


async def test_personal_data_is_refused_at_admission_naming_the_field(api):
    offer = signed_offer(api.node.key, api.node.genesis.chain_id, "fx").to_json()["body"]
    offer["description"] = "ask for Zhang Wei, tel 138 0013 8000"
    r = await api.post("/v1/records/sign", json={"kind": "service.offer", "body": offer})
    assert r.status_code == 400, r.text
    err = _error(r)
    assert err["code"].startswith("pii_") and err["field"].endswith("description")
    assert "138 0013 8000" not in err["message"]  # never echoed whole
    assert len(api.node.mempool) == 0
