"""protocol/records.py and protocol/schema.py: the signed record envelope and record bodies."""

import dataclasses

import pytest

from factories import (
    CHAIN_ID,
    OTHER_CHAIN_ID,
    consigned_offer,
    key,
    offer,
    outcome,
    profile,
    raw_record,
    record,
    sample_bodies,
    status,
    withdraw,
)
from protocol.encoding import decode, encode
from protocol.errors import DecodeError, SignatureError, ValidationError
from protocol.hashing import sha256
from protocol.keys import Domain
from protocol.records import MAX_RECORD_BYTES, Record
from protocol.schema import EquipmentStatus, Fee, OpeningHours

ALICE = key("alice")
BOB = key("bob")


@pytest.mark.parametrize("body", sample_bodies(), ids=lambda b: f"{b.KIND}")
def test_every_kind_round_trips_and_verifies(body):
    rec = record(ALICE, body, seq=3)
    again = Record.decode(rec.raw, chain_id=CHAIN_ID)
    assert again == rec
    assert again.body == body
    assert (again.kind, again.chain_id, again.branch_id, again.seq) == (body.KIND, CHAIN_ID, ALICE.branch_id, 3)
    assert again.hash == sha256(rec.raw)
    again.verify(ALICE.public_key)
    assert rec.to_json()["hash"] == rec.hash.hex()


@pytest.mark.parametrize("body", sample_bodies(), ids=lambda b: f"{b.KIND}")
@pytest.mark.parametrize("seq, time_ms", [(1, 0), (127, 127), (128, 255), (256, 65_535), (65_536, 2**32 - 1), (2**32, 2**53)])
@pytest.mark.parametrize("chain_id", [CHAIN_ID, "c" * 31, "c" * 32, "c" * 64])
def test_body_bytes_are_the_body_encoded(body, seq, time_ms, chain_id):
    # Every width of the envelope's values before the body: fixstr and str8 chain ids,
    # each uint width of seq and time.
    rec = Record.create(ALICE, chain_id, seq, time_ms, body)
    assert rec.body_bytes() == encode(body.to_array())
    assert rec.raw.endswith(rec.body_bytes() + b"\xc4\x40" + rec.signature)


def test_payload_is_the_signed_array():
    rec = record(ALICE, offer())
    arr = decode(rec.raw, max_size=MAX_RECORD_BYTES)
    assert rec.payload() == encode(arr[:7])
    ALICE.public_key.verify(rec.signature, Domain.RECORD, CHAIN_ID, rec.payload())


def test_subjects():
    assert record(ALICE, profile()).subject == "profile"
    assert record(ALICE, offer("x1")).subject == "service/x1"
    assert record(ALICE, withdraw("x1")).subject == "service/x1"
    assert record(ALICE, status("x1")).subject == "status/x1"


def test_wrong_key_and_bad_signature():
    rec = record(ALICE, offer())
    with pytest.raises(SignatureError) as exc:  # not the key in force for Alice's branch
        rec.verify(BOB.public_key)
    assert exc.value.reason == "bad_signature"
    # Bob signs a record claiming to be Alice's branch
    forged = Record.decode(raw_record(BOB, "service.offer", offer().to_array(), branch_id=ALICE.branch_id))
    with pytest.raises(SignatureError) as exc:
        forged.verify(ALICE.public_key)
    assert exc.value.reason == "bad_signature"


def test_signed_for_another_chain():
    raw = record(ALICE, offer(), chain_id=OTHER_CHAIN_ID).raw
    with pytest.raises(ValidationError) as exc:
        Record.decode(raw, chain_id=CHAIN_ID)
    assert (exc.value.reason, exc.value.field) == ("chain_id", "record.chain_id")
    # relabelled with our chain id, the signature no longer verifies
    arr = decode(raw, max_size=MAX_RECORD_BYTES)
    arr[2] = CHAIN_ID
    relabelled = Record.decode(encode(arr), chain_id=CHAIN_ID)
    with pytest.raises(SignatureError):
        relabelled.verify(ALICE.public_key)


