"""What the hostile member sends: seeded, pure generation of "shots".

A :class:`Shot` is one thing to send to one target, on one channel:

* ``meshsub`` — raw bytes on a fresh ``/meshsub/1.1.0`` stream (malformed
  gossipsub RPCs, ``pubsub_garbage.py``), bypassing our own pubsub;
* ``raw`` — raw bytes on a fresh stream of a ``/branchnet/...`` protocol
  (truncated, oversize, short, unknown-kind and response-kind frames);
* ``request`` — one well-framed request on a ``/branchnet/...`` protocol whose
  body is hostile: random and structure-aware mutations of valid messages,
  records with bad signatures or stale sequence numbers, votes and proposals
  from a non-validator, forged votes in a validator's name, replays of captured
  consensus messages, malformed sync requests, oversize bodies;
* ``notify`` — the same hostile bodies on the one-way ``consensus/2`` (a
  request frame with id 0, never answered), and hostile bundles there (a
  bundle nested in a bundle, empty, over 256 messages, elements that are not
  bytes, bit flips, and invalid messages mixed with garbage and replays);
* ``gossip`` — a correctly signed gossip message with a hostile payload on a
  chain topic;
* ``stream_flood`` — many concurrent streams of valid requests at once;
* ``request`` or ``notify`` with ``extra`` — equivocation, when the adversary holds a
  validator's key (``--validator-key``, a compromised validator): two prevotes,
  two precommits or two proposals for one height and round with different
  block hashes, both to the same target, which must turn them into evidence
  that is committed on chain and removes the validator from the set;
* ``tcp`` — a fresh TCP connection to the target's p2p port, below libp2p:
  bytes that are not a private-network nonce, a short nonce left hanging, the
  multistream-select header under a wrong network key, garbage under the right
  key where multistream-select or the Noise handshake should be, and a flood of
  connections that complete the nonce exchange and then say nothing. ``protocol``
  says how the runner frames ``data``: ``raw`` (as is), ``psk`` (after our nonce,
  encrypted with the network key), ``wrong_psk`` (the same under a random key)
  or ``idle_flood`` (``data`` is unused).

Nothing here does I/O: :class:`Arsenal` turns a seeded ``random.Random`` into
shots (``runner.py`` sends them). The same seed gives the same shots, except
for replays, which depend on what was captured from the network.
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable

from protocol import wire
from protocol.encoding import encode
from protocol.keys import PrivateKey
from protocol.records import Record
from protocol.schema import Fee, ServiceOffer
from protocol.votes import PRECOMMIT, PREVOTE, Proposal, Vote

from .pubsub_garbage import PubsubGarbage

FRAME_KIND_REQUEST, FRAME_KIND_RESPONSE = 0, 1
MAX_FRAME = 4 * 1024 * 1024  # the targets' request frame limit (node/p2p/frames.py)


@dataclass(frozen=True, slots=True)
class Shot:
    kind: str       # "<family>/<variant>", e.g. "records/bad_signature"
    channel: str    # meshsub | raw | request | notify | gossip | stream_flood | tcp
    protocol: str   # protocol id or gossip topic ("" for meshsub)
    data: bytes
    valid: bool = False  # True only for inputs a correct node may accept (the first copy of a fresh record)
    extra: tuple[bytes, ...] = ()  # further request bodies on the same protocol, sent right after ``data``


def _offer(service_id: str) -> ServiceOffer:
    return ServiceOffer(service_id, "fx", "Foreign exchange", "Cash exchange at the counter", ("counter",), (),
                        (Fee("Commission", 500, "CNY", "per_transaction"),), 0, "own", "", (), 0)


def _flip(data: bytes, rng: random.Random, bits: int = 3) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, bits)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


class Arsenal:
    """Seeded shots for a member ``key`` (not a validator) of chain ``chain_id``.

    ``validators``: the branch ids of the genesis validators (for forged votes);
    ``height``: a callable giving the targets' latest known height (votes aim at it);
    ``captured``: valid consensus messages seen on the network (for replays).
    """

    def __init__(self, rng: random.Random, key: PrivateKey, libp2p_key_pair: Any, chain_id: str,
                 validators: list[bytes], height: Callable[[], int], validator_key: PrivateKey | None = None) -> None:
        self.rng = rng
        self.key = key
        self.validator_key = validator_key  # a validator's key the adversary holds: it can equivocate
        self.chain_id = chain_id
        self.validators = validators
        self.height = height
        self.captured: list[bytes] = []
        self.topics = wire.Topics.of(chain_id)
        self.sync = wire.sync_protocol(chain_id)
        self.records = wire.records_protocol(chain_id)
        self.consensus = wire.consensus_protocol(chain_id)
        self.consensus_push = wire.consensus_push_protocol(chain_id)  # one way: shots go as notifications
        self.pubsub = PubsubGarbage(rng, libp2p_key_pair, [self.topics.records, self.topics.consensus,
                                                            self.topics.blocks])
        self.fresh_services: list[str] = []  # service ids of the fresh (valid) records sent, each at seq 1
        self.made_by: dict[str, str] = {}  # service id of every new record built -> kind of the shot that carried it
        self._made_now: list[str] = []
        self._sent_records: list[bytes] = []
        self.families: dict[str, Callable[[], Shot]] = {
            "pubsub": self._pubsub,
            "frame": self._frame,
            "body": self._body,
            "records": self._records,
            "consensus": self._consensus,
            "sync": self._sync,
            "gossip": self._gossip,
            "flood": self._flood,
            "conn": self._conn,
        }
        if validator_key is not None:
            self.families["equivocate"] = self._equivocate
        # how often each family is drawn (floods are expensive for us too)
        self.weights = {"pubsub": 10, "frame": 6, "body": 6, "records": 4, "consensus": 5, "sync": 3,
                        "gossip": 3, "flood": 1, "conn": 2, "equivocate": 2}

    def next(self, families: list[str] | None = None) -> Shot:
        names = [f for f in self.families if families is None or f in families]
        family = self.rng.choices(names, [self.weights[f] for f in names])[0]
        self._made_now = []
        shot = self.families[family]()
        for service_id in self._made_now:
            self.made_by[service_id] = shot.kind
        return shot

    def capture(self, data: bytes) -> None:
        """Remember a valid consensus message seen on the network (for replays)."""
        self.captured.append(data)
        del self.captured[:-64]

    # ------------------------------------------------------------ valid baselines
    def _record(self, seq: int = 1, service_id: str | None = None) -> Record:
        """A record of our branch; by default a new subject at its first sequence number."""
        # letters only: 12 random hex digits once read as an IBAN to the personal-data screen
        # ("adv-da321d4..."), and Record.create refused to build the record (a 30-minute soak died of it)
        if service_id is None:
            service_id = "adv-" + "".join(self.rng.choices("abcdefghjkmnpqrstuvwxyz", k=12))
            self._made_now.append(service_id)
        return Record.create(self.key, self.chain_id, seq, int(time.time() * 1000), _offer(service_id))

    def _vote(self) -> Vote:
        return Vote.create(self.key, self.chain_id, self.rng.choice((PREVOTE, PRECOMMIT)), max(1, self.height() + 1),
                           self.rng.randrange(3), self.rng.randbytes(32))

    def _valid_body(self, protocol: str) -> bytes:
        if protocol == self.sync:
            return encode(self.rng.choice(([wire.REQ_STATUS], [wire.REQ_BLOCKS, 1, 4],
                                           [wire.REQ_BLOCK, self.rng.randbytes(32)])))
        if protocol == self.records:
            return wire.encode_records([self._record().raw])
        return wire.encode_vote(self._vote())

    def _protocol(self) -> str:
        return self.rng.choice((self.sync, self.records, self.consensus, self.consensus_push))

    def _channel(self, protocol: str) -> str:
        """How a body goes on ``protocol``: consensus/2 is one way (never answered)."""
        return "notify" if protocol == self.consensus_push else "request"

    # ------------------------------------------------------------ families
    def _pubsub(self) -> Shot:
        kind, frame = self.pubsub.next()
        return Shot(f"pubsub/{kind}", "meshsub", "", frame)

    def _frame(self) -> Shot:
        protocol = self._protocol()
        body = self._valid_body(protocol)
        variant = self.rng.choice(("truncated", "oversize", "short", "unknown_kind", "response_kind", "garbage"))
        if variant == "truncated":
            full = struct.pack(">IBI", 5 + len(body), FRAME_KIND_REQUEST, 1) + body
            data = full[: self.rng.randrange(1, len(full))]
        elif variant == "oversize":
            data = struct.pack(">IBI", MAX_FRAME + 1 + self.rng.randrange(1 << 24), FRAME_KIND_REQUEST, 1) + body
        elif variant == "short":
            data = struct.pack(">I", self.rng.randrange(5)) + b"\x00" * 8
        elif variant == "unknown_kind":
            data = struct.pack(">IBI", 5 + len(body), self.rng.randrange(3, 256), 1) + body
        elif variant == "response_kind":
            data = struct.pack(">IBI", 5 + len(body), FRAME_KIND_RESPONSE, 1) + body
        else:
            data = self.rng.randbytes(self.rng.randint(1, 64))
        return Shot(f"frame/{variant}", "raw", protocol, data)

    def _body(self) -> Shot:
        protocol = self._protocol()
        valid = self._valid_body(protocol)
        variant = self.rng.choice(("random", "bit_flip", "truncated", "appended", "wrong_type", "deep", "huge_int",
                                   "empty"))
        if variant == "random":
            data = self.rng.randbytes(self.rng.randint(1, 512))
        elif variant == "bit_flip":
            data = _flip(valid, self.rng)
        elif variant == "truncated":
            data = valid[: self.rng.randrange(len(valid))]
        elif variant == "appended":
            data = valid + self.rng.randbytes(self.rng.randint(1, 16))
        elif variant == "wrong_type":
            data = encode(self.rng.choice(([b"x"], ["str", 1], [1, [2, [3]]], [], [None, None, None])))
        elif variant == "deep":
            data = b"\x91" * 3000 + b"\xc0"  # 3,000 nested one-element arrays
        elif variant == "huge_int":
            data = b"\x93\xcf" + b"\xff" * 8 + b"\xcf" + b"\xff" * 8 + b"\x00"
        else:
            data = b""
        return Shot(f"body/{variant}", self._channel(protocol), protocol, data)

    def _records(self) -> Shot:
        variant = self.rng.choice(("bad_signature", "stale_seq", "stale_seq", "replay", "mutated", "oversize_batch",
                                   "fresh"))
        if variant == "fresh":  # a valid record of our own branch: the one input a node may accept
            record = self._record()
            self.fresh_services.append(record.body.service_id)
            self._sent_records.append(record.raw)
            return Shot("records/fresh", "request", self.records, wire.encode_records([record.raw]), valid=True)
        if variant == "bad_signature":
            raw = self._record().raw
            data = wire.encode_records([raw[:-64] + _flip(raw[-64:], self.rng)])
        elif variant == "stale_seq":  # a subject already at seq 1 (or a gap on a new one)
            if self.fresh_services:
                data = wire.encode_records([self._record(1, self.rng.choice(self.fresh_services)).raw])
            else:
                data = wire.encode_records([self._record(seq=self.rng.randint(2, 9)).raw])
        elif variant == "replay":
            raws = self._sent_records[-4:] or [self._record(seq=1).raw]
            data = wire.encode_records(raws)
        elif variant == "mutated":
            data = wire.encode_records([_flip(self._record().raw, self.rng)])
        else:
            data = wire.encode_records([self._record().raw] * 600)  # > the 64 KiB batch limit
        return Shot(f"records/{variant}", "request", self.records, data)

    def _consensus(self) -> Shot:
        variant = self.rng.choice(("vote_non_validator", "vote_forged", "proposal_non_validator", "replay",
                                   "mutated_replay", "future_height", "bundle"))
        if variant == "bundle":
            return self._bundle()
        if variant == "vote_non_validator":
            data = wire.encode_vote(self._vote())
        elif variant == "vote_forged":  # a validator's id, our signature
            vote = self._vote()
            forged = Vote(vote.type, vote.height, vote.round, vote.block_hash, self.rng.choice(self.validators),
                          vote.signature)
            data = wire.encode_vote(forged)
        elif variant == "proposal_non_validator":
            proposal = Proposal.create(self.key, self.chain_id, max(1, self.height() + 1), 0, -1, self.rng.randbytes(32))
            data = wire.encode_proposal(proposal, None)
        elif variant in ("replay", "mutated_replay") and self.captured:
            data = self.rng.choice(self.captured)
            if variant == "mutated_replay":
                data = _flip(data, self.rng)
        else:
            vote = Vote.create(self.key, self.chain_id, PREVOTE, 10**9, 0, self.rng.randbytes(32))
            data = wire.encode_vote(vote)
        protocol = self.rng.choice((self.consensus, self.consensus_push))
        return Shot(f"consensus/{variant}", self._channel(protocol), protocol, data)

    def _bundle(self) -> Shot:
        """A hostile bundle on consensus/2 (§11.2): each element judged alone, the bundle
        itself refused whole when it breaks the format."""
        variant = self.rng.choice(("mixed", "nested", "empty", "too_many", "not_bytes", "mutated"))
        messages = [wire.encode_vote(self._vote()) for _ in range(self.rng.randint(1, 8))]
        if variant == "mixed":  # non-validator votes, garbage and replays side by side
            messages += [self.rng.randbytes(self.rng.randint(1, 64)), *self.captured[-4:]]
            self.rng.shuffle(messages)
            data = wire.encode_bundle(messages)
        elif variant == "nested":
            data = encode([wire.MSG_BUNDLE, [wire.encode_bundle(messages)]])
        elif variant == "empty":
            data = encode([wire.MSG_BUNDLE, []])
        elif variant == "too_many":
            data = encode([wire.MSG_BUNDLE, [messages[0]] * (wire.MAX_BUNDLE_MESSAGES + 1)])
        elif variant == "not_bytes":
            data = encode([wire.MSG_BUNDLE, [1, "two", [3]]])
        else:
            data = _flip(wire.encode_bundle(messages), self.rng)
        return Shot(f"consensus/bundle_{variant}", "notify", self.consensus_push, data)

    def _sync(self) -> Shot:
        variant = self.rng.choice(("blocks_zero", "blocks_huge", "blocks_far", "records_empty", "records_too_many",
                                   "unknown_op"))
        value: Any = {
            "blocks_zero": [wire.REQ_BLOCKS, 1, 0],
            "blocks_huge": [wire.REQ_BLOCKS, 1, 1 << 40],
            "blocks_far": [wire.REQ_BLOCKS, 10**12, 64],
            "records_empty": [wire.REQ_RECORDS, []],
            "records_too_many": [wire.REQ_RECORDS, [self.rng.randbytes(32) for _ in range(5000)]],
            "unknown_op": [99, 1, 2],
        }[variant]
        return Shot(f"sync/{variant}", "request", self.sync, encode(value))

    def _gossip(self) -> Shot:
        topic = self.rng.choice((self.topics.records, self.topics.consensus, self.topics.blocks))
        variant = self.rng.choice(("random", "mutated", "non_validator_vote"))
        if variant == "random":
            data = self.rng.randbytes(self.rng.randint(1, 256))
        elif variant == "non_validator_vote":
            topic, data = self.topics.consensus, wire.encode_vote(self._vote())
        elif topic == self.topics.records:
            data = _flip(wire.encode_records([self._record().raw]), self.rng)
        elif topic == self.topics.blocks:
            data = _flip(wire.encode_new_block(max(1, self.height()), self.rng.randbytes(32)), self.rng)
        else:
            data = _flip(wire.encode_vote(self._vote()), self.rng)
        return Shot(f"gossip/{variant}", "gossip", topic, data)

    def _flood(self) -> Shot:
        return Shot("flood/streams", "stream_flood", self.sync, encode([wire.REQ_STATUS]))

    def _conn(self) -> Shot:
        variant = self.rng.choice(("garbage", "short_nonce", "wrong_key", "multistream_garbage", "noise_garbage",
                                   "idle_flood"))
        header = b"\x13/multistream/1.0.0\n"
        if variant == "garbage":  # no nonce at all: random bytes from the first one
            return Shot("conn/garbage", "tcp", "raw", self.rng.randbytes(self.rng.randint(25, 2048)))
        if variant == "short_nonce":  # 10 of the 24 nonce bytes, then silence
            return Shot("conn/short_nonce", "tcp", "raw", self.rng.randbytes(10))
        if variant == "wrong_key":  # a well-formed connection start under another network key
            return Shot("conn/wrong_key", "tcp", "wrong_psk", header + b"\x07/noise\n")
        if variant == "multistream_garbage":  # the right key, then not multistream-select
            return Shot("conn/multistream_garbage", "tcp", "psk", self.rng.randbytes(self.rng.randint(1, 512)))
        if variant == "noise_garbage":  # the right key and /noise, then a hostile handshake message
            size = self.rng.choice((0, 1, 31, 32, 200, 65535))
            body = self.rng.randbytes(min(size, 4096))
            return Shot("conn/noise_garbage", "tcp", "psk", header + b"\x07/noise\n" + struct.pack(">H", size) + body)
        return Shot("conn/idle_flood", "tcp", "idle_flood", b"")

    def _equivocate(self) -> Shot:
        """Two conflicting messages signed by the held validator key for the height in progress."""
        assert self.validator_key is not None
        variant = self.rng.choice(("prevote", "precommit", "proposal"))
        height, round_ = self.height() + 1, 0
        hashes = (self.rng.randbytes(32), self.rng.randbytes(32))
        if variant == "proposal":
            bodies = [wire.encode_proposal(Proposal.create(self.validator_key, self.chain_id, height, round_, -1, h), None)
                      for h in hashes]
        else:
            kind = PREVOTE if variant == "prevote" else PRECOMMIT
            bodies = [wire.encode_vote(Vote.create(self.validator_key, self.chain_id, kind, height, round_, h))
                      for h in hashes]
        protocol = self.rng.choice((self.consensus, self.consensus_push))
        return Shot(f"equivocate/{variant}", self._channel(protocol), protocol, bodies[0], extra=(bodies[1],))
