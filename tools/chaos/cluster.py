"""The devnet under test: validator homes, their daemon processes, their databases.

* Homes come from :func:`tools.netsetup.create_network`; listen addresses and
  peers are rewritten for the topology (:mod:`tools.chaos.netns`).
* Each daemon is a child of this process (``python -m node.daemon``, inside its
  namespace), in a session of its own so a Ctrl-C at the terminal reaches only
  us, with a parent-death signal (SIGKILL) so none outlives a killed tool.
  Only these children are ever signalled, by their pid, and every exit is
  reaped (:meth:`Cluster.poll_exits`): a killed node is never left a zombie
  that a liveness check could take for a running process.
* Databases are read read-only while the nodes run (WAL):
  :meth:`Cluster.heights` for recovery and liveness, :meth:`Cluster.snapshot`
  for the final checks.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from node.config import Home
from node.keyfile import load_key
from node.p2p.host import peer_id_of
from node.store import ChainReader
from node.store.schema import connect_reader
from protocol.consensus.signer import SignerState
from protocol.genesis import Genesis
from tools.netsetup import create_network, set_config

REPO = Path(__file__).resolve().parents[2]
CONSENSUS = {"block_interval_ms": 100, "empty_block_interval_ms": 1000}
# If this process dies without its finally (SIGKILL), the kernel kills the nodes too:
# setpriv sets PR_SET_PDEATHSIG and execs (as `ip netns exec` does), so the pid is the daemon's.
_PDEATHSIG = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
START_MARK = "# chaos: starting the node at"  # + wall-clock seconds; node.log lines that follow are its output


@dataclass
class ChainDump:
    """What one node's database held at the end of a run."""

    height: int
    blocks: dict[int, bytes]  # height -> stored block bytes
    records: list[tuple[str, str, str, int, int]]  # (hash, branch hex, subject, seq, height)
    evidence: list[tuple[str, int, str]]  # (evidence hash, height, validator hex)
    error: str | None = None


@dataclass
class NodeProcess:
    index: int
    home: Home
    proc: subprocess.Popen | None = None
    paused: bool = False
    exits: list[dict] = field(default_factory=list)  # exits we did not cause


