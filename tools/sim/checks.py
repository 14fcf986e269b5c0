"""The simulator's safety checks at the end of a run: every distinct commit certificate
against the validator set in force for its height, and (governance) that set replayed
from the decided blocks alone. Agreement, validity and double signing are checked as
they happen (:meth:`tools.sim.engine.Simulation.record_commit`, ``on_signed``).

A mixin of :class:`tools.sim.engine.Simulation`.
"""

from __future__ import annotations

from protocol.errors import ValidationError
from protocol.validators import ValidatorSet

from .world import CHAIN_ID


class SafetyChecks:
    def violation(self, what: str) -> None:
        self.result.safety_violations.append(what)


    def check_certificates(self) -> None:
        """Each distinct certificate against the set in force for its height:
        CommitCertificate.verify once per new signature set; a certificate whose
        signatures were all verified already only needs its quorum recomputed."""
        sets = self.sets_in_force()
        verified: set[tuple] = set()
        for h, cert in self.certs.values():
            valset = sets.get(h, self.valset)
            pairs = {(cert.round, cert.block_hash, vid, sig) for vid, sig in cert.signatures}
            if cert.height != h:
                self.violation(f"validity: certificate for height {cert.height} stored at {h}")
                continue
            if pairs <= verified:
                power = sum(valset.power_of(vid) for vid, _ in cert.signatures)
                if not valset.has_two_thirds(power):
                    self.violation(f"validity: certificate at height {h} lacks a 2/3 quorum")
                continue
            try:
                cert.verify(valset, CHAIN_ID, height=h, block_hash=self.decided.get(h))
            except ValidationError as exc:
                self.violation(f"validity: certificate at height {h}: {exc}")
            else:
                verified |= pairs

    def sets_in_force(self) -> dict[int, ValidatorSet]:
        """Governance: the set in force for every decided height, replayed from the decided
        blocks alone (not from any node's bookkeeping), with the counts for the report.
        Also checks that honest nodes started each height with that set, and that a
        validator named by committed evidence is out of the set two heights later."""
        if self.gov is None:
            return {}
        res = self.result
        gov = self.nodes[0].gov[0]
        sets = {1: gov.validators}
        for h in range(1, max(self.decided, default=0) + 1):
            block_hash = self.decided.get(h)
            if block_hash is None:
                break
            evidence = self.block_evidence.get(block_hash, frozenset())
            before = gov
            gov, changes = self.gov.after_block(gov, h, evidence)
            sets[h + 1] = gov.validators
            if gov.validators.hash != before.validators.hash:
                res.set_changes += 1
            for subject, (_, body) in changes.items():
                if subject.startswith("proposal/") and body.status in ("passed", "refused"):
                    res.proposals_passed += body.status == "passed"
                    res.proposals_refused += body.status == "refused"
                    if body.status == "passed":
                        res.admitted += body.action.kind == "admit_member"
                        res.retired += body.action.kind == "retire_member"
            for bid in evidence:
                info = before.registry.members.get(bid)
                if info is None or info.jailed:
                    continue
                res.jailed += 1
                if bid in gov.next_validators and any(m.voting_power > 0 for b, m in before.registry.members.items() if b != bid):
                    self.violation(f"governance: validator with committed evidence at {h} still signs {h + 2}")
        for h, valset in self.valset_at.items():
            if h in sets and sets[h].hash != valset.hash:
                self.violation(f"governance: nodes started height {h} with a set the chain does not give")
        return sets
