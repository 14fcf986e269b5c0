"""Weighted round-robin proposer selection (CometBFT's proposer priority).

Each step every validator's priority grows by its power; the highest priority
proposes (ties: lowest branch id, i.e. first in the set's order) and pays back
the total power. Starting from all-zero priorities the sequence is periodic
with period ``total_power`` and every validator proposes exactly ``power``
times per period (smooth weighted round-robin), so

    proposer(valset, height, round) = sequence[(height + round) % total_power]

is a pure function of the validator set and (height, round): every node agrees.
Unlike CometBFT, priorities are not carried across validator-set changes; a new
set simply starts its own sequence.

Cost: one O(n) step per new index, cached per validator set; heights only grow,
so a node pays O(n) per height. Asking for an index far below the cached
window recomputes from zero.
"""

from __future__ import annotations

from ..validators import ValidatorSet

_WINDOW = 4096
_MAX_SCHEDULES = 16


class ProposerSchedule:
    __slots__ = ("_ids", "_powers", "_total", "_prio", "_next", "_window")

    def __init__(self, valset: ValidatorSet):
        self._ids = tuple(v.branch_id for v in valset.validators)
        self._powers = tuple(v.power for v in valset.validators)
        self._total = valset.total_power
        self._reset()

    def _reset(self) -> None:
        self._prio = [0] * len(self._ids)
        self._next = 0
        self._window: dict[int, bytes] = {}

    def at(self, index: int) -> bytes:
        index %= self._total
        hit = self._window.get(index)
        if hit is not None:
            return hit
        if index < self._next:
            self._reset()
        prio, powers, total = self._prio, self._powers, self._total
        n = len(prio)
        while self._next <= index:
            best = 0
            best_prio = None
            for i in range(n):
                p = prio[i] + powers[i]
                prio[i] = p
                if best_prio is None or p > best_prio:
                    best, best_prio = i, p
            prio[best] -= total
            self._window[self._next] = self._ids[best]
            self._window.pop(self._next - _WINDOW, None)
            self._next += 1
        return self._window[index]


_SCHEDULES: dict[bytes, ProposerSchedule] = {}


def proposer(valset: ValidatorSet, height: int, round: int) -> bytes:
    """Branch id of the proposer of (height, round) under ``valset``."""
    schedule = _SCHEDULES.get(valset.hash)
    if schedule is None:
        if len(_SCHEDULES) >= _MAX_SCHEDULES:
            _SCHEDULES.clear()
        schedule = _SCHEDULES[valset.hash] = ProposerSchedule(valset)
    return schedule.at(height + round)
