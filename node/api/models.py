"""Typed models of every JSON document the HTTP API sends or accepts.

These are the source of docs/openapi.json: :mod:`.openapi` generates the
schemas from them with ``msgspec.json.schema_components``, and the API tests
validate every response against that document. The views (:mod:`.views`)
still build plain dicts; a field they add or rename without a change here
fails those tests.

Conventions: hex strings are lowercase; times are integer milliseconds since
the Unix epoch; money is in minor units (basis points for ``percent_bp``).
Documents the API owns refuse unknown fields (``additionalProperties: false``);
the subsystem statistics in ``/v1/status`` are open (counters may be added).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from msgspec import UNSET, Meta, Struct, UnsetType

from protocol.quality import COMPLAINT_CATEGORIES
from protocol.schema import ACCESSIBILITY, CATEGORIES, CHANNELS, FEE_BASES, OWNERSHIP, STATUSES
from protocol.terms import (
    COLLATERAL_KINDS, EARLY_WITHDRAWAL, MAX_AMOUNT, MAX_RATE_BP, MAX_SPREAD_BP, MAX_TERM_MONTHS, MIN_YIELD_BP, RATE_REFERENCES,
    RATE_TYPES, REDEMPTION, REPAYMENT_METHODS,
)

Hash = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="32 bytes, hex")]
BranchId = Annotated[str, Meta(pattern="^[0-9a-f]{40}$", description="20-byte branch id, hex")]
Hex = Annotated[str, Meta(pattern="^([0-9a-f]{2})*$", description="bytes, hex")]
Signature = Annotated[str, Meta(pattern="^[0-9a-f]{128}$", description="64-byte Ed25519 signature, hex")]
PublicKey = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="32-byte Ed25519 public key, hex")]
Count = Annotated[int, Meta(ge=0)]
Height = Annotated[int, Meta(ge=0, le=2**62)]
TimeMs = Annotated[int, Meta(ge=0, description="milliseconds since the Unix epoch")]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
FeeBasis = Literal[FEE_BASES]  # type: ignore[valid-type]
Ownership = Literal[OWNERSHIP]  # type: ignore[valid-type]
Accessibility = Literal[ACCESSIBILITY]  # type: ignore[valid-type]
ServiceState = Literal[STATUSES]  # type: ignore[valid-type]


class Closed(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of the documents the API owns: no field beyond those listed."""


# ------------------------------------------------------------------ record bodies (PROTOCOL.md §5)


class Hours(Closed):
    """Opening hours of one day: minutes from midnight, open < close."""
    day: Annotated[int, Meta(ge=0, le=6, description="0 = Monday")]
    open_minute: Annotated[int, Meta(ge=0, le=1440)]
    close_minute: Annotated[int, Meta(ge=0, le=1440)]


class Fee(Closed):
    """A fee disclosed before service."""
    label: str
    amount_minor: Annotated[int, Meta(ge=0, le=10**15, description="minor units of currency; basis points for percent_bp")]
    currency: Annotated[str, Meta(pattern="^[A-Z]{3}$")]
    basis: FeeBasis


class Equipment(Closed):
    equipment_id: str
    up: bool


class ProfileBody(Closed):
    """Body of a branch.profile record."""
    name: str
    address: str
    region: str
    lat_micro: Annotated[int, Meta(ge=-90_000_000, le=90_000_000, description="micro-degrees")]
    lon_micro: Annotated[int, Meta(ge=-180_000_000, le=180_000_000, description="micro-degrees")]
    hours: list[Hours]
    contact_phone: str
    contact_url: str
    public_numbers: Annotated[list[str], Meta(description="other phone numbers the branch declares public "
                                                          "(PROTOCOL.md §8); may be omitted when empty")] = []


Bp = Annotated[int, Meta(ge=0, le=MAX_RATE_BP, description="basis points a year")]
Months = Annotated[int, Meta(ge=0, le=MAX_TERM_MONTHS, description="months")]
Minor = Annotated[int, Meta(ge=0, le=MAX_AMOUNT, description="minor units of currency")]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code of the frozen table (PROTOCOL.md §5.9)")]


