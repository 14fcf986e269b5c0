"""Common field types of record bodies (docs/PROTOCOL.md §5.2): text, identifiers,
enumerations, opening hours and fees.

Each parser takes the raw decoded value and the field's name and returns the
checked value, or raises DecodeError (wrong shape or type) or ValidationError (a
rule is broken) naming the field. Values of a closed vocabulary (enumerations,
currency codes) are returned interned: a state of 65,000 subjects holds one string
object per value, not one per use (about 13 MB at a million records). Functions
named ``_..._fast`` are speed only:
they accept exactly what the checked parser accepts and return None for anything
else, without building field names; tests/test_records.py checks that they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from sys import intern
from typing import Any

from . import pii
from .encoding import expect_array, expect_int, expect_list, expect_str
from .errors import ValidationError

CATEGORIES = (
    "cash", "deposit", "transfer", "account", "loan", "wealth", "fx", "agency", "self_service", "advisory",
)
RISK_RATED_CATEGORIES = frozenset({"loan", "wealth", "agency"})
CHANNELS = ("counter", "low_counter", "self_service", "online", "mobile", "phone", "appointment")
FEE_BASES = ("free", "per_transaction", "per_month", "per_year", "one_time", "percent_bp")
OWNERSHIP = ("own", "consigned")
ACCESSIBILITY = ("wheelchair", "hearing_loop", "braille", "sign_language", "priority_counter", "large_print", "guide_dog")
STATUSES = ("open", "paused", "closed")

_CHANNEL_POSITIONS = {c: i for i, c in enumerate(CHANNELS)}
_ACCESSIBILITY_POSITIONS = {a: i for i, a in enumerate(ACCESSIBILITY)}
MAX_TIME_MS = 2**53
_SERVICE_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
_REGION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,6}){0,3}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{3,22}[0-9]")
_URL = re.compile(r"https://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/\-]*)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_PUBLIC_NUMBERS = 8

def text(value: Any, field: str, *, max_len: int, min_len: int = 0) -> str:
    """A free-text field (§5.2): length-limited, no control, format or invisible characters.

    Raises DecodeError/ValidationError naming ``field``. Personal data is screened per
    body, all fields together (:func:`screen_body`, §5.3), not here.
    """
    if type(value) is not str or not min_len <= len(value) <= max_len:
        value = expect_str(value, field, max_len=max_len, min_len=min_len)  # raises the precise error
    bad = _CONTROL.search(value) if value.isascii() else pii.REFUSED.search(value)
    if bad:
        if _CONTROL.match(bad.group()) or "\x80" <= bad.group() <= "\x9f":
            raise ValidationError("control characters are not allowed", field=field, reason="control_char")
        raise ValidationError(f"invisible or format character U+{ord(bad.group()):04X} is not allowed", field=field,
                              reason="invisible_char")
    return value


def _clean_text(value: Any, min_len: int, max_len: int) -> bool:
    """True when ``text(value, ...)`` would accept ``value`` (no field names built)."""
    return (
        type(value) is str and min_len <= len(value) <= max_len
        and (_CONTROL.search(value) if value.isascii() else pii.REFUSED.search(value)) is None
    )


def public_number(value: Any, field: str) -> str:
    """A number the branch declares public (§5.5): phone syntax, 5-15 digits, not a mobile."""
    number = pattern(value, field, _PHONE, max_len=24, what="phone number")
    if not 5 <= len(pii.number_key(number)) <= 15:
        raise ValidationError("a phone number has 5 to 15 digits", field=field, reason="format")
    if pii.is_mobile(number):
        raise ValidationError("a mobile number cannot be declared public", field=field, reason="pii_phone_number")
    return number


def pattern(value: Any, field: str, regex: re.Pattern, *, max_len: int, what: str) -> str:
    if type(value) is not str or len(value) > max_len:
        value = expect_str(value, field, max_len=max_len)  # raises the precise error
    if not regex.fullmatch(value):
        raise ValidationError(f"not a valid {what}", field=field, reason="format")
    return value


def enum(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if type(value) is str and value in allowed:  # fast path; allowed values are at most 32 long
        return intern(value)
    value = expect_str(value, field, max_len=32)
    if value not in allowed:
        raise ValidationError(f"{value!r} is not one of {', '.join(allowed)}", field=field, reason="enum")
    return intern(value)


def enum_set(value: Any, field: str, allowed: tuple[str, ...], *, min_len: int = 0) -> tuple[str, ...]:
    items = tuple(expect_list(value, field, max_len=len(allowed)))
    for i, v in enumerate(items):
        if type(v) is not str or v not in allowed:
            enum(v, f"{field}[{i}]", allowed)  # raises the precise error
    if len(items) < min_len:
        raise ValidationError(f"at least {min_len} required", field=field, reason="empty")
    prev = -1
    for v in items:  # strictly increasing positions in ``allowed``: unique and in canonical order
        pos = allowed.index(v)
        if pos <= prev:
            raise ValidationError("must be unique and in canonical order", field=field, reason="order")
        prev = pos
    return tuple(map(intern, items))


def _enum_set_fast(value: Any, positions: dict[str, int], min_len: int) -> tuple[str, ...] | None:
    """Speed only: the set when ``value`` passes every check of :func:`enum_set`, else None."""
    if type(value) is not list or not min_len <= len(value) <= len(positions):
        return None
    prev = -1
    for v in value:
        pos = positions.get(v) if type(v) is str else None
        if pos is None or pos <= prev:
            return None
        prev = pos
    return tuple(map(intern, value))


def service_id(value: Any, field: str) -> str:
    return pattern(value, field, _SERVICE_ID, max_len=64, what="service id ([a-z0-9][a-z0-9._-]{0,63})")


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """One opening interval: day 0 (Monday) .. 6, minutes from midnight, open < close."""

    day: int
    open_minute: int
    close_minute: int

    def to_array(self) -> list:
        return [self.day, self.open_minute, self.close_minute]

    @classmethod
    def from_array(cls, value: Any, field: str) -> "OpeningHours":
        d, o, c = expect_array(value, 3, field)
        h = cls(expect_int(d, f"{field}.day", hi=6), expect_int(o, f"{field}.open", hi=1440), expect_int(c, f"{field}.close", hi=1440))
        if h.open_minute >= h.close_minute:
            raise ValidationError("opening must be before closing", field=field, reason="hours")
        return h


def _weekly_hours_fast(value: Any) -> tuple[OpeningHours, ...] | None:
    """Speed only: the hours when ``value`` is well-formed weekly hours, else None."""
    if type(value) is not list or len(value) > 21:
        return None
    parsed = []
    last_day, last_close = -1, 0
    for v in value:
        if not (type(v) is list and len(v) == 3):
            return None
        d, o, c = v
        if not (type(d) is int and type(o) is int and type(c) is int and 0 <= d <= 6 and 0 <= o < c <= 1440):
            return None
        if d < last_day or (d == last_day and o < last_close):
            return None
        last_day, last_close = d, c
        parsed.append(OpeningHours(d, o, c))
    return tuple(parsed)


def weekly_hours(value: Any, field: str) -> tuple[OpeningHours, ...]:
    fast = _weekly_hours_fast(value)
    if fast is not None:
        return fast
    parsed = []
    for i, v in enumerate(expect_list(value, field, max_len=21)):
        # Fast path (speed only): a well-formed interval passes exactly the checks of
        # OpeningHours.from_array; anything else goes through it for its precise error.
        if type(v) is list and len(v) == 3:
            d, o, c = v
            if type(d) is int and type(o) is int and type(c) is int and 0 <= d <= 6 and 0 <= o < c <= 1440:
                parsed.append(OpeningHours(d, o, c))
                continue
        parsed.append(OpeningHours.from_array(v, f"{field}[{i}]"))
    hours = tuple(parsed)
    for i in range(1, len(hours)):
        a, b = hours[i - 1], hours[i]
        if b.day < a.day or (b.day == a.day and b.open_minute < a.close_minute):
            raise ValidationError("intervals must be sorted and not overlap", field=field, reason="hours")
    return hours


@dataclass(frozen=True, slots=True)
class Fee:
    label: str
    amount_minor: int  # minor units of ``currency``; basis points when basis is percent_bp
    currency: str
    basis: str

    def to_array(self) -> list:
        return [self.label, self.amount_minor, self.currency, self.basis]

    @classmethod
    def from_array(cls, value: Any, field: str) -> "Fee":
        fee = cls._fast(value)
        return fee if fee is not None else cls._from_array_checked(value, field)

    @classmethod
    def _fast(cls, value: Any) -> "Fee | None":
        """Speed only: the fee when ``value`` passes every check of the checked path,
        without building field names; else None (the checked path has the error)."""
        if type(value) is list and len(value) == 4:
            label, amount, currency, basis = value
            if (
                type(amount) is int and 0 <= amount <= 10**15
                and type(basis) is str and basis in FEE_BASES and (basis != "free" or amount == 0)
                and type(currency) is str and len(currency) <= 3 and _CURRENCY.fullmatch(currency)
                and _clean_text(label, 1, 60)
            ):
                return cls(label, amount, intern(currency), intern(basis))
        return None

    @classmethod
    def _from_array_checked(cls, value: Any, field: str) -> "Fee":
        label, amount, currency, basis = expect_array(value, 4, field)
        fee = cls(
            text(label, f"{field}.label", min_len=1, max_len=60),
            expect_int(amount, f"{field}.amount_minor", hi=10**15),
            intern(pattern(currency, f"{field}.currency", _CURRENCY, max_len=3, what="ISO 4217 currency code")),
            enum(basis, f"{field}.basis", FEE_BASES),
        )
        if fee.basis == "free" and fee.amount_minor != 0:
            raise ValidationError("a free fee must have amount 0", field=f"{field}.amount_minor", reason="fee")
        return fee
