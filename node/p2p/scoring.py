"""Peer scoring: misbehaviour points per peer, decaying over time, and timed bans.

Pure bookkeeping, in the spirit of gossipsub v1.1's peer score and CometBFT's
``StopPeerForError``: every fault a peer commits adds the points of its
``reason`` (:data:`PENALTIES`); points halve every ``half_life`` seconds; a
peer whose points reach ``threshold`` is banned for ``ban_seconds`` (its points
are then cleared, so a ban is not extended by the faults that caused it).
What a ban *does* (disconnect, refuse, drop its gossip) is the transport's job
(``faults.py``, ``host.py``, ``network.py``); this module only keeps scores.

Time is passed in (``now``, seconds on any monotonic clock), nothing here
sleeps, reads a clock or does I/O. Nothing here raises on any input.

Penalties are set so that faults no honest peer commits ban quickly (five
malformed messages within a minute), while faults an honest peer can commit
now and then (a message that is invalid only against our state: another
validator set, a record another node could not yet see) need a sustained
stream. Reasons not in the table cost :data:`DEFAULT_PENALTY`.
"""

from __future__ import annotations

from dataclasses import dataclass

# points per fault; a peer at THRESHOLD points is banned
THRESHOLD = 100.0
PENALTIES: dict[str, float] = {
    "malformed": 20.0,        # bytes that do not decode: no honest peer sends them
    "bad_signature": 20.0,    # a signature that does not verify
    "protocol_violation": 20.0,  # frame or message breaks the wire rules (kind, size, order)
    "oversize": 20.0,
    "flood": 10.0,            # over a per-peer bound (subscriptions, control entries, streams)
    "invalid": 5.0,           # decodes, but breaks a rule (may depend on our state)
    "unsupported": 1.0,       # asks for what we do not serve
}
DEFAULT_PENALTY = 10.0
DEFAULT_HALF_LIFE = 60.0
DEFAULT_BAN_SECONDS = 600.0
MAX_TRACKED_PEERS = 4096


@dataclass(frozen=True, slots=True)
class Ban:
    """``peer`` is banned until ``until`` (the caller's clock), for ``reason`` (the last fault)."""

    peer: str
    until: float
    reason: str


@dataclass(slots=True)
class _Score:
    points: float
    at: float


class PeerScores:
    """Misbehaviour points and bans by peer id (see the module docstring)."""

    def __init__(self, *, threshold: float = THRESHOLD, half_life: float = DEFAULT_HALF_LIFE,
                 ban_seconds: float = DEFAULT_BAN_SECONDS, penalties: dict[str, float] | None = None,
                 default_penalty: float = DEFAULT_PENALTY, max_tracked: int = MAX_TRACKED_PEERS) -> None:
        self.threshold = threshold
        self.half_life = half_life
        self.ban_seconds = ban_seconds
        self.penalties = dict(PENALTIES if penalties is None else penalties)
        self.default_penalty = default_penalty
        self.max_tracked = max_tracked
        self._scores: dict[str, _Score] = {}
        self._bans: dict[str, float] = {}  # peer -> until
        self.bans_total = 0
        self.penalties_total: dict[str, int] = {}

    def penalty_of(self, reason: str) -> float:
        return self.penalties.get(reason, self.default_penalty)

    def penalize(self, peer: str, reason: str, now: float) -> Ban | None:
        """Add the points of ``reason`` to ``peer``; return the Ban if this fault banned it.

        A peer already banned gets no new ban (nor points) until it expires.
        """
        self.penalties_total[reason] = self.penalties_total.get(reason, 0) + 1
        if self.is_banned(peer, now):
            return None
        points = self.score(peer, now) + self.penalty_of(reason)
        if points >= self.threshold:
            self._scores.pop(peer, None)
            until = now + self.ban_seconds
            self._bans[peer] = until
            self.bans_total += 1
            return Ban(peer, until, reason)
        if points > 0:
            if peer not in self._scores and len(self._scores) >= self.max_tracked:
                self._forget_lowest(now)
            self._scores[peer] = _Score(points, now)
        return None

    def score(self, peer: str, now: float) -> float:
        """``peer``'s points now (after decay); 0 for a peer never penalised."""
        entry = self._scores.get(peer)
        if entry is None:
            return 0.0
        elapsed = max(0.0, now - entry.at)
        return entry.points * 0.5 ** (elapsed / self.half_life) if self.half_life > 0 else entry.points

    def banned_until(self, peer: str, now: float) -> float | None:
        until = self._bans.get(peer)
        if until is None:
            return None
        if until <= now:
            del self._bans[peer]
            return None
        return until

    def is_banned(self, peer: str, now: float) -> bool:
        return self.banned_until(peer, now) is not None

    def banned(self, now: float) -> dict[str, float]:
        """Peers banned at ``now`` -> until when."""
        for peer in [p for p, until in self._bans.items() if until <= now]:
            del self._bans[peer]
        return dict(self._bans)

    def unban(self, peer: str) -> None:
        self._bans.pop(peer, None)
        self._scores.pop(peer, None)

    def _forget_lowest(self, now: float) -> None:
        """Make room: forget the peer with the fewest points (decayed)."""
        lowest = min(self._scores, key=lambda p: self.score(p, now))
        del self._scores[lowest]

    def statistics(self, now: float) -> dict[str, object]:
        return {"bans_total": self.bans_total, "banned": len(self.banned(now)),
                "tracked": len(self._scores), "penalties": dict(self.penalties_total)}
