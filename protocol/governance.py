"""On-chain governance: members join and leave, validators are voted in and out,
keys rotate, equivocators lose their power. Pure rules (docs/PROTOCOL.md §15).

Theory of operation
===================

The **registry** is the chain's own record of its members: for every branch
allowed to publish, its name, current public key, voting power and whether it
is jailed. Genesis fills it; afterwards only committed records change it:

* ``gov.proposal`` (subject ``gov/proposal/<name>``, signed by a validator in
  force): one :class:`Action` — admit a member, retire one, set a member's
  power (0 removes a validator; a jailed validator is restored by any power),
  rotate a member's key, set a chain parameter — and the height after which it
  expires. Its id is its record hash.
* ``gov.vote`` (subject ``gov/vote/<proposal id hex>``, signed by a validator in
  force): yes or no; a later vote of the same validator (the next sequence
  number) replaces its earlier one while the proposal is open.
* ``branch.key`` (subject ``key``, signed by the branch's current key): the
  branch's new public key. Records after it, in the same block or later, must
  be signed by the new key.
* committed duplicate-vote or duplicate-proposal evidence jails the validator.

At the end of every block, each open proposal is tallied against the
validator set in force for that block: it **passes** when its yes votes hold
more than 2/3 of the power, and its action is applied to the registry then —
unless applying it now would empty the validator set, change a third or more
of the power in force (light clients rely on that bound), or reuse a key or
name; then it is **refused** with that reason. A proposal still open after its
expiry height **expires**.

Switches: the validator set (and the chain parameters) that signs block
``h + 2`` is the registry after block ``h``. Block ``h + 1``'s header announces
it (``next_validators_hash``), so every node switches at the same height, as
in Tendermint. Membership and key changes count from the next record on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from .encoding import expect_array, expect_bool, expect_bytes, expect_int, expect_str
from .errors import ValidationError
from .genesis import ChainParams
from .keys import BRANCH_ID_SIZE, PublicKey, branch_id_of
from .screening import ScreenedBody
from .validators import MAX_POWER, MAX_VALIDATORS, Validator, ValidatorSet
from .votes import MAX_HEIGHT

MAX_PROPOSAL_LIFETIME = 100_000  # heights
MAX_OPEN_PER_PROPOSER = 16  # every block tallies every open proposal: a validator may not flood it
SWITCH_DELAY = 2  # a change of block h signs from block h + 2
_NAME = re.compile(r"[a-z0-9][a-z0-9\-]{0,31}")
_MEMBER_NAME_MAX = 64

ACTIONS = ("admit_member", "retire_member", "set_power", "rotate_key", "set_param")
PROPOSAL_STATUSES = ("open", "passed", "refused", "expired")


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Action:
    """What a proposal would do. ``kind`` in ACTIONS; the other fields by kind:

    * admit_member: ``name``, ``public_key`` (a new branch; power 0)
    * retire_member: ``branch_id``
    * set_power: ``branch_id``, ``power`` (0 removes it from the validator set)
    * rotate_key: ``branch_id``, ``public_key`` (the key was lost or leaked)
    * set_param: ``name`` (a ChainParams field), ``value``
    """

    kind: str
    branch_id: bytes = b""
    name: str = ""
    public_key: bytes = b""
    power: int = 0
    value: int = 0

    def to_array(self) -> list:
        if self.kind == "admit_member":
            return [self.kind, self.name, self.public_key]
        if self.kind == "retire_member":
            return [self.kind, self.branch_id]
        if self.kind == "set_power":
            return [self.kind, self.branch_id, self.power]
        if self.kind == "rotate_key":
            return [self.kind, self.branch_id, self.public_key]
        return [self.kind, self.name, self.value]

    @classmethod
    def from_array(cls, value: Any, field: str) -> "Action":
        if type(value) is not list or not value or value[0] not in ACTIONS:
            raise ValidationError(f"must be one of {', '.join(ACTIONS)}", field=f"{field}.kind", reason="action")
        kind = value[0]
        if kind == "admit_member":
            _, name, key = expect_array(value, 3, field)
            return cls(kind, name=_member_name(name, f"{field}.name"), public_key=_key(key, f"{field}.public_key"))
        if kind == "retire_member":
            _, bid = expect_array(value, 2, field)
            return cls(kind, branch_id=expect_bytes(bid, f"{field}.branch_id", size=BRANCH_ID_SIZE))
        if kind == "set_power":
            _, bid, power = expect_array(value, 3, field)
            return cls(kind, branch_id=expect_bytes(bid, f"{field}.branch_id", size=BRANCH_ID_SIZE),
                       power=expect_int(power, f"{field}.power", hi=MAX_POWER))
        if kind == "rotate_key":
            _, bid, key = expect_array(value, 3, field)
            return cls(kind, branch_id=expect_bytes(bid, f"{field}.branch_id", size=BRANCH_ID_SIZE),
                       public_key=_key(key, f"{field}.public_key"))
        _, name, v = expect_array(value, 3, field)
        name = expect_str(name, f"{field}.name", max_len=32)
        if name not in ChainParams.__dataclass_fields__:
            raise ValidationError(f"unknown chain parameter {name!r}", field=f"{field}.name", reason="param")
        return cls(kind, name=name, value=expect_int(v, f"{field}.value", lo=1, hi=2**40))


def _key(value: Any, field: str) -> bytes:
    raw = expect_bytes(value, field, size=32)
    PublicKey(raw)  # raises for keys no verifier accepts (§4)
    return raw


def _member_name(value: Any, field: str) -> str:
    name = expect_str(value, field, max_len=_MEMBER_NAME_MAX, min_len=1)
    if name != name.strip() or any(ord(c) < 0x20 for c in name):
        raise ValidationError("no control characters or surrounding spaces", field=field, reason="format")
    return name


# ---------------------------------------------------------------- record bodies


class _GovBody(ScreenedBody):
    """A governance body: ``from_array`` as every body's (parse + screen); by default no
    text to screen."""

    __slots__ = ()

    def screened_fields(self) -> list[tuple[str, str]]:
        return []

    def screened_text(self) -> str:
        return "\x1f".join(text for _, text in self.screened_fields())


@dataclass(frozen=True, slots=True)
class GovProposal(_GovBody):
    """A governance proposal (PROTOCOL.md §15): one action, open until the validators decide it or it expires."""

    KIND = "gov.proposal"
    name: str
    action: Action
    expires_height: int

    def subject(self) -> str:
        return f"gov/proposal/{self.name}"

    def to_array(self) -> list:
        return [self.name, self.action.to_array(), self.expires_height]

    def screened_fields(self) -> list[tuple[str, str]]:
        return [("name", self.name), ("action.name", self.action.name)]

    @classmethod
    def _parse(cls, value: Any, field: str) -> "GovProposal":
        name, action, expires = expect_array(value, 3, field)
        name = expect_str(name, f"{field}.name", max_len=32)
        if not _NAME.fullmatch(name):
            raise ValidationError("lowercase letters, digits and '-', at most 32", field=f"{field}.name", reason="format")
        return cls(name, Action.from_array(action, f"{field}.action"),
                   expect_int(expires, f"{field}.expires_height", lo=1, hi=MAX_HEIGHT))


@dataclass(frozen=True, slots=True)
class GovVote(_GovBody):
    """A validator's yes or no on an open proposal."""

    KIND = "gov.vote"
    proposal: bytes  # the proposal record's hash
    yes: bool

    def subject(self) -> str:
        return f"gov/vote/{self.proposal.hex()}"

    def to_array(self) -> list:
        return [self.proposal, self.yes]

    @classmethod
    def _parse(cls, value: Any, field: str) -> "GovVote":
        proposal, yes = expect_array(value, 2, field)
        return cls(expect_bytes(proposal, f"{field}.proposal", size=32), expect_bool(yes, f"{field}.yes"))


