"""The services on offer now, indexed for ``GET /v1/services``.

Answering a search by walking the whole ledger state costs O(subjects) with a
sort of every branch's subjects, and building a JSON document for every match
before paging: with 1,000 branches of ~32 services that was 0.4–9 s per search
(docs/PERFORMANCE.md, "A million records"). :class:`ServiceCatalogue` keeps one
:class:`Offered` per (branch, service) on offer — the offer's state entry, its
live status entry and its text folded for ``q`` — in the answer's order (branch
id, then service id), with lists by category and by branch beside it, so a
search walks only the candidates of its most selective indexed filter and
builds documents only for the page it returns.

What it holds is bounded by the state (one object per service on offer,
sharing the state's entries), never by history. It follows the chain through
:meth:`Chain.on_commit`: a committed block marks the (branch, service) pairs
and branch profiles its records touch, and the next search re-reads just those
from the state. A new or withdrawn service, or an offer that changes category,
re-sorts the lists once (at the next search); a status or fee update changes
one object in place. Everything runs on the trio thread, as commits do, so no
locks. While block sync applies a range, the catalogue shows the state before
the range until the range's blocks are announced to listeners.

It also keeps each branch's ``branch.quality`` disclosures by period for
``GET /v1/quality`` (one state entry each; a branch discloses about twelve a
year), so that answer costs O(branches disclosing) instead of a walk of every
subject.
"""

from __future__ import annotations

from typing import Any, Iterable

from protocol.blocks import Block
from protocol.ledger import Entry, LedgerState
from protocol.quality import BranchQuality
from protocol.schema import BranchProfile, ServiceOffer, ServiceStatus


class Offered:
    """One service on offer: its offer entry, its live status entry (None: no status) and
    that status's value, and its title and description folded for ``q`` ("" when unknown)."""

    __slots__ = ("branch_id", "service_id", "entry", "status", "live", "text", "fees", "pos")

    def __init__(self, branch_id: bytes, entry: Entry, status: Entry | None, text: str):
        self.branch_id = branch_id
        self.service_id = entry.body.service_id
        self.entry = entry
        self.status = status
        self.live = status.body.status if status is not None else None
        self.text = text
        self.fees = fee_summary(entry.body)
        self.pos = 0  # its place in the catalogue's order (set when the order is rebuilt)


_FEE_SUMMARIES: dict[tuple, dict[str | None, int]] = {}


def fee_summary(offer: ServiceOffer) -> dict[str | None, int]:
    """{basis: its highest fee, None: the highest fee of all} (a filter looks up, not loops).
    One shared dict per distinct set of fees (a cache of a few values, emptied if it fills)."""
    key = tuple((fee.basis, fee.amount_minor) for fee in offer.fees)
    summary = _FEE_SUMMARIES.get(key)
    if summary is None:
        if len(_FEE_SUMMARIES) >= 4096:
            _FEE_SUMMARIES.clear()
        summary = {}
        for basis, amount in key:
            summary[basis] = max(amount, summary.get(basis, 0))
        summary[None] = max((amount for _, amount in key), default=0)
        summary = _FEE_SUMMARIES[key] = summary
    return summary


def fold(offer: ServiceOffer) -> str:
    """What ``q`` searches: title and description, case-folded, joined by U+001F
    (which no text holds, so a needle never matches across the two)."""
    return offer.title.casefold() + "\x1f" + offer.description.casefold()


