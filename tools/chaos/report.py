"""Printing what the runs found: one block per run, a totals line, or one JSON document."""

from __future__ import annotations

from collections import Counter

from .checks import percentile


def reproduce(seed: int, argv_rest: str) -> str:
    return f"python -m tools.chaos --runs 1 --seed {seed}{argv_rest}"


def run_summary(index: int, total: int, r: dict, argv_rest: str) -> str:
    head = f"run {index}/{total} seed {r['seed']}: "
    if "setup_error" in r:
        return head + f"SETUP FAILED: {r['setup_error']} ({r['elapsed_s']} s)"
    kinds = Counter(f["kind"] for f in r["faults"])
    lines = [head + f"{len(r['faults'])} faults ({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}) "
             f"on {r['nodes']} nodes, {r['duration']:.0f} s of faults, net {r['net']}, {r['elapsed_s']} s in all, "
             f"load average {'->'.join(str(x) for x in r.get('load_avg_1m', []))}"]
    for kind, why in r.get("skipped_kinds", {}).items():
        lines.append(f"  skipped {kind}: {why}")
    ch = r.get("checks")
    if ch is None:
        lines.append("  checks did not run (interrupted)")
        return "\n".join(lines)
    a, lv, p, lg, ds, rec = ch["acks"], ch["liveness"], ch["processes"], ch["logs"], ch["double_signs"], ch["recovery"]
    fates = ", ".join(f"{k} {v}" for k, v in sorted(a["lost_by_fate"].items()))
    lines.append(f"  forks {ch['forks']['count']} ({ch['forks']['heights_compared']} heights compared)"
                 f" | acks {a['acknowledged']}, lost {a['lost']}{f' ({fates})' if fates else ''}, not on every node {a['partial']}"
                 f" | permanent halt {'YES' if lv['permanent_halt'] else 'no'}"
                 f"{', lagging ' + str(lv['lagging_nodes']) if lv['lagging_nodes'] else ''}"
                 f"{', unrecovered faults ' + str(lv['unrecovered_faults']) if lv['unrecovered_faults'] else ''}")
    lines.append(f"  processes alive {p['alive']}/{p['expected']}, exits by themselves {len(p['unexpected_exits'])}"
                 f", unclean SIGTERM stops {len(p['unclean_stops'])}"
                 f" | tracebacks {lg['tracebacks']}"
                 f" | double-signs: reused seq {ds['reused_seq']}, evidence {ds['evidence']}, equivocation lines {ds['equivocation_log_lines']}"
                 f" | recovery {_fmt(rec['p50'])}/{_fmt(rec['p99'])}/{_fmt(rec['max'])} s (p50/p99/max)")
    st = ch.get("node_start", {})
    lines.append("  faults: " + "; ".join(_fault_brief(f) for f in r["faults"])
                 + f" | node start (spawn to up) p50 {_fmt(st.get('p50'))} s, max {_fmt(st.get('max'))} s")
    for d in a["lost_details"][:5]:
        extra = {"superseded": f" by {str(d.get('superseded_by'))[:12]}", "pending": f" on nodes {d.get('pending_on')}"}.get(d["fate"], "")
        lines.append(f"    lost: node {d['node']} {d['kind']} {d['subject']} seq {d['seq']} {d['hash'][:12]} acked at {d['at']:.1f}s: {d['fate']}{extra}")
    if a["lost"] > 5:
        lines.append(f"    ... {a['lost'] - 5} more lost (see --json)")
    for d in ds["reused_seq_details"][:3]:
        recs = "; ".join(f"{x['hash'][:12]} acked by {x['acked_by']} committed on {x['committed_on']}" for x in d["records"])
        lines.append(f"    reused seq: branch {d['branch'][:8]} {d['subject']} seq {d['seq']}: {recs}")
    for e in lg["exceptions"][:3]:
        lines.append(f"    traceback: {e}")
    for e in p["unexpected_exits"]:
        lines.append(f"    node {e['node']} exited by itself with code {e['code']} at {e['at']}s")
    if lv.get("stalled_at_start"):
        st0 = lv["stalled_at_start"]
        lines.append(f"    no fault injected: every node answered, yet heights were {st0['heights']} {st0['after_s']:.0f}s after start")
    if lv.get("halted_mid_run"):
        h = lv["halted_mid_run"]
        lines.append(f"    halted after fault {h['fault']}: heights {h['heights']} stayed at or below {h['base_height']}")
    if lv["permanent_halt"] or lv["lagging_nodes"]:
        for st in lv.get("consensus_status", []):
            c = st.get("consensus") or {}
            if c:
                lines.append(f"    node {st['node']} at halt: height {st.get('height')}, consensus height {c.get('height')} "
                             f"round {c.get('round')} {c.get('step')}, peers {st.get('peers')}, mempool {st.get('mempool')}")
        for node, ss in (lv.get("signer_states") or {}).items():
            if ss and "error" not in ss:
                lock = f"locked on {ss['lock_hash'][:12]} since round {ss['lock_round']}" if ss["lock_round"] >= 0 else "no lock"
                lines.append(f"    node {node} signer: last signed height {ss['height']} round {ss['round']} step {ss['step']}, {lock}")
        errs = list(lg["error_lines"].items())[:3]
        for msg, n in errs:
            lines.append(f"    log ERROR x{n}: {msg}")
    fails = r["failures"]
    lines.append(f"  {'FAIL: ' + ', '.join(fails) + '  (reproduce: ' + reproduce(r['seed'], argv_rest) + ')' if fails else 'ok'}")
    return "\n".join(lines)


