"""The real daemon as separate OS processes (python -m node.daemon), on 127.0.0.1.

An in-process observer (a genesis member, never a voter) feeds records into the
network over gossip and watches it; each validator's committed chain is read
from its own SQLite database. Processes are stopped by pid at teardown.
"""

from __future__ import annotations

import signal

import pytest

from cluster import ProcessNetwork, make_homes, running_nodes, signed_offer
from waiting import wait_until

pytestmark = pytest.mark.slow

WAIT = 120  # seconds, for any one condition: five processes on a busy 2-core machine are slow, not wrong


@pytest.fixture
def process_net(tmp_path):
    homes = make_homes(tmp_path, 4, observers=1, fixed_ports=True, realtime=True)
    net = ProcessNetwork(homes[:4])
    net.observer_home = homes[4]
    try:
        yield net
    finally:
        net.stop_all()


def heights(net: ProcessNetwork, which) -> list[int]:
    return [net.height(i) for i in which]


def progress(net: ProcessNetwork, observer) -> str:
    """For a timed-out wait: where everyone is."""
    return f"validators at {heights(net, range(len(net.homes)))} (killed/stopped read from disk), observer at {observer.chain.height}"


async def test_four_validator_processes_commit_the_same_chain(process_net):
    net = process_net
    net.start_all()
    async with running_nodes([net.observer_home], connect=False) as (observer,):
        links = len(observer.config.p2p.peers)  # an observer links to some validators (netsetup observer_links)
        await wait_until(lambda: len(observer.net.connected_peers()) >= links > 0, WAIT, f"observer connected to its {links} validators")
        chain_id = observer.genesis.chain_id
        # records signed by the observer branch, gossiped to the validators
        records = [signed_offer(observer.key, chain_id, f"svc-{i}") for i in range(20)]
        for r in records:
            await observer.ingest.submit(r.raw)
        await wait_until(lambda: all(observer.chain.store.record(r.hash) for r in records), WAIT, "records committed (seen by observer)",
                         detail=lambda: progress(net, observer))
        target = observer.chain.height
        await wait_until(lambda: min(heights(net, range(4))) >= target, WAIT, "all validators at target",
                         detail=lambda: progress(net, observer))
    for h in range(1, target + 1):
        assert len({net.block_hash(i, h) for i in range(4)}) == 1, f"validators disagree at height {h}"
    # The daemon leaves libp2p's QUIC and (mDNS being off) zeroconf out (node/p2p/unused.py):
    # their compiled parts are not mapped.
    for i in range(4):
        assert not [f for f in net.mapped_files(i) if any(f"/{p}/" in f for p in ("aioquic", "pylsqpack", "zeroconf"))]
    for i in range(4):
        assert net.stop(i) == 0, net.log(i)[-2000:]
        assert "stopped cleanly" in net.log(i)


async def test_kill_minus_9_a_validator_then_it_rejoins(process_net):
    net = process_net
    net.start_all()
    async with running_nodes([net.observer_home], connect=False) as (observer,):
        chain_id = observer.genesis.chain_id
        links = len(observer.config.p2p.peers)
        await wait_until(lambda: len(observer.net.connected_peers()) >= links > 0, WAIT, "observer connected")
        await observer.ingest.submit(signed_offer(observer.key, chain_id, "before").raw)
        await wait_until(lambda: min(heights(net, range(4))) >= 2, WAIT, "first blocks everywhere",
                         detail=lambda: progress(net, observer))

        net.kill(3, signal.SIGKILL)
        killed_at = net.height(3)
        before = observer.chain.height
        for i in range(5):
            await observer.ingest.submit(signed_offer(observer.key, chain_id, f"while-down-{i}").raw)
        await wait_until(lambda: min(heights(net, range(3))) >= before + 2, WAIT, "three validators keep committing",
                         detail=lambda: progress(net, observer))
        assert net.height(3) == killed_at

        net.start(3)
        await wait_until(lambda: net.height(3) >= min(heights(net, range(3))), WAIT, "killed validator synced",
                         detail=lambda: progress(net, observer))
        await observer.ingest.submit(signed_offer(observer.key, chain_id, "after").raw)
        target = max(heights(net, range(4))) + 2
        await wait_until(lambda: min(heights(net, range(4))) >= target, WAIT, "all four commit again",
                         detail=lambda: progress(net, observer))
    for h in range(1, target + 1):
        assert len({net.block_hash(i, h) for i in range(4)}) == 1, f"fork at height {h}"
