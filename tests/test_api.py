"""The HTTP API against a real single-validator node (httpx over loopback): what it
answers. The node is tests/api_node.py's (one per module); what the API refuses, and
the check that every documented operation was exercised, are in tests/test_api_guard.py.
"""

from __future__ import annotations

import json
from pathlib import Path
import pytest
import trio

import factories as f

pytest.register_assert_rewrite("api_node")  # before its import below; also this module's plugin
from api_node import OFFERS, PROFILE, WAIT, sign, wait_committed, wait_height
from openapi_check import document, validate_schema
from node.api.openapi import OPENAPI
from protocol.blocks import Block
from protocol.genesis import Genesis
from protocol.proofs import RecordProof, verify_record_proof
from protocol.records import Record
from protocol.votes import CommitCertificate
from protocol.views import body_to_json

pytest_plugins = ("api_node",)  # its fixtures: net, client, published
REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ reads


async def test_health_status_peers_validators(client, net):
    health = (await client.get("/health")).json()
    assert health["ok"] is True and isinstance(health["height"], int)
    st = (await client.get("/v1/status")).json()
    assert st["chain_id"] == net.genesis.chain_id and st["role"] == "validator"
    assert st["branch_id"] == net.key.branch_id.hex()
    for k in ("moniker", "peer_id", "height", "last_block_hash", "last_block_time_ms", "state_root", "mempool", "peers", "sync", "consensus"):
        assert k in st
    peers = (await client.get("/v1/peers")).json()
    assert peers == {"count": 0, "peers": []}
    vals = (await client.get("/v1/validators")).json()
    assert vals["total_power"] == 10
    assert [v["branch_id"] for v in vals["validators"]] == [net.key.branch_id.hex()]
    assert vals["validators"][0]["peer_id"] == st["peer_id"]


async def test_blocks_list_detail_and_certificate(client, net, published):
    await wait_height(client, 3)
    page = (await client.get("/v1/blocks", params={"limit": 2})).json()
    heights = [b["height"] for b in page["blocks"]]
    assert len(heights) == 2 and heights[0] == heights[1] + 1 and page["next_before"] == heights[1]
    nxt = (await client.get("/v1/blocks", params={"limit": 2, "before": page["next_before"]})).json()
    assert nxt["blocks"][0]["height"] == heights[1] - 1
    assert all("num_records" in b and "hash" in b for b in page["blocks"])
    first = (await client.get("/v1/blocks", params={"before": 2})).json()
    assert [b["height"] for b in first["blocks"]] == [1] and first["next_before"] is None

    height = published["profile"]["committed"]["height"]
    by_height = (await client.get(f"/v1/blocks/{height}")).json()
    assert by_height["header"]["height"] == height
    assert published["profile"]["hash"] in [r["hash"] for r in by_height["records"]]
    by_hash = (await client.get(f"/v1/blocks/hash/{by_height['hash']}")).json()
    assert by_hash == by_height
    cert = by_height["certificate"]
    assert (cert["height"], cert["block_hash"]) == (height, by_height["hash"])
    assert [s["validator"] for s in cert["signatures"]] == [net.key.branch_id.hex()]


