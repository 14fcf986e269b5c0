"""A hostile member: ``python -m tools.adversary``.

    python -m tools.adversary --devnet DIR [--seed 1] [--duration 60] [--count N]
    python -m tools.adversary --home MEMBER_HOME --target HOME [--target HOME ...] [...]

Runs a libp2p node with a genesis member's real key and the network's PSK
(``--home``, or the devnet's spare member ``member-00``: ``python -m
tools.devnet up --members 1``; a member whose node runs would share its
identity) and sends its targets (the validators of
``--devnet``, or each ``--target`` home) seeded, bounded shots on every
protocol: malformed gossipsub RPCs, bad frames and bodies on each
``/branchnet/...`` protocol, mutations of valid messages, replays, votes and
proposals from a non-validator, forged votes, records with bad signatures and
stale sequence numbers, hostile gossip payloads, stream floods
(``tools/adversary/shots.py``). It stops after ``--duration`` seconds or
``--count`` shots, then waits up to ``--settle`` seconds for every target to
commit again, and prints what it sent and what each target did: running or
not, heights, rejections by reason read from its ``/metrics``, bans, forks,
and whether the attacker's own branch holds anything but the records it sent as
valid (rejected input must change no state). ``--load RATE`` adds honest
records through the targets' APIs for the whole attack; each one acknowledged
must then be committed. Only 127.0.0.1 targets are accepted. Exit status 0 if every target still runs,
commits and agrees, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from node.config import Home

from .runner import Adversary, NotLocal, Options, Target, devnet_targets, format_report, write_json


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.adversary", description=__doc__.split("\n\n")[0])
    p.add_argument("--devnet", type=Path, help="a tools.devnet directory: attack its validators as its member-00")
    p.add_argument("--home", type=Path, help="the member's home (key, genesis, network key)")
    p.add_argument("--target", type=Path, action="append", default=[], help="a target node's home (repeatable)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of attack (default 60)")
    p.add_argument("--count", type=int, default=None, help="stop after this many shots")
    p.add_argument("--rate", type=float, default=20.0, help="shots per second over all targets (default 20)")
    p.add_argument("--families", default=None,
                   help="comma-separated: pubsub,frame,body,records,consensus,sync,gossip,flood,conn,equivocate (default all; equivocate needs --validator-key)")
    p.add_argument("--settle", type=float, default=30.0, help="max seconds to wait for targets to commit afterwards")
    p.add_argument("--until", action="append", default=[], metavar="KINDS=N",
                   help="stop early once N shots of these kinds (comma-separated prefixes, e.g. pubsub or "
                        "frame,body) reached their targets; repeatable, all must hold; --duration stays the bound")
    p.add_argument("--validator-key", type=Path, help="a validator's key file (node_key.json): the adversary also "
                   "equivocates in its name (conflicting votes and proposals; the family 'equivocate')")
    p.add_argument("--load", type=float, default=0.0, metavar="RATE",
                   help="honest records/s through the targets' POST /v1/records/sign during the attack (the chaos "
                        "suite's clients); afterwards every acknowledged record must be committed")
    p.add_argument("--json", help="also write the report as JSON to this path")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.devnet:
            home, targets = devnet_targets(args.devnet)
            if args.home:
                home = Home(args.home)
        elif args.home and args.target:
            home, targets = Home(args.home), [Target.from_home(Home(t)) for t in args.target]
        else:
            p.error("give --devnet DIR, or --home and at least one --target")
    except NotLocal as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    families = args.families.split(",") if args.families else None
    goals = []
    for goal in args.until:
        kinds, _, n = goal.partition("=")
        if not kinds or not n.isdigit():
            p.error(f"--until {goal!r}: expected KINDS=N, e.g. pubsub=28")
        goals.append((tuple(f"{k.strip()}/" for k in kinds.split(",") if k.strip()), int(n)))
    options = Options(seed=args.seed, duration=args.duration, count=args.count, rate=args.rate,
                      families=families, settle=args.settle, until_delivered=tuple(goals),
                      validator_key=args.validator_key, load=args.load)
    report = trio.run(Adversary(home, targets, options).run)
    print(format_report(report))
    if args.json:
        write_json(report, args.json)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
