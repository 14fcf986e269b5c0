// What the explorer verifies, step by step, trusting only the genesis file:
// a block with its certificate (GET /v1/blocks/{height}/raw) and a record's
// inclusion proof (GET /v1/records/{hash}/proof), as protocol/proofs.py does.

import { decode, encode, equalBytes } from './msgpack.js';
import { verify as verifySignature } from './ed25519.js';
import {
  Checklist, VerifyError, checkCertificate, checkRecordSignature, decodeRecord, fromHex, headerFromArray, memberFromEntry,
  merkleRoot, sha256, toHex, validatorSetAt, verifyInclusion,
} from './verify.js';

const VOTE_FIELDS = ['type', 'height', 'round', 'block_hash', 'validator', 'signature'];

const PROPOSAL_FIELDS = ['height', 'round', 'pol_round', 'block_hash', 'proposer', 'signature'];

async function checkProposalEvidence(ev, genesis, set) { // ["proposal", a, b] (§9.4)
  const [a, b] = ev.slice(1).map((p) => {
    if (!Array.isArray(p) || p.length !== 6) throw new VerifyError('bad_evidence', 'a proposal is an array of 6');
    return Object.fromEntries(PROPOSAL_FIELDS.map((n, i) => [n, p[i]]));
  });
  if (String(a.height) !== String(b.height) || String(a.round) !== String(b.round) || !equalBytes(a.proposer, b.proposer)) throw new VerifyError('bad_evidence', 'the two proposals are not for one (height, round, proposer)');
  if (equalBytes(encode(ev[1]), encode(ev[2]))) throw new VerifyError('bad_evidence', 'the two proposals do not conflict');
  const v = set.validators.find((x) => equalBytes(x.branchId, a.proposer));
  if (!v) throw new VerifyError('bad_evidence', 'the proposer is not a validator');
  for (const p of [a, b]) {
    const payload = encode([p.height, p.round, p.pol_round, p.block_hash, p.proposer]);
    if (!(await verifySignature(v.publicKey, encode(['branchnet/v1', 'proposal', genesis.chainId, payload]), p.signature))) throw new VerifyError('bad_evidence', `a proposal of ${v.name} does not verify`);
  }
  return { validator: v, height: a.height, round: a.round, type: 'proposal', hashes: [a, b].map((x) => toHex(x.block_hash)) };
}

async function checkEvidence(ev, genesis, set) {
  if (Array.isArray(ev) && ev.length === 3 && ev[0] === 'proposal') return checkProposalEvidence(ev, genesis, set);
  if (!Array.isArray(ev) || ev.length !== 2) throw new VerifyError('bad_evidence', 'evidence is [vote_a, vote_b] or ["proposal", a, b]');
  const votes = ev.map((v) => {
    if (!Array.isArray(v) || v.length !== 6) throw new VerifyError('bad_evidence', 'a vote is an array of 6');
    return Object.fromEntries(VOTE_FIELDS.map((n, i) => [n, v[i]]));
  });
  const [a, b] = votes;
  if (a.type !== b.type || String(a.height) !== String(b.height) || String(a.round) !== String(b.round) || !equalBytes(a.validator, b.validator)) throw new VerifyError('bad_evidence', 'the two votes are not for one (type, height, round, validator)');
  if (equalBytes(a.block_hash, b.block_hash)) throw new VerifyError('bad_evidence', 'the two votes do not conflict');
  const v = set.validators.find((x) => equalBytes(x.branchId, a.validator));
  if (!v) throw new VerifyError('bad_evidence', 'the voter is not a validator');
  for (const vote of votes) {
    const payload = encode([vote.type, vote.height, vote.round, vote.block_hash, vote.validator]);
    if (!(await verifySignature(v.publicKey, encode(['branchnet/v1', 'vote', genesis.chainId, payload]), vote.signature))) throw new VerifyError('bad_evidence', `a vote of ${v.name} does not verify`);
  }
  return { validator: v, height: a.height, round: a.round, type: a.type, hashes: votes.map((x) => toHex(x.block_hash)) };
}

/** Verify GET /v1/blocks/{height}/raw: header hash, chain, validator set, records and
 * evidence roots, record signatures, and the commit certificate against the set in force. */
