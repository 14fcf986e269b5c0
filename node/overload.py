"""Admission control: refuse work the network cannot finish in time, instead of queueing it.

Offered more records than the validators can commit, a node that accepts them
all only makes finality grow without bound (9 s, then 22 s, at 1.25-1.6x
capacity in the benchmark). :class:`AdmissionControl` bounds the backlog of
records waiting (the mempool) by a limit; beyond it, local submissions are
refused with 503 and ``Retry-After`` (counted as
``rejected{source="api", reason="overloaded"}``).

The limit steers itself by what it is for: the finality of the records this
node accepted. Each accepted record remembers when it was accepted and how
many records were waiting then; when it commits, its finality says how long
that backlog took to clear:

* a record admitted since the last cut that took longer than ``LATE`` (half) of
  the target means the limit is too long: it is cut to the backlog that record
  would have cleared in ``LATE`` of the target (proportionally: ``b`` records
  took ``f`` seconds, so ``b * LATE * target / f`` take ``LATE * target``);
* while the limit is refusing work and our records commit within ``EARLY`` of
  the target, it grows by an eighth (additive increase, as in TCP).

Half, not three quarters: the cut reacts only once a late record commits, and
records admitted meanwhile run later still. With 3/4, a 4-validator devnet
offered 2x its capacity through the API kept p99 at 2.3 s; with 1/2, 1.5 s at
97 % of the peak committed (docs/RELIABILITY.md, "Overload").

A capacity estimate is never needed, so it cannot be wrong: an idle network
takes a burst of ``limit`` records (1,000 at first), a CPU-starved one settles
where its finality meets the target. ``min_limit`` records are always admitted,
so the node keeps learning. Pure and clock-free: time is passed in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

MAX_TRACKED = 65_536  # accepted records awaiting commit; past it the oldest is forgotten (it may never commit)
LATE = 0.5  # share of the target above which a commit cuts the limit (headroom for the tail)
EARLY = 0.35  # share of the target below which a refusing limit may grow


class Overloaded(Exception):
    """The backlog already takes longer than the finality target to commit; retry later."""

    reason = "overloaded"

    def __init__(self, backlog: int, limit: int, retry_after_s: int):
        super().__init__(f"{backlog} records are waiting, more than commit within the finality target ({limit}); "
                         f"retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class AdmissionControl:
    def __init__(self, *, target_ms: int = 2000, initial_limit: int = 1000, min_limit: int = 50,
                 max_limit: int = 50_000, window_s: float = 10.0):
        self.target_s = target_ms / 1000
        self.limit = initial_limit  # records that may wait at once; local submissions beyond it are refused
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.window_s = window_s
        self._commits: deque[tuple[float, int]] = deque()  # (time, records) of recent blocks, for Retry-After
        self._window_records = 0  # the sum of their records (a sync commits thousands of blocks a second)
        self._accepted: dict[bytes, tuple[float, int]] = {}  # our uncommitted records: hash -> (when, backlog then)
        self._cut_at = -math.inf  # when the limit was last cut
        self._refusing = False  # refused a submission since the last commit of ours
        self.refused = 0
        self.cuts = 0

    # ------------------------------------------------------------ the node's calls
    def admit(self, backlog: int, now: float) -> None:
        """Raise Overloaded unless one more record fits the limit."""
        if backlog < self.limit:
            return
        self.refused += 1
        self._refusing = True
        rate = self.rate(now)
        wait = math.ceil((backlog - self.limit + 1) / rate) if rate > 0 else 1
        raise Overloaded(backlog, self.limit, min(max(wait, 1), 30))

    def accepted(self, record_hash: bytes, backlog: int, now: float) -> None:
        """A local submission was accepted at ``now`` with ``backlog`` records waiting before it."""
        if len(self._accepted) >= MAX_TRACKED:  # records that never commit (superseded, rejected) are never popped
            del self._accepted[next(iter(self._accepted))]  # the oldest goes: no finality sample for it
        self._accepted[record_hash] = (now, backlog)

    def committed(self, record_hashes: Iterable[bytes], now: float) -> list[float]:
        """A block with these records committed at ``now``. Returns the finality (seconds)
        of those this node accepted, and adjusts the limit by them."""
        n, samples = 0, []
        for h in record_hashes:
            n += 1
            seen = self._accepted.pop(h, None)
            if seen is not None:
                samples.append((seen[0], seen[1], now - seen[0]))
        self._commits.append((now, n))
        self._window_records += n
        self.rate(now)  # drops what left the window
        if samples:
            self._steer(samples, now)
        return [f for _, _, f in samples]

    # ------------------------------------------------------------ the control law
    def _steer(self, samples: list[tuple[float, int, float]], now: float) -> None:
        late = [(backlog, f) for t, backlog, f in samples if f > LATE * self.target_s and t > self._cut_at]
        if late:
            backlog, f = max(late, key=lambda s: s[1])
            fits = int((backlog + 1) * LATE * self.target_s / f)
            self.limit = max(self.min_limit, min(self.limit, fits))
            self._cut_at = now
            self.cuts += 1
        elif self._refusing and max(f for _, _, f in samples) < EARLY * self.target_s:
            self.limit = min(self.max_limit, self.limit + max(self.min_limit, self.limit // 8))
        self._refusing = False

    def rate(self, now: float) -> float:
        """Records committed per second over the window."""
        while self._commits and self._commits[0][0] < now - self.window_s:
            self._window_records -= self._commits.popleft()[1]
        if not self._commits:
            return 0.0
        span = max(now - self._commits[0][0], 1.0)
        return self._window_records / span
