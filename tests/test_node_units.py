"""Unit tests of node pieces that need no network: store, signer store, key files, config, mempool."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from factories import CHAIN_ID, make_genesis, validator_keys
from node.config import CONFIG_TEMPLATE, Config, ConfigError
from node.keyfile import KeyFileError, load_key, save_key
from node.mempool import Mempool, MempoolFull, MempoolRejected
from node.store import Store, StoreCorrupted, WrongChain
from protocol.keys import PrivateKey
from protocol.ledger import LedgerState, build_block
from protocol.records import Record
from protocol.votes import PRECOMMIT, CommitCertificate, Vote

KEYS = validator_keys(4)


def _record(key, service_id, seq=1, title="Foreign exchange"):
    from factories import offer

    return Record.create(key, CHAIN_ID, seq, 1_767_225_600_500, offer(service_id, "fx", title=title))


def _commit_chain(store: Store, genesis, heights: int) -> LedgerState:
    state = LedgerState(genesis)
    for h in range(1, heights + 1):
        recs = [_record(KEYS[i], f"svc-{h}-{i}") for i in range(4)]
        block, tx, rejected = build_block(state, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                          proposer=KEYS[0].branch_id, candidates=recs)
        assert not rejected
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]])
        store.commit_block(block, cert, tx)
        tx.commit()
    return state


# ---------------------------------------------------------------- store


def test_store_round_trip_and_queries(tmp_path):
    genesis = make_genesis(KEYS)
    store = Store(tmp_path / "node.db", genesis)
    state = _commit_chain(store, genesis, 3)
    store.close()
    store = Store(tmp_path / "node.db", genesis)
    loaded = store.load_state()
    assert (loaded.height, loaded.state_root, loaded.last_block_hash) == (3, state.state_root, state.last_block_hash)
    assert len(store.records(branch_id=KEYS[1].branch_id, limit=100)) == 3
    assert len(store.records(category="fx", limit=100)) == 12
    assert store.block(2).block.height == 2 and store.block(9) is None
    b2 = store.block(2).block
    assert store.raw_block_by_hash(b2.hash) == b2.encode() and store.raw_block_by_hash(b"\x00" * 32) is None
    wanted = [r.hash for r in b2.records] + [b"\x00" * 32]
    assert store.raw_records(wanted) == {r.hash: r.raw for r in b2.records}
    # paging by (height, index) walks every record once, even when a page ends inside a block
    everything = [(r.hash, h, i) for r, h, i in store.records(category="fx", limit=100)]
    assert len({h for _, h, _ in everything}) < len(everything)  # blocks hold several matches
    walked, before = [], None
    while True:
        page = store.records(category="fx", before=before, limit=5)
        walked += [(r.hash, h, i) for r, h, i in page]
        if len(page) < 5:
            break
        before = (page[-1][1], page[-1][2])
    assert walked == everything


def test_store_writes_in_multi_row_statements_as_row_by_row(tmp_path, monkeypatch):
    """Rows go in a few statements of many rows (a worker thread's write then needs the GIL a
    few times, not once per row): two rows per statement here, so every table's rows span
    several statements, and they must land as row-by-row writes would."""
    from node.store import writer

    monkeypatch.setattr(writer, "ROWS_PER_STATEMENT", 2)
    genesis = make_genesis(KEYS)
    store = Store(tmp_path / "node.db", genesis)
    state = LedgerState(genesis)
    first = [_record(KEYS[i], "svc-a") for i in range(4)] + [_record(KEYS[0], "svc-b"), _record(KEYS[0], "svc-c")]
    later = _record(KEYS[0], "svc-a", seq=2, title="Foreign exchange, all currencies")
    # acknowledged before they commit: pending, and the signed marks (the highest one wins,
    # also between rows of one statement); a record committed already is not pending again
    store.write_pending([(r.hash, r.raw, 7) for r in first + [later]],
                        [(KEYS[0].branch_id, "service/svc-a", 1), (KEYS[0].branch_id, "service/svc-a", 2),
                         (KEYS[0].branch_id, "service/svc-a", 1), (KEYS[1].branch_id, "service/svc-a", 1),
                         (KEYS[2].branch_id, "service/svc-a", 1)])  # (odd counts: a statement holds the last row alone)
    assert store.signed_seqs() == {(KEYS[0].branch_id, "service/svc-a"): 2, (KEYS[1].branch_id, "service/svc-a"): 1,
                                   (KEYS[2].branch_id, "service/svc-a"): 1}
    assert {h for h, _, _ in store.pending_records()} == {r.hash for r in first + [later]}
    prepared = []
    for h, recs in ((1, first), (2, [later])):
        block, tx, rejected = build_block(state, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                          proposer=KEYS[0].branch_id, candidates=recs)
        assert not rejected
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]])
        prepared.append(store.prepare_block(block, cert, tx))
        tx.commit()
    store.write_prepared(prepared)  # both blocks in one transaction: block 2's state row for svc-a wins
    assert store.pending_records() == []
    store.write_pending([(first[0].hash, first[0].raw, 8)], [])
    assert store.pending_records() == []  # committed: never pending again
    store.close()
    store = Store(tmp_path / "node.db", genesis)
    loaded = store.load_state()  # checks the stored state against the last header's state root
    assert (loaded.height, loaded.state_root) == (2, state.state_root)
    assert loaded.entry(KEYS[0].branch_id, "service/svc-a").seq == 2
    assert len(store.records(limit=100)) == 7


def test_damaged_store_stops_with_a_recovery_command(tmp_path):
    genesis = make_genesis(KEYS)
    (tmp_path / "data").mkdir()
    store = Store(tmp_path / "data" / "node.db", genesis)
    state = _commit_chain(store, genesis, 2)
    store._db.execute("UPDATE state SET seq = 7 WHERE subject = 'service/svc-2-1'")
    with pytest.raises(StoreCorrupted) as info:
        store.load_state()
    assert "state root at height 2" in str(info.value)
    assert f"branchnet store rebuild --home {tmp_path}" in str(info.value)
    rebuilt = store.rebuild_state()
    assert rebuilt.state_root == state.state_root
    assert store.load_state().state_root == state.state_root


def test_store_refuses_another_chain(tmp_path):
    """Finding 5: both chain ids as text, both full genesis hashes, and the recovery."""
    from node.store.reader import ChainReader

    ours, other = make_genesis(KEYS), make_genesis(KEYS[:3])
    store = Store(tmp_path / "node.db", ours)
    store.close()
    for open_it in (lambda: Store(tmp_path / "node.db", other), lambda: ChainReader.open(tmp_path / "node.db", other)):
        with pytest.raises(WrongChain) as info:
            open_it()
        message = str(info.value)
        assert f"holds another chain: {CHAIN_ID} (genesis hash {ours.hash.hex()})" in message
        assert f"not the genesis file's {other.chain_id} (genesis hash {other.hash.hex()})" in message
        assert "b'" not in message and "put the network's genesis.json back" in message
        assert f"mv {tmp_path / 'node.db'} {tmp_path / 'node.db'}.other" in message


# ---------------------------------------------------------------- key files


def test_key_file_is_0600_and_round_trips(tmp_path):
    key = PrivateKey.generate()
    save_key(tmp_path / "k.json", key)
    assert stat.S_IMODE(os.stat(tmp_path / "k.json").st_mode) == 0o600
    assert load_key(tmp_path / "k.json").public_key == key.public_key
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        save_key(tmp_path / "k.json", PrivateKey.generate())


def test_world_readable_key_warns(tmp_path, caplog):
    save_key(tmp_path / "k.json", PrivateKey.generate())
    os.chmod(tmp_path / "k.json", 0o644)
    with caplog.at_level(logging.WARNING, logger="branchnet.keys"):
        load_key(tmp_path / "k.json")
    assert "chmod 600" in caplog.text


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b"[]", '"type": "ed25519"'),
    (b'{"type": "rsa"}', '"type": "ed25519"'),
    (b'{"type": "ed25519", "seed": "zz"}', "64 hex"),
    (b'{"type": "ed25519", "seed": "' + b"00" * 31 + b'"}', "64 hex"),
    (b'{"type": "ed25519", "seed": "' + b"00" * 32 + b'", "public_key": "' + b"11" * 32 + b'"}', "does not match"),
    (b"x" * 5000, "too large"),
])
def test_malformed_key_files_are_rejected_clearly(tmp_path, content, message):
    (tmp_path / "k.json").write_bytes(content)
    os.chmod(tmp_path / "k.json", 0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key(tmp_path / "k.json")


def test_missing_key_file_names_the_fix(tmp_path):
    with pytest.raises(KeyFileError, match="branchnet init"):
        load_key(tmp_path / "nope.json")


# ---------------------------------------------------------------- config


def test_config_template_loads():
    c = Config.from_toml(CONFIG_TEMPLATE.format(moniker="a", mode="observer", listen="/ip4/127.0.0.1/tcp/1", api_listen="127.0.0.1:2"))
    assert c.node.mode == "observer" and c.api.enabled and c.consensus.max_block_records == 5000


_REQUIRED = {"node": {"moniker": "'a'", "mode": "'validator'"}, "p2p": {"listen": "['/ip4/127.0.0.1/tcp/1']"},
             "api": {"listen": "'127.0.0.1:2'"}}


def _toml(section: str, key: str, value: str) -> str:
    """The keys `branchnet init` writes, with ``[section] key = value`` set or added."""
    sections = {name: dict(keys) for name, keys in _REQUIRED.items()}
    sections.setdefault(section, {})[key] = value
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for name, keys in sections.items())


@pytest.mark.parametrize("text, message", [
    (_toml("node", "mode", "'leader'"), "mode"),
    (_toml("nodes", "x", "1"), "unknown section"),
    (_toml("p2p", "listen", "3"), "list of strings"),
    (_toml("p2p", "peers", "['/ip4/1.2.3.4/tcp/1']"), "/p2p/PEER_ID"),
    (_toml("p2p", "listen", "['ip4/127.0.0.1']"), "not a multiaddr"),
    (_toml("p2p", "allow_peers", "['12D3KooWnot-a-peer-id']"), "not a libp2p peer id"),
    (_toml("api", "listen", "'localhost'"), "host:port"),
    (_toml("api", "listen", "'256.1.1.1:26657'"), "neither an IP address nor a host name"),
    (_toml("api", "enabled", "'yes'"), "true or false"),
    (_toml("consensus", "max_block_records", "0"), "must be positive"),
    (_toml("consensus", "block_interval", "5"), "unknown key"),
    (_toml("log", "level", "'loud'"), "level"),
    ("node = ", "not valid TOML"),
    ("", "is empty"),
    ("  \n# nothing\n", "is empty"),
    ("[node]\nmoniker = 'a'\nmode = 'validator'\n", r"lacks \[p2p\] listen, \[api\] listen \(truncated\?\)"),
])
def test_bad_config_names_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_toml(text)


def test_the_keys_init_writes_are_enough():
    config = Config.from_toml(_toml("p2p", "allow_peers", "['12D3KooWPNcEYxy3KjLZEPcM5CtmusSwVWN9wNnkChkVpipFa8sA']"))
    assert config.p2p.allow_peers == ("12D3KooWPNcEYxy3KjLZEPcM5CtmusSwVWN9wNnkChkVpipFa8sA",)


# ---------------------------------------------------------------- mempool


def test_mempool_orders_per_subject_and_rejects_with_reasons():
    genesis = make_genesis(KEYS)
    state = LedgerState(genesis)
    pool = Mempool(state, max_records=4)
    a1, a2, a3 = (_record(KEYS[0], "a", seq=s, title=f"T{s}") for s in (1, 2, 3))
    pool.add(a3)  # out of order: held until the gap closes
    assert pool.reap(10) == []
    pool.add(a1)
    assert pool.reap(10) == [a1]
    pool.add(a2)
    assert pool.reap(10) == [a1, a2, a3]
    assert pool.next_seq(KEYS[0].branch_id, "service/a") == 4
    with pytest.raises(MempoolRejected) as dup:
        pool.add(a1)
    assert dup.value.reason == "duplicate"
    with pytest.raises(MempoolRejected) as conflict:
        pool.add(_record(KEYS[0], "a", seq=2, title="Other"))
    assert conflict.value.reason == "seq_conflict"
    pool.add(_record(KEYS[1], "b"))
    with pytest.raises(MempoolFull) as full:
        pool.add(_record(KEYS[2], "c"))
    assert full.value.reason == "mempool_full"
    outsider = Record.create(PrivateKey.generate(), CHAIN_ID, 1, 0, _record(KEYS[0], "z").body)
    with pytest.raises(MempoolRejected) as member:
        pool.precheck(outsider)
    assert member.value.reason == "not_member"
    # commit a1..a3: they leave the pool; a replay of a1 is then "replayed_seq"
    block, tx, _ = build_block(state, height=1, round=0, time_ms=genesis.genesis_time_ms + 1,
                               proposer=KEYS[0].branch_id, candidates=pool.reap(10))
    tx.commit()
    pool.update(block)
    assert len(pool) == 0
    with pytest.raises(MempoolRejected) as replay:
        pool.precheck(a1)
    assert replay.value.reason == "replayed_seq"
    assert pool.rejected["replayed_seq"] == 1


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
                                   proposer=KEYS[0].branch_id, candidates=[_record(KEYS[h], f"svc-{h}")])
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


async def test_block_sync_stops_at_a_range_with_a_bad_certificate(tmp_path):
    """BlockSync checks ranges ahead of committing them (overlapped with earlier ranges);
    a range whose certificate lacks a quorum is rejected and counted, and nothing of it
    or after it is applied, while the ranges before it are committed."""
    import trio

    from protocol import wire
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    source = LedgerState(genesis)
    served = []
    for h in range(1, 9):
        block, tx, _ = build_block(source, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                   proposer=KEYS[0].branch_id, candidates=[_record(KEYS[h % 4], f"svc-{h}")])
        tx.commit()
        signers = KEYS[:2] if h == 5 else KEYS[:3]  # 2 of 4 equal powers: no quorum at height 5
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in signers])
        served.append([block.encode(), cert.encode()])

    class RangeServer:
        def __init__(self):
            self.asked = []

        async def request(self, peer, protocol, data, timeout):
            op, args = wire.decode_request(data)
            if op == wire.REQ_STATUS:
                return wire.response(wire.OK, [len(served), b"\x00" * 32])
            start, count = args
            self.asked.append(start)
            await trio.sleep(0.01 * (start % 3))  # ranges complete out of order
            return wire.response(wire.OK, served[start - 1 : start - 1 + count])

        def connected_peers(self):
            return ["peer-a", "peer-b"]

    store = Store(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    net = RangeServer()
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=2, window=3)
    sync.peer_heights = {"peer-a": 8, "peer-b": 8}
    with trio.fail_after(10):
        await sync.catch_up(8)
    assert chain.height == 4 and store.height == 4
    assert metrics.rejected_counts().get("sync/no_quorum") == 1
    assert sync.synced_blocks == 4
    assert 7 in net.asked  # the range after the bad one was fetched (and checked) ahead, never applied


async def test_block_sync_sizes_ranges_by_records_and_completes_short_answers(tmp_path):
    """Ranges of big blocks hold about ``range_records`` records (memory in flight and the
    wait for the first commit stay bounded), and a range answered short (the server's
    16 MiB limit) is completed by asking for the rest, not rejected."""
    import trio

    from protocol import wire
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    source = LedgerState(genesis)
    served = []
    for h in range(1, 21):
        recs = [_record(KEYS[i % 4], f"svc-{h}-{i}") for i in range(6)]
        block, tx, _ = build_block(source, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                   proposer=KEYS[0].branch_id, candidates=recs)
        tx.commit()
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]])
        served.append([block.encode(), cert.encode()])

    class ShortServer:  # answers at most 3 blocks, whatever is asked
        def __init__(self):
            self.asked = []

        async def request(self, peer, protocol, data, timeout):
            op, args = wire.decode_request(data)
            if op == wire.REQ_STATUS:
                return wire.response(wire.OK, [len(served), b"\x00" * 32])
            start, count = args
            self.asked.append((start, count))
            return wire.response(wire.OK, served[start - 1 : start - 1 + min(count, 3)])

        def connected_peers(self):
            return ["peer-a"]

    store = Store(tmp_path / "node.db", genesis)
    metrics = NodeMetrics()
    chain = make_chain(genesis, store, metrics)
    net = ShortServer()
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, metrics, batch=64, window=2,
                     range_records=12)
    sync.peer_heights = {"peer-a": 20}
    with trio.fail_after(10):
        await sync.catch_up(20)
    assert chain.height == store.height == 20 and sync.synced_blocks == 20
    assert not metrics.rejected_counts()
    assert {(1, 8), (9, 8)} <= set(net.asked)  # the first ranges, before any size is known: at most 8 blocks
    assert {(4, 5), (12, 5)} <= set(net.asked)  # their rest, each answered with 3 of 8
    assert [count for start, count in net.asked if start > 16] == [2, 2]  # then 12 records / 6 per block


async def test_block_sync_knows_the_network_height_after_catching_up_on_a_busy_chain(tmp_path):
    """A peer is always one block ahead when asked (a busy chain): catching up to what
    it said is enough to know the network's height (else the node answered 503
    catching_up for ever while in sync)."""
    import trio

    from protocol import wire
    from cluster import make_chain
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient

    genesis = make_genesis(KEYS)
    source = LedgerState(genesis)
    served = []
    for h in range(1, 5):
        block, tx, _ = build_block(source, height=h, round=0, time_ms=genesis.genesis_time_ms + h,
                                   proposer=KEYS[0].branch_id, candidates=[])
        tx.commit()
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]])
        served.append([block.encode(), cert.encode()])
    store = Store(tmp_path / "node.db", genesis)
    chain = make_chain(genesis, store, NodeMetrics())

    class AlwaysAhead:
        async def request(self, peer, protocol, data, timeout):
            op, args = wire.decode_request(data)
            if op == wire.REQ_STATUS:  # one block ahead of us, as long as it has blocks to serve
                return wire.response(wire.OK, [min(chain.height + 1, len(served)), b"\x00" * 32])
            start, count = args
            return wire.response(wire.OK, served[start - 1 : start - 1 + count])

        def connected_peers(self):
            return ["peer-a"]

    net = AlwaysAhead()
    sync = BlockSync(chain, SyncClient(net, CHAIN_ID, chain.decode_block), net, NodeMetrics())
    assert not sync.knows_network_height()
    with trio.fail_after(10):
        await sync._poll_and_catch_up()
    assert chain.height == 1 and sync.knows_network_height()


def test_daemon_finds_a_known_failure_inside_nursery_exception_groups():
    from node.errors import ChainHalted
    from node.daemon import known_failure

    halted = ChainHalted("fork at height 7")
    wrapped = ExceptionGroup("outer", [ExceptionGroup("inner", [RuntimeError("other"), halted])])
    assert known_failure(wrapped, (ChainHalted,)) is halted
    assert known_failure(halted, (ChainHalted,)) is halted
    assert known_failure(ExceptionGroup("x", [RuntimeError("boom")]), (ChainHalted,)) is None


def test_mempool_remove_with_a_reason_counts_it_and_lets_a_resend_in():
    genesis = make_genesis(KEYS)
    pool = Mempool(LedgerState(genesis))
    rec = _record(KEYS[1], "svc-x")
    pool.add(rec)
    pool.remove([rec], reason="no_such_service")
    assert len(pool) == 0 and pool.statistics().rejected == {"no_such_service": 1}
    pool.add(rec)  # the reason depended on state: the origin's re-send is accepted
    assert rec.hash in pool


def test_a_consensus_timer_is_due_exactly_when_trio_wakes_for_it():
    # The timer loop sleeps with trio.move_on_at(deadline_ms / 1000) and then pops what is
    # due; judging "due" by int(now * 1000) missed deadlines like 1001 ms (1.001 * 1000 =
    # 1000.999...), and the loop spun for ever on a MockClock.
    import math

    from node.consensus.driver import timer_due

    for deadline_ms in range(0, 200_000):
        woken_at = deadline_ms / 1000  # the earliest trio time at which move_on_at fires
        assert timer_due(deadline_ms, woken_at), deadline_ms
        assert not timer_due(deadline_ms, math.nextafter(woken_at, -math.inf)), deadline_ms


def test_records_queries_seek_in_their_indexes(tmp_path):
    """GET /v1/records?cursor=H:I deep in history: the store's query lets the (…, height)
    index seek to H (the OR form walked every newer row: O(depth) at a million records);
    ?branch=B&service=S reads that service's own index (through the service's index it
    walked every branch's records of the same service id)."""
    genesis = make_genesis(KEYS)
    store = Store(tmp_path / "node.db", genesis)
    state = LedgerState(genesis)
    for h in range(1, 4):
        block, tx, _ = build_block(state, height=h, round=0, time_ms=genesis.genesis_time_ms + h, proposer=KEYS[0].branch_id,
                                   candidates=[_record(KEYS[i], f"svc-{h}-{i}") for i in range(4)])
        store.commit_block(block, CommitCertificate.from_votes(
            [Vote.create(k, CHAIN_ID, PRECOMMIT, h, 0, block.hash) for k in KEYS[:3]]), tx)
        tx.commit()
    asked: list[tuple[str, tuple]] = []
    read = store._read
    store._read = lambda sql, args=(): asked.append((sql, args)) or read(sql, args)
    page = store.records(kind="service.offer", before=(3, 2), limit=5)
    assert [(h, i) for _, h, i in page] == [(3, 1), (3, 0), (2, 3), (2, 2), (2, 1)]
    sql, args = asked[-1]  # planned with its parameters bound, as the node runs it
    plan = " ".join(row[3] for row in store._rdb.execute("EXPLAIN QUERY PLAN " + sql, args))
    assert "records_by_kind (kind=? AND height<?)" in plan, plan
    store.records(branch_id=KEYS[1].branch_id, service_id="svc-2-1")  # one service's history: its own index
    sql, args = asked[-1]
    plan = " ".join(row[3] for row in store._rdb.execute("EXPLAIN QUERY PLAN " + sql, args))
    assert "records_by_branch_service (branch_id=? AND service_id=?)" in plan and "TEMP B-TREE" not in plan, plan


