"""Build the libp2p host of a branch node.

The host is hardened as shared/LIBP2P_NOTES.md prescribes:

- identity: the branch's own Ed25519 key (``peer_id_of`` maps a genesis public
  key to its libp2p peer id, so allowlists can be computed from the genesis file);
- security: Noise only (without an explicit ``sec_opt`` libp2p also accepts
  plaintext connections); muxer: Yamux only; one connection per peer;
- private network: the consortium pre-shared key, with the libp2p PSK v1
  construction every other libp2p implementation speaks (``pnet.py`` replaces
  py-libp2p's incompatible one); connections that fail it are counted;
- peer-id allowlist: libp2p has no peer gater, so the resource manager's
  ``open_connection`` is wrapped to refuse unknown peer ids right after the
  Noise handshake (inbound) or after the upgrade (outbound); drops are counted;
  peers banned for misbehaviour (``faults.py``) are refused the same way;
- bounded dials: libp2p retries a dial 3 times and waits up to 10 s per attempt
  on a PSK mismatch; we disable its retries (``peers.py`` owns redialing),
  lower the upgrade timeouts and bound every dial with ``trio.fail_after``;
- no auto-connector: libp2p would dial any peerstore entry while below 50
  connections; ``peers.py`` dials exactly the configured peers;
- logging: libp2p's records reach the node's logging one line each, its expected
  noise at DEBUG (``liblog.py``).

Nothing here raises on bad network input; configuration mistakes raise
``ConfigError``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import multiaddr
import trio

from protocol.keys import PrivateKey

from .errors import ConfigError, PeerUnavailable

logger = logging.getLogger("node.p2p.host")

DEFAULT_LISTEN_ADDRS = ("/ip4/127.0.0.1/tcp/0",)
YAMUX_RTT_INTERVAL = 300.0  # seconds between py-libp2p's RTT pings on each connection (upstream: 30)
YAMUX_SWEEP_INTERVAL = 120.0  # seconds between py-libp2p's stale-stream sweeps of each connection (upstream: 30)
_PSK_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def configure_libp2p_logging(level: int = logging.WARNING) -> None:
    """Route libp2p's logs into the node's logging, at ``level``, one line per
    event and its expected noise at DEBUG (``liblog.py`` says what upstream does
    wrong). Idempotent."""
    from .liblog import install

    install(level)


def keypair_of(private_key: PrivateKey) -> Any:
    """libp2p's Ed25519 ``KeyPair`` for a branch key (same seed, same public key)."""
    from libp2p.crypto.ed25519 import create_new_key_pair

    key_pair = create_new_key_pair(private_key.seed())
    assert key_pair.public_key.to_bytes() == private_key.public_key.raw
    return key_pair


@functools.lru_cache(maxsize=4096)
def libp2p_id_of(peer_id: str) -> Any:
    """py-libp2p's ``ID`` of a base58 peer id string. Memoized: base58 decoding is
    pure Python, and the peer manager asks for it every time it checks a peer."""
    from libp2p.peer.id import ID

    return ID.from_base58(peer_id)


@functools.lru_cache(maxsize=4096)
def peer_id_of(public_key_raw: bytes) -> str:
    """The libp2p peer id (base58 string) of a branch's raw 32-byte public key.
    Memoized: the validator and member sets are mapped to peer ids after every commit.
    Computed by ``node.peerid`` (8 µs; py-libp2p's ``ID.from_pubkey`` took 32 ms a key,
    two seconds of every node's start on a network of 64 members)."""
    from ..peerid import peer_id_of as compute

    return compute(public_key_raw)


def validator_peer_ids(state, me: str) -> set[str]:
    """The peer ids of the validators that sign the next two blocks of ``state`` (a
    LedgerState; governance may change the set), without ``me``."""
    return {peer_id_of(v.public_key.raw) for vs in (state.validators, state.next_validators) for v in vs} - {me}


