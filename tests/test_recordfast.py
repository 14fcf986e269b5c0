"""protocol/_recordfast.c, record decoding's fast path in C, against the Python decoder.

For any input, ``Record.decode`` must give the same outcome with the C and without it:
the same record (field by field, type by type) or the same error. The C takes a
subset (offers without terms, statuses, withdrawals and profiles) and returns
None for the rest; the tables below pin each of its limits to the Python's from both
sides (a C limit looser than the Python's would let a node accept a record others
refuse; a stricter one would only send records to the slower path, which the
"accepted" rows catch), and the property tests mix limits, odd values, non-canonical
encodings and damaged bytes.
"""

from __future__ import annotations

import dataclasses
import struct
import sys

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

import protocol.records as records
from factories import CHAIN_ID, GENESIS_TIME_MS, loan_terms, offer, outcome, profile, status, withdraw
from protocol.field_types import ACCESSIBILITY, CATEGORIES, CHANNELS, RISK_RATED_CATEGORIES, STATUSES
from protocol.records import Record
from protocol.schema import EquipmentStatus, plain

pytestmark = pytest.mark.skipif(records._decode_c is None,
                                reason="protocol._recordfast not built (no C compiler or OpenSSL headers at install)")
SCREENED = records._decode_c  # _recordfast.decode_screened: (record, plain) or None


def C_DECODE(data, chain_id, digest):
    """The record the C decodes, or None where it declines."""
    screened = SCREENED(data, chain_id, digest)
    return None if screened is None else screened[0]

OFFER = ("service_id", "category", "title", "description", "channels", "hours", "fees", "risk_level", "ownership",
         "issuer", "accessibility", "effective_from_ms")
STATUS = ("service_id", "status", "wait_minutes", "equipment")
WITHDRAW = ("service_id", "reason")
PROFILE = ("name", "address", "region", "lat_micro", "lon_micro", "hours", "contact_phone", "contact_url", "public_numbers")
ENVELOPE = ("version", "kind", "chain_id", "branch_id", "seq", "time_ms", "body", "signature")


