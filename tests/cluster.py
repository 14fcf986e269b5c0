"""Multi-node test harness: BranchNodes in one trio process, or OS processes.

* :func:`memory_network` — N validators (+ observers) as BranchNodes on an
  in-memory :class:`node.p2p.memory.MemoryHub`, on trio's clock: run the test
  under ``MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``).
  The default for anything that tests node logic rather than libp2p.
* :func:`inprocess_network` — the same over real libp2p on 127.0.0.1.
* :class:`ProcessNetwork` — the same homes run as separate OS processes
  (``python -m node.daemon``), stopped by pid at teardown; logs kept per node.

Nodes start connected in a full mesh of persistent peers. Every wait is bounded
and on a condition (tests/waiting.py). Ports are chosen by the OS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator

import trio

from node.candidates import CandidateBlocks
from node.chain import Chain
from node.config import Home
from node.mempool import Mempool
from node.metrics import NodeMetrics
from tools.netsetup import set_config, create_network
from node.node import BranchNode
from node.p2p.memory import MemoryHub
from node.runtime import virtual
from node.store import Store
from protocol.genesis import Genesis
from protocol.keys import PrivateKey
from protocol.records import Record

from factories import offer
from waiting import wait_until

FAST_CONSENSUS = {"block_interval_ms": 30, "empty_block_interval_ms": 400}
# Consensus timeouts. On virtual time (memory_network) short ones cost nothing and
# nothing is ever late. On real time a starved process delivers votes seconds late:
# measured with 4 validators over real libp2p in one process at load average ~5 on
# 2 cores, FAST_PARAMS never committed height 1 in 150 s (twice: every round ended
# before its votes arrived), REALTIME_PARAMS committed all 20 records in 7 s.
FAST_PARAMS = {"timeout_propose_ms": 800, "timeout_prevote_ms": 300, "timeout_precommit_ms": 300, "timeout_delta_ms": 300}
REALTIME_PARAMS = {"timeout_propose_ms": 5000, "timeout_prevote_ms": 2500, "timeout_precommit_ms": 2500,
                   "timeout_delta_ms": 2500}


def make_chain(genesis: Genesis, store: Store, metrics: NodeMetrics | None = None) -> Chain:
    """A node's Chain over ``store`` (its state, an empty mempool and candidate set)."""
    state = store.load_state()
    return Chain(genesis, store, state, mempool=Mempool(state), candidates=CandidateBlocks(),
                 metrics=metrics or NodeMetrics())


def signed_offer(key: PrivateKey, chain_id: str, service_id: str, seq: int = 1, *,
                 title: str = "Foreign exchange") -> Record:
    """A foreign-exchange offer (category ``fx``) signed by ``key``."""
    return Record.create(key, chain_id, seq, int(time.time() * 1000), offer(service_id, "fx", title=title))


def make_homes(tmp_path: Path, n: int, *, observers: int = 0, fixed_ports: bool = False, api: bool = False,
               realtime: bool = False) -> list[Home]:
    """Homes for a test network; ``realtime`` for nodes on the real clock (REALTIME_PARAMS)."""
    homes = create_network(tmp_path, n, observers=observers, fixed_ports=fixed_ports,
                           consensus=FAST_CONSENSUS, params=REALTIME_PARAMS if realtime else FAST_PARAMS)
    for h in homes:
        set_config(h, "api", "enabled", api)
    return homes


@contextlib.asynccontextmanager
async def running_nodes(homes: list[Home], *, connect: bool = True, hub: MemoryHub | None = None) -> AsyncIterator[list[BranchNode]]:
    """Start a BranchNode per home in this process; cancel them all on exit. With a
    ``hub`` they talk over it (in memory, on trio's clock: use with MockClock), else
    over real libp2p on 127.0.0.1."""
    async with trio.open_nursery() as nursery:
        nodes = []
        with trio.fail_after(60):  # generous: starting a node binds sockets and opens its store
            for home in homes:
                node = BranchNode(home, **memory_transport(hub, home)) if hub is not None else BranchNode(home)
                nodes.append(await nursery.start(node.run))
        if connect:
            await connect_mesh(nodes)
        try:
            yield nodes
        finally:
            nursery.cancel_scope.cancel()


