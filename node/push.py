"""Record batches pushed to validators: one queue and one sender task per validator.

:class:`node.ingest.RecordIngest` decides which validators a batch goes to; this
module gets it there over ``/branchnet/{chain}/records/1``. Every validator has its
own queue (at most ``MAX_QUEUED_PUSHES`` batches: a validator far behind loses its
oldest, which the sender's re-sends cover) and its own task, so a slow validator
delays only its own copy. The batches queued behind a push in flight leave together
as one request, each record once, as far as one batch holds
(``wire.MAX_RECORD_BATCH_BYTES``): a request costs both ends about a millisecond
whatever it carries, and a busy validator's queues are where 16 validators' slowest
records waited (docs/PERFORMANCE.md). A push that fails is counted, the validator
marked failed for ``AVOID_FAILED_PUSH`` seconds (:meth:`ValidatorPushes.healthy`),
and the batch handed to ``on_failure``; it is never gossiped.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

import trio

from protocol import wire
from protocol.errors import RemoteProtocolError

from .metrics import NodeMetrics
from .p2p.errors import P2PError

log = logging.getLogger("branchnet.ingest")
MAX_QUEUED_PUSHES = 64  # batches (of up to 64 KiB) waiting for one validator
AVOID_FAILED_PUSH = 30.0  # seconds a validator stays out of healthy() after a push to it failed


class ValidatorPushes:
    """Per-validator push queues. ``on_failure(peer, raws, resend)`` is called for a batch
    whose push to ``peer`` failed (refused, broken or timed out after ``timeout`` s)."""

    def __init__(self, network: Any, protocol: str, metrics: NodeMetrics, *,
                 on_failure: Callable[[str, list[bytes], int], None]) -> None:
        self.net = network
        self.protocol = protocol
        self.metrics = metrics
        self.on_failure = on_failure
        self.timeout = 10.0
        self._queues: dict[str, deque] = {}  # validator peer id -> (records, resend, when queued) to push
        self._pushing: set[str] = set()  # peers whose sender task is running
        self._failed: dict[str, float] = {}  # validator -> when a push to it last failed (trio time)
        self._nursery: trio.Nursery | None = None
        self.failures = 0
        self.dropped = 0
        self.merged = 0  # queued batches that left with the one before them

    def start(self, nursery: trio.Nursery) -> None:
        """Sender tasks run in ``nursery`` (the ingest's)."""
        self._nursery = nursery

    @property
    def idle(self) -> bool:
        """No push in flight or queued."""
        return not self._pushing

    def statistics(self) -> dict[str, int]:
        return {"push_failures": self.failures, "push_dropped": self.dropped, "push_merged": self.merged,
                "push_queued": sum(len(q) for q in self._queues.values())}

    def healthy(self, peers: list[str]) -> list[str]:
        """``peers`` without those a push to failed in the last AVOID_FAILED_PUSH seconds."""
        now = trio.current_time()
        return [p for p in peers if now - self._failed.get(p, -AVOID_FAILED_PUSH) >= AVOID_FAILED_PUSH]

    def push(self, peers: list[str], raws: list[bytes], resend: int) -> None:
        """Queue the batch ``raws`` (sent with re-send counter ``resend``) for each of ``peers``."""
        for peer in peers:
            queue = self._queues.setdefault(peer, deque())
            if len(queue) >= MAX_QUEUED_PUSHES:  # that validator is far behind: its oldest batch
                queue.popleft()                  # goes (its sender's re-sends cover its records)
                self.dropped += 1
            queue.append((raws, resend, trio.current_time()))
            if peer not in self._pushing:
                self._pushing.add(peer)
                assert self._nursery is not None, "start() first"
                self._nursery.start_soon(self._send_loop, peer, queue)

    async def _send_loop(self, peer: str, queue: deque) -> None:
        """Send ``peer``'s queued batches one request at a time, in order."""
        try:
            while queue:
                raws, resend = self.next_batch(queue)
                data = wire.encode_records(raws, resend)
                sent_at = trio.current_time()
                try:
                    answer = await self.net.request(peer, self.protocol, data, timeout=self.timeout)
                    self.metrics.record_push_seconds.labels("answered").observe(trio.current_time() - sent_at)
                    wire.decode_push_response(answer)
                    self.metrics.record_batches_sent.labels("push").inc()
                except (P2PError, RemoteProtocolError, trio.TooSlowError) as exc:
                    self.failures += 1
                    self.metrics.record_push_failures.inc()
                    log.debug("record push to %s failed: %s", peer, exc)
                    self._failed[peer] = trio.current_time()
                    self.on_failure(peer, raws, resend)
        finally:
            self._pushing.discard(peer)

    def next_batch(self, queue: deque) -> tuple[list[bytes], int]:
        """The records of the first queued batch and of those behind it, as far as one batch
        holds (``wire.MAX_RECORD_BATCH_BYTES``), each record once; the highest resend."""
        now = trio.current_time()
        raws, resend, queued_at = queue.popleft()
        self.metrics.record_push_seconds.labels("queued").observe(now - queued_at)
        if not queue:
            return raws, resend
        merged = dict.fromkeys(raws)
        size = wire.batch_size(raws)
        while queue:
            more, more_resend, queued_at = queue[0]
            new = [r for r in more if r not in merged]
            grown = size + sum(3 + len(r) for r in new)
            if grown > wire.MAX_RECORD_BATCH_BYTES:
                break
            queue.popleft()
            self.metrics.record_push_seconds.labels("queued").observe(now - queued_at)
            merged.update(dict.fromkeys(new))
            size, resend = grown, max(resend, more_resend)
            self.merged += 1
        return list(merged), resend
