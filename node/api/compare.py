"""Comparing offers by their product terms (PROTOCOL.md §5.6.1) for ``GET /v1/services``.

Filters: ``term_months`` (a loan whose term range covers it, a deposit whose rate
table has that term, a wealth/agency product of that term), ``amount`` (minor
units: within a loan's amount range, at least a deposit's or product's minimum),
``valid_at`` (ms: inside the offer's validity window). An offer without terms
matches none of them. Sorting: ``rate``/``-rate`` by the headline rate,
``term``/``-term``, ``amount``/``-amount`` (the minimum amount); offers without
the key sort last, ties by branch and service id, so pages are stable.

The headline rate (``rate_bp`` in each answer) is what a customer compares: a
loan's lowest rate, a deposit's rate for ``term_months`` (its best rate when no
term is asked), a wealth or agency product's highest expected yield (never
guaranteed).
"""

from __future__ import annotations

from typing import Any

from protocol.schema import ServiceOffer
from protocol.terms import DepositTerms, InvestmentTerms, LoanTerms

SORTS = ("rate", "-rate", "term", "-term", "amount", "-amount")
# /v1/quality: fastest resolution, shortest wait, best availability first; undisclosed (-1) last
QUALITY_SORTS = {"resolution": ("resolution_median_hours", 1), "wait": ("wait_avg_minutes", 1),
                 "availability": ("self_service_availability_bp", -1)}


def headline_rate_bp(offer: ServiceOffer, term_months: int | None = None) -> int | None:
    p = offer.terms.product if offer.terms is not None else None
    if isinstance(p, LoanTerms):
        return p.rate_min_bp
    if isinstance(p, DepositTerms):
        if term_months is None:
            return max(r.rate_bp for r in p.rates)
        return next((r.rate_bp for r in p.rates if r.term_months == term_months), None)
    if isinstance(p, InvestmentTerms):
        return p.yield_max_bp
    return None


def _term(offer: ServiceOffer) -> int | None:
    p = offer.terms.product if offer.terms is not None else None
    if isinstance(p, LoanTerms):
        return p.term_max_months
    if isinstance(p, DepositTerms):
        return p.rates[-1].term_months
    return p.term_months if isinstance(p, InvestmentTerms) else None


def _min_amount(offer: ServiceOffer) -> int | None:
    p = offer.terms.product if offer.terms is not None else None
    if isinstance(p, LoanTerms):
        return p.amount_min_minor
    return p.min_amount_minor if isinstance(p, (DepositTerms, InvestmentTerms)) else None


def terms_match(offer: ServiceOffer, *, term_months: int | None = None, amount: int | None = None,
                valid_at: int | None = None) -> bool:
    """True when ``offer`` passes every given terms filter (None: any)."""
    if term_months is None and amount is None and valid_at is None:
        return True
    terms = offer.terms
    if terms is None:
        return False
    if valid_at is not None and not (offer.effective_from_ms <= valid_at
                                     and (terms.valid_until_ms == 0 or valid_at < terms.valid_until_ms)):
        return False
    p = terms.product
    if term_months is not None:
        if isinstance(p, LoanTerms):
            ok = p.term_min_months <= term_months <= p.term_max_months
        elif isinstance(p, DepositTerms):
            ok = any(r.term_months == term_months for r in p.rates)
        else:
            ok = isinstance(p, InvestmentTerms) and p.term_months == term_months
        if not ok:
            return False
    if amount is not None:
        if isinstance(p, LoanTerms):
            return p.amount_min_minor <= amount <= p.amount_max_minor
        return isinstance(p, (DepositTerms, InvestmentTerms)) and p.min_amount_minor <= amount
    return True


def quality_key(sort: str):
    """A key for sorting /v1/quality's rows ((branch id, state entry of its disclosure, ...))
    by ``sort`` (one of QUALITY_SORTS); ties by branch id."""
    field, sign = QUALITY_SORTS[sort]

    def key(row: tuple) -> tuple:
        value = getattr(row[1].body, field)
        return (value < 0, sign * value, row[0])

    return key


def sort_key(sort: str, term_months: int | None):
    """A key for sorting service answers (dicts with ``_offer``) by ``sort`` (one of SORTS)."""
    field = sort.lstrip("-")
    sign = -1 if sort.startswith("-") else 1
    get = {"rate": lambda o: headline_rate_bp(o, term_months), "term": _term, "amount": _min_amount}[field]

    def key(item: dict[str, Any]) -> tuple:
        value = get(item["_offer"])
        return (value is None, 0 if value is None else sign * value, item["branch_id"], item["service_id"])

    return key
