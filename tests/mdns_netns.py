"""Run inside a fresh network namespace (see tests/test_mdns.py): three validators of one
network and one node of another, all with ``[p2p] mdns = true`` and no configured peers,
on 127.0.0.1 with multicast routed over the namespace's own loopback. Prints one JSON
object with what each node found. Not collected by pytest (no test_ prefix)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from tools.netsetup import create_network, set_config
from node.node import BranchNode

from cluster import REALTIME_PARAMS  # real clock: consensus timeouts a busy machine can meet

FAST = {"block_interval_ms": 50, "empty_block_interval_ms": 500}


async def main(base: Path) -> dict:
    homes = create_network(base / "net", 3, consensus=FAST, params=REALTIME_PARAMS, fixed_ports=False)  # no configured peers
    other = create_network(base / "other", 1, consensus=FAST, params=REALTIME_PARAMS, chain_id="branchnet-other",
                           fixed_ports=False)
    for h in homes + other:
        set_config(h, "api", "enabled", False)
        set_config(h, "p2p", "mdns", True)
    out: dict = {}
    async with trio.open_nursery() as nursery:
        nodes = [await nursery.start(BranchNode(h).run) for h in homes + other]
        members, outsider = nodes[:3], nodes[3]
        with trio.move_on_after(100) as scope:  # generous: a busy machine is slow, not wrong
            while not (all(len(n.net.connected_peers()) >= 2 and n.chain.height >= 2 for n in members)
                       and outsider.mdns.rejected["other_network"] >= 3):
                await trio.sleep(0.1)
        out["timed_out"] = scope.cancelled_caught
        out["connected"] = [sorted(n.net.connected_peers()) for n in nodes]
        out["peer_ids"] = [n.net.peer_id for n in nodes]
        out["heights"] = [n.chain.height for n in nodes]
        out["mdns"] = [n.mdns.statistics() for n in nodes]
        out["metrics"] = [n.metrics.rejected_counts() for n in nodes]
        nursery.cancel_scope.cancel()
    return out


if __name__ == "__main__":
    print(json.dumps(trio.run(main, Path(sys.argv[1]))))
