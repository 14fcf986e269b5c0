"""Typed models of the API's node and network documents (status, peers,
validators, activity, genesis), of writes and errors, and of the events of
``/v1/events``. The chain's own data (records, blocks, registry) is in
:mod:`.models`; both feed :mod:`.openapi`.

The statistics inside ``/v1/status`` belong to the subsystems that keep them
(sync, consensus, p2p, ingest, pending, mDNS): every counter they have today is
listed, and they are open objects, so a subsystem may add counters.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from msgspec import Meta, Struct

from .models import (
    BranchId, Closed, Count, GovProposalBody, GovVoteBody, Hash, KeyRotationBody, OfferBody, ProfileBody, PublicKey, QualityBody, Record,
    StatusBody, TimeMs, WithdrawBody,
)

Counters = dict[str, int]


class Open(Struct, kw_only=True):
    """Base of subsystem statistics: the listed fields, and possibly more counters."""


# ------------------------------------------------------------------ status


class KeyRotationState(Closed):
    pending_public_key: Annotated[PublicKey, Meta(description="the key in HOME/node_key.pending.json")]
    submitted: Annotated[bool, Meta(description="its branch.key record is pending (acknowledged, not committed)")]


class SyncStats(Open):
    syncing: bool
    best_peer_height: Count
    lag: Annotated[int, Meta(description="best known peer height minus ours")]
    synced_blocks: Count
    polls: Count
    quiet_polls: Annotated[int, Meta(ge=0, description="polls made because no block came for twice the heartbeat "
                                     "interval (block announcements missed)")]
    deferred_wakes: Annotated[int, Meta(ge=0, description="announced heights that needed no poll: committed here "
                                        "already, or by our own consensus within 2 s")]
    announced_fetches: Annotated[int, Meta(ge=0, description="announced heights fetched from one connected peer "
                                           "without polling every peer's status")]
    skipped_polls: Annotated[int, Meta(ge=0, description="periodic polls left out because blocks kept being "
                                       "committed since the last poll")]
    records_indexed: Annotated[bool, Meta(description="false while a long block sync writes without the records' "
                                          "search indexes (/v1/records' filters are slower): built when it ends")]
    index_builds: Annotated[int, Meta(ge=0, description="times those indexes were built after a long sync")]


class OutboxStats(Open):
    queued: Count
    dropped: Count
    stuck_rounds: Count
    summaries_sent: Count
    answers_sent: Count


class ConsensusStats(Open):
    """The consensus driver of a validator."""
    height: Count
    round: Count
    step: Literal["new_height", "propose", "prevote", "precommit", "commit"]
    waiting_for_height: Annotated[int | None, Meta(description="the height it starts once the chain reaches it")]
    rejected: Annotated[Counters, Meta(description="rejected consensus messages by reason")]
    pending_evidence: Count
    signer_writes: Count
    fetched: Annotated[Counters, Meta(description="what compact proposals lacked and was fetched: records, blocks")]
    outbox: OutboxStats


class ConnectionStats(Open):
    dropped_inbound: Count
    dropped_outbound: Count
    dial_failures: Count
    dials: Count
    psk_failures: Count
    bytes_sent: Annotated[int, Meta(ge=0, description="bytes on the wire to all peers (counted by the network-key layer)")]
    bytes_received: Annotated[int, Meta(ge=0, description="bytes on the wire from all peers")]


class GossipStats(Open):
    published: Count
    received: Count
    rejected_by_validator: Count
    validator_errors: Count
    duplicates: Count
    dropped: Count
    backpressure_waits: Count
    received_by_topic: Counters


class StreamStats(Open):
    requests_sent: Count
    responses_received: Count
    request_errors: Count
    request_timeouts: Count
    silent_streams_reset: Annotated[int, Meta(ge=0, description="client streams reset after a request timed out "
                                              "with no frame from the peer meanwhile (a new one is opened)")]
    slow_requests_served: Annotated[int, Meta(ge=0, description="requests from peers that took 5 s or more from "
                                              "reading to answering (each logged with where the time went)")]
    stuck_connections_closed: Annotated[int, Meta(ge=0, description="connections closed (and redialed if kept) "
                                                  "after three stream opens in a row to the peer timed out")]
    open_streams: Annotated[int, Meta(ge=0, description="Yamux streams open on all connections now")]
    lowest_free_stream_slots: Annotated[int, Meta(ge=0, le=256, description="the fewest of a connection's 256 "
                                                  "stream slots left on any connection now (no new stream opens on "
                                                  "a connection at 0)")]
    streams_opened: Count
    stream_retries: Count
    requests_served: Count
    handler_errors: Count
    bad_frames: Count
    inbound_streams: Count
    unsupported_protocol: Count


class PeerBookStats(Open):
    redials: Count
    redial_failures: Count
    reconnects: Count
    connections: Annotated[int, Meta(ge=0, description="times a persistent peer was found connected: the first "
                                     "time, or again after a drop")]


class LinkStats(Open):
    """Consensus links (PROTOCOL.md §11.2): direct connections to the other validators."""
    port: Annotated[int | None, Meta(description="the link listener's TCP port (None until it listens)")]
    carries: Annotated[str | None, Meta(description="the protocol whose notifications links carry "
                                        "(None until the consensus driver starts)")]
    up: Annotated[int, Meta(ge=0, description="links open now")]
    dialed: Count
    accepted: Count
    dial_failures: Count
    refused: Annotated[Counters, Meta(description="inbound link attempts closed, by reason")]
    closed: Count
    frames_sent: Count
    send_failures: Annotated[int, Meta(ge=0, description="frames that went by libp2p instead: the link broke "
                                       "or a write took too long (the link is closed and dialed again)")]


class P2PStats(Open):
    peer_id: str
    listening: bool
    connected_peers: Count
    connections: ConnectionStats
    gossip: GossipStats
    streams: StreamStats
    peers: PeerBookStats
    links: Annotated[LinkStats | None, Meta(description="None where [p2p] link_listen is off")]


class IngestStats(Open):
    received_records: Count
    pushed_batches: Count
    forwarded_batches: Annotated[int, Meta(ge=0, description="batches of records a non-validator pushed to us, "
                                           "forwarded (as a validator) to our upcoming proposers")]
    push_failures: Count
    push_dropped: Count
    push_merged: Annotated[int, Meta(ge=0, description="queued record batches that left together with the batch "
                                     "before them, as one push")]
    push_queued: Count
    gossiped_batches: Count
    regossiped_records: Count
    uncommitted_local: Count
    outbox_dropped: Count
    admission_limit: Annotated[int, Meta(ge=0, description="records that may wait at once before local submissions "
                                         "are refused (503 overloaded); steered by the finality of our records")]
    admission_refused: Count
    admission_cuts: Annotated[int, Meta(ge=0, description="times a late commit cut the admission limit")]


class PendingStats(Open):
    pending: Annotated[int, Meta(ge=0, description="acknowledged records not committed yet")]
    group_commits: Count
    persisted: Count


class MdnsStats(Open):
    peers_found: Count
    rejected: Counters
    dropped_events: Count


class Status(Closed):
    """What this node is and where its chain stands."""
    moniker: str
    chain_id: str
    branch_id: BranchId
    peer_id: str
    role: Literal["validator", "observer"]
    genesis_hash: Annotated[Hash, Meta(description="the hash every branch compares (branchnet genesis finalize)")]
    addresses: Annotated[list[str], Meta(description="dialable p2p addresses: /ip4/IP/tcp/PORT/p2p/PEER_ID")]
    halt_height: Annotated[Annotated[int, Meta(ge=1)] | None, Meta(description="[consensus] halt_height: the node "
                                                                               "stops after committing it; null if unset")]
    height: Count
    last_block_hash: Hash
    last_block_time_ms: TimeMs
    state_root: Hash
    mempool: Annotated[int, Meta(ge=0, description="records waiting in the mempool")]
    peers: Annotated[int, Meta(ge=0, description="connected peers")]
    sync: SyncStats
    consensus: Annotated[ConsensusStats | None, Meta(description="null on an observer")]
    p2p: P2PStats
    ingest: IngestStats
    pending: PendingStats
    mdns: Annotated[MdnsStats | None, Meta(description="null unless [p2p] mdns is on")]
    public_key: Annotated[PublicKey | None, Meta(description="the branch's key in force (the registry's, PROTOCOL.md "
                                                             "§15.3); null if the branch is not a member")]
    key_rotation: Annotated[KeyRotationState | None, Meta(description="null unless a key rotation of this node waits "
                                                                     "to commit (branchnet keys rotate)")]


class Health(Closed):
    ok: bool
    height: Count


class Index(Closed):
    """GET /: where this API's parts are (a browser asking for HTML is redirected to the explorer)."""
    service: Annotated[str, Meta(description='"branchnet node API"')]
    openapi: Annotated[str, Meta(description="this API's OpenAPI document")]
    health: Annotated[str, Meta(description="liveness and height (public)")]
    status: Annotated[str, Meta(description="node status: height, peers, role, genesis hash")]
    metrics: Annotated[str, Meta(description="Prometheus metrics")]
    explorer: Annotated[str | None, Meta(description="the web explorer; null when [api] explorer = false")]


