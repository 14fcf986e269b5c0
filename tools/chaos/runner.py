"""One chaos run: start a devnet, carry out the schedule, heal, check, tear down.

Phases, each bounded in time:

1. **start** — homes, topology, every daemon; ready when each API answers and
   every node has committed height 1 (``startup_timeout``). A node that does
   not answer is a setup failure; nodes that answer but commit nothing are a
   finding (``stalled_at_start``): no faults, straight to the final checks.
2. **faults** — clients submit throughout; each planned fault is injected at its
   instant, lasts its downtime, and is healed. Recovery of a fault = from its
   heal to the moment every node still alive has committed a height above the
   highest any node held at the heal. The next fault waits for that (its delay
   is reported); a fault not recovered within ``recovery_bound`` ends the
   schedule early (``halted_mid_run``).
3. **final heal** — links restored, paused nodes continued, every node that is
   down started again (a node that exited by itself too: its exit is already
   recorded); clients stop.
4. **settle** — until every node has committed a new height and every
   acknowledged record is on every node, or the chain has moved on for
   ``SETTLE_QUIET_S`` without any more of the missing ones arriving (they will
   not), or the network stays halted for ``halt_bound``; ``ack_bound`` at most.
5. **checks** — forks, acknowledged records, liveness, processes, logs,
   double-signs (:mod:`tools.chaos.verdict` over :mod:`tools.chaos.checks`),
   then every node is stopped.

:meth:`ChaosRun.execute` always tears down what it created (processes,
namespaces, and the run directory unless kept), also on KeyboardInterrupt.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import verdict
from .clients import Client, NodeApi
from .cluster import Cluster
from .netns import TopologyError, open_topology
from .schedule import Fault, make_schedule

TICK_S = 0.1
SETTLE_QUIET_S = 10.0  # > 3 re-send intervals of a node's uncommitted records (3 s)


@dataclass(frozen=True)
class RunOptions:
    nodes: int = 4
    duration: float = 60.0
    kinds: tuple[str, ...] = ()
    rate: float = 3.0  # records per second per node
    net: str = "auto"  # auto | netns | loopback
    recovery_bound: float = 30.0
    halt_bound: float = 60.0
    ack_bound: float = 60.0
    startup_timeout: float = 90.0
    keep: Path | None = None


@dataclass
class _Recovery:
    fault: dict
    healed_at: float
    base: int  # the highest height any node held at the heal


class ChaosRun:
    def __init__(self, seed: int, opts: RunOptions, *, say: Callable[[str], None] = lambda s: None):
        self.seed = seed
        self.opts = opts
        self.say = say
        self.schedule: list[Fault] = make_schedule(seed, opts.nodes, opts.duration, opts.kinds)
        self.events: list[dict] = []
        self.fault_results: list[dict] = []
        self.pending: _Recovery | None = None
        self.phase_t0 = 0.0
        self.cluster: Cluster | None = None
        self.topology = None
        self.clients: list[Client] = []
        self.apis: list[NodeApi] = []
        self.crashed: set[int] = set()
        self.unclean_stops: list[dict] = []
        self.halted_mid_run: dict | None = None
        self.stalled_at_start: dict | None = None
        self._heights: list[int] = []
        self._last_poll = 0.0

    # ------------------------------------------------------------ plumbing
    def t(self) -> float:
        """Seconds since the fault phase started (negative before)."""
        return self.cluster.now() - self.phase_t0

    def event(self, name: str, **fields) -> None:
        doc = {"t": round(self.t(), 3) if self.cluster else 0.0, "event": name, **fields}
        self.events.append(doc)
        self.say(f"  [{doc['t']:7.2f}s] {name} " + " ".join(f"{k}={v}" for k, v in fields.items()))

    def tick(self) -> None:
        """Reap exits, read heights, advance the pending recovery; raise
        KeyboardInterrupt if a stop signal came (:func:`interrupt_on_signals`)."""
        check_stop()
        for exit_ in self.cluster.poll_exits():
            self.crashed.add(exit_["node"])
            self.event("node_exited_by_itself", node=exit_["node"], code=exit_["code"])
        now = self.t()
        if now - self._last_poll < 0.2 and self._heights:
            return
        self._last_poll = now
        self._heights = self.cluster.heights()
        rec = self.pending
        if rec is None:
            return
        live = [h for i, h in enumerate(self._heights) if i not in self.crashed]
        if rec.fault.get("progress_s") is None and max(self._heights) > rec.base:
            rec.fault["progress_s"] = round(now - rec.healed_at, 3)
        if live and min(live) > rec.base:
            rec.fault["recovery_s"] = round(now - rec.healed_at, 3)
            self.pending = None

    def sleep_until(self, t: float, done: Callable[[], bool] = lambda: False) -> bool:
        """Tick until fault-phase time ``t`` or until ``done()``; True if ``done()``."""
        while self.t() < t:
            self.tick()
            if done():
                return True
            time.sleep(min(TICK_S, max(0.0, t - self.t())))
        self.tick()
        return done()

    # ------------------------------------------------------------ the run
    def execute(self) -> dict:
        started = time.monotonic()
        base = self._run_dir()
        result: dict = {"seed": self.seed, "nodes": self.opts.nodes, "duration": self.opts.duration,
                        "dir": str(base) if self.opts.keep else None, "load_avg_1m": [round(os.getloadavg()[0], 2)]}
        try:
            self.topology = open_topology(self.opts.nodes, self.opts.net)
            result["net"] = self.topology.kind
            skipped = {}
            if self.topology.partition_unavailable and "partition" in self.opts.kinds:
                skipped["partition"] = self.topology.partition_unavailable
                self.schedule = make_schedule(self.seed, self.opts.nodes, self.opts.duration,
                                              tuple(k for k in self.opts.kinds if k != "partition"))
            result["skipped_kinds"] = skipped
            self.cluster = Cluster(base, self.opts.nodes, self.topology)
            self.phase_t0 = self.cluster.now()
            self.apis = [NodeApi(self.topology, i, self.cluster.api_ports[i], self.cluster.tokens[i], timeout=3.0)
                         for i in range(self.opts.nodes)]
            startup = self._start()
            if startup is not None:
                result["setup_error"] = startup
            else:
                if self.stalled_at_start is None:
                    self._faults()
                self._final(result)
        except TopologyError as exc:
            result["setup_error"] = f"network setup failed: {exc}"
        finally:
            with _signals_ignored():
                self._teardown(base, result)
        return self._finish(result, started)

    def _run_dir(self) -> Path:
        if self.opts.keep is not None:
            base = self.opts.keep / f"run-seed{self.seed}"
            if base.exists():
                shutil.rmtree(base)
            base.mkdir(parents=True)
            return base
        return Path(tempfile.mkdtemp(prefix=f"chaos-seed{self.seed}-"))

    def _start(self) -> str | None:
        for i in range(self.opts.nodes):
            self.cluster.start(i)
        deadline = self.cluster.now() + self.opts.startup_timeout
        answered = set()
        while self.cluster.now() < deadline:
            check_stop()
            for exit_ in self.cluster.poll_exits():
                return f"node {exit_['node']} exited with code {exit_['code']} while starting (see its node.log)"
            for i, api in enumerate(self.apis):
                if i not in answered:
                    try:
                        if api.request("GET", "/health")[0] == 200:
                            answered.add(i)
                    except (OSError, http.client.HTTPException):
                        pass  # not listening yet, or closing the connection while it comes up
            if len(answered) == self.opts.nodes and min(self.cluster.heights()) >= 1:
                break
            time.sleep(0.25)
        else:
            if len(answered) < self.opts.nodes:
                return (f"devnet not ready within {self.opts.startup_timeout:.0f}s: APIs answering {sorted(answered)}, "
                        f"heights {self.cluster.heights()}")
            # every node runs and answers, yet height 1 is not on every node: a liveness failure before
            # any fault. No faults then; the final checks say whether it is a halt.
            self.stalled_at_start = {"heights": self.cluster.heights(), "after_s": self.opts.startup_timeout}
        self.phase_t0 = self.cluster.now()
        self.event("ready" if self.stalled_at_start is None else "stalled_at_start", heights=self.cluster.heights())
        for i in range(self.opts.nodes):
            client = Client(NodeApi(self.topology, i, self.cluster.api_ports[i], self.cluster.tokens[i]),
                            seed=self.seed * 1000 + i, rate=self.opts.rate, clock=self.t, run_tag=f"r{self.seed}")
            self.clients.append(client)
            client.start()
        return None

    def _faults(self) -> None:
        for fault in self.schedule:
            self.sleep_until(fault.at)
            doc = fault.to_json() | {"recovery_s": None, "progress_s": None}
            if self.pending is not None:
                bound = self.pending.healed_at + self.opts.recovery_bound
                if not self.sleep_until(bound, lambda: self.pending is None):
                    self._halted(bound)
                    return
                doc["late_s"] = round(self.t() - fault.at, 3)
            self.fault_results.append(doc)
            doc["injected_at"] = round(self.t(), 3)
            self._inject(fault, doc)
            doc["healed_at"] = round(self.t(), 3)
            self.pending = _Recovery(doc, self.t(), max(self.cluster.heights()))
            self.event("healed", fault=fault.index, base_height=self.pending.base)
        self.sleep_until(self.opts.duration)
        if self.pending is not None:
            bound = self.pending.healed_at + self.opts.recovery_bound
            if not self.sleep_until(bound, lambda: self.pending is None):
                self._halted(bound)

    def _halted(self, bound: float) -> None:
        self.halted_mid_run = {"fault": self.pending.fault["index"], "base_height": self.pending.base,
                               "heights": self.cluster.heights(), "at": round(bound, 2)}
        self.event("not_recovered", fault=self.pending.fault["index"], heights=self.cluster.heights())
        self.pending = None

    def _inject(self, fault: Fault, doc: dict) -> None:
        c = self.cluster
        self.event("inject", fault=fault.index, what=fault.describe())
        if fault.kind in ("kill1", "kill2", "killall"):
            killed = []
            start = self.t()
            for offset, i in sorted(zip(fault.offsets, fault.targets)):
                self.sleep_until(start + offset)
                if c.kill(i):
                    killed.append(i)
                    self.event("killed", node=i)
            self.sleep_until(self.t() + fault.downtime)
            for i in killed:
                c.start(i)
            doc["killed"] = killed
        elif fault.kind == "stop":
            i = fault.targets[0]
            doc["paused"] = c.pause(i)
            self.sleep_until(self.t() + fault.downtime)
            c.resume(i)
        elif fault.kind == "restart_all":
            stops = c.terminate_all()
            bad = [s for s in stops if s["code"] != 0 or s["forced"]]
            self.unclean_stops.extend(s | {"fault": fault.index} for s in bad)
            doc["stops"] = stops
            for s in stops:
                c.start(s["node"])
        elif fault.kind == "partition":
            self.topology.partition(fault.groups)
            self.sleep_until(self.t() + fault.downtime)
            self.topology.heal()

    # ------------------------------------------------------------ heal, settle, check
    def _final(self, result: dict) -> None:
        c = self.cluster
        self.topology.heal()
        restarted = []
        for i in range(c.n):
            c.resume(i)
            if c.nodes[i].proc is None:
                c.start(i)
                restarted.append(i)
                self.crashed.discard(i)  # its exit stays recorded in the cluster
        for client in self.clients:
            client.stop()
        for client in self.clients:
            client.join(10)
        heal_t = self.t()
        self.tick()
        base = max(self.cluster.heights())
        self.event("final_heal", base_height=base, restarted=restarted)
        acks = [a for client in self.clients for a in client.acks]

        liveness = {"base_height": base, "progress_s": None, "caught_up_s": None}
        missing, last_change, last_poll = None, heal_t, -1e9
        while True:
            self.tick()
            now = self.t()
            hs = [h for i, h in enumerate(self._heights) if i not in self.crashed] or [0]
            if liveness["progress_s"] is None and max(self._heights) > base:
                liveness["progress_s"] = round(now - heal_t, 3)
            if liveness["caught_up_s"] is None and min(hs) > base:
                liveness["caught_up_s"] = round(now - heal_t, 3)
            if now - last_poll >= 1.0:
                last_poll = now
                count = self._count_missing(acks)
                if count != missing:
                    missing, last_change = count, now
            caught_up = liveness["caught_up_s"] is not None
            if caught_up and missing == 0:
                break  # everything acknowledged is on every node
            if caught_up and now - last_change >= SETTLE_QUIET_S and now - heal_t - liveness["caught_up_s"] >= SETTLE_QUIET_S:
                break  # the chain moves on, yet nothing more of what is missing has arrived for a while: it will not
            if liveness["progress_s"] is None and now > heal_t + self.opts.halt_bound:
                break  # halted: nothing can commit
            if now > heal_t + max(self.opts.halt_bound, self.opts.ack_bound):
                break
            time.sleep(TICK_S)
        liveness["settle_s"] = round(self.t() - heal_t, 3)
        liveness["permanent_halt"] = liveness["progress_s"] is None
        liveness["lagging_nodes"] = ([i for i, h in enumerate(self.cluster.heights()) if h <= base]
                                     if liveness["caught_up_s"] is None and not liveness["permanent_halt"] else [])
        if liveness["permanent_halt"] or liveness["lagging_nodes"]:
            liveness["consensus_status"] = verdict.consensus_status(self.cluster, self.topology)
            liveness["signer_states"] = {i: self.cluster.signer_state(i) for i in range(self.cluster.n)}
        self.event("settled", heights=self.cluster.heights(), missing_acks=missing)
        result["checks"] = verdict.collect(self.cluster, self.topology, acks, liveness | {
            "halted_mid_run": self.halted_mid_run, "stalled_at_start": self.stalled_at_start,
            "unrecovered_faults": [f["index"] for f in self.fault_results if f.get("recovery_s") is None]},
            fault_results=self.fault_results, unclean_stops=self.unclean_stops)

    def _count_missing(self, acks: list) -> int:
        committed = [self.cluster.committed_hashes(i) for i in range(self.cluster.n)]
        return sum(1 for a in acks if not all(a.hash in hashes for hashes in committed))

    def _teardown(self, base: Path, result: dict) -> None:
        for client in self.clients:
            client.stop()
        for client in self.clients:
            client.join(5)
        for api in self.apis:
            api.close()
        if self.cluster is not None:
            stops = self.cluster.shutdown()
            result["final_stops"] = stops
        if self.topology is not None:
            self.topology.close()
        if self.opts.keep is None:
            shutil.rmtree(base, ignore_errors=True)
        else:
            (base / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.events))

    def _finish(self, result: dict, started: float) -> dict:
        result.setdefault("net", getattr(self.topology, "kind", None))
        result["faults"] = self.fault_results
        result["planned_faults"] = len(self.schedule)
        result["client"] = {"submitted": sum(c.sent for c in self.clients),
                            "acknowledged": sum(len(c.acks) for c in self.clients),
                            "errors": verdict.merge_counts(c.errors for c in self.clients)}
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        result["load_avg_1m"].append(round(os.getloadavg()[0], 2))  # the machine's load at start and end (shared CPUs)
        result["failures"] = verdict.failures(result)
        return result


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_stop_requested = threading.Event()


def interrupt_on_signals() -> dict:
    """From now on SIGINT, SIGTERM and SIGHUP ask the run to stop: the next tick
    raises KeyboardInterrupt (never in the middle of starting or killing a node, so
    every process is tracked when the teardown runs), also when the tool was
    started with SIGINT ignored (a background job of a non-interactive shell).
    Returns the previous handlers."""
    def handler(signum, frame):
        _stop_requested.set()

    return {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}


def check_stop() -> None:
    if _stop_requested.is_set():
        raise KeyboardInterrupt("stop signal")


def restore_signals(old: dict) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)


class _signals_ignored:
    """Stop signals are ignored while tearing down, so a second Ctrl-C cannot leave
    namespaces or processes behind."""

    def __enter__(self):
        self.old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}

    def __exit__(self, *exc):
        restore_signals(self.old)
