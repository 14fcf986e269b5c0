"""Serving ``/branchnet/{chain}/sync/1``: peers fetch blocks, certificates and records from us.

Requests (docs/PROTOCOL.md §11.2; codec in :mod:`protocol.wire`):

* status -> our height and last block hash;
* a range of committed blocks with their certificates (≤ 64 blocks, ≤ 16 MiB);
* one block by hash: a current candidate (a proposal's block) or a committed one;
* records by hash (≤ 1024), from the mempool, the candidates, then the store —
  for a compact proposal whose records the asker lacks.

A malformed request is answered ``bad request``, counted, and penalises the
peer on the transport; nothing a peer sends here changes any state. Store reads run in a worker thread.
"""

from __future__ import annotations

from typing import Callable

from protocol import wire
from protocol.errors import DecodeError

from ..candidates import CandidateBlocks
from ..mempool import Mempool
from ..metrics import NodeMetrics
from ..runtime import REAL, Runtime
from ..store import ChainReader


class SyncServer:
    def __init__(self, *, reader: ChainReader, candidates: CandidateBlocks, mempool: Mempool,
                 metrics: NodeMetrics, status: Callable[[], tuple[int, bytes]], runtime: Runtime = REAL,
                 penalize: Callable[..., None] = lambda peer, reason, **kw: None):
        self.reader = reader
        self.candidates = candidates
        self.mempool = mempool
        self.metrics = metrics
        self.status = status  # () -> (height, last block hash)
        self.runtime = runtime
        self.penalize = penalize  # (peer, reason, *, fault, protocol): the transport's peer scoring

    async def serve_request(self, peer_id: str, data: bytes) -> bytes:
        """Answer one request (the stream layer's handler for the sync protocol)."""
        try:
            op, args = wire.decode_request(data)
        except DecodeError as exc:
            self.metrics.reject("sync_request", exc.reason)
            self.penalize(peer_id, exc.reason, fault="malformed", protocol="sync")
            return wire.response(wire.BAD_REQUEST, str(exc))
        if op == wire.REQ_STATUS:
            return wire.response(wire.OK, list(self.status()))
        if op == wire.REQ_BLOCKS:
            return wire.response(wire.OK, await self._blocks(*args))
        if op == wire.REQ_RECORDS:
            return wire.response(wire.OK, await self._records_by_hash(args[0]))
        return await self._block_by_hash(args[0])

    async def _blocks(self, start: int, count: int) -> list[list[bytes]]:
        rows = await self.runtime.run_sync(self.reader.raw_blocks, start, min(count, wire.MAX_SYNC_BLOCKS))
        out, size = [], 0
        for _, block, cert in rows:
            size += len(block) + len(cert)
            if out and size > wire.MAX_RESPONSE_BYTES - 4096:
                break
            out.append([block, cert])
        return out

    async def _block_by_hash(self, block_hash: bytes) -> bytes:
        cand = self.candidates.get(block_hash)
        if cand is not None:
            return wire.response(wire.OK, cand.block.encode())
        raw = await self.runtime.run_sync(self.reader.raw_block_by_hash, block_hash)
        if raw is None:
            return wire.response(wire.NOT_FOUND, "not found")
        return wire.response(wire.OK, raw)

    async def _records_by_hash(self, hashes: list[bytes]) -> list[bytes | None]:
        """Raw records for ``hashes`` (None where unknown) from the mempool, the
        candidate blocks, then the store; at most MAX_RESPONSE_BYTES in all."""
        found: dict[bytes, bytes] = {}
        for h in hashes:
            r = self.mempool.get(h)
            if r is not None:
                found[h] = r.raw
        wanted = set(hashes) - set(found)
        if wanted:
            found.update(self.candidates.raw_records(wanted))
        missing = [h for h in hashes if h not in found]
        if missing:
            found.update(await self.runtime.run_sync(self.reader.raw_records, missing))
        out, size = [], 0
        for h in hashes:
            raw = found.get(h)
            size += len(raw) + 3 if raw else 1
            out.append(raw if size <= wire.MAX_RESPONSE_BYTES - 4096 else None)
        return out
