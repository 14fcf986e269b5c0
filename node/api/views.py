"""JSON documents the HTTP API serves, built from a node's store and state.

Synchronous and cheap: everything reads the committed :class:`LedgerState`
(mutated only on the trio thread, so never half-applied) or the SQLite store.
Nothing here parses requests; node/api/server.py checks parameters first and maps the
``None`` returns ("no such thing") to 404. The shape of every document is in
node/api/models.py (the API tests validate each answer against it).
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, Iterable

import msgpack

from protocol import merkle
from protocol.blocks import Header
from protocol.errors import SignatureError
from protocol.governance import KIND_PROPOSAL, SYSTEM_ID
from protocol.ledger import Entry
from protocol.proofs import MemberProof, RecordProof, set_changes_json
from protocol.quality import BranchQuality
from protocol.records import Record
from protocol.schema import BranchProfile, ServiceOffer, ServiceStatus
from protocol.records import RECORD_VERSION
from protocol.views import action_to_json, body_to_json
from protocol.votes import CommitCertificate, DuplicateProposalEvidence, Evidence, Proposal, Vote

from ..p2p.host import peer_id_of
from . import compare
from .catalogue import Offered, ServiceCatalogue, fold


def record_json(rec: Record) -> dict[str, Any]:
    """A record by field name, its version included (Record.to_json leaves it out)."""
    doc = rec.to_json()
    return {"hash": doc.pop("hash"), "version": RECORD_VERSION} | doc


def genesis(node: Any) -> dict[str, Any]:
    return node.genesis.to_json()


def validators(node: Any) -> dict[str, Any]:
    vs = node.chain.state.validators
    return {
        "total_power": vs.total_power,
        "validators": [
            {"branch_id": v.branch_id.hex(), "name": v.name, "power": v.power, "public_key": v.public_key.hex(),
             "peer_id": peer_id_of(v.public_key.raw)}
            for v in vs
        ],
    }


def peers(node: Any) -> dict[str, Any]:
    """Connected peers with the member branch each one is (by peer id), the connection's
    remote address and direction, when it was opened, the last request round trip and the
    consensus link to it (None where the transport does not know: the in-memory one of tests)."""
    names = {peer_id_of(m.public_key.raw): m.name for m in node.chain.state.gov.registry.members.values()}
    details = getattr(node.net, "peer_details", None)
    found = {d["peer_id"]: d for d in details()} if details else {}
    out = []
    for p in sorted(node.net.connected_peers()):
        d = found.get(p, {})
        since, rtt = d.get("connected_since"), d.get("last_round_trip")
        out.append({"peer_id": p, "name": names.get(p), "address": d.get("address"),
                    "direction": d.get("direction", "unknown"),
                    "connected_since_ms": None if since is None else int(since * 1000),
                    "last_round_trip_ms": None if rtt is None else round(rtt * 1000, 3),
                    "bytes_sent": d.get("bytes_sent"), "bytes_received": d.get("bytes_received"),
                    "link": d.get("link")})
    return {"count": len(out), "peers": out}


def observers(node: Any) -> dict[str, Any]:
    return {"observers": [{"peer_id": p, "added_ms": t} for p, t in node.store.observers().items()]}


# ------------------------------------------------------------------ blocks


def _header_and_count(block_bytes: bytes) -> tuple[Header, int]:
    """Header and number of records of a stored block without decoding the records."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(block_bytes)
    unpacker.read_array_header()
    header = Header.from_array(unpacker.unpack())
    return header, unpacker.read_array_header()


def block_list(node: Any, *, before: int | None, limit: int) -> dict[str, Any]:
    top = node.chain.height if before is None else min(before - 1, node.chain.height)
    start = max(1, top - limit + 1)
    rows = node.chain.store.raw_blocks(start, top - start + 1) if top >= 1 else []
    blocks = []
    for _height, block_bytes, _cert in reversed(rows):
        header, n = _header_and_count(block_bytes)
        blocks.append(header.to_json() | {"num_records": n})
    return {"blocks": blocks, "next_before": start if start > 1 and blocks else None}


def _vote_json(v: Vote) -> dict[str, Any]:
    return {"type": v.type, "height": v.height, "round": v.round, "block_hash": v.block_hash.hex(),
            "validator": v.validator.hex(), "signature": v.signature.hex()}


