"""Record bodies: what a branch publishes (docs/PROTOCOL.md §Records).

Each body is a frozen dataclass with ``to_array()`` / ``from_array()``; arrays
are fixed-order, money is integer minor units plus an ISO 4217 code, geo is
integer micro-degrees, times are integer milliseconds or minutes of the day.
``from_array`` raises DecodeError (wrong shape/type) or ValidationError (a
rule is broken), each naming the field. Personal data is screened per body, all
text and identifier fields together (``screened_fields()``, screening.py's
:func:`screen_body`, §5.3): records.py and views.py call it after ``from_array``; stored bodies read
back from the database are not screened again. The field types themselves
(text, identifiers, enumerations, hours, fees) are in field_types.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from sys import intern
from typing import Any

from . import pii
from .encoding import expect_array, expect_bool, expect_int, expect_list, expect_str
from .errors import ValidationError
from .governance import GOV_BODY_TYPES
from .quality import BranchQuality
from .screening import ScreenedBody, plain, screen_body  # noqa: F401  (plain, screen_body re-exported: records.py takes them from here)
from .terms import OfferTerms, currency
from .field_types import (  # noqa: F401  (re-exported: the schema's vocabulary)
    ACCESSIBILITY, CATEGORIES, CHANNELS, FEE_BASES, MAX_PUBLIC_NUMBERS, MAX_TIME_MS, OWNERSHIP, RISK_RATED_CATEGORIES,
    STATUSES, Fee, OpeningHours, _ACCESSIBILITY_POSITIONS, _CHANNEL_POSITIONS, _PHONE, _REGION, _SERVICE_ID,
    _URL, _clean_text, _enum_set_fast, _weekly_hours_fast, enum, enum_set, pattern, public_number, service_id, text,
    weekly_hours,
)


def _mobile(phone: str) -> bool:
    """pii.is_mobile for a string that already has the phone syntax (digits, spaces, dashes, +)."""
    return pii.is_mobile_digits(phone.replace(" ", "").replace("-", "").lstrip("+"))


_FEE_LABELS = tuple(f"fees[{i}].label" for i in range(16))  # the field names, built once
_EQUIPMENT_IDS = tuple(f"equipment[{i}].id" for i in range(32))


@lru_cache(maxsize=1024)
def _declared_numbers(contact_phone: str, public_numbers: tuple[str, ...]) -> tuple[str, ...]:
    """BranchProfile.declared_numbers, remembered: every record a branch publishes with a
    phone-like number, and every one admission screens, asks its profile's."""
    numbers = (contact_phone,) + public_numbers if contact_phone else public_numbers
    return tuple(pii.number_key(n) for n in numbers)


