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
* ``(hash, left, right)``       an inner node
* ``(hash, leaves)``            a pack: a subtree of 1..PACK entries kept as their sorted
                                leaves (``leaf hash || key``, 64 bytes each); its inner
                                nodes are recomputed when it changes or is proven

The packs are a memory layout, not part of the protocol: ``hash`` is §8's
``node(S, depth)`` either way. Keeping the bottom of the tree packed stores about
one inner node per PACK/2 entries instead of 1.44 per entry (a trie's), at the
price of a few more hashes per change. An entry's path is the sibling hashes from
depth 0 down to its leaf (:func:`path_of`); :func:`root_from_path` folds them back up. ``EntryProof``
adds the RFC 6962 proof of the branch's top leaf in the state root (§6, §8).

Speed: where the optional extension ``protocol._treehash`` was built (a C compiler and
OpenSSL's headers at install), a pack's hash, an inner node's hash and the updates (of one
entry, and of many in one walk) run in C; the Python functions ``_set_hash_py``,
``_inner_hash_py``, ``_update_one_py`` and ``_update_py`` are the reference they are
tested against, and the fallback.

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

PACK = 8  # at most this many entries share one packed bottom node (memory layout only)

Node = Optional[tuple]
Item = tuple[bytes, Optional[bytes]]  # (key, leaf; None = remove), leaf = leaf hash || key


def key_of(subject: str) -> int:
    """The entry's key as an integer (bit ``d`` is ``key >> (255 - d) & 1``)."""
    return int.from_bytes(_sha256(subject.encode("utf-8")).digest(), "big")


def leaf_hash(entry_leaf: bytes) -> bytes:
    return _sha256(b"\x00" + entry_leaf).digest()


def _inner_hash_py(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def hash_of(node: Node) -> bytes:
    return EMPTY if node is None else node[0]


def _leaf_split(leaves: Sequence[bytes], depth: int) -> int:
    """Index of the first leaf whose key bit ``depth`` is 1 (leaves sorted by key, sharing the bits above)."""
    byte, shift = 32 + (depth >> 3), 7 - (depth & 7)
    for i, leaf in enumerate(leaves):
        if leaf[byte] >> shift & 1:
            return i
    return len(leaves)


def _item_split(items: Sequence[Item], depth: int) -> int:
    byte, shift = depth >> 3, 7 - (depth & 7)
    for i, item in enumerate(items):
        if item[0][byte] >> shift & 1:
            return i
    return len(items)


def _set_hash_py(leaves: Sequence[bytes], depth: int) -> bytes:
    """§8's node(S, depth) over a few sorted leaves, without keeping the inner nodes."""
    if len(leaves) == 1:
        return leaves[0][:32]
    if depth >= KEY_BITS:
        raise ValueError("two subjects with the same key")
    i = _leaf_split(leaves, depth)
    return _inner_hash_py(_set_hash_py(leaves[:i], depth + 1) if i else EMPTY,
                          _set_hash_py(leaves[i:], depth + 1) if i < len(leaves) else EMPTY)


try:  # speed only: the same functions in C (protocol/_treehash.c), where it was built
    from ._treehash import (entry_item as _entry_item_c, inner_hash as _inner_hash_c, set_hash as _set_hash_c,
                            update as _update_c, update_one as _update_one_c)
except ImportError:  # no compiler or no OpenSSL headers at install: the Python here
    _entry_item_c = _inner_hash_c = _set_hash_c = _update_c = _update_one_c = None
inner_hash = _inner_hash_c or _inner_hash_py
"""sha256(0x01 || left || right): an inner node of §8's tree."""
_set_hash = _set_hash_c or _set_hash_py


def _make(leaves: Sequence[bytes], depth: int) -> Node:
    """The node over sorted leaves: a pack if there are at most PACK, else an inner node."""
    if not leaves:
        return None
    if len(leaves) <= PACK:
        return (_set_hash(leaves, depth), tuple(leaves))
    i = _leaf_split(leaves, depth)
    left, right = _make(leaves[:i], depth + 1), _make(leaves[i:], depth + 1)
    return (inner_hash(EMPTY if left is None else left[0], EMPTY if right is None else right[0]), left, right)


def _join(left: Node, right: Node) -> Node:
    """The node over two children, carrying a lone entry up (so a removal keeps the tree canonical)."""
    if left is None and (right is None or (len(right) == 2 and len(right[1]) == 1)):
        return right
    if right is None and len(left) == 2 and len(left[1]) == 1:
        return left
    return (inner_hash(EMPTY if left is None else left[0], EMPTY if right is None else right[0]), left, right)


def build(items: Sequence[Item], depth: int = 0) -> Node:
    """The tree over ``items`` (sorted by key, distinct keys), from scratch; removals are skipped."""
    return _make([leaf for _, leaf in items if leaf is not None], depth)


def _repack(node: Node, items: Sequence[Item], depth: int) -> Node:
    """The node where ``items`` meet an empty tree or a pack."""
    merged = {} if node is None else {leaf[32:]: leaf for leaf in node[1]}
    for key, leaf in items:
        if leaf is None:
            merged.pop(key, None)
        else:
            merged[key] = leaf
    return _make([merged[k] for k in sorted(merged)], depth)


def update(node: Node, items: Sequence[Item], depth: int = 0) -> Node:
    """``node`` (at ``depth``) with ``items`` put in or, where the leaf is None, removed.

    ``items`` are sorted by key with distinct keys, all on this node's path. Only the
    paths of the items are re-hashed (and the packs they end in); the result shares
    everything else with ``node``. (In C where it was built: ``_update_py`` is the reference.)
    """
    if _update_c is not None:
        return _update_c(node, items, depth, PACK)
    return _update_py(node, items, depth)


def _update_py(node: Node, items: Sequence[Item], depth: int = 0) -> Node:
    if not items:
        return node
    if len(items) == 1:
        return _update_one(node, items[0], depth, PACK)
    if node is None or len(node) == 2:
        return _repack(node, items, depth)
    i = _item_split(items, depth)
    left = _update_py(node[1], items[:i], depth + 1) if i else node[1]
    right = _update_py(node[2], items[i:], depth + 1) if i < len(items) else node[2]
    return _join(left, right)


def _update_one_py(node: Node, item: Item, depth: int, pack: int) -> Node:
    """:func:`update` with one item, without recursion: down its path, then back up.
    (``pack`` is PACK, which :func:`_make` reads itself; the C version is given it.)"""
    key = item[0]
    trail = []
    while node is not None and len(node) == 3:
        right = key[depth >> 3] >> (7 - (depth & 7)) & 1
        trail.append((node, right))
        node = node[2] if right else node[1]
        depth += 1
    new = _repack(node, (item,), depth)
    for parent, right in reversed(trail):
        if right:
            left, r = parent[1], new
        else:
            left, r = new, parent[2]
        if left is not None and r is not None:
            new = (inner_hash(left[0], r[0]), left, r)
        else:
            new = _join(left, r)
    return new


_update_one = _update_one_c or _update_one_py


def entry_item(subject: str, seq: int, record_hash: bytes, height: int, value: Optional[bytes]) -> Item:
    """The update item (key, leaf hash || key) of the entry whose leaf is
    ``encode([subject, seq, record_hash, height, v])``, given ``value`` = ``encode(v)``
    (for a record's body: the bytes its canonical record holds, ``Record.body_bytes()``)
    or None for v nil. The same item as ``items_of([(subject, leaf_hash(leaf))])`` gives,
    without decoding or encoding the value again (speed only; in C where it was built)."""
    if _entry_item_c is not None:
        item = _entry_item_c(subject, seq, record_hash, height, value)
        if item is not None:
            return item
    head = encode([subject, seq, record_hash, height, None])[:-1]  # without its nil: the value follows
    key = _sha256(subject.encode("utf-8")).digest()
    return key, leaf_hash(head + (b"\xc0" if value is None else value)) + key


def items_of(changes: Iterable[tuple[str, Optional[bytes]]]) -> list[Item]:
    """(subject, leaf hash or None) pairs as sorted update items."""
    out = []
    for subject, h in changes:
        key = _sha256(subject.encode("utf-8")).digest()
        out.append((key, None if h is None else h + key))
    out.sort()
    return out


def path_of(node: Node, subject: str) -> Optional[list[bytes]]:
    """The sibling hashes from the root down to ``subject``'s entry, depth 0 first; None if
    the tree holds no entry for ``subject``."""
    key = _sha256(subject.encode("utf-8")).digest()
    path: list[bytes] = []
    depth = 0
    while node is not None and len(node) == 3:
        if key[depth >> 3] >> (7 - (depth & 7)) & 1:
            path.append(hash_of(node[1]))
            node = node[2]
        else:
            path.append(hash_of(node[2]))
            node = node[1]
        depth += 1
    if node is None:
        return None
    leaves = node[1]
    while len(leaves) > 1:  # inside a pack: the same walk over the nodes it does not keep
        i = _leaf_split(leaves, depth)
        if key[depth >> 3] >> (7 - (depth & 7)) & 1:
            path.append(_set_hash(leaves[:i], depth + 1) if i else EMPTY)
            leaves = leaves[i:]
        else:
            path.append(_set_hash(leaves[i:], depth + 1) if i < len(leaves) else EMPTY)
            leaves = leaves[:i]
        if not leaves:
            return None
        depth += 1
    return path if leaves[0][32:] == key else None


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
