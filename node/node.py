"""``BranchNode``: one branch's daemon, assembled from its home directory.

Components (each a trio service started with ``nursery.start``), and what
each is handed — explicitly, nobody reaches through another for it:

* the transport — :class:`node.p2p.P2PNetwork` (libp2p: Noise, Yamux, pnet,
  allowlist, gossip, streams, redial), or any object with its interface
  (tests pass :class:`node.p2p.memory.MemoryNetwork`);
* :class:`node.ingest.RecordIngest` — records from the API and peers into the
  mempool, batched out to validators;
* :class:`node.sync.SyncServer` / :class:`node.sync.BlockSync` — serve blocks,
  catch up when behind;
* :class:`node.consensus.ConsensusDriver` — validators only: owns the
  consensus state machine;
* the HTTP API (:mod:`node.api`), when enabled.

The shared state they work on: :class:`node.chain.Chain` (committed state,
the commit path), :class:`node.mempool.Mempool`, :class:`node.candidates.CandidateBlocks`,
:class:`node.store.Store`, :class:`node.metrics.NodeMetrics`, and the
:class:`node.runtime.Runtime` (wall time, worker threads).

``run()`` reports ready via ``task_status.started(self)`` once the node listens,
and shuts everything down when cancelled (SIGINT/SIGTERM in ``branchnet run``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable

import trio

from protocol import pii, records, state_tree, wire
from protocol.errors import RemoteProtocolError
from protocol.genesis import Genesis
from protocol.keys import PrivateKey

from .candidates import CandidateBlocks
from .chain import Chain
from .config import Config, Home
from .consensus import ConsensusDriver
from .consensus.wal import open_wal
from .errors import ConfigError
from .gcfreeze import freeze_state_objects
from .home import read_psk
from .ingest import RecordIngest
from .keyring import NodeKeys
from .mempool import Mempool
from .metrics import NodeMetrics
from .p2p.host import peer_id_of
from .p2p.network import P2PConfig, P2PNetwork
from .overload import AdmissionControl
from .p2p.peers import PeerBook
from .pending import PendingRecords
from .runtime import REAL, Runtime
from .store import Store
from .sync import BlockSync, SyncClient, SyncServer

_PEER_ID = re.compile(r"(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{40,60}")
log = logging.getLogger("branchnet.node")

Transport = Callable[[PrivateKey, P2PConfig, PeerBook], Any]
ROTATION_GRACE_HEIGHTS = 20  # a member's old peer id stays allowed this long after its own key rotation


def load_genesis(path: Path) -> Genesis:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: genesis file not found (see `branchnet genesis --help`)") from None
    try:
        return Genesis.loads(data)
    except RemoteProtocolError as exc:
        raise ConfigError(f"{path}: invalid genesis: {exc}") from None


def check_against_genesis(config: Config, genesis: Genesis, source: Path) -> None:
    """Raise ConfigError where a local setting contradicts the genesis file.

    ``[consensus] max_block_records`` is a local cap under the chain parameter of the
    same name: every validator refuses a block above the chain's value, so a larger
    local value can only mislead its reader. Governance may lower the chain's value
    later (never above genesis, PROTOCOL.md §15.2); block building then takes the lower.
    """
    local, chain = config.consensus.max_block_records, genesis.params.max_block_records
    if local > chain:
        raise ConfigError(f"{source} [consensus] max_block_records = {local} exceeds the genesis parameter "
                          f"max_block_records = {chain} of chain {genesis.chain_id} (every validator refuses larger "
                          f"blocks); set it to at most {chain} in {source}")


class BranchNode:
    def __init__(self, home: Path | Home, *, config: Config | None = None, api: bool = True,
                 transport: Transport = P2PNetwork, runtime: Runtime = REAL):
        self.home = home if isinstance(home, Home) else Home(Path(home))
        self.config = config or self.home.load_config()
        self.runtime = runtime
        # Every file is checked before anything is written: a damaged home stops the node
        # with one line and changes nothing (the operator's recovery starts from it as it was).
        self.keys = NodeKeys(self.home)
        self.branch_id = self.keys.branch_id  # stays when the key rotates (§15)
        self.genesis = load_genesis(self.home.genesis)
        check_against_genesis(self.config, self.genesis, self.home.config)
        psk = read_psk(self.home.psk(self.config))
        self.metrics = NodeMetrics()
        self.home.data.mkdir(exist_ok=True, mode=0o700)
        self.store = Store(self.home.db, self.genesis)
        state = self.store.load_state()
        freeze_state_objects(self.store)
        self.keys.reconcile(state)  # a rotation that committed while the node was down is finished first
        # The libp2p identity: the newest key the chain has given us (node_key.json), whose peer
        # id the other nodes' allowlists take from the registry — also when our store is behind
        # (restored from a backup older than a rotation). What signs is picked per use: a record
        # by the key the registry holds after the last block (NodeKeys.record_key), a consensus
        # height by the key its validator set holds (a retired key signs the height after its
        # rotation; a pending key nothing until it commits).
        self.key = self.keys.current
        if self.keys.record_key(state) is None and self.branch_id in state.members:
            log.error("the registry holds key %s for branch %s, which is in none of this home's key files: this "
                      "node cannot sign for its branch (install that key as %s)", state.members[self.branch_id].hex(),
                      self.branch_id.hex(), self.home.key)
        self.restart_requested = trio.Event()  # set when the node stops to come back with its new key
        # A validator-mode node runs consensus: it signs at the heights whose validator set
        # (genesis, then governance, §15) holds its key and follows the others.
        self.runs_consensus = self.config.node.mode == "validator"
        if self.runs_consensus and self.branch_id not in state.validators:
            self._warn_not_a_validator(state)
        self.wal = open_wal(self.home) if self.runs_consensus else None
        if self.wal is not None:
            self.wal.load()
        self.mempool = Mempool(state, max_records=self.config.mempool.max_records, max_bytes=self.config.mempool.max_bytes)
        self.candidates = CandidateBlocks()
        self.chain = Chain(self.genesis, self.store, state, mempool=self.mempool, candidates=self.candidates,
                           metrics=self.metrics, runtime=runtime, halt_height=self.config.consensus.halt_height)
        self.halted = trio.Event()  # set once [consensus] halt_height is committed; the node then stops
        self._observers = set(self.store.observers())  # the store's, kept here: the allowlist is recomputed every block
        # A member that rotated its key by its own branch.key record keeps its old peer id for
        # ROTATION_GRACE_HEIGHTS: its node learns of the block that committed the rotation over a
        # connection under the old id, then restarts with the new one (node/keyring.py). Kept in
        # the store, so a restart inside the window keeps letting it in.
        self._rotation_grace: dict[str, int] = self.store.rotation_grace()  # old peer id -> last height allowed
        self._member_keys = {bid: key.raw for bid, key in state.members.items()}  # the registry's keys at:
        self._member_keys_height = state.height
        allowed = self._allowed = self._allowed_peers(state)
        book = PeerBook()
        for addrs in self.store.load_peers().values():
            for a in addrs:
                book.add(a, persistent=False)
        p2p_config = P2PConfig(listen_addrs=tuple(self.config.p2p.listen), psk=psk, allowed_peers=frozenset(allowed),
                               persistent_peers=tuple(self.config.p2p.peers), max_gossip_message_size=wire.MAX_GOSSIP_BYTES + 1024,
                               ban_seconds=self.config.p2p.ban_seconds, link_listen=self.config.p2p.link_address() if self.runs_consensus else None)
        self.net = transport(self.key, p2p_config, book)
        self.sync_server = SyncServer(reader=self.store, candidates=self.candidates, mempool=self.mempool,
                                      metrics=self.metrics, runtime=runtime, penalize=self.net.penalize,
                                      status=lambda: (self.chain.height, self.chain.state.last_block_hash))
        self.metrics.watch_transport(self.net)
        self.metrics.watch_store(self.store)
        self.net.register_handler(wire.sync_protocol(self.genesis.chain_id), self.sync_server.serve_request)
        sole_validator = [v.branch_id for v in self.genesis.validators] == [self.branch_id]
        self.sync = BlockSync(self.chain, SyncClient(self.net, self.genesis.chain_id, self.chain.decode_block),
                              self.net, self.metrics, sole_validator=sole_validator,
                              expect_block_within=2 * self.config.consensus.empty_block_interval_ms / 1000,
                              follows_consensus=lambda: self.is_validator)
        self.driver: ConsensusDriver | None = None
        if self.runs_consensus:
            self.driver = ConsensusDriver(chain=self.chain, mempool=self.mempool, candidates=self.candidates,
                                          key=self.key, branch_id=self.branch_id, keys=self.keys.all_keys(),
                                          network=self.net, wal=self.wal,
                                          config=self.config.consensus, metrics=self.metrics, sync=self.sync)
            self.metrics.watch_consensus(self.driver.statistics)
        self.metrics.on_scrape(self._refresh_gauges)
        self.chain.on_commit(self._note_rotations)
        self.pending = PendingRecords(self.store, state, self.metrics, runtime)
        self.chain.on_commit(self.pending.block_committed)
        self.admission = AdmissionControl(target_ms=self.config.mempool.finality_target_ms)
        self.chain.on_commit(self._admission_committed)
        self.ingest = RecordIngest(self.chain, self.mempool, self.metrics, self.net, self.pending, keys=self.keys,
                                   knows_network_height=self.sync.knows_network_height, admission=self.admission,
                                   on_new_records=self._on_new_records)
        blocks_topic = wire.Topics.of(self.genesis.chain_id).blocks
        # validators follow the chain through consensus: block announcements go to the other
        # nodes only, and every validator announces what it commits (node/p2p/pubsub.py, 12)
        self.net.set_gossip_to(lambda topic, peer: topic != blocks_topic or peer not in self.ingest.validator_peers)
        self.api_enabled = api and self.config.api.enabled
        self.api_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None  # [metrics] listen, if set
        self.mdns = None  # MdnsDiscovery once running, if [p2p] mdns is on

    def _warn_not_a_validator(self, state: Any) -> None:
        """[node] mode is validator but the key does not sign now. Legitimate while a new
        branch waits for governance (PROTOCOL.md §15), so a WARNING, not a refusal; the
        line says which case it is, names the key and the chain, and what fixes it."""
        bid, chain = self.branch_id.hex(), f"chain {self.genesis.chain_id} (genesis {self.genesis.hash.hex()})"
        member = state.gov.registry.members.get(self.branch_id)
        if member is None:
            log.warning("mode is validator but this node's key (branch id %s, public key %s) is not a member of %s: "
                        "every peer refuses its connections until governance admits it (on a validator: branchnet gov "
                        "propose admit NAME --member-name NAME --public-key %s) and gives it power; if this is not the "
                        "key or genesis you meant, stop the node and fix %s or %s",
                        bid, self.key.public_key.hex(), chain, self.key.public_key.hex(), self.home.key, self.home.genesis)
        else:
            log.warning("mode is validator but this node's key (branch id %s, member %r of %s) has no voting power now: "
                        "it follows consensus without signing, and signs once governance gives it power (on a "
                        "validator: branchnet gov propose power NAME --branch %s --power N)", bid, member.name, chain, bid)

    @property
    def is_validator(self) -> bool:
        """Whether this node's key signs the next block (the set can change, §15)."""
        return self.runs_consensus and self.branch_id in self.chain.state.validators

    def _allowed_peers(self, state: Any) -> frozenset[str]:
        """Every member's peer id (the registry now), the configured extra peers, the
        observers allowed at runtime (:meth:`set_observer`), and the old peer ids of
        members that rotated their key themselves in the last ROTATION_GRACE_HEIGHTS."""
        grace = {p for p, last in self._rotation_grace.items() if last >= state.height}
        return frozenset({peer_id_of(key.raw) for key in state.members.values()} | set(self.config.p2p.allow_peers)
                         | self._observers | grace)

    def _admission_committed(self, block: Any) -> None:
        """(A commit listener.) Our clients' records in ``block``: their finality, which
        also steers admission control."""
        for seconds in self.admission.committed((r.hash for r in block.records), trio.current_time()):
            self.metrics.finality.observe(seconds)

    def _note_rotations(self, block: Any) -> None:
        """(A commit listener.) A member's own ``branch.key`` record in ``block``: its old
        peer id stays allowed for ROTATION_GRACE_HEIGHTS. A key replaced by a ``rotate_key``
        proposal (lost or leaked) gets no grace, nor does one whose announced key a proposal
        overrode in the same block. The old key is the registry's before ``block``, known
        exactly only when the listener saw the block before it and the state is this
        block's: block sync commits ranges and calls listeners after the last one, so a
        rotation inside a range gets no grace here (fail closed)."""
        state = self.chain.state
        added: dict[str, int] = {}
        if self._member_keys_height == block.height - 1 and block.height == state.height:
            announced = {r.branch_id: r.body.public_key for r in block.records if r.kind == "branch.key"}
            for bid, new in announced.items():
                old, now = self._member_keys.get(bid), state.members.get(bid)
                if old is not None and now is not None and now.raw == new:
                    added[peer_id_of(old)] = block.height + ROTATION_GRACE_HEIGHTS
        expired = [p for p, last in self._rotation_grace.items() if last < block.height]
        if added or expired:
            for p in expired:
                del self._rotation_grace[p]
            self._rotation_grace.update(added)
            self.store.set_rotation_grace(added, expired_below=block.height)  # survives a restart inside the window
        if block.height == state.height:  # the state is this block's
            self._member_keys = {bid: key.raw for bid, key in state.members.items()}
            self._member_keys_height = block.height

    async def _follow_members(self) -> None:
        """The allowlist follows the registry: an admitted member may connect, a retired
        one may not, from the block that changes it."""
        while True:
            await self.chain.wait_height(self.chain.height + 1)
            await self._apply_allowlist()

    async def _apply_allowlist(self) -> None:
        allowed = self._allowed_peers(self.chain.state)
        if allowed != self._allowed:
            self._allowed = allowed
            log.info("allowlist: %d peers (members, configured peers, observers)", len(allowed))
            await self.net.set_allowed_peers(allowed)

    async def _follow_key_rotation(self, scope: trio.CancelScope) -> None:
        """Once a block commits our pending key (node/keyring.py), promote the key files
        and restart the node in place: its libp2p identity moves to the new key, which
        the other nodes' allowlists now hold. Records are signed with the new key from
        that block on already (``NodeKeys.record_key`` follows the registry)."""
        while True:
            await self.chain.wait_height(self.chain.height + 1)
            if self.keys.pending is None or not self.keys.reconcile(self.chain.state):
                continue
            if self.keys.current.public_key != self.key.public_key:
                log.info("restarting the node in place: its libp2p identity moves to the new key (peer id %s)",
                         peer_id_of(self.keys.current.public_key.raw))
                self.restart_requested.set()
                scope.cancel()
                return

    async def rotate_key(self, public_key: bytes) -> tuple[Any, str]:
        """Announce the pending key (``HOME/node_key.pending.json``, which must hold
        ``public_key``) in a ``branch.key`` record signed by the key in force. Returns
        (record, status): ``submitted`` now, ``pending`` (submitted before, not committed),
        or ``committed`` (the registry holds it: the record is None). Raises
        KeyFileError, ValueError (no such pending key) and whatever
        RecordIngest.rotate_key raises."""
        if self.keys.registry_key(self.chain.state) == public_key:
            return None, "committed"
        pending = self.keys.load_pending()
        if pending is None or pending.public_key.raw != public_key:
            raise ValueError(f"{self.home.pending_key} does not hold key {public_key.hex()} (write it first: "
                             "branchnet keys rotate)")
        if self.driver is not None:
            self.driver.add_signing_key(pending)  # signs the heights whose set holds it, once the rotation commits
        return await self.ingest.rotate_key(pending)

    def key_rotation_status(self) -> dict[str, Any] | None:
        keys = self.keys
        if keys.pending is None:
            return None
        return {"pending_public_key": keys.pending.public_key.hex(),
                "submitted": self.pending.open_count(self.branch_id, "key") > 0}

    async def set_observer(self, peer_id: str, allowed: bool) -> None:
        """Let the peer ``peer_id`` (an auditor's observer, not a member) connect from now
        on, or stop letting it; kept in the store, so it survives restarts. Raises
        ValueError for a malformed peer id."""
        if not _PEER_ID.fullmatch(peer_id):
            raise ValueError("not a libp2p peer id (base58, 12D3KooW... or Qm...)")
        await self.runtime.run_sync(self.store.set_observer, peer_id, allowed, self.runtime.wall_ms())
        (self._observers.add if allowed else self._observers.discard)(peer_id)
        await self._apply_allowlist()

    def _on_new_records(self) -> None:
        if self.driver is not None:
            self.driver.notify_records()

    @property
    def peer_id(self) -> str:
        return self.net.peer_id

    @property
    def listen_addrs(self) -> list[str]:
        return self.net.listen_addrs

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.net.run)
                if self.config.p2p.mdns:
                    from .p2p.mdns import MdnsDiscovery

                    self.mdns = MdnsDiscovery(network_id=self.genesis.hash.hex()[:16], peer_id=self.net.peer_id,
                                              listen_addrs=self.listen_addrs, allowed=self.net.allowlist.allows,
                                              on_peer=self.net.add_persistent_peer,
                                              on_reject=lambda reason: self.metrics.reject("mdns", reason))
                    await nursery.start(self.mdns.run)
                await nursery.start(self.pending.run)
                await nursery.start(self.ingest.run)
                await self.ingest.recover_pending()
                await nursery.start(self.sync.run)
                nursery.start_soon(self._announcements)
                nursery.start_soon(self._follow_members)
                nursery.start_soon(self._follow_key_rotation, nursery.cancel_scope)
                if self.driver is not None:
                    await nursery.start(self.driver.run)
                if self.api_enabled:
                    from .api import serve_api

                    self.api_address = await nursery.start(serve_api, self)
                if self.config.metrics.listen:
                    from .metrics_server import serve_metrics

                    self.metrics_address = await nursery.start(serve_metrics, self.metrics, self.config.metrics.listen)
                nursery.start_soon(self._save_peers_periodically)
                nursery.start_soon(self._log_status_periodically)
                if self.chain.halt_height:
                    nursery.start_soon(self._halt_at, self.chain.halt_height, nursery.cancel_scope)
                log.info("node %s (%s) up at height %d of chain %s (genesis %s): p2p %s, api %s%s",
                         self.config.node.moniker, "validator" if self.is_validator else
                         "validator mode, not in the validator set: not signing" if self.runs_consensus else "observer", self.chain.height,
                         self.genesis.chain_id, self.genesis.hash.hex(), " ".join(self.listen_addrs),
                         "http://%s:%d" % self.api_address if self.api_address else "off",
                         f", halts after height {self.chain.halt_height}" if self.chain.halt_height else "")
                in_python = [what for what, built in (("the state tree's hashing and updates", state_tree._set_hash_c is not None),
                                                      ("record decoding", records._decode_c is not None),
                                                      ("the personal-data pre-screen and folding", pii.plain_ascii is not pii._plain_ascii_py))
                             if not built]
                if in_python:
                    log.info("%s run in Python, three to five times slower: their C extensions were not built (installing "
                             "needs a C compiler and OpenSSL's headers)", ", ".join(in_python))
                task_status.started(self)
        finally:
            with trio.CancelScope(shield=True):
                self._save_peers()
                self.store.close()
                if self.wal is not None:
                    self.wal.close()

    def _refresh_gauges(self) -> None:
        """Before each metrics scrape: the gauges nothing else keeps current."""
        self.metrics.peers.set(len(self.net.connected_peers()))
        self.metrics.mempool_records.set(len(self.mempool))
        self.metrics.sync_lag.set(self.sync.statistics()["lag"])

    async def _halt_at(self, height: int, scope: trio.CancelScope) -> None:
        """[consensus] halt_height: once ``height`` is committed (the chain commits nothing
        above it and the driver starts no later height), stop the node cleanly."""
        await self.chain.wait_height(height)
        log.info("halt height %d reached ([consensus] halt_height): committed height %d, stopping; "
                 "raise or remove halt_height to continue", height, self.chain.height)
        self.halted.set()
        scope.cancel()

    async def _announcements(self) -> None:
        """Block announcements wake sync at once (observers rely on them)."""
        channel = await self.net.subscribe(wire.Topics.of(self.genesis.chain_id).blocks)
        async for peer, data in channel:
            try:
                height, _ = wire.decode_new_block(data)
            except RemoteProtocolError as exc:
                self.metrics.reject("gossip", exc.reason)
                self.net.penalize(peer, exc.reason, fault="malformed", protocol="blocks")
                continue
            self.sync.peer_is_at(height)

    def _save_peers(self) -> None:
        try:
            self.store.save_peers(self.net.known_addresses(), int(trio.current_time() * 1000))
        except Exception as exc:  # best effort at shutdown; the store may already be closed
            log.debug("could not save peers: %s", exc)

    async def _save_peers_periodically(self) -> None:
        while True:
            await trio.sleep(30)
            self._save_peers()

    async def _log_status_periodically(self, interval: float = 10.0) -> None:
        while True:
            await trio.sleep(interval)
            cs = self.driver.cs if self.driver else None
            log.info("height=%d round=%s mempool=%d peers=%d records_in=%d rejected=%s",
                     self.chain.height, cs.round if cs else "-", len(self.mempool), len(self.net.connected_peers()),
                     self.ingest.received_records, self.metrics.rejected_counts())

    def status(self) -> dict[str, Any]:
        st = self.chain.state
        return {
            "moniker": self.config.node.moniker,
            "chain_id": self.genesis.chain_id,
            "branch_id": self.branch_id.hex(),
            "public_key": self.keys.registry_key(st).hex() if self.keys.registry_key(st) else None,
            "key_rotation": self.key_rotation_status(),
            "peer_id": self.peer_id,
            "role": "validator" if self.is_validator else "observer",
            "genesis_hash": self.genesis.hash.hex(),
            "addresses": list(self.listen_addrs),
            "halt_height": self.chain.halt_height or None,
            "height": st.height,
            "last_block_hash": st.last_block_hash.hex(),
            "last_block_time_ms": st.last_block_time_ms,
            "state_root": st.state_root.hex(),
            "mempool": len(self.mempool),
            "peers": len(self.net.connected_peers()),
            "sync": self.sync.statistics(),
            "consensus": self.driver.statistics() if self.driver else None,
            "p2p": self.net.statistics(),
            "ingest": self.ingest.statistics(),
            "pending": self.pending.statistics(),
            "mdns": self.mdns.statistics() if self.mdns else None,
        }
