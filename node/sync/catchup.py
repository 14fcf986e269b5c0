"""Catching up: a node that is behind fetches certified blocks from its peers.

:meth:`BlockSync.run` asks connected peers for their height when it is told
of a height beyond ours (:meth:`BlockSync.peer_is_at` — a block announcement,
a consensus message or round summary from a height ahead), every second
until some peer has answered, and otherwise only every ``poll_interval``
(30 s): status travels with the
messages that flow anyway, so an idle node polls nobody and its cost does not
grow with its number of peers. One exception: a node that has committed no
block for ``expect_block_within`` seconds (twice its heartbeat interval: the
validators make a block at least that often) has missed the announcements —
gossip is lossy, and an observer with two links can be left out of its peers'
meshes — and polls then, and every ``expect_block_within`` while that lasts.
A node told of heights just ahead (at most ``batch``) first asks one connected peer, in turn, for
those blocks (:meth:`BlockSync._fetch_announced`), and polls every peer only if that peer has
not committed them yet: an observer then spends one request per block announcement instead of
a status request per link and a fetch (2.6 requests per observer per height, 8.5 served per
validator, at 16 validators + 48 observers under load). The periodic poll is left out while
blocks keep being committed here (they come from consensus, announcements or quiet polls):
a validator asked its 21 peers' status every 30 s for nothing.
A validator (``follows_consensus()``: in the set now) told of the height it is deciding waits up
to :data:`CONSENSUS_GRACE` (or a quarter of ``expect_block_within``, if less) for its own commit first: the proposer announces a
block before the others have committed it, and polling every peer on each such
announcement was 10.7 status requests per validator per idle height at 16
validators + 48 observers (bench_scale).
While some peer is ahead it fetches ranges from several peers at once
(pipelined, ``window`` requests in flight; a range is up to ``batch`` blocks,
fewer when blocks are big: about ``range_records`` records, judged from the
last range, and no more ranges are asked for than keep ``records_in_flight``
records asked for and not yet applied, so what is in flight stays bounded
whatever the blocks hold; a
range answered short, as the 16 MiB answer limit may make it, is completed
by asking for the rest), checks every certificate and
record signature of a range while the ranges before it commit, and commits
them in height order through :meth:`Chain.apply_batch` and
:meth:`Chain.write_batch` — the path every synced block takes — applying a
range while the one before it is written. A range whose certificate or block is bad is counted
(``rejected{source="sync"}``) and the round ends; the next round asks again.
A long history — ``defer_indexes_from`` records or more to come (100,000), and no fewer
than the store holds — is written without the records' search indexes, which are built
in one go when the sync ends (:meth:`Store.defer_record_indexes`): ``/v1/records``'
filters answer slower meanwhile, and ``records_indexed`` in the node's status is false.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from typing import Any, Callable

import trio

from protocol.errors import RemoteProtocolError

from ..chain import BatchWrite, Chain
from ..gcfreeze import GrowthFreezer, freeze_state_objects
from ..malloc import give_back_free_memory
from ..metrics import NodeMetrics
from ..p2p.errors import P2PError
from ..store.writer import HOLD_SECONDS
from .client import SyncClient

log = logging.getLogger("branchnet.sync")
CONSENSUS_GRACE = 2.0  # at most, seconds a validator gives its own consensus to commit the next height
DEFER_INDEXES_FROM = 100_000  # records to sync from which the records' search indexes are built at the end


class BlockSync:
    def __init__(self, chain: Chain, client: SyncClient, network: Any, metrics: NodeMetrics, *,
                 poll_interval: float = 30.0, batch: int = 64, window: int = 4, sole_validator: bool = False,
                 range_records: int = 4096, records_in_flight: int | None = None,
                 expect_block_within: float | None = None, defer_indexes_from: int | None = DEFER_INDEXES_FROM,
                 follows_consensus: Callable[[], bool] = lambda: False):
        self.chain = chain
        self.client = client
        self.net = network
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.expect_block_within = expect_block_within
        self.follows_consensus = follows_consensus
        # at most 2 s, less on a fast chain (a quarter of the quiet window: 0.2 s in tests)
        self._grace = min(CONSENSUS_GRACE, expect_block_within / 4) if expect_block_within else CONSENSUS_GRACE
        self._last_progress = 0.0  # when we last committed a block or polled (trio time)
        self._heard = 0  # the highest height a peer was said to be at (peer_is_at)
        self._committed = trio.Event()  # set (and replaced) at every commit
        self._waiting: tuple[trio.CancelScope, float] | None = None  # _until_poll_needed's wait, and its poll deadline
        chain.on_commit(self._on_commit)
        self.polls = 0
        self.quiet_polls = 0  # polls because no block came for expect_block_within
        self.deferred_wakes = 0  # wakes that needed no poll: the height was (or got) committed here
        self.announced_fetches = 0  # wakes answered by fetching the announced blocks from one peer, no poll
        self.skipped_polls = 0  # periodic polls left out: blocks kept coming since the last one
        self._turn = 0  # which connected peer _fetch_announced asks next
        self.batch = batch
        self.window = window
        self.range_records = range_records
        # records asked for and not yet applied, at most (beyond a first range): big blocks
        # fill it with two ranges, one arriving while the one before waits to be applied;
        # small ones fill the window first
        self.records_in_flight = 2 * range_records if records_in_flight is None else records_in_flight
        self._records_per_block: float | None = None  # in the last range fetched
        self.peer_heights: dict[str, int] = {}
        self.syncing = False
        self.synced_blocks = 0
        self._wake = trio.Event()
        self._heard_network = sole_validator  # the only validator is the network
        self.defer_indexes_from = defer_indexes_from
        self._indexes_deferred = False  # the records' search indexes dropped for a long sync, not built again yet
        self.index_builds = 0

    def knows_network_height(self) -> bool:
        """Whether some peer told us its height and none was ahead once we caught up
        (so what is committed for our branch is what our store holds)."""
        return self._heard_network

    def peer_is_at(self, height: int) -> None:
        """Some peer has committed ``height`` (or is deciding it): sync at once if we lack it."""
        if height > self.chain.height:
            self._heard = max(self._heard, height)
            self._wake.set()

    def statistics(self) -> dict[str, Any]:
        best = max(self.peer_heights.values(), default=self.chain.height)
        return {"syncing": self.syncing, "best_peer_height": best, "lag": max(best - self.chain.height, 0),
                "synced_blocks": self.synced_blocks, "polls": self.polls, "quiet_polls": self.quiet_polls,
                "deferred_wakes": self.deferred_wakes, "announced_fetches": self.announced_fetches,
                "skipped_polls": self.skipped_polls, "records_indexed": not self._indexes_deferred,
                "index_builds": self.index_builds}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._poll_and_catch_up()
            self._last_progress = trio.current_time()
            since = self._last_progress  # the poll just made
            poll_at = since + (self.poll_interval if self.peer_heights else 1.0)
            while True:
                why = await self._until_poll_needed(poll_at)
                if why == "told" and await self._fetch_announced():
                    continue
                if why == "due" and self._last_progress > since and self.peer_heights:
                    # blocks kept coming since the last poll: nothing to learn from every
                    # peer's status (a validator's 21 status requests per 30 s at 16 + 48)
                    since = trio.current_time()
                    poll_at = since + self.poll_interval
                    self.skipped_polls += 1
                    continue
                break

    async def _fetch_announced(self) -> bool:
        """Told of heights just ahead: ask one connected peer (in turn) for them and commit
        what it has. True if that brought us to the height we were told of; False (poll
        then) if we are far behind, or the peer failed or has not committed them yet."""
        start, target = self.chain.height + 1, self._heard
        peers = self.net.connected_peers()
        if not peers or not start <= target < start + self.batch:
            return target < start
        peer = peers[self._turn % len(peers)]
        self._turn += 1
        try:
            blocks = await self.client.fetch_range(peer, start, target - start + 1)
            if blocks:
                self.synced_blocks += await self.chain.commit_batch(blocks, via="sync")
        except (P2PError, trio.TooSlowError) as exc:
            log.debug("announced blocks %d..%d from %s: %s", start, target, peer, exc)
            return False
        except RemoteProtocolError as exc:
            self._rejected(start, exc)
            return False
        if self.chain.height < target:
            return False
        self.announced_fetches += 1
        return True

    async def _until_poll_needed(self, deadline: float) -> str:
        """Return why it may be time to poll: ``told`` of a height we lack, ``quiet`` (no
        block came for ``expect_block_within``), or ``due`` (``deadline`` passed:
        ``poll_interval`` after the last poll; 1 s until some peer has answered: at start
        peers are still connecting, and polling nobody costs nothing)."""
        while trio.current_time() < deadline:
            with trio.move_on_at(min(deadline, self._quiet_at())) as scope:
                self._waiting = (scope, deadline)  # a commit moves its deadline (_on_commit)
                try:
                    await self._wake.wait()
                finally:
                    self._waiting = None
            if self._wake.is_set():
                self._wake = trio.Event()
                if await self._commits_it_anyway():
                    self.deferred_wakes += 1
                    continue
                return "told"
            if trio.current_time() >= self._quiet_at():
                self.quiet_polls += 1  # no block for too long: missed announcements
                return "quiet"
        return "due"

    def _quiet_at(self) -> float:
        """When, without a commit meanwhile, the announcements count as missed."""
        return self._last_progress + self.expect_block_within if self.expect_block_within else math.inf

    async def _commits_it_anyway(self) -> bool:
        """Whether the height we were told of is (or, for a validator deciding it, soon
        gets) committed here without asking anyone."""
        if self._heard == self.chain.height + 1 and self.follows_consensus():
            with trio.move_on_after(self._grace):
                while self.chain.height < self._heard:
                    await self._committed.wait()
        return self.chain.height >= self._heard

    def _on_commit(self, _block: Any) -> None:
        try:
            self._last_progress = trio.current_time()
        except RuntimeError:  # a commit outside trio (tools replaying a store): nothing waits
            return
        committed, self._committed = self._committed, trio.Event()
        committed.set()
        if self._waiting is not None:  # the quiet mark moved: no wake-up at the old one
            scope, deadline = self._waiting
            scope.deadline = min(deadline, self._quiet_at())

    async def _status(self, peer: str) -> None:
        try:
            self.peer_heights[peer], _ = await self.client.status(peer)
        except (P2PError, RemoteProtocolError, trio.TooSlowError):
            self.peer_heights.pop(peer, None)

    async def _poll_and_catch_up(self) -> None:
        self.polls += 1
        peers = self.net.connected_peers()
        self.metrics.peers.set(len(peers))
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(self._status, peer)
        for gone in set(self.peer_heights) - set(peers):
            self.peer_heights.pop(gone, None)
        best = max(self.peer_heights.values(), default=0)
        self.metrics.sync_lag.set(max(best - self.chain.height, 0))
        if best <= self.chain.height:
            self._heard_network = self._heard_network or bool(self.peer_heights)
            return
        self.syncing = True
        try:
            before = self.synced_blocks
            await self.catch_up(best)
            if self.synced_blocks - before >= 128:  # a long sync built much of the state: frozen as
                freeze_state_objects(self.chain.store)  # node.py does with the state it loads
                give_back_free_memory()
            # Caught up to what the peers said: on a busy chain some peer is nearly always a
            # block ahead when asked, so waiting for a poll that finds none ahead could wait
            # for ever (a node answering 503 catching_up while in sync).
            self._heard_network = self._heard_network or self.chain.height >= best
        finally:
            self.syncing = False
            self.metrics.sync_lag.set(max(max(self.peer_heights.values(), default=0) - self.chain.height, 0))

    def range_size(self) -> int:
        """Blocks to ask for in one request: ``batch``, or fewer so that a range holds about
        ``range_records`` records (before any range arrived: at most 8 blocks)."""
        if self._records_per_block is None:
            return min(self.batch, 8)
        return max(1, min(self.batch, int(self.range_records / max(self._records_per_block, 1.0))))

    def _may_ask(self, blocks_in_flight: int) -> bool:
        """Whether another range may be asked for beside ``blocks_in_flight`` blocks asked
        for and not yet applied: while blocks' sizes are unknown, only a first range; then
        as long as their records, the new range's included, stay within
        ``records_in_flight``. (Two ranges of 500-record blocks rather than four: the
        million-record sync went 7,045-7,190 -> 7,710-7,911 records/s, the observer's RSS
        257 -> 242 MB; docs/PERFORMANCE.md.)"""
        if not blocks_in_flight:
            return True
        if self._records_per_block is None:
            return False
        return (blocks_in_flight + self.range_size()) * self._records_per_block <= self.records_in_flight

    async def catch_up(self, target: int) -> None:
        """Fetch and commit blocks up to ``target`` from peers that have them."""
        log.info("syncing from height %d to %d", self.chain.height, target)
        first = next_start = self.chain.height + 1
        # start height -> ([(block, cert)], verified record hashes) ([] on failure), or the
        # error of a bad range (a certificate without quorum, a malformed block)
        fetched: dict[int, tuple[list, set[bytes]] | RemoteProtocolError] = {}
        asked: dict[int, int] = {}  # start height -> blocks asked for
        ready = trio.Event()
        freezer = GrowthFreezer()  # what this sync builds, out of the GC in steps

        async def fetch(start: int, peer: str) -> None:
            # Fetch, then check certificates and signatures while earlier ranges commit.
            nonlocal ready
            try:
                blocks = await self.client.fetch_range(peer, start, asked[start])
                if blocks:
                    self._records_per_block = sum(len(b.records) for b, _ in blocks) / len(blocks)
            except (P2PError, RemoteProtocolError, trio.TooSlowError) as exc:  # ask another peer
                if isinstance(exc, RemoteProtocolError):
                    self.metrics.reject("sync", exc.reason)
                log.debug("range %d from %s failed: %s", start, peer, exc)
                blocks = []
            try:
                fetched[start] = (blocks, await self.chain.preverify(blocks))
            except RemoteProtocolError as exc:  # a certified-looking range that is not
                fetched[start] = exc
            ready.set()

        writing: trio.Event | None = None  # set once the range applied last is written (BatchWrite.written)

        async def write(batch: BatchWrite) -> None:
            try:
                await self.chain.write_batch(batch, hold=True)  # one transaction over several ranges
            except RemoteProtocolError:  # the range's bad block (the loop reports it); its valid prefix is written
                pass
            self.synced_blocks += len(batch.done)
            freezer.synced(sum(len(block.records) for block, _, _ in batch.done))

        try:
            async with trio.open_nursery() as nursery:
                in_flight: set[int] = set()
                rr = 0
                while self.chain.height < target:
                    peers = [p for p, h in self.peer_heights.items() if h >= next_start]
                    while (peers and len(in_flight) < self.window and next_start <= target
                           and self._may_ask(sum(asked[start] for start in in_flight))):
                        peer = peers[rr % len(peers)]
                        rr += 1
                        in_flight.add(next_start)
                        asked[next_start] = min(self.range_size(), target - next_start + 1)
                        nursery.start_soon(fetch, next_start, peer)
                        next_start += asked[next_start]
                    if not in_flight:
                        break
                    lowest = min(in_flight)
                    while lowest not in fetched:
                        with trio.move_on_after(HOLD_SECONDS):
                            await ready.wait()
                        if ready.is_set():
                            ready = trio.Event()
                        else:  # a slow answer: what the store holds waits no longer for it
                            await self.chain.flush()
                    in_flight.discard(lowest)
                    result = fetched.pop(lowest)
                    if isinstance(result, RemoteProtocolError):
                        self._rejected(lowest, result)
                        break
                    blocks, verified = result
                    if blocks and len(blocks) < asked[lowest] and peers:  # answered short: ask for the rest
                        rest = lowest + len(blocks)
                        asked[rest] = asked[lowest] - len(blocks)
                        in_flight.add(rest)
                        nursery.start_soon(fetch, rest, peers[rr % len(peers)])
                        rr += 1
                    if not blocks:  # failed or empty: retry this range from the next peer
                        if self.chain.height + 1 == lowest and peers:
                            in_flight.add(lowest)
                            nursery.start_soon(fetch, lowest, peers[rr % len(peers)])
                            rr += 1
                            await trio.sleep(0.05)
                        continue
                    await self._defer_indexes(target)  # once the blocks' size tells a long history
                    try:
                        batch = await self.chain.apply_batch(blocks, via="sync", verified=verified)
                    except RemoteProtocolError as exc:
                        self._rejected(lowest, exc)
                        break
                    nursery.start_soon(write, batch)  # the write starts now (behind the one before), so no cancel can skip it
                    if writing is not None:  # one range written while the next is applied
                        await writing.wait()
                    writing = batch.written
                    if batch.bad_block is not None:
                        self._rejected(lowest, batch.bad_block)
                        break
                if writing is not None:
                    await writing.wait()
                nursery.cancel_scope.cancel()
        finally:  # a held transaction commits even if the sync was cancelled (shielded)
            await self.chain.flush()
        # Caught up, or this round got nowhere (a peer claiming heights it cannot serve must
        # not keep the indexes away): build them. A round cut short after some progress
        # leaves them to the next one; a cancelled sync, to the store's next opening.
        if self._indexes_deferred and (self.chain.height >= target or self.chain.height < first):
            await self._build_indexes()

    async def _defer_indexes(self, target: int) -> None:
        """Leave the records' search indexes out (Store.defer_record_indexes) if about
        ``defer_indexes_from`` records or more are to come, and no fewer than the store
        holds: inserting a million records into them one by one cost the writer about
        40 µs a record, building them afterwards about 9 (docs/PERFORMANCE.md, "The
        records' search indexes built after a long sync"). Asked before each range is
        applied until they are left out (a chain's first blocks may be small); what the
        store holds is read on the readers' connection, not behind the range being written."""
        if self._indexes_deferred or self.defer_indexes_from is None:
            return
        coming = int((target - self.chain.height) * (self._records_per_block or 0))
        store = self.chain.store
        if coming < self.defer_indexes_from or coming < await self.chain.runtime.run_sync(store.record_count):
            return
        try:
            dropped = await self.chain.runtime.run_sync(store.defer_record_indexes)
        except sqlite3.Error as exc:  # rolled back: the indexes are still there
            log.warning("could not leave the records' search indexes out of this sync (%s)", exc)
            return
        self._indexes_deferred = True
        log.info("about %d records to sync: the records' %d search indexes are built when it ends", coming, len(dropped))

    async def _build_indexes(self) -> None:
        store = self.chain.store
        started = trio.current_time()
        log.info("building the records' search indexes (%d records)", await self.chain.runtime.run_sync(store.record_count))
        try:
            built = await self.chain.runtime.run_sync(store.build_record_indexes)
        except sqlite3.Error as exc:  # rolled back; tried again after the next sync, and when the store opens
            log.error("could not build the records' search indexes (%s); /v1/records' filters stay slow until "
                      "they are (the next sync, or the node's next start, tries again)", exc)
            return
        self._indexes_deferred = False
        self.index_builds += 1
        log.info("built %d search indexes of the records in %.1f s", len(built), trio.current_time() - started)

    def _rejected(self, start: int, exc: RemoteProtocolError) -> None:
        self.metrics.reject("sync", exc.reason)
        log.warning("blocks %d.. from a peer rejected: %s", start, exc)
