"""Unit tests of block sync: committing fetched ranges, the ranges it asks for, when it
polls, and keeping the state it builds out of the cyclic GC (no network: fake peers)."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from factories import CHAIN_ID, decode_block, make_genesis, offer_record, validator_keys
from node.store import Store
from protocol import wire
from protocol.ledger import LedgerState, build_block
from protocol.votes import PRECOMMIT, CommitCertificate, Vote

KEYS = validator_keys(4)


def _certified_chain(genesis, n, *, records=lambda h: [], signers=lambda h: KEYS[:3]) -> list[list[bytes]]:
    """Blocks 1..n built on ``genesis`` (``records(h)`` in each), with certificates of the
    precommits of ``signers(h)``, as a peer serves them: [[block bytes, certificate bytes]]."""
    source = LedgerState(genesis)
    served = []
    for h in range(1, n + 1):
        block, tx, _ = build_block(source, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                   proposer=KEYS[0].branch_id, candidates=records(h))
        tx.commit()
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in signers(h)])
        served.append([block.encode(), cert.encode()])
    return served


class _SyncPeers:
    """Linked peers serving ``served`` over the sync protocol, as a SyncClient sees them.

    A peer reports ``height(peer)`` (``has[peer]``; all of ``served`` unless changed) and
    answers a range with the blocks it has, at most ``most`` of them, after ``delay(start)``
    seconds. ``asked`` lists the requests: ``(peer, "status")`` or ``(peer, start, count)``."""

    def __init__(self, served, peers=("peer-a",), *, most=None, delay=lambda start: 0.0):
        self.served, self.most, self.delay = served, most, delay
        self.has = {peer: len(served) for peer in peers}
        self.asked: list[tuple] = []
        self.fetching = self.most_fetching = 0  # range requests being answered now, and at most
        self.fetching_at_start: list[int] = []  # for each range request, how many were then (itself included)

    def height(self, peer):
        return self.has[peer]

    @property
    def fetches(self):
        """The ranges asked for, ``(start, count)``."""
        return [(start, count) for _, start, count in (a for a in self.asked if len(a) == 3)]

    async def request(self, peer, protocol, data, timeout):
        op, args = wire.decode_request(data)
        if op == wire.REQ_STATUS:
            self.asked.append((peer, "status"))
            return wire.response(wire.OK, [self.height(peer), b"\x00" * 32])
        start, count = args
        self.asked.append((peer, start, count))
        self.fetching += 1
        self.most_fetching = max(self.most_fetching, self.fetching)
        self.fetching_at_start.append(self.fetching)
        try:
            await trio.sleep(self.delay(start))
        finally:
            self.fetching -= 1
        end = min(start - 1 + min(count, self.most or count), self.has[peer])
        return wire.response(wire.OK, self.served[start - 1 : end])

    def connected_peers(self):
        return list(self.has)


# ---------------------------------------------------------------- chain: sync batches


async def test_sync_batch_with_a_bad_block_commits_the_good_prefix_only(tmp_path):
    from dataclasses import replace

    from cluster import make_chain
    from protocol.errors import ProtocolError

    genesis = make_genesis(KEYS)
    source = LedgerState(genesis)
    items = []
    for h in (1, 2, 3):
        block, tx, _ = build_block(source, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                   proposer=KEYS[0].branch_id, candidates=[offer_record(KEYS[h], f"svc-{h}")])
        tx.commit()
        if h == 3:  # a certified block whose state root lies
            block = replace(block, header=replace(block.header, state_root=b"\x00" * 32))
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]])
        items.append((block, cert))
    store = Store(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store)
    with pytest.raises(ProtocolError) as info:
        await chain.commit_batch(items)
    assert info.value.reason == "state_root"
    assert chain.height == 2 and store.height == 2  # memory and disk agree
    assert store.load_state().state_root == chain.state.state_root


class _GatedStore(Store):
    """A store whose writes wait (in their worker thread) until ``gate`` is set, and that
    lists the heights of each write in the order they land; ``fail`` makes writes raise."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.writes: list[list[int]] = []
        self.fail = False

    def write_prepared(self, items, *, hold=False):
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        if self.fail:
            raise OSError(28, "No space left on device")
        super().write_prepared(items, hold=hold)
        self.writes.append([p.block_row[0] for p in items])


