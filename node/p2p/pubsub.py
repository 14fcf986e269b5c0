"""py-libp2p's pubsub, hardened: every byte a peer sends on ``/meshsub/*`` is untrusted.

:class:`HardenedPubsub` subclasses py-libp2p 0.8.1's ``Pubsub`` and
:class:`HardenedGossipSub` its ``GossipSub``. What upstream does wrong, and
what we do instead (each has a test in tests/test_p2p_hostile.py, 8-12 in tests/test_p2p_gossip.py):

1. **An undecodable RPC kills the process.** ``continuously_read_stream``
   calls ``ParseFromString`` and catches no ``DecodeError``; the exception
   ends the connection's task group and then the host's (the 11-byte kill:
   a varint length, ``0x0a`` and ten ``0xff``). Ours reads each frame itself
   (bounded varint, size limit, truncation), parses it inside a guard, and on
   failure counts it, penalises the peer, resets the stream and disconnects
   the peer (the framing of the rest cannot be trusted).
2. **A message whose sender id embeds no key kills the process.** For such a
   message ``signature_validator`` parses ``msg.key`` with no guard, inside
   ``push_msg``, a task of the pubsub service: its ``DecodeError`` stops the
   service. Ours checks each published message's structure first
   (:func:`check_rpc`: the sender id must be an Ed25519 identity id of an
   admitted peer, a signature of 64 bytes, topics valid UTF-8) and guards
   ``push_msg`` as well.
3. **A topic name that is not UTF-8 kills the process.** protobuf (proto2)
   hands such a string field to Python as ``bytes``; a GRAFT for it makes
   ``emit_prune`` raise ``UnicodeDecodeError`` while assigning it back. Ours
   rejects any RPC whose topic names (subscriptions, messages, control) are
   not ``str`` of at most 256 characters.
4. **Concurrent writers interleave RPCs on one stream (the restart
   poisoning).** ``write_msg`` writes a whole RPC with one ``stream.write``,
   but Yamux sends it as frames of at most 64 KiB with an ``await`` between
   them, and up to four tasks write to the same peer's stream at once: the
   per-peer queue sender, the replay of recent messages on a new
   subscription (``send_recent_messages``), and two flushes of messages held
   during identify (``flush_pending_messages``). That happens exactly when a
   peer (re)connects, and with gossip messages over 64 KiB (record batches,
   proposals) the frames of two RPCs interleave: the receiver reads garbage
   and, with upstream's reader, dies with a ``DecodeError`` — at every
   restart while its peers are under load. Ours holds a per-stream lock for
   each RPC written. (``test_upstream_writes_poison_a_restarting_node``
   puts upstream's ``write_msg`` back on the peers: the restarted node reads
   undecodable RPCs at restarts; with the lock, none.) The same replay also
   re-delivers a hostile member's cached gossip to a restarted node; that is
   now counted and scored against its origin like any other delivery.
5. **Peer exchange dials whatever a PRUNE names.** ``_do_px`` connects to the
   peers (and addresses) in a PRUNE's peer list. Our nodes dial only the
   configured peers: PX is stripped and ``_do_px`` does nothing.
6. **Unbounded work per RPC.** Each published message becomes a task, with
   no bound; subscription, IHAVE/IWANT and IDONTWANT lists are bounded only
   loosely. Ours bounds the entries of each RPC (:data:`LIMITS`) and the
   messages in flight (:data:`MAX_PUSHES_IN_FLIGHT`; beyond it messages are
   dropped and counted: gossip is lossy anyway).
7. **Every RPC re-verifies the sender's signed peer record.** Upstream attaches
   its signed peer record to every RPC it sends, rebuilding its own address
   list (base58 and multiaddr parsing) each time, and verifies the record of
   every RPC it receives (an Ed25519 check and a peerstore update): on an idle
   network most of an RPC's cost. Ours verifies a peer's record once and then
   only when its bytes change (the same bytes verify the same way), and
   builds our own record at most every :data:`SENDER_RECORD_TTL` seconds
   (:func:`install_sender_record_cache`). Our nodes dial only configured
   peers, so nothing reads the certified addresses these records fill in.
8. **An IDONTWANT for every message.** Gossipsub v1.2 lets a node that has just
   received a message tell its mesh peers not to send it the same message;
   upstream sends one such control RPC to every mesh peer for every message it
   receives or publishes, whatever its size. For our small messages (block
   announcements, consensus fallbacks, single records) that doubles the RPCs
   a message costs the network, and saves nothing: the copy it would stop is
   no bigger than the IDONTWANT. Ours sends IDONTWANT only for messages of
   :data:`IDONTWANT_MIN_BYTES` or more, go-libp2p-pubsub's default threshold
   (``IDontWantMessageThreshold``, 1 KiB).

9. **A pruned peer is grafted again at once, and taken for a flooder.** Upstream
   records no backoff for a peer it prunes itself — in its heartbeat (mesh over
   ``D_high``) or in answer to a GRAFT (flood, graylist, not subscribed) — so
   its next heartbeat may graft that peer again within seconds; and it flags a
   GRAFT that comes within 10 s of a PRUNE *from* that peer as a flood, prunes
   it (again without a backoff) and penalises it. Two py-libp2p nodes then prune
   and graft each other in a loop, and a peer with few links (an observer with
   two) stays out of the mesh: at 16 validators + 48 observers, observers got
   blocks only from their 30 s sync poll, and records committed there up to 29 s
   late (bench_scale). Ours keeps a backoff (``prune_back_off``) for every peer
   it prunes, as go-libp2p-pubsub does (``addBackoff`` in its heartbeat and
   ``handleGraft``), so it never grafts such a peer again before the backoff the
   PRUNE announced has passed.
10. **A peer in backoff is never told what the mesh carries.** At each heartbeat a
   node sends IHAVE (the ids of its recent messages) to some peers of the topic
   outside its mesh, which fetch what they lack with IWANT: the lazy gossip that
   reaches peers no mesh holds. Upstream picks those peers with the same filter as
   peers to graft, which drops every peer in backoff — and a peer pruned from a full
   mesh is in backoff until it is grafted and pruned again. A node with few links
   (an observer linked to two validators whose meshes are full of validators) then
   received no block announcement at all, by mesh or by gossip: at 16 validators
   + 48 observers, 17 observers had 0 copies of 10 announcements in 40 s and saw
   blocks only at their quiet polls (every 10 s), which was the commit tail of
   bench_scale (p99 11.7-12.7 s at 30 records/s while blocks carried records within
   2.2 s at p99). go-libp2p-pubsub's ``emitGossip`` filters gossip targets by score,
   not backoff; ours picks them among every gossipsub peer of the topic outside the
   mesh (:meth:`HardenedGossipSub.gossip_heartbeat`), as many as upstream would.
11. **IHAVE names messages by another id than the one a node remembers.** Upstream's
   message cache (what IHAVE lists and IWANT is answered from) keys messages by
   sender and sequence number, whatever the node's message id function; the node
   then checks an IHAVE's ids against the messages it has seen, which are keyed by
   that function (ours: the content's hash). No id ever matched, so a node asked for
   every message it was told of, seen or not, and got a full copy each time: a
   peer outside a hub's mesh received 1.4-2.3 copies of each message instead of 1
   (a star of 16 on 127.0.0.1). Ours keys the cache by the node's message id
   (:class:`ContentMessageCache`).
12. **Messages to peers that have no use for them.** Whom a topic's messages go to,
   pushed to mesh peers or advertised by IHAVE, is the node's choice here
   (``gossip_to(topic, peer)``, default: everyone): a validator follows the chain
   through consensus, so block announcements go to non-validators only, and every
   validator announces the blocks it commits (node/node.py, consensus/driver.py).
   Each message or IHAVE is a pubsub RPC of about a millisecond of CPU for both
   ends in py-libp2p; with a real 1 s heartbeat (gossip.py:
   ``adaptive_gossip_enabled=False``) a validator among 15 validators and 6
   observers sent and received about 25 IHAVE per idle height, and relayed each
   announcement to the validators of its mesh, which had it from consensus.

Every rejection is reported to :class:`node.p2p.faults.PeerFaults` (counted by
protocol and reason, scored, banned past the threshold). Messages whose
origin or forwarder is banned or not admitted are dropped and counted
(``banned_origin``) without scoring the forwarder: once a member is banned,
honest peers still relay its earlier messages for a while, and penalising them
for it would let one banned member turn the validators against each other.
"""

