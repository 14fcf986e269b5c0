"""State-root micro-benchmark: what one record costs the state tree as a branch grows.

    python -m tools.bench_state [--subjects 200000] [--per-block 100] [--json]

One branch gains ``--per-block`` new subjects per block until it holds
``--subjects``; after each block ``tx.state_root()`` is computed and the
transaction committed, as a validator or a syncing node does. Entries are put
into the transaction directly (no decoding, no signatures), so only the state
tree's cost is timed: the leaf hashing, the tree update and the commit. Printed:
microseconds per new subject in each tenth of the run, then one block of
in-place updates (re-offers of existing subjects) at the final size.

Pure protocol code, one thread, bounded by ``--subjects``. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import time

from protocol.genesis import Genesis
from protocol.keys import PrivateKey
from protocol.ledger import Entry, LedgerState
from tools.bench import sample_offer


def _genesis() -> tuple[Genesis, bytes]:
    key = PrivateKey.from_seed(b"\x07" * 32)
    doc = {"chain_id": "bench-state", "genesis_time_ms": 0, "params": {},
           "validators": [{"name": "Bench", "public_key": key.public_key.raw.hex(), "power": 10}]}
    return Genesis.from_json(doc), key.branch_id


def run(subjects: int, per_block: int) -> dict:
    genesis, bid = _genesis()
    state = LedgerState(genesis)
    body = sample_offer(0)
    tenths: list[float] = []
    spent, done, height = 0.0, 0, 0
    while done < subjects:
        height += 1
        n = min(per_block, subjects - done)
        entries = {f"service/svc-{done + i}": Entry(f"service/svc-{done + i}", 1, (done + i).to_bytes(32, "big"), height,
                                                    "service.offer", body) for i in range(n)}
        t0 = time.perf_counter()
        tx = state.begin(height)
        tx.changes[bid] = entries
        tx._edits += 1
        tx.state_root()
        tx.commit()
        spent += time.perf_counter() - t0
        done += n
        if done * 10 >= (len(tenths) + 1) * subjects:
            tenths.append(round(spent * 1e6 / (subjects // 10), 1))
            spent = 0.0
    # one block of in-place updates at the final size
    height += 1
    step = max(1, subjects // per_block)
    entries = {f"service/svc-{i}": Entry(f"service/svc-{i}", 2, i.to_bytes(32, "big"), height, "service.offer", body)
               for i in range(0, subjects, step)}
    t0 = time.perf_counter()
    tx = state.begin(height)
    tx.changes[bid] = entries
    tx._edits += 1
    tx.state_root()
    tx.commit()
    update_us = (time.perf_counter() - t0) * 1e6 / len(entries)
    return {"subjects": subjects, "per_block": per_block, "insert_us_per_record_by_tenth": tenths,
            "update_us_per_record_at_end": round(update_us, 1), "state_root": state.state_root.hex()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_state", description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=200_000)
    ap.add_argument("--per-block", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(args.subjects, args.per_block)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:<32}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