class Cluster:
    def __init__(self, base: Path, n: int, topology, *, consensus: dict | None = None, clock=time.monotonic):
        self.base = Path(base)
        self.topology = topology
        self.clock = clock
        self.t0 = clock()
        homes = create_network(self.base, n, consensus=consensus or CONSENSUS)
        peer_ids = [peer_id_of(load_key(h.key).public_key.raw) for h in homes]
        for i, home in enumerate(homes):
            set_config(home, "p2p", "listen", [topology.p2p_listen(i)])
            set_config(home, "api", "listen", topology.api_listen(i))
            set_config(home, "p2p", "peers", [f"{topology.p2p_listen(j)}/p2p/{peer_ids[j]}" for j in range(n) if j != i])
        self.nodes = [NodeProcess(i, h) for i, h in enumerate(homes)]
        self.genesis = Genesis.loads(homes[0].genesis.read_bytes())
        self.tokens = [h.api_token.read_text().strip() for h in homes]
        self.api_ports = [int(topology.api_listen(i).rpartition(":")[2]) for i in range(n)]
        self._readers: dict[int, ChainReader] = {}
        self._last_heights = [0] * n

    @property
    def n(self) -> int:
        return len(self.nodes)

    def now(self) -> float:
        return self.clock() - self.t0

    # ------------------------------------------------------------ processes
    def start(self, i: int) -> None:
        node = self.nodes[i]
        if node.proc is not None:
            return
        log_path = node.home.path / "node.log"
        with open(log_path, "ab") as log:
            log.write(f"{START_MARK} {time.time():.3f}\n".encode())
            log.flush()
            argv = _PDEATHSIG + self.topology.command(i, [sys.executable, "-m", "node.daemon", "--home", str(node.home.path)])
            node.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)
        node.paused = False

    def kill(self, i: int) -> bool:
        """SIGKILL node ``i`` and reap it. False if it was not running."""
        node = self.nodes[i]
        if node.proc is None:
            return False
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
        node.proc, node.paused = None, False
        return True

    def terminate_all(self, timeout: float = 15.0) -> list[dict]:
        """SIGTERM every running node at once (one signal each: the daemon takes a
        second one as "exit now"), then wait for each; SIGKILL after ``timeout``."""
        running = [node for node in self.nodes if node.proc is not None]
        t = self.clock()
        for node in running:
            self._send_term(node)
        return [self._wait_exit(node, t, max(0.1, t + timeout - self.clock())) for node in running]

    @staticmethod
    def _send_term(node: NodeProcess) -> None:
        if node.paused:
            node.proc.send_signal(signal.SIGCONT)
        node.proc.send_signal(signal.SIGTERM)

    def _wait_exit(self, node: NodeProcess, since: float, timeout: float) -> dict:
        forced = False
        try:
            code = node.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            forced = True
            node.proc.send_signal(signal.SIGKILL)
            code = node.proc.wait()
        node.proc, node.paused = None, False
        return {"node": node.index, "code": code, "seconds": round(self.clock() - since, 2), "forced": forced}

    def pause(self, i: int) -> bool:
        node = self.nodes[i]
        if node.proc is None or node.paused:
            return False
        node.proc.send_signal(signal.SIGSTOP)
        node.paused = True
        return True

    def resume(self, i: int) -> None:
        node = self.nodes[i]
        if node.proc is not None and node.paused:
            node.proc.send_signal(signal.SIGCONT)
        node.paused = False

    def poll_exits(self) -> list[dict]:
        """Reap nodes that exited without being told to (a crash, a fatal error)."""
        out = []
        for node in self.nodes:
            if node.proc is not None:
                code = node.proc.poll()
                if code is not None:
                    event = {"node": node.index, "code": code, "at": round(self.now(), 2)}
                    node.exits.append(event)
                    node.proc, node.paused = None, False
                    out.append(event)
        return out

    def running(self, i: int) -> bool:
        """Started by us, not exited (poll() reaps, so a zombie counts as exited), not stopped."""
        node = self.nodes[i]
        return node.proc is not None and node.proc.poll() is None and not node.paused

    def shutdown(self, timeout: float = 10.0) -> list[dict]:
        """Stop every node we started: SIGCONT, SIGTERM, SIGKILL after ``timeout``."""
        stops = self.terminate_all(timeout)
        self.close_readers()
        return stops

    # ------------------------------------------------------------ databases
    def _reader(self, i: int) -> ChainReader | None:
        reader = self._readers.get(i)
        if reader is None:
            db = self.nodes[i].home.db
            if not db.exists():
                return None
            try:
                reader = ChainReader.open(db, self.genesis)
            except (FileNotFoundError, sqlite3.Error):
                return None
            self._readers[i] = reader
        return reader

    def heights(self) -> list[int]:
        """Every node's committed height on disk (the last one read if a read fails)."""
        for i in range(self.n):
            reader = self._reader(i)
            if reader is None:
                continue
            try:
                self._last_heights[i] = reader.height
            except sqlite3.Error:
                reader.close()
                self._readers.pop(i, None)
        return list(self._last_heights)

    def close_readers(self) -> None:
        for reader in self._readers.values():
            try:
                reader.close()
            except sqlite3.Error:
                pass
        self._readers.clear()

    def committed_hashes(self, i: int) -> set[str]:
        path = self.nodes[i].home.db
        if not path.exists():
            return set()
        db = connect_reader(path)
        try:
            return {bytes(h).hex() for (h,) in db.execute("SELECT hash FROM records")}
        finally:
            db.close()

    def snapshot(self, i: int) -> ChainDump:
        return read_chain(self.nodes[i].home.db, self.genesis)

    def signer_state(self, i: int) -> dict | None:
        """What node ``i`` signed last and the lock it holds (its signer state file,
        replaced atomically by the node, so safe to read while it runs)."""
        try:
            state = SignerState.decode(self.nodes[i].home.signer_state.read_bytes())
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged file is a finding, reported as such
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {"height": state.height, "round": state.round, "step": state.step,
                "lock_round": state.lock_round, "lock_hash": state.lock_hash.hex()}

    def log_text(self, i: int) -> str:
        try:
            return (self.nodes[i].home.path / "node.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def read_chain(path: Path, genesis: Genesis) -> ChainDump:
    """Blocks, records and evidence of the database at ``path``, read-only, in one
    read transaction. A missing or damaged database gives a dump with ``error`` set."""
    path = Path(path)
    if not path.exists():
        return ChainDump(0, {}, [], [], error="no database")
    try:
        ChainReader.open(path, genesis).close()  # the right chain?
        db = connect_reader(path)
    except Exception as exc:  # a damaged database is a finding to report, not a crash of the tool
        return ChainDump(0, {}, [], [], error=f"{type(exc).__name__}: {exc}")
    try:
        db.execute("BEGIN")
        blocks = {h: bytes(b) for h, b in db.execute("SELECT height, block FROM blocks")}
        records = [(bytes(h).hex(), bytes(b).hex(), s, q, ht)
                   for h, b, s, q, ht in db.execute("SELECT hash, branch_id, subject, seq, height FROM records")]
        evidence = [(bytes(h).hex(), ht, bytes(v).hex()) for h, ht, v in db.execute("SELECT hash, height, validator FROM evidence")]
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        return ChainDump(0, {}, [], [], error=f"sqlite: {exc}")
    finally:
        db.close()
    return ChainDump(max(blocks, default=0), blocks, records, evidence)
