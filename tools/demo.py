"""`make demo`: a live 4-branch network, real services, verified answers.

1. starts a 4-branch devnet (separate processes on 127.0.0.1),
2. each branch publishes its profile and a realistic set of services through
   its own node's API — counter cash and deposits, transfers, foreign exchange,
   loans and wealth products with risk levels and fees, consigned insurance,
   self-service machines — and later updates live status (a machine goes
   down, a queue grows),
3. shows blocks committing live (server-sent events from one node),
4. publishes a quarter of monthly service-quality disclosures (branch.quality,
   one corrected by a later record of the same month),
5. answers "which branches offer foreign exchange now, at what fee?", "which
   wealth products are on sale, at what risk and expected yield?", "the lowest
   12-month loan rate in Guangdong", "the best 3-month deposit rate" and "which
   branch resolves complaints fastest?", each answer checked with an inclusion
   proof against a committed header, trusting only genesis,
6. prints the web explorer's URL (served by every node at /explorer/), where
   the same records show up, verified in the browser against the genesis file,
7. a fifth branch joins live by on-chain governance: it starts outside the
   network, is admitted by a proposal and votes, syncs, is voted into the
   validator set and signs blocks,
8. stops everything after ``--seconds`` (default 45) or on Ctrl-C.

    python -m tools.demo [--seconds N] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from node.config import Home
from protocol.genesis import Genesis
from protocol.proofs import RecordProof, verify_record_proof
from tools import devnet

console = Console()

WEEKDAYS_9_17 = [{"day": d, "open_minute": 540, "close_minute": 1020} for d in range(5)]
SAT_10_16 = [{"day": 5, "open_minute": 600, "close_minute": 960}]

BRANCHES = [
    ("Jianguomen Branch", "No. 1 Jianguomen Inner Street, Dongcheng District, Beijing", "CN-BJ-110101", 39_908_000, 116_427_000),
    ("Lujiazui Branch", "No. 88 Century Avenue, Pudong New Area, Shanghai", "CN-SH-310115", 31_236_000, 121_505_000),
    ("Tianhe Branch", "No. 208 Tianhe Road, Tianhe District, Guangzhou", "CN-GD-440106", 23_137_000, 113_329_000),
    ("Futian Branch", "No. 6008 Shennan Avenue, Futian District, Shenzhen", "CN-GD-440304", 22_540_000, 114_057_000),
    ("Xinjiekou Branch", "No. 1 Zhongshan Road, Xuanwu District, Nanjing", "CN-JS-320102", 32_043_000, 118_784_000),  # joins live
]


def fee(label: str, amount_minor: int, basis: str, currency: str = "CNY") -> dict:
    return {"label": label, "amount_minor": amount_minor, "currency": currency, "basis": basis}


def offer(sid: str, category: str, title: str, description: str, *, channels=("counter",), fees=(), risk=0,
          issuer: str = "", access=("wheelchair",), hours=(), terms: dict | None = None) -> dict:
    body = {"service_id": sid, "category": category, "title": title, "description": description,
            "channels": list(channels), "hours": list(hours), "fees": list(fees), "risk_level": risk,
            "ownership": "consigned" if issuer else "own", "issuer": issuer, "accessibility": list(access),
            "effective_from_ms": 0}
    if terms is not None:
        body["terms"] = terms
    return body


def loan_terms(rate_bp: int, months: tuple[int, int], amount_cny: tuple[int, int], *, secured: bool) -> dict:
    """A fixed-rate loan's terms (PROTOCOL.md §5.6.1); amounts in yuan, stored in fen."""
    return {"valid_until_ms": 0, "loan": {
        "rate_min_bp": rate_bp, "rate_max_bp": rate_bp, "rate_type": "fixed", "rate_reference": "none", "spread_bp": 0,
        "term_min_months": months[0], "term_max_months": months[1], "amount_min_minor": amount_cny[0] * 100,
        "amount_max_minor": amount_cny[1] * 100, "currency": "CNY", "repayment_methods": ["equal_installment", "equal_principal"],
        "collateral_required": secured, "collateral_kinds": ["real_estate"] if secured else [], "early_repayment_fee_bp": 100}}