def _signed_proposal_json(p: Proposal) -> dict[str, Any]:
    return {"height": p.height, "round": p.round, "pol_round": p.pol_round, "block_hash": p.block_hash.hex(),
            "proposer": p.proposer.hex(), "signature": p.signature.hex()}


def _evidence_json(e: Evidence) -> dict[str, Any]:
    doc = {"hash": e.hash.hex(), "validator": e.validator.hex(), "height": e.height}
    if isinstance(e, DuplicateProposalEvidence):
        return {"kind": "duplicate_proposal", **doc, "proposal_a": _signed_proposal_json(e.proposal_a),
                "proposal_b": _signed_proposal_json(e.proposal_b)}
    return {"kind": "duplicate_vote", **doc, "vote_a": _vote_json(e.vote_a), "vote_b": _vote_json(e.vote_b)}


def raw_block(node: Any, height: int) -> dict[str, Any] | None:
    rows = node.chain.store.raw_blocks(height, 1)
    if not rows:
        return None
    _height, block_bytes, cert_bytes = rows[0]
    header, _n = _header_and_count(bytes(block_bytes))
    return {"height": height, "hash": header.hash.hex(), "block": bytes(block_bytes).hex(), "certificate": bytes(cert_bytes).hex(),
            "set_changes": set_changes_json(node.chain.store.set_changes(below=height))}


def certificate_json(c: CommitCertificate) -> dict[str, Any]:
    return {"height": c.height, "round": c.round, "block_hash": c.block_hash.hex(),
            "signatures": [{"validator": v.hex(), "signature": s.hex()} for v, s in c.signatures]}


def block(node: Any, *, height: int | None = None, block_hash: bytes | None = None) -> dict[str, Any] | None:
    store = node.chain.store
    stored = store.block(height) if height is not None else store.block_by_hash(block_hash)
    if stored is None:
        return None
    b = stored.block
    return {
        "header": b.header.to_json(),
        "hash": b.hash.hex(),
        "records": [record_json(r) for r in b.records],
        "evidence": [_evidence_json(e) for e in b.evidence],
        "certificate": certificate_json(stored.certificate),
    }


# ------------------------------------------------------------------ records


def record(node: Any, record_hash: bytes) -> dict[str, Any] | None:
    """A record and where it stands: ``committed`` (with height and index),
    ``pending`` (acknowledged or known, not committed yet) or ``rejected`` (an
    acknowledged record that can never commit, with the reason)."""
    store = node.chain.store
    found = store.record(record_hash)
    if found is not None:
        rec, height, index = found
        return {"record": record_json(rec), "height": height, "index": index, "status": "committed"}
    pending = node.mempool.get(record_hash)
    if pending is not None or store.is_pending(record_hash):
        return {"record": record_json(pending) if pending else None, "height": None, "status": "pending"}
    rejection = store.rejection(record_hash)
    if rejection is not None:
        return {"record": None, "height": None, "status": "rejected", "reason": rejection[0], "rejected_at_ms": rejection[1]}
    return None


def records(node: Any, *, limit: int, **filters: Any) -> dict[str, Any]:
    rows = node.chain.store.records(limit=limit, **filters)
    last = rows[-1] if len(rows) == limit else None  # a full page: there may be more
    return {"records": [record_json(r) | {"height": h, "index": i} for r, h, i in rows],
            "next_cursor": f"{last[1]}:{last[2]}" if last else None}


def record_proof(node: Any, record_hash: bytes) -> RecordProof | None:
    """The record's inclusion proof against its block's header, with the certificate.
    Reads the stored bytes: the block's records are hashed, not decoded (a 500-record
    block decoded whole took most of a proof's time)."""
    store = node.chain.store
    found = store.raw_record_at(record_hash)
    if found is None:
        return None
    raw, height, index = found
    rows = store.raw_blocks(height, 1)
    if not rows:  # cannot happen: a record row and its block are written in one transaction
        return None
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(rows[0][1]) + 1)
    unpacker.feed(bytes(rows[0][1]))
    unpacker.read_array_header()
    header = Header.from_array(unpacker.unpack())
    leaves = [merkle.leaf_hash(r) for r in unpacker.unpack()]
    return RecordProof(header.chain_id, raw, height, index, merkle.prove(leaves, index), header,
                       CommitCertificate.decode(bytes(rows[0][2])), tuple(store.set_changes(below=height)))