def typed(value):
    """``value`` with the type of every part spelled out: dataclass equality alone would
    take True for 1 and a list for a tuple."""
    if dataclasses.is_dataclass(value):
        return type(value).__name__, tuple(typed(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return type(value).__name__, tuple(typed(v) for v in value)
    return type(value).__name__, value


def decode_both(data, chain_id=CHAIN_ID):
    """(outcome with the C, outcome without it), each as ``typed``."""
    def run():
        return outcome(lambda: typed(Record.decode(data, chain_id=chain_id)))

    with_c = run()
    records._decode_c = None
    try:
        without_c = run()
    finally:
        records._decode_c = SCREENED
    check_plain_flag(data, chain_id)
    return with_c, without_c


def check_plain_flag(data, chain_id=CHAIN_ID):
    """decode_screened's answer for ``data``: the record decode gives, and whether its body's
    screened text is plain exactly as screening.plain says (None only for a profile, whose
    text holds its URL decoded); returns that answer, or None where the C declines."""
    screened = SCREENED(data, chain_id, None)
    if screened is None:
        return None
    record, flag = screened
    if record.kind == "branch.profile":
        assert flag is None
    else:
        assert flag is plain(record.body.screened_text()), record.body.screened_text()
    return flag


def envelope(kind: str, body: list, **changes) -> list:
    fields = dict(version=1, kind=kind, chain_id=CHAIN_ID, branch_id=bytes(range(20)), seq=1, time_ms=GENESIS_TIME_MS,
                  body=body, signature=bytes(range(64)))
    assert set(changes) <= set(fields)
    fields.update(changes)
    return [fields[name] for name in ENVELOPE]


def body_array(base, names, changes: dict) -> list:
    arr = base.to_array()
    for name, value in changes.items():
        arr[names.index(name)] = value
    return arr


def offer_array(**changes) -> list:
    return body_array(offer(), OFFER, changes)


def status_array(**changes) -> list:
    return body_array(status(equipment=(EquipmentStatus("atm-1", True), EquipmentStatus("atm-2", False))), STATUS, changes)


def withdraw_array(**changes) -> list:
    return body_array(withdraw(), WITHDRAW, changes)


def profile_array(**changes) -> list:
    """A profile's array; ``public_numbers`` given (even empty) is put as the 9th element."""
    numbers = changes.pop("public_numbers", None)
    return body_array(profile(), PROFILE, changes) + ([] if numbers is None else [numbers])


def fee(label="standard", amount=0, currency="CNY", basis="free") -> list:
    return [label, amount, currency, basis]


def hours(n: int) -> list:
    return [[i // 3, 60 * (i % 3), 60 * (i % 3) + 30] for i in range(n)]


def equipment(n: int) -> list:
    return [[f"atm-{i}", i % 2 == 0] for i in range(n)]


# (what, record array, chain_id given to decode) per outcome: "accepted" (the C decodes it,
# to what the Python decodes), "declined" (the C leaves it to the Python, which accepts it),
# "refused" (the C leaves it to the Python, which refuses it).
ACCEPTED = [
    *[(f"offer {k}={v!r:.20}", envelope("service.offer", offer_array(**{k: v}))) for k, v in [
        ("service_id", "a"), ("service_id", "a" * 64), ("service_id", "0"), ("service_id", "a.b_c-d"), ("service_id", "9-"),
        ("title", "T"), ("title", "x" * 120), ("title", "tab\there"), ("title", "new\nline"), ("title", " "),
        ("description", ""), ("description", "x" * 2000), ("channels", ["counter"]), ("channels", list(CHANNELS)),
        ("hours", []), ("hours", [[0, 0, 1]]), ("hours", [[6, 1439, 1440]]), ("hours", [[0, 540, 720], [0, 720, 1020]]),
        ("hours", hours(21)), ("fees", []), ("fees", [fee()] * 16), ("fees", [fee("x" * 60)]),
        ("fees", [fee(amount=10**15, basis="per_month")]), ("fees", [fee(currency="ZZZ")]),
        ("fees", [fee(amount=127, basis="percent_bp"), fee(amount=128, basis="one_time"), fee(amount=65536, basis="per_year")]),
        ("accessibility", []), ("accessibility", list(ACCESSIBILITY)), ("effective_from_ms", 0),
        ("effective_from_ms", 2**53), ("effective_from_ms", 2**32)]],
    *[(f"offer category {c}", envelope("service.offer", offer_array(category=c, risk_level=3 if c in RISK_RATED_CATEGORIES else 0)))
      for c in CATEGORIES],
    ("offer risk 1", envelope("service.offer", offer_array(category="loan", risk_level=1))),
    ("offer risk 5", envelope("service.offer", offer_array(category="wealth", risk_level=5))),
    ("offer consigned", envelope("service.offer", offer_array(ownership="consigned", issuer="Issuer Co."))),
    ("offer issuer 120", envelope("service.offer", offer_array(ownership="consigned", issuer="i" * 120))),
    *[(f"profile {k}={v!r:.24}", envelope("branch.profile", profile_array(**{k: v}))) for k, v in [
        ("name", "N"), ("name", "x" * 120), ("name", "海淀支行"), ("name", "支" * 120), ("address", "A"), ("address", "x" * 200),
        ("region", "CN"), ("region", "CN-BJ"), ("region", "AB-1-2-3"), ("region", "AB-ABCDEF"), ("region", "ZZ-123456-X-Y9"),
        *[("lat_micro", v) for v in (0, -1, -32, -33, -128, -129, -32768, -32769, 127, 128, 65536, -90_000_000, 90_000_000)],
        ("lon_micro", -180_000_000), ("lon_micro", 180_000_000), ("hours", []), ("hours", hours(21)),
        ("contact_phone", ""), ("contact_phone", "12345"), ("contact_phone", "+1 2-3 4 5"), ("contact_phone", "0" * 24),
        ("contact_phone", "+" + "1" * 23), ("contact_phone", "010-6512 0000"), ("contact_url", ""),
        ("contact_url", "https://a"), ("contact_url", "https://a:1"), ("contact_url", "https://a.b-c:65535/"),
        ("contact_url", "https://h/._~!$&'()*+,;=:@%/-AZaz09"), ("contact_url", "https://x/" + "p" * 190),
        ("contact_url", "https://A-1.example:8443/branches/x%20y"),
        ("public_numbers", ["010 6512 0000"]), ("public_numbers", [f"010 6512 000{i}" for i in range(8)]),
        ("public_numbers", ["12345", "+1" + "2" * 14, "95588"])]],
    ("profile of Chinese text", envelope("branch.profile", profile_array(name="中国银行北京海淀支行",
                                                                        address="北京市海淀区中关村大街1号"))),
    *[(f"status {k}={v!r:.20}", envelope("service.status", status_array(**{k: v}))) for k, v in [
        ("service_id", "z" * 64), ("wait_minutes", 0), ("wait_minutes", 1440), ("wait_minutes", 255), ("wait_minutes", 256),
        ("equipment", []), ("equipment", equipment(32)), ("equipment", [["a" * 64, False]])]],
    *[(f"status {s}", envelope("service.status", status_array(status=s))) for s in STATUSES],
    *[(f"withdraw {k}={v!r:.20}", envelope("service.withdraw", withdraw_array(**{k: v}))) for k, v in [
        ("reason", ""), ("reason", "x" * 200), ("reason", "x" * 31), ("reason", "x" * 32), ("service_id", "w" * 64)]],
    *[(f"envelope {k}={v!r:.20}", envelope("service.status", status_array(), **{k: v})) for k, v in [
        ("seq", 1), ("seq", 2**53), ("seq", 127), ("seq", 128), ("time_ms", 0), ("time_ms", 2**53), ("branch_id", bytes(20)),
        ("signature", b"\xff" * 64)]],
]
ACCEPTED_ANY_CHAIN = [  # decoded with chain_id=None
    ("chain id of 64", envelope("service.withdraw", withdraw_array(), chain_id="c" * 64)),
    ("empty chain id", envelope("service.withdraw", withdraw_array(), chain_id="")),
]
NON_ASCII = [  # every width of UTF-8, at the limits counted in characters
    ("title of 120 CJK", envelope("service.offer", offer_array(title="字" * 120))),
    ("CJK title", envelope("service.offer", offer_array(title="外币兑换"))),
    ("Latin-1 description", envelope("service.offer", offer_array(description="Café au comptoir, crème"))),
    ("description of 2000 CJK", envelope("service.offer", offer_array(description="柜" * 2000))),
    ("four-byte characters", envelope("service.offer", offer_array(title="\U0001f3e6 bank \U00020000"))),
    ("last code point", envelope("service.offer", offer_array(title="x\U0010fffd"))),
    ("two-byte edge", envelope("service.offer", offer_array(title="\u00a0\u07ff\u0800\uffff"))),
    ("CJK fee label", envelope("service.offer", offer_array(fees=[fee("标准"), fee("加急", 500, "CNY", "per_transaction")]))),
    ("CJK issuer", envelope("service.offer", offer_array(ownership="consigned", issuer="某某基金管理有限公司"))),
    ("CJK reason", envelope("service.withdraw", withdraw_array(reason="柜台装修"))),
    ("reason of 200 CJK", envelope("service.withdraw", withdraw_array(reason="修" * 200))),
]
ACCEPTED += NON_ASCII
DECLINED = [
    ("offer with terms", envelope("service.offer", offer(category="loan", risk_level=3, terms=loan_terms()).to_array())),
]
REFUSED = [
    *[(f"offer {k}={v!r:.20}", envelope("service.offer", offer_array(**{k: v}))) for k, v in [
        ("service_id", ""), ("service_id", "a" * 65), ("service_id", "-a"), ("service_id", ".a"), ("service_id", "A"),
        ("service_id", "a b"), ("service_id", 5), ("service_id", None), ("service_id", b"a"), ("service_id", "é"),
        ("category", "crypto"), ("category", "Cash"), ("category", 1), ("title", ""), ("title", "x" * 121),
        ("title", "bell\x07"), ("title", "del\x7f"), ("title", "cr\r"), ("title", "nul\x00"), ("title", "zero\u200bwidth"),
        ("description", "x" * 2001), ("channels", []), ("channels", ["counter", "counter"]), ("channels", ["online", "counter"]),
        ("channels", ["fax"]), ("channels", "counter"), ("channels", [1]), ("channels", list(CHANNELS) + ["counter"]),
        ("hours", [[7, 0, 1]]), ("hours", [[0, 1, 1]]), ("hours", [[0, 2, 1]]), ("hours", [[0, 0, 1441]]),
        ("hours", [[0, 540, 720], [0, 700, 800]]), ("hours", [[0, 540, 720], [0, 719, 800]]), ("hours", [[1, 0, 1], [0, 0, 1]]), ("hours", hours(22)),
        ("hours", [[0, 0]]), ("hours", [[True, 0, 1]]), ("hours", [[0, -1, 1]]), ("hours", "mon"),
        ("fees", [fee()] * 17), ("fees", [fee("")]), ("fees", [fee("x" * 61)]),
        ("fees", [fee(amount=10**15 + 1, basis="per_month")]), ("fees", [fee(amount=-1, basis="per_month")]),
        ("fees", [fee(currency="cny")]), ("fees", [fee(currency="CN")]), ("fees", [fee(currency="CNYY")]),
        ("fees", [fee(basis="monthly")]), ("fees", [fee(amount=5)]), ("fees", [["a", 0, "CNY"]]), ("fees", [fee("tab\x0b")]),
        ("risk_level", 1), ("risk_level", 6), ("risk_level", -1), ("risk_level", True), ("ownership", "x"),
        ("ownership", "consigned"), ("issuer", "X"), ("accessibility", ["braille", "wheelchair"]), ("accessibility", ["x"]),
        ("accessibility", ["braille", "braille"]), ("effective_from_ms", -1), ("effective_from_ms", 2**53 + 1),
        ("effective_from_ms", True), ("effective_from_ms", None)]],
    *[(f"offer title={v!r:.20}", envelope("service.offer", offer_array(title=v))) for v in [
        "字" * 121, "zero\u200bwidth", "nel\u0085", "bom\ufeff", "bidi\u202e", "soft\u00adhyphen", "tag\U000e0041"]],
    ("description of 2001 CJK", envelope("service.offer", offer_array(description="柜" * 2001))),
    ("reason of 201 CJK", envelope("service.withdraw", withdraw_array(reason="修" * 201))),
    ("CJK service id", envelope("service.offer", offer_array(service_id="外币"))),
    ("offer loan without risk", envelope("service.offer", offer_array(category="loan", risk_level=0))),
    ("offer issuer 121", envelope("service.offer", offer_array(ownership="consigned", issuer="i" * 121))),
    ("offer of 11", envelope("service.offer", offer_array()[:11])),
    ("offer of 14", envelope("service.offer", offer(category="loan", risk_level=3, terms=loan_terms()).to_array() + [0])),
    *[(f"status {k}={v!r:.20}", envelope("service.status", status_array(**{k: v}))) for k, v in [
        ("status", "busy"), ("status", None), ("wait_minutes", 1441), ("wait_minutes", -1), ("wait_minutes", False),
        ("equipment", equipment(33)), ("equipment", [["atm", True], ["atm", False]]), ("equipment", [["ATM", True]]),
        ("equipment", [["atm", 1]]), ("equipment", [["atm"]]), ("equipment", [["a" * 65, True]]), ("equipment", None),
        ("service_id", "Cash!")]],
    ("status of 5", envelope("service.status", status_array() + [0])),
    *[(f"profile {k}={v!r:.24}", envelope("branch.profile", profile_array(**{k: v}))) for k, v in [
        ("name", ""), ("name", "x" * 121), ("name", "bell\x07"), ("name", "支" * 121), ("name", None), ("address", ""),
        ("address", "x" * 201), ("address", "zero\u200bwidth"),
        *[("region", v) for v in ("C", "cn", "CN-", "CN-BJ-1-2-3", "CN-ABCDEFG", "CN--BJ", "CNN", "CN-bj", "", "C1", "-CN",
                                  "CN-BJ-", "CN_BJ", "中国", 5, None)],
        *[("lat_micro", v) for v in (90_000_001, -90_000_001, True, None, 1.5, "0", 2**63, 2**64 - 1, -(2**63))],
        ("lon_micro", 180_000_001), ("lon_micro", -180_000_001), ("hours", [[7, 0, 1]]), ("hours", hours(22)),
        *[("contact_phone", v) for v in ("1234", "+1234", "1" * 25, "+" + "1" * 24, "12 34-", "-1234 5", "++12345", "123a45",
                                         " 12345", "12345 ", "13812345678", "+86 138 1234 5678", "0086 138-1234-5678",
                                         "１２３４５", "010.6512.0000", 5, None)],
        *[("contact_url", v) for v in ("http://a", "https://", "https://a:", "https://a:123456", "https://a:12a", "https://a/b?c",
                                       "https://a b", "https://é.cn", "https://x/" + "p" * 191, "https://a/#x", "HTTPS://a",
                                       "https://a:1:2", "https://a_b", "https://a\\b", "https://a/\x00", "https:/x.cn",
                                       "https:///x", "https://:443", 5)],
        *[("public_numbers", v) for v in ([], ["12345"] * 2, [f"010 6512 000{i}" for i in range(9)], ["1234"],
                                          ["1" * 16], ["13812345678"], ["+86 138 1234 5678"], [5], "12345", [""], [None], 0,
                                          ["12 34"], ["1 2-4"], ["(010) 6512 0000"], ["12345+"], ["+86 10 6512 0000 x"])]]],
    # one letter, then a latitude whose byte is a letter ('Z', a positive fixint): a reader that
    # looked past the region's end would see a two-letter code
    ("profile region C, lat 90", envelope("branch.profile", profile_array(region="C", lat_micro=ord("Z")))),
    ("profile of 7", envelope("branch.profile", profile_array()[:7])),
    ("profile of 10", envelope("branch.profile", profile_array(public_numbers=["12345"]) + [0])),
    *[(f"withdraw {k}={v!r:.20}", envelope("service.withdraw", withdraw_array(**{k: v}))) for k, v in [
        ("reason", "x" * 201), ("reason", "\x01"), ("reason", None), ("service_id", "")]],
    ("withdraw of 3", envelope("service.withdraw", withdraw_array() + [""])),
    ("offer body under the status kind", envelope("service.status", offer_array())),
    ("unknown kind", envelope("service.nope", withdraw_array())),
    ("kind not a string", envelope(3, withdraw_array())),
    *[(f"envelope {k}={v!r:.20}", envelope("service.status", status_array(), **{k: v})) for k, v in [
        ("version", 0), ("version", 2), ("version", True), ("chain_id", "branchnet-other"), ("chain_id", b"branchnet-test"),
        ("branch_id", b"x" * 19), ("branch_id", b"x" * 21), ("branch_id", "x" * 20), ("seq", 0), ("seq", 2**53 + 1),
        ("seq", -1), ("seq", True), ("time_ms", -1), ("time_ms", 2**53 + 1), ("signature", b"s" * 63),
        ("signature", b"s" * 65), ("signature", None)]],
    ("envelope of 7", envelope("service.status", status_array())[:7]),
    ("envelope of 9", envelope("service.status", status_array()) + [0]),
]
REFUSED_ANY_CHAIN = [("chain id of 65", envelope("service.withdraw", withdraw_array(), chain_id="c" * 65))]


def pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def table(rows, chain_id=CHAIN_ID):
    return [pytest.param(pack(arr), chain_id, id=what) for what, arr in rows]


@pytest.mark.parametrize("data, chain_id", table(ACCEPTED) + table(ACCEPTED_ANY_CHAIN, None))
def test_accepted_by_the_c_as_by_the_python(data, chain_id):
    fast = C_DECODE(data, chain_id, None)
    assert fast is not None, "the C declined a record it should decode"
    with_c, without_c = decode_both(data, chain_id)
    assert with_c == without_c == ("ok", typed(fast))


@pytest.mark.parametrize("data, chain_id", table(DECLINED))
def test_declined_by_the_c_accepted_by_the_python(data, chain_id):
    assert C_DECODE(data, chain_id, None) is None
    with_c, without_c = decode_both(data, chain_id)
    assert with_c == without_c and with_c[0] == "ok"


@pytest.mark.parametrize("data, chain_id", table(REFUSED) + table(REFUSED_ANY_CHAIN, None))
def test_refused_by_both(data, chain_id):
    assert C_DECODE(data, chain_id, None) is None
    with_c, without_c = decode_both(data, chain_id)
    assert with_c == without_c and with_c[0] != "ok"


BAD_UTF8 = [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc1\x81", b"\xe0\x81\x81", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\x80", b"\xe5\xad", b"\xe5\x41\x41", b"\xc3"]


@pytest.mark.parametrize("bad", BAD_UTF8, ids=lambda b: b.hex())
@pytest.mark.parametrize("where", ["title", "description", "fee label", "reason"])
def test_invalid_utf8_is_left_to_the_python(bad, where):
    # Overlong forms, surrogates, past U+10FFFF, stray continuation bytes, cut sequences:
    # Python's strict decoder refuses them all, so the C must not decode them. At the end of
    # a description a cut sequence is followed by the channels' array header (0x9N), which
    # a reader that looked past the string would take for a continuation byte.
    hole = "\x01" * len(bad)
    if where == "reason":
        arr = envelope("service.withdraw", withdraw_array(reason="ok " + hole + " end"))
    else:
        arr = envelope("service.offer", offer_array(**{"title": {"title": "ok " + hole},
                                                       "description": {"description": "cut at the end " + hole},
                                                       "fee label": {"fees": [fee("f" + hole)]}}[where]))
    data = pack(arr).replace(hole.encode(), bad)
    assert C_DECODE(data, CHAIN_ID, None) is None
    with_c, without_c = decode_both(data)
    assert with_c == without_c and with_c[0] != "ok"


def test_the_refused_characters_of_ascii_text_are_the_control_characters():
    # The C checks every character of a text against pii.REFUSED_RANGES; the Python checks
    # ASCII text against _CONTROL instead. The same thing only while these agree.
    from protocol import pii
    from protocol.field_types import _CONTROL

    ascii_chars = [chr(c) for c in range(128)]
    assert [c for c in ascii_chars if _CONTROL.match(c)] == [c for c in ascii_chars if pii.REFUSED.match(c)]


def test_what_the_c_builds():
    data = pack(envelope("service.offer", offer_array(fees=[fee(), fee("express", 500, "USD", "per_transaction")])))
    rec = Record.decode(data, chain_id=CHAIN_ID)
    assert C_DECODE(data, CHAIN_ID, None) == rec and rec.raw is data and rec.numbers == ()
    assert rec.hash == records.sha256(data) and rec.body.terms is None
    assert rec.kind is records.ServiceOffer.KIND and rec.body.category is CATEGORIES[0]
    assert rec.body.fees[1].currency is sys.intern("".join(["U", "SD"]))  # interned, as Fee._fast
    assert Record.decode(data, chain_id=CHAIN_ID, digest=b"d" * 32).hash == b"d" * 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.body.title = "x"


def test_personal_data_is_still_screened():
    # The C does not screen: records.py runs the screen on what it decodes.
    for changes in ({"description": "Call 13812345678 for an appointment"}, {"title": "mail li.wei@example.com"}):
        data = pack(envelope("service.offer", offer_array(**changes)))
        assert C_DECODE(data, CHAIN_ID, None) is not None
        with_c, without_c = decode_both(data)
        assert with_c == without_c and with_c[0] != "ok" and with_c[1].startswith("pii")
    data = pack(envelope("service.offer", offer_array(description="Hotline 010 6512 0000 on weekdays")))
    with_c, without_c = decode_both(data)  # a landline: allowed, and noted for the declared-numbers check (§8)
    assert with_c == without_c and with_c[0] == "ok" and dict(with_c[1][1])  # numbers carried in the record
    # A profile: a mobile or an undeclared number in its texts is refused; its own declared
    # numbers may be mentioned (checked at decoding, so none is carried).
    for address, ok in (("Call 13812345678", False), ("Hotline 010 6512 9999", False), ("Hotline 010 6255 0000", True),
                        ("Hotline 95588", True), ("Ask for li.wei@example.com", False)):
        data = pack(envelope("branch.profile", profile_array(address=address, public_numbers=["95588"])))
        assert C_DECODE(data, CHAIN_ID, None) is not None
        with_c, without_c = decode_both(data)
        assert with_c == without_c and (with_c[0] == "ok") == ok, (address, with_c)
        assert not ok or typed(Record.decode(data, chain_id=CHAIN_ID).numbers) == typed(())


def test_other_inputs_left_to_the_python():
    data = pack(envelope("service.withdraw", withdraw_array()))
    for other in (bytearray(data), memoryview(data), b"", data + b"\x00", b"\x00" * 8193):
        assert C_DECODE(other, CHAIN_ID, None) is None
        with_c, without_c = decode_both(other)
        assert with_c == without_c
    assert C_DECODE(data, "\ud800", None) is None  # a chain id without UTF-8: no exception left behind
    with pytest.raises(TypeError):
        SCREENED(data, CHAIN_ID)


# ---------------------------------------------------------------- property tests

INT_FORMS = [(b"\xd0", ">b", -(2**7), 2**7 - 1), (b"\xcc", ">B", 0, 2**8 - 1), (b"\xd1", ">h", -(2**15), 2**15 - 1),
             (b"\xcd", ">H", 0, 2**16 - 1), (b"\xd2", ">i", -(2**31), 2**31 - 1), (b"\xce", ">I", 0, 2**32 - 1),
             (b"\xd3", ">q", -(2**63), 2**63 - 1), (b"\xcf", ">Q", 0, 2**64 - 1)]


def wide_pack(value, widths) -> bytes:
    """msgpack of ``value`` where each header takes the form ``next(widths)`` steps wider
    than the shortest (when there is one): non-canonical encodings of the same value."""
    def pick(forms):
        return forms[min(next(widths, 0), len(forms) - 1)]

    def enc(v) -> bytes:
        if v is None or v is True or v is False or type(v) is float:
            return pack(v)
        if type(v) is int:  # packb's form first, then every other one that holds the value, narrowest first
            canonical = pack(v)
            return pick([canonical] + [tag + struct.pack(fmt, v) for tag, fmt, lo, hi in INT_FORMS
                                       if lo <= v <= hi and tag + struct.pack(fmt, v) != canonical])
        if type(v) is str:
            b = v.encode()
            n = len(b)
            forms = ([bytes([0xa0 | n])] if n < 32 else []) + ([b"\xd9" + bytes([n])] if n < 256 else []) + \
                [b"\xda" + struct.pack(">H", n), b"\xdb" + struct.pack(">I", n)]
            return pick(forms) + b
        if type(v) is bytes:
            n = len(v)
            forms = ([b"\xc4" + bytes([n])] if n < 256 else []) + [b"\xc5" + struct.pack(">H", n), b"\xc6" + struct.pack(">I", n)]
            return pick(forms) + v
        n = len(v)
        forms = ([bytes([0x90 | n])] if n < 16 else []) + [b"\xdc" + struct.pack(">H", n), b"\xdd" + struct.pack(">I", n)]
        return pick(forms) + b"".join(enc(x) for x in v)

    return enc(value)


ROWS = [arr for _, arr in ACCEPTED + DECLINED + REFUSED]
odd = st.sampled_from([None, True, False, 0, 1, -1, 127, 128, 2**53, 2**64 - 1, -(2**63), "", "x" * 65, b"", b"x" * 20,
                       [], ["counter"], [[0, 0, 1]], "open", "CNY", "free", "a@b.cn", "13812345678"])


@st.composite
def mixed_rows(draw):
    """A row of the tables with up to three elements, at any depth, swapped for a value
    of another row at the same place or an odd value."""
    arr = draw(st.sampled_from(ROWS))
    arr = msgpack.unpackb(pack(arr))  # a deep copy
    for _ in range(draw(st.integers(0, 3))):
        path, node = [], arr
        while type(node) is list and node and draw(st.booleans()):
            i = draw(st.integers(0, len(node) - 1))
            path.append(i)
            node = node[i]
        if not path:
            continue
        donor = draw(st.sampled_from(ROWS))
        for i in path:
            donor = donor[i] if type(donor) is list and i < len(donor) else draw(odd)
        parent = arr
        for i in path[:-1]:
            parent = parent[i]
        parent[path[-1]] = msgpack.unpackb(pack(draw(st.one_of(st.just(donor), odd))))  # a copy: ROWS stay as they are
    return arr


@settings(max_examples=1500, deadline=None)
@given(mixed_rows(), st.sampled_from([CHAIN_ID, None]))
def test_same_outcome_on_mixed_records(arr, chain_id):
    with_c, without_c = decode_both(pack(arr), chain_id)
    assert with_c == without_c


@settings(max_examples=800, deadline=None)
@given(st.sampled_from(ROWS), st.lists(st.sampled_from([0, 0, 0, 0, 1, 2, 3]), max_size=60))
def test_same_outcome_on_non_canonical_encodings(arr, widths):
    data = wide_pack(arr, iter(widths))
    with_c, without_c = decode_both(data)
    assert with_c == without_c
    if data != pack(arr):
        assert C_DECODE(data, CHAIN_ID, None) is None and with_c[0] != "ok"


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([pack(arr) for _, arr in ACCEPTED]), st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)),
                                                                      min_size=1, max_size=3),
       st.sampled_from(["replace", "insert", "delete", "cut"]))
