"""Key files on disk: the branch's Ed25519 key, created 0600.

Format (JSON)::

    {"type": "ed25519", "seed": "<64 hex>", "public_key": "<64 hex>", "branch_id": "<40 hex>"}

plus, in the file of a key that replaced the branch's first one (a rotation,
PROTOCOL.md §15), ``"rotated": true``: the branch keeps the id its first key
gave it, so ``branch_id`` is not derived from this seed. In any other file the
branch id (if given) must be the one the seed derives. Key files written before
rotations existed load as they always did.

Loading checks every field, its type and size, and that the public key matches
the seed; a key file is hostile input, so every defect is one
:class:`KeyFileError` naming the file and the field. A file readable by group
or others is loaded with a warning, because the key signs votes and records for
the branch.

A node's home holds, besides ``node_key.json`` (the key in force), during a
rotation ``node_key.pending.json`` (the next key, not yet on the chain), and
after one ``node_key.retired-H.json`` (the key the rotation committed at
height H replaced). node/keyring.py says how the node uses them.
"""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ProtocolError
from protocol.keys import BRANCH_ID_SIZE, PrivateKey

from .errors import StorageDamaged
from .fsutil import write_private_atomic

log = logging.getLogger("branchnet.keys")
MAX_KEY_FILE_BYTES = 4096


class KeyFileError(StorageDamaged):
    """A key file is missing, unreadable or malformed. The message says which and why."""


@dataclass(frozen=True, slots=True)
class BranchKey:
    """A signing key and the branch it signs for. ``rotated``: the branch id is not the
    one the key derives (the key replaced the branch's first key)."""

    key: PrivateKey
    branch_id: bytes

    @property
    def rotated(self) -> bool:
        return self.branch_id != self.key.branch_id

    @property
    def public_key(self):
        return self.key.public_key


def save_key(path: Path, key: PrivateKey, *, branch_id: bytes | None = None, overwrite: bool = False) -> None:
    """Write a key file atomically and durably (temporary file, fsync, rename, fsync of
    the directory), mode 0600. ``branch_id``: the branch it signs for, when that is
    not the id the key derives (a rotated key). Raises KeyFileError if ``path``
    exists and not ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    write_private_atomic(path, key_file_bytes(key, branch_id=branch_id))


def key_file_bytes(key: PrivateKey, *, branch_id: bytes | None = None) -> bytes:
    bid = key.branch_id if branch_id is None else branch_id
    if type(bid) is not bytes or len(bid) != BRANCH_ID_SIZE:
        raise ValueError("branch_id must be 20 bytes")
    doc = {"type": "ed25519", "seed": key.seed().hex(), "public_key": key.public_key.hex(), "branch_id": bid.hex()}
    if bid != key.branch_id:
        doc["rotated"] = True
    return (json.dumps(doc, indent=2) + "\n").encode()


def load_key(path: Path) -> PrivateKey:
    """The signing key of a key file (see :func:`load_branch_key`)."""
    return load_branch_key(path).key


def load_branch_key(path: Path) -> BranchKey:
    """Load a key file. Raises KeyFileError; warns if the file is group/world readable."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        if st.st_size > MAX_KEY_FILE_BYTES:
            raise KeyFileError(f"{path}: too large to be a key file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file (create one with `branchnet init`)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read ({exc.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is accessible by group/others (mode %o); run: chmod 600 %s", path, st.st_mode & 0o777, path)
    return parse_key_file(data, str(path))


def parse_key_file(data: bytes, where: str) -> BranchKey:
    """A key file's content (``where`` names it in errors). Raises KeyFileError."""
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{where}: too large to be a key file")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise KeyFileError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") != "ed25519":
        raise KeyFileError(f'{where}: expected an object with "type": "ed25519"')
    seed = doc.get("seed")
    try:
        if type(seed) is not str or len(seed) != 64:
            raise ValueError
        key = PrivateKey.from_seed(bytes.fromhex(seed))
    except (ValueError, TypeError, ProtocolError):
        raise KeyFileError(f"{where}: seed must be 64 hex characters") from None
    if "public_key" in doc and doc["public_key"] != key.public_key.hex():
        raise KeyFileError(f"{where}: public_key does not match the seed")
    rotated = doc.get("rotated", False)
    if type(rotated) is not bool:
        raise KeyFileError(f"{where}: rotated must be true or false")
    branch_id = key.branch_id
    if "branch_id" in doc:
        value = doc["branch_id"]
        try:
            if type(value) is not str or len(value) != 2 * BRANCH_ID_SIZE:
                raise ValueError
            branch_id = bytes.fromhex(value)
        except ValueError:
            raise KeyFileError(f"{where}: branch_id must be {2 * BRANCH_ID_SIZE} hex characters") from None
        if branch_id != key.branch_id and not rotated:
            raise KeyFileError(f'{where}: branch_id does not match the seed (the file of a rotated key says "rotated": true)')
    elif rotated:
        raise KeyFileError(f"{where}: a rotated key file must name its branch_id")
    if rotated and branch_id == key.branch_id:
        raise KeyFileError(f'{where}: "rotated": true, but branch_id is the one the seed derives')
    return BranchKey(key, branch_id)