def test_a_big_state_is_frozen_out_of_the_cyclic_gc_and_a_small_one_is_not():
    import gc

    from node import gcfreeze

    class Sized:  # a store that says how many subjects its state holds
        def __init__(self, n):
            self.n = n

        def state_size(self):
            return self.n

    before = gc.get_freeze_count()
    try:
        gcfreeze.freeze_state_objects(Sized(gcfreeze.FREEZE_MIN_SUBJECTS - 1))
        assert gc.get_freeze_count() == before
        gcfreeze.freeze_state_objects(Sized(gcfreeze.FREEZE_MIN_SUBJECTS))
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_a_growing_state_is_frozen_again_every_so_many_synced_records():
    import gc

    from node import gcfreeze

    class Sized:
        def state_size(self):
            return gcfreeze.FREEZE_MIN_SUBJECTS

    freezer = gcfreeze.GrowthFreezer(Sized(), every=1_000)
    before = gc.get_freeze_count()
    try:
        for _ in range(9):
            freezer.synced(100)
        assert freezer.freezes == 0 and gc.get_freeze_count() == before  # 900 records: not yet
        marker = [object()]  # an object alive across the next step
        freezer.synced(100)
        assert freezer.freezes == 1 and gc.get_freeze_count() > before
        assert not any(o is marker for o in gc.get_objects())  # frozen: no collection walks it
        for _ in range(9):
            freezer.synced(100)
        assert freezer.freezes == 1  # counted again from the step
        freezer.synced(100)
        assert freezer.freezes == 2
    finally:
        gc.unfreeze()


async def test_a_validator_told_of_the_height_it_is_deciding_waits_for_its_own_commit(autojump_clock):
    """The proposer announces a block before the other validators have committed it: a
    validator polled every peer on each such announcement (10.7 status requests per
    validator per idle height at 16 validators + 48 observers). It now gives its own
    consensus CONSENSUS_GRACE to commit that height; an observer still asks at once."""
    import trio

    from protocol import wire
    from node.metrics import NodeMetrics
    from node.sync import BlockSync, SyncClient
    from node.sync.catchup import CONSENSUS_GRACE
    from waiting import wait_until

    class Chain:
        def __init__(self):
            self.height, self.listeners = 5, []

        def on_commit(self, listener):
            self.listeners.append(listener)

        def commit(self):
            self.height += 1
            for listener in self.listeners:
                listener(None)

    class Peers:
        async def request(self, peer, protocol, data, timeout):
            return wire.response(wire.OK, [chain.height, b"\x00" * 32])  # never ahead of us

        def connected_peers(self):
            return ["peer-a", "peer-b"]

    for follows_consensus in (True, False):
        chain, net = Chain(), Peers()
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
