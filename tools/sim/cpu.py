"""What messages cost: a CPU model for the simulator.

A simulator that charges nothing for a message cannot see a vote storm: the
real network stopped at ten validators on two cores because re-sending took
more CPU than there was, which delayed votes past their timeouts, which made
more rounds and more re-sending. With :class:`CpuModel` every simulated node
is a process with one thread (the GIL) on a machine of ``cores`` CPUs shared
by all the nodes — and by ``background`` busy loops of other work. Receiving
or sending a message takes CPU time from :data:`COSTS`; a node handles its
work in order, and the machine's cores are handed out in arrival order, so a
saturated machine delays everything, as a real one does.

The costs were measured on this project's 2-core machines (the commands are
named next to each); refresh them when the node's hot path changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Costs:
    """CPU milliseconds per unit of work (one node, one core)."""

    # One consensus message received on a direct stream: the libp2p frame, Noise and
    # Yamux (python -m tools.bench_p2p: ~1,350 round trips/s between two hosts on one
    # core, ~0.37 ms per side), decoding (~0.02 ms) and the Ed25519 check (libsodium,
    # python -m tools.bench_protocol: ~24,000 verifies/s, 0.04 ms).
    receive_direct: float = 0.45
    # Sending one message to one peer on a direct stream (framing, encryption).
    send_direct: float = 0.35
    # One message received through gossipsub: py-libp2p spends 4-5 ms of CPU per
    # message per node (shared/LIBP2P_NOTES.md, "Cost to plan around").
    receive_gossip: float = 4.5
    # Checking (or building) a small block: state transition and roots.
    block: float = 1.0
    # An idle node's CPU per connected peer per second (gossipsub heartbeats on a mesh
    # that holds every peer below 13, the libp2p connection upkeep): 2.3 % of a core at
    # 3 peers, 6 % at 9 (4 and 10 validators as processes, 30 s idle, /proc/PID/stat;
    # python -m tools.bench_scale --idle).
    idle_per_peer: float = 6.0
    # What the node before round summaries added on top: it asked every peer for its
    # height every second (sync) — 6.1 % of a core at 3 peers, 19.9 % at 9 (issue 15).
    status_poll_per_peer: float = 14.0


COSTS = Costs()  # consensus messages on libp2p streams (a validator whose links are down; the node before links)

# Consensus messages on validator links (node/p2p/link.py: no multistream-select, no Yamux).
# python -m tools.bench_p2p, 200-byte notifications one at a time, both ends, five runs on
# 2026-12-02, the 0.14 ms of the benchmark's own pause taken out: 0.28–0.49 ms on a link
# against 0.54–0.69 ms on a libp2p stream, about 0.63 of it. The transport's share of each
# cost above scaled by that; decoding and the signature check (0.06 ms) unchanged.
LINK_COSTS = Costs(receive_direct=0.06 + 0.63 * (0.45 - 0.06), send_direct=0.63 * 0.35)


class CpuModel:
    """FIFO over one machine's cores; each node runs one thing at a time."""

    def __init__(self, nodes: int, *, cores: int = 2, background: int = 0, costs: Costs = COSTS):
        self.costs = costs
        # ``background`` busy loops always want a core: the nodes share what is left
        # (a fair scheduler gives each of the n + b runnable processes cores/(n + b)).
        self.scale = 1.0 + background / max(nodes, 1) if background else 1.0
        self._core_free = [0.0] * cores
        self._node_free: dict[int, float] = {}
        self.busy_ms = 0.0

    def idle(self, node: int, at: float, peers: int, *, polls_every_peer: bool = False) -> float:
        """One second of an idle node's upkeep with ``peers`` connections."""
        per_peer = self.costs.idle_per_peer + (self.costs.status_poll_per_peer if polls_every_peer else 0.0)
        return self.run(node, at, per_peer * peers)

    def run(self, node: int, at: float, cost_ms: float) -> float:
        """Do ``cost_ms`` of work for ``node``, ready at ``at``; return when it is done."""
        cost = cost_ms * self.scale
        core = min(range(len(self._core_free)), key=self._core_free.__getitem__)
        start = max(at, self._node_free.get(node, 0.0), self._core_free[core])
        end = start + cost
        self._core_free[core] = end
        self._node_free[node] = end
        self.busy_ms += cost
        return end