class LoanTerms(Closed):
    """Loan terms (PROTOCOL.md §5.6.1): a fixed rate has rate_min_bp == rate_max_bp."""
    rate_min_bp: Bp
    rate_max_bp: Bp
    rate_type: Literal[RATE_TYPES]  # type: ignore[valid-type]
    rate_reference: Annotated[Literal[RATE_REFERENCES], Meta(description="none iff fixed")]  # type: ignore[valid-type]
    spread_bp: Annotated[int, Meta(ge=-MAX_SPREAD_BP, le=MAX_SPREAD_BP, description="over the reference; 0 if fixed")]
    term_min_months: Annotated[int, Meta(ge=1, le=MAX_TERM_MONTHS)]
    term_max_months: Annotated[int, Meta(ge=1, le=MAX_TERM_MONTHS)]
    amount_min_minor: Minor
    amount_max_minor: Annotated[int, Meta(ge=1, le=MAX_AMOUNT)]
    currency: Currency
    repayment_methods: list[Literal[REPAYMENT_METHODS]]  # type: ignore[valid-type]
    collateral_required: bool
    collateral_kinds: Annotated[list[Literal[COLLATERAL_KINDS]], Meta(description="non-empty iff collateral_required")]  # type: ignore[valid-type]
    early_repayment_fee_bp: Annotated[int, Meta(ge=0, le=10_000)]


class DepositRate(Closed):
    term_months: Annotated[int, Meta(ge=0, le=MAX_TERM_MONTHS, description="0: demand")]
    rate_bp: Bp


class DepositTerms(Closed):
    """Deposit terms: rates by term, strictly increasing term_months."""
    rates: list[DepositRate]
    min_amount_minor: Minor
    currency: Currency
    early_withdrawal: Literal[EARLY_WITHDRAWAL]  # type: ignore[valid-type]
    insured: Annotated[bool, Meta(description="covered by the deposit insurance scheme")]


class InvestmentTerms(Closed):
    """Wealth and agency products: an expected yield, never a promise."""
    yield_min_bp: Annotated[int, Meta(ge=MIN_YIELD_BP, le=MAX_RATE_BP)]
    yield_max_bp: Annotated[int, Meta(ge=MIN_YIELD_BP, le=MAX_RATE_BP)]
    not_guaranteed: Annotated[bool, Meta(description="always true")]
    term_months: Annotated[int, Meta(ge=0, le=MAX_TERM_MONTHS, description="0: open-ended")]
    min_amount_minor: Minor
    currency: Currency
    redemption: Literal[REDEMPTION]  # type: ignore[valid-type]


class OfferTerms(Closed):
    """The terms of an offer (PROTOCOL.md §5.6.1): the validity window's end and the product block of its
    category (loan; deposit; investment for wealth and agency; none for the others)."""
    valid_until_ms: Annotated[int, Meta(ge=0, description="0: open-ended; else after effective_from_ms")]
    loan: LoanTerms | UnsetType = UNSET
    deposit: DepositTerms | UnsetType = UNSET
    investment: InvestmentTerms | UnsetType = UNSET


class OfferBody(Closed):
    """Body of a service.offer record."""
    service_id: str
    category: Category
    title: str
    description: str
    channels: list[Channel]
    hours: Annotated[list[Hours], Meta(description="empty: the branch's hours")]
    fees: list[Fee]
    risk_level: Annotated[int, Meta(ge=0, le=5, description="1..5 is R1..R5 (loan, wealth, agency); 0 otherwise")]
    ownership: Ownership
    issuer: Annotated[str, Meta(description="issuer of a consigned product; empty when own")]
    accessibility: list[Accessibility]
    effective_from_ms: TimeMs
    terms: Annotated[OfferTerms, Meta(description="product terms; absent in offers published without them")] | UnsetType = UNSET


class WithdrawBody(Closed):
    """Body of a service.withdraw record."""
    service_id: str
    reason: str


class StatusBody(Closed):
    """Body of a service.status record: live status and equipment."""
    service_id: str
    status: ServiceState
    wait_minutes: Annotated[int, Meta(ge=0, le=1440)]
    equipment: list[Equipment]


class ComplaintCount(Closed):
    category: Literal[COMPLAINT_CATEGORIES]  # type: ignore[valid-type]
    received: Annotated[int, Meta(ge=-1, description="-1: fewer than 5 (never an exact count below 5)")]
    resolved: Annotated[int, Meta(ge=-1, description="-1: fewer than 5")]


