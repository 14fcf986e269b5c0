"""Turning operator input (flags, service files) into record bodies, exactly.

Everything a human types is parsed here and nowhere else:

* coordinates in decimal degrees -> integer micro-degrees (``Decimal``, no floats;
  more than 6 decimal places is an error, not a rounding)
* opening hours ``"mon-fri 09:00-12:00,13:00-17:00"`` -> ``[(day, open_min, close_min)]``
* fees ``"LABEL=AMOUNT CUR BASIS"`` -> ``Fee`` with the amount in minor units of the
  currency (ISO 4217 exponent), or basis points for ``percent_bp``
* risk ``R1..R5``, times in ISO 8601 with a time zone

Each parser raises :class:`InputError` (a ``click.BadParameter``: exit 2) with a
message that says what was expected. The bodies are then built as the protocol
dataclasses and re-validated with the protocol's own ``from_array``, so a bad
value is reported before anything is sent to the node, with the same rule.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

import click

from protocol.currencies import ISO_4217
from protocol.errors import ProtocolError
from protocol.schema import (
    ACCESSIBILITY,
    CHANNELS,
    BranchProfile,
    EquipmentStatus,
    Fee,
    OpeningHours,
    ServiceOffer,
    ServiceStatus,
    ServiceWithdraw,
)


class InputError(click.BadParameter):
    """Operator input that cannot be parsed (exit 2)."""


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")

# ISO 4217 minor units for currencies that do not use 2 decimals (everything else: 2).
_CURRENCY_EXPONENT = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def currency_exponent(currency: str) -> int:
    return _CURRENCY_EXPONENT.get(currency, 2)


# ---------------------------------------------------------------- numbers


def parse_decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise InputError(f"{what}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise InputError(f"{what}: {text!r} is not a finite number")
    return value


def exact_scaled(value: Decimal, places: int, what: str) -> int:
    """``value * 10**places`` as an int, refusing to round."""
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise InputError(f"{what}: {value} has more than {places} decimal place(s)")
    return int(scaled)


def parse_degrees(text: str, what: str, limit: int) -> int:
    """Decimal degrees -> integer micro-degrees, exactly; |value| <= limit degrees."""
    value = parse_decimal(text, what)
    if abs(value) > limit:
        raise InputError(f"{what}: {text} is outside [-{limit}, {limit}] degrees")
    return exact_scaled(value, 6, what)


# ---------------------------------------------------------------- hours


def _minute(text: str, spec: str) -> int:
    m = _TIME.fullmatch(text)
    if not m:
        raise InputError(f"hours {spec!r}: {text!r} is not a time HH:MM")
    minute = int(m.group(1)) * 60 + int(m.group(2))
    if minute > 1440:
        raise InputError(f"hours {spec!r}: {text!r} is after 24:00")
    return minute


def _day(name: str) -> int:
    for i, (short, full) in enumerate(zip(DAYS, DAY_NAMES)):
        if name in (short, full):
            return i
    raise ValueError(name)


def _days(text: str, spec: str) -> list[int]:
    text = text.lower()
    if text in ("daily", "all"):
        return list(range(7))
    days: list[int] = []
    for part in text.split(","):
        first, sep, last = part.partition("-")
        try:
            a = _day(first)
            b = _day(last) if sep else a
        except ValueError:
            raise InputError(f"hours {spec!r}: {part!r} is not a day or day range (mon, tue, ..., sun; e.g. mon-fri)") from None
        if b < a:
            raise InputError(f"hours {spec!r}: day range {part!r} runs backwards (weeks start on mon)")
        days.extend(range(a, b + 1))
    return days


def parse_hours(spec: str) -> list[tuple[int, int, int]]:
    """``"mon-fri 09:00-12:00,13:00-17:00"`` -> [(day, open_minute, close_minute), ...]."""
    parts = spec.split()
    if len(parts) != 2:
        raise InputError(f"hours {spec!r}: expected 'DAYS HH:MM-HH:MM', e.g. 'mon-fri 09:00-17:00'")
    days = _days(parts[0], spec)
    intervals = []
    for span in parts[1].split(","):
        start, sep, end = span.partition("-")
        if not sep:
            raise InputError(f"hours {spec!r}: {span!r} is not an interval HH:MM-HH:MM")
        o, c = _minute(start, spec), _minute(end, spec)
        if o >= c:
            raise InputError(f"hours {spec!r}: {span!r} closes before it opens")
        intervals.append((o, c))
    return [(d, o, c) for d in days for o, c in intervals]


def parse_hours_list(specs: Iterable[str]) -> tuple[OpeningHours, ...]:
    """Several ``--hours`` values, merged, sorted and checked for overlaps."""
    items = sorted({h for spec in specs for h in parse_hours(spec)})
    for prev, cur in zip(items, items[1:]):
        if cur[0] == prev[0] and cur[1] < prev[2]:
            raise InputError(f"hours overlap on {DAYS[cur[0]]}: {_fmt(prev)} and {_fmt(cur)}")
    return tuple(OpeningHours(d, o, c) for d, o, c in items)


def _fmt(h: tuple[int, int, int]) -> str:
    return f"{h[1] // 60:02d}:{h[1] % 60:02d}-{h[2] // 60:02d}:{h[2] % 60:02d}"


def format_hours(hours: Iterable[dict[str, int]]) -> str:
    """``[{day, open_minute, close_minute}]`` -> ``"mon-fri 09:00-17:00; sat 10:00-14:00"``."""
    by_day: dict[int, list[str]] = {}
    for h in hours:
        by_day.setdefault(h["day"], []).append(_fmt((h["day"], h["open_minute"], h["close_minute"])))
    groups: list[tuple[int, int, str]] = []  # (first day, last day, intervals)
    for day in sorted(by_day):
        spans = ",".join(by_day[day])
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == spans:
            groups[-1] = (groups[-1][0], day, spans)
        else:
            groups.append((day, day, spans))
    return "; ".join(f"{DAYS[a]}{'-' + DAYS[b] if b != a else ''} {spans}" for a, b, spans in groups)


def format_time_ms(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(n: int) -> str:
    return "<5" if n == -1 else str(n)


def body_rows(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """Human rows for a record body's JSON view (hours, fees, risk, times made readable)."""
    rows = []
    for k, v in body.items():
        if k == "hours":
            v = format_hours(v) or "the branch's hours"
        elif k == "fees":
            v = "; ".join(f"{f['label']}: {format_money(f['amount_minor'], f['currency'], f['basis'])}" for f in v) or "-"
        elif k == "risk_level":
            v = f"R{v}" if v else "-"
        elif k in ("lat_micro", "lon_micro"):
            k, v = k[:3], f"{Decimal(v).scaleb(-6)}"
        elif k == "terms" and isinstance(v, dict):
            v = format_terms(v)
        elif k == "complaints" and isinstance(v, list):
            v = ", ".join(f"{c['category']} {_count(c['received'])}/{_count(c['resolved'])} resolved" for c in v) or "none"
        elif k == "equipment":
            v = ", ".join(f"{e['equipment_id']}={'up' if e['up'] else 'down'}" for e in v) or "-"
        elif k.endswith("_ms") and isinstance(v, int):
            v = f"{v} ({format_time_ms(v)})"
        elif isinstance(v, list):
            v = ", ".join(map(str, v)) or "-"
        rows.append((k, v))
    return rows


