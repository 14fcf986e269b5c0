"""Governance on real nodes (in-memory network, MockClock): a member is voted into
the validator set and signs blocks from two heights after the vote; a branch that
was never in genesis is admitted, may then connect, syncs, and publishes; an
observer allowed at runtime connects without a restart."""

from __future__ import annotations

import trio

from node.api import views
from node.home import init_home, read_psk
from node.node import BranchNode
from node.p2p.memory import MemoryHub
from protocol.governance import SYSTEM_ID, Action, GovProposal, GovVote
from protocol.genesis import Genesis
from protocol.proofs import RecordProof, verify_record_proof
from protocol.votes import CommitCertificate
from tools.netsetup import set_config

from cluster import make_homes, memory_transport, offer, running_nodes, same_chain, signed_offer
from waiting import wait_durable, wait_until


def signers(node: BranchNode, height: int) -> set[bytes]:
    stored = node.chain.store.block(height)
    cert: CommitCertificate = stored.certificate
    return {validator for validator, _ in cert.signatures}


async def propose_and_pass(validators: list[BranchNode], name: str, action: Action, voters: list[BranchNode]) -> None:
    """One validator proposes, ``voters`` vote yes; wait until the proposal is decided everywhere."""
    p = await validators[0].ingest.sign_and_submit(GovProposal(name, action, validators[0].chain.height + 500))
    await wait_until(lambda: all(v.chain.store.record(p.hash) is not None for v in validators), 60, f"proposal {name} committed")
    for v in voters:
        await v.ingest.sign_and_submit(GovVote(p.hash, True))

    def decided() -> bool:
        return all(p.hash not in v.chain.state.gov.proposals and v.chain.store.record(p.hash) is not None for v in validators)

    await wait_until(decided, 60, f"proposal {name} decided")
    for v in validators:
        assert v.chain.state.entry(SYSTEM_ID, f"proposal/{p.hash.hex()}").body.status == "passed"


async def test_a_member_becomes_a_validator_and_a_new_branch_joins(tmp_path, autojump_clock):
    homes = make_homes(tmp_path, 4, observers=1)
    set_config(homes[4], "node", "mode", "validator")  # a genesis member without power, following consensus
    newcomer_home, newcomer_key = init_home(tmp_path / "newcomer", moniker="newcomer", p2p_listen="/ip4/127.0.0.1/tcp/0",
                                            api_listen="127.0.0.1:0", psk_hex=read_psk(homes[0].path / "network.psk"))
    newcomer_home.genesis.write_bytes(homes[0].genesis.read_bytes())
    set_config(newcomer_home, "api", "enabled", False)
    hub = MemoryHub()
    async with running_nodes(homes, hub=hub) as nodes:
        validators, member = nodes[:4], nodes[4]
        assert member.driver is not None and not member.is_validator
        await wait_until(lambda: all(n.chain.height >= 2 for n in nodes), 60, "height 2")

        # 1. the member gets power 10: the set signing h + 2 on includes it, and it signs
        await propose_and_pass(validators, "member-validates", Action("set_power", branch_id=member.key.branch_id, power=10),
                               validators[:3])  # 30 of 40
        decided_at = validators[0].chain.height
        target = decided_at + 4
        await wait_until(lambda: all(n.chain.height >= target for n in nodes), 60, f"height {target}")
        assert member.is_validator
        assert validators[0].metrics.validators._value.get() == 5 and validators[0].metrics.open_proposals._value.get() == 0
        # its precommit is in some certificate from h + 2 on (a certificate holds the first
        # quorum that arrived, 40 of 50: a few heights may go without it)
        await wait_until(lambda: member.key.branch_id in set.union(
            *(signers(validators[0], h) for h in range(decided_at + 2, validators[0].chain.height + 1))), 60,
            "the new validator's precommit in a commit certificate")
        assert all(member.key.branch_id not in signers(validators[0], h) for h in range(1, decided_at + 1))

        # a proof of a record committed after the change verifies against the genesis file alone
        rec = await member.ingest.sign_and_submit(offer("after-the-change"))
        await wait_until(lambda: validators[0].chain.store.record(rec.hash) is not None, 60, "record committed")
        proof = views.record_proof(validators[0], rec.hash)
        assert len(proof.set_changes) == 1
        assert verify_record_proof(RecordProof.from_json(proof.to_json()), Genesis.loads(homes[0].genesis.read_bytes())) == rec

        # 2. a branch never in genesis: refused until admitted, then it connects and syncs
        newcomer = BranchNode(newcomer_home, **memory_transport(hub, newcomer_home))
        async with trio.open_nursery() as nursery:
            await nursery.start(newcomer.run)
            for n in nodes:
                newcomer.net.add_persistent_peer(n.listen_addrs[0])
            await propose_and_pass(validators, "admit-newcomer",
                                   Action("admit_member", name="Newcomer Branch", public_key=newcomer_key.public_key.raw),
                                   validators[:3] + [member])  # 40 of 50: the new validator's vote counts
            top = validators[0].chain.height
            await wait_until(lambda: newcomer.chain.height >= top, 120, "newcomer synced")
            rec = signed_offer(newcomer.key, newcomer.genesis.chain_id, "fx-desk")
            await newcomer.ingest.submit(rec.raw)
            await wait_until(lambda: all(n.chain.store.record(rec.hash) is not None for n in nodes), 60, "newcomer's record committed")
            # its proof carries its member entry under a certified state root (§15.6): genesis alone verifies it
            proof = await views.record_proof_offline(validators[0], rec.hash)
            assert proof.member is not None and proof.member.header.height >= proof.height
            assert verify_record_proof(RecordProof.from_json(proof.to_json()), Genesis.loads(homes[0].genesis.read_bytes())) == rec
            nursery.cancel_scope.cancel()
        top = min(n.chain.height for n in nodes)
        await wait_durable(nodes, top)
        assert same_chain(nodes, top)


