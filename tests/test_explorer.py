"""The explorer in a real browser: a 4-validator devnet (separate processes, real
sockets) publishes the demo's records (tools/demo.py), and headless Chromium
(the distribution's, through Playwright) opens each page, checks what it shows
against the API, and checks the verification, including a proof and a block
tampered with on the way to the browser. Screenshots of every page go to
build/explorer-screenshots/<test name>/.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from browser import chromium_executable, launch, screenshot_dir
from protocol.genesis import Genesis
from tools import demo, devnet

pytestmark = pytest.mark.slow
WAIT_MS = 20_000
CONSENSUS = {"block_interval_ms": 100, "empty_block_interval_ms": 1000}


@dataclass
class Net:
    url: str  # one node's API; its explorer is url + "/explorer/"
    api: httpx.Client
    genesis: Genesis
    hashes: list[str]  # the demo's records, committed
    branches: list[str]  # branch ids, in demo order

    def get(self, path: str, **params):
        r = self.api.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def executable():
    return chromium_executable()  # skips (saying why) before any devnet starts


@pytest.fixture(scope="module")
def net(executable, tmp_path_factory):
    base = tmp_path_factory.mktemp("explorer-devnet")
    try:
        homes = devnet.up(base, 4, quiet=True, consensus=CONSENSUS)
        clients = [demo.Client(h) for h in homes]
        hashes = demo.publish(clients, quiet=True) + demo.publish_quality(clients, quiet=True)
        genesis = Genesis.loads(homes[0].genesis.read_bytes())
        with httpx.Client(base_url=clients[0].url, timeout=10) as api:
            yield Net(clients[0].url, api, genesis, hashes, [c.http.get("/v1/status").json()["branch_id"] for c in clients])
        for c in clients:
            c.http.close()
    finally:
        devnet.down(base, quiet=True)


@pytest.fixture(scope="module")
def browser(executable):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw, executable)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A fresh context (its own sessionStorage) per test; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.shots = screenshot_dir(request.node.name.replace("[", "-").rstrip("]"))
    yield p
    context.close()
    assert not errors, errors


def open_page(page, net: Net, fragment: str) -> None:
    """Load the explorer afresh at ``fragment`` (a full load, not a hash change, so no
    earlier page's state is read by mistake) and wait until the page is built."""
    page.goto("about:blank")
    page.goto(f"{net.url}/explorer/{fragment}")
    page.wait_for_selector("#view[data-ready=yes]")


def shot(page, name: str) -> Path:
    path = page.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def texts(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def capture(page, pattern: str) -> list[dict]:
    """Every JSON document the page receives from URLs matching ``pattern`` (a regex)."""
    seen: list[dict] = []

    def on_response(response):
        if re.search(pattern, response.url) and response.ok:
            try:
                seen.append(response.json())
            except Exception:  # a stream or a body already gone: not what we capture
                pass
    page.on("response", on_response)
    return seen


# ------------------------------------------------------------------ network and blocks


def test_network_page_shows_the_api_live(page, net):
    statuses, activities = capture(page, r"/v1/status$"), capture(page, r"/v1/activity")
    open_page(page, net, "#/")
    page.wait_for_selector("[data-test=validator-row] >> nth=3")
    page.wait_for_selector("[data-test=activity-chart]")
    assert page.inner_text("[data-test=chain-id]") == net.genesis.chain_id
    assert page.get_attribute("[data-test=genesis-hash] code", "title") == net.genesis.hash.hex()
    shown = tuple(page.evaluate("""() => ['height', 'mempool', 'peer-count']
        .map(t => document.querySelector(`[data-test=${t}]`).textContent)"""))  # one read: a refresh may land between two

    def captured() -> set:
        return {(str(s["height"]), str(s["mempool"]), str(s["peers"])) for s in statuses}

    for _ in range(100):  # the page may render a status before Playwright hands us its response event
        if shown in captured():
            break
        page.wait_for_timeout(50)  # (the sync API delivers pending events only while it waits)
    assert shown in captured()
    validators = net.get("/v1/validators")["validators"]
    rows = page.locator("[data-test=validator-row]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.id)")) == sorted(v["branch_id"] for v in validators)
    shown_rows = {r["id"]: r for r in rows.evaluate_all("""rs => rs.map(r => Object.fromEntries([['id', r.dataset.id],
        ...['power', 'in-genesis', 'missed', 'last-signed'].map(t => [t, r.querySelector(`[data-test=${t}]`).textContent])]))""")}
    for v in validators:  # each row read at once: the rows are rebuilt every few blocks
        row = shown_rows[v["branch_id"]]
        assert row["power"].startswith(f"{v['power']} (25.0 %)")
        assert row["in-genesis"] == "✔"
        missed, last = row["missed"], row["last-signed"]
        assert any((str(a["missed"]), f"#{a['last_signed_height']}") == (missed, last)
                   for act in activities for a in act["validators"] if a["branch_id"] == v["branch_id"]), (missed, last)
    assert len(page.locator("[data-test=peer-row]").all()) == net.get("/v1/peers")["count"] == 3
    shot(page, "network")
    before = int(page.inner_text("[data-test=height]"))  # live: empty blocks every second arrive over /v1/events
    page.wait_for_function(f"() => Number(document.querySelector('[data-test=height]').textContent) > {before}")
    assert page.get_attribute("[data-test=live]", "data-state") == "live"


def test_block_list_is_live(page, net):
    open_page(page, net, "#/blocks")
    rows = page.locator("[data-test=block-row]")
    shown = rows.evaluate_all("rs => rs.map(r => [Number(r.dataset.height), r.querySelector('[data-test=num-records]').textContent])")
    top = shown[0][0]
    api = {b["height"]: str(b["num_records"]) for b in net.get("/v1/blocks", before=top + 1, limit=40)["blocks"]}
    heights = [h for h, _n in shown]
    assert heights == sorted(heights, reverse=True) and len(heights) >= min(20, top)
    assert {h: n for h, n in shown if h in api} == {h: api[h] for h in heights if h in api} and len(api) >= min(20, top)
    page.wait_for_function(f"() => Number(document.querySelector('[data-test=block-row]').dataset.height) > {top}")  # by the event stream
    heights = rows.evaluate_all("rs => rs.map(r => Number(r.dataset.height))")
    assert heights == list(range(heights[0], heights[0] - len(heights), -1))
    shot(page, "blocks")


def test_block_list_fills_the_blocks_missed_while_the_stream_was_down(page, net):
    """The event stream is cut (each attempt answered with an empty stream, so the page
    keeps reconnecting) until two blocks have been committed past the list's top; when the
    stream comes back, its first block is not the next one and the list fetches the gap."""
    page.route("**/v1/events", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=""))
    open_page(page, net, "#/blocks")
    top = int(page.get_attribute("[data-test=block-row] >> nth=0", "data-height"))
    page.wait_for_function("async (top) => (await (await fetch('../v1/status')).json()).height >= top + 2", arg=top, polling=250)
    assert int(page.get_attribute("[data-test=block-row] >> nth=0", "data-height")) == top  # no event got through
    page.unroute("**/v1/events")
    page.wait_for_function(f"() => Number(document.querySelector('[data-test=block-row]').dataset.height) > {top + 2}")
    heights = page.locator("[data-test=block-row]").evaluate_all("rs => rs.map(r => Number(r.dataset.height))")
    assert heights == list(range(heights[0], heights[0] - len(heights), -1)), heights[:10]
    shot(page, "blocks-after-reconnect")


