"""Validator-set changes in the simulator: the committed chain carries them.

Model
=====

A block at height ``h`` carries, besides being valid or not, (a) the
duplicate-vote/proposal evidence its proposer held and (b) the governance
records the scenario puts at ``h`` (a proposal and yes votes). The governance
state after block ``h`` is a pure function of the committed blocks ``1..h``:
every node computes it from *its own* committed blocks, block by block, with
the ledger's rule — :func:`protocol.governance.end_block` (jail, tally,
``check_action``/``apply_action``, ``change_refusal``, switch) — not a copy of
it. The set that signs height ``H`` is ``state after H - 1``'s ``validators``,
which is the set announced after ``H - 2`` (PROTOCOL.md §15.5): a change
decided in block ``h`` signs from ``h + 2``. A node that was crashed or cut
off learns it as it learns any block, by committing or syncing the blocks.

Scenario (the records a block carries) — deterministic in (seed, height,
governance state before the block), so every node with the same chain agrees:

* at each height up to ``until``, with no proposal open, with probability
  ``P_PROPOSE`` a validator proposes one action: a ``set_power`` **add** (an
  honest member without power — a spare key, or a validator removed earlier —
  gets power), **remove** (power 0, any validator) or **power change** (an
  honest validator); or a registry change, **retire** (``retire_member``: a
  member without power, or a validator, whose power goes with it) or **admit**
  (``admit_member``: an honest node's key that is not a member — a spare
  retired earlier — joins without power, to be voted power later). It is drawn
  to respect the third-of-power bound against the set for ``h + 1``, and to
  keep Byzantine power below a third of every set (the model's assumption; a
  set change cannot hand the adversary a third). One proposal in
  ``P_OVERSIZE`` ignores the bound on purpose: the rule must refuse it.
  (``rotate_key`` is not modelled: the consensus state machine signs as its
  key's own branch id, so a validator whose key rotated could not vote.)
* yes votes: a random subset of the validators in force at ``h`` in the same
  block (it passes at once when they hold more than 2/3), every validator in
  force in the next block.
* evidence in the block jails its validator at ``h``: out of the set for
  ``h + 2``. The scenario never restores a Byzantine validator.
"""

from __future__ import annotations

import random

from protocol.errors import ValidationError
from protocol.genesis import ChainParams
from protocol.governance import Action, GovState, MemberInfo, ProposalState, Registry, apply_action, end_block
from protocol.validators import ValidatorSet

GOV_SALT = 0x60_5E7C
P_PROPOSE = 0.6
P_OVERSIZE = 0.1
EXPIRY = 5  # heights a proposal stays open
TRIES = 8


def genesis_state(valset: ValidatorSet, spares) -> GovState:
    """The registry at genesis: the validators, and ``spares`` ((branch id, public key)
    pairs) as members without power — observers that may be voted in."""
    members = {v.branch_id: MemberInfo(f"v-{v.branch_id.hex()[:8]}", v.public_key, v.power) for v in valset}
    for bid, pk in spares:
        members[bid] = MemberInfo(f"s-{bid.hex()[:8]}", pk, 0)
    params = ChainParams()
    return GovState(Registry(members, params, params), valset, valset, params, params)


