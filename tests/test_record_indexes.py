"""The records' search indexes left out of a long block sync and built at its end
(``Store.defer_record_indexes``, ``BlockSync._defer_indexes``), and built again when a
store opens without them (a sync cut short): the answers of ``/v1/records``' filters
are the same with and without them, only the query plan differs."""

from __future__ import annotations

import logging
from dataclasses import replace

import trio

from factories import CHAIN_ID, make_genesis, offer, profile, record, status, validator_keys, withdraw
from node.store import Store
from node.store.schema import RECORD_SEARCH_INDEXES, connect_reader
from protocol.ledger import LedgerState, build_block
from protocol.votes import PRECOMMIT, CommitCertificate, Vote

KEYS = validator_keys(4)
FILTERS = [{}, {"kind": "service.offer"}, {"kind": "service.status"}, {"category": "loan"}, {"category": "fx"},
           {"region": "CN-BJ-110105"}, {"region": "CN-SH-310101"}, {"service_id": "svc-3"},
           {"branch_id": KEYS[1].branch_id}, {"branch_id": KEYS[2].branch_id, "service_id": "svc-2"},
           {"branch_id": KEYS[0].branch_id, "kind": "service.withdraw"}, {"kind": "service.offer", "before": (4, 1)},
           {"category": "cash", "before_height": 5}]


def _records(h: int, seqs: dict) -> list:
    """Height ``h``'s records: a profile per branch first (two regions), then offers of
    three categories, statuses and withdrawals spread over the branches (``seqs``: the
    last seq of each (branch, subject), kept up to date)."""
    if h == 1:
        bodies = [profile(region="CN-BJ-110105" if i % 2 else "CN-SH-310101") for i in range(len(KEYS))]
    else:
        bodies = []
        for i, k in enumerate(KEYS):
            service = f"svc-{(h + i) % 5}"
            if (k.branch_id, service) not in seqs["offered"]:
                seqs["offered"].add((k.branch_id, service))
                bodies.append(offer(service, ("fx", "cash", "loan")[(h + i) % 3]))
            elif (h + i) % 3 == 0:
                seqs["offered"].discard((k.branch_id, service))
                bodies.append(withdraw(service))
            else:
                bodies.append(status(service))
    out = []
    for k, body in zip(KEYS, bodies):
        seq = seqs[k.branch_id, body.subject()] = seqs.get((k.branch_id, body.subject()), 0) + 1
        out.append(record(k, body, seq))
    return out


def _served(genesis, n: int, *, records=_records, lie_at: int | None = None) -> list[list[bytes]]:
    """Blocks 1..n as a peer serves them; block ``lie_at``'s header has a wrong state root
    (certified all the same: only applying it finds the lie)."""
    source = LedgerState(genesis)
    served, seqs = [], {"offered": set()}
    for h in range(1, n + 1):
        block, tx, rejected = build_block(source, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                          proposer=KEYS[0].branch_id, candidates=records(h, seqs))
        assert not rejected, rejected
        tx.commit()
        if h == lie_at:
            block = replace(block, header=replace(block.header, state_root=b"\x00" * 32))
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]])
        served.append([block.encode(), cert.encode()])
    return served


def _answers(store: Store) -> list:
    return [[(r.hash, h, i) for r, h, i in store.records(limit=7, **f)] for f in FILTERS]


def _plans(store: Store) -> str:
    """The query plans of the filters that have an index of their own (on a connection of
    its own: a cached EXPLAIN is not prepared again when the schema changes)."""
    db = connect_reader(store.path)
    try:
        return " ".join(str(db.execute(f"EXPLAIN QUERY PLAN SELECT raw FROM records WHERE {col}=? "
                                       "ORDER BY height DESC", (val,)).fetchall())
                        for col, val in (("branch_id", b"x"), ("kind", "k"), ("service_id", "s"),
                                         ("category", "c"), ("region", "r")))
    finally:
        db.close()


async def _synced_store(tmp_path, name: str, served) -> Store:
    from cluster import make_chain

    genesis = make_genesis(KEYS)
    store = Store(tmp_path / name, genesis)
    chain = make_chain(genesis, store)
    await chain.commit_batch([(chain.decode_block(b), CommitCertificate.decode(c)) for b, c in served])
    return store


async def test_the_answers_are_the_same_without_the_indexes_and_building_them_brings_the_plans_back(tmp_path):
    genesis = make_genesis(KEYS)
    store = await _synced_store(tmp_path, "node.db", _served(genesis, 9))
    assert store.record_count() == 36 and store.missing_record_indexes() == []
    with_indexes, plans = _answers(store), _plans(store)
    assert all(name in plans for name in ("records_by_branch", "records_by_kind", "records_by_service",
                                          "records_by_category", "records_by_region"))
    assert sum(map(len, with_indexes)) > 40 and all(with_indexes[:11])  # the filters find something

    assert store.defer_record_indexes() == list(RECORD_SEARCH_INDEXES)
    assert store.missing_record_indexes() == list(RECORD_SEARCH_INDEXES)
    assert store.defer_record_indexes() == []  # none left to drop
    assert _answers(store) == with_indexes
    assert not any(name in _plans(store) for name in RECORD_SEARCH_INDEXES)
    assert "records_by_height" in _plans(store)  # the one index that stays

    assert store.build_record_indexes() == list(RECORD_SEARCH_INDEXES)
    assert store.missing_record_indexes() == [] and store.build_record_indexes() == []
    assert _answers(store) == with_indexes and _plans(store) == plans
    store.close()