def _decoded(chain, served):
    return [(chain.decode_block(b), CommitCertificate.decode(c)) for b, c in served]


async def test_a_synced_range_is_applied_while_the_one_before_is_written_and_writes_land_in_order(tmp_path):
    """Block sync applies a range in memory while the range before it is written: the
    writes land in the order the ranges were applied (whichever write is awaited first),
    and a block's listeners hear of it only once it is on disk."""
    from cluster import make_chain

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 4, records=lambda h: [offer_record(KEYS[h % 4], f"svc-{h}")])
    store = _GatedStore(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store)
    heard = []
    chain.on_commit(lambda block: heard.append(block.height))
    items = _decoded(chain, served)
    store.gate.clear()
    first = await chain.apply_batch(items[:2])
    second = await chain.apply_batch(items[2:])
    assert chain.height == 4 and store.height == 0 and heard == []  # applied, nothing written yet
    counts = []

    async def write(batch):
        counts.append(await chain.write_batch(batch))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write, second)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(write, first)
            await trio.testing.wait_all_tasks_blocked()
            assert store.writes == [] and heard == []
            store.gate.set()
    assert store.writes == [[1, 2], [3, 4]]
    assert heard == [1, 2, 3, 4] and sorted(counts) == [2, 2]
    assert store.load_state().state_root == chain.state.state_root


async def test_a_consensus_commit_waits_for_the_synced_blocks_being_written(tmp_path):
    """A block decided by consensus on top of synced blocks is written after them, and a
    different block at a height applied but not yet written is a fork (the node stops)."""
    from dataclasses import replace

    from cluster import make_chain
    from node.chain import Preverified
    from node.errors import ChainHalted

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 3)
    store = _GatedStore(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store)
    items = _decoded(chain, served)
    store.gate.clear()
    batch = await chain.apply_batch(items[:2])
    other = replace(items[1][0], header=replace(items[1][0].header, time_ms=items[1][0].header.time_ms + 1))
    with pytest.raises(ChainHalted, match="fork at height 2"):  # (as if its certificate had verified)
        await chain.apply_batch([(other, items[1][1])], verified=Preverified(set(), {other.hash}))
    results = []

    async def consensus_commit():
        results.append(await chain.commit(*items[2], via="consensus"))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consensus_commit)
            await trio.testing.wait_all_tasks_blocked()
            assert results == [] and store.writes == []  # waiting for the batch's write
            nursery.start_soon(chain.write_batch, batch)
            await trio.testing.wait_all_tasks_blocked()
            store.gate.set()
    assert results == [True] and store.writes == [[1, 2], [3]] and store.height == 3


async def test_a_failed_sync_write_halts_the_chain_and_nothing_after_it_is_written(tmp_path):
    from cluster import make_chain
    from node.errors import ChainHalted

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 4)
    store = _GatedStore(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store)
    items = _decoded(chain, served)
    first = await chain.apply_batch(items[:2])
    second = await chain.apply_batch(items[2:3])
    store.fail = True
    with pytest.raises(ChainHalted, match="could not write blocks 1..2"):
        await chain.write_batch(first)
    store.fail = False
    with pytest.raises(ChainHalted):  # queued behind the failed write: not written
        await chain.write_batch(second)
    with pytest.raises(ChainHalted):
        await chain.apply_batch(items[3:])
    with pytest.raises(ChainHalted):
        await chain.commit(*items[3], via="consensus")
    assert store.writes == [] and store.height == 0