@dataclass(frozen=True, slots=True)
class BranchProfile(ScreenedBody):
    """A branch's public profile: name, address, region, location, opening hours and contacts."""

    KIND = "branch.profile"
    URL_FIELDS = frozenset({"contact_url"})  # screened as URLs (§5.3.7)
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

    def screened_text(self) -> str:
        """The screened fields joined by U+001F, the URL decoded (§5.3.1, §5.3.7)."""
        return "\x1f".join((self.name, self.address, self.region, pii.unescape_url(self.contact_url)))

    def declared_numbers(self) -> tuple[str, ...]:
        """The digits of the numbers this branch declares public: contact_phone and public_numbers."""
        return _declared_numbers(self.contact_phone, self.public_numbers)

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
        if phone and _mobile(phone):
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
class ServiceOffer(ScreenedBody):
    """A service the branch offers (a later offer with the same id replaces it): category, channels, hours, fees, terms."""

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
    terms: OfferTerms | None = None  # optional 13th element (§5.6.1): absent in offers without terms

    def subject(self) -> str:
        return f"service/{self.service_id}"

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("service_id", self.service_id), ("title", self.title), ("description", self.description),
                *zip(_FEE_LABELS, [f.label for f in self.fees]), ("issuer", self.issuer)]

    def screened_text(self) -> str:
        return "\x1f".join((self.service_id, self.title, self.description, *[f.label for f in self.fees], self.issuer))

    def to_array(self) -> list:
        arr = [self.service_id, self.category, self.title, self.description, list(self.channels),
               [h.to_array() for h in self.hours], [f.to_array() for f in self.fees], self.risk_level,
               self.ownership, self.issuer, list(self.accessibility), self.effective_from_ms]
        if self.terms is not None:  # optional trailing element: offers without terms keep their 12-element bytes
            arr.append(self.terms.to_array())
        return arr

    @classmethod
    def _parse(cls, value: Any, field: str) -> "ServiceOffer":
        # Fast path (speed only): an offer whose every element passes the checks of the
        # checked path, without building field names; anything else takes the checked
        # path for its precise error. The offer rules below apply to both.
        offer = None
        raw_terms = None
        with_terms = type(value) is list and len(value) == 13  # an offer with terms (§5.6.1): an array, never nil
        if with_terms:
            *value, raw_terms = value
        if type(value) is list and len(value) == 12:
            (sid, category, title, desc, channels, hours, fees, risk, ownership, issuer, access, effective) = value
            if (
                type(sid) is str and len(sid) <= 64 and _SERVICE_ID.fullmatch(sid)
                and type(category) is str and category in CATEGORIES
                and _clean_text(title, 1, 120) and _clean_text(desc, 0, 2000)
                and type(risk) is int and 0 <= risk <= 5
                and type(ownership) is str and ownership in OWNERSHIP
                and _clean_text(issuer, 0, 120)
                and type(effective) is int and 0 <= effective <= MAX_TIME_MS
                and type(fees) is list and len(fees) <= 16
            ):
                channel_set = _enum_set_fast(channels, _CHANNEL_POSITIONS, 1)
                access_set = _enum_set_fast(access, _ACCESSIBILITY_POSITIONS, 0)
                hour_list = _weekly_hours_fast(hours) if channel_set is not None and access_set is not None else None
                fee_list = [Fee._fast(f) for f in fees] if hour_list is not None else [None]
                if None not in fee_list:
                    offer = cls(sid, intern(category), title, desc, channel_set, hour_list, tuple(fee_list), risk, intern(ownership), issuer,
                                access_set, effective)
        if offer is None:
            offer = cls._from_array_checked(value, field)
        if with_terms:
            terms = OfferTerms.from_array(raw_terms, f"{field}.terms", category=offer.category,
                                          effective_from_ms=offer.effective_from_ms)
            offer = dataclasses.replace(offer, terms=terms)
        return offer._check_rules(field)

    @classmethod
    def _from_array_checked(cls, value: Any, field: str) -> "ServiceOffer":
        (sid, category, title, desc, channels, hours, fees, risk, ownership, issuer, access, effective) = expect_array(value, 12, field)
        return cls(
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

    def _check_rules(self, field: str) -> "ServiceOffer":
        if self.category in RISK_RATED_CATEGORIES and self.risk_level == 0:
            raise ValidationError(f"{self.category} products need a risk level R1-R5", field=f"{field}.risk_level", reason="risk_required")
        if self.category not in RISK_RATED_CATEGORIES and self.risk_level != 0:
            raise ValidationError(f"{self.category} services carry no risk level (use 0)", field=f"{field}.risk_level", reason="risk_not_applicable")
        if (self.ownership == "consigned") != bool(self.issuer):
            raise ValidationError("issuer is required for consigned products and only for them", field=f"{field}.issuer", reason="issuer")
        if self.terms is not None:  # an offer with terms names real currencies only, its fees' included (§5.9)
            for i, fee in enumerate(self.fees):
                currency(fee.currency, f"{field}.fees[{i}].currency")
        return self


@dataclass(frozen=True, slots=True)
class ServiceWithdraw(ScreenedBody):
    """The branch stops offering a service, with a reason."""

    KIND = "service.withdraw"
    service_id: str
    reason: str

    def subject(self) -> str:
        return f"service/{self.service_id}"

    def to_array(self) -> list:
        return [self.service_id, self.reason]

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("service_id", self.service_id), ("reason", self.reason)]

    def screened_text(self) -> str:
        return f"{self.service_id}\x1f{self.reason}"

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
class ServiceStatus(ScreenedBody):
    """A service's state now: open, paused or closed, the wait in minutes, equipment up or down."""

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
        return [("service_id", self.service_id), *zip(_EQUIPMENT_IDS, [e.equipment_id for e in self.equipment])]

    def screened_text(self) -> str:
        return "\x1f".join((self.service_id, *[e.equipment_id for e in self.equipment]))

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
                        return cls(sid, intern(status), wait, tuple(items))
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


BODY_TYPES = {t.KIND: t for t in (BranchProfile, ServiceOffer, ServiceWithdraw, ServiceStatus, BranchQuality, *GOV_BODY_TYPES)}
Body = BranchProfile | ServiceOffer | ServiceWithdraw | ServiceStatus | BranchQuality
