"""Admission control keeps the backlog within what commits in the finality target."""

from __future__ import annotations

import pytest

from node.overload import AdmissionControl, Overloaded


def test_an_idle_network_takes_a_burst_then_learns_its_rate():
    ac = AdmissionControl(target_ms=2000, min_backlog=100, window_s=10)
    for backlog in range(100):
        ac.admit(backlog, now=0.0)  # rate unknown: the minimum is admitted
    with pytest.raises(Overloaded):
        ac.admit(100, now=0.0)
    for t in range(1, 11):  # 500 records/s commit for 10 s
        ac.committed(500, now=float(t))
    assert ac.limit(10.0) == pytest.approx(1000, rel=0.15)  # 2 s of commits
    ac.admit(800, now=10.0)
    with pytest.raises(Overloaded) as info:
        ac.admit(2000, now=10.0)
    assert 1 <= info.value.retry_after_s <= 30 and ac.refused == 2


def test_the_window_forgets_old_commits():
    ac = AdmissionControl(target_ms=1000, min_backlog=10, window_s=5)
    ac.committed(10_000, now=0.0)
    assert ac.limit(1.0) > 1000
    assert ac.limit(100.0) == 10  # nothing committed for a while: back to the minimum
