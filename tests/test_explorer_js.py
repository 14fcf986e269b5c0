"""The explorer's verifier (node/api/explorer/*.js) in headless Chromium, against the
protocol's test vectors (tests/vectors.json, PROTOCOL.md §12), the key and
signature edge cases of §4 (with WebCrypto and with the BigInt fallback), and
protocol/proofs.py: for each way of tampering with a proof, the browser and the
Python verifier give the same reason. No node: the files are served as they ship.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from browser import chromium_executable, launch
from node.api.explorer import EXPLORER_DIR
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.proofs import RecordProof, verify_record_proof

pytestmark = pytest.mark.slow
VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
L = 2**252 + 27742317777372353535851937790883648493


class _Files(SimpleHTTPRequestHandler):
    extensions_map = {".js": "text/javascript", ".html": "text/html", ".css": "text/css", "": "application/octet-stream"}

    def do_GET(self):
        if self.path == "/blank.html":
            body = b"<!doctype html><title>verifier</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(EXPLORER_DIR)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as pw:
            browser = launch(pw, executable)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/blank.html")
            yield page
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def run(page, body: str, arg=None):
    """Evaluate ``body`` (an async function body with msgpack, ed, verify, proofs in scope)."""
    script = ("async (arg) => { const msgpack = await import('/msgpack.js'); const ed = await import('/ed25519.js');"
              " const verify = await import('/verify.js'); const proofs = await import('/proofs.js'); " + body + " }")
    return page.evaluate(script, arg)


def test_canonical_msgpack_round_trips_and_rejects(page):
    hexes = [v["hex"] for v in VECTORS["encoding"]]
    out = run(page, """return arg.map(h => verify.toHex(msgpack.encode(msgpack.decode(verify.fromHex(h)))));""", hexes)
    assert out == hexes
    bad = {"cc05": "canonical", "dc000105": "canonical", "cb3ff0000000000000": "not allowed", "80": "not allowed",
           "c1": "not allowed", "c0c0": "trailing", "a2c328": "UTF-8", "": "empty", "92": "truncated",
           "91" * 17 + "c0": "deeper", "d9020102": "canonical", "d90a01": "truncated", "cd0001": "canonical"}
    errors = run(page, """return arg.map(h => { try { msgpack.decode(verify.fromHex(h)); return 'accepted'; }
                                              catch (e) { return e.message; } });""", list(bad))
    for (given, why), got in zip(bad.items(), errors):
        assert why in got, (given, got)


def test_genesis_record_block_and_merkle_vectors(page):
    v = VECTORS
    out = run(page, """
        const g = await verify.loadGenesis(JSON.stringify(arg.genesis.json));
        const rec = await verify.decodeRecord(verify.fromHex(arg.record.record_bytes));
        const member = await verify.checkRecordSignature(rec, g);
        const block = await proofs.verifyBlock({height: 1, hash: arg.block.block_hash, block: arg.block.block_bytes,
                                                certificate: arg.certificate.certificate_bytes}, g, 1);
        const leaves = arg.merkle.leaves.map(verify.fromHex);
        const root = verify.toHex(await verify.merkleRoot(leaves));
        const p = arg.merkle.proof;
        await verify.verifyInclusion(leaves[2], {index: p.index, tree_size: p.tree_size, path: p.path.map(verify.fromHex)}, verify.fromHex(root));
        let wrongLeaf = null;
        try { await verify.verifyInclusion(leaves[3], {index: 2, tree_size: 5, path: p.path.map(verify.fromHex)}, verify.fromHex(root)); }
        catch (e) { wrongLeaf = e.reason; }
        return {hash: g.hashHex, vhash: verify.toHex(g.validatorsHash), total: g.totalPower, ids: g.validators.map(x => x.id),
                recHash: rec.hash, subject: rec.subject, body: rec.body, member: member.name, block: block.ok, checks: block.checks,
                signers: block.certificate.signers.map(s => [s.name, s.valid]), root, empty: verify.toHex(await verify.merkleRoot([])), wrongLeaf};
    """, v)
    assert out["hash"] == v["genesis"]["genesis_hash"] and out["vhash"] == v["genesis"]["validators_hash"]
    assert out["total"] == v["genesis"]["total_power"] and out["ids"] == sorted(k["branch_id"] for k in v["keys"])
    assert out["recHash"] == v["record"]["record_id"] and out["subject"] == v["record"]["subject"]
    assert out["body"]["service_id"] == v["record"]["fields"]["body"]["service_id"]
    assert out["member"] == "Vector Branch One"
    assert out["block"] is True and all(c["ok"] for c in out["checks"]), out["checks"]
    assert out["signers"] == [["Vector Branch One", True], ["Vector Branch Two", True]]
    assert out["root"] == v["merkle"]["root"] and out["empty"] == v["merkle"]["empty_root"]
    assert out["wrongLeaf"] == "bad_proof"



def test_terms_quality_and_public_numbers_decode_as_the_api_shows_them(page):
    """The browser decodes offers with terms (§5.6.1), branch.quality (§5.10) and profiles with
    public numbers from their signed bytes into exactly the API's JSON of the same body."""
    from protocol.records import Record
    from protocol.views import body_to_json

    keys = ("terms_record", "quality_record", "profile_record")
    out = run(page, """
        const g = await verify.loadGenesis(JSON.stringify(arg.genesis.json));
        const res = [];
        for (const k of arg.keys) {
          const rec = await verify.decodeRecord(verify.fromHex(arg[k].record_bytes));
          await verify.checkRecordSignature(rec, g);
          res.push({subject: rec.subject, body: rec.body});
        }
        return res;
    """, {**VECTORS, "keys": list(keys)})
    for key, got in zip(keys, out):
        record = Record.decode(bytes.fromhex(VECTORS[key]["record_bytes"]))
        assert got == {"subject": record.subject, "body": body_to_json(record.body)}, key


