"""libp2p private networks (PSK v1) on py-libp2p connections, as every other libp2p does it.

The construction (libp2p/specs ``pnet/README.md``): right after the TCP
connection opens, before multistream-select, each side sends a random 24-byte
nonce; from then on every byte each side sends is XOR-ed with the XSalsa20
keystream of (network key, that side's nonce). There is no MAC: the key is an
admission ticket, Noise still authenticates and encrypts everything inside.

py-libp2p 0.8.1 ships its own (``libp2p/security/pnet``), which no other
implementation can talk to. What upstream does wrong, and what we do here:

1. Cipher: plain Salsa20 with an 8-byte nonce. The spec is XSalsa20 with a
   24-byte nonce (``psk.XSalsa20``).
2. Nonce timing: sent with the first write only. js-libp2p writes its nonce
   and then waits for ours before anything else, so a py-libp2p listener
   (which reads first) and a js dialer wait on each other until a timeout
   ("Unexpected EOF"). Ours goes out before we first wait for the peer.
3. Short reads: the peer's nonce is taken from a single ``read(8)``, so a nonce
   split across TCP segments fails, and a peer that sends part of one and
   goes quiet holds the task until an outer timeout, if any. We read exactly 24
   bytes within ``handshake_timeout``, then drop the connection.
4. The wrapper skips ``RawConnection.__init__``: ``is_initiator``,
   ``get_transport_addresses()`` and ``get_connection_type()`` raise
   ``AttributeError``. Ours delegates them to the wrapped connection.
5. A wrong key is noticed only when multistream-select times out (10 s per
   dial attempt by default). Every libp2p connection starts with the
   multistream-select header in both directions, so the first 20 decrypted
   bytes must be ``\\x13/multistream/1.0.0\\n``; anything else is reported at
   once as a key mismatch.

Hooking in: the swarm calls ``new_protected_conn(raw_conn, swarm.psk)`` on
every inbound and outbound TCP connection. ``install()`` replaces that name in
``libp2p.network.swarm`` (process-wide, idempotent) with ``protect``, which
wraps the connection in a ``PskConn`` for a ``PrivateNetwork`` (a host's
``swarm.psk``, set by ``host.build_host``) or a 64-hex-digit string.
There is no fallback to upstream's construction: all nodes speak PSK v1.

Failures before the peer's multistream-select header has arrived (no nonce in
time, the connection closed or broke, a key mismatch) raise ``PnetError`` (a
libp2p ``RawConnError``, so the swarm drops the connection as it does any
broken one), close the TCP connection, log one INFO line and call
``PrivateNetwork.on_failure(reason)``, once per connection.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any, Callable

import trio
from libp2p.network.connection.exceptions import RawConnError
from libp2p.network.connection.raw_connection import RawConnection

from .psk import KEY_SIZE, NONCE_SIZE, XSalsa20

logger = logging.getLogger("node.p2p.pnet")

MULTISTREAM_HEADER = b"\x13/multistream/1.0.0\n"
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


class PnetError(RawConnError):
    """The private-network layer failed: no nonce in time, or the wrong key."""


class PrivateNetwork:
    """A network key plus how its connections are guarded. Pass it as a swarm's ``psk``.

    ``on_failure(reason)`` is called once per failed connection, with reason
    ``"timeout"``, ``"closed"`` (closed or broken before the peer's nonce and
    multistream-select header arrived) or ``"mismatch"``.
    """

    def __init__(self, key: bytes, *, handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                 on_failure: Callable[[str], None] | None = None) -> None:
        if type(key) is not bytes or len(key) != KEY_SIZE:
            raise ValueError("a network key is 32 bytes")
        self.key = key
        self.handshake_timeout = handshake_timeout
        self.on_failure = on_failure
        self.bytes_sent = 0  # on the wire, every connection of this network (nonces included)
        self.bytes_received = 0
        self._open: weakref.WeakSet[PskConn] = weakref.WeakSet()

    def traffic_by_address(self) -> dict[str, tuple[int, int]]:
        """(bytes sent, bytes received) of each open connection, by the remote "host:port"."""
        return {c.peer_address: (c.bytes_sent, c.bytes_received) for c in list(self._open)}

    @classmethod
    def from_hex(cls, key_hex: str, **kwargs: Any) -> "PrivateNetwork":
        return cls(bytes.fromhex(key_hex), **kwargs)

    def protect(self, conn: Any, *, expect: bytes = MULTISTREAM_HEADER) -> "PskConn":
        """``conn`` behind this key. ``expect``: the peer's first decrypted bytes, checked
        to tell a key mismatch at once (b"": the caller checks them, as ``link.py`` does)."""
        protected = PskConn(conn, self, expect)
        self._open.add(protected)
        return protected

    def __repr__(self) -> str:  # never the key
        return f"PrivateNetwork(handshake_timeout={self.handshake_timeout})"


class PskConn(RawConnection):
    """A raw connection whose bytes are XSalsa20-encrypted per PSK v1 (see module docstring)."""

    def __init__(self, conn: Any, network: PrivateNetwork, expect: bytes = MULTISTREAM_HEADER) -> None:
        # Deliberately not RawConnection.__init__: we wrap a connection, not a stream.
        self._conn = conn
        self._network = network
        self.is_initiator = bool(getattr(conn, "is_initiator", False))
        self._peer_address = _address(conn)  # now: once the peer is gone it may be unknown
        self.bytes_sent = 0
        self.bytes_received = 0
        self._local_nonce = os.urandom(NONCE_SIZE)
        self._writer = XSalsa20(network.key, self._local_nonce)
        self._reader: XSalsa20 | None = None
        self._nonce_sent = False
        self._expect = expect  # what the next decrypted bytes must be
        self._failed: str | None = None
        self._write_lock = trio.Lock()
        self._read_lock = trio.Lock()

    async def write(self, data: bytes) -> None:
        if self._failed is not None:
            raise PnetError(self._failed)
        async with self._write_lock:
            out = self._writer.xor(data)
            if not self._nonce_sent:
                out = self._local_nonce + out
                self._nonce_sent = True
            await self._write_raw(out)

    async def read(self, n: int | None = None) -> bytes:
        if self._failed is not None:
            raise PnetError(self._failed)
        async with self._read_lock:
            if self._reader is None:
                await self._send_nonce()
                self._reader = XSalsa20(self._network.key, await self._read_nonce())
            data = await self._read_raw(n)
            if not data:
                if self._expect:
                    await self._fail("closed", "connection closed before the multistream-select header")
                return b""
            plain = self._reader.xor(data)
            if self._expect:
                await self._check_header(plain)
            return plain

    async def _send_nonce(self) -> None:
        async with self._write_lock:
            if not self._nonce_sent:
                self._nonce_sent = True
                await self._write_raw(self._local_nonce)

    async def _write_raw(self, data: bytes) -> None:
        try:
            await self._conn.write(data)
            self.bytes_sent += len(data)
            self._network.bytes_sent += len(data)
        except Exception as exc:
            if self._expect and self._failed is None:  # still in the handshake: count it
                await self._fail("closed", f"connection broke during the handshake ({type(exc).__name__})")
            raise

    async def _read_raw(self, n: int | None) -> bytes:
        try:
            data = await self._conn.read(n)
            self.bytes_received += len(data)
            self._network.bytes_received += len(data)
            return data
        except Exception as exc:
            if self._expect and self._failed is None:
                await self._fail("closed", f"connection broke during the handshake ({type(exc).__name__})")
            raise

    async def _read_nonce(self) -> bytes:
        nonce = b""
        with trio.move_on_after(self._network.handshake_timeout):
            while len(nonce) < NONCE_SIZE:
                chunk = await self._read_raw(NONCE_SIZE - len(nonce))
                if not chunk:
                    await self._fail("closed", f"connection closed after {len(nonce)} of "
                                               f"the {NONCE_SIZE} nonce bytes")
                nonce += chunk
            return nonce
        await self._fail("timeout", f"no {NONCE_SIZE}-byte nonce within "
                                    f"{self._network.handshake_timeout}s (got {len(nonce)})")
        raise AssertionError("unreachable")

    async def _check_header(self, plain: bytes) -> None:
        expect = self._expect
        if plain[:len(expect)] != expect[:len(plain)]:
            await self._fail("mismatch", "network key mismatch: the peer's first bytes are not "
                                         "multistream-select (another network.psk, or not PSK v1)")
        self._expect = expect[len(plain):]

    async def _fail(self, reason: str, message: str) -> None:
        self._failed = message
        logger.info("private network: dropping connection with %s: %s",
                    self._peer_address, message)
        if self._network.on_failure is not None:
            self._network.on_failure(reason)
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            try:
                await self._conn.close()
            except Exception:
                pass
        raise PnetError(message)

    @property
    def peer_address(self) -> str:
        """The remote "host:port" (as when the connection opened)."""
        return self._peer_address

    async def close(self) -> None:
        self._network._open.discard(self)
        await self._conn.close()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._conn.get_remote_address()

    def get_transport_addresses(self) -> list[Any]:
        return self._conn.get_transport_addresses()

    def get_connection_type(self) -> Any:
        return self._conn.get_connection_type()


def _address(conn: Any) -> str:
    try:
        host, port = conn.get_remote_address()
        return f"{host}:{port}"
    except Exception:
        return "an unknown address"


def protect(conn: Any, psk: PrivateNetwork | str) -> PskConn:
    """The swarm's ``new_protected_conn``: PSK v1 for a ``PrivateNetwork`` or a hex key."""
    network = psk if isinstance(psk, PrivateNetwork) else PrivateNetwork.from_hex(psk)
    return network.protect(conn)


def install() -> None:
    """Make every py-libp2p swarm in this process use ``protect`` (idempotent)."""
    import libp2p.network.swarm as swarm_module

    if swarm_module.new_protected_conn is not protect:
        swarm_module.new_protected_conn = protect
