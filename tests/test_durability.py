"""Nothing a quorum voted for, and nothing a node acknowledged, is lost in a crash.

In-memory network on trio's MockClock: a "crash" cancels every task of a node
(what is not on disk is gone: mempool, candidates, messages in flight) and a
restart builds a new node from the same home.
"""

from __future__ import annotations

import trio

from cluster import make_homes, running_nodes, signed_offer, wait_until
from node.chain import Chain
from node.consensus.wal import ConsensusWAL
from node.p2p.memory import MemoryHub


async def test_a_block_every_validator_decided_survives_a_crash_of_all_before_it_was_stored(tmp_path, autojump_clock, monkeypatch):
    homes = make_homes(tmp_path, 4)
    hub = MemoryHub()
    decided: dict[int, bytes] = {}
    real_commit = Chain.commit

    async def commit_then_lose_power(self, block, certificate, *, via, tx=None):
        if via == "consensus" and block.height == 2:
            decided[id(self)] = block.hash
            await trio.sleep_forever()  # the power goes before the block reaches the disk
        return await real_commit(self, block, certificate, via=via, tx=tx)

    monkeypatch.setattr(Chain, "commit", commit_then_lose_power)
    async with running_nodes(homes, hub=hub) as nodes:
        chain_id = nodes[0].genesis.chain_id
        await wait_until(lambda: all(n.chain.height >= 1 for n in nodes), 60, "height 1 everywhere")
        record = signed_offer(nodes[0].key, chain_id, "survives")
        await nodes[0].ingest.submit(record.raw)
        await wait_until(lambda: len(decided) >= 3, 60, "a quorum decided height 2")
    # every validator is down; none stored height 2
    assert {len(set(decided.values()))} == {1}
    assert all(h.db.exists() for h in homes)
    monkeypatch.setattr(Chain, "commit", real_commit)
    async with running_nodes(homes, hub=hub) as nodes:
        await wait_until(lambda: all(n.chain.height >= 2 for n in nodes), 120, "height 2 committed after the restart")
        assert {n.chain.store.block(2).block.hash for n in nodes} == set(decided.values())


async def test_an_acknowledged_record_survives_a_crash_while_the_network_cannot_commit(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4)
    hub = MemoryHub()
    async with running_nodes(homes[:2], hub=hub) as (first, _):  # 2 of 4 validators: no quorum
        record = signed_offer(first.key, first.genesis.chain_id, "kept")
        await first.ingest.submit(record.raw)  # returns once it is on disk: a 202
        assert first.chain.store.is_pending(record.hash)
        await trio.sleep(5)  # nothing can commit meanwhile
        assert first.chain.height == 0
    # both crashed: the mempool is gone, the acknowledgement is not
    async with running_nodes(homes, hub=hub) as nodes:
        await wait_until(lambda: all(n.chain.store.record(record.hash) for n in nodes), 120, "the record committed")
        assert not nodes[0].chain.store.is_pending(record.hash)


async def test_the_branch_never_signs_two_records_with_one_sequence_number(tmp_path, autojump_clock):
    from node.ingest import CatchingUp
    from protocol.schema import ServiceStatus

    homes = make_homes(tmp_path, 4)
    hub = MemoryHub()
    async with running_nodes(homes[:2], hub=hub) as (first, _):  # no quorum: nothing commits
        await wait_until(first.sync.knows_network_height, 30, "a peer told its height")
        offer = await first.ingest.sign_and_submit(signed_offer(first.key, first.genesis.chain_id, "fx").body)
        status = await first.ingest.sign_and_submit(ServiceStatus("fx", "open", 5, ()))
        assert (offer.seq, status.seq) == (1, 1)
    # the acknowledged records are lost to the mempool AND to the pending table (as if rejected)
    import sqlite3

    db = sqlite3.connect(homes[0].db)
    db.execute("DELETE FROM pending")
    db.commit()
    db.close()
    async with running_nodes(homes[:2], hub=hub) as (first, _):
        assert len(first.mempool) == 0
        try:  # the committed state says 1 is next; the durable mark says 1 was signed already
            again = await first.ingest.sign_and_submit(signed_offer(first.key, first.genesis.chain_id, "fx", title="FX").body)
            raise AssertionError(f"signed seq {again.seq} again")
        except CatchingUp:
            pass
        assert len(first.mempool) == 0


async def test_without_a_mark_a_node_signs_only_once_it_knows_the_network_height(tmp_path, autojump_clock):
    from node.ingest import CatchingUp

    homes = make_homes(tmp_path, 4)
    async with running_nodes(homes[:1], hub=MemoryHub()) as (alone,):  # no peer has told it a height
        body = signed_offer(alone.key, alone.genesis.chain_id, "fx").body
        try:
            await alone.ingest.sign_and_submit(body)
            raise AssertionError("signed without knowing the committed state")
        except CatchingUp:
            pass
    async with running_nodes(homes, hub=MemoryHub()) as nodes:
        await wait_until(nodes[0].sync.knows_network_height, 30, "a peer told its height")
        record = await nodes[0].ingest.sign_and_submit(body)
        assert record.seq == 1


async def test_a_record_that_lost_its_number_is_reported_rejected(tmp_path, autojump_clock):
    from node.api import views

    homes = make_homes(tmp_path, 1)
    async with running_nodes(homes, hub=MemoryHub()) as (node,):
        chain_id = node.genesis.chain_id
        winner = signed_offer(node.key, chain_id, "fx", title="Winner")
        loser = signed_offer(node.key, chain_id, "fx", title="Loser")  # the same (subject, seq), another record
        node.pending.track(loser)  # as if acknowledged before a crash, and recovered
        await node.ingest.submit(winner.raw)
        await wait_until(lambda: node.chain.store.record(winner.hash) is not None, 30, "the winner committed")
        await wait_until(lambda: node.chain.store.rejection(loser.hash) is not None, 30, "the loser rejected")
        doc = views.record(node, loser.hash)
        assert doc["status"] == "rejected" and doc["reason"] == "superseded"
        assert views.record(node, winner.hash)["status"] == "committed"


async def test_no_acknowledgement_when_the_disk_refuses(tmp_path, autojump_clock, monkeypatch):
    homes = make_homes(tmp_path, 1)
    async with running_nodes(homes, hub=MemoryHub()) as (node,):
        def full_disk(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(node.store, "write_pending", full_disk)
        record = signed_offer(node.key, node.genesis.chain_id, "fx")
        try:
            await node.ingest.submit(record.raw)
            raise AssertionError("acknowledged a record that is not on disk")
        except OSError:
            pass
        assert record.hash not in node.mempool and not node.ingest._local


async def test_a_validator_whose_store_was_wiped_syncs_before_it_signs_again(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4)
    hub = MemoryHub()
    async with running_nodes(homes, hub=hub) as nodes:
        await wait_until(lambda: all(n.chain.height >= 4 for n in nodes), 120, "height 4")
    signed_at = ConsensusWAL(homes[3].consensus_wal).load().signer.height
    assert signed_at >= 4
    homes[3].db.unlink()  # the database is lost; the WAL is not
    async with running_nodes(homes, hub=hub) as nodes:
        wiped = nodes[3]
        assert wiped.driver.first_signing_height == signed_at
        await wait_until(lambda: wiped.chain.height >= signed_at + 2, 120, "caught up and following")
    history = ConsensusWAL(homes[3].consensus_wal).load().signer
    assert history.height > signed_at  # it signs again, above where it stopped
