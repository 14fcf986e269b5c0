"""Persistence of the consensus signer state (never double-sign).

The consensus state machine hands every signed proposal or vote to the node
together with the :class:`SignerState` it implies. :meth:`SignerStore.save`
writes it atomically (tmp file, fsync, rename, fsync dir; mode 0600) and only
then may the message leave the node. On start the node loads the last state,
so after a crash at any instant it refuses to sign anything conflicting.
"""

from __future__ import annotations

from pathlib import Path

from protocol.consensus.signer import SignerState
from protocol.errors import ProtocolError

from .errors import StorageDamaged
from .fsutil import write_private_atomic


class SignerStateCorrupted(StorageDamaged):
    """The signer state does not decode: signing could double-sign, so the node stops."""


class SignerStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.writes = 0

    def load(self) -> SignerState:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SignerState()
        try:
            return SignerState.decode(data)
        except ProtocolError as exc:
            raise SignerStateCorrupted(
                f"{self.path} is damaged ({exc}). Refusing to sign: a wrong signer state could double-sign.\n"
                f"  Only if this validator has not signed anything at the current height, remove the file and restart."
            ) from None

    def save(self, state: SignerState) -> None:
        write_private_atomic(self.path, state.encode())
        self.writes += 1