async def test_publish_sign_records_and_queries(client, net, published):
    me = net.key.branch_id.hex()
    assert published["profile"]["seq"] == 1 and published["status"]["seq"] == 1
    rec = published["cash-withdrawal"]["committed"]
    assert rec["status"] == "committed" and rec["record"]["body"] == body_to_json(OFFERS[0])
    assert rec["record"]["branch_id"] == me and isinstance(rec["index"], int)

    # consecutive calls on one subject get consecutive seqs, even before they commit
    seqs = [await sign(client, net, "service.status", f.status("fund-a", s, 1)) for s in ("open", "paused", "open")]
    assert [d["seq"] for d in seqs] == [1, 2, 3]
    pending = (await client.get(f"/v1/records/{seqs[-1]['hash']}")).json()
    assert pending["status"] in ("pending", "committed")
    for d in seqs:
        await wait_committed(client, d["hash"])

    lst = (await client.get("/v1/records", params={"branch": me, "kind": "service.offer"})).json()["records"]
    assert {r["body"]["service_id"] for r in lst} == {o.service_id for o in OFFERS}
    assert all(isinstance(r["height"], int) for r in lst)
    assert [r["body"]["service_id"] for r in (await client.get("/v1/records", params={"service": "home-loan"})).json()["records"]] == ["home-loan"]
    by_cat = (await client.get("/v1/records", params={"category": "cash"})).json()["records"]
    assert {r["kind"] for r in by_cat} == {"service.offer", "service.status"}
    assert len((await client.get("/v1/records", params={"limit": 2})).json()["records"]) == 2
    assert (await client.get("/v1/records", params={"region": "CN-SH"})).json()["records"] == []
    # next_cursor pages through everything, newest first, without gaps or repeats
    whole = (await client.get("/v1/records", params={"limit": 100})).json()
    assert whole["next_cursor"] is None and len(whole["records"]) >= 5
    walked, params = [], {"limit": 2}
    while True:
        page = (await client.get("/v1/records", params=params)).json()
        walked += [r["hash"] for r in page["records"]]
        if page["next_cursor"] is None:
            break
        last = page["records"][-1]
        assert page["next_cursor"] == f"{last['height']}:{last['index']}"
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert walked == [r["hash"] for r in whole["records"]]