def test_a_block_for_another_height_or_chain_fails(page):
    """The vector block checked as height 2, and against the same genesis under another
    chain id: each fails at its own check (these checks once passed whatever they found)."""
    out = run(page, """
        const raw = {height: 1, hash: arg.block.block_hash, block: arg.block.block_bytes, certificate: arg.certificate.certificate_bytes};
        const g = await verify.loadGenesis(JSON.stringify(arg.genesis.json));
        const other = await verify.loadGenesis(JSON.stringify({...arg.genesis.json, chain_id: 'another-chain'}));
        const asHeight2 = await proofs.verifyBlock(raw, g, 2), otherChain = await proofs.verifyBlock(raw, other, 1);
        return [[asHeight2.ok, asHeight2.reason, asHeight2.message], [otherChain.ok, otherChain.reason, otherChain.message]];
    """, VECTORS)
    assert out == [[False, "wrong_height", "height 2: header is for height 1"],
                   [False, "wrong_chain", f"chain id is the genesis chain: header is for chain {VECTORS['genesis']['json']['chain_id']}"]]

SEED_KEY = VECTORS["keys"][0]["public_key"]
# PROTOCOL.md §4: keys and signatures a verifier must refuse although RFC 8032 libraries accept them.
IDENTITY = "01" + "00" * 31
MIXED_ORDER = "b502ff3d92e31d8190b4aa4ea0414005167fad089c4de9dac8a2fc850fed4f58"
R_IDENTITY_SIG = ("0100000000000000000000000000000000000000000000000000000000000000"
                  "62269e0cdc6c7d62e631af71bc1914579dcb09bc619a1c4559d56e54b2bbd20e")


@pytest.mark.parametrize("backend", ["webcrypto", "js"])
def test_ed25519_edge_cases_of_protocol_section_4(page, backend):
    vote = VECTORS["vote"]
    s_plus_l = int.from_bytes(bytes.fromhex(vote["signature"][64:]), "little") + L
    case = {
        "key": SEED_KEY, "msg": vote["signing_bytes"], "sig": vote["signature"],
        "sPlusL": vote["signature"][:64] + s_plus_l.to_bytes(32, "little").hex(),
        "identity": IDENTITY, "mixed": MIXED_ORDER, "rIdentity": R_IDENTITY_SIG, "branchnet": b"branchnet".hex(),
        "nonCanonical": "ed" + "ff" * 30 + "7f", "offCurve": "02" + "00" * 31,
    }
    out = run(page, f"""
        ed.setBackend('{backend}');
        const x = verify.fromHex, V = (k, m, s) => ed.verify(x(k), x(m), x(s));
        const r = {{
          backend: await ed.activeBackend(),
          good: await V(arg.key, arg.msg, arg.sig),
          flipped: await V(arg.key, arg.msg + '00', arg.sig),
          sPlusL: await V(arg.key, arg.msg, arg.sPlusL),
          identityKey: await V(arg.identity, arg.branchnet, arg.identity + '00'.repeat(32)),
          rIdentity: await V(arg.key, arg.branchnet, arg.rIdentity),
          problems: [arg.key, arg.identity, arg.mixed, arg.nonCanonical, arg.offCurve].map(k => ed.publicKeyProblem(x(k))),
        }};
        ed.setBackend('auto');
        return r;
    """, case)
    voter = next(k for k in VECTORS["keys"] if k["branch_id"] == vote["validator"])
    if voter["public_key"] != SEED_KEY:  # the vote vector is Branch One's: seed 000102...
        pytest.fail("vector changed: the vote is not by the seed-000102 key")
    assert out["backend"] == backend
    assert out["good"] is True and out["flipped"] is False and out["sPlusL"] is False
    assert out["identityKey"] is False and out["rIdentity"] is False
    assert out["problems"] == [None, "small_order", "not_in_prime_order_subgroup", "non_canonical", "not_on_curve"]