export async function verifyBlock(raw, genesis, height) {
  const c = new Checklist();
  const out = { header: null, hash: null, records: [], evidence: [], certificate: null };
  try {
    const block = await c.check('block bytes decode canonically', 'bad_block', () => {
      const a = decode(fromHex(raw.block, 'block'), genesis.params.max_block_bytes);
      if (!Array.isArray(a) || a.length !== 3 || !Array.isArray(a[1]) || !Array.isArray(a[2])) throw new Error('a block is [header, records, evidence]');
      headerFromArray(a[0]);
      return a;
    });
    const header = out.header = headerFromArray(block[0]);
    const hash = out.hash = await sha256(encode(block[0]));
    await c.check('header hash', 'bad_hash', () => {
      if (raw.hash !== toHex(hash)) throw new Error(`the node names ${raw.hash}, the header hashes to ${toHex(hash)}`);
      return toHex(hash);
    });
    await c.check(`height ${height}`, 'wrong_height', () => { // a check passes unless it returns false or throws
      if (String(header.height) !== String(height)) throw new Error(`header is for height ${header.height}`);
    });
    await c.check('chain id is the genesis chain', 'wrong_chain', () => {
      if (header.chain_id !== genesis.chainId) throw new Error(`header is for chain ${header.chain_id}`);
    });
    if (String(header.height) === '1') await c.check('block 1 follows the genesis', 'wrong_prev', () => equalBytes(header.prev_hash, genesis.hash));
    const set = await c.check(`validator set is the one in force (${raw.set_changes?.length ?? 0} certified changes since genesis)`, 'wrong_validators', async () => {
      const inForce = await validatorSetAt(genesis, header.height, raw.set_changes);
      if (!equalBytes(header.validators_hash, inForce.hash)) throw new VerifyError('wrong_validators', 'header names another validator set than genesis and its certified changes');
      return inForce;
    });
    await c.check(`records root (${block[1].length} records)`, 'bad_records_root', async () => {
      if (!block[1].every((r) => r instanceof Uint8Array)) throw new Error('a record is not a byte string');
      return equalBytes(await merkleRoot(block[1]), header.records_root);
    });
    await c.check(`evidence root (${block[2].length} items)`, 'bad_evidence_root', async () => equalBytes(await merkleRoot(block[2].map((e) => encode(e))), header.evidence_root));
    out.certificate = await c.check('commit certificate: more than 2/3 of the power signed this block', 'bad_certificate', async () => {
      try { return await checkCertificate(fromHex(raw.certificate, 'certificate'), genesis, height, hash, set); } catch (e) { out.certificate = e.result ?? null; throw e; }
    });
    await c.check('record signatures', 'bad_record', async () => {
      for (const [i, rb] of block[1].entries()) {
        let rec;
        try { rec = await decodeRecord(rb, genesis.params.max_record_bytes); } catch (e) { throw new VerifyError('bad_record', `record ${i} does not decode: ${e.message}`); }
        out.records.push(rec);
        rec.member = await checkRecordSignature(rec, genesis);
      }
      return `${block[1].length} verified`;
    });
    await c.check('evidence signatures', 'bad_evidence', async () => {
      for (const ev of block[2]) out.evidence.push(await checkEvidence(ev, genesis, set));
      return `${block[2].length} verified`;
    });
  } catch (e) { return c.report(out, e); }
  return c.report(out);
}

/** The set changes below `height` (all of them if one does not decode: the walk refuses it). */
function changesBelow(changes, height) {
  return (changes ?? []).filter((c) => {
    try { return BigInt(headerFromArray(decode(fromHex(c.header), 1024)).height) < BigInt(height); } catch { return true; }
  });
}

/** Verify GET /v1/records/{hash}/proof trusting only `genesis`, in the order and with the
 * reasons of protocol/proofs.py: wrong_chain, wrong_height, bad_member_proof,
 * wrong_validators, bad_set_change, bad_certificate, bad_proof, bad_record,
 * bad_state_proof, not_member, bad_signature. With `member` (§15.6) the record is
 * checked against its branch's key in the registry under a later certified header. */