def totals(results: list[dict]) -> dict:
    checked = [r for r in results if "checks" in r]
    recov = [v for r in checked for v in r["checks"]["recovery"]["values"]]
    faults = [f for r in results for f in r.get("faults", [])]
    seeds: dict[str, list[int]] = {}
    for r in results:
        for name in r["failures"]:
            seeds.setdefault(name, []).append(r["seed"])

    def total(path: tuple[str, ...]) -> int:
        out = 0
        for r in checked:
            v = r["checks"]
            for p in path:
                v = v[p]
            out += len(v) if isinstance(v, list) else int(v)
        return out

    return {
        "runs": len(results), "runs_checked": len(checked), "runs_failed": sum(1 for r in results if r["failures"]),
        "faults": len(faults), "faults_by_kind": dict(sorted(Counter(f["kind"] for f in faults).items())),
        "forks": total(("forks", "count")),
        "acknowledged": total(("acks", "acknowledged")), "acks_lost": total(("acks", "lost")),
        "acks_lost_by_fate": dict(sorted(sum((Counter(r["checks"]["acks"]["lost_by_fate"]) for r in checked), Counter()).items())),
        "acks_not_on_every_node": total(("acks", "partial")),
        "permanent_halts": sum(1 for r in checked if r["checks"]["liveness"]["permanent_halt"]),
        "unrecovered_faults": total(("liveness", "unrecovered_faults")),
        "processes_not_alive": total(("processes", "not_alive")), "unexpected_exits": total(("processes", "unexpected_exits")),
        "tracebacks": total(("logs", "tracebacks")),
        "reused_seq": total(("double_signs", "reused_seq")), "equivocation_evidence": total(("double_signs", "evidence")),
        "equivocation_log_lines": total(("double_signs", "equivocation_log_lines")),
        "recovery_s": {"count": len(recov), "p50": percentile(recov, 50), "p99": percentile(recov, 99),
                       "max": max(recov, default=None)},
        "seeds_by_failure": seeds,
        "setup_failures": sum(1 for r in results if "setup_error" in r),
    }


def totals_line(t: dict) -> str:
    rec = t["recovery_s"]
    return (f"TOTAL {t['runs']} runs ({t['runs_failed']} failed), {t['faults']} faults: forks {t['forks']}, "
            f"acks lost {t['acks_lost']} of {t['acknowledged']}"
            f"{' (' + ', '.join(f'{k} {v}' for k, v in t['acks_lost_by_fate'].items()) + ')' if t['acks_lost_by_fate'] else ''}"
            f", not on every node {t['acks_not_on_every_node']}, "
            f"permanent halts {t['permanent_halts']}, unrecovered faults {t['unrecovered_faults']}, "
            f"double-signs {t['reused_seq']} reused seq + {t['equivocation_evidence']} evidence + {t['equivocation_log_lines']} log lines, "
            f"processes not alive {t['processes_not_alive']} (exits by themselves {t['unexpected_exits']}), "
            f"tracebacks {t['tracebacks']}, recovery p50 {_fmt(rec['p50'])} s p99 {_fmt(rec['p99'])} s max {_fmt(rec['max'])} s"
            + (f", setup failures {t['setup_failures']}" if t["setup_failures"] else ""))


def _fault_brief(f: dict) -> str:
    who = "|".join(",".join(map(str, g)) for g in f["groups"]) if f["groups"] else ",".join(map(str, f["targets"]))
    if f["kind"] == "restart_all":
        who = "all"
    rec = f"{f['recovery_s']:.1f}s" if f.get("recovery_s") is not None else "NOT RECOVERED"
    late = f" (late {f['late_s']:.1f}s)" if f.get("late_s") else ""
    return f"{f['kind']} {who} @{f['injected_at']:.0f}s{late} -> {rec}"


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"
