"""Several nodes in one trio process.

All but one run on the in-memory network (node/p2p/memory.py) under trio's
``MockClock(autojump_threshold=0)``: they test node logic, and on virtual time
they cannot depend on the machine's speed. Bounds are virtual seconds.
One smoke test runs the same four validators over real libp2p on 127.0.0.1.
"""

from __future__ import annotations

import trio

from node.mempool import MempoolRejected
from node.p2p.memory import MemoryHub
from protocol import wire
from protocol.errors import ProtocolError
from protocol.keys import PrivateKey
from protocol.votes import PREVOTE, Vote
from cluster import inprocess_network, make_homes, memory_network, running_nodes, same_chain, signed_offer
from waiting import wait_committed, wait_durable, wait_heights, wait_until


async def _four_validators_commit_the_same_chain(nodes, timeout: float) -> None:
    chain_id = nodes[0].genesis.chain_id
    submitted = []
    for i, node in enumerate(nodes):  # records enter at different nodes
        for j in range(5):
            r = signed_offer(node.key, chain_id, f"svc-{i}-{j}")
            await node.ingest.submit(r.raw)
            submitted.append(r.hash)
    await wait_committed(nodes, submitted, timeout, "all records committed everywhere")
    top = min(n.chain.height for n in nodes)
    assert top >= 1
    await wait_durable(nodes, top, timeout)
    assert same_chain(nodes, top)
    roots = {n.chain.state.state_root for n in nodes if n.chain.height == top}
    assert len(roots) == 1
    # every record is in exactly one block, once
    heights = {nodes[0].chain.store.record(h)[1] for h in submitted}
    assert all(1 <= h <= top for h in heights)


async def test_four_validators_commit_the_same_chain(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 4) as nodes:
        await _four_validators_commit_the_same_chain(nodes, 60)


async def test_four_validators_commit_the_same_chain_over_real_libp2p(tmp_path):
    # The smoke test of the whole stack on real sockets, on the real clock: ~4 s on a quiet
    # machine; 4 nodes in one process at load avg 14 on 2 cores needed more than 120 s.
    async with inprocess_network(tmp_path, 4) as nodes:
        await _four_validators_commit_the_same_chain(nodes, 240)
        # consensus messages travel on the validators' links (node/p2p/link.py), both ways
        await wait_until(lambda: all(len(n.net.links.up()) == 3 for n in nodes), 240, "every validator linked to three")
        from node.api.views import peers

        links = [sorted(str(p["link"]) for p in peers(n)["peers"]) for n in nodes]  # what GET /v1/peers says
        assert all(len(x) == 3 and set(x) <= {"inbound", "outbound"} for x in links), links
        assert sum(x.count("outbound") for x in links) == 6  # one dialer per pair
        sent = [n.net.links.stats.frames_sent for n in nodes]
        await wait_heights(nodes, max(n.chain.height for n in nodes) + 2, 240)
        assert all(n.net.links.stats.frames_sent > before for n, before in zip(nodes, sent)), \
            [n.net.statistics()["links"] for n in nodes]


