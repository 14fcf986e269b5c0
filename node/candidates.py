"""Proposed blocks that are not committed yet, and what the node knows of each.

A block enters when we build it, when it arrives inside a proposal, or when
it is fetched by hash. Consensus asks for its validity (:class:`Candidate`
caches the verdict and the state transaction, so committing it re-checks
nothing); the sync server hands candidates (and their records) to peers that
fetch a proposal's block. Bounded: the oldest entries go first, and every
entry at or below a committed height is dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable

from protocol.blocks import Block
from protocol.ledger import StateTransaction

MAX_CANDIDATES = 64


@dataclass(slots=True)
class Candidate:
    block: Block
    verified: set[bytes] = field(default_factory=set)  # record hashes whose signatures were checked
    valid: bool | None = None  # the paper's valid(v), once checked against the state at block.height - 1
    tx: StateTransaction | None = None  # the checked block's state change, ready to commit


class CandidateBlocks:
    def __init__(self, limit: int = MAX_CANDIDATES):
        self.limit = limit
        self._by_hash: OrderedDict[bytes, Candidate] = OrderedDict()
        self._pinned: set[bytes] = set()  # blocks we signed for: never evicted, only pruned

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._by_hash

    def __len__(self) -> int:
        return len(self._by_hash)

    def get(self, block_hash: bytes) -> Candidate | None:
        return self._by_hash.get(block_hash)

    def add(self, block: Block, verified: Iterable[bytes] = ()) -> Candidate:
        """The candidate for ``block`` (new or known), with ``verified`` added to it."""
        cand = self._by_hash.get(block.hash)
        if cand is None:
            cand = self._by_hash[block.hash] = Candidate(block)
            if len(self._by_hash) > self.limit:
                for h in [h for h in self._by_hash if h not in self._pinned][: len(self._by_hash) - self.limit]:
                    del self._by_hash[h]  # the oldest unpinned ones
        cand.verified.update(verified)
        return cand

    def pin(self, block_hash: bytes) -> None:
        """Keep this candidate until its height is committed (we signed for it)."""
        if block_hash in self._by_hash:
            self._pinned.add(block_hash)

    def prune(self, committed_height: int) -> None:
        """Forget every candidate at or below ``committed_height``."""
        for h in [h for h, c in self._by_hash.items() if c.block.height <= committed_height]:
            del self._by_hash[h]
            self._pinned.discard(h)

    def raw_records(self, wanted: set[bytes]) -> dict[bytes, bytes]:
        """hash -> record bytes for the records of ``wanted`` that some candidate holds."""
        found: dict[bytes, bytes] = {}
        for cand in list(self._by_hash.values()):
            for r in cand.block.records:
                if r.hash in wanted:
                    found.setdefault(r.hash, r.raw)
        return found
