"""``branch.quality``: a branch's periodic, aggregate service-quality disclosure (docs/PROTOCOL.md §5.10).

One record per branch per month, subject ``quality/<YYYY-MM>``; a correction is
the next seq of the same subject, so the state holds the latest and the chain
keeps every earlier version. Only aggregates, and no text at all: the only
string is the period, so nothing about a single case can be written into it.

    body       = [period, complaints, resolution_median_hours, resolution_p90_hours,
                  wait_avg_minutes, wait_p90_minutes, self_service_availability_bp]
    complaints = array of [category, received, resolved], categories in canonical order

A count is exact only from ``MIN_COUNT`` (k = 5) on: a smaller non-zero count
is reported as ``FEWER_THAN_K`` (-1), so no single customer's case can be
inferred, and the schema cannot carry an exact count of 0..4 (a category with no
complaints is left out). Resolution times are disclosed only when an exact
resolved count backs them. Reasons: ``format``, ``order``, ``small_count``,
``count_consistency``, ``range_order``, ``pair``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .encoding import expect_array, expect_int, expect_list
from .errors import ValidationError
from .field_types import enum, pattern

COMPLAINT_CATEGORIES = (
    "fees", "service_attitude", "waiting_time", "product_sales", "account", "card", "loan", "deposit", "wealth",
    "self_service", "privacy", "other",
)
MIN_COUNT = 5  # k: the smallest count disclosed exactly
FEWER_THAN_K = -1  # "between 1 and k - 1"; also "not disclosed" / "not measured" for the times below
NOT_DISCLOSED = -1
MAX_COUNT = 10**6
MAX_HOURS = 8760
MAX_MINUTES = 1440
_PERIOD = re.compile(r"20[0-9]{2}-(?:0[1-9]|1[0-2])")
PERIOD = _PERIOD  # the period syntax, for readers (the API's period parameter)
_POSITIONS = {c: i for i, c in enumerate(COMPLAINT_CATEGORIES)}


def _count(value: Any, field: str) -> int:
    n = expect_int(value, field, lo=FEWER_THAN_K, hi=MAX_COUNT)
    if 0 <= n < MIN_COUNT:
        raise ValidationError(f"counts below {MIN_COUNT} are reported as {FEWER_THAN_K} (fewer than k); "
                              "a category without complaints is left out", field=field, reason="small_count")
    return n


def _optional(value: Any, field: str, hi: int) -> int:
    return expect_int(value, field, lo=NOT_DISCLOSED, hi=hi)


def _pair(a: int, b: int, field: str) -> None:
    if (a == NOT_DISCLOSED) != (b == NOT_DISCLOSED):
        raise ValidationError("both or neither are disclosed (-1)", field=field, reason="pair")


@dataclass(frozen=True, slots=True)
class ComplaintCount:
    category: str
    received: int  # -1: fewer than k
    resolved: int  # -1: fewer than k

    def to_array(self) -> list:
        return [self.category, self.received, self.resolved]


@dataclass(frozen=True, slots=True)
class BranchQuality:
    """A branch's service quality for one month: complaints by category, resolution and waiting times."""

    KIND = "branch.quality"
    period: str  # YYYY-MM
    complaints: tuple[ComplaintCount, ...]
    resolution_median_hours: int  # -1: not disclosed
    resolution_p90_hours: int
    wait_avg_minutes: int  # -1: not measured
    wait_p90_minutes: int
    self_service_availability_bp: int  # -1: no self-service

    def subject(self) -> str:
        return f"quality/{self.period}"

    def to_array(self) -> list:
        return [self.period, [c.to_array() for c in self.complaints], self.resolution_median_hours,
                self.resolution_p90_hours, self.wait_avg_minutes, self.wait_p90_minutes, self.self_service_availability_bp]

    def screened_fields(self) -> list[tuple[str, str]]:
        return []  # no text: the period is a pattern, the rest integers and enumerations

    def screened_text(self) -> str:
        return ""

    @classmethod
    def from_array(cls, value: Any, field: str = "body", *, screen: bool = True) -> "BranchQuality":
        return cls._parse(value, field)  # nothing to screen

    @classmethod
    def _parse(cls, value: Any, field: str) -> "BranchQuality":
        period, complaints, rmed, rp90, wavg, wp90, avail = expect_array(value, 7, field)
        rows = []
        prev = -1
        for i, row in enumerate(expect_list(complaints, f"{field}.complaints", max_len=len(COMPLAINT_CATEGORIES))):
            where = f"{field}.complaints[{i}]"
            category, received, resolved = expect_array(row, 3, where)
            c = ComplaintCount(enum(category, f"{where}.category", COMPLAINT_CATEGORIES),
                               _count(received, f"{where}.received"), _count(resolved, f"{where}.resolved"))
            if _POSITIONS[c.category] <= prev:
                raise ValidationError("categories must be unique and in canonical order", field=f"{where}.category",
                                      reason="order")
            prev = _POSITIONS[c.category]
            if c.received == FEWER_THAN_K and c.resolved != FEWER_THAN_K or c.resolved > c.received:
                raise ValidationError("more resolved than received", field=f"{where}.resolved", reason="count_consistency")
            rows.append(c)
        q = cls(
            pattern(period, f"{field}.period", _PERIOD, max_len=7, what="period (YYYY-MM)"),
            tuple(rows),
            _optional(rmed, f"{field}.resolution_median_hours", MAX_HOURS),
            _optional(rp90, f"{field}.resolution_p90_hours", MAX_HOURS),
            _optional(wavg, f"{field}.wait_avg_minutes", MAX_MINUTES),
            _optional(wp90, f"{field}.wait_p90_minutes", MAX_MINUTES),
            _optional(avail, f"{field}.self_service_availability_bp", 10_000),
        )
        _pair(q.resolution_median_hours, q.resolution_p90_hours, f"{field}.resolution_p90_hours")
        _pair(q.wait_avg_minutes, q.wait_p90_minutes, f"{field}.wait_p90_minutes")
        if q.resolution_median_hours > q.resolution_p90_hours:
            raise ValidationError("the median cannot exceed the 90th percentile", field=f"{field}.resolution_p90_hours",
                                  reason="range_order")
        if q.resolution_median_hours != NOT_DISCLOSED and not any(c.resolved >= MIN_COUNT for c in q.complaints):
            raise ValidationError(f"resolution times need at least one category with {MIN_COUNT}+ resolved complaints",
                                  field=f"{field}.resolution_median_hours", reason="small_count")
        return q