async def connect_mesh(nodes: list[BranchNode], timeout: float = 60) -> None:
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            a.net.add_persistent_peer(b.listen_addrs[0])
    await wait_until(lambda: all(len(x.net.connected_peers()) >= len(nodes) - 1 for x in nodes), timeout, "full mesh")


def memory_transport(hub: MemoryHub, home: Home) -> dict:
    """BranchNode arguments for a node on ``hub``: its transport, and wall time
    from trio's (mock) clock with thread work inline (node.runtime)."""
    genesis = Genesis.loads(home.genesis.read_bytes())
    return {"transport": hub.network, "runtime": virtual(genesis.genesis_time_ms)}


@contextlib.asynccontextmanager
async def inprocess_network(tmp_path: Path, n: int, *, observers: int = 0) -> AsyncIterator[list[BranchNode]]:
    """``n`` validators (+ observers) over real libp2p on 127.0.0.1, in this process."""
    async with running_nodes(make_homes(tmp_path, n, observers=observers, realtime=True)) as nodes:
        yield nodes


@contextlib.asynccontextmanager
async def memory_network(tmp_path: Path, n: int, *, observers: int = 0,
                         hub: MemoryHub | None = None) -> AsyncIterator[list[BranchNode]]:
    """``n`` validators (+ observers) on an in-memory network. Run the test under
    ``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``)."""
    async with running_nodes(make_homes(tmp_path, n, observers=observers), hub=hub or MemoryHub()) as nodes:
        yield nodes


def same_chain(nodes: list[BranchNode], upto: int) -> bool:
    """True if every node has identical block hashes at heights 1..upto."""
    for h in range(1, upto + 1):
        hashes = {n.chain.store.block(h).block.hash for n in nodes}
        if len(hashes) != 1:
            return False
    return True


class ProcessNetwork:
    """Nodes as separate OS processes. Only processes it started are ever signalled."""

    def __init__(self, homes: list[Home]):
        self.homes = homes
        self.procs: dict[int, subprocess.Popen] = {}
        self.genesis = Genesis.loads(homes[0].genesis.read_bytes())

    def start(self, i: int) -> None:
        home = self.homes[i]
        log = open(home.path / "node.log", "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.procs[i] = subprocess.Popen([sys.executable, "-m", "node.daemon", "--home", str(home.path)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parent.parent)
        log.close()

    def start_all(self) -> None:
        for i in range(len(self.homes)):
            self.start(i)

    def mapped_files(self, i: int) -> set[str]:
        """The files node i's process has mapped (its shared libraries among them)."""
        maps = Path(f"/proc/{self.procs[i].pid}/maps").read_text()
        return {fields[5] for line in maps.splitlines() if len(fields := line.split(None, 5)) == 6}

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def stop(self, i: int) -> int:
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise AssertionError(f"node {i} did not stop within 15 s of SIGTERM")

    def stop_all(self) -> None:
        for i in list(self.procs):
            try:
                self.stop(i)
            except AssertionError:
                pass

    def height(self, i: int) -> int:
        """Read a node's committed height from its database (WAL: safe while it runs)."""
        if not self.homes[i].db.exists():
            return 0
        store = Store(self.homes[i].db, self.genesis)
        try:
            return store.height
        finally:
            store.close()

    def block_hash(self, i: int, height: int) -> bytes | None:
        store = Store(self.homes[i].db, self.genesis)
        try:
            b = store.block(height)
            return b.block.hash if b else None
        finally:
            store.close()

    def log(self, i: int) -> str:
        return (self.homes[i].path / "node.log").read_text(errors="replace")