class Peer(Closed):
    peer_id: str
    name: Annotated[str | None, Meta(description="the member branch with this peer id; null if none is")]
    address: Annotated[str | None, Meta(description="the connection's remote multiaddr")]
    direction: Annotated[str, Meta(description="inbound, outbound or unknown")]
    connected_since_ms: Annotated[int | None, Meta(description="when the connection was opened (Unix ms)")]
    last_round_trip_ms: Annotated[float | None, Meta(description="the last request this peer answered, "
                                                     "round trip in ms; null before the first")]
    bytes_sent: Annotated[Annotated[int, Meta(ge=0)] | None, Meta(
        description="bytes on the wire to this peer over the open connection; null where not counted (no network key)")]
    bytes_received: Annotated[Annotated[int, Meta(ge=0)] | None, Meta(
        description="bytes on the wire from this peer over the open connection")]
    link: Annotated[Literal["inbound", "outbound"] | None, Meta(
        description="the consensus link to this validator (PROTOCOL.md §11.2), by who dialed it; null if none is up")]


class Peers(Closed):
    count: Count
    peers: list[Peer]


class Validator(Closed):
    branch_id: BranchId
    name: str
    power: Annotated[int, Meta(ge=1)]
    public_key: PublicKey
    peer_id: str


class Validators(Closed):
    """The validator set in force (the genesis set until on-chain governance changes it)."""
    total_power: Annotated[int, Meta(ge=1)]
    validators: list[Validator]


