"""Consensus on the node side: the I/O around :mod:`protocol.consensus`.

* :mod:`.driver` — :class:`ConsensusDriver`, the one task that owns the state
  machine and carries out its actions;
* :mod:`.outbox` — consensus messages out, per-validator queues, re-sends;
* :mod:`.proposals` — the blocks behind proposals: inline, rebuilt, fetched.

Validators only; observers run no consensus.
"""

from .driver import ConsensusDriver

__all__ = ["ConsensusDriver"]