async def test_other_tasks_run_between_the_blocks_of_a_fetched_range():
    """Decoding a range is tens of ms on the trio thread (~4,096 records): the API and
    consensus get a turn between its blocks, not only after the last."""
    from node.sync import SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 4, records=lambda h: [offer_record(KEYS[h % 4], f"svc-{h}")])
    log: list[str] = []

    def decode(raw):
        log.append("decode")
        return decode_block(raw)

    async def other(done: trio.Event):
        while not done.is_set():
            log.append("other")
            await trio.lowlevel.checkpoint()

    done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(other, done)
        await trio.lowlevel.checkpoint()
        blocks = await SyncClient(_SyncPeers(served), CHAIN_ID, decode).fetch_range("peer-a", 1, 4)
        done.set()
    assert [b.height for b, _ in blocks] == [1, 2, 3, 4]
    decoded = [i for i, what in enumerate(log) if what == "decode"]
    # one run-loop cycle per block: the other task runs in the cycles of blocks 2 and 3 at
    # least (in which order the two tasks run within a cycle is trio's choice)
    assert len(decoded) == 4 and log[decoded[0]:decoded[-1]].count("other") >= 2, log


async def test_block_sync_applies_the_next_range_while_one_is_written(tmp_path):
    """catch_up overlaps: the first range's write is held until the second range has been
    applied in memory (a sync that waited for each write would never open the gate)."""
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 6, records=lambda h: [offer_record(KEYS[h % 4], f"svc-{h}")])

    class Store2(_GatedStore):
        def prepare_block(self, block, certificate, tx):
            if block.height == 3:  # the second range is being applied: let the first write land
                self.gate.set()
            return super().prepare_block(block, certificate, tx)

    store = Store2(tmp_path / "node.db", genesis)
    store.gate.clear()
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    net = _SyncPeers(served)
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=3)
    sync.peer_heights = {"peer-a": 6}
    with trio.fail_after(30):
        await sync.catch_up(6)
    assert store.writes == [[1, 2], [3, 4], [5, 6]]  # all written before catch_up returned
    assert chain.height == 6 and store.height == 6 and sync.synced_blocks == 6


async def test_a_sync_cancelled_while_it_applies_a_range_still_writes_what_it_applied(tmp_path):
    """Cancelling block sync (the node stopping, a timeout around it) while it applies a
    range leaves memory and disk at the same height: a range once begun is applied whole
    and written, and a consensus commit on top of it neither waits for ever nor leaves a
    gap on disk."""
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 7, records=lambda h: [offer_record(KEYS[h % 4], f"svc-{h}")])
    scope = trio.CancelScope()

    class Store2(Store):
        def prepare_block(self, block, certificate, tx):
            if block.height == 3:  # inside the second range (ranges of 2 blocks)
                scope.cancel()
            return super().prepare_block(block, certificate, tx)

    store = Store2(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    net = _SyncPeers(served[:6])
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=2)
    sync.peer_heights = {"peer-a": 6}
    with trio.fail_after(30):
        with scope:
            await sync.catch_up(6)
        assert scope.cancelled_caught
        assert 4 <= chain.height < 6 and store.height == chain.height
        height = chain.height
        block, cert = _decoded(chain, served[height:height + 1])[0]
        assert await chain.commit(block, cert, via="consensus")
    assert store.height == chain.height == height + 1
    assert store.load_state().state_root == chain.state.state_root


async def test_block_sync_stops_at_a_range_with_a_bad_certificate(tmp_path):
    """BlockSync checks ranges ahead of committing them (overlapped with earlier ranges);
    a range whose certificate lacks a quorum is rejected and counted, and nothing of it
    or after it is applied, while the ranges before it are committed."""
    import trio

    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 8, records=lambda h: [offer_record(KEYS[h % 4], f"svc-{h}")],
                              signers=lambda h: KEYS[:2] if h == 5 else KEYS[:3])  # 2 of 4 equal powers: no quorum at 5

    store = Store(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    # ranges complete out of order
    net = _SyncPeers(served, ("peer-a", "peer-b"), delay=lambda start: 0.01 * (start % 3))
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=3)
    sync.peer_heights = {"peer-a": 8, "peer-b": 8}
    with trio.fail_after(10):
        await sync.catch_up(8)
    assert chain.height == 4 and store.height == 4
    assert metrics.rejected_counts().get("sync/no_quorum") == 1
    assert sync.synced_blocks == 4
    # the range after the bad one was fetched (and checked) ahead, never applied
    assert 7 in {start for start, _ in net.fetches}