async def test_a_store_opened_without_them_builds_them_and_says_so(tmp_path, caplog):
    genesis = make_genesis(KEYS)
    store = await _synced_store(tmp_path, "node.db", _served(genesis, 5))
    answers = _answers(store)
    store.defer_record_indexes()  # a sync that left them out, then the node was killed
    store.close()
    with caplog.at_level(logging.WARNING, logger="branchnet.store"):
        again = Store(tmp_path / "node.db", genesis)
    assert again.missing_record_indexes() == []
    assert _answers(again) == answers
    assert [r.getMessage() for r in caplog.records] == [
        "building 6 search indexes of the records that an interrupted block sync left out (20 records; "
        "about a second per 100,000)"]
    again.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="branchnet.store"):
        Store(tmp_path / "node.db", genesis).close()  # nothing missing: nothing said
    assert caplog.records == []


class _WatchedStore(Store):
    """Lists, at each write of synced blocks, the search indexes missing then."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.missing_at_writes: list[int] = []

    def write_prepared(self, items, *, hold=False):
        self.missing_at_writes.append(len(self._missing_record_indexes()))
        super().write_prepared(items, hold=hold)


async def _catch_up(tmp_path, served, *, defer_from, start_with=0, name="node.db"):
    """A fresh store (with the first ``start_with`` blocks written first, indexes and all)
    catching up on ``served`` from a fake peer; returns (store, sync)."""
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient
    from test_block_sync_units import _SyncPeers

    genesis = make_genesis(KEYS)
    store = _WatchedStore(tmp_path / name, genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    if start_with:
        await chain.commit_batch([(chain.decode_block(b), CommitCertificate.decode(c)) for b, c in served[:start_with]])
        store.missing_at_writes.clear()
    net = _SyncPeers(served)
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=2,
                     defer_indexes_from=defer_from)
    sync.peer_heights = {"peer-a": len(served)}
    with trio.fail_after(30):
        await sync.catch_up(len(served))
    return store, sync, metrics


async def test_a_long_sync_writes_without_the_indexes_and_builds_them_when_it_ends(tmp_path):
    genesis = make_genesis(KEYS)
    served = _served(genesis, 9)
    store, sync, _ = await _catch_up(tmp_path, served, defer_from=20)
    assert store.height == 9
    assert store.missing_at_writes and set(store.missing_at_writes) == {len(RECORD_SEARCH_INDEXES)}
    assert store.missing_record_indexes() == [] and sync.index_builds == 1
    assert sync.statistics()["records_indexed"] is True
    reference = await _synced_store(tmp_path, "reference.db", served)
    assert _answers(store) == _answers(reference)
    store.close()
    reference.close()


async def test_a_short_sync_or_one_into_a_fuller_store_keeps_them(tmp_path):
    genesis = make_genesis(KEYS)
    served = _served(genesis, 9)
    short, sync, _ = await _catch_up(tmp_path, served, defer_from=1000)  # 36 records to come: too few
    assert set(short.missing_at_writes) == {0} and sync.index_builds == 0
    short.close()
    # 24 records held, 12 to come: fewer than the store holds, however low the threshold
    fuller, sync, _ = await _catch_up(tmp_path, served, defer_from=1, start_with=6, name="fuller.db")
    assert fuller.height == 9 and set(fuller.missing_at_writes) == {0} and sync.index_builds == 0
    fuller.close()


async def test_a_sync_that_gets_nowhere_builds_them_again(tmp_path):
    """A peer whose first block lies (certified, with a wrong state root): the round ends
    with nothing committed, so the indexes it left out are built again at once — a peer
    claiming heights it cannot serve does not keep them away."""
    genesis = make_genesis(KEYS)
    store, sync, metrics = await _catch_up(tmp_path, _served(genesis, 9, lie_at=1), defer_from=20)
    assert store.height == 0 and metrics.rejected_counts().get("sync/state_root") == 1
    assert store.missing_record_indexes() == [] and sync.index_builds == 1
    store.close()


async def test_a_round_cut_short_after_progress_leaves_them_to_the_next(tmp_path):
    genesis = make_genesis(KEYS)
    store, sync, metrics = await _catch_up(tmp_path, _served(genesis, 9, lie_at=7), defer_from=20)
    assert store.height == 6 and metrics.rejected_counts().get("sync/state_root") == 1
    assert store.missing_record_indexes() == list(RECORD_SEARCH_INDEXES) and sync.index_builds == 0
    assert sync.statistics()["records_indexed"] is False
    store.close()
