"""The /v1/services catalogue answers exactly what walking the state answers,
while blocks add, update, re-categorise and withdraw services, move branches
between regions and disclose quality figures (node/api/catalogue.py; /v1/quality
too). Seeded, so a failure reproduces."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from node.api import views
from node.api.catalogue import ServiceCatalogue
from protocol.field_types import CATEGORIES, STATUSES
from protocol.ledger import LedgerState
from tests.factories import make_genesis, member_keys, next_block, offer, profile, quality, record, status, withdraw

FILTERS = [
    {}, {"category": "loan"}, {"category": "cash", "status": "open"}, {"region": "CN-BJ"}, {"region": "CN-SH-310101"},
    {"status": "paused"}, {"q": "LOAN"}, {"q": "counter"}, {"risk_level": 3}, {"max_fee": 400}, {"channel": "counter"},
    {"category": "deposit", "offset": 2, "limit": 3}, {"offset": 5, "limit": 4}, {"branch": None},
    {"region": "CN-BJ", "category": "fx"}, {"fee_basis": "per_transaction", "max_fee": 400},
    {"fee_basis": "per_transaction", "max_fee": 600}, {"fee_basis": "free"}, {"ownership": "own", "category": "loan"},
    {"sort": "-rate", "limit": 5}, {"status": "closed"}, {"status": "closed", "category": "cash"},
    {"status": "paused", "region": "CN-BJ", "offset": 1}, {"status": "open", "limit": 3, "offset": 2}, {"term_months": 12}, {"q": "\x1f"},
]

QUALITY_FILTERS = [
    {}, {"period": "2026-01"}, {"period": "2026-03"}, {"period": "2025-12"}, {"branch": None},
    {"branch": None, "period": "2026-02"}, {"region": "CN-BJ"}, {"sort": "wait"}, {"region": "CN-SH", "sort": "availability"},
    {"sort": "wait", "limit": 2}, {"sort": "resolution", "offset": 1, "limit": 2}, {"offset": 3},
]


@pytest.mark.parametrize("seed", range(4))
def test_catalogue_follows_blocks_and_answers_as_the_state_walk(seed):
    rng = random.Random(seed)
    keys = member_keys(5)
    state = LedgerState(make_genesis(members=keys))
    catalogue = ServiceCatalogue(lambda: state)
    node = SimpleNamespace(chain=SimpleNamespace(state=state))
    seqs: dict = {}
    offered: set = set()

    def signed(k, body):
        subject = (k.branch_id, body.subject())
        seqs[subject] = seqs.get(subject, 0) + 1
        return record(k, body, seqs[subject])

    for height in range(30):
        records = []
        for _ in range(rng.randint(1, 16)):
            k = rng.choice(keys)
            sid = f"svc-{rng.randrange(8)}"
            roll = rng.random()
            if roll > 0.93:  # a disclosure, new or a later version (a new period now and then)
                records.append(signed(k, quality(f"2026-{rng.randint(1, 1 + height // 8):02d}",
                                                 wait_avg_minutes=rng.randrange(60))))
            elif (k.branch_id, "profile") not in seqs or roll < 0.05:
                region = rng.choice(("CN-BJ-110108", "CN-SH-310101", "CN-BJ-110101"))
                records.append(signed(k, profile(region=region)))
            elif (k.branch_id, sid) not in offered or roll < 0.3:
                records.append(signed(k, offer(sid, rng.choice(CATEGORIES))))
                offered.add((k.branch_id, sid))
            elif roll < 0.4:
                records.append(signed(k, withdraw(sid)))
                offered.discard((k.branch_id, sid))
            else:
                records.append(signed(k, status(sid, rng.choices(STATUSES, weights=(16, 3, 1))[0])))
        block, tx, rejected = next_block(state, records)
        assert not rejected, rejected
        tx.commit()
        catalogue.block_committed(block)
        if height % 3 == 0 or height == 29:  # a search between some blocks, not all (dirty marks pile up)
            for f in FILTERS:
                f = dict(f)
                if "branch" in f:
                    f["branch"] = rng.choice(keys).branch_id
                want = views.services(node, **f)
                got = views.services(node, catalogue=catalogue, **f)
                assert got == want, (seed, height, f)
            for f in QUALITY_FILTERS:
                f = {key: rng.choice(keys).branch_id if key == "branch" else v for key, v in f.items()}
                assert views.quality(node, catalogue=catalogue, **f) == views.quality(node, **f), (seed, height, f)
    assert catalogue.statistics()["services"] == views.services(node)["total"] > 0
    assert len(views.quality(node, catalogue=catalogue)["branches"]) > 0
    assert views.quality(node, catalogue=catalogue)["period"] > "2026-01"
    for sort in (None, "wait", "availability"):  # pages of two, in order, make the whole ranking
        whole = views.quality(node, catalogue=catalogue, sort=sort, period="2026-01")
        assert whole["total"] == len(whole["branches"]) >= 3
        pages = [views.quality(node, catalogue=catalogue, sort=sort, period="2026-01", limit=2, offset=o) for o in range(0, 6, 2)]
        assert [row for page in pages for row in page["branches"]] == whole["branches"]
        assert {page["total"] for page in pages} == {whole["total"]}
        if sort == "wait":  # ascending, undisclosed (-1) last
            waits = [row["quality"]["wait_avg_minutes"] for row in whole["branches"]]
            assert waits == sorted(waits, key=lambda w: (w < 0, w))
    assert views.branches(node, catalogue=catalogue) == views.branches(node)
    one = keys[seed].branch_id
    assert views.branch(node, one, with_services=True, catalogue=catalogue) == views.branch(node, one, with_services=True)
