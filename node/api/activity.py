"""``GET /v1/activity``: block intervals, finality and validator signing over the
last blocks, read from the stored blocks and this node's certificates.

The blocks are the node's own (it verified them before storing), so only what
is needed is decoded: each header, the number of records, the signing time of
up to :data:`SAMPLE_RECORDS` records per block, and the certificate's signers.
Who "missed" a block is judged by the certificate this node holds; another node
may hold another valid certificate for the same block (PROTOCOL.md §9.3), so
the counts can differ between nodes by a signature here and there.
"""

from __future__ import annotations

from statistics import median_low
from typing import Any

import msgspec

from protocol.blocks import Header
from protocol.votes import CommitCertificate

DEFAULT_WINDOW = 100
MAX_WINDOW = 1000
SAMPLE_RECORDS = 256
_RECORD_TIME_INDEX = 5  # [version, kind, chain_id, branch_id, seq, time_ms, body, signature]


def _read_block(block_bytes: bytes) -> tuple[Header, int, list[int]]:
    """Header, number of records and the signing times of the first SAMPLE_RECORDS records."""
    unpacker = msgspec.msgpack.Decoder()
    header_array, records, _evidence = unpacker.decode(block_bytes)
    times = [unpacker.decode(raw)[_RECORD_TIME_INDEX] for raw in records[:SAMPLE_RECORDS]]
    return Header.from_array(header_array), len(records), times


def activity(node: Any, *, window: int) -> dict[str, Any]:
    chain = node.chain
    top = chain.height
    start = max(1, top - window + 1)
    rows = chain.store.raw_blocks(max(1, start - 1), top - start + 2) if top >= 1 else []
    validators = chain.state.validators  # the set in force (the genesis set until governance changes it)
    power = {v.branch_id: v.power for v in validators}
    signed = {v.branch_id: 0 for v in validators}
    last_signed: dict[bytes, int | None] = {v.branch_id: None for v in validators}
    blocks = []
    prev_time: int | None = None
    for height, block_bytes, cert_bytes in rows:
        header, num_records, record_times = _read_block(bytes(block_bytes))
        if height < start:  # the block before the window: only its time, for the first interval
            prev_time = header.time_ms
            continue
        cert = CommitCertificate.decode(bytes(cert_bytes))
        signers = [vid for vid, _sig in cert.signatures if vid in power]
        for vid in signers:
            signed[vid] += 1
            last_signed[vid] = height
        blocks.append({
            "height": height,
            "time_ms": header.time_ms,
            "interval_ms": header.time_ms - prev_time if prev_time is not None else None,
            "round": cert.round,
            "num_records": num_records,
            "finality_ms": median_low(header.time_ms - t for t in record_times) if record_times else None,
            "signed_power": sum(power[vid] for vid in signers),
        })
        prev_time = header.time_ms
    names = {mb.branch_id: mb.name for mb in node.genesis.members}
    return {
        "window": window,
        "from_height": blocks[0]["height"] if blocks else 0,
        "to_height": blocks[-1]["height"] if blocks else 0,
        "total_power": validators.total_power,
        "blocks": blocks,
        "validators": [
            {"branch_id": v.branch_id.hex(), "name": names.get(v.branch_id, v.name), "power": v.power,
             "signed": signed[v.branch_id], "missed": len(blocks) - signed[v.branch_id],
             "last_signed_height": last_signed[v.branch_id]}
            for v in validators
        ],
    }
