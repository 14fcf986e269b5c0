"""Many seeds, in parallel worker processes, aggregated into one summary.

Node counts: seed ``s`` runs with ``cycle[s % len(cycle)]`` validators, where
``cycle`` is 4, 7, 10, 31 (those within the requested range, plus the range's
ends) — so a 10,000-seed soak over 4..31 runs each of 4, 7, 10 and 31
validators 2,500 times. Faults: unless fixed, seed ``s`` draws its own subset
of FAULT_KINDS from ``Random(s ^ FAULT_SALT)``; the failing run's reproduce
line names the exact subset.
"""

from __future__ import annotations

import multiprocessing
import os
import random
from dataclasses import dataclass, field

from .engine import FAULT_KINDS, RunResult, run_one

FAULT_SALT = 0x5EED_FA17
STANDARD_COUNTS = (4, 7, 10, 31)


def node_cycle(lo: int, hi: int) -> tuple[int, ...]:
    counts = sorted({c for c in STANDARD_COUNTS if lo <= c <= hi} | {lo, hi})
    return tuple(counts)


def node_count_for_seed(seed: int, lo: int, hi: int) -> int:
    cycle = node_cycle(lo, hi)
    return cycle[seed % len(cycle)]


def faults_for_seed(seed: int) -> tuple[str, ...]:
    rng = random.Random(seed ^ FAULT_SALT)
    if rng.random() < 0.1:
        return ()
    chosen = [f for f in FAULT_KINDS if f != "invalid" and rng.random() < 0.5]
    if "byz" in chosen and rng.random() < 0.5:
        chosen.append("invalid")
    return tuple(sorted(chosen))


@dataclass
class SoakSummary:
    runs: int = 0
    heights_committed: int = 0
    safety_violations: int = 0
    liveness_failures: int = 0
    double_signs: int = 0
    evidence: int = 0
    events: int = 0
    set_changes: int = 0
    proposals_passed: int = 0
    proposals_refused: int = 0
    jailed: int = 0
    admitted: int = 0
    retired: int = 0
    latency_by_round: dict[int, list[int]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (reproduce, what)

    def add(self, r: RunResult) -> None:
        self.runs += 1
        self.heights_committed += r.heights_committed
        self.safety_violations += len(r.safety_violations)
        self.liveness_failures += bool(r.liveness_failure)
        self.double_signs += r.double_signs
        self.evidence += r.evidence
        self.events += r.events
        self.set_changes += r.set_changes
        self.proposals_passed += r.proposals_passed
        self.proposals_refused += r.proposals_refused
        self.jailed += r.jailed
        self.admitted += r.admitted
        self.retired += r.retired
        for rnd, ms in r.latencies:
            self.latency_by_round.setdefault(min(rnd, 3), []).append(ms)
        if r.safety_violations or r.liveness_failure:
            what = r.safety_violations[0] if r.safety_violations else r.liveness_failure
            self.failures.append((r.reproduce(), what))

    def latency_table(self) -> dict[str, dict[str, int]]:
        table = {}
        for rnd in sorted(self.latency_by_round):
            xs = sorted(self.latency_by_round[rnd])
            label = f"round {rnd}" if rnd < 3 else "round 3+"
            table[label] = {
                "commits": len(xs),
                "p50_ms": xs[len(xs) // 2],
                "p99_ms": xs[min(len(xs) - 1, len(xs) * 99 // 100)],
                "max_ms": xs[-1],
            }
        return table


def _job(args) -> RunResult:
    seed, nodes, faults, governance = args
    return run_one(seed, nodes, faults, governance=governance)


def run_soak(
    seeds: range, lo: int, hi: int, faults: tuple[str, ...] | None = None, processes: int | None = None, progress=None,
    *, governance: bool = False,
) -> SoakSummary:
    """``governance``: every run's chain carries validator-set changes (tools/sim/governance.py)."""
    jobs = [
        (s, node_count_for_seed(s, lo, hi), faults if faults is not None else faults_for_seed(s), governance)
        for s in seeds
    ]
    summary = SoakSummary()
    processes = processes or min(2, os.cpu_count() or 1)
    if processes == 1 or len(jobs) < 8:
        results = map(_job, jobs)
        for r in results:
            summary.add(r)
            if progress:
                progress(summary)
        return summary
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        for r in pool.imap_unordered(_job, jobs, chunksize=8):
            summary.add(r)
            if progress:
                progress(summary)
    summary.failures.sort()
    return summary
