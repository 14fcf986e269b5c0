"""Keeping a big, long-lived ledger state out of the cyclic garbage collector's walks."""

from __future__ import annotations

import gc

from .store import ChainReader

FREEZE_MIN_SUBJECTS = 10_000


def _freeze_alive() -> None:
    """Collect, then freeze what is left: no garbage cycle is ever frozen (it would never
    be freed); refcounting still frees frozen objects that are dropped."""
    gc.collect()
    gc.freeze()


def freeze_state_objects(store: ChainReader) -> bool:
    """Take the objects alive now — the state just loaded or synced — out of the cyclic GC.

    A big state is hundreds of thousands of long-lived objects (65,000 subjects: ~540,000)
    holding no reference cycles; a full collection walked them all on the trio thread
    (0.5 s on a busy 2-core machine, every few thousand requests). Frozen, they are
    skipped (:func:`_freeze_alive`); small states (tests build many nodes per process) are
    left alone. Returns whether it froze. (docs/PERFORMANCE.md, "A million records")"""
    if store.state_size() >= FREEZE_MIN_SUBJECTS:
        _freeze_alive()
        return True
    return False


FREEZE_EVERY_RECORDS = 20_000


class GrowthFreezer:
    """Freezes again each time ``every`` more records have been synced.

    A long sync builds new long-lived state objects that every full collection walks, all
    of them, each time: during a 200,000-record sync 11 full collections took 5 of its 32 s
    on the trio thread. Frozen in steps, a full collection walks only what came since the
    last step, and each step's own collection is as small. Whatever the state's size: a
    fresh observer syncing 100,000 records of 100 branches (6,530 subjects) paused
    115-166 ms in each full collection, walking the state, the node's own objects and
    the ranges in flight; 56-77 ms with the steps (docs/PERFORMANCE.md, "A syncing
    node's pauses": the ranges in flight are most of what is left). Only while
    catching up: a freeze also keeps whatever else is alive then (connections, tasks) from
    ever being collected as part of a cycle, so a node that froze every so many records for
    ever would slowly leak the cyclic garbage of its connection churn; a sync is bounded.
    (docs/PERFORMANCE.md, "Two things the GIL hid")"""

    def __init__(self, every: int = FREEZE_EVERY_RECORDS):
        self.every = every
        self.freezes = 0
        self._since = 0  # records synced since the last step

    def synced(self, records: int) -> None:
        self._since += records
        if self._since >= self.every:
            self._since = 0
            _freeze_alive()
            self.freezes += 1