from __future__ import annotations

import contextvars
import logging
import weakref
from collections import defaultdict
from typing import Any, Callable

import trio
from google.protobuf.message import DecodeError as ProtobufDecodeError
from libp2p.io.exceptions import IOException
from libp2p.network.connection.exceptions import RawConnError
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.mcache import CacheEntry, MessageCache
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.utils import maybe_consume_signed_record

from .faults import PeerFaults

logger = logging.getLogger("node.p2p.pubsub")

ED25519_ID_PREFIX = b"\x00\x24\x08\x01\x12\x20"  # identity multihash of a protobuf Ed25519 public key
ED25519_ID_SIZE = len(ED25519_ID_PREFIX) + 32
MAX_TOPIC_LENGTH = 256
MAX_PUSHES_IN_FLIGHT = 1024
SENDER_RECORD_TTL = 10.0  # seconds our own signed peer record is reused before it is rebuilt
LIMITS = {
    "subscriptions": 64,      # entries in one RPC
    "publish": 512,           # messages in one RPC (an IWANT answer packs several)
    "topics_per_message": 4,
    "control_entries": 512,   # IHAVE/IWANT/GRAFT/PRUNE/IDONTWANT entries in one RPC
    "message_ids": 5000,      # ids over all IHAVE / IWANT / IDONTWANT entries of one RPC
    "message_id_size": 256,
    "seqno_size": 32,
}


