"""RFC 6962 Merkle trees (as in Certificate Transparency, RFC 9162 §2.1).

* leaf hash  = sha256(0x00 || leaf bytes)
* node hash  = sha256(0x01 || left || right)
* empty tree = sha256("")
* For n > 1 leaves the left subtree holds the largest power of two < n leaves.

Bottom-up pairing that carries an odd last node up unchanged produces exactly
the RFC 6962 shape, so roots and proofs are built level by level.
An inclusion proof is the audit path from the leaf to the root; verification
follows RFC 9162 §2.1.3.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .encoding import decode, encode, expect_array, expect_bytes, expect_int, expect_list
from .errors import ValidationError
from .hashing import HASH_SIZE, sha256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"")
MAX_PROOF_DEPTH = 64


def leaf_hash(leaf: bytes) -> bytes:
    return sha256(LEAF_PREFIX + leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(NODE_PREFIX + left + right)


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    levels = [hashes]
    while len(hashes) > 1:
        nxt = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        if len(hashes) % 2:
            nxt.append(hashes[-1])
        levels.append(nxt)
        hashes = nxt
    return levels


def root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """Root over already-computed leaf hashes."""
    if not hashes:
        return EMPTY_ROOT
    return _levels(list(hashes))[-1][0]


def root(leaves: Sequence[bytes]) -> bytes:
    return root_of_hashes([leaf_hash(x) for x in leaves])


class LevelTree:
    """An RFC 6962 tree over leaf hashes that keeps every level, so replacing k
    leaves re-hashes O(k log n) nodes instead of the whole tree.

    Immutable: :meth:`with_updates` and :meth:`replaced_from` return new trees
    (sharing nothing mutable with this one), so a pending state transaction can
    compute its root without touching the committed tree.
    """

    __slots__ = ("levels",)

    def __init__(self, leaf_hashes: Sequence[bytes] = ()):
        self.levels = _levels(list(leaf_hashes)) if leaf_hashes else [[]]

    def __len__(self) -> int:
        return len(self.levels[0])

    def root(self) -> bytes:
        return self.levels[-1][0] if self.levels[0] else EMPTY_ROOT

    def with_updates(self, updates: dict[int, bytes]) -> "LevelTree":
        """A tree of the same size with leaf ``i`` replaced by ``updates[i]``."""
        n = len(self.levels[0])
        levels = [level.copy() for level in self.levels]
        dirty = set()
        for i, h in updates.items():
            if not 0 <= i < n:
                raise IndexError(f"leaf {i} outside tree of {n}")
            levels[0][i] = h
            dirty.add(i)
        for depth in range(len(levels) - 1):
            level, up = levels[depth], levels[depth + 1]
            parents = set()
            for i in dirty:
                p = i >> 1
                if p in parents:
                    continue
                parents.add(p)
                left = p << 1
                up[p] = node_hash(level[left], level[left + 1]) if left + 1 < len(level) else level[left]
            dirty = parents
        return LevelTree._of(levels)

    def replaced_from(self, leaf_hashes: list[bytes], start: int) -> "LevelTree":
        """The tree over ``leaf_hashes`` (any size), whose first ``start`` leaves equal this
        tree's: nodes covering only those leaves are reused, the rest re-hashed. An
        insertion into sorted leaves re-hashes from its position on, not the whole tree."""
        if not leaf_hashes:
            return LevelTree()
        hashes = list(leaf_hashes)
        levels = [hashes]
        depth = 0
        while len(hashes) > 1:
            start >>= 1  # parents below this index have two unchanged children
            old = self.levels[depth + 1] if depth + 1 < len(self.levels) else []
            keep = min(start, len(old), len(hashes) // 2)
            nxt = old[:keep]
            nxt.extend(node_hash(hashes[i], hashes[i + 1]) for i in range(2 * keep, len(hashes) - 1, 2))
            if len(hashes) % 2:
                nxt.append(hashes[-1])
            levels.append(nxt)
            hashes = nxt
            depth += 1
        return LevelTree._of(levels)

    def prove(self, index: int) -> "InclusionProof":
        """Audit path for leaf ``index`` from the kept levels (as :func:`prove`, without
        re-hashing the tree)."""
        n = len(self.levels[0])
        if not 0 <= index < n:
            raise IndexError(f"leaf {index} outside tree of {n}")
        path = []
        i = index
        for level in self.levels[:-1]:
            if (i ^ 1) < len(level):
                path.append(level[i ^ 1])
            i //= 2
        return InclusionProof(index, n, tuple(path))

    @staticmethod
    def _of(levels: list[list[bytes]]) -> "LevelTree":
        out = LevelTree.__new__(LevelTree)
        out.levels = levels
        return out


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    tree_size: int
    path: tuple[bytes, ...]

    def to_array(self) -> list:
        return [self.index, self.tree_size, list(self.path)]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @classmethod
    def from_array(cls, value: Any, field: str = "proof") -> "InclusionProof":
        index, size, path = expect_array(value, 3, field)
        size = expect_int(size, f"{field}.tree_size", lo=1, hi=2**40)
        index = expect_int(index, f"{field}.index", lo=0, hi=size - 1)
        items = expect_list(path, f"{field}.path", max_len=MAX_PROOF_DEPTH)
        return cls(index, size, tuple(expect_bytes(h, f"{field}.path[{i}]", size=HASH_SIZE) for i, h in enumerate(items)))

    @classmethod
    def decode(cls, data: bytes) -> "InclusionProof":
        return cls.from_array(decode(data, max_size=4096))


def prove(leaf_hashes: Sequence[bytes], index: int) -> InclusionProof:
    """Audit path for leaf ``index`` of a tree over ``leaf_hashes``."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise IndexError(f"leaf {index} outside tree of {n}")
    path = []
    i = index
    for level in _levels(list(leaf_hashes))[:-1]:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        i //= 2
    return InclusionProof(index, n, tuple(path))


def root_from_proof(leaf_hash_: bytes, proof: InclusionProof) -> bytes:
    """Recompute the root (RFC 9162 §2.1.3.2); raise ValidationError if malformed."""
    if not 0 <= proof.index < proof.tree_size:
        raise ValidationError("index outside tree", field="proof.index", reason="bad_proof")
    fn, sn = proof.index, proof.tree_size - 1
    r = leaf_hash_
    for p in proof.path:
        if sn == 0:
            raise ValidationError("proof path too long", field="proof.path", reason="bad_proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValidationError("proof path too short", field="proof.path", reason="bad_proof")
    return r


def verify_inclusion(leaf: bytes, proof: InclusionProof, expected_root: bytes) -> None:
    """Raise ValidationError unless ``leaf`` is at ``proof.index`` under ``expected_root``."""
    if root_from_proof(leaf_hash(leaf), proof) != expected_root:
        raise ValidationError("proof does not lead to the expected root", field="proof", reason="bad_proof")