def test_same_outcome_on_damaged_bytes(data, edits, how):
    b = bytearray(data)
    for pos, value in edits:
        pos %= len(b) or 1
        if how == "replace":
            b[pos] = value
        elif how == "insert":
            b.insert(pos, value)
        elif how == "delete" and b:
            del b[pos]
        else:
            del b[pos:]
    with_c, without_c = decode_both(bytes(b))
    assert with_c == without_c


@pytest.mark.parametrize("kind, body, extra", [
    ("branch.profile", profile_array(), 1), ("branch.profile", profile_array(), 2),
    ("branch.profile", profile_array(public_numbers=["12345"]), 1), ("service.offer", offer_array(), 1),
    ("service.status", status_array(), 1), ("service.withdraw", withdraw_array(), 1)])
def test_a_body_count_that_takes_in_the_signature_is_left_to_the_python(kind, body, extra):
    # An envelope that says 8 and holds 7, its body counting the signature's bytes as one of
    # its elements (or one more, which is not there): a reader that accepted that count
    # would end exactly at the last byte.
    data = bytearray(pack(envelope(kind, body + [bytes(range(64))])[:7]))
    data[0] = 0x98
    at = data.index(bytes([0x90 + len(body) + 1]) + pack(body[0]))
    data[at] += extra - 1
    assert C_DECODE(bytes(data), CHAIN_ID, None) is None
    with_c, without_c = decode_both(bytes(data))
    assert with_c == without_c and with_c[0] != "ok"


