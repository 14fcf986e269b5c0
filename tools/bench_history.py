"""Measure a node on a long history made by ``tools.gen_history`` (issue 19 item 3).

    python -m tools.bench_history --dir DIR [--queries N] [--proofs N] [--seed S]
                                  [--sync-timeout S] [--skip-sync] [--json]

Starts ``python -m node.daemon`` on ``DIR/branch-00`` (127.0.0.1 only, no
peers: the other three validators never run, so the chain stays as generated)
and measures, through its HTTP API with one keep-alive client:

* RSS (VmRSS) after start, and after the queries (with the peak, VmHWM), and
  its CPU while idle (``--idle`` seconds);
* the floor: ``GET /health`` round trips;
* service search (``GET /v1/services``) latency p50/p99 over a fixed, seeded
  list of typical filters, each kind also on its own: by branch, category,
  category + status, region, region + category, fee basis + max fee, risk
  level, status, free text, and deep pages (``offset``) with and without a
  category;
* history search (``GET /v1/records``: by branch, by kind, by service, by
  category, following ``next_cursor``, and a cursor deep in history) p50/p99;
* record proof (``GET /v1/records/{hash}/proof``) p50/p99 for seeded records;
* database bytes per committed record.

Then a fresh observer (a new key, allowed through ``POST /v1/observers``, its
own home in a temporary directory) starts as a process, syncs the whole chain
from that node over libp2p, verifying every certificate, signature and state
root, and the sync's records/s and blocks/s are reported (from its first
answered ``/health``, polled every 0.2 s, to the last height and the records' search
indexes, which a long sync builds at its end, built), with its RSS then
and ``SETTLE_SECONDS`` later (its last range written, idle: ``observer_rss_mb_settled``),
and how long those ``/health`` answers took (its API's latency while it syncs).
Every wait is bounded; both processes are stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from node.config import Home
from node.home import init_home, read_psk
from node.keyfile import load_key
from node.p2p.host import peer_id_of
from protocol.field_types import CATEGORIES, STATUSES
from tools.bench import stop
from tools.history_mix import REGIONS, TITLES, Mix
from tools.netsetup import free_ports, set_config

WARMUP = 10
SETTLE_SECONDS = 10


def rss_mb(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mb": out.get("VmRSS", 0.0), "peak_rss_mb": out.get("VmHWM", 0.0)}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(percentile(ms, 0.5), 2), "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms), 2) if ms else None}


def start_daemon(home: Home) -> subprocess.Popen:
    with open(home.path / "bench_history.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "node.daemon", "--home", str(home.path)], stdout=log,
                                stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))




def wait_health(client: httpx.Client, proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the node exited with {proc.returncode} (see its bench_history.log)")
        try:
            return client.get("/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"no /health answer within {timeout} s")


# ------------------------------------------------------------------ the queries


def service_queries(rng: random.Random, mix: Mix, branch_ids: list[bytes], n: int) -> list[tuple[str, dict]]:
    """``n`` typical /v1/services filters, drawn from ``rng`` (so the same seed asks the same)."""
    risky = ("loan", "wealth", "agency")
    words = sorted({w.casefold() for title, _ in TITLES.values() for w in title.split() if len(w) > 5})
    kinds = {
        "branch": lambda: {"branch": rng.choice(branch_ids).hex()},
        "category": lambda: {"category": rng.choice(CATEGORIES)},
        "category_status": lambda: {"category": rng.choice(CATEGORIES), "status": rng.choice(STATUSES)},
        "region": lambda: {"region": rng.choice(REGIONS)},
        "region_prefix_category": lambda: {"region": rng.choice(REGIONS)[:5], "category": rng.choice(CATEGORIES)},
        "fee": lambda: {"category": rng.choice(("deposit", "transfer", "fx")), "fee_basis": "per_transaction",
                        "max_fee": rng.choice((500, 2000, 10_000))},
        "risk": lambda: {"category": rng.choice(risky), "risk_level": rng.randint(1, 5)},
        "status": lambda: {"status": rng.choice(("paused", "closed"))},
        "text": lambda: {"q": rng.choice(words)},
        "category_deep_page": lambda: {"category": rng.choice(CATEGORIES), "offset": rng.randrange(0, 3000, 20)},
        "deep_page": lambda: {"offset": rng.randrange(0, 30_000, 20)},
    }
    names = sorted(kinds)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        out.append((name, {"limit": 20} | kinds[name]()))
    rng.shuffle(out)
    return out


def timed_get(client: httpx.Client, path: str, params: dict | None = None) -> tuple[float, dict]:
    t = time.perf_counter()
    r = client.get(path, params=params, timeout=30)
    ms = (time.perf_counter() - t) * 1000
    r.raise_for_status()
    return ms, r.json()


def measure_queries(client: httpx.Client, db: Path, mix: Mix, branch_ids: list[bytes], args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    floor = [timed_get(client, "/health")[0] for _ in range(50)]  # the HTTP round trip alone, on this machine now
    queries = service_queries(rng, mix, branch_ids, args.queries)
    for _name, params in queries[:WARMUP]:
        timed_get(client, "/v1/services", params)
    by_kind: dict[str, list[float]] = {}
    totals: dict[str, int] = {}
    for name, params in queries:
        ms, doc = timed_get(client, "/v1/services", params)
        by_kind.setdefault(name, []).append(ms)
        totals[name] = max(totals.get(name, 0), doc["total"])
    all_ms = [ms for v in by_kind.values() for ms in v]
    services = summary(all_ms) | {"by_kind": {k: summary(v) | {"max_total": totals[k]} for k, v in sorted(by_kind.items())}}

    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        top = conn.execute("SELECT MAX(rowid) FROM records").fetchone()[0]
        top_height = conn.execute("SELECT MAX(height) FROM blocks").fetchone()[0]
        hashes = [row[0] for rowid in (rng.randint(1, top) for _ in range(args.proofs))
                  for row in conn.execute("SELECT hash FROM records WHERE rowid=?", (rowid,))]
    finally:
        conn.close()
    history: list[float] = []
    for i in range(args.queries // 3):
        which = i % 5
        if which == 4:  # a page deep in history, as a client that paged far back asks for it
            params = {"kind": "service.status", "cursor": f"{rng.randint(1, top_height)}:0"}
            ms, _ = timed_get(client, "/v1/records", params | {"limit": 20})
            history.append(ms)
            continue
        if which == 0:
            params = {"branch": rng.choice(branch_ids).hex()}
        elif which == 1:
            params = {"kind": rng.choice(("service.offer", "service.status", "branch.profile"))}
        elif which == 2:
            b = rng.randrange(mix.branches)
            params = {"branch": branch_ids[b].hex(), "service": f"{CATEGORIES[b % len(CATEGORIES)].replace('_', '-')}-00"}
        else:
            params = {"category": rng.choice(CATEGORIES)}
        ms, doc = timed_get(client, "/v1/records", params | {"limit": 20})
        history.append(ms)
        if doc["next_cursor"] and which != 2:  # the next page too
            ms, _ = timed_get(client, "/v1/records", params | {"limit": 20, "cursor": doc["next_cursor"]})
            history.append(ms)

    proofs = []
    for h in hashes:
        ms, doc = timed_get(client, f"/v1/records/{h.hex()}/proof")
        proofs.append(ms)
    return {"health_floor": summary(floor), "service_search": services, "history_search": summary(history),
            "proof": summary(proofs)}


# ------------------------------------------------------------------ the fresh observer


def sync_observer(base: Path, source: Home, source_proc_api: httpx.Client, height: int, records: int,
                  timeout: float, log_level: str = "warning") -> dict:
    p2p_port, api_port = free_ports(2)
    source_cfg = source.load_config()
    home, key = init_home(base / "observer", moniker="fresh-observer", mode="observer",
                          p2p_listen=f"/ip4/127.0.0.1/tcp/{p2p_port}", api_listen=f"127.0.0.1:{api_port}",
                          psk_hex=read_psk(source.psk(source_cfg)))
    home.genesis.write_bytes(source.genesis.read_bytes())
    set_config(home, "p2p", "peers", [f"{source_cfg.p2p.listen[0]}/p2p/{peer_id_of(load_key(source.key).public_key.raw)}"])
    set_config(home, "log", "level", log_level)
    set_config(home, "api", "explorer", False)
    token = source.api_token.read_text().strip()
    r = source_proc_api.post("/v1/observers", json={"peer_id": peer_id_of(key.public_key.raw), "allow": True},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    t_spawn = time.monotonic()
    proc = start_daemon(home)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}") as client:
            wait_health(client, proc, 60)
            t0, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
            deadline, last, t_first = t0 + timeout, 0, None
            health_ms: list[float] = []  # how long the syncing node took to answer (its API while it syncs)
            health_timeouts = 0
            while last < height:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the observer reached height {last} of {height} in {timeout} s")
                if proc.poll() is not None:
                    raise RuntimeError(f"the observer exited with {proc.returncode} (see {home.path}/bench_history.log)")
                try:  # a node that is busy committing may answer late: that is not a failure
                    asked = time.perf_counter()
                    last = client.get("/health", timeout=10).json()["height"]
                    health_ms.append((time.perf_counter() - asked) * 1000)
                except httpx.TimeoutException:
                    health_timeouts += 1
                    continue
                if last and t_first is None:
                    t_first = time.monotonic()
                time.sleep(0.2)
            # A long sync writes without the records' search indexes and builds them at its
            # end (node/sync/catchup.py): the sync is done once they are built.
            t_height = time.monotonic()
            while not client.get("/v1/status", timeout=10).json()["sync"]["records_indexed"]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the observer's records were not indexed {timeout} s after it started")
                time.sleep(0.2)
            dt = time.monotonic() - t0
            index_s = time.monotonic() - t_height
            cpu = cpu_seconds(proc.pid) - cpu0
            mem = rss_mb(proc.pid)
            time.sleep(SETTLE_SECONDS)  # its last range written, the node idle
            settled = rss_mb(proc.pid)
    finally:
        stop([proc])
    return {"blocks": height, "records": records, "seconds": round(dt, 2), "seconds_from_spawn": round(time.monotonic() - t_spawn, 2),
            "records_per_s": round(records / dt, 1), "blocks_per_s": round(height / dt, 1),
            "first_block_after_s": round((t_first or t0) - t0, 2),
            "indexes_built_after_last_block_s": round(index_s, 2),
            "records_per_s_after_first_block": round(records / max(dt - ((t_first or t0) - t0), 1e-9), 1),
            # CPU the observer spent (all its threads): what the sync costs whatever else runs on the machine
            "observer_cpu_s": round(cpu, 1), "records_per_observer_cpu_s": round(records / max(cpu, 1e-9), 1),
            "observer_rss_mb": mem["rss_mb"], "observer_rss_mb_settled": settled["rss_mb"],
            "health_during_sync": {**summary(health_ms), "over_10_s": health_timeouts},
            "observer_peak_rss_mb": mem["peak_rss_mb"]}


# ------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> dict:
    base = Path(args.dir)
    manifest = json.loads((base / "history.json").read_text())
    home = Home(base / manifest["home"])
    mix = Mix(manifest["seed"], manifest["branches"])
    branch_ids = [mix.member_key(b).branch_id for b in range(mix.branches)]
    db_bytes = sum(p.stat().st_size for p in home.data.glob("node.db*"))
    p2p_port, api_port = free_ports(2)
    set_config(home, "p2p", "listen", [f"/ip4/127.0.0.1/tcp/{p2p_port}"])
    set_config(home, "p2p", "peers", [])  # the other validators never run: the chain stays as generated
    set_config(home, "api", "enabled", True)
    set_config(home, "api", "listen", f"127.0.0.1:{api_port}")
    set_config(home, "log", "level", "warning")
    out: dict = {"dir": str(base), "branches": mix.branches}
    t_spawn = time.monotonic()
    proc = start_daemon(home)
    tmp = Path(tempfile.mkdtemp(prefix="branchnet-bench-history-"))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}") as client:
            height = wait_health(client, proc, args.start_timeout)["height"]
            out["start_seconds"] = round(time.monotonic() - t_spawn, 2)
            conn = sqlite3.connect(f"{home.db.resolve().as_uri()}?mode=ro", uri=True)
            records = conn.execute("SELECT COALESCE(SUM(num_records), 0) FROM blocks").fetchone()[0]
            conn.close()
            out |= {"height": height, "records": records, "db_bytes": db_bytes,
                    "db_bytes_per_record": round(db_bytes / max(records, 1), 1)}
            out["after_start"] = rss_mb(proc.pid)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.idle)  # what the node spends alone (a lone validator of four keeps trying rounds)
            out["idle_cpu_percent"] = round(100 * (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0), 1)
            if not args.skip_queries:
                out |= measure_queries(client, home.db, mix, branch_ids, args)
            out["after_queries"] = rss_mb(proc.pid)
            if not args.skip_sync:
                out["sync"] = sync_observer(tmp, home, client, height, records, args.sync_timeout, args.observer_log_level)
                out["after_sync"] = rss_mb(proc.pid)
    finally:
        stop([proc])
        if args.keep_observer:
            print(f"observer home kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_history", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="a directory made by python -m tools.gen_history")
    ap.add_argument("--queries", type=int, default=330, help="service searches (history searches: a third of it)")
    ap.add_argument("--proofs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--sync-timeout", type=float, default=1800.0)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured after start")
    ap.add_argument("--skip-sync", action="store_true")
    ap.add_argument("--skip-queries", action="store_true", help="only start the node and sync an observer from it")
    ap.add_argument("--keep-observer", action="store_true", help="keep the observer's home (and its log)")
    ap.add_argument("--observer-log-level", default="warning")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
