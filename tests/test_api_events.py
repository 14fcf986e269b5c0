"""``GET /v1/events`` without a node: what the stream yields for blocks, slow clients and silence
(the stream over a real node is tests/test_api.py::test_events_stream)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import trio

import factories as f
from openapi_check import validate_schema
from node.api.events import BUFFER_BLOCKS, block_events
from protocol.records import Record

WAIT = 30  # seconds: upper bound for any single wait


class _FakeChain:
    def __init__(self, prefill: int):
        self.height = 7
        self.prefill = prefill
        self.channel = None

    def subscribe_blocks(self, buffer: int):
        send, recv = trio.open_memory_channel(buffer)
        for _ in range(min(self.prefill, buffer)):
            send.send_nowait(None)
        self.channel = send
        return recv


class _FakeNode:
    def __init__(self, prefill: int = 0):
        self.chain = _FakeChain(prefill)


def _events(chunk: bytes) -> list[tuple[str, dict]]:
    out = []
    for event in chunk.decode().split("\n\n")[:-1]:
        name, data = event.split("\n")
        assert name.startswith("event: ") and data.startswith("data: ")
        out.append((name[7:], json.loads(data[6:])))
    return out


async def test_events_send_a_block_and_its_records_as_one_chunk():
    """One send per block, not one per event (hypercorn's path costs ~50 µs per chunk)."""
    key = f.key("branch-a")
    records = [Record.create(key, "branchnet-test", seq, f.GENESIS_TIME_MS, f.status(f"svc-{seq}")) for seq in (1, 2, 3)]
    header = SimpleNamespace(height=8, time_ms=f.GENESIS_TIME_MS + 8, validators_hash=b"v" * 32, next_validators_hash=b"w" * 32)
    block = SimpleNamespace(header=header, hash=b"\x01" * 32, records=records)
    node = _FakeNode()
    stream = block_events(node)
    assert await anext(stream) == b": connected\n\n"
    node.chain.channel.send_nowait(block)
    with trio.fail_after(WAIT):
        chunk = await anext(stream)
    events = _events(chunk)
    assert [name for name, _ in events] == ["block", "record", "record", "record", "validator_set"]
    assert events[0][1] == {"height": 8, "hash": "01" * 32, "time_ms": f.GENESIS_TIME_MS + 8, "num_records": 3}
    assert [doc["hash"] for _, doc in events[1:4]] == [r.hash.hex() for r in records]
    assert events[4][1] == {"height": 8, "effective_height": 9, "validators_hash": "77" * 32}
    for name, schema in (("block", "BlockEvent"), ("record", "RecordEvent"), ("validator_set", "ValidatorSetEvent")):
        for doc in (doc for n, doc in events if n == name):
            validate_schema(doc, {"$ref": f"#/components/schemas/{schema}"})
    await stream.aclose()


async def test_events_drop_a_slow_client_and_keep_alive():
    slow = _FakeNode(prefill=BUFFER_BLOCKS)  # the client never read: the buffer is full
    stream = block_events(slow)
    assert await anext(stream) == b": connected\n\n"
    dropped = await anext(stream)
    assert dropped.startswith(b"event: dropped\n") and b'"height":7' in dropped
    validate_schema(json.loads(dropped.split(b"data: ", 1)[1]), {"$ref": "#/components/schemas/DroppedEvent"})
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    with pytest.raises(trio.BrokenResourceError):  # the subscription is closed; the chain forgets it on its next send
        slow.chain.channel.send_nowait(None)

    idle = block_events(_FakeNode(), keepalive=0.01)
    assert await anext(idle) == b": connected\n\n"
    with trio.fail_after(WAIT):
        assert await anext(idle) == b": keep-alive\n\n"
    await idle.aclose()
