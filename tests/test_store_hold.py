"""Block sync's held transaction: several synced ranges written in one SQLite
transaction (Store.write_prepared(hold=True), Chain.write_batch(hold=True), Chain.flush).

Held blocks are invisible to readers until the transaction commits (their listeners
hear of them once written: they are certified); it commits when full, when old, before any other write, on flush and on close;
a held transaction rolled back makes the store refuse every later write."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from factories import CHAIN_ID, make_genesis, offer_record
from test_node_units import KEYS, _certified_block
from node.store import Store
from node.store import writer as store_writer
from protocol import wire
from protocol.ledger import LedgerState


def _prepared(store: Store, state: LedgerState, genesis, heights: range) -> list:
    items = []
    for h in heights:
        block, cert, tx = _certified_block(state, genesis, h)
        items.append(store.prepare_block(block, cert, tx))
        tx.commit()
    return items


def test_held_ranges_commit_together_when_full_before_other_writes_and_on_close(tmp_path, monkeypatch):
    genesis = make_genesis(KEYS)
    state = LedgerState(genesis)
    store = Store(tmp_path / "node.db", genesis)
    store.write_prepared([], hold=True)  # nothing: no transaction left open either
    store.write_pending([], [])
    store.write_prepared(_prepared(store, state, genesis, range(1, 3)), hold=True)
    assert store.holding and store.height == 0  # readers see nothing of an open transaction
    store.write_prepared(_prepared(store, state, genesis, range(3, 5)), hold=True)
    assert store.holding and store.height == 0
    store.commit_held()
    assert not store.holding and store.height == 4

    monkeypatch.setattr(store_writer, "HOLD_ROWS", 12)  # two blocks of 4 records hold 10 rows, three 15
    store.write_prepared(_prepared(store, state, genesis, range(5, 7)), hold=True)
    assert store.holding and store.height == 4
    store.write_prepared(_prepared(store, state, genesis, range(7, 8)), hold=True)
    assert not store.holding and store.height == 7  # full: committed

    monkeypatch.setattr(store_writer, "HOLD_SECONDS", 0.0)  # old at once: committed
    store.write_prepared(_prepared(store, state, genesis, range(8, 9)), hold=True)
    assert not store.holding and store.height == 8
    monkeypatch.undo()

    store.write_prepared(_prepared(store, state, genesis, range(9, 10)), hold=True)
    store.write_pending([(b"\x01" * 32, b"raw", 1)], [])  # another write commits the held blocks first
    assert not store.holding and store.height == 9
    store.write_prepared(_prepared(store, state, genesis, range(10, 11)), hold=True)
    store.close()  # and closing commits them
    store = Store(tmp_path / "node.db", genesis)
    loaded = store.load_state()
    assert (loaded.height, loaded.state_root) == (10, state.state_root)
    store.close()


def test_a_held_transaction_rolled_back_stops_every_later_write(tmp_path):
    genesis = make_genesis(KEYS)
    state = LedgerState(genesis)
    store = Store(tmp_path / "node.db", genesis)
    store.write_prepared(_prepared(store, state, genesis, range(1, 3)), hold=True)
    again = _prepared(store, LedgerState(genesis), genesis, range(1, 2))  # height 1 again: the insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.write_prepared(again, hold=True)
    assert not store.holding and store.height == 0  # blocks 1-2 rolled back with it
    for write in (lambda: store.write_prepared(_prepared(store, state, genesis, range(3, 4))),
                  store.commit_held, lambda: store.write_pending([], [])):
        with pytest.raises(sqlite3.OperationalError, match="rolled back.*restart the node"):
            write()
    store.close()


def test_a_failed_write_that_held_nothing_loses_nothing(tmp_path):
    """Without earlier held rows, a failed write rolls back only itself; the store goes on."""
    genesis = make_genesis(KEYS)
    state = LedgerState(genesis)
    store = Store(tmp_path / "node.db", genesis)
    store.write_prepared(_prepared(store, state, genesis, range(1, 2)))
    with pytest.raises(sqlite3.IntegrityError):
        store.write_prepared(_prepared(store, LedgerState(genesis), genesis, range(1, 2)), hold=True)
    store.write_prepared(_prepared(store, state, genesis, range(2, 3)))
    assert store.height == 2
    store.close()


async def test_a_chain_tells_listeners_of_held_blocks_at_once_and_checks_forks_against_them(tmp_path):
    """Synced blocks are certified: their listeners hear of them once written, before the
    commit, so the held ranges keep no blocks in memory; the fork check still sees them."""
    from cluster import make_chain
    from node.chain import ChainHalted
    from node.metrics import NodeMetrics

    genesis = make_genesis(KEYS)
    store = Store(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store, NodeMetrics())
    heard: list[int] = []
    chain.on_commit(lambda block: heard.append(block.height))
    source = LedgerState(genesis)
    ranges = []
    for heights in (range(1, 3), range(3, 5)):
        items = []
        for h in heights:
            block, cert, tx = _certified_block(source, genesis, h)
            tx.commit()
            items.append((block, cert))
        ranges.append(items)
    other, _, _ = _certified_block(LedgerState(genesis), genesis, 3)  # another block at a held height
    with trio.fail_after(30):
        for items in ranges:
            assert await chain.write_batch(await chain.apply_batch(items), hold=True) == 2
        assert chain.height == 4 and store.holding and store.height == 0 and heard == [1, 2, 3, 4]
        with pytest.raises(ChainHalted, match="fork at height 3"):
            chain._check_no_fork(other)
        await chain.flush()
    assert not store.holding and store.height == 4
    with pytest.raises(ChainHalted, match="fork at height 3"):
        chain._check_no_fork(other)  # read from the disk now
    store.close()


async def test_block_sync_commits_what_it_holds_while_a_range_is_slow_to_come(tmp_path, monkeypatch):
    """The held transaction does not wait on the network: while block sync waits for a
    range longer than HOLD_SECONDS, it commits what it holds (here the peer answers the
    second range only once the first is on disk)."""
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient
    from node.sync import catchup
    from test_block_sync_units import _certified_chain, _SyncPeers

    monkeypatch.setattr(catchup, "HOLD_SECONDS", 0.05)
    genesis = make_genesis(KEYS)
    served = _certified_chain(genesis, 4, records=lambda h: [offer_record(KEYS[h % 4], f"svc-{h}")])
    store = Store(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)

    class SlowPeer(_SyncPeers):
        async def request(self, peer, protocol, data, timeout):
            if wire.decode_request(data) == (wire.REQ_BLOCKS, [3, 2]):
                while store.height < 2:  # readers see the first range only once it is committed
                    await trio.sleep(0.01)
            return await super().request(peer, protocol, data, timeout)

    net = SlowPeer(served)
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=1)
    sync.peer_heights = {"peer-a": 4}
    with trio.fail_after(30):
        await sync.catch_up(4)
    assert chain.height == store.height == 4 and not store.holding
    store.close()
