"""The incremental state root (persistent branch trees, the top tree, roots carried from a
transaction into commit) always equals the root computed from scratch as
docs/PROTOCOL.md §8 defines it, whatever order the entries arrive in; entry proofs
verify, and tampered ones are rejected with a reason.

``reference_root`` below is written from the text of §8 and §6 alone, with hashlib:
it does not call protocol.merkle or protocol.state_tree."""

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import make_state, member_keys, offer, profile, record, status, validator_keys, withdraw
from protocol import state_tree
from protocol.encoding import encode
from protocol.errors import ValidationError
from protocol.ledger import LedgerState
from protocol.merkle import InclusionProof

KEYS = member_keys(2) + validator_keys(1)  # validators may publish too


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """§6: RFC 6962 MTH, the left subtree holding the largest power of two < n leaves."""
    if not leaves:
        return H(b"")
    if len(leaves) == 1:
        return H(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return H(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def bit(key: bytes, i: int) -> int:
    return (key[i // 8] >> (7 - i % 8)) & 1


def ref_node(entries: list[tuple[bytes, bytes]], depth: int) -> bytes:
    """§8 node(S, d) over (key, entry_leaf) pairs."""
    if not entries:
        return H(b"")
    if len(entries) == 1:
        return H(b"\x00" + entries[0][1])
    s0 = [e for e in entries if bit(e[0], depth) == 0]
    s1 = [e for e in entries if bit(e[0], depth) == 1]
    return H(b"\x01" + ref_node(s0, depth + 1) + ref_node(s1, depth + 1))


def ref_branch_root(leaves: dict[str, bytes]) -> bytes:
    """subject -> entry_leaf, in no particular order."""
    return ref_node([(H(s.encode("utf-8")), leaf) for s, leaf in leaves.items()], 0)


def reference_root(state: LedgerState) -> bytes:
    """§8 from scratch: entry leaves -> branch trees keyed by H(subject) -> MTH over top leaves."""
    branches: dict[bytes, dict[str, bytes]] = {}
    for bid, entry in state.entries():
        branches.setdefault(bid, {})[entry.subject] = entry.leaf()
    return mth([encode([bid, ref_branch_root(branches[bid])]) for bid in sorted(branches)])


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


def check_proofs(state: LedgerState) -> None:
    root = state.state_root
    for bid, entry in state.entries():
        proof = state.entry_proof(bid, entry.subject)
        assert state_tree.EntryProof.decode(proof.encode()) == proof
        assert proof.verify(root) == [entry.subject, entry.seq, entry.record_hash, entry.height,
                                      None if entry.body is None else entry.body.to_array()]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_incremental_root_equals_reference(blocks):
    state = make_state()
    model = Model()
    assert state.state_root == reference_root(state) == H(b"")
    for height, batch in enumerate(blocks, start=1):
        tx = state.begin(height)
        for branch, action, sid in batch:
            tx.apply(model.make(branch, action, sid), verify_signature=False)
        predicted = tx.state_root()
        assert predicted == tx.state_root()  # cached, same answer
        tx.commit()
        assert state.state_root == predicted == reference_root(state)
    check_proofs(state)
    # a state restored from the same entries, in another order, has the same root
    fresh = make_state()
    entries = list(state.entries())
    random.Random(len(entries)).shuffle(entries)
    fresh.restore(height=state.height, last_block_hash=state.last_block_hash, last_block_time_ms=state.last_block_time_ms,
                  entries=entries)
    assert fresh.state_root == state.state_root


# ---------------------------------------------------------------- the branch tree alone

SUBJECTS = [f"service/s{i}" for i in range(64)] + ["profile", "status/s1", "ü/ä", ""]
tree_ops = st.lists(st.lists(st.tuples(st.sampled_from(SUBJECTS), st.one_of(st.none(), st.binary(min_size=1, max_size=8))),
                             min_size=1, max_size=20), min_size=1, max_size=15)


@settings(max_examples=150, deadline=None)
@given(tree_ops, st.randoms(use_true_random=False))
def test_tree_updates_equal_reference_in_any_order(batches, rnd):
    """Random put/replace/remove batches: the persistent tree's root equals §8's; the same
    final set built from scratch, or inserted one at a time in a shuffled order, gives it too."""
    node = None
    model: dict[str, bytes] = {}
    for batch in batches:
        changes = dict(batch)  # one change per subject per batch
        node = state_tree.update(node, state_tree.items_of(
            (s, None if v is None else state_tree.leaf_hash(encode([s, 1, v, 1, None]))) for s, v in changes.items()))
        for s, v in changes.items():
            if v is None:
                model.pop(s, None)
            else:
                model[s] = encode([s, 1, v, 1, None])
        assert state_tree.hash_of(node) == ref_branch_root(model)
    subjects = list(model)
    rnd.shuffle(subjects)
    one_by_one = None
    for s in subjects:
        one_by_one = state_tree.update(one_by_one, state_tree.items_of([(s, state_tree.leaf_hash(model[s]))]))
    built = state_tree.build(state_tree.items_of((s, state_tree.leaf_hash(leaf)) for s, leaf in model.items()))
    assert state_tree.hash_of(one_by_one) == state_tree.hash_of(built) == state_tree.hash_of(node)
    for s, leaf in model.items():  # every entry's path folds back to the root
        path = state_tree.path_of(node, s)
        assert state_tree.root_from_path(leaf, path) == state_tree.hash_of(node)
    for s in set(SUBJECTS) - set(model):
        assert state_tree.path_of(node, s) is None


def test_tree_shape_examples():
    """One entry is carried up to the root; an inner node over one empty side keeps H("")."""
    leaf = encode(["profile", 1, bytes(32), 1, None])
    assert ref_branch_root({"profile": leaf}) == H(b"\x00" + leaf)
    assert state_tree.hash_of(state_tree.update(None, state_tree.items_of([("profile", state_tree.leaf_hash(leaf))]))) == H(b"\x00" + leaf)
    # two subjects sharing their first key bit: the root has an empty side
    subjects = [f"s{i}" for i in range(100)]
    a, b = next((x, y) for x in subjects for y in subjects
                if x < y and bit(H(x.encode()), 0) == bit(H(y.encode()), 0) and bit(H(x.encode()), 1) != bit(H(y.encode()), 1))
    la, lb = encode([a, 1, bytes(32), 1, None]), encode([b, 1, bytes(32), 1, None])
    ka = H(a.encode())
    lo, hi = (la, lb) if bit(ka, 1) == 0 else (lb, la)
    inner = H(b"\x01" + H(b"\x00" + lo) + H(b"\x00" + hi))
    expected = H(b"\x01" + inner + H(b"")) if bit(ka, 0) == 0 else H(b"\x01" + H(b"") + inner)
    node = state_tree.update(None, state_tree.items_of([(a, state_tree.leaf_hash(la)), (b, state_tree.leaf_hash(lb))]))
    assert state_tree.hash_of(node) == ref_branch_root({a: la, b: lb}) == expected
    # removing one carries the other up to the root again
    node = state_tree.update(node, state_tree.items_of([(a, None)]))
    assert state_tree.hash_of(node) == H(b"\x00" + lb)


def test_many_subjects_then_updates_in_place():
    state = make_state()
    model = Model()
    tx = state.begin(1)
    for sid in range(2000):
        tx.apply(model.make(0, 1, sid), verify_signature=False)
    tx.commit()
    assert state.state_root == reference_root(state)
    for height in range(2, 5):  # new subjects (statuses) into a big branch
        tx = state.begin(height)
        for sid in range(height, 2000, 97):
            tx.apply(model.make(0, 2, sid), verify_signature=False)
        tx.commit()
        assert state.state_root == reference_root(state)
    for height in range(5, 8):  # existing subjects changed in place (re-offers), and one more new one
        tx = state.begin(height)
        for sid in range(height, 2000, 13):
            tx.apply(model.make(0, 1, sid), verify_signature=False)
        tx.apply(model.make(0, 1, 5000 + height), verify_signature=False)
        tx.commit()
        assert state.state_root == reference_root(state)
    # about log2(n) + 1 siblings on an entry's path, not n
    depths = [len(state.entry_proof(KEYS[0].branch_id, e.subject).branch_path) for _, e in state.entries(KEYS[0].branch_id)]
    assert max(depths) <= 40 and sum(depths) / len(depths) < 16


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


# ---------------------------------------------------------------- entry proofs


def _proof_state() -> LedgerState:
    state = make_state()
    model = Model()
    tx = state.begin(1)
    for branch in range(len(KEYS)):
        tx.apply(model.make(branch, 0, 0), verify_signature=False)
        for sid in range(40):
            tx.apply(model.make(branch, 1, sid), verify_signature=False)
    tx.commit()
    return state


def _reason(proof: state_tree.EntryProof, root: bytes) -> str:
    with pytest.raises(ValidationError) as info:
        proof.verify(root)
    return info.value.reason


def test_entry_proofs_verify_and_tampering_is_caught():
    state = _proof_state()
    root = state.state_root
    bid = KEYS[1].branch_id
    p = state.entry_proof(bid, "service/svc-7")
    assert state.entry_proof(bid, "service/none") is None and state.entry_proof(bytes(20), "profile") is None
    assert p.verify(root)[0] == "service/svc-7" and len(p.branch_path) >= 2
    other = state.entry_proof(bid, "service/svc-8")
    flipped = bytes([p.branch_path[0][0] ^ 1]) + p.branch_path[0][1:]
    entry = state.entry(bid, "service/svc-7")
    forged_leaf = encode([entry.subject, entry.seq + 1, entry.record_hash, entry.height, entry.body.to_array()])
    cases = {
        "a sibling changed": (p.__class__(p.branch_id, p.entry_leaf, (flipped,) + p.branch_path[1:], p.top), "wrong_state_root"),
        "a sibling dropped": (p.__class__(p.branch_id, p.entry_leaf, p.branch_path[1:], p.top), "wrong_state_root"),
        "a sibling added": (p.__class__(p.branch_id, p.entry_leaf, p.branch_path + (bytes(32),), p.top), "wrong_state_root"),
        "another entry's leaf": (p.__class__(p.branch_id, other.entry_leaf, p.branch_path, p.top), "wrong_state_root"),
        "the entry's seq raised": (p.__class__(p.branch_id, forged_leaf, p.branch_path, p.top), "wrong_state_root"),
        "another branch": (p.__class__(KEYS[0].branch_id, p.entry_leaf, p.branch_path, p.top), "wrong_state_root"),
        "another branch's top path": (p.__class__(p.branch_id, p.entry_leaf, p.branch_path, state.entry_proof(KEYS[0].branch_id, "profile").top),
                                      "wrong_state_root"),
        "a top index out of range": (p.__class__(p.branch_id, p.entry_leaf, p.branch_path, InclusionProof(5, 3, p.top.path)), "bad_top_proof"),
        "a top path too long": (p.__class__(p.branch_id, p.entry_leaf, p.branch_path, InclusionProof(p.top.index, p.top.tree_size, p.top.path + (bytes(32),))),
                                "bad_top_proof"),
        "a leaf that is not an entry": (p.__class__(p.branch_id, encode([1, 2]), p.branch_path, p.top), "bad_entry_leaf"),
        "a leaf that does not decode": (p.__class__(p.branch_id, b"\xc1", p.branch_path, p.top), "bad_entry_leaf"),
        "a short sibling": (p.__class__(p.branch_id, p.entry_leaf, (b"\x00" * 31,) + p.branch_path[1:], p.top), "bad_path"),
        "a path over 256": (p.__class__(p.branch_id, p.entry_leaf, (bytes(32),) * 257, p.top), "bad_path"),
    }
    for name, (bad, reason) in cases.items():
        assert _reason(bad, root) == reason, name
    assert _reason(p, H(b"another root")) == "wrong_state_root"
    # a proof from an earlier state does not verify against a later root
    tx = state.begin(2)
    tx.apply(record(KEYS[1], offer("svc-7", "cash", title="changed"), 2), verify_signature=False)
    tx.commit()
    assert _reason(p, state.state_root) == "wrong_state_root"
    assert state.entry_proof(bid, "service/svc-7").verify(state.state_root)[1] == 2


@pytest.mark.parametrize("hashing", ["as built", "python"])
@pytest.mark.parametrize("pack", [1, 2, 3, 8])
def test_pack_size_is_a_layout_only(monkeypatch, pack, hashing):
    """Packed bottoms are a memory layout: any pack size gives §8's roots and paths, with
    the tree's hashing in C (where it was built) and in Python alike."""
    monkeypatch.setattr(state_tree, "PACK", pack)
    if hashing == "python":
        monkeypatch.setattr(state_tree, "_set_hash", state_tree._set_hash_py)
        monkeypatch.setattr(state_tree, "inner_hash", state_tree._inner_hash_py)
        monkeypatch.setattr(state_tree, "_update_one", state_tree._update_one_py)
        monkeypatch.setattr(state_tree, "_update_c", None)
    rnd = random.Random(pack)
    node, model = None, {}
    for _ in range(60):
        changes = {}
        for _ in range(rnd.randint(1, 12)):
            s = rnd.choice(SUBJECTS)
            changes[s] = None if rnd.random() < 0.25 else encode([s, rnd.randint(1, 9), bytes(32), 1, None])
        node = state_tree.update(node, state_tree.items_of(
            (s, None if leaf is None else state_tree.leaf_hash(leaf)) for s, leaf in changes.items()))
        for s, leaf in changes.items():
            if leaf is None:
                model.pop(s, None)
            else:
                model[s] = leaf
        assert state_tree.hash_of(node) == ref_branch_root(model)
    for s, leaf in model.items():
        assert state_tree.root_from_path(leaf, state_tree.path_of(node, s)) == ref_branch_root(model)


# ------------------------------------------------------------ the hashing in C (protocol/_treehash.c)

needs_c = pytest.mark.skipif(state_tree._set_hash_c is None,
                             reason="protocol._treehash not built (no C compiler or OpenSSL headers at install)")
# keys from a few byte values, so that leaves share long prefixes and splits come deep
key_bytes = st.lists(st.sampled_from([0x00, 0x01, 0x80, 0xFF]), min_size=32, max_size=32).map(bytes)
leaf_sets = st.lists(st.tuples(st.binary(min_size=32, max_size=32), key_bytes), min_size=1, max_size=12,
                     unique_by=lambda p: p[1])


@needs_c
def test_the_c_hashing_is_in_use_where_it_was_built():
    assert state_tree._set_hash is state_tree._set_hash_c and state_tree.inner_hash is state_tree._inner_hash_c
    assert state_tree._update_one is state_tree._update_one_c
    assert state_tree._update_c is not None


@needs_c
@settings(max_examples=300, deadline=None)
@given(leaf_sets, st.integers(0, 8), st.booleans())
def test_c_set_hash_equals_python(pairs, depth, shuffled):
    """Sorted as the tree keeps them, or in any order (the functions agree on every input):
    the same hash from C and from Python."""
    leaves = [h + k for h, k in pairs]
    if not shuffled:
        leaves.sort(key=lambda leaf: leaf[32:])
    assert state_tree._set_hash_c(leaves, depth) == state_tree._set_hash_py(leaves, depth)
    assert state_tree._set_hash_c(tuple(leaves), depth) == state_tree._set_hash_py(tuple(leaves), depth)


@needs_c
def test_c_set_hash_edges():
    leaf = bytes(range(64))
    assert state_tree._set_hash_c([leaf], 256) == leaf[:32] == state_tree._set_hash_py([leaf], 256)
    assert state_tree._set_hash_c([], 0) == state_tree._set_hash_py([], 0)
    many = sorted((H(b"%d" % i) + H(b"k%d" % i) for i in range(200)), key=lambda x: x[32:])  # beyond the C stack array
    assert state_tree._set_hash_c(many, 0) == state_tree._set_hash_py(many, 0)
    for impl in (state_tree._set_hash_c, state_tree._set_hash_py):  # one key twice: no split ever separates them
        with pytest.raises(ValueError, match="same key"):
            impl([bytes(32) + b"k" * 32, b"\x01" * 32 + b"k" * 32], 0)
    for bad in ([leaf[:63]], [leaf + b"x"], [bytearray(leaf)], [leaf, "x" * 64], 7):
        with pytest.raises(TypeError):
            state_tree._set_hash_c(bad, 0)
    with pytest.raises(ValueError):
        state_tree._set_hash_c([leaf], 257)


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=80))
def test_c_inner_hash_equals_python(left, right):
    for a, b in ((left, right), (bytearray(left), memoryview(right))):
        assert state_tree._inner_hash_c(a, b) == state_tree._inner_hash_py(a, b) == H(b"\x01" + left + right)
    with pytest.raises(TypeError):
        state_tree._inner_hash_c("text", right)


def _tree_ops(keys, pack):
    """Single-item updates (put or remove) on keys from ``keys``: (key, leaf or None) items."""
    op = st.tuples(st.sampled_from(keys), st.booleans(), st.binary(min_size=32, max_size=32))
    return st.lists(op, min_size=1, max_size=60)


# keys whose top three bits are 0, as the keys below a node at depth 3 are
deep_keys = [bytes([a, b, c]) + bytes(28) + bytes([d]) for a in (0, 0x10) for b in (0, 1, 0xFF) for c in (0, 0x80) for d in (0, 1, 2)]
random_keys = [bytes([k[0] & 0x1F]) + k[1:] for k in (H(b"subject %d" % i) for i in range(40))]


@needs_c
@pytest.mark.parametrize("pack", [1, 2, 3, 8])
@settings(max_examples=60, deadline=None)
@given(ops=st.one_of(_tree_ops(deep_keys, 8), _tree_ops(random_keys, 8)), depth=st.sampled_from([0, 0, 3]))
def test_c_update_one_builds_the_same_nodes(pack, ops, depth):
    """The C update gives the very tuples the Python one does (hashes and layout), step by
    step, from the empty tree, through inserts, replacements and removals, at any pack size
    (keys sharing up to 31 bytes: splits come deep)."""
    saved, state_tree.PACK = state_tree.PACK, pack  # the Python reads it (hypothesis: no monkeypatch here)
    try:
        node_c = node_py = None
        for key, put, h in ops:
            item = (key, h + key if put else None)
            node_c = state_tree._update_one_c(node_c, item, depth, pack)
            node_py = state_tree._update_one_py(node_py, item, depth, pack)
            assert node_c == node_py
    finally:
        state_tree.PACK = saved


@needs_c
def test_c_update_one_refuses_what_is_not_a_tree():
    leaf = H(b"h") + H(b"k")
    good = state_tree._update_one_c(None, (leaf[32:], leaf), 0, 8)
    for node in ((b"x" * 32,), (b"short", ()), [b"x" * 32, None, None], (b"x" * 32, None, "child"), (b"x" * 32, (b"leaf",))):
        with pytest.raises(TypeError):
            state_tree._update_one_c(node, (leaf[32:], leaf), 0, 8)
    for item in ((leaf[32:],), (leaf[:31], leaf), (leaf[32:], leaf[:63]), (leaf[32:], H(b"h") + H(b"other")), [leaf[32:], leaf]):
        with pytest.raises(TypeError):
            state_tree._update_one_c(good, item, 0, 8)
    for depth, pack in ((-1, 8), (257, 8), (0, 0), (0, 65)):
        with pytest.raises(ValueError):
            state_tree._update_one_c(good, (leaf[32:], leaf), depth, pack)


def _batches(keys):
    """Batches of updates, each a set of distinct keys put (with a leaf hash) or removed."""
    op = st.tuples(st.sampled_from(keys), st.booleans(), st.binary(min_size=32, max_size=32))
    return st.lists(st.lists(op, min_size=0, max_size=30, unique_by=lambda o: o[0]), min_size=1, max_size=12)


def _items(batch):
    return sorted((key, h + key if put else None) for key, put, h in batch)


@needs_c
@pytest.mark.parametrize("pack", [1, 2, 3, 8])
@settings(max_examples=60, deadline=None)
@given(batches=st.one_of(_batches(deep_keys), _batches(random_keys)), depth=st.sampled_from([0, 0, 3]))
def test_c_update_builds_the_same_nodes(pack, batches, depth):
    """The C update of many items in one walk gives the very tuples the Python reference
    does, batch after batch (inserts, replacements, removals that carry a lone entry up,
    batches that empty the tree), at any pack size."""
    node_c = node_py = None
    for batch in batches:
        items = _items(batch)
        node_c = state_tree._update_c(node_c, items, depth, pack)
        saved, state_tree.PACK = state_tree.PACK, pack  # the Python reads it (hypothesis: no monkeypatch here)
        try:
            node_py = state_tree._update_py(node_py, items, depth)
        finally:
            state_tree.PACK = saved
        assert node_c == node_py


@needs_c
def test_c_update_beyond_its_stack_arrays():
    """Over 64 items, and a pack merged with over 128 leaves: the heap paths."""
    keys = sorted(H(b"key %d" % i) for i in range(700))
    first = [(k, H(k) + k) for k in keys[::2]]
    node_c = state_tree._update_c(None, first, 0, 8)
    assert node_c == state_tree._update_py(None, first, 0)
    second = sorted([(k, H(b"new" + k) + k) for k in keys[1::2]] + [(k, None) for k in keys[:200:2]])
    assert state_tree._update_c(node_c, second, 0, 8) == state_tree._update_py(node_c, second, 0)
    assert state_tree._update_c(None, second, 0, 64) == state_tree._update_c(None, [i for i in second if i[1]], 0, 64)
    assert state_tree._update_c(node_c, [], 0, 8) is node_c


@needs_c
def test_c_update_refuses_what_is_not_sorted_or_not_a_tree():
    a, b = sorted([H(b"a"), H(b"b")])
    leaf_a, leaf_b = H(b"x") + a, H(b"y") + b
    tree = state_tree._update_c(None, [(a, leaf_a), (b, leaf_b)], 0, 8)
    for items in ([(b, leaf_b), (a, leaf_a)], [(a, leaf_a), (a, None)]):
        with pytest.raises(ValueError, match="sorted"):
            state_tree._update_c(tree, items, 0, 8)
    with pytest.raises(ValueError, match="not sorted"):  # a pack whose leaves are out of order
        state_tree._update_c((tree[0], (leaf_b, leaf_a)), [(H(b"c"), H(b"z") + H(b"c")), (a, None)], 0, 8)
    for items in ([(a, leaf_b), (b, None)], [(a,), (b, None)], [[a, leaf_a], (b, None)], 5):
        with pytest.raises(TypeError):
            state_tree._update_c(tree, items, 0, 8)
    for node in ((b"x" * 32,), [b"x" * 32, None, None], (b"x" * 32, None, "child"), (b"x" * 32, (b"leaf",))):
        with pytest.raises(TypeError):
            state_tree._update_c(node, [(a, leaf_a), (b, leaf_b)], 0, 8)
    for depth, pack in ((-1, 8), (257, 8), (0, 0), (0, 65)):
        with pytest.raises(ValueError):
            state_tree._update_c(tree, [(a, leaf_a), (b, leaf_b)], depth, pack)


@pytest.mark.parametrize("id_size", [20, 0, 32, 255])
def test_top_leaf_written_out_is_the_encoded_pair(id_size):
    """The top tree's leaf is built from bytes, not encoded: the same as §8's encode([branch_id, branch_root])."""
    from protocol import merkle
    from protocol.ledger import _top_leaf
    rng = random.Random(id_size)
    branch_id, root = rng.randbytes(id_size), rng.randbytes(32)
    assert _top_leaf(branch_id, root) == merkle.leaf_hash(encode([branch_id, root]))


# ---------------------------------------------------------------- entry items from a record's bytes

BODY_VALUES = [None] + [b.to_array() for b in (profile(), offer(), status(), withdraw())]
widths = st.sampled_from([0, 1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**53, 2**64 - 1])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), widths, st.binary(max_size=40), widths, st.sampled_from(BODY_VALUES), st.booleans())
def test_an_entry_item_from_the_value_bytes_is_the_encoded_leafs(subject, seq, record_hash, height, value, in_c):
    # what the ledger hashes for an entry made by a record (ledger._entry_item): its value
    # is the record's body bytes, not encoded again; in C where it was built
    key = H(subject.encode("utf-8", "surrogatepass"))
    want = (key, state_tree.leaf_hash(encode([subject, seq, record_hash, height, value])) + key)
    saved = state_tree._entry_item_c
    if not in_c:
        state_tree._entry_item_c = None
    try:
        assert state_tree.entry_item(subject, seq, record_hash, height, None if value is None else encode(value)) == want
    finally:
        state_tree._entry_item_c = saved


