"""Malformed records, headers, blocks, genesis files, votes and certificates.

Every case must be rejected with its specific error type, reason and field, and
nothing but protocol.errors types may escape (DESIGN.md: every malformed byte
string gets a clear rejection, never a crash).
"""

import dataclasses
import json

import msgpack
import pytest

from factories import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    deposit_terms,
    investment_terms,
    loan_terms,
    quality,
    OTHER_CHAIN_ID,
    all_kinds,
    decode_block,
    genesis_doc,
    key,
    make_state,
    member_keys,
    next_block,
    offer,
    profile,
    raw_record,
    record,
    validator_keys,
)
from protocol import merkle
from protocol.blocks import Block, Header
from protocol.encoding import encode
from protocol.errors import DecodeError, ProtocolError, SignatureError, ValidationError
from protocol.genesis import Genesis
from protocol.records import Record
from protocol.votes import PRECOMMIT, CommitCertificate, Vote

M0 = member_keys(1)[0]
GOOD = record(M0, offer())
BODY = offer().to_array()
SIG = b"\x00" * 64


def envelope(*fields_bytes: bytes) -> bytes:
    """A record array assembled from already-encoded fields (to forge non-canonical forms)."""
    return bytes([0x90 + len(fields_bytes)]) + b"".join(fields_bytes)


def rec_fields(**override):
    values = dict(version=1, kind="service.offer", chain_id=CHAIN_ID, branch_id=M0.branch_id, seq=1,
                  time_ms=1000, body=BODY, signature=SIG)
    values.update(override)
    return [encode(v) if not isinstance(v, RawBytes) else v.data for v in values.values()]


@dataclasses.dataclass
class RawBytes:
    data: bytes


def decode_record(data):
    return lambda: Record.decode(data, chain_id=CHAIN_ID)


def decode_header(arr_or_bytes):
    data = arr_or_bytes if isinstance(arr_or_bytes, bytes) else encode(arr_or_bytes)
    return lambda: Header.decode(data)


def load_genesis(doc_or_bytes):
    data = doc_or_bytes if isinstance(doc_or_bytes, (bytes, str)) else json.dumps(doc_or_bytes)
    return lambda: Genesis.loads(data)


def doc_with(mutate):
    doc = genesis_doc(validator_keys(2), member_keys(1))
    mutate(doc)
    return doc


def _header_arr(**override):
    state = make_state()
    block, _, _ = next_block(state, [])
    arr = block.header.to_array()
    from protocol.blocks import HEADER_FIELDS

    for name, v in override.items():
        arr[HEADER_FIELDS.index(name)] = v
    return arr


def _block_arr():
    state = make_state()
    block, _, _ = next_block(state, all_kinds(M0))
    return block.to_array()


def _block_with(mutate):
    arr = _block_arr()
    mutate(arr)
    return lambda: decode_block(encode(arr))


def _set(arr, path, value):
    target = arr
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value


def _block_other_chain_record():
    state = make_state()
    block, _, _ = next_block(state, [])
    foreign = record(M0, offer(), chain_id=OTHER_CHAIN_ID)
    header = dataclasses.replace(block.header, records_root=merkle.root([foreign.raw]))
    return lambda: decode_block(encode([header.to_array(), [foreign.raw], []]))


def _block_duplicate_record():
    state = make_state()
    block, _, _ = next_block(state, [GOOD])
    header = dataclasses.replace(block.header, records_root=merkle.root([GOOD.raw, GOOD.raw]))
    return lambda: decode_block(encode([header.to_array(), [GOOD.raw, GOOD.raw], []]))


def _validate_on_state(mutate_header):
    state = make_state()
    block, _, _ = next_block(state, [GOOD])
    bad = Block(dataclasses.replace(block.header, **mutate_header), block.records)
    return lambda: state.validate_block(bad)


def _forged_record_on_state():
    state = make_state()
    forged = Record.decode(raw_record(key("mallory"), "service.offer", BODY, branch_id=M0.branch_id))
    return lambda: state.begin().apply(forged)


def _cert(signers_mutation):
    keys = validator_keys(4)
    votes = [Vote.create(k, CHAIN_ID, PRECOMMIT, 1, 0, b"\x01" * 32) for k in keys[:3]]
    arr = CommitCertificate.from_votes(votes).to_array()
    signers_mutation(arr)
    return lambda: CommitCertificate.decode(encode(arr))


