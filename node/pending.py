"""Records this node acknowledged, kept on disk until they commit: what makes 202 a promise.

A record is answered "accepted" (HTTP 202) only after :meth:`PendingRecords.persist`
returned: it is then in the store's ``pending`` table, fsynced. Submissions
arriving together share one transaction and one fsync (group commit: a
writer task takes everything queued, writes it, wakes every waiter).

* A committed record leaves ``pending`` in its block's own transaction.
* A record that can never commit any more — another record took its sequence
  number (``superseded``) — is moved to ``rejected`` with the reason, so
  ``GET /v1/records/{hash}`` can say so.
* On restart, :meth:`PendingRecords.recover` returns every pending record; the
  node puts them back into the mempool and sends them again until they commit.

Records this node signs with its own branch key also raise the durable
``signed_seq`` mark of their subject in the same transaction:
:meth:`high_water` is the highest sequence number the key signed for a
subject, and :meth:`node.ingest.RecordIngest.sign_and_submit` never signs at or
below it, so the branch never signs two records with one number — not even
after a crash that lost the mempool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from protocol.blocks import Block
from protocol.ledger import LedgerState
from protocol.records import Record

from .metrics import NodeMetrics
from .runtime import REAL, Runtime
from .store import Store

log = logging.getLogger("branchnet.pending")


@dataclass(slots=True)
class _Batch:
    records: list[tuple[bytes, bytes, int]]
    signed: list[tuple[bytes, str, int]]
    done: trio.Event
    error: BaseException | None = None


class PendingRecords:
    def __init__(self, store: Store, state: LedgerState, metrics: NodeMetrics, runtime: Runtime = REAL):
        self.store = store
        self.state = state
        self.metrics = metrics
        self.runtime = runtime
        self._high_water = store.signed_seqs()
        self._open: dict[bytes, tuple[bytes, str, int]] = {}  # pending hash -> (branch, subject, seq)
        self._batch = _Batch([], [], trio.Event())
        self._rejections: list[tuple[bytes, str, int]] = []  # to move from pending to rejected
        self._wake = trio.Event()
        self.group_commits = 0
        self.persisted = 0

    # ------------------------------------------------------------ sequence marks
    def high_water(self, branch_id: bytes, subject: str) -> int | None:
        """The highest sequence number this node signed for the subject, or None if it
        never signed one (since sequence marks were kept)."""
        return self._high_water.get((branch_id, subject))

    # ------------------------------------------------------------ acknowledging
    async def persist(self, record: Record, *, signed_here: bool = False) -> None:
        """Return once ``record`` is durable (and, if ``signed_here``, its sequence mark).
        Raises whatever the store raised if the write failed: nothing was acknowledged."""
        batch = self._batch
        batch.records.append((record.hash, record.raw, self.runtime.wall_ms()))
        if signed_here:
            key = (record.branch_id, record.subject)
            self._high_water[key] = max(self._high_water.get(key, 0), record.seq)
            batch.signed.append((record.branch_id, record.subject, record.seq))
        self._open[record.hash] = (record.branch_id, record.subject, record.seq)
        self._wake.set()
        await batch.done.wait()
        if batch.error is not None:
            self._open.pop(record.hash, None)
            raise batch.error

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The group-commit writer."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._batch = self._batch, _Batch([], [], trio.Event())
            rejections, self._rejections = self._rejections, []
            if rejections:
                await self.runtime.run_sync(self.store.reject_pending, rejections)
            if not batch.records:
                batch.done.set()
                continue
            try:
                await self.runtime.run_sync(self.store.write_pending, batch.records, batch.signed)
                self.group_commits += 1
                self.persisted += len(batch.records)
            except Exception as exc:  # the disk refused: every waiter gets the error, no 202
                log.error("could not make %d acknowledged record(s) durable: %s", len(batch.records), exc)
                batch.error = exc
            batch.done.set()

    # ------------------------------------------------------------ after commits, restarts
    def block_committed(self, block: Block) -> None:
        """(A commit listener: called for every block, state already applied.) Forget
        committed records — the store deleted them with the block — and reject those
        another record has overtaken at their sequence number."""
        if not self._open:
            return
        for r in block.records:
            self._open.pop(r.hash, None)
        touched = {(r.branch_id, r.subject) for r in block.records}
        for h, (b, s, seq) in list(self._open.items()):
            if (b, s) in touched and seq < self.state.next_seq(b, s):
                self.reject(h, "superseded")

    def reject(self, record_hash: bytes, reason: str) -> None:
        """This acknowledged record can never commit: say so on disk (soon) and forget it."""
        self._open.pop(record_hash, None)
        self._rejections.append((record_hash, reason, self.runtime.wall_ms()))
        self.metrics.reject("pending", reason)
        self._wake.set()

    def recover(self) -> list[tuple[bytes, bytes]]:
        """(hash, raw) of every record acknowledged before the last stop and not committed."""
        rows = self.store.pending_records()
        if rows:
            log.info("%d acknowledged record(s) were still pending: sending them again", len(rows))
        return [(h, raw) for h, raw, _ in rows]

    def open_count(self, branch_id: bytes, subject: str | None = None) -> int:
        """How many acknowledged records of ``branch_id`` (of ``subject``, if given) are still
        pending: neither committed nor rejected."""
        return sum(b == branch_id and (subject is None or s == subject) for b, s, _ in self._open.values())

    def track(self, record: Record) -> None:
        """Watch a recovered record (it is on disk already)."""
        self._open[record.hash] = (record.branch_id, record.subject, record.seq)

    def statistics(self) -> dict[str, int]:
        return {"pending": len(self._open), "group_commits": self.group_commits, "persisted": self.persisted}