async def test_an_observer_that_misses_block_announcements_polls_after_two_heartbeats(tmp_path, autojump_clock):
    # Gossip is lossy, and an observer with few links can be left out of its peers' meshes
    # (bench_scale: up to 60 s). Validators make a block at least every heartbeat interval,
    # so no block for twice that means announcements were missed: it asks then, not only
    # at the 30 s poll.
    homes = make_homes(tmp_path, 4, observers=1)
    hub = MemoryHub()
    async with running_nodes(homes[:4], hub=hub) as validators:
        async with running_nodes(homes[4:], connect=False, hub=hub) as (observer,):
            for v in validators[:2]:
                observer.net.add_persistent_peer(v.listen_addrs[0])
            await wait_heights([observer], 2, 60, "observer following")
            # (at start, before the links were up, nodes may have asked)
            quiet = [n.sync.quiet_polls for n in validators + [observer]]
            await wait_heights([observer], observer.chain.height + 20, 60, "observer following announcements")
            # a block every heartbeat (announced to the observer, committed by the validators
            # themselves): never a quiet poll
            assert [n.sync.quiet_polls for n in validators + [observer]] == quiet
            observer.net._receive_gossip = lambda *message: None  # deaf to gossip from now on
            within = observer.sync.expect_block_within
            assert within == 2 * 0.4 < observer.sync.poll_interval  # tests' heartbeat: 400 ms
            start, height = trio.current_time(), observer.chain.height
            for round_ in range(3):
                target = observer.chain.height + 2
                await wait_heights(validators, target, 60, f"validators at {target}")
                await wait_heights([observer], target, 60, f"observer caught up ({round_})")
            assert observer.chain.height >= height + 6 and observer.sync.quiet_polls >= 3
            # each catch-up came within about two heartbeats, far before the 30 s poll
            assert trio.current_time() - start < 3 * (within + 1.0)


async def test_observer_joins_late_and_syncs_the_whole_chain(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4, observers=1)
    hub = MemoryHub()
    async with running_nodes(homes[:4], hub=hub) as validators:
        chain_id = validators[0].genesis.chain_id
        for j in range(10):
            await validators[j % 4].ingest.submit(signed_offer(validators[j % 4].key, chain_id, f"early-{j}").raw)
        await wait_heights(validators, 4, 60)
        async with running_nodes(homes[4:], connect=False, hub=hub) as (observer,):
            assert observer.chain.height == 0
            for v in validators:
                observer.net.add_persistent_peer(v.listen_addrs[0])
            assert observer.driver is None  # observers never vote
            target = validators[0].chain.height
            await wait_heights([observer], target, 60, "observer synced")
            await wait_durable(validators + [observer], target)
            assert same_chain(validators + [observer], target)
            # in a sync batch the state advances before the batch's single disk write and metrics
            await wait_until(lambda: observer.metrics.blocks_committed.labels("sync")._value.get() >= target, 60,
                             "sync commits counted")
            assert observer.chain.store.height >= target
            # and it keeps following new blocks
            await validators[1].ingest.submit(signed_offer(validators[1].key, chain_id, "late").raw)
            await wait_heights([observer], target + 1, 60, "observer follows")


async def test_bad_signature_and_replayed_seq_never_reach_a_block(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 4) as nodes:
        node = nodes[0]
        chain_id = node.genesis.chain_id
        good = signed_offer(node.key, chain_id, "svc-a")
        await node.ingest.submit(good.raw)
        await wait_committed(nodes, [good.hash], 60, "good record committed")

        forged = bytearray(signed_offer(node.key, chain_id, "svc-b").raw)
        forged[-1] ^= 1  # last signature byte
        try:
            await node.ingest.submit(bytes(forged))
            raise AssertionError("forged record accepted")
        except ProtocolError as exc:
            assert exc.reason == "bad_signature"
        replay = signed_offer(node.key, chain_id, "svc-a", seq=1, title="Replayed")
        try:
            await node.ingest.submit(replay.raw)
            raise AssertionError("replayed seq accepted")
        except MempoolRejected as exc:
            assert exc.reason == "replayed_seq"
        # a forged record gossiped directly is rejected by every receiver
        receivers = nodes[2:] + nodes[:1]

        def forged_rejected() -> bool:
            return all(n.metrics.rejected_counts().get("gossip/bad_signature", 0) >= 1 for n in receivers)

        await nodes[1].net.publish(wire.Topics.of(chain_id).records, wire.encode_records([bytes(forged)]))
        await wait_until(forged_rejected, 60, "the forged record rejected by every receiver")
        marker = signed_offer(node.key, chain_id, "svc-c")
        await node.ingest.submit(marker.raw)
        await wait_committed(nodes, [marker.hash], 60, "marker committed")
        for n in nodes:
            assert n.chain.store.records(service_id="svc-b") == []
            assert [r.body.title for r, _, _ in n.chain.store.records(service_id="svc-a")] == ["Foreign exchange"]


