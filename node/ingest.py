"""Records in and out: local submissions, pushes from peers, the records gossip topic.

Every record is decoded, pre-checked against state and mempool (cheap: no
signature work for duplicates, replays or non-members), signature-verified in
worker threads, then added to the mempool. :meth:`RecordIngest.submit` takes a
client's signed record and returns only once it is durable
(:class:`node.pending.PendingRecords`): a 202 survives any crash, and the
record is sent again after a restart until it commits or is rejected for good.
:meth:`RecordIngest.sign_and_submit` signs a record body with the node's own
branch key first, at a sequence number above everything the key ever signed
for that subject (the durable mark) and everything pending. The key is the one
the registry holds for the branch after the last block, and the branch id the
node's (node/keyring.py: it stays when the key rotates). :meth:`RecordIngest.rotate_key`
announces a new key; while that ``branch.key`` record is pending nothing else is
signed (:class:`RotationInProgress`), and it is signed only once nothing signed
with the old key is pending.

Records accepted locally leave in batches of up to 64 KiB (at most one batch
per ``flush_interval``, 100 ms, unless a batch fills up) for the validators that
will propose them, over ``/branchnet/{chain}/records/1`` (request = the batch,
answer = how many records were new): a record must reach a proposer, not every
validator, since the block carries it to the rest. A validator pushes each batch
to the upcoming proposers (:func:`upcoming_proposers`, three) it is connected
to; any other node pushes it to one connected validator, taking them in turn,
and that validator forwards the records new to it to its upcoming proposers
(one hop: a validator's push is never forwarded). So a record costs about four
pushes whatever the number of validators (it was N - 1, which at 31 validators
and 20 records/s took more CPU than consensus), and an observer's cost does not
grow with it. Every validator has its own queue and sender task
(:class:`node.push.ValidatorPushes`), so a slow validator delays only its own
copy. Gossip carries a batch only
when no validator is connected: gossipsub relays every message to every mesh
peer, so a validator would otherwise receive and decrypt each batch once per
peer (py-libp2p was about a third of a validator's CPU samples at 2,000
records/s before this; py-spy), and a push that failed is not gossiped either
(at 31 validators under load, gossiping failed pushes cost more CPU than the
machine had). Records of our own clients that are still uncommitted are sent
again, the same way — to the proposers upcoming then — ``regossip_interval``
seconds after they were sent, then after twice that, up to
``MAX_REGOSSIP_BACKOFF`` times it.

Errors: :class:`protocol.errors.RemoteProtocolError` for a bad record (the
client's or peer's fault: counted by reason), :class:`node.mempool.MempoolFull`
when the mempool is at its bound. A peer's copy of a record we already have
(:class:`node.mempool.AlreadyKnown`) is normal overlap and not counted.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

import trio

from protocol import wire
from protocol.errors import DecodeError, RemoteProtocolError, ValidationError
from protocol.consensus.proposer import proposer
from protocol.governance import KeyRotation
from protocol.hashing import sha256
from protocol.keys import PrivateKey, PublicKey
from protocol.records import Record
from protocol.schema import BranchProfile, ServiceStatus, ServiceWithdraw

from .admission import screen_body, screen_record
from .chain import Chain, verify_signatures
from .mempool import AlreadyKnown, Mempool, MempoolFull
from .metrics import NodeMetrics
from .overload import AdmissionControl, Overloaded
from .pending import PendingRecords
from .push import ValidatorPushes
from .p2p.errors import P2PError
from .p2p.faults import fault_of
from .p2p.host import peer_id_of, validator_peer_ids

log = logging.getLogger("branchnet.ingest")
MAX_REGOSSIP_BACKOFF = 8  # a record still uncommitted is re-sent after 1, 2, 4, then every 8 re-send intervals
MAX_OUTBOX_RECORDS = 65_536  # our clients' records waiting for the next batch
PUSH_PROPOSERS = 3  # record batches go to the validators proposing the next three (height, round)s


def upcoming_proposers(state: Any, count: int = PUSH_PROPOSERS) -> list[str]:
    """Peer ids of the first ``count`` distinct validators in the proposer sequence from
    the next height on (§11.1: step height + round, so these propose the next heights'
    first rounds or this height's next rounds). A record needs to reach a proposer,
    not every validator: sending it to every validator cost each record N - 1 pushes,
    which at 31 validators took more CPU than consensus (bench_scale)."""
    validators = state.validators
    found: list[str] = []
    for index in range(state.height + 1, state.height + 1 + 16 * count):  # bounded: weighted sets repeat proposers
        peer = peer_id_of(validators.get(proposer(validators, index, 0)).public_key.raw)
        if peer not in found:
            found.append(peer)
            if len(found) == count:
                break
    return found


class CatchingUp(Exception):
    """The node cannot sign for this subject yet: it does not know the network's
    height, and has no durable sequence mark of its own for it. Retry shortly."""

    reason = "catching_up"


class RotationInProgress(CatchingUp):
    """The branch's key is being rotated (node/keyring.py): the node signs no record until
    the ``branch.key`` record commits (or is rejected), nor starts a rotation while records
    signed with the old key are pending. Retry shortly."""

    reason = "key_rotation"


class RecordIngest:
    def __init__(self, chain: Chain, mempool: Mempool, metrics: NodeMetrics, network: Any, pending: PendingRecords, *,
                 key: PrivateKey | None = None, keys: Any = None, flush_interval: float = 0.1, regossip_interval: float = 3.0,
                 knows_network_height: Callable[[], bool] = lambda: True, admission: AdmissionControl | None = None,
                 on_new_records: Callable[[], None] = lambda: None):
        self.chain = chain
        self.mempool = mempool
        self.pending = pending
        self.knows_network_height = knows_network_height
        self.admission = admission or AdmissionControl()
        self.metrics = metrics
        self.net = network
        self.key = key
        self.keys = keys  # node.keyring.NodeKeys: the key in force follows the registry (a rotation, §15)
        self.chain_id = chain.genesis.chain_id
        self.runtime = chain.runtime
        self.flush_interval = flush_interval
        self.regossip_interval = regossip_interval
        self.on_new_records = on_new_records
        self.topic = wire.Topics.of(self.chain_id).records
        self.protocol = wire.records_protocol(self.chain_id)
        self.validator_peers: set[str] = set()  # the other validators' peer ids (refreshed at every commit)
        self._relays = False  # whether we are a validator: we forward records pushed to us by non-validators
        self._refresh_validators()
        chain.on_commit(lambda _block: self._refresh_validators())
        self._turn = 0  # a non-validator pushes each batch to one validator, taking them in turn
        self._local: dict[bytes, tuple[bytes, float, float]] = {}  # our uncommitted records: hash -> (raw, last sent, wait)
        self._local_added = trio.Event()  # set when _local gains a record (_regossip sleeps while it is empty)
        self._resend = 0
        self._outbox: deque[bytes] = deque()
        self._flush = trio.Event()
        self._sign_lock = trio.Lock()
        self.pushes = ValidatorPushes(network, self.protocol, metrics, on_failure=self._push_failed)
        self.received_records = 0
        self.regossiped_records = 0
        self.gossiped_batches = 0
        self.pushed_batches = 0
        self.forwarded_batches = 0
        self.outbox_dropped = 0
        network.register_handler(self.protocol, self.receive_pushed_batch)

    def _refresh_validators(self) -> None:
        state = self.chain.state
        every = validator_peer_ids(state, "")
        self.validator_peers = every - {self.net.peer_id}
        self._relays = self.net.peer_id in every
        self._next_proposers = upcoming_proposers(state) if self._relays else []  # only validators push to them

    # ------------------------------------------------------------ local clients
    async def submit(self, raw: bytes, *, signed_here: bool = False) -> Record:
        """Validate and accept one signed record from a local client; return once it is
        durable. Raises RemoteProtocolError (incl. MempoolRejected), MempoolFull or
        Overloaded (the backlog is over the finality target); all counted."""
        try:
            self.admission.admit(len(self.mempool), trio.current_time())
            record = Record.decode(raw, chain_id=self.chain_id)
            screen_record(record, profile=self._profile_of(record.branch_id))
            self.mempool.precheck(record)
            self._check_can_commit(record)
        except (RemoteProtocolError, MempoolFull, Overloaded) as exc:
            self.metrics.reject("api", exc.reason)
            raise
        try:
            await self.runtime.run_sync(record.verify, self.chain.state.members[record.branch_id])
        except RemoteProtocolError as exc:
            self.metrics.reject("api", exc.reason)
            self.mempool.reject_invalid_signature(record)
            raise
        self.mempool.add(record)
        try:
            await self.pending.persist(record, signed_here=signed_here)
        except BaseException:
            self.mempool.remove([record])  # not acknowledged: not ours to send
            raise
        self._accepted_locally(record)
        return record

    def _accepted_locally(self, record: Record) -> None:
        self._track_local(record, trio.current_time())
        self.admission.accepted(record.hash, len(self.mempool) - 1, trio.current_time())
        self.metrics.mempool_records.set(len(self.mempool))
        self._queue(record.raw)
        self.on_new_records()

    async def sign_and_submit(self, body: Any) -> Record:
        """Sign ``body`` with the node's branch key and submit it. The sequence number is
        above every number the key signed for the subject (the durable mark), pending
        ones included, so the branch never signs two records with one number.
        Consecutive calls get consecutive numbers. A status or withdrawal needs an
        offer, committed or pending here. Raises like submit, CatchingUp while the
        node knows neither its own mark for the subject nor the network's height, and
        RotationInProgress while the branch's key rotation is pending (or, for a
        ``branch.key`` body, while other records of the branch are)."""
        async with self._sign_lock:
            branch_id, key = self._signing_key()
            self._check_rotation(branch_id, rotating=isinstance(body, KeyRotation))
            return await self._sign_locked(branch_id, key, body)

    async def rotate_key(self, new_key: PrivateKey) -> tuple[Record, str]:
        """Submit the ``branch.key`` record announcing ``new_key``, signed by the key in force
        (node/keyring.py). Returns (record, "submitted"), or (the record, "pending") if
        it was submitted before and waits to commit. Raises RotationInProgress while
        records of the branch signed with the current key are pending or another
        rotation is, and like sign_and_submit."""
        async with self._sign_lock:
            branch_id, key = self._signing_key()
            waiting = self._own_rotation(branch_id)
            if waiting is not None and waiting.body.public_key == new_key.public_key.raw:
                return waiting, "pending"
            self._check_rotation(branch_id, rotating=True)
            return await self._sign_locked(branch_id, key, KeyRotation(new_key.public_key.raw)), "submitted"

    def _own_rotation(self, branch_id: bytes) -> Record | None:
        """Our ``branch.key`` record waiting in the mempool, if any."""
        record = self.mempool.newest(branch_id, "key")
        return record if record is not None and record.seq >= self.chain.state.next_seq(branch_id, "key") else None

    def _check_rotation(self, branch_id: bytes, *, rotating: bool) -> None:
        """Nothing we sign may fall on the wrong side of a key rotation: while our
        ``branch.key`` record is pending no record is signed (the old key's would not
        commit after it, the new key's not before it), and a rotation starts only once
        nothing signed with the old key is pending."""
        if self.keys is None:
            return
        if self.pending.open_count(branch_id, "key"):
            self.metrics.reject("api", RotationInProgress.reason)
            raise RotationInProgress("this branch's key rotation is waiting to commit; records are signed with the "
                                     "new key once it has; retry")
        waiting = self.pending.open_count(branch_id) if rotating else 0
        if waiting:
            self.metrics.reject("api", RotationInProgress.reason)
            raise RotationInProgress(f"{waiting} record(s) of this branch signed with the current key are still "
                                     "pending; the key rotates once they have committed; retry")

    async def _sign_locked(self, branch_id: bytes, key: PrivateKey, body: Any) -> Record:
        subject = body.subject()
        if isinstance(body, (ServiceStatus, ServiceWithdraw)):
            self._check_offered(branch_id, body.service_id)
        mark = self.pending.high_water(branch_id, subject)
        if mark is None and not self.knows_network_height():
            self.metrics.reject("api", CatchingUp.reason)
            raise CatchingUp(f"the node is still learning the network's height; retry ({subject} has no sequence mark)")
        screen_body(body, profile=self._profile_of(branch_id))
        seq = self.mempool.next_seq(branch_id, subject)
        if mark is not None and mark >= seq:
            # we signed up to ``mark`` but the mempool holds less: an acknowledged record of this
            # subject is not back in it yet (a full mempool at restart). Signing ``seq`` would
            # sign a second record with a number already signed; ``mark + 1`` could not commit.
            self.metrics.reject("api", CatchingUp.reason)
            raise CatchingUp(f"{subject}: record {mark} is still being re-sent; retry")
        record = Record.create(key, self.chain_id, seq, self.runtime.wall_ms(), body, branch_id=branch_id)
        return await self.submit(record.raw, signed_here=True)

    def _signing_key(self) -> tuple[bytes, PrivateKey]:
        """(branch id, the key that signs its records now). Raises ValidationError when the
        registry holds no key of this node's (not a member, or a key replaced by governance)."""
        if self.keys is None:
            if self.key is None:
                raise RuntimeError("this node has no branch key to sign with")
            return self.key.branch_id, self.key
        key = self.keys.record_key(self.chain.state)
        if key is None:
            self.metrics.reject("api", "no_signing_key")
            raise ValidationError("the registry holds no key of this node's branch (not a member, or its key was "
                                  "replaced by governance)", field="record.branch_id", reason="no_signing_key")
        return self.keys.branch_id, key

    async def recover_pending(self) -> int:
        """After a restart: every record acknowledged before and not committed goes back
        into the mempool and out to the validators again; one that can no longer
        commit is rejected with its reason. Returns how many were recovered."""
        recovered = 0
        for record_hash, raw in self.pending.recover():
            try:
                record = Record.decode(raw, chain_id=self.chain_id)
                self.mempool.precheck(record)
                await self.runtime.run_sync(record.verify, self.chain.state.members[record.branch_id])
                self.mempool.add(record)
            except MempoolFull:
                self.pending.track(record)  # still pending: a re-send round brings it back
                self._track_local(record, float("-inf"))
                continue
            except AlreadyKnown:
                self.pending.reject(record_hash, "superseded")  # its number was taken while we were down
                continue
            except RemoteProtocolError as exc:
                self.pending.reject(record_hash, exc.reason)
                continue
            self.pending.track(record)
            self._accepted_locally(record)
            recovered += 1
        return recovered

    def _profile_of(self, branch_id: bytes) -> BranchProfile | None:
        """The branch's profile a new record is screened against: the newest one
        waiting in the mempool, else the committed one (its declared public numbers)."""
        pending = self.mempool.newest(branch_id, "profile")
        if pending is not None:
            return pending.body
        entry = self.chain.state.entry(branch_id, "profile")
        return entry.body if entry is not None and isinstance(entry.body, BranchProfile) else None

    def _check_can_commit(self, record: Record) -> None:
        """A client's record is acknowledged only if it can commit after what is committed
        and pending: its sequence number is the next one (no gap), and a status or
        withdrawal names a service on offer. (Peers' records may arrive out of order and
        wait in the mempool; a 202 promises more.)"""
        expected = self.mempool.next_seq(record.branch_id, record.subject)
        if record.seq > expected:
            raise ValidationError(f"seq {record.seq} leaves a gap: the next for {record.subject} is {expected}",
                                  field="record.seq", reason="seq_gap")
        body = record.body
        if isinstance(body, (ServiceStatus, ServiceWithdraw)):
            self._check_offered(record.branch_id, body.service_id, count=False)

    def _signed_by_announced_key(self, record: Record) -> bool:
        """Whether ``record`` (its signature failed under the key in force here) is signed by
        the key its branch announced in a ``branch.key`` record waiting in our mempool: a
        peer that committed the rotation before us relays records signed by the new key
        (node/keyring.py). Not valid here yet, and not the peer's fault."""
        announced = self.mempool.newest(record.branch_id, "key")
        if announced is None or not isinstance(announced.body, KeyRotation):
            return False
        try:
            record.verify(PublicKey(announced.body.public_key))
        except RemoteProtocolError:
            return False
        return True

    def _check_offered(self, branch_id: bytes, service_id: str, *, count: bool = True) -> None:
        subject = f"service/{service_id}"
        entry = self.chain.state.entry(branch_id, subject)
        pending = self.mempool.next_seq(branch_id, subject) > self.chain.state.next_seq(branch_id, subject)
        if not pending and (entry is None or entry.body is None):
            if count:
                self.metrics.reject("api", "no_such_service")
            raise ValidationError(f"service {service_id!r} is not on offer", field="body.service_id", reason="no_such_service")

    def _queue(self, raw: bytes) -> None:
        if len(self._outbox) >= MAX_OUTBOX_RECORDS:
            self._outbox.popleft()  # still in _local: the next re-send round carries it
            self.outbox_dropped += 1
        self._outbox.append(raw)
        self._flush.set()

    # ------------------------------------------------------------ service
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        incoming = await self.net.subscribe(self.topic)
        async with trio.open_nursery() as nursery:
            self.pushes.start(nursery)
            nursery.start_soon(self._sender)
            nursery.start_soon(self._receiver, incoming)
            nursery.start_soon(self._regossip)
            task_status.started()

    def statistics(self) -> dict[str, int]:
        return {"received_records": self.received_records, "pushed_batches": self.pushed_batches,
                "forwarded_batches": self.forwarded_batches,
                **self.pushes.statistics(), "gossiped_batches": self.gossiped_batches,
                "regossiped_records": self.regossiped_records, "uncommitted_local": len(self._local),
                "outbox_dropped": self.outbox_dropped,
                "admission_limit": self.admission.limit, "admission_refused": self.admission.refused,
                "admission_cuts": self.admission.cuts}

    def _track_local(self, record: Record, sent: float) -> None:
        """Keep ``record`` (ours, last sent at ``sent``) for re-sending until it is committed."""
        self._local[record.hash] = (record.raw, sent, self.regossip_interval)
        self._local_added.set()

    async def _regossip(self) -> None:
        """Deliveries can be lost (gossip drops, a validator restarts and forgets its
        mempool): re-send our clients' records still uncommitted ``regossip_interval``
        after they were last sent. Records that left the mempool (committed,
        superseded, dropped) are forgotten. With none of ours uncommitted (an idle node,
        an observer nobody submits to) this task sleeps until one arrives."""
        while True:
            if not self._local:
                self._local_added = trio.Event()
                await self._local_added.wait()
            await trio.sleep(self.regossip_interval / 2)
            due = self._due_for_resend(trio.current_time())
            if due:
                self._resend += 1
                self.regossiped_records += len(due)
                for raw in due:
                    self._queue(raw)

    def _due_for_resend(self, now: float) -> list[bytes]:
        """Forget our records that left the mempool; return (and mark sent at ``now``)
        those whose wait has passed since they were last sent: ``regossip_interval``,
        then twice that after each re-send, up to ``MAX_REGOSSIP_BACKOFF`` times it. A
        record uncommitted for long is one the network is slow to take, and re-sending
        it to every validator every 3 s was most of 16 validators' traffic while their
        heights were stuck (bench_scale: 117 pushes served per validator per height)."""
        for h in [h for h in self._local if h not in self.mempool]:
            del self._local[h]
        cap = self.regossip_interval * MAX_REGOSSIP_BACKOFF
        due = [h for h, (_, sent, wait) in self._local.items() if now - sent >= wait]
        for h in due:
            raw, _, wait = self._local[h]
            self._local[h] = (raw, now, min(wait * 2, cap))
        return [self._local[h][0] for h in due]

    # ------------------------------------------------------------ out
    async def _sender(self) -> None:
        while True:
            await self._flush.wait()
            self._flush = trio.Event()
            await trio.sleep(self.flush_interval)  # let a batch build up
            pending, self._outbox = list(self._outbox), deque()  # later submissions set _flush again
            for batch in wire.record_batches(pending):
                await self._send_batch(batch)

    async def _send_batch(self, batch: list[bytes]) -> None:
        """Push ``batch`` straight to the validators that will propose it: a validator to
        the upcoming proposers it is connected to (:func:`upcoming_proposers`; to every
        validator it is connected to if none of them is); any other node to one
        connected validator, in turn, which forwards it to them
        (:meth:`receive_pushed_batch`). Gossip carries it only when no validator is
        connected. Each validator has its own queue and sender task, so a slow one
        delays only itself."""
        targets = self._connected_validators()
        if not targets:
            await self._gossip(wire.encode_records(batch, self._resend))
            return
        if not self._relays:
            healthy = self.pushes.healthy(targets) or targets
            targets = [healthy[self._turn % len(healthy)]]
            self._turn += 1
        else:
            targets = [p for p in self._next_proposers if p in targets] or targets
        self.pushes.push(targets, batch, self._resend)
        self.pushed_batches += 1

    def _connected_validators(self) -> list[str]:
        return sorted(self.validator_peers.intersection(self.net.connected_peers()))

    def _push_failed(self, peer: str, raws: list[bytes], resend: int) -> None:
        """A push to ``peer`` failed; its records are left to the sender's re-sends (3 s,
        6 s, 12 s, then every 24 s). A non-validator, which pushed the batch to this
        validator only, also hands it to another healthy validator at once (taking
        validators in turn, it would otherwise send every other batch, re-sends included,
        into a slow or half-dead link). Never gossiped: a validator that is slow or
        overloaded would get gossip through the same process, and every node would pay
        4-5 ms per copy (at 31 validators under load that feedback stalled the network:
        bench_scale, docs/PERFORMANCE.md)."""
        if not self._relays:
            others = self.pushes.healthy([p for p in self._connected_validators() if p != peer])
            if others:
                self.pushes.push(others[:1], raws, resend)

    async def _gossip(self, data: bytes) -> None:
        try:
            await self.net.publish(self.topic, data)
            self.gossiped_batches += 1
            self.metrics.record_batches_sent.labels("gossip").inc()
        except (P2PError, trio.TooSlowError) as exc:
            log.warning("record batch publish failed (re-sent while uncommitted): %s", exc)

    # ------------------------------------------------------------ in
    async def receive_pushed_batch(self, peer: str, data: bytes) -> bytes:
        """Server side of /branchnet/{chain}/records/1: answers [0, new records] or [2, reason]."""
        try:
            raws = wire.decode_records(data)
        except RemoteProtocolError as exc:
            self.metrics.reject("push", exc.reason)
            self.net.penalize(peer, exc.reason, fault=fault_of(exc), protocol="records")
            return wire.response(wire.BAD_REQUEST, exc.reason)
        digests = [sha256(raw) for raw in raws]
        added = await self._accept(raws, "push", peer, digests)
        if self._relays and peer not in self.validator_peers:
            self._forward(peer, raws, digests)
        return wire.response(wire.OK, added)

    def _forward(self, peer: str, raws: list[bytes], digests: list[bytes]) -> None:
        """A non-validator pushes to one validator: we take its records to our upcoming
        proposers — those of the batch our mempool holds, new or not: a re-send of records
        we already hold means they have not committed yet, and the proposers upcoming now
        may not be those we forwarded them to. A validator's push is never forwarded: one
        hop, no loops."""
        held = [raw for raw, digest in zip(raws, digests) if digest in self.mempool]
        connected = self._connected_validators()
        targets = [p for p in self._next_proposers if p in connected and p != peer]
        if held and targets:
            self.pushes.push(targets, held, 0)
            self.forwarded_batches += 1
            self.metrics.record_batches_sent.labels("forward").inc()

    async def _receiver(self, incoming: Any) -> None:
        async for peer, data in incoming:
            try:
                raws = wire.decode_records(data)
            except RemoteProtocolError as exc:
                self.metrics.reject("gossip", exc.reason)
                self.net.penalize(peer, exc.reason, fault=fault_of(exc), protocol="records")
                continue
            await self._accept(raws, "gossip", peer)

    async def _accept(self, raws: list[bytes], source: str, peer: str, digests: list[bytes] | None = None) -> int:
        """Check and add a peer's records (``digests``: their hashes, if the caller has
        them) to the mempool; returns how many were new. A copy of a record we hold, or
        one rejected lately, costs a hash lookup, not a decode. Records that do not
        decode, or whose signature does not verify, penalise ``peer``; other rejections
        may depend on our state and are only counted."""
        fresh: list[Record] = []
        for raw, digest in zip(raws, digests or [sha256(raw) for raw in raws]):
            try:
                self.mempool.precheck_hash(digest)
                record = Record.decode(raw, chain_id=self.chain_id, digest=digest)
                self.mempool.precheck(record)
                screen_record(record, profile=self._profile_of(record.branch_id))
            except AlreadyKnown:
                continue  # the normal overlap of peers' copies
            except DecodeError as exc:
                self.metrics.reject(source, exc.reason)
                self.net.penalize(peer, exc.reason, fault="malformed", protocol="records")
                continue
            except (RemoteProtocolError, MempoolFull) as exc:
                self.metrics.reject(source, exc.reason)
                continue
            fresh.append(record)
        good = await verify_signatures(fresh, self.chain.state.members, self.runtime)
        added = 0
        for record in fresh:
            if record.hash not in good:
                if self._signed_by_announced_key(record):  # ahead of our chain, not the peer's fault: a
                    self.metrics.reject(source, "key_not_in_force")  # re-send brings it back once we commit
                    continue
                self.mempool.reject_invalid_signature(record)
                self.metrics.reject(source, "bad_signature")
                self.net.penalize(peer, "bad_signature", fault="bad_signature", protocol="records")
                continue
            try:
                self.mempool.add(record)
                added += 1
            except AlreadyKnown:
                pass
            except (RemoteProtocolError, MempoolFull) as exc:
                self.metrics.reject(source, exc.reason)
        self.received_records += added
        if added:
            self.metrics.mempool_records.set(len(self.mempool))
            self.on_new_records()
        return added