export async function verifyRecordProof(proof, genesis) {
  const c = new Checklist();
  const out = { record: null, header: null, certificate: null, height: proof?.height };
  try {
    const parts = await c.check('proof bundle is well formed', 'bad_bundle', () => {
      if (!proof || typeof proof !== 'object') throw new Error('not an object');
      const header = headerFromArray(decode(fromHex(proof.header, 'header'), 1024));
      const path = proof.proof?.path;
      if (!Array.isArray(path) || path.length > 65) throw new Error('proof.path must be a list of hashes');
      const m = proof.member;
      if (m !== undefined && m !== null && (typeof m !== 'object' || !Array.isArray(m.branch_path) || !Array.isArray(m.top_proof)
        || m.top_proof.length !== 3 || !Array.isArray(m.top_proof[2]))) throw new Error('member must be an object with a branch path and a top proof');
      const member = m ? { header: headerFromArray(decode(fromHex(m.header, 'member.header'), 1024)), headerBytes: fromHex(m.header),
        cert: fromHex(m.certificate, 'member.certificate') } : null;
      return { header, headerBytes: fromHex(proof.header), record: fromHex(proof.record, 'record'),
        path: path.map((p, i) => fromHex(p, `proof.path[${i}]`)), cert: fromHex(proof.certificate, 'certificate'), member };
    });
    const header = out.header = parts.header;
    const headerHash = await sha256(parts.headerBytes);
    out.headerHash = toHex(headerHash);
    await c.check('chain id is the genesis chain', 'wrong_chain', () => {
      if (proof.chain_id !== genesis.chainId || header.chain_id !== genesis.chainId) throw new VerifyError('wrong_chain', `proof is for chain ${header.chain_id}, not ${genesis.chainId}`);
      return genesis.chainId;
    });
    await c.check(`header is for height ${proof.height}`, 'wrong_height', () => {
      if (String(header.height) !== String(proof.height)) throw new VerifyError('wrong_height', `header is for height ${header.height}, proof claims ${proof.height}`);
      return true;
    });
    const mh = parts.member?.header;
    if (mh) {
      await c.check('the member entry\'s header is of this chain, at or above the record\'s', 'bad_member_proof', () => {
        if (mh.chain_id !== genesis.chainId || BigInt(mh.height) < BigInt(header.height)) throw new VerifyError('bad_member_proof', 'the member entry\'s header is of another chain or below the record\'s height');
        return `height ${mh.height}`;
      });
    }
    const below = mh ? changesBelow(proof.set_changes, header.height) : proof.set_changes;
    const set = await c.check(`header names the validator set in force (${below?.length ?? 0} certified changes since genesis)`, 'wrong_validators', async () => {
      const inForce = await validatorSetAt(genesis, header.height, below);
      if (!equalBytes(header.validators_hash, inForce.hash)) throw new VerifyError('wrong_validators', 'header names another validator set than genesis and its certified changes');
      return inForce;
    });
    out.certificate = await c.check('commit certificate: more than 2/3 of the power signed this header', 'bad_certificate', async () => {
      try { return await checkCertificate(parts.cert, genesis, proof.height, headerHash, set); } catch (e) { out.certificate = e.result ?? null; throw e; }
    });
    if (mh) {
      const memberSet = await c.check(`the member entry's header (height ${mh.height}) names the validator set in force`, 'wrong_validators', async () => {
        const inForce = await validatorSetAt(genesis, mh.height, proof.set_changes);
        if (!equalBytes(mh.validators_hash, inForce.hash)) throw new VerifyError('wrong_validators', 'the member header names another validator set than genesis and its certified changes');
        return inForce;
      });
      await c.check('commit certificate of the member entry\'s header', 'bad_certificate', async () => {
        await checkCertificate(parts.member.cert, genesis, mh.height, await sha256(parts.member.headerBytes), memberSet);
        return true;
      });
    }
    await c.check('record is under the header\'s records root', 'bad_proof', async () => {
      if (proof.proof.index !== proof.index) throw new VerifyError('bad_proof', 'proof index differs from the record index');
      try {
        await verifyInclusion(parts.record, { index: proof.proof.index, tree_size: proof.proof.tree_size, path: parts.path }, header.records_root);
      } catch (e) { throw new VerifyError('bad_proof', `record is not under the header's records root: ${e.message}`); }
      return `leaf ${proof.index} of ${proof.proof.tree_size}`;
    });
    const record = out.record = await c.check('record decodes', 'bad_record', async () => {
      try { return await decodeRecord(parts.record, genesis.params.max_record_bytes); } catch (e) { throw new VerifyError('bad_record', `record does not decode: ${e.message}`); }
    });
    const row = mh ? await c.check(`the branch's key under the state root of height ${mh.height} (a member entry)`, 'bad_state_proof',
      () => memberFromEntry(proof.member, record.branch_id, mh.height, mh.state_root)) : null;
    await c.check(mh ? 'record is signed by its branch (the key in its member entry)' : 'record is signed by its branch (a genesis member)', 'bad_signature', async () => {
      record.member = await checkRecordSignature(record, genesis, row);
      return record.member.name;
    });
  } catch (e) { return c.report(out, e); }
  return c.report(out);
}
