"""Test helpers: deterministic keys, genesis files, sample bodies and records of
every kind, blocks and commit certificates.

Everything is deterministic (keys come from fixed seeds) so failures reproduce.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from protocol.blocks import Block
from protocol.genesis import ChainParams, Genesis
from protocol.hashing import sha256
from protocol.keys import PrivateKey
from protocol.ledger import LedgerState, StateTransaction, build_block
from protocol.quality import BranchQuality, ComplaintCount
from protocol.records import Record
from protocol.schema import (
    BranchProfile,
    EquipmentStatus,
    Fee,
    OpeningHours,
    ServiceOffer,
    ServiceStatus,
    ServiceWithdraw,
)
from protocol.terms import DepositRate, DepositTerms, InvestmentTerms, LoanTerms, OfferTerms
from protocol.votes import PRECOMMIT, CommitCertificate, Vote

CHAIN_ID = "branchnet-test"
OTHER_CHAIN_ID = "branchnet-other"
GENESIS_TIME_MS = 1_767_225_600_000
MAX_BLOCK_BYTES = 8 << 20


# ---------------------------------------------------------------- keys


def key(name: str) -> PrivateKey:
    """A deterministic key per name."""
    return PrivateKey.from_seed(sha256(b"branchnet-test-key/" + name.encode()))


def validator_keys(n: int = 4) -> list[PrivateKey]:
    return [key(f"validator-{i}") for i in range(n)]


def member_keys(n: int = 2) -> list[PrivateKey]:
    return [key(f"member-{i}") for i in range(n)]


# ---------------------------------------------------------------- genesis


def genesis_doc(
    validators: Sequence[PrivateKey] | None = None,
    members: Sequence[PrivateKey] = (),
    *,
    powers: Sequence[int] | None = None,
    chain_id: str = CHAIN_ID,
    params: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A genesis JSON document (dict) as an operator would write it."""
    validators = validator_keys() if validators is None else list(validators)
    powers = [10] * len(validators) if powers is None else list(powers)
    doc: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis_time_ms": GENESIS_TIME_MS,
        "validators": [
            {"name": f"Validator {i}", "public_key": k.public_key.hex(), "power": p,
             "branch_id": k.branch_id.hex()}
            for i, (k, p) in enumerate(zip(validators, powers))
        ],
        "members": [{"name": f"Member {i}", "public_key": k.public_key.hex()} for i, k in enumerate(members)],
    }
    if params is not None:
        doc["params"] = params
    return doc


def make_genesis(
    validators: Sequence[PrivateKey] | None = None,
    members: Sequence[PrivateKey] | None = None,
    **kw: Any,
) -> Genesis:
    members = member_keys() if members is None else members
    return Genesis.from_json(genesis_doc(validators, members, **kw))


def make_state(genesis: Genesis | None = None) -> LedgerState:
    return LedgerState(genesis or make_genesis())


# ---------------------------------------------------------------- bodies

WEEKDAYS = tuple(OpeningHours(d, 9 * 60, 17 * 60) for d in range(5))


def profile(name: str = "Haidian Sub-branch", **kw: Any) -> BranchProfile:
    fields = dict(
        name=name,
        address="No. 1 Zhongguancun Street, Haidian District, Beijing 100080",
        region="CN-BJ-110108",
        lat_micro=39_983_000,
        lon_micro=116_316_000,
        hours=WEEKDAYS,
        contact_phone="+86 10 6255 0000",
        contact_url="https://bank.example/branches/haidian",
    )
    fields.update(kw)
    return BranchProfile(**fields)


def offer(service_id: str = "cash-withdrawal", category: str = "cash", **kw: Any) -> ServiceOffer:
    risk = 3 if category in ("loan", "wealth", "agency") else 0
    fields = dict(
        service_id=service_id,
        category=category,
        title=f"{category.replace('_', ' ').title()} service",
        description="Available at the counter, 09:00-17:00 on weekdays. Limit CNY 50,000 per day.",
        channels=("counter", "self_service"),
        hours=(),
        fees=(Fee("standard", 0, "CNY", "free"), Fee("express", 500, "CNY", "per_transaction")),
        risk_level=risk,
        ownership="own",
        issuer="",
        accessibility=("wheelchair", "priority_counter"),
        effective_from_ms=GENESIS_TIME_MS,
    )
    fields.update(kw)
    return ServiceOffer(**fields)


def loan_terms(**kw: Any) -> OfferTerms:
    fields = dict(rate_min_bp=345, rate_max_bp=420, rate_type="floating", rate_reference="lpr_1y", spread_bp=-30,
                  term_min_months=6, term_max_months=60, amount_min_minor=10_000_00, amount_max_minor=5_000_000_00,
                  currency="CNY", repayment_methods=("equal_installment", "equal_principal"), collateral_required=True,
                  collateral_kinds=("real_estate",), early_repayment_fee_bp=100)
    fields.update(kw)
    return OfferTerms(0, loan=LoanTerms(**fields))


def deposit_terms(**kw: Any) -> OfferTerms:
    fields = dict(rates=(DepositRate(0, 15), DepositRate(3, 110), DepositRate(12, 145), DepositRate(36, 175)),
                  min_amount_minor=50_00, currency="CNY", early_withdrawal="demand_rate", insured=True)
    fields.update(kw)
    return OfferTerms(0, deposit=DepositTerms(**fields))


def investment_terms(**kw: Any) -> OfferTerms:
    fields = dict(yield_min_bp=280, yield_max_bp=410, not_guaranteed=True, term_months=12, min_amount_minor=10_000_00,
                  currency="CNY", redemption="at_maturity")
    fields.update(kw)
    return OfferTerms(0, investment=InvestmentTerms(**fields))