def _block_with_records(net: Net) -> int:
    return net.get(f"/v1/records/{net.hashes[5]}")["height"]


def test_block_page_is_verified_in_the_browser(page, net):
    height = _block_with_records(net)
    block = net.get(f"/v1/blocks/{height}")
    open_page(page, net, f"#/block/{height}")
    page.wait_for_selector("h1 [data-test=verdict][data-state=verified]")
    checks = texts(page, "[data-test=checks] li")
    for label in ("header hash", "records root", "commit certificate", "record signatures", "validator set"):
        assert any(label in c and c.startswith("✔") for c in checks), (label, checks)
    assert page.get_attribute("[data-test=header] code", "title") == block["hash"]
    assert page.locator("[data-test=record-row]").evaluate_all("rs => rs.map(r => r.dataset.hash)") == [r["hash"] for r in block["records"]]
    signed = {s["validator"] for s in block["certificate"]["signatures"]}
    for v in net.get("/v1/validators")["validators"]:
        row = page.locator(f"[data-test=signer-row][data-id='{v['branch_id']}']")
        assert row.locator("[data-test=signature]").inner_text() == ("✔ valid" if v["branch_id"] in signed else "–")
    assert f"Signed by {10 * len(signed)} of 40 power" in page.inner_text("[data-test=quorum]")
    assert "✔ reached" in page.inner_text("[data-test=quorum]")
    shot(page, "block")


