"""Tendermint consensus for one validator, as a pure state machine.

Theory of operation
===================

This file owns every transition rule. It implements Algorithm 1 of Buchman,
Kwon, Milosevic, "The latest gossip on BFT consensus" (arXiv 1807.04938);
comments ``# L22`` etc. cite that algorithm's lines.

* ``ConsensusState.apply(event) -> list[Action]`` is the only entry point. It
  does no I/O, reads no clock (events carry ``now``) and is deterministic: the
  same events in the same order give the same actions.
* Values are opaque 32-byte block hashes. The node builds blocks
  (:class:`ProposeBlock` -> :class:`BlockBuilt`) and checks them
  (:class:`RequestBlock` -> :class:`BlockReceived`, the paper's valid(v)).
* After every input the "upon" rules are evaluated until none fires
  (:meth:`_run_rules`): L49 decide, L55 round skip, then the rules of the
  current round and step (L22, L28, L34, L36, L44, L47). "For the first time"
  rules are guarded by per-round flags reset in StartRound (L11).
* Our own proposals and votes are counted directly when signed; the node need
  not loop them back (if it does, they count as duplicates).
* Signing goes through :mod:`.signer`: a refused signature (a restart must
  not step back) leaves the step transition in place but sends nothing, and is
  counted as ``signer_refused``.
* Keys: a branch keeps its id when its key rotates (PROTOCOL.md §15), and the
  validator set of a height says which key signs it. ``StartHeight`` picks
  that one key among ours (:meth:`ConsensusState.add_key`) for the whole
  height, so no height is ever signed by two keys; with no key of the set's
  we follow and sign nothing (``no_signing_key``). One signer state guards
  every key of the branch.
* Untrusted input is checked (membership, shape, height, round, proposer) and
  dropped with a counted reason — ``self.rejected[reason]`` and a
  :class:`RejectedInput` action — without changing state. Signatures are *not*
  checked here; the node runs :func:`.check.check_message` first.
* Messages for the next ``max_height_lead`` heights are buffered (bounded) and
  replayed on :class:`StartHeight`. Messages for rounds ahead of ours (up to
  ``max_round_lead``) are kept in the vote keeper; f+1 power in a later round
  makes us skip to it (L55).
* Deviations from the paper, all on the liveness side:
  - L49 needs 2f+1 precommits for id(v) and valid(v); it does not also require
    the PROPOSAL message, because v *is* its hash: a node that missed the
    proposal fetches the block by hash and still decides.
  - The proposer also schedules the propose timeout (getValue() is an
    asynchronous request to the node that might never be answered).
  - L57 (timeoutPropose) fires at most twice per round: if the round's proposal
    has arrived but valid(v) is not known yet (its block is being fetched or
    checked), the first firing schedules the same timeout once more instead of
    prevoting nil. The paper evaluates valid(v) on receipt; a node needs time
    for it, and on a starved machine (sixteen validators and 48 observers on two
    cores, issue 15) a block of a few hundred records took longer to fetch and
    check than the propose timeout, so rounds failed one after another, each
    proposal larger than the last. Only a prevote waits; no rule changes.
  - A re-proposal (L16, ``validRound`` ≥ 0) carries the prevotes of
    ``validRound`` for its value that justified it
    (``BroadcastProposal.pol_votes``): peers need them for L28. The paper
    assumes every message a correct process received reaches every correct
    process within Δ of GST; an equivocator's prevote sent to only some peers
    does not, so a proposer could be the only correct process holding its
    polka, and every proposal of its value failed for want of one vote
    (simulator seed 9014: ten validators, three Byzantine, no height for 60 s
    after the network healed).
  - On a restart at the same height, lockedValue/lockedRound are restored from
    the signer state (the last non-nil precommit), validValue/validRound are
    set to them, the prevotes that justified the lock (persisted with it) are
    counted again, the round starts at the signer's last round and the last
    signed message is re-released. Without that a crash could unlock a node
    (unsafe) or leave a lock nobody can prove (a livelock). The node may also
    hand back every message it signed at that height (``signed_before``):
    they are counted again, so peers still in an earlier round can be given
    the node's votes of that round — if a crash lost them in flight, nobody
    else holds them, and those peers would wait for them forever.
"""

