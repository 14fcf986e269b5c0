"""Consensus links: one plain encrypted TCP connection per pair of validators.

Every consensus message (votes, proposals, round summaries) is a one-way
notification to each other validator. Over libp2p each one crosses Yamux
(its own frame, stream and connection locks), Noise and the private-network
layer: about a millisecond of CPU for both ends of a 200-byte vote, and a
height costs every validator 2·(N−1) of them. A link carries the same frames
(``frames.py``) on a Noise session directly, without multistream-select or
Yamux: about half the CPU per message (``python -m tools.bench_p2p``, and
docs/PERFORMANCE.md, "Consensus links"). Everything else (requests, sync,
gossip, record pushes) stays on libp2p, and so does consensus whenever a link
is down: a link is an optimisation, never the only way a message can go.

The wire (docs/PROTOCOL.md §5.6):

1. A node that offers links answers the request ``/branchnet/link/1`` (empty
   body) on its libp2p connection with its link listener's TCP port, two bytes
   big-endian; an empty answer means "no link with you".
2. Of two validators, the one whose peer id sorts first (as a string) dials:
   TCP to the IP address of the libp2p connection's far end, at that port.
3. The private-network layer exactly as on libp2p connections (``pnet.py``:
   a 24-byte nonce each way, then XSalsa20), when the network has a key.
4. Each side sends :data:`LINK_HEADER` and checks that the other sent it
   (another network key, or something that is not a link, fails here).
5. libp2p's Noise XX handshake with its signed identity payload, the dialer as
   initiator. The dialer checks it reached the peer id it meant; the listener
   keeps the link only if the dialer is a validator it wants a link with,
   allowlisted and not banned.
6. Then both directions carry notification frames (kind 0, request id 0) of
   one protocol, ``/branchnet/{chain}/consensus/2``, as one byte stream cut
   into Noise transport messages at any point. Anything else is a peer fault.

What protects the node: at most :data:`MAX_HANDSHAKES` inbound handshakes at a
time, each bounded by ``handshake_timeout``; one link per peer (a newer link
replaces the older: a restarted peer's old connection may look open); a link
lives only while the libp2p connection to its peer does; a failed dial, or a
dialed link that a peer we still want ends within :data:`STABLE_LINK`, delays
the next dial (2 s doubling to 60 s), so a peer that accepts and hangs up does
not have us redialing without a pause; frames are read by
``RequestServer`` with the limits, budgets and fault accounting of a libp2p
stream of the same protocol. A frame is written whole or the link is closed
(a frame cut by a deadline would desynchronise the peer's reader): writes are
shielded and bounded by an absolute deadline.
"""

from __future__ import annotations

import logging
import math
import random
import struct
import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

import trio

from .errors import FrameError, PeerUnavailable, RequestTimeout

logger = logging.getLogger("node.p2p.link")

LINK_PROTOCOL = "/branchnet/link/1"  # the libp2p request that tells a link's port
LINK_HEADER = b"\x12/branchnet/link/1\n"  # what each side sends first (after the PSK nonce)
DEFAULT_HANDSHAKE_TIMEOUT = 5.0
MAX_HANDSHAKES = 8  # inbound handshakes at a time; more connections are closed at once
RECHECK_INTERVAL = 10.0  # seconds between looks at which links should be up, besides the wake-ups
MIN_BACKOFF, MAX_BACKOFF = 2.0, 60.0  # after a failed dial to a peer
STABLE_LINK = 60.0  # a dialed link that ends sooner, while still wanted, counts as a failed dial
CLOSE_TIMEOUT = 1.0
READ_CHUNK = 64 * 1024  # what one read of a link asks for
_PORT = struct.Struct(">H")