# ---- offer terms (§5.6.1) and branch.quality (§5.10): one field broken at a time

_PRODUCT_OFFERS = {"loan": offer("loan-x", "loan"), "deposit": offer("deposit-x", "deposit"),
                   "investment": offer("fund-x", "wealth")}
_TERMS = {"loan": loan_terms(), "deposit": deposit_terms(), "investment": investment_terms()}
_FIELDS = {name: [f.name for f in dataclasses.fields(type(t.product))] for name, t in _TERMS.items()}


def terms_case(product, name, value, cls, reason, field=None):
    """A case: the offer with ``product`` terms whose field ``name`` is ``value``."""
    arr = _TERMS[product].to_array()
    arr[1][_FIELDS[product].index(name)] = value
    body = _PRODUCT_OFFERS[product].to_array() + [arr]
    return (f"terms_{product}_{name}_{reason}", decode_record(raw_record(M0, "service.offer", body)), cls, reason,
            f"record.body.terms.{product}.{field or name}")


def terms_raw_case(case_id, category, terms, cls, reason, field, **offer_kw):
    body = offer(f"{category}-x", category, **offer_kw).to_array() + [terms]
    return (case_id, decode_record(raw_record(M0, "service.offer", body)), cls, reason, field)


_QUALITY_FIELDS = [f.name for f in dataclasses.fields(quality())]


def quality_case(case_id, cls, reason, field, complaints=None, **changes):
    arr = quality().to_array()
    if complaints is not None:
        arr[1] = complaints
    for name, value in changes.items():
        arr[_QUALITY_FIELDS.index(name)] = value
    return (case_id, decode_record(raw_record(M0, "branch.quality", arr)), cls, reason, f"record.body.{field}")


_RMB = [["standard", 0, "CNY", "free"], ["Commission", 15, "RMB", "per_transaction"]]

