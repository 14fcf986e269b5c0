"""The server-sent-events stream of new blocks and their records (``GET /v1/events``).

Each committed block becomes one ``event: block`` and then one ``event: record``
per record in it, sent together as one chunk: hypercorn's path costs ~50 µs of
the trio thread per chunk, so a block of 30 records took 1.4-1.8 ms per
subscriber sent event by event and 0.17 ms as one chunk (tools/bench_events.py).
A comment line (``: keep-alive``) goes out every ``KEEPALIVE_S`` seconds of
silence so proxies keep the connection open.

The stream reads from :meth:`Chain.subscribe_blocks`, whose sender never
waits: when a client reads too slowly its buffer fills, the chain drops the
subscription, and this stream notices and ends with ``event: dropped`` (the
client reconnects and catches up through ``/v1/blocks``). Commits never block
on a client.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import trio

from .views import record_event

KEEPALIVE_S = 15.0
BUFFER_BLOCKS = 64


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _block_events(block: Any) -> bytes:
    """A block's events, in order: the block, its records, a validator set change."""
    h = block.header
    events = [_event("block", {"height": h.height, "hash": block.hash.hex(), "time_ms": h.time_ms,
                               "num_records": len(block.records)})]
    events += [_event("record", record_event(rec, h.height)) for rec in block.records]
    if h.next_validators_hash != h.validators_hash:
        events.append(_event("validator_set", {"height": h.height, "effective_height": h.height + 1,
                                               "validators_hash": h.next_validators_hash.hex()}))
    return b"".join(events)


async def block_events(node: Any, *, keepalive: float = KEEPALIVE_S) -> AsyncIterator[bytes]:
    blocks = node.chain.subscribe_blocks(BUFFER_BLOCKS)
    try:
        yield b": connected\n\n"
        while True:
            stats = blocks.statistics()
            if stats.current_buffer_used >= stats.max_buffer_size:
                # Full: the chain has dropped (or is about to drop) this subscriber.
                yield _event("dropped", {"reason": "client too slow", "height": node.chain.height})
                return
            block = None
            with trio.move_on_after(keepalive):  # never yield inside a cancel scope
                block = await blocks.receive()
            if block is None:
                yield b": keep-alive\n\n"
                continue
            yield _block_events(block)
    finally:
        blocks.close()  # the chain removes a closed subscriber on its next send