class PeerAllowlist:
    """The set of peer ids allowed to connect; ``None`` means open (anyone with the PSK).

    Mutable at runtime (validator-set changes, observers joining). Sync and
    cheap: it is consulted inside libp2p's connection admission.
    """

    def __init__(self, peer_ids: Iterable[str] | None = None) -> None:
        self._ids: set[str] | None = None if peer_ids is None else {str(p) for p in peer_ids}

    def allows(self, peer_id: str) -> bool:
        return self._ids is None or peer_id in self._ids

    def replace(self, peer_ids: Iterable[str] | None) -> None:
        self._ids = None if peer_ids is None else {str(p) for p in peer_ids}

    def add(self, peer_id: str) -> None:
        if self._ids is not None:
            self._ids.add(str(peer_id))

    def remove(self, peer_id: str) -> None:
        if self._ids is not None:
            self._ids.discard(str(peer_id))

    @property
    def is_open(self) -> bool:
        return self._ids is None

    def snapshot(self) -> frozenset[str] | None:
        return None if self._ids is None else frozenset(self._ids)


@dataclass(slots=True)
class ConnectionStats:
    """Connection admission counters (exported as metrics by the node)."""

    dropped_inbound: int = 0   # unknown peer id dialed us; dropped after Noise
    dropped_outbound: int = 0  # we dialed a peer whose id is not allowed
    dropped_banned: int = 0    # a banned peer's connection (either direction); see faults.py
    dial_failures: int = 0
    dials: int = 0
    psk_failures: int = 0      # a connection failed the private-network layer (pnet.py)
    psk_failures_by_reason: dict[str, int] = field(default_factory=dict)
    upgrade_failures: dict[str, int] = field(default_factory=dict)  # "noise" | "yamux" -> handshakes that failed
    last_dropped: list[str] = field(default_factory=list)
    network_key: Any = None  # the PrivateNetwork (pnet.py): it counts the bytes of every connection

    @property
    def dropped(self) -> int:
        return self.dropped_inbound + self.dropped_outbound

    def record_drop(self, peer_id: str, direction: str) -> None:
        if direction == "outbound":
            self.dropped_outbound += 1
        else:
            self.dropped_inbound += 1
        self.last_dropped.append(peer_id)
        del self.last_dropped[:-16]

    def record_psk_failure(self, reason: str) -> None:
        """``reason``: "timeout", "closed" or "mismatch" (logged by pnet.py)."""
        self.psk_failures += 1
        self.psk_failures_by_reason[reason] = self.psk_failures_by_reason.get(reason, 0) + 1

    def record_upgrade_failure(self, layer: str) -> None:
        """A connection past the network key failed its ``layer`` handshake ("noise" or "yamux")."""
        self.upgrade_failures[layer] = self.upgrade_failures.get(layer, 0) + 1

    def rejections(self) -> dict[tuple[str, str], int]:
        """(layer, reason) -> count, for metrics: PSK and handshake failures, allowlist/ban drops."""
        out = {("pnet", reason): n for reason, n in self.psk_failures_by_reason.items()}
        out.update({(layer, "handshake_failed"): n for layer, n in self.upgrade_failures.items()})
        out[("allowlist", "unknown_peer_inbound")] = self.dropped_inbound
        out[("allowlist", "unknown_peer_outbound")] = self.dropped_outbound
        out[("allowlist", "banned_peer")] = self.dropped_banned
        return out

    def as_dict(self) -> dict[str, int]:
        return {
            "dropped_inbound": self.dropped_inbound,
            "dropped_outbound": self.dropped_outbound,
            "dropped_banned": self.dropped_banned,
            "dial_failures": self.dial_failures,
            "dials": self.dials,
            "psk_failures": self.psk_failures,
            # bytes on the wire, all connections (counted by the private-network layer; 0 without a network key)
            "bytes_sent": getattr(self.network_key, "bytes_sent", 0),
            "bytes_received": getattr(self.network_key, "bytes_received", 0),
        }


