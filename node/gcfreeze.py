"""Keeping a big, long-lived ledger state out of the cyclic garbage collector's walks."""

from __future__ import annotations

import gc

from .store import ChainReader

FREEZE_MIN_SUBJECTS = 10_000


def freeze_state_objects(store: ChainReader) -> None:
    """Take the objects alive now — the state just loaded or synced — out of the cyclic GC.

    A big state is hundreds of thousands of long-lived objects (65,000 subjects: ~540,000)
    holding no reference cycles; a full collection walked them all on the trio thread
    (0.5 s on a busy 2-core machine, every few thousand requests). Frozen, they are
    skipped; refcounting still frees what the state drops. Collected first, so no garbage
    cycle is frozen; small states (tests build many nodes per process) are left alone.
    (docs/PERFORMANCE.md, "A million records")"""
    if store.state_size() >= FREEZE_MIN_SUBJECTS:
        gc.collect()
        gc.freeze()
