"""The faults a simulation run injects before its heal time (``FAULT_KINDS`` in
tools/sim/engine.py): the network's delays, partitions scheduled, honest nodes crashed
one by one or all at once — at a random instant or just before one of them carries out
a chosen action (``CRASH_TRIGGERS``). A mixin of :class:`tools.sim.engine.Simulation`:
it shares its state (``self.rng``, ``self.faults``, the event heap through ``self.push``).
"""

from __future__ import annotations

from protocol.consensus import BroadcastVote
from protocol.votes import PREVOTE

from .world import _CRASH, _CRASH_ALL, _HEAL, _PARTITION, _RESTART, _RESTART_ALL, SimNode

CRASH_TRIGGERS = ("BroadcastProposal", "prevote", "precommit", "CommitBlock")


class Faults:
    """When messages arrive, and when nodes crash."""

    def delay(self) -> int:
        rng = self.rng
        if self.healed:
            return rng.randint(1, min(self.delay_hi, 100))
        if "delay" in self.faults and rng.random() < 0.2:
            return rng.randint(self.delay_hi, 4 * self.delay_hi)
        return rng.randint(1, self.delay_hi)

    def schedule_faults(self) -> None:
        rng, heal = self.rng, self.heal_at
        if "partition" in self.faults:
            for _ in range(rng.randint(1, 3)):
                start = rng.randint(0, heal - 500)
                groups = [rng.randint(0, 1) for _ in range(self.n)]
                self.push(start, _PARTITION, 0, 0, groups)
                self.push(rng.randint(start + 200, heal), _PARTITION, 0, 0, None)
        if "crash" in self.faults:
            for nd in rng.sample(self.honest, rng.randint(1, len(self.honest))):
                start = rng.randint(0, heal - 200)
                self.push(start, _CRASH, nd.idx, 0, None)
                self.push(rng.randint(start + 100, heal), _RESTART, nd.idx, 0, None)
        if "crash_all" in self.faults and not self._fixed_crashes:
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.5:
                    self.push(rng.randint(0, heal - 200), _CRASH_ALL, 0, 0, None)
                else:
                    self.crash_triggers.append((rng.randint(1, 4), rng.choice(CRASH_TRIGGERS)))
        self.push(heal, _HEAL, 0, 0, None)

    def crash(self, nd: SimNode) -> None:
        """Lose everything not on disk: state machine, candidates, gate, messages in flight."""
        nd.alive = False
        nd.inc += 1
        nd.state = None
        nd.have = set()

    def crash_everyone(self) -> None:
        if self.healed:
            return
        self.crashed_all += 1
        for h in self.honest:
            if h.alive:
                self.crash(h)
        self.push(self.now + self.rng.randint(100, 1000), _RESTART_ALL, 0, 0, None)

    def _triggers_crash(self, nd: SimNode, action) -> bool:
        if not self.crash_triggers or nd.mode != "honest" or self.healed:
            return False
        t = type(action)
        name = t.__name__ if t is not BroadcastVote else ("prevote" if action.vote.type == PREVOTE else "precommit")
        height = action.vote.height if t is BroadcastVote else getattr(action, "proposal", action).height
        for i, (h, what) in enumerate(self.crash_triggers):
            if what == name and height >= h:
                del self.crash_triggers[i]
                return True
        return False
