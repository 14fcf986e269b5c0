"""Record batches are pushed straight to validators over /branchnet/{chain}/records/1
(a non-validator's to one validator, which forwards them to the rest); gossip carries
them only when no validator is connected.

Nodes run on the in-memory network (node/p2p/memory.py) under trio's
``MockClock(autojump_threshold=0)``: push, gossip fallback and proposal
completion are node logic; the transport under them is tested in test_p2p_*.
Bounds are virtual seconds.
"""

from __future__ import annotations

import pytest
import trio

from cluster import make_homes, memory_network, running_nodes, signed_offer
from node.p2p.memory import MemoryHub
from protocol import wire
from protocol.encoding import encode
from waiting import wait_committed, wait_until


async def test_records_reach_the_validators_by_push_without_gossip(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 4) as nodes:
        chain_id = nodes[0].genesis.chain_id
        records = [signed_offer(nodes[0].key, chain_id, f"svc-{j}") for j in range(20)]
        for r in records:
            await nodes[0].ingest.submit(r.raw)
        await wait_committed(nodes, [r.hash for r in records], 60, "records committed everywhere")
        m = nodes[0].metrics
        # (if we proposed them, the block can commit before our 100 ms flush: wait for it)
        await wait_until(lambda: m.record_batches_sent.labels("push")._value.get() >= 2, 60,
                         "one push per upcoming proposer (not us) and batch")
        stats = nodes[0].ingest.statistics()
        assert stats["pushed_batches"] >= 1 and stats["push_failures"] == 0
        assert stats["gossiped_batches"] == 0  # every validator was reached directly
        assert m.record_batches_sent.labels("gossip")._value.get() == 0
        records_topic = wire.Topics.of(chain_id).records
        for n in nodes:
            assert n.net.statistics()["memory"]["received_by_topic"].get(records_topic, 0) == 0
            assert n.ingest.statistics()["forwarded_batches"] == 0  # a validator's push is never forwarded


async def test_a_validator_pushes_records_only_to_the_upcoming_proposers(tmp_path, autojump_clock):
    from node.ingest import PUSH_PROPOSERS, upcoming_proposers
    from node.p2p.host import peer_id_of
    from protocol.consensus.proposer import proposer

    async with memory_network(tmp_path, 7) as nodes:
        sender = nodes[0]
        state = sender.chain.state
        expected = [peer_id_of(state.validators.get(proposer(state.validators, state.height + 1 + i, 0)).public_key.raw)
                    for i in range(PUSH_PROPOSERS)]
        assert upcoming_proposers(state) == expected  # equal powers: the next three steps, all distinct
        rec = signed_offer(sender.key, sender.genesis.chain_id, "one")
        await sender.ingest.submit(rec.raw)
        await wait_committed(nodes, [rec.hash], 60, "committed everywhere")
        protocol = wire.records_protocol(sender.genesis.chain_id)

        def served(n) -> int:  # pushes a node answered (also those arriving after the record committed)
            return n.net.statistics()["memory"]["served_by_protocol"].get(protocol, 0)

        await wait_until(lambda: sender.ingest.statistics()["pushed_batches"] == 1 and sender.ingest.pushes.idle,
                         60, "the batch pushed and answered")
        reached = [n for n in nodes[1:] if served(n)]
        assert 1 <= len(reached) <= PUSH_PROPOSERS  # one batch: at most three of the six others, not all
        assert sender.ingest.statistics()["gossiped_batches"] == 0
        assert find_in_protocol_doc(r"first three distinct\s+validators among the proposers of steps `h \+ 1`")


async def test_push_answers_and_rejections_are_specific_and_change_nothing(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 4) as nodes:
        sender, receiver = nodes[1], nodes[0]
        chain_id = receiver.genesis.chain_id
        protocol = wire.records_protocol(chain_id)

        async def push(data: bytes):
            return wire.decode_response(await sender.net.request(receiver.net.peer_id, protocol, data, timeout=10))

        before = len(receiver.mempool)
        assert await push(b"\xc1 not msgpack") == (wire.BAD_REQUEST, "malformed")
        assert await push(encode([9, [], 0])) == (wire.BAD_REQUEST, "type")
        forged = bytearray(signed_offer(sender.key, chain_id, "forged").raw)
        forged[-1] ^= 1
        assert await push(wire.encode_records([bytes(forged)])) == (wire.OK, 0)
        # one valid record 400 times over is more than 64 KiB: refused whole, the record with it
        big = signed_offer(sender.key, chain_id, "big")
        assert wire.batch_size([big.raw] * 400) > wire.MAX_RECORD_BATCH_BYTES
        assert await push(wire.encode_records([big.raw] * 400)) == (wire.BAD_REQUEST, "batch_too_large")
        counts = receiver.metrics.rejected_counts()
        assert counts.get("push/malformed") == 1 and counts.get("push/type") == 1
        assert counts.get("push/bad_signature") == 1 and counts.get("push/batch_too_large") == 1
        assert len(receiver.mempool) == before and big.hash not in receiver.mempool

        good = signed_offer(sender.key, chain_id, "good")
        ok = await push(wire.encode_records([good.raw]))
        assert ok == (wire.OK, 1) or receiver.chain.store.record(good.hash)  # (or already committed)
        assert await push(wire.encode_records([good.raw])) == (wire.OK, 0)  # a duplicate is not new, not an error
        assert "push/duplicate" not in receiver.metrics.rejected_counts()