def gated_resource_manager(allowlist: PeerAllowlist, stats: ConnectionStats,
                           is_banned: Callable[[str], bool] = lambda peer: False) -> Any:
    """libp2p's default resource manager, refusing peer ids not in ``allowlist``
    and peers banned for misbehaviour (``is_banned``, see faults.py).

    ``open_connection`` is called once before the upgrade with ``peer_id=None``
    (let through: the peer is not authenticated yet) and once after the
    security handshake with the authenticated peer id; returning ``None``
    makes the swarm close the connection.
    """
    from libp2p.rcmgr import new_resource_manager

    manager = new_resource_manager()
    original = manager.open_connection

    def open_connection(peer_id: Any = None, endpoint_ip: str | None = None,
                        direction: str = "inbound") -> Any:
        if peer_id is not None and not allowlist.allows(str(peer_id)):
            stats.record_drop(str(peer_id), direction)
            logger.info("refusing %s connection of peer %s (%s): its peer id is not in our genesis "
                        "validators or [p2p] allowed peers", direction, peer_id, endpoint_ip or "address unknown")
            return None
        if peer_id is not None and is_banned(str(peer_id)):
            stats.dropped_banned += 1
            logger.info("refusing %s connection of peer %s (%s): banned for misbehaviour",
                        direction, peer_id, endpoint_ip or "address unknown")
            return None
        return original(peer_id, endpoint_ip=endpoint_ip, direction=direction)

    manager.open_connection = open_connection
    return manager


@dataclass(frozen=True, slots=True)
class HostConfig:
    """How to build the host. ``psk``: 64 hex chars (32 bytes), or None (dev only)."""

    listen_addrs: tuple[str, ...] = DEFAULT_LISTEN_ADDRS
    psk: str | None = None
    allowed_peers: frozenset[str] | None = None
    dial_timeout: float = 5.0
    upgrade_timeout: float = 5.0
    stream_negotiation_timeout: float = 5.0
    libp2p_log_level: int = logging.WARNING

    def __post_init__(self) -> None:
        if self.psk is not None and not _PSK_RE.match(self.psk):
            raise ConfigError("psk must be 64 hex characters (32 bytes)")
        if not self.listen_addrs:
            raise ConfigError("at least one listen address is required")
        for addr in self.listen_addrs:
            try:
                multiaddr.Multiaddr(addr)
            except Exception as exc:
                raise ConfigError(f"bad listen multiaddr {addr!r}: {exc}") from None


def build_host(private_key: PrivateKey, config: HostConfig, allowlist: PeerAllowlist, stats: ConnectionStats,
               is_banned: Callable[[str], bool] = lambda peer: False) -> Any:
    """A hardened libp2p ``BasicHost`` (not yet listening; see ``P2PNetwork.run``)."""
    configure_libp2p_logging(config.libp2p_log_level)
    # py-libp2p's yamux sends a WINDOW_UPDATE frame after every read by default
    # (PY_YAMUX_RELEASE_ON_READ=1); with 0 it credits the window in batches once half
    # of it is used, as go-yamux does. One frame per read cost ~6 % of a validator's
    # CPU under load, and request/response round trips got ~25 % faster without it
    # (python -m tools.bench_p2p). Flow control stays correct either way; an operator's
    # explicit setting wins.
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    # ... but its "partial slack" branch still credited on nearly every read: 17,588 of a
    # validator's 40,953 frames written under load were window updates (yamux_credit.py).
    from .yamux_credit import install_window_credit_batching

    install_window_credit_batching()
    # ... and an open cancelled by a request's deadline leaked one of the connection's 256
    # stream slots; with none left no new stream opens on it (stream_open.py).
    from .stream_open import install_cancel_safe_opens

    install_cancel_safe_opens()
    # ... and it pings every connection every 30 s to measure the RTT its window tuning
    # uses: at an idle validator of 16 + 48 those pings and pongs were 113 of the 145 Yamux
    # frames a minute, ~10 task steps each; measured at start and then every few minutes
    # is enough for links whose RTT does not swing (PERFORMANCE.md, "An idle validator").
    from libp2p.stream_muxer.yamux import yamux as yamux_module

    yamux_module.RTT_MEASURE_INTERVAL = YAMUX_RTT_INTERVAL
    # ... and every 30 s each connection wakes to drop the entries of streams closed with
    # unread data more than 60 s ago (a stream's slot is freed when it closes, not here):
    # a timer per connection is an idle node's cost growing with its peers, for a sweep
    # that rarely finds anything. Such entries now stay at most 3 minutes.
    yamux_module._STALE_STREAM_SWEEP_INTERVAL = YAMUX_SWEEP_INTERVAL
    from libp2p import new_host
    from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
    from libp2p.network.config import ConnectionConfig, RetryConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    from .pnet import PrivateNetwork, install

    install()
    # The nonce exchange takes one round trip; half the upgrade timeout leaves the
    # pnet layer time to drop (and count) a silent peer before the swarm gives up.
    network_key = None if config.psk is None else PrivateNetwork.from_hex(
        config.psk, handshake_timeout=config.upgrade_timeout / 2,
        on_failure=stats.record_psk_failure)
    stats.network_key = network_key
    key_pair = keypair_of(private_key)
    connection_config = ConnectionConfig(
        max_connections_per_peer=1,
        min_connections=0,
        dial_timeout=config.dial_timeout,
        inbound_upgrade_timeout=config.upgrade_timeout,
        outbound_upgrade_timeout=config.upgrade_timeout,
        inbound_stream_protocol_negotiation_timeout=config.stream_negotiation_timeout,
        outbound_stream_protocol_negotiation_timeout=config.stream_negotiation_timeout,
    )
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)},
        muxer_opt={YAMUX_ID: Yamux},
        connection_config=connection_config,
        resource_manager=gated_resource_manager(allowlist, stats, is_banned),
        psk=network_key,  # a PrivateNetwork, not upstream's hex string: see pnet.py
        negotiate_timeout=max(1, int(config.stream_negotiation_timeout)),
        listen_addrs=[multiaddr.Multiaddr(a) for a in config.listen_addrs],
    )
    # new_host does not take a RetryConfig: one attempt per dial, the peer
    # manager's redial loop does the backing off.
    network = host.get_network()
    network.retry_config = RetryConfig(max_retries=0)
    _count_upgrade_failures(network.upgrader, stats)
    # The swarm's auto-connector dials up to 200 peerstore entries whenever
    # fewer than 50 connections are open; peers.py decides whom to dial.
    network.auto_connector.maybe_connect = _no_auto_connect
    return host


