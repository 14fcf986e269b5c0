"""The fault-injection tool (tools/chaos) and devnet's liveness test of a pid.

* The plan is seeded: one seed, one schedule.
* Its checkers can fail: fed fabricated stores (real databases written by
  node.store with two different blocks at one height, two records with one
  sequence number, committed evidence) and fabricated acknowledgements and
  logs, they report exactly what is wrong.
* devnet never takes a zombie for a live node.
* A short seeded run of real processes (slow): its checks ran, the report has
  its shape, no fork, no equivocation; and nothing acknowledged lost, no
  sequence number signed twice, no permanent halt (the node before its
  consensus WAL and durable acknowledgements failed all three on this run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.store import Store
from protocol.ledger import LedgerState
from protocol.votes import PRECOMMIT, DuplicateVoteEvidence, Vote
from factories import CHAIN_ID, certify, make_genesis, next_block, offer, record, status, validator_keys
from tools import devnet
from tools.chaos import checks
from tools.chaos.clients import Ack
from tools.chaos.cluster import read_chain
from tools.chaos.netns import Namespaces, namespaces_unavailable
from tools.chaos.schedule import KINDS, make_schedule, parse_kinds

ROOT = Path(__file__).resolve().parent.parent
VALS = validator_keys(4)
BRANCH = VALS[0]

# ---------------------------------------------------------------- the schedule


def test_one_seed_one_schedule_and_every_kind_within_a_minute():
    a = make_schedule(7, 4, 60, KINDS)
    assert a == make_schedule(7, 4, 60, KINDS)
    assert a != make_schedule(8, 4, 60, KINDS)
    assert {f.kind for f in a} == set(KINDS)


@pytest.mark.parametrize("seed", range(20))
def test_faults_fit_the_duration_one_after_another(seed):
    faults = make_schedule(seed, 4, 60, KINDS)
    end = 0.0
    for f in faults:
        assert f.at > end  # no overlap: each starts after the previous one healed
        end = f.at + f.downtime + max(f.offsets, default=0)
        assert end <= 60
        assert all(0 <= t < 4 for t in f.targets)
        if f.kind == "partition":
            assert sorted(i for g in f.groups for i in g) == [0, 1, 2, 3] and 1 <= len(f.groups[0]) <= 2


def test_fault_kinds_are_parsed_strictly():
    assert parse_kinds("all") == KINDS
    assert parse_kinds("kill1, stop,kill1") == ("kill1", "stop")
    assert parse_kinds("partition,stop,killall") == ("killall", "stop", "partition")  # order given: same plan
    with pytest.raises(ValueError, match="kil1"):
        parse_kinds("kil1")


# ---------------------------------------------------------------- checkers on fabricated stores

GENESIS = make_genesis(VALS)


def _write_chain(path: Path, batches, evidence_at: dict[int, list] | None = None) -> Path:
    """A node database holding one block per batch, written by node.store itself."""
    store = Store(path, GENESIS)
    state = LedgerState(GENESIS)
    try:
        for height, batch in enumerate(batches, start=1):
            block, tx, rejected = next_block(state, batch, evidence=(evidence_at or {}).get(height, ()))
            assert not rejected, rejected
            store.commit_block(block, certify(block, VALS), tx)
            tx.commit()
    finally:
        store.close()
    return path


def _status(seq: int, wait: int):
    return record(BRANCH, status("svc", wait=wait), seq)


def _common_batches():
    return [[record(BRANCH, offer("svc"), 1)], [_status(1, 5)]]


def test_fork_checker_reports_different_block_bytes_at_one_height(tmp_path):
    a = _write_chain(tmp_path / "a.db", _common_batches() + [[_status(2, 10)]])
    b = _write_chain(tmp_path / "b.db", _common_batches() + [[_status(2, 20)]])  # another record: another block 3
    c = _write_chain(tmp_path / "c.db", _common_batches())  # a node behind: not a fork
    dumps = {i: read_chain(p, GENESIS) for i, p in enumerate((a, b, c))}
    assert all(d.error is None for d in dumps.values())
    forks, compared = checks.find_forks({i: d.blocks for i, d in dumps.items()})
    assert compared == 3
    assert [f["height"] for f in forks] == [3]
    assert sorted(sorted(nodes) for nodes in forks[0]["variants"].values()) == [[0], [1]]


def test_fork_checker_passes_identical_chains(tmp_path):
    batches = _common_batches()
    dumps = [read_chain(_write_chain(tmp_path / f"{i}.db", batches), GENESIS) for i in range(3)]
    forks, compared = checks.find_forks({i: d.blocks for i, d in enumerate(dumps)})
    assert forks == [] and compared == 2


def test_reused_sequence_checker_reports_two_records_with_one_seq(tmp_path):
    committed_3 = _status(3, 30)
    forgotten_3 = _status(3, 31)  # acknowledged before a crash, then seq 3 signed again
    db = _write_chain(tmp_path / "a.db", _common_batches() + [[_status(2, 20)], [committed_3]])
    dump = read_chain(db, GENESIS)
    rows = [(0, h, b, s, q) for h, b, s, q, _ in dump.records]
    acks = [Ack(0, r.hash.hex(), r.kind, r.branch_id.hex(), r.subject, r.seq, 1.0) for r in (forgotten_3, committed_3)]
    found = checks.find_reused_seqs(acks, rows)
    assert len(found) == 1
    assert (found[0]["subject"], found[0]["seq"]) == ("status/svc", 3)
    by_hash = {x["hash"]: x for x in found[0]["records"]}
    assert by_hash[committed_3.hash.hex()] == {"hash": committed_3.hash.hex(), "acked_by": [0], "committed_on": [0]}
    assert by_hash[forgotten_3.hash.hex()]["committed_on"] == []
    # the same records with distinct sequence numbers are not a double-sign
    assert checks.find_reused_seqs(acks[1:], rows) == []


def test_committed_evidence_is_read_from_the_store(tmp_path):
    votes = [Vote.create(VALS[1], CHAIN_ID, PRECOMMIT, 1, 0, bytes([i]) * 32) for i in (1, 2)]
    evidence = DuplicateVoteEvidence.from_votes(*votes)
    db = _write_chain(tmp_path / "a.db", _common_batches(), evidence_at={2: [evidence]})
    dump = read_chain(db, GENESIS)
    assert [(h, height) for h, height, _ in dump.evidence] == [(evidence.hash.hex(), 2)]


def test_a_damaged_or_foreign_database_is_reported_not_raised(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    assert read_chain(junk, GENESIS).error
    other = _write_chain(tmp_path / "other.db", [])
    assert "WrongChain" in read_chain(other, make_genesis(validator_keys(3))).error
    assert read_chain(tmp_path / "missing.db", GENESIS).error == "no database"


def _ack(h: str, seq: int, node: int = 0) -> Ack:
    return Ack(node, h, "service.status", "bb", "status/svc", seq, 2.0)


def test_unconfirmed_acknowledgements_are_sorted_by_fate():
    acks = [_ack("a1", 1), _ack("a2", 2), _ack("a3", 3), _ack("a4", 4), _ack("a5", 5), _ack("a6", 6)]
    committed = {0: {"a1", "a2"}, 1: {"a1"}}  # a2 only on node 0
    slots = {("bb", "status/svc", 1): "a1", ("bb", "status/svc", 2): "a2", ("bb", "status/svc", 3): "other"}
    pending = {"a4": [1], "a5": []}  # a6 was not asked about
    out = checks.classify_unconfirmed(acks, committed, slots, pending)
    assert [d["hash"] for d in out["partial"]] == ["a2"] and out["partial"][0]["committed_on"] == [0]
    fates = {d["hash"]: d["fate"] for d in out["lost"]}
    assert fates == {"a3": "superseded", "a4": "pending", "a5": "forgotten", "a6": "unasked"}


def test_log_scan_counts_tracebacks_equivocations_and_errors():
    text = "\n".join([
        "2026-01-01 10:00:00,000 INFO    branchnet.node: up",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: boom",
        "2026-01-01 10:00:01,000 WARNING branchnet.consensus: equivocation by ab12 at height 7",
        "2026-01-01 10:00:02,000 ERROR   branchnet.consensus: decided block 0a1b2c3d4e5f at 12 is not available; waiting for sync",
        "2026-01-01 10:00:03,000 ERROR   branchnet.consensus: decided block 9f8e7d6c5b4a at 13 is not available; waiting for sync",
    ])
    found = checks.scan_log(text)
    assert found["tracebacks"] == 1 and found["exceptions"] == ["ValueError: boom"]
    assert len(found["equivocations"]) == 1
    assert found["errors"] == {"branchnet.consensus: decided block # at # is not available; waiting for sync": 2}
    assert checks.scan_log("all quiet\n") == {"tracebacks": 0, "exceptions": [], "equivocations": [], "errors": {}}


def test_percentile_is_nearest_rank():
    assert checks.percentile([], 99) is None
    assert checks.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert checks.percentile([float(i) for i in range(1, 101)], 99) == 99.0


# ---------------------------------------------------------------- the namespaces


def test_a_partition_cuts_the_link_and_heal_restores_it_and_close_removes_everything():
    why = namespaces_unavailable()
    if why:
        pytest.skip(why)
    topo = Namespaces(2, tag=f"bnchaos{os.getpid()}")
    try:
        server = subprocess.Popen(topo.command(1, [sys.executable, "-m", "http.server", "--bind", "10.99.0.2", "9000"]),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_connect(topo, 0, ("10.99.0.2", 9000))  # node 0 reaches node 1 over the bridge
            with pytest.raises(ConnectionRefusedError):  # node 1's loopback is its own, not ours
                topo.connect(0, ("127.0.0.1", 9000), 1.0)
            topo.partition(((0,), (1,)))
            with pytest.raises(OSError):  # a cut link: no answer at all (timeout)
                topo.connect(0, ("10.99.0.2", 9000), 1.0)
            topo.heal()
            _wait_connect(topo, 0, ("10.99.0.2", 9000))
        finally:
            server.kill()
            server.wait()
    finally:
        topo.close()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert topo.tag not in listed


def _wait_connect(topo, i, address, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            topo.connect(i, address, 1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# ---------------------------------------------------------------- devnet and zombies


def test_devnet_takes_its_own_unreaped_child_for_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _proc_state(proc.pid) != "Z":
        time.sleep(0.02)
    assert _proc_state(proc.pid) == "Z"  # exited, not reaped: kill(pid, 0) still succeeds
    os.kill(proc.pid, 0)
    assert devnet.process_state(proc.pid) == "gone"  # reaped by waitpid on the way
    proc.returncode = 0  # tell Popen it was reaped elsewhere


def test_devnet_takes_someone_elses_zombie_for_dead():
    # `sh` starts a child that exits at once, then execs into a sleep that never reaps it:
    # a zombie whose parent is not us, as under a PID 1 that does not reap.
    parent = subprocess.Popen(["sh", "-c", "sleep 0 & echo $!; exec sleep 30"], stdout=subprocess.PIPE, text=True)
    try:
        zombie = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _proc_state(zombie) != "Z":
            time.sleep(0.02)
        assert _proc_state(zombie) == "Z"
        os.kill(zombie, 0)  # what devnet used to rely on
        assert devnet.process_state(zombie) == "zombie"
        assert not devnet._alive(zombie)
        assert devnet.process_state(parent.pid) == "running"
        assert not devnet._alive(parent.pid)  # running, but not a node daemon
    finally:
        parent.kill()
        parent.wait()


def _proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (FileNotFoundError, IndexError):
        return None


# ---------------------------------------------------------------- a short run of real processes

SHORT_KINDS = ("killall", "stop", "partition")  # in the order of KINDS, as parse_kinds gives them
SHORT_RUN = ["--runs", "1", "--seed", "8", "--duration", "22", "--faults", ",".join(SHORT_KINDS), "--recovery-bound", "20",
             "--halt-bound", "20", "--ack-bound", "20", "--startup-timeout", "40", "--json", "--quiet"]


@pytest.fixture(scope="module")
def short_run() -> dict:
    """One seeded run: in 22 s of faults, a SIGSTOP of node 0, a kill -9 of every
    validator (staggered), an even 2|2 partition (no side has a quorum)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc")
    proc = subprocess.run([sys.executable, "-m", "tools.chaos", *SHORT_RUN], capture_output=True, text=True,
                          timeout=170, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_short_run_checks_ran_no_fork_no_equivocation(short_run):
    assert short_run["totals"]["runs"] == 1
    run = short_run["runs"][0]
    assert "setup_error" not in run, run["setup_error"]
    planned = [f.kind for f in make_schedule(8, 4, 22, tuple(k for k in SHORT_KINDS if k not in run["skipped_kinds"]))]
    if run["net"] == "netns":  # as root with ip(8): every kind; else partitions are skipped with the reason
        assert run["skipped_kinds"] == {} and planned == ["stop", "killall", "partition"]
    else:
        assert set(run["skipped_kinds"]) == {"partition"}
    assert run["seed"] == 8 and run["planned_faults"] == len(planned)
    kinds = [f["kind"] for f in run["faults"]]  # fewer if one did not recover: the schedule stops there
    assert kinds == planned[:len(kinds)]
    assert kinds or run["checks"]["liveness"]["stalled_at_start"]  # none only if nothing committed before the first
    assert set(run["checks"]) == {"forks", "acks", "liveness", "processes", "logs", "double_signs", "recovery", "node_start"}
    assert run["client"]["acknowledged"] == run["checks"]["acks"]["acknowledged"] > 0
    assert run["checks"]["forks"]["heights_compared"] > 0
    assert run["checks"]["forks"]["count"] == 0, run["checks"]["forks"]
    ds = run["checks"]["double_signs"]
    assert ds["evidence"] == 0 and ds["equivocation_log_lines"] == 0, ds
    assert run["checks"]["processes"]["alive"] == 4, run["checks"]["processes"]
    assert run["checks"]["logs"]["tracebacks"] == 0, run["checks"]["logs"]["exceptions"]


@pytest.mark.slow
def test_short_run_loses_nothing_reuses_no_seq_and_never_halts(short_run):
    run = short_run["runs"][0]
    ch = run["checks"]
    assert ch["acks"]["lost"] == 0, ch["acks"]["lost_details"][:5]
    assert ch["double_signs"]["reused_seq"] == 0, ch["double_signs"]["reused_seq_details"][:3]
    assert not ch["liveness"]["permanent_halt"] and not ch["liveness"]["stalled_at_start"]
    assert ch["liveness"]["unrecovered_faults"] == []
    assert run["failures"] == []
