"""Key files on disk: the branch's Ed25519 key, created 0600.

Format (JSON)::

    {"type": "ed25519", "seed": "<64 hex>", "public_key": "<64 hex>", "branch_id": "<40 hex>"}

Loading checks every field and that the public key and branch id match the
seed; a file readable by group or others is loaded with a warning (and counted),
because the key signs votes and records for the branch.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

from protocol.errors import ProtocolError
from protocol.keys import PrivateKey

from .errors import StorageDamaged
from .fsutil import write_private_atomic

log = logging.getLogger("branchnet.keys")


class KeyFileError(StorageDamaged):
    """A key file is missing, unreadable or malformed. The message says which and why."""


def save_key(path: Path, key: PrivateKey, *, overwrite: bool = False) -> None:
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    doc = {
        "type": "ed25519",
        "seed": key.seed().hex(),
        "public_key": key.public_key.hex(),
        "branch_id": key.branch_id.hex(),
    }
    write_private_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())


def load_key(path: Path) -> PrivateKey:
    """Load a key file. Raises KeyFileError; warns if the file is group/world readable."""
    path = Path(path)
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file (create one with `branchnet init`)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read ({exc.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is accessible by group/others (mode %o); run: chmod 600 %s", path, st.st_mode & 0o777, path)
    if len(data) > 4096:
        raise KeyFileError(f"{path}: too large to be a key file")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") != "ed25519":
        raise KeyFileError(f'{path}: expected an object with "type": "ed25519"')
    try:
        key = PrivateKey.from_seed(bytes.fromhex(doc.get("seed", "")))
    except (ValueError, TypeError, ProtocolError):
        raise KeyFileError(f"{path}: seed must be 64 hex characters") from None
    if doc.get("public_key", key.public_key.hex()) != key.public_key.hex():
        raise KeyFileError(f"{path}: public_key does not match the seed")
    if doc.get("branch_id", key.branch_id.hex()) != key.branch_id.hex():
        raise KeyFileError(f"{path}: branch_id does not match the seed")
    return key
