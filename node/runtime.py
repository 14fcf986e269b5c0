"""What the node needs from the world besides trio's clock: wall time and worker threads.

Relative time (timeouts, intervals, retries) always comes from trio's clock,
so tests can run nodes on ``trio.testing.MockClock``. Two things do not:

* **wall time** (block header times, the clock-drift check), and
* **worker threads** (signature checks, SQLite writes and fsyncs). Under a
  MockClock with ``autojump_threshold=0`` a task waiting on a thread counts as
  idle, so virtual time would jump past every timeout while a thread works.

:class:`Runtime` bundles both; each node gets one. :data:`REAL` is the real
world; :func:`virtual` derives wall time from trio's clock and runs thread
work inline, for nodes on a MockClock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import trio

T = TypeVar("T")


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Runtime:
    wall_ms: Callable[[], int] = field(default=_wall_ms)
    threads: bool = True  # False: run "thread" work inline on the trio thread

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (or inline, with a checkpoint first)."""
        if self.threads:
            return await trio.to_thread.run_sync(fn, *args)
        await trio.lowlevel.checkpoint()
        return fn(*args)


REAL = Runtime()


def virtual(epoch_ms: int) -> Runtime:
    """Wall time = ``epoch_ms`` + trio's clock; no threads (for MockClock tests)."""
    return Runtime(wall_ms=lambda: epoch_ms + int(trio.current_time() * 1000), threads=False)
