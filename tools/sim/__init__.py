"""Deterministic simulator for protocol.consensus: virtual time, a seeded
virtual network with faults, N validators each running ConsensusState, and
safety/liveness checks. CLI: ``python -m tools.simulate``."""

from .engine import FAULT_KINDS, RunResult, Simulation, run_one
from .soak import SoakSummary, node_count_for_seed, run_soak

__all__ = ["FAULT_KINDS", "RunResult", "Simulation", "SoakSummary", "node_count_for_seed", "run_one", "run_soak"]
