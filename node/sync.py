"""Block sync: serve blocks to peers, and catch up from them.

Server: answers ``/branchnet/{chain}/sync/1`` requests (status, a range of
blocks with their certificates, one block by hash — committed or a current
candidate — and records by hash, for compact proposals) from memory and the
store. Every request is bounded (≤ 64 blocks, ≤ 1024 records, ≤ 16 MiB).

Client (:meth:`BlockSync.run`): every ``interval`` seconds, or at once when
poked (a block announcement or a consensus message from a height ahead), asks
connected peers for their height. While some peer is ahead it fetches ranges
from several peers at once (pipelined, ``window`` requests in flight), checks
each certificate and every record, and commits blocks in height order through
:meth:`Chain.commit` — the same path consensus uses. A peer that sends a bad
block is counted and skipped for that range.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from protocol.errors import ProtocolError
from protocol.votes import CommitCertificate

from . import wire
from .chain import Chain, ChainHalted
from .p2p.errors import P2PError

log = logging.getLogger("branchnet.sync")


class BlockSync:
    def __init__(self, chain: Chain, network: Any, *, interval: float = 1.0, batch: int = 64, window: int = 4):
        self.chain = chain
        self.net = network
        self.interval = interval
        self.batch = batch
        self.window = window
        self.protocol = wire.sync_protocol(chain.genesis.chain_id)
        self.peer_heights: dict[str, int] = {}
        self.syncing = False
        self.synced_blocks = 0
        self._poke = trio.Event()
        net_register = getattr(network, "register_handler", None)
        if net_register is not None:
            net_register(self.protocol, self.handle_request)

    def poke(self, height_hint: int = 0) -> None:
        if height_hint > self.chain.height:
            self._poke.set()

    def statistics(self) -> dict[str, Any]:
        best = max(self.peer_heights.values(), default=self.chain.height)
        return {"syncing": self.syncing, "best_peer_height": best, "lag": max(best - self.chain.height, 0),
                "synced_blocks": self.synced_blocks}

    # ------------------------------------------------------------ server
    async def handle_request(self, peer_id: str, data: bytes) -> bytes:
        try:
            op, args = wire.decode_request(data)
        except ProtocolError as exc:
            self.chain.metrics.reject("sync_request", exc.reason)
            return wire.response(wire.BAD_REQUEST, str(exc))
        store = self.chain.store
        if op == wire.REQ_STATUS:
            return wire.response(wire.OK, [self.chain.height, self.chain.state.last_block_hash])
        if op == wire.REQ_BLOCKS:
            start, count = args
            rows = await trio.to_thread.run_sync(store.raw_blocks, start, min(count, wire.MAX_SYNC_BLOCKS))
            out, size = [], 0
            for _, block, cert in rows:
                size += len(block) + len(cert)
                if out and size > wire.MAX_RESPONSE_BYTES - 4096:
                    break
                out.append([block, cert])
            return wire.response(wire.OK, out)
        if op == wire.REQ_RECORDS:
            return wire.response(wire.OK, await self._records_by_hash(args[0]))
        (block_hash,) = args
        cand = self.chain.candidates.get(block_hash)
        if cand is not None:
            return wire.response(wire.OK, cand.block.encode())
        raw = await trio.to_thread.run_sync(store.raw_block_by_hash, block_hash)
        if raw is None:
            return wire.response(wire.NOT_FOUND, "not found")
        return wire.response(wire.OK, raw)

    async def _records_by_hash(self, hashes: list[bytes]) -> list[bytes | None]:
        """Raw records for ``hashes`` (None where unknown) from the mempool, the
        candidate blocks, then the store; at most MAX_RESPONSE_BYTES in all."""
        chain = self.chain
        found: dict[bytes, bytes] = {}
        wanted = set(hashes)
        for h in hashes:
            r = chain.mempool.get(h)
            if r is not None:
                found[h] = r.raw
        if len(found) < len(wanted):
            for cand in list(chain.candidates.values()):
                for r in cand.block.records:
                    if r.hash in wanted:
                        found.setdefault(r.hash, r.raw)
        missing = [h for h in hashes if h not in found]
        if missing:
            found.update(await trio.to_thread.run_sync(chain.store.raw_records, missing))
        out, size = [], 0
        for h in hashes:
            raw = found.get(h)
            size += len(raw) + 3 if raw else 1
            out.append(raw if size <= wire.MAX_RESPONSE_BYTES - 4096 else None)
        return out

    # ------------------------------------------------------------ client
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            with trio.move_on_after(self.interval):
                await self._poke.wait()
            self._poke = trio.Event()
            try:
                await self._poll_and_catch_up()
            except ChainHalted:
                raise
            except (P2PError, ProtocolError, trio.TooSlowError) as exc:
                log.warning("sync round failed: %s", exc)

    async def _status(self, peer: str) -> None:
        try:
            reply = await self.net.request(peer, self.protocol, wire.encode([wire.REQ_STATUS]), timeout=3)
            status, payload = wire.decode_response(reply)
            if status == wire.OK and type(payload) is list and len(payload) == 2 and type(payload[0]) is int:
                self.peer_heights[peer] = payload[0]
        except (P2PError, ProtocolError, trio.TooSlowError):
            self.peer_heights.pop(peer, None)

    async def _poll_and_catch_up(self) -> None:
        peers = self.net.connected_peers()
        self.chain.metrics.peers.set(len(peers))
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(self._status, peer)
        for gone in set(self.peer_heights) - set(peers):
            self.peer_heights.pop(gone, None)
        best = max(self.peer_heights.values(), default=0)
        self.chain.metrics.sync_lag.set(max(best - self.chain.height, 0))
        if best <= self.chain.height:
            return
        self.syncing = True
        try:
            await self.catch_up(best)
        finally:
            self.syncing = False
            self.chain.metrics.sync_lag.set(max(max(self.peer_heights.values(), default=0) - self.chain.height, 0))

    async def catch_up(self, target: int) -> None:
        """Fetch and commit blocks up to ``target`` from peers that have them."""
        log.info("syncing from height %d to %d", self.chain.height, target)
        next_start = self.chain.height + 1
        # start height -> ([(block, cert)], verified record hashes) ([] on failure), or the
        # ProtocolError of a bad certificate
        fetched: dict[int, tuple[list, set[bytes]] | ProtocolError] = {}
        ready = trio.Event()

        async def fetch(start: int, peer: str) -> None:
            # Fetch, then check certificates and signatures while earlier ranges commit.
            nonlocal ready
            try:
                blocks = await self._fetch_range(peer, start, min(self.batch, target - start + 1))
            except (P2PError, ProtocolError, trio.TooSlowError) as exc:
                log.debug("range %d from %s failed: %s", start, peer, exc)
                blocks = []
            try:
                fetched[start] = (blocks, await self.chain.preverify(blocks))
            except ProtocolError as exc:
                fetched[start] = exc
            ready.set()

        async with trio.open_nursery() as nursery:
            in_flight: set[int] = set()
            rr = 0
            while self.chain.height < target:
                peers = [p for p, h in self.peer_heights.items() if h >= next_start]
                while peers and len(in_flight) < self.window and next_start <= target:
                    peer = peers[rr % len(peers)]
                    rr += 1
                    in_flight.add(next_start)
                    nursery.start_soon(fetch, next_start, peer)
                    next_start += self.batch
                if not in_flight:
                    break
                lowest = min(in_flight)
                while lowest not in fetched:
                    await ready.wait()
                    ready = trio.Event()
                in_flight.discard(lowest)
                result = fetched.pop(lowest)
                if isinstance(result, ProtocolError):
                    self.chain.metrics.reject("sync", result.reason)
                    log.warning("blocks %d.. from a peer rejected: %s", lowest, result)
                    nursery.cancel_scope.cancel()
                    return
                blocks, verified = result
                if not blocks:  # failed or empty: retry this range from the next peer
                    if self.chain.height + 1 == lowest and peers:
                        in_flight.add(lowest)
                        nursery.start_soon(fetch, lowest, peers[rr % len(peers)])
                        rr += 1
                        await trio.sleep(0.05)
                    continue
                try:
                    self.synced_blocks += await self.chain.commit_batch(blocks, via="sync", verified=verified)
                except ProtocolError as exc:
                    self.chain.metrics.reject("sync", exc.reason)
                    log.warning("blocks %d.. from a peer rejected: %s", lowest, exc)
                    nursery.cancel_scope.cancel()
                    return
            nursery.cancel_scope.cancel()

    async def _fetch_range(self, peer: str, start: int, count: int) -> list:
        reply = await self.net.request(peer, self.protocol, wire.encode([wire.REQ_BLOCKS, start, count]), timeout=10)
        status, payload = wire.decode_response(reply)
        if status != wire.OK or type(payload) is not list:
            return []
        out = []
        for i, item in enumerate(payload[:count]):
            if type(item) is not list or len(item) != 2 or type(item[0]) is not bytes or type(item[1]) is not bytes:
                raise ProtocolError("malformed block entry", field=f"blocks[{i}]", reason="malformed")
            block = self.chain.decode_block(item[0])
            cert = CommitCertificate.decode(item[1])
            if block.height != start + i:
                raise ProtocolError("block out of order", field=f"blocks[{i}]", reason="order")
            out.append((block, cert))
        return out