def test_create_refuses_to_sign_invalid_body():
    bad = dataclasses.replace(offer(), title="call 13812345678")
    with pytest.raises(ValidationError) as exc:
        Record.create(ALICE, CHAIN_ID, 1, 0, bad)
    assert (exc.value.reason, exc.value.field) == ("pii_phone_number", "record.body.title")


def test_size_limit():
    raw = raw_record(ALICE, "service.offer", offer(description="x" * 2000).to_array())
    Record.decode(raw)  # fits
    big = raw_record(ALICE, "branch.profile", profile().to_array(), extra=[b"x" * MAX_RECORD_BYTES])
    with pytest.raises(DecodeError) as exc:
        Record.decode(big)
    assert exc.value.reason == "oversize"


# ---------------------------------------------------------------- schema rules


def _offer_arr(**kw):
    return offer(**kw).to_array()


def _set(arr, i, v):
    arr = list(arr)
    arr[i] = v
    return arr


SCHEMA_CASES = [
    # (id, kind, body array, error class, reason, field)
    ("offer_risk_required", "service.offer", _set(_offer_arr(category="loan"), 7, 0), ValidationError, "risk_required", "record.body.risk_level"),
    ("offer_risk_not_applicable", "service.offer", _set(_offer_arr(), 7, 2), ValidationError, "risk_not_applicable", "record.body.risk_level"),
    ("offer_risk_range", "service.offer", _set(_offer_arr(category="loan"), 7, 6), DecodeError, "range", "record.body.risk_level"),
    ("offer_consigned_needs_issuer", "service.offer", _set(consigned_offer().to_array(), 9, ""), ValidationError, "issuer", "record.body.issuer"),
    ("offer_own_has_no_issuer", "service.offer", _set(_offer_arr(), 9, "Other Bank"), ValidationError, "issuer", "record.body.issuer"),
    ("offer_unknown_category", "service.offer", _set(_offer_arr(), 1, "crypto"), ValidationError, "enum", "record.body.category"),
    ("offer_no_channels", "service.offer", _set(_offer_arr(), 4, []), ValidationError, "empty", "record.body.channels"),
    ("offer_channels_order", "service.offer", _set(_offer_arr(), 4, ["self_service", "counter"]), ValidationError, "order", "record.body.channels"),
    ("offer_channels_dup", "service.offer", _set(_offer_arr(), 4, ["counter", "counter"]), ValidationError, "order", "record.body.channels"),
    ("offer_bad_channel", "service.offer", _set(_offer_arr(), 4, ["counter", "fax"]), ValidationError, "enum", "record.body.channels[1]"),
    ("offer_free_fee_nonzero", "service.offer", _set(_offer_arr(), 6, [["x", 5, "CNY", "free"]]), ValidationError, "fee", "record.body.fees[0].amount_minor"),
    ("offer_fee_currency", "service.offer", _set(_offer_arr(), 6, [["x", 5, "cny", "one_time"]]), ValidationError, "format", "record.body.fees[0].currency"),
    ("offer_fee_negative", "service.offer", _set(_offer_arr(), 6, [["x", -5, "CNY", "one_time"]]), DecodeError, "range", "record.body.fees[0].amount_minor"),
    ("offer_fee_label_empty", "service.offer", _set(_offer_arr(), 6, [["", 5, "CNY", "one_time"]]), DecodeError, "length", "record.body.fees[0].label"),
    ("offer_title_email", "service.offer", _set(_offer_arr(), 2, "ask li.na@bank.example"), ValidationError, "pii_email", "record.body.title"),
    ("offer_desc_card", "service.offer", _set(_offer_arr(), 3, "pay to 4111 1111 1111 1111"), ValidationError, "pii_card_number", "record.body.description"),
    ("offer_desc_id", "service.offer", _set(_offer_arr(), 3, "holder 110101199003071233"), ValidationError, "pii_national_id", "record.body.description"),
    ("offer_desc_control", "service.offer", _set(_offer_arr(), 3, "bell\x07"), ValidationError, "control_char", "record.body.description"),
    ("offer_hours_overlap", "service.offer", _set(_offer_arr(), 5, [[0, 540, 720], [0, 700, 900]]), ValidationError, "hours", "record.body.hours"),
    ("offer_hours_unsorted", "service.offer", _set(_offer_arr(), 5, [[1, 540, 720], [0, 540, 720]]), ValidationError, "hours", "record.body.hours"),
    ("offer_hours_empty_interval", "service.offer", _set(_offer_arr(), 5, [[0, 600, 600]]), ValidationError, "hours", "record.body.hours[0]"),
    ("offer_hours_day", "service.offer", _set(_offer_arr(), 5, [[7, 540, 720]]), DecodeError, "range", "record.body.hours[0].day"),
    ("offer_service_id", "service.offer", _set(_offer_arr(), 0, "Cash/Withdrawal"), ValidationError, "format", "record.body.service_id"),
    ("offer_accessibility_order", "service.offer", _set(_offer_arr(), 10, ["priority_counter", "wheelchair"]), ValidationError, "order", "record.body.accessibility"),
    ("offer_arity", "service.offer", _offer_arr()[:11], DecodeError, "arity", "record.body"),
    ("profile_region", "branch.profile", _set(profile().to_array(), 2, "beijing"), ValidationError, "format", "record.body.region"),
    ("profile_lat", "branch.profile", _set(profile().to_array(), 3, 91_000_000), DecodeError, "range", "record.body.lat_micro"),
    ("profile_phone", "branch.profile", _set(profile().to_array(), 6, "call us"), ValidationError, "format", "record.body.contact_phone"),
    ("profile_url", "branch.profile", _set(profile().to_array(), 7, "http://bank.example"), ValidationError, "format", "record.body.contact_url"),
    ("profile_address_phone", "branch.profile", _set(profile().to_array(), 1, "ask 13812345678"), ValidationError, "pii_phone_number", "record.body.address"),
    ("status_enum", "service.status", _set(status().to_array(), 1, "busy"), ValidationError, "enum", "record.body.status"),
    ("status_wait", "service.status", _set(status().to_array(), 2, 1441), DecodeError, "range", "record.body.wait_minutes"),
    ("status_dup_equipment", "service.status", _set(status().to_array(), 3, [["atm-1", True], ["atm-1", False]]), ValidationError, "duplicate", "record.body.equipment"),
    ("status_equipment_up_type", "service.status", _set(status().to_array(), 3, [["atm-1", 1]]), DecodeError, "type", "record.body.equipment[0].up"),
    ("withdraw_reason_pii", "service.withdraw", ["cash-withdrawal", "moved, call 139 1234 5678"], ValidationError, "pii_phone_number", "record.body.reason"),
    ("offer_desc_invisible", "service.offer", _set(_offer_arr(), 3, "call\u200b us"), ValidationError, "invisible_char", "record.body.description"),
    ("offer_desc_c1_control", "service.offer", _set(_offer_arr(), 3, "next\x85line"), ValidationError, "control_char", "record.body.description"),
    ("offer_service_id_phone", "service.offer", _set(_offer_arr(), 0, "cust-zhangwei-13800138000"), ValidationError, "pii_phone_number", "record.body.service_id"),
    ("offer_split_phone", "service.offer", _set(_set(_offer_arr(), 2, "Call 138"), 3, "0013 8000 today"), ValidationError, "pii_phone_number", "record.body"),
    ("profile_mobile_contact", "branch.profile", _set(profile().to_array(), 6, "+86 138 0013 8000"), ValidationError, "pii_phone_number", "record.body.contact_phone"),
    ("profile_address_landline", "branch.profile", _set(profile().to_array(), 1, "call 010-6512-3456"), ValidationError, "pii_phone_number", "record.body.address"),
    ("profile_url_email", "branch.profile", _set(profile().to_array(), 7, "https://bank.example/u/zhang.wei@qq.com"), ValidationError, "pii_email", "record.body.contact_url"),
    ("profile_region_phone", "branch.profile", _set(profile().to_array(), 2, "CN-138001-38000"), ValidationError, "pii_phone_number", "record.body.region"),
    ("profile_numbers_empty", "branch.profile", profile().to_array() + [[]], ValidationError, "non_canonical", "record.body.public_numbers"),
    ("profile_numbers_mobile", "branch.profile", profile().to_array() + [["13800138000"]], ValidationError, "pii_phone_number", "record.body.public_numbers[0]"),
    ("profile_numbers_dup", "branch.profile", profile().to_array() + [["95588", "95588"]], ValidationError, "duplicate", "record.body.public_numbers"),
    ("profile_numbers_format", "branch.profile", profile().to_array() + [["call us"]], ValidationError, "format", "record.body.public_numbers[0]"),
    ("profile_arity_10", "branch.profile", profile().to_array() + [["95588"], []], DecodeError, "arity", "record.body"),
]


