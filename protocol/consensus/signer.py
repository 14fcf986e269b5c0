"""Double-sign protection: a pure guard over an immutable :class:`SignerState`.

CometBFT's ``privval`` rule (``CheckHRS``): never sign anything at a
(height, round, step) below the last one signed; at the same (height, round,
step) only re-release the *identical* message (same payload, same signature).

The node must persist the returned ``SignerState`` durably (write + fsync,
atomically) *before* it releases the signature to the network, and must load it
again on restart. The state also carries the lock (the last non-nil precommit
of the height), so a restarted node cannot forget what it is locked on — the
paper's safety argument needs that, and we keep no other write-ahead log.

Raises :class:`DoubleSignError` (a :class:`LocalProtocolError`: our own code
asked for something unsafe) with reason ``step_back`` or ``conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..encoding import decode, encode, expect_array, expect_bytes, expect_int
from ..errors import LocalProtocolError
from ..keys import Domain, PrivateKey
from ..votes import MAX_HEIGHT, MAX_ROUND, NIL, PRECOMMIT, PREVOTE, Proposal, Vote
from .steps import Step

_STEP_OF_VOTE = {PREVOTE: int(Step.PREVOTE), PRECOMMIT: int(Step.PRECOMMIT)}


class DoubleSignError(LocalProtocolError):
    reason = "double_sign"


@dataclass(frozen=True, slots=True)
class SignerState:
    """Last thing signed, plus the lock it implies. ``round == -1``: nothing yet."""

    height: int = 0
    round: int = -1
    step: int = 0
    payload: bytes = b""  # exact signed payload of the last message
    signature: bytes = b""
    lock_round: int = -1  # last non-nil precommit at ``height`` (-1: none)
    lock_hash: bytes = NIL

    def to_array(self) -> list:
        return [self.height, self.round, self.step, self.payload, self.signature, self.lock_round, self.lock_hash]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @classmethod
    def from_array(cls, value: Any) -> "SignerState":
        h, r, s, p, sig, lr, lh = expect_array(value, 7, "signer_state")
        return cls(
            expect_int(h, "signer_state.height", hi=MAX_HEIGHT),
            expect_int(r, "signer_state.round", lo=-1, hi=MAX_ROUND),
            expect_int(s, "signer_state.step", hi=int(Step.PRECOMMIT)),
            expect_bytes(p, "signer_state.payload", max_len=256),
            expect_bytes(sig, "signer_state.signature", max_len=64),
            expect_int(lr, "signer_state.lock_round", lo=-1, hi=MAX_ROUND),
            expect_bytes(lh, "signer_state.lock_hash", max_len=32),
        )

    @classmethod
    def decode(cls, data: bytes) -> "SignerState":
        return cls.from_array(decode(data, max_size=512))


def check_hrs(state: SignerState, height: int, round: int, step: int, payload: bytes) -> bytes | None:
    """Return the stored signature if this exact message was the last one
    signed, ``None`` if signing it is safe, or raise :class:`DoubleSignError`."""
    last = (state.height, state.round, state.step)
    want = (height, round, step)
    if want < last:
        raise DoubleSignError(f"refusing to step back from {last} to {want}", field="signer", reason="step_back")
    if want == last:
        if payload == state.payload:
            return state.signature
        raise DoubleSignError(f"conflicting message at {want}", field="signer", reason="conflict")
    return None


def _next_lock(state: SignerState, height: int) -> tuple[int, bytes]:
    if height == state.height:
        return state.lock_round, state.lock_hash
    return -1, NIL


def sign_vote(
    state: SignerState, key: PrivateKey, chain_id: str, vote_type: int, height: int, round: int, block_hash: bytes
) -> tuple[SignerState, Vote]:
    """Sign a vote if ``state`` allows it. Returns (state to persist first, vote)."""
    step = _STEP_OF_VOTE[vote_type]
    unsigned = Vote(vote_type, height, round, block_hash, key.branch_id)
    payload = unsigned.payload()
    signature = check_hrs(state, height, round, step, payload)
    if signature is None:
        signature = key.sign(Domain.VOTE, chain_id, payload)
    lock_round, lock_hash = _next_lock(state, height)
    if vote_type == PRECOMMIT and block_hash != NIL:
        lock_round, lock_hash = round, block_hash
    new_state = SignerState(height, round, step, payload, signature, lock_round, lock_hash)
    return new_state, Vote(vote_type, height, round, block_hash, key.branch_id, signature)


def sign_proposal(
    state: SignerState, key: PrivateKey, chain_id: str, height: int, round: int, pol_round: int, block_hash: bytes
) -> tuple[SignerState, Proposal]:
    """Sign a proposal if ``state`` allows it. Returns (state to persist first, proposal)."""
    unsigned = Proposal(height, round, pol_round, block_hash, key.branch_id)
    payload = unsigned.payload()
    signature = check_hrs(state, height, round, int(Step.PROPOSE), payload)
    if signature is None:
        signature = key.sign(Domain.PROPOSAL, chain_id, payload)
    lock_round, lock_hash = _next_lock(state, height)
    new_state = SignerState(height, round, int(Step.PROPOSE), payload, signature, lock_round, lock_hash)
    return new_state, Proposal(height, round, pol_round, block_hash, key.branch_id, signature)
