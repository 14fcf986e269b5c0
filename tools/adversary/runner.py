"""The hostile member at work: a libp2p node with a real member key and the PSK that
sends :mod:`shots` to its targets, bounded in time and count, and watches them.

What it observes of each target, through the target's HTTP API (127.0.0.1 only):
``/health`` (is it running), ``/v1/status`` (height), ``/metrics`` (rejections by
family, protocol or source, and reason; bans), and its process if a pid is
known. After the attack it waits (bounded by ``settle``) for every target to
commit a block beyond the height it had when the attack ended, and compares
block hashes across targets (no fork).

Only processes and addresses on 127.0.0.1 are ever touched; nothing is killed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from node.config import Home
from node.home import read_psk
from node.keyfile import load_key
from node.p2p.errors import P2PError, PeerUnavailable
from node.p2p.host import keypair_of, peer_id_of
from node.p2p.network import P2PConfig, P2PNetwork
from node.p2p.psk import NONCE_SIZE, XSalsa20
from protocol import wire
from protocol.genesis import Genesis

from .load import check_acks, member_services, start_clients, stop_clients
from .shots import Arsenal, Shot

logger = logging.getLogger("tools.adversary")
LOCAL = "127.0.0.1"
MESHSUB = "/meshsub/1.1.0"
FLOOD_STREAMS = 64
FLOOD_CONNECTIONS = 32  # TCP connections of one idle_flood shot
HOLD_S = 2.0  # how long a tcp shot waits for the target to close its connection
IN_FLIGHT = 4  # shots in flight per target
REFUSED_PAUSE = 0.5  # seconds a target that refused us (banned us) gets no shots
NO_STREAM, NOT_CONNECTED = "no_stream", "not_connected"
NOT_DELIVERED = (NO_STREAM, NOT_CONNECTED, "timeout")  # outcomes of shots that never reached the target


class NotLocal(ValueError):
    """A target is not on 127.0.0.1: the adversary refuses to touch it."""


@dataclass
class Target:
    name: str
    peer_id: str
    p2p_addr: str
    api: str                 # http://127.0.0.1:PORT
    token: str | None = None
    pid: int | None = None

    @classmethod
    def from_home(cls, home: Home, pid: int | None = None) -> "Target":
        config = home.load_config()
        peer_id = peer_id_of(load_key(home.key).public_key.raw)
        listen = config.p2p.listen[0]
        api_host = config.api.listen.rpartition(":")[0]
        if not listen.startswith(f"/ip4/{LOCAL}/") or api_host != LOCAL:
            raise NotLocal(f"{home.path}: p2p {listen} / api {config.api.listen} is not on {LOCAL}")
        token = home.api_token.read_text().strip() if home.api_token.exists() else None
        return cls(config.node.moniker, peer_id, f"{listen}/p2p/{peer_id}", f"http://{config.api.listen}", token, pid)


@dataclass
class Observation:
    alive: bool = False
    height: int = -1
    rejected: dict[str, float] = field(default_factory=dict)  # "family|label|reason" -> count
    bans: float = 0.0
    evidence: float = 0.0  # evidence of validator misbehaviour committed (branchnet_evidence_committed_total)
    pid_running: bool | None = None


def _pid_running(pid: int | None) -> bool | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def observe(target: Target, timeout: float = 5.0) -> Observation:
    """Scrape one target (blocking: run it in a thread)."""
    from prometheus_client.parser import text_string_to_metric_families

    obs = Observation(pid_running=_pid_running(target.pid))
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    try:
        with httpx.Client(base_url=target.api, headers=headers, timeout=timeout) as client:
            obs.alive = client.get("/health").status_code == 200
            obs.height = int(client.get("/v1/status").json()["height"])
            text = client.get("/metrics").text
    except (httpx.HTTPError, ValueError, KeyError):
        return obs
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "branchnet_rejected_total":
                obs.rejected[f"node|{sample.labels['source']}|{sample.labels['reason']}"] = sample.value
            elif sample.name == "branchnet_p2p_rejected_total":
                obs.rejected[f"p2p|{sample.labels['protocol']}|{sample.labels['reason']}"] = sample.value
            elif sample.name == "branchnet_p2p_bans_total":
                obs.bans = sample.value
            elif sample.name == "branchnet_evidence_committed_total":
                obs.evidence += sample.value
    return obs


def block_hash(target: Target, height: int) -> str | None:
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    try:
        r = httpx.get(f"{target.api}/v1/blocks/{height}", headers=headers, timeout=5)
        return r.json().get("hash") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


@dataclass
class Options:
    seed: int = 1
    duration: float = 60.0
    count: int | None = None
    rate: float = 20.0               # shots per second, over all targets
    families: list[str] | None = None
    settle: float = 30.0             # bounded wait for every target to commit past the attack
    # stop early once every goal is met: (kind prefixes, delivered shots), e.g. ((("pubsub/",), 28),)
    until_delivered: tuple[tuple[tuple[str, ...], int], ...] = ()
    validator_key: Path | None = None  # a validator's key file: adds the equivocate family
    load: float = 0.0  # honest records/s through the targets' APIs during the attack (tools.adversary.load)


class Adversary:
    """A member node (``home``: its key, genesis and PSK) attacking ``targets``."""

    def __init__(self, home: Home, targets: list[Target], options: Options) -> None:
        self.home = home
        self.targets = targets
        self.options = options
        self.key = load_key(home.key)
        self.genesis = Genesis.loads(home.genesis.read_bytes())
        config = home.load_config()
        self.psk = bytes.fromhex(read_psk(home.psk(config)))
        self.net = P2PNetwork(self.key, P2PConfig(listen_addrs=(f"/ip4/{LOCAL}/tcp/0",), psk=read_psk(home.psk(config)),
                                                  allowed_peers=None, max_backoff=1.0, dial_timeout=3.0,
                                                  request_timeout=3.0, libp2p_log_level=logging.CRITICAL))
        self.rng = random.Random(options.seed)
        self.heights = {t.peer_id: 0 for t in targets}
        validators = [v.branch_id for v in self.genesis.validators]
        self.arsenal = Arsenal(self.rng, self.key, keypair_of(self.key), self.genesis.chain_id, validators,
                               lambda: max(self.heights.values(), default=0),
                               validator_key=load_key(options.validator_key) if options.validator_key else None)
        self.sent: dict[str, Counter] = defaultdict(Counter)  # kind -> outcome -> n
        self.refused_until: dict[str, float] = {}  # peer id -> when to try it again (trio time)
        self.valid_sent = 0

    # ------------------------------------------------------------ sending
    async def _stream(self, target: Target, protocol: str) -> Any:
        from libp2p.custom_types import TProtocol
        from libp2p.peer.id import ID

        return await self.net.host.new_stream(ID.from_base58(target.peer_id), [TProtocol(protocol)])

    async def _write_raw(self, target: Target, protocol: str, data: bytes) -> str:
        try:
            stream = await self._stream(target, protocol)
        except Exception:  # the target dropped us a moment ago (our view lags): dial again, once
            try:
                with trio.fail_after(2):
                    await self.net.connect(target.p2p_addr)
                    stream = await self._stream(target, protocol)
            except Exception:
                return NO_STREAM  # refused (banned) or down
        try:
            try:
                await stream.write(data)
            except Exception:
                return NO_STREAM
            with trio.move_on_after(0.3):  # let the target answer (an error frame) or reset
                try:
                    await stream.read(1024)
                except Exception:
                    return "reset"
            return "delivered"
        finally:
            with trio.move_on_after(1):
                try:
                    await stream.reset()
                except Exception:
                    pass

    async def _flood(self, target: Target, shot: Shot) -> str:
        outcomes: Counter = Counter()

        async def one() -> None:
            try:
                await self.net.request(target.peer_id, shot.protocol, shot.data, timeout=3, retry=False)
                outcomes["answered"] += 1
            except P2PError as exc:
                outcomes[type(exc).__name__] += 1

        async with trio.open_nursery() as nursery:
            for _ in range(FLOOD_STREAMS):
                nursery.start_soon(one)
        return f"answered {outcomes['answered']}/{FLOOD_STREAMS}"

    async def _tcp(self, target: Target, shot: Shot) -> str:
        """A connection below libp2p: returns "closed" if the target hung up within
        HOLD_S, else "held" (for idle_flood: "closed" if it hung up on every one)."""
        port = int(target.p2p_addr.split("/tcp/")[1].split("/")[0])

        async def one(data: bytes, mode: str) -> bool:
            stream = await trio.open_tcp_stream(LOCAL, port)
            try:
                if mode == "raw":
                    out = data
                else:
                    nonce = os.urandom(NONCE_SIZE)
                    key = self.psk if mode in ("psk", "idle_flood") else os.urandom(32)
                    out = nonce + XSalsa20(key, nonce).xor(data)
                await stream.send_all(out)
                with trio.move_on_after(HOLD_S):
                    while await stream.receive_some(65536):
                        pass
                    return True  # the target closed it
                return False
            except (trio.BrokenResourceError, OSError):
                return True
            finally:
                await stream.aclose()

        if shot.protocol == "idle_flood":
            closed = []

            async def hold() -> None:
                closed.append(await one(b"", "idle_flood"))

            async with trio.open_nursery() as nursery:
                for _ in range(FLOOD_CONNECTIONS):
                    nursery.start_soon(hold)
            return "closed" if all(closed) else f"held_{closed.count(False)}"
        return "closed" if await one(shot.data, shot.protocol) else "held"

    async def fire(self, target: Target, shot: Shot) -> str:
        """Send one shot; returns its outcome. Never raises on the target's behaviour."""
        if shot.channel == "tcp":
            try:
                with trio.fail_after(HOLD_S + 5):
                    return await self._tcp(target, shot)
            except (OSError, trio.TooSlowError) as exc:
                return f"dropped:{type(exc).__name__}"
        if shot.channel == "gossip":
            await self.net.publish(shot.protocol, shot.data, max_wait=1)
            return "published"
        if target.peer_id not in self.net.connected_peers():
            with trio.move_on_after(2):
                try:
                    await self.net.connect(target.p2p_addr)
                except P2PError:
                    pass
            if target.peer_id not in self.net.connected_peers():
                return NOT_CONNECTED  # banned (refused after Noise) or down
        try:
            with trio.fail_after(5):
                if shot.channel == "meshsub":
                    return await self._write_raw(target, MESHSUB, shot.data)
                if shot.channel == "raw":
                    return await self._write_raw(target, shot.protocol, shot.data)
                if shot.channel == "stream_flood":
                    return (await self._flood(target, shot)).split(" ")[0] + "_flood"
                try:
                    for body in (shot.data, *shot.extra):
                        if shot.channel == "notify":  # one way (consensus/2): the outcome is in the target's metrics
                            await self.net.notify(target.peer_id, shot.protocol, body, timeout=3)
                        else:
                            answer = await self.net.request(target.peer_id, shot.protocol, body, timeout=3, retry=False)
                except PeerUnavailable:
                    return NOT_CONNECTED
                except P2PError as exc:
                    return type(exc).__name__
                if shot.channel == "notify":
                    return "written"
                try:
                    status, _ = wire.decode_response(answer) if answer else (0, None)
                except Exception:
                    return "answered"
                return {0: "ok", 1: "not_found", 2: "bad_request"}.get(status, "answered")
        except trio.TooSlowError:
            return "timeout"
        except Exception as exc:  # the target reset the stream or dropped the connection
            return f"dropped:{type(exc).__name__}"

    async def _fire_counted(self, target: Target, shot: Shot, limiter: trio.Semaphore) -> None:
        try:
            outcome = await self.fire(target, shot)
            if outcome in (NO_STREAM, NOT_CONNECTED):
                self.refused_until[target.peer_id] = trio.current_time() + REFUSED_PAUSE
            self.sent[shot.kind][outcome] += 1
            self.valid_sent += shot.valid
        finally:
            limiter.release()

    # ------------------------------------------------------------ the run
    async def _capture(self) -> None:
        channel = await self.net.subscribe(self.arsenal.topics.consensus)
        async for _peer, data in channel:
            self.arsenal.capture(data)

    async def _watch_heights(self) -> None:
        while True:
            for target in self.targets:
                obs = await trio.to_thread.run_sync(observe, target, 2.0)
                if obs.height >= 0:
                    self.heights[target.peer_id] = obs.height
            await trio.sleep(2)

    def delivered(self, prefixes: tuple[str, ...]) -> int:
        """Shots of the kinds starting with ``prefixes`` that reached their target."""
        return sum(n for kind, outcomes in self.sent.items() if kind.startswith(prefixes)
                   for outcome, n in outcomes.items() if outcome not in NOT_DELIVERED)

    def _goals_met(self) -> bool:
        goals = self.options.until_delivered
        return bool(goals) and all(self.delivered(prefixes) >= n for prefixes, n in goals)

    async def run(self) -> dict[str, Any]:
        opts = self.options
        before = [await trio.to_thread.run_sync(observe, t) for t in self.targets]
        started = time.monotonic()
        shots = 0
        clients = start_clients(self.targets, opts.load, opts.seed) if opts.load > 0 else []
        async with trio.open_nursery() as nursery:
            await nursery.start(self.net.run)
            for target in self.targets:
                self.net.add_persistent_peer(target.p2p_addr)
            with trio.move_on_after(15):
                await self.net.wait_connected(len(self.targets), 15)
            nursery.start_soon(self._capture)
            nursery.start_soon(self._watch_heights)
            # Shots are drawn in one seeded sequence and dealt to the targets in turn,
            # skipping a target that refused us a moment ago (banned us); each target has
            # up to IN_FLIGHT shots in flight, so a slow answer does not hold up the rest.
            # Which target gets which shot, replays and vote heights depend on timing.
            limiters = {t.peer_id: trio.Semaphore(IN_FLIGHT) for t in self.targets}
            turn = 0
            with trio.move_on_after(opts.duration):
                async with trio.open_nursery() as shooting:
                    while (opts.count is None or shots < opts.count) and not self._goals_met():
                        now = trio.current_time()
                        ready = [t for t in self.targets if self.refused_until.get(t.peer_id, 0) <= now]
                        if not ready:
                            await trio.sleep(0.1)
                            continue
                        target = ready[turn % len(ready)]
                        turn += 1
                        shot = self.arsenal.next(opts.families)
                        limiter = limiters[target.peer_id]
                        await limiter.acquire()
                        shooting.start_soon(self._fire_counted, target, shot, limiter)
                        shots += 1
                        await trio.sleep(1 / opts.rate)
            attack_s = time.monotonic() - started
            nursery.cancel_scope.cancel()
        await trio.to_thread.run_sync(stop_clients, clients)
        end = [await trio.to_thread.run_sync(observe, t) for t in self.targets]
        settled = await self._settle(end)
        report = self._report(before, end, settled, shots, attack_s)
        # rejected input changed no state: the attacker's branch holds only services it sent as valid
        mine, fresh = self.key.branch_id.hex(), set(self.arsenal.fresh_services)
        found = [await trio.to_thread.run_sync(member_services, t, mine) for t in self.targets]
        made_by = self.arsenal.made_by
        report["unexpected_member_services"] = {s: made_by.get(s, "?") for f in found for s in (f or ()) if s not in fresh}
        report["member_services"] = [None if f is None else len(f) for f in found]
        if clients:
            deadline = time.monotonic() + self.options.settle
            report["load"] = await trio.to_thread.run_sync(check_acks, self.targets, clients, deadline)
        report["ok"] = (report["ok"] and not report["unexpected_member_services"] and None not in found
                        and report.get("load", {}).get("not_committed", 0) == 0)
        return report

    async def _settle(self, end: list[Observation]) -> list[Observation]:
        """Wait (bounded) until every target is past the height it had when the attack ended."""
        deadline = time.monotonic() + self.options.settle
        while True:
            now = [await trio.to_thread.run_sync(observe, t) for t in self.targets]
            if all(n.height > e.height >= 0 for n, e in zip(now, end)) or time.monotonic() > deadline:
                return now
            await trio.sleep(0.5)

    def _report(self, before: list[Observation], end: list[Observation], settled: list[Observation],
                shots: int, attack_s: float) -> dict[str, Any]:
        targets = []
        for t, b, e, s in zip(self.targets, before, end, settled):
            delta = {k: v - b.rejected.get(k, 0) for k, v in s.rejected.items() if v - b.rejected.get(k, 0) > 0}
            targets.append({
                "name": t.name, "peer_id": t.peer_id,
                "alive_before": b.alive, "alive_after": s.alive, "process_running": s.pid_running,
                "height_before": b.height, "height_at_end": e.height, "height_settled": s.height,
                "committing": s.height > e.height >= 0,
                "rejected": dict(sorted(delta.items())), "rejected_total": int(sum(delta.values())),
                "bans": int(s.bans - b.bans),
                "evidence_committed": int(s.evidence - b.evidence),
            })
        common = min((x["height_settled"] for x in targets), default=0)
        hashes = {t.name: block_hash(t, common) for t in self.targets} if common > 0 else {}
        forked = len({h for h in hashes.values() if h}) > 1
        ok = (all(x["alive_after"] and x["committing"] and x["process_running"] is not False for x in targets)
              and not forked)
        return {
            "seed": self.options.seed, "attack_seconds": round(attack_s, 1), "shots": shots,
            "delivered": sum(n for outcomes in self.sent.values() for o, n in outcomes.items() if o not in NOT_DELIVERED),
            "valid_records_sent": self.valid_sent,
            "sent": {k: dict(v) for k, v in sorted(self.sent.items())},
            "targets": targets, "compared_height": common, "forked": forked, "ok": ok,
        }