async def record_proof_offline(node: Any, record_hash: bytes) -> RecordProof | None:
    """The proof ``GET /v1/records/{hash}/proof`` serves: :func:`record_proof`, and when the
    genesis key of the record's branch does not sign it, the branch's member entry under
    the state root of the last committed block (§15.6). None if the record is not committed."""
    proof = await node.runtime.run_sync(record_proof, node, record_hash)
    if proof is None or not needs_member_entry(node.genesis, proof):
        return proof
    async with node.chain.lock:  # the state and its height of one block
        height, found = member_entry(node.chain.state, proof)
    if found is None:  # cannot happen for a committed record whose genesis key does not sign it
        return proof
    return await node.runtime.run_sync(with_member_entry, node, proof, height, found)


def needs_member_entry(genesis: Any, proof: RecordProof) -> bool:
    """True if the genesis key of the record's branch does not sign it (a member admitted
    later, or a key rotated since): its proof then carries the member entry (§15.6)."""
    rec = Record.decode(proof.record)
    member = next((m for m in genesis.members if m.branch_id == rec.branch_id), None)
    if member is None:
        return True
    try:
        rec.verify(member.public_key)
    except SignatureError:
        return True
    return False


def member_entry(state: Any, proof: RecordProof) -> tuple[int, Any]:
    """(height, entry proof) of the record's branch row in ``state`` (call on the
    trio thread holding the chain lock: the state and its height must be of one block);
    (height, None) if the registry row never changed since genesis."""
    branch_id = Record.decode(proof.record).branch_id
    return state.height, state.entry_proof(SYSTEM_ID, f"member/{branch_id.hex()}")


def with_member_entry(node: Any, proof: RecordProof, height: int, found: Any) -> RecordProof:
    """``proof`` with the member entry ``found`` under block ``height``'s state root, and the set
    changes up to that height (reads the store: run in a worker thread)."""
    stored = node.chain.store.block(height)
    member = MemberProof.of(stored.block.header, stored.certificate, found)
    return dataclasses.replace(proof, set_changes=tuple(node.chain.store.set_changes(below=height)), member=member)


# ------------------------------------------------------------------ registry


def _services_of(state: Any, branch_id: bytes, entries: Iterable[Entry]) -> list[tuple[Entry, Entry | None]]:
    out = []
    for e in entries:
        if isinstance(e.body, ServiceOffer):
            st = state.entry(branch_id, f"status/{e.body.service_id}")
            out.append((e, st if st is not None and isinstance(st.body, ServiceStatus) else None))
    return out


def _region_matches(region: str | None, wanted: str) -> bool:
    """Region codes are hierarchical: "CN-BJ" matches "CN-BJ" and "CN-BJ-110108"."""
    return region is not None and (region == wanted or region.startswith(wanted + "-"))


def _offer_filters(items: list, f: dict[str, Any]) -> list:
    """``items`` (Offered) whose offer passes the offer filters of /v1/services: channel,
    risk_level, ownership, fee_basis, max_fee (None: any); each given filter is one pass."""
    if f.get("channel") is not None:
        items = [it for it in items if f["channel"] in it.entry.body.channels]
    if f.get("risk_level") is not None:
        items = [it for it in items if it.entry.body.risk_level == f["risk_level"]]
    if f.get("ownership") is not None:
        items = [it for it in items if it.entry.body.ownership == f["ownership"]]
    basis, max_fee = f.get("fee_basis"), f.get("max_fee")
    if basis is not None:  # some fee of that basis (Offered.fees: basis -> its highest fee)
        items = [it for it in items if basis in it.fees]
    if max_fee is not None:  # every fee (of that basis, if given) at most max_fee; None: the highest of all
        items = [it for it in items if it.fees[basis] <= max_fee]
    return items