async def test_vote_from_a_non_validator_changes_nothing(tmp_path, autojump_clock):
    async with memory_network(tmp_path, 4, observers=1) as nodes:
        validators, observer = nodes[:4], nodes[4]
        await wait_heights(validators, 1, 60, "first block")
        chain_id = observer.genesis.chain_id
        h = validators[0].chain.height + 1
        before = [dict(v.driver.cs.rejected) for v in validators]
        bogus = Vote.create(observer.key, chain_id, PREVOTE, h, 0, b"\x11" * 32)
        outsider = Vote.create(PrivateKey.generate(), chain_id, PREVOTE, h, 0, b"\x22" * 32)  # not even a member

        def all_rejected() -> bool:
            return all(v.metrics.rejected_counts().get("consensus/not_validator", 0) >= 2 for v in validators)

        await observer.net.publish(wire.Topics.of(chain_id).consensus, wire.encode_vote(bogus, 0))
        await observer.net.publish(wire.Topics.of(chain_id).consensus, wire.encode_vote(outsider, 0))
        await wait_until(all_rejected, 60, "both non-validator votes rejected by every validator")
        start = validators[0].chain.height
        await validators[0].ingest.submit(signed_offer(validators[0].key, chain_id, "after").raw)
        await wait_heights(validators, start + 1, 60, "chain keeps committing")
        top = min(v.chain.height for v in validators)
        await wait_durable(validators, top)
        assert same_chain(validators, top)
        for v, b in zip(validators, before):
            assert v.driver.cs.rejected.get("not_validator", 0) == b.get("not_validator", 0)  # dropped before the state machine


async def test_restarted_node_resumes_where_it_stopped(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4)
    hub = MemoryHub()
    async with running_nodes(homes[:3], hub=hub) as first:
        # three of four validators hold 30 of 40 power: > 2/3, they commit without the fourth
        chain_id = first[0].genesis.chain_id
        await first[0].ingest.submit(signed_offer(first[0].key, chain_id, "x").raw)
        await wait_heights(first, 2, 60, "3 validators commit")
        stopped_at = first[2].chain.height
        root = first[2].chain.state.state_root
    async with running_nodes(homes, hub=hub) as nodes:
        assert nodes[2].chain.height == stopped_at and nodes[2].chain.state.state_root == root
        await wait_heights(nodes[3:], stopped_at, 60, "fourth validator caught up")
        await nodes[3].ingest.submit(signed_offer(nodes[3].key, chain_id, "y").raw)
        target = max(n.chain.height for n in nodes) + 1
        await wait_heights(nodes, target, 60, "all four commit together")
        await wait_durable(nodes, target)
        assert same_chain(nodes, target)


async def test_a_record_accepted_while_disconnected_is_regossiped_and_committed(tmp_path, autojump_clock):
    hub = MemoryHub()
    async with memory_network(tmp_path, 4, observers=1, hub=hub) as nodes:
        validators, observer = nodes[:4], nodes[4]
        hub.partition([observer.peer_id], [v.peer_id for v in validators])
        assert observer.net.connected_peers() == []
        chain_id = observer.genesis.chain_id
        record = signed_offer(observer.key, chain_id, "offline-submit")
        await observer.ingest.submit(record.raw)  # no peers: this batch reaches nobody
        # The scenario: the observer stays cut off for a while (virtual time: MockClock).
        # Nothing may reach the validators meanwhile, whatever is re-sent.
        await trio.sleep(6.5)
        assert not any(v.mempool.get(record.hash) for v in validators)
        assert observer.ingest.regossiped_records >= 1  # re-sent into the void, every interval
        hub.heal()
        await wait_committed(validators, [record.hash], 60, "record committed after re-gossip")