@pytest.mark.parametrize("kind, body, cls, reason, field", [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
def test_schema_rules(kind, body, cls, reason, field):
    with pytest.raises(cls) as exc:
        Record.decode(raw_record(ALICE, kind, body), chain_id=CHAIN_ID)
    assert type(exc.value) is cls
    assert exc.value.reason == reason
    assert exc.value.field == field


def test_schema_accepts_edges():
    Record.decode(raw_record(ALICE, "service.offer", _set(_offer_arr(), 5, [[0, 0, 1440], [1, 0, 600], [1, 600, 700]])))
    Record.decode(raw_record(ALICE, "service.offer", _set(_offer_arr(), 6, [])))
    Record.decode(raw_record(ALICE, "service.offer", _set(_offer_arr(), 10, [])))
    Record.decode(raw_record(ALICE, "branch.profile", _set(_set(profile().to_array(), 6, ""), 7, "")))
    Record.decode(raw_record(ALICE, "service.status", _set(status().to_array(), 3, [])))
    body = _set(_offer_arr(), 3, "Hours 09:00-17:00; postal code 100080; fee CNY 1,500.00; max 9,999,999")
    Record.decode(raw_record(ALICE, "service.offer", body))


def test_body_types_hold_their_values():
    o = consigned_offer()
    assert o.issuer and o.ownership == "consigned" and o.category == "wealth"
    assert Fee("x", 0, "CNY", "free").to_array() == ["x", 0, "CNY", "free"]
    assert OpeningHours(1, 2, 3).to_array() == [1, 2, 3]
    assert EquipmentStatus("a", True).to_array() == ["a", True]


# ---------------------------------------------------------------- fast paths == checked paths
# schema.py accepts well-formed values on a fast path; these compare it with the checked
# path (which names the field of any error) over mostly-valid, slightly broken inputs.

from hypothesis import given, settings, strategies as st  # noqa: E402

from protocol.schema import ServiceStatus, weekly_hours  # noqa: E402


odd = st.sampled_from([None, True, 1.5, b"x", "", "x" * 70, -1, 2**40, [], ["a"], "CNY", "free", "atm-1", "a@b.cn",
                       "13812345678", "bell\x07", 0, 1440, 1441, 7, "open"])


def maybe(strategy):
    return st.one_of(strategy, strategy, strategy, odd)


fee_arrays = st.one_of(
    st.lists(st.one_of(odd, st.text(max_size=5)), max_size=5),
    st.tuples(maybe(st.sampled_from(["standard", "", "x" * 61, "call 13812345678"])), maybe(st.integers(-2, 10**15 + 1)),
              maybe(st.sampled_from(["CNY", "USD", "cny", "CN"])),
              maybe(st.sampled_from(["free", "per_month", "percent_bp", "monthly"]))).map(list),
)


@settings(max_examples=300, deadline=None)
@given(fee_arrays)
def test_fee_fast_path_matches_checked_path(arr):
    assert outcome(Fee.from_array, arr, "f") == outcome(Fee._from_array_checked, arr, "f")


equipment = st.lists(st.tuples(maybe(st.sampled_from(["atm-1", "atm-2", "ATM", "x" * 65])), maybe(st.booleans())).map(list),
                     max_size=4)
status_arrays = st.one_of(
    st.lists(odd, max_size=5),
    st.tuples(maybe(st.sampled_from(["cash", "Cash!", "a" * 64, "a" * 65])), maybe(st.sampled_from(["open", "paused", "busy"])),
              maybe(st.integers(-1, 1441)), maybe(equipment)).map(list),
)


@settings(max_examples=300, deadline=None)
@given(status_arrays)
def test_status_fast_path_matches_checked_path(arr):
    assert outcome(ServiceStatus._parse, arr, "b") == outcome(ServiceStatus._from_array_checked, arr, "b")


def reference_weekly_hours(value, field):
    from protocol.encoding import expect_list

    hours = tuple(OpeningHours.from_array(v, f"{field}[{i}]") for i, v in enumerate(expect_list(value, field, max_len=21)))
    for i in range(1, len(hours)):
        a, b = hours[i - 1], hours[i]
        if b.day < a.day or (b.day == a.day and b.open_minute < a.close_minute):
            raise ValidationError("intervals must be sorted and not overlap", field=field, reason="hours")
    return hours


intervals = st.lists(st.one_of(st.tuples(maybe(st.integers(-1, 7)), maybe(st.integers(-1, 1441)),
                                         maybe(st.integers(-1, 1441))).map(list), odd), max_size=5)


@settings(max_examples=300, deadline=None)
@given(intervals)
def test_weekly_hours_fast_path_matches_checked_path(arr):
    assert outcome(weekly_hours, arr, "h") == outcome(reference_weekly_hours, arr, "h")


def reference_offer(arr, field):
    import dataclasses

    from protocol.schema import ServiceOffer
    from protocol.terms import OfferTerms

    terms = None
    if type(arr) is list and len(arr) == 13:  # the optional terms element (§5.6.1), checked after the offer
        *arr, terms = arr
    offer = ServiceOffer._from_array_checked(arr, field)
    if terms is not None:
        offer = dataclasses.replace(offer, terms=OfferTerms.from_array(
            terms, f"{field}.terms", category=offer.category, effective_from_ms=offer.effective_from_ms))
    return offer._check_rules(field)


offer_arrays = st.one_of(
    st.lists(odd, max_size=13),
    st.tuples(
        maybe(st.sampled_from(["cash-1", "Cash!", "a" * 65])), maybe(st.sampled_from(["cash", "loan", "wealth", "crypto"])),
        maybe(st.sampled_from(["Cash", "", "x" * 121, "bell\x07", "zero\u200bwidth"])), maybe(st.sampled_from(["", "d", "x" * 2001])),
        maybe(st.lists(st.sampled_from(["counter", "online", "fax", 3]), max_size=4)), maybe(intervals),
        maybe(st.lists(maybe(fee_arrays), max_size=3)), maybe(st.integers(-1, 6)), maybe(st.sampled_from(["own", "consigned", "x"])),
        maybe(st.sampled_from(["", "Issuer Co.", "i" * 121])),
        maybe(st.lists(st.sampled_from(["wheelchair", "braille", "guide_dog", "x"]), max_size=3)),
        maybe(st.integers(-1, 2**53 + 1)),
    ).map(list),
)


@settings(max_examples=500, deadline=None)
@given(offer_arrays)
def test_offer_fast_path_matches_checked_path(arr):
    from protocol.schema import ServiceOffer

    assert outcome(ServiceOffer._parse, arr, "b") == outcome(reference_offer, arr, "b")



@pytest.mark.parametrize("path", ["fast", "checked"])
def test_closed_vocabularies_are_one_string_object_per_value(path):
    # A state holds tens of thousands of bodies (a million-record chain: 65,212 subjects);
    # each enumeration value, currency code and record kind must be one object in memory,
    # not a fresh string per decoded record.
    from protocol.schema import ServiceOffer, ServiceStatus

    def body_of(body):
        raw = record(ALICE, body).raw
        if path == "fast":
            return Record.decode(bytes(raw)).body  # a copy: no string object shared with the encoder's input
        cls = ServiceOffer if body.KIND == "service.offer" else ServiceStatus
        return cls._from_array_checked(decode(raw, max_size=1 << 20)[6], "b")

    a, b = body_of(offer("one")), body_of(offer("two"))
    for x, y in [(a.category, b.category), (a.ownership, b.ownership), (a.fees[0].currency, b.fees[1].currency),
                 (a.fees[0].basis, "free"), (a.channels[0], b.channels[0]), (a.accessibility[1], b.accessibility[1])]:
        assert x == y and x is y
    s, t = body_of(status("one")), body_of(status("two"))
    assert s.status is t.status == "open"
    kinds = [Record.decode(bytes(record(ALICE, offer(sid)).raw)).kind for sid in ("one", "two")]
    assert kinds[0] is kinds[1] == "service.offer"


def _every_kind_of_body() -> list:
    from factories import deposit_terms, investment_terms, loan_terms, quality
    from protocol.governance import Action, GovProposal, GovVote, KeyRotation

    k = key("new-branch")
    return [*sample_bodies(), quality(), offer("loan-t", "loan", terms=loan_terms()),
            offer("deposit-t", "deposit", terms=deposit_terms()),
            offer("fund-t", "wealth", ownership="consigned", issuer="Example Fund Co.",
                  terms=investment_terms()),
            GovProposal("admit", Action("admit_member", name="New Branch", public_key=k.public_key.raw), 50),
            GovProposal("power", Action("set_power", branch_id=k.branch_id, power=10), 50),
            GovVote(b"\x07" * 32, True), KeyRotation(k.public_key.raw)]


_LEAVES = (None, 0, 1, 127, 128, 255, 256, 65_536, 2**32, 2**53, -1, True, False, "", "a", "CNY", b"", b"\x01" * 20,
           b"\x02" * 32, [], [None])


def _one_step_changes(value, path=()):
    """Every body array one step from ``value``: each element replaced by each of _LEAVES,
    each array with one of them appended, and each array without its last element."""
    if isinstance(value, list):
        for leaf in _LEAVES:
            yield path, ("append", leaf)
        if value:
            yield path, ("pop", None)
        for i, item in enumerate(value):
            for leaf in _LEAVES:
                yield path + (i,), ("set", leaf)
            yield from _one_step_changes(item, path + (i,))


def _changed(value, path, change):
    value = decode(encode(value), max_size=MAX_RECORD_BYTES)  # a deep copy, as decoded
    op, leaf = change
    if op == "set":
        parent = value
        for i in path[:-1]:
            parent = parent[i]
        parent[path[-1]] = leaf
        return value
    target = value
    for i in path:
        target = target[i]
    target.append(leaf) if op == "append" else target.pop()
    return value


@pytest.mark.parametrize("body", _every_kind_of_body(), ids=lambda b: f"{b.KIND}-{len(b.to_array())}")
def test_an_accepted_body_is_the_encoding_of_its_value(body):
    # The state's entry leaf holds the record's body as its value (§8); the node builds
    # it from the decoded body (to_array), Record.body_bytes() and another implementation
    # from the bytes. So every body a record may carry must be the one encoding of what it
    # decodes to: no optional element with a second form (an offer's 13th element was one,
    # nil read as "no terms"). Every body one step from a valid one, through Record.decode.
    signer = key("alice")
    variants = [((), None)] + list(_one_step_changes(body.to_array()))  # the body itself first
    accepted = 0
    for path, change in variants:
        value = body.to_array() if change is None else _changed(body.to_array(), path, change)
        try:
            rec = Record.decode(raw_record(signer, body.KIND, value, seq=7), chain_id=CHAIN_ID)
        except (DecodeError, ValidationError):
            assert change is not None  # the valid body itself decodes
            continue
        accepted += 1
        assert rec.body_bytes() == encode(rec.body.to_array()), (path, change)
    assert accepted >= 1
