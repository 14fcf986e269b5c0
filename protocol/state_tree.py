"""A branch's state tree: a compressed binary Merkle tree keyed by H(subject) (PROTOCOL.md §8).

Theory of operation
-------------------
Each entry of a branch sits at the 256-bit key ``k = sha256(utf8(subject))``,
read most significant bit first (bit 0 is the top bit of byte 0). The hash of
the entries ``S`` below a node at depth ``d`` (all sharing the first ``d`` key
bits) is::

    node(S, d) = EMPTY = sha256("")                       if S is empty
               = sha256(0x00 || entry_leaf)               if S holds one entry (carried up)
               = sha256(0x01 || node(S0, d+1) || node(S1, d+1))   otherwise,
                 Sb = the entries of S whose key bit d is b

and the branch root is ``node(all entries, 0)``. The tree is a function of the
set of entries alone, so the order in which they were added does not matter,
and a path from the root to an entry is as long as the key prefix it shares with
its nearest neighbour: about log2(n) + 1 for n entries. Changing, adding or
removing an entry re-hashes that path and nothing else.

Nodes are immutable tuples, so an update returns a new root that shares every
untouched subtree with the old one (a pending block computes its root without
disturbing the committed tree, and commit just keeps the new root):

* ``None``                      the empty tree
* ``(leaf_hash, subject)``      one entry (its key is recomputed from the subject when needed)
* ``(hash, left, right)``       an inner node

An entry's path is the sibling hashes from depth 0 down to its node
(:func:`path_of`); :func:`root_from_path` folds them back up. ``EntryProof``
adds the RFC 6962 proof of the branch's top leaf in the state root (§6, §8).

Errors: :func:`root_from_path` and :meth:`EntryProof.verify` raise
``ValidationError`` with reason ``bad_entry_leaf`` (not an encoded 5-element entry
with a string subject), ``bad_path`` (over 256 siblings, or one not 32 bytes),
``bad_top_proof`` (a malformed §6 proof of the branch's top leaf) or
``wrong_state_root`` (well formed, but it leads to another root: some part was
changed, or it is a proof of another state);
the builders raise ``ValueError`` on our own misuse (unsorted or repeated keys).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from .encoding import decode, encode, expect_array, expect_bytes, expect_list
from .errors import DecodeError, ValidationError
from .hashing import HASH_SIZE
from .merkle import InclusionProof, root_from_proof

_sha256 = hashlib.sha256
EMPTY = _sha256(b"").digest()
KEY_BITS = 256
MAX_PATH = KEY_BITS  # two distinct keys differ at some bit < 256
TOP = 1 << (KEY_BITS - 1)

Node = Optional[tuple]
Item = tuple[int, str, Optional[bytes]]  # (key, subject, leaf hash; None = remove)


def key_of(subject: str) -> int:
    """The entry's key as an integer (bit ``d`` is ``key >> (255 - d) & 1``)."""
    return int.from_bytes(hashlib.sha256(subject.encode("utf-8")).digest(), "big")


def leaf_hash(entry_leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry_leaf).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def hash_of(node: Node) -> bytes:
    return EMPTY if node is None else node[0]


def _join(left: Node, right: Node) -> Node:
    """The node over two children, carrying a lone entry up (so a removal keeps the tree canonical)."""
    if left is None and (right is None or len(right) == 2):
        return right
    if right is None and len(left) == 2:
        return left
    return (inner_hash(EMPTY if left is None else left[0], EMPTY if right is None else right[0]), left, right)


def _split(items: Sequence[Item], depth: int) -> int:
    """Index of the first item whose key bit ``depth`` is 1 (items sorted by key, sharing the bits above)."""
    mask = TOP >> depth
    for i, item in enumerate(items):
        if item[0] & mask:
            return i
    return len(items)


def build(items: Sequence[Item], depth: int = 0) -> Node:
    """The tree over ``items`` (sorted by key, distinct keys, no removals), from scratch."""
    if not items:
        return None
    if len(items) == 1:
        return (items[0][2], items[0][1])
    if depth >= KEY_BITS:
        raise ValueError("two subjects with the same key")
    i = _split(items, depth)
    left, right = build(items[:i], depth + 1), build(items[i:], depth + 1)
    return (inner_hash(EMPTY if left is None else left[0], EMPTY if right is None else right[0]), left, right)


def update(node: Node, items: Sequence[Item], depth: int = 0) -> Node:
    """``node`` (at ``depth``) with ``items`` put in or, where the hash is None, removed.

    ``items`` are sorted by key with distinct keys, all on this node's path. Only the
    paths of the items are re-hashed; the result shares everything else with ``node``.
    """
    if not items:
        return node
    if len(items) == 1:
        return _update_one(node, items[0], depth)
    if node is None or len(node) == 2:
        return _merge_leaf(node, items, depth)
    i = _split(items, depth)
    left = update(node[1], items[:i], depth + 1) if i else node[1]
    right = update(node[2], items[i:], depth + 1) if i < len(items) else node[2]
    return _join(left, right)


