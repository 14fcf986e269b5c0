"""protocol/pii.py: personal-data screening of free text."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from protocol.pii import find_personal_data

PERSONAL = [
    ("write to zhang.wei@example.com", "email"),
    ("a+b@mail.bank.cn", "email"),
    ("id 110101199003071234 on file", "national_id"),
    ("id 11010119900307123X", "national_id"),
    ("id 11010119900307123x.", "national_id"),
    ("card 4111 1111 1111 1111", "card_number"),
    ("card 4111-1111-1111-1111", "card_number"),
    ("6222021234567890128", "card_number"),          # 19 digits, Luhn-valid
    ("4111111111111111", "card_number"),
    ("call 13812345678", "phone_number"),
    ("call +86 139 1234 5678", "phone_number"),
    ("tel (010) 6512-3456", "phone_number"),
    ("tel 010.6512.3456", "phone_number"),
    ("4111111111111112", "phone_number"),             # 16 digits, not Luhn: still a long number
    ("12345678", "phone_number"),
    ("1 (2 (3 (4 (5 (6 (7 (8", "phone_number"),      # missed by the old prefilter
    ("12((34((56((78", "phone_number"),
]

CLEAN = [
    "",
    "Opening hours 09:00-17:00, Saturday 10:00-15:00",
    "Postal code 100080",
    "No. 1 Zhongguancun Street, Haidian District, Beijing 100080",
    "Building 3, Room 1205, 88 Jianguo Road",
    "Fee CNY 1,234,567.89 per year",
    "Amount up to 9999999",                           # seven digits
    "Wait 15 min; 2 counters; R3 risk",
    "Email us via the app",                           # no address
    "@bank on social media",
    "Version 1.2.3.4",
    "中文描述：营业时间 9:00-17:00",
]


@pytest.mark.parametrize("text, kind", PERSONAL, ids=[k + ":" + t[:20] for t, k in PERSONAL])
def test_detects_personal_data(text, kind):
    assert find_personal_data(text) == kind


@pytest.mark.parametrize("text", CLEAN, ids=[t[:30] or "empty" for t in CLEAN])
def test_passes_service_text(text):
    assert find_personal_data(text) is None


# ---- the prefilter is speed only: compare with the rules as written, scanned naively

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_NATIONAL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_DIGIT_RUN = re.compile(r"\+?\(?[0-9](?:[0-9]|[ \-.()](?=[0-9(]))*[0-9]")


def _luhn(d: str) -> bool:
    s = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch) * (2 if i % 2 else 1)
        s += x - 9 if x > 9 else x
    return s % 10 == 0


def reference(text: str):
    if _EMAIL.search(text):
        return "email"
    if _NATIONAL_ID.search(text):
        return "national_id"
    for m in _DIGIT_RUN.finditer(text):
        digits = re.sub("[^0-9]", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return "card_number"
        if len(digits) >= 8:
            return "phone_number"
    return None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789 -.()+Xx@a.:,", max_size=40))
def test_matches_reference_scan(text):
    assert find_personal_data(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -.()+Xx@a.:,\x07\t\n中", max_size=40))
def test_schema_text_screens_exactly_the_rules(value):
    """schema.text (with its no-digit/no-@ fast path) rejects exactly control chars and PII."""
    from protocol.errors import ValidationError
    from protocol.schema import _CONTROL, text

    expected = "control_char" if _CONTROL.search(value) else (f"pii_{reference(value)}" if reference(value) else None)
    try:
        text(value, "f", max_len=100)
        got = None
    except ValidationError as exc:
        got = exc.reason
    assert got == expected
