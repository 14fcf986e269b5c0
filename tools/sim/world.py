"""What the simulated world's parts share: the chain id, the node's own timings as the
simulator plays them, the kinds of entries on the event heap, and what the simulator keeps
of each node (:class:`SimNode`) — for tools/sim/engine.py and its mixins."""

from __future__ import annotations

from protocol.consensus import ConsensusState
from protocol.votes import CommitCertificate, Vote

CHAIN_ID = "branchnet-sim"
GOSSIP_MS = 1000  # the outbox's first look at a stuck height
MAX_BACKOFF_MS = 8000  # the node's outbox: summaries after 1, 2, 4, 8 s of a stuck height
SYNC_STALL_MS = 1500  # a node that hears of a later height after this long at its own asks to sync
FETCH_RETRY_MS = 300  # a block fetch that found no holder is retried after this

# heap entry kinds
_MSG, _EVENT, _TICK, _CRASH, _RESTART, _PARTITION, _SYNC, _HEAL, _FETCH, _GATE, _CRASH_ALL, _RESTART_ALL, _WORK, _IDLE = range(14)


class SimNode:
    __slots__ = (
        "idx", "key", "bid", "mode", "state", "alive", "inc", "signer", "committed", "top",
        "sent", "sent_height", "last_precommit", "mark", "syncing", "height_started",
        "have", "wal_blocks", "waiting_for", "help_wait", "answered", "signed_history", "gov", "evidence_pool",
    )

    def __init__(self, idx: int, key, mode: str):
        self.idx = idx
        self.key = key
        self.bid = key.branch_id
        self.mode = mode  # "honest", "equivocate", "random", "silent"
        self.state: ConsensusState | None = None
        self.alive = True
        self.inc = 0
        self.signer = None  # persisted SignerState
        self.committed: dict[int, tuple[bytes, CommitCertificate]] = {}
        self.top = 0
        self.sent: list = []
        self.sent_height = 0
        self.last_precommit: Vote | None = None
        self.mark = None
        self.syncing = False
        self.height_started = 0
        self.have: set[bytes] = set()  # blocks in memory (candidates)
        self.wal_blocks: set[bytes] = set()  # blocks in the consensus WAL (survive a crash)
        self.waiting_for: int | None = None  # the next height, while the gate holds it
        self.help_wait = GOSSIP_MS  # the outbox's backoff while a height stays stuck
        self.answered: dict[int, int] = {}  # peer idx -> when we last answered its summary
        self.signed_history: list = []  # own messages of the signer's height, in the WAL
        self.gov: list = []  # governance: GovState after each committed height (index 0: genesis)
        self.evidence_pool: dict[bytes, int] = {}  # validator this node holds evidence against -> its lowest height
