"""The deterministic simulator: hundreds of seeded runs with faults must show
no safety violation and no liveness failure, and deliberately broken variants
of the algorithm must be caught."""

from __future__ import annotations

import pytest

from protocol.consensus import ConsensusState, VoteKeeper
from tools.sim.engine import FAULT_KINDS, run_one
from tools.sim.soak import run_soak

SEEDS = 500  # nodes cycle 4, 7, 10; each seed draws its own faults


@pytest.mark.slow  # a soak: 20-50 s
def test_soak_with_faults_is_safe_and_live():
    # How fast the soak runs is for benchmarks (`make simulate`), not for a test.
    s = run_soak(range(SEEDS), 4, 10, processes=2)
    assert s.runs == SEEDS
    assert s.failures == []
    assert (s.safety_violations, s.liveness_failures, s.double_signs) == (0, 0, 0)
    assert s.heights_committed >= 3 * SEEDS
    assert s.evidence > 0  # equivocators were caught


def test_all_faults_at_once_on_several_sizes():
    for seed, nodes in ((11, 4), (12, 7), (13, 10)):
        r = run_one(seed, nodes, FAULT_KINDS)
        assert not r.safety_violations and not r.liveness_failure and not r.double_signs, r.reproduce()


def test_runs_are_deterministic():
    a = run_one(5, 7, ("byz", "drop", "partition"))
    b = run_one(5, 7, ("byz", "drop", "partition"))
    assert (a.events, a.virtual_ms, a.latencies, a.evidence) == (b.events, b.virtual_ms, b.latencies, b.evidence)


def test_reproduce_line_names_seed_nodes_and_faults():
    r = run_one(3, 4, ("drop", "crash"))
    assert r.reproduce() == "python -m tools.simulate --seed 3 --nodes 4 --faults crash,drop"


# ---- deliberately broken variants: exist only here, not in protocol/ or tools/


class _HalfQuorumKeeper(VoteKeeper):
    """Counts more than 1/2 of power as a quorum instead of more than 2/3."""

    __slots__ = ()

    def _two_thirds(self, power: int) -> bool:
        return power * 2 > self.valset.total_power


class _HalfQuorumState(ConsensusState):
    vote_keeper_class = _HalfQuorumKeeper


class _IgnoresLocksState(ConsensusState):
    """Prevotes for any valid proposal, ignoring lockedValue at L23/L29."""

    def _prevote_allowed(self, v: bytes, vr: int) -> bool:
        return True


def _forks(state_factory, faults, seeds, nodes=None) -> list[int]:
    found = []
    for seed in seeds:
        r = run_one(seed, nodes or (4, 7, 10)[seed % 3], faults, state_factory)
        if any(v.startswith("agreement") for v in r.safety_violations):
            found.append(seed)
    return found


def test_simulator_catches_half_quorum_variant():
    assert _forks(_HalfQuorumState, ("byz",), range(20))


def test_simulator_catches_lock_ignoring_variant():
    # Rarer than it was: round summaries heal a height quickly (a lagging validator gets a
    # quorum of precommits whole), and a block is prevoted only where it is held. Four
    # validators, one of them Byzantine, and lossy links still expose it (seeds 12, 73, 82...).
    assert _forks(_IgnoresLocksState, ("byz", "drop"), range(15), nodes=4)
