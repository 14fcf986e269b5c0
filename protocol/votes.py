"""Signed consensus messages that also live in blocks: votes, proposals,
commit certificates and duplicate-vote evidence.

Wire forms (docs/PROTOCOL.md §Votes):

* Vote:       ``[type, height, round, block_hash, validator_id, signature]``;
  ``block_hash`` is 32 bytes, or empty bytes for a nil vote.
  Signed payload: ``encode([type, height, round, block_hash, validator_id])``
  in domain ``vote``.
* Proposal:   ``[height, round, pol_round, block_hash, proposer_id, signature]``;
  ``pol_round`` is -1 when there is no proof-of-lock round.
  Signed payload: the first five fields, domain ``proposal``.
* CommitCertificate: ``[height, round, block_hash, [[validator_id, signature], ...]]``
  with signers in ascending id order; each signature is a PRECOMMIT vote for
  (height, round, block_hash). Valid when signers hold more than 2/3 of power.
* DuplicateVoteEvidence: ``[vote_a, vote_b]``, two votes by one validator for
  the same (height, round, type) with different block hashes, ordered so that
  ``vote_a.block_hash < vote_b.block_hash``.
* DuplicateProposalEvidence: ``["proposal", proposal_a, proposal_b]``, two
  different proposals by one proposer for the same (height, round), ordered by
  their encodings (PROTOCOL.md §9.4). ``decode_evidence`` reads either form.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any

from .encoding import (
    decode,
    encode,
    expect_array,
    expect_bytes,
    expect_int,
    expect_list,
)
from .errors import DecodeError, SignatureError, ValidationError
from .hashing import HASH_SIZE, sha256
from .keys import BRANCH_ID_SIZE, SIGNATURE_SIZE, Domain, PrivateKey, verify_many
from .validators import MAX_VALIDATORS, ValidatorSet

PREVOTE = 1
PRECOMMIT = 2
VOTE_TYPES = (PREVOTE, PRECOMMIT)
MAX_HEIGHT = 2**62
MAX_ROUND = 2**31
MAX_VOTE_BYTES = 256
NIL = b""


def _expect_block_hash(value: Any, field: str, *, allow_nil: bool) -> bytes:
    value = expect_bytes(value, field)
    if value == NIL and allow_nil:
        return value
    if len(value) != HASH_SIZE:
        raise DecodeError(f"expected {HASH_SIZE} bytes", field=field, reason="size")
    return value


@dataclass(frozen=True, slots=True)
class Vote:
    type: int
    height: int
    round: int
    block_hash: bytes  # NIL for a nil vote
    validator: bytes
    signature: bytes = b""

    def payload(self) -> bytes:
        return encode([self.type, self.height, self.round, self.block_hash, self.validator])

    def to_array(self) -> list:
        return [self.type, self.height, self.round, self.block_hash, self.validator, self.signature]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @classmethod
    def from_array(cls, value: Any, field: str = "vote") -> "Vote":
        t, h, r, bh, vid, sig = expect_array(value, 6, field)
        if t not in VOTE_TYPES or type(t) is not int:
            raise DecodeError("vote type must be 1 (prevote) or 2 (precommit)", field=f"{field}.type", reason="type")
        return cls(
            t,
            expect_int(h, f"{field}.height", lo=1, hi=MAX_HEIGHT),
            expect_int(r, f"{field}.round", lo=0, hi=MAX_ROUND),
            _expect_block_hash(bh, f"{field}.block_hash", allow_nil=True),
            expect_bytes(vid, f"{field}.validator", size=BRANCH_ID_SIZE),
            expect_bytes(sig, f"{field}.signature", size=SIGNATURE_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> "Vote":
        return cls.from_array(decode(data, max_size=MAX_VOTE_BYTES))

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, type: int, height: int, round: int, block_hash: bytes, *,
               validator: bytes | None = None) -> "Vote":
        """Sign as the validator of ``key`` (or as ``validator``, whose key ``key`` is
        after a rotation, §15)."""
        validator = validator or key.branch_id
        unsigned = cls(type, height, round, block_hash, validator)
        sig = key.sign(Domain.VOTE, chain_id, unsigned.payload())
        return cls(type, height, round, block_hash, validator, sig)

    def verify(self, valset: ValidatorSet, chain_id: str) -> None:
        """Raise ValidationError unless signed by a member of ``valset``."""
        v = valset.get(self.validator)
        if v is None:
            raise ValidationError("vote from a non-validator", field="vote.validator", reason="not_validator")
        v.public_key.verify(self.signature, Domain.VOTE, chain_id, self.payload())

    @property
    def is_nil(self) -> bool:
        return self.block_hash == NIL


@dataclass(frozen=True, slots=True)
class Proposal:
    height: int
    round: int
    pol_round: int  # -1: none
    block_hash: bytes
    proposer: bytes
    signature: bytes = b""

    def payload(self) -> bytes:
        return encode([self.height, self.round, self.pol_round, self.block_hash, self.proposer])

    def to_array(self) -> list:
        return [self.height, self.round, self.pol_round, self.block_hash, self.proposer, self.signature]

    def encode(self) -> bytes:
        return encode(self.to_array())

    @classmethod
    def from_array(cls, value: Any, field: str = "proposal") -> "Proposal":
        h, r, pr, bh, pid, sig = expect_array(value, 6, field)
        rnd = expect_int(r, f"{field}.round", lo=0, hi=MAX_ROUND)
        pol = expect_int(pr, f"{field}.pol_round", lo=-1, hi=MAX_ROUND)
        if pol >= rnd:
            raise DecodeError("pol_round must be below round", field=f"{field}.pol_round", reason="range")
        return cls(
            expect_int(h, f"{field}.height", lo=1, hi=MAX_HEIGHT),
            rnd,
            pol,
            _expect_block_hash(bh, f"{field}.block_hash", allow_nil=False),
            expect_bytes(pid, f"{field}.proposer", size=BRANCH_ID_SIZE),
            expect_bytes(sig, f"{field}.signature", size=SIGNATURE_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> "Proposal":
        return cls.from_array(decode(data, max_size=MAX_VOTE_BYTES))

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, height: int, round: int, pol_round: int, block_hash: bytes) -> "Proposal":
        unsigned = cls(height, round, pol_round, block_hash, key.branch_id)
        sig = key.sign(Domain.PROPOSAL, chain_id, unsigned.payload())
        return cls(height, round, pol_round, block_hash, key.branch_id, sig)

    def verify(self, valset: ValidatorSet, chain_id: str) -> None:
        v = valset.get(self.proposer)
        if v is None:
            raise ValidationError("proposal from a non-validator", field="proposal.proposer", reason="not_validator")
        v.public_key.verify(self.signature, Domain.PROPOSAL, chain_id, self.payload())


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    height: int
    round: int
    block_hash: bytes
    signatures: tuple[tuple[bytes, bytes], ...]  # (validator_id, signature), ascending id
    _encoded: bytes | None = dataclass_field(default=None, init=False, repr=False, compare=False)  # once known

    def to_array(self) -> list:
        return [self.height, self.round, self.block_hash, [[v, s] for v, s in self.signatures]]

    def encode(self) -> bytes:
        """The canonical bytes (those it was decoded from, which decoding checked are canonical)."""
        data = self._encoded
        if data is None:
            data = encode(self.to_array())
            object.__setattr__(self, "_encoded", data)  # a cache of immutable fields, not a change
        return data

    @classmethod
    def from_array(cls, value: Any, field: str = "certificate") -> "CommitCertificate":
        # Fast path (speed only): a certificate that passes every check below, without
        # building field names; anything else takes the checked path for its precise error.
        if type(value) is list and len(value) == 4:
            h, r, bh, sigs = value
            if (
                type(h) is int and 1 <= h <= MAX_HEIGHT and type(r) is int and 0 <= r <= MAX_ROUND
                and type(bh) is bytes and len(bh) == HASH_SIZE and type(sigs) is list and len(sigs) <= MAX_VALIDATORS
            ):
                pairs = []
                last = b""  # every validator id is 20 bytes, so greater than this
                for item in sigs:
                    if not (type(item) is list and len(item) == 2):
                        break
                    vid, sig = item
                    if not (type(vid) is bytes and len(vid) == BRANCH_ID_SIZE and vid > last
                            and type(sig) is bytes and len(sig) == SIGNATURE_SIZE):
                        break
                    pairs.append((vid, sig))
                    last = vid
                else:
                    return cls(h, r, bh, tuple(pairs))
        return cls._from_array_checked(value, field)

    @classmethod
    def _from_array_checked(cls, value: Any, field: str) -> "CommitCertificate":
        h, r, bh, sigs = expect_array(value, 4, field)
        pairs = []
        for i, item in enumerate(expect_list(sigs, f"{field}.signatures", max_len=MAX_VALIDATORS)):
            vid, sig = expect_array(item, 2, f"{field}.signatures[{i}]")
            pairs.append(
                (
                    expect_bytes(vid, f"{field}.signatures[{i}].validator", size=BRANCH_ID_SIZE),
                    expect_bytes(sig, f"{field}.signatures[{i}].signature", size=SIGNATURE_SIZE),
                )
            )
        for i in range(1, len(pairs)):
            if pairs[i - 1][0] >= pairs[i][0]:
                raise DecodeError(
                    "signers must be in strictly ascending order", field=f"{field}.signatures", reason="order"
                )
        return cls(
            expect_int(h, f"{field}.height", lo=1, hi=MAX_HEIGHT),
            expect_int(r, f"{field}.round", lo=0, hi=MAX_ROUND),
            _expect_block_hash(bh, f"{field}.block_hash", allow_nil=False),
            tuple(pairs),
        )

    @classmethod
    def decode(cls, data: bytes) -> "CommitCertificate":
        cert = cls.from_array(decode(data, max_size=MAX_VALIDATORS * 96 + 64, check_types=False))  # from_array types every leaf
        object.__setattr__(cert, "_encoded", bytes(data))  # decode() checked they are the canonical encoding
        return cert

    @classmethod
    def from_votes(cls, votes: list[Vote]) -> "CommitCertificate":
        """Build a certificate from precommits for one block (caller checked quorum)."""
        first = votes[0]
        sigs = sorted({(v.validator, v.signature) for v in votes})
        for v in votes:
            if (v.type, v.height, v.round, v.block_hash) != (PRECOMMIT, first.height, first.round, first.block_hash):
                raise ValueError("certificate votes must be precommits for one block")
        return cls(first.height, first.round, first.block_hash, tuple(sigs))

    def votes(self) -> list[Vote]:
        return [Vote(PRECOMMIT, self.height, self.round, self.block_hash, vid, sig) for vid, sig in self.signatures]

    def verify(self, valset: ValidatorSet, chain_id: str, *, height: int | None = None, block_hash: bytes | None = None) -> None:
        """Raise ValidationError unless >2/3 of ``valset`` power signed this block."""
        signers, outsider = self._signers(valset, height, block_hash)
        self._conclude(valset, signers, outsider, verify_many(_vote_checks(signers, chain_id)))

    def _signers(self, valset: ValidatorSet, height: int | None, block_hash: bytes | None) -> tuple[list, Vote | None]:
        """The checks before the signatures (raised): the height, the block, the signers'
        order. Returns the signers up to the first that is not a validator, as
        (vote, validator), and that one (None if all are)."""
        if height is not None and self.height != height:
            raise ValidationError(f"certificate is for height {self.height}, not {height}", field="certificate.height", reason="height")
        if block_hash is not None and self.block_hash != block_hash:
            raise ValidationError("certificate is for another block", field="certificate.block_hash", reason="block_hash")
        for i in range(1, len(self.signatures)):  # decode enforces this; a certificate built in memory may not
            if self.signatures[i - 1][0] >= self.signatures[i][0]:
                raise ValidationError(
                    "signers must be unique and in ascending order", field="certificate.signatures", reason="order"
                )
        signers, outsider = [], None
        for vote in self.votes():
            v = valset.get(vote.validator)
            if v is None:
                outsider = vote
                break
            signers.append((vote, v))
        return signers, outsider

    def _conclude(self, valset: ValidatorSet, signers: list, outsider: Vote | None, good: list[bool]) -> None:
        """The checks after the signatures (``good``, one per signer): the first signature
        that fails in signer order, an outsider, then the quorum."""
        power = 0
        for (vote, v), ok in zip(signers, good):
            if not ok:
                raise SignatureError(f"signature of {vote.validator.hex()} does not verify", field="certificate.signatures")
            power += v.power
        if outsider is not None:
            raise ValidationError("signer is not a validator", field="certificate.signatures", reason="not_validator")
        if not valset.has_two_thirds(power):
            raise ValidationError(
                f"signers hold {power} of {valset.total_power} power, need more than 2/3",
                field="certificate.signatures",
                reason="no_quorum",
            )

    @property
    def hash(self) -> bytes:
        return sha256(self.encode())


def _vote_checks(signers: list, chain_id: str) -> list[tuple]:
    return [(v.public_key, vote.signature, Domain.VOTE, chain_id, vote.payload()) for vote, v in signers]


def verify_certificates(items: list[tuple["CommitCertificate", ValidatorSet, int, bytes]], chain_id: str) -> None:
    """``cert.verify(valset, chain_id, height=height, block_hash=block_hash)`` for each of
    ``items`` in order, raising what checking them one after another raises first, with
    the signatures of all checked in one ``verify_many`` call: one release of the GIL for
    a synced range's certificates instead of one per certificate (docs/PERFORMANCE.md,
    "Certificates checked in groups"). Signatures after the first certificate that fails
    before its signatures are not checked."""
    planned, first_error = [], None
    for cert, valset, height, block_hash in items:
        try:
            planned.append((cert, valset, *cert._signers(valset, height, block_hash)))
        except ValidationError as exc:
            first_error = exc
            break
    good = verify_many([check for _, _, signers, _ in planned for check in _vote_checks(signers, chain_id)])
    at = 0
    for cert, valset, signers, outsider in planned:
        cert._conclude(valset, signers, outsider, good[at:at + len(signers)])
        at += len(signers)
    if first_error is not None:
        raise first_error


class _EvidenceBytes:
    """What both evidence forms share: canonical bytes and hash (§9.4)."""

    __slots__ = ()

    def encode(self) -> bytes:
        return encode(self.to_array())

    @property
    def hash(self) -> bytes:
        return sha256(self.encode())


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence(_EvidenceBytes):
    vote_a: Vote
    vote_b: Vote

    def to_array(self) -> list:
        return [self.vote_a.to_array(), self.vote_b.to_array()]

    @classmethod
    def from_votes(cls, a: Vote, b: Vote) -> "DuplicateVoteEvidence":
        return cls(a, b) if a.block_hash < b.block_hash else cls(b, a)

    @classmethod
    def from_array(cls, value: Any, field: str = "evidence") -> "DuplicateVoteEvidence":
        a, b = expect_array(value, 2, field)
        ev = cls(Vote.from_array(a, f"{field}.vote_a"), Vote.from_array(b, f"{field}.vote_b"))
        if not ev.vote_a.block_hash < ev.vote_b.block_hash:
            raise DecodeError("votes must differ and be ordered by block hash", field=field, reason="order")
        return ev

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    def verify(self, valset: ValidatorSet, chain_id: str) -> None:
        """Raise ValidationError unless this proves one validator equivocated."""
        a, b = self.vote_a, self.vote_b
        if (a.type, a.height, a.round, a.validator) != (b.type, b.height, b.round, b.validator):
            raise ValidationError("votes are not for the same height/round/type/validator", field="evidence", reason="mismatch")
        if a.block_hash == b.block_hash:
            raise ValidationError("votes are identical", field="evidence", reason="not_conflicting")
        a.verify(valset, chain_id)
        b.verify(valset, chain_id)


PROPOSAL_EVIDENCE_TAG = "proposal"


@dataclass(frozen=True, slots=True)
class DuplicateProposalEvidence(_EvidenceBytes):
    """Two different signed proposals by one proposer for one (height, round)."""

    proposal_a: Proposal
    proposal_b: Proposal

    def to_array(self) -> list:
        return [PROPOSAL_EVIDENCE_TAG, self.proposal_a.to_array(), self.proposal_b.to_array()]

    @classmethod
    def from_proposals(cls, a: Proposal, b: Proposal) -> "DuplicateProposalEvidence":
        return cls(a, b) if a.encode() < b.encode() else cls(b, a)

    @classmethod
    def from_array(cls, value: Any, field: str = "evidence") -> "DuplicateProposalEvidence":
        tag, a, b = expect_array(value, 3, field)
        if tag != PROPOSAL_EVIDENCE_TAG:
            raise DecodeError(f"expected the tag {PROPOSAL_EVIDENCE_TAG!r}", field=field, reason="type")
        ev = cls(Proposal.from_array(a, f"{field}.proposal_a"), Proposal.from_array(b, f"{field}.proposal_b"))
        if not ev.proposal_a.encode() < ev.proposal_b.encode():
            raise DecodeError("proposals must differ and be ordered by their encodings", field=field, reason="order")
        return ev

    @property
    def validator(self) -> bytes:
        return self.proposal_a.proposer

    @property
    def height(self) -> int:
        return self.proposal_a.height

    def verify(self, valset: ValidatorSet, chain_id: str) -> None:
        """Raise ValidationError unless this proves one proposer equivocated."""
        a, b = self.proposal_a, self.proposal_b
        if (a.height, a.round, a.proposer) != (b.height, b.round, b.proposer):
            raise ValidationError("proposals are not for the same height/round/proposer", field="evidence", reason="mismatch")
        if a == b:
            raise ValidationError("proposals are identical", field="evidence", reason="not_conflicting")
        a.verify(valset, chain_id)
        b.verify(valset, chain_id)


Evidence = DuplicateVoteEvidence | DuplicateProposalEvidence


def decode_evidence(value: Any, field: str = "evidence") -> Evidence:
    """Either evidence form: a 3-array tagged "proposal", else a pair of votes."""
    if type(value) is list and len(value) == 3 and value[0] == PROPOSAL_EVIDENCE_TAG:
        return DuplicateProposalEvidence.from_array(value, field)
    return DuplicateVoteEvidence.from_array(value, field)
