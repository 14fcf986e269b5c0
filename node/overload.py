"""Admission control: refuse work the network cannot finish in time, instead of queueing it.

Offered more records than the validators can commit, a node that accepts them
all only makes finality grow without bound (9 s, then 22 s, at 1.25-1.6x
capacity in the benchmark). :class:`AdmissionControl` keeps the backlog of
records waiting (the mempool) below what commits within ``target_ms`` at the
recent commit rate; beyond that, local submissions are refused with 503 and
``Retry-After`` (counted as ``rejected{source="api", reason="overloaded"}``).

The rate is records committed per second over the last ``window_s`` seconds;
``min_backlog`` records are always admitted, so an idle network (rate 0) takes
a burst and learns its rate from it.
"""

from __future__ import annotations

import math
from collections import deque


class Overloaded(Exception):
    """The backlog already takes longer than the finality target to commit; retry later."""

    reason = "overloaded"

    def __init__(self, backlog: int, limit: int, retry_after_s: int):
        super().__init__(f"{backlog} records are waiting, more than commit within the finality target ({limit}); "
                         f"retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class AdmissionControl:
    def __init__(self, *, target_ms: int = 2000, min_backlog: int = 1000, window_s: float = 10.0):
        self.target_ms = target_ms
        self.min_backlog = min_backlog
        self.window_s = window_s
        self._commits: deque[tuple[float, int]] = deque()  # (time, records) of recent blocks
        self.refused = 0

    def committed(self, records: int, now: float) -> None:
        """A block with ``records`` records committed at ``now`` (trio time, seconds)."""
        self._commits.append((now, records))
        while self._commits and self._commits[0][0] < now - self.window_s:
            self._commits.popleft()

    def rate(self, now: float) -> float:
        """Records committed per second over the window."""
        while self._commits and self._commits[0][0] < now - self.window_s:
            self._commits.popleft()
        if not self._commits:
            return 0.0
        span = max(now - self._commits[0][0], 1.0)
        return sum(n for _, n in self._commits) / span

    def limit(self, now: float) -> int:
        return max(self.min_backlog, int(self.rate(now) * self.target_ms / 1000))

    def admit(self, backlog: int, now: float) -> None:
        """Raise Overloaded unless one more record fits the backlog limit."""
        limit = self.limit(now)
        if backlog >= limit:
            self.refused += 1
            rate = self.rate(now)
            wait = math.ceil((backlog - limit + 1) / rate) if rate > 0 else 1
            raise Overloaded(backlog, limit, min(max(wait, 1), 30))