async def test_an_observer_allowed_at_runtime_connects_and_syncs(tmp_path, autojump_clock):
    """A peer that is no member (an auditor's observer) is refused until each validator
    allows it at runtime (no restart, kept in the store); then it connects and syncs."""
    homes = make_homes(tmp_path, 4)
    auditor_home, _ = init_home(tmp_path / "auditor", moniker="auditor", mode="observer", p2p_listen="/ip4/127.0.0.1/tcp/0",
                                api_listen="127.0.0.1:0", psk_hex=read_psk(homes[0].path / "network.psk"))
    auditor_home.genesis.write_bytes(homes[0].genesis.read_bytes())
    set_config(auditor_home, "api", "enabled", False)
    hub = MemoryHub()
    async with running_nodes(homes, hub=hub) as validators:
        await wait_until(lambda: all(v.chain.height >= 2 for v in validators), 60, "height 2")
        auditor = BranchNode(auditor_home, **memory_transport(hub, auditor_home))
        async with trio.open_nursery() as nursery:
            await nursery.start(auditor.run)
            for v in validators:
                auditor.net.add_persistent_peer(v.listen_addrs[0])
            await trio.sleep(5)  # virtual time: five seconds of redials, all refused
            assert auditor.net.connected_peers() == [] and auditor.chain.height == 0
            for v in validators:
                await v.set_observer(auditor.peer_id, True)
            top = validators[0].chain.height
            await wait_until(lambda: auditor.chain.height >= top, 60, "the observer synced")
            assert all(auditor.peer_id in v.store.observers() for v in validators)
            await validators[0].set_observer(auditor.peer_id, False)
            assert auditor.peer_id not in validators[0].store.observers()
            nursery.cancel_scope.cancel()


async def test_an_equivocator_is_jailed_by_its_committed_evidence_and_nothing_stalls(tmp_path, autojump_clock):
    """Validator 3 is down; the test signs two prevotes for different blocks at the height
    the others decide and hands them to their consensus drivers as a peer would. The
    evidence goes into the block after (one of that height is refused by everyone), the
    equivocator is jailed, the set drops it two heights later, no node keeps the evidence,
    and the chain goes on."""
    from node.keyfile import load_key
    from node.p2p.host import peer_id_of
    from protocol import wire
    from protocol.consensus.proposer import proposer
    from protocol.votes import PREVOTE, Vote

    homes = make_homes(tmp_path, 4)
    key = load_key(homes[3].key)
    peer = peer_id_of(key.public_key.raw)
    async with running_nodes(homes[:3], hub=MemoryHub()) as nodes:
        await wait_until(lambda: all(n.chain.height >= 2 for n in nodes), 60, "height 2")
        # a height whose round 0 the absent validator 3 would propose: the others build their
        # blocks in later rounds, when they hold the evidence already
        height = next(h for h in range(nodes[0].chain.height + 2, nodes[0].chain.height + 20)
                      if proposer(nodes[0].chain.state.validators, h, 0) == key.branch_id)
        await wait_until(lambda: all(n.chain.height == height - 1 for n in nodes), 60, f"height {height - 1}")
        votes = [Vote.create(key, nodes[0].genesis.chain_id, PREVOTE, height, 0, bytes([i]) * 32) for i in (1, 2)]
        for n in nodes:
            for v in votes:
                await n.driver.receive_direct(peer, wire.encode_vote(v))

        def jailed() -> bool:
            return all(n.chain.state.gov.registry.members[key.branch_id].jailed for n in nodes)

        await wait_until(jailed, 60, "the equivocator jailed")
        carrying = [h for h in range(1, nodes[0].chain.height + 1) if nodes[0].chain.store.block(h).block.evidence]
        assert carrying and carrying[0] > height  # never in the block of its own height
        top = nodes[0].chain.height
        await wait_until(lambda: all(n.chain.height >= top + 3 for n in nodes), 60, "the chain goes on")
        assert all(key.branch_id not in n.chain.state.validators for n in nodes)
        assert all(n.driver.statistics()["pending_evidence"] == 0 for n in nodes)
        assert same_chain(nodes, top + 3)