def _flip_hex(text: str, at: int) -> str:
    raw = bytearray.fromhex(text)
    raw[at] ^= 0x01
    return raw.hex()


def test_a_tampered_block_or_certificate_fails_with_the_reason(page, net):
    height = _block_with_records(net)

    def tamper(field: str, at):
        def handler(route):
            doc = route.fetch().json()
            doc[field] = _flip_hex(doc[field], at(doc[field]))
            route.fulfill(json=doc)
        return handler

    page.route(f"**/v1/blocks/{height}/raw", tamper("certificate", lambda hx: len(hx) // 2 - 10))  # inside a signature
    open_page(page, net, f"#/block/{height}")
    page.wait_for_selector("h1 [data-test=verdict][data-state=failed]")
    reason = page.inner_text("[data-test=reason]")
    assert "verification failed" in reason and "bad_certificate" in reason and "does not verify" in reason
    assert "✘ invalid" in texts(page, "[data-test=signer-row] [data-test=signature]")
    shot(page, "block-tampered-certificate")

    page.unroute(f"**/v1/blocks/{height}/raw")
    page.route(f"**/v1/blocks/{height}/raw", tamper("block", lambda hx: len(hx) // 2 - 100))  # inside the last record
    open_page(page, net, f"#/block/{height}")
    page.wait_for_selector("h1 [data-test=verdict][data-state=failed]")
    assert "records root" in page.inner_text("[data-test=reason]")
    shot(page, "block-tampered-record")


# ------------------------------------------------------------------ services, proofs, fees


def test_service_search_matches_the_api(page, net):
    for query in ({"category": "fx"}, {"ownership": "consigned"}, {"category": "wealth", "risk_level": "4"},
                  {"fee_basis": "percent_bp", "max_fee": "100"}, {"channel": "online"}, {"region": "CN-GD"}):
        open_page(page, net, "#/services?" + "&".join(f"{k}={v}" for k, v in query.items()))
        api = net.get("/v1/services", **query, limit=200)["services"]
        shown = page.locator("[data-test=service-row]").evaluate_all("rs => rs.map(r => [r.dataset.branch, r.dataset.service])")
        assert sorted(map(tuple, shown)) == sorted((s["branch_id"], s["service_id"]) for s in api), query
        assert page.inner_text("[data-test=total]").startswith(f"{len(api)} service")
    page.select_option("[data-test=filter-category]", "wealth")  # the form builds the same query
    page.click("form.filters button[type=submit]")
    page.wait_for_function("""() => location.hash === '#/services?category=wealth&region=CN-GD'
        && document.querySelector('[data-test=filter-category]').value === 'wealth' && document.querySelector('#view').dataset.ready === 'yes'""")
    assert len(page.locator("[data-test=service-row]").all()) == net.get("/v1/services", category="wealth", region="CN-GD")["total"] == 1
    shot(page, "services-wealth")


def test_a_service_record_proof_verifies_and_a_tampered_one_fails(page, net):
    open_page(page, net, "#/services?category=fx")
    fx = net.get("/v1/services", category="fx")["services"]
    first = page.locator("[data-test=proof]").first
    first.locator("summary").click()
    first.locator("[data-test=proof-verdict][data-state=verified]").wait_for()
    record_hash = first.get_attribute("data-record")
    listed = next(s for s in fx if s["record_hash"] == record_hash)
    details = first.locator("[data-test=verified-record]").inner_text()
    assert listed["offer"]["title"] in details and record_hash[:12] in first.locator("[data-test=verified-record] code").first.get_attribute("title")
    assert "the node's listing matches the signed record" in first.inner_text()
    shot(page, "service-proof-verified")

    def flip(route):  # one byte of the record itself: it no longer hashes to the leaf under the root
        doc = route.fetch().json()
        doc["record"] = _flip_hex(doc["record"], 60)
        route.fulfill(json=doc)
    page.route("**/v1/records/*/proof", flip)
    open_page(page, net, "#/services?category=fx")
    first = page.locator("[data-test=proof]").first
    first.locator("summary").click()
    first.locator("[data-test=proof-verdict][data-state=failed]").wait_for()
    reason = first.locator("[data-test=reason]").inner_text()
    assert reason.startswith("verification failed") and "records root" in reason and "(bad_proof)" in reason
    assert first.locator("summary [data-test=verdict]").get_attribute("data-state") == "failed"
    assert first.locator("[data-test=verified-record]").count() == 0  # nothing unverified is shown as the record
    shot(page, "service-proof-tampered")


def test_fee_comparison_chart(page, net):
    open_page(page, net, "#/fees/fx")
    fx = net.get("/v1/services", category="fx")["services"]
    want = sorted(f"CNY {f['amount_minor'] / 100:.2f}" for s in fx for f in s["offer"]["fees"])
    assert sorted(page.locator("[data-test=fee-chart] [data-test=bar-value]").all_text_contents()) == want == ["CNY 15.00", "CNY 20.00", "CNY 30.00"]
    shot(page, "fees-fx")
    open_page(page, net, "#/fees/wealth")
    assert len(page.locator("[data-test=fee-chart] .bar").all()) == sum(len(s["offer"]["fees"]) for s in net.get("/v1/services", category="wealth")["services"])
    shot(page, "fees-wealth")


# ------------------------------------------------------------------ branches


def test_branch_page_profile_services_status_and_timeline(page, net):
    branch = net.branches[0]  # Jianguomen: an ATM lobby with one machine down
    doc = net.get(f"/v1/branches/{branch}")
    open_page(page, net, f"#/branch/{branch}")
    assert page.inner_text("[data-test=branch-name]") == doc["profile"]["name"] == demo.BRANCHES[0][0]
    assert page.inner_text("[data-test=region]") == doc["profile"]["region"]
    shown = page.locator("[data-test=branch-service]").evaluate_all("cs => cs.map(c => c.dataset.service)")
    assert sorted(shown) == sorted(s["service_id"] for s in doc["services"])
    lobby = page.locator("[data-test=branch-service][data-service=atm-lobby]")
    assert lobby.locator("[data-test=live-status]").inner_text() == "open"
    assert lobby.locator("[data-test=equipment] .equip").all_inner_texts() == ["atm-1 up", "atm-2 down"]
    records = net.get("/v1/records", branch=branch, limit=50)["records"]
    assert page.locator("[data-test=timeline-item]").evaluate_all("ls => ls.map(l => l.dataset.hash)") == [r["hash"] for r in records]
    page.locator("[data-test=proof]").first.locator("summary").click()  # the profile's record
    page.locator("[data-test=proof] [data-test=proof-verdict][data-state=verified]").first.wait_for()
    shot(page, "branch")


def test_every_demo_record_verifies_on_its_branch_page(page, net):
    verified = set()
    for branch in net.branches:
        open_page(page, net, f"#/branch/{branch}")
        items = page.locator("[data-test=timeline-item]")
        for summary in items.locator("summary").all():
            summary.click()
        page.wait_for_function("""() => [...document.querySelectorAll('[data-test=timeline-item] [data-test=proof-verdict]')]
                                        .every(v => v.dataset.state !== 'pending')""")
        states = items.locator("[data-test=proof-verdict]").evaluate_all("vs => vs.map(v => v.dataset.state)")
        assert set(states) == {"verified"}, states
        verified |= set(items.evaluate_all("ls => ls.map(l => l.dataset.hash)"))
    # profiles, offers (with terms), statuses, a quarter of quality records and one correction
    expected = 4 + sum(len(demo.services_for(i)) for i in range(4)) + len(demo.STATUS_UPDATES) + 4 * len(demo.QUARTER) + 1
    assert verified == set(net.hashes) and len(verified) == expected == 51
    open_page(page, net, "#/branches")
    assert len(page.locator("[data-test=branch-row]").all()) == 4
    shot(page, "branches")


# ------------------------------------------------------------------ trust


def test_genesis_trust_page_and_a_genesis_that_is_not_the_chains(page, net):
    open_page(page, net, "#/genesis")
    assert page.inner_text("[data-test=genesis-hash-full]") == net.genesis.hash.hex()
    shot(page, "genesis")
    page.fill("[data-test=expected-hash]", "ab" * 32)  # the user trusts another hash: nothing verifies
    page.click("[data-test=use-expected]")
    page.wait_for_selector("#trust[data-state=untrusted]")
    height = _block_with_records(net)
    open_page(page, net, f"#/block/{height}")
    page.wait_for_selector("h1 [data-test=verdict][data-state=failed]")
    assert "untrusted_genesis" in page.inner_text("[data-test=reason]")
    open_page(page, net, "#/genesis")
    page.fill("[data-test=expected-hash]", net.genesis.hash.hex())
    page.click("[data-test=use-expected]")
    page.wait_for_selector("#trust[data-state=matches]")
    assert page.inner_text("[data-test=expected-result]") == "✔ the same hash"

    other = json.loads(net.genesis.dumps()) | {"chain_id": "another-chain"}  # pasted: another network's genesis
    page.fill("[data-test=expected-hash]", "")
    page.click("[data-test=use-expected]")
    page.wait_for_selector("#view[data-ready=yes] [data-test=paste-genesis]")
    page.fill("[data-test=paste-genesis]", json.dumps(other))
    page.click("[data-test=use-pasted]")
    page.wait_for_selector("[data-test=node-genesis]")
    assert page.inner_text("[data-test=node-genesis]").startswith("✘ differs")
    open_page(page, net, f"#/block/{height}")
    page.wait_for_selector("h1 [data-test=verdict][data-state=failed]")
    assert "(wrong_chain)" in page.inner_text("[data-test=reason]")  # before any signature is checked
    shot(page, "block-against-another-genesis")


def test_phone_size_in_the_dark_theme(browser, net, request):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.shots = screenshot_dir(request.node.name)
    try:
        for fragment, name, content in (("#/", "network", "[data-test=validator-row] >> nth=3"),
                                        (f"#/branch/{net.branches[1]}", "branch", "[data-test=timeline-item]"),
                                        ("#/services?category=wealth", "services", "[data-test=service-row]")):
            open_page(page, net, fragment)
            page.wait_for_selector(content)  # the page's tables are filled
            assert page.evaluate("document.documentElement.scrollWidth") <= 392, fragment  # tables scroll inside their box
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
            shot(page, f"phone-dark-{name}")
    finally:
        context.close()


# ------------------------------------------------------------------ auth_reads


def test_with_auth_reads_the_explorer_asks_for_the_token(browser, tmp_path, request):
    from api_node import NodeThread
    from tools.netsetup import create_network, set_config

    home = create_network(tmp_path, 1, fixed_ports=False, consensus=CONSENSUS)[0]
    set_config(home, "api", "auth_reads", True)
    nt = NodeThread(home)
    nt.start()
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.shots = screenshot_dir(request.node.name)
    try:
        url = "http://{}:{}".format(*nt.node.api_address)
        page.goto(f"{url}/explorer/#/")
        page.wait_for_selector("#view[data-ready=yes]")
        assert "API token" in page.inner_text("[data-test=error]")
        assert page.get_attribute("#trust", "data-state") == "untrusted"
        page.fill("[data-test=token-input]", home.api_token.read_text().strip())
        page.click("[data-test=token-save]")
        page.wait_for_selector("#trust[data-state=loaded]")
        page.wait_for_selector("#view[data-ready=yes] [data-test=validator-row]")
        open_page(page, type("N", (), {"url": url}), "#/block/1")
        page.wait_for_selector("h1 [data-test=verdict][data-state=verified]")
        page.wait_for_selector("[data-test=live][data-state=live]", state="attached")  # the event stream carries the token too
        shot(page, "auth-block-1")
    finally:
        context.close()
        nt.stop()


# ------------------------------------------------------------------ governance (a devnet of its own)


@dataclass
class GovNet:
    url: str
    api: httpx.Client
    clients: list  # demo.Client per validator, in genesis order
    names: dict  # branch id -> member name
    passed: str  # set_param max_clock_drift_ms 20000: three yes, one no
    refused: str  # set_power 100: three yes, but power_change_too_large
    power: str  # set_power: passed, the validator set changes
    open: str  # one yes vote, still open
    votes: dict  # proposal id -> {voter branch id: vote record hash}

    def get(self, path: str, **params):
        r = self.api.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def _proposal(net, pid: str) -> dict:
    (p,) = [p for p in net.get("/v1/governance")["proposals"] if p["id"] == pid]
    return p


@pytest.fixture(scope="module")
def gov_net(executable, tmp_path_factory):
    """Four validators (power 10 each) vote on proposals through the API: the other
    tests' devnet keeps its records and validator set as they expect them."""
    base = tmp_path_factory.mktemp("explorer-gov-devnet")
    clients = []
    try:
        homes = devnet.up(base, 4, quiet=True, consensus=CONSENSUS)
        clients = [demo.Client(h) for h in homes]
        ids = [c.http.get("/v1/status").json()["branch_id"] for c in clients]
        first = clients[0]
        votes: dict = {}

        def propose(name: str, action: dict) -> str:
            height = first.http.get("/v1/status").json()["height"]
            pid = first.sign("gov.proposal", {"name": name, "action": action, "expires_height": height + 5000})
            first.wait_committed([pid])
            return pid

        def vote(pid: str, voters, yes: bool = True) -> None:
            for i in voters:  # one at a time: the last needed yes decides it, later votes would be refused
                h = clients[i].sign("gov.vote", {"proposal": pid, "yes": yes})
                first.wait_committed([h])
                votes.setdefault(pid, {})[ids[i]] = h

        drift = propose("drift-20s", {"kind": "set_param", "name": "max_clock_drift_ms", "value": 20000})
        vote(drift, [3], yes=False)
        vote(drift, [0, 1, 2])
        too_much = propose("too-much", {"kind": "set_power", "branch_id": ids[3], "power": 100})
        vote(too_much, [0, 1, 2])  # enough yes, but a change of 90 of 40 power: refused
        power = propose("more-power", {"kind": "set_power", "branch_id": ids[2], "power": 12})
        vote(power, [0, 1, 2])
        api = httpx.Client(base_url=first.url, timeout=10)
        net = GovNet(first.url, api, clients, {}, drift, too_much, power, "", votes)
        decided = _proposal(net, power)["decided_height"]
        deadline = time.monotonic() + 30  # the new set signs from decided + 2: later records' proofs cross the change
        while net.get("/v1/status")["height"] < decided + 3:
            assert time.monotonic() < deadline, "the chain did not pass the set change"
            time.sleep(0.2)
        net.open = propose("drift-25s", {"kind": "set_param", "name": "max_clock_drift_ms", "value": 25000})
        vote(net.open, [1])
        net.names = {m["branch_id"]: m["name"] for m in net.get("/v1/governance")["members"]}
        yield net
        api.close()
    finally:
        for c in clients:
            c.http.close()
        devnet.down(base, quiet=True)


def _card(page, pid: str):
    return page.locator(f"[data-test=proposal][data-id='{pid}']")


def test_governance_page_shows_proposals_tallies_and_sets_as_the_api(page, gov_net):
    net = gov_net
    doc = net.get("/v1/governance")
    open_page(page, net, "#/governance")
    shown = page.locator("[data-test=proposal]").evaluate_all("cs => cs.map(c => [c.dataset.id, c.dataset.status])")
    assert shown == [[p["id"], p["status"]] for p in doc["proposals"]]  # newest first
    assert [s for _, s in shown] == ["open", "passed", "refused", "passed"]

    drift = _proposal(net, net.passed)
    card = _card(page, net.passed)
    assert card.locator("[data-test=action]").inner_text() == "set max_clock_drift_ms to 20000"
    assert card.locator("[data-test=status]").inner_text() == "passed"
    assert card.locator("[data-test=effect-height]").inner_text().startswith(f"#{drift['decided_height'] + 2}")
    heights = card.locator("[data-test=heights]").inner_text()
    assert f"#{drift['submitted_height']}" in heights and f"#{drift['expires_height']}" in heights and net.names[drift["proposer"]] in heights
    tally = card.locator("[data-test=tally-text]").inner_text()  # at the decision the set was the genesis one: 4 × 10
    assert tally.startswith("yes 30 of 40 power (75.0 %), no 10") and "> 26.67" in tally and "✔ reached" in tally
    rows = card.locator("[data-test=vote-row]").evaluate_all("rs => rs.map(r => [r.dataset.id, r.dataset.vote])")
    assert sorted(map(tuple, rows)) == sorted((v["branch_id"], "yes" if v["yes"] else "no") for v in drift["votes"])
    assert len(rows) == 4 and card.locator("[data-test=vote-row][data-vote=no]").count() == 1
    voters = card.locator("[data-test=votes]").inner_text()
    assert all(net.names[v["branch_id"]] in voters for v in drift["votes"])

    refused = _card(page, net.refused)
    assert refused.locator("[data-test=status]").inner_text() == "refused: power_change_too_large" == "refused: " + _proposal(net, net.refused)["reason"]
    assert refused.locator("[data-test=tally-text]").inner_text().startswith("yes 30 of 40 power") and refused.locator("[data-test=effect-height]").count() == 0
    power = _proposal(net, net.power)
    assert _card(page, net.power).locator("[data-test=action]").inner_text() == f"set power of {net.names[power['action']['branch_id']]} to 12"
    opened = _card(page, net.open)
    assert opened.locator("[data-test=status]").inner_text() == "open" and opened.locator("[data-test=effect-height]").count() == 0
    assert opened.locator("[data-test=tally-text]").inner_text().startswith("yes 10 of 42 power")  # the set in force now
    assert "✘ not reached" in opened.locator("[data-test=tally-text]").inner_text()

    assert page.inner_text("[data-test=param-max_clock_drift_ms]") == str(doc["params"]["max_clock_drift_ms"]) == "20000"
    sets = page.locator("[data-test=set-row]").evaluate_all(
        "rs => rs.map(r => [r.dataset.id, r.querySelector('[data-test=power-now]').textContent, r.querySelector('[data-test=power-next]').textContent])")
    assert sorted(map(tuple, sets)) == sorted((v["branch_id"], str(v["power"]), str(v["power"])) for v in doc["validators"])
    assert doc["validators"] == doc["next_validators"] and page.locator("[data-test=set-row][data-changed=yes]").count() == 0
    members = page.locator("[data-test=member-row]").evaluate_all("rs => rs.map(r => [r.dataset.id, r.querySelector('[data-test=member-power]').textContent])")
    assert sorted(map(tuple, members)) == sorted((m["branch_id"], str(m["power"])) for m in doc["members"])
    assert page.get_attribute("nav a.active", "data-nav") == "governance"
    shot(page, "governance")

    # the proposal and a vote verify in the browser (the open one's records come after the set change)
    for pid, record in ((net.passed, net.passed), (net.open, net.open), (net.passed, net.votes[net.passed][drift["votes"][0]["branch_id"]])):
        panel = _card(page, pid).locator(f"[data-test=proof][data-record='{record}']")
        panel.locator("summary").click()
        panel.locator("[data-test=proof-verdict][data-state=verified]").wait_for()
        assert "the node's listing matches the signed record" in panel.inner_text()
    assert "1 certified changes since genesis" in _card(page, net.open).locator(f"[data-test=proof][data-record='{net.open}']").inner_text()
    shot(page, "governance-proofs-verified")

    page.select_option("[data-test=filter-status]", "open")  # the filter asks the API for that status
    page.wait_for_function("() => location.hash === '#/governance?status=open' && document.querySelector('#view').dataset.ready === 'yes'")
    page.wait_for_selector("[data-test=proposal-count]")
    assert page.locator("[data-test=proposal]").evaluate_all("cs => cs.map(c => c.dataset.id)") == [
        p["id"] for p in net.get("/v1/governance", status="open")["proposals"]] == [net.open]


def test_governance_page_is_live_and_fits_a_phone_in_the_dark(browser, gov_net, request):
    net = gov_net
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.shots = screenshot_dir(request.node.name)
    try:
        open_page(page, net, "#/governance")
        card = _card(page, net.open)
        assert card.locator("[data-test=vote-row]").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 392
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
        shot(page, "phone-dark-governance")
        h = net.clients[3].sign("gov.vote", {"proposal": net.open, "yes": False})  # a new vote arrives over /v1/events
        card.locator(f"[data-test=vote-row][data-id='{net.clients[3].http.get('/v1/status').json()['branch_id']}'][data-vote=no]").wait_for()
        net.clients[0].wait_committed([h])
        assert card.locator("[data-test=vote-row]").count() == len(_proposal(net, net.open)["votes"]) == 2
    finally:
        context.close()