from __future__ import annotations

from ..encoding import decode
from ..errors import LocalProtocolError
from ..keys import PrivateKey
from ..validators import ValidatorSet
from ..votes import NIL, PRECOMMIT, PREVOTE, CommitCertificate, DuplicateProposalEvidence, Proposal, Vote
from .actions import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ProposeBlock,
    RecordEvidence,
    RejectedInput,
    RequestBlock,
    ScheduleTimeout,
)
from .events import BlockBuilt, BlockReceived, Event, ProposalReceived, StartHeight, TimeoutFired, VoteReceived
from .params import ConsensusParams
from .proposer import proposer
from .signer import DoubleSignError, SignerState, sign_proposal, sign_vote
from .steps import Step
from .vote_keeper import AddResult, VoteKeeper

_HASH_SIZE = 32
_SIG_SIZE = 64
_ID_SIZE = 20


class ConsensusState:
    """One validator's consensus state. Not thread-safe: one task owns it."""

    vote_keeper_class = VoteKeeper
    propose_grace = True  # L57's second wait (see the deviations above); False: the machine before it (tests)

    def __init__(
        self,
        key: PrivateKey,
        chain_id: str,
        params: ConsensusParams | None = None,
        signer_state: SignerState | None = None,
        signed_before: tuple[Vote | Proposal, ...] = (),
        *,
        branch_id: bytes | None = None,
    ):
        # A branch keeps its id when its key rotates (§15): ``branch_id`` is ours, and each
        # height is signed by the one key the validator set of that height holds for it.
        self.me = key.branch_id if branch_id is None else branch_id
        self.keys: dict[bytes, PrivateKey] = {key.public_key.raw: key}  # every key we may sign with, by public key
        self.key: PrivateKey | None = key  # the key signing this height (StartHeight picks it); None: we have no key of the set
        self.chain_id = chain_id
        self.params = params or ConsensusParams()
        self.signer_state = signer_state or SignerState()
        # our own messages of the signer state's height, signed before a restart
        self._signed_before = tuple(m for m in signed_before if m.height == self.signer_state.height)
        self.now = 0
        self.height = 0
        self.round = 0
        self.step = Step.NEW_HEIGHT
        self.valset: ValidatorSet | None = None
        self.locked_round = -1
        self.locked_value: bytes | None = None
        self.valid_round = -1
        self.valid_value: bytes | None = None
        self.votes: VoteKeeper | None = None
        self.proposals: dict[int, Proposal] = {}
        self._proposal_evidence: set[int] = set()  # rounds whose conflicting proposals were reported
        self.block_valid: dict[bytes, bool] = {}
        self.decision: bytes | None = None
        #: dropped inputs by reason (peer's fault) plus ``signer_refused``
        self.rejected: dict[str, int] = {}
        self.last_commit: CommitCertificate | None = None
        self._last_commit_votes: dict[bytes, Vote] = {}
        self._last_valset: ValidatorSet | None = None
        self._requested: set[bytes] = set()
        self._future: dict[int, list[Event]] = {}
        self._awaiting_block_round = -1
        self._grace_taken = False  # L57's second wait was taken in this round (see _on_timeout)
        self._prevote_timeout_scheduled = False  # L34 "for the first time"
        self._precommit_timeout_scheduled = False  # L47 "for the first time"
        self._polka_seen = False  # L36 "for the first time"
        self._actions: list[Action] = []

    # ------------------------------------------------------------------ API

    def add_key(self, key: PrivateKey) -> None:
        """Another key of this branch (a rotation, §15): it signs the heights whose set holds
        it, from the next StartHeight on. The key of the height in progress does not change."""
        self.keys[key.public_key.raw] = key

    def apply(self, event: Event) -> list[Action]:
        """Feed one event; return the actions to carry out, in order.
        Raises LocalProtocolError only for the node's own misuse (e.g. a
        StartHeight that does not move forward, an unknown event type)."""
        self._actions = actions = []
        self.now = event.now
        self._dispatch(event)
        self._run_rules()
        return actions

    def last_commit_certificate(self) -> CommitCertificate | None:
        """Certificate of the last decision including late precommits."""
        if self.last_commit is None:
            return None
        return CommitCertificate.from_votes(list(self._last_commit_votes.values()))

    def last_commit_votes(self) -> tuple[ValidatorSet | None, list[Vote]]:
        """The validator set of the last decided height and the precommits for its
        decision held so far (late ones included): what a peer one height behind needs."""
        return self._last_valset, list(self._last_commit_votes.values())

    def proposer(self, height: int, round: int) -> bytes:
        assert self.valset is not None
        return proposer(self.valset, height, round)

    # ------------------------------------------------------------- dispatch

    def _dispatch(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise LocalProtocolError(f"unknown event {type(event).__name__}", field="event")
        handler(self, event)

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self._actions.append(RejectedInput(reason))

    def _buffer(self, event: Event, height: int) -> None:
        if height > self.height + self.params.max_height_lead:
            return self._reject("height_too_far")
        pending = self._future.setdefault(height, [])
        if len(pending) >= self.params.max_buffered_per_height:
            return self._reject("buffer_full")
        pending.append(event)

    def _on_start_height(self, ev: StartHeight) -> None:
        if type(ev.height) is not int or ev.height <= self.height:
            raise LocalProtocolError(f"StartHeight({ev.height}) does not move past {self.height}", field="height")
        if not isinstance(ev.valset, ValidatorSet):
            raise LocalProtocolError("StartHeight needs a ValidatorSet", field="valset")
        self.height = ev.height
        self.valset = ev.valset
        mine = ev.valset.get(self.me)
        if mine is not None:  # outside the set we sign nothing (the key stays for subclasses that do)
            self.key = self.keys.get(mine.public_key.raw)  # one key for the whole height; None: not one of ours
        self.votes = self.vote_keeper_class(ev.valset, ev.height)
        self.proposals = {}
        self._proposal_evidence = set()
        self.block_valid = {}
        self._requested = set()
        self.decision = None
        self.locked_round, self.locked_value = -1, None  # L53
        self.valid_round, self.valid_value = -1, None
        start_round = 0
        s = self.signer_state
        if s.height == ev.height:  # restarted mid-height: keep the lock we signed
            start_round = max(s.round, 0)
            if s.lock_round >= 0:
                self.locked_round, self.locked_value = s.lock_round, s.lock_hash
                self.valid_round, self.valid_value = s.lock_round, s.lock_hash
                self.block_valid[s.lock_hash] = True  # we checked it before precommitting
                for vote in s.lock_votes:  # the proof of lock, so peers can be shown it
                    if vote.validator in ev.valset and vote.height == ev.height:
                        self.votes.add(vote)
            for msg in self._signed_before:  # every round's own messages: peers still in an
                if isinstance(msg, Vote):    # earlier round may need them, and nobody else has them
                    self.votes.add(msg)
                elif msg.round < start_round:
                    self.proposals.setdefault(msg.round, msg)
        self._start_round(start_round)
        if s.height == ev.height and s.round == start_round and s.signature:
            self._resume_signed(s)
        for h in [h for h in self._future if h <= ev.height]:
            pending = self._future.pop(h)
            if h == ev.height:
                for buffered in pending:
                    self._dispatch(buffered)
                    self._run_rules()

    def _on_proposal(self, ev: ProposalReceived) -> None:
        p = ev.proposal
        if not isinstance(p, Proposal) or type(p.height) is not int or type(p.round) is not int:
            return self._reject("malformed")
        if p.height > self.height:
            return self._buffer(ev, p.height)
        if p.height < self.height or self.step == Step.COMMIT:
            return self._reject("stale_height")
        if (
            p.round < 0
            or type(p.pol_round) is not int
            or not -1 <= p.pol_round < p.round
            or type(p.block_hash) is not bytes
            or len(p.block_hash) != _HASH_SIZE
            or type(p.signature) is not bytes
            or len(p.signature) != _SIG_SIZE
            or type(p.proposer) is not bytes
        ):
            return self._reject("malformed")
        if p.proposer not in self.valset:
            return self._reject("not_validator")
        if p.round > self.round + self.params.max_round_lead:
            return self._reject("round_too_far")
        if p.proposer != proposer(self.valset, p.height, p.round):
            return self._reject("wrong_proposer")
        existing = self.proposals.get(p.round)
        if existing is not None:
            if existing != p and p.round not in self._proposal_evidence:
                self._proposal_evidence.add(p.round)  # the proposer equivocated: one evidence per round
                self._actions.append(RecordEvidence(DuplicateProposalEvidence.from_proposals(existing, p)))
            return self._reject("duplicate_proposal" if existing == p else "conflicting_proposal")
        self.proposals[p.round] = p
        self._need_block(p.block_hash)

    def _on_vote(self, ev: VoteReceived) -> None:
        v = ev.vote
        if not isinstance(v, Vote) or type(v.height) is not int or type(v.round) is not int:
            return self._reject("malformed")
        if v.height > self.height:
            return self._buffer(ev, v.height)
        if (
            v.type not in (PREVOTE, PRECOMMIT)
            or v.round < 0
            or type(v.block_hash) is not bytes
            or len(v.block_hash) not in (0, _HASH_SIZE)
            or type(v.signature) is not bytes
            or len(v.signature) != _SIG_SIZE
            or type(v.validator) is not bytes
        ):
            return self._reject("malformed")
        if self.last_commit is not None and v.height == self.last_commit.height:
            return self._on_late_precommit(v)
        if v.height < self.height:
            return self._reject("stale_height")
        if v.validator not in self.valset:
            return self._reject("not_validator")
        if v.round > self.round + self.params.max_round_lead:
            return self._reject("round_too_far")
        result, evidence = self.votes.add(v)
        if result is AddResult.DUPLICATE:
            return self._reject("duplicate_vote")
        if result is AddResult.EQUIVOCATION and evidence is not None:
            self._actions.append(RecordEvidence(evidence))  # counted per value (see vote_keeper)

    def _on_late_precommit(self, v: Vote) -> None:
        lc = self.last_commit
        if (v.type, v.round, v.block_hash) != (PRECOMMIT, lc.round, lc.block_hash):
            return self._reject("stale_height")
        if v.validator not in self._last_valset:
            return self._reject("not_validator")
        if v.validator in self._last_commit_votes:
            return self._reject("duplicate_vote")
        self._last_commit_votes[v.validator] = v

    def _on_block_received(self, ev: BlockReceived) -> None:
        if type(ev.block_hash) is not bytes or type(ev.valid) is not bool:
            return self._reject("malformed")
        if ev.block_hash not in self._requested:
            return self._reject("unrequested_block")
        self.block_valid.setdefault(ev.block_hash, ev.valid)

    def _on_block_built(self, ev: BlockBuilt) -> None:
        if (ev.height, ev.round, self.step) != (self.height, self.round, Step.PROPOSE) or (
            self._awaiting_block_round != ev.round
        ):
            return self._reject("stale_block_built")
        if type(ev.block_hash) is not bytes or len(ev.block_hash) != _HASH_SIZE:
            raise LocalProtocolError("BlockBuilt needs a 32-byte hash", field="block_hash")
        self._awaiting_block_round = -1
        self.block_valid[ev.block_hash] = True
        self._propose(ev.block_hash, -1)  # L19 with proposal = getValue()

    def _on_timeout(self, ev: TimeoutFired) -> None:
        if ev.height != self.height or ev.round != self.round or self.step in (Step.NEW_HEIGHT, Step.COMMIT):
            return  # stale timeout: the guard of L58/L62/L66 fails
        if ev.step == Step.PROPOSE and self.step == Step.PROPOSE:  # L57
            proposal = self.proposals.get(self.round)
            if (self.propose_grace and not self._grace_taken and proposal is not None
                    and proposal.block_hash not in self.block_valid):
                # The proposal came but its block is still being fetched or checked: wait
                # once more as long for valid(v) before prevoting nil (liveness only).
                self._grace_taken = True
                self._schedule(Step.PROPOSE, self.params.timeout_propose(self.round))
                return
            self._vote(PREVOTE, NIL)  # L59
            self.step = Step.PREVOTE  # L60
        elif ev.step == Step.PREVOTE and self.step == Step.PREVOTE:  # L61
            self._vote(PRECOMMIT, NIL)  # L63
            self.step = Step.PRECOMMIT  # L64
        elif ev.step == Step.PRECOMMIT:  # L65
            self._start_round(self.round + 1)  # L67

    # ---------------------------------------------------------- transitions

    def _start_round(self, round: int) -> None:  # L11 StartRound
        self.round = round  # L12
        self.step = Step.PROPOSE  # L13
        self._prevote_timeout_scheduled = False
        self._precommit_timeout_scheduled = False
        self._polka_seen = False
        self._awaiting_block_round = -1
        self._grace_taken = False
        signed = self.signer_state
        already_signed_here = signed.height == self.height and signed.round >= round
        if proposer(self.valset, self.height, round) == self.me and not already_signed_here:  # L14
            if self.valid_value is not None:  # L15
                self._propose(self.valid_value, self.valid_round)  # L16, L19
            else:
                self._awaiting_block_round = round
                self._actions.append(ProposeBlock(self.height, round))  # L18 getValue()
        self._schedule(Step.PROPOSE, self.params.timeout_propose(round))  # L21

    def _resume_signed(self, s: SignerState) -> None:
        """After a restart: re-release the last message we signed in this round
        (identical bytes, so safe), count it, and take the step it implies."""
        fields = decode(s.payload, max_size=256)
        if s.step == Step.PROPOSE:
            h, r, pol, block_hash, pid = fields
            p = Proposal(h, r, pol, block_hash, pid, s.signature)
            self.proposals.setdefault(r, p)
            self._awaiting_block_round = -1
            self._need_block(block_hash)
            self._actions.append(BroadcastProposal(p, s, self._proof_of_lock(pol, block_hash)))
            return
        for earlier in s.earlier:
            self.votes.add(earlier)
            self._actions.append(BroadcastVote(earlier, s))
        vote = Vote(*fields, s.signature)
        self.votes.add(vote)
        self.step = Step(s.step)
        self._actions.append(BroadcastVote(vote, s))

    def _run_rules(self) -> None:
        for _ in range(10_000):
            if not self._fire_one_rule():
                return
        raise LocalProtocolError("consensus rules did not settle", field="state")  # a bug

    def _fire_one_rule(self) -> bool:
        step = self.step
        if step == Step.NEW_HEIGHT or step == Step.COMMIT:
            return False
        votes = self.votes
        # L49: 2f+1 precommits for id(v) in any round r, valid(v), no decision yet
        for rnd, value in votes.precommit_quorums:
            valid = self.block_valid.get(value)
            if valid is True:
                self._decide(rnd, value)
                return True
            if valid is None:
                self._need_block(value)
        # L55: f+1 power sent messages in a round above ours
        skip = votes.highest_skip_round(self.round)
        if skip is not None:
            self._start_round(skip)  # L56
            return True
        rnd = self.round
        proposal = self.proposals.get(rnd)
        if step == Step.PROPOSE:
            if proposal is not None:
                v, vr = proposal.block_hash, proposal.pol_round
                valid = self.block_valid.get(v)
                if valid is None:
                    self._need_block(v)
                elif vr == -1:  # L22
                    if valid and self._prevote_allowed(v, -1):  # L23
                        self._vote(PREVOTE, v)  # L24
                    else:
                        self._vote(PREVOTE, NIL)  # L26
                    self.step = Step.PREVOTE  # L27
                    return True
                elif vr < rnd and votes.two_thirds_for(vr, PREVOTE, v):  # L28
                    if valid and self._prevote_allowed(v, vr):  # L29
                        self._vote(PREVOTE, v)  # L30
                    else:
                        self._vote(PREVOTE, NIL)  # L32
                    self.step = Step.PREVOTE  # L33
                    return True
        elif step == Step.PREVOTE and not self._prevote_timeout_scheduled and votes.two_thirds_any(rnd, PREVOTE):  # L34
            self._prevote_timeout_scheduled = True
            self._schedule(Step.PREVOTE, self.params.timeout_prevote(rnd))  # L35
            return True
        if (
            step != Step.PROPOSE  # L36 needs step >= prevote
            and not self._polka_seen
            and proposal is not None
            and self.block_valid.get(proposal.block_hash) is True
            and votes.two_thirds_for(rnd, PREVOTE, proposal.block_hash)
        ):  # L36
            self._polka_seen = True
            v = proposal.block_hash
            if step == Step.PREVOTE:  # L37
                self.locked_value, self.locked_round = v, rnd  # L38, L39
                self._vote(PRECOMMIT, v, votes.votes_for(rnd, PREVOTE, v))  # L40
                self.step = Step.PRECOMMIT  # L41
            self.valid_value, self.valid_round = v, rnd  # L42, L43
            return True
        if step == Step.PREVOTE and votes.two_thirds_for(rnd, PREVOTE, NIL):  # L44
            self._vote(PRECOMMIT, NIL)  # L45
            self.step = Step.PRECOMMIT  # L46
            return True
        if not self._precommit_timeout_scheduled and votes.two_thirds_any(rnd, PRECOMMIT):  # L47
            self._precommit_timeout_scheduled = True
            self._schedule(Step.PRECOMMIT, self.params.timeout_precommit(rnd))  # L48
            return True
        return False

    def _prevote_allowed(self, v: bytes, vr: int) -> bool:
        """The lock condition of L23 (vr == -1) and L29 (vr >= 0)."""
        return self.locked_round == -1 or self.locked_round <= vr or self.locked_value == v

    def _decide(self, rnd: int, value: bytes) -> None:  # L49
        precommits = self.votes.votes_for(rnd, PRECOMMIT, value)
        certificate = CommitCertificate.from_votes(precommits)
        self.decision = value  # L51
        self.step = Step.COMMIT  # L52-L54 happen on the node's StartHeight(h + 1)
        self.last_commit = certificate
        self._last_commit_votes = {v.validator: v for v in precommits}
        self._last_valset = self.valset
        self._actions.append(CommitBlock(self.height, rnd, value, certificate))

    # -------------------------------------------------------------- helpers

    def _schedule(self, step: Step, duration: int) -> None:
        self._actions.append(ScheduleTimeout(self.height, self.round, step, self.now + duration))

    def _need_block(self, block_hash: bytes) -> None:
        if block_hash not in self._requested and block_hash not in self.block_valid:
            self._requested.add(block_hash)
            self._actions.append(RequestBlock(self.height, block_hash))

    def _propose(self, block_hash: bytes, pol_round: int) -> None:
        if self.key is None:  # the set holds a key of ours we do not have (rotated elsewhere)
            self.rejected["no_signing_key"] = self.rejected.get("no_signing_key", 0) + 1
            return
        try:
            self.signer_state, p = sign_proposal(
                self.signer_state, self.key, self.chain_id, self.height, self.round, pol_round, block_hash,
                proposer=self.me,
            )
        except DoubleSignError:
            self.rejected["signer_refused"] = self.rejected.get("signer_refused", 0) + 1
            return
        self.proposals.setdefault(self.round, p)
        self._actions.append(BroadcastProposal(p, self.signer_state, self._proof_of_lock(pol_round, block_hash)))

    def _proof_of_lock(self, pol_round: int, block_hash: bytes) -> tuple[Vote, ...]:
        """The prevotes for ``block_hash`` in ``pol_round`` we hold: what a peer needs
        before it may prevote a re-proposal (L28), sent with it."""
        if pol_round < 0:
            return ()
        return tuple(self.votes.votes_for(pol_round, PREVOTE, block_hash))

    def _vote(self, vote_type: int, block_hash: bytes, lock_votes: list[Vote] | None = None) -> None:
        if self.me not in self.valset:  # a member outside the set in force (governance) follows, never signs
            return
        if self.key is None:
            self.rejected["no_signing_key"] = self.rejected.get("no_signing_key", 0) + 1
            return
        try:
            self.signer_state, v = sign_vote(
                self.signer_state, self.key, self.chain_id, vote_type, self.height, self.round, block_hash,
                tuple(lock_votes or ()), validator=self.me,
            )
        except DoubleSignError:
            self.rejected["signer_refused"] = self.rejected.get("signer_refused", 0) + 1
            return
        self.votes.add(v)
        self._actions.append(BroadcastVote(v, self.signer_state))


_HANDLERS = {
    StartHeight: ConsensusState._on_start_height,
    ProposalReceived: ConsensusState._on_proposal,
    VoteReceived: ConsensusState._on_vote,
    BlockReceived: ConsensusState._on_block_received,
    BlockBuilt: ConsensusState._on_block_built,
    TimeoutFired: ConsensusState._on_timeout,
}