# ------------------------------------------------------------------ activity


class BlockActivity(Closed):
    height: Annotated[int, Meta(ge=1)]
    time_ms: TimeMs
    interval_ms: Annotated[int | None, Meta(description="time_ms minus the previous block's; null for block 1")]
    round: Annotated[int, Meta(ge=0, description="the round of the commit certificate: 0 when decided at once")]
    num_records: Count
    finality_ms: Annotated[int | None, Meta(description=(
        "median over the block's records (up to 256 of them) of block time minus record signing time: how long "
        "records waited for the block that finalised them; null for a block without records"))]
    signed_power: Annotated[int, Meta(ge=0, description="voting power of the certificate's signers")]


class ValidatorActivity(Closed):
    branch_id: BranchId
    name: str
    power: Annotated[int, Meta(ge=1)]
    signed: Annotated[int, Meta(ge=0, description="blocks of the window whose certificate (as this node holds it) it signed")]
    missed: Annotated[int, Meta(ge=0, description="blocks of the window whose certificate lacks its signature")]
    last_signed_height: Annotated[int | None, Meta(description="within the window; null if it signed none of it")]


class Activity(Closed):
    """Block intervals, finality and who signed, over the last ``window`` blocks, from the
    certificates this node stores (another node may hold other valid certificates)."""
    window: Annotated[int, Meta(ge=1)]
    from_height: Count
    to_height: Count
    total_power: Annotated[int, Meta(ge=1)]
    blocks: Annotated[list[BlockActivity], Meta(description="oldest first")]
    validators: list[ValidatorActivity]


# ------------------------------------------------------------------ observers


PeerId = Annotated[str, Meta(pattern="^(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{40,60}$", description="libp2p peer id")]


class Observer(Closed):
    peer_id: PeerId
    added_ms: TimeMs


class Observers(Closed):
    """Peers this node lets connect besides the members (auditors' observers), kept in its store."""
    observers: list[Observer]


class SetObserver(Closed):
    peer_id: PeerId
    allow: Annotated[bool, Meta(description="true: let it connect from now on; false: no longer")]


# ------------------------------------------------------------------ genesis (PROTOCOL.md §10)


class GenesisValidator(Closed):
    name: str
    branch_id: BranchId
    public_key: PublicKey
    power: Annotated[int, Meta(ge=1, le=2**40)]


class GenesisMember(Closed):
    name: str
    branch_id: BranchId
    public_key: PublicKey


