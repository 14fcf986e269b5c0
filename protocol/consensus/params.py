"""Consensus parameters: timeouts and memory bounds (all integers, milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LocalProtocolError
from ..genesis import ChainParams


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Timeouts grow linearly with the round: ``base + round * delta`` ms.

    ``max_round_lead``: votes/proposals more than this many rounds ahead of our
    round are dropped (``round_too_far``); gossip re-sends them later.
    ``max_height_lead``: messages for heights up to ``height + max_height_lead``
    are buffered and replayed on :class:`StartHeight`; further ones are dropped.
    ``max_buffered_per_height``: cap of that buffer per height (``buffer_full``).
    """

    timeout_propose_ms: int = 1000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 500
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_precommit_delta_ms: int = 500
    max_round_lead: int = 64
    max_height_lead: int = 2
    max_buffered_per_height: int = 4096

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise LocalProtocolError(f"{name} must be a non-negative integer", field=name)

    @classmethod
    def of_chain(cls, chain: ChainParams) -> "ConsensusParams":
        """The timeouts a genesis file sets (one ``timeout_delta_ms`` for all three steps).
        The defaults above are ``ChainParams``'s defaults, read the same way."""
        return cls(
            timeout_propose_ms=chain.timeout_propose_ms, timeout_propose_delta_ms=chain.timeout_delta_ms,
            timeout_prevote_ms=chain.timeout_prevote_ms, timeout_prevote_delta_ms=chain.timeout_delta_ms,
            timeout_precommit_ms=chain.timeout_precommit_ms, timeout_precommit_delta_ms=chain.timeout_delta_ms,
        )

    def timeout_propose(self, round: int) -> int:
        return self.timeout_propose_ms + round * self.timeout_propose_delta_ms

    def timeout_prevote(self, round: int) -> int:
        return self.timeout_prevote_ms + round * self.timeout_prevote_delta_ms

    def timeout_precommit(self, round: int) -> int:
        return self.timeout_precommit_ms + round * self.timeout_precommit_delta_ms