class RpcRejected(Exception):
    """An RPC breaks our rules: ``reason`` (metrics label), ``fault`` (scoring class)."""

    def __init__(self, reason: str, fault: str = "malformed", detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason, self.fault = reason, fault


class _FrameBroken(Exception):
    """The stream's framing is lost (bad varint, oversize, truncated)."""

    def __init__(self, reason: str, fault: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.fault = reason, fault


# -- structure checks (pure) ------------------------------------------------------

def _check_topic(topic: Any) -> None:
    if type(topic) is not str or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise RpcRejected("bad_topic", detail=f"topic {topic!r:.60}")


def check_message(msg: rpc_pb2.Message) -> None:
    """Raise RpcRejected unless ``msg`` is shaped as our nodes publish it."""
    from_id = msg.from_id
    if len(from_id) != ED25519_ID_SIZE or not from_id.startswith(ED25519_ID_PREFIX):
        raise RpcRejected("bad_sender", detail=f"sender id of {len(from_id)} bytes is not an Ed25519 peer id")
    if len(msg.signature) != 64:
        raise RpcRejected("bad_signature", fault="bad_signature", detail="signature is not 64 bytes")
    if len(msg.seqno) > LIMITS["seqno_size"]:
        raise RpcRejected("bad_seqno")
    if not 0 < len(msg.topicIDs) <= LIMITS["topics_per_message"]:
        raise RpcRejected("bad_topic", detail=f"{len(msg.topicIDs)} topics")
    for topic in msg.topicIDs:
        _check_topic(topic)


def check_rpc(rpc: rpc_pb2.RPC, admits: Callable[[str], bool]) -> int:
    """Raise RpcRejected unless every part of ``rpc`` is within :data:`LIMITS` and well-formed.
    Peer-exchange entries of PRUNEs are removed (we never dial peers a PRUNE names), and so
    are messages whose origin ``admits`` refuses (banned, or not a member); returns how many
    such messages were removed. Those do not count against the forwarder: an honest peer
    relays a message it received before we banned its origin."""
    if len(rpc.subscriptions) > LIMITS["subscriptions"]:
        raise RpcRejected("too_many_subscriptions", fault="flood")
    for sub in rpc.subscriptions:
        _check_topic(sub.topicid)
    if len(rpc.publish) > LIMITS["publish"]:
        raise RpcRejected("too_many_messages", fault="flood")
    banned_origin = 0
    for i in reversed(range(len(rpc.publish))):
        check_message(rpc.publish[i])
        if not admits(str(ID(rpc.publish[i].from_id))):
            del rpc.publish[i]
            banned_origin += 1
    if not rpc.HasField("control"):
        return banned_origin
    control = rpc.control
    entries = (len(control.ihave) + len(control.iwant) + len(control.graft) + len(control.prune)
               + len(control.idontwant) + len(control.observe) + len(control.unobserve))
    if entries > LIMITS["control_entries"]:
        raise RpcRejected("too_many_control_entries", fault="flood")
    ids = 0
    for entry in list(control.ihave) + list(control.iwant) + list(control.idontwant):
        ids += len(entry.messageIDs)
        if any(len(mid) > LIMITS["message_id_size"] for mid in entry.messageIDs):
            raise RpcRejected("bad_message_id")
    if ids > LIMITS["message_ids"]:
        raise RpcRejected("too_many_message_ids", fault="flood")
    for entry in list(control.ihave) + list(control.graft) + list(control.prune) \
            + list(control.observe) + list(control.unobserve):
        _check_topic(entry.topicID)
    for prune in control.prune:
        del prune.peers[:]  # no peer exchange: see the module docstring (5)
    return banned_origin


# -- frames -------------------------------------------------------------------------

async def read_rpc_frame(stream: Any, max_size: int) -> bytes | None:
    """One uvarint-length-prefixed frame, or None at a clean end of stream between frames.
    Raises _FrameBroken; the stream's own errors propagate."""
    length, shift = 0, 0
    for i in range(10):
        byte = await stream.read(1)
        if not byte:
            if i == 0:
                return None
            raise _FrameBroken("truncated_frame", "malformed", "stream ended inside a length prefix")
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    else:
        raise _FrameBroken("bad_frame_length", "malformed", "length prefix longer than 10 bytes")
    if length > max_size:
        raise _FrameBroken("oversize_frame", "oversize", f"frame of {length} bytes exceeds {max_size}")
    data = bytearray()
    while len(data) < length:
        chunk = await stream.read(length - len(data))
        if not chunk:
            raise _FrameBroken("truncated_frame", "malformed", f"stream ended after {len(data)} of {length} bytes")
        data += chunk
    return bytes(data)


# -- our own signed peer record (7) -----------------------------------------------------------

_own_records: weakref.WeakKeyDictionary[Any, tuple[float, tuple[bytes, bool]]] = weakref.WeakKeyDictionary()


def install_sender_record_cache() -> None:
    """Make py-libp2p's pubsub reuse a host's signed peer record for
    :data:`SENDER_RECORD_TTL` seconds instead of rebuilding its address list for
    every RPC (see the module docstring, 7). Idempotent."""
    import libp2p.pubsub.floodsub as floodsub_module
    import libp2p.pubsub.gossipsub as gossipsub_module
    import libp2p.pubsub.pubsub as pubsub_module
    from libp2p.peer.peerstore import env_to_send_in_RPC

    def cached_env_to_send_in_rpc(host: Any) -> tuple[bytes, bool]:
        now = trio.current_time()
        hit = _own_records.get(host)
        if hit is not None and now - hit[0] < SENDER_RECORD_TTL:
            return hit[1]
        envelope = env_to_send_in_RPC(host)
        _own_records[host] = (now, envelope)
        return envelope

    for module in (floodsub_module, gossipsub_module, pubsub_module):
        if getattr(module.env_to_send_in_RPC, "__name__", "") != "cached_env_to_send_in_rpc":
            module.env_to_send_in_RPC = cached_env_to_send_in_rpc


# -- the hardened classes ------------------------------------------------------------------

IDONTWANT_MIN_BYTES = 1024  # smaller messages get no IDONTWANT (8)
_forwarding_size: contextvars.ContextVar[int] = contextvars.ContextVar("forwarding_size", default=IDONTWANT_MIN_BYTES)


class ContentMessageCache(MessageCache):
    """Upstream's message cache keyed by the pubsub's own message id (11), read when the
    router stores a message (the router is attached to its pubsub by then)."""

    def __init__(self, window_size: int, history_size: int, router: Any) -> None:
        super().__init__(window_size, history_size)
        self._router = router

    def put(self, msg: rpc_pb2.Message) -> None:
        mid = self._router.pubsub.get_message_id(msg)
        if mid not in self.msgs:
            self.msgs[mid] = msg
            self.history[0].append(CacheEntry(mid, msg.topicIDs))


class HardenedGossipSub(GossipSub):
    """GossipSub that never dials the peers a PRUNE names (see the module docstring, 5),
    sends IDONTWANT only for messages of :data:`IDONTWANT_MIN_BYTES` or more (8),
    keeps a backoff for every peer it prunes (9), gossips to peers in backoff (10),
    names messages in IHAVE by the id the pubsub remembers them by (11), and pushes or
    advertises a topic's messages only to the peers ``gossip_to(topic, peer_id)`` admits (12)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gossip_to: Callable[[str, str], bool] = lambda topic, peer: True
        self.mcache = ContentMessageCache(self.mcache.window_size, self.mcache.history_size, self)
        self.idontwant_sent = 0  # IDONTWANT control messages emitted (one per mesh peer)
        self.idontwant_skipped = 0  # messages under the threshold: no IDONTWANT to any peer

    async def _do_px(self, px_peers: list[Any]) -> None:
        return None

    def mesh_heartbeat(self) -> Any:
        peers_to_graft, peers_to_prune = super().mesh_heartbeat()
        for peer, topics in peers_to_prune.items():
            for topic in topics:
                self._add_back_off(peer, topic, False)
        return peers_to_graft, peers_to_prune

    def gossip_heartbeat(self) -> Any:
        """The peers to send IHAVE to, and the ids of each topic's recent messages: as many
        peers as upstream would (``_get_adaptive_gossip_peers_count``), drawn from the
        gossipsub peers of the topic outside its mesh (or fanout), backoff or not (10),
        that ``gossip_to`` admits (12)."""
        peers_to_gossip: Any = defaultdict(dict)
        topics = [(t, peers) for t, peers in self.mesh.items()]
        topics += [(t, peers) for t, peers in self.fanout.items() if t not in self.mesh]
        for topic, current in topics:
            msg_ids = self.mcache.window(topic) if topic in self.pubsub.peer_topics else None
            if not msg_ids:
                continue
            outside = self._get_in_topic_gossipsub_peers_from_minus(topic, len(self.pubsub.peer_topics[topic]), current,
                                                                      backoff_check=False)
            count = self._get_adaptive_gossip_peers_count(topic, len(outside))
            wanted = [p for p in outside if self.gossip_to(topic, str(p))]
            for peer in self.select_from_minus(count, wanted, []):
                peers_to_gossip[peer][topic] = list(msg_ids)
        return peers_to_gossip

    def _get_peers_to_send(self, topic_ids: Any, msg_forwarder: Any, origin: Any, msg_id: bytes | None = None) -> Any:
        """The peers a message goes to (mesh, fanout, direct), less those ``gossip_to``
        does not admit for any of its topics (12)."""
        topics = list(topic_ids)
        for peer in super()._get_peers_to_send(topics, msg_forwarder, origin, msg_id):
            if any(self.gossip_to(topic, str(peer)) for topic in topics):
                yield peer

    async def emit_prune(self, topic: str, to_peer: Any, do_px: bool, is_unsubscribe: bool) -> None:
        self._add_back_off(to_peer, topic, is_unsubscribe)
        await super().emit_prune(topic, to_peer, do_px, is_unsubscribe)

    async def publish(self, msg_forwarder: Any, pubsub_msg: rpc_pb2.Message) -> None:
        # upstream's publish emits the IDONTWANTs from inside; it is told the message's size
        # through a context variable (the task's own: concurrent publishes do not mix)
        token = _forwarding_size.set(pubsub_msg.ByteSize())
        try:
            await super().publish(msg_forwarder, pubsub_msg)
        finally:
            _forwarding_size.reset(token)

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids: Any) -> None:
        if _forwarding_size.get() < IDONTWANT_MIN_BYTES:
            self.idontwant_skipped += 1
            return
        await super()._emit_idontwant_for_message(msg_id, topic_ids)

    async def emit_idontwant(self, msg_ids: list[bytes], to_peer: Any) -> None:
        self.idontwant_sent += 1
        await super().emit_idontwant(msg_ids, to_peer)


class HardenedPubsub(Pubsub):
    """Pubsub whose inbound RPCs are read, checked and dispatched under guard.

    ``faults`` receives every rejection; ``admits(peer_id)`` says whether a
    peer (a message's origin or forwarder) may be heard (allowlisted, not banned).
    """

    def __init__(self, host: Any, router: Any, *, faults: PeerFaults,
                 admits: Callable[[str], bool] = lambda peer: True, **kwargs: Any) -> None:
        super().__init__(host, router, **kwargs)
        self.faults = faults
        self.admits = admits
        self._write_locks: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()
        self._sender_records: dict[str, bytes] = {}  # peer -> the signed peer record last verified (7)
        self.pushes_in_flight = 0
        self.pushes_dropped = 0
        self.rpcs_received = 0  # every RPC read (messages, subscriptions, control such as IHAVE/GRAFT/IDONTWANT)
        self.rpcs_sent = 0
        self.copies_by_topic: dict[str, int] = {}  # topic -> published messages arriving in RPCs, duplicates included

    # -- writing (4) ---------------------------------------------------------------------
    async def write_msg(self, stream: Any, rpc_msg: rpc_pb2.RPC) -> bool:
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        async with lock:
            self.rpcs_sent += 1
            return await super().write_msg(stream, rpc_msg)

    # -- reading (1, 3, 6) ---------------------------------------------------------------------
    async def continuously_read_stream(self, stream: Any) -> None:
        peer_id = stream.muxed_conn.peer_id
        peer = str(peer_id)
        protocol = str(stream.get_protocol() or "/meshsub")
        try:
            while self.manager.is_running:
                try:
                    frame = await read_rpc_frame(stream, self.max_inbound_rpc_size)
                    if frame is None:
                        return
                    rpc = rpc_pb2.RPC()
                    try:
                        rpc.ParseFromString(frame)
                    except ProtobufDecodeError as exc:
                        raise _FrameBroken("decode_error", "malformed", str(exc)) from None
                except _FrameBroken as exc:
                    self.faults.report(peer, protocol, exc.reason, fault=exc.fault, disconnect=True, detail=str(exc))
                    await self._drop_stream(stream, peer_id)
                    return
                if not self.admits(peer):
                    self.faults.count(protocol, "banned_peer")
                    await self._drop_stream(stream, peer_id)
                    return
                try:
                    for _ in range(check_rpc(rpc, self.admits)):
                        self.faults.count(protocol, "banned_origin")
                except RpcRejected as exc:
                    self.faults.report(peer, protocol, exc.reason, fault=exc.fault, detail=str(exc))
                    continue
                await self._dispatch(peer_id, peer, protocol, rpc)
        except (IOException, RawConnError, EOFError) as exc:  # the stream or connection ended
            logger.debug("pubsub stream from %s ended: %r", peer, exc)

    async def _dispatch(self, peer_id: ID, peer: str, protocol: str, rpc: rpc_pb2.RPC) -> None:
        """Upstream's handling of a checked RPC. Upstream's code cannot tell a peer's
        garbage from its own bug; whatever it raises is counted as the peer's fault."""
        self.rpcs_received += 1
        for msg in rpc.publish:
            for topic in msg.topicIDs:
                self.copies_by_topic[topic] = self.copies_by_topic.get(topic, 0) + 1
        if rpc.HasField("senderRecord") and self._sender_records.get(peer) != rpc.senderRecord:  # (7)
            if not maybe_consume_signed_record(rpc, self.host, peer_id):
                self.faults.report(peer, protocol, "bad_sender_record", fault="invalid")
                return
            if len(self._sender_records) >= 4096:  # peers come and go; the cache must not grow for ever
                self._sender_records.clear()
            self._sender_records[peer] = rpc.senderRecord
        for msg in rpc.publish:
            if not self._is_subscribed_to_msg(msg):
                continue
            if self.pushes_in_flight >= MAX_PUSHES_IN_FLIGHT:
                self.pushes_dropped += 1
                self.faults.count(protocol, "overloaded")
                continue
            self.pushes_in_flight += 1
            self.manager.run_task(self._push_counted, peer_id, msg)
        for sub in rpc.subscriptions:
            self.handle_subscription(peer_id, sub)
        if rpc.HasField("control"):
            try:
                await self.router.handle_rpc(rpc, peer_id)
            except (IOException, RawConnError):
                raise
            except Exception as exc:
                self.faults.report(peer, protocol, "control_rejected", detail=f"{type(exc).__name__}: {exc}")

    async def _push_counted(self, forwarder: ID, msg: rpc_pb2.Message) -> None:
        try:
            await self.push_msg(forwarder, msg)
        finally:
            self.pushes_in_flight -= 1

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        if msg_forwarder == self.my_id:  # our own publish: a failure is our bug
            await super().push_msg(msg_forwarder, msg)
            return
        forwarder = str(msg_forwarder)
        if not self.admits(forwarder) or not self.admits(str(ID(msg.from_id))):
            self.faults.count("/meshsub", "banned_origin")
            return
        try:
            await super().push_msg(msg_forwarder, msg)
        except (IOException, RawConnError):
            raise
        except Exception as exc:  # (2): upstream raises on a peer's bytes inside its validation
            self.faults.report(forwarder, "/meshsub", "bad_message", detail=f"{type(exc).__name__}: {exc}")

    async def _drop_stream(self, stream: Any, peer_id: ID) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            try:
                await stream.reset()
            except Exception:
                pass
        self._handle_dead_peer(peer_id)
