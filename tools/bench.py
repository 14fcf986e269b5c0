"""End-to-end benchmark: 4 validator processes under load, then block sync.

    python -m tools.bench [--duration S] [--rate R] [--sync-blocks N] [--json]

Load phase: four validators run as separate OS processes (``python -m
node.daemon``) on 127.0.0.1. A load generator — a bare libp2p peer holding the
key of a genesis member branch, as a branch node with many clients would —
pushes pre-signed ``service.offer`` records over the records protocol
(``/branchnet/{chain}/records/1``) in 64 KiB batches at ``--rate`` records/s for
``--duration`` seconds, each batch to one validator in turn, which forwards it to
its upcoming proposers (what node/ingest.py does for a node that is not a
validator; PROTOCOL.md §11.2), and timestamps the
commit announcements it receives. Afterwards each validator's database says
which block holds which record, which gives:

* committed records/s over the load window, blocks/s;
* record-to-finality latency (p50/p95/p99): from the moment the record's batch
  was pushed to the moment the generator heard the commit announcement of
  its block (so it includes gossip both ways);
* CPU seconds and peak RSS of each validator process (from /proc);
* the machine's bound: raw Ed25519 verifications/s with 2 threads, divided by
  the number of validators that each verify every record, and ``bound_ratio``:
  committed records/s over that bound, measured in the same run so that it
  compares across machines.

Sync phase: a chain of ``--sync-blocks`` certified blocks is written into one
validator's home; a fresh observer syncs it over libp2p, verifying every
certificate and record; blocks/s and records/s are printed.

A script, not a test; nothing here is asserted. Set BRANCHNET_PROFILE=DIR to
have each validator write a cProfile of its run into DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from protocol import wire
from node.config import Home
from node.keyfile import load_key
from tools.netsetup import set_config, create_network
from node.p2p.host import peer_id_of
from node.p2p.network import P2PConfig, P2PNetwork
from node.home import read_psk
from node.store import ChainReader, Store
from protocol.genesis import Genesis
from protocol.ledger import LedgerState, build_block
from protocol.records import Record
from protocol.schema import EquipmentStatus, Fee, OpeningHours, ServiceOffer, ServiceStatus
from protocol.votes import PRECOMMIT, CommitCertificate, Vote
from tools.bench_protocol import run as protocol_bench

N_VALIDATORS = 4
BATCH_INTERVAL = 0.1  # seconds between the load generator's batches
# a bound, not a speed: node start alone took 10-12 s at load average 9, and make test's bench
# runs failed there with 60 s for a whole network to start and connect
NETWORK_UP_TIMEOUT = 180
BENCH_PARAMS = {"timeout_propose_ms": 3000, "timeout_prevote_ms": 1000, "timeout_precommit_ms": 1000, "timeout_delta_ms": 500}


def sample_offer(i: int) -> ServiceOffer:
    return ServiceOffer(f"svc-{i}", "fx", "Foreign exchange", "Cash exchange for 20 currencies at the counter",
                        ("counter",), (OpeningHours(0, 540, 1020),), (Fee("Commission", 500, "CNY", "per_transaction"),),
                        0, "own", "", ("wheelchair",), 0)


STATUS_BRANCHES, STATUS_SERVICES = 50, 20


def workload_records(workload: str, keys: list, chain_id: str, total: int) -> list[Record]:
    """The records the generator sends, signed up front.

    ``offers``: one branch publishes a new service per record, so its state grows by
    one entry per record for the whole run (the worst case for the state root).
    ``status``: 50 branches offer 20 services each, then publish live status updates
    of them round-robin, so the state stays at 1,000 offers + 1,000 statuses (closer
    to how branches really publish).
    """
    now = int(time.time() * 1000)
    if workload == "offers":
        return [Record.create(keys[0], chain_id, 1, now, sample_offer(i)) for i in range(total)]
    out = []
    states = ("open", "paused", "closed")
    for k in range(total):
        branch, service = k % STATUS_BRANCHES, (k // STATUS_BRANCHES) % STATUS_SERVICES
        rnd = k // (STATUS_BRANCHES * STATUS_SERVICES)  # round 0 offers, then status updates
        if rnd == 0:
            body = sample_offer(service)
            seq = 1
        else:
            body = ServiceStatus(f"svc-{service}", states[rnd % 3], rnd % 60, (EquipmentStatus("atm-1", rnd % 2 == 0),))
            seq = rnd
        out.append(Record.create(keys[branch], chain_id, seq, now, body))
    return out


def proc_stats(pid: int) -> tuple[float, float]:
    """(cpu seconds, peak RSS MB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def start_daemon(home: Home, log_name: str = "node.log") -> subprocess.Popen:
    log = open(home.path / log_name, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "node.daemon", "--home", str(home.path)],
                                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    finally:
        log.close()


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def generator_network(gen_home: Home, validator_ids: set[str]) -> P2PNetwork:
    """The load generator's libp2p peer: ``gen_home``'s member key and the network's PSK,
    dialling only the validators."""
    config = gen_home.load_config()
    return P2PNetwork(load_key(gen_home.key), P2PConfig(
        listen_addrs=tuple(config.p2p.listen), psk=read_psk(gen_home.psk(config)),
        persistent_peers=tuple(a for a in config.p2p.peers if a.rsplit("/p2p/", 1)[1] in validator_ids),
        max_gossip_message_size=wire.MAX_GOSSIP_BYTES + 1024))


async def start_listening(nursery: trio.Nursery, net: P2PNetwork, genesis: Genesis, announced: dict[int, float]) -> None:
    """Run ``net`` and note in ``announced`` when each height's commit announcement is
    first heard (time.monotonic()); return once every validator is connected and the
    first block (a heartbeat) was announced: the network is up."""
    await nursery.start(net.run)
    announcements = await net.subscribe(wire.Topics.of(genesis.chain_id).blocks)

    async def listen() -> None:
        async for _peer, data in announcements:
            height, _ = wire.decode_new_block(data)
            announced.setdefault(height, time.monotonic())

    nursery.start_soon(listen)
    with trio.fail_after(NETWORK_UP_TIMEOUT):
        await net.wait_connected(N_VALIDATORS, timeout=NETWORK_UP_TIMEOUT)
        while not announced:
            await trio.sleep(0.1)
    await trio.sleep(0.5)


# ------------------------------------------------------------------ load phase


async def load_phase(base: Path, duration: float, rate: int, max_block_records: int, workload: str = "offers") -> dict:
    members = 1 if workload == "offers" else STATUS_BRANCHES  # the generator's home is the first member
    homes = create_network(base / "load", N_VALIDATORS, observers=members, fixed_ports=True, params=BENCH_PARAMS,
                           observer_links=N_VALIDATORS,  # the generator pushes to each validator in turn
                           consensus={"block_interval_ms": 50, "empty_block_interval_ms": 2000, "max_block_records": max_block_records})
    for h in homes:
        set_config(h, "api", "enabled", h is homes[0])  # one API, to read p2p statistics at the end
    validators, gen_home = homes[:N_VALIDATORS], homes[N_VALIDATORS]
    validator_ids = {peer_id_of(load_key(h.key).public_key.raw) for h in validators}
    for h in validators:  # validators dial each other; the generator dials them (other members never run)
        peers = h.load_config().p2p.peers
        set_config(h, "p2p", "peers", [a for a in peers if a.rsplit("/p2p/", 1)[1] in validator_ids])
    genesis = Genesis.loads(gen_home.genesis.read_bytes())
    total = int(rate * duration)
    print(f"signing {total} records ...", file=sys.stderr)
    records = workload_records(workload, [load_key(h.key) for h in homes[N_VALIDATORS:]], genesis.chain_id, total)
    raws = [r.raw for r in records]

    procs = [start_daemon(h) for h in validators]
    net = generator_network(gen_home, validator_ids)
    sent_at: list[float] = [0.0] * total
    announced: dict[int, float] = {}
    result: dict = {}
    try:
        async with trio.open_nursery() as nursery:
            await start_listening(nursery, net, genesis, announced)
            print(f"pushing {total} records at {rate}/s for {duration}s ...", file=sys.stderr)
            validator_peers = sorted(validator_ids)
            limiters = {p: trio.CapacityLimiter(8) for p in validator_peers}  # batches in flight per validator
            push_protocol = wire.records_protocol(genesis.chain_id)
            push_failures = 0

            async def push(peer: str, data: bytes) -> None:
                nonlocal push_failures
                async with limiters[peer]:
                    try:
                        status, _ = wire.decode_response(await net.request(peer, push_protocol, data, timeout=30))
                        push_failures += status != wire.OK
                    except Exception:
                        push_failures += 1

            cpu0 = [proc_stats(p.pid)[0] for p in procs]
            gen_cpu0 = time.process_time()
            t0 = time.monotonic()
            i = batches = 0
            async with trio.open_nursery() as pushes:
                while i < total:
                    # like a branch node with many clients: one batch per 100 ms (or per 64 KiB),
                    # pushed as node/ingest.py does for a node that is not a validator
                    elapsed = time.monotonic() - t0  # (trio's own clock has another origin: never mix them)
                    await trio.sleep((int(elapsed / BATCH_INTERVAL) + 1) * BATCH_INTERVAL - elapsed)
                    due = min(int((time.monotonic() - t0) * rate), total)
                    while i < due:
                        batch, size = [], 3
                        while i < due and size + len(raws[i]) + 3 <= wire.MAX_RECORD_BATCH_BYTES:
                            batch.append(raws[i])
                            size += len(raws[i]) + 3
                            i += 1
                        now = time.monotonic()
                        for j in range(i - len(batch), i):
                            sent_at[j] = now
                        # to one validator in turn, which forwards to its upcoming proposers
                        pushes.start_soon(push, validator_peers[batches % len(validator_peers)], wire.encode_records(batch))
                        batches += 1
            t_sent = time.monotonic()
            # drain: wait until committed or 30 s without progress
            store = ChainReader.open(validators[0].db, genesis)  # read-only, beside the running node
            last, last_change = -1, time.monotonic()
            while time.monotonic() - last_change < 15:
                n = store._read("SELECT COUNT(*) FROM records")[0][0]
                if n >= total:
                    break
                if n != last:
                    last, last_change = n, time.monotonic()
                await trio.sleep(0.25)
            t_end = time.monotonic()
            stats = [proc_stats(p.pid) for p in procs]
            gen_cpu = time.process_time() - gen_cpu0
            try:
                import httpx

                status = httpx.get(f"http://{validators[0].load_config().api.listen}/v1/status", timeout=5).json()
                p2p = status["p2p"]
                result["node0_gossip"] = p2p["gossip"]
                result["generator_push_failures"] = push_failures
                result["node0_ingest"] = status["ingest"]
                result["node0_streams"] = {k: p2p["streams"][k] for k in ("requests_sent", "requests_served")}
            except Exception as exc:  # diagnostics only
                result["node0_gossip"] = f"unavailable: {exc}"
            rows = store._read("SELECT r.hash, r.height FROM records r")
            block_rows = store._read("SELECT height, num_records FROM blocks ORDER BY height")
            late_rounds = store._read("SELECT COUNT(*) FROM blocks WHERE round > 0")[0][0]
            store.close()
            nursery.cancel_scope.cancel()
    finally:
        stop(procs)
    index = {r.hash: k for k, r in enumerate(records)}
    latencies, committed_times, committed = [], [], 0
    for h, height in rows:
        k = index.get(h)
        if k is None:
            continue
        committed += 1  # in validator 0's store
        if height in announced:  # (an announcement is gossip: it can be lost; then no latency sample)
            latencies.append((announced[height] - sent_at[k]) * 1000)
            committed_times.append(announced[height])
    window_end = max(committed_times, default=t_end)
    load_blocks = [h for h, n in block_rows if n > 0]
    result.update({
        "offered_records": total,
        "offered_rate": rate,
        "committed_records": committed,
        "latency_samples": len(latencies),
        "committed_records_per_s": round(committed / max(window_end - t0, 1e-9), 1),
        "publish_seconds": round(t_sent - t0, 2),
        "finality_p50_ms": round(percentile(latencies, 0.50), 1),
        "finality_p95_ms": round(percentile(latencies, 0.95), 1),
        "finality_p99_ms": round(percentile(latencies, 0.99), 1),
        "blocks_with_records": len(load_blocks),
        "blocks_per_s": round(len(load_blocks) / max(window_end - t0, 1e-9), 2),
        "blocks_decided_after_round_0": late_rounds,
        "mean_records_per_block": round(statistics.mean([n for h, n in block_rows if n > 0]), 1) if load_blocks else 0,
        "cpu_s_per_node": [round(s[0] - c, 1) for s, c in zip(stats, cpu0)],
        # what one validator spends per committed record, all included (network, checks, store)
        "cpu_ms_per_record_per_node": round(statistics.mean(s[0] - c for s, c in zip(stats, cpu0)) * 1000 / max(committed, 1), 3),
        "generator_cpu_s": round(gen_cpu, 1),
        "peak_rss_mb_per_node": [round(s[1], 1) for s in stats],
        "peak_rss_mb": round(max(s[1] for s in stats), 1),
    })
    return result


# ------------------------------------------------------------------ sync phase


def write_chain(home: Home, genesis: Genesis, keys: list, n_blocks: int, records_per_block: int, member_keys: list,
                workload: str = "offers") -> int:
    store = Store(home.db, genesis)
    store._db.execute("PRAGMA synchronous=OFF")  # bulk generation only
    state = LedgerState(genesis)
    prepared, n_records = [], 0
    t = genesis.genesis_time_ms
    stream = iter(workload_records(workload, member_keys, genesis.chain_id, n_blocks * records_per_block))
    for h in range(1, n_blocks + 1):
        recs = [next(stream) for _ in range(records_per_block)]
        block, tx, rejected = build_block(state, height=h, round=0, time_ms=t + h, proposer=keys[h % len(keys)].branch_id, candidates=recs)
        assert not rejected
        cert = CommitCertificate.from_votes([Vote.create(k, genesis.chain_id, PRECOMMIT, h, 0, block.hash) for k in keys[:3]])
        prepared.append(store.prepare_block(block, cert, tx))
        tx.commit()
        n_records += len(block.records)
        if len(prepared) >= 500:
            store.write_prepared(prepared)
            prepared = []
    store.write_prepared(prepared)
    store.close()
    return n_records


async def sync_phase(base: Path, n_blocks: int, records_per_block: int, workload: str = "offers") -> dict:
    writers = 1 if workload == "offers" else STATUS_BRANCHES
    homes = create_network(base / "sync", N_VALIDATORS, observers=1 + writers, fixed_ports=True, params=BENCH_PARAMS,
                           consensus={"empty_block_interval_ms": 3_600_000})
    for h in homes:
        set_config(h, "api", "enabled", False)
        set_config(h, "log", "level", "warning")
        set_config(h, "p2p", "peers", [])
    genesis = Genesis.loads(homes[0].genesis.read_bytes())
    keys = [load_key(h.key) for h in homes[:N_VALIDATORS]]
    source, fresh, writers = homes[0], homes[N_VALIDATORS], homes[N_VALIDATORS + 1:]
    print(f"writing a chain of {n_blocks} blocks ...", file=sys.stderr)
    n_records = write_chain(source, genesis, keys, n_blocks, records_per_block, [load_key(h.key) for h in writers], workload)
    # the source serves as a lone validator (it cannot make progress alone, which is fine)
    src_cfg = source.load_config()
    src_addr = f"{src_cfg.p2p.listen[0]}/p2p/{peer_id_of(keys[0].public_key.raw)}"
    set_config(fresh, "p2p", "peers", [src_addr])
    proc = start_daemon(source)
    try:
        from node.node import BranchNode

        node = BranchNode(fresh)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            with trio.fail_after(NETWORK_UP_TIMEOUT):
                await node.net.wait_connected(1, timeout=NETWORK_UP_TIMEOUT)
            t0 = time.monotonic()
            with trio.fail_after(600):  # synced: every block, and the records' search indexes a long sync builds last
                while node.chain.height < n_blocks or not node.sync.statistics()["records_indexed"]:
                    await trio.sleep(0.05)
            dt = time.monotonic() - t0
            nursery.cancel_scope.cancel()
    finally:
        stop([proc])
    return {"sync_blocks": n_blocks, "sync_records": n_records, "sync_seconds": round(dt, 2),
            "sync_blocks_per_s": round(n_blocks / dt, 1), "sync_records_per_s": round(n_records / dt, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of offered load (default 20)")
    ap.add_argument("--rate", type=int, default=3000, help="offered records/s (default 3000)")
    ap.add_argument("--max-block-records", type=int, default=5000)
    ap.add_argument("--workload", choices=("offers", "status"), default="offers",
                    help="records of the load phase and of the synced chain. offers: one branch, a new service per "
                         "record (state grows all run; default); status: 50 branches x 20 services, then live "
                         "status updates (state stays small)")
    ap.add_argument("--sync-blocks", type=int, default=10_000)
    ap.add_argument("--sync-records-per-block", type=int, default=1)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-sync", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    base = Path(tempfile.mkdtemp(prefix="branchnet-bench-"))
    out: dict = {}
    try:
        proto = protocol_bench(2000, 1)
        out["verify_per_s_2t"] = proto["verify_per_s_2t"]
        out["verify_bound_records_per_s"] = round(proto["verify_per_s_2t"] / N_VALIDATORS, 1)
        if not args.skip_load:
            out["workload"] = args.workload
            out.update(trio.run(load_phase, base, args.duration, args.rate, args.max_block_records, args.workload))
            # how close the network gets to what the machine's signature checks allow (issue 19)
            out["bound_ratio"] = round(out["committed_records_per_s"] / out["verify_bound_records_per_s"], 3)
        if not args.skip_sync:
            out.update(trio.run(sync_phase, base, args.sync_blocks, args.sync_records_per_block, args.workload))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print_result(out, args.json)
    return 0


def print_result(out: dict, as_json: bool) -> None:
    """A benchmark's result: one JSON object, or one aligned ``key  value`` line per field."""
    if as_json:
        print(json.dumps(out))
        return
    width = max(len(k) for k in out)
    for k, v in out.items():
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    sys.exit(main())