def test_every_wider_form_of_every_value_is_left_to_the_python():
    # Deterministic floor under the property test above: each value of a few records
    # (ints at the edges of each form among them) in turn one, two and three forms wider.
    rows = [envelope("service.offer", offer_array(fees=[fee(amount=127, basis="percent_bp"), fee(amount=128, basis="one_time"),
                                                        fee(amount=65535, basis="per_year"), fee(amount=65536, basis="per_year"),
                                                        fee(amount=2**32 - 1, basis="per_year"), fee(amount=2**32, basis="per_year")],
                                                  title="t" * 31, description="d" * 255, issuer="", hours=hours(16))),
            envelope("service.status", status_array(wait_minutes=255, equipment=equipment(16))),
            envelope("service.withdraw", withdraw_array(reason="r" * 32)),
            envelope("branch.profile", profile_array(lat_micro=-129, lon_micro=-32769, name="n" * 31, address="a" * 200,
                                                     hours=hours(16), public_numbers=["12345"])),
            # each negative form from the edge of the one before, and small positive values
            envelope("branch.profile", profile_array(lat_micro=-32, lon_micro=-128, hours=hours(15))),
            envelope("branch.profile", profile_array(lat_micro=-32768, lon_micro=100)),
            envelope("branch.profile", profile_array(lat_micro=-33, lon_micro=30000))]
    checked = 0
    for arr in rows:
        assert C_DECODE(pack(arr), CHAIN_ID, None) is not None
        k = 0
        while True:
            variants = {wide_pack(arr, iter([0] * k + [step])) for step in (1, 2, 3)} - {pack(arr)}
            if k > 200 or (not variants and wide_pack(arr, iter([0] * k + [9])) == pack(arr) and k > 150):
                break
            for data in variants:
                assert C_DECODE(data, CHAIN_ID, None) is None, (k, data)
                with_c, without_c = decode_both(data)
                assert with_c == without_c and with_c[0] != "ok"
                checked += 1
            k += 1
    assert checked > 300


