"""Several real nodes in one trio process, over libp2p on 127.0.0.1."""

from __future__ import annotations

import trio

from node.mempool import MempoolRejected
from protocol import wire
from protocol.errors import ProtocolError
from protocol.keys import PrivateKey
from protocol.votes import PREVOTE, Vote
from cluster import inprocess_network, make_homes, running_nodes, same_chain, signed_offer, wait_durable, wait_until


async def test_four_validators_commit_the_same_chain(tmp_path):
    async with inprocess_network(tmp_path, 4) as nodes:
        chain_id = nodes[0].genesis.chain_id
        submitted = []
        for i, node in enumerate(nodes):  # records enter at different nodes
            for j in range(5):
                r = signed_offer(node.key, chain_id, f"svc-{i}-{j}")
                await node.ingest.submit(r.raw)
                submitted.append(r.hash)
        def committed_everywhere() -> bool:
            # the store is written before the in-memory height advances: wait for both
            for n in nodes:
                for h in submitted:
                    found = n.chain.store.record(h)
                    if found is None or n.chain.height < found[1]:
                        return False
            return True

        await wait_until(committed_everywhere, 30, "all records committed everywhere")
        top = min(n.chain.height for n in nodes)
        assert top >= 1
        await wait_durable(nodes, top)
        assert same_chain(nodes, top)
        roots = {n.chain.state.state_root for n in nodes if n.chain.height == top}
        assert len(roots) == 1
        # every record is in exactly one block, once
        heights = {nodes[0].chain.store.record(h)[1] for h in submitted}
        assert all(1 <= h <= top for h in heights)


async def test_observer_joins_late_and_syncs_the_whole_chain(tmp_path):
    homes = make_homes(tmp_path, 4, observers=1)
    async with running_nodes(homes[:4]) as validators:
        chain_id = validators[0].genesis.chain_id
        for j in range(10):
            await validators[j % 4].ingest.submit(signed_offer(validators[j % 4].key, chain_id, f"early-{j}").raw)
        await wait_until(lambda: all(v.chain.height >= 4 for v in validators), 30, "validators at height 4")
        async with running_nodes(homes[4:], connect=False) as (observer,):
            for v in validators:
                observer.net.add_persistent_peer(v.listen_addrs[0])
            assert observer.driver is None  # observers never vote
            target = validators[0].chain.height
            await wait_until(lambda: observer.chain.height >= target, 30, "observer synced")
            await wait_durable(validators + [observer], target)
            assert same_chain(validators + [observer], target)
            # in a sync batch the state advances before the batch's single disk write and metrics
            await wait_until(lambda: observer.metrics.blocks_committed.labels("sync")._value.get() >= target, 10,
                             "sync commits counted")
            assert observer.chain.store.height >= target
            # and it keeps following new blocks
            await validators[1].ingest.submit(signed_offer(validators[1].key, chain_id, "late").raw)
            await wait_until(lambda: observer.chain.height > target, 30, "observer follows")


async def test_bad_signature_and_replayed_seq_never_reach_a_block(tmp_path):
    async with inprocess_network(tmp_path, 4) as nodes:
        node = nodes[0]
        chain_id = node.genesis.chain_id
        good = signed_offer(node.key, chain_id, "svc-a")
        await node.ingest.submit(good.raw)
        await wait_until(lambda: all(n.chain.store.record(good.hash) for n in nodes), 30, "good record committed")

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
        # forged records gossiped directly are rejected by receivers (re-sent: gossip is best effort)
        def forged_rejected() -> bool:
            return any(n.metrics.rejected_counts().get("gossip/bad_signature", 0) >= 1 for n in nodes[2:] + nodes[:1])

        with trio.move_on_after(15):
            copies = 1
            while not forged_rejected():  # each batch differs (more copies): gossip drops repeated bytes
                await nodes[1].net.publish(wire.Topics.of(chain_id).records, wire.encode_records([bytes(forged)] * copies))
                copies += 1
                await trio.sleep(0.5)
        marker = signed_offer(node.key, chain_id, "svc-c")
        await node.ingest.submit(marker.raw)
        await wait_until(lambda: all(n.chain.store.record(marker.hash) for n in nodes), 30, "marker committed")
        for n in nodes:
            assert n.chain.store.records(service_id="svc-b") == []
            assert [r.body.title for r, _, _ in n.chain.store.records(service_id="svc-a")] == ["Foreign exchange"]
        assert forged_rejected()


