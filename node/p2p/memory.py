"""An in-memory transport: many nodes in one trio process, no sockets.

:class:`MemoryHub` joins :class:`MemoryNetwork` objects, each with the
interface of :class:`node.p2p.P2PNetwork` that the node uses (publish and
subscribe, request and response, peers, allowlist). Pass
``transport=hub.network`` to :class:`node.node.BranchNode`. Everything happens
on trio's clock, so nodes run under ``trio.testing.MockClock`` and tests do
not depend on the machine's speed.

What it models, and what it does not:

* Links: two networks are connected when one dialled the other (or holds it
  as a persistent peer), both are running, each allows the other, and the
  test has not cut the link (:meth:`MemoryHub.partition`,
  :meth:`MemoryHub.cut`). Persistent peers reconnect when a link heals.
* Gossip floods a message to every subscriber reachable over links (as
  gossipsub's relays would), once per message: identical bytes on a topic are
  delivered once per ``dedup_window`` (gossipsub's message-id cache). A
  subscriber's channel is bounded; when full the message is dropped and
  counted, as gossip drops.
* A request runs the handler in the serving node's own task group; an
  exception other than a timeout propagates there (the node crashes loudly —
  the libp2p server answers an error instead). Unreachable peers raise
  ``PeerUnavailable``, unregistered protocols ``ProtocolUnsupported`` (as libp2p's "na"), silence
  ``RequestTimeout``.
* Every delivery takes ``latency`` seconds of trio time; nothing is encrypted.
* Misbehaving peers: :meth:`MemoryNetwork.penalize` scores a peer as
  ``P2PNetwork.penalize`` does (``faults.py``); a banned peer's link is down
  (in both directions) until the ban expires.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Iterable

import trio

from protocol.keys import PrivateKey

from .errors import FrameError, PeerUnavailable, ProtocolUnsupported, RequestFailed, RequestTimeout
from .faults import PeerFaults
from .scoring import PeerScores
from .gossip import message_id
from .host import PeerAllowlist, peer_id_of
from .network import P2PConfig
from .peers import PeerBook
from .streams import RequestHandler, count_by


class MemoryHub:
    def __init__(self, *, latency: float = 0.001, dedup_window: float = 120.0):
        self.latency = latency
        self.dedup_window = dedup_window
        self.networks: dict[str, MemoryNetwork] = {}
        self._dialed: set[frozenset[str]] = set()  # pairs that asked to be linked
        self._cut: set[frozenset[str]] = set()
        self._ports = itertools.count(20000)

    def network(self, key: PrivateKey, config: P2PConfig = P2PConfig(), book: PeerBook | None = None) -> "MemoryNetwork":
        """A transport for one node (the ``transport`` argument of BranchNode)."""
        net = MemoryNetwork(self, key, config, book or PeerBook(), next(self._ports))
        self.networks[net.peer_id] = net
        return net

    # ------------------------------------------------------------ links
    def linked(self, a: str, b: str) -> bool:
        pair = frozenset((a, b))
        na, nb = self.networks.get(a), self.networks.get(b)
        return (a != b and pair in self._dialed and pair not in self._cut and na is not None and nb is not None
                and na.running and nb.running and na.admits(b) and nb.admits(a))

    def dial(self, a: str, b: str) -> None:
        self._dialed.add(frozenset((a, b)))

    def cut(self, a: str, b: str) -> None:
        self._cut.add(frozenset((a, b)))

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between different groups (peer ids); links inside a group stay."""
        sets = [set(g) for g in groups]
        for i, g in enumerate(sets):
            for h in sets[i + 1:]:
                for a in g:
                    for b in h:
                        self.cut(a, b)

    def heal(self) -> None:
        """Restore every cut link."""
        self._cut.clear()

    def neighbours(self, peer_id: str) -> list[str]:
        return sorted(p for p in self.networks if self.linked(peer_id, p))

    def reachable(self, origin: str) -> list[str]:
        """Every peer a flood from ``origin`` reaches (not ``origin`` itself)."""
        seen, todo = {origin}, [origin]
        while todo:
            for p in self.neighbours(todo.pop()):
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        seen.discard(origin)
        return sorted(seen)


class _Stats:
    def __init__(self) -> None:
        self.published = self.received = self.dropped = self.duplicates = 0
        self.requests_sent = self.requests_served = 0
        self.received_by_topic: dict[str, int] = {}  # as GossipStats: what reached a subscriber, per topic
        self.served_by_protocol: dict[str, int] = {}  # as StreamStats: requests, per protocol id
        self.sent_by_protocol: dict[str, int] = {}

    def as_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, dict) else v for k, v in vars(self).items()}