class GenesisParams(Closed):
    max_block_records: Annotated[int, Meta(ge=1)]
    max_block_bytes: Annotated[int, Meta(ge=1)]
    max_record_bytes: Annotated[int, Meta(ge=1, le=8192)]
    max_block_evidence: Annotated[int, Meta(ge=1)]
    timeout_propose_ms: Annotated[int, Meta(ge=1)]
    timeout_prevote_ms: Annotated[int, Meta(ge=1)]
    timeout_precommit_ms: Annotated[int, Meta(ge=1)]
    timeout_delta_ms: Annotated[int, Meta(ge=1)]
    max_clock_drift_ms: Annotated[int, Meta(ge=1)]


class GenesisFile(Closed):
    """The genesis this node runs, as a genesis file (every field written out); its genesis
    hash is the one `branchnet genesis finalize` printed. Verifiers compute that hash
    themselves and compare it with the one they trust."""
    chain_id: Annotated[str, Meta(pattern="^[a-z0-9][a-z0-9-]{0,49}$")]
    genesis_time_ms: TimeMs
    validators: list[GenesisValidator]
    members: list[GenesisMember]
    params: GenesisParams


# ------------------------------------------------------------------ writes and errors


class SubmitRecord(Closed):
    record: Annotated[str, Meta(pattern="^([0-9a-f]{2})*$", description="a record signed elsewhere, hex")]


class SignRequest(Closed, tag_field="kind"):
    """Fields of the body by name, as in the body of a record."""


class SignProfile(SignRequest, tag="branch.profile"):
    body: ProfileBody


class SignOffer(SignRequest, tag="service.offer"):
    body: OfferBody


class SignWithdraw(SignRequest, tag="service.withdraw"):
    body: WithdrawBody


class SignStatus(SignRequest, tag="service.status"):
    body: StatusBody


class SignQuality(SignRequest, tag="branch.quality"):
    body: QualityBody


class SignGovProposal(SignRequest, tag="gov.proposal"):
    body: GovProposalBody


class SignGovVote(SignRequest, tag="gov.vote"):
    body: GovVoteBody


class SignKeyRotation(SignRequest, tag="branch.key"):
    body: KeyRotationBody


SignRecord = Union[SignProfile, SignOffer, SignWithdraw, SignStatus, SignQuality, SignGovProposal, SignGovVote, SignKeyRotation]


class Accepted(Closed):
    hash: Hash
    status: Literal["accepted"]


class RotateKey(Closed):
    """Announce the key in HOME/node_key.pending.json (written first, e.g. by branchnet keys rotate)."""
    public_key: Annotated[PublicKey, Meta(description="the pending key's public key (64 hex)")]


class KeyRotated(Closed):
    status: Annotated[Literal["submitted", "pending", "committed"],
                      Meta(description="submitted: its branch.key record now; pending: submitted before, not committed "
                                       "yet; committed: the registry holds the key already")]
    public_key: PublicKey
    hash: Annotated[Hash | None, Meta(description="the branch.key record (null once committed)")]
    record: Annotated[Record | None, Meta(description="null once committed")]


class Signed(Closed):
    hash: Hash
    seq: Annotated[int, Meta(ge=1)]
    record: Record


class ErrorDetail(Closed):
    code: Annotated[str, Meta(description="reason slug, e.g. bad_hex, replayed_seq")]
    field: Annotated[str, Meta(description="the input at fault (may be empty)")]
    message: str


class Error(Closed):
    error: ErrorDetail


# ------------------------------------------------------------------ /v1/events


class BlockEvent(Closed):
    """data of ``event: block``"""
    height: Annotated[int, Meta(ge=1)]
    hash: Hash
    time_ms: TimeMs
    num_records: Count


class RecordEvent(Closed):
    """data of ``event: record``, one per record of the block before it"""
    hash: Hash
    kind: str
    branch_id: BranchId
    subject: str
    height: Annotated[int, Meta(ge=1)]


class ValidatorSetEvent(Closed):
    """data of ``event: validator_set``: the block at ``height`` announces the set that signs
    from ``effective_height`` on (PROTOCOL.md §15.5); GET /v1/governance lists it"""
    height: Annotated[int, Meta(ge=1)]
    effective_height: Annotated[int, Meta(ge=2)]
    validators_hash: Hash


class DroppedEvent(Closed):
    """data of ``event: dropped``: the client read too slowly; reconnect and catch up with /v1/blocks"""
    reason: str
    height: Count