class QualityBody(Closed):
    """Body of a branch.quality record (PROTOCOL.md §5.10): aggregates of one month, no text."""
    period: Annotated[str, Meta(pattern="^20[0-9]{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
    complaints: Annotated[list[ComplaintCount], Meta(description="categories with complaints, in canonical order")]
    resolution_median_hours: Annotated[int, Meta(ge=-1, le=8760, description="-1: not disclosed")]
    resolution_p90_hours: Annotated[int, Meta(ge=-1, le=8760, description="-1: not disclosed")]
    wait_avg_minutes: Annotated[int, Meta(ge=-1, le=1440, description="-1: not measured")]
    wait_p90_minutes: Annotated[int, Meta(ge=-1, le=1440, description="-1: not measured")]
    self_service_availability_bp: Annotated[int, Meta(ge=-1, le=10_000, description="-1: no self-service")]


# ------------------------------------------------------------------ records


class RecordBase(Closed, tag_field="kind"):
    """A signed record (PROTOCOL.md §5.1), its body by field name."""
    hash: Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="record id: SHA-256 of the record bytes")]
    version: Annotated[int, Meta(ge=1, le=1)]
    chain_id: str
    branch_id: BranchId
    subject: Annotated[str, Meta(description="profile, service/<id>, status/<id>, quality/<YYYY-MM> or a governance subject: what the seq counts")]
    seq: Annotated[int, Meta(ge=1)]
    time_ms: TimeMs
    signature: Signature
    height: Annotated[int, Meta(ge=1, description="in record lists only: the block that committed it")] | UnsetType = UNSET
    index: Annotated[int, Meta(ge=0, description="in record lists only: position in its block")] | UnsetType = UNSET


class ProfileRecord(RecordBase, tag="branch.profile", kw_only=True):
    body: ProfileBody


class OfferRecord(RecordBase, tag="service.offer", kw_only=True):
    body: OfferBody


class WithdrawRecord(RecordBase, tag="service.withdraw", kw_only=True):
    body: WithdrawBody


class StatusRecord(RecordBase, tag="service.status", kw_only=True):
    body: StatusBody


class QualityRecord(RecordBase, tag="branch.quality", kw_only=True):
    body: QualityBody


class Action(Closed):
    """What a governance proposal does (PROTOCOL.md §15.2): ``kind`` and the fields of that kind."""
    kind: Literal["admit_member", "retire_member", "set_power", "rotate_key", "set_param"]
    name: Annotated[str, Meta(description="admit_member: the member's name; set_param: the parameter")] | UnsetType = UNSET
    branch_id: BranchId | UnsetType = UNSET
    public_key: PublicKey | UnsetType = UNSET
    power: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    value: Annotated[int, Meta(ge=1)] | UnsetType = UNSET


class GovProposalBody(Closed):
    """Body of a gov.proposal record."""
    name: Annotated[str, Meta(pattern="^[a-z0-9][a-z0-9-]{0,31}$")]
    action: Action
    expires_height: Annotated[int, Meta(ge=1)]


class GovVoteBody(Closed):
    """Body of a gov.vote record: the proposal's id (its record hash) and the vote."""
    proposal: Hash
    yes: bool


class KeyRotationBody(Closed):
    """Body of a branch.key record: the branch's new public key."""
    public_key: PublicKey


class GovProposalRecord(RecordBase, tag="gov.proposal", kw_only=True):
    body: GovProposalBody


class GovVoteRecord(RecordBase, tag="gov.vote", kw_only=True):
    body: GovVoteBody


class KeyRotationRecord(RecordBase, tag="branch.key", kw_only=True):
    body: KeyRotationBody


Record = Union[ProfileRecord, OfferRecord, WithdrawRecord, StatusRecord, QualityRecord, GovProposalRecord, GovVoteRecord, KeyRotationRecord]


class RecordList(Closed):
    records: list[Record]
    next_cursor: Annotated[str | None, Meta(description="pass as cursor= for the next page (pages may end inside a "
                                                        "block); null on the last page")]


class RecordWhere(Closed, tag_field="status"):
    """Where a record stands."""


class CommittedRecord(RecordWhere, tag="committed"):
    record: Record
    height: Annotated[int, Meta(ge=1)]
    index: Count


class PendingRecord(RecordWhere, tag="pending"):
    """Acknowledged or in the mempool, not committed yet (record is null when only the acknowledgement is known)."""
    record: Record | None
    height: None


class RejectedRecord(RecordWhere, tag="rejected"):
    """Acknowledged, but it can never commit (another record took its subject and seq)."""
    record: None
    height: None
    reason: str
    rejected_at_ms: TimeMs


RecordState = Union[CommittedRecord, PendingRecord, RejectedRecord]


class InclusionProof(Closed):
    """RFC 9162 audit path (PROTOCOL.md §6)."""
    index: Count
    tree_size: Annotated[int, Meta(ge=1)]
    path: list[Hash]


