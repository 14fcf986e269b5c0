"""State-root micro-benchmark: what one record costs the state tree as a branch grows.

    python -m tools.bench_state [--subjects 200000] [--per-block 100] [--start N] [--json]

One branch gains ``--per-block`` new subjects per block until it holds
``--subjects``; after each block ``tx.state_root()`` is computed and the
transaction committed, as a validator or a syncing node does. Entries are put
into the transaction directly (no decoding, no signatures), so only the state
tree's cost is timed: the leaf hashing, the tree update and the commit. Printed:
microseconds per new subject in each tenth of the run, then one block of
in-place updates (re-offers of existing subjects) at the final size. ``--start N``
restores N subjects first (not timed), so the cost at a large size can be measured
without growing the branch all the way.

``--apply N`` instead times what a syncing node does with N signed new offers in
blocks of ``--per-block`` on top of ``--start`` restored subjects: ``Block.decode``,
``LedgerState.validate_block`` (every record decoded, checked and its signature
verified, the state root computed and compared) and ``commit``, on one thread.
The network, certificates and SQLite are not included.

Times are CPU seconds of this process (``time.process_time``), so a machine shared
with other work inflates them less than wall time would. Pure protocol code, one
thread, bounded by ``--subjects``. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import time

from protocol.blocks import Block
from protocol.genesis import Genesis
from protocol.keys import PrivateKey
from protocol.ledger import Entry, LedgerState, build_block
from protocol.records import Record
from tools.bench import sample_offer


KEY = PrivateKey.from_seed(b"\x07" * 32)


def _genesis() -> tuple[Genesis, bytes]:
    doc = {"chain_id": "bench-state", "genesis_time_ms": 0, "params": {},
           "validators": [{"name": "Bench", "public_key": KEY.public_key.raw.hex(), "power": 10}]}
    return Genesis.from_json(doc), KEY.branch_id


def _restored(genesis: Genesis, bid: bytes, n: int) -> LedgerState:
    state = LedgerState(genesis)
    body = sample_offer(0)
    state.restore(height=1, last_block_hash=bytes(32), last_block_time_ms=1, entries=[
        (bid, Entry(f"service/svc-{i}", 1, i.to_bytes(32, "big"), 1, "service.offer", body)) for i in range(n)])
    state.state_root  # builds the trees
    return state


def apply_run(start: int, n: int, per_block: int) -> dict:
    genesis, bid = _genesis()
    records = [Record.create(KEY, genesis.chain_id, 1, 5, sample_offer(start + i)) for i in range(n)]
    builder, raw = _restored(genesis, bid, start), []
    for i in range(0, n, per_block):
        block, tx, rejected = build_block(builder, height=builder.height + 1, round=0, time_ms=10 + i, proposer=bid,
                                          candidates=records[i:i + per_block])
        assert not rejected
        raw.append(block.encode())
        tx.commit()
    state = _restored(genesis, bid, start)
    p = genesis.params
    t0 = time.process_time()
    for data in raw:
        state.validate_block(Block.decode(data, max_bytes=p.max_block_bytes, max_records=p.max_block_records)).commit()
    spent = time.process_time() - t0
    assert state.state_root == builder.state_root
    return {"start": start, "records": n, "per_block": per_block, "apply_us_per_record": round(spent * 1e6 / n, 1),
            "records_per_s": round(n / spent)}


def run(subjects: int, per_block: int, start: int = 0) -> dict:
    genesis, bid = _genesis()
    state = LedgerState(genesis)
    body = sample_offer(0)
    tenths: list[float] = []
    spent, done, height = 0.0, 0, 0
    if start:
        state = _restored(genesis, bid, start)  # not timed
        done, height = start, 1
    while done < subjects:
        height += 1
        n = min(per_block, subjects - done)
        entries = {f"service/svc-{done + i}": Entry(f"service/svc-{done + i}", 1, (done + i).to_bytes(32, "big"), height,
                                                    "service.offer", body) for i in range(n)}
        t0 = time.process_time()
        tx = state.begin(height)
        tx.changes[bid] = entries
        tx._edits += 1
        tx.state_root()
        tx.commit()
        spent += time.process_time() - t0
        done += n
        if (done - start) * 10 >= (len(tenths) + 1) * (subjects - start):
            tenths.append(round(spent * 1e6 / ((subjects - start) // 10), 1))
            spent = 0.0
    # one block of in-place updates at the final size
    height += 1
    step = max(1, subjects // per_block)
    entries = {f"service/svc-{i}": Entry(f"service/svc-{i}", 2, i.to_bytes(32, "big"), height, "service.offer", body)
               for i in range(0, subjects, step)}
    t0 = time.process_time()
    tx = state.begin(height)
    tx.changes[bid] = entries
    tx._edits += 1
    tx.state_root()
    tx.commit()
    update_us = (time.process_time() - t0) * 1e6 / len(entries)
    return {"subjects": subjects, "start": start, "per_block": per_block, "insert_us_per_record_by_tenth": tenths,
            "update_us_per_record_at_end": round(update_us, 1), "state_root": state.state_root.hex()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_state", description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=200_000)
    ap.add_argument("--per-block", type=int, default=100)
    ap.add_argument("--start", type=int, default=0, help="subjects restored before timing starts")
    ap.add_argument("--apply", type=int, default=0, metavar="N", help="time validate_block + commit of N signed records instead")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = apply_run(args.start, args.apply, args.per_block) if args.apply else run(args.subjects, args.per_block, args.start)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:<32}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