def _merge_leaf(node: Node, items: Sequence[Item], depth: int) -> Node:
    """The subtree where ``items`` meet an empty tree or one entry's leaf."""
    merged = list(items)
    if node is not None:
        subject = node[1]
        if not any(it[1] == subject for it in items):
            k = key_of(subject)
            j = 0
            while j < len(merged) and merged[j][0] < k:
                j += 1
            merged.insert(j, (k, subject, node[0]))
    return build([it for it in merged if it[2] is not None], depth)


def _update_one(node: Node, item: Item, depth: int) -> Node:
    """:func:`update` with one item, without recursion: down its path, then back up."""
    k = item[0]
    trail = []
    while node is not None and len(node) == 3:
        right = k & (TOP >> depth)
        trail.append((node, right))
        node = node[2] if right else node[1]
        depth += 1
    new = _merge_leaf(node, (item,), depth)
    for parent, right in reversed(trail):
        if right:
            left, r = parent[1], new
        else:
            left, r = new, parent[2]
        if left is not None and r is not None:
            new = (_sha256(b"\x01" + left[0] + r[0]).digest(), left, r)
        else:
            new = _join(left, r)
    return new


def items_of(changes: Iterable[tuple[str, Optional[bytes]]]) -> list[Item]:
    """(subject, leaf hash or None) pairs as sorted update items."""
    return sorted((key_of(s), s, h) for s, h in changes)


def path_of(node: Node, subject: str) -> tuple[list[bytes], Node]:
    """The sibling hashes from the root down to where ``subject``'s key leads, and the node
    found there: the entry's leaf, another entry's leaf (sharing the prefix), or None."""
    k = key_of(subject)
    path: list[bytes] = []
    depth = 0
    while node is not None and len(node) == 3:
        if k & (TOP >> depth):
            path.append(hash_of(node[1]))
            node = node[2]
        else:
            path.append(hash_of(node[2]))
            node = node[1]
        depth += 1
    return path, node


def root_from_path(entry_leaf: bytes, path: Sequence[bytes], field: str = "proof.branch_path") -> bytes:
    """Fold an entry's path back up to its branch root (§8). The key comes from the leaf's
    own subject, so a path cannot be moved to another entry. Raises ValidationError."""
    try:
        value = decode(entry_leaf, max_size=1 << 20)
    except DecodeError as exc:
        raise ValidationError(f"entry leaf does not decode: {exc.message}", field="proof.entry_leaf", reason="bad_entry_leaf") from None
    if type(value) is not list or len(value) != 5 or type(value[0]) is not str:
        raise ValidationError("entry leaf is not [subject, seq, record_hash, height, value]", field="proof.entry_leaf",
                              reason="bad_entry_leaf")
    if len(path) > MAX_PATH:
        raise ValidationError(f"path longer than {MAX_PATH}", field=field, reason="bad_path")
    k = key_of(value[0])
    r = leaf_hash(entry_leaf)
    for depth in range(len(path) - 1, -1, -1):
        sibling = path[depth]
        if len(sibling) != HASH_SIZE:
            raise ValidationError("not a 32-byte hash", field=f"{field}[{depth}]", reason="bad_path")
        r = inner_hash(sibling, r) if k & (TOP >> depth) else inner_hash(r, sibling)
    return r


@dataclass(frozen=True, slots=True)
class EntryProof:
    """That one entry of one branch is in a state root (§8): the entry's leaf, its path in
    the branch's tree, and the RFC 6962 proof of the branch's top leaf in the state tree."""

    branch_id: bytes
    entry_leaf: bytes  # encode([subject, seq, record_hash, height, value])
    branch_path: tuple[bytes, ...]  # sibling hashes, depth 0 first
    top: InclusionProof

    @property
    def subject(self) -> str:
        return decode(self.entry_leaf, max_size=1 << 20)[0]

    def to_array(self) -> list:
        return [self.branch_id, self.entry_leaf, list(self.branch_path), self.top.to_array()]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @classmethod
    def from_array(cls, value: Any, field: str = "entry_proof") -> "EntryProof":
        branch_id, leaf, path, top = expect_array(value, 4, field)
        items = expect_list(path, f"{field}.branch_path", max_len=MAX_PATH)
        return cls(expect_bytes(branch_id, f"{field}.branch_id", size=20), expect_bytes(leaf, f"{field}.entry_leaf"),
                   tuple(expect_bytes(h, f"{field}.branch_path[{i}]", size=HASH_SIZE) for i, h in enumerate(items)),
                   InclusionProof.from_array(top, f"{field}.top"))

    @classmethod
    def decode(cls, data: bytes) -> "EntryProof":
        return cls.from_array(decode(data, max_size=1 << 20))

    def branch_root(self) -> bytes:
        return root_from_path(self.entry_leaf, self.branch_path)

    def verify(self, state_root: bytes) -> list:
        """Check the proof against ``state_root``; return the decoded entry
        ``[subject, seq, record_hash, height, value]``. Raises ValidationError (see the module docstring)."""
        top_leaf = encode([self.branch_id, self.branch_root()])
        try:
            r = root_from_proof(leaf_hash(top_leaf), self.top)
        except ValidationError as exc:
            raise ValidationError(f"malformed proof of the branch in the state tree: {exc.message}", field="proof.top",
                                  reason="bad_top_proof") from None
        if r != state_root:
            raise ValidationError("proof does not lead to the state root", field="proof", reason="wrong_state_root")
        return decode(self.entry_leaf, max_size=1 << 20)
