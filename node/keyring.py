"""The branch's keys in a node home, and how a node rotates its own key.

Files (node/keyfile.py has their format):

* ``node_key.json`` — the key in force as far as this node has seen;
* ``node_key.pending.json`` — while a rotation waits to commit: the next key
  (its file names the branch id, ``"rotated": true``);
* ``node_key.retired-H.json`` — the key that a rotation committed at height
  ``H`` replaced.

Theory of operation
===================

The chain decides which key is a branch's: the registry's key for the branch
id (PROTOCOL.md §15.3). The node never guesses: whatever the files say, it
signs a record with the one of its keys the committed registry holds now
(:meth:`NodeKeys.record_key`), and each consensus height with the one the
validator set of that height holds (the state machine picks it at
StartHeight). A ``branch.key`` committed at height ``H`` takes effect for
records at once (the same block on), and for consensus from ``H + 2`` (the set
signing ``H + 1`` was announced before ``H``): so the old key signs the votes
of ``H + 1`` and the new key those of ``H + 2`` on — never both for one
height, and one signer state (the consensus WAL) guards both.

Rotating (``branchnet keys rotate`` → ``POST /v1/keys/rotate``):

1. the CLI writes the new key to ``node_key.pending.json`` (temporary file,
   fsync, rename, fsync of the directory);
2. the node loads it, waits until none of its own records is still pending
   (one signed by the old key could otherwise land after the rotation and
   never commit), and submits the ``branch.key`` record signed by the key in
   force. While that record is pending, the node signs no other record
   (``key_rotation``, retry later): nothing it signs can fall on the wrong
   side of the rotation;
3. when a block commits it, the registry holds the new key: the node promotes
   the files (:meth:`NodeKeys.promote`: a hard link ``node_key.json`` →
   ``node_key.retired-H.json``, fsync, then ``node_key.pending.json`` renamed
   over ``node_key.json``, fsync) and from then on signs records with the new
   key; its libp2p identity moves to the new key by an in-process restart of
   the node (the allowlists of its peers follow the registry's keys, §11.2).

A crash at any instant leaves a home :meth:`NodeKeys.reconcile` makes
consistent on start: a pending key the registry does not hold yet stays
pending (the ``branch.key`` record, durable in the pending table, is sent
again); one the registry holds is promoted (each step of the promotion is
idempotent). Retired keys stay on disk and are always loaded: the old key signs
height ``H + 1``, and a store restored from before the rotation holds it again.
The operator may delete them once the chain is two heights past the rotation
(``keys show`` lists them).

Peers admit a member's old peer id for ``ROTATION_GRACE_HEIGHTS`` after its own
``branch.key`` commits (node/node.py; kept in their stores across restarts), long enough for its node to learn of that
block under the old identity. A node cut off for all of that window is refused
under both ids; another branch's operator lets it in with ``branchnet observers
allow OLD_PEER_ID``, it syncs, switches, and the entry can be revoked.

A key replaced by a passed ``rotate_key`` proposal (the old one lost or leaked)
is installed offline with ``branchnet keys install`` (node/cli/keyrotate.py): it
takes only the key the registry of the node's store holds, and installs it by
the same :meth:`NodeKeys.promote` (pending, then current; the old key retired at
the height the registry changed).

Errors: :class:`node.keyfile.KeyFileError` for a missing or damaged file, or
a pending or retired key of another branch.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from protocol.keys import PrivateKey

from .config import Home
from .fsutil import fsync_path
from .keyfile import BranchKey, KeyFileError, load_branch_key, save_key

log = logging.getLogger("branchnet.keys")
_RETIRED = re.compile(r"node_key\.retired-([1-9][0-9]{0,18})\.json")


class NodeKeys:
    """The keys of one home (see the module docstring). Not thread-safe: the node's trio
    thread owns it."""

    def __init__(self, home: Home):
        self.home = home
        current = load_branch_key(home.key)
        self.branch_id = current.branch_id
        self.current: PrivateKey = current.key
        self.pending: PrivateKey | None = self._load_same_branch(home.pending_key) if home.pending_key.exists() else None
        self.retired: dict[int, PrivateKey] = {}
        for path in sorted(home.path.glob("node_key.retired-*.json")):
            m = _RETIRED.fullmatch(path.name)
            if m is None:
                log.warning("ignoring %s: not a retired key file name (node_key.retired-HEIGHT.json)", path)
                continue
            self.retired[int(m.group(1))] = self._load_same_branch(path)

    def _load_same_branch(self, path: Path) -> PrivateKey:
        loaded: BranchKey = load_branch_key(path)
        if loaded.branch_id != self.branch_id:
            raise KeyFileError(f"{path}: a key of branch {loaded.branch_id.hex()}, not of this node's branch "
                               f"{self.branch_id.hex()} ({self.home.key}); move it out of the home")
        return loaded.key

    # ------------------------------------------------------------ which key
    def all_keys(self) -> list[PrivateKey]:
        """Every key of the branch this home holds: current, pending, retired (newest first)."""
        keys = [self.current] + ([self.pending] if self.pending is not None else [])
        return keys + [self.retired[h] for h in sorted(self.retired, reverse=True)]

    def key_for(self, public_key_raw: bytes) -> PrivateKey | None:
        for key in self.all_keys():
            if key.public_key.raw == public_key_raw:
                return key
        return None

    def registry_key(self, state: Any) -> bytes | None:
        """The branch's public key in the registry of ``state`` (None: not a member)."""
        member = state.gov.registry.members.get(self.branch_id)
        return None if member is None else member.public_key.raw

    def record_key(self, state: Any) -> PrivateKey | None:
        """The key that signs this branch's records on top of ``state``: the one the
        registry holds (None: not a member, or a key this home does not have)."""
        raw = self.registry_key(state)
        return None if raw is None else self.key_for(raw)

    # ------------------------------------------------------------ rotating
    def write_pending(self, key: PrivateKey) -> None:
        """Keep ``key`` as the pending key, durably (write, fsync, rename, fsync). Raises
        KeyFileError if a different pending key is there already."""
        if self.pending is not None:
            if self.pending.public_key == key.public_key:
                return
            raise KeyFileError(f"{self.home.pending_key}: another rotation is pending (key {self.pending.public_key.hex()})")
        save_key(self.home.pending_key, key, branch_id=self.branch_id)
        self.pending = key

    def load_pending(self) -> PrivateKey | None:
        """(Re)read ``node_key.pending.json`` (the CLI writes it while the node runs)."""
        path = self.home.pending_key
        self.pending = self._load_same_branch(path) if path.exists() else None
        return self.pending

    def reconcile(self, state: Any) -> bool:
        """Make the files agree with the committed ``state``: promote the pending key if
        the registry holds it. Returns True if it promoted. Call at start and after
        every commit."""
        if self.pending is None or self.registry_key(state) != self.pending.public_key.raw:
            return False
        try:
            self.promote(_changed_at(state, self.branch_id))
        except OSError as exc:  # a full or failing disk: stop, the next start finishes the promotion
            raise KeyFileError(f"{self.home.path}: cannot install the new key committed on the chain "
                               f"({exc.strerror or exc}); fix the disk and start the node again") from exc
        return True

    def promote(self, height: int) -> None:
        """The rotation committed at ``height``: the current key becomes
        ``node_key.retired-height.json`` and the pending key the current one. Crash-safe:
        each step is durable before the next, and running it again finishes it."""
        assert self.pending is not None
        home = self.home
        retired = home.retired_key(height)
        try:
            os.link(home.key, retired)
        except FileExistsError:  # a promotion a crash interrupted linked it already
            if load_branch_key(retired).key.public_key != self.current.public_key:
                raise KeyFileError(f"{retired}: holds another key; move it aside and restart") from None
        fsync_path(home.path)
        os.replace(home.pending_key, home.key)
        fsync_path(home.path)
        log.info("key rotation committed at height %d: signing with key %s; the old key is kept as %s",
                 height, self.pending.public_key.hex(), retired)
        self.retired[height] = self.current
        self.current, self.pending = self.pending, None


def _changed_at(state: Any, branch_id: bytes) -> int:
    """The height at which the registry row of ``branch_id`` last changed (its system entry)."""
    from protocol.governance import SYSTEM_ID

    entry = state.entry(SYSTEM_ID, f"member/{branch_id.hex()}")
    return entry.height if entry is not None and entry.height > 0 else max(state.height, 1)
