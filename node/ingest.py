"""Records in and out: local submissions, pushes from peers, the records gossip topic.

Every record is decoded, pre-checked against state and mempool (cheap: no
signature work for duplicates, replays or non-members), signature-verified in
worker threads, then added to the mempool.

Records accepted locally leave in batches of up to 64 KiB (at most one batch
per ``flush_interval``, 100 ms, unless a batch fills up). Each batch is pushed
straight to every connected validator over ``/branchnet/{chain}/records/1``
(request = the batch, answer = how many records were new), so each validator
receives it once; every validator has its own queue (at most 64 batches) and
sender task, so a slow validator delays only its own copy. Gossip carries a
batch only when some validator is not connected or a push failed: gossipsub
relays every message to every mesh peer, so a validator would otherwise
receive and decrypt each batch once per peer (py-libp2p was about a third of a
validator's CPU samples at 2,000 records/s before this; py-spy). Records of our
own clients that are still uncommitted are sent again every
``regossip_interval`` seconds, the same way.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import trio

from protocol.errors import ProtocolError
from protocol.records import Record

from . import wire
from .chain import Chain, verify_records_in_threads
from .mempool import MempoolRejected
from .p2p.errors import P2PError
from .p2p.host import peer_id_of

log = logging.getLogger("branchnet.ingest")
MAX_QUEUED_PUSHES = 64  # batches (of up to 64 KiB) waiting for one validator


class RecordIngest:
    def __init__(self, chain: Chain, network: Any, *, flush_interval: float = 0.1, regossip_interval: float = 3.0,
                 on_new_records=None):
        self.chain = chain
        self.net = network
        self.flush_interval = flush_interval
        self.regossip_interval = regossip_interval
        self._local: dict[bytes, tuple[bytes, float]] = {}  # our clients' uncommitted records: hash -> (raw, last sent)
        self._resend = 0
        self.regossiped_records = 0
        self.on_new_records = on_new_records or (lambda: None)
        self.topic = wire.topics(chain.genesis.chain_id)[0]
        self.protocol = wire.records_protocol(chain.genesis.chain_id)
        self.push_timeout = 10.0
        self._validator_peers = {peer_id_of(v.public_key.raw) for v in chain.state.validators} - {network.peer_id}
        self._outbox: list[bytes] = []
        self._flush = trio.Event()
        self.gossiped_batches = 0
        self.pushed_batches = 0
        self.push_failures = 0
        self.push_dropped = 0
        self._push_queues: dict[str, deque] = {}  # validator peer id -> encoded batches to push
        self._pushing: set[str] = set()  # peers whose sender task is running
        self._nursery: trio.Nursery | None = None
        self.received_records = 0
        network.register_handler(self.protocol, self.handle_push)

    # ------------------------------------------------------------ local
    async def submit(self, raw: bytes) -> Record:
        """Validate and accept one signed record. Raises ProtocolError or MempoolRejected."""
        chain = self.chain
        try:
            record = Record.decode(raw, chain_id=chain.genesis.chain_id)
        except ProtocolError as exc:
            chain.metrics.reject("api", exc.reason)
            raise
        try:
            chain.mempool.precheck(record)
        except MempoolRejected as exc:
            chain.metrics.reject("api", exc.reason)
            raise
        key = chain.state.members[record.branch_id]
        try:
            await trio.to_thread.run_sync(record.verify, key)
        except ProtocolError as exc:
            chain.metrics.reject("api", exc.reason)
            chain.mempool.reject_invalid_signature(record)
            raise
        chain.mempool.add(record)
        self._local[record.hash] = (record.raw, trio.current_time())
        chain.submitted_at[record.hash] = trio.current_time()
        chain.metrics.mempool_records.set(len(chain.mempool))
        self._queue(record.raw)
        self.on_new_records()
        return record

    def _queue(self, raw: bytes) -> None:
        self._outbox.append(raw)
        self._flush.set()

    # ------------------------------------------------------------ network
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        incoming = await self.net.subscribe(self.topic)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._sender)
            nursery.start_soon(self._receiver, incoming)
            nursery.start_soon(self._regossip)
            task_status.started()

    async def _regossip(self) -> None:
        """Deliveries can be lost (gossip drops, a validator restarts and forgets its
        mempool): re-send our clients' records still uncommitted ``regossip_interval``
        after they were last sent. Records that left the mempool (committed,
        superseded, dropped) are forgotten."""
        while True:
            await trio.sleep(self.regossip_interval / 2)
            due = self._due_for_resend(trio.current_time())
            if due:
                self._resend += 1
                self.regossiped_records += len(due)
                for raw in due:
                    self._queue(raw)

    def _due_for_resend(self, now: float) -> list[bytes]:
        """Forget our records that left the mempool; return (and mark sent at ``now``)
        those last sent ``regossip_interval`` or more ago."""
        mempool = self.chain.mempool
        for h in [h for h in self._local if h not in mempool]:
            del self._local[h]
        due = [h for h, (_, sent) in self._local.items() if now - sent >= self.regossip_interval]
        for h in due:
            self._local[h] = (self._local[h][0], now)
        return [self._local[h][0] for h in due]

    def statistics(self) -> dict[str, int]:
        return {"received_records": self.received_records, "pushed_batches": self.pushed_batches,
                "push_failures": self.push_failures, "push_dropped": self.push_dropped,
                "push_queued": sum(len(q) for q in self._push_queues.values()), "gossiped_batches": self.gossiped_batches,
                "regossiped_records": self.regossiped_records, "uncommitted_local": len(self._local)}

    async def _sender(self) -> None:
        while True:
            await self._flush.wait()
            self._flush = trio.Event()
            await trio.sleep(self.flush_interval)  # let a batch build up
            pending, self._outbox = self._outbox, []  # later submissions set _flush again
            start = 0
            while start < len(pending):
                end, size = start, 3
                while end < len(pending) and (end == start or size + len(pending[end]) + 3 <= wire.MAX_RECORD_BATCH_BYTES):
                    size += len(pending[end]) + 3
                    end += 1
                batch, start = pending[start:end], end
                await self._send_batch(batch)

    async def _send_batch(self, batch: list[bytes]) -> None:
        """Queue ``batch`` for every connected validator and gossip it if some validator
        is out of reach (gossip relays can get it there). Each validator has its own
        queue and sender task, so a slow one delays only itself."""
        data = wire.encode_records(batch, self._resend)
        connected = set(self.net.connected_peers())
        targets = sorted(self._validator_peers & connected)
        for peer in targets:
            queue = self._push_queues.setdefault(peer, deque())
            if len(queue) >= MAX_QUEUED_PUSHES:  # that validator is far behind: its oldest batch
                queue.popleft()                  # goes (our re-sends cover our clients' records)
                self.push_dropped += 1
            queue.append(data)
            if peer not in self._pushing:
                self._pushing.add(peer)
                self._nursery.start_soon(self._push_loop, peer, queue)
        if targets:
            self.pushed_batches += 1
        if self._validator_peers - connected:
            await self._gossip(data)

    async def _push_loop(self, peer: str, queue: deque) -> None:
        """Send ``peer``'s queued batches one at a time, in order; a batch it refuses or
        that times out goes out on gossip instead."""
        try:
            while queue:
                data = queue.popleft()
                try:
                    reply = await self.net.request(peer, self.protocol, data, timeout=self.push_timeout)
                    status, payload = wire.decode_response(reply)
                    if status != wire.OK:
                        raise ProtocolError(f"refused: {payload!r}", reason="refused")
                    self.chain.metrics.record_batches_sent.labels("push").inc()
                except (P2PError, ProtocolError, trio.TooSlowError) as exc:
                    self.push_failures += 1
                    self.chain.metrics.record_push_failures.inc()
                    log.debug("record push to %s failed: %s", peer, exc)
                    await self._gossip(data)
        finally:
            self._pushing.discard(peer)

    async def _gossip(self, data: bytes) -> None:
        try:
            await self.net.publish(self.topic, data)
            self.gossiped_batches += 1
            self.chain.metrics.record_batches_sent.labels("gossip").inc()
        except (P2PError, trio.TooSlowError) as exc:
            log.warning("record batch publish failed (re-sent while uncommitted): %s", exc)

    async def handle_push(self, peer: str, data: bytes) -> bytes:
        """Server side of /branchnet/{chain}/records/1: answers [0, new records] or [2, reason]."""
        try:
            raws = wire.decode_records(data)
        except ProtocolError as exc:
            self.chain.metrics.reject("push", exc.reason)
            return wire.response(wire.BAD_REQUEST, exc.reason)
        return wire.response(wire.OK, await self._accept(raws, "push"))

    async def _receiver(self, incoming: Any) -> None:
        async for _peer, data in incoming:
            try:
                raws = wire.decode_records(data)
            except ProtocolError as exc:
                self.chain.metrics.reject("gossip", exc.reason)
                continue
            await self._accept(raws, "gossip")

    async def _accept(self, raws: list[bytes], source: str) -> int:
        """Check and add a peer's records to the mempool; returns how many were new."""
        chain = self.chain
        fresh: list[Record] = []
        for raw in raws:
            try:
                record = Record.decode(raw, chain_id=chain.genesis.chain_id)
                chain.mempool.precheck(record)
            except ProtocolError as exc:
                chain.metrics.reject(source, exc.reason)
                continue
            except MempoolRejected as exc:
                if exc.reason not in ("duplicate", "replayed_seq"):  # normal overlap of peers' copies
                    chain.metrics.reject(source, exc.reason)
                continue
            fresh.append(record)
        good = await verify_records_in_threads(fresh, chain.state)
        added = 0
        for record in fresh:
            if record.hash not in good:
                chain.mempool.reject_invalid_signature(record)
                chain.metrics.reject(source, "bad_signature")
                continue
            try:
                chain.mempool.add(record)
                added += 1
            except MempoolRejected as exc:
                if exc.reason != "duplicate":
                    chain.metrics.reject(source, exc.reason)
        self.received_records += added
        if added:
            chain.metrics.mempool_records.set(len(chain.mempool))
            self.on_new_records()
        return added