class LinkRefused(Exception):
    """A link handshake failed. ``reason``: a metrics label."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def encode_port(port: int | None) -> bytes:
    """The answer to a link request: the port, or b"" for no link."""
    return b"" if port is None else _PORT.pack(port)


def decode_port(answer: bytes) -> int | None:
    """The port in a link request's answer; None for "no link". Raises ValueError."""
    if answer == b"":
        return None
    if len(answer) != _PORT.size:
        raise ValueError(f"a link port is {_PORT.size} bytes, got {len(answer)}")
    (port,) = _PORT.unpack(answer)
    if port == 0:
        raise ValueError("link port 0")
    return port


@dataclass(slots=True)
class LinkStats:
    dialed: int = 0          # links we dialed that came up
    accepted: int = 0        # links a peer dialed that we kept
    dial_failures: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # inbound link attempts dropped, by reason
    closed: int = 0
    frames_sent: int = 0
    send_failures: int = 0   # frames that went by libp2p instead: the link broke or was too slow

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


class Link:
    """One established link: a Noise session to ``peer_id``."""

    def __init__(self, peer_id: str, session: Any, conn: Any, tcp: trio.SocketStream, direction: str) -> None:
        self.peer_id = peer_id
        self.session = session  # libp2p's Noise session: frames are written through it
        self.conn = conn  # what Noise runs on (the PSK layer; TCP itself without a network key): read here
        self.tcp = tcp
        self.direction = direction
        self.since = time.time()
        self.closed = False
        self._write_lock = trio.Lock()

    async def send(self, frame: bytes, timeout: float) -> None:
        """Write ``frame`` whole within ``timeout`` seconds, or close the link and raise
        ``PeerUnavailable`` / ``RequestTimeout``. Shielded: a caller's cancellation does
        not cut a frame in half (closing the link ends a write that hangs)."""
        failure: BaseException | None = None
        with trio.CancelScope(shield=True, deadline=trio.current_time() + timeout) as scope:
            async with self._write_lock:
                if self.closed:
                    raise PeerUnavailable(f"link to {self.peer_id} is closed")
                try:
                    await self.session.write(frame)
                    return
                except Exception as exc:
                    failure = exc
        await self.close()
        if scope.cancelled_caught:
            raise RequestTimeout(f"link to {self.peer_id}: a frame write took over {timeout:g} s")
        raise PeerUnavailable(f"link to {self.peer_id} broke: {failure!r}")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await _close_quietly(self.session.close)


class _LinkStream:
    """A link as the stream ``RequestServer`` serves: its peer, reads, error frames, close.

    Reads take what the connection holds (up to :data:`READ_CHUNK`: one ``recv`` and one
    PSK decryption for every Noise message in it) and cut the Noise messages out here;
    libp2p's Noise session reads each message's 2-byte length and its body apart (two
    reads, two decryptions and their locks per consensus message)."""

    def __init__(self, link: Link, write_timeout: float) -> None:
        self.muxed_conn = SimpleNamespace(peer_id=link.peer_id)
        self._link = link
        self._write_timeout = write_timeout
        self._buf = bytearray()

    async def read(self, n: int | None = None) -> bytes:
        """The plaintext of the next Noise message. Raises ``FrameError`` (undecryptable)
        for one that fails its MAC, and libp2p's ``ConnectionClosedError`` at the end."""
        from libp2p.io.exceptions import ConnectionClosedError
        from noise.exceptions import NoiseInvalidMessage

        buf = self._buf
        while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
            chunk = await self._link.conn.read(READ_CHUNK)
            if not chunk:
                raise ConnectionClosedError("link closed" + (" inside a Noise message" if buf else ""))
            buf += chunk
        end = 2 + int.from_bytes(buf[:2], "big")
        message = bytes(buf[2:end])
        del buf[:end]
        try:
            return self._link.session.conn.decrypt(message)
        except NoiseInvalidMessage:  # its MAC failed: bytes the peer's Noise session did not write
            raise FrameError("a Noise message that does not decrypt", reason="undecryptable") from None

    async def write(self, data: bytes) -> None:
        await self._link.send(data, self._write_timeout)

    async def close(self) -> None:
        await self._link.close()