TERMS_CASES = [
    # loan
    terms_case("loan", "rate_min_bp", -1, DecodeError, "range"),
    terms_case("loan", "rate_min_bp", "3.45", DecodeError, "type"),
    terms_case("loan", "rate_max_bp", 100_001, DecodeError, "range"),
    terms_case("loan", "rate_max_bp", 300, ValidationError, "range_order"),
    terms_case("loan", "rate_type", "variable", ValidationError, "enum"),
    terms_case("loan", "rate_type", "fixed", ValidationError, "rate_reference", "rate_reference"),
    terms_case("loan", "rate_reference", "libor", ValidationError, "enum"),
    terms_case("loan", "rate_reference", "none", ValidationError, "rate_reference"),
    terms_case("loan", "spread_bp", 10_001, DecodeError, "range"),
    terms_case("loan", "spread_bp", None, DecodeError, "type"),
    terms_case("loan", "term_min_months", 0, DecodeError, "range"),
    terms_case("loan", "term_max_months", 601, DecodeError, "range"),
    terms_case("loan", "term_max_months", 3, ValidationError, "range_order"),
    terms_case("loan", "amount_min_minor", -5, DecodeError, "range"),
    terms_case("loan", "amount_max_minor", 0, DecodeError, "range"),
    terms_case("loan", "amount_max_minor", 1, ValidationError, "range_order"),
    terms_case("loan", "currency", "RMB", ValidationError, "currency"),
    terms_case("loan", "currency", "cny", ValidationError, "format"),
    terms_case("loan", "currency", 156, DecodeError, "type"),
    terms_case("loan", "repayment_methods", [], ValidationError, "empty"),
    terms_case("loan", "repayment_methods", ["equal_principal", "equal_installment"], ValidationError, "order"),
    terms_case("loan", "repayment_methods", ["weekly"], ValidationError, "enum", "repayment_methods[0]"),
    terms_case("loan", "collateral_required", 1, DecodeError, "type"),
    terms_case("loan", "collateral_required", False, ValidationError, "collateral", "collateral_kinds"),
    terms_case("loan", "collateral_kinds", [], ValidationError, "collateral"),
    terms_case("loan", "collateral_kinds", ["gold"], ValidationError, "enum", "collateral_kinds[0]"),
    terms_case("loan", "early_repayment_fee_bp", 10_001, DecodeError, "range"),
    terms_raw_case("terms_loan_fixed_with_spread", "loan", loan_terms(rate_type="fixed", rate_reference="none").to_array(),
                   ValidationError, "spread", "record.body.terms.loan.spread_bp"),
    terms_raw_case("terms_loan_arity", "loan", [0, loan_terms().to_array()[1][:13]], DecodeError, "arity", "record.body.terms.loan"),
    # deposit
    terms_case("deposit", "rates", [], ValidationError, "empty"),
    terms_case("deposit", "rates", "3m:1.10", DecodeError, "type"),
    terms_case("deposit", "rates", [[12, 140], [3, 110]], ValidationError, "order", "rates[1].term_months"),
    terms_case("deposit", "rates", [[3, 110], [3, 120]], ValidationError, "order", "rates[1].term_months"),
    terms_case("deposit", "rates", [[3]], DecodeError, "arity", "rates[0]"),
    terms_case("deposit", "rates", [[3, -1]], DecodeError, "range", "rates[0].rate_bp"),
    terms_case("deposit", "rates", [[601, 100]], DecodeError, "range", "rates[0].term_months"),
    terms_case("deposit", "rates", [[i, 100] for i in range(17)], DecodeError, "too_long"),
    terms_case("deposit", "min_amount_minor", -1, DecodeError, "range"),
    terms_case("deposit", "currency", "XYZ", ValidationError, "currency"),
    terms_case("deposit", "early_withdrawal", "sometimes", ValidationError, "enum"),
    terms_case("deposit", "insured", 1, DecodeError, "type"),
    # investment (wealth, agency)
    terms_case("investment", "yield_min_bp", -10_001, DecodeError, "range"),
    terms_case("investment", "yield_max_bp", 100, ValidationError, "range_order"),
    terms_case("investment", "not_guaranteed", False, ValidationError, "guaranteed"),
    terms_case("investment", "not_guaranteed", "yes", DecodeError, "type"),
    terms_case("investment", "term_months", 601, DecodeError, "range"),
    terms_case("investment", "min_amount_minor", "1000", DecodeError, "type"),
    terms_case("investment", "currency", "XXX", ValidationError, "currency"),
    terms_case("investment", "redemption", "weekly", ValidationError, "enum"),
    # the element itself
    terms_raw_case("terms_not_array", "loan", 0, DecodeError, "type", "record.body.terms"),
    terms_raw_case("terms_loan_without_product", "loan", [0], ValidationError, "terms_product", "record.body.terms"),
    terms_raw_case("terms_fx_with_product", "fx", loan_terms().to_array(), ValidationError, "terms_product", "record.body.terms"),
    terms_raw_case("terms_empty", "fx", [], ValidationError, "terms_product", "record.body.terms"),
    terms_raw_case("terms_deposit_in_loan", "loan", deposit_terms().to_array(), DecodeError, "arity", "record.body.terms.loan"),
    terms_raw_case("terms_until_before_effective", "fx", [GENESIS_TIME_MS], ValidationError, "window", "record.body.terms.valid_until_ms"),
    terms_raw_case("terms_until_negative", "fx", [-1], DecodeError, "range", "record.body.terms.valid_until_ms"),
    terms_raw_case("terms_until_string", "fx", ["never"], DecodeError, "type", "record.body.terms.valid_until_ms"),
    ("terms_fee_currency", decode_record(raw_record(M0, "service.offer", offer("fx-x", "fx").to_array()[:6] + [_RMB]
                                                    + offer("fx-x", "fx").to_array()[7:] + [[0]])),
     ValidationError, "currency", "record.body.fees[1].currency"),
    ("offer_fourteen_elements", decode_record(raw_record(M0, "service.offer", offer("fx-x", "fx").to_array() + [[0], 0])),
     DecodeError, "arity", "record.body"),
    # branch.quality
    quality_case("quality_period_month_13", ValidationError, "format", "period", period="2026-13"),
    quality_case("quality_period_short_year", ValidationError, "format", "period", period="26-01"),
    quality_case("quality_period_with_day", DecodeError, "length", "period", period="2026-01-31"),
    quality_case("quality_period_int", DecodeError, "type", "period", period=202601),
    quality_case("quality_complaints_not_list", DecodeError, "type", "complaints", complaints="fees=5"),
    quality_case("quality_complaint_arity", DecodeError, "arity", "complaints[0]", complaints=[["fees", 5]]),
    quality_case("quality_complaint_category", ValidationError, "enum", "complaints[0].category", complaints=[["rudeness", 5, 5]]),
    quality_case("quality_complaint_free_text", ValidationError, "enum", "complaints[0].category",
                 complaints=[["Mr Wang waited 3 hours", 5, 5]]),
    quality_case("quality_complaint_order", ValidationError, "order", "complaints[1].category",
                 complaints=[["card", 5, 5], ["fees", 5, 5]]),
    quality_case("quality_complaint_duplicate", ValidationError, "order", "complaints[1].category",
                 complaints=[["fees", 5, 5], ["fees", 6, 6]]),
    quality_case("quality_received_small", ValidationError, "small_count", "complaints[0].received", complaints=[["fees", 3, -1]]),
    quality_case("quality_received_zero", ValidationError, "small_count", "complaints[0].received", complaints=[["fees", 0, -1]]),
    quality_case("quality_resolved_small", ValidationError, "small_count", "complaints[0].resolved", complaints=[["fees", 9, 1]]),
    quality_case("quality_received_minus_two", DecodeError, "range", "complaints[0].received", complaints=[["fees", -2, -1]]),
    quality_case("quality_received_huge", DecodeError, "range", "complaints[0].received", complaints=[["fees", 10**6 + 1, 5]]),
    quality_case("quality_resolved_above_received", ValidationError, "count_consistency", "complaints[0].resolved",
                 complaints=[["fees", 6, 7]]),
    quality_case("quality_resolved_exact_received_few", ValidationError, "count_consistency", "complaints[0].resolved",
                 complaints=[["fees", -1, 5]]),
    quality_case("quality_median_without_exact_resolved", ValidationError, "small_count", "resolution_median_hours",
                 complaints=[["fees", 8, -1]]),
    quality_case("quality_median_above_p90", ValidationError, "range_order", "resolution_p90_hours", resolution_median_hours=80),
    quality_case("quality_median_only", ValidationError, "pair", "resolution_p90_hours", resolution_p90_hours=-1),
    quality_case("quality_median_hours_huge", DecodeError, "range", "resolution_median_hours", resolution_median_hours=8761),
    quality_case("quality_wait_pair", ValidationError, "pair", "wait_p90_minutes", wait_avg_minutes=-1),
    quality_case("quality_wait_avg_huge", DecodeError, "range", "wait_avg_minutes", wait_avg_minutes=1441),
    quality_case("quality_wait_p90_nil", DecodeError, "type", "wait_p90_minutes", wait_p90_minutes=None),
    quality_case("quality_availability_huge", DecodeError, "range", "self_service_availability_bp",
                 self_service_availability_bp=10_001),
    ("quality_free_text_element", decode_record(raw_record(M0, "branch.quality", quality().to_array() + ["note"])),
     DecodeError, "arity", "record.body"),
]

