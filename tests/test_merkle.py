"""protocol/merkle.py: RFC 6962 trees and inclusion proofs."""

import hashlib

import pytest

from protocol import merkle
from protocol.errors import DecodeError, ValidationError
from protocol.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    leaf_hash,
    node_hash,
    prove,
    root,
    root_from_proof,
    verify_inclusion,
)


def H(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """Reference: the recursive definition of RFC 6962 §2.1."""
    n = len(leaves)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:]))


def rfc6962_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """Reference audit path, RFC 6962 §2.1.1 (PATH(m, D[n]))."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return rfc6962_path(m, leaves[:k]) + [rfc6962_root(leaves[k:])]
    return rfc6962_path(m - k, leaves[k:]) + [rfc6962_root(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(n)]


def test_hash_prefixes():
    assert leaf_hash(b"x") == H(b"\x00x")
    assert node_hash(b"a" * 32, b"b" * 32) == H(b"\x01" + b"a" * 32 + b"b" * 32)
    assert EMPTY_ROOT == H(b"") == root([])
    assert root([b"x"]) == leaf_hash(b"x")


def test_leaf_and_node_domains_differ():
    # a two-leaf tree's root is not the leaf hash of the concatenated children
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert root([b"a", b"b"]) != leaf_hash(a + b)


@pytest.mark.parametrize("n", list(range(0, 18)) + [31, 32, 33, 100])
def test_root_matches_rfc6962(n):
    assert root(leaves_of(n)) == rfc6962_root(leaves_of(n))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17])
def test_proofs_for_every_leaf(n):
    leaves = leaves_of(n)
    hashes = [leaf_hash(x) for x in leaves]
    r = root(leaves)
    for i in range(n):
        proof = prove(hashes, i)
        assert list(proof.path) == rfc6962_path(i, leaves)
        verify_inclusion(leaves[i], proof, r)
        assert InclusionProof.decode(proof.encode()) == proof
        for j in range(n):
            if j != i:
                with pytest.raises(ValidationError):
                    verify_inclusion(leaves[j], proof, r)
        with pytest.raises(ValidationError):
            verify_inclusion(leaves[i], proof, root(leaves + [b"extra"]))


def test_proof_with_wrong_index_or_size_fails():
    leaves = leaves_of(6)
    hashes = [leaf_hash(x) for x in leaves]
    r = root(leaves)
    proof = prove(hashes, 2)
    for bad in (InclusionProof(3, 6, proof.path), InclusionProof(0, 6, proof.path), InclusionProof(2, 4, proof.path),
                InclusionProof(2, 16, proof.path)):
        with pytest.raises(ValidationError) as exc:
            verify_inclusion(leaves[2], bad, r)
        assert exc.value.reason == "bad_proof"
    # RFC 6962 proofs bind the index, not the exact tree size: sizes with the same path
    # shape verify too (the header does not commit to a record count).
    verify_inclusion(leaves[2], InclusionProof(2, 5, proof.path), r)


def test_proof_path_length_checked():
    leaves = leaves_of(4)
    hashes = [leaf_hash(x) for x in leaves]
    proof = prove(hashes, 1)
    with pytest.raises(ValidationError) as exc:
        root_from_proof(hashes[1], InclusionProof(1, 4, proof.path + (b"\x00" * 32,)))
    assert exc.value.field == "proof.path" and exc.value.reason == "bad_proof"
    with pytest.raises(ValidationError) as exc:
        root_from_proof(hashes[1], InclusionProof(1, 4, proof.path[:1]))
    assert exc.value.field == "proof.path"
    with pytest.raises(ValidationError) as exc:
        root_from_proof(hashes[1], InclusionProof(4, 4, proof.path))
    assert exc.value.field == "proof.index"


def test_prove_out_of_range():
    with pytest.raises(IndexError):
        prove([leaf_hash(b"a")], 1)


@pytest.mark.parametrize(
    "value, field, reason",
    [
        ([0, 0, []], "proof.tree_size", "range"),
        ([5, 5, []], "proof.index", "range"),
        ([0, 2, [b"x"]], "proof.path[0]", "size"),
        ([0, 2, [b"x" * 32] * 65], "proof.path", "too_long"),
        ([0, 2], "proof", "arity"),
    ],
)
def test_proof_decode_errors(value, field, reason):
    with pytest.raises(DecodeError) as exc:
        InclusionProof.from_array(value)
    assert (exc.value.field, exc.value.reason) == (field, reason)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 32, 33, 100, 256])
def test_level_tree_updates_match_a_rebuilt_tree(n):
    import random

    from protocol.merkle import LevelTree

    rng = random.Random(n)
    leaves = leaves_of(n)
    tree = LevelTree([leaf_hash(x) for x in leaves])
    assert tree.root() == rfc6962_root(leaves) and len(tree) == n
    for step in range(20):
        changed = {rng.randrange(n): f"new-{step}-{j}".encode() for j in range(rng.randint(1, min(n, 12)))}
        before = tree.root()
        updated = tree.with_updates({i: leaf_hash(v) for i, v in changed.items()})
        assert tree.root() == before  # the old tree is untouched
        for i, v in changed.items():
            leaves[i] = v
        assert updated.root() == rfc6962_root(leaves)
        tree = updated


def test_level_tree_empty_and_bad_index():
    from protocol.merkle import LevelTree

    assert LevelTree().root() == EMPTY_ROOT and len(LevelTree()) == 0
    with pytest.raises(IndexError):
        LevelTree([leaf_hash(b"a")]).with_updates({1: leaf_hash(b"b")})


def test_level_tree_replaced_from_matches_a_rebuilt_tree():
    import random

    from protocol.merkle import LevelTree

    rng = random.Random(7)
    for trial in range(300):
        old = [f"old-{trial}-{i}".encode() for i in range(rng.randint(0, 70))]
        start = rng.randint(0, len(old))
        new = old[:start] + [f"new-{trial}-{i}".encode() for i in range(rng.randint(0 if start else 1, 40))]
        tree = LevelTree([leaf_hash(x) for x in old])
        before = tree.root()
        updated = tree.replaced_from([leaf_hash(x) for x in new], start)
        assert updated.root() == rfc6962_root(new), (len(old), start, len(new))
        assert tree.root() == before  # the old tree is untouched
        assert len(updated) == len(new)


def test_a_level_tree_proves_from_its_kept_levels_as_prove_does():
    for n in (1, 2, 3, 5, 8, 13, 33):
        hashes = [merkle.leaf_hash(bytes([i])) for i in range(n)]
        tree = merkle.LevelTree(hashes).with_updates({n // 2: merkle.leaf_hash(b"changed")})
        hashes[n // 2] = merkle.leaf_hash(b"changed")
        for i in range(n):
            assert tree.prove(i) == merkle.prove(hashes, i)
