"""Product terms in service.offer (§5.6.1), ISO 4217 currencies (§5.9) and branch.quality (§5.10).

Malformed forms of every new field are in test_bad_input.py; here: round trips, the
rules that relate fields, old records keeping their bytes and state roots, a chain
with the new records replaying to the same roots, and the frozen currency table
matching its maintained source.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from factories import (
    CHAIN_ID, GENESIS_TIME_MS, build_chain, decode_block, deposit_terms, investment_terms, loan_terms, make_genesis,
    member_keys, offer, quality, raw_record, record, validator_keys,
)
from node.admission import screen_body as admission_screen_body, screen_record
from protocol.currencies import ISO_4217
from protocol.encoding import decode, encode
from protocol.errors import DecodeError, ValidationError
from protocol.ledger import LedgerState
from protocol.quality import BranchQuality, ComplaintCount
from protocol.records import Record
from protocol.schema import Fee, ServiceOffer
from protocol.terms import OfferTerms
from protocol.views import body_from_json, body_to_json

M0 = member_keys(1)[0]
RMB_FEES = (Fee("standard", 0, "CNY", "free"), Fee("Commission", 15, "RMB", "per_transaction"))


def offers_with_terms() -> list[ServiceOffer]:
    return [
        offer("loan-home", "loan", terms=loan_terms()),
        offer("loan-fixed", "loan", terms=loan_terms(rate_min_bp=390, rate_max_bp=390, rate_type="fixed",
                                                     rate_reference="none", spread_bp=0, collateral_required=False,
                                                     collateral_kinds=())),
        offer("deposit-term", "deposit", terms=deposit_terms()),
        offer("fund-a", "wealth", ownership="consigned", issuer="Example Fund Co.", terms=investment_terms()),
        offer("insurance-b", "agency", ownership="consigned", issuer="Example Life Co.",
              terms=investment_terms(yield_min_bp=-50, term_months=0, redemption="any_business_day")),
        offer("fx-counter", "fx", terms=OfferTerms(GENESIS_TIME_MS + 90 * 86_400_000)),
    ]


@pytest.mark.parametrize("body", offers_with_terms(), ids=lambda o: o.service_id)
def test_offer_with_terms_round_trips_array_json_and_record(body):
    arr = body.to_array()
    assert len(arr) == 13
    assert ServiceOffer.from_array(decode(encode(arr), max_size=8192)) == body
    as_json = json.loads(json.dumps(body_to_json(body)))
    assert body_from_json("service.offer", as_json) == body
    assert Record.decode(record(M0, body).raw, chain_id=CHAIN_ID).body == body


def test_offer_without_terms_keeps_its_twelve_element_bytes_and_json():
    old = offer()
    assert old.terms is None and len(old.to_array()) == 12
    assert "terms" not in body_to_json(old)
    assert body_from_json("service.offer", body_to_json(old)) == old
    assert body_from_json("service.offer", {**body_to_json(old), "terms": None}) == old
    r = record(M0, old)
    assert decode(r.raw, max_size=8192)[6] == old.to_array()


def test_an_offer_whose_thirteenth_element_is_nil_is_refused():
    # §5.6: an offer without terms has one encoding, the 12-element array; the 13th element
    # is an array. A nil there was once read as "no terms": a second encoding of the same
    # offer, whose body bytes are not those of its value (the state's entry leaf is built
    # from the value, so another implementation would have disagreed on the root).
    arr = offer().to_array() + [None]
    with pytest.raises(DecodeError) as exc:
        ServiceOffer.from_array(decode(encode(arr), max_size=8192))
    assert (exc.value.field, exc.value.reason) == ("body.terms", "type")
    with pytest.raises(DecodeError) as exc:
        Record.decode(raw_record(M0, "service.offer", arr), chain_id=CHAIN_ID)
    assert (exc.value.field, exc.value.reason) == ("record.body.terms", "type")


def test_terms_json_names_the_product_block_of_the_category():
    j = body_to_json(offer("deposit-term", "deposit", terms=deposit_terms()))["terms"]
    assert set(j) == {"valid_until_ms", "deposit"}
    assert j["deposit"]["rates"][1] == {"term_months": 3, "rate_bp": 110}
    assert body_to_json(offer("fx-counter", "fx", terms=OfferTerms(0)))["terms"] == {"valid_until_ms": 0}


@pytest.mark.parametrize("category, terms, field, reason", [
    ("loan", OfferTerms(0), "record.body.terms", "terms_product"),
    ("fx", loan_terms(), "record.body.terms", "terms_product"),
    ("loan", deposit_terms(), "record.body.terms.loan", "arity"),
    ("deposit", loan_terms(), "record.body.terms.deposit", "arity"),
    ("loan", dataclasses.replace(loan_terms(), valid_until_ms=GENESIS_TIME_MS), "record.body.terms.valid_until_ms", "window"),
])
def test_terms_must_fit_the_category_and_the_window(category, terms, field, reason):
    body = dataclasses.replace(offer("p", category), terms=terms).to_array()
    with pytest.raises(ValidationError if reason != "arity" else Exception) as exc:
        Record.decode(raw_record(M0, "service.offer", body), chain_id=CHAIN_ID)
    assert (exc.value.field, exc.value.reason) == (field, reason)


# ------------------------------------------------------------------ currencies (§5.9)


def test_currency_table_is_the_maintained_iso_4217_list():
    pytest.importorskip("pycountry")
    from tools.gen_currencies import codes_from_library, main

    assert main(["--check"]) == 0
    assert ISO_4217 == frozenset(codes_from_library())
    assert {"CNY", "HKD", "USD", "EUR", "JPY", "XAU"} <= ISO_4217 and not {"RMB", "XYZ", "XTS", "XXX"} & ISO_4217


def test_old_offer_with_rmb_still_decodes_but_not_with_terms():
    old = raw_record(M0, "service.offer", offer(fees=RMB_FEES).to_array())
    assert Record.decode(old, chain_id=CHAIN_ID).body.fees[1].currency == "RMB"  # committed chains keep replaying
    new = raw_record(M0, "service.offer", offer("loan-home", "loan", fees=RMB_FEES, terms=loan_terms()).to_array())
    with pytest.raises(ValidationError) as exc:
        Record.decode(new, chain_id=CHAIN_ID)
    assert (exc.value.field, exc.value.reason) == ("record.body.fees[1].currency", "currency")


def test_admission_refuses_a_non_iso_fee_currency_in_every_new_offer():
    r = Record.decode(raw_record(M0, "service.offer", offer(fees=RMB_FEES).to_array()), chain_id=CHAIN_ID)
    with pytest.raises(ValidationError) as exc:
        screen_record(r, profile=None)
    assert (exc.value.field, exc.value.reason) == ("record.body.fees[1].currency", "currency")
    with pytest.raises(ValidationError) as exc:
        admission_screen_body(offer(fees=(Fee("x", 5, "XYZ", "one_time"),)), profile=None)
    assert (exc.value.field, exc.value.reason) == ("body.fees[0].currency", "currency")
    screen_record(record(M0, offer()), profile=None)  # CNY passes


# ------------------------------------------------------------------ branch.quality (§5.10)


def test_quality_round_trips_and_has_no_text():
    q = quality()
    assert BranchQuality.from_array(decode(encode(q.to_array()), max_size=8192)) == q
    assert body_from_json("branch.quality", json.loads(json.dumps(body_to_json(q)))) == q
    assert q.screened_fields() == [] and q.subject() == "quality/2026-01"
    r = record(M0, q)
    assert r.kind == "branch.quality" and r.subject == "quality/2026-01"


def test_quality_fewer_than_k_and_undisclosed_times():
    q = quality(complaints=(ComplaintCount("fees", -1, -1),), resolution_median_hours=-1, resolution_p90_hours=-1,
                wait_avg_minutes=-1, wait_p90_minutes=-1, self_service_availability_bp=-1)
    assert BranchQuality.from_array(q.to_array()) == q
    assert BranchQuality.from_array(quality(complaints=()).to_array()[:1] + [[], -1, -1, 5, 9, 10_000]).complaints == ()


def test_chain_with_terms_quality_and_an_old_rmb_offer_replays_to_the_same_roots():
    """A correction supersedes (seq + 1), the state holds the latest, the chain keeps both,
    and an independent replay of the blocks reproduces every state root."""
    genesis = make_genesis()
    keys = validator_keys()
    rmb = Record.decode(raw_record(M0, "service.offer", offer("fx-old", "fx", fees=RMB_FEES).to_array()), chain_id=CHAIN_ID)
    first, correction = quality(), quality(wait_avg_minutes=9)
    batches = [
        [rmb, *[record(M0, o) for o in offers_with_terms()]],
        [record(M0, first)],
        [record(M0, correction, 2), record(M0, quality("2026-02"))],
    ]
    chain, state = build_chain(genesis, batches, keys)
    entry = state.entry(M0.branch_id, "quality/2026-01")
    assert entry.seq == 2 and entry.body == correction
    assert state.entry(M0.branch_id, "service/loan-home").body.terms == loan_terms()
    history = [r for data, _ in chain for r in decode_block(data).records if r.subject == "quality/2026-01"]
    assert [r.body for r in history] == [first, correction]
    replay = LedgerState(genesis)
    for data, cert in chain:
        block = decode_block(data)
        replay.commit_block(block, cert)  # checks the header's state root
    assert replay.state_root == state.state_root