def test_the_workload_of_the_benchmarks_is_decoded_in_c():
    # What the C exists for: the offers, statuses, withdrawals and profiles of tools.bench_protocol.
    from tools import bench_protocol as bp

    work = bp.Workload([bp._key(f"branch-{i}") for i in range(4)])
    work.setup()
    recs = work.stream(200)
    assert {r.kind for r in recs} == {"service.offer", "service.status", "service.withdraw", "branch.profile"}
    assert all(C_DECODE(r.raw, bp.CHAIN_ID, None) == r for r in recs)


def test_the_plain_flag_is_screening_plain_on_the_personal_data_corpus():
    """Every text of the corpus (personal data in disguise, and legitimate text) in each
    screened field the C reads: its answer is screening.plain's, both ways."""
    from tools.pii_corpus import load

    texts = {t for e in load()["entries"] for t in e["fields"].values() if isinstance(t, str)}
    flags = []
    for t in sorted(texts):
        arrays = [offer_array(description=t[:2000]), status_array(equipment=[[t[:64], True]]), withdraw_array(reason=t[:200])]
        if 1 <= len(t) <= 120:
            arrays.append(offer_array(title=t))
        if 1 <= len(t) <= 60:
            arrays.append(offer_array(fees=[fee(label="standard"), fee(label=t)]))
        for kind, arr in zip(("service.offer", "service.status", "service.withdraw", "service.offer", "service.offer"), arrays):
            flags.append(check_plain_flag(pack(envelope(kind, arr))))
    decided = [f for f in flags if f is not None]
    assert len(decided) > 1000 and set(decided) == {True, False}
    # The fields are joined as screened_text joins them: U+001F between two (no separator,
    # a dot or a space would answer otherwise for these).
    for sid, reason, expected in (("zhang.wei", "138", True), ("zhang.wei", "at", False), ("at", "at", True)):
        assert check_plain_flag(pack(envelope("service.withdraw", withdraw_array(service_id=sid, reason=reason)))) is expected
    assert check_plain_flag(pack(envelope("service.offer", offer_array(title="no 12 12", description="12 example _")))) is True
