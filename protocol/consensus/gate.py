"""When the next height starts: the proposer's pacing, as a pure rule.

After a height commits, a validator does not start the next one at once: an
empty network would then make blocks as fast as it can. The next height
starts at the first of

* ``block_interval_ms`` after the last commit, once records are waiting;
* ``empty_block_interval_ms`` after the last commit (a heartbeat block).

A peer's message for the next height starts it at once whatever the gate
says: the network has moved on, and that is not ours to delay. The node and
the simulator both ask :meth:`HeightGate.next_start`; time is passed in
(milliseconds on any monotonic clock), nothing is read here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LocalProtocolError


@dataclass(frozen=True, slots=True)
class HeightGate:
    block_interval_ms: int = 100
    empty_block_interval_ms: int = 5000

    def __post_init__(self) -> None:
        if not 0 < self.block_interval_ms <= self.empty_block_interval_ms:
            raise LocalProtocolError("need 0 < block_interval_ms <= empty_block_interval_ms", field="gate")

    def next_start(self, *, last_commit_ms: int, pending_records: int) -> int:
        """The time (ms) at which the next height may start; at or before now: start now."""
        if pending_records > 0:
            return last_commit_ms + self.block_interval_ms
        return last_commit_ms + self.empty_block_interval_ms
