"""The end of a run: what the databases, logs, processes and mempools say.

:func:`collect` runs every check of :mod:`tools.chaos.checks` on what the
nodes hold once the run has settled and returns the ``checks`` part of a run's
result; :func:`failures` names the checks a result failed. The nodes are
still running when it is called: their databases are read read-only, and
their APIs are asked which missing records their mempools still hold
(:func:`pending_on`) and, at a halt, where consensus stands
(:func:`consensus_status`). Nothing here changes any node.
"""

from __future__ import annotations

import threading
import time

from . import checks
from .clients import NodeApi
from .cluster import START_MARK, Cluster


def pending_on(cluster: Cluster, topology, hashes: list[str], budget_s: float = 10.0) -> dict[str, list[int]]:
    """hash -> nodes whose mempool holds it (GET /v1/records/{hash} says "pending"),
    asking every node in parallel; hashes not asked within ``budget_s`` are left out."""
    found: dict[str, list[int]] = {h: [] for h in hashes}
    asked: dict[int, int] = {}
    deadline = time.monotonic() + budget_s

    def ask(i: int) -> None:
        api = NodeApi(topology, i, cluster.api_ports[i], cluster.tokens[i], timeout=2.0)
        try:
            for k, h in enumerate(hashes):
                if time.monotonic() > deadline:
                    break
                try:
                    status, doc = api.request("GET", f"/v1/records/{h}")
                except Exception:  # a node that does not answer holds nothing we can count on
                    continue
                asked[i] = k + 1
                if status == 200 and doc.get("status") == "pending":
                    found[h].append(i)
        finally:
            api.close()

    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(cluster.n) if cluster.running(i)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(budget_s + 5)
    complete = min(asked.values(), default=0)
    return {h: sorted(v) for h, v in list(found.items())[:complete]}


def consensus_status(cluster: Cluster, topology) -> list[dict]:
    """Each node's height, consensus statistics (height, round, step, outbox), peers and
    mempool size from ``GET /v1/status``: where a halted network stands."""
    out = []
    for i in range(cluster.n):
        api = NodeApi(topology, i, cluster.api_ports[i], cluster.tokens[i], timeout=3.0)
        try:
            status, doc = api.request("GET", "/v1/status")
            out.append({"node": i, "height": doc.get("height"), "consensus": doc.get("consensus"),
                        "peers": doc.get("peers"), "mempool": doc.get("mempool")} if status == 200 else {"node": i, "http": status})
        except Exception as exc:  # diagnostics only
            out.append({"node": i, "error": type(exc).__name__})
        finally:
            api.close()
    return out


def collect(cluster: Cluster, topology, acks: list, liveness: dict, *, fault_results: list[dict],
            unclean_stops: list[dict]) -> dict:
    """Every check on the settled network (the ``checks`` part of a run's result)."""
    c = cluster
    dumps = {i: c.snapshot(i) for i in range(c.n)}
    forks, compared = checks.find_forks({i: d.blocks for i, d in dumps.items()})
    committed_rows = [(i, h, b, s, q) for i, d in dumps.items() for h, b, s, q, _ in d.records]
    committed_by_node = {i: {r[0] for r in d.records} for i, d in dumps.items()}
    best = max(dumps, key=lambda i: dumps[i].height)
    slots = {(b, s, q): h for h, b, s, q, _ in dumps[best].records}
    nowhere = [a.hash for a in acks if not any(a.hash in s for s in committed_by_node.values())
               and slots.get((a.branch, a.subject, a.seq), a.hash) == a.hash]  # not superseded: ask the mempools
    pending = pending_on(cluster, topology, nowhere[:400])
    unconfirmed = checks.classify_unconfirmed(acks, committed_by_node, slots, pending)
    reused = checks.find_reused_seqs(acks, committed_rows)
    texts = {i: c.log_text(i) for i in range(c.n)}
    logs = {i: checks.scan_log(t) for i, t in texts.items()}
    starts = sorted(v for t in texts.values() for v in checks.startup_times(t, START_MARK))
    evidence = [{"node": i, "hash": h, "height": ht, "validator": v} for i, d in dumps.items() for h, ht, v in d.evidence]
    alive = [i for i in range(c.n) if c.running(i)]
    exits = [e for node in c.nodes for e in node.exits]
    recoveries = [f["recovery_s"] for f in fault_results if f.get("recovery_s") is not None]
    lost = unconfirmed["lost"]
    return {
        "forks": {"count": len(forks), "heights_compared": compared, "details": forks[:20],
                  "db_errors": {i: d.error for i, d in dumps.items() if d.error}},
        "acks": {"acknowledged": len(acks), "committed_everywhere": len(acks) - len(lost) - len(unconfirmed["partial"]),
                 "lost": len(lost), "partial": len(unconfirmed["partial"]),
                 "lost_by_fate": _count(d["fate"] for d in lost),
                 "lost_details": lost[:200], "partial_details": unconfirmed["partial"][:50]},
        "liveness": liveness | {"final_heights": {i: d.height for i, d in dumps.items()}},
        "processes": {"expected": c.n, "alive": len(alive), "not_alive": [i for i in range(c.n) if i not in alive],
                      "unexpected_exits": exits, "unclean_stops": unclean_stops},
        "logs": {"tracebacks": sum(l["tracebacks"] for l in logs.values()),
                 "by_node": {i: l["tracebacks"] for i, l in logs.items() if l["tracebacks"]},
                 "exceptions": sorted({e for l in logs.values() for e in l["exceptions"]})[:20],
                 "error_lines": merge_counts(l["errors"] for l in logs.values())},
        "double_signs": {"reused_seq": len(reused), "reused_seq_details": reused[:50],
                         "evidence": len(evidence), "evidence_details": evidence[:20],
                         "equivocation_log_lines": sum(len(l["equivocations"]) for l in logs.values()),
                         "equivocation_lines": [e for l in logs.values() for e in l["equivocations"]][:20]},
        "recovery": {"values": recoveries, "p50": checks.percentile(recoveries, 50),
                     "p99": checks.percentile(recoveries, 99), "max": max(recoveries, default=None)},
        "node_start": {"values": starts, "p50": checks.percentile(starts, 50), "max": max(starts, default=None)},
    }


def failures(result: dict) -> list[str]:
    """The names of the checks a run failed (empty: all passed)."""
    if "setup_error" in result:
        return ["setup"]
    ch = result.get("checks")
    if ch is None:
        return ["incomplete"]
    out = []
    if ch["forks"]["count"]:
        out.append("forks")
    if ch["acks"]["lost"]:
        out.append("acks_lost")
    if ch["acks"]["partial"]:
        out.append("acks_partial")
    if ch["liveness"]["permanent_halt"]:
        out.append("permanent_halt")
    elif ch["liveness"]["lagging_nodes"]:
        out.append("lagging_nodes")
    if ch["liveness"].get("stalled_at_start"):
        out.append("stalled_at_start")
    if ch["liveness"]["halted_mid_run"] or ch["liveness"]["unrecovered_faults"]:
        out.append("slow_recovery")
    if ch["processes"]["not_alive"] or ch["processes"]["unexpected_exits"]:
        out.append("processes")
    if ch["logs"]["tracebacks"]:
        out.append("tracebacks")
    if ch["double_signs"]["reused_seq"]:
        out.append("reused_seq")
    if ch["double_signs"]["evidence"] or ch["double_signs"]["equivocation_log_lines"]:
        out.append("equivocation")
    return out


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def merge_counts(dicts) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