def services(node: Any, *, category: str | None = None, branch: bytes | None = None, region: str | None = None,
             status: str | None = None, q: str | None = None, limit: int = 100, offset: int = 0,
             term_months: int | None = None, amount: int | None = None, valid_at: int | None = None,
             sort: str | None = None, as_of: tuple[int, int, list] | None = None,
             catalogue: ServiceCatalogue | None = None, **offer_filters: Any) -> dict[str, Any]:
    """The services on offer now (the state; through ``catalogue`` when given, which
    answers without walking the whole state), or with ``as_of`` = (time_ms, height,
    ChainReader.offers_as_of's offers) those on offer at that past instant (no live status
    then; the region is the branch's current one). Documents are built for the page only."""
    state = node.chain.state
    if as_of is None and catalogue is not None:
        candidates = catalogue.candidates(branch=branch, category=category, region=region, region_matches=_region_matches)
        region_of = catalogue.region_of
    else:
        candidates = _offered_from_state(state, branch) if as_of is None else [
            Offered(r.branch_id, Entry(r.subject, r.seq, r.hash, h, r.kind, r.body), None, "")
            for r, h in as_of[2] if branch is None or r.branch_id == branch]
        regions: dict[bytes, str | None] = {}

        def region_of(bid: bytes) -> str | None:
            if bid not in regions:
                prof = state.entry(bid, "profile")
                regions[bid] = prof.body.region if prof is not None and isinstance(prof.body, BranchProfile) else None
            return regions[bid]
    items = list(candidates)
    # each filter narrows the list in one pass (a comprehension per filter, not one loop of many tests)
    if category is not None:
        items = [it for it in items if it.entry.body.category == category]
    if branch is not None:
        items = [it for it in items if it.branch_id == branch]
    if region is not None:
        items = [it for it in items if _region_matches(region_of(it.branch_id), region)]
    if status is not None:
        in_status = catalogue.in_status(status) if catalogue is not None and as_of is None else None
        if in_status is not None and 4 * len(in_status) < len(items):  # a rare status: walk its few services
            if len(items) != catalogue.size():  # a category's, branch's or region's: keep those among them
                narrowed = set(items)
                in_status = [it for it in in_status if it in narrowed]
            items = sorted(in_status, key=attrgetter("pos"))
        else:
            items = [it for it in items if it.live == status]
    if q:
        needle = q.casefold()
        if "\x1f" in needle:  # no text holds a control character (and fold() joins with this one)
            items = []
        elif as_of is None and catalogue is not None:
            texts = catalogue.texts_containing(needle)
            items = [it for it in items if it.text in texts]
        else:
            items = [it for it in items if needle in (it.text or fold(it.entry.body))]
    items = _offer_filters(items, offer_filters)
    if term_months is not None or amount is not None or valid_at is not None:
        items = [it for it in items
                 if compare.terms_match(it.entry.body, term_months=term_months, amount=amount, valid_at=valid_at)]
    matches = items
    if sort is not None:
        key = compare.sort_key(sort, term_months)
        keyed = [({"_offer": m.entry.body, "branch_id": m.branch_id.hex(), "service_id": m.service_id}, m) for m in matches]
        keyed.sort(key=lambda pair: key(pair[0]))
        matches = [m for _, m in keyed]
    names = state.gov.registry.members
    page = []
    for item in matches[offset : offset + limit]:
        offer, member = item.entry.body, names.get(item.branch_id)
        page.append({
            "branch_id": item.branch_id.hex(),
            "branch_name": member.name if member is not None else "",
            "region": region_of(item.branch_id),
            "service_id": offer.service_id,
            "offer": body_to_json(offer),
            "status": body_to_json(item.status.body) if item.status is not None else None,
            "record_hash": item.entry.record_hash.hex(),
            "height": item.entry.height,
            "rate_bp": compare.headline_rate_bp(offer, term_months),
        })
    doc = {"total": len(matches), "services": page}
    if as_of is not None:
        doc |= {"as_of_ms": as_of[0], "as_of_height": as_of[1]}
    return doc


def _offered_from_state(state: Any, branch: bytes | None) -> list[Offered]:
    """The services on offer, walking the state (one branch, or all without a catalogue)."""
    out = []
    for bid, entries in _entries_by_branch(state, branch).items():
        for offer_entry, status_entry in _services_of(state, bid, entries):
            out.append(Offered(bid, offer_entry, status_entry, ""))
    return out


def _entries_by_branch(state: Any, branch: bytes | None) -> dict[bytes, list[Entry]]:
    by_branch: dict[bytes, list[Entry]] = {}
    for bid, entry in state.entries(branch):
        by_branch.setdefault(bid, []).append(entry)
    return by_branch