async def test_an_observer_pushes_to_one_validator_which_forwards_to_the_rest(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4, observers=1)
    hub = MemoryHub()
    async with running_nodes(homes[:4], hub=hub) as validators:
        async with running_nodes(homes[4:], connect=False, hub=hub) as (observer,):
            for v in validators:
                observer.net.add_persistent_peer(v.listen_addrs[0])
            await wait_until(lambda: len(observer.net.connected_peers()) == 4, 60, "observer connected to all")
            chain_id = observer.genesis.chain_id
            records = [signed_offer(observer.key, chain_id, f"from-observer-{i}") for i in range(4)]
            for i, rec in enumerate(records):
                await observer.ingest.submit(rec.raw)
                await wait_until(lambda: observer.ingest.statistics()["pushed_batches"] > i, 60, f"batch {i} pushed")
            await wait_committed(validators, [r.hash for r in records], 60, "committed everywhere")
            stats = observer.ingest.statistics()
            assert stats["pushed_batches"] == 4 and stats["gossiped_batches"] == 0
            assert observer.metrics.record_batches_sent.labels("push")._value.get() == 4  # one validator per batch
            timed = observer.metrics.registry.get_sample_value  # each push timed in the queue and to its answer
            for stage in ("queued", "answered"):
                assert timed("branchnet_record_push_seconds_count", {"stage": stage}) == 4
            # each batch was taken to the upcoming proposers by the one validator it reached
            assert sum(v.ingest.statistics()["forwarded_batches"] for v in validators) == 4
            assert sum(v.metrics.record_batches_sent.labels("forward")._value.get() for v in validators) == 4
            # 4 from the observer, and at least one more copy of each (3 upcoming proposers: 2 besides the forwarder)
            assert sum(v.ingest.statistics()["received_records"] for v in validators) >= 8


async def test_a_re_sent_record_is_forwarded_again_even_if_held(tmp_path, autojump_clock):
    # A forward can miss its proposers (sent while the network was heights ahead of the
    # forwarder); the observer's re-send is what brings the record to the proposers then.
    homes = make_homes(tmp_path, 4, observers=1)
    hub = MemoryHub()
    async with running_nodes(homes[:4], hub=hub) as validators:
        async with running_nodes(homes[4:], connect=False, hub=hub) as (observer,):
            v = validators[0]
            observer.net.add_persistent_peer(v.listen_addrs[0])
            await wait_until(lambda: observer.net.connected_peers() == [v.net.peer_id], 60, "observer linked")
            chain_id = observer.genesis.chain_id
            rec = signed_offer(observer.key, chain_id, "re-sent")
            protocol = wire.records_protocol(chain_id)
            for resend, new in ((0, 1), (1, 0)):
                answer = await observer.net.request(v.net.peer_id, protocol, wire.encode_records([rec.raw], resend), timeout=10)
                assert wire.decode_response(answer) == (wire.OK, new)
                assert v.ingest.statistics()["forwarded_batches"] == resend + 1  # new or held: forwarded
            await wait_committed(validators, [rec.hash], 60, "committed")
            answer = await observer.net.request(v.net.peer_id, protocol, wire.encode_records([rec.raw], 2), timeout=10)
            assert v.ingest.statistics()["forwarded_batches"] == 2  # committed: nothing held, nothing forwarded