def _proof() -> dict:
    v = VECTORS
    return {"chain_id": v["chain_id"], "record": v["record"]["record_bytes"], "height": 1, "index": 0,
            "proof": {"index": 0, "tree_size": 1, "path": []}, "header": v["block"]["header_bytes"],
            "certificate": v["certificate"]["certificate_bytes"]}


def _flip(hex_str: str, at: int) -> str:
    raw = bytearray.fromhex(hex_str)
    raw[at] ^= 0x01
    return raw.hex()


def _tamperings() -> dict[str, dict]:
    good = _proof()
    out = {"intact": good}
    for name, change in {
        "record byte": lambda p: p.update(record=_flip(p["record"], 40)),
        "record signature": lambda p: p.update(record=_flip(p["record"], len(p["record"]) // 2 - 3)),
        "certificate signature": lambda p: p.update(certificate=_flip(p["certificate"], 80)),
        "header state root": lambda p: p.update(header=_flip(p["header"], 150)),
        "claimed height": lambda p: p.update(height=2),
        "chain id": lambda p: p.update(chain_id="branchnet-other"),
        "extra path hash": lambda p: p["proof"].update(path=["00" * 32]),
        "index": lambda p: p.update(index=1),
    }.items():
        p = copy.deepcopy(good)
        change(p)
        out[name] = p
    return out


def _same_reasons_in_browser_and_python(page, genesis_doc: dict, cases: dict) -> dict:
    """Verify each proof in Python and in the browser; assert they agree; return {case: reason or None}."""
    genesis = Genesis.from_json(genesis_doc)
    expected = {}
    for name, p in cases.items():
        try:
            verify_record_proof(RecordProof.from_json(p), genesis)
            expected[name] = None
        except ProtocolError as exc:
            expected[name] = exc.reason
    got = run(page, """
        const g = await verify.loadGenesis(JSON.stringify(arg.genesis));
        const out = {};
        for (const [name, p] of Object.entries(arg.cases)) { const r = await proofs.verifyRecordProof(p, g); out[name] = [r.reason, r.message]; }
        return out;
    """, {"genesis": genesis_doc, "cases": cases})
    assert {k: v[0] for k, v in got.items()} == expected, got
    return expected


def test_tampered_proofs_fail_in_the_browser_for_the_reason_python_gives(page):
    expected = _same_reasons_in_browser_and_python(page, VECTORS["genesis"]["json"], _tamperings())
    assert expected["intact"] is None and len({r for r in expected.values()}) >= 5


def test_genesis_files_that_must_be_refused(page):
    base = VECTORS["genesis"]["json"]
    bad = {
        "unknown field": base | {"extra": 1},
        "small-order key": base | {"validators": [base["validators"][0] | {"public_key": IDENTITY, "branch_id": None}]},
        "wrong branch id": base | {"validators": [base["validators"][0] | {"branch_id": "00" * 20}]},
        "zero power": base | {"validators": [base["validators"][0] | {"power": 0}]},
        "bad chain id": base | {"chain_id": "Bad Chain"},
    }
    for doc in bad.values():
        for v in doc["validators"]:
            if v.get("branch_id") is None:
                v.pop("branch_id", None)
    got = run(page, """
        const out = {};
        for (const [name, doc] of Object.entries(arg)) {
          try { await verify.loadGenesis(JSON.stringify(doc)); out[name] = 'accepted'; } catch (e) { out[name] = e.reason; }
        }
        return out;
    """, bad)
    assert got == {"unknown field": "bad_genesis", "small-order key": "bad_key", "wrong branch id": "bad_genesis",
                   "zero power": "bad_genesis", "bad chain id": "bad_genesis"}


def _proof_after_a_set_change() -> tuple[dict, dict]:
    """A genesis (JSON) and the proof (JSON) of a record committed after governance moved
    the validator set on (PROTOCOL.md §15.6), built with the protocol code."""
    from factories import certify, genesis_doc, member_keys, next_block, profile, record, validator_keys
    from protocol.governance import Action, GovProposal, GovVote
    from protocol.ledger import LedgerState

    vals, (m0, m1) = validator_keys(4), member_keys(2)
    doc = genesis_doc(vals, [m0, m1])
    genesis = Genesis.from_json(doc)
    state = LedgerState(genesis)
    by_id = {k.branch_id: k for k in (*vals, m0, m1)}

    def commit(records):
        block, tx, rejected = next_block(state, records)
        assert not rejected
        cert = certify(block, [by_id[v.branch_id] for v in state.validators])
        tx.commit()
        return block, cert

    p = record(vals[0], GovProposal("m0", Action("set_power", branch_id=m0.branch_id, power=10), 50))
    commit([p])
    commit([record(v, GovVote(p.hash, True)) for v in vals[:3]])
    announcing, cert = commit([])
    changes = ((announcing.header, cert, state.validators),)
    rec = record(m1, profile(), 1)
    block, block_cert = commit([rec])
    proof = RecordProof(genesis.chain_id, rec.raw, block.height, 0, block.prove_record(0), block.header, block_cert, changes)
    assert verify_record_proof(proof, genesis) == rec
    return doc, proof.to_json()


def test_a_proof_across_a_set_change_verifies_in_the_browser_as_in_python(page):
    doc, good = _proof_after_a_set_change()
    cases = {"intact": good}
    for name, change in {
        "no set changes": lambda p: p.update(set_changes=[]),
        "another announced set": lambda p: p["set_changes"][0]["validators"].pop(),
        "change certificate": lambda p: p["set_changes"][0].update(certificate=_flip(p["set_changes"][0]["certificate"], 80)),
    }.items():
        p = copy.deepcopy(good)
        change(p)
        cases[name] = p
    expected = _same_reasons_in_browser_and_python(page, doc, cases)
    assert expected == {"intact": None, "no set changes": "wrong_validators", "another announced set": "bad_set_change",
                        "change certificate": "bad_certificate"}


def test_a_block_with_duplicate_proposal_evidence_verifies_in_the_browser(page):
    from factories import CHAIN_ID, certify, genesis_doc, member_keys, next_block, validator_keys
    from protocol.ledger import LedgerState
    from protocol.votes import DuplicateProposalEvidence, Proposal

    vals = validator_keys(4)
    doc = genesis_doc(vals, member_keys(2))
    state = LedgerState(Genesis.from_json(doc))
    block, tx, _ = next_block(state, [])
    tx.commit()
    a, b = (Proposal.create(vals[2], CHAIN_ID, 1, 0, -1, h) for h in (b"\x01" * 32, b"\x02" * 32))
    block, tx, _ = next_block(state, [], evidence=[DuplicateProposalEvidence.from_proposals(a, b)])
    raw = {"height": block.height, "hash": block.hash.hex(), "block": block.encode().hex(),
           "certificate": certify(block, vals).encode().hex(), "set_changes": []}
    got = run(page, """
        const g = await verify.loadGenesis(JSON.stringify(arg.genesis));
        const r = await proofs.verifyBlock(arg.raw, g, arg.raw.height);
        return [r.ok, r.reason, r.message, r.evidence.map((e) => [e.type, e.validator.name])];
    """, {"genesis": doc, "raw": raw})
    assert got == [True, None, None, [["proposal", "Validator 2"]]], got


def test_governance_actions_in_words_the_two_thirds_rule_and_the_set_difference(page):
    got = page.evaluate("""async () => {
        const gov = await import('/page_governance.js');
        const names = { aa: 'Futian Branch', bb: 'Xinjiekou Branch' };
        const nameOf = (id) => names[id] ?? id;
        const words = [
            { kind: 'admit_member', name: 'Xinjiekou Branch', public_key: 'ab'.repeat(32) },
            { kind: 'retire_member', branch_id: 'bb' }, { kind: 'set_power', branch_id: 'aa', power: 10 },
            { kind: 'rotate_key', branch_id: 'aa', public_key: 'cd'.repeat(32) },
            { kind: 'set_param', name: 'max_clock_drift_ms', value: 20000 },
        ].map((a) => gov.actionWords(a, nameOf));
        const set = [{ branch_id: 'aa', power: 10 }, { branch_id: 'bb', power: 10 }, { branch_id: 'cc', power: 10 }];
        const t = (votes) => { const r = gov.tally(votes, set); return [r.yes, r.no, r.total, r.enough]; };
        const tallies = [
            t([{ branch_id: 'aa', yes: true }, { branch_id: 'bb', yes: true }]),  // exactly two thirds: not enough
            t([{ branch_id: 'aa', yes: true }, { branch_id: 'bb', yes: true }, { branch_id: 'cc', yes: true }]),
            t([{ branch_id: 'aa', yes: true }, { branch_id: 'dd', yes: true }, { branch_id: 'cc', yes: false }]),  // dd is not in the set
        ];
        const el = document.createElement('div');
        el.append(...gov.setTable({ height: 7, validators: set, next_validators: [{ branch_id: 'aa', power: 12 }, set[1], { branch_id: 'dd', power: 5 }] }, nameOf));
        const rows = [...el.querySelectorAll('[data-test=set-row]')].map((r) => [r.dataset.id, r.dataset.changed, r.className,
            r.querySelector('[data-test=power-now]').textContent, r.querySelector('[data-test=power-next]').textContent, r.lastChild.textContent]);
        return { words, tallies, rows, summary: el.querySelector('[data-test=set-summary]').textContent, head: el.querySelector('th').textContent };
    }""")
    assert got["words"] == ["admit member Xinjiekou Branch", "retire member Xinjiekou Branch", "set power of Futian Branch to 10",
                            f"rotate the key of Futian Branch to {'cd' * 6}…", "set max_clock_drift_ms to 20000"]
    assert got["tallies"] == [[20, 0, 30, False], [30, 0, 30, True], [10, 10, 30, False]]
    assert got["rows"] == [["aa", "yes", "changed", "10", "12", "power changes"], ["bb", "no", "", "10", "10", ""],
                           ["cc", "yes", "changed", "10", "–", "leaves"], ["dd", "yes", "changed", "–", "5", "joins"]]
    assert got["summary"] == "Total power 30 now, 27 next; 3 changes announced." and got["head"] == "signs #8"


def test_a_proof_with_a_member_entry_verifies_in_the_browser_as_in_python(page):
    """§15.6: a member admitted after genesis (and a key rotated since) proven by its member
    entry under a later certified state root; each tampering refused for Python's reason."""
    from factories import profile, record
    from test_member_proofs import NEW, Chain, _row_with, admitted_then_voted_in

    c, rec = admitted_then_voted_in()
    good = c.proof(rec, c.member(NEW.branch_id)).to_json()
    early = c.blocks[2]
    cases = {"intact": good, "no member entry": c.proof(rec).to_json(),
             "no member entry, changes above the record": {k: v for k, v in good.items() if k != "member"}}
    for name, change in {
        "entry power": lambda p: p["member"].update(entry=_row_with(bytes.fromhex(p["member"]["entry"]), power=7).hex()),
        "entry subject": lambda p: p["member"].update(entry=_row_with(bytes.fromhex(p["member"]["entry"]),
                                                                      subject="member/" + "11" * 20).hex()),
        "top proof hash": lambda p: p["member"]["top_proof"][2].__setitem__(0, "00" * 32),
        "branch path hash": lambda p: p["member"]["branch_path"].__setitem__(0, "00" * 32),
        "member header below the record": lambda p: p["member"].update(header=early[0].header.encode().hex(),
                                                                       certificate=early[1].encode().hex()),
        "member certificate": lambda p: p["member"].update(certificate=_flip(p["member"]["certificate"], 80)),
        "no set changes": lambda p: p.update(set_changes=[]),
    }.items():
        p = copy.deepcopy(good)
        change(p)
        cases[name] = p
    expected = _same_reasons_in_browser_and_python(page, c.genesis.to_json(), cases)
    assert expected == {"intact": None, "no member entry": "not_member",
                        "no member entry, changes above the record": "bad_set_change", "entry power": "bad_state_proof",
                        "entry subject": "bad_member_proof", "top proof hash": "bad_state_proof",
                        "branch path hash": "bad_state_proof",
                        "member header below the record": "bad_member_proof", "member certificate": "bad_certificate",
                        "no set changes": "wrong_validators"}

    from protocol.governance import KeyRotation
    from protocol.records import Record
    from test_member_proofs import M0
    rotated = Chain()
    rotated.commit([record(M0, KeyRotation(NEW.public_key.raw))])
    after = Record.create(NEW, rotated.genesis.chain_id, 1, rec.time_ms, profile(), branch_id=M0.branch_id)
    rotated.commit([after])
    expected = _same_reasons_in_browser_and_python(page, rotated.genesis.to_json(), {
        "after the rotation": rotated.proof(after, rotated.member(M0.branch_id)).to_json(),
        "without its member entry": rotated.proof(after).to_json()})
    assert expected == {"after the rotation": None, "without its member entry": "bad_signature"}
