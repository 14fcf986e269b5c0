"""GossipSub, configured so that it does not silently lose data by default.

Settings (each fixes a loss or a hole measured in shared/LIBP2P_NOTES.md):

- ``spam_protection_enabled=False``: the default 10 msg/s per forwarder and
  topic (counting our own publishes) silently stops forwarding;
- ``heartbeat_interval=1`` (default 120 s) so meshes form and repair quickly;
- ``adaptive_gossip_enabled=False``: upstream's "network health" score (updated
  every 30 s; mesh degree below target, mesh churn) sets the heartbeat interval
  to 30 s when it is under 0.4 and to 60 s when under 0.7, bounds made for its
  120 s default: a 1 s heartbeat became 30-60 s after the first half minute on
  any node whose mesh was not full (an observer with two links, a validator
  among many), and with it mesh repair and lazy gossip (IHAVE) nearly stopped.
  At 16 validators + 48 observers, 15-17 observers then got no block
  announcement and saw blocks only at their sync's quiet polls (every 10 s):
  the commit tail of bench_scale (docs/PERFORMANCE.md);
- ``strict_signing=True``: every message is signed; the sender handed to
  validators and consumers is the authenticated origin ``ID(msg.from_id)``;
- ``validation_cache_ttl=0``: validators depend on ledger state and must be
  re-run, not answered from a 300 s cache;
- content-addressed message ids (sha256 of the data);
- mesh degree 6 (low 4, high 12), fine for 4-31 nodes; eclipse (IP
  diversity) protection off: peers are allowlisted and share an IP in tests;
- backpressure: ``publish`` waits while any per-peer outbound queue (32 slots,
  overflow silently dropped) holds >= 24 RPCs, bounded by a timeout;
- no thread: the seen-message cache's sweeper thread (leaked by every
  Pubsub) is stopped at construction and replaced by a trio task;
- hardened against its peers (``pubsub.py``: every RPC read, checked and
  dispatched under guard; writes to one stream serialised; no peer
  exchange); rejections go to the transport's ``PeerFaults``;
- one reader task per topic that only calls ``get()`` and hands
  ``(sender_peer_id, data)`` to a bounded channel; it drops duplicates by
  message id (copies arriving together can be delivered twice) and counts
  what it drops when the consumer falls behind.

Gossip stays best-effort (relays have no backpressure); anything that must
arrive is fetched over request/response when missing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import trio

from .errors import P2PError
from .faults import PeerFaults

logger = logging.getLogger("node.p2p.gossip")

Validator = Callable[[str, bytes], bool]

QUEUE_HIGH_WATER = 24
DEFAULT_DEGREE = (6, 4, 12)


def message_id(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _msg_id(msg: Any) -> bytes:
    return hashlib.sha256(msg.data).digest()


@dataclass(slots=True)
class GossipStats:
    published: int = 0
    received: int = 0                # handed to a subscriber channel
    rejected_by_validator: int = 0
    validator_errors: int = 0        # validator raised (counted as rejected too)
    duplicates: int = 0              # same message id delivered again; dropped
    dropped: int = 0                 # subscriber channel full; dropped
    backpressure_waits: int = 0      # publishes that had to wait for peer queues
    received_by_topic: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class _RecentIds:
    """Message ids seen in the last ``ttl`` seconds (at most ``max_size``)."""

    def __init__(self, ttl: float = 180.0, max_size: int = 65536) -> None:
        self._ids: OrderedDict[bytes, float] = OrderedDict()
        self._ttl = ttl
        self._max_size = max_size

    def add(self, key: bytes) -> bool:
        """Remember ``key``; False if it was already there (a duplicate)."""
        now = time.monotonic()
        while self._ids:
            oldest, seen = next(iter(self._ids.items()))
            if now - seen < self._ttl and len(self._ids) < self._max_size:
                break
            self._ids.popitem(last=False)
        if key in self._ids:
            return False
        self._ids[key] = now
        return True


def make_router(degree: tuple[int, int, int] = DEFAULT_DEGREE, heartbeat_interval: int = 1) -> Any:
    """The gossipsub router with the settings of the module docstring."""
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, PROTOCOL_ID_V12

    from .pubsub import HardenedGossipSub

    d, d_low, d_high = degree
    return HardenedGossipSub(
        [PROTOCOL_ID_V12, PROTOCOL_ID_V11], degree=d, degree_low=d_low, degree_high=d_high,
        heartbeat_interval=heartbeat_interval, spam_protection_enabled=False,
        eclipse_protection_enabled=False, adaptive_gossip_enabled=False,
    )


class Gossip:
    """Topic publish/subscribe over GossipSub. Run with ``nursery.start(gossip.run)``
    while the host is running.
    """

    def __init__(self, host: Any, *, degree: tuple[int, int, int] = DEFAULT_DEGREE,
                 heartbeat_interval: int = 1, publish_timeout: float = 10.0,
                 max_message_size: int = 1024 * 1024, faults: PeerFaults | None = None,
                 admits: Callable[[str], bool] = lambda peer: True) -> None:
        from .pubsub import HardenedPubsub, install_sender_record_cache

        install_sender_record_cache()
        self._host = host
        self.faults = faults or PeerFaults()
        self._router = make_router(degree, heartbeat_interval)
        self._pubsub = HardenedPubsub(
            host, self._router, faults=self.faults, admits=admits, strict_signing=True, validation_cache_ttl=0,
            msg_id_constructor=_msg_id, max_inbound_rpc_size=max_message_size + 64 * 1024,
        )
        # libp2p sweeps its seen-message cache from a thread started in
        # Pubsub(); stop it now (leaks otherwise) and sweep from a trio task.
        self._pubsub.seen_messages.stop()
        self._my_id = str(host.get_id())
        self._publish_timeout = publish_timeout
        self._max_message_size = max_message_size
        self._nursery: trio.Nursery | None = None
        self._channels: dict[str, trio.MemorySendChannel[tuple[str, bytes]]] = {}
        self.stats = GossipStats()

    @property
    def pubsub(self) -> Any:
        return self._pubsub

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.tools.anyio_service import background_trio_service

        try:
            async with background_trio_service(self._pubsub), \
                    background_trio_service(self._router), trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._sweep_seen_messages)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for channel in self._channels.values():
                channel.close()

    async def _sweep_seen_messages(self) -> None:
        seen = self._pubsub.seen_messages
        while True:
            await trio.sleep(seen.sweep_interval)
            seen._sweep()

    def set_gossip_to(self, wanted: Callable[[str, str], bool]) -> None:
        """Push and advertise (IHAVE) a topic's messages only to the peers ``wanted(topic,
        peer_id)`` admits (pubsub.py, 12). Called for every candidate of every message and
        heartbeat: keep it cheap."""
        self._router.gossip_to = wanted

    def set_validator(self, topic: str, validator: Validator) -> None:
        """Install ``validator(sender_peer_id, data) -> bool`` for ``topic`` (one per topic).

        Runs synchronously inside libp2p for every message (also our own
        publishes), so keep it cheap. Returning False or raising rejects the
        message: it is neither delivered nor forwarded, and counted.
        """
        def check(forwarder: Any, msg: Any) -> bool:
            from libp2p.peer.id import ID

            try:
                ok = bool(validator(str(ID(msg.from_id)), msg.data))
            except Exception:
                self.stats.validator_errors += 1
                logger.exception("gossip validator for %s raised", topic)
                ok = False
            if not ok:
                self.stats.rejected_by_validator += 1
            return ok

        self._pubsub.set_topic_validator(topic, check, False)

    async def subscribe(self, topic: str, *, buffer: int = 1024,
                        deliver_own: bool = False) -> trio.MemoryReceiveChannel[tuple[str, bytes]]:
        """Join ``topic``; return a channel of ``(sender_peer_id, data)``.

        A dedicated task reads libp2p's subscription and forwards into a
        channel of ``buffer`` items; if the consumer falls behind, messages are
        dropped and counted (``stats.dropped``). Our own publishes are skipped
        unless ``deliver_own``. One subscription per topic.
        """
        if self._nursery is None:
            raise RuntimeError("Gossip.subscribe called before run() started")
        if topic in self._channels:
            raise P2PError(f"already subscribed to {topic!r}")
        send, receive = trio.open_memory_channel[tuple[str, bytes]](buffer)
        self._channels[topic] = send
        subscription = await self._pubsub.subscribe(topic)
        self._nursery.start_soon(self._read_subscription, topic, subscription, send, deliver_own)
        return receive

    async def _read_subscription(self, topic: str, subscription: Any,
                                 send: trio.MemorySendChannel[tuple[str, bytes]],
                                 deliver_own: bool) -> None:
        from libp2p.peer.id import ID

        recent = _RecentIds()
        with send:
            while True:
                msg = await subscription.get()
                if not recent.add(_msg_id(msg)):
                    self.stats.duplicates += 1
                    continue
                sender = str(ID(msg.from_id))
                if sender == self._my_id and not deliver_own:
                    continue
                try:
                    send.send_nowait((sender, msg.data))
                    self.stats.received += 1
                    self.stats.received_by_topic[topic] = self.stats.received_by_topic.get(topic, 0) + 1
                except trio.WouldBlock:
                    self.stats.dropped += 1
                    logger.warning("gossip consumer of %s is behind; dropped a message", topic)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    logger.debug("gossip consumer of %s went away", topic)
                    return

    async def publish(self, topic: str, data: bytes, *, max_wait: float | None = None) -> None:
        """Sign and publish ``data`` on ``topic``.

        Waits while the outbound queue of a peer subscribed to ``topic`` is near
        full, instead of letting libp2p drop silently. With ``max_wait=None`` it
        waits up to ``publish_timeout`` and then raises ``P2PError``; with a
        number it waits at most that long and then publishes anyway (for
        latency-critical messages that are re-sent when lost: one slow peer must
        not stall everyone). Raises ``P2PError`` for oversize data.
        """
        if len(data) > self._max_message_size:
            raise P2PError(f"gossip message of {len(data)} bytes exceeds "
                           f"{self._max_message_size}")
        if max_wait is None:
            await self.wait_writable(topic)
        else:
            with trio.move_on_after(max_wait):
                await self.wait_writable(topic, raise_on_timeout=False)
        try:
            await self._pubsub.publish(topic, data)
        except OSError as exc:  # e.g. the host is closing: libp2p reads its listener's address
            raise P2PError(f"publish on {topic} failed: {exc}") from exc
        self.stats.published += 1
        await trio.sleep(0)  # let our own reader/writer tasks run

    def _congested(self, topic: str | None) -> bool:
        queues = self._pubsub.peer_queues
        if topic is None:
            return any(len(q) >= QUEUE_HIGH_WATER for q in queues.values())
        peers = self._pubsub.peer_topics.get(topic, ())
        return any(len(q) >= QUEUE_HIGH_WATER for p in peers if (q := queues.get(p)) is not None)

    async def wait_writable(self, topic: str | None = None, *, raise_on_timeout: bool = True) -> None:
        """Wait until no peer subscribed to ``topic`` (any peer if None) has a near-full queue."""
        if not self._congested(topic):
            return
        self.stats.backpressure_waits += 1
        with trio.move_on_after(self._publish_timeout) as scope:
            while self._congested(topic):
                await trio.sleep(0.001)
        if scope.cancelled_caught and raise_on_timeout:
            raise P2PError(f"gossip peer queues stayed full for {self._publish_timeout}s")

    def topic_peers(self, topic: str) -> list[str]:
        """Peers known to be subscribed to ``topic``."""
        return [str(p) for p in self._pubsub.peer_topics.get(topic, ())]

    async def wait_topic_peers(self, topic: str, n: int, timeout: float) -> None:
        with trio.fail_after(timeout):
            while len(self.topic_peers(topic)) < n:
                await trio.sleep(0.02)
