"""Signature checks the node runs (in worker threads) before feeding messages
to the state machine. Pure: no state, no I/O."""

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
