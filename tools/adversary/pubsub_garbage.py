"""Malformed gossipsub RPCs: random and structure-aware, seeded.

Each generator returns ``(kind, frame)`` where ``frame`` is what goes on a
``/meshsub/1.1.0`` stream (a uvarint length, then an RPC) — sometimes with a
broken frame on purpose. The kinds aim at every place py-libp2p 0.8.1 parses
or trusts a peer's bytes: the RPC itself (``ParseFromString``), subscriptions,
published messages (sender id, key, signature, topics), the sender's signed
peer record, and each control message (IHAVE, IWANT, GRAFT, PRUNE with peer
exchange, IDONTWANT, v1.3 extensions and OBSERVE).

``valid_publish`` builds a correctly signed message as the base of the
structure-aware mutations (and of replays).
"""

from __future__ import annotations

import random
from typing import Any, Callable

from . import pbwire as pb

SIGNING_PREFIX = b"libp2p-pubsub:"
MAX_FRAME = 1024 * 1024 + 64 * 1024   # the target's max_inbound_rpc_size (node/p2p/gossip.py)

KILL_11 = b"\x0a" + b"\xff" * 10     # field 1 (subscriptions), then a length varint that never ends


def _message_body(from_id: bytes, data: bytes, seqno: bytes, topics: list[bytes],
                  signature: bytes | None = None, key: bytes | None = None) -> bytes:
    out = pb.field_len(1, from_id) + pb.field_len(2, data) + pb.field_len(3, seqno)
    for t in topics:
        out += pb.field_len(4, t)
    if signature is not None:
        out += pb.field_len(5, signature)
    if key is not None:
        out += pb.field_len(6, key)
    return out


def valid_publish(key_pair: Any, topic: str, data: bytes, seqno: bytes) -> bytes:
    """A Message signed as strict signing wants it (the libp2p pubsub signing rule)."""
    from libp2p.peer.id import ID

    from_id = ID.from_pubkey(key_pair.public_key).to_bytes()
    unsigned = _message_body(from_id, data, seqno, [topic.encode()])
    signature = key_pair.private_key.sign(SIGNING_PREFIX + unsigned)
    return _message_body(from_id, data, seqno, [topic.encode()], signature, key_pair.public_key.serialize())