class MemoryNetwork:
    """One node's end of a :class:`MemoryHub` (see the module docstring)."""

    def __init__(self, hub: MemoryHub, key: PrivateKey, config: P2PConfig, book: PeerBook, port: int):
        self.hub = hub
        self.config = config
        self.peer_id = peer_id_of(key.public_key.raw)
        self.allowlist = PeerAllowlist(config.allowed_peers)
        self.book = book
        self.listen_addrs = [f"/ip4/127.0.0.1/tcp/{port}/p2p/{self.peer_id}"]
        self.running = False
        self.stats = _Stats()
        self.faults = PeerFaults(PeerScores(ban_seconds=config.ban_seconds))
        self._handlers: dict[str, RequestHandler] = {}
        self._channels: dict[str, trio.MemorySendChannel] = {}
        self._own_topics: set[str] = set()
        self._gossip_to: Any = lambda topic, peer: True  # set_gossip_to
        self._seen: dict[str, OrderedDict[bytes, float]] = {}
        self._limiters: dict[tuple[str, str], trio.CapacityLimiter] = {}  # (peer id, protocol id)
        self._nursery: trio.Nursery | None = None
        for addr in config.persistent_peers:
            book.add(addr, persistent=True)

    # ------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.running = True
                for peer_id in self.book.persistent:
                    self.hub.dial(self.peer_id, peer_id)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.running = False
            self._nursery = None
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    # ------------------------------------------------------------ peers
    def connected_peers(self) -> list[str]:
        return self.hub.neighbours(self.peer_id) if self.running else []

    async def wait_connected(self, n: int, timeout: float) -> list[str]:
        with trio.fail_after(timeout):
            while len(peers := self.connected_peers()) < n:
                await trio.sleep(0.01)
        return peers

    async def connect(self, addr: str) -> str:
        peer_id = self.book.add(addr)
        self.hub.dial(self.peer_id, peer_id)
        if not self.hub.linked(self.peer_id, peer_id):
            raise PeerUnavailable(f"dial {addr} failed: not reachable or not allowed")
        return peer_id

    def add_persistent_peer(self, addr: str) -> str:
        peer_id = self.book.add(addr, persistent=True)
        self.hub.dial(self.peer_id, peer_id)
        return peer_id

    def known_addresses(self) -> dict[str, list[str]]:
        return {pid: list(addrs) for pid, addrs in self.book.addrs.items()}

    async def set_allowed_peers(self, peer_ids: Iterable[str] | None) -> None:
        self.allowlist.replace(peer_ids)

    def admits(self, peer_id: str) -> bool:
        return self.allowlist.allows(peer_id) and not self.faults.is_banned(peer_id)

    def penalize(self, peer_id: str, reason: str, *, fault: str = "invalid", protocol: str = "node") -> None:
        """As ``P2PNetwork.penalize``: count, score, ban past the threshold (the link goes down)."""
        self.faults.report(str(peer_id), protocol, reason, fault=fault)

    def banned_peers(self) -> dict[str, float]:
        return self.faults.banned()

    def rejections(self) -> dict[tuple[str, str], int]:
        return self.faults.rejections()

    def statistics(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "listening": self.running, "connected_peers": len(self.connected_peers()),
                "memory": self.stats.as_dict(), "faults": self.faults.statistics()}

    # ------------------------------------------------------------ consensus links
    def carry_on_link(self, protocol_id: str) -> None:
        """As ``P2PNetwork.carry_on_link``; in memory every notification is one delivery
        already, so there are no links to keep."""

    def set_link_peers(self, peer_ids: Any) -> None:
        """As ``P2PNetwork.set_link_peers`` (no links in memory)."""

    # ------------------------------------------------------------ gossip
    def set_gossip_to(self, wanted: Any) -> None:
        """As ``P2PNetwork.set_gossip_to``: only the peers ``wanted(topic, peer_id)`` admits
        get a topic's messages from this node."""
        self._gossip_to = wanted

    async def subscribe(self, topic: str, *, buffer: int = 1024, deliver_own: bool = False) -> trio.MemoryReceiveChannel:
        if topic in self._channels:
            raise RuntimeError(f"already subscribed to {topic!r}")
        send, receive = trio.open_memory_channel[tuple[str, bytes]](buffer)
        self._channels[topic] = send
        if deliver_own:
            self._own_topics.add(topic)
        return receive

    async def publish(self, topic: str, data: bytes, *, max_wait: float | None = None) -> None:
        if len(data) > self.config.max_gossip_message_size:
            raise FrameError(f"gossip message of {len(data)} bytes exceeds {self.config.max_gossip_message_size}")
        self.stats.published += 1
        for peer_id in self.hub.reachable(self.peer_id):
            if not self._gossip_to(topic, peer_id):
                continue
            receiver = self.hub.networks[peer_id]
            receiver._later(self.hub.latency, receiver._receive_gossip, self.peer_id, topic, data)
        if topic in self._own_topics:
            self._later(self.hub.latency, self._receive_gossip, self.peer_id, topic, data)
        await trio.lowlevel.checkpoint()

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._after, delay, fn, *args)

    async def _after(self, delay: float, fn: Any, *args: Any) -> None:
        await trio.sleep(delay)
        fn(*args)

    def _receive_gossip(self, origin: str, topic: str, data: bytes) -> None:
        channel = self._channels.get(topic)
        if channel is None:
            return
        seen = self._seen.setdefault(topic, OrderedDict())
        now = trio.current_time()
        while seen and next(iter(seen.values())) < now - self.hub.dedup_window:
            seen.popitem(last=False)
        mid = message_id(data)
        if mid in seen:
            self.stats.duplicates += 1
            return
        seen[mid] = now
        try:
            channel.send_nowait((origin, data))
            self.stats.received += 1
            self.stats.received_by_topic[topic] = self.stats.received_by_topic.get(topic, 0) + 1
        except trio.WouldBlock:
            self.stats.dropped += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # ------------------------------------------------------------ requests
    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None:
        self._handlers[protocol_id] = handler

    async def request(self, peer_id: str, protocol_id: str, body: bytes, *,
                      timeout: float | None = None, retry: bool = True) -> bytes:
        timeout = self.config.request_timeout if timeout is None else timeout
        server, handler = self._route(peer_id, protocol_id, body)
        done = trio.Event()
        answer: list[bytes | BaseException] = []
        server._later(self.hub.latency, server._serve, self.peer_id, protocol_id, handler, body, answer, done)
        with trio.move_on_after(timeout):
            await done.wait()
        if not answer:
            raise RequestTimeout(f"no response from {peer_id} on {protocol_id} within {timeout}s")
        if isinstance(answer[0], BaseException):
            raise answer[0]
        await trio.sleep(self.hub.latency)  # the way back
        if not self.hub.linked(self.peer_id, peer_id):
            raise PeerUnavailable(f"{peer_id} disconnected before answering")
        return answer[0]

    async def notify(self, peer_id: str, protocol_id: str, body: bytes, *, timeout: float | None = None) -> None:
        """One way, as ``P2PNetwork.notify``: the handler runs on the server after ``latency``;
        its answer and its errors go nowhere (a handler exception other than a timeout
        still crashes the serving node, as for requests)."""
        server, handler = self._route(peer_id, protocol_id, body)
        server._later(self.hub.latency, server._serve, self.peer_id, protocol_id, handler, body, [], trio.Event())
        await trio.lowlevel.checkpoint()

    def _route(self, peer_id: str, protocol_id: str, body: bytes) -> tuple["MemoryNetwork", RequestHandler]:
        """The server and handler a request or notification to ``peer_id`` goes to, counted
        as sent; raises as ``streams.Requester`` does (a protocol the peer does not serve is
        ``ProtocolUnsupported``)."""
        if len(body) > self.config.max_frame_size:
            raise FrameError(f"request of {len(body)} bytes exceeds {self.config.max_frame_size}")
        server = self.hub.networks.get(peer_id)
        if server is None or not self.hub.linked(self.peer_id, peer_id):
            raise PeerUnavailable(f"{peer_id} is not connected")
        handler = server._handlers.get(protocol_id)
        if handler is None:
            raise ProtocolUnsupported(f"{peer_id} does not serve {protocol_id}")
        self.stats.requests_sent += 1
        count_by(self.stats.sent_by_protocol, protocol_id)
        return server, handler

    def _serve(self, client: str, protocol_id: str, handler: RequestHandler, body: bytes, answer: list,
               done: trio.Event) -> None:
        self._nursery.start_soon(self._serve_async, client, protocol_id, handler, body, answer, done)

    async def _serve_async(self, client: str, protocol_id: str, handler: RequestHandler, body: bytes, answer: list,
                           done: trio.Event) -> None:
        # one budget per (peer, protocol), as streams.py: record pushes never hold consensus back
        limiter = self._limiters.setdefault((client, protocol_id), trio.CapacityLimiter(self.config.max_inbound_per_peer))
        count_by(self.stats.served_by_protocol, protocol_id)
        async with limiter:
            try:
                with trio.fail_after(self.config.handler_timeout):
                    response = await handler(client, body)
            except trio.TooSlowError:
                answer.append(RequestFailed(f"handler timed out after {self.config.handler_timeout}s"))
                done.set()
                return
        if len(response) > self.config.max_frame_size:
            answer.append(RequestFailed(f"response too large ({len(response)} bytes)"))
        else:
            answer.append(bytes(response))
            self.stats.requests_served += 1
        done.set()
