"""What serving ``GET /v1/events`` costs the node, per block and subscriber.

    python -m tools.bench_events [--blocks N] [--records R] [--json]

Serves the node's own event encoding (node/api/events.py) for N blocks of R records
each through starlette's StreamingResponse under hypercorn on trio, as the node's API
does, to one client reading on 127.0.0.1 in a thread; reports the server trio thread's
CPU per block (``time.thread_time``). Two ways of sending, alternated twice:

* ``per_block``: what the node does, one chunk per block with all its events;
* ``per_event``: one chunk per event (the block, then each record), as before 7e69823,
  for comparison.

Blocks and records are stand-ins with the fields the events carry; nothing is signed
or validated. Figures: docs/PERFORMANCE.md, "The 16 + 48 tail, looked at node by node".
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import socket
import sys
import threading
import time
from types import SimpleNamespace
from typing import Iterator

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from node.api.events import _block_events, _event
from node.api.views import record_event

CLIENT_TIMEOUT = 120.0  # seconds the reading client waits for any one line


def make_blocks(n: int, records: int) -> list[SimpleNamespace]:
    def record(i: int) -> SimpleNamespace:
        return SimpleNamespace(hash=hashlib.sha256(b"%d" % i).digest(), kind="service.status", branch_id=b"b" * 20,
                               subject=f"status/svc-{i}")

    return [SimpleNamespace(header=SimpleNamespace(height=h, time_ms=h, validators_hash=b"v" * 32,
                                                   next_validators_hash=b"v" * 32),
                            hash=hashlib.sha256(b"block %d" % h).digest(), records=[record(h * records + j) for j in range(records)])
            for h in range(1, n + 1)]


def per_event(block: SimpleNamespace) -> Iterator[bytes]:
    h = block.header
    yield _event("block", {"height": h.height, "hash": block.hash.hex(), "time_ms": h.time_ms, "num_records": len(block.records)})
    for rec in block.records:
        yield _event("record", record_event(rec, h.height))


def per_block(block: SimpleNamespace) -> Iterator[bytes]:
    yield _block_events(block)


MODES = {"per_block": per_block, "per_event": per_event}


def read_all(port: int, mode: str, expect: int, out: list[int]) -> None:
    """The client: read the stream until ``expect`` record events came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", f"/events?mode={mode}")
        response = conn.getresponse()
        seen = 0
        while seen < expect:
            line = response.readline()
            if not line:
                break
            seen += line.startswith(b"event: record")
        out.append(seen)
    finally:
        conn.close()


async def measure(blocks: list[SimpleNamespace], rounds: int = 2) -> dict[str, list[float]]:
    cpu: dict[str, float] = {}

    async def stream(mode: str):
        start = time.thread_time()
        yield b": connected\n\n"
        for i, block in enumerate(blocks):
            if i == len(blocks) - 1:  # the client stops reading at the last record: time up to here
                cpu[mode] = time.thread_time() - start
            for chunk in MODES[mode](block):
                yield chunk
            await trio.lowlevel.checkpoint()

    async def events(request):
        return StreamingResponse(stream(request.query_params["mode"]), media_type="text/event-stream")

    app = Starlette(routes=[Route("/events", events)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "ERROR"
    expect = sum(len(b.records) for b in blocks)
    results: dict[str, list[float]] = {m: [] for m in MODES}
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, app, config)
            for _ in range(rounds):
                for mode in ("per_event", "per_block"):
                    cpu.pop(mode, None)
                    got: list[int] = []
                    client = threading.Thread(target=read_all, args=(port, mode, expect, got), daemon=True)
                    client.start()
                    while client.is_alive() or mode not in cpu:
                        await trio.sleep(0.01)
                    if got != [expect]:
                        raise RuntimeError(f"{mode}: the client read {got} of {expect} record events")
                    results[mode].append(round(cpu[mode] / len(blocks) * 1e6, 1))
            nursery.cancel_scope.cancel()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--records", type=int, default=30, help="records per block")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = trio.run(measure, make_blocks(args.blocks, args.records))
    out = {"blocks": args.blocks, "records_per_block": args.records,
           "server_cpu_us_per_block": results}
    if args.json:
        print(json.dumps(out))
    else:
        for mode, values in results.items():
            print(f"{mode:10s} server trio thread CPU per block: {', '.join(f'{v:.0f}' for v in values)} µs", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