async def _no_auto_connect() -> None:
    return None


def _count_upgrade_failures(upgrader: Any, stats: ConnectionStats) -> None:
    """Count Noise and Yamux handshakes that fail (py-libp2p drops the connection and logs
    at most a DEBUG line; nothing counts them). Any exception counts, not only libp2p's
    ``SecurityUpgradeFailure``: a malformed Noise message raises its own errors (a
    5-byte first message: not wrapped). Handshakes cut short by the upgrade timeout are
    not counted: that cancellation cannot be told apart from a shutdown here."""

    def counted(upgrade: Any, layer: str) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await upgrade(*args, **kwargs)
            except Exception:
                stats.record_upgrade_failure(layer)
                raise
        return wrapper

    upgrader.upgrade_security = counted(upgrader.upgrade_security, "noise")
    upgrader.upgrade_connection = counted(upgrader.upgrade_connection, "yamux")


async def dial(host: Any, addr: str, stats: ConnectionStats, timeout: float) -> str:
    """Connect to ``addr`` (a multiaddr ending in /p2p/<id>); return the peer id.

    Raises ``PeerUnavailable`` if the dial fails or takes longer than ``timeout``
    (a PSK mismatch otherwise stalls for the negotiation timeout). Lifts
    libp2p's 60 s negative dial cache first, since we decide when to redial.
    """
    from libp2p.peer.peerinfo import info_from_p2p_addr

    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception as exc:
        raise ConfigError(f"bad peer multiaddr {addr!r} (needs /p2p/<id>): {exc}") from None
    stats.dials += 1
    network = host.get_network()
    network.unblock_peer(info.peer_id)
    # libp2p dials every address its peerstore holds for the peer and may give up on a
    # stale one (a restarted peer on a new port): dial exactly the address asked for.
    host.get_peerstore().clear_addrs(info.peer_id)
    try:
        with trio.fail_after(timeout):
            await host.connect(info)
    except trio.TooSlowError:
        stats.dial_failures += 1
        raise PeerUnavailable(f"dial {addr} timed out after {timeout}s") from None
    except Exception as exc:
        stats.dial_failures += 1
        raise PeerUnavailable(f"dial {addr} failed: {exc}") from exc
    return str(info.peer_id)