def quality(node: Any, *, period: str | None = None, region: str | None = None, branch: bytes | None = None,
            sort: str | None = None, catalogue: ServiceCatalogue | None = None, limit: int = 100,
            offset: int = 0) -> dict[str, Any]:
    """Each branch's current branch.quality disclosure (the latest version of its subject)
    for ``period`` (default: the latest period disclosed, by ``branch`` when given), ranked
    by ``sort`` (else by branch id), ``limit`` of them from ``offset``; from
    ``catalogue``'s index when given, else walking the state. Only the page is converted
    to JSON (the conversion is most of an answer's cost)."""
    state = node.chain.state
    if catalogue is not None:
        period, found = catalogue.quality(period, branch)
    else:
        found = [(bid, e) for bid, e in state.entries(branch) if isinstance(e.body, BranchQuality)]
        if period is None and found:
            period = max(e.body.period for _, e in found)
        found = [(bid, e) for bid, e in found if e.body.period == period]
    rows = []
    for bid, e in found:
        prof = state.entry(bid, "profile")
        branch_region = prof.body.region if prof is not None and isinstance(prof.body, BranchProfile) else None
        if region is None or _region_matches(branch_region, region):
            rows.append((bid, e, branch_region))
    rows.sort(key=compare.quality_key(sort) if sort is not None else (lambda row: row[0]))
    members = state.gov.registry.members
    page = [{"branch_id": bid.hex(), "branch_name": members[bid].name if bid in members else "", "region": branch_region,
             "quality": body_to_json(e.body), "seq": e.seq, "record_hash": e.record_hash.hex(), "height": e.height}
            for bid, e, branch_region in rows[offset:offset + limit]]
    return {"period": period, "total": len(rows), "branches": page}


def branch(node: Any, branch_id: bytes, *, with_services: bool,
           catalogue: ServiceCatalogue | None = None) -> dict[str, Any] | None:
    state = node.chain.state
    member = state.gov.registry.members.get(branch_id)
    if member is None:
        return None
    prof = state.entry(branch_id, "profile")
    # without the list, only the count: no document per service (/v1/branches lists every branch)
    listed = services(node, branch=branch_id, limit=10_000 if with_services else 0, catalogue=catalogue)
    doc: dict[str, Any] = {
        "branch_id": branch_id.hex(),
        "name": member.name,
        "profile": body_to_json(prof.body) if prof is not None and prof.body is not None else None,
        "power": member.power,
        "num_services": listed["total"],
        # the list in /v1/branches/{id}; in /v1/branches a deprecated copy of num_services (models.BranchSummary)
        "services": listed["services"] if with_services else listed["total"],
    }
    return doc


def branches(node: Any, *, catalogue: ServiceCatalogue | None = None) -> dict[str, Any]:
    return {"branches": [branch(node, bid, with_services=False, catalogue=catalogue)
                         for bid in sorted(node.chain.state.gov.registry.members)]}


def _valset_json(vs: Any) -> list[dict[str, Any]]:
    return [{"branch_id": v.branch_id.hex(), "name": v.name, "power": v.power} for v in vs]


def governance(node: Any, *, status: str | None = None) -> dict[str, Any]:
    """Members, the validator sets signing the next two heights, the chain parameters
    and every proposal (newest first), as the committed state has them (§15)."""
    state = node.chain.state
    gov = state.gov
    proposals = []
    for _, e in state.entries(SYSTEM_ID):
        if e.kind == KIND_PROPOSAL and (status is None or e.body.status == status):
            proposals.append(_proposal_json(e.subject[len("proposal/"):], e.body))
    proposals.sort(key=lambda p: (-p["submitted_height"], p["id"]))
    return {
        "height": state.height,
        "members": [{"branch_id": bid.hex(), "name": m.name, "public_key": m.public_key.hex(), "power": m.power,
                     "jailed": m.jailed, "key_rotated": m.rotated} for bid, m in sorted(gov.registry.members.items())],
        "validators": _valset_json(gov.validators),
        "next_validators": _valset_json(gov.next_validators),
        "params": dataclasses.asdict(gov.params),
        "proposals": proposals,
    }


def _proposal_json(pid: str, p: Any) -> dict[str, Any]:
    return {"id": pid, "name": p.name, "proposer": p.proposer.hex(), "action": action_to_json(p.action),
            "expires_height": p.expires_height, "submitted_height": p.submitted_height, "status": p.status,
            "decided_height": p.decided_height or None, "reason": p.reason or None,
            "votes": [{"branch_id": v.hex(), "yes": yes} for v, yes in p.votes]}


def record_event(rec: Record, height: int) -> dict[str, Any]:
    return {"hash": rec.hash.hex(), "kind": rec.kind, "branch_id": rec.branch_id.hex(), "subject": rec.subject, "height": height}