# ---------------------------------------------------------------- fees, risk, time


def parse_fee(spec: str) -> Fee:
    """``"LABEL=AMOUNT CUR BASIS"``; AMOUNT in major units (or basis points for percent_bp)."""
    label, sep, rest = spec.rpartition("=")
    parts = rest.split()
    if not sep or not label.strip() or len(parts) != 3:
        raise InputError(f"fee {spec!r}: expected 'LABEL=AMOUNT CUR BASIS', e.g. 'express=5.00 CNY per_transaction'")
    amount_text, currency, basis = parts
    currency = currency.upper()
    if currency not in ISO_4217:
        raise InputError(f"fee {spec!r}: {parts[1]!r} is not an ISO 4217 currency code (e.g. CNY)")
    from protocol.schema import FEE_BASES

    if basis not in FEE_BASES:
        raise InputError(f"fee {spec!r}: basis {basis!r} is not one of {', '.join(FEE_BASES)}")
    amount = parse_decimal(amount_text, f"fee {spec!r}")
    if amount < 0:
        raise InputError(f"fee {spec!r}: the amount cannot be negative")
    if basis == "percent_bp":
        minor = exact_scaled(amount, 0, f"fee {spec!r} (percent_bp takes whole basis points)")
    else:
        minor = exact_scaled(amount, currency_exponent(currency), f"fee {spec!r} ({currency})")
    if basis == "free" and minor != 0:
        raise InputError(f"fee {spec!r}: a free fee must have amount 0")
    return Fee(label.strip(), minor, currency, basis)