async def test_block_sync_sizes_ranges_by_records_and_completes_short_answers(tmp_path):
    """Ranges of big blocks hold about ``range_records`` records (memory in flight and the
    wait for the first commit stay bounded), and a range answered short (the server's
    16 MiB limit) is completed by asking for the rest, not rejected."""
    import trio

    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 20,
                              records=lambda h: [offer_record(KEYS[i % 4], f"svc-{h}-{i}") for i in range(6)])

    store = Store(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    net = _SyncPeers(served, most=3)  # answers at most 3 blocks, whatever is asked
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=64, window=2,
                     range_records=12)
    sync.peer_heights = {"peer-a": 20}
    with trio.fail_after(10):
        await sync.catch_up(20)
    assert chain.height == store.height == 20 and sync.synced_blocks == 20
    assert not metrics.rejected_counts()
    # one first range of at most 8 blocks while sizes are unknown, then its rest (answered 3 of 8)
    assert net.fetches[:2] == [(1, 8), (4, 5)]
    assert [count for start, count in net.fetches[2:]] == [2] * 7  # then 12 records / 6 per block


@pytest.mark.parametrize("records_per_block, most", [(1, 4), (6, 2)])
async def test_block_sync_keeps_about_two_ranges_of_records_in_flight(tmp_path, records_per_block, most):
    """Ranges are asked for ahead while earlier ones commit: up to ``window`` of small
    blocks, but of big blocks only as many as keep ``records_in_flight`` records (two
    ranges' worth) asked for and not yet applied."""
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(
        genesis, 24, records=lambda h: [offer_record(KEYS[i % 4], f"svc-{h}-{i}") for i in range(records_per_block)])
    store = Store(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    # every answer waits: the ranges asked ahead are all being answered at once
    net = _SyncPeers(served, ("peer-a", "peer-b"), delay=lambda start: 0.02)
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=4,
                     range_records=12)
    sync.peer_heights = {"peer-a": 24, "peer-b": 24}
    with trio.fail_after(30):
        await sync.catch_up(24)
    assert chain.height == store.height == 24 and sync.synced_blocks == 24
    assert net.fetching_at_start[:2] == [1, 1]  # a first range alone: the blocks' size is not known yet
    assert net.most_fetching == most


async def test_block_sync_knows_the_network_height_after_catching_up_on_a_busy_chain(tmp_path):
    """A peer is always one block ahead when asked (a busy chain): catching up to what
    it said is enough to know the network's height (else the node answered 503
    catching_up for ever while in sync)."""
    import trio

    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 4)
    store = Store(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store, NodeMetrics())

    class AlwaysAhead(_SyncPeers):
        def height(self, peer):  # one block ahead of us, as long as it has blocks to serve
            return min(chain.height + 1, len(served))

    net = AlwaysAhead(served)
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, NodeMetrics())
    assert not sync.knows_network_height()
    with trio.fail_after(10):
        await sync._poll_and_catch_up()
    assert chain.height == 1 and sync.knows_network_height()


class _CountingChain:
    """What block sync sees of a chain: a height and its commit listeners (commit() commits one)."""

    def __init__(self):
        self.height, self.listeners = 5, []

    def on_commit(self, listener):
        self.listeners.append(listener)

    def commit(self):
        self.height += 1
        for listener in self.listeners:
            listener(None)


class _PeersInStep(_SyncPeers):
    """Two linked peers at our height: they lack every block we lack."""

    def __init__(self, chain):
        super().__init__([], ("peer-a", "peer-b"))
        self.chain = chain

    def height(self, peer):
        return self.chain.height


