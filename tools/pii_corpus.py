"""Run the personal-data corpus (tests/data/pii_corpus.json) through both screening layers.

Shared by tests/test_pii_corpus.py (which asserts the targets) and
tools/bench_pii.py (which prints recall, false refusals and cost). Each entry
becomes an unsigned record of its kind: a plain valid body with the entry's
fields put in. The *consensus* layer is what a validator applies to a block:
``Record.decode`` (§5.1-5.8, §5.3) then the ledger's state check (§8) on top of a
state where the branch has published the corpus' context profile and the service
that withdrawals and statuses name. The *admission* layer is the consensus layer
plus ``node.admission.screen_record`` with that profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from protocol.encoding import encode
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.hashing import sha256
from protocol.keys import PrivateKey
from protocol.ledger import LedgerState
from protocol.records import Record
from protocol.schema import BranchProfile, EquipmentStatus, Fee, OpeningHours, ServiceOffer, ServiceStatus, ServiceWithdraw

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii_corpus.json"
CHAIN_ID = "branchnet-pii-corpus"
TIME_MS = 1_767_225_600_000
KEY = PrivateKey.from_seed(sha256(b"branchnet-pii-corpus"))
SERVICE_ID = "cash-withdrawal"


def load(path: Path = CORPUS) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def context_profile(context: dict[str, Any]) -> BranchProfile:
    return BranchProfile("Jianguomen Sub-branch", "No. 18 Jianguomen Inner Street, Dongcheng District, Beijing 100005",
                         "CN-BJ-110101", 39_904_000, 116_407_000, tuple(OpeningHours(d, 540, 1020) for d in range(5)),
                         context["contact_phone"], "https://bank.example/branches/jianguomen", tuple(context["public_numbers"]))


def _offer() -> ServiceOffer:
    return ServiceOffer(SERVICE_ID, "cash", "Cash withdrawal", "At the counter and the ATMs.", ("counter", "self_service"), (),
                        (Fee("standard", 0, "CNY", "free"),), 0, "own", "", ("wheelchair",), TIME_MS)


def body_array(entry: dict[str, Any], profile: BranchProfile) -> list:
    """The body of ``entry`` as a wire array (built by hand: the schema must not be bypassed
    by a dataclass that refuses the value before the record is decoded)."""
    fields = dict(entry["fields"])
    kind = entry["kind"]
    if kind == "service.offer":
        base = _offer()
        if "fees" in fields:
            fields["fees"] = tuple(Fee(label, 100, "CNY", "per_transaction") for label in fields["fees"])
        if fields.get("category") == "wealth":
            fields["risk_level"] = 3
        body = replace(base, **fields)
    elif kind == "branch.profile":
        if "public_numbers" in fields:
            fields["public_numbers"] = tuple(fields["public_numbers"])
        body = replace(profile, **fields)
    elif kind == "service.withdraw":
        body = replace(ServiceWithdraw(SERVICE_ID, "discontinued"), **fields)
    elif kind == "service.status":
        if "equipment" in fields:
            fields["equipment"] = tuple(EquipmentStatus(e, True) for e in fields["equipment"])
        body = replace(ServiceStatus(SERVICE_ID, "open", 5, (EquipmentStatus("atm-1", True),)), **fields)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return body.to_array()


def raw_record(kind: str, body: list, seq: int) -> bytes:
    """An unsigned record (a zero signature): the layers are checked without signatures."""
    return encode([1, kind, CHAIN_ID, KEY.branch_id, seq, TIME_MS, body, bytes(64)])


@dataclass(frozen=True, slots=True)
class Verdict:
    entry: dict[str, Any]
    consensus: str | None  # the reason the consensus layer refused it, or None
    admission: str | None  # the reason admission refused it (consensus included), or None
    message: str = ""  # the refusal message, as logged


class CorpusRunner:
    """A ledger state with the context profile and an offer committed, to screen entries against."""

    def __init__(self, corpus: dict[str, Any]):
        self.corpus = corpus
        self.profile = context_profile(corpus["context"])
        genesis = Genesis.from_json({"chain_id": CHAIN_ID, "genesis_time_ms": TIME_MS,
                                     "validators": [{"name": "corpus", "public_key": KEY.public_key.hex(), "power": 10}]})
        self.state = LedgerState(genesis)
        tx = self.state.begin(1)
        for kind, body in (("branch.profile", self.profile.to_array()), ("service.offer", _offer().to_array())):
            tx.apply(Record.decode(raw_record(kind, body, 1), chain_id=CHAIN_ID), verify_signature=False)
        tx.commit()

    def record(self, entry: dict[str, Any]) -> bytes:
        kind, sid = entry["kind"], entry["fields"].get("service_id", SERVICE_ID)
        subject = "profile" if kind == "branch.profile" else ("status/" if kind == "service.status" else "service/") + sid
        seq = self.state.next_seq(KEY.branch_id, subject) + (kind == "service.withdraw" and sid != SERVICE_ID)
        return raw_record(kind, body_array(entry, self.profile), seq)

    def consensus(self, raw: bytes) -> Record:
        """Raise ProtocolError unless a validator would accept this record in a block."""
        record = Record.decode(raw, chain_id=CHAIN_ID)
        tx = self.state.begin(2)
        sid = getattr(record.body, "service_id", SERVICE_ID)
        if record.kind in ("service.status", "service.withdraw") and sid != SERVICE_ID:  # offer it first
            offer = replace(_offer(), service_id=sid).to_array()
            tx.apply(Record.decode(raw_record("service.offer", offer, 1), chain_id=CHAIN_ID), verify_signature=False)
        tx.check(record, verify_signature=False)
        return record

    def verdict(self, entry: dict[str, Any]) -> Verdict:
        from node.admission import screen_record

        try:
            record = self.consensus(self.record(entry))
        except ProtocolError as exc:
            return Verdict(entry, exc.reason, exc.reason, str(exc))
        try:
            screen_record(record, profile=self.profile)
        except ProtocolError as exc:
            return Verdict(entry, None, exc.reason, str(exc))
        return Verdict(entry, None, None)

    def run(self) -> list[Verdict]:
        return [self.verdict(e) for e in self.corpus["entries"]]
