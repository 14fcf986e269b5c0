"""Product terms of a ``service.offer`` (docs/PROTOCOL.md §5.6.1): the optional 13th element.

What a customer compares before service, as integers only: rates and yields in
basis points, terms in months, amounts in minor units of an ISO 4217 currency
(checked against the frozen table of protocol/currencies.py, §5.9), and the end
of the offer's validity window (it starts at the offer's ``effective_from_ms``)::

    terms      = [valid_until_ms]                 cash, transfer, account, fx, self_service, advisory
               | [valid_until_ms, loan]           loan
               | [valid_until_ms, deposit]        deposit
               | [valid_until_ms, investment]     wealth, agency

The layout of the product block is decided by the offer's category, so the
block carries no tag of its own. Every parser raises DecodeError (shape, type,
range) or ValidationError (a rule), naming the field and a reason slug:
``range_order`` (min > max), ``order`` (a table not strictly sorted),
``rate_reference``, ``spread``, ``collateral``, ``guaranteed``, ``currency``,
``window`` and ``terms_product``. There is no text here, so nothing to screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from sys import intern
from typing import Any

from .currencies import ISO_4217
from .encoding import expect_array, expect_bool, expect_int, expect_list
from .errors import DecodeError, ValidationError
from .field_types import MAX_TIME_MS, enum, enum_set, pattern, _CURRENCY

RATE_TYPES = ("fixed", "floating")
RATE_REFERENCES = ("none", "lpr_1y", "lpr_5y", "shibor_3m", "sofr", "euribor_3m", "other")
REPAYMENT_METHODS = ("equal_installment", "equal_principal", "interest_only", "bullet", "flexible")
COLLATERAL_KINDS = ("real_estate", "vehicle", "deposit_pledge", "securities", "guarantor", "other")
EARLY_WITHDRAWAL = ("not_allowed", "demand_rate", "penalty", "no_penalty")
REDEMPTION = ("any_business_day", "periodic_window", "at_maturity")

MAX_RATE_BP = 100_000  # 1000 % a year: a bound, not a judgement
MAX_SPREAD_BP = 10_000
MIN_YIELD_BP = -10_000
MAX_FEE_BP = 10_000
MAX_TERM_MONTHS = 600
MAX_AMOUNT = 10**15
MAX_RATE_ROWS = 16

# which product block each category carries (others carry none)
PRODUCT_OF_CATEGORY = {"loan": "loan", "deposit": "deposit", "wealth": "investment", "agency": "investment"}


def currency(value: Any, field: str) -> str:
    """An ISO 4217 code of the frozen table (§5.9). Raises DecodeError/ValidationError."""
    if type(value) is str and value in ISO_4217:
        return intern(value)  # one string object per code in memory
    code = pattern(value, field, _CURRENCY, max_len=3, what="ISO 4217 currency code")
    raise ValidationError(f"{code!r} is not an ISO 4217 currency code", field=field, reason="currency")


def _ordered(lo: int, hi: int, field: str) -> None:
    if lo > hi:
        raise ValidationError(f"minimum {lo} is above maximum {hi}", field=field, reason="range_order")


@dataclass(frozen=True, slots=True)
class LoanTerms:
    rate_min_bp: int  # annual rate; a fixed single rate has min == max
    rate_max_bp: int
    rate_type: str  # fixed | floating
    rate_reference: str  # "none" iff fixed
    spread_bp: int  # over the reference; 0 when fixed
    term_min_months: int
    term_max_months: int
    amount_min_minor: int
    amount_max_minor: int
    currency: str
    repayment_methods: tuple[str, ...]
    collateral_required: bool
    collateral_kinds: tuple[str, ...]  # non-empty iff collateral_required
    early_repayment_fee_bp: int

    def to_array(self) -> list:
        return [self.rate_min_bp, self.rate_max_bp, self.rate_type, self.rate_reference, self.spread_bp,
                self.term_min_months, self.term_max_months, self.amount_min_minor, self.amount_max_minor, self.currency,
                list(self.repayment_methods), self.collateral_required, list(self.collateral_kinds),
                self.early_repayment_fee_bp]

    @classmethod
    def from_array(cls, value: Any, field: str) -> "LoanTerms":
        (rmin, rmax, rtype, ref, spread, tmin, tmax, amin, amax, cur, repay, coll, kinds, fee) = expect_array(value, 14, field)
        t = cls(
            expect_int(rmin, f"{field}.rate_min_bp", hi=MAX_RATE_BP),
            expect_int(rmax, f"{field}.rate_max_bp", hi=MAX_RATE_BP),
            enum(rtype, f"{field}.rate_type", RATE_TYPES),
            enum(ref, f"{field}.rate_reference", RATE_REFERENCES),
            expect_int(spread, f"{field}.spread_bp", lo=-MAX_SPREAD_BP, hi=MAX_SPREAD_BP),
            expect_int(tmin, f"{field}.term_min_months", lo=1, hi=MAX_TERM_MONTHS),
            expect_int(tmax, f"{field}.term_max_months", lo=1, hi=MAX_TERM_MONTHS),
            expect_int(amin, f"{field}.amount_min_minor", hi=MAX_AMOUNT),
            expect_int(amax, f"{field}.amount_max_minor", lo=1, hi=MAX_AMOUNT),
            currency(cur, f"{field}.currency"),
            enum_set(repay, f"{field}.repayment_methods", REPAYMENT_METHODS, min_len=1),
            expect_bool(coll, f"{field}.collateral_required"),
            enum_set(kinds, f"{field}.collateral_kinds", COLLATERAL_KINDS),
            expect_int(fee, f"{field}.early_repayment_fee_bp", hi=MAX_FEE_BP),
        )
        _ordered(t.rate_min_bp, t.rate_max_bp, f"{field}.rate_max_bp")
        _ordered(t.term_min_months, t.term_max_months, f"{field}.term_max_months")
        _ordered(t.amount_min_minor, t.amount_max_minor, f"{field}.amount_max_minor")
        if (t.rate_type == "fixed") != (t.rate_reference == "none"):
            raise ValidationError("a fixed rate has reference none, a floating rate a reference",
                                  field=f"{field}.rate_reference", reason="rate_reference")
        if t.rate_type == "fixed" and t.spread_bp != 0:
            raise ValidationError("a fixed rate has no spread (use 0)", field=f"{field}.spread_bp", reason="spread")
        if t.collateral_required != bool(t.collateral_kinds):
            raise ValidationError("collateral kinds are listed if and only if collateral is required",
                                  field=f"{field}.collateral_kinds", reason="collateral")
        return t


@dataclass(frozen=True, slots=True)
class DepositRate:
    term_months: int  # 0: demand (no fixed term)
    rate_bp: int

    def to_array(self) -> list:
        return [self.term_months, self.rate_bp]


@dataclass(frozen=True, slots=True)
class DepositTerms:
    rates: tuple[DepositRate, ...]  # strictly increasing term_months
    min_amount_minor: int
    currency: str
    early_withdrawal: str
    insured: bool  # covered by the deposit insurance scheme

    def to_array(self) -> list:
        return [[r.to_array() for r in self.rates], self.min_amount_minor, self.currency, self.early_withdrawal, self.insured]

    @classmethod
    def from_array(cls, value: Any, field: str) -> "DepositTerms":
        rates, amin, cur, early, insured = expect_array(value, 5, field)
        rows = []
        for i, row in enumerate(expect_list(rates, f"{field}.rates", max_len=MAX_RATE_ROWS)):
            term, rate = expect_array(row, 2, f"{field}.rates[{i}]")
            rows.append(DepositRate(expect_int(term, f"{field}.rates[{i}].term_months", hi=MAX_TERM_MONTHS),
                                    expect_int(rate, f"{field}.rates[{i}].rate_bp", hi=MAX_RATE_BP)))
        if not rows:
            raise ValidationError("at least 1 rate required", field=f"{field}.rates", reason="empty")
        for i in range(1, len(rows)):
            if rows[i].term_months <= rows[i - 1].term_months:
                raise ValidationError("terms must be strictly increasing", field=f"{field}.rates[{i}].term_months",
                                      reason="order")
        return cls(tuple(rows), expect_int(amin, f"{field}.min_amount_minor", hi=MAX_AMOUNT), currency(cur, f"{field}.currency"),
                   enum(early, f"{field}.early_withdrawal", EARLY_WITHDRAWAL), expect_bool(insured, f"{field}.insured"))


@dataclass(frozen=True, slots=True)
class InvestmentTerms:
    """Wealth and agency products: an expected yield, never a promise."""

    yield_min_bp: int
    yield_max_bp: int
    not_guaranteed: bool  # MUST be true
    term_months: int  # 0: open-ended
    min_amount_minor: int
    currency: str
    redemption: str

    def to_array(self) -> list:
        return [self.yield_min_bp, self.yield_max_bp, self.not_guaranteed, self.term_months, self.min_amount_minor,
                self.currency, self.redemption]

    @classmethod
    def from_array(cls, value: Any, field: str) -> "InvestmentTerms":
        ymin, ymax, ng, term, amin, cur, red = expect_array(value, 7, field)
        t = cls(
            expect_int(ymin, f"{field}.yield_min_bp", lo=MIN_YIELD_BP, hi=MAX_RATE_BP),
            expect_int(ymax, f"{field}.yield_max_bp", lo=MIN_YIELD_BP, hi=MAX_RATE_BP),
            expect_bool(ng, f"{field}.not_guaranteed"),
            expect_int(term, f"{field}.term_months", hi=MAX_TERM_MONTHS),
            expect_int(amin, f"{field}.min_amount_minor", hi=MAX_AMOUNT),
            currency(cur, f"{field}.currency"),
            enum(red, f"{field}.redemption", REDEMPTION),
        )
        _ordered(t.yield_min_bp, t.yield_max_bp, f"{field}.yield_max_bp")
        if not t.not_guaranteed:
            raise ValidationError("an expected yield is never a promise: not_guaranteed must be true",
                                  field=f"{field}.not_guaranteed", reason="guaranteed")
        return t


_PRODUCT_TYPES = {"loan": LoanTerms, "deposit": DepositTerms, "investment": InvestmentTerms}


@dataclass(frozen=True, slots=True)
class OfferTerms:
    """The terms element: the end of the validity window and at most one product block,
    the one the offer's category calls for (the others are None)."""

    valid_until_ms: int  # 0: open-ended; else after the offer's effective_from_ms
    loan: LoanTerms | None = None
    deposit: DepositTerms | None = None
    investment: InvestmentTerms | None = None

    @property
    def product(self) -> LoanTerms | DepositTerms | InvestmentTerms | None:
        return self.loan or self.deposit or self.investment

    def to_array(self) -> list:
        product = self.product
        return [self.valid_until_ms] if product is None else [self.valid_until_ms, product.to_array()]

    @classmethod
    def from_array(cls, value: Any, field: str, *, category: str, effective_from_ms: int) -> "OfferTerms":
        """Parse the terms of an offer of ``category`` effective from ``effective_from_ms``."""
        if type(value) is not list:
            raise DecodeError("expected an array", field=field, reason="type")
        product_name = PRODUCT_OF_CATEGORY.get(category)
        if len(value) != (1 if product_name is None else 2):
            what = f"[valid_until_ms, {product_name}]" if product_name else "[valid_until_ms]"
            raise ValidationError(f"{category} terms are {what}", field=field, reason="terms_product")
        until = expect_int(value[0], f"{field}.valid_until_ms", hi=MAX_TIME_MS)
        if until != 0 and until <= effective_from_ms:
            raise ValidationError("the validity window must end after effective_from_ms (0: open-ended)",
                                  field=f"{field}.valid_until_ms", reason="window")
        if product_name is None:
            return cls(until)
        product = _PRODUCT_TYPES[product_name].from_array(value[1], f"{field}.{product_name}")
        return cls(until, **{product_name: product})
