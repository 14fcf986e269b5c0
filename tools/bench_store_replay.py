"""What SQLite writes for a synced history, by how many ranges one transaction takes.

    python -m tools.bench_store_replay --db HISTORY/branch-00/data/node.db
        [--records N] [--range-records R] [--ranges-per-commit 1,8] [--json]

Reads the first ``N`` records of a node database (``tools.gen_history`` makes one) and
their blocks, then writes them into a fresh database with the node's schema and its
writer's connection (``node.store.schema``), in ranges of about ``R`` records as block
sync does, committing every ``K`` ranges, for each ``K`` given. Each record also writes
one ``state`` row (its branch and subject, as applying it does; the body stands in as
the record's first 120 bytes). Prints records/s, CPU seconds and the bytes the process
wrote to disk (``/proc/self/io``: the WAL and the checkpoints into the database file).

Every index page a transaction touches at a random place (a record's hash, its branch,
its branch and service, the state's key) is written to the WAL once per transaction,
however many of its rows the transaction changed: fewer, larger transactions write far
less (docs/PERFORMANCE.md, "What the store writes for a synced range"). SQLite alone:
no decoding, no signatures, no state. A script, not a test; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from node.store.schema import SCHEMA, connect_reader, connect_writer

BLOCK_COLUMNS = "height, hash, time_ms, proposer, round, num_records, block, certificate"
RECORD_COLUMNS = "hash, height, idx, branch_id, kind, subject, service_id, category, region, seq, time_ms, raw"


def _written_bytes() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("write_bytes:")).split()[1])


def load(source: Path, records: int) -> tuple[list[tuple], list[tuple]]:
    """(blocks, records) rows of the first ``records`` records, in height order."""
    db = connect_reader(source)
    try:
        recs = db.execute(f"SELECT {RECORD_COLUMNS} FROM records ORDER BY height, idx LIMIT ?", (records,)).fetchall()
        top = recs[-1][1] if recs else 0
        blocks = db.execute(f"SELECT {BLOCK_COLUMNS} FROM blocks WHERE height<=? ORDER BY height", (top,)).fetchall()
    finally:
        db.close()
    return blocks, recs


def replay(blocks: list[tuple], recs: list[tuple], path: Path, range_records: int, ranges_per_commit: int) -> dict:
    db = connect_writer(path)
    db.executescript(SCHEMA)
    per_block = max(1, len(recs) // max(1, len(blocks)))
    blocks_per_range = max(1, range_records // per_block)
    by_height: dict[int, list[tuple]] = {}
    for row in recs:
        by_height.setdefault(row[1], []).append(row)
    written, cpu, start = _written_bytes(), time.process_time(), time.perf_counter()
    ranges = 0
    for i in range(0, len(blocks), blocks_per_range):
        chunk = blocks[i:i + blocks_per_range]
        rows = [r for b in chunk for r in by_height.get(b[0], ())]
        if ranges % ranges_per_commit == 0:
            db.execute("BEGIN IMMEDIATE")
        db.executemany(f"INSERT INTO blocks({BLOCK_COLUMNS}) VALUES ({','.join('?' * 8)})", chunk)
        db.executemany(f"INSERT INTO records VALUES ({','.join('?' * 12)})", rows)
        db.executemany("INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?)",
                       [(r[3], r[5], r[9], r[0], r[1], r[4], r[11][:120]) for r in rows])
        ranges += 1
        if ranges % ranges_per_commit == 0:
            db.execute("COMMIT")
    if db.in_transaction:
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    out = {"ranges_per_commit": ranges_per_commit, "records": len(recs), "seconds": round(seconds, 1),
           "records_per_s": round(len(recs) / seconds), "cpu_s": round(time.process_time() - cpu, 1),
           "written_mb": round((_written_bytes() - written) / 1e6),
           "database_mb": round(sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}")) / 1e6)}
    db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a node database with a history (tools.gen_history)")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--range-records", type=int, default=4096, help="records per synced range (BlockSync.range_records)")
    ap.add_argument("--ranges-per-commit", default="1,8", help="comma-separated: ranges per transaction, one run each")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.db.is_file():
        ap.error(f"{args.db}: no such database file")
    blocks, recs = load(args.db, args.records)
    results = []
    for k in (int(x) for x in args.ranges_per_commit.split(",")):
        with tempfile.TemporaryDirectory(prefix="branchnet-replay-") as tmp:
            result = replay(blocks, recs, Path(tmp) / "node.db", args.range_records, max(1, k))
        results.append(result)
        if not args.json:
            print(f"{k:>3} range(s) per commit: {result['records']:,} records in {result['seconds']} s = "
                  f"{result['records_per_s']:,}/s, CPU {result['cpu_s']} s, wrote {result['written_mb']:,} MB "
                  f"(database and WAL {result['database_mb']:,} MB)", flush=True)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
