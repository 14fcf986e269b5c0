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
from .validators import MAX_POWER, MAX_VALIDATORS, Validator, ValidatorSet
from .votes import MAX_HEIGHT

MAX_PROPOSAL_LIFETIME = 100_000  # heights
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


@dataclass(frozen=True, slots=True)
class GovProposal:
    KIND = "gov.proposal"
    name: str
    action: Action
    expires_height: int

    def subject(self) -> str:
        return f"gov/proposal/{self.name}"

    def to_array(self) -> list:
        return [self.name, self.action.to_array(), self.expires_height]

    @classmethod
    def from_array(cls, value: Any, field: str = "body") -> "GovProposal":
        name, action, expires = expect_array(value, 3, field)
        name = expect_str(name, f"{field}.name", max_len=32)
        if not _NAME.fullmatch(name):
            raise ValidationError("lowercase letters, digits and '-', at most 32", field=f"{field}.name", reason="format")
        return cls(name, Action.from_array(action, f"{field}.action"),
                   expect_int(expires, f"{field}.expires_height", lo=1, hi=MAX_HEIGHT))


@dataclass(frozen=True, slots=True)
class GovVote:
    KIND = "gov.vote"
    proposal: bytes  # the proposal record's hash
    yes: bool

    def subject(self) -> str:
        return f"gov/vote/{self.proposal.hex()}"

    def to_array(self) -> list:
        return [self.proposal, self.yes]

    @classmethod
    def from_array(cls, value: Any, field: str = "body") -> "GovVote":
        proposal, yes = expect_array(value, 2, field)
        return cls(expect_bytes(proposal, f"{field}.proposal", size=32), expect_bool(yes, f"{field}.yes"))


@dataclass(frozen=True, slots=True)
class KeyRotation:
    KIND = "branch.key"
    public_key: bytes  # the branch's new key

    def subject(self) -> str:
        return "key"

    def to_array(self) -> list:
        return [self.public_key]

    @classmethod
    def from_array(cls, value: Any, field: str = "body") -> "KeyRotation":
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

    @property
    def voting_power(self) -> int:
        return 0 if self.jailed else self.power

    def to_array(self) -> list:
        return [self.name, self.public_key.raw, self.power, self.jailed]

    @classmethod
    def from_array(cls, value: Any, field: str = "member") -> "MemberInfo":
        name, key, power, jailed = expect_array(value, 4, field)
        return cls(expect_str(name, f"{field}.name", max_len=_MEMBER_NAME_MAX), PublicKey(expect_bytes(key, f"{field}.key", size=32)),
                   expect_int(power, f"{field}.power", hi=MAX_POWER), expect_bool(jailed, f"{field}.jailed"))


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


@dataclass
class Registry:
    """The members and chain parameters now (mutable; a transaction works on a copy)."""

    members: dict[bytes, MemberInfo] = field(default_factory=dict)
    params: ChainParams = field(default_factory=ChainParams)

    def copy(self) -> "Registry":
        return Registry(dict(self.members), self.params)

    def validator_set(self) -> ValidatorSet:
        return ValidatorSet(Validator(bid, m.public_key, m.voting_power, m.name)
                            for bid, m in self.members.items() if m.voting_power > 0)

    def key_in_use(self, raw: bytes) -> bool:
        return any(m.public_key.raw == raw for m in self.members.values())

    def name_in_use(self, name: str) -> bool:
        return any(m.name == name for m in self.members.values())


def check_action(action: Action, registry: Registry, field: str = "body.action") -> None:
    """Raise ValidationError unless ``action`` can apply to ``registry`` by itself
    (the power bound is checked when it passes, against the set then in force)."""
    members = registry.members
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
        members[action.branch_id] = replace(members[action.branch_id], public_key=PublicKey(action.public_key))
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