class RecordProof(Closed):
    """A record, its inclusion proof and the committed header and certificate it proves against.
    Check it with only the genesis file (protocol.proofs.verify_record_proof, or the explorer)."""
    chain_id: str
    record: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="the record's canonical bytes, hex")]
    height: Annotated[int, Meta(ge=1)]
    index: Count
    proof: InclusionProof
    header: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="canonical header encoding, hex")]
    certificate: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="canonical commit certificate, hex")]
    set_changes: Annotated[list[SetChange], Meta(description="every header below height that announced a new "
                                                             "validator set, with its certificate and that set, by "
                                                             "height (PROTOCOL.md §15.6); empty while the genesis set "
                                                             "signs")] = []
    member: Annotated[MemberEntryProof, Meta(description="the record's branch under a later certified state root "
                                                          "(PROTOCOL.md §15.6): present when the genesis key of the "
                                                          "branch does not sign the record (a member admitted later, "
                                                          "or a key rotated since)")] | UnsetType = UNSET


class MemberEntryProof(Closed):
    header: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="canonical header encoding, hex: at or above the "
                                                                       "record's height")]
    certificate: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="its commit certificate, hex")]
    entry: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="the system entry member/<branch id> as its state "
                                                                      "leaf (PROTOCOL.md §8), hex")]
    branch_path: Annotated[list[Hash], Meta(max_length=256, description="the entry's path in the system branch's tree "
                                                                      "(PROTOCOL.md §8): sibling hashes, depth 0 first")]
    top_proof: Annotated[tuple[Count, Annotated[int, Meta(ge=1)], list[Hash]],
                         Meta(description="the system branch's leaf in the state tree: [index, tree_size, [hash, ...]]")]


class SetChange(Closed):
    header: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="canonical header encoding, hex")]
    certificate: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="its commit certificate, hex")]
    validators: Annotated[list[tuple[BranchId, PublicKey, Annotated[int, Meta(ge=1)]]],
                          Meta(description="the set the header's next_validators_hash names: [branch_id, public_key, power]")]


# ------------------------------------------------------------------ blocks


class Header(Closed):
    """A block header (PROTOCOL.md §7.1) and its hash."""
    version: Annotated[int, Meta(ge=1, le=1)]
    chain_id: str
    height: Annotated[int, Meta(ge=1)]
    round: Count
    time_ms: TimeMs
    prev_hash: Hash
    records_root: Hash
    evidence_root: Hash
    state_root: Hash
    validators_hash: Hash
    next_validators_hash: Hash
    proposer: BranchId
    hash: Hash


class BlockSummary(Header):
    num_records: Count


class BlockList(Closed):
    blocks: list[BlockSummary]
    next_before: Annotated[int | None, Meta(description="pass as before= for the next page; null on the last")]


class Vote(Closed):
    type: Annotated[int, Meta(ge=1, le=2, description="1 prevote, 2 precommit")]
    height: Annotated[int, Meta(ge=1)]
    round: Count
    block_hash: Annotated[str, Meta(pattern="^([0-9a-f]{64})?$", description="empty for a nil vote")]
    validator: BranchId
    signature: Signature


class SignedProposal(Closed):
    height: Annotated[int, Meta(ge=1)]
    round: Count
    pol_round: Annotated[int, Meta(ge=-1)]
    block_hash: Hash
    proposer: BranchId
    signature: Signature


class Evidence(Closed):
    """Two conflicting votes of one validator, or two conflicting proposals of one
    proposer (PROTOCOL.md §9.4): ``kind`` says which, with vote_a/vote_b or
    proposal_a/proposal_b."""
    hash: Hash
    validator: BranchId
    height: Annotated[int, Meta(ge=1)]
    kind: Literal["duplicate_vote", "duplicate_proposal"] = "duplicate_vote"
    vote_a: Vote | UnsetType = UNSET
    vote_b: Vote | UnsetType = UNSET
    proposal_a: SignedProposal | UnsetType = UNSET
    proposal_b: SignedProposal | UnsetType = UNSET


class CertificateSignature(Closed):
    validator: BranchId
    signature: Signature


class Certificate(Closed):
    """Commit certificate (PROTOCOL.md §9.3). Nodes may hold different valid certificates for one block."""
    height: Annotated[int, Meta(ge=1)]
    round: Count
    block_hash: Hash
    signatures: list[CertificateSignature]


class Block(Closed):
    header: Header
    hash: Hash
    records: list[Record]
    evidence: list[Evidence]
    certificate: Certificate


class RawBlock(Closed):
    """A block and this node's certificate for it, as canonical bytes: what a verifier checks."""
    height: Annotated[int, Meta(ge=1)]
    hash: Hash
    block: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="canonical block encoding (PROTOCOL.md §7.2), hex")]
    certificate: Annotated[str, Meta(pattern="^([0-9a-f]{2})+$", description="canonical commit certificate, hex")]
    set_changes: Annotated[list[SetChange], Meta(description="the certified validator-set changes below this height "
                                                             "(PROTOCOL.md §15.6), as in a record proof")] = []


