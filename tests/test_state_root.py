"""The incremental state root (cached bucket roots, level trees, roots carried from a
transaction into commit) always equals the root computed from scratch as
docs/PROTOCOL.md §8 defines it."""

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import make_state, member_keys, offer, profile, record, status, validator_keys, withdraw
from protocol import merkle
from protocol.encoding import encode
from protocol.ledger import LedgerState

KEYS = member_keys(2) + validator_keys(1)  # validators may publish too


def reference_root(state: LedgerState) -> bytes:
    """§8 from scratch: entries -> 256 buckets -> branch roots -> state root."""
    top = []
    branches: dict[bytes, list] = {}
    for bid, entry in state.entries():
        branches.setdefault(bid, []).append(entry)
    for bid in sorted(branches):
        buckets: dict[int, list] = {}
        for e in branches[bid]:
            buckets.setdefault(hashlib.sha256(e.subject.encode()).digest()[0], []).append(e)
        bucket_leaves = []
        for b in sorted(buckets):
            entries = sorted(buckets[b], key=lambda e: e.subject)
            broot = merkle.root([e.leaf() for e in entries])
            bucket_leaves.append(encode([b, broot]))
        top.append(encode([bid, merkle.root(bucket_leaves)]))
    return merkle.root(top)


class Model:
    """Generates valid records: per (branch, subject) the next seq, services on offer."""

    def __init__(self):
        self.seq: dict[tuple[int, str], int] = {}
        self.offered: dict[int, set[str]] = {i: set() for i in range(len(KEYS))}

    def make(self, branch: int, action: int, sid: int):
        service = f"svc-{sid}"
        on = service in self.offered[branch]
        if action == 0:
            subject, body = "profile", profile(f"Branch {branch} v{self.seq.get((branch, 'profile'), 0)}")
        elif action == 1 or not on:
            subject, body = f"service/{service}", offer(service, "cash", title=f"Cash {sid} {self.seq.get((branch, service), 0)}")
            self.offered[branch].add(service)
        elif action == 2:
            subject, body = f"status/{service}", status(service, "paused", wait=sid % 50)
        else:
            subject, body = f"service/{service}", withdraw(service)
            self.offered[branch].discard(service)
        n = self.seq.get((branch, subject), 0) + 1
        self.seq[(branch, subject)] = n
        return record(KEYS[branch], body, n)


ops = st.lists(st.lists(st.tuples(st.integers(0, len(KEYS) - 1), st.integers(0, 3), st.integers(0, 400)), max_size=30), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_incremental_root_equals_reference(blocks):
    state = make_state()
    model = Model()
    assert state.state_root == reference_root(state) == merkle.EMPTY_ROOT
    for height, batch in enumerate(blocks, start=1):
        tx = state.begin(height)
        for branch, action, sid in batch:
            tx.apply(model.make(branch, action, sid), verify_signature=False)
        predicted = tx.state_root()
        assert predicted == tx.state_root()  # cached, same answer
        tx.commit()
        assert state.state_root == predicted == reference_root(state)
    # a state restored from the same entries has the same root
    fresh = make_state()
    fresh.restore(height=state.height, last_block_hash=state.last_block_hash, last_block_time_ms=state.last_block_time_ms,
                  entries=list(state.entries()))
    assert fresh.state_root == state.state_root


def test_root_after_more_records_than_when_it_was_first_asked():
    state = make_state()
    model = Model()
    tx = state.begin(1)
    tx.apply(model.make(0, 1, 1), verify_signature=False)
    early = tx.state_root()
    tx.apply(model.make(0, 1, 2), verify_signature=False)
    tx.apply(model.make(1, 0, 0), verify_signature=False)
    late = tx.state_root()
    assert late != early
    tx.commit()
    assert state.state_root == late == reference_root(state)


def test_many_subjects_fill_every_bucket_then_update_in_place():
    state = make_state()
    model = Model()
    tx = state.begin(1)
    for sid in range(2000):  # enough subjects to make every one of the 256 buckets non-empty
        tx.apply(model.make(0, 1, sid), verify_signature=False)
    tx.commit()
    assert len(state._branches[KEYS[0].branch_id]._order) == 256
    for height in range(2, 6):  # new subjects (statuses) into big buckets
        tx = state.begin(height)
        for sid in range(height, 2000, 97):
            tx.apply(model.make(0, 2, sid), verify_signature=False)
        tx.commit()
        assert state.state_root == reference_root(state)
    for height in range(6, 9):  # existing subjects changed in place (re-offers), and one more new one
        tx = state.begin(height)
        for sid in range(height, 2000, 13):
            tx.apply(model.make(0, 1, sid), verify_signature=False)
        tx.apply(model.make(0, 1, 5000 + height), verify_signature=False)
        tx.commit()
        assert state.state_root == reference_root(state)
