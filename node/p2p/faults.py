"""What peers did wrong: rejections counted by (protocol, reason), the peer's score, its ban.

Every inbound path of the transport reports bad input here
(:meth:`PeerFaults.report`): the pubsub reader (``pubsub.py``), the inbound
stream guard (``inbound.py``), the request server (``streams.py``), and the
node's own handlers through ``P2PNetwork.penalize`` (consensus messages,
record batches, sync requests). Rejections that name no peer (a connection that
failed the private-network key or the Noise handshake) are only counted
(:meth:`PeerFaults.count`).

A report adds the points of its *fault* class (``scoring.PENALTIES``:
``malformed``, ``bad_signature``, ``invalid``...) to the peer's score; a peer that
reaches the threshold is banned, and a ban — or a fault after which the
connection's framing cannot be trusted (``disconnect=True``) — queues the peer
for disconnection. The transport's task (``P2PNetwork``) takes peers off that
bounded queue and closes their connections; the connection gate
(``host.gated_resource_manager``) and the redial loop (``peers.py``) refuse a
banned peer until its ban expires. Sync, never blocks, never raises.
"""

from __future__ import annotations

import logging
from typing import Callable

import trio

from .scoring import Ban, PeerScores

logger = logging.getLogger("node.p2p.faults")

DISCONNECT_QUEUE = 256


class PeerFaults:
    """Counts of rejected input by (protocol, reason), peer scores, bans, and the
    queue of peers to disconnect. ``clock``: seconds, monotonic (trio's by default)."""

    def __init__(self, scores: PeerScores | None = None, *,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.scores = scores or PeerScores()
        self.clock = clock
        self.counts: dict[tuple[str, str], int] = {}
        self.disconnects_dropped = 0
        self._send, self.disconnect_requests = trio.open_memory_channel[str](DISCONNECT_QUEUE)
        self._logged: set[tuple[str, str]] = set()

    def count(self, protocol: str, reason: str) -> None:
        """Count a rejection that names no peer (or whose peer is not to be scored)."""
        key = (protocol, reason)
        self.counts[key] = self.counts.get(key, 0) + 1

    def report(self, peer: str, protocol: str, reason: str, *, fault: str = "malformed",
               disconnect: bool = False, detail: str = "") -> Ban | None:
        """``peer`` sent bad input on ``protocol``: count it by ``reason``, add the points
        of ``fault`` to its score; a ban, or ``disconnect``, queues it for disconnection.
        Returns the Ban this report caused, if any."""
        self.count(protocol, reason)
        if (protocol, reason) not in self._logged:  # one line per kind at INFO, the rest at DEBUG
            self._logged.add((protocol, reason))
            logger.info("peer %s: %s on %s (%s)%s", peer, reason, protocol, fault, f": {detail}" if detail else "")
        else:
            logger.debug("peer %s: %s on %s (%s) %s", peer, reason, protocol, fault, detail)
        ban = self.scores.penalize(peer, fault, self.clock())
        if ban is not None:
            logger.warning("banning peer %s for %.0fs after %s on %s", peer, self.scores.ban_seconds, reason, protocol)
        if ban is not None or disconnect:
            self._queue_disconnect(peer)
        return ban

    def request_disconnect(self, peer: str) -> None:
        """Queue ``peer``'s connection to be closed without blaming it (a kept link is
        redialed): the connection is broken, not the peer's input."""
        self._queue_disconnect(peer)

    def is_banned(self, peer: str) -> bool:
        return self.scores.is_banned(peer, self.clock())

    def banned(self) -> dict[str, float]:
        return self.scores.banned(self.clock())

    def _queue_disconnect(self, peer: str) -> None:
        try:
            self._send.send_nowait(peer)
        except trio.WouldBlock:
            # the gate refuses banned peers anyway; an unbanned one reconnects later
            self.disconnects_dropped += 1

    def rejections(self) -> dict[tuple[str, str], int]:
        return dict(self.counts)

    def statistics(self) -> dict[str, object]:
        stats = self.scores.statistics(self.clock())
        stats["rejected"] = {f"{p}/{r}": n for (p, r), n in sorted(self.counts.items())}
        stats["disconnects_dropped"] = self.disconnects_dropped
        return stats


def fault_of(exc: BaseException) -> str:
    """The scoring class of a node-level rejection (``protocol.errors``): bytes that
    do not decode are ``malformed``, a signature that does not verify is
    ``bad_signature``, anything else ``invalid`` (it may depend on our state)."""
    from protocol.errors import DecodeError, SignatureError

    if isinstance(exc, DecodeError):
        return "malformed"
    if isinstance(exc, SignatureError) or getattr(exc, "reason", "") == "bad_signature":
        return "bad_signature"
    return "invalid"