async def test_vote_from_a_non_validator_changes_nothing(tmp_path):
    homes = make_homes(tmp_path, 4, observers=1)
    async with running_nodes(homes) as nodes:
        validators, observer = nodes[:4], nodes[4]
        await wait_until(lambda: all(v.chain.height >= 1 for v in validators), 30, "first block")
        chain_id = observer.genesis.chain_id
        h = validators[0].chain.height + 1
        before = [dict(v.driver.cs.rejected) for v in validators]
        bogus = Vote.create(observer.key, chain_id, PREVOTE, h, 0, b"\x11" * 32)
        outsider = Vote.create(PrivateKey.generate(), chain_id, PREVOTE, h, 0, b"\x22" * 32)  # not even a member

        def all_rejected() -> bool:
            return all(v.metrics.rejected_counts().get("consensus/not_validator", 0) >= 2 for v in validators)

        with trio.move_on_after(15):
            for resend in range(1000):  # gossip is best effort: re-send (new bytes) until every validator saw both
                await observer.net.publish(wire.Topics.of(chain_id).consensus, wire.encode_vote(bogus, resend))
                await observer.net.publish(wire.Topics.of(chain_id).consensus, wire.encode_vote(outsider, resend))
                with trio.move_on_after(0.5):
                    await wait_until(all_rejected, 1, "rejections")
                if all_rejected():
                    break
        assert all_rejected(), "non-validator votes were not rejected by every validator"
        start = validators[0].chain.height
        await validators[0].ingest.submit(signed_offer(validators[0].key, chain_id, "after").raw)
        await wait_until(lambda: all(v.chain.height > start for v in validators), 30, "chain keeps committing")
        top = min(v.chain.height for v in validators)
        await wait_durable(validators, top)
        assert same_chain(validators, top)
        for v, b in zip(validators, before):
            assert v.driver.cs.rejected.get("not_validator", 0) == b.get("not_validator", 0)  # dropped before the state machine


async def test_restarted_node_resumes_where_it_stopped(tmp_path):
    homes = make_homes(tmp_path, 4)
    async with running_nodes(homes[:3]) as first:
        # three of four validators hold 30 of 40 power: > 2/3, they commit without the fourth
        chain_id = first[0].genesis.chain_id
        await first[0].ingest.submit(signed_offer(first[0].key, chain_id, "x").raw)
        await wait_until(lambda: all(n.chain.height >= 2 for n in first), 30, "3 validators commit")
        stopped_at = first[2].chain.height
        root = first[2].chain.state.state_root
    async with running_nodes(homes) as nodes:
        assert nodes[2].chain.height == stopped_at and nodes[2].chain.state.state_root == root
        await wait_until(lambda: nodes[3].chain.height >= stopped_at, 30, "fourth validator caught up")
        await nodes[3].ingest.submit(signed_offer(nodes[3].key, chain_id, "y").raw)
        target = max(n.chain.height for n in nodes) + 1
        await wait_until(lambda: all(n.chain.height >= target for n in nodes), 30, "all four commit together")
        await wait_durable(nodes, target)
        assert same_chain(nodes, target)


async def test_a_record_accepted_while_disconnected_is_regossiped_and_committed(tmp_path):
    homes = make_homes(tmp_path, 4, observers=1)
    async with running_nodes(homes[:4]) as validators:
        async with running_nodes(homes[4:], connect=False) as (observer,):
            chain_id = observer.genesis.chain_id
            record = signed_offer(observer.key, chain_id, "offline-submit")
            await observer.ingest.submit(record.raw)  # no peers yet: this gossip reaches nobody
            # stay away longer than gossipsub's own message cache (5 heartbeats of 1 s) would repair it
            await trio.sleep(6.5)
            assert not any(v.mempool.get(record.hash) for v in validators)
            for v in validators:
                observer.net.add_persistent_peer(v.listen_addrs[0])
            await wait_until(lambda: all(v.chain.store.record(record.hash) for v in validators), 30,
                             "record committed after re-gossip")
            assert observer.ingest.regossiped_records >= 1
