"""The simulator charges what messages cost (tools/sim/cpu.py), so it sees what
the real network saw: re-sending every vote to every peer (the node before
round summaries) stops ten validators on two cores; round summaries do not, whether consensus messages go on validator links (today's
node) or on libp2p streams (a validator whose links are down)."""

from __future__ import annotations

import dataclasses

from protocol.consensus import ConsensusParams, ConsensusState
from protocol.genesis import ChainParams
import pytest

from tools.sim.cpu import COSTS, LINK_COSTS, CpuModel
from tools.sim.engine import Simulation

GENESIS_TIMEOUTS = ConsensusParams.of_chain(ChainParams())  # what a devnet runs with


class _Storm(Simulation):
    """The node before round summaries (a deliberately broken variant)."""

    gossip_policy = "storm"


def _run(cls, seed: int, nodes: int, *, background: int = 0, faults=("drop",), costs=LINK_COSTS):
    sim = cls(seed, nodes, faults, cpu=CpuModel(nodes, cores=2, background=background, costs=costs),
              params=GENESIS_TIMEOUTS)
    return sim, sim.run()


def test_the_old_re_send_policy_collapses_at_ten_validators_on_two_cores():
    for seed in range(2):
        sim, r = _run(_Storm, seed, 10, costs=COSTS)  # the node of then: libp2p streams, no links
        assert r.liveness_failure, f"seed {seed}: the storm variant no longer collapses"
        assert sim.cpu.busy_ms > 2 * sim.now  # it asked for more than two cores' worth
        assert not r.safety_violations  # a halt, never a fork


@pytest.mark.parametrize("costs", [LINK_COSTS, COSTS], ids=["links", "libp2p"])
def test_round_summaries_keep_ten_and_sixteen_validators_live_on_two_cores(costs):
    for seed, nodes in ((0, 10), (1, 10), (2, 16)):
        sim, r = _run(Simulation, seed, nodes, costs=costs)
        assert not r.liveness_failure and not r.safety_violations and not r.double_signs, r.reproduce()
        assert sim.cpu.busy_ms < 2 * sim.now  # below saturation


@pytest.mark.parametrize("costs", [LINK_COSTS, COSTS], ids=["links", "libp2p"])
def test_four_validators_beside_two_busy_loops_commit_in_round_0_or_1(costs):
    for seed in range(3):
        _, r = _run(Simulation, seed, 4, background=2, faults=(), costs=costs)
        assert not r.liveness_failure and r.heights_committed >= 3, r.reproduce()
        assert max(rnd for rnd, _ in r.latencies) <= 1


class _NoProposeGrace(ConsensusState):
    """The state machine before the propose grace: nil at the first propose timeout."""

    propose_grace = False


def test_blocks_checked_in_nearly_the_propose_timeout_decide_in_round_0_or_1():
    """Each block takes 900 ms of CPU to check (the timeout is 1 s), three validators check
    at once on two cores: the proposal comes in time, valid(v) after the timeout. The grace
    (a second wait for a block being checked) decides in round 0 or 1; without it every
    height took two rounds or more (the 16 + 48 network on two cores, issue 15)."""
    costs = dataclasses.replace(LINK_COSTS, block=900.0)
    for seed in range(3):
        runs = {}
        for factory in (ConsensusState, _NoProposeGrace):
            sim = Simulation(seed, 4, (), factory, cpu=CpuModel(4, cores=2, costs=costs), params=GENESIS_TIMEOUTS)
            runs[factory] = r = sim.run()
            assert not r.liveness_failure and r.heights_committed >= 3 and not r.safety_violations, r.reproduce()
        assert max(rnd for rnd, _ in runs[ConsensusState].latencies) <= 1
        assert min(rnd for rnd, _ in runs[_NoProposeGrace].latencies) >= 2
