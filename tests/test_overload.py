"""Admission control steers the backlog limit by the finality of the records it accepted."""

from __future__ import annotations

import pytest

from node.overload import AdmissionControl, Overloaded


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def accept(ac: AdmissionControl, first: int, count: int, backlog: int, now: float) -> list[int]:
    for i in range(first, first + count):
        ac.admit(backlog, now)
        ac.accepted(h(i), backlog, now)
    return list(range(first, first + count))


def test_an_idle_network_takes_a_burst_up_to_the_limit():
    ac = AdmissionControl(target_ms=2000, initial_limit=100)
    for backlog in range(100):
        ac.admit(backlog, now=0.0)
    with pytest.raises(Overloaded) as info:
        ac.admit(100, now=0.0)
    assert info.value.retry_after_s == 1 and ac.refused == 1  # nothing committed yet: retry in 1 s


def test_a_late_commit_cuts_the_limit_to_what_would_have_met_the_target():
    ac = AdmissionControl(target_ms=2000, initial_limit=1000, min_limit=10)
    accept(ac, 0, 1, backlog=799, now=0.0)  # 800 records ahead of and including it ...
    samples = ac.committed([h(0)], now=4.0)  # ... took 4 s: 200 records/s
    assert samples == [4.0]
    assert ac.limit == 200 and ac.cuts == 1  # 200/s x (half of 2 s)
    with pytest.raises(Overloaded) as info:
        ac.admit(400, now=4.0)
    assert info.value.retry_after_s >= 1


def test_only_records_accepted_after_a_cut_can_cut_again():
    ac = AdmissionControl(target_ms=2000, initial_limit=1000, min_limit=10)
    accept(ac, 0, 3, backlog=799, now=0.0)
    ac.committed([h(0)], now=4.0)
    assert ac.limit == 200
    ac.committed([h(1), h(2)], now=4.5)  # the same congestion, seen again: no second cut
    assert ac.limit == 200 and ac.cuts == 1
    accept(ac, 10, 1, backlog=199, now=5.0)
    ac.committed([h(10)], now=8.0)  # accepted after the cut and still 3 s: the network slowed further
    assert ac.limit == 66 and ac.cuts == 2  # 200 records in 3 s: 66 in 1 s


def test_a_refusing_limit_grows_while_commits_are_early():
    ac = AdmissionControl(target_ms=2000, initial_limit=80, min_limit=10)
    accept(ac, 0, 1, backlog=79, now=0.0)
    ac.committed([h(0)], now=0.5)
    assert ac.limit == 80  # early, but nothing was refused: no reason to grow
    with pytest.raises(Overloaded):
        ac.admit(80, now=0.6)
    accept(ac, 1, 1, backlog=70, now=0.7)
    ac.committed([h(1)], now=1.2)  # 0.5 s < 0.7 s: grow by an eighth (at least min_limit)
    assert ac.limit == 90
    with pytest.raises(Overloaded):
        ac.admit(90, now=1.3)
    accept(ac, 2, 1, backlog=80, now=1.3)
    ac.committed([h(2)], now=2.2)  # 0.9 s: between early (0.7 s) and late (1 s), hold
    assert ac.limit == 90


def test_the_limit_never_drops_below_the_minimum():
    ac = AdmissionControl(target_ms=1000, initial_limit=500, min_limit=50)
    accept(ac, 0, 1, backlog=0, now=0.0)
    ac.committed([h(0)], now=30.0)  # even an empty queue took 30 s (a starved machine)
    assert ac.limit == 50
    ac.admit(49, now=30.0)


def test_other_nodes_records_count_for_the_rate():
    ac = AdmissionControl(target_ms=1000, initial_limit=100, min_limit=10, window_s=5)
    assert ac.committed([h(i) for i in range(500)], now=1.0) == []  # none of them ours
    assert ac.rate(1.0) == 500
    assert ac.rate(100.0) == 0.0  # the window forgets


def test_the_rate_counts_exactly_the_blocks_inside_the_window():
    # a sync commits thousands of blocks a second: the rate is kept as a running sum, which
    # must stay the sum over the blocks still in the window as old ones leave it
    ac = AdmissionControl(window_s=5)
    blocks = [(0.5 * t, t % 7) for t in range(60)]  # 30 s of blocks of 0..6 records
    for now, n in blocks:
        ac.committed([h(1_000 * int(now * 2) + i) for i in range(n)], now)
        inside = [(t, k) for t, k in blocks if now - 5 <= t <= now]
        assert ac.rate(now) == sum(k for _, k in inside) / max(now - inside[0][0], 1.0)


def test_accepted_records_that_never_commit_are_bounded(monkeypatch):
    """A record accepted here that never commits (superseded, rejected) is never popped:
    past the bound the oldest are dropped, so memory does not grow with them."""
    from node import overload

    monkeypatch.setattr(overload, "MAX_TRACKED", 4)
    ac = AdmissionControl()
    for i in range(10):
        ac.accepted(h(i), 0, now=float(i))
    assert list(ac._accepted) == [h(i) for i in range(6, 10)]
    assert ac.committed([h(5), h(9)], now=10.0) == [1.0]  # h(5) was forgotten: no sample