def parse_amount(spec: str) -> int:
    """``"AMOUNT CUR"`` (major units, e.g. ``500000 CNY``) as minor units of CUR."""
    parts = spec.split()
    if len(parts) != 2 or parts[1].upper() not in ISO_4217:
        raise InputError(f"amount {spec!r}: expected 'AMOUNT CUR' with an ISO 4217 code, e.g. '500000 CNY'",
                         param_hint="--amount")
    value = parse_decimal(parts[0], f"amount {spec!r}")
    if value < 0:
        raise InputError(f"amount {spec!r}: cannot be negative", param_hint="--amount")
    return exact_scaled(value, currency_exponent(parts[1].upper()), f"amount {spec!r}")


def parse_risk(text: str | int | None) -> int:
    if text is None:
        return 0
    t = str(text).strip().upper()
    if t in ("", "0", "R0", "NONE"):
        return 0
    m = re.fullmatch(r"R?([1-5])", t)
    if not m:
        raise InputError(f"risk {text!r}: expected R1..R5")
    return int(m.group(1))


def parse_time_ms(text: str, what: str = "time") -> int:
    """ISO 8601 with a time zone (``2026-03-01T09:00:00+08:00`` or ``...Z``) -> ms since epoch."""
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{what}: {text!r} is not ISO 8601 (e.g. 2026-03-01T09:00:00+08:00)") from None
    if t.tzinfo is None:
        raise InputError(f"{what}: {text!r} needs a time zone (e.g. +08:00 or Z)")
    ms = (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)
    if ms < 0:
        raise InputError(f"{what}: {text!r} is before 1970")
    return ms


def parse_equipment(spec: str) -> EquipmentStatus:
    eid, sep, state = spec.partition("=")
    if not sep or state.lower() not in ("up", "down"):
        raise InputError(f"equipment {spec!r}: expected ID=up or ID=down, e.g. atm-1=down")
    return EquipmentStatus(eid.strip(), state.lower() == "up")