class GovScenario:
    """The governance records of every block, and the state after it."""

    def __init__(self, seed: int, byzantine: frozenset[bytes], until: int, keys: dict[bytes, bytes] | None = None):
        """``keys``: every simulated node's (branch id -> public key), members or not:
        who may be admitted."""
        self.seed = seed
        self.byzantine = byzantine
        self.until = until
        self.keys = keys or {}

    def after_block(self, prev: GovState, height: int, evidence: frozenset[bytes]) -> tuple[GovState, dict]:
        """The state after block ``height`` given the state before it, and the state-tree
        changes ``end_block`` noted (proposal outcomes among them)."""
        gov = prev.copy()
        rng = random.Random(self.seed * 1_000_003 + height * 7919 + GOV_SALT)
        in_force = gov.validators
        for pid, p in list(gov.proposals.items()):  # the rest of the votes
            for v in in_force:
                p = p.with_vote(v.branch_id, True)
            gov.proposals[pid] = p
        if not gov.proposals and height <= self.until and rng.random() < P_PROPOSE:
            action = self.choose(gov, rng)
            if action is not None:
                voters = [v.branch_id for v in in_force]
                rng.shuffle(voters)
                p = ProposalState(voters[0], f"p{height}", action, height + EXPIRY, height)
                for bid in voters[: rng.randint(1, len(voters))]:
                    p = p.with_vote(bid, True)
                gov.proposals[height.to_bytes(32, "big")] = p
        changes: dict = {}
        end_block(gov, height, evidence, changes)
        return gov, changes

    def choose(self, gov: GovState, rng: random.Random) -> Action | None:
        """One action (see the module docstring), or None if none fits."""
        nxt = gov.next_validators  # the set for h + 1, which the change is bounded by
        registry = gov.registry
        oversize = rng.random() < P_OVERSIZE
        budget = (nxt.total_power - 1) // 3  # most power one change may move: 3·Δ < total
        honest_out = sorted(b for b, m in registry.members.items()
                            if m.voting_power == 0 and not m.jailed and b not in self.byzantine)
        honest_in = [v for v in nxt if v.branch_id not in self.byzantine]
        outsiders = sorted(b for b in self.keys if b not in registry.members and b not in self.byzantine)
        for _ in range(TRIES):
            kind = rng.choice(("add", "remove", "change", "retire", "admit"))
            if kind == "admit" and outsiders:
                bid = rng.choice(outsiders)
                action = Action("admit_member", name=f"a-{bid.hex()[:8]}", public_key=self.keys[bid])
            elif kind == "retire":
                powerless = sorted(b for b, m in registry.members.items() if m.voting_power == 0)
                fits = [v.branch_id for v in nxt if (v.power > budget) == oversize]
                pool = fits + (powerless if not oversize else [])
                if not pool:
                    continue
                action = Action("retire_member", branch_id=rng.choice(pool))
            elif kind == "add" and honest_out:
                lo, hi = (budget + 1, budget + 3) if oversize else (1, budget)
                if hi < lo:
                    continue
                action = Action("set_power", branch_id=rng.choice(honest_out), power=rng.randint(lo, hi))
            elif kind == "remove":
                fits = [v for v in nxt if (v.power > budget) == oversize]
                if not fits:
                    continue
                action = Action("set_power", branch_id=rng.choice(fits).branch_id, power=0)
            elif kind == "change" and honest_in:
                v = rng.choice(honest_in)
                delta = rng.randint(budget + 1, budget + 3) if oversize else rng.randint(1, max(budget, 1))
                if not oversize and budget < 1:
                    continue
                power = v.power + delta if v.power - delta < 1 or rng.random() < 0.5 else v.power - delta
                action = Action("set_power", branch_id=v.branch_id, power=power)
            else:
                continue
            if self.keeps_byzantine_below_a_third(registry, action):
                return action
        return None

    def keeps_byzantine_below_a_third(self, registry: Registry, action: Action) -> bool:
        after = registry.copy()
        apply_action(action, after)
        try:
            new = after.validator_set()
        except ValidationError:
            return False
        byz = sum(new.power_of(b) for b in self.byzantine)
        return byz * 3 < new.total_power


class ScriptedScenario(GovScenario):
    """Fixed changes (tests): ``script[h]`` lists actions — (branch id, power) for
    set_power, or an :class:`Action` — proposed in block ``h`` with every validator
    in force voting yes: each passes at ``h`` (unless the rule refuses it) and a set
    change signs from ``h + 2``. ``rotations[h]`` lists branch ids whose key rotates
    at ``h`` (a ``rotate_key`` action, the same registry change as the branch's own
    ``branch.key``) to the next of ``new_keys[branch id]`` not in use: its old key
    signs ``h + 1``, the new one from ``h + 2`` on."""

    def __init__(self, script: dict[int, list[tuple[bytes, int] | Action]], rotations: dict[int, list[bytes]] | None = None,
                 new_keys: dict[bytes, list] | None = None):
        super().__init__(0, frozenset(), 0)
        self.script = script
        self.rotations = rotations or {}
        self.new_keys = new_keys or {}

    def _actions(self, gov: GovState, height: int) -> list[Action]:
        actions = [a if isinstance(a, Action) else Action("set_power", branch_id=a[0], power=a[1])
                   for a in self.script.get(height, ())]
        for bid in self.rotations.get(height, ()):
            fresh = [k for k in self.new_keys.get(bid, ()) if not gov.registry.key_in_use(k.public_key.raw)]
            if fresh:
                actions.append(Action("rotate_key", branch_id=bid, public_key=fresh[0].public_key.raw))
        return actions

    def after_block(self, prev: GovState, height: int, evidence: frozenset[bytes]) -> tuple[GovState, dict]:
        gov = prev.copy()
        voters = [v.branch_id for v in gov.validators]
        for i, action in enumerate(self._actions(gov, height)):
            p = ProposalState(voters[0], f"s{height}-{i}", action, height + EXPIRY, height)
            for v in voters:
                p = p.with_vote(v, True)
            gov.proposals[(height * 100 + i).to_bytes(32, "big")] = p
        changes: dict = {}
        end_block(gov, height, evidence, changes)
        return gov, changes