ServeLink = Callable[[str, Any], Awaitable[None]]  # (protocol id, stream) -> served until it ends


class ConsensusLinks:
    """The links of one node: its listener, the dials it owes, and the links that are up.

    ``net`` gives it what it needs of the libp2p side: ``peer_id``, ``request``,
    ``connected_peers()``, ``remote_ip(peer)`` and ``admits(peer)``. ``serve(protocol,
    stream)`` reads a link's frames (``RequestServer.serve_notifications``).
    """

    def __init__(self, key_pair: Any, net: Any, serve: ServeLink, *, host: str, port: int = 0,
                 network_key: Any = None, handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                 write_timeout: float = 10.0) -> None:
        self._key_pair = key_pair
        self._net = net
        self._serve = serve
        self._host = host
        self._want_port = port
        self._network_key = network_key
        self.handshake_timeout = handshake_timeout
        self.write_timeout = write_timeout
        self.protocol_id: str | None = None  # what links carry (carry())
        self.peers: frozenset[str] = frozenset()  # whom we want links with (set_peers())
        self.port: int | None = None  # once listening
        self.stats = LinkStats()
        self._links: dict[str, Link] = {}
        self._dialing: set[str] = set()
        self._backoff: dict[str, tuple[float, float]] = {}  # peer -> (next dial at, delay)
        self._handshakes = 0
        self._changed = trio.Event()
        self._rng = random.Random()

    # -- what to link --------------------------------------------------------------

    def carry(self, protocol_id: str) -> None:
        """Links carry ``protocol_id``'s notifications (one protocol per node)."""
        self.protocol_id = protocol_id
        self._changed.set()

    def set_peers(self, peer_ids: Any) -> None:
        """Want links with exactly ``peer_ids`` (the other validators; empty if we are none)."""
        self.peers = frozenset(peer_ids)
        self._changed.set()

    def connections_changed(self) -> None:
        """A libp2p connection opened or closed: look at which links should be up."""
        self._changed.set()

    def get(self, peer_id: str) -> Link | None:
        link = self._links.get(peer_id)
        return None if link is None or link.closed else link

    def up(self) -> dict[str, Link]:
        return {p: link for p, link in self._links.items() if not link.closed}

    async def drop(self, peer_id: str) -> None:
        """Close the link to ``peer_id`` if there is one (banned, no longer allowed)."""
        link = self._links.get(peer_id)
        if link is not None:
            await link.close()

    async def answer_port(self, peer_id: str, body: bytes) -> bytes:
        """The ``/branchnet/link/1`` handler: our port, if we want a link with ``peer_id``."""
        wanted = self.protocol_id is not None and peer_id in self.peers and self.port is not None
        return encode_port(self.port if wanted and body == b"" else None)

    def statistics(self) -> dict[str, Any]:
        return {"port": self.port, "carries": self.protocol_id, "up": len(self.up()), **asdict(self.stats)}

    # -- running -------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, keep the wanted links up; ``task_status.started()`` once listening."""
        listeners = await trio.open_tcp_listeners(self._want_port, host=self._host)
        self.port = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, self._accept, listeners)
                logger.info("consensus links listening on %s:%d", self._host, self.port)
                task_status.started()
                await self._keep_links(nursery)
        finally:
            self.port = None
            for link in list(self._links.values()):
                await link.close()

    async def _keep_links(self, nursery: trio.Nursery) -> None:
        """Dial the links we owe and close those no longer wanted, whenever something that
        decides it changes (``carry``, ``set_peers``, ``connections_changed``, a link ending,
        a dial failing), when a dial's backoff ends, and every :data:`RECHECK_INTERVAL`
        seconds besides (a ban or an allowlist change that closed no connection). No timer
        per peer: an idle node wakes here once per interval whatever its number of peers."""
        me = self._net.peer_id
        while True:
            with trio.move_on_at(self._next_look()):
                await self._changed.wait()
            self._changed = trio.Event()
            if self.protocol_id is None:
                continue
            connected = set(self._net.connected_peers())
            for peer, link in list(self._links.items()):
                if not self._wanted(peer, connected):
                    await link.close()  # its serving task removes it
            now = trio.current_time()
            for peer in sorted(self.peers & connected):
                if (me < peer and peer not in self._links and peer not in self._dialing
                        and self._backoff.get(peer, (0.0, 0.0))[0] <= now and self._net.admits(peer)):
                    self._dialing.add(peer)
                    nursery.start_soon(self._dial, peer)

    def _next_look(self) -> float:
        """When ``_keep_links`` looks again unless woken: never for a node with nothing to
        keep (an observer), else in about RECHECK_INTERVAL or when a backoff ends, if sooner."""
        if self.protocol_id is None or not (self.peers or self._links):
            return math.inf
        now = trio.current_time()
        ends = [at for peer, (at, _) in self._backoff.items() if at > now and peer in self.peers and peer not in self._links]
        return min([now + RECHECK_INTERVAL * self._rng.uniform(0.8, 1.2), *ends])

    async def _dial(self, peer: str) -> None:
        try:
            try:
                with trio.fail_after(2 * self.handshake_timeout):
                    port = decode_port(await self._net.request(peer, LINK_PROTOCOL, b"", timeout=self.handshake_timeout,
                                                               retry=False))
                    if port is None:
                        raise LinkRefused("it offers no link to us", "no_link")
                    ip = self._net.remote_ip(peer)
                    if ip is None:
                        raise LinkRefused("the libp2p connection's address is unknown", "no_address")
                    tcp = await trio.open_tcp_stream(ip, port)
                    try:
                        session, conn = await self._handshake(tcp, initiator=True, peer=peer)
                    except BaseException:
                        await _close_quietly(tcp.aclose)
                        raise
            except Exception as exc:
                self.stats.dial_failures += 1
                logger.debug("no link to %s (again in %.0f s): %s", peer, self._back_off(peer), _describe(exc))
                self._changed.set()  # look again when the backoff ends
                return
        finally:
            self._dialing.discard(peer)
        self.stats.dialed += 1
        started = trio.current_time()
        try:
            await self._serve_link(Link(peer, session, conn, tcp, "outbound"))
        finally:
            # A link that lasted ended by chance: dial again at once. One that a peer we still
            # want ended soon after the handshake is a failed dial, or a peer that accepts and
            # hangs up would have us redialing (a Noise handshake each time) without a pause.
            lasted = trio.current_time() - started
            if lasted >= STABLE_LINK or not self._wanted(peer, set(self._net.connected_peers())):
                self._backoff.pop(peer, None)
            else:
                logger.debug("link to %s ended after %.1f s (again in %.0f s)", peer, lasted, self._back_off(peer))

    def _back_off(self, peer: str) -> float:
        """Delay the next dial to ``peer``: twice the last delay (2 s to 60 s, ±20 %). Returns it."""
        _, delay = self._backoff.get(peer, (0.0, MIN_BACKOFF / 2))
        delay = min(MAX_BACKOFF, delay * 2)
        self._backoff[peer] = (trio.current_time() + delay * self._rng.uniform(0.8, 1.2), delay)
        return delay

    def _wanted(self, peer: str, connected: set[str]) -> bool:
        """A link with ``peer`` should be up: links carry a protocol, and it is a validator we
        link with, connected, admitted."""
        return self.protocol_id is not None and peer in self.peers and peer in connected and self._net.admits(peer)

    async def _accept(self, tcp: trio.SocketStream) -> None:
        if self._handshakes >= MAX_HANDSHAKES:
            self.stats.refuse("busy")
            await _close_quietly(tcp.aclose)
            return
        self._handshakes += 1
        try:
            with trio.fail_after(self.handshake_timeout):
                session, conn = await self._handshake(tcp, initiator=False)
            peer = str(session.remote_peer)
            if self.protocol_id is None or peer not in self.peers:
                raise LinkRefused(f"{peer} is not a validator we link with", "not_a_validator")
            if not self._net.admits(peer):
                raise LinkRefused(f"{peer} is not allowed or is banned", "not_admitted")
        except Exception as exc:
            reason = exc.reason if isinstance(exc, LinkRefused) else (
                "timeout" if isinstance(exc, trio.TooSlowError) else "handshake_failed")
            self.stats.refuse(reason)
            logger.info("refused a consensus link from %s: %s", _remote(tcp), _describe(exc))
            await _close_quietly(tcp.aclose)
            return
        finally:
            self._handshakes -= 1
        self.stats.accepted += 1
        await self._serve_link(Link(peer, session, conn, tcp, "inbound"))

    async def _serve_link(self, link: Link) -> None:
        old = self._links.get(link.peer_id)
        self._links[link.peer_id] = link
        if old is not None:
            await old.close()
        logger.debug("consensus link to %s up (%s)", link.peer_id, link.direction)
        try:
            await self._serve(self.protocol_id or "", _LinkStream(link, self.write_timeout))
        finally:
            await link.close()
            self.stats.closed += 1
            if self._links.get(link.peer_id) is link:
                del self._links[link.peer_id]
                self._changed.set()  # redial soon if it is still wanted
            logger.debug("consensus link to %s closed", link.peer_id)

    async def _handshake(self, tcp: trio.SocketStream, *, initiator: bool, peer: str | None = None) -> Any:
        """Steps 3–5 of the module docstring: the Noise session and the connection under
        it. Raises LinkRefused or whatever the layers below raise."""
        from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
        from libp2p.security.noise.transport import Transport as NoiseTransport

        from .host import libp2p_id_of

        conn: Any = _TcpConn(tcp, initiator)
        if self._network_key is not None:
            conn = self._network_key.protect(conn, expect=b"")
        await conn.write(LINK_HEADER)
        got = b""
        while len(got) < len(LINK_HEADER):
            chunk = await conn.read(len(LINK_HEADER) - len(got))
            if not chunk:
                raise LinkRefused("closed during the link header", "closed")
            got += chunk
        if got != LINK_HEADER:
            raise LinkRefused("not a branchnet link, or another network key", "mismatch")
        noise = NoiseTransport(self._key_pair, noise_privkey=x25519_key_pair().private_key)
        if initiator:
            assert peer is not None
            return await noise.secure_outbound(conn, libp2p_id_of(peer)), conn
        return await noise.secure_inbound(conn), conn