class PubsubGarbage:
    """Seeded malformed RPC frames. ``topics``: the target's topics (so messages
    reach the code behind ``_is_subscribed_to_msg``)."""

    def __init__(self, rng: random.Random, key_pair: Any, topics: list[str]) -> None:
        self.rng = rng
        self.key_pair = key_pair
        self.topics = topics
        self._seq = rng.getrandbits(48)
        self.kinds: dict[str, Callable[[], bytes]] = {
            "kill_11": lambda: pb.length_prefixed(KILL_11),
            "random_bytes": lambda: pb.length_prefixed(self._bytes(1, 300)),
            "truncated_rpc": self._truncated,
            "bit_flip": self._bit_flip,
            "bad_varint_length": lambda: b"\xff" * 10 + b"\x01",
            "oversize_frame": lambda: pb.varint(MAX_FRAME + 1 + self.rng.randrange(1 << 20)) + b"\x00" * 16,
            "subscription_bad_utf8": lambda: self._rpc(pb.field_len(1, pb.field_varint(1, 1) + pb.field_len(2, b"\xc3\x28\xff"))),
            "subscription_flood": self._subscription_flood,
            "publish_bad_utf8_topic": lambda: self._rpc(pb.field_len(2, _message_body(self._from_id(), b"x", self._seqno(), [b"\xed\xa0\x80"], b"s" * 64))),
            "publish_garbage_sender_and_key": self._garbage_sender_and_key,
            "publish_garbage_key": self._garbage_key,
            "publish_bad_signature": self._bad_signature,
            "publish_no_signature": lambda: self._rpc(pb.field_len(2, _message_body(self._from_id(), b"x", self._seqno(), [self._topic()]))),
            "publish_wrong_wire_type": lambda: self._rpc(pb.field_len(2, pb.field_varint(1, 7) + pb.field_varint(4, 3))),
            "sender_record_garbage": lambda: self._rpc(pb.field_len(4, self._bytes(1, 200))),
            "ihave_garbage": self._ihave,
            "iwant_garbage": self._iwant,
            "graft_bad_topic": lambda: self._control(pb.field_len(3, pb.field_len(1, self._bytes(1, 40)))),
            "prune_px_garbage": self._prune_px,
            "prune_huge_backoff": lambda: self._control(pb.field_len(4, pb.field_len(1, self._topic()) + pb.field_varint(3, (1 << 64) - 1))),
            "idontwant_flood": lambda: self._control(pb.field_len(5, b"".join(pb.field_len(1, self._bytes(32, 32)) for _ in range(2000)))),
            "extensions_garbage": lambda: self._control(pb.field_len(6, self._bytes(1, 30))),
            "observe_garbage": lambda: self._control(pb.field_len(7, pb.field_len(1, self._bytes(1, 30)))),
            "deep_groups": lambda: self._rpc(pb.nested_groups(9, 200)),
            "unknown_fields": lambda: self._rpc(pb.field_len(15, self._bytes(0, 100)) + pb.field_varint(16, 1)),
        }

    def next(self) -> tuple[str, bytes]:
        kind = self.rng.choice(sorted(self.kinds))
        return kind, self.kinds[kind]()

    def make(self, kind: str) -> bytes:
        return self.kinds[kind]()

    # ------------------------------------------------------------ helpers
    def _bytes(self, lo: int, hi: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(lo, hi))

    def _topic(self) -> bytes:
        return self.rng.choice(self.topics).encode()

    def _seqno(self) -> bytes:
        self._seq += 1
        return self._seq.to_bytes(8, "big")

    def _from_id(self) -> bytes:
        from libp2p.peer.id import ID

        return ID.from_pubkey(self.key_pair.public_key).to_bytes()

    def _rpc(self, body: bytes) -> bytes:
        return pb.length_prefixed(body)

    def _control(self, control_body: bytes) -> bytes:
        return self._rpc(pb.field_len(3, control_body))

    def _signed(self) -> bytes:
        return valid_publish(self.key_pair, self.rng.choice(self.topics), self._bytes(1, 64), self._seqno())

    # ------------------------------------------------------------ kinds
    def _truncated(self) -> bytes:
        body = pb.field_len(2, self._signed())
        cut = body[: self.rng.randrange(1, len(body))]
        return pb.length_prefixed(cut)

    def _bit_flip(self) -> bytes:
        body = bytearray(pb.field_len(2, self._signed()))
        for _ in range(self.rng.randint(1, 4)):
            i = self.rng.randrange(len(body))
            body[i] ^= 1 << self.rng.randrange(8)
        return pb.length_prefixed(bytes(body))

    def _subscription_flood(self) -> bytes:
        subs = b"".join(pb.field_len(1, pb.field_varint(1, 1) + pb.field_len(2, b"t/%d" % self.rng.getrandbits(32)))
                        for _ in range(3000))
        return self._rpc(subs)

    def _garbage_sender_and_key(self) -> bytes:
        # A sender id that embeds no key, so libp2p falls back to ``key`` and parses it.
        body = _message_body(self._bytes(3, 40), b"x", self._seqno(), [self._topic()], self._bytes(64, 64), self._bytes(1, 40))
        return self._rpc(pb.field_len(2, body))

    def _garbage_key(self) -> bytes:
        body = _message_body(self._from_id(), b"x", self._seqno(), [self._topic()], self._bytes(64, 64), self._bytes(1, 40))
        return self._rpc(pb.field_len(2, body))

    def _bad_signature(self) -> bytes:
        body = _message_body(self._from_id(), self._bytes(1, 64), self._seqno(), [self._topic()], self._bytes(64, 64),
                             self.key_pair.public_key.serialize())
        return self._rpc(pb.field_len(2, body))

    def _ihave(self) -> bytes:
        ids = b"".join(pb.field_len(2, self._bytes(0, 80)) for _ in range(self.rng.randint(1, 50)))
        topic = self._topic() if self.rng.random() < 0.5 else self._bytes(1, 20)
        return self._control(pb.field_len(1, pb.field_len(1, topic) + ids))

    def _iwant(self) -> bytes:
        ids = b"".join(pb.field_len(1, self._bytes(0, 80)) for _ in range(self.rng.randint(1, 50)))
        return self._control(pb.field_len(2, ids))

    def _prune_px(self) -> bytes:
        peers = b"".join(pb.field_len(2, pb.field_len(1, self._bytes(0, 40)) + pb.field_len(2, self._bytes(0, 120)))
                         for _ in range(self.rng.randint(1, 20)))
        return self._control(pb.field_len(4, pb.field_len(1, self._topic()) + peers))
