"""node/gcfreeze.py: a loaded state is frozen out of the cyclic GC only when it is big; what
a sync builds is frozen in steps of synced records, whatever the state's size."""

from __future__ import annotations

import gc

from node import gcfreeze


def test_a_big_state_is_frozen_out_of_the_cyclic_gc_and_a_small_one_is_not():
    class Sized:  # a store that says how many subjects its state holds
        def __init__(self, n):
            self.n = n

        def state_size(self):
            return self.n

    before = gc.get_freeze_count()
    try:
        gcfreeze.freeze_state_objects(Sized(gcfreeze.FREEZE_MIN_SUBJECTS - 1))
        assert gc.get_freeze_count() == before
        gcfreeze.freeze_state_objects(Sized(gcfreeze.FREEZE_MIN_SUBJECTS))
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_what_a_sync_builds_is_frozen_every_so_many_synced_records():
    freezer = gcfreeze.GrowthFreezer(every=1_000)  # whatever the state's size: what a sync churns is more than it
    before = gc.get_freeze_count()
    try:
        for _ in range(9):
            freezer.synced(100)
        assert freezer.freezes == 0 and gc.get_freeze_count() == before  # 900 records: not yet
        marker = [object()]  # an object alive across the next step
        freezer.synced(100)
        assert freezer.freezes == 1 and gc.get_freeze_count() > before
        assert not any(o is marker for o in gc.get_objects())  # frozen: no collection walks it
        for _ in range(9):
            freezer.synced(100)
        assert freezer.freezes == 1  # counted again from the step
        freezer.synced(100)
        assert freezer.freezes == 2
    finally:
        gc.unfreeze()