class ServiceCatalogue:
    def __init__(self, state_of: Any):
        """``state_of()`` returns the committed LedgerState (the chain's, which is replaced
        only on restore). Call :meth:`block_committed` for every committed block."""
        self._state_of = state_of
        self._items: dict[tuple[bytes, str], Offered] | None = None  # None: build from the state at next use
        self._regions: dict[bytes, str | None] = {}
        self._dirty: set[tuple[bytes, str]] = set()
        self._dirty_profiles: set[bytes] = set()
        self._ordered: list[Offered] | None = None  # None: re-sort at next use
        self._by_category: dict[str, list[Offered]] = {}
        self._by_branch: dict[bytes, list[Offered]] = {}
        self._by_live: dict[str | None, set[Offered]] = {}  # live status -> services in it
        self._texts: dict[str, list] = {}  # folded text -> [that string, how many services have it]
        self._quality: dict[str, dict[bytes, Entry]] = {}  # period -> branch -> its disclosure's entry
        self._dirty_quality: set[tuple[bytes, str]] = set()  # (branch, subject)

    # ---------------------------------------------------------------- following the chain
    def block_committed(self, block: Block) -> None:
        if self._items is None:
            return  # not built yet: it will be built from the state as it is then
        for r in block.records:
            body = r.body
            if isinstance(body, BranchProfile):
                self._dirty_profiles.add(r.branch_id)
            elif isinstance(body, BranchQuality):
                self._dirty_quality.add((r.branch_id, body.subject()))
            else:
                sid = getattr(body, "service_id", None)
                if sid is not None:
                    self._dirty.add((r.branch_id, sid))

    def _text(self, offer: ServiceOffer) -> str:
        """The folded text, one string shared by the services that have it, counted."""
        text = fold(offer)
        held = self._texts.get(text)
        if held is None:
            held = self._texts[text] = [text, 0]
        held[1] += 1
        return held[0]

    def _drop_text(self, text: str) -> None:
        held = self._texts[text]
        held[1] -= 1
        if held[1] == 0:
            del self._texts[text]

    def _read(self, state: LedgerState, branch_id: bytes, service_id: str) -> Offered | None:
        entry = state.entry(branch_id, f"service/{service_id}")
        if entry is None or not isinstance(entry.body, ServiceOffer):
            return None
        status = state.entry(branch_id, f"status/{service_id}")
        if status is not None and not isinstance(status.body, ServiceStatus):
            status = None
        return Offered(branch_id, entry, status, self._text(entry.body))

    @staticmethod
    def _region(state: LedgerState, branch_id: bytes) -> str | None:
        prof = state.entry(branch_id, "profile")
        return prof.body.region if prof is not None and isinstance(prof.body, BranchProfile) else None

    def _refresh(self) -> LedgerState:
        state = self._state_of()
        if self._items is None:
            self._items = {}
            for bid, e in state.entries():
                if isinstance(e.body, ServiceOffer):
                    item = self._read(state, bid, e.body.service_id)
                    self._items[(bid, item.service_id)] = item
                elif isinstance(e.body, BranchProfile):
                    self._regions[bid] = e.body.region
                elif isinstance(e.body, BranchQuality):
                    self._quality.setdefault(e.body.period, {})[bid] = e
            self._ordered = None
            self._by_live = {}
            for item in self._items.values():
                self._by_live.setdefault(item.live, set()).add(item)
            self._dirty.clear()
            self._dirty_profiles.clear()
            self._dirty_quality.clear()
        for bid, subject in self._dirty_quality:
            self._read_quality(state, bid, subject)
        self._dirty_quality.clear()
        for bid in self._dirty_profiles:
            self._regions[bid] = self._region(state, bid)
        self._dirty_profiles.clear()
        for key in self._dirty:
            old = self._items.get(key)
            new = self._read(state, *key)
            if old is not None:
                self._drop_text(old.text)
                self._by_live[old.live].discard(old)
            if new is None:
                if old is not None:
                    del self._items[key]
                    self._ordered = None
            elif old is None:
                self._items[key] = new
                self._by_live.setdefault(new.live, set()).add(new)
                self._ordered = None
            else:
                if old.entry.body.category != new.entry.body.category:
                    self._ordered = None
                old.entry, old.status, old.live, old.text, old.fees = new.entry, new.status, new.live, new.text, new.fees
                self._by_live.setdefault(old.live, set()).add(old)  # in place: the lists hold it
        self._dirty.clear()
        if self._ordered is None:
            self._ordered = [self._items[k] for k in sorted(self._items)]
            self._by_category, self._by_branch = {}, {}
            for pos, item in enumerate(self._ordered):
                item.pos = pos
                self._by_category.setdefault(item.entry.body.category, []).append(item)
                self._by_branch.setdefault(item.branch_id, []).append(item)
        return state

    def _read_quality(self, state: LedgerState, branch_id: bytes, subject: str) -> None:
        """A disclosure only ever replaces one of its period: nothing removes a quality
        subject from the state (PROTOCOL.md §5.10)."""
        entry = state.entry(branch_id, subject)
        if entry is not None and isinstance(entry.body, BranchQuality):
            self._quality.setdefault(entry.body.period, {})[branch_id] = entry

    # ---------------------------------------------------------------- queries
    def region_of(self, branch_id: bytes) -> str | None:
        return self._regions.get(branch_id)

    def candidates(self, *, branch: bytes | None, category: str | None, region: str | None,
                   region_matches: Any) -> Iterable[Offered]:
        """The services a search needs to look at, in answer order: those of one branch, of
        the branches in a region, of one category, or all (filters are still to be applied)."""
        self._refresh()
        if branch is not None:
            return self._by_branch.get(branch, ())
        if region is not None:
            ids = sorted(bid for bid in self._by_branch if region_matches(self._regions.get(bid), region))
            return [item for bid in ids for item in self._by_branch[bid]]
        if category is not None:
            return self._by_category.get(category, ())
        return self._ordered

    def size(self) -> int:
        """How many services are on offer."""
        self._refresh()
        return len(self._items)

    def in_status(self, live: str) -> set[Offered]:
        """The services whose live status is ``live`` (unordered; sort by ``pos``)."""
        self._refresh()
        return self._by_live.get(live, set())

    def texts_containing(self, needle: str) -> set[str]:
        """The folded texts of services on offer that contain ``needle`` (few distinct
        texts are shared by many services, so a search tests each text once)."""
        self._refresh()
        return {text for text in self._texts if needle in text}

    def quality(self, period: str | None, branch: bytes | None) -> tuple[str | None, list[tuple[bytes, Entry]]]:
        """The ``branch.quality`` disclosures of ``period`` (default: the latest period
        disclosed, by ``branch`` when given, else by any branch), in no order."""
        self._refresh()
        if period is None:
            periods = [p for p, held in self._quality.items() if branch is None or branch in held]
            period = max(periods, default=None)
        held = self._quality.get(period, {})  # {} for None: no disclosure yet
        if branch is not None:
            return period, [(branch, held[branch])] if branch in held else []
        return period, list(held.items())

    def statistics(self) -> dict[str, int]:
        self._refresh()
        return {"services": len(self._items), "categories": len(self._by_category), "branches": len(self._by_branch),
                "distinct_texts": len(self._texts)}
