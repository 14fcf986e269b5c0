"""Store write benchmark: a batch of blocks written from a worker thread, beside an idle
and beside a busy trio thread.

    python -m tools.bench_store [--records N] [--per-block R] [--repeat K] [--json]

Builds ``N`` records of certified blocks of ``R`` records in memory (as block sync
prepares them: ``Store.prepare_block``), then times ``Store.write_prepared`` of them as
ONE batch in a worker thread, ``K`` times, while the main thread (a) waits and (b)
spins in Python, as a node's trio thread does at saturation. The sqlite3 module
releases the GIL around every step; how many steps a batch takes decides how often the
writer must win the GIL back (docs/PERFORMANCE.md, "Two things the GIL hid"). A script,
not a test; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from node.keyfile import load_key
from node.store import ChainReader, Store
from protocol.blocks import Block
from protocol.genesis import Genesis
from protocol.ledger import LedgerState
from protocol.votes import CommitCertificate
from tools import bench
from tools.netsetup import create_network


def prepared_batches(base: Path, records: int, per_block: int, repeat: int) -> tuple[Store, list[list]]:
    """``repeat`` consecutive batches of ``records`` records each, prepared for a fresh store."""
    homes = create_network(base / "net", 4, observers=1, fixed_ports=False, params=bench.BENCH_PARAMS)
    genesis = Genesis.loads(homes[0].genesis.read_bytes())
    keys = [load_key(h.key) for h in homes[:4]]
    blocks_per_batch = max(1, records // per_block)
    bench.write_chain(homes[0], genesis, keys, blocks_per_batch * repeat, per_block, [load_key(homes[4].key)])
    reader = ChainReader.open(homes[0].db, genesis)
    rows = reader._read("SELECT block, certificate FROM blocks ORDER BY height")
    reader.close()
    params, state = genesis.params, LedgerState(genesis)
    store = Store(base / "written.db", genesis)
    prepared = []
    for raw, cert in rows:
        block = Block.decode(raw, max_bytes=params.max_block_bytes, max_records=params.max_block_records)
        tx = state.validate_block(block, verified={r.hash for r in block.records})
        prepared.append(store.prepare_block(block, CommitCertificate.decode(cert), tx))
        tx.commit()
    return store, [prepared[i:i + blocks_per_batch] for i in range(0, len(prepared), blocks_per_batch)]


def timed_writes(store: Store, batches: list[list], busy: bool) -> list[float]:
    """Seconds each batch's write took in a worker thread (the main thread spinning if ``busy``)."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i

    spinner = threading.Thread(target=spin) if busy else None
    if spinner:
        spinner.start()
    out = []
    try:
        for batch in batches:
            t0 = time.perf_counter()
            writer = threading.Thread(target=store.write_prepared, args=(batch,))
            writer.start()
            writer.join()
            out.append(time.perf_counter() - t0)
    finally:
        stop.set()
        if spinner:
            spinner.join()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_store", description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=4000, help="records per written batch (default 4000)")
    ap.add_argument("--per-block", type=int, default=100, help="records per block (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="batches written beside each kind of main thread")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="branchnet-bench-store-") as tmp:
        store, batches = prepared_batches(Path(tmp), args.records, args.per_block, 2 * args.repeat)
        try:
            idle = timed_writes(store, batches[:args.repeat], busy=False)
            busy = timed_writes(store, batches[args.repeat:], busy=True)
        finally:
            store.close()
    n = len(batches[0]) * args.per_block
    bench.print_result({
        "records_per_batch": n,
        "write_ms_idle_main": [round(t * 1000, 1) for t in idle],
        "write_ms_busy_main": [round(t * 1000, 1) for t in busy],
        "median_us_per_record_idle": round(statistics.median(idle) / n * 1e6, 1),
        "median_us_per_record_busy": round(statistics.median(busy) / n * 1e6, 1),
    }, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
