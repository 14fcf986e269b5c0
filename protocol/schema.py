"""Record bodies: what a branch publishes (docs/PROTOCOL.md §Records).

Each body is a frozen dataclass with ``to_array()`` / ``from_array()``; arrays
are fixed-order, money is integer minor units plus an ISO 4217 code, geo is
integer micro-degrees, times are integer milliseconds or minutes of the day.
``from_array`` raises DecodeError (wrong shape/type) or ValidationError (a
rule is broken), each naming the field. Personal data is screened per body, all
text and identifier fields together (``screened_fields()``, :func:`screen_body`,
§5.3): records.py and views.py call it after ``from_array``; stored bodies read
back from the database are not screened again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import pii
from .encoding import expect_array, expect_bool, expect_int, expect_list, expect_str
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


class _Body:
    """What every record body shares: ``from_array`` = parse (``_parse``) + screen."""

    __slots__ = ()

    @classmethod
    def from_array(cls, value: Any, field: str = "body", *, screen: bool = True) -> Any:
        """Parse and check a body array (§5.5-5.8) and, unless ``screen`` is False, screen
        it for personal data (§5.3; phone-like numbers, which need the ledger state,
        are not checked here). Raises DecodeError or ValidationError naming the field."""
        body = cls._parse(value, field)
        if screen:
            screen_body(body, field)
        return body


def screen_body(body: "Body", where: str) -> tuple[tuple[str, str], ...]:
    """Screen ``body`` for personal data (§5.3). Raises ValidationError naming the field.

    Returns the phone-like numbers its fields mention, ``(field, digits)``, that the
    branch's declared public numbers must cover (§8). A profile declares its own, so
    for a profile they are checked here and nothing is returned.
    """
    numbers = pii.screen(body.screened_fields(), where, url_fields=_URL_FIELDS)
    if numbers and isinstance(body, BranchProfile):
        pii.check_declared(numbers, body.declared_numbers())
        return ()
    return numbers


_URL_FIELDS = frozenset({"contact_url"})


def pattern(value: Any, field: str, regex: re.Pattern, *, max_len: int, what: str) -> str:
    if type(value) is not str or len(value) > max_len:
        value = expect_str(value, field, max_len=max_len)  # raises the precise error
    if not regex.fullmatch(value):
        raise ValidationError(f"not a valid {what}", field=field, reason="format")
    return value


def enum(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if type(value) is str and value in allowed:  # fast path; allowed values are at most 32 long
        return value
    value = expect_str(value, field, max_len=32)
    if value not in allowed:
        raise ValidationError(f"{value!r} is not one of {', '.join(allowed)}", field=field, reason="enum")
    return value


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
    return items


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


def weekly_hours(value: Any, field: str) -> tuple[OpeningHours, ...]:
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
        # Fast path (speed only): a fee that passes every check below, without building
        # field names; anything else takes the checked path for its precise error.
        if type(value) is list and len(value) == 4:
            label, amount, currency, basis = value
            if (
                type(amount) is int and 0 <= amount <= 10**15
                and type(basis) is str and basis in FEE_BASES and (basis != "free" or amount == 0)
                and type(currency) is str and len(currency) <= 3 and _CURRENCY.fullmatch(currency)
                and _clean_text(label, 1, 60)
            ):
                return cls(label, amount, currency, basis)
        return cls._from_array_checked(value, field)

    @classmethod
    def _from_array_checked(cls, value: Any, field: str) -> "Fee":
        label, amount, currency, basis = expect_array(value, 4, field)
        fee = cls(
            text(label, f"{field}.label", min_len=1, max_len=60),
            expect_int(amount, f"{field}.amount_minor", hi=10**15),
            pattern(currency, f"{field}.currency", _CURRENCY, max_len=3, what="ISO 4217 currency code"),
            enum(basis, f"{field}.basis", FEE_BASES),
        )
        if fee.basis == "free" and fee.amount_minor != 0:
            raise ValidationError("a free fee must have amount 0", field=f"{field}.amount_minor", reason="fee")
        return fee


@dataclass(frozen=True, slots=True)
class BranchProfile(_Body):
    KIND = "branch.profile"
    name: str
    address: str
    region: str
    lat_micro: int
    lon_micro: int
    hours: tuple[OpeningHours, ...]
    contact_phone: str
    contact_url: str
    public_numbers: tuple[str, ...] = ()  # the branch's published numbers (hotlines): texts may mention them

    def subject(self) -> str:
        return "profile"

    def to_array(self) -> list:
        arr = [self.name, self.address, self.region, self.lat_micro, self.lon_micro,
               [h.to_array() for h in self.hours], self.contact_phone, self.contact_url]
        if self.public_numbers:  # optional trailing element: present only when non-empty (one encoding)
            arr.append(list(self.public_numbers))
        return arr

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("name", self.name), ("address", self.address), ("region", self.region), ("contact_url", self.contact_url)]

    def declared_numbers(self) -> tuple[str, ...]:
        """The digits of the numbers this branch declares public: contact_phone and public_numbers."""
        numbers = (self.contact_phone,) + self.public_numbers if self.contact_phone else self.public_numbers
        return tuple(pii.number_key(n) for n in numbers)

    @classmethod
    def _parse(cls, value: Any, field: str) -> "BranchProfile":
        if type(value) is list and len(value) == 9:
            *value, numbers = value
            items = expect_list(numbers, f"{field}.public_numbers", max_len=MAX_PUBLIC_NUMBERS)
            if not items:
                raise ValidationError("omit the element when there are no public numbers", field=f"{field}.public_numbers",
                                      reason="non_canonical")
            numbers = tuple(public_number(n, f"{field}.public_numbers[{i}]") for i, n in enumerate(items))
            if len(set(numbers)) != len(numbers):
                raise ValidationError("duplicate number", field=f"{field}.public_numbers", reason="duplicate")
        else:
            numbers = ()
        name, address, region, lat, lon, hours, phone, url = expect_array(value, 8, field)
        phone = expect_str(phone, f"{field}.contact_phone", max_len=24)
        if phone and not _PHONE.fullmatch(phone):
            raise ValidationError("not a phone number", field=f"{field}.contact_phone", reason="format")
        if phone and pii.is_mobile(phone):
            raise ValidationError("a mobile number cannot be declared public", field=f"{field}.contact_phone",
                                  reason="pii_phone_number")
        url = expect_str(url, f"{field}.contact_url", max_len=200)
        if url and not _URL.fullmatch(url):
            raise ValidationError("must be an https:// URL", field=f"{field}.contact_url", reason="format")
        return cls(
            text(name, f"{field}.name", min_len=1, max_len=120),
            text(address, f"{field}.address", min_len=1, max_len=200),
            pattern(region, f"{field}.region", _REGION, max_len=32, what="region code (e.g. CN-BJ-110105)"),
            expect_int(lat, f"{field}.lat_micro", lo=-90_000_000, hi=90_000_000),
            expect_int(lon, f"{field}.lon_micro", lo=-180_000_000, hi=180_000_000),
            weekly_hours(hours, f"{field}.hours"),
            phone,
            url,
            numbers,
        )


@dataclass(frozen=True, slots=True)
class ServiceOffer(_Body):
    KIND = "service.offer"
    service_id: str
    category: str
    title: str
    description: str
    channels: tuple[str, ...]
    hours: tuple[OpeningHours, ...]  # empty: the branch's hours
    fees: tuple[Fee, ...]
    risk_level: int  # 1..5 (R1..R5) for loan/wealth/agency, else 0
    ownership: str  # own | consigned
    issuer: str  # who issues a consigned product; empty when own
    accessibility: tuple[str, ...]
    effective_from_ms: int

    def subject(self) -> str:
        return f"service/{self.service_id}"

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("service_id", self.service_id), ("title", self.title), ("description", self.description),
                *((f"fees[{i}].label", f.label) for i, f in enumerate(self.fees)), ("issuer", self.issuer)]

    def to_array(self) -> list:
        return [self.service_id, self.category, self.title, self.description, list(self.channels),
                [h.to_array() for h in self.hours], [f.to_array() for f in self.fees], self.risk_level,
                self.ownership, self.issuer, list(self.accessibility), self.effective_from_ms]

    @classmethod
    def _parse(cls, value: Any, field: str) -> "ServiceOffer":
        (sid, category, title, desc, channels, hours, fees, risk, ownership, issuer, access, effective) = expect_array(value, 12, field)
        offer = cls(
            service_id(sid, f"{field}.service_id"),
            enum(category, f"{field}.category", CATEGORIES),
            text(title, f"{field}.title", min_len=1, max_len=120),
            text(desc, f"{field}.description", max_len=2000),
            enum_set(channels, f"{field}.channels", CHANNELS, min_len=1),
            weekly_hours(hours, f"{field}.hours"),
            tuple(Fee.from_array(f, f"{field}.fees[{i}]") for i, f in enumerate(expect_list(fees, f"{field}.fees", max_len=16))),
            expect_int(risk, f"{field}.risk_level", hi=5),
            enum(ownership, f"{field}.ownership", OWNERSHIP),
            text(issuer, f"{field}.issuer", max_len=120),
            enum_set(access, f"{field}.accessibility", ACCESSIBILITY),
            expect_int(effective, f"{field}.effective_from_ms", hi=MAX_TIME_MS),
        )
        if offer.category in RISK_RATED_CATEGORIES and offer.risk_level == 0:
            raise ValidationError(f"{offer.category} products need a risk level R1-R5", field=f"{field}.risk_level", reason="risk_required")
        if offer.category not in RISK_RATED_CATEGORIES and offer.risk_level != 0:
            raise ValidationError(f"{offer.category} services carry no risk level (use 0)", field=f"{field}.risk_level", reason="risk_not_applicable")
        if (offer.ownership == "consigned") != bool(offer.issuer):
            raise ValidationError("issuer is required for consigned products and only for them", field=f"{field}.issuer", reason="issuer")
        return offer


@dataclass(frozen=True, slots=True)
class ServiceWithdraw(_Body):
    KIND = "service.withdraw"
    service_id: str
    reason: str

    def subject(self) -> str:
        return f"service/{self.service_id}"

    def to_array(self) -> list:
        return [self.service_id, self.reason]

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("service_id", self.service_id), ("reason", self.reason)]

    @classmethod
    def _parse(cls, value: Any, field: str) -> "ServiceWithdraw":
        sid, reason = expect_array(value, 2, field)
        return cls(service_id(sid, f"{field}.service_id"), text(reason, f"{field}.reason", max_len=200))


@dataclass(frozen=True, slots=True)
class EquipmentStatus:
    equipment_id: str
    up: bool

    def to_array(self) -> list:
        return [self.equipment_id, self.up]


@dataclass(frozen=True, slots=True)
class ServiceStatus(_Body):
    KIND = "service.status"
    service_id: str
    status: str
    wait_minutes: int
    equipment: tuple[EquipmentStatus, ...]

    def subject(self) -> str:
        return f"status/{self.service_id}"

    def to_array(self) -> list:
        return [self.service_id, self.status, self.wait_minutes, [e.to_array() for e in self.equipment]]

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("service_id", self.service_id), *((f"equipment[{i}].id", e.equipment_id) for i, e in enumerate(self.equipment))]

    @classmethod
    def _parse(cls, value: Any, field: str) -> "ServiceStatus":
        # Fast path (speed only): a status that passes every check of the checked path,
        # without building field names; anything else takes it for its precise error.
        if type(value) is list and len(value) == 4:
            sid, status, wait, equipment = value
            if (
                type(sid) is str and len(sid) <= 64 and _SERVICE_ID.fullmatch(sid)
                and type(status) is str and status in STATUSES
                and type(wait) is int and 0 <= wait <= 1440
                and type(equipment) is list and len(equipment) <= 32
            ):
                items = []
                for e in equipment:
                    if not (type(e) is list and len(e) == 2 and type(e[0]) is str and len(e[0]) <= 64
                            and _SERVICE_ID.fullmatch(e[0]) and type(e[1]) is bool):
                        break
                    items.append(EquipmentStatus(e[0], e[1]))
                else:
                    if len({e.equipment_id for e in items}) == len(items):
                        return cls(sid, status, wait, tuple(items))
        return cls._from_array_checked(value, field)

    @classmethod
    def _from_array_checked(cls, value: Any, field: str) -> "ServiceStatus":
        sid, status, wait, equipment = expect_array(value, 4, field)
        items = []
        for i, e in enumerate(expect_list(equipment, f"{field}.equipment", max_len=32)):
            eid, up = expect_array(e, 2, f"{field}.equipment[{i}]")
            items.append(EquipmentStatus(service_id(eid, f"{field}.equipment[{i}].id"), expect_bool(up, f"{field}.equipment[{i}].up")))
        if len({e.equipment_id for e in items}) != len(items):
            raise ValidationError("duplicate equipment id", field=f"{field}.equipment", reason="duplicate")
        return cls(
            service_id(sid, f"{field}.service_id"),
            enum(status, f"{field}.status", STATUSES),
            expect_int(wait, f"{field}.wait_minutes", hi=1440),
            tuple(items),
        )


BODY_TYPES = {t.KIND: t for t in (BranchProfile, ServiceOffer, ServiceWithdraw, ServiceStatus)}
Body = BranchProfile | ServiceOffer | ServiceWithdraw | ServiceStatus
