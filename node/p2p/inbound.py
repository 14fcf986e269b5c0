"""Guards on what reaches the host before (or outside) our own handlers.

* :func:`guard_inbound_streams` wraps the swarm's one entry point for inbound
  streams (py-libp2p's ``BasicHost._swarm_stream_handler``: multistream-select,
  then the protocol's handler). Upstream lets any exception a handler raises
  on a peer's bytes escape into the connection's task group, which ends the
  host: a multistream-select protocol name that is not UTF-8
  (``UnicodeDecodeError`` in ``MultiselectCommunicator.read``) kills the
  process, as the pubsub ``DecodeError`` did. Ours catches what escapes the
  handler of a protocol that is not ours (libp2p's identify, identify-push,
  ping, pubsub, and the negotiation itself), counts it by protocol and reason,
  penalises the peer and resets the stream. What escapes one of *our*
  handlers (``own_protocols``: served by ``streams.RequestServer``, which turns
  every peer fault into a counted error answer) is our bug and propagates.
* :func:`count_handshake_failures` wraps the swarm's inbound upgrade (Noise,
  then Yamux) so that connections failing it are counted by reason
  (``security``, ``muxer``, ``timeout``); private-network failures are counted
  by ``pnet.py`` already and not again here. Such a peer is not authenticated,
  so there is no peer id to penalise.

Nothing here raises on a peer's input.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio

from .faults import PeerFaults

logger = logging.getLogger("node.p2p.inbound")


def _reason_of(exc: BaseException) -> str:
    from google.protobuf.message import DecodeError

    if isinstance(exc, DecodeError):
        return "decode_error"
    if isinstance(exc, UnicodeError):
        return "bad_utf8"
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError)):
        return "bad_value"
    return "handler_error"


def guard_inbound_streams(host: Any, faults: PeerFaults, own_protocols: Callable[[], set[str]],
                          admits: Callable[[str], bool] = lambda peer: True) -> None:
    """Wrap the host's inbound stream handler (see the module docstring). Idempotent.

    A stream from a peer that ``admits`` refuses (banned, or no longer allowed) is
    reset and its connection closed before multistream-select: py-libp2p can keep
    serving a connection it no longer lists (one replaced in ``swarm.connections``,
    so ``disconnect`` never reaches it), and a banned peer kept opening streams on it."""
    from libp2p.io.exceptions import IOException
    from libp2p.network.connection.exceptions import RawConnError

    network = host.get_network()
    handler = network.common_stream_handler
    if getattr(handler, "_branchnet_guard", False):
        return

    async def guarded(net_stream: Any) -> None:
        peer = str(net_stream.muxed_conn.peer_id)
        if not admits(peer):
            faults.count("allowlist", "banned_peer_stream")
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await net_stream.reset()
                    await net_stream.muxed_conn.secured_conn.close()
                except Exception:
                    pass
            return
        try:
            await handler(net_stream)
        except (IOException, RawConnError) as exc:  # the stream or connection broke: nobody's fault
            logger.debug("inbound stream ended: %r", exc)
        except Exception as exc:
            protocol = net_stream.get_protocol()
            if protocol is not None and str(protocol) in own_protocols():
                raise
            faults.report(peer, str(protocol or "multistream"), _reason_of(exc),
                          detail=f"{type(exc).__name__}: {exc}"[:200])
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await net_stream.reset()
                except Exception:
                    pass

    guarded._branchnet_guard = True  # type: ignore[attr-defined]
    network.set_stream_handler(guarded)


def _caused_by(exc: BaseException, kind: type) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def count_handshake_failures(host: Any, faults: PeerFaults, gate_drops: Callable[[], int] = lambda: 0) -> None:
    """Count inbound connections that fail the security or muxer upgrade (idempotent).
    ``gate_drops()``: connections the allowlist gate refused so far (counted there,
    as ``allowlist``: an unknown or banned peer); a failure during which it grew is
    that refusal, not a handshake failure."""
    from libp2p.network.exceptions import SwarmException
    from libp2p.transport.exceptions import MuxerUpgradeFailure, SecurityUpgradeFailure

    from .pnet import PnetError

    network = host.get_network()
    upgrade = network.upgrade_inbound_raw_conn
    if getattr(upgrade, "_branchnet_counted", False):
        return

    async def counted(raw_conn: Any, maddr: Any) -> Any:
        drops = gate_drops()
        try:
            return await upgrade(raw_conn, maddr)
        except SwarmException as exc:
            if not _caused_by(exc, PnetError) and gate_drops() == drops:
                if _caused_by(exc, SecurityUpgradeFailure):
                    reason = "security"
                elif _caused_by(exc, MuxerUpgradeFailure):
                    reason = "muxer"
                elif "timeout" in str(exc).lower():
                    reason = "timeout"
                else:
                    reason = "failed"
                faults.count("handshake", reason)
            raise

    counted._branchnet_counted = True  # type: ignore[attr-defined]
    network.upgrade_inbound_raw_conn = counted
