"""Scale benchmark: V validators and O observers as processes on 127.0.0.1 (issue 15).

    python -m tools.bench_scale --validators 16 --observers 48 [--idle 30] [--idle-windows N]
                                [--duration 60] [--rate 100] [--busy N] [--timeouts consortium|genesis]
                                [--dir DIR] [--json]

1. Creates a network (``node.testnet.create_network``: validators in a full mesh,
   each observer linked to two validators, round-robin; the consensus timeouts of
   ``--timeouts``, :data:`TIMEOUTS`) with one more observer
   that stays stopped until step 6, starts every other node as its own
   ``python -m node.daemon`` process and waits until each answers ``/health``
   and has committed a block.
2. **Idle**: CPU per node (from ``/proc``, as a share of one core and per height
   decided) over ``--idle`` seconds of heartbeat blocks only, and RSS; with
   ``--idle-windows N`` also for each of N equal windows of it (does it settle?).
3. **Load**: ``--rate`` records/s for ``--duration`` seconds through ``POST
   /v1/records/sign`` at observers picked at random (a ``service.offer`` of a
   new service each time); each submitting observer's ``/v1/events`` stream
   says when the record committed there: that is the latency.
4. Per height of the load window, from ``/v1/status`` and ``/metrics`` of every
   node: messages received (stream requests served plus gossip delivered),
   bytes on the wire, duplicate consensus votes dropped, and every message
   counter by kind (:data:`BREAKDOWN`: requests served and sent by protocol,
   gossip copies and deliveries by topic, pubsub RPCs, consensus messages in by
   path, kind and outcome, and out by kind), the mean over validators (and over
   observers) per height, for the idle window too; the round in which
   each height was decided, from the first validator's
   ``branchnet_commit_round`` histogram; the record pushes validators and
   observers sent, with the share that waited in queue or for the answer longer
   than each bound (``branchnet_record_push_seconds``).
5. CPU per node under load, peak RSS; for the whole network, idle and under load,
   the cores it keeps busy, and the CPU a height costs it at rest and a record beyond
   that (``network_cpu_s_per_height``, ``network_cpu_ms_per_record``: a height a second
   asks the first in cores, and the rate times the second).
6. **Fresh observer**: the held-back observer starts; the time until it has
   the height the validators had.

Every wait is bounded; every process is one this run started, stopped by its
pid (SIGTERM, then SIGKILL after 20 s). The network lives in a temporary
directory unless ``--dir`` names one (which must not exist).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from node.config import Home
from node.testnet import create_network
from protocol.genesis import Genesis
from tools.bench import BENCH_PARAMS, percentile, proc_stats, start_daemon, stop
from tools.chaos.clients import offer_body


# ------------------------------------------------------------------ HTTP


class Api:
    """JSON over HTTP/1.1 to one node's API (one connection per call: threads share it)."""

    def __init__(self, home: Home):
        config = home.load_config()
        host, port = config.api.listen.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.token = home.api_token.read_text().strip()

    def request(self, method: str, path: str, doc: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
            conn.request(method, path, body=json.dumps(doc).encode() if doc is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def get_json(self, path: str, timeout: float = 10.0) -> dict:
        status, body = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        return json.loads(body)

    def try_json(self, path: str) -> dict | None:
        try:
            return self.get_json(path, timeout=3.0)
        except (OSError, http.client.HTTPException, RuntimeError, ValueError):
            return None


class CommitWatcher(threading.Thread):
    """Reads one node's ``/v1/events`` and notes when each record hash committed there."""

    def __init__(self, api: Api):
        super().__init__(daemon=True)
        self.api = api
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        try:
            self._conn = http.client.HTTPConnection(self.api.host, self.api.port, timeout=60)
            self._conn.request("GET", "/v1/events", headers={"Authorization": f"Bearer {self.api.token}"})
            response = self._conn.getresponse()
            event = None
            while not self._stop.is_set():
                line = response.readline()
                if not line:
                    self.error = "stream ended"
                    return
                line = line.strip()
                if line.startswith(b":"):
                    self.connected.set()
                elif line.startswith(b"event: "):
                    event = line[7:]
                elif line.startswith(b"data: ") and event == b"record":
                    self.seen.setdefault(json.loads(line[6:])["hash"], time.monotonic())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not self._stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()
        if self._conn is not None and self._conn.sock is not None:
            try:
                self._conn.sock.shutdown(2)
            except OSError:
                pass


# ------------------------------------------------------------------ measurements


@dataclass
class Sample:
    """What every node's counters said at one moment."""

    at: float
    cpu: list[float]
    messages: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    duplicate_votes: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)  # connected peers per node (/v1/status)
    decided_by_round: dict[str, float] = field(default_factory=dict)  # validator 0: heights decided by round 0, 1, any
    breakdown: list[dict[str, float]] = field(default_factory=list)  # per node: message counters by kind (breakdown())
    sync: list[dict[str, int]] = field(default_factory=list)  # per node: block sync's counters (/v1/status "sync")


def _metric(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


BREAKDOWN = {  # metric -> how its labels name a counter in the breakdown
    "branchnet_p2p_requests_total": lambda lb: f"request {lb['direction']} {lb['protocol']}",
    "branchnet_gossip_messages_total": lambda lb: f"gossip {lb['stage']} {lb['topic']}",
    "branchnet_gossip_rpcs_total": lambda lb: f"pubsub rpcs {lb['direction']}",
    "branchnet_consensus_messages_received_total": lambda lb: f"consensus in {lb['via']} {lb['kind']} {lb['outcome']}",
    "branchnet_consensus_messages_sent_total": lambda lb: f"consensus out {lb['kind']}",
    "branchnet_record_push_seconds_bucket": lambda lb: f"{PUSH} {lb['stage']} {lb['le']}",
    "branchnet_record_push_failures_total": lambda lb: "record push failures",
    "branchnet_p2p_request_timeouts_total": lambda lb: "request timeouts",
}
SYNC_COUNTERS = ("polls", "quiet_polls", "announced_fetches", "deferred_wakes", "synced_blocks")
# The genesis's consensus timeouts. A network's timeouts are sized to it (the paper's
# liveness needs them longer than its real delays): 64 processes on two cores make a slow
# network, in which a proposer took over a second to build and send a block of a few
# hundred records, and the protocol's defaults failed rounds one after another
# (docs/PERFORMANCE.md, "Rounds that failed under load").
TIMEOUTS = {"consortium": BENCH_PARAMS, "genesis": {}}
PUSH = "record push seconds"  # cumulative histogram buckets in the breakdown, summarised by push_times()


def breakdown(text: str) -> dict[str, float]:
    """Every message counter of one node's /metrics, by protocol or topic and kind (see BREAKDOWN)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = BREAKDOWN.get(s.name)
            if name is not None:
                out[name(s.labels)] = s.value
    return out


def per_height(before: list[dict[str, float]], after: list[dict[str, float]], heights: int) -> dict[str, float]:
    """Mean over the given nodes of each counter's growth, per height; zeros left out."""
    keys = sorted({k for b in after for k in b if not k.startswith(PUSH)})
    out = {}
    for k in keys:
        mean = statistics.mean(b.get(k, 0) - a.get(k, 0) for a, b in zip(before, after)) / heights
        if mean >= 0.05:
            out[k] = round(mean, 1)
    return out


def sample(procs: list[subprocess.Popen], apis: list[Api]) -> Sample:
    out = Sample(time.monotonic(), [proc_stats(p.pid)[0] for p in procs])
    for api in apis:
        status = api.try_json("/v1/status") or {}
        p2p = status.get("p2p", {})
        out.messages.append(p2p.get("streams", {}).get("requests_served", 0) + p2p.get("gossip", {}).get("received", 0)
                            + p2p.get("gossip", {}).get("duplicates", 0))
        conns = p2p.get("connections", {})
        out.bytes.append(conns.get("bytes_sent", 0) + conns.get("bytes_received", 0))
        out.heights.append(status.get("height", 0))
        out.peers.append(status.get("peers", 0))
        out.sync.append({**{k: status.get("sync", {}).get(k, 0) for k in SYNC_COUNTERS},
                         "request_timeouts": p2p.get("streams", {}).get("request_timeouts", 0)})
        try:
            status_code, body = api.request("GET", "/metrics", timeout=5.0)
            text = body.decode() if status_code == 200 else ""
        except (OSError, http.client.HTTPException):
            text = ""
        out.breakdown.append(breakdown(text))
        out.duplicate_votes.append(int(_metric(text, "branchnet_rejected_total", {"source": "consensus", "reason": "duplicate_vote"})))
        if not out.decided_by_round:
            out.decided_by_round = {le: _metric(text, "branchnet_commit_round_bucket", {"le": le}) for le in ("0.0", "1.0", "+Inf")}
    return out


def grown(before: list[dict[str, float]], after: list[dict[str, float]], key: str) -> int:
    """How much one counter of the breakdown grew, summed over the given nodes."""
    return int(sum(b.get(key, 0) - a.get(key, 0) for a, b in zip(before, after)))


def push_times(before: list[dict[str, float]], after: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Record pushes the given nodes sent meanwhile, by stage (``queued``: waiting behind
    earlier pushes to the same validator; ``answered``: request to answer): how many,
    and the share that took longer than each bucket's bound."""
    out: dict[str, dict[str, float]] = {}
    for stage in ("queued", "answered"):
        grown = {}
        for key in {k for b in after for k in b if k.startswith(f"{PUSH} {stage} ")}:
            grown[key.rsplit(" ", 1)[1]] = sum(b.get(key, 0) - a.get(key, 0) for a, b in zip(before, after))
        total = grown.pop("+Inf", 0)
        if total:
            out[stage] = {"n": int(total), **{f"over_{le}_s": round(1 - n / total, 4)
                                            for le, n in sorted(grown.items(), key=lambda kv: float(kv[0]))}}
    return out


def quiet_polls(before: Sample, after: Sample, v: int) -> dict:
    """min, mean and max over the observers of the quiet polls they made between two samples."""
    return _split([b.get("quiet_polls", 0) - a.get("quiet_polls", 0) for a, b in zip(before.sync, after.sync)],
                  v).get("observers", {})


def node_sync(before: Sample, after: Sample, node: int) -> dict[str, float]:
    """One node's block sync counters, request timeouts (any request) and block announcements
    delivered, grown between two samples; how far it was behind at the second."""
    out = {k: after.sync[node].get(k, 0) - before.sync[node].get(k, 0) for k in (*SYNC_COUNTERS, "request_timeouts")}
    key = "gossip delivered /branchnet/blocks/1"
    out["announcements_delivered"] = after.breakdown[node].get(key, 0) - before.breakdown[node].get(key, 0)
    out["height_lag_at_end"] = max(after.heights) - after.heights[node]
    return out


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _split(values: list[float], v: int) -> dict:
    """min, mean and max over validators and over observers"""
    def summary(xs: list[float]) -> dict:
        return {"min": round(min(xs), 2), "mean": round(statistics.mean(xs), 2), "max": round(max(xs), 2)} if xs else {}
    return {"validators": summary(values[:v]), "observers": summary(values[v:])}


# ------------------------------------------------------------------ the run


def wait_for(what: str, condition, timeout: float, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {what} not within {timeout:.0f} s")
        time.sleep(interval)


def start_busy_loops(n: int, seconds: float) -> list[subprocess.Popen]:
    """``n`` processes that each spin on a core (other work on the machine), each ending
    by itself after ``seconds`` should we fail to stop it."""
    loop = f"import time\nend = time.monotonic() + {seconds:.0f}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(n)]


def idle_window(before: Sample, after: Sample, v: int) -> dict:
    """CPU per node over one idle window, as a share of a core and per height decided in it
    (the idle figure moves with how many heartbeat heights fall in the window)."""
    span = after.at - before.at
    heights = max(after.heights) - max(before.heights)
    cpu = [b - a for a, b in zip(before.cpu, after.cpu)]
    return {"seconds": round(span, 1), "heights": heights,
            "cpu_percent_per_node": _split([c * 100 / span for c in cpu], v),
            "cpu_ms_per_height_per_node": _split([c * 1000 / heights for c in cpu], v) if heights else None,
            # the whole network's: the cores it keeps busy, and the CPU a height costs it
            "network_cores": round(sum(cpu) / span, 3),
            "network_cpu_s_per_height": round(sum(cpu) / heights, 3) if heights else None}


def run(base: Path, v: int, o: int, idle: float, duration: float, rate: float, seed: int,
        empty_block_interval_ms: int | None = None, busy: int = 0, idle_windows: int = 1,
        timeouts: str = "consortium") -> dict:
    consensus = {"empty_block_interval_ms": empty_block_interval_ms} if empty_block_interval_ms else None
    homes = create_network(base, v, observers=o + 1, chain_id="bench-scale", consensus=consensus,
                           params=TIMEOUTS[timeouts])
    fresh_home, homes = homes[-1], homes[:-1]
    apis = [Api(h) for h in homes]
    config = homes[0].load_config().consensus
    genesis_params = Genesis.loads(homes[0].genesis.read_bytes()).params
    result: dict = {"validators": v, "observers": o, "processes": v + o, "busy_loops": busy, "machine_cores": os.cpu_count(),
                    "timeouts": timeouts, "timeouts_ms": {k: getattr(genesis_params, k) for k in BENCH_PARAMS},
                    "block_interval_ms": config.block_interval_ms, "empty_block_interval_ms": config.empty_block_interval_ms}
    procs: list[subprocess.Popen] = []
    busy_loops: list[subprocess.Popen] = []
    watchers: list[CommitWatcher] = []
    try:
        t_start = time.monotonic()
        print(f"starting {v} validators and {o} observers in {base} ...", file=sys.stderr)
        procs = [start_daemon(h) for h in homes]

        def healthy() -> bool:
            for p in procs:
                if p.poll() is not None:
                    raise SystemExit(f"error: a node exited (code {p.returncode}); see {base}/*/node.log")
            return all(a.try_json("/health") is not None for a in apis)

        wait_for("every node answering /health", healthy, 120 + 5 * len(homes))
        wait_for("a block committed on every node",
                 lambda: all((a.try_json("/v1/status") or {}).get("height", 0) >= 1 for a in apis), 300)
        result["start_seconds"] = round(time.monotonic() - t_start, 1)
        if busy:
            print(f"{busy} busy loops take the cores from now on ...", file=sys.stderr)
            busy_loops = start_busy_loops(busy, idle + duration + 900)

        print(f"idle for {idle:.0f} s ...", file=sys.stderr)
        time.sleep(5)  # start-up work (dials, first syncs) settles
        samples = [sample(procs, apis)]
        for _ in range(idle_windows):
            time.sleep(idle / idle_windows)
            samples.append(sample(procs, apis))
        s0, s1 = samples[0], samples[-1]
        result["idle"] = whole = idle_window(s0, s1, v)
        whole.update({
            "connected_peers_per_node": _split(s1.peers, v),  # a validator should have every other validator
            "rss_mb_per_node": _split([rss_mb(p.pid) for p in procs], v),
            "messages_per_validator_per_height": per_height(s0.breakdown[:v], s1.breakdown[:v], max(1, whole["heights"])),
            "quiet_polls_per_observer": quiet_polls(s0, s1, v),
        })
        if idle_windows > 1:
            whole["windows"] = [idle_window(a, b, v) for a, b in zip(samples, samples[1:])]

        observers = list(range(v, v + o)) if o else list(range(v))
        watchers = [CommitWatcher(apis[i]) for i in range(len(apis))]
        for w in watchers:
            w.start()
        wait_for("every events stream connected", lambda: all(w.connected.is_set() or w.error for w in watchers), 60, 0.1)

        total = int(rate * duration)
        print(f"submitting {total} records at {rate:g}/s to random {'observers' if o else 'validators'} ...", file=sys.stderr)
        sent: list[tuple[int, str, float]] = []  # (node index, record hash, submitted at)
        errors: dict[str, int] = {}
        lock = threading.Lock()
        s2 = sample(procs, apis)
        t0 = time.monotonic()
        n_threads = 16

        def submitter(k: int) -> None:
            local = random.Random(seed * 1000 + k)
            for i in range(k, total, n_threads):
                at = t0 + i / rate
                delay = at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                node = local.choice(observers)
                try:
                    status, body = apis[node].request("POST", "/v1/records/sign",
                                                      {"kind": "service.offer", "body": offer_body(f"scale-{i}", 100 + i % 900)})
                    done = time.monotonic()
                    if status == 202:
                        with lock:
                            sent.append((node, json.loads(body)["hash"], done))
                        continue
                    reason = f"http_{status}"
                except (OSError, http.client.HTTPException) as exc:
                    reason = type(exc).__name__
                with lock:
                    errors[reason] = errors.get(reason, 0) + 1

        threads = [threading.Thread(target=submitter, args=(k,), daemon=True) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration + 120)
        t_sent = time.monotonic()

        def committed() -> int:
            return sum(1 for node, h, _ in sent if h in watchers[node].seen)

        last, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < 30 and (n := committed()) < len(sent):  # drain: 30 s without progress ends it
            if n != last:
                last, last_change = n, time.monotonic()
            time.sleep(0.25)
        s3 = sample(procs, apis)
        span = s3.at - s2.at
        heights = max(1, max(s3.heights) - max(s2.heights))
        cpu = [b - a for a, b in zip(s2.cpu, s3.cpu)]  # CPU seconds per node over the load
        load_cpu = sum(cpu)
        idle_per_height = result["idle"]["network_cpu_s_per_height"]
        timed = sorted(((watchers[node].seen[h] - at) * 1000, node, at - t0) for node, h, at in sent if h in watchers[node].seen)
        latencies = [ms for ms, _, _ in timed]
        by = {le: s3.decided_by_round.get(le, 0) - s2.decided_by_round.get(le, 0) for le in ("0.0", "1.0", "+Inf")}
        rounds = {"0": int(by["0.0"]), "1": int(by["1.0"] - by["0.0"]), "2+": int(by["+Inf"] - by["1.0"])}
        result["load"] = {
            "offered": total, "accepted": len(sent), "errors": errors, "committed_seen_at_submitter": len(latencies),
            "submit_seconds": round(t_sent - t0, 1),
            "commit_p50_ms": round(percentile(latencies, 0.50), 1), "commit_p99_ms": round(percentile(latencies, 0.99), 1),
            "commit_over_ms": {str(ms): sum(1 for x in latencies if x > ms) for ms in (1000, 2000, 5000, 10000)},
            # the tail, to look into: (latency, the node it was submitted at, seconds into the load)
            "slowest": [{"ms": round(ms), "node": node, "at_s": round(at, 1)} for ms, node, at in timed[-5:][::-1]],
            # how the submitting nodes of the tail followed the chain meanwhile: block announcements
            # delivered, fetches they led to, polls, quiet polls (no block for too long)
            "slowest_nodes_sync": {node: node_sync(s2, s3, node) for node in sorted({node for _, node, _ in timed[-5:]})},
            "quiet_polls_per_observer": quiet_polls(s2, s3, v),
            "heights": heights,
            "rounds": rounds,
            "cpu_percent_per_node": _split([c * 100 / span for c in cpu], v),
            "network_cores": round(load_cpu / span, 3),
            # what the records cost the network beyond their heights' cost at rest (the idle
            # window's CPU per height): the two figures a commit latency bar is made of
            "network_cpu_ms_per_record": (round((load_cpu - heights * idle_per_height) * 1000 / len(sent), 2)
                                          if sent and idle_per_height is not None else None),
            "messages_per_node_per_height": _split([(b - a) / heights for a, b in zip(s2.messages, s3.messages)], v),
            "kbytes_per_node_per_height": _split([(b - a) / heights / 1024 for a, b in zip(s2.bytes, s3.bytes)], v),
            "duplicate_votes_per_validator_per_height": _split(
                [(b - a) / heights for a, b in zip(s2.duplicate_votes[:v], s3.duplicate_votes[:v])], v)["validators"],
            "messages_per_validator_per_height_by_kind": per_height(s2.breakdown[:v], s3.breakdown[:v], heights),
            **({"messages_per_observer_per_height_by_kind": per_height(s2.breakdown[v:], s3.breakdown[v:], heights)} if o else {}),
            "record_pushes_sent": {"validators": push_times(s2.breakdown[:v], s3.breakdown[:v]),
                                   "observers": push_times(s2.breakdown[v:], s3.breakdown[v:])},
            # totals over the load (refused, failed or timed out; any request that timed out)
            **{key.replace(" ", "_"): {"validators": grown(s2.breakdown[:v], s3.breakdown[:v], key),
                                       "observers": grown(s2.breakdown[v:], s3.breakdown[v:], key)}
               for key in ("record push failures", "request timeouts")},
            "peak_rss_mb_per_node": _split([proc_stats(p.pid)[1] for p in procs], v),
            "connected_peers_per_node": _split(s3.peers, v),
        }
        errors_seen = [w.error for w in watchers if w.error]
        if errors_seen:
            result["load"]["event_stream_errors"] = errors_seen[:5]

        target = max(s3.heights[:v])
        print(f"a fresh observer syncs {target} blocks ...", file=sys.stderr)
        fresh_api = Api(fresh_home)
        t_sync = time.monotonic()
        procs.append(start_daemon(fresh_home))
        wait_for("the fresh observer at the validators' height",
                 lambda: (fresh_api.try_json("/v1/status") or {}).get("height", 0) >= target, 300)
        result["fresh_observer"] = {"blocks": target, "seconds_to_sync_from_start": round(time.monotonic() - t_sync, 1)}
    finally:
        for w in watchers:
            w.stop()
        stop(procs)
        for loop in busy_loops:
            loop.kill()
            loop.wait()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--validators", type=int, default=16)
    ap.add_argument("--observers", type=int, default=48)
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement (default 30)")
    ap.add_argument("--idle-windows", type=int, default=1,
                    help="also report the idle time cut in this many equal windows (default 1: the whole)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    ap.add_argument("--rate", type=float, default=100.0, help="records/s submitted (default 100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--empty-block-interval-ms", type=int, help="heartbeat block interval (default: the node's, 5000)")
    ap.add_argument("--timeouts", choices=sorted(TIMEOUTS), default="consortium",
                    help="the genesis's consensus timeouts: consortium (default: CometBFT's 3 s / 1 s / 1 s, as "
                         "tools.bench) or genesis (the protocol's defaults, 1 s / 0.5 s / 0.5 s)")
    ap.add_argument("--dir", type=Path, help="keep the network here (must not exist); default: a temporary directory")
    ap.add_argument("--busy", type=int, default=0,
                    help="busy-loop processes that take cores from the nodes once they run (default 0)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if (args.validators < 1 or args.observers < 0 or args.busy < 0 or args.idle <= 0 or args.duration <= 0
            or args.rate <= 0 or args.idle_windows < 1):
        ap.error("--validators >= 1, --observers >= 0, --busy >= 0, --idle-windows >= 1, and --idle, --duration, --rate > 0")
    if args.dir is not None and args.dir.exists():
        ap.error(f"--dir {args.dir} exists")
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        result = run(base, args.validators, args.observers, args.idle, args.duration, args.rate, args.seed,
                     args.empty_block_interval_ms, args.busy, args.idle_windows, args.timeouts)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(" ".join(f"{k}={result[k]}" for k in ("validators", "observers", "block_interval_ms", "empty_block_interval_ms")))
        for section in ("idle", "load", "fresh_observer"):
            print(f"{section}:")
            for k, val in result.get(section, {}).items():
                print(f"  {k}: {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
