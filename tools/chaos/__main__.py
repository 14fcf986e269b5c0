"""``python -m tools.chaos --runs N --seed S [--nodes 4] [--duration 60] [--faults ...] [--json] [--keep DIR]``

Runs ``--runs`` seeded chaos runs one after another (run i uses seed S+i, so
``--runs 1 --seed S+i`` repeats its schedule), prints a summary per run and a
totals line (or one JSON document with ``--json``; progress then goes to
stderr). Exit code 0 if every check of every run passed, 1 if any failed, 2 for
a usage error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from . import report
from .netns import TopologyError
from .runner import ChaosRun, RunOptions, check_stop, interrupt_on_signals, restore_signals
from .schedule import KIND_HELP, parse_kinds


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parents[2])
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5, cwd=Path(__file__).resolve().parents[2])
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def parse_args(argv: list[str] | None):
    kinds_help = "; ".join(f"{k}: {v}" for k, v in KIND_HELP.items())
    ap = argparse.ArgumentParser(prog="python -m tools.chaos", description="Fault injection on a devnet of real processes.")
    ap.add_argument("--runs", type=int, default=1, help="how many runs, one after another (default 1)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the first run; run i uses seed+i (default 1)")
    ap.add_argument("--nodes", type=int, default=4, help="validators (default 4)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of faults per run (default 60)")
    ap.add_argument("--faults", default="all", help=f"comma-separated fault kinds, or 'all' (default). {kinds_help}")
    ap.add_argument("--rate", type=float, default=3.0, help="records submitted per second per node (default 3)")
    ap.add_argument("--net", choices=("auto", "netns", "loopback"), default="auto",
                    help="auto: a network namespace per node if possible, else loopback without partitions")
    ap.add_argument("--recovery-bound", type=float, default=30.0,
                    help="a fault not recovered within this many seconds of its heal ends the schedule (default 30)")
    ap.add_argument("--halt-bound", type=float, default=60.0,
                    help="after the final heal, no new height within this many seconds is a permanent halt (default 60)")
    ap.add_argument("--ack-bound", type=float, default=60.0,
                    help="after the final heal, wait at most this long for acknowledged records to commit (default 60)")
    ap.add_argument("--startup-timeout", type=float, default=90.0,
                    help="seconds for every node to answer and commit height 1 (default 90)")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="keep each run's homes, logs and events.jsonl in DIR/run-seedS")
    ap.add_argument("-q", "--quiet", action="store_true", help="no timeline of events while running")
    args = ap.parse_args(argv)
    try:
        args.kinds = parse_kinds(args.faults)
    except ValueError as exc:
        ap.error(str(exc))
    if args.runs < 1 or args.nodes < 1 or args.duration <= 0 or args.rate <= 0:
        ap.error("--runs, --nodes, --duration and --rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    opts = RunOptions(nodes=args.nodes, duration=args.duration, kinds=args.kinds, rate=args.rate, net=args.net,
                      recovery_bound=args.recovery_bound, halt_bound=args.halt_bound, ack_bound=args.ack_bound,
                      startup_timeout=args.startup_timeout, keep=args.keep)
    rest = "".join([f" --nodes {args.nodes}" if args.nodes != 4 else "", f" --duration {args.duration:g}" if args.duration != 60 else "",
                    f" --faults {args.faults}" if args.faults != "all" else "", f" --net {args.net}" if args.net != "auto" else ""])
    commit = _commit()
    print(f"chaos: {args.runs} run(s) from seed {args.seed}, {args.nodes} nodes, {args.duration:g} s of faults each, "
          f"faults {','.join(args.kinds)}; node code at {commit}", file=out, flush=True)
    results = []
    interrupted = False
    old_handlers = interrupt_on_signals()
    try:
        for k in range(args.runs):
            check_stop()
            seed = args.seed + k
            say(f"run {k + 1}/{args.runs} seed {seed}")
            try:
                result = ChaosRun(seed, opts, say=say).execute()
            except TopologyError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            results.append(result)
            print(report.run_summary(k + 1, args.runs, result, rest), file=out, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: everything this tool started has been stopped and removed", file=sys.stderr)
    finally:
        restore_signals(old_handlers)
    totals = report.totals(results)
    print(report.totals_line(totals), file=out, flush=True)
    if args.json:
        json.dump({"command": "python -m tools.chaos " + " ".join(sys.argv[1:] if argv is None else argv),
                   "commit": commit, "options": {"runs": args.runs, "seed": args.seed, "nodes": args.nodes,
                                                 "duration": args.duration, "faults": list(args.kinds), "rate": args.rate,
                                                 "net": args.net, "recovery_bound": args.recovery_bound,
                                                 "halt_bound": args.halt_bound, "ack_bound": args.ack_bound,
                                                 "startup_timeout": args.startup_timeout},
                   "totals": totals, "runs": results}, sys.stdout, indent=1, default=str)
        print()
    if interrupted:
        return 130
    return 1 if totals["runs_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