CASES = [
    # ---- records: bytes and envelope
    ("record_empty", decode_record(b""), DecodeError, "empty", "encoding"),
    ("record_garbage", decode_record(b"\xc1\x00"), DecodeError, "malformed", "encoding"),
    ("record_truncated", decode_record(GOOD.raw[:-1]), DecodeError, "malformed", "encoding"),
    ("record_trailing_byte", decode_record(GOOD.raw + b"\x00"), DecodeError, "trailing", "encoding"),
    ("record_not_array", decode_record(encode("record")), DecodeError, "type", "record"),
    ("record_seven_fields", decode_record(encode([1, "service.offer", CHAIN_ID, M0.branch_id, 1, 0, BODY])), DecodeError, "arity", "record"),
    ("record_nine_fields", decode_record(raw_record(M0, "service.offer", BODY, extra=[b""])), DecodeError, "arity", "record"),
    ("record_oversize", decode_record(raw_record(M0, "service.offer", BODY, extra=[b"x" * 9000])), DecodeError, "oversize", "encoding"),
    ("record_version_2", decode_record(raw_record(M0, "service.offer", BODY, version=2)), DecodeError, "version", "record.version"),
    ("record_version_bool", decode_record(raw_record(M0, "service.offer", BODY, version=True)), DecodeError, "version", "record.version"),
    ("record_version_float", decode_record(envelope(*rec_fields(version=RawBytes(msgpack.packb(1.0))))), DecodeError, "version", "record.version"),
    ("record_unknown_kind", decode_record(raw_record(M0, "service.delete", BODY)), ValidationError, "kind", "record.kind"),
    ("record_kind_bytes", decode_record(raw_record(M0, b"service.offer", BODY)), DecodeError, "type", "record.kind"),
    ("record_other_chain", decode_record(raw_record(M0, "service.offer", BODY, chain_id=OTHER_CHAIN_ID)), ValidationError, "chain_id", "record.chain_id"),
    ("record_chain_id_too_long", decode_record(raw_record(M0, "service.offer", BODY, chain_id="c" * 65)), DecodeError, "length", "record.chain_id"),
    ("record_branch_id_short", decode_record(raw_record(M0, "service.offer", BODY, branch_id=b"\x01" * 19)), DecodeError, "size", "record.branch_id"),
    ("record_seq_zero", decode_record(raw_record(M0, "service.offer", BODY, seq=0)), DecodeError, "range", "record.seq"),
    ("record_seq_too_big", decode_record(raw_record(M0, "service.offer", BODY, seq=2**53 + 1)), DecodeError, "range", "record.seq"),
    ("record_seq_negative", decode_record(raw_record(M0, "service.offer", BODY, seq=-1)), DecodeError, "range", "record.seq"),
    ("record_seq_string", decode_record(raw_record(M0, "service.offer", BODY, seq="1")), DecodeError, "type", "record.seq"),
    ("record_seq_float", decode_record(envelope(*rec_fields(seq=RawBytes(msgpack.packb(1.0))))), DecodeError, "type", "record.seq"),
    ("record_seq_wide_int", decode_record(envelope(*rec_fields(seq=RawBytes(b"\xcd\x00\x01")))), DecodeError, "non_canonical", "encoding"),
    ("record_kind_str8", decode_record(envelope(*rec_fields(kind=RawBytes(b"\xd9\x0dservice.offer")))), DecodeError, "non_canonical", "encoding"),
    ("record_time_negative", decode_record(raw_record(M0, "service.offer", BODY, time_ms=-5)), DecodeError, "range", "record.time_ms"),
    ("record_signature_short", decode_record(raw_record(M0, "service.offer", BODY, signature=b"\x00" * 63)), DecodeError, "size", "record.signature"),
    ("record_signature_str", decode_record(raw_record(M0, "service.offer", BODY, signature="s" * 64)), DecodeError, "type", "record.signature"),
    ("record_body_not_array", decode_record(raw_record(M0, "service.offer", "body")), DecodeError, "type", "record.body"),
    ("record_body_wrong_kind", decode_record(raw_record(M0, "service.offer", profile().to_array())), DecodeError, "arity", "record.body"),
    ("record_body_map", decode_record(envelope(*rec_fields(body=RawBytes(b"\x81\xa1a\x01")))), DecodeError, "malformed", "encoding"),
    ("record_title_bad_utf8", decode_record(envelope(*rec_fields(body=RawBytes(b"\x9c" + b"".join(
        [encode(BODY[0]), encode(BODY[1]), b"\xa2\xff\xfe"] + [encode(x) for x in BODY[3:]]))))), DecodeError, "utf8", "encoding"),
    ("record_title_email", decode_record(raw_record(M0, "service.offer", offer(title="mail wang@bank.example").to_array())), ValidationError, "pii_email", "record.body.title"),
    ("record_deeply_nested", decode_record(b"\x91" * 1000 + b"\xc0"), DecodeError, "arity", "record"),
    ("record_nested_too_deep", decode_record(b"\x91" * 2000 + b"\xc0"), DecodeError, "malformed", "encoding"),
    ("record_forged_signature", _forged_record_on_state(), SignatureError, "bad_signature", "signature"),
    # ---- headers
    ("header_version_2", decode_header(_header_arr(version=2)), DecodeError, "version", "header.version"),
    ("header_eleven_fields", decode_header(_header_arr()[:11]), DecodeError, "arity", "header"),
    ("header_height_zero", decode_header(_header_arr(height=0)), DecodeError, "range", "header.height"),
    ("header_round_negative", decode_header(_header_arr(round=-1)), DecodeError, "range", "header.round"),
    ("header_time_string", decode_header(_header_arr(time_ms="now")), DecodeError, "type", "header.time_ms"),
    ("header_prev_hash_short", decode_header(_header_arr(prev_hash=b"\x00" * 31)), DecodeError, "size", "header.prev_hash"),
    ("header_state_root_str", decode_header(_header_arr(state_root="00" * 32)), DecodeError, "type", "header.state_root"),
    ("header_proposer_long", decode_header(_header_arr(proposer=b"\x00" * 21)), DecodeError, "size", "header.proposer"),
    ("header_chain_id_empty", decode_header(_header_arr(chain_id="")), DecodeError, "length", "header.chain_id"),
    ("header_oversize", decode_header(encode(_header_arr(chain_id="x" * 2000))), DecodeError, "oversize", "encoding"),
    ("header_trailing", decode_header(encode(_header_arr()) + b"\xc0"), DecodeError, "trailing", "encoding"),
    # ---- blocks
    ("block_two_parts", _block_with(lambda a: a.pop()), DecodeError, "arity", "block"),
    ("block_records_not_list", _block_with(lambda a: _set(a, [1], b"records")), DecodeError, "type", "block.records"),
    ("block_record_not_bytes", _block_with(lambda a: _set(a, [1, 0], "record")), DecodeError, "type", "block.records[0]"),
    ("block_records_swapped", _block_with(lambda a: a[1].reverse()), ValidationError, "records_root", "header.records_root"),
    ("block_record_dropped", _block_with(lambda a: a[1].pop()), ValidationError, "records_root", "header.records_root"),
    ("block_record_other_chain", _block_other_chain_record(), ValidationError, "chain_id", "block.records[0].record.chain_id"),
    ("block_duplicate_record", _block_duplicate_record(), ValidationError, "duplicate_record", "block.records[1]"),
    ("block_evidence_garbage", _block_with(lambda a: _set(a, [2], [[1, 2]])), DecodeError, "type", "block.evidence[0].vote_a"),
    ("block_evidence_root", _block_with(lambda a: _set(a, [0, 7], b"\x00" * 32)), ValidationError, "evidence_root", "header.evidence_root"),
    ("block_wrong_height_on_state", _validate_on_state(dict(height=5)), ValidationError, "height", "header.height"),
    ("block_wrong_state_root_on_state", _validate_on_state(dict(state_root=b"\x00" * 32)), ValidationError, "state_root", "header.state_root"),
    # ---- votes and certificates
    ("vote_garbage", lambda: Vote.decode(b"\x96\x01"), DecodeError, "malformed", "encoding"),
    ("vote_oversize", lambda: Vote.decode(encode([1, 1, 0, b"\x00" * 300, b"\x00" * 20, SIG])), DecodeError, "oversize", "encoding"),
    ("certificate_unsorted", _cert(lambda a: a[3].reverse()), DecodeError, "order", "certificate.signatures"),
    ("certificate_nil_block", _cert(lambda a: _set(a, [2], b"")), DecodeError, "size", "certificate.block_hash"),
    # ---- genesis files
    ("genesis_not_json", load_genesis("{chain_id: x}"), ValidationError, "json", "genesis"),
    ("genesis_not_utf8", load_genesis(b'{"chain_id": "\xff"}'), ValidationError, "utf8", "genesis"),
    ("genesis_oversize", load_genesis(b" " * ((1 << 20) + 1)), ValidationError, "oversize", "genesis"),
    ("genesis_array", load_genesis([]), ValidationError, "type", "genesis"),
    ("genesis_huge_int", load_genesis(b'{"genesis_time_ms": ' + b"9" * 5000 + b"}"), ValidationError, "json", "genesis"),
    ("genesis_deep_nesting", load_genesis("[" * 100_000 + "]" * 100_000), ValidationError, "json", "genesis"),
    ("genesis_unknown_field", load_genesis(doc_with(lambda d: d.update(admin="me"))), ValidationError, "unknown", "genesis"),
    ("genesis_chain_id_format", load_genesis(doc_with(lambda d: d.update(chain_id="Bad_Chain"))), ValidationError, "format", "chain_id"),
    ("genesis_chain_id_missing", load_genesis(doc_with(lambda d: d.pop("chain_id"))), ValidationError, "format", "chain_id"),
    ("genesis_time_negative", load_genesis(doc_with(lambda d: d.update(genesis_time_ms=-1))), ValidationError, "range", "genesis_time_ms"),
    ("genesis_time_float", load_genesis(doc_with(lambda d: d.update(genesis_time_ms=1.5))), ValidationError, "range", "genesis_time_ms"),
    ("genesis_validators_not_list", load_genesis(doc_with(lambda d: d.update(validators={}))), ValidationError, "type", "validators"),
    ("genesis_no_validators", load_genesis(doc_with(lambda d: d.update(validators=[]))), ValidationError, "empty", "validators"),
    ("genesis_validator_not_object", load_genesis(doc_with(lambda d: d["validators"].append("v"))), ValidationError, "type", "validators[2]"),
    ("genesis_key_short", load_genesis(doc_with(lambda d: d["validators"][0].update(public_key="ab" * 31))), ValidationError, "format", "validators[0].public_key"),
    ("genesis_key_not_hex", load_genesis(doc_with(lambda d: d["validators"][1].update(public_key="zz" * 32))), ValidationError, "format", "validators[1].public_key"),
    ("genesis_key_number", load_genesis(doc_with(lambda d: d["validators"][1].update(public_key=7))), ValidationError, "format", "validators[1].public_key"),
    ("genesis_branch_id_mismatch", load_genesis(doc_with(lambda d: d["validators"][0].update(branch_id="00" * 20))), ValidationError, "branch_id", "validators[0].branch_id"),
    ("genesis_power_zero", load_genesis(doc_with(lambda d: d["validators"][0].update(power=0))), ValidationError, "range", "validators[0].power"),
    ("genesis_power_bool", load_genesis(doc_with(lambda d: d["validators"][0].update(power=True))), ValidationError, "range", "validators[0].power"),
    ("genesis_name_empty", load_genesis(doc_with(lambda d: d["validators"][0].update(name=""))), ValidationError, "format", "validators[0].name"),
    ("genesis_member_with_power", load_genesis(doc_with(lambda d: d["members"][0].update(power=5))), ValidationError, "unknown", "members[0]"),
    ("genesis_duplicate_branch", load_genesis(doc_with(lambda d: d["members"].append(dict(d["validators"][0], name="Copy")) or d["members"][-1].pop("power"))), ValidationError, "duplicate", "members"),
    ("genesis_duplicate_name", load_genesis(doc_with(lambda d: d["members"][0].update(name=d["validators"][0]["name"]))), ValidationError, "duplicate_name", "members"),
    ("genesis_params_unknown", load_genesis(doc_with(lambda d: d.update(params={"block_size": 5}))), ValidationError, "unknown", "params"),
    ("genesis_params_not_object", load_genesis(doc_with(lambda d: d.update(params=[1]))), ValidationError, "type", "params"),
    ("genesis_params_zero", load_genesis(doc_with(lambda d: d.update(params={"max_block_records": 0}))), ValidationError, "range", "params.max_block_records"),
    *TERMS_CASES,
    ("genesis_params_record_limit", load_genesis(doc_with(lambda d: d.update(params={"max_record_bytes": 9000}))), ValidationError, "range", "params.max_record_bytes"),
]


@pytest.mark.parametrize("call, cls, reason, field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected_with_specific_error(call, cls, reason, field):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the point: nothing but protocol errors
        assert isinstance(exc, ProtocolError), f"leaked {type(exc).__name__}: {exc}"
        assert type(exc) is cls, f"{type(exc).__name__}: {exc}"
        assert exc.reason == reason, str(exc)
        assert exc.field == field, str(exc)
    else:
        pytest.fail("accepted")


def test_table_size():
    assert len(CASES) >= 30


def test_every_terms_and_quality_field_has_a_malformed_case():
    """Each field of the terms blocks and of branch.quality is named by at least one refused case."""
    named = {c[4] for c in TERMS_CASES}
    for product, fields in _FIELDS.items():
        for name in fields:
            assert any(f.startswith(f"record.body.terms.{product}.{name}") for f in named), (product, name)
    assert "record.body.terms.valid_until_ms" in named
    for name in _QUALITY_FIELDS:
        assert any(f.startswith(f"record.body.{name}") for f in named), name