def deposit_terms(rates: list[tuple[int, int]], minimum_cny: int) -> dict:
    return {"valid_until_ms": 0, "deposit": {
        "rates": [{"term_months": t, "rate_bp": r} for t, r in rates], "min_amount_minor": minimum_cny * 100,
        "currency": "CNY", "early_withdrawal": "demand_rate", "insured": True}}


def investment_terms(yield_bp: tuple[int, int], months: int, minimum_cny: int, redemption: str) -> dict:
    return {"valid_until_ms": 0, "investment": {
        "yield_min_bp": yield_bp[0], "yield_max_bp": yield_bp[1], "not_guaranteed": True, "term_months": months,
        "min_amount_minor": minimum_cny * 100, "currency": "CNY", "redemption": redemption}}


def services_for(i: int) -> list[dict]:
    out = [
        offer("cash-counter", "cash", "Cash deposit and withdrawal", "Counter cash service in CNY and major currencies",
              fees=[fee("Withdrawal under 50,000", 0, "free")], access=("wheelchair", "priority_counter")),
        offer("transfer-domestic", "transfer", "Domestic transfer", "Same-day interbank transfers",
              channels=("counter", "online", "mobile"), fees=[fee("Per transfer", 200 + 100 * i, "per_transaction")]),
        offer("atm-lobby", "self_service", "24h self-service lobby", "Cash machines and passbook printer",
              channels=("self_service",), access=("wheelchair", "braille")),
        offer("loan-personal", "loan", "Personal consumer loan", "Unsecured loans up to CNY 300k, 1-5 years",
              channels=("low_counter", "appointment"), fees=[fee("Arrangement fee", 0, "free")], risk=2,
              terms=loan_terms((395, 365, 410, 375)[i], (12, 60), (10_000, 300_000), secured=False)),
        offer("deposit-term", "deposit", "Time deposit", "Fixed-term CNY deposits, interest paid at maturity",
              channels=("counter", "mobile"), fees=[fee("Account", 0, "free")],
              terms=deposit_terms([(0, 10), (3, (105, 110, 100, 115)[i]), (6, 130), (12, (145, 150, 140, 155)[i]),
                                   (36, 175)], 50)),
    ]
    if i in (2, 3):  # the Guangdong branches also lend against a home
        out.append(offer("loan-mortgage", "loan", "Home mortgage", "First-home mortgages, 5 to 30 years",
                         channels=("appointment",), fees=[fee("Appraisal", 0, "free")], risk=2,
                         terms=loan_terms((315, 305)[i - 2], (60, 360), (100_000, 10_000_000), secured=True)))
    if i != 2:  # Tianhe does not exchange currency
        out.append(offer("fx-exchange", "fx", "Foreign currency exchange", "USD, EUR, JPY, HKD, GBP cash exchange",
                         fees=[fee("Commission", 1500 + 500 * i, "per_transaction")], hours=WEEKDAYS_9_17 + SAT_10_16))
    if i in (0, 1):
        out.append(offer("wealth-steady", "wealth", "Steady Income 90-day", "Fixed-income wealth product, 90-day term",
                         channels=("low_counter", "online"), fees=[fee("Management fee", 30, "percent_bp")], risk=2,
                         terms=investment_terms((260 + 10 * i, 310 + 10 * i), 3, 10_000, "at_maturity")))
    if i in (1, 3):
        out.append(offer("wealth-equity", "wealth", "Balanced Growth Fund", "Mixed equity fund sold on behalf of the issuer",
                         channels=("low_counter",), fees=[fee("Subscription", 120, "percent_bp")], risk=4,
                         issuer="Huaxia Fund Management Co.", terms=investment_terms((-500, 900), 0, 1_000, "any_business_day")))
    if i == 3:
        out.append(offer("insurance-life", "agency", "Term life insurance", "20-year term life cover, agency sale",
                         channels=("low_counter", "appointment"), fees=[fee("Agency fee", 0, "free")], risk=1,
                         issuer="Ping An Life Insurance", terms=investment_terms((150, 250), 240, 5_000, "at_maturity")))
    return out


