"""What the simulated world's parts share: the chain id, the node's own timings as the
simulator plays them, and the kinds of entries on the event heap (tools/sim/engine.py)."""

CHAIN_ID = "branchnet-sim"
GOSSIP_MS = 1000  # the outbox's first look at a stuck height
MAX_BACKOFF_MS = 8000  # the node's outbox: summaries after 1, 2, 4, 8 s of a stuck height
SYNC_STALL_MS = 1500  # a node that hears of a later height after this long at its own asks to sync
FETCH_RETRY_MS = 300  # a block fetch that found no holder is retried after this

# heap entry kinds
_MSG, _EVENT, _TICK, _CRASH, _RESTART, _PARTITION, _SYNC, _HEAL, _FETCH, _GATE, _CRASH_ALL, _RESTART_ALL, _WORK, _IDLE = range(14)