async def test_a_validator_told_of_the_height_it_is_deciding_waits_for_its_own_commit(autojump_clock):
    """The proposer announces a block before the other validators have committed it: a
    validator polled every peer on each such announcement (10.7 status requests per
    validator per idle height at 16 validators + 48 observers). It now gives its own
    consensus CONSENSUS_GRACE to commit that height; an observer still asks at once."""
    import trio

    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient
    from node.sync.catchup import CONSENSUS_GRACE
    from waiting import wait_until

    for follows_consensus in (True, False):
        chain = _CountingChain()
        net = _PeersInStep(chain)
        sync = BlockSync(chain, SyncClient(net, CHAIN_ID, lambda raw: raw), net, NodeMetrics(),
                         follows_consensus=lambda: follows_consensus, expect_block_within=600.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(sync.run)
            await wait_until(lambda: sync.polls == 1 and sync.peer_heights, 10, "first poll")
            for _ in range(5):
                sync.peer_is_at(chain.height + 1)  # the proposer's announcement, before our commit
                await trio.sleep(CONSENSUS_GRACE / 4)
                chain.commit()  # our consensus (or, for the observer, its sync) commits it
                await trio.sleep(CONSENSUS_GRACE / 4)
            if follows_consensus:
                assert sync.polls == 1 and sync.deferred_wakes == 5
                sync.peer_is_at(chain.height + 1)  # and this time our consensus does not commit it
                await wait_until(lambda: sync.polls == 2, 10, "polled after the grace")
                assert sync.deferred_wakes == 5
            else:
                assert sync.polls == 6 and sync.deferred_wakes == 0  # an observer asks at once
            nursery.cancel_scope.cancel()


async def test_an_observer_told_of_the_next_block_fetches_it_from_one_peer_without_polling(tmp_path):
    """An announcement of the next height used to poll every link's status and then fetch:
    three requests per block for an observer with two links. It now asks one peer, in
    turn, for the blocks it was told of, and polls every peer only if that one lacks them."""
    import trio

    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient
    from waiting import wait_until

    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 7)
    chain = make_chain(genesis, Store(tmp_path / "node.db", genesis), NodeMetrics())
    net = _SyncPeers(served, ("peer-a", "peer-b"))
    has, asked = net.has, net.asked  # the height each peer has committed; the requests it got
    has["peer-a"] = has["peer-b"] = 2
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, NodeMetrics(),
                     expect_block_within=600.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sync.run)
        await wait_until(lambda: chain.height == 2, 10, "the first poll's catch-up")
        asked.clear()
        for h in (3, 4, 5):  # each announced by gossip once both peers have it
            has["peer-a"] = has["peer-b"] = h
            sync.peer_is_at(h)
            await wait_until(lambda: chain.height == h, 10, f"block {h}")
        assert asked == [("peer-a", 3, 1), ("peer-b", 4, 1), ("peer-a", 5, 1)]  # one request each, in turn
        assert sync.announced_fetches == 3 and sync.polls == 1
        asked.clear()
        has["peer-a"] = 6  # peer-b is asked first and has not committed 6 yet: every peer's status, then a fetch
        sync.peer_is_at(6)
        await wait_until(lambda: chain.height == 6, 10, "block 6 after a poll")
        assert asked[0] == ("peer-b", 6, 1) and ("peer-a", "status") in asked and ("peer-b", "status") in asked
        assert sync.announced_fetches == 3 and sync.polls == 2
        nursery.cancel_scope.cancel()


async def test_the_periodic_poll_is_left_out_while_blocks_keep_coming(autojump_clock):
    """A node asked every peer's status every poll_interval (a validator at 16 + 48: 21
    requests per 30 s, 3.5 per idle height, for nothing): while blocks keep being
    committed here the poll is left out; once they stop, it polls again."""
    import trio

    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient
    from waiting import wait_until

    chain = _CountingChain()
    net = _PeersInStep(chain)
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, lambda raw: raw), net, NodeMetrics(), poll_interval=30.0,
                     expect_block_within=600.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sync.run)
        await wait_until(lambda: sync.polls == 1 and sync.peer_heights, 10, "first poll")
        for _ in range(12):  # two minutes of a block every 10 s (by consensus, or a fetched announcement)
            await trio.sleep(10)
            chain.commit()
        assert sync.polls == 1 and sync.skipped_polls >= 3
        await wait_until(lambda: sync.polls == 2, 61, "a poll within two intervals of the last block")
        nursery.cancel_scope.cancel()