async def test_a_node_linked_to_no_validator_gossips_its_records(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4, observers=2)
    hub = MemoryHub()
    async with running_nodes(homes[:4], hub=hub) as validators:
        async with running_nodes(homes[4:], connect=False, hub=hub) as (relay, isolated):
            relay.net.add_persistent_peer(validators[0].listen_addrs[0])
            isolated.net.add_persistent_peer(relay.listen_addrs[0])  # an observer behind an observer
            await wait_until(lambda: len(relay.net.connected_peers()) == 2 and isolated.net.connected_peers(), 60,
                             "linked")
            rec = signed_offer(isolated.key, isolated.genesis.chain_id, "from-behind")
            await isolated.ingest.submit(rec.raw)
            await wait_committed(validators, [rec.hash], 60, "committed everywhere")
            stats = isolated.ingest.statistics()
            assert stats["gossiped_batches"] >= 1 and stats["pushed_batches"] == 0


async def test_records_by_hash_answers_from_mempool_and_store_and_rejects_bad_requests(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 4) as nodes:
        asker, server = nodes[1], nodes[0]
        chain_id = server.genesis.chain_id
        protocol = wire.sync_protocol(chain_id)

        async def ask(body):
            return wire.decode_response(await asker.net.request(server.net.peer_id, protocol, encode(body), timeout=10))

        committed = signed_offer(server.key, chain_id, "committed")
        await server.ingest.submit(committed.raw)
        await wait_committed([server], [committed.hash], 60, "committed")
        unknown = b"\x42" * 32
        status, payload = await ask([wire.REQ_RECORDS, [committed.hash, unknown]])
        assert status == wire.OK and payload == [committed.raw, None]
        for bad, reason in [([wire.REQ_RECORDS, []], "empty"), ([wire.REQ_RECORDS, [b"short"]], "size"),
                            ([wire.REQ_RECORDS, [unknown] * (wire.MAX_RECORDS_REQUEST + 1)], "too_long")]:
            status, payload = await ask(bad)
            assert status == wire.BAD_REQUEST, (bad[:1], payload)
        assert sum(v for k, v in server.metrics.rejected_counts().items() if k.startswith("sync_request/")) == 3


async def test_a_validator_missing_records_completes_compact_proposals_by_hash(tmp_path, monkeypatch, autojump_clock):
    import node.consensus.outbox

    monkeypatch.setattr(node.consensus.outbox, "COMPACT_MIN_RECORDS", 1)  # every proposal with records goes compact
    async with memory_network(tmp_path, 4) as nodes:
        deaf = nodes[3]
        chain_id = deaf.genesis.chain_id

        async def swallow(peer: str, data: bytes) -> bytes:  # acknowledges pushes, keeps nothing
            return wire.response(wire.OK, 0)

        deaf.net.register_handler(wire.records_protocol(chain_id), swallow)
        records = [signed_offer(nodes[0].key, chain_id, f"svc-{j}") for j in range(12)]
        for r in records:
            await nodes[0].ingest.submit(r.raw)
        await wait_committed(nodes, [r.hash for r in records], 60, "records committed everywhere, the deaf validator included")
        assert not any(r.hash in deaf.mempool for r in records)
        fetched = deaf.driver.statistics()["fetched"]
        assert fetched["records"] >= 1  # it completed compact proposals by fetching their records
        assert fetched["blocks"] == 0  # never needed the whole block
        assert deaf.metrics.proposal_data_fetched.labels("records")._value.get() == fetched["records"]


async def test_a_validator_that_never_answers_pushes_delays_nobody_else(tmp_path, autojump_clock):
    # The sender is an observer: it never proposes, so pushes are the only way its records travel.
    async with memory_network(tmp_path, 4, observers=1) as nodes:
        validators, sender = nodes[:4], nodes[4]
        stuck, healthy = validators[3], validators[:3]
        chain_id = sender.genesis.chain_id
        for n in nodes:
            n.ingest.pushes.timeout = 120  # longer than this test may run: a stalled push never ends here
        hung = trio.Event()

        async def hang(peer: str, data: bytes) -> bytes:
            hung.set()
            await trio.sleep_forever()

        stuck.net.register_handler(wire.records_protocol(chain_id), hang)
        for wave in range(6):  # six batches, 100 ms flushes apart: some validator forwards two to the stuck one
            records = [signed_offer(sender.key, chain_id, f"w{wave}-{j}") for j in range(5)]
            for r in records:
                await sender.ingest.submit(r.raw)
            # each batch reaches the healthy validators while the stuck one hangs on the first
            await wait_until(lambda: all(r.hash in n.mempool or n.chain.store.record(r.hash)
                                         for n in healthy for r in records), 60, f"wave {wave} delivered")
        assert hung.is_set()  # the stuck validator was asked (taken in turn), and is still hanging:
        assert sum(n.ingest.statistics()["push_failures"] for n in nodes) == 0  # its batches wait in its own queues


