"""Optional mDNS discovery of peers on a branch LAN (``[p2p] mdns = true``).

Each node advertises a DNS-SD service ``<name>._branchnet._tcp.local.`` whose
SRV/A records give its TCP port and IPv4 addresses and whose TXT record says
``net=<network id>`` (from the genesis hash, so two networks on one LAN never
mix) and ``peer=<libp2p peer id>``. Nodes browse for the same service type and
add every advertised peer that passes :func:`parse_advert` — same network, not
ourselves, an allowlisted peer id, at least one address — as a persistent peer.

Discovery only supplies addresses. Whoever answers must still hold the network
key (pnet), complete the Noise handshake as that peer id and pass the
allowlist, so a forged advertisement can at worst make us dial in vain.

Zeroconf runs its own threads; it is confined to this module. Its browser
callback only hands the service name to a bounded trio channel; resolving and
checking happen in a trio task (the blocking resolve in a worker thread).
Adverts are rejected with a reason and counted, never raised.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from typing import Any, Callable, Iterable

import multiaddr
import trio

logger = logging.getLogger("node.p2p.mdns")

SERVICE_TYPE = "_branchnet._tcp.local."
RESOLVE_TIMEOUT_MS = 3000
MAX_PEER_ID_LEN = 128


class AdvertRejected(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _text(properties: dict, key: bytes, reason: str) -> str:
    value = properties.get(key)
    if not isinstance(value, bytes) or not value or len(value) > MAX_PEER_ID_LEN:
        raise AdvertRejected(reason, f"TXT {key.decode()} missing or malformed")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise AdvertRejected(reason, f"TXT {key.decode()} is not ASCII") from None


def parse_advert(properties: dict, addresses: Iterable[str], port: int | None, *, network_id: str,
                 own_peer_id: str, allowed: Callable[[str], bool]) -> list[str]:
    """Dialable multiaddrs (``/ip4/A/tcp/P/p2p/ID``) of an advertised peer, or AdvertRejected."""
    if _text(properties, b"net", "malformed") != network_id:
        raise AdvertRejected("other_network", "advertised for another network")
    peer_id = _text(properties, b"peer", "malformed")
    if peer_id == own_peer_id:
        raise AdvertRejected("self", "our own advertisement")
    try:
        multiaddr.Multiaddr(f"/p2p/{peer_id}")
    except Exception:
        raise AdvertRejected("malformed", f"{peer_id!r} is not a peer id") from None
    if not allowed(peer_id):
        raise AdvertRejected("not_allowed", f"peer {peer_id} is not allowed on this network")
    if type(port) is not int or not 0 < port < 65536:
        raise AdvertRejected("malformed", f"bad port {port!r}")
    out = []
    for ip in addresses:
        try:
            socket.inet_pton(socket.AF_INET, ip)
        except (OSError, TypeError):
            continue  # IPv6 or junk: we listen on IPv4
        out.append(f"/ip4/{ip}/tcp/{port}/p2p/{peer_id}")
    if not out:
        raise AdvertRejected("no_address", "no IPv4 address advertised")
    return out


def advert_properties(network_id: str, peer_id: str) -> dict[bytes, bytes]:
    return {b"net": network_id.encode(), b"peer": peer_id.encode()}


class MdnsDiscovery:
    """Advertise this node and add discovered peers. Run with ``nursery.start(d.run)``.

    ``listen_addrs`` are the node's actual addresses; their IPv4 hosts choose the
    interfaces mDNS uses (0.0.0.0: all of them) and the first TCP port is advertised.
    ``on_peer(addr)`` is called on the trio thread for each accepted address.
    """

    def __init__(self, *, network_id: str, peer_id: str, listen_addrs: list[str],
                 allowed: Callable[[str], bool], on_peer: Callable[[str], Any],
                 on_reject: Callable[[str], Any] = lambda reason: None) -> None:
        self.network_id = network_id
        self.peer_id = peer_id
        self.allowed = allowed
        self.on_peer = on_peer
        self.on_reject = on_reject  # e.g. a metrics counter, by reason
        self.ips, self.port = _hosts_and_port(listen_addrs)
        self.found: dict[str, list[str]] = {}  # peer id -> addrs
        self.rejected: Counter[str] = Counter()
        self.dropped_events = 0

    def statistics(self) -> dict[str, Any]:
        return {"peers_found": len(self.found), "rejected": dict(self.rejected), "dropped_events": self.dropped_events}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

        if self.port is None:
            raise ValueError("mdns: no TCP listen address to advertise")
        interfaces = InterfaceChoice.All if not self.ips or "0.0.0.0" in self.ips else sorted(self.ips)
        advertised = sorted(self.ips - {"0.0.0.0"}) or _all_ipv4()
        zc = await trio.to_thread.run_sync(lambda: Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only))
        name = f"{self.peer_id[-40:]}.{SERVICE_TYPE}"
        info = ServiceInfo(SERVICE_TYPE, name, port=self.port, properties=advert_properties(self.network_id, self.peer_id),
                           addresses=[socket.inet_aton(ip) for ip in advertised], server=f"{self.peer_id[-40:]}.local.")
        send, recv = trio.open_memory_channel[str](256)
        token = trio.lowlevel.current_trio_token()

        def handed_over(service_name: str) -> None:  # on the trio thread
            try:
                send.send_nowait(service_name)
            except trio.WouldBlock:
                self.dropped_events += 1

        def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:  # zeroconf's thread
            if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                try:
                    token.run_sync_soon(handed_over, name)
                except trio.RunFinishedError:
                    pass

        browser = None
        try:
            browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
            task_status.started()  # registering announces three times over a second or two: not on the start path
            await trio.to_thread.run_sync(zc.register_service, info)
            logger.info("mdns: advertising %s on %s port %d", self.peer_id, advertised, self.port)
            async for service_name in recv:
                await self._resolve(zc, ServiceInfo, service_name)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                def stop() -> None:
                    if browser is not None:
                        browser.cancel()
                    zc.unregister_all_services()
                    zc.close()

                await trio.to_thread.run_sync(stop)

    def _reject(self, reason: str) -> None:
        self.rejected[reason] += 1
        self.on_reject(reason)

    async def _resolve(self, zc: Any, service_info_cls: Any, service_name: str) -> None:
        if not service_name.endswith(SERVICE_TYPE) or len(service_name) > 255:
            self._reject("malformed")
            return
        info = service_info_cls(SERVICE_TYPE, service_name)
        if not await trio.to_thread.run_sync(info.request, zc, RESOLVE_TIMEOUT_MS):
            self._reject("unresolved")
            return
        try:
            addrs = parse_advert(info.properties or {}, info.parsed_addresses(), info.port, network_id=self.network_id,
                                 own_peer_id=self.peer_id, allowed=self.allowed)
        except AdvertRejected as exc:
            if exc.reason != "self":
                self._reject(exc.reason)
                logger.debug("mdns: ignoring %s: %s", service_name, exc)
            return
        peer_id = addrs[0].rsplit("/", 1)[1]
        if self.found.get(peer_id) == addrs:
            return
        self.found[peer_id] = addrs
        logger.info("mdns: found peer %s at %s", peer_id, addrs)
        for addr in addrs:
            self.on_peer(addr)


def _hosts_and_port(listen_addrs: list[str]) -> tuple[set[str], int | None]:
    ips, port = set(), None
    for addr in listen_addrs:
        try:
            ma = multiaddr.Multiaddr(addr)
            ip = ma.value_for_protocol("ip4")
            tcp = int(ma.value_for_protocol("tcp"))
        except Exception:
            continue
        ips.add(ip)
        if port is None:
            port = tcp
    return ips, port


def _all_ipv4() -> list[str]:
    from zeroconf import get_all_addresses

    return [ip for ip in get_all_addresses() if not ip.startswith("127.")] or ["127.0.0.1"]
