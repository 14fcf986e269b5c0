"""Write a long certified chain into a real node home, quickly (issue 19 item 3).

    python -m tools.gen_history --records 1000000 --branches 1000 --dir DIR
                                [--seed S] [--records-per-block N] [--processes P] [--json]

DIR gets four validator homes, ``DIR/branch-00`` .. ``branch-03`` (keys,
config, network key, API token), one genesis naming the four validators and
``--branches`` member branches (their keys derive from the seed:
``history_mix.Mix.member_key``), and in ``DIR/branch-00/data/node.db`` a chain of
real blocks: every record signed by its branch's Ed25519 key
(``Record.unsigned_array`` + ``PrivateKey.sign``, the project's signing), blocks
built by ``protocol.ledger.build_block`` (records root, state root, governance
end of block, as a proposer does), certificates of precommits signed by all
four validators, and the rows written by ``Store.prepare_block`` /
``Store.write_prepared``, the code a node commits with. ``DIR/history.json``
says what was asked and how far it got.

The mix of records is in :mod:`tools.history_mix`. Signing runs in ``--processes``
worker processes (default: one per core) while this process decodes, builds and
writes the blocks, with a bounded number of chunks in flight. It is resumable:
every batch of blocks is one SQLite transaction, so after an interruption the
same command (or a larger ``--records``) goes on from the last written block.
The database is written with ``synchronous=OFF`` (a bulk load: a killed process
leaves whole batches, a power cut may not).

Then ``python -m node.daemon --home DIR/branch-00`` starts on it, and
``branchnet chain verify --home DIR/branch-00`` re-checks every signature,
certificate and state root. Generation itself skips re-verifying the
signatures it just made.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from pathlib import Path

from node.config import Home
from node.keyfile import load_key
from node.store import Store
from protocol.encoding import encode
from protocol.genesis import Genesis
from protocol.keys import Domain
from protocol.ledger import LedgerState, build_block
from protocol.records import Record
from protocol.votes import PRECOMMIT, CommitCertificate, Vote
from tools.bench import print_result
from tools.history_mix import Mix, offer_body, profile_body, service_id, status_body
from tools.netsetup import create_network

CHAIN_ID = "branchnet-history"
N_VALIDATORS = 4
BLOCK_INTERVAL_MS = 1000
WRITE_BATCH_RECORDS = 20_000  # records per SQLite transaction
MANIFEST = "history.json"


# ------------------------------------------------------------------ signing (worker processes)

_keys: dict[int, object] = {}


def sign_chunk(job: tuple[int, int, str, int, list[tuple]]) -> list[bytes]:
    """Sign one chunk of planned records; returns their encodings (runs in a worker)."""
    seed, branches, chain_id, genesis_ms, tasks = job
    out = []
    for b, what, s, variant, seq, time_ms in tasks:
        key = _keys.get(b)
        if key is None:
            key = _keys[b] = Mix.key_of(seed, b)
        if what == "profile":
            body = profile_body(b)
        elif what == "offer":
            body = offer_body(b, s, variant, genesis_ms)
        else:
            body = status_body(b, s, variant)
        arr = Record.unsigned_array(body.KIND, chain_id, key.branch_id, seq, time_ms, body)
        out.append(encode(arr + [key.sign(Domain.RECORD, chain_id, encode(arr))]))
    return out


# ------------------------------------------------------------------ the home


def create_homes(base: Path, mix: Mix) -> list[Home]:
    """Four validator homes and a genesis with ``mix.branches`` members besides them."""
    homes = create_network(base, N_VALIDATORS, chain_id=CHAIN_ID)
    doc = Genesis.loads(homes[0].genesis.read_bytes()).to_json()
    doc["members"] = [{"name": f"Sub-branch {b:04d}", "public_key": mix.member_key(b).public_key.hex()}
                      for b in range(mix.branches)]
    text = Genesis.from_json(doc).dumps()
    for home in homes:
        home.genesis.write_text(text)
    return homes


def load_manifest(base: Path, args: argparse.Namespace) -> dict:
    path = base / MANIFEST
    if path.exists():
        manifest = json.loads(path.read_text())
        for name in ("seed", "branches", "records_per_block"):
            if manifest[name] != getattr(args, name):
                raise SystemExit(f"{path}: this history was made with --{name.replace('_', '-')} {manifest[name]}; "
                                 f"use the same to resume it (or another --dir)")
        return manifest
    if base.exists() and any(base.iterdir()):
        raise SystemExit(f"{base} exists and holds no {MANIFEST}: refusing to write into it")
    return {"seed": args.seed, "branches": args.branches, "records_per_block": args.records_per_block,
            "chain_id": CHAIN_ID, "home": "branch-00", "validators": [f"branch-{i:02d}" for i in range(N_VALIDATORS)]}


# ------------------------------------------------------------------ generation


def generate(args: argparse.Namespace) -> dict:
    base = Path(args.dir)
    manifest = load_manifest(base, args)
    mix = Mix(args.seed, args.branches)
    if not (base / MANIFEST).exists():
        create_homes(base, mix)
    homes = [Home(base / name) for name in manifest["validators"]]
    genesis = Genesis.loads(homes[0].genesis.read_bytes())
    vkeys = [load_key(h.key) for h in homes]
    store = Store(homes[0].db, genesis)
    store._db.execute("PRAGMA synchronous=OFF")  # bulk load (see the module docstring)
    state = store.load_state() if store.height else LedgerState(genesis)
    done = store._read("SELECT COALESCE(SUM(num_records), 0) FROM blocks")[0][0]
    start_records, start_height = done, state.height
    total = args.records
    seqs = {(bid, e.subject): e.seq for bid, e in state.entries()}
    branch_ids = [mix.member_key(b).branch_id for b in range(mix.branches)]
    rpb = args.records_per_block
    chunk = rpb * max(1, 2000 // rpb)

    def plan(first: int, n: int, height: int) -> list[tuple]:
        tasks = []
        for k in range(first, first + n):
            b, what, s, variant = mix.plan(k)
            subject = "profile" if what == "profile" else f"{'service' if what == 'offer' else 'status'}/{service_id(b, s)}"
            key = (branch_ids[b], subject)
            seqs[key] = seq = seqs.get(key, 0) + 1
            block_time = genesis.genesis_time_ms + (height + (k - first) // rpb + 1) * BLOCK_INTERVAL_MS
            tasks.append((b, what, s, variant, seq, block_time - 1 - (k % 500)))
        return tasks

    print(f"generating {total - done:,} records ({done:,} already written) over {mix.branches} branches "
          f"into {homes[0].path} ...", file=sys.stderr)
    t0 = last_print = time.monotonic()
    prepared, prepared_records = [], 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.processes) as pool:
        in_flight: deque = deque()
        next_k, next_height = done, state.height
        try:
            while done < total:
                while next_k < total and len(in_flight) < 2 * args.processes + 2:
                    n = min(chunk, total - next_k)
                    tasks = plan(next_k, n, next_height)
                    in_flight.append(pool.apply_async(sign_chunk, ((args.seed, args.branches, CHAIN_ID,
                                                                     genesis.genesis_time_ms, tasks),)))
                    next_k += n
                    next_height += (n + rpb - 1) // rpb
                raws = in_flight.popleft().get(timeout=600)
                records = [Record.decode(raw, chain_id=CHAIN_ID) for raw in raws]
                for i in range(0, len(records), rpb):
                    block_records = records[i : i + rpb]
                    h = state.height + 1
                    block, tx, rejected = build_block(
                        state, height=h, round=0, time_ms=genesis.genesis_time_ms + h * BLOCK_INTERVAL_MS,
                        proposer=vkeys[h % N_VALIDATORS].branch_id, candidates=block_records,
                        verified={r.hash for r in block_records})
                    if rejected or len(block.records) != len(block_records):
                        raise RuntimeError(f"block {h} refused a generated record: {rejected[:1]}")
                    cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in vkeys])
                    prepared.append(store.prepare_block(block, cert, tx))
                    tx.commit()
                    prepared_records += len(block_records)
                    done += len(block_records)
                    if prepared_records >= WRITE_BATCH_RECORDS:
                        store.write_prepared(prepared)
                        prepared, prepared_records = [], 0
                now = time.monotonic()
                if now - last_print >= args.progress_every:
                    rate = (done - start_records) / (now - t0)
                    print(f"  {done:>12,} / {total:,} records ({100 * done / total:5.1f} %), height {state.height:,}, "
                          f"{rate:,.0f} records/s, eta {(total - done) / max(rate, 1e-9):,.0f} s", file=sys.stderr)
                    last_print = now
            store.write_prepared(prepared)
        except BaseException:
            pool.terminate()  # what is written is whole batches; the same command resumes
            raise
        finally:
            store.close()
    seconds = time.monotonic() - t0
    manifest.update(records=done, height=state.height)
    (base / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    db_bytes = sum(p.stat().st_size for p in homes[0].data.glob("node.db*"))
    return {
        "dir": str(base), "home": str(homes[0].path), "chain_id": CHAIN_ID, "branches": mix.branches,
        "records": done, "height": state.height, "records_per_block": rpb,
        "written_now": done - start_records, "resumed_from_height": start_height,
        "state_subjects": sum(1 for _ in state.entries()),
        "db_bytes": db_bytes, "db_bytes_per_record": round(db_bytes / max(done, 1), 1),
        "seconds": round(seconds, 1), "records_per_s": round((done - start_records) / max(seconds, 1e-9), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.gen_history", description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, required=True, help="committed records in the chain")
    ap.add_argument("--branches", type=int, required=True, help="member branches besides the 4 validators (≤ 1020)")
    ap.add_argument("--dir", required=True, help="where the homes go (created; or resumed if it holds history.json)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--records-per-block", type=int, default=500)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="signing processes (default: cores)")
    ap.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not 1 <= args.branches <= 1020 or args.records < 1 or not 1 <= args.records_per_block <= 10_000:
        ap.error("need 1 ≤ --branches ≤ 1020, --records ≥ 1 and 1 ≤ --records-per-block ≤ 10000")
    out = generate(args)
    print_result(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
