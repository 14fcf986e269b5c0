"""Peer manager: persistent peers, redialing, and a saveable peer book.

libp2p never re-dials a dropped peer (only its bootstrap list, every 10 s,
giving up after 3 failures), so each persistent peer gets a task that keeps
it connected: when the peer is not connected it dials (bounded by
``dial_timeout``), and after a failure waits an exponential backoff with
jitter (``initial_backoff`` doubling up to ``max_backoff``, +-``jitter``).
Dial failures are transient and only logged at debug level and counted.
A peer banned for misbehaviour (``faults.py``) is not redialed until its ban
expires.

While a peer is connected its task sleeps until libp2p reports the connection
closed (a notifee). In case a notification was missed, one task looks at every
connected peer's connection every ``connected_recheck`` seconds and wakes the
keepers of those it finds closed: a timer per peer (as this was) woke an idle
node once per peer per interval, a cost that grew with its number of peers.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable

import multiaddr
import trio

from .errors import ConfigError, PeerUnavailable
from .host import ConnectionStats, dial, libp2p_id_of

logger = logging.getLogger("node.p2p.peers")


class ConnectionWatcher:
    """A libp2p notifee: ``on_change(peer_id, connected)`` when a connection opens or closes."""

    def __init__(self, on_change: Callable[[str, bool], None]) -> None:
        self._on_change = on_change

    async def connected(self, network: Any, conn: Any) -> None:
        self._tell(conn, True)

    async def disconnected(self, network: Any, conn: Any) -> None:
        self._tell(conn, False)

    def _tell(self, conn: Any, connected: bool) -> None:
        try:
            peer = str(conn.muxed_conn.peer_id)
        except AttributeError:
            return
        self._on_change(peer, connected)

    async def opened_stream(self, network: Any, stream: Any) -> None: ...
    async def closed_stream(self, network: Any, stream: Any) -> None: ...
    async def listen(self, network: Any, multiaddr: Any) -> None: ...
    async def listen_close(self, network: Any, multiaddr: Any) -> None: ...


def split_peer_addr(addr: str) -> tuple[str, str]:
    """``/ip4/../tcp/../p2p/<id>`` -> (peer id, addr). Raises ``ConfigError``."""
    try:
        peer_id = multiaddr.Multiaddr(addr).value_for_protocol("p2p")
    except Exception:
        peer_id = None
    if not peer_id:
        raise ConfigError(f"peer address {addr!r} must end in /p2p/<peer id>")
    return str(peer_id), addr


class PeerBook:
    """Known peers: peer id -> multiaddrs (with /p2p/), and which are persistent.

    Pure data; the caller persists it with ``to_json``/``from_json``.
    """

    def __init__(self) -> None:
        self.addrs: dict[str, list[str]] = {}
        self.persistent: set[str] = set()

    def add(self, addr: str, *, persistent: bool = False) -> str:
        peer_id, addr = split_peer_addr(addr)
        known = self.addrs.setdefault(peer_id, [])
        if addr not in known:
            known.append(addr)
        if persistent:
            self.persistent.add(peer_id)
        return peer_id

    def remove(self, peer_id: str) -> None:
        self.addrs.pop(peer_id, None)
        self.persistent.discard(peer_id)

    def to_json(self) -> str:
        return json.dumps({
            "version": 1,
            "peers": [{"peer_id": pid, "addrs": addrs, "persistent": pid in self.persistent}
                      for pid, addrs in sorted(self.addrs.items())],
        }, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PeerBook":
        """Raises ``ConfigError`` on malformed input."""
        book = cls()
        try:
            data = json.loads(text)
            if data.get("version") != 1:
                raise ConfigError(f"unknown peer book version {data.get('version')!r}")
            for entry in data["peers"]:
                for addr in entry["addrs"]:
                    if book.add(addr, persistent=bool(entry.get("persistent"))) != entry["peer_id"]:
                        raise ConfigError(f"address {addr!r} does not match {entry['peer_id']}")
        except ConfigError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"malformed peer book: {exc}") from None
        return book


@dataclass(slots=True)
class PeerStats:
    redials: int = 0
    redial_failures: int = 0
    reconnects: int = 0   # a persistent peer came back after being connected before
    connections: int = 0  # a persistent peer's keeper found it connected: the first time, or again

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class PeerManager:
    """Keeps persistent peers connected. Run with ``nursery.start(manager.run)``."""

    def __init__(self, host: Any, book: PeerBook, connection_stats: ConnectionStats, *,
                 dial_timeout: float = 5.0, initial_backoff: float = 0.25,
                 max_backoff: float = 30.0, jitter: float = 0.2,
                 check_interval: float = 0.25, is_banned: Callable[[str], bool] = lambda peer: False,
                 connected_recheck: float = 5.0) -> None:
        self._host = host
        self._is_banned = is_banned
        self.book = book
        self._connection_stats = connection_stats
        self._dial_timeout = dial_timeout
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._jitter = jitter
        self._check_interval = check_interval
        self._connected_recheck = connected_recheck
        self._gone: dict[str, trio.Event] = {}  # peer -> set when its connection closes (_connection_changed)
        self._nursery: trio.Nursery | None = None
        self._tasks: dict[str, trio.CancelScope] = {}
        self._closed_after_handshake: dict[str, int] = {}  # peer -> consecutive dials it cut at once
        self._changed = trio.Event()
        self.stats = PeerStats()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._host.get_network().register_notifee(ConnectionWatcher(self._connection_changed))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for peer_id in sorted(self.book.persistent):
                self._start_keeper(peer_id)
            task_status.started()
            try:
                await self._recheck_connected()
            finally:
                self._nursery = None

    def _connection_changed(self, peer_id: str, connected: bool) -> None:
        """A libp2p notice: wake the keeper of a peer whose connection closed."""
        if not connected and (event := self._gone.pop(peer_id, None)) is not None:
            event.set()

    async def _recheck_connected(self) -> None:
        """Every ``connected_recheck`` seconds, wake the keepers of peers whose connection
        closed without libp2p's notice reaching us."""
        while True:
            await trio.sleep(self._connected_recheck)
            for peer_id in [p for p in self._gone if not self.is_connected(p)]:
                self._gone.pop(peer_id).set()

    def add_persistent(self, addr: str) -> str:
        """Add a persistent peer (``.../p2p/<id>``) and start keeping it connected."""
        peer_id = self.book.add(addr, persistent=True)
        if self._nursery is not None and peer_id not in self._tasks:
            self._start_keeper(peer_id)
        return peer_id

    def remove_persistent(self, peer_id: str) -> None:
        self.book.persistent.discard(peer_id)
        scope = self._tasks.pop(peer_id, None)
        if scope is not None:
            scope.cancel()

    def _start_keeper(self, peer_id: str) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._tasks[peer_id] = scope
        self._nursery.start_soon(self._keep_connected, peer_id, scope)

    def is_connected(self, peer_id: str) -> bool:
        conns = self._host.get_network().get_connections(libp2p_id_of(peer_id))
        return any(not c.is_closed for c in conns)

    def connected_peers(self) -> list[str]:
        return sorted(str(p) for p in self._host.get_connected_peers())

    async def wait_connected(self, n: int, timeout: float) -> list[str]:
        """Wait until at least ``n`` peers are connected; raises ``trio.TooSlowError``."""
        with trio.fail_after(timeout):
            while len(peers := self.connected_peers()) < n:
                await trio.sleep(0.02)
        return peers

    async def connect(self, addr: str) -> str:
        """Dial once now; raises ``PeerUnavailable``. Remembers the address (not persistent)."""
        self.book.add(addr)
        return await dial(self._host, addr, self._connection_stats, self._dial_timeout)

    def _backoff(self, failures: int) -> float:
        base = min(self._max_backoff, self._initial_backoff * 2 ** max(0, failures - 1))
        return base * (1 + random.uniform(-self._jitter, self._jitter))

    async def _dial_any(self, peer_id: str) -> bool:
        for addr in reversed(self.book.addrs.get(peer_id, ())):  # newest address first
            self.stats.redials += 1
            try:
                await dial(self._host, addr, self._connection_stats, self._dial_timeout)
            except PeerUnavailable as exc:
                logger.debug("redial %s failed: %s", addr, exc)
                self._closed_after_handshake.pop(peer_id, None)  # down, not refusing
                continue
            # An allowlist drop on the far side closes the connection right
            # after connect() returns; only count it if it survived.
            await trio.sleep(0.05)
            if self.is_connected(peer_id):
                self._closed_after_handshake.pop(peer_id, None)
                return True
            # libp2p gives the refusing side no way to say why (its gate only closes
            # the connection): name the likely reasons, once per streak. Twice in a row,
            # since a peer that is stopping also cuts one connection this way.
            cuts = self._closed_after_handshake[peer_id] = self._closed_after_handshake.get(peer_id, 0) + 1
            (logger.info if cuts == 2 else logger.debug)(
                "peer %s (%s) refuses our connection right after the handshake: our peer id %s is "
                "not in its genesis or allowed peers, or it banned us; its log says which",
                peer_id, addr, self._host.get_id())
        return False

    async def _keep_connected(self, peer_id: str, scope: trio.CancelScope) -> None:
        failures = 0
        seen: bool | None = None  # at our last look: never connected yet, connected, or lost since
        with scope:
            while True:
                gone = self._gone.setdefault(peer_id, trio.Event())  # before the check: no lost wake-up
                if self.is_connected(peer_id):
                    # counted here, not when our dial returns: libp2p may list the connection
                    # only after a dial's settling check has counted it a failure
                    if seen is not True:
                        self.stats.connections += 1
                        if seen is False:
                            self.stats.reconnects += 1
                            logger.info("reconnected to %s", peer_id)
                    seen, failures = True, 0
                    await gone.wait()  # libp2p's notice, or _recheck_connected
                    continue
                if seen:
                    seen = False
                    logger.info("lost the connection to %s; redialing", peer_id)
                if self._is_banned(peer_id):  # banned for misbehaviour: not redialed until it expires
                    await trio.sleep(self._check_interval)
                elif await self._dial_any(peer_id):
                    failures = 0
                else:
                    failures += 1
                    self.stats.redial_failures += 1
                    await trio.sleep(self._backoff(failures))
