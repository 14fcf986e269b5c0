"""The seeded fault schedule: what happens to which node, when, for how long.

Pure: no processes, no clocks. The same (seed, nodes, duration, kinds) always
gives the same list of :class:`Fault` s, their instants counted in seconds from
the start of the fault phase. Carrying them out on real processes is not
reproducible to the millisecond (a kill lands wherever the node happens to be),
so a seed reproduces the *plan*, not the interleaving.

Faults never overlap: each one is injected, lasts its ``downtime``, is healed,
and the next starts a gap later. Kinds are dealt from a shuffled deck of the
enabled ones, reshuffled when it runs out, so every run of six or more faults
sees every kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("kill1", "kill2", "killall", "restart_all", "stop", "partition")

KIND_HELP = {
    "kill1": "SIGKILL one validator, restart it after a random downtime",
    "kill2": "SIGKILL two validators (staggered or at once), restart both",
    "killall": "SIGKILL every validator (staggered or at once), restart all",
    "restart_all": "SIGTERM every node (a clean stop), wait for the exits, start all again",
    "stop": "SIGSTOP one node, SIGCONT it after a random pause",
    "partition": "cut the network into two groups (one node alone, or a minority/majority split), then heal",
}

GAP_S = (3.0, 7.0)  # quiet time between the heal of one fault and the next
DOWNTIME_S = {
    "kill1": (0.5, 8.0),
    "kill2": (0.5, 6.0),
    "killall": (0.5, 5.0),
    "restart_all": (0.0, 0.0),
    "stop": (1.0, 8.0),
    "partition": (2.0, 10.0),
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One planned fault. ``targets`` are node indices; ``offsets`` (seconds, one per
    target) stagger the signals of a multi-node kill; ``groups`` is the partition
    (every node in exactly one group), empty for other kinds."""

    index: int
    kind: str
    at: float
    downtime: float
    targets: tuple[int, ...]
    offsets: tuple[float, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()

    def describe(self) -> str:
        who = ",".join(str(t) for t in self.targets)
        if self.kind == "partition":
            split = "|".join(",".join(str(i) for i in g) for g in self.groups)
            return f"partition {split} for {self.downtime:.1f}s"
        if self.kind == "restart_all":
            return "restart_all (SIGTERM, start)"
        verb = "SIGSTOP" if self.kind == "stop" else "SIGKILL"
        stagger = f" staggered up to {max(self.offsets):.2f}s" if self.offsets and max(self.offsets) > 0 else ""
        return f"{self.kind}: {verb} node {who}{stagger}, {self.downtime:.1f}s down"

    def to_json(self) -> dict:
        return {"index": self.index, "kind": self.kind, "at": round(self.at, 3), "downtime": round(self.downtime, 3),
                "targets": list(self.targets), "offsets": [round(o, 3) for o in self.offsets],
                "groups": [list(g) for g in self.groups]}


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"stop,kill1"`` -> ("kill1", "stop"); ``"all"`` -> every kind. Always in the order
    of KINDS, so the order given does not change the schedule. Raises ValueError."""
    if text.strip() == "all":
        return KINDS
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)


def make_schedule(seed: int, nodes: int, duration: float, kinds: tuple[str, ...]) -> list[Fault]:
    """Faults that fit in ``duration`` seconds (each ends, healed, before it).
    ``kinds`` in the order of KINDS (:func:`parse_kinds` gives them so)."""
    if nodes < 2 and any(k in kinds for k in ("kill2", "partition")):
        kinds = tuple(k for k in kinds if k not in ("kill2", "partition"))
    rng = random.Random(seed)
    faults: list[Fault] = []
    deck: list[str] = []
    t = rng.uniform(*GAP_S)
    while kinds:
        if not deck:
            deck = list(kinds)
            rng.shuffle(deck)
        kind = deck.pop()
        downtime = round(rng.uniform(*DOWNTIME_S[kind]), 3)
        fault = _plan(rng, len(faults), kind, round(t, 3), downtime, nodes)
        if fault.at + fault.downtime + (max(fault.offsets) if fault.offsets else 0) > duration:
            break
        faults.append(fault)
        t = fault.at + fault.downtime + (max(fault.offsets) if fault.offsets else 0) + rng.uniform(*GAP_S)
    return faults


def _plan(rng: random.Random, index: int, kind: str, at: float, downtime: float, nodes: int) -> Fault:
    everyone = tuple(range(nodes))
    if kind in ("kill1", "stop"):
        return Fault(index, kind, at, downtime, (rng.randrange(nodes),), (0.0,))
    if kind in ("kill2", "killall"):
        targets = tuple(sorted(rng.sample(everyone, 2))) if kind == "kill2" else everyone
        if rng.random() < 0.5:  # all at one instant
            offsets = tuple(0.0 for _ in targets)
        else:  # staggered: the survivors see the first go down before the next
            offsets = tuple(round(rng.uniform(0.0, 1.0), 3) for _ in targets)
        return Fault(index, kind, at, downtime, targets, offsets)
    if kind == "restart_all":
        return Fault(index, kind, at, downtime, everyone)
    if kind == "partition":
        size = rng.randint(1, nodes // 2)  # 1 = one node alone; nodes/2 = an even split (no side has a quorum)
        minority = tuple(sorted(rng.sample(everyone, size)))
        rest = tuple(i for i in everyone if i not in minority)
        return Fault(index, kind, at, downtime, minority, (), (minority, rest))
    raise ValueError(f"unknown fault kind {kind!r}")
