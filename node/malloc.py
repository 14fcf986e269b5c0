"""One malloc arena for the whole node process (glibc).

glibc gives a thread that allocates while another holds the main arena an arena
of its own (up to eight per core), and an arena keeps the memory it once held
for as long as anything allocated in it lives. A syncing node allocates on
several threads (range decoding, signature checks, the store's writer), and
what the decoding thread allocates lives on in the ledger state, so the worker
arenas stay spread out; a validator under load allocates on its verifying
threads and its store writer as well. The node's threads mostly take turns on
the GIL anyway, and one arena measured better on every count
(docs/PERFORMANCE.md, "One malloc arena"): four validators at 3,000 records/s
offered committed 2,488–2,553 instead of 2,230–2,298 records/s with 243–251
instead of 270 MB peak RSS; an observer syncing the million-record history
held 218.5 instead of 224 MB, at the same speed. An operator's own
``MALLOC_ARENA_MAX`` wins.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

log = logging.getLogger("branchnet.node")
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def _libc(name: str) -> Any:
    """The process's own C library's function ``name``, or None (not Linux, or not there)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def use_one_arena() -> bool:
    """Limit glibc to one malloc arena; call before the process starts threads.
    Returns whether the limit was set (False: not glibc, or the operator set one)."""
    mallopt = _libc("mallopt")
    if mallopt is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    ok = mallopt(M_ARENA_MAX, 1) == 1
    if not ok:
        log.debug("mallopt(M_ARENA_MAX, 1) refused: keeping the C library's malloc arenas")
    return ok


def give_back_free_memory() -> bool:
    """Return the heap's free pages to the system (glibc ``malloc_trim(0)``): after a long
    sync, whose transient buffers (ranges of blocks in flight, their decoding) were freed
    between the state's long-lived allocations, where glibc keeps them. Takes about a
    millisecond. Returns whether glibc released anything (False elsewhere)."""
    trim = _libc("malloc_trim")
    return trim is not None and trim(0) == 1