@needs_c
def test_c_entry_item_leaves_to_the_python_what_it_does_not_take():
    c = state_tree._entry_item_c
    for args in [("s", -1, b"h", 1, None), ("s", 2**64, b"h", 1, None), ("s", 1, b"h", -5, None), ("s", 1.0, b"h", 1, None),
                 ("s", 1, bytearray(b"h"), 1, None), ("s", 1, b"h" * 256, 1, None), ("s", 1, b"h", 1, [1]),
                 ("\ud800", 1, b"h", 1, None), ("x" * 65_536, 1, b"h", 1, None)]:
        assert c(*args) is None, args
    key = H(b"s")  # and entry_item computes those in Python
    assert state_tree.entry_item("s", 1, b"h" * 256, 1, None) == (key, state_tree.leaf_hash(encode(["s", 1, b"h" * 256, 1, None])) + key)


@pytest.mark.parametrize("in_c", [True, False])
def test_roots_from_record_bytes_equal_roots_from_encoded_bodies(in_c, monkeypatch):
    # a block's entries hashed from their records' body bytes (the overlay's sources) and
    # the same entries hashed from their bodies encoded again: the same root, in C and not
    if not in_c:
        monkeypatch.setattr(state_tree, "_entry_item_c", None)
    model = Model()
    rnd = random.Random(7)
    state = make_state()
    for height in range(1, 6):
        tx = state.begin(height)
        for _ in range(60):
            tx.apply(model.make(rnd.randrange(len(KEYS)), rnd.randrange(4), rnd.randrange(40)), verify_signature=False)
        from_bytes = tx.state_root()
        assert tx._sources  # the overlay kept the records its entries came from
        sources, tx._sources, tx._pending = tx._sources, {}, None
        assert tx.state_root() == from_bytes  # every entry's leaf encoded again
        tx._sources = sources
        tx.commit()
        assert state.state_root == from_bytes == reference_root(state)
