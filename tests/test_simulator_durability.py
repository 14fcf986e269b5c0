"""The simulator models what a node keeps on disk, and finds what a crash of
every validator at the wrong moment would do.

A crash loses candidate blocks, messages in flight and the gate; it keeps the
signer state, committed blocks and — the consensus WAL — every block the node
proposed or voted for. With the WAL every schedule below stays safe and live;
the old node, which kept only the signer state, halts for good when every
validator dies after deciding a block nobody stored.
"""

from __future__ import annotations

import pytest

from tools.sim.engine import Simulation
from tools.sim.faults import CRASH_TRIGGERS


class _WithoutWalBlocks(Simulation):
    """The node before the consensus WAL: votes and lock durable, the block not."""

    persist_blocks = False


@pytest.mark.parametrize("trigger", CRASH_TRIGGERS)
def test_every_validator_crashing_at_any_step_never_halts_the_network(trigger):
    for seed in range(12):
        nodes = (4, 7)[seed % 2]
        for height in (1, 2):
            sim = Simulation(seed, nodes, ("crash_all",), crash_at=[(height, trigger)])
            r = sim.run()
            assert sim.crashed_all == 1, (seed, height, trigger)  # the crash really happened
            assert not r.safety_violations and not r.double_signs, r.reproduce()
            assert not r.liveness_failure, f"{r.liveness_failure} ({trigger} at height {height}, seed {seed})"


def test_without_wal_blocks_a_crash_after_the_decision_halts_for_good():
    for seed in range(12):
        sim = _WithoutWalBlocks(seed, 4, ("crash_all",), crash_at=[(2, "CommitBlock")])
        r = sim.run()
        assert sim.crashed_all == 1
        assert not r.safety_violations  # a halt, never a fork
        if r.liveness_failure:
            return  # found: the old node halts; the same schedule with the WAL does not (above)
    raise AssertionError("the simulator no longer sees the halt the consensus WAL prevents")


def test_crash_all_soak_with_other_faults_is_safe_and_live():
    for seed in range(40):
        faults = ("crash_all", "drop", "delay", "partition") if seed % 2 else ("crash_all", "crash", "byz")
        r = Simulation(seed, (4, 7, 10)[seed % 3], faults).run()
        assert not r.safety_violations and not r.liveness_failure and not r.double_signs, r.reproduce()
