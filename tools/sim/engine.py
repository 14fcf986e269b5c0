"""One deterministic simulation run.

The simulator plays the node: it carries out every action of every validator's
``ConsensusState`` over a virtual network with virtual time (integer ms, a
heapq of events). Everything random comes from ``random.Random(seed)``, so a
(seed, nodes, faults) triple replays exactly. Where the node has pure logic of
its own the simulator runs the same code: the height gate
(:class:`protocol.consensus.HeightGate`) decides when each next height starts.

What a node holds is modelled as the node holds it. A block is available to a
node only if it built it, received it with a proposal, fetched it from a peer
that holds it, or — after a crash — kept it in its consensus WAL (every block
it proposed or voted for; ``persist_blocks``). A crash loses everything else:
candidate blocks, messages in flight to it, its gate. A decided block that no
live node holds cannot be committed: a "kinder world" that handed any node any
block ever built would miss exactly the halt the WAL prevents.

Faults (``FAULT_KINDS``; scheduled by tools/sim/faults.py), all active only before the *heal* time:

* ``delay``     long and spiky message delays (reordering comes with them)
* ``drop``      messages lost with a per-run probability
* ``dup``       messages delivered twice
* ``partition`` 1–3 network splits that form and heal
* ``crash``     honest nodes crash and restart; a restart keeps only what the
                node persisted (signer state, committed blocks, WAL blocks)
* ``crash_all`` every honest validator crashes at once, 1-3 times: at a random
                instant, or just before the first of them carries out a
                chosen action at a chosen height (sends a proposal, a prevote
                or a precommit — signer state and block already in its WAL —
                or stores a decided block), then all restart
* ``byz``       validators holding < 1/3 of power misbehave for the whole run:
                ``equivocate`` (two proposals / two votes, split between peers),
                ``random`` (votes for random hashes) or ``silent``
* ``invalid``   Byzantine proposers sometimes propose blocks honest nodes find
                invalid (needs ``byz``)

With ``governance`` (tools/sim/governance.py) the committed chain also carries
validator-set changes — adds (a spare key gets power), removes, power changes,
members retired and admitted, each within the third-of-power bound, and equivocators jailed by their
committed evidence — and every node starts height ``H`` with the set its own
committed blocks up to ``H - 2`` give (``protocol.governance.end_block``), so
a node that was crashed or cut off picks a change up as it syncs the blocks.

Honest nodes send a proposal's proof of lock (``BroadcastProposal.pol_votes``)
after it, as the node's outbox does; Byzantine ones withhold it.

After the heal time the network delivers every message within 100 ms and every
crashed node is back. The node-side duties the simulator also plays
(tools/sim/behaviour.py, with what Byzantine validators send): while a height makes
no progress the outbox sends round summaries (after 1 s, then 2, 4, 8 s) and peers
answer with what the summary lacks; block sync hands a lagging node a committed
block + certificate; a node fetches a decided block it lacks from a peer holding it.

Checks (as they happen, and at the end in tools/sim/checks.py): agreement (one hash per height across honest nodes), validity (the
block was valid; its certificate verifies with ``CommitCertificate.verify``
against the validator set in force at its height, replayed from the decided
blocks — each distinct signature verified once per run; with governance also:
honest nodes started each height with that set, and committed evidence took
its validator out two heights later), no
double signing by honest nodes (every signed message recorded), liveness
(every honest node commits ``goal`` heights within ``LIVENESS_MS`` after heal).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Callable

from protocol.consensus import (
    BlockBuilt,
    BlockReceived,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ConsensusParams,
    ConsensusState,
    HeightGate,
    ProposalReceived,
    ProposeBlock,
    RecordEvidence,
    RequestBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    VoteReceived,
)
from protocol.consensus.gossip import RoundSummary
from protocol.governance import Action
from protocol.validators import Validator, ValidatorSet
from protocol.votes import NIL, PRECOMMIT, CommitCertificate, Proposal, Vote

from .behaviour import Byzantine, NodeDuties
from .checks import SafetyChecks
from .faults import Faults
from .cpu import CpuModel
from .governance import GOV_SALT, GovScenario, ScriptedScenario, genesis_state
from .keys import rotated_key, sim_keys
from .world import (
    _CRASH, _CRASH_ALL, _EVENT, _FETCH, _GATE, _HEAL, _IDLE, _MSG, _PARTITION, _RESTART, _RESTART_ALL, _SYNC, _TICK,
    _WORK, CHAIN_ID, GOSSIP_MS, SYNC_STALL_MS, SimNode,
)

FAULT_KINDS = ("delay", "drop", "dup", "partition", "crash", "crash_all", "byz", "invalid")
SIM_PARAMS = ConsensusParams(
    timeout_propose_ms=300,
    timeout_propose_delta_ms=150,
    timeout_prevote_ms=150,
    timeout_prevote_delta_ms=75,
    timeout_precommit_ms=150,
    timeout_precommit_delta_ms=75,
)
LIVENESS_MS = 60_000  # after heal, every honest node must reach the goal height within this
HEIGHTS_AFTER_HEAL = 2
MIN_HEIGHTS = 3
MAX_EVENTS = 2_000_000
SIM_GATE = HeightGate(block_interval_ms=30, empty_block_interval_ms=500)

@dataclass
class RunResult:
    seed: int
    nodes: int
    faults: tuple[str, ...]
    heights_committed: int = 0
    safety_violations: list[str] = field(default_factory=list)
    liveness_failure: str = ""
    double_signs: int = 0
    latencies: list[tuple[int, int]] = field(default_factory=list)  # (commit round, ms)
    events: int = 0
    virtual_ms: int = 0
    evidence: int = 0
    governance: bool = False
    set_changes: int = 0  # heights whose validator set differs from the one before (governance)
    proposals_passed: int = 0
    proposals_refused: int = 0
    jailed: int = 0
    admitted: int = 0  # admit_member / retire_member proposals passed (governance)
    retired: int = 0

    def reproduce(self) -> str:
        faults = ",".join(self.faults) or "none"
        gov = " --governance" if self.governance else ""
        return f"python -m tools.simulate --seed {self.seed} --nodes {self.nodes} --faults {faults}{gov}"


StateFactory = Callable[..., ConsensusState]


class Simulation(Faults, NodeDuties, Byzantine, SafetyChecks):
    persist_blocks = True  # the consensus WAL keeps the blocks a node signed for (a broken variant turns it off)
    # How a stuck height is helped: "summary" is the node's (protocol.consensus.gossip); "storm" is the
    # node before it, re-sending every vote to every peer every second (a broken variant for tests).
    gossip_policy = "summary"

    def __init__(self, seed: int, nodes: int, faults, state_factory: StateFactory = ConsensusState,
                 crash_at: list[tuple[int, str]] | None = None, cpu: CpuModel | None = None,
                 params: ConsensusParams = SIM_PARAMS, *, governance: bool = False,
                 script: dict[int, list[tuple[int, int] | Action]] | None = None, spares: int | None = None,
                 modes: list[str] | None = None, powers: list[int] | None = None,
                 rotations: dict[int, list[int]] | None = None):
        """``governance``: the chain carries validator-set changes (tools/sim/governance.py)
        drawn per seed; ``script`` fixes them instead ({height: [(node index, power) or Action]}),
        ``spares`` is how many extra keys start as members without power. ``modes`` and
        ``powers`` fix the validators' behaviour and power (tests); ValueError if the
        modes give Byzantine validators a third of the power or more (beyond what BFT
        tolerates: the liveness check would be unfair). ``rotations``
        ({height: [node index]}, with ``script``) rotates those nodes' keys at that
        height; each node holds all of its keys and signs every height with the one
        the height's set holds (a second key at one height is a violation)."""
        self.seed, self.n = seed, nodes
        self.faults = tuple(sorted(set(faults)))
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self.rng = rng = random.Random(seed)
        governance = governance or script is not None
        self.result = RunResult(seed, nodes, self.faults, governance=governance)
        keys = sim_keys(nodes)
        drawn = [1] * nodes if rng.random() < 0.5 else [rng.randint(1, 4) for _ in range(nodes)]
        powers = list(powers or drawn)
        self.valset = ValidatorSet(Validator(k.branch_id, k.public_key, p) for k, p in zip(keys, powers))
        fixed_modes = modes is not None
        modes = list(modes or ["honest"] * nodes)
        if fixed_modes:
            byz_power = sum(p for p, m in zip(powers, modes) if m != "honest")
            if byz_power * 3 >= self.valset.total_power:  # both checks need < 1/3 faulty; liveness needs it
                raise ValueError(f"Byzantine validators hold {byz_power} of {self.valset.total_power} power: "
                                 f"BFT tolerates less than a third")
        if "byz" in self.faults and not any(m != "honest" for m in modes):
            order = list(range(nodes))
            rng.shuffle(order)
            budget = rng.randint(1, nodes)
            byz_power = 0
            for i in order[:budget]:
                if (byz_power + powers[i]) * 3 < self.valset.total_power:
                    byz_power += powers[i]
                    modes[i] = rng.choice(("equivocate", "equivocate", "random", "silent"))
        # governance: its own random stream, so a seed's faults are the same with or without it
        grng = random.Random(seed ^ GOV_SALT)
        if governance:
            spares = grng.randint(1, 2) if spares is None else spares
            keys = sim_keys(nodes + spares)
            modes += ["honest"] * spares
        self.nodes = [SimNode(i, k, m) for i, (k, m) in enumerate(zip(keys, modes))]
        self.n = len(self.nodes)
        self.gov = None  # the scenario: what each block carries
        self.extra_keys: dict[bytes, list] = {}  # a node's keys after rotations (scripted), by branch id
        self.height_keys: dict[tuple[bytes, int], bytes] = {}  # (branch id, height) -> the public key that signed
        self.min_goal = MIN_HEIGHTS
        if governance:
            byzantine = frozenset(nd.bid for nd in self.nodes if nd.mode != "honest")
            if script is not None:
                rotations = rotations or {}
                for h in sorted(rotations):
                    for i in rotations[h]:
                        bid = keys[i].branch_id
                        self.extra_keys.setdefault(bid, []).append(rotated_key(i, len(self.extra_keys.get(bid, ()))))
                self.gov = ScriptedScenario({h: [a if isinstance(a, Action) else (keys[a[0]].branch_id, a[1]) for a in acts]
                                             for h, acts in script.items()},
                                            {h: [keys[i].branch_id for i in idx] for h, idx in rotations.items()},
                                            self.extra_keys)
                until = max([*script, *rotations], default=0)
            else:
                until = grng.randint(5, 20)
                self.gov = GovScenario(seed, byzantine, until, {k.branch_id: k.public_key.raw for k in keys})
            self.min_goal = until + 4  # every change signs, and is signed under, before the run ends
            genesis = genesis_state(self.valset, [(k.branch_id, k.public_key) for k in keys[nodes:]])
            for nd in self.nodes:
                nd.gov = [genesis]
        self.block_evidence: dict[bytes, frozenset[bytes]] = {}  # governance: the evidence a block carries
        self._gov_memo: dict = {}  # (id(state before), block hash) -> state after (keeps both alive)
        self.valset_at: dict[int, ValidatorSet] = {}  # the set honest nodes started each height with
        self.honest = [nd for nd in self.nodes if nd.mode == "honest"]
        self.by_bid = {nd.bid: nd for nd in self.nodes}
        self.state_factory = state_factory
        self.cpu = cpu  # None: messages cost nothing
        self.params = params
        self.heap: list = []
        self.seq = 0
        self.now = 0
        self.groups: list[int] | None = None
        self.healed = False
        self.goal = 0
        # network model
        self.delay_hi = rng.choice((20, 50, 150, 400)) if "delay" in self.faults else 10
        self.p_drop = rng.uniform(0.02, 0.3) if "drop" in self.faults else 0.0
        self.p_dup = rng.uniform(0.02, 0.2) if "dup" in self.faults else 0.0
        timed = set(self.faults) - {"byz", "invalid"}
        self.heal_at = rng.randint(2000, 8000) if timed else 0
        # bookkeeping for the checks
        self.blocks: dict[bytes, bool] = {}  # every block ever built -> valid?
        self.decided: dict[int, bytes] = {}
        self.signed: dict[tuple, tuple] = {}  # honest (bid, h, r, step) -> message identity
        self.certs: dict[bytes, tuple[int, CommitCertificate]] = {}
        self.byz_split: dict[tuple[int, int], tuple[bytes, bytes, frozenset]] = {}
        # (height, action) at which every honest node crashes; ``crash_at`` fixes them (tests)
        self.crash_triggers: list[tuple[int, str]] = list(crash_at or [])
        self._fixed_crashes = crash_at is not None
        self.crashed_all = 0

    # ------------------------------------------------------------ scheduling

    def push(self, t: int, kind: int, idx: int, inc: int, payload) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, idx, inc, payload))

    def send(self, src: SimNode, msg, targets=None, *, via: str = "direct") -> None:
        """``msg`` to ``targets`` (default: every other node), ``via`` a direct stream or
        gossip (what receiving it costs, with a CPU model)."""
        rng = self.rng
        groups = self.groups
        dsts = [d for d in (self.nodes if targets is None else targets) if d is not src]
        start = self.now
        if self.cpu is not None and dsts:
            start = self.cpu.run(src.idx, self.now, self.cpu.costs.send_direct * len(dsts))
        for dst in dsts:
            if not self.healed:
                if groups is not None and groups[src.idx] != groups[dst.idx]:
                    continue
                if self.p_drop and rng.random() < self.p_drop:
                    continue
                if self.p_dup and rng.random() < self.p_dup:
                    self.push(start + self.delay(), _MSG, dst.idx, src.idx, (msg, via))
            self.push(start + self.delay(), _MSG, dst.idx, src.idx, (msg, via))

    # ----------------------------------------------------------------- setup

    def boot(self, nd: SimNode) -> None:
        nd.state = self.state_factory(nd.key, CHAIN_ID, self.params, nd.signer, tuple(nd.signed_history))
        for key in self.extra_keys.get(nd.bid, ()):
            nd.state.add_key(key)
        nd.sent, nd.sent_height, nd.syncing, nd.waiting_for = [], 0, False, None
        nd.have = set(nd.wal_blocks)  # the WAL's blocks go back among the candidates
        self.start_height(nd, nd.top + 1)

    def valset_for(self, nd: SimNode, height: int) -> ValidatorSet:
        """The set in force for ``height`` as ``nd`` knows it: fixed, or (governance) from
        its own committed blocks up to ``height - 2`` (announced after ``height - 2``,
        in force after ``height - 1``)."""
        if self.gov is None:
            return self.valset
        return nd.gov[height - 1].validators

    def start_height(self, nd: SimNode, height: int) -> None:
        nd.waiting_for = None
        nd.height_started = self.now
        valset = self.valset_for(nd, height)
        if nd.mode == "honest" and self.gov is not None:
            first = self.valset_at.setdefault(height, valset)
            if first.hash != valset.hash:
                self.violation(f"governance: two validator sets for height {height}")
        self.apply(nd, StartHeight(height, valset, self.now))

    def gate_next(self, nd: SimNode, height: int) -> None:
        """After a commit: the node's height gate decides when ``height`` starts."""
        nd.waiting_for = height
        at = SIM_GATE.next_start(last_commit_ms=self.now, pending_records=1)
        self.push(at, _GATE, nd.idx, nd.inc, height)

    # --------------------------------------------------------------- running

    def run(self) -> RunResult:
        rng = self.rng
        self.schedule_faults()
        for nd in self.nodes:
            self.boot(nd)
            self.push(rng.randint(1, GOSSIP_MS), _TICK, nd.idx, 0, None)
            if self.cpu is not None:
                self.push(rng.randint(1, 1000), _IDLE, nd.idx, 0, None)
        deadline = self.heal_at + LIVENESS_MS
        heap, nodes, res = self.heap, self.nodes, self.result
        pop = heapq.heappop
        events = 0
        while heap:
            t, _, kind, idx, inc, payload = pop(heap)
            if t > deadline:
                res.liveness_failure = f"goal height {self.goal} not reached {LIVENESS_MS} ms after heal"
                break
            self.now = t
            events += 1
            nd = nodes[idx]
            if kind == _MSG:
                if nd.alive:
                    msg, via = payload
                    if self.cpu is None:
                        self.deliver(nd, nodes[inc], msg)
                    else:  # the node handles it once it has had the CPU time to
                        costs = self.cpu.costs
                        done = self.cpu.run(idx, t, costs.receive_gossip if via == "gossip" else costs.receive_direct)
                        self.push(int(done) + 1, _WORK, idx, nd.inc, (inc, msg))
            elif kind == _WORK:
                if nd.alive and inc == nd.inc:
                    self.deliver(nd, nodes[payload[0]], payload[1])
            elif kind == _EVENT:
                if nd.alive and inc == nd.inc:
                    self.apply(nd, payload)
            elif kind == _TICK:
                self.gossip_tick(nd)
            elif kind == _IDLE:
                if nd.alive:
                    self.cpu.idle(idx, t, self.n - 1, polls_every_peer=self.gossip_policy == "storm")
                self.push(t + 1000, _IDLE, idx, 0, None)
            elif kind == _SYNC:
                if nd.alive and nd.inc == inc[0]:
                    self.sync(nd, nodes[inc[1]])
            elif kind == _PARTITION:
                if not self.healed:
                    self.groups = payload
            elif kind == _CRASH:
                self.crash(nd)
            elif kind == _CRASH_ALL:
                self.crash_everyone()
            elif kind == _RESTART_ALL:
                if not self.healed:
                    for h in self.honest:
                        if not h.alive:
                            h.alive = True
                            self.boot(h)
            elif kind == _FETCH:
                if nd.alive and inc == nd.inc:
                    self.fetch(nd, *payload)
            elif kind == _GATE:
                if nd.alive and inc == nd.inc and nd.waiting_for == payload:
                    self.start_height(nd, payload)
            elif kind == _RESTART:
                if not nd.alive:
                    nd.alive = True
                    self.boot(nd)
            elif kind == _HEAL:
                self.heal()
            if self.goal and all(h.top >= self.goal for h in self.honest):
                break
            if events > MAX_EVENTS:
                res.liveness_failure = "event budget exhausted"
                break
        else:
            res.liveness_failure = "event queue ran dry"
        res.events = events
        res.virtual_ms = self.now
        res.heights_committed = max(h.top for h in self.honest)
        self.check_certificates()
        return res

    def heal(self) -> None:
        self.healed = True
        self.groups = None
        for nd in self.nodes:
            if not nd.alive:
                nd.alive = True
                self.boot(nd)
        self.goal = max(self.min_goal, max(h.top for h in self.honest) + HEIGHTS_AFTER_HEAL)

    def deliver(self, nd: SimNode, src: SimNode, msg) -> None:
        if type(msg) is RoundSummary:
            return self.answer_summary(nd, src, msg)
        if nd.waiting_for is not None and msg.height >= nd.waiting_for:
            self.start_height(nd, nd.waiting_for)  # a peer already moved on: the gate opens
        if type(msg) is Proposal and msg.block_hash in self.blocks:
            nd.have.add(msg.block_hash)  # the block travels with its proposal
        st = nd.state
        if msg.height > st.height and not nd.syncing and src.top >= st.height:
            if msg.height > st.height + 1 or self.now - nd.height_started > SYNC_STALL_MS:
                nd.syncing = True
                self.push(self.now + 2 * self.delay(), _SYNC, nd.idx, (nd.inc, src.idx), None)
        if type(msg) is Vote:
            self.apply(nd, VoteReceived(msg, self.now))
        else:
            self.apply(nd, ProposalReceived(msg, self.now))

    # ------------------------------------------------------------- actions

    def apply(self, nd: SimNode, event) -> None:
        for action in nd.state.apply(event):
            t = type(action)
            if t in (BroadcastVote, BroadcastProposal, CommitBlock) and self._triggers_crash(nd, action):
                if t is not CommitBlock:
                    self.persist(nd, action)  # written ahead, then the power went
                self.crash_everyone()
                return
            if t is BroadcastVote or t is BroadcastProposal:
                self.on_signed(nd, action)
            elif t is ScheduleTimeout:
                self.push(action.deadline_ms, _EVENT, nd.idx, nd.inc,
                          TimeoutFired(action.height, action.round, action.step, action.deadline_ms))
            elif t is RequestBlock:
                if action.block_hash in nd.have:
                    at = self.now + self.delay() if self.cpu is None else int(self.cpu.run(nd.idx, self.now, self.cpu.costs.block)) + 1
                    self.push(at, _EVENT, nd.idx, nd.inc, BlockReceived(action.block_hash, self.blocks[action.block_hash], at))
                else:
                    self.fetch(nd, action.height, action.block_hash)
            elif t is ProposeBlock:
                self.build_block(nd, action)
            elif t is CommitBlock:
                if action.block_hash not in nd.have:
                    return  # decided, but the block is not here: only block sync can move it on
                self.record_commit(nd, action.height, action.block_hash, action.certificate, action.round)
                self.gate_next(nd, action.height + 1)
                return  # the rest of this batch (if any) belonged to the old height
            elif t is RecordEvidence:
                self.result.evidence += 1
                if self.gov is not None and nd.mode == "honest":
                    v, h = action.evidence.validator, action.evidence.height  # for the blocks it proposes
                    nd.evidence_pool[v] = min(h, nd.evidence_pool.get(v, h))
                if self.by_bid[action.evidence.validator].mode == "honest":
                    self.result.double_signs += 1
                    self.violation(f"evidence against honest validator at height {action.evidence.height}")

    def build_block(self, nd: SimNode, action: ProposeBlock) -> None:
        block_hash = self.rng.randbytes(32)
        valid = True
        if nd.mode != "honest" and "invalid" in self.faults and self.rng.random() < 0.5:
            valid = False
        self.blocks[block_hash] = valid
        if self.gov is not None and nd.mode == "honest" and nd.evidence_pool:
            # as protocol.ledger.admissible_evidence: only evidence of a height below the block's (§7.4, §11.1)
            carried = frozenset(v for v, h in nd.evidence_pool.items() if h < action.height)
            if carried:
                self.block_evidence[block_hash] = carried
        nd.have.add(block_hash)
        at = self.now + self.rng.randint(1, 5)
        if self.cpu is not None:
            at = max(at, int(self.cpu.run(nd.idx, self.now, self.cpu.costs.block)) + 1)
        self.push(at, _EVENT, nd.idx, nd.inc, BlockBuilt(action.height, action.round, block_hash, at))

    def persist(self, nd: SimNode, action) -> None:
        """The node's write-ahead: the signer state, and the block signed for."""
        msg = action.proposal if type(action) is BroadcastProposal else action.vote
        nd.signer = action.signer_state
        if nd.signed_history and nd.signed_history[-1].height != msg.height:
            nd.signed_history = []
        nd.signed_history.append(msg)
        if self.persist_blocks and msg.block_hash != NIL and msg.block_hash in nd.have:
            nd.wal_blocks.add(msg.block_hash)

    def on_signed(self, nd: SimNode, action) -> None:
        msg = action.proposal if type(action) is BroadcastProposal else action.vote
        self.persist(nd, action)  # before the message leaves
        if nd.sent_height != msg.height:
            nd.sent, nd.sent_height = [], msg.height
        if nd.mode == "honest":
            signer = nd.state.key.public_key.raw
            if self.height_keys.setdefault((nd.bid, msg.height), signer) != signer:
                self.result.double_signs += 1
                self.violation(f"node {nd.idx} signed height {msg.height} with two keys")
            if type(msg) is Vote:
                key = (nd.bid, msg.height, msg.round, msg.type + 1)
                ident = (msg.block_hash,)
            else:
                key = (nd.bid, msg.height, msg.round, 1)
                ident = (msg.block_hash, msg.pol_round)
            prev = self.signed.setdefault(key, ident)
            if prev != ident:
                self.result.double_signs += 1
                self.violation(f"double sign by node {nd.idx} at {key[1:]}")
            self.publish(nd, msg)
            for vote in getattr(action, "pol_votes", ()):  # a re-proposal's proof of lock follows it
                self.send(nd, vote)
        else:  # Byzantine proposers withhold the proof of lock
            self.byzantine_publish(nd, msg)

    def publish(self, nd: SimNode, msg, targets=None) -> None:
        nd.sent.append(msg)
        if type(msg) is Vote and msg.type == PRECOMMIT and msg.block_hash != NIL:
            nd.last_precommit = msg
        self.send(nd, msg, targets)

    def record_commit(self, nd: SimNode, h: int, block_hash: bytes, cert: CommitCertificate, rnd: int) -> None:
        nd.committed[h] = (block_hash, cert)
        nd.top = h
        if self.gov is not None and len(nd.gov) == h:  # the node's own governance state, from its own blocks
            evidence = self.block_evidence.get(block_hash, frozenset())
            nd.gov.append(self.gov_after(nd.gov[-1], h, block_hash))
            for v in evidence:
                nd.evidence_pool.pop(v, None)
        if nd.mode != "honest":
            return
        first = self.decided.setdefault(h, block_hash)
        if first != block_hash:
            self.violation(f"agreement: two blocks committed at height {h}")
        if not self.blocks.get(block_hash, False):
            self.violation(f"validity: invalid or unknown block committed at height {h}")
        self.certs.setdefault(cert.hash, (h, cert))
        if rnd >= 0:
            self.result.latencies.append((rnd, self.now - nd.height_started))

    def gov_after(self, prev, h: int, block_hash: bytes):
        """The governance state after block ``h`` on top of ``prev`` (a pure function,
        computed once per (state, block) and shared: nodes on one chain share states)."""
        key = (id(prev), block_hash)
        got = self._gov_memo.get(key)
        if got is None:
            after = self.gov.after_block(prev, h, self.block_evidence.get(block_hash, frozenset()))[0]
            got = self._gov_memo[key] = (prev, after)  # holding prev keeps its id unique
        return got[1]



def run_one(seed: int, nodes: int, faults, state_factory: StateFactory = ConsensusState, *,
            governance: bool = False) -> RunResult:
    return Simulation(seed, nodes, faults, state_factory, governance=governance).run()