def canonical_set(values: Iterable[str], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    out = set()
    for v in values:
        v = v.strip().lower().replace("-", "_")
        if v not in allowed:
            raise InputError(f"{what} {v!r} is not one of {', '.join(allowed)}")
        out.add(v)
    return tuple(sorted(out, key=allowed.index))


# ---------------------------------------------------------------- bodies


def checked(body: Any) -> Any:
    """Re-validate ``body`` with the protocol's own decoder; raise InputError naming the field."""
    try:
        return type(body).from_array(body.to_array())
    except ProtocolError as exc:
        raise InputError(str(exc)) from None


def offer_from_fields(f: dict[str, Any], *, now_ms: int) -> ServiceOffer:
    """A ServiceOffer from the merged fields of ``--file`` and flags (see SERVICE_FIELDS)."""
    missing = [k for k in ("id", "category", "title") if not f.get(k)]
    if missing:
        raise InputError(f"missing {', '.join('--' + m for m in missing)} (on the command line or in --file)")
    issuer = f.get("consigned_by") or ""
    effective = f.get("effective_from")
    body = ServiceOffer(
        service_id=str(f["id"]),
        category=str(f["category"]),
        title=str(f["title"]),
        description=str(f.get("description") or ""),
        channels=canonical_set(f.get("channels") or ("counter",), CHANNELS, "channel"),
        hours=parse_hours_list(f.get("hours") or ()),
        fees=tuple(parse_fee(x) if isinstance(x, str) else _fee_table(x) for x in f.get("fees") or ()),
        risk_level=parse_risk(f.get("risk")),
        ownership="consigned" if issuer else "own",
        issuer=str(issuer),
        accessibility=canonical_set(f.get("accessibility") or (), ACCESSIBILITY, "accessibility"),
        effective_from_ms=parse_time_ms(effective, "effective_from") if effective else now_ms,
    )
    if f.get("terms") is not None:
        body = _with_terms(body, f["terms"])
    return checked(body)


def _with_terms(body: ServiceOffer, terms: Any) -> ServiceOffer:
    """``body`` with the terms of a service file's ``[terms]`` table (the API's JSON form, PROTOCOL.md §5.6.1)."""
    import dataclasses

    from protocol.terms import OfferTerms
    from protocol.views import _to_array

    try:
        arr = _to_array(OfferTerms, terms, "terms")
        return dataclasses.replace(body, terms=OfferTerms.from_array(
            arr, "terms", category=body.category, effective_from_ms=body.effective_from_ms))
    except ProtocolError as exc:
        raise InputError(str(exc), param_hint="--file") from None


def parse_term(text: str) -> int:
    """A term in months: ``12``, ``12m``, ``3y`` (36 months), ``demand`` (0)."""
    t = text.strip().lower()
    if t == "demand":
        return 0
    m = re.fullmatch(r"([0-9]{1,3})\s*(m|mo|months?|y|yr|years?)?", t)
    months = int(m[1]) * (12 if m and m[2] and m[2].startswith("y") else 1) if m else -1
    if not 0 <= months <= 600:
        raise InputError(f"term {text!r}: expected months (12, 12m), years (3y) or demand, at most 600 months",
                         param_hint="--term")
    return months


def format_bp(bp: int | None) -> str:
    """Basis points as a percentage: 345 -> 3.45%."""
    return "-" if bp is None else f"{Decimal(bp).scaleb(-2)}%"


def format_terms(t: dict[str, Any]) -> str:
    """One line for a terms object (the JSON form)."""
    parts = []
    if (loan := t.get("loan")) is not None:
        rate = format_bp(loan["rate_min_bp"]) + ("" if loan["rate_min_bp"] == loan["rate_max_bp"]
                                                 else f"-{format_bp(loan['rate_max_bp'])}")
        kind = "fixed" if loan["rate_type"] == "fixed" else f"floating on {loan['rate_reference']} {loan['spread_bp']:+d} bp"
        amount = (f"{format_amount(loan['amount_min_minor'], loan['currency'])}-"
                  f"{format_amount(loan['amount_max_minor'], loan['currency'])}")
        parts.append(f"{rate} {kind}; {loan['term_min_months']}-{loan['term_max_months']} months; {amount}; "
                     f"{', '.join(loan['repayment_methods'])}; collateral: {', '.join(loan['collateral_kinds']) or 'none'}; "
                     f"early repayment {format_bp(loan['early_repayment_fee_bp'])}")
    if (dep := t.get("deposit")) is not None:
        table = ", ".join(f"{'demand' if r['term_months'] == 0 else str(r['term_months']) + 'm'} {format_bp(r['rate_bp'])}"
                          for r in dep["rates"])
        parts.append(f"{table}; from {format_amount(dep['min_amount_minor'], dep['currency'])}; "
                     f"early withdrawal: {dep['early_withdrawal']}; {'insured' if dep['insured'] else 'not insured'}")
    if (inv := t.get("investment")) is not None:
        parts.append(f"expected {format_bp(inv['yield_min_bp'])}-{format_bp(inv['yield_max_bp'])} (not guaranteed); "
                     f"{inv['term_months'] or 'open-ended'}{' months' if inv['term_months'] else ''}; "
                     f"from {format_amount(inv['min_amount_minor'], inv['currency'])}; redemption: {inv['redemption']}")
    until = t.get("valid_until_ms", 0)
    parts.append("valid until " + format_time_ms(until) if until else "open-ended")
    return "; ".join(parts)


def offer_with_changes(current: ServiceOffer, f: dict[str, Any], *, now_ms: int) -> ServiceOffer:
    """``current`` with only the fields given in ``f`` (the merged ``--file`` and flags) changed.

    What ``service update`` publishes without ``--replace``: fees, hours, channels
    and the rest keep their committed values unless given. A fee given replaces
    the fee of the same label (or is added); hours, channels and accessibility
    given replace that list. The new offer takes effect now unless
    ``effective_from`` is given. Raises InputError.
    """
    from dataclasses import replace

    if f.get("id") and str(f["id"]) != current.service_id:
        raise InputError(f"--id {f['id']!r} differs from the service being updated ({current.service_id!r})")
    changes: dict[str, Any] = {}
    for name in ("category", "title", "description"):
        if f.get(name) is not None:
            changes[name] = str(f[name])
    if f.get("channels"):
        changes["channels"] = canonical_set(f["channels"], CHANNELS, "channel")
    if f.get("hours"):
        changes["hours"] = parse_hours_list(f["hours"])
    if f.get("fees"):  # by label: a given label replaces that fee, a new label is added
        given = {fee.label: fee for fee in (parse_fee(x) if isinstance(x, str) else _fee_table(x) for x in f["fees"])}
        kept = tuple(given.pop(fee.label, fee) for fee in current.fees)
        changes["fees"] = kept + tuple(given.values())
    if f.get("risk") is not None:
        changes["risk_level"] = parse_risk(f["risk"])
    if f.get("consigned_by") is not None:
        issuer = str(f["consigned_by"])
        changes.update(ownership="consigned" if issuer else "own", issuer=issuer)
    if f.get("accessibility"):
        changes["accessibility"] = canonical_set(f["accessibility"], ACCESSIBILITY, "accessibility")
    effective = f.get("effective_from")
    changes["effective_from_ms"] = parse_time_ms(effective, "effective_from") if effective else now_ms
    return checked(replace(current, **changes))


def _fee_table(x: Any) -> Fee:
    if not isinstance(x, dict) or set(x) - {"label", "amount", "currency", "basis"}:
        raise InputError(f"fee {x!r}: expected a string 'LABEL=AMOUNT CUR BASIS' or a table {{label, amount, currency, basis}}")
    return parse_fee(f"{x.get('label', '')}={x.get('amount', '')} {x.get('currency', '')} {x.get('basis', '')}")


SERVICE_FIELDS = {
    # file key -> accepted aliases
    "id": ("id", "service_id"),
    "category": ("category",),
    "title": ("title",),
    "description": ("description",),
    "channels": ("channels", "channel"),
    "hours": ("hours",),
    "fees": ("fees", "fee"),
    "risk": ("risk", "risk_level"),
    "consigned_by": ("consigned_by", "consigned-by", "issuer"),
    "accessibility": ("accessibility",),
    "effective_from": ("effective_from", "effective-from"),
    "terms": ("terms",),
}
_LIST_FIELDS = {"channels", "hours", "fees", "accessibility"}


def load_service_file(path: Path) -> dict[str, Any]:
    """Read ``service.toml`` / ``service.json`` into the field dict (keys of SERVICE_FIELDS)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})", param_hint="--file") from None
    try:
        if path.suffix.lower() == ".toml":
            doc = tomllib.loads(data.decode("utf-8"))
        else:
            doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} ({exc})", param_hint="--file") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: must be an object/table of fields", param_hint="--file")
    alias = {a: k for k, names in SERVICE_FIELDS.items() for a in names}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in alias:
            raise InputError(f"{path}: unknown field {key!r} (known: {', '.join(SERVICE_FIELDS)})", param_hint="--file")
        name = alias[key]
        if name in _LIST_FIELDS:
            if isinstance(value, (str, dict)):
                value = [value]
            if not isinstance(value, list):
                raise InputError(f"{path}: {key} must be a list", param_hint="--file")
        elif name == "risk" and isinstance(value, int):
            value = str(value)
        elif name == "terms":
            if not isinstance(value, dict):
                raise InputError(f"{path}: terms must be a table", param_hint="--file")
        elif not isinstance(value, str):
            raise InputError(f"{path}: {key} must be a string", param_hint="--file")
        out[name] = value
    return out


def profile_body(*, name: str, address: str, region: str, lat: str, lon: str, hours: Iterable[str],
                 phone: str, url: str) -> BranchProfile:
    return checked(BranchProfile(
        name=name, address=address, region=region,
        lat_micro=parse_degrees(lat, "--lat", 90), lon_micro=parse_degrees(lon, "--lon", 180),
        hours=parse_hours_list(hours), contact_phone=phone, contact_url=url,
    ))


def withdraw_body(service_id: str, reason: str) -> ServiceWithdraw:
    return checked(ServiceWithdraw(service_id, reason))


def status_body(service_id: str, status: str, wait: int, equipment: Iterable[str]) -> ServiceStatus:
    items = tuple(parse_equipment(e) for e in equipment)
    return checked(ServiceStatus(service_id, status, wait, items))


def format_amount(amount_minor: int, currency: str) -> str:
    exp = currency_exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-exp):,.{exp}f} {currency}"


def format_money(amount_minor: int, currency: str, basis: str) -> str:
    if basis == "free":
        return "free"
    if basis == "percent_bp":
        return f"{Decimal(amount_minor).scaleb(-2)}%"
    exp = currency_exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-exp):.{exp}f} {currency} {basis.replace('_', ' ')}"
