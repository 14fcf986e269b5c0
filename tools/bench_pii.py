"""Personal-data screening: recall, false refusals and cost, per layer.

    python -m tools.bench_pii [--json] [--repeat R]

Runs the corpus (tests/data/pii_corpus.json) through the consensus layer
(``Record.decode`` with §5.3, then the ledger's check of declared numbers) and
through admission (``node.admission.screen_record`` on top), and prints:

* recall: the share of disguised personal data each layer refuses, per category;
* false refusals: the share of legitimate branch texts each layer refuses;
* cost: microseconds per record of the screening alone (``schema.screen_body``;
  ``admission.screen_record``), best of ``--repeat`` runs, on the corpus's
  legitimate texts and on the realistic stream of tools/bench_protocol.py, whose
  record validation rate (``python -m tools.bench_protocol``) includes it.

A script, not a test: tests/test_pii_corpus.py asserts the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from typing import Any, Callable

from node.admission import screen_record
from protocol.records import Record
from protocol.schema import screen_body
from tools.bench_protocol import Workload, _key
from tools.pii_corpus import CorpusRunner, load


def _best(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(repeat: int) -> dict[str, Any]:
    runner = CorpusRunner(load())
    verdicts = runner.run()
    personal = [v for v in verdicts if v.entry["pii"]]
    legit = [v for v in verdicts if not v.entry["pii"]]
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for v in personal:
        row = by_category[v.entry["category"]]
        row[0] += 1
        row[1] += v.consensus is not None
        row[2] += v.admission is not None

    legit_records = [runner.consensus(runner.record(v.entry)) for v in legit]
    workload = Workload([_key(f"branch-{i}") for i in range(16)])
    workload.setup()
    stream = [Record.decode(r.raw, chain_id="branchnet-bench") for r in workload.stream(2000)]
    profile = runner.profile

    def consensus_cost(records: list[Record]) -> float:
        return _best(lambda: [screen_body(r.body, "record.body") for r in records], repeat) / len(records) * 1e6

    def admission_cost(records: list[Record]) -> float:
        return _best(lambda: [screen_record(r, profile=profile) for r in records], repeat) / len(records) * 1e6

    return {
        "personal": len(personal),
        "legitimate": len(legit),
        "consensus_recall": sum(v.consensus is not None for v in personal) / len(personal),
        "admission_recall": sum(v.admission is not None for v in personal) / len(personal),
        "consensus_false_refusals": sum(v.consensus is not None for v in legit) / len(legit),
        "admission_false_refusals": sum(v.admission is not None for v in legit) / len(legit),
        "by_category": {k: {"n": n, "consensus": c, "admission": a} for k, (n, c, a) in sorted(by_category.items())},
        "consensus_missed": [v.entry["id"] for v in personal if v.consensus is None],
        "consensus_us_per_record_corpus": consensus_cost(legit_records),
        "consensus_us_per_record_stream": consensus_cost(stream),
        "admission_us_per_record_corpus": admission_cost(legit_records),
        "admission_us_per_record_stream": admission_cost(stream),
    }


def _table(r: dict[str, Any]) -> str:
    lines = [f"corpus: {r['personal']} disguised personal data, {r['legitimate']} legitimate branch texts", "",
             f"{'':34}{'consensus':>12}{'admission':>12}",
             f"{'recall (personal data refused)':34}{r['consensus_recall']:>12.1%}{r['admission_recall']:>12.1%}",
             f"{'false refusals (legitimate)':34}{r['consensus_false_refusals']:>12.1%}{r['admission_false_refusals']:>12.1%}",
             f"{'us/record, legitimate corpus':34}{r['consensus_us_per_record_corpus']:>12.1f}{r['admission_us_per_record_corpus']:>12.1f}",
             f"{'us/record, bench_protocol stream':34}{r['consensus_us_per_record_stream']:>12.1f}{r['admission_us_per_record_stream']:>12.1f}",
             "", f"{'category':24}{'n':>5}{'consensus':>12}{'admission':>12}"]
    for k, row in r["by_category"].items():
        lines.append(f"{k:24}{row['n']:>5}{row['consensus']:>12}{row['admission']:>12}")
    lines += ["", "left to admission: " + ", ".join(r["consensus_missed"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_pii", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=5, help="runs per cost figure; the best is reported (default 5)")
    args = parser.parse_args(argv)
    results = run(max(1, args.repeat))
    print(json.dumps(results) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
