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

from ..encoding import decode, encode, expect_array, expect_bytes, expect_int, expect_list
from ..errors import LocalProtocolError
from ..keys import Domain, PrivateKey
from ..validators import MAX_VALIDATORS
from ..votes import MAX_HEIGHT, MAX_ROUND, MAX_VOTE_BYTES, NIL, PRECOMMIT, PREVOTE, Proposal, Vote
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
    lock_votes: tuple[Vote, ...] = ()  # the 2/3+ prevotes (proof of lock) behind it
    earlier: tuple[Vote, ...] = ()  # our prevote, when the last message is our precommit of the same round

    def to_array(self) -> list:
        return [
            self.height, self.round, self.step, self.payload, self.signature,
            self.lock_round, self.lock_hash, [v.to_array() for v in self.lock_votes],
            [v.to_array() for v in self.earlier],
        ]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @classmethod
    def from_array(cls, value: Any) -> "SignerState":
        h, r, s, p, sig, lr, lh, lv, ea = expect_array(value, 9, "signer_state")
        return cls(
            expect_int(h, "signer_state.height", hi=MAX_HEIGHT),
            expect_int(r, "signer_state.round", lo=-1, hi=MAX_ROUND),
            expect_int(s, "signer_state.step", hi=int(Step.PRECOMMIT)),
            expect_bytes(p, "signer_state.payload", max_len=256),
            expect_bytes(sig, "signer_state.signature", max_len=64),
            expect_int(lr, "signer_state.lock_round", lo=-1, hi=MAX_ROUND),
            expect_bytes(lh, "signer_state.lock_hash", max_len=32),
            tuple(
                Vote.from_array(v, f"signer_state.lock_votes[{i}]")
                for i, v in enumerate(expect_list(lv, "signer_state.lock_votes", max_len=MAX_VALIDATORS))
            ),
            tuple(
                Vote.from_array(v, f"signer_state.earlier[{i}]")
                for i, v in enumerate(expect_list(ea, "signer_state.earlier", max_len=2))
            ),
        )

    @classmethod
    def decode(cls, data: bytes) -> "SignerState":
        return cls.from_array(decode(data, max_size=1024 + MAX_VALIDATORS * MAX_VOTE_BYTES))


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


def signed_message(state: SignerState) -> Vote | Proposal | None:
    """The message ``state`` records as signed last (None if nothing was signed).
    A node that keeps every signer state it persisted can rebuild each of its own
    messages of a height from them (what it resends after a restart)."""
    if not state.signature:
        return None
    fields = decode(state.payload, max_size=MAX_VOTE_BYTES)
    if state.step == int(Step.PROPOSE):
        return Proposal(*fields, state.signature)
    return Vote(*fields, state.signature)


def _next_lock(state: SignerState, height: int) -> tuple[int, bytes, tuple[Vote, ...]]:
    if height == state.height:
        return state.lock_round, state.lock_hash, state.lock_votes
    return -1, NIL, ()


def sign_vote(
    state: SignerState,
    key: PrivateKey,
    chain_id: str,
    vote_type: int,
    height: int,
    round: int,
    block_hash: bytes,
    lock_votes: tuple[Vote, ...] = (),
    *,
    validator: bytes | None = None,
) -> tuple[SignerState, Vote]:
    """Sign a vote if ``state`` allows it. Returns (state to persist first, vote).
    A non-nil precommit is a lock: pass the prevotes that justify it as
    ``lock_votes`` so a restarted node can still prove its lock to peers.
    ``validator``: the branch id the vote is for, when the key's own id is not it
    (a branch whose key rotated keeps its id, §15); the one guard ``state`` covers
    every key of the branch, so no (height, round, step) is signed twice by two keys."""
    step = _STEP_OF_VOTE[vote_type]
    validator = key.branch_id if validator is None else validator
    unsigned = Vote(vote_type, height, round, block_hash, validator)
    payload = unsigned.payload()
    signature = check_hrs(state, height, round, step, payload)
    if signature is None:
        signature = key.sign(Domain.VOTE, chain_id, payload)
    lock_round, lock_hash, locks = _next_lock(state, height)
    if vote_type == PRECOMMIT and block_hash != NIL:
        lock_round, lock_hash, locks = round, block_hash, tuple(lock_votes)
    earlier: tuple[Vote, ...] = ()
    if (state.height, state.round, state.step, step) == (height, round, int(Step.PREVOTE), int(Step.PRECOMMIT)):
        earlier = (Vote(*decode(state.payload, max_size=MAX_VOTE_BYTES), state.signature),)
    elif (state.height, state.round, state.step) == (height, round, step):
        earlier = state.earlier
    new_state = SignerState(height, round, step, payload, signature, lock_round, lock_hash, locks, earlier)
    return new_state, Vote(vote_type, height, round, block_hash, validator, signature)


def sign_proposal(
    state: SignerState, key: PrivateKey, chain_id: str, height: int, round: int, pol_round: int, block_hash: bytes,
    *, proposer: bytes | None = None,
) -> tuple[SignerState, Proposal]:
    """Sign a proposal if ``state`` allows it. Returns (state to persist first, proposal).
    ``proposer``: the branch id, when the key's own id is not it (as ``sign_vote``)."""
    proposer = key.branch_id if proposer is None else proposer
    unsigned = Proposal(height, round, pol_round, block_hash, proposer)
    payload = unsigned.payload()
    signature = check_hrs(state, height, round, int(Step.PROPOSE), payload)
    if signature is None:
        signature = key.sign(Domain.PROPOSAL, chain_id, payload)
    lock_round, lock_hash, locks = _next_lock(state, height)
    new_state = SignerState(height, round, int(Step.PROPOSE), payload, signature, lock_round, lock_hash, locks)
    return new_state, Proposal(height, round, pol_round, block_hash, proposer, signature)
