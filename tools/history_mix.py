"""The record mix of ``tools.gen_history``: which record comes at which position.

A pure function of (seed, number of branches, position k), so a generator that
was stopped can go on where it stopped, and signing processes build the same
bodies the planner chose. No I/O.

The mix, in order (each phase cut short if ``--records`` runs out first):

1. one ``branch.profile`` per branch (regions from a list of 24 districts);
2. the offers: branch b offers ``services_of(b)`` services (24..40, 32 on
   average), round-robin over the branches so every block touches many of them;
   category, channels, fees, risk level and ownership vary with (b, s);
3. a first ``service.status`` of every offered service;
4. the rest is history: a (branch, service) drawn by a keyed hash of k, and
   85 % of the time a new ``service.status`` (open / paused / closed, the wait,
   an ATM up or down), 15 % a re-published offer with new fees (a fee update).

So history grows with every record while the state stays at
``branches * (1 + 2 * 32)`` subjects on average (profile, offer and status of
each service).
"""

from __future__ import annotations

import hashlib
from protocol.field_types import CATEGORIES, RISK_RATED_CATEGORIES
from protocol.hashing import sha256
from protocol.keys import PrivateKey
from protocol.schema import BranchProfile, EquipmentStatus, Fee, OpeningHours, ServiceOffer, ServiceStatus

MIN_SERVICES, MAX_SERVICES = 24, 40
FEE_UPDATE_PERCENT = 15
REGIONS = tuple(f"CN-{city}-{code}" for city, codes in (
    ("BJ", ("110101", "110102", "110105", "110106", "110108", "110114")),
    ("SH", ("310101", "310104", "310105", "310106", "310115", "310117")),
    ("GD", ("440103", "440104", "440106", "440303", "440304", "440305")),
    ("ZJ", ("330102", "330105", "330106", "330108", "330110", "330122")),
) for code in codes)
WEEKDAYS = tuple(OpeningHours(d, 9 * 60, 17 * 60) for d in range(5)) + (OpeningHours(5, 9 * 60, 12 * 60),)
TITLES = {
    "cash": ("Cash withdrawal and deposit", "Counter cash service for personal and business accounts."),
    "deposit": ("Time deposit", "Fixed term deposits in yuan and major currencies, opened at the counter or online."),
    "transfer": ("Domestic and cross-border transfer", "Transfers to any bank, same day within the country."),
    "account": ("Account opening", "Personal current accounts with a debit card issued on the spot."),
    "loan": ("Personal consumer loan", "Unsecured loans for household spending, decided within two working days."),
    "wealth": ("Wealth management product", "Managed funds with a fixed term; returns are not guaranteed."),
    "fx": ("Foreign exchange", "Cash exchange for twenty currencies at the counter."),
    "agency": ("Insurance sold on behalf of an insurer", "Life and accident policies of a partner insurer."),
    "self_service": ("Self-service banking", "ATMs and deposit machines in the lobby."),
    "advisory": ("Financial advice", "An adviser reviews savings and retirement plans by appointment."),
}
CHANNEL_SETS = (("counter",), ("counter", "online", "mobile"), ("low_counter", "appointment"), ("self_service",),
                ("counter", "phone"), ("online", "mobile"))
FEE_BASES = ("free", "per_transaction", "per_month", "per_year", "one_time")


class Mix:
    """The record at each position of a history of ``branches`` branches made with ``seed``."""

    def __init__(self, seed: int, branches: int):
        self.seed, self.branches = seed, branches
        counts = [self.services_of(b) for b in range(branches)]
        offers = sum(counts)
        self._phases = (branches, branches + offers, branches + 2 * offers)
        self._pairs = [(b, s) for s in range(MAX_SERVICES) for b in range(branches) if s < counts[b]]

    def member_key(self, b: int) -> PrivateKey:
        return self.key_of(self.seed, b)

    @staticmethod
    def key_of(seed: int, b: int) -> PrivateKey:
        """Branch b's key: derived from the seed, so it needs no file."""
        return PrivateKey.from_seed(sha256(f"branchnet-gen-history/{seed}/member/{b}".encode()))

    def services_of(self, b: int) -> int:
        return MIN_SERVICES + self._draw(b"services", b) % (MAX_SERVICES - MIN_SERVICES + 1)

    def phases(self) -> tuple[int, int, int]:
        """Where phases 2, 3 and 4 start (record positions)."""
        return self._phases

    def pairs(self) -> list[tuple[int, int]]:
        """Every (branch, service) offered, in the round-robin order of phases 2 and 3."""
        return self._pairs

    def _draw(self, what: bytes, k: int) -> int:
        digest = hashlib.blake2b(k.to_bytes(8, "big"), key=self.seed.to_bytes(8, "big") + what, digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def plan(self, k: int) -> tuple[int, str, int, int]:
        """Record k as (branch, what, service, variant): what is "profile", "offer" or "status"."""
        first_offer, first_status, first_update = self._phases
        pairs = self._pairs
        if k < first_offer:
            return k, "profile", 0, 0
        if k < first_status:
            b, s = pairs[k - first_offer]
            return b, "offer", s, 0
        if k < first_update:
            b, s = pairs[k - first_status]
            return b, "status", s, self._draw(b"variant", k)
        b, s = pairs[self._draw(b"pick", k) % len(pairs)]
        variant = self._draw(b"variant", k)
        return b, "offer" if variant % 100 < FEE_UPDATE_PERCENT else "status", s, variant


def service_id(b: int, s: int) -> str:
    return f"{CATEGORIES[(b + s) % len(CATEGORIES)].replace('_', '-')}-{s:02d}"


def profile_body(b: int) -> BranchProfile:
    region = REGIONS[b % len(REGIONS)]
    return BranchProfile(f"Sub-branch {b:04d}", f"No. {b % 400 + 1} Commerce Road, district {region[-6:]}", region,
                         30_000_000 + b * 1_000, 116_000_000 + b * 1_000, WEEKDAYS, f"+86 10 6255 {b % 10_000:04d}",
                         f"https://bank.example/branches/{b}")


def offer_body(b: int, s: int, variant: int, effective_from_ms: int) -> ServiceOffer:
    category = CATEGORIES[(b + s) % len(CATEGORIES)]
    title, description = TITLES[category]
    basis = "free" if category in ("cash", "account") else FEE_BASES[(b * 7 + s + variant) % len(FEE_BASES)]
    amount = 0 if basis == "free" else 100 * (1 + (b * 31 + s * 17 + variant) % 200)  # CNY 1 .. 200
    risk = 1 + (b + s + variant) % 5 if category in RISK_RATED_CATEGORIES else 0
    consigned = category == "agency"
    return ServiceOffer(service_id(b, s), category, title, description, CHANNEL_SETS[(b + s) % len(CHANNEL_SETS)], (),
                        (Fee("Service fee", amount, "CNY", basis),), risk, "consigned" if consigned else "own",
                        "Partner Life Insurance Co." if consigned else "", ("wheelchair",) if s % 3 else (),
                        effective_from_ms)


def status_body(b: int, s: int, variant: int) -> ServiceStatus:
    roll = variant % 100
    status = "open" if roll < 80 else "paused" if roll < 95 else "closed"
    equipment = (EquipmentStatus("atm-1", variant % 7 != 0),) if CATEGORIES[(b + s) % len(CATEGORIES)] == "self_service" else ()
    return ServiceStatus(service_id(b, s), status, (variant >> 8) % 46, equipment)
