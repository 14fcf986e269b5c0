"""Personal-data screening for free-text fields.

Records describe services, never customers (DESIGN.md "no record ever carries
customer personal data"). Every free-text field of every record is scanned for
patterns that look like personal data and the record is rejected if one matches:

* e-mail addresses,
* national identity numbers (18-character PRC resident id: 17 digits + digit/X),
* bank card numbers (13–19 digits, spaces or dashes allowed, passing Luhn),
* phone numbers (a run of 8 or more digits, optionally led by ``+`` and split by
  single spaces, dashes, dots or parentheses; PRC mobiles ``1[3-9]xxxxxxxxx``).

The rules are deliberately conservative: a branch's own public switchboard
number goes in the profile's ``contact_phone`` field, which is format-checked
and not scanned. Text like opening hours ("09:00-17:00"), postal codes and
amounts under eight digits passes.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_NATIONAL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
# digits with optional single separators; captured runs are then classified
_DIGIT_RUN = re.compile(r"\+?\(?[0-9](?:[0-9]|[ \-.()](?=[0-9(]))*[0-9]")
# Prefilter (speed only): every digit run worth classifying (8+ digits) lies inside a
# match of _SPAN — 8+ characters of the run alphabet, from a possible run start to
# the last digit — and a national id needs a span of 17+. Text without such a span
# cannot match; inside one, _DIGIT_RUN finds exactly what a whole-text scan finds.
_SPAN = re.compile(r"[0-9+(][0-9+(). \-]{6,}[0-9]")
_NON_DIGIT = re.compile(r"[^0-9]")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def find_personal_data(text: str) -> str | None:
    """Return the kind of personal data found in ``text`` (a metrics-safe slug), or None."""
    if "@" in text and _EMAIL.search(text):
        return "email"
    if _SPAN.search(text) is None:
        return None
    spans = [m.span() for m in _SPAN.finditer(text)]
    if any(end - start >= 17 for start, end in spans) and _NATIONAL_ID.search(text):
        return "national_id"
    for start, end in spans:
        for match in _DIGIT_RUN.finditer(text, start, end):
            digits = _NON_DIGIT.sub("", match.group())
            if 13 <= len(digits) <= 19 and _luhn_ok(digits):
                return "card_number"
            if len(digits) >= 8:
                return "phone_number"
    return None
