"""The signature check the node runs on every vote and proposal before feeding
it to the state machine (the state machine itself checks no signature). Pure:
no state, no I/O; the reference node runs it on its event loop (one libsodium
call per message)."""

from __future__ import annotations

from ..errors import ValidationError
from ..validators import ValidatorSet
from ..votes import Proposal, Vote


def check_message(msg: Vote | Proposal, valset: ValidatorSet, chain_id: str) -> None:
    """Raise :class:`ValidationError` (``not_validator``, ``bad_signature``, ...)
    unless ``msg`` is signed by a member of ``valset`` for ``chain_id``."""
    if not isinstance(msg, (Vote, Proposal)):
        raise ValidationError("not a vote or proposal", field="message", reason="type")
    msg.verify(valset, chain_id)
