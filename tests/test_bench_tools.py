"""The benchmarks under tools/ still run end to end (a refactor broke ``python -m
tools.bench`` once without any test noticing: it read the store through a method
that no longer existed). Tiny loads, real processes on 127.0.0.1; the figures are
not checked here, only that every offered record is counted as committed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _run(args: list[str], timeout: float) -> dict:
    done = subprocess.run([sys.executable, "-m", *args, "--json"], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_bench_load_phase_commits_what_it_offers():
    result = _run(["tools.bench", "--duration", "1", "--rate", "200", "--skip-sync"], timeout=600)
    assert result["offered_records"] == 200
    assert result["committed_records"] == 200
    assert result["bound_ratio"] > 0


def test_bench_overload_counts_every_answer_and_commits_what_it_accepted():
    result = _run(["tools.bench_overload", "--duration", "1", "--multiples", "1", "--capacity", "50"], timeout=600)
    (phase,) = result["phases"]
    assert phase["sent"] == 50 and phase["connection_errors"] == 0
    assert phase["accepted"] + phase["refused"] + sum(phase["other_answers"].values()) == 50
    assert phase["accepted"] > 0 and phase["accepted_not_committed"] == 0 and phase["committed"] == phase["accepted"]


def test_bench_scale_measures_idle_load_and_a_fresh_observer():
    result = _run(["tools.bench_scale", "--validators", "4", "--observers", "1", "--idle", "2", "--duration", "2",
                   "--rate", "10"], timeout=900)
    load = result["load"]
    assert load["accepted"] == load["offered"] == 20
    assert load["committed_seen_at_submitter"] == 20
    assert result["idle"]["cpu_percent_per_node"]["validators"]["mean"] > 0
    assert load["kbytes_per_node_per_height"]["validators"]["mean"] > 0  # bytes counted by the network-key layer
    assert result["fresh_observer"]["blocks"] >= 1