def quality(period: str = "2026-01", **kw: Any) -> BranchQuality:
    fields = dict(complaints=(ComplaintCount("fees", 12, 10), ComplaintCount("waiting_time", 7, 7),
                              ComplaintCount("card", -1, -1)),
                  resolution_median_hours=20, resolution_p90_hours=70, wait_avg_minutes=8, wait_p90_minutes=25,
                  self_service_availability_bp=9950)
    fields.update(kw)
    return BranchQuality(period, **fields)


def consigned_offer(service_id: str = "fund-a", **kw: Any) -> ServiceOffer:
    fields = dict(category="wealth", ownership="consigned", issuer="Example Fund Management Co.", risk_level=4)
    fields.update(kw)
    return offer(service_id, **fields)


def withdraw(service_id: str = "cash-withdrawal", reason: str = "counter closed for renovation") -> ServiceWithdraw:
    return ServiceWithdraw(service_id, reason)


def status(service_id: str = "cash-withdrawal", state: str = "open", wait: int = 5, equipment=None) -> ServiceStatus:
    equipment = (EquipmentStatus("atm-1", True), EquipmentStatus("atm-2", False)) if equipment is None else equipment
    return ServiceStatus(service_id, state, wait, tuple(equipment))


def sample_bodies() -> list:
    """One body of every kind (and the offer variants)."""
    return [profile(), offer(), consigned_offer(), offer("loan-home", "loan"), withdraw(), status()]


# ---------------------------------------------------------------- records


def record(
    signer: PrivateKey,
    body: Any,
    seq: int = 1,
    *,
    chain_id: str = CHAIN_ID,
    time_ms: int = GENESIS_TIME_MS + 1000,
) -> Record:
    return Record.create(signer, chain_id, seq, time_ms, body)


def offer_record(signer: PrivateKey, service_id: str, seq: int = 1, title: str = "Foreign exchange") -> Record:
    """An "fx" offer with this id, signed (the store's and block sync's unit tests)."""
    return record(signer, offer(service_id, "fx", title=title), seq, time_ms=GENESIS_TIME_MS + 500)


def all_kinds(signer: PrivateKey, *, chain_id: str = CHAIN_ID) -> list[Record]:
    """A valid sequence (profile, offer, status, withdraw) for one branch from empty state."""
    return [
        record(signer, profile(), 1, chain_id=chain_id),
        record(signer, offer(), 1, chain_id=chain_id),
        record(signer, status(), 1, chain_id=chain_id),
        record(signer, withdraw(), 2, chain_id=chain_id),
    ]


# ---------------------------------------------------------------- blocks


def proposer_of(state: LedgerState) -> bytes:
    return state.validators.validators[0].branch_id


def next_block(
    state: LedgerState,
    records: Iterable[Record],
    *,
    time_ms: int | None = None,
    evidence: Iterable = (),
) -> tuple[Block, StateTransaction, list]:
    """Build (not commit) the next block on ``state``."""
    return build_block(
        state,
        height=state.height + 1,
        round=0,
        time_ms=time_ms if time_ms is not None else state.last_block_time_ms + 1000,
        proposer=proposer_of(state),
        candidates=records,
        evidence=evidence,
    )


def certify(block: Block, keys: Iterable[PrivateKey], *, chain_id: str = CHAIN_ID, round: int = 0) -> CommitCertificate:
    votes = [Vote.create(k, chain_id, PRECOMMIT, block.height, round, block.hash) for k in keys]
    return CommitCertificate.from_votes(votes)


def build_chain(genesis: Genesis, batches: Sequence[Sequence[Record]], keys: Sequence[PrivateKey]):
    """Build and commit one block per batch; return [(block_bytes, certificate), ...] and the final state."""
    state = LedgerState(genesis)
    out = []
    for batch in batches:
        block, tx, rejected = next_block(state, batch)
        assert not rejected, rejected
        tx.commit()
        out.append((block.encode(), certify(block, keys)))
    return out, state


def decode_block(data: bytes, params: ChainParams | None = None) -> Block:
    params = params or ChainParams()
    return Block.decode(data, max_bytes=params.max_block_bytes, max_records=params.max_block_records,
                        max_evidence=params.max_block_evidence)


def raw_record(
    signer: PrivateKey,
    kind: str,
    body_array: Any,
    seq: Any = 1,
    *,
    chain_id: Any = CHAIN_ID,
    time_ms: Any = GENESIS_TIME_MS + 1000,
    version: Any = 1,
    branch_id: Any = None,
    signature: Any = None,
    extra: Sequence = (),
) -> bytes:
    """Encode (and sign) a record envelope by hand, bypassing Record.create's checks,
    so tests can build records that break any rule."""
    from protocol.encoding import encode
    from protocol.keys import Domain

    branch_id = signer.branch_id if branch_id is None else branch_id
    arr = [version, kind, chain_id, branch_id, seq, time_ms, body_array]
    if signature is None:
        signature = signer.sign(Domain.RECORD, chain_id if isinstance(chain_id, str) else CHAIN_ID, encode(arr))
    return encode(arr + [signature] + list(extra))


def outcome(fn, *args) -> tuple:
    """``("ok", result)``, or ``(error type, reason, field)`` of the ProtocolError ``fn``
    raised: what the fast-path tests compare between a fast path and its checked path."""
    from protocol.errors import ProtocolError

    try:
        return ("ok", fn(*args))
    except ProtocolError as exc:
        return (type(exc), exc.reason, exc.field)
