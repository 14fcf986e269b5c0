"""Deterministic consensus simulator CLI.

    python -m tools.simulate --seed 1234 --nodes 7 --faults drop,partition   # one run
    python -m tools.simulate --seeds 10000 --nodes 4..31                      # soak
    python -m tools.simulate --seeds 1000 --nodes 4..31 --json
    python -m tools.simulate --seeds 10000 --nodes 4..10 --governance         # with validator-set changes

Soak node counts cycle through 4, 7, 10, 31 (those inside the range, plus its
ends); each seed draws its own fault subset unless --faults is given. Exit
status 1 if any safety violation, double sign or liveness failure occurred;
each failing run prints a one-line reproduce command. --governance: the chain
carries validator-set changes (adds, removes, power changes, members retired
and admitted, equivocators jailed by committed evidence; tools/sim/governance.py), and every certificate
is verified against the set in force at its height.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tools.sim.engine import FAULT_KINDS, run_one
from tools.sim.soak import node_cycle, run_soak


def _parse_nodes(text: str) -> tuple[int, int]:
    if ".." in text:
        lo, hi = (int(x) for x in text.split("..", 1))
    else:
        lo = hi = int(text)
    if not 4 <= lo <= hi <= 100:
        raise argparse.ArgumentTypeError("nodes must be within 4..100")
    return lo, hi


def _parse_faults(text: str) -> tuple[str, ...]:
    if text in ("none", ""):
        return ()
    if text == "all":
        return FAULT_KINDS
    faults = tuple(sorted(set(text.split(","))))
    bad = set(faults) - set(FAULT_KINDS)
    if bad:
        raise argparse.ArgumentTypeError(f"unknown faults {sorted(bad)}; choose from {FAULT_KINDS}")
    return faults


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.simulate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, help="run exactly this seed once")
    ap.add_argument("--seeds", type=int, default=100, help="soak: run seeds 0..N-1 (default 100)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--nodes", type=_parse_nodes, default=(4, 31), help="N or LO..HI (default 4..31)")
    ap.add_argument("--faults", type=_parse_faults, default=None,
                    help=f"comma list of {','.join(FAULT_KINDS)}, 'all' or 'none' (default: drawn per seed)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default 2)")
    ap.add_argument("--governance", action="store_true",
                    help="validator-set changes on chain (adds, removes, power changes, jailing)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    lo, hi = args.nodes

    if args.seed is not None:
        r = run_one(args.seed, lo, args.faults if args.faults is not None else (), governance=args.governance)
        out = {
            "seed": r.seed, "nodes": r.nodes, "faults": list(r.faults), "heights_committed": r.heights_committed,
            "safety_violations": r.safety_violations, "liveness_failure": r.liveness_failure,
            "double_signs": r.double_signs, "evidence": r.evidence, "events": r.events, "virtual_ms": r.virtual_ms,
        }
        if args.governance:
            out.update(set_changes=r.set_changes, proposals_passed=r.proposals_passed,
                       proposals_refused=r.proposals_refused, jailed=r.jailed, admitted=r.admitted, retired=r.retired)
        print(json.dumps(out) if args.json else "\n".join(f"{k:18} {v}" for k, v in out.items()))
        bad = r.safety_violations or r.liveness_failure or r.double_signs
        if bad:
            print(f"reproduce: {r.reproduce()}", file=sys.stderr)
        return 1 if bad else 0

    t0 = time.monotonic()
    s = run_soak(range(args.first_seed, args.first_seed + args.seeds), lo, hi, args.faults, args.processes,
                 governance=args.governance)
    elapsed = time.monotonic() - t0
    for cmd, what in s.failures[:50]:
        print(f"FAIL {what}: {cmd}", file=sys.stderr)
    report = {
        "runs": s.runs,
        "node_counts": list(node_cycle(lo, hi)),
        "heights_committed": s.heights_committed,
        "safety_violations": s.safety_violations,
        "liveness_failures": s.liveness_failures,
        "double_signs": s.double_signs,
        "evidence_records": s.evidence,
        "events": s.events,
        **({"set_changes": s.set_changes, "proposals_passed": s.proposals_passed,
            "proposals_refused": s.proposals_refused, "jailed": s.jailed, "members_admitted": s.admitted,
            "members_retired": s.retired} if args.governance else {}),
        "wall_seconds": round(elapsed, 1),
        "commit_latency_virtual_ms": s.latency_table(),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            if k != "commit_latency_virtual_ms":
                print(f"{k:20} {v}")
        print(f"{'commit latency':20} {'commits':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, row in report["commit_latency_virtual_ms"].items():
            print(f"  {label:18} {row['commits']:8} {row['p50_ms']:8} {row['p99_ms']:8} {row['max_ms']:8}")
    return 1 if (s.safety_violations or s.liveness_failures or s.double_signs) else 0


if __name__ == "__main__":
    sys.exit(main())