async def test_services_search(client, net, published):
    async def ids(**params):
        doc = (await client.get("/v1/services", params=params)).json()
        assert doc["total"] == len(doc["services"]) or "limit" in params or "offset" in params
        return sorted(s["service_id"] for s in doc["services"])

    assert await ids() == ["cash-withdrawal", "fund-a", "home-loan"]
    assert await ids(category="loan") == ["home-loan"]
    assert await ids(q="mortgage") == ["home-loan"]  # case-insensitive, description too
    assert await ids(q="FUND") == ["fund-a"]
    assert await ids(region="CN-BJ") == await ids()  # region prefix
    assert await ids(region="CN-SH") == []
    assert await ids(branch=net.key.branch_id.hex()) == await ids()
    assert await ids(branch="00" * 20) == []
    assert "cash-withdrawal" in await ids(status="open")
    assert await ids(status="closed") == []
    page = (await client.get("/v1/services", params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 3 and len(page["services"]) == 1
    cash = next(s for s in (await client.get("/v1/services")).json()["services"] if s["service_id"] == "cash-withdrawal")
    assert cash["offer"]["fees"][1] == {"label": "express", "amount_minor": 500, "currency": "CNY", "basis": "per_transaction"}
    assert cash["offer"]["risk_level"] == 0 and cash["status"]["status"] == "open"
    assert cash["branch_name"] == "branch-00" and cash["region"] == PROFILE.region
    assert cash["record_hash"] == published["cash-withdrawal"]["hash"]

    # a withdrawn service leaves the registry
    await sign(client, net, "service.offer", f.offer("gone", "fx"))
    w = await sign(client, net, "service.withdraw", f.withdraw("gone"))
    await wait_committed(client, w["hash"])
    assert "gone" not in await ids()


async def test_branches(client, net, published):
    me = net.key.branch_id.hex()
    doc = (await client.get("/v1/branches")).json()
    (b,) = doc["branches"]
    assert (b["branch_id"], b["name"], b["services"]) == (me, "branch-00", b["num_services"])  # services: deprecated copy
    assert b["profile"] == body_to_json(PROFILE)
    one = (await client.get(f"/v1/branches/{me}")).json()
    assert one["profile"] == b["profile"] and {s["service_id"] for s in one["services"]} >= {"cash-withdrawal", "home-loan"}
    assert one["num_services"] == len(one["services"]) == b["num_services"]
    assert document()["components"]["schemas"]["BranchSummary"]["properties"]["services"]["deprecated"] is True


async def test_governance_proposal_vote_and_effect(client, net, published):
    """The sole validator proposes and votes through the API; GET /v1/governance follows it."""
    from protocol.governance import Action, GovProposal, GovVote

    height = (await client.get("/health")).json()["height"]
    prop = await sign(client, net, "gov.proposal",
                      GovProposal("longer-drift", Action("set_param", name="max_clock_drift_ms", value=20_000), height + 500))
    await wait_committed(client, prop["hash"])
    doc = (await client.get("/v1/governance", params={"status": "open"})).json()
    assert [(p["id"], p["status"], p["action"]) for p in doc["proposals"]] == [
        (prop["hash"], "open", {"kind": "set_param", "name": "max_clock_drift_ms", "value": 20_000})]
    assert doc["params"]["max_clock_drift_ms"] == 10_000
    vote = await sign(client, net, "gov.vote", GovVote(bytes.fromhex(prop["hash"]), True))
    decided = (await wait_committed(client, vote["hash"]))["height"]
    await wait_height(client, decided + 1)
    doc = (await client.get("/v1/governance")).json()
    (p,) = [p for p in doc["proposals"] if p["id"] == prop["hash"]]
    assert (p["status"], p["decided_height"], p["votes"]) == ("passed", decided, [{"branch_id": net.key.branch_id.hex(), "yes": True}])
    assert doc["params"]["max_clock_drift_ms"] == 20_000  # in force from decided + 2, the next block's state
    assert [m["branch_id"] for m in doc["members"]] == [net.key.branch_id.hex()]
    r = await client.get("/v1/governance", params={"status": "maybe"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "status"


async def test_observers_allowed_at_runtime(client, net):
    peer = "12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw"
    r = await client.post("/v1/observers", json={"peer_id": peer, "allow": True}, headers=net.auth)
    assert r.status_code == 200 and peer in {o["peer_id"] for o in r.json()["observers"]}
    assert peer in {o["peer_id"] for o in (await client.get("/v1/observers")).json()["observers"]}
    assert net.node.net.allowlist.allows(peer)
    bad = await client.post("/v1/observers", json={"peer_id": "not-a-peer", "allow": True}, headers=net.auth)
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "peer_id")
    assert (await client.post("/v1/observers", json={"peer_id": peer, "allow": True})).status_code == 401
    r = await client.post("/v1/observers", json={"peer_id": peer, "allow": False}, headers=net.auth)
    assert r.status_code == 200 and peer not in {o["peer_id"] for o in r.json()["observers"]}


async def test_proof_round_trip_with_only_genesis(client, net, published):
    genesis = Genesis.loads(net.home.genesis.read_bytes())  # all the verifier trusts
    for name in ("profile", "home-loan", "status"):
        doc = (await client.get(f"/v1/records/{published[name]['hash']}/proof")).json()
        proof = RecordProof.from_json(json.loads(json.dumps(doc)))
        record = verify_record_proof(proof, genesis)
        assert record.hash.hex() == published[name]["hash"]
        assert proof.height == published[name]["committed"]["height"]


async def test_submit_signed_record(client, net, published):
    seq_doc = (await client.get("/v1/records", params={"kind": "service.status", "service": "home-loan"})).json()["records"]
    assert seq_doc == []
    rec = Record.create(net.key, net.genesis.chain_id, 1, f.GENESIS_TIME_MS + 5000, f.status("home-loan", "paused", 0, ()))
    r = await client.post("/v1/records", json={"record": rec.raw.hex()}, headers=net.auth)
    assert r.status_code == 202 and r.json() == {"hash": rec.hash.hex(), "status": "accepted"}
    await wait_committed(client, rec.hash.hex())
    again = await client.post("/v1/records", json={"record": rec.raw.hex()}, headers=net.auth)
    assert again.status_code == 400 and again.json()["error"]["code"] == "replayed_seq"


async def test_events_stream(client, net, published):
    seen: dict[str, list] = {"block": [], "record": []}
    with trio.fail_after(WAIT):
        async with client.stream("GET", "/v1/events") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            assert await anext(lines) == ": connected"
            target = None
            event = None
            async for line in lines:
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    seen[event].append(json.loads(line[6:]))
                    if event == "block" and target is None:
                        doc = await sign(client, net, "service.status", f.status("cash-withdrawal", "paused", 9))
                        target = doc["hash"]
                    if event == "record" and seen["record"][-1]["hash"] == target:
                        break
    b = seen["block"][0]
    assert set(b) == {"height", "hash", "time_ms", "num_records"}
    for name, docs in (("BlockEvent", seen["block"]), ("RecordEvent", seen["record"])):
        for doc in docs:
            validate_schema(doc, {"$ref": f"#/components/schemas/{name}"})
    assert seen["record"][-1] == {"hash": target, "kind": "service.status", "branch_id": net.key.branch_id.hex(),
                                  "subject": "status/cash-withdrawal", "height": seen["block"][-1]["height"]}


async def test_metrics_and_openapi(client, net):
    await client.get("/v1/records/xyz")  # one counted rejection at least
    text = (await client.get("/metrics")).text
    for name in ("branchnet_height", "branchnet_commit_round", "branchnet_votes_received", "branchnet_peers",
                 "branchnet_mempool_records", "branchnet_records_committed", "branchnet_sync_lag_blocks"):
        assert name in text
    assert 'branchnet_rejected_total{reason="bad_hex",source="api"}' in text
    served = (await client.get("/v1/openapi.json")).json()
    assert served == OPENAPI == json.loads((REPO / "docs" / "openapi.json").read_text())
    assert set(served["paths"]) >= {"/v1/records/{hash}/proof", "/v1/records/sign", "/v1/events", "/metrics", "/health"}


async def test_genesis_raw_block_and_activity(client, net, published):
    doc = (await client.get("/v1/genesis")).json()
    assert Genesis.from_json(doc).hash == net.genesis.hash  # the same genesis, so the same hash
    height = published["profile"]["committed"]["height"]
    raw = (await client.get(f"/v1/blocks/{height}/raw")).json()
    block = (await client.get(f"/v1/blocks/{height}")).json()
    params = net.genesis.params
    decoded = Block.decode(bytes.fromhex(raw["block"]), max_bytes=params.max_block_bytes, max_records=params.max_block_records,
                           max_evidence=params.max_block_evidence)
    assert raw["hash"] == decoded.hash.hex() == block["hash"] and raw["height"] == height
    assert [r.hash.hex() for r in decoded.records] == [r["hash"] for r in block["records"]]
    cert = CommitCertificate.decode(bytes.fromhex(raw["certificate"]))
    cert.verify(net.genesis.validators, net.genesis.chain_id, height=height, block_hash=decoded.hash)
    assert (await client.get("/v1/blocks/99999999/raw")).status_code == 404

    await wait_height(client, height + 1)
    act = (await client.get("/v1/activity", params={"window": 5})).json()
    heights = [b["height"] for b in act["blocks"]]
    assert heights == list(range(act["from_height"], act["to_height"] + 1)) and len(heights) == 5
    (v,) = act["validators"]
    assert (v["branch_id"], v["signed"], v["missed"], v["last_signed_height"]) == (net.key.branch_id.hex(), 5, 0, act["to_height"])
    assert all(b["signed_power"] == act["total_power"] == 10 for b in act["blocks"])
    assert all(b["interval_ms"] is not None and b["interval_ms"] > 0 for b in act["blocks"])
    whole = (await client.get("/v1/activity", params={"window": 1000})).json()
    assert whole["from_height"] == 1 and whole["blocks"][0]["interval_ms"] is None
    with_records = [b for b in whole["blocks"] if b["num_records"]]
    assert with_records and all(isinstance(b["finality_ms"], int) for b in with_records)
    assert all(b["finality_ms"] is None for b in whole["blocks"] if not b["num_records"])
    assert (await client.get("/v1/activity", params={"window": 1001})).status_code == 400


async def test_records_carry_their_version(client, published):
    rec = (await client.get(f"/v1/records/{published['home-loan']['hash']}")).json()["record"]
    assert rec["version"] == 1 and list(rec)[:2] == ["hash", "version"]
    assert published["status"]["record"]["version"] == 1
    assert all(r["version"] == 1 for r in (await client.get("/v1/records")).json()["records"])


async def test_service_filters(client, published):
    async def ids(**params):
        return sorted(s["service_id"] for s in (await client.get("/v1/services", params=params)).json()["services"])

    assert await ids(ownership="consigned") == ["fund-a"]
    assert "fund-a" not in await ids(ownership="own")
    assert await ids(risk_level=4) == ["fund-a"] and await ids(risk_level=5) == []
    assert "cash-withdrawal" in await ids(channel="counter") and await ids(channel="phone") == []
    assert "cash-withdrawal" in await ids(fee_basis="per_transaction", max_fee=500)
    assert "cash-withdrawal" not in await ids(fee_basis="per_transaction", max_fee=499)
    assert "cash-withdrawal" not in await ids(max_fee=100)  # its express fee is 500
    assert await ids(fee_basis="percent_bp") == []
    r = await client.get("/v1/services", params={"risk_level": 6})
    assert r.status_code == 400 and r.json()["error"]["field"] == "risk_level"


async def test_root_lists_the_api_and_sends_browsers_to_the_explorer(client):
    doc = (await client.get("/")).json()
    assert doc == {"service": "branchnet node API", "openapi": "/v1/openapi.json", "health": "/health",
                   "status": "/v1/status", "metrics": "/metrics", "explorer": "/explorer/"}
    for path in doc.values():
        if path.startswith("/") and path != "/metrics":
            assert (await client.get(path)).status_code == 200, path
    r = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/explorer/"


async def test_explorer_is_served_read_only(client):
    r = await client.get("/explorer", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/explorer/"
    page = await client.get("/explorer/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"] and "connect-src 'self'" in page.headers["content-security-policy"]
    assert "<script" in page.text and "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
    js = await client.get("/explorer/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/explorer/nope.js")).status_code == 404
    assert (await client.post("/explorer/app.js")).status_code == 405


async def test_offer_terms_filters_sort_and_quality(client, net, published):
    """Product terms and branch.quality through the API: compare by rate and term, every answer with its proof."""
    offers = [
        f.offer("loan-flex", "loan", terms=f.loan_terms()),  # 345..420 bp, 6..60 months
        f.offer("loan-short", "loan", terms=f.loan_terms(rate_min_bp=390, rate_max_bp=390, rate_type="fixed",
                                                         rate_reference="none", spread_bp=0, term_min_months=1,
                                                         term_max_months=12)),
        f.offer("loan-long", "loan", terms=f.loan_terms(rate_min_bp=300, term_min_months=60, term_max_months=360)),
        f.offer("deposit-term", "deposit", terms=f.deposit_terms()),
        f.offer("fund-b", "wealth", terms=f.investment_terms()),
    ]
    quality = f.quality()
    docs = [await sign(client, net, "service.offer", o) for o in offers] + [await sign(client, net, "branch.quality", quality)]
    for d in docs:
        await wait_committed(client, d["hash"])

    async def listed(**params):
        r = await client.get("/v1/services", params=params)
        assert r.status_code == 200, r.text
        return [(s["service_id"], s["rate_bp"]) for s in r.json()["services"]]

    assert await listed(category="loan", term_months=12, sort="rate") == [("loan-flex", 345), ("loan-short", 390)]
    assert (await listed(category="loan", sort="-rate"))[:3] == [("loan-short", 390), ("loan-flex", 345), ("loan-long", 300)]
    assert (await listed(category="loan", sort="rate"))[-1] == ("home-loan", None)  # no terms: last
    assert await listed(category="deposit", term_months=3) == [("deposit-term", 110)]
    assert await listed(category="deposit", term_months=6) == []
    assert await listed(category="loan", amount=1_000_000_000) == []  # above every loan's maximum
    assert await listed(category="wealth", term_months=12) == [("fund-b", 410)]
    assert await listed(category="loan", valid_at=f.GENESIS_TIME_MS - 1) == []
    svc = (await client.get("/v1/services", params={"category": "loan", "term_months": 12, "sort": "rate"})).json()["services"][0]
    assert svc["offer"]["terms"] == body_to_json(offers[0].terms)
    proof = await client.get(f"/v1/records/{svc['record_hash']}/proof")
    assert proof.status_code == 200

    q = (await client.get("/v1/records", params={"kind": "branch.quality"})).json()["records"]
    assert [r["body"] for r in q] == [body_to_json(quality)] and q[0]["subject"] == "quality/2026-01"

    # /v1/quality: the latest version of each branch's disclosure for a month, ranked; a correction supersedes
    correction = f.quality(resolution_median_hours=15, resolution_p90_hours=40)
    later = f.quality("2026-02")
    for d in [await sign(client, net, "branch.quality", correction), await sign(client, net, "branch.quality", later)]:
        await wait_committed(client, d["hash"])
    doc = (await client.get("/v1/quality", params={"period": "2026-01", "sort": "resolution"})).json()
    assert doc["period"] == "2026-01" and len(doc["branches"]) == 1
    row = doc["branches"][0]
    assert row["quality"] == body_to_json(correction) and row["seq"] == 2 and row["region"] == PROFILE.region
    assert (await client.get(f"/v1/records/{row['record_hash']}/proof")).status_code == 200
    assert (await client.get("/v1/quality")).json()["period"] == "2026-02"  # default: the latest disclosed
    assert (await client.get("/v1/quality", params={"period": "2026-01", "region": "CN-SH"})).json()["branches"] == []
    paged = (await client.get("/v1/quality", params={"period": "2026-01", "offset": 1, "limit": 5})).json()
    assert paged["total"] == 1 and paged["branches"] == []  # pages: limit (1-1000, default 100) from offset
    assert (await client.get("/v1/quality", params={"limit": 1001})).status_code == 400
    history = (await client.get("/v1/records", params={"kind": "branch.quality"})).json()["records"]
    assert [(r["subject"], r["seq"]) for r in history] == [("quality/2026-02", 1), ("quality/2026-01", 2), ("quality/2026-01", 1)]


async def test_as_of_answers_what_was_on_offer_then_from_history(client, net, published):
    """A rate change published in advance, then a withdrawal: as_of sees each version in its time."""
    import dataclasses as dc

    async def block_time(doc):
        committed = await wait_committed(client, doc["hash"])
        return (await client.get(f"/v1/blocks/{committed['height']}")).json()["header"]["time_ms"]

    async def offered(as_of):
        r = await client.get("/v1/services", params={"as_of": as_of, "category": "loan", "q": "Rate change"})
        assert r.status_code == 200, r.text
        doc = r.json()
        return [(s["service_id"], s["rate_bp"], s["status"]) for s in doc["services"] if s["service_id"] == "loan-change"]

    first = f.offer("loan-change", "loan", title="Rate change loan", terms=f.loan_terms(rate_min_bp=400, rate_max_bp=450))
    t1 = await block_time(await sign(client, net, "service.offer", first))
    day = 86_400_000
    second = dc.replace(first, effective_from_ms=t1 + day, terms=f.loan_terms(rate_min_bp=380, rate_max_bp=450))
    t2 = await block_time(await sign(client, net, "service.offer", second))
    now = (await client.get("/v1/services", params={"q": "Rate change"})).json()["services"]
    assert [s["rate_bp"] for s in now] == [380]  # the state holds the newest offer, published in advance
    assert await offered(t1 - 1) == []  # not committed yet
    assert await offered(t1) == [("loan-change", 400, None)]
    assert await offered(t2) == [("loan-change", 400, None)]  # the change is not in force yet
    assert await offered(t1 + day) == [("loan-change", 380, None)]
    t3 = await block_time(await sign(client, net, "service.withdraw", f.withdraw("loan-change")))
    assert await offered(t3) == [] and await offered(t3 - 1) == [("loan-change", 400, None)]
    doc = (await client.get("/v1/services", params={"as_of": t1, "q": "Rate change"})).json()
    assert doc["as_of_ms"] == t1 and doc["as_of_height"] >= 1
    proof = await client.get(f"/v1/records/{doc['services'][0]['record_hash']}/proof")
    assert proof.status_code == 200


async def test_empty_query_values_mean_absent(client, published):
    doc = (await client.get("/v1/services?category=&branch=&region=&status=&q=&limit=&offset=")).json()
    assert doc["total"] == (await client.get("/v1/services")).json()["total"] > 0
