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


def test_bench_protocol_validates_its_stream_every_way():
    # Every loop applies the records on one overlay, so a record that did not validate
    # (a broken stream, a batch cut wrong) ends the run with its error.
    result = _run(["tools.bench_protocol", "--records", "300", "--repeat", "1"], timeout=300)
    assert result["records"] == 300
    assert all(result[k] > 0 for k in ("ratio", "ratio_cpu", "ratio_batched", "ratio_2t", "apply_10k_records_s"))


def test_bench_events_reads_every_record_event_both_ways():
    result = _run(["tools.bench_events", "--blocks", "20", "--records", "3"], timeout=300)
    assert result["blocks"] == 20 and result["records_per_block"] == 3
    assert set(result["server_cpu_us_per_block"]) == {"per_block", "per_event"}
    assert all(len(v) == 2 and min(v) > 0 for v in result["server_cpu_us_per_block"].values())


def test_bench_overload_counts_every_answer_and_commits_what_it_accepted():
    result = _run(["tools.bench_overload", "--duration", "1", "--multiples", "1", "--capacity", "50"], timeout=600)
    (phase,) = result["phases"]
    assert phase["sent"] == 50 and phase["connection_errors"] == 0
    assert phase["accepted"] + phase["refused"] + sum(phase["other_answers"].values()) == 50
    assert phase["accepted"] > 0 and phase["accepted_not_committed"] == 0 and phase["committed"] == phase["accepted"]


def test_bench_scale_measures_idle_load_and_a_fresh_observer():
    result = _run(["tools.bench_scale", "--validators", "4", "--observers", "1", "--idle", "2", "--idle-windows", "2",
                   "--duration", "2", "--rate", "10"], timeout=900)
    load = result["load"]
    assert load["accepted"] == load["offered"] == 20
    assert load["committed_seen_at_submitter"] == 20
    idle = result["idle"]
    assert idle["cpu_percent_per_node"]["validators"]["mean"] > 0
    assert len(idle["windows"]) == 2 and sum(w["heights"] for w in idle["windows"]) == idle["heights"]
    assert sum(w["seconds"] for w in idle["windows"]) == pytest.approx(idle["seconds"], abs=0.2)
    if idle["heights"]:
        assert idle["cpu_ms_per_height_per_node"]["validators"]["mean"] > 0
        assert idle["network_cpu_s_per_height"] == pytest.approx(idle["network_cores"] * idle["seconds"] / idle["heights"], rel=0.05)
        assert load["network_cpu_ms_per_record"] is not None
    for window in (idle, load):  # the network's cores: the nodes' shares added up (4 validators, 1 observer)
        per_node = window["cpu_percent_per_node"]
        assert window["network_cores"] == pytest.approx(
            (4 * per_node["validators"]["mean"] + per_node["observers"]["mean"]) / 100, rel=0.05, abs=0.002)
    assert load["kbytes_per_node_per_height"]["validators"]["mean"] > 0  # bytes counted by the network-key layer
    assert result["fresh_observer"]["blocks"] >= 1
    assert result["timeouts"] == "consortium" and result["timeouts_ms"]["timeout_propose_ms"] == 3000  # the genesis made
    pushes = load["record_pushes_sent"]["observers"]  # the observer's pushes, timed in queue and to the answer
    assert pushes["answered"]["n"] >= 1 and 0 <= pushes["answered"]["over_10.0_s"] <= 1


def test_gen_history_then_bench_history_on_a_tiny_history(tmp_path):
    """tools.gen_history writes a certified history that a node starts on and `branchnet
    chain verify` accepts, resumes it, and tools.bench_history measures it end to end
    (service and history searches, proofs, a fresh observer's sync). Counts only."""
    from tools.history_mix import Mix

    base = str(tmp_path / "history")
    gen = _run(["tools.gen_history", "--records", "2000", "--branches", "20", "--records-per-block", "200",
                "--dir", base], timeout=300)
    offers = sum(Mix(1, 20).services_of(b) for b in range(20))
    assert (gen["records"], gen["height"], gen["state_subjects"]) == (2000, 10, 20 + 2 * offers)
    more = _run(["tools.gen_history", "--records", "2300", "--branches", "20", "--records-per-block", "200",
                 "--dir", base], timeout=300)
    assert (more["records"], more["height"], more["resumed_from_height"], more["written_now"]) == (2300, 12, 10, 300)
    verify = subprocess.run([sys.executable, "-m", "node", "chain", "verify", "--home", f"{base}/branch-00", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stderr[-3000:]
    assert (json.loads(verify.stdout)["records"], json.loads(verify.stdout)["height"]) == (2300, 12)

    bench = _run(["tools.bench_history", "--dir", base, "--queries", "22", "--proofs", "10", "--idle", "0.5",
                  "--sync-timeout", "300"], timeout=600)
    assert (bench["height"], bench["records"]) == (12, 2300) and bench["db_bytes_per_record"] > 0
    assert bench["service_search"]["n"] == 22 and len(bench["service_search"]["by_kind"]) == 11
    assert bench["service_search"]["by_kind"]["category"]["max_total"] > 0
    assert bench["proof"]["n"] == 10 and bench["history_search"]["n"] >= 7
    assert (bench["sync"]["blocks"], bench["sync"]["records"]) == (12, 2300)
    assert bench["after_start"]["rss_mb"] > 0 and bench["sync"]["observer_rss_mb"] > 0
    assert bench["sync"]["health_during_sync"]["n"] >= 1  # the polls that follow the sync are timed


def test_bench_store_times_writes_beside_an_idle_and_a_busy_thread():
    result = _run(["tools.bench_store", "--records", "200", "--per-block", "50", "--repeat", "1"], timeout=300)
    assert result["records_per_batch"] == 200
    assert len(result["write_ms_idle_main"]) == len(result["write_ms_busy_main"]) == 1


def test_bench_scale_busy_loops_end_by_themselves():
    from tools.bench_scale import start_busy_loops

    (loop,) = start_busy_loops(1, 1)
    assert loop.wait(timeout=60) == 0


def test_bench_store_replay_writes_every_record_of_a_history_each_way(tmp_path):
    from factories import make_genesis
    from test_node_units import KEYS, _commit_chain
    from node.store import Store

    genesis = make_genesis(KEYS)
    store = Store(tmp_path / "node.db", genesis)
    _commit_chain(store, genesis, 6)  # 6 blocks of 4 records
    store.close()
    results = _run(["tools.bench_store_replay", "--db", str(tmp_path / "node.db"), "--records", "22",
                    "--range-records", "8", "--ranges-per-commit", "1,2"], timeout=300)
    assert [(r["ranges_per_commit"], r["records"]) for r in results] == [(1, 22), (2, 22)]
    assert all(r["written_mb"] >= 0 and r["records_per_s"] > 0 for r in results)
