"""The asking side of ``/branchnet/{chain}/sync/1``: typed requests to one peer.

Every method sends one request and decodes the answer with :mod:`protocol.wire`;
nothing is trusted beyond its shape: blocks and records come back decoded but
their certificates and signatures are the caller's to check. Raises

* :class:`node.p2p.P2PError` — the peer is unreachable or its stream broke;
* :class:`protocol.errors.RemoteProtocolError` — the peer answered garbage or
  an error status (``wire.Refused``; reason ``not_found`` when it lacks the item);
* :class:`trio.TooSlowError` — no answer within the timeout.
"""

from __future__ import annotations

from typing import Any

import trio

from protocol import wire
from protocol.blocks import Block
from protocol.errors import DecodeError, ValidationError
from protocol.records import Record
from protocol.votes import CommitCertificate

STATUS_TIMEOUT = 3.0
FETCH_TIMEOUT = 10.0
BLOCK_TIMEOUT = 5.0


class SyncClient:
    def __init__(self, network: Any, chain_id: str, decode_block: Any):
        self.net = network
        self.chain_id = chain_id
        self.protocol = wire.sync_protocol(chain_id)
        self.decode_block = decode_block  # bytes -> Block within the genesis limits

    async def _ask(self, peer: str, request: list, timeout: float) -> bytes:
        return await self.net.request(peer, self.protocol, wire.encode(request), timeout=timeout)

    async def status(self, peer: str) -> tuple[int, bytes]:
        """The peer's committed height and last block hash."""
        return wire.decode_status_response(await self._ask(peer, [wire.REQ_STATUS], STATUS_TIMEOUT))

    async def fetch_range(self, peer: str, start: int, count: int) -> list[tuple[Block, CommitCertificate]]:
        """Blocks ``start``.. (at most ``count``, maybe fewer) with their certificates, in order."""
        pairs = wire.decode_blocks_response(await self._ask(peer, [wire.REQ_BLOCKS, start, count], FETCH_TIMEOUT),
                                            max_blocks=count)
        out = []
        for i, (raw_block, raw_cert) in enumerate(pairs):
            if i:  # the API and consensus run between blocks: a range of ~4,096 records is tens of ms to decode
                await trio.lowlevel.checkpoint()
            block = self.decode_block(raw_block)
            if block.height != start + i:
                raise DecodeError("block out of order", field=f"blocks[{i}]", reason="order")
            out.append((block, CommitCertificate.decode(raw_cert)))
        return out

    async def fetch_block(self, peer: str, block_hash: bytes) -> Block:
        """The block with this hash (a proposal's or a committed one)."""
        block = self.decode_block(wire.decode_block_response(
            await self._ask(peer, [wire.REQ_BLOCK, block_hash], BLOCK_TIMEOUT)))
        if block.hash != block_hash:
            raise ValidationError("peer sent another block than asked", field="block", reason="wrong_block")
        return block

    async def fetch_records(self, peer: str, hashes: list[bytes]) -> dict[bytes, Record]:
        """The records among ``hashes`` (≤ 1024) that the peer has, decoded, by hash."""
        raws = wire.decode_records_response(await self._ask(peer, [wire.REQ_RECORDS, hashes], BLOCK_TIMEOUT), len(hashes))
        out: dict[bytes, Record] = {}
        for h, raw in zip(hashes, raws):
            if raw is None:
                continue
            record = Record.decode(raw, chain_id=self.chain_id)
            if record.hash != h:
                raise ValidationError("peer sent another record than asked", field="records", reason="wrong_record")
            out[h] = record
        return out
