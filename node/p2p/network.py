"""``P2PNetwork``: the node's transport service (host + gossip + streams + peers).

It moves bytes between authenticated peers and knows nothing of consensus.
Usage::

    net = P2PNetwork(private_key, P2PConfig(psk=..., allowed_peers=..., persistent_peers=...))
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)          # returns once listening
        records = await net.subscribe("branchnet/records/1")
        net.register_handler("/branchnet/sync/1", serve_sync)
        await net.publish("branchnet/records/1", batch)
        reply = await net.request(peer_id, "/branchnet/sync/1", req, timeout=2)

Shutdown: cancel the nursery. ``run`` stops gossip (and its seen-cache
thread), the requester and the redial tasks, then closes the host (without
``close()`` libp2p keeps accepting connections and leaks tasks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import multiaddr
import trio

from protocol.keys import PrivateKey

from ..listen import probe
from .faults import PeerFaults
from .scoring import PeerScores
from .gossip import DEFAULT_DEGREE, Gossip, Validator
from .errors import P2PError
from .host import (DEFAULT_LISTEN_ADDRS, ConnectionStats, HostConfig, PeerAllowlist, libp2p_id_of,
                   build_host, keypair_of, peer_id_of)
from .frames import KIND_REQUEST, encode_frame
from .inbound import count_handshake_failures, guard_inbound_streams
from .link import LINK_PROTOCOL, ConsensusLinks
from .peers import ConnectionWatcher, PeerBook, PeerManager
from .stream_open import stream_slots
from .streams import (DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_RESPONSE_FRAME_SIZE, NOTIFICATION_ID, RequestHandler,
                      Requester, RequestServer, StreamStats)

logger = logging.getLogger("node.p2p.network")


@dataclass(frozen=True, slots=True)
class P2PConfig:
    """All p2p settings. ``allowed_peers=None`` admits any peer holding the PSK."""

    listen_addrs: tuple[str, ...] = DEFAULT_LISTEN_ADDRS
    psk: str | None = None
    allowed_peers: frozenset[str] | None = None
    persistent_peers: tuple[str, ...] = ()
    dial_timeout: float = 5.0
    upgrade_timeout: float = 5.0
    initial_backoff: float = 0.25
    max_backoff: float = 30.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE                    # request frames
    max_response_frame_size: int = DEFAULT_MAX_RESPONSE_FRAME_SIZE  # response/error frames
    max_inbound_per_peer: int = 32
    handler_timeout: float = 30.0
    request_timeout: float = 10.0
    gossip_degree: tuple[int, int, int] = DEFAULT_DEGREE
    heartbeat_interval: int = 1
    publish_timeout: float = 10.0
    max_gossip_message_size: int = 1024 * 1024
    libp2p_log_level: int = logging.WARNING
    ban_seconds: float = 600.0  # how long a misbehaving peer is refused (faults.py, scoring.py)
    link_listen: tuple[str, int] | None = None  # (host, port) of the consensus-link listener (link.py); None: no links

    def host_config(self) -> HostConfig:
        return HostConfig(listen_addrs=self.listen_addrs, psk=self.psk,
                          allowed_peers=self.allowed_peers, dial_timeout=self.dial_timeout,
                          upgrade_timeout=self.upgrade_timeout,
                          libp2p_log_level=self.libp2p_log_level)


class P2PNetwork:
    """The transport service of a node. See the module docstring."""

    def __init__(self, private_key: PrivateKey, config: P2PConfig = P2PConfig(),
                 peer_book: PeerBook | None = None) -> None:
        host_config = config.host_config()  # validates
        self.config = config
        self.peer_id = peer_id_of(private_key.public_key.raw)
        self.allowlist = PeerAllowlist(config.allowed_peers)
        self.connection_stats = ConnectionStats()
        self.stream_stats = StreamStats()
        self.faults = PeerFaults(PeerScores(ban_seconds=config.ban_seconds))
        self.host = build_host(private_key, host_config, self.allowlist, self.connection_stats,
                               is_banned=self.faults.is_banned)
        self.gossip = Gossip(self.host, degree=config.gossip_degree,
                             heartbeat_interval=config.heartbeat_interval,
                             publish_timeout=config.publish_timeout,
                             max_message_size=config.max_gossip_message_size,
                             faults=self.faults, admits=self.admits)
        self.server = RequestServer(self.host, max_frame_size=config.max_frame_size,
                                    max_response_frame_size=config.max_response_frame_size,
                                    max_inbound_per_peer=config.max_inbound_per_peer,
                                    handler_timeout=config.handler_timeout,
                                    stats=self.stream_stats, faults=self.faults)
        guard_inbound_streams(self.host, self.faults, lambda: self.server.protocols, self.admits)
        count_handshake_failures(self.host, self.faults,
                                 lambda: self.connection_stats.dropped_inbound + self.connection_stats.dropped_banned)
        self.requester = Requester(self.host, max_frame_size=config.max_frame_size,
                                   max_response_frame_size=config.max_response_frame_size,
                                   default_timeout=config.request_timeout,
                                   stats=self.stream_stats, on_stuck_connection=self.faults.request_disconnect)
        book = peer_book or PeerBook()
        for addr in config.persistent_peers:
            book.add(addr, persistent=True)
        self.peers = PeerManager(self.host, book, self.connection_stats,
                                 dial_timeout=config.dial_timeout,
                                 initial_backoff=config.initial_backoff,
                                 max_backoff=config.max_backoff, is_banned=self.faults.is_banned)
        self.links: ConsensusLinks | None = None
        if config.link_listen is not None:
            self.links = ConsensusLinks(keypair_of(private_key), self, self.server.serve_notifications,
                                        host=config.link_listen[0], port=config.link_listen[1],
                                        network_key=self.connection_stats.network_key,
                                        handshake_timeout=config.upgrade_timeout)
            self.server.register_handler(LINK_PROTOCOL, self.links.answer_port)
            links = self.links
            self.host.get_network().register_notifee(ConnectionWatcher(lambda peer, up: links.connections_changed()))
        self._listening = False

    # -- lifecycle ------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, start gossip/requests/redialing; ``task_status.started()`` once listening.
        Raises ConfigError if a listen address is in use or not this machine's
        (libp2p's own listener would share a port in use: it sets SO_REUSEPORT)."""
        addrs = [multiaddr.Multiaddr(a) for a in self.config.listen_addrs]
        for addr in addrs:
            protocols = [p.name for p in addr.protocols()]
            if protocols[:2] in (["ip4", "tcp"], ["ip6", "tcp"]):
                probe(addr.value_for_protocol(protocols[0]), int(addr.value_for_protocol("tcp")),
                      what="p2p listen", key="[p2p] listen")
        if self.config.link_listen is not None and self.config.link_listen[1]:
            probe(*self.config.link_listen, what="consensus link listen", key="[p2p] link_listen")
        try:
            async with self.host.run(addrs):
                try:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(self.gossip.run)
                        await nursery.start(self.requester.run)
                        await nursery.start(self.peers.run)
                        if self.links is not None:
                            await nursery.start(self.links.run)
                        nursery.start_soon(self._disconnect_offenders)
                        self._listening = True
                        logger.info("p2p %s listening on %s", self.peer_id, self.listen_addrs)
                        task_status.started()
                        await trio.sleep_forever()
                finally:
                    self._listening = False
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await self._close_connections()
        finally:
            self._listening = False
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.host.close()

    async def _close_connections(self) -> None:
        """Close every connection's encrypted channel (and so its socket) while the swarm
        still runs. py-libp2p's ``host.close()`` during cancellation does not reach the
        sockets (``Yamux.close`` stops before closing its secured connection), so peers
        saw the connection of a stopped node as open: in one process, gossip to a
        restarted node stalled on the dead connection's full queue."""
        for conns in list(self.host.get_network().connections.values()):
            for conn in list(conns):
                with trio.move_on_after(1):
                    try:
                        await conn.muxed_conn.secured_conn.close()
                    except Exception as exc:  # already closed or broken
                        logger.debug("closing a connection at shutdown: %r", exc)

    @property
    def listen_addrs(self) -> list[str]:
        """Full dialable addresses (ending in /p2p/<peer id>)."""
        return [str(a) for a in self.host.get_addrs()]

    # -- gossip -----------------------------------------------------------------

    async def publish(self, topic: str, data: bytes, *, max_wait: float | None = None) -> None:
        await self.gossip.publish(topic, data, max_wait=max_wait)

    async def subscribe(self, topic: str, *, buffer: int = 1024,
                        deliver_own: bool = False) -> trio.MemoryReceiveChannel[tuple[str, bytes]]:
        return await self.gossip.subscribe(topic, buffer=buffer, deliver_own=deliver_own)

    def set_validator(self, topic: str, validator: Validator) -> None:
        self.gossip.set_validator(topic, validator)

    def set_gossip_to(self, wanted: Callable[[str, str], bool]) -> None:
        self.gossip.set_gossip_to(wanted)

    # -- request/response ---------------------------------------------------

    def register_handler(self, protocol_id: str, handler: RequestHandler) -> None:
        self.server.register_handler(protocol_id, handler)

    async def request(self, peer_id: str, protocol_id: str, body: bytes, *,
                      timeout: float | None = None, retry: bool = True) -> bytes:
        return await self.requester.request(peer_id, protocol_id, body,
                                            timeout=timeout, retry=retry)

    async def notify(self, peer_id: str, protocol_id: str, body: bytes, *, timeout: float | None = None) -> None:
        """One way: ``body`` to ``peer_id``'s handler of ``protocol_id``, no answer: on the
        consensus link to the peer if it carries ``protocol_id`` and is up (link.py), else
        on a libp2p stream (streams.Requester.notify)."""
        links = self.links
        if links is not None and protocol_id == links.protocol_id and (link := links.get(peer_id)) is not None:
            frame = encode_frame(KIND_REQUEST, NOTIFICATION_ID, body, self.config.max_frame_size)
            try:
                await link.send(frame, self.config.request_timeout if timeout is None else timeout)
                links.stats.frames_sent += 1
                return
            except P2PError as exc:  # the link is closed now and redialed later; libp2p carries this one
                links.stats.send_failures += 1
                logger.debug("consensus link to %s failed: %s", peer_id, exc)
        await self.requester.notify(peer_id, protocol_id, body, timeout=timeout)

    # -- consensus links (link.py) ---------------------------------------------------

    def carry_on_link(self, protocol_id: str) -> None:
        """Consensus links, where configured, carry ``protocol_id``'s notifications (its
        handler must be registered: a link reads what the peer sends as well)."""
        if protocol_id not in self.server.protocols:
            raise ValueError(f"no handler registered for {protocol_id}")
        if self.links is not None:
            self.links.carry(protocol_id)

    def set_link_peers(self, peer_ids: Iterable[str]) -> None:
        """Keep consensus links with exactly ``peer_ids`` (the other validators, or none)."""
        if self.links is not None:
            self.links.set_peers(peer_ids)

    def remote_ip(self, peer_id: str) -> str | None:
        """The IP address at the far end of our libp2p connection to ``peer_id``."""
        for conn in self.host.get_network().connections.get(libp2p_id_of(peer_id), ()):
            try:
                return conn.muxed_conn.secured_conn.get_remote_address()[0]
            except Exception:
                continue
        return None

    # -- peers ------------------------------------------------------------------

    async def connect(self, addr: str) -> str:
        return await self.peers.connect(addr)

    def add_persistent_peer(self, addr: str) -> str:
        return self.peers.add_persistent(addr)

    def connected_peers(self) -> list[str]:
        return self.peers.connected_peers()

    def known_addresses(self) -> dict[str, list[str]]:
        """peer id -> the dialable addresses we know (to remember across restarts)."""
        return {pid: list(addrs) for pid, addrs in self.peers.book.addrs.items()}

    async def wait_connected(self, n: int, timeout: float) -> list[str]:
        return await self.peers.wait_connected(n, timeout)

    async def set_allowed_peers(self, peer_ids: Iterable[str] | None) -> None:
        """Replace the allowlist (None = open) and disconnect peers no longer allowed."""
        self.allowlist.replace(peer_ids)
        for peer in list(self.host.get_connected_peers()):
            if not self.allowlist.allows(str(peer)):
                logger.info("disconnecting %s: no longer allowed", peer)
                await self._forget_peer(str(peer))
                with trio.move_on_after(2):
                    await self.host.disconnect(peer)

    # -- misbehaving peers -------------------------------------------------------

    def admits(self, peer_id: str) -> bool:
        """True if ``peer_id`` may be heard: allowlisted and not banned."""
        return self.allowlist.allows(peer_id) and not self.faults.is_banned(peer_id)

    def penalize(self, peer_id: str, reason: str, *, fault: str = "invalid", protocol: str = "node") -> None:
        """The node rejected ``peer_id``'s input for ``reason``: count it and score the
        peer by ``fault`` (scoring.PENALTIES); past the threshold the peer is banned
        (disconnected, refused and not redialed until the ban expires). Never raises."""
        self.faults.report(str(peer_id), protocol, reason, fault=fault)

    def banned_peers(self) -> dict[str, float]:
        return self.faults.banned()

    async def _forget_peer(self, peer: str) -> None:
        """Drop what we keep open to ``peer`` besides its connection: request streams, its link."""
        self.requester.forget_peer(peer)
        if self.links is not None:
            await self.links.drop(peer)

    async def _disconnect_offenders(self) -> None:
        """Close the connections of peers that were banned, or whose stream framing broke."""
        async for peer in self.faults.disconnect_requests:
            await self._forget_peer(peer)
            peer_id = libp2p_id_of(peer)
            with trio.move_on_after(2):
                try:
                    # upstream's disconnect leaves the socket open (see _close_connections):
                    # close the encrypted channel first, so the peer sees the connection end
                    for conn in list(self.host.get_network().connections.get(peer_id, ())):
                        await conn.muxed_conn.secured_conn.close()
                    await self.host.disconnect(peer_id)
                except Exception as exc:  # already gone, or libp2p refused: the gate still holds
                    logger.debug("disconnecting %s failed: %r", peer, exc)

    def rejections(self) -> dict[tuple[str, str], int]:
        """Everything the transport refused, (protocol or layer, reason) -> count."""
        out = self.connection_stats.rejections()
        for key, n in self.faults.rejections().items():
            out[key] = out.get(key, 0) + n
        if self.links is not None:
            for reason, n in self.links.stats.refused.items():
                out[("link", reason)] = out.get(("link", reason), 0) + n
        return out

    # -- metrics ------------------------------------------------------------------

    def peer_details(self) -> list[dict[str, Any]]:
        """One entry per connected peer: ``peer_id``, ``address`` (the connection's remote
        multiaddr, or None), ``direction`` (inbound/outbound/unknown), ``connected_since``
        (Unix seconds, or None), ``last_round_trip`` (seconds of the last request it
        answered, or None) and ``link`` (the consensus link's direction, or None)."""
        if not self._listening:
            return []
        network_key = self.connection_stats.network_key
        traffic = network_key.traffic_by_address() if network_key is not None else {}
        out = {}
        for conn in self.host.get_network().get_connections():
            if getattr(conn, "is_closed", False):
                continue
            peer = str(conn.muxed_conn.peer_id)
            addrs = getattr(conn, "_actual_transport_addresses", None) or []  # no peerstore fallback
            sent, received = traffic.get(_host_port(addrs[0]) if addrs else None, (None, None))
            out[peer] = {
                "peer_id": peer,
                "address": str(addrs[0]) if addrs else None,
                "direction": getattr(getattr(conn, "direction", None), "name", "unknown").lower(),
                "connected_since": getattr(conn, "_created_at", None),
                "last_round_trip": self.requester.round_trips.get(peer),
                "bytes_sent": sent,
                "bytes_received": received,
                "link": link.direction if self.links is not None and (link := self.links.get(peer)) else None,
            }
        return [out[p] for p in sorted(out)]

    def connections_by_direction(self) -> dict[str, int]:
        """Open libp2p connections by direction ("inbound", "outbound", "unknown")."""
        out: dict[str, int] = {}
        if not self._listening:
            return out
        for conn in self.host.get_network().get_connections():
            if getattr(conn, "is_closed", False):
                continue
            direction = getattr(getattr(conn, "direction", None), "name", "unknown").lower()
            out[direction] = out.get(direction, 0) + 1
        return out

    def statistics(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "listening": self._listening,
            "connected_peers": len(self.connected_peers()) if self._listening else 0,
            "connections": self.connection_stats.as_dict(),
            "gossip": self.gossip.stats.as_dict(),
            "streams": {**self.stream_stats.as_dict(), **stream_slots(self.host)},
            "peers": self.peers.stats.as_dict(),
            "faults": self.faults.statistics(),
            "links": self.links.statistics() if self.links is not None else None,
        }


def _host_port(addr: Any) -> str | None:
    """"host:port" of a /ip4|ip6/.../tcp/... multiaddr (how pnet.py names a connection)."""
    parts = str(addr).split("/")
    try:
        return f"{parts[2]}:{parts[parts.index('tcp') + 1]}"
    except (IndexError, ValueError):
        return None