async def test_only_records_unconfirmed_for_a_whole_interval_are_sent_again(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 1) as (node,):
        ingest = node.ingest
        ingest.regossip_interval = 3.0
        chain_id = node.genesis.chain_id
        old, new = (signed_offer(node.key, chain_id, s) for s in ("old", "new"))
        for r in (old, new):
            node.mempool.add(r)  # as submit() leaves them, without a block being cut
        ingest._local = {old.hash: (old.raw, 100.0, 3.0), new.hash: (new.raw, 102.0, 3.0)}
        assert ingest._due_for_resend(102.9) == []
        assert ingest._due_for_resend(103.0) == [old.raw]  # sent 3 s ago
        assert ingest._due_for_resend(104.0) == []  # old was just re-sent; new is 2 s old
        assert ingest._due_for_resend(105.0) == [new.raw]
        node.mempool.remove([old])  # committed (or dropped): forgotten, never re-sent
        assert ingest._due_for_resend(200.0) == [new.raw] and old.hash not in ingest._local


async def test_a_record_long_uncommitted_is_sent_again_ever_less_often(tmp_path, autojump_clock):
    # 16 validators whose heights were stuck re-sent every uncommitted record to every
    # validator every 3 s: 117 pushes served per validator per height (bench_scale).
    from node.ingest import MAX_REGOSSIP_BACKOFF

    async with memory_network(tmp_path, 1) as (node,):
        ingest = node.ingest
        ingest.regossip_interval = 3.0
        record = signed_offer(node.key, node.genesis.chain_id, "slow")
        node.mempool.add(record)
        ingest._local = {record.hash: (record.raw, 0.0, 3.0)}
        sent = [t / 10 for t in range(0, 2000) if ingest._due_for_resend(t / 10)]
        assert sent[:5] == [3.0, 9.0, 21.0, 45.0, 69.0]  # after 3, 6, 12, then every 24 s
        assert 3.0 * MAX_REGOSSIP_BACKOFF == 24.0
        assert find_in_protocol_doc(r"3 s after they were sent, then after 6 s and 12 s, then every 24 s")


def find_in_protocol_doc(pattern: str):
    from protocol_doc import find, section

    return find(pattern, section("11.2"))


@pytest.mark.parametrize("failure", ["timeout", "error"])
async def test_a_push_that_fails_is_not_gossiped(tmp_path, autojump_clock, failure):
    # A validator too slow (or too busy) to take a push is not out of reach: gossip would
    # reach it through the same process and cost every node 4-5 ms per copy, and at 31
    # validators under load that feedback stalled the network. Re-sends cover it.
    async with memory_network(tmp_path, 2) as (sender, slow):
        chain_id = sender.genesis.chain_id

        async def hang(peer: str, data: bytes) -> bytes:
            await trio.sleep_forever()

        slow.net.register_handler(wire.records_protocol(chain_id), hang)
        # our timeout first, or the server's (it answers with an error: RequestFailed)
        sender.ingest.pushes.timeout = 2.0 if failure == "timeout" else 120.0
        await sender.ingest.submit(signed_offer(sender.key, chain_id, "to-the-slow-one").raw)
        await wait_until(lambda: sender.ingest.statistics()["push_failures"] >= 1, 100, "the push failed")
        assert sender.ingest.statistics()["gossiped_batches"] == 0
        assert slow.net.statistics()["memory"]["received_by_topic"].get(wire.Topics.of(chain_id).records, 0) == 0