class _TcpConn:
    """A TCP stream as the PSK and Noise layers use it (libp2p's raw connection, minus its
    habit of dropping writes to a closed stream without a word: a link must know)."""

    def __init__(self, tcp: trio.SocketStream, initiator: bool) -> None:
        self._tcp = tcp
        self.is_initiator = initiator

    async def write(self, data: bytes) -> None:
        from libp2p.io.exceptions import ConnectionClosedError

        try:
            await self._tcp.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosedError(f"link connection closed: {exc!r}") from None

    async def read(self, n: int | None = None) -> bytes:
        try:
            return await self._tcp.receive_some(n)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def close(self) -> None:
        await self._tcp.aclose()

    def get_remote_address(self) -> tuple[str, int] | None:
        try:
            return tuple(self._tcp.socket.getpeername()[:2])
        except OSError:
            return None


async def _close_quietly(close: Callable[[], Awaitable[Any]]) -> None:
    """``await close()``, shielded, for at most CLOSE_TIMEOUT; what is already gone is no error."""
    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
        try:
            await close()
        except Exception:
            pass


def _remote(tcp: trio.SocketStream) -> str:
    try:
        host, port = tcp.socket.getpeername()[:2]
        return f"{host}:{port}"
    except Exception:
        return "an unknown address"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    return str(exc) or type(exc).__name__