def format_report(report: dict[str, Any]) -> str:
    lines = [f"adversary seed {report['seed']}: {report['shots']} shots in {report['attack_seconds']} s, "
             f"{report['delivered']} delivered ({report['valid_records_sent']} valid records among them)"]
    families: dict[str, Counter] = defaultdict(Counter)
    for kind, outcomes in report["sent"].items():
        families[kind.split("/")[0]].update(outcomes)
    lines.append("sent, by family (outcome: count):")
    for family, outcomes in sorted(families.items()):
        lines.append(f"  {family:10} {sum(outcomes.values()):5}  " +
                     ", ".join(f"{o} {n}" for o, n in outcomes.most_common()))
    lines.append(f"sent kinds: {len(report['sent'])}")
    for t in report["targets"]:
        lines.append(f"target {t['name']}: running {t['alive_after']} (process {t['process_running']}), height "
                     f"{t['height_before']} -> {t['height_at_end']} -> {t['height_settled']} "
                     f"(committing {t['committing']}), rejections +{t['rejected_total']}, bans +{t['bans']}, "
                     f"evidence committed +{t['evidence_committed']}")
        top = sorted(t["rejected"].items(), key=lambda kv: -kv[1])[:12]
        for key, n in top:
            lines.append(f"    {int(n):6}  {key}")
    lines.append(f"attacker's branch: services {report['member_services']} per target, "
                 f"{len(report['unexpected_member_services'])} not from a record sent as valid")
    for service_id, kind in sorted(report["unexpected_member_services"].items()):
        lines.append(f"    {service_id}: its record was built for a {kind} shot")
    if "load" in report:
        load = report["load"]
        lines.append(f"load: {load['sent']} records sent through the APIs, {load['acknowledged']} acknowledged (202), "
                     f"{load['committed']} committed, {load['not_committed']} not committed "
                     f"{load['not_committed_by_status'] or ''}; refused or failed: {load['refused_or_failed'] or 'none'}")
    lines.append(f"forks: {'YES' if report['forked'] else 'none'} (block hashes compared at height "
                 f"{report['compared_height']}); verdict: {'OK' if report['ok'] else 'FAILED'}")
    return "\n".join(lines)


def devnet_targets(base: Path) -> tuple[Home, list[Target]]:
    """The member home (the devnet's first spare member, ``devnet up --members 1``) and
    the validators as targets."""
    pids: dict[str, int] = {}
    state = base / "devnet.json"
    if state.exists():
        doc = json.loads(state.read_text())
        nodes = doc.get("nodes", doc) if isinstance(doc, dict) else {}
        for name, entry in (nodes.items() if isinstance(nodes, dict) else []):
            pid = entry.get("pid") if isinstance(entry, dict) else entry
            if isinstance(pid, int):
                pids[name] = pid
    members = sorted(p for p in base.glob("member-*") if (p / "config.toml").exists())
    if not members:
        raise SystemExit(f"{base}: no member home to take an identity from "
                         f"(create the devnet with `python -m tools.devnet up --members 1`)")
    validators = sorted(p for p in base.glob("branch-*") if (p / "config.toml").exists())
    return Home(members[0]), [Target.from_home(Home(p), pids.get(p.name)) for p in validators]


def write_json(report: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(report, indent=1, sort_keys=True))
    os.chmod(path, 0o644)