@dataclass(frozen=True, slots=True)
class KeyRotation(_GovBody):
    """A member branch replaces its own key, signed with the key it replaces."""

    KIND = "branch.key"
    public_key: bytes  # the branch's new key

    def subject(self) -> str:
        return "key"

    def to_array(self) -> list:
        return [self.public_key]

    @classmethod
    def _parse(cls, value: Any, field: str) -> "KeyRotation":
        (key,) = expect_array(value, 1, field)
        return cls(_key(key, f"{field}.public_key"))


GOV_BODY_TYPES = (GovProposal, GovVote, KeyRotation)


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member branch, as the chain knows it now."""

    name: str
    public_key: PublicKey
    power: int = 0
    jailed: bool = False
    rotated: bool = False  # its key is no longer the one its branch id derives from, or was not once

    @property
    def voting_power(self) -> int:
        return 0 if self.jailed else self.power

    def with_key(self, raw: bytes) -> "MemberInfo":
        return replace(self, public_key=PublicKey(raw), rotated=True)

    def to_array(self) -> list:
        return [self.name, self.public_key.raw, self.power, self.jailed, self.rotated]

    @classmethod
    def from_array(cls, value: Any, field: str = "member") -> "MemberInfo":
        name, key, power, jailed, rotated = expect_array(value, 5, field)
        return cls(expect_str(name, f"{field}.name", max_len=_MEMBER_NAME_MAX), PublicKey(expect_bytes(key, f"{field}.key", size=32)),
                   expect_int(power, f"{field}.power", hi=MAX_POWER), expect_bool(jailed, f"{field}.jailed"),
                   expect_bool(rotated, f"{field}.rotated"))


@dataclass(frozen=True, slots=True)
class ProposalState:
    """A proposal and its votes; ``status`` in PROPOSAL_STATUSES."""

    proposer: bytes
    name: str
    action: Action
    expires_height: int
    submitted_height: int
    votes: tuple[tuple[bytes, bool], ...] = ()  # (validator, yes), sorted by validator
    status: str = "open"
    decided_height: int = 0
    reason: str = ""  # why it was refused

    def with_vote(self, validator: bytes, yes: bool) -> "ProposalState":
        votes = dict(self.votes)
        votes[validator] = yes
        return replace(self, votes=tuple(sorted(votes.items())))

    def to_array(self) -> list:
        return [self.proposer, self.name, self.action.to_array(), self.expires_height, self.submitted_height,
                [[v, y] for v, y in self.votes], self.status, self.decided_height, self.reason]

    @classmethod
    def from_array(cls, value: Any, field: str = "proposal") -> "ProposalState":
        proposer, name, action, expires, submitted, votes, status, decided, reason = expect_array(value, 9, field)
        pairs = []
        for i, item in enumerate(votes if type(votes) is list else []):
            v, y = expect_array(item, 2, f"{field}.votes[{i}]")
            pairs.append((expect_bytes(v, f"{field}.votes[{i}]", size=BRANCH_ID_SIZE), expect_bool(y, f"{field}.votes[{i}]")))
        if status not in PROPOSAL_STATUSES:
            raise ValidationError("unknown status", field=f"{field}.status", reason="status")
        return cls(expect_bytes(proposer, f"{field}.proposer", size=BRANCH_ID_SIZE), expect_str(name, f"{field}.name", max_len=32),
                   Action.from_array(action, f"{field}.action"), expect_int(expires, f"{field}.expires", hi=MAX_HEIGHT),
                   expect_int(submitted, f"{field}.submitted", hi=MAX_HEIGHT), tuple(pairs), status,
                   expect_int(decided, f"{field}.decided", hi=MAX_HEIGHT), expect_str(reason, f"{field}.reason", max_len=64))


# Size limits bound what nodes decode before any state is known (blocks from peers, the
# store), with the genesis values: governance may lower them, never raise them (§15.2).
SIZE_LIMITS = ("max_block_records", "max_block_bytes", "max_record_bytes", "max_block_evidence")


@dataclass
class Registry:
    """The members and chain parameters now (mutable; a transaction works on a copy).
    ``ceilings``: the genesis parameters, above which no size limit may go."""

    members: dict[bytes, MemberInfo] = field(default_factory=dict)
    params: ChainParams = field(default_factory=ChainParams)
    ceilings: ChainParams = field(default_factory=ChainParams)
    # (the members it was made from, the set): every block asks for the set, members rarely change
    _valset: tuple[dict, ValidatorSet] | None = field(default=None, repr=False, compare=False)

    def copy(self) -> "Registry":
        return Registry(dict(self.members), self.params, self.ceilings, self._valset)

    def validator_set(self) -> ValidatorSet:
        """The set of members with voting power (remembered while ``members`` compares equal:
        a dict comparison, not a new set, sorted, checked and hashed, per block)."""
        if self._valset is None or self._valset[0] != self.members:
            self._valset = (dict(self.members), ValidatorSet(
                (Validator(bid, m.public_key, m.voting_power, m.name) for bid, m in self.members.items() if m.voting_power > 0),
                derived_ids=False))
        return self._valset[1]

    def key_in_use(self, raw: bytes) -> bool:
        return any(m.public_key.raw == raw for m in self.members.values())

    def name_in_use(self, name: str) -> bool:
        return any(m.name == name for m in self.members.values())


def check_action(action: Action, registry: Registry, field: str = "body.action") -> None:
    """Raise ValidationError unless ``action`` can apply to ``registry`` by itself
    (the power bound is checked when it passes, against the set then in force)."""
    members = registry.members
    if action.kind == "set_param" and action.name in SIZE_LIMITS and action.value > getattr(registry.ceilings, action.name):
        raise ValidationError(f"{action.name} may not exceed its genesis value {getattr(registry.ceilings, action.name)}",
                              field=f"{field}.value", reason="above_genesis")
    if action.kind == "admit_member":
        if branch_id_of(action.public_key) in members or registry.key_in_use(action.public_key):
            raise ValidationError("that key is a member's already", field=f"{field}.public_key", reason="duplicate_key")
        if registry.name_in_use(action.name):
            raise ValidationError(f"a member is named {action.name!r} already", field=f"{field}.name", reason="duplicate_name")
        if len(members) >= 4 * MAX_VALIDATORS:
            raise ValidationError("the registry is full", field=field, reason="too_many")
    elif action.kind in ("retire_member", "set_power", "rotate_key"):
        if action.branch_id not in members:
            raise ValidationError("not a member", field=f"{field}.branch_id", reason="not_member")
        if action.kind == "rotate_key" and registry.key_in_use(action.public_key):
            raise ValidationError("that key is a member's already", field=f"{field}.public_key", reason="duplicate_key")
        if action.kind == "set_power" and action.power > 0 and sum(m.voting_power > 0 for m in members.values()) >= MAX_VALIDATORS \
                and members[action.branch_id].voting_power == 0:
            raise ValidationError(f"more than {MAX_VALIDATORS} validators", field=field, reason="too_many")


def apply_action(action: Action, registry: Registry) -> None:
    """Apply a passed (checked) action to ``registry``."""
    members = registry.members
    if action.kind == "admit_member":
        members[branch_id_of(action.public_key)] = MemberInfo(action.name, PublicKey(action.public_key))
    elif action.kind == "retire_member":
        del members[action.branch_id]
    elif action.kind == "set_power":
        members[action.branch_id] = replace(members[action.branch_id], power=action.power, jailed=False)
    elif action.kind == "rotate_key":
        members[action.branch_id] = members[action.branch_id].with_key(action.public_key)
    else:
        registry.params = replace(registry.params, **{action.name: action.value})
        ChainParams.from_json({f: getattr(registry.params, f) for f in ChainParams.__dataclass_fields__})


def change_refusal(in_force: ValidatorSet, after: Registry) -> str:
    """Why the validator set ``after`` implies may not follow ``in_force`` (or "" if it
    may): it must not be empty, and it may change less than a third of the power in
    force (the sum of every validator's power change)."""
    try:
        new = after.validator_set()
    except ValidationError as exc:
        return exc.reason  # empty, too many
    changed = sum(abs(new.power_of(bid) - in_force.power_of(bid)) for bid in {v.branch_id for v in in_force} | {v.branch_id for v in new})
    if changed * 3 >= in_force.total_power:
        return "power_change_too_large"
    return ""


def tally(proposal: ProposalState, in_force: ValidatorSet) -> int:
    """The power of the yes votes of validators in ``in_force``."""
    return sum(in_force.power_of(v) for v, yes in proposal.votes if yes)


def sorted_members(members: Iterable[tuple[bytes, MemberInfo]]) -> list[tuple[bytes, MemberInfo]]:
    return sorted(members, key=lambda item: item[0])


# ---------------------------------------------------------------- the chain's governance state

SYSTEM_ID = bytes(BRANCH_ID_SIZE)  # the state tree's branch id for governance entries (no key hashes to it)
KIND_MEMBER, KIND_PROPOSAL, KIND_VALSET, KIND_PARAMS = "system.member", "system.proposal", "system.valset", "system.params"


@dataclass(frozen=True, slots=True)
class ValsetBody:
    """A validator set as a state entry: [[branch id, public key, power, name], ...] by branch id."""

    valset: ValidatorSet

    def to_array(self) -> list:
        return [[v.branch_id, v.public_key.raw, v.power, v.name] for v in self.valset]

    @classmethod
    def from_array(cls, value: Any, field: str = "valset") -> "ValsetBody":
        items = value if type(value) is list else []
        vals = []
        for i, item in enumerate(items):
            bid, key, power, name = expect_array(item, 4, f"{field}[{i}]")
            vals.append(Validator(expect_bytes(bid, f"{field}[{i}].branch_id", size=BRANCH_ID_SIZE),
                                  PublicKey(expect_bytes(key, f"{field}[{i}].key", size=32)),
                                  expect_int(power, f"{field}[{i}].power", lo=1, hi=MAX_POWER),
                                  expect_str(name, f"{field}[{i}].name", max_len=_MEMBER_NAME_MAX)))
        return cls(ValidatorSet(vals, derived_ids=False))


@dataclass(frozen=True, slots=True)
class ParamsBody:
    params: ChainParams

    def to_array(self) -> list:
        return self.params.to_array()

    @classmethod
    def from_array(cls, value: Any, field: str = "params") -> "ParamsBody":
        names = list(ChainParams.__dataclass_fields__)
        items = expect_array(value, len(names), field)
        return cls(ChainParams(**{n: expect_int(v, f"{field}.{n}", lo=1, hi=2**40) for n, v in zip(names, items)}))


SYSTEM_BODY_TYPES = {KIND_MEMBER: MemberInfo, KIND_PROPOSAL: ProposalState, KIND_VALSET: ValsetBody, KIND_PARAMS: ParamsBody}


@dataclass
class GovState:
    """What governance decides, as of a height ``h``: the registry now, the validator
    sets signing ``h + 1`` and ``h + 2``, the parameters in force for them, and the
    open proposals. A transaction works on a copy (:meth:`copy`)."""

    registry: Registry
    validators: ValidatorSet
    next_validators: ValidatorSet
    params: ChainParams
    next_params: ChainParams
    proposals: dict[bytes, ProposalState] = field(default_factory=dict)  # open ones, by id

    @classmethod
    def at_genesis(cls, genesis: Any) -> "GovState":
        members = {m.branch_id: MemberInfo(m.name, m.public_key, m.power) for m in genesis.members}
        return cls(Registry(members, genesis.params, genesis.params), genesis.validators, genesis.validators, genesis.params,
                   genesis.params)

    def copy(self) -> "GovState":
        return GovState(self.registry.copy(), self.validators, self.next_validators, self.params, self.next_params,
                        dict(self.proposals))

    def restore(self, entries: Iterable[tuple[str, Any]]) -> None:
        """Apply stored system entries (subject, body) on top of the genesis state."""
        for subject, body in entries:
            if subject.startswith("member/"):
                bid = bytes.fromhex(subject[len("member/"):])
                if body is None:
                    self.registry.members.pop(bid, None)
                else:
                    self.registry.members[bid] = body
            elif subject.startswith("proposal/"):
                if body.status == "open":
                    self.proposals[bytes.fromhex(subject[len("proposal/"):])] = body
            elif subject == "valset/current":
                self.validators = body.valset
            elif subject == "valset/next":
                self.next_validators = body.valset
            elif subject == "params/current":
                self.params = body.params
            elif subject == "params/next":
                self.next_params = body.params
            elif subject == "params/registry":
                self.registry.params = body.params


# What a transaction writes into the state tree for governance: subject -> (kind, body or None).
SystemChanges = dict[str, tuple[str, Any]]


def check_record(gov: GovState, record: Any, height: int) -> None:
    """Raise ValidationError unless a governance ``record`` applies at ``height``
    (after the generic checks: member, sequence number)."""
    body = record.body
    if isinstance(body, (GovProposal, GovVote)) and record.branch_id not in gov.validators:
        raise ValidationError("only a validator in force may propose or vote", field="record.branch_id", reason="not_validator")
    if isinstance(body, GovProposal):
        if record.seq != 1:
            raise ValidationError("a proposal name is used once", field="record.seq", reason="proposal_exists")
        if not height < body.expires_height <= height + MAX_PROPOSAL_LIFETIME:
            raise ValidationError(f"must expire after this block and within {MAX_PROPOSAL_LIFETIME} heights",
                                  field="record.body.expires_height", reason="expiry")
        if sum(p.proposer == record.branch_id for p in gov.proposals.values()) >= MAX_OPEN_PER_PROPOSER:
            raise ValidationError(f"at most {MAX_OPEN_PER_PROPOSER} open proposals per proposer", field="record.body",
                                  reason="too_many_proposals")
        check_action(body.action, gov.registry, "record.body.action")
    elif isinstance(body, GovVote):
        proposal = gov.proposals.get(body.proposal)
        if proposal is None:
            raise ValidationError("no open proposal with that id", field="record.body.proposal", reason="no_such_proposal")
        if height > proposal.expires_height:
            raise ValidationError("the proposal has expired", field="record.body.proposal", reason="expired")
    elif isinstance(body, KeyRotation):
        if gov.registry.key_in_use(body.public_key):
            raise ValidationError("that key is a member's already", field="record.body.public_key", reason="duplicate_key")


def apply_record(gov: GovState, record: Any, height: int, changes: SystemChanges) -> None:
    """Apply a checked governance ``record`` to ``gov``, noting state-tree changes."""
    body = record.body
    if isinstance(body, GovProposal):
        proposal = ProposalState(record.branch_id, body.name, body.action, body.expires_height, height)
        gov.proposals[record.hash] = proposal
        changes[f"proposal/{record.hash.hex()}"] = (KIND_PROPOSAL, proposal)
    elif isinstance(body, GovVote):
        proposal = gov.proposals[body.proposal].with_vote(record.branch_id, body.yes)
        gov.proposals[body.proposal] = proposal
        changes[f"proposal/{body.proposal.hex()}"] = (KIND_PROPOSAL, proposal)
    elif isinstance(body, KeyRotation):
        _set_member(gov, record.branch_id, gov.registry.members[record.branch_id].with_key(body.public_key), changes)


def _set_member(gov: GovState, branch_id: bytes, info: MemberInfo | None, changes: SystemChanges) -> None:
    if info is None:
        gov.registry.members.pop(branch_id, None)
    else:
        gov.registry.members[branch_id] = info
    changes[f"member/{branch_id.hex()}"] = (KIND_MEMBER, info)


def end_block(gov: GovState, height: int, jailed: Iterable[bytes], changes: SystemChanges) -> None:
    """After the records of block ``height``: jail equivocators, tally open proposals
    against the set signing this block, expire the old ones, and switch: the set (and
    parameters) for ``height + 1`` is the one announced before; for ``height + 2``,
    the registry now."""
    in_force = gov.validators
    members = gov.registry.members
    for bid in sorted(set(jailed)):
        info = members.get(bid)
        if info is not None and not info.jailed:
            after = gov.registry.copy()
            after.members[bid] = replace(info, jailed=True)
            if any(m.voting_power > 0 for m in after.members.values()):  # never an empty set
                _set_member(gov, bid, after.members[bid], changes)
    before = gov.next_validators  # the set the new one follows (it signs height + 1)
    for pid in sorted(gov.proposals, key=lambda p: (gov.proposals[p].submitted_height, p)):
        proposal = gov.proposals[pid]
        if tally(proposal, in_force) * 3 > in_force.total_power * 2:
            after = gov.registry.copy()
            reason = ""
            try:
                check_action(proposal.action, after)
                apply_action(proposal.action, after)
            except ValidationError as exc:
                reason = exc.reason
            reason = reason or change_refusal(before, after)
            status = "refused" if reason else "passed"
            if not reason:
                for bid in set(after.members) | set(members):
                    if after.members.get(bid) != members.get(bid):
                        _set_member(gov, bid, after.members.get(bid), changes)
                if after.params != gov.registry.params:
                    gov.registry.params = after.params
                    changes["params/registry"] = (KIND_PARAMS, ParamsBody(after.params))
            proposal = replace(proposal, status=status, decided_height=height, reason=reason)
        elif height >= proposal.expires_height:
            proposal = replace(proposal, status="expired", decided_height=height)
        else:
            continue
        del gov.proposals[pid]
        changes[f"proposal/{pid.hex()}"] = (KIND_PROPOSAL, proposal)
    new_next = gov.registry.validator_set()
    if gov.next_validators.hash != gov.validators.hash:
        changes["valset/current"] = (KIND_VALSET, ValsetBody(gov.next_validators))
    if new_next.hash != gov.next_validators.hash:
        changes["valset/next"] = (KIND_VALSET, ValsetBody(new_next))
    if gov.next_params != gov.params:
        changes["params/current"] = (KIND_PARAMS, ParamsBody(gov.next_params))
    if gov.registry.params != gov.next_params:
        changes["params/next"] = (KIND_PARAMS, ParamsBody(gov.registry.params))
    gov.validators, gov.next_validators = gov.next_validators, new_next
    gov.params, gov.next_params = gov.next_params, gov.registry.params