class Client:
    def __init__(self, home: Home):
        self.home = home
        self.url = devnet.api_url(home)
        token = home.api_token.read_text().strip()
        self.http = httpx.Client(base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {token}"})

    def sign(self, kind: str, body: dict, *, retry_for: float = 30) -> str:
        deadline = time.monotonic() + retry_for
        while True:  # 503 (catching up, overloaded) says when to retry; a client retries
            r = self.http.post("/v1/records/sign", json={"kind": kind, "body": body})
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(min(float(r.headers.get("Retry-After", 1)), 2))
        if r.status_code != 202:
            raise SystemExit(f"error: {self.home.path.name} refused {kind}: {r.json()['error']}")
        return r.json()["hash"]

    def wait_committed(self, hashes: list[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for h in hashes:
            while True:
                r = self.http.get(f"/v1/records/{h}")
                if r.status_code == 200 and r.json().get("height"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: record {h[:12]} not committed within {timeout:.0f}s")
                time.sleep(0.2)


STATUS_UPDATES = [  # (branch index, service.status body)
    (0, {"service_id": "atm-lobby", "status": "open", "wait_minutes": 0,
         "equipment": [{"equipment_id": "atm-1", "up": True}, {"equipment_id": "atm-2", "up": False}]}),
    (1, {"service_id": "fx-exchange", "status": "open", "wait_minutes": 25, "equipment": []}),
    (3, {"service_id": "fx-exchange", "status": "paused", "wait_minutes": 0, "equipment": []}),
    (2, {"service_id": "cash-counter", "status": "open", "wait_minutes": 10, "equipment": []}),
]


def profile_for(i: int) -> dict:
    name, address, region, lat, lon = BRANCHES[i]
    return {"name": name, "address": address, "region": region, "lat_micro": lat, "lon_micro": lon,
            "hours": WEEKDAYS_9_17 + SAT_10_16, "contact_phone": "+86 95588",
            "contact_url": "https://www.example-bank.cn/branches"}


def publish(clients: list[Client], *, quiet: bool = False) -> list[str]:
    """Every branch publishes its profile and services, then the live status changes;
    waits until all are committed. Returns the record hashes, in publishing order."""
    say = (lambda *a: None) if quiet else console.print
    if not quiet:
        console.rule("branches publish profiles and services")
    pending: list[tuple[Client, str]] = []
    for i, c in enumerate(clients):
        pending.append((c, c.sign("branch.profile", profile_for(i))))
    for i, c in enumerate(clients):
        for body in services_for(i):
            pending.append((c, c.sign("service.offer", body)))
        say(f"  {BRANCHES[i][0]}: profile + {len(services_for(i))} services submitted")
    for c, h in pending:
        c.wait_committed([h])
    say(f"  all {len(pending)} records committed")
    if not quiet:
        console.rule("live status changes")
    for i, body in STATUS_UPDATES:
        c = clients[i]
        h = c.sign("service.status", body)
        c.wait_committed([h])
        pending.append((c, h))
        say(f"  {c.home.path.name}: {body['service_id']} is {body['status']}"
            + (f", wait {body['wait_minutes']} min" if body["wait_minutes"] else "")
            + ("".join(f", {e['equipment_id']} {'up' if e['up'] else 'DOWN'}" for e in body["equipment"])))
    return [h for _c, h in pending]


QUARTER = ("2026-07", "2026-08", "2026-09")


def quality_for(i: int, month: int) -> dict:
    """Branch ``i``'s disclosure for month ``month`` of QUARTER: aggregates only, counts below 5 as -1."""
    def count(n: int) -> int:
        return n if n >= 5 else -1

    received = {"fees": 6 + 3 * i + month, "waiting_time": 4 + 2 * i - month, "card": 2 + i, "wealth": 5 * (i % 2) + month}
    complaints = [{"category": c, "received": count(n), "resolved": count(n - (i + month) % 3 if n >= 5 else n)}
                  for c, n in received.items() if n > 0]
    order = ("fees", "service_attitude", "waiting_time", "product_sales", "account", "card", "loan", "deposit", "wealth")
    complaints.sort(key=lambda c: order.index(c["category"]))
    median = (20, 31, 14, 26)[i] - 2 * month
    return {"period": QUARTER[month], "complaints": complaints, "resolution_median_hours": median,
            "resolution_p90_hours": median * 3, "wait_avg_minutes": (9, 14, 7, 11)[i] + month,
            "wait_p90_minutes": (25, 38, 19, 30)[i] + 2 * month, "self_service_availability_bp": (9_950, 9_870, 9_990, 9_920)[i]}


def publish_quality(clients: list["Client"], *, quiet: bool = False) -> list[str]:
    """A quarter of branch.quality records from every branch, and one correction (seq 2)."""
    say = (lambda *a: None) if quiet else console.print
    if not quiet:
        console.rule(f"branches disclose service quality for {QUARTER[0]} .. {QUARTER[-1]}")
    pending = [(c, c.sign("branch.quality", quality_for(i, m))) for m in range(len(QUARTER)) for i, c in enumerate(clients)]
    corrected = quality_for(1, 2) | {"resolution_median_hours": 24, "resolution_p90_hours": 70}
    pending.append((clients[1], clients[1].sign("branch.quality", corrected)))
    for c, h in pending:
        c.wait_committed([h])
    say(f"  {len(pending)} quality records committed ({BRANCHES[1][0]} corrected {QUARTER[-1]}: the chain keeps both)")
    return [h for _c, h in pending]


def watch_blocks(url: str, stop: threading.Event) -> None:
    """Print each committed block as it arrives (SSE)."""
    try:
        with httpx.stream("GET", url + "/v1/events", timeout=httpx.Timeout(5, read=None)) as r:
            event = None
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "block":
                    b = json.loads(line[5:])
                    if b["num_records"]:
                        console.print(f"  [green]block {b['height']:>4}[/] committed  {b['num_records']:>3} records  {b['hash'][:16]}")
    except httpx.HTTPError:
        pass


def verify_cell(client: Client, genesis: Genesis, record_hash: str) -> str:
    proof = client.http.get(f"/v1/records/{record_hash}/proof").json()
    try:
        record = verify_record_proof(RecordProof.from_json(proof), genesis)
        return "[green]verified[/] (block %d)" % proof["height"] if record.hash.hex() == record_hash else "[red]mismatch[/]"
    except Exception as exc:  # the demo shows any verification failure rather than hiding it
        return f"[red]FAILED: {exc}[/]"


def verified_table(client: Client, genesis: Genesis, title: str, query: str | dict, columns, *, limit: int = 50) -> None:
    params = {"category": query} if isinstance(query, str) else query
    rows = client.http.get("/v1/services", params={**params, "limit": limit}).json()["services"]
    names = {b["branch_id"]: (b["profile"] or {}).get("name") or b["name"] for b in client.http.get("/v1/branches").json()["branches"]}
    table = Table(title=title)
    for name in ("branch", *[c[0] for c in columns], "proof"):
        table.add_column(name)
    for s in rows:
        if s["status"] and s["status"]["status"] != "open":
            continue
        ok = verify_cell(client, genesis, s["record_hash"])
        table.add_row(names.get(s["branch_id"], s["branch_name"]), *[c[1](s) for c in columns], ok)
    console.print(table)


def quality_ranking(client: Client, genesis: Genesis, period: str) -> None:
    """Branches ranked by median complaint resolution in ``period``, from each branch's latest
    branch.quality record of that month (a correction supersedes), every row proven."""
    records = client.http.get("/v1/records", params={"kind": "branch.quality", "limit": 100}).json()["records"]
    latest: dict[str, dict] = {}
    for r in records:  # newest first: the first seen per branch is its latest version
        if r["body"]["period"] == period and r["branch_id"] not in latest:
            latest[r["branch_id"]] = r
    names = {b["branch_id"]: (b["profile"] or {}).get("name") or b["name"] for b in client.http.get("/v1/branches").json()["branches"]}
    table = Table(title=f"Which branch resolves complaints fastest? ({period})")
    for name in ("branch", "median", "90th pct", "counter wait (avg / p90)", "self-service up", "version", "proof"):
        table.add_column(name)
    ranked = sorted(latest.values(), key=lambda r: (r["body"]["resolution_median_hours"] < 0, r["body"]["resolution_median_hours"]))
    for r in ranked:
        b = r["body"]
        table.add_row(names.get(r["branch_id"], r["branch_id"][:12]), f"{b['resolution_median_hours']} h",
                      f"{b['resolution_p90_hours']} h", f"{b['wait_avg_minutes']} / {b['wait_p90_minutes']} min",
                      f"{b['self_service_availability_bp'] / 100:.2f}%", f"seq {r['seq']}", verify_cell(client, genesis, r["hash"]))
    console.print(table)


def bp(value: int | None) -> str:
    return "-" if value is None else f"{value / 100:.2f}%"


def fmt_fee(s: dict) -> str:
    parts = []
    for f in s["offer"]["fees"]:
        if f["basis"] == "percent_bp":
            parts.append(f"{f['label']}: {f['amount_minor'] / 100:.2f}%")
        elif f["basis"] == "free":
            parts.append(f"{f['label']}: free")
        else:
            parts.append(f"{f['label']}: {f['currency']} {f['amount_minor'] / 100:.2f} {f['basis'].replace('_', ' ')}")
    return "; ".join(parts)


def wait_for(what: str, condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {what}: not within {timeout:.0f}s")
        time.sleep(0.3)


def pass_proposal(clients: list[Client], name: str, action: dict, voters: list[Client]) -> int:
    """Propose through the first node, vote yes through ``voters``; the height it passed at."""
    height = clients[0].http.get("/health").json()["height"]
    pid = clients[0].sign("gov.proposal", {"name": name, "action": action, "expires_height": height + 1000})
    clients[0].wait_committed([pid])
    votes = [c.sign("gov.vote", {"proposal": pid, "yes": True}) for c in voters]
    clients[0].wait_committed(votes)
    doc = clients[0].http.get("/v1/governance").json()
    (p,) = [p for p in doc["proposals"] if p["id"] == pid]
    if p["status"] != "passed":
        raise SystemExit(f"error: proposal {name} is {p['status']} ({p['reason']})")
    console.print(f"  proposal [bold]{name}[/] passed at height {p['decided_height']} "
                  f"({len(voters)} of {len(doc['validators'])} validators voted yes)")
    return p["decided_height"]


def join_live(base: Path, clients: list[Client]) -> None:
    """A fifth branch joins the running network by on-chain governance: it starts
    outside (its connections refused), is admitted, syncs, is voted into the
    validator set and signs blocks."""
    console.rule("a fifth branch joins, live (on-chain governance)")
    home, public_key = devnet.join(base, "branch-04")
    newcomer = Client(home)
    branch_id = newcomer.http.get("/v1/status").json()["branch_id"]
    console.print(f"  Xinjiekou Branch (branch-04) started; not a member yet, so every peer refuses it "
                  f"(height {newcomer.http.get('/health').json()['height']})")
    pass_proposal(clients, "admit-xinjiekou", {"kind": "admit_member", "name": "Xinjiekou Branch", "public_key": public_key},
                  clients[:3])
    top = clients[0].http.get("/health").json()["height"]
    wait_for("the new branch syncs", lambda: newcomer.http.get("/health").json()["height"] >= top)
    console.print(f"  the allowlists follow the chain: branch-04 connected and synced to height {top}")
    newcomer.wait_committed([newcomer.sign("branch.profile", profile_for(4))])
    console.print("  branch-04 published its profile")
    decided = pass_proposal(clients, "xinjiekou-validates", {"kind": "set_power", "branch_id": branch_id, "power": 10},
                            clients[:3])

    def signed_a_block() -> bool:
        h = clients[0].http.get("/health").json()["height"]
        return h >= decided + 2 and any(
            s["validator"] == branch_id
            for s in clients[0].http.get(f"/v1/blocks/{h}").json()["certificate"]["signatures"])

    wait_for("the new validator signs a block", signed_a_block)
    vals = clients[0].http.get("/v1/validators").json()["validators"]
    console.print(f"  from height {decided + 2} the set has {len(vals)} validators; branch-04's signature is in the "
                  f"latest commit certificate")


def _yield(offer: dict) -> str:
    inv = (offer.get("terms") or {}).get("investment")
    return f"{bp(inv['yield_min_bp'])} .. {bp(inv['yield_max_bp'])}" if inv else "-"


def run(base: Path, seconds: float) -> None:
    t0 = time.monotonic()
    console.rule("[bold]branchnet demo: 4 bank branches, one shared ledger, a fifth joins")
    console.print(f"starting 4 branch nodes (separate processes) in {base} ...")
    homes = devnet.up(base, 4, quiet=True, consensus={"block_interval_ms": 100, "empty_block_interval_ms": 3000})
    genesis = Genesis.loads(homes[0].genesis.read_bytes())
    clients = [Client(h) for h in homes]
    console.print(f"chain [bold]{genesis.chain_id}[/], genesis {genesis.hash.hex()[:16]}")
    console.print(f"validators ({len(genesis.validators)}): " + ", ".join(v.name for v in genesis.validators))
    explorer = f"{clients[0].url}/explorer/"
    console.print(f"explorer: [bold]{explorer}[/] (any node serves one; it verifies every answer in your browser "
                  f"against the genesis file, whose hash is {genesis.hash.hex()})")
    stop = threading.Event()
    threading.Thread(target=watch_blocks, args=(clients[0].url, stop), daemon=True).start()

    publish(clients)
    publish_quality(clients)

    console.rule("questions, answered with proofs (trusting only the genesis file)")
    verified_table(clients[2], genesis, "Which branches offer foreign exchange now, at what fee?", "fx",
                   [("fee", fmt_fee), ("wait", lambda s: f"{s['status']['wait_minutes']} min" if s["status"] else "-")])
    verified_table(clients[2], genesis, "Which wealth products are on sale, at what risk and expected yield (never guaranteed)?", "wealth",
                   [("product", lambda s: s["offer"]["title"]), ("risk", lambda s: f"R{s['offer']['risk_level']}"),
                    ("expected yield", lambda s: _yield(s["offer"])),
                    ("sold for", lambda s: s["offer"]["issuer"] or "own product"), ("fee", fmt_fee)])
    verified_table(clients[2], genesis, "The lowest 12-month loan rate in Guangdong (CN-GD)",
                   {"category": "loan", "term_months": 12, "region": "CN-GD", "sort": "rate"},
                   [("product", lambda s: s["offer"]["title"]), ("annual rate", lambda s: bp(s["rate_bp"])),
                    ("term", lambda s: "{term_min_months}-{term_max_months} months".format(**s["offer"]["terms"]["loan"]))])
    verified_table(clients[2], genesis, "The best 3-month deposit rate", {"category": "deposit", "term_months": 3, "sort": "-rate"},
                   [("3-month rate", lambda s: bp(s["rate_bp"])),
                    ("insured", lambda s: "yes" if s["offer"]["terms"]["deposit"]["insured"] else "no")], limit=3)
    quality_ranking(clients[2], genesis, QUARTER[-1])
    join_live(base, clients)
    heights = [r["height"] for r in devnet.status(base)]
    console.print(f"node heights: {heights} — every node holds the same chain")
    remaining = seconds - (time.monotonic() - t0)
    console.print(f"the records above are in the explorer, verified: [bold]{explorer}[/] "
                  f"(#/services?category=fx, #/branch/…; --seconds N keeps the network up longer)")
    if remaining > 0:
        console.print(f"watching blocks for {remaining:.0f} more seconds (Ctrl-C to stop) ...")
        time.sleep(remaining)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=45, help="total run time before stopping (default 45)")
    ap.add_argument("--dir", type=Path, help="devnet directory (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the devnet directory afterwards")
    args = ap.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="branchnet-demo-"))
    try:
        run(base, args.seconds)
    except KeyboardInterrupt:
        console.print("\ninterrupted")
    finally:
        devnet.down(base, quiet=True)
        console.print("all nodes stopped")
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