# ------------------------------------------------------------------ registry


class Service(Closed):
    """A service on offer now: the current offer of its subject and its live status."""
    branch_id: BranchId
    branch_name: Annotated[str, Meta(description="name in genesis")]
    region: Annotated[str | None, Meta(description="region of the branch's profile; null without one")]
    service_id: str
    offer: OfferBody
    status: Annotated[StatusBody | None, Meta(description="the last service.status; null if none")]
    record_hash: Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="the offer record (its proof: /v1/records/{hash}/proof)")]
    height: Annotated[int, Meta(ge=1, description="the block that committed the offer")]
    rate_bp: Annotated[int | None, Meta(description="headline rate in bp: a loan's lowest rate, a deposit's rate for "
                                                    "term_months (else its best), a wealth/agency product's highest "
                                                    "expected yield (never guaranteed); null without terms")]


class ServiceList(Closed):
    total: Annotated[int, Meta(ge=0, description="matches before limit and offset")]
    services: list[Service]
    as_of_ms: Annotated[int, Meta(ge=0, description="with as_of: the instant asked about")] | UnsetType = UNSET
    as_of_height: Annotated[int, Meta(ge=0, description="with as_of: the last height committed by then (0: none)")] | UnsetType = UNSET


class BranchQuality(Closed):
    """A branch's current service-quality disclosure for the period (its latest version)."""
    branch_id: BranchId
    branch_name: Annotated[str, Meta(description="name in genesis")]
    region: Annotated[str | None, Meta(description="region of the branch's profile; null without one")]
    quality: QualityBody
    seq: Annotated[int, Meta(ge=1, description="the version: a correction has seq 2, 3, ...")]
    record_hash: Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="the record (its proof: /v1/records/{hash}/proof)")]
    height: Annotated[int, Meta(ge=1, description="the block that committed it")]


class QualityList(Closed):
    period: Annotated[str | None, Meta(description="the period shown (default: the latest disclosed); null if none")]
    total: Annotated[int, Meta(ge=0, description="disclosures that match, before limit and offset")]
    branches: list[BranchQuality]


class BranchBase(Closed):
    branch_id: BranchId
    name: Annotated[str, Meta(description="member name (genesis or governance)")]
    profile: Annotated[ProfileBody | None, Meta(description="the last branch.profile; null if none")]
    power: Annotated[int, Meta(ge=0, description="voting power; 0 for a member that does not vote")]
    num_services: Annotated[int, Meta(ge=0, description="number of services on offer")]


class BranchSummary(BranchBase):
    """A branch in /v1/branches: num_services counts its services; the list is at /v1/branches/{branch_id}."""
    services: Annotated[int, Meta(ge=0, description="deprecated: the same number as num_services, kept for "
                                  "existing clients; removed in /v2", extra_json_schema={"deprecated": True})]


class BranchDetail(BranchBase):
    """One branch: services lists what it offers (num_services of them)."""
    services: Annotated[list[Service], Meta(description="the services on offer")]


class BranchList(Closed):
    branches: list[BranchSummary]


# ------------------------------------------------------------------ governance (PROTOCOL.md §15)


class Member(Closed):
    branch_id: BranchId
    name: str
    public_key: PublicKey
    power: Annotated[int, Meta(ge=0)]
    jailed: bool
    key_rotated: bool


class SetMember(Closed):
    branch_id: BranchId
    name: str
    power: Annotated[int, Meta(ge=1)]


class ProposalVote(Closed):
    branch_id: BranchId
    yes: bool


class Proposal(Closed):
    id: Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="the gov.proposal record's hash")]
    name: str
    proposer: BranchId
    action: Action
    expires_height: Height
    submitted_height: Height
    status: Literal["open", "passed", "refused", "expired"]
    decided_height: Height | None
    reason: Annotated[str | None, Meta(description="why a passed proposal was refused, e.g. power_change_too_large")]
    votes: list[ProposalVote]


class Governance(Closed):
    height: Height
    members: list[Member]
    validators: Annotated[list[SetMember], Meta(description="the set that signs the next block")]
    next_validators: Annotated[list[SetMember], Meta(description="the set that signs the block after it")]
    params: Annotated[dict, Meta(description="chain parameters in force (genesis params, as changed by set_param)")]
    proposals: Annotated[list[Proposal], Meta(description="newest first")]