async def test_an_observer_hands_a_failed_push_to_another_validator_and_avoids_the_failed_one(tmp_path, autojump_clock):
    # Taking validators in turn, an observer would send every other batch (its re-sends
    # included) into a validator that never answers; now the failed batch goes to another
    # validator at once, and the silent one is left alone for AVOID_FAILED_PUSH seconds.
    from node.push import AVOID_FAILED_PUSH

    homes = make_homes(tmp_path, 4, observers=1)
    hub = MemoryHub()
    async with running_nodes(homes[:4], hub=hub) as validators:
        async with running_nodes(homes[4:], connect=False, hub=hub) as (observer,):
            silent, healthy = validators[0], validators[1]
            for v in (silent, healthy):
                observer.net.add_persistent_peer(v.listen_addrs[0])
            await wait_until(lambda: len(observer.net.connected_peers()) == 2, 60, "observer linked to two")
            chain_id = observer.genesis.chain_id
            asked = []

            async def hang(peer: str, data: bytes) -> bytes:
                asked.append(peer)
                await trio.sleep_forever()

            silent.net.register_handler(wire.records_protocol(chain_id), hang)
            observer.ingest.pushes.timeout = 2.0
            observer.ingest.regossip_interval = 600.0  # no re-sends: the hand-over alone must deliver
            records = [signed_offer(observer.key, chain_id, f"obs-{i}") for i in range(6)]
            start = trio.current_time()
            for i, rec in enumerate(records):
                await observer.ingest.submit(rec.raw)
                await wait_until(lambda: observer.ingest.statistics()["pushed_batches"] > i, 60, f"batch {i} sent")
                await trio.sleep(2.5)  # each its own batch, past the push timeout
            await wait_committed(validators[1:], [r.hash for r in records], 60, "every record committed")
            assert trio.current_time() - start < AVOID_FAILED_PUSH  # none waited for a re-send
            # after its first failure the observer left the silent validator alone (the
            # healthy one's forwards may still go there: it can be an upcoming proposer)
            assert asked.count(observer.net.peer_id) == 1
            assert observer.ingest.statistics()["push_failures"] == 1


async def test_batches_queued_behind_a_push_in_flight_leave_together(tmp_path, autojump_clock):
    """While a push to a validator waits for its answer, the batches queued behind it go
    as one request (each record once), not one request each: a request costs both ends
    about a millisecond whatever it carries."""
    async with memory_network(tmp_path, 1, observers=1) as (validator, sender):
        chain_id = sender.genesis.chain_id
        sender.ingest.pushes.timeout = 120  # the held push must not time out while the test holds it
        sender.ingest.regossip_interval = 1000  # no re-sends meanwhile: the batches are the test's own
        calls: list[list[bytes]] = []
        gate = trio.Event()

        async def held_first(peer: str, data: bytes) -> bytes:
            calls.append(wire.decode_records(data))
            if len(calls) == 1:
                await gate.wait()
            return await validator.ingest.receive_pushed_batch(peer, data)

        validator.net.register_handler(wire.records_protocol(chain_id), held_first)
        waves = [[signed_offer(sender.key, chain_id, f"w{wave}-{j}") for j in range(5)] for wave in range(4)]
        for wave, records in enumerate(waves):
            for r in records:
                await sender.ingest.submit(r.raw)
            # wave 0 is the push in flight; each later wave is one more batch in the queue
            await wait_until(lambda: len(calls) == 1 and sender.ingest.statistics()["push_queued"] == wave, 60,
                             f"wave {wave} pushed or queued")
        gate.set()
        await wait_committed([validator], [r.hash for records in waves for r in records], 60, "every wave committed")
        assert [len(c) for c in calls] == [5, 15]
        assert calls[1] == [r.raw for records in waves[1:] for r in records]  # in the order queued
        assert sender.ingest.statistics()["push_merged"] == 2 and sender.ingest.statistics()["push_failures"] == 0
        queued = sender.metrics.record_push_seconds.labels("queued")
        assert sum(b.get() for b in queued._buckets) == 4  # every batch's wait in the queue is observed


def test_record_batches_keep_the_order_and_the_limit():
    big, mid, small, huge = b"a" * 40_000, b"b" * 20_000, b"c" * 10_000, b"d" * 70_000
    batches = list(wire.record_batches([big, mid, small, huge, small]))
    assert batches == [[big, mid], [small], [huge], [small]]  # a record too big for any batch goes alone
    assert all(wire.batch_size(b) <= wire.MAX_RECORD_BATCH_BYTES for b in batches if b != [huge])
    assert list(wire.record_batches([])) == [] and list(wire.record_batches([small] * 6)) == [[small] * 6]


async def test_merged_pushes_stay_within_one_batch(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 1) as (node,):
        from collections import deque

        big, mid, small = b"a" * 40_000, b"b" * 20_000, b"c" * 10_000
        queue = deque([([big], 0, 0.0), ([big, mid], 2, 0.0), ([small], 1, 0.0)])
        raws, resend = node.ingest.pushes.next_batch(queue)
        assert raws == [big, mid] and resend == 2  # the repeated record once; the third would pass 64 KiB
        assert wire.batch_size(raws) <= wire.MAX_RECORD_BATCH_BYTES < wire.batch_size([big, mid, small])
        assert list(queue) == [([small], 1, 0.0)]
        assert node.ingest.pushes.next_batch(queue) == ([small], 1) and not queue
