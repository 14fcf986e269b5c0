// Verification in the browser, trusting only the genesis file: the same checks as
// `branchnet proof verify` (protocol/proofs.py) and block sync (docs/PROTOCOL.md
// §3, §4, §6, §7, §9, §10). Everything is checked from the raw bytes the API
// returns (block, header, certificate, record, proof path); the node's JSON is
// only ever compared with what the bytes say.
//
// Each verifier returns a report {ok, reason, message, checks: [{label, ok, detail}], ...}
// and never throws for bad input: a failure is a report with ok = false, the
// reason slug (as protocol/proofs.py names it) and what failed.

import { decode, encode, equalBytes, DecodeError } from './msgpack.js';
import { publicKeyProblem, verify as verifySignature } from './ed25519.js';
import { bodyFields, subjectOf } from './records.js';

export class VerifyError extends Error {
  constructor(reason, message) { super(message); this.reason = reason; this.name = 'VerifyError'; }
}

export const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

export function fromHex(s, what = 'value') {
  if (typeof s !== 'string' || s.length % 2 || !/^[0-9a-f]*$/.test(s)) throw new VerifyError('bad_hex', `${what} is not lowercase hex`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

export async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) throw new VerifyError('no_webcrypto', 'this page is not a secure context (use https, or http on 127.0.0.1/localhost): the browser offers no WebCrypto here');
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const utf8 = (s) => new TextEncoder().encode(s);

/** Runs labelled checks in order, keeping what passed and the first failure. */
export class Checklist {
  constructor() { this.checks = []; }
  async check(label, reason, fn) {
    try {
      const detail = await fn();
      if (detail === false) throw new VerifyError(reason, `${label}: does not hold`);
      this.checks.push({ label, ok: true, detail: typeof detail === 'string' ? detail : '' });
      return detail;
    } catch (e) {
      const err = e instanceof VerifyError && e.reason !== 'bad_hex' ? e : new VerifyError(reason, `${label}: ${e.message}`);
      this.checks.push({ label, ok: false, detail: err.message });
      throw err;
    }
  }
  report(extra, error) {
    if (error && !(error instanceof VerifyError)) error = new VerifyError('internal', String(error?.stack || error));
    return { ok: !error, reason: error?.reason ?? null, message: error?.message ?? null, checks: this.checks, ...extra };
  }
}

// ------------------------------------------------------------------ Merkle trees (§6)

export async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  let level = await Promise.all(leaves.map((d) => sha256(concat([0], d))));
  while (level.length > 1) { // pairing neighbours, an odd last node carried up: the same tree as RFC 6962
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(sha256(concat([1], level[i], level[i + 1])));
    if (level.length % 2) next.push(level[level.length - 1]);
    level = await Promise.all(next);
  }
  return level[0];
}

/** RFC 9162 §2.1.3.2, as §6 writes it. Throws VerifyError("bad_proof"). */
export async function verifyInclusion(leaf, proof, root) {
  if (!equalBytes(await inclusionRoot(leaf, proof), root)) throw new VerifyError('bad_proof', 'the path does not lead to the root');
}

/** The root an RFC 9162 audit path leads to from `leaf` (§6); throws VerifyError("bad_proof"). */
export async function inclusionRoot(leaf, { index, tree_size: size, path }) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) throw new VerifyError('bad_proof', 'index outside the tree');
  if (!Array.isArray(path) || path.length > 64) throw new VerifyError('bad_proof', 'path too long');
  let fn = index, sn = size - 1, r = await sha256(concat([0], leaf));
  const half = (n) => Math.floor(n / 2);
  for (const p of path) {
    if (!(p instanceof Uint8Array) || p.length !== 32) throw new VerifyError('bad_proof', 'path hash is not 32 bytes');
    if (sn === 0) throw new VerifyError('bad_proof', 'path too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat([1], p, r));
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else r = await sha256(concat([1], r, p));
    fn = half(fn); sn = half(sn);
  }
  if (sn !== 0) throw new VerifyError('bad_proof', 'path too short');
  return r;
}

// ------------------------------------------------------------------ genesis (§10)

export const PARAMS = [
  ['max_block_records', 10000], ['max_block_bytes', 8388608], ['max_record_bytes', 8192], ['max_block_evidence', 64],
  ['timeout_propose_ms', 1000], ['timeout_prevote_ms', 500], ['timeout_precommit_ms', 500], ['timeout_delta_ms', 500],
  ['max_clock_drift_ms', 10000],
];
const BRANCH_ID_PREFIX = utf8('branchnet/branch-id');

export async function branchIdOf(publicKey) { return (await sha256(concat(BRANCH_ID_PREFIX, publicKey))).slice(0, 20); }

const isInt = (v, lo, hi) => Number.isSafeInteger(v) && v >= lo && v <= hi;

function only(obj, allowed, where) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new VerifyError('bad_genesis', `${where} must be an object`);
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new VerifyError('bad_genesis', `${where}: unknown field ${k}`);
}

/** Parse and check a genesis file (§10) and compute what verification needs:
 * its hash, the members with their branch ids, the validator set and its hash. */
export async function loadGenesis(text) {
  let doc;
  try { doc = JSON.parse(text); } catch (e) { throw new VerifyError('bad_genesis', `not JSON: ${e.message}`); }
  only(doc, ['chain_id', 'genesis_time_ms', 'validators', 'members', 'params'], 'genesis');
  if (typeof doc.chain_id !== 'string' || !/^[a-z0-9][a-z0-9-]{0,49}$/.test(doc.chain_id)) throw new VerifyError('bad_genesis', 'chain_id must be 1..50 of [a-z0-9-]');
  if (!isInt(doc.genesis_time_ms, 0, 2 ** 53 - 1)) throw new VerifyError('bad_genesis', 'genesis_time_ms out of range');
  const vals = doc.validators, mems = doc.members ?? [];
  if (!Array.isArray(vals) || vals.length < 1 || vals.length > 1024) throw new VerifyError('bad_genesis', 'validators: 1..1024 entries');
  if (!Array.isArray(mems) || mems.length > 1024) throw new VerifyError('bad_genesis', 'members: at most 1024 entries');
  const members = [];
  for (const [list, isValidator] of [[vals, true], [mems, false]]) {
    for (const [i, m] of list.entries()) {
      const where = `${isValidator ? 'validators' : 'members'}[${i}]`;
      only(m, isValidator ? ['name', 'public_key', 'power', 'branch_id'] : ['name', 'public_key', 'branch_id'], where);
      if (typeof m.name !== 'string' || [...m.name].length < 1 || [...m.name].length > 120) throw new VerifyError('bad_genesis', `${where}.name: 1..120 characters`);
      if (typeof m.public_key !== 'string' || !/^[0-9a-fA-F]{64}$/.test(m.public_key)) throw new VerifyError('bad_genesis', `${where}.public_key: 64 hex digits`);
      const publicKey = fromHex(m.public_key.toLowerCase());
      const problem = publicKeyProblem(publicKey);
      if (problem) throw new VerifyError('bad_key', `${where}.public_key: ${problem.replaceAll('_', ' ')}`);
      const power = isValidator ? m.power : 0;
      if (isValidator && !isInt(power, 1, 2 ** 40)) throw new VerifyError('bad_genesis', `${where}.power: an integer 1..2^40`);
      const branchId = await branchIdOf(publicKey);
      if (m.branch_id !== undefined && m.branch_id !== toHex(branchId)) throw new VerifyError('bad_genesis', `${where}.branch_id does not match its public key`);
      members.push({ name: m.name, publicKey, power, branchId, id: toHex(branchId) });
    }
  }
  if (new Set(members.map((m) => m.name)).size !== members.length) throw new VerifyError('bad_genesis', 'names must be unique');
  if (new Set(members.map((m) => m.id)).size !== members.length) throw new VerifyError('bad_genesis', 'a branch appears twice');
  const given = doc.params ?? {};
  only(given, PARAMS.map(([n]) => n), 'params');
  const params = Object.fromEntries(PARAMS.map(([n, d]) => [n, given[n] ?? d]));
  for (const [n] of PARAMS) if (!isInt(params[n], 1, 2 ** 40)) throw new VerifyError('bad_genesis', `params.${n}: an integer 1..2^40`);
  if (params.max_record_bytes > 8192) throw new VerifyError('bad_genesis', 'params.max_record_bytes: at most 8192');
  const hash = await sha256(encode([doc.chain_id, doc.genesis_time_ms, members.map((m) => [m.name, m.publicKey, m.power]),
    PARAMS.map(([n]) => params[n])]));
  const validators = members.filter((m) => m.power > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (validators.length > 256) throw new VerifyError('bad_genesis', 'more than 256 validators');
  const validatorsHash = await sha256(encode(validators.map((v) => [v.branchId, v.publicKey, v.power])));
  return {
    chainId: doc.chain_id, genesisTimeMs: doc.genesis_time_ms, params, hash, hashHex: toHex(hash), members, validators,
    validatorsHash, totalPower: validators.reduce((n, v) => n + v.power, 0), byId: new Map(members.map((m) => [m.id, m])),
  };
}

/** The validator set that decides blocks at `height`, trusting only `genesis`: the genesis
 * set, moved on by each certified set change (PROTOCOL.md §15.6) — a header below `height`
 * that announces a new set, its certificate by the set in force, and that set, as
 * GET /v1/records/{hash}/proof and GET /v1/blocks/{height}/raw carry them in `set_changes`.
 * Throws VerifyError('bad_set_change' or 'bad_certificate') naming the change at fault. */
export async function validatorSetAt(genesis, height, changes = []) {
  let set = { validators: genesis.validators, hash: genesis.validatorsHash, totalPower: genesis.totalPower };
  let last = 0n;
  for (const [i, change] of (changes ?? []).entries()) {
    const where = `set_changes[${i}]`;
    let header, headerBytes, validators;
    try {
      headerBytes = fromHex(change.header, `${where}.header`);
      header = headerFromArray(decode(headerBytes, 1024));
      validators = change.validators.map(([id, key, power]) => {
        if (!Number.isSafeInteger(power) || power < 1) throw new Error('power must be a positive integer');
        return { id, branchId: fromHex(id), publicKey: fromHex(key), power, name: genesis.byId.get(id)?.name ?? id.slice(0, 12) };
      }).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    } catch (e) { throw new VerifyError('bad_set_change', `${where} is malformed: ${e.message}`); }
    const h = BigInt(header.height);
    if (header.chain_id !== genesis.chainId || !(last < h && h < BigInt(height))) throw new VerifyError('bad_set_change', `${where}: set changes must be of this chain, by height, below ${height}`);
    const announced = await sha256(encode(validators.map((v) => [v.branchId, v.publicKey, v.power])));
    if (!equalBytes(header.validators_hash, set.hash) || !equalBytes(header.next_validators_hash, announced)) throw new VerifyError('bad_set_change', `${where} does not follow the set in force, or announces another set than it carries`);
    await checkCertificate(fromHex(change.certificate, `${where}.certificate`), genesis, header.height, await sha256(headerBytes), set);
    set = { validators, hash: announced, totalPower: validators.reduce((n, v) => n + v.power, 0) };
    last = h;
  }
  return set;
}

// ------------------------------------------------------------------ headers, records, certificates

const HEADER_FIELDS = ['version', 'chain_id', 'height', 'round', 'time_ms', 'prev_hash', 'records_root', 'evidence_root',
  'state_root', 'validators_hash', 'next_validators_hash', 'proposer'];
const isBin = (v, n) => v instanceof Uint8Array && (n === undefined || v.length === n);
const isNat = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n);

export function headerFromArray(a) {
  if (!Array.isArray(a) || a.length !== 12) throw new DecodeError('header must be an array of 12');
  const h = Object.fromEntries(HEADER_FIELDS.map((n, i) => [n, a[i]]));
  if (h.version !== 1) throw new DecodeError('header version must be 1');
  if (typeof h.chain_id !== 'string' || ![h.height, h.round, h.time_ms].every(isNat)) throw new DecodeError('header field of the wrong type');
  for (const n of HEADER_FIELDS.slice(5, 11)) if (!isBin(h[n], 32)) throw new DecodeError(`header ${n} must be 32 bytes`);
  if (!isBin(h.proposer, 20)) throw new DecodeError('header proposer must be 20 bytes');
  return h;
}

/** A record's bytes decoded into named fields (§5.1); throws DecodeError. */
export async function decodeRecord(raw, maxBytes = 8192) {
  const a = decode(raw, Math.min(8192, maxBytes));
  if (!Array.isArray(a) || a.length !== 8) throw new DecodeError('a record is an array of 8');
  const [version, kind, chainId, branchId, seq, timeMs, body, signature] = a;
  if (version !== 1) throw new DecodeError('record version must be 1');
  if (typeof kind !== 'string' || typeof chainId !== 'string' || !isBin(branchId, 20) || !isNat(seq) || !isNat(timeMs) || !isBin(signature, 64)) throw new DecodeError('record field of the wrong type');
  let fields;
  try { fields = bodyFields(kind, body); } catch (e) { throw new DecodeError(e.message); }
  return { raw, hash: toHex(await sha256(raw)), version, kind, chain_id: chainId, branch_id: toHex(branchId), seq, time_ms: timeMs,
    body: fields, signature: toHex(signature), subject: subjectOf(kind, fields), payload: encode(a.slice(0, 7)), sig: signature };
}

const signingBytes = (domain, chainId, payload) => encode(['branchnet/v1', domain, chainId, payload]);

/** Whether the record is signed by the genesis member it names (§5.1, §8). Throws VerifyError. */
export async function checkRecordSignature(record, genesis, member = null) {
  if (record.chain_id !== genesis.chainId) throw new VerifyError('wrong_chain', `record is for chain ${record.chain_id}`);
  member ??= genesis.byId.get(record.branch_id);
  if (!member) throw new VerifyError('not_member', "record's branch is not a genesis member and the proof carries no member entry");
  if (!(await verifySignature(member.publicKey, signingBytes('record', genesis.chainId, record.payload), record.sig))) throw new VerifyError('bad_signature', 'record signature does not verify');
  return member;
}

const SYSTEM_ID = new Uint8Array(20);

/** The registry row a proof's `member` carries (§15.6) for the record's branch, once its
 * entry proof (§8) leads to `stateRoot`: {name, publicKey, power}. Throws VerifyError
 * (bad_member_proof, bad_state_proof, not_member). */
export async function memberFromEntry(member, branchIdHex, headerHeight, stateRoot) {
  let subject, height, row, path;
  let leaf;
  try {
    leaf = fromHex(member.entry, 'member.entry');
    const a = decode(leaf, 4096);
    if (!Array.isArray(a) || a.length !== 5) throw new Error('an entry is [subject, seq, record_hash, height, value]');
    [subject, , , height, row] = a;
    if (typeof subject !== 'string' || !isNat(height) || !isNat(a[1]) || !isBin(a[2], 32)) throw new Error('entry field of the wrong type');
    if (row !== null && (!Array.isArray(row) || row.length !== 5 || typeof row[0] !== 'string' || !isBin(row[1], 32)
      || !isNat(row[2]) || typeof row[3] !== 'boolean' || typeof row[4] !== 'boolean')) throw new Error('the value is not a registry row');
  } catch (e) { throw new VerifyError(e instanceof VerifyError ? e.reason : 'bad_member_proof', `not a member entry: ${e.message}`); }
  if (subject !== `member/${branchIdHex}`) throw new VerifyError('bad_member_proof', `the entry is ${JSON.stringify(subject)}, not the record's branch`);
  if (BigInt(height) > BigInt(headerHeight)) throw new VerifyError('bad_member_proof', 'the entry is from after its header');
  try {  // §8's entry proof of the system branch: the branch tree keyed by H(subject), then the state tree
    path = member.branch_path.map((h, i) => fromHex(h, `member.branch_path[${i}]`));
    if (path.length > 256 || path.some((h) => h.length !== 32)) throw new Error('a branch path is at most 256 hashes of 32 bytes');
    const key = await sha256(utf8(subject));
    let r = await sha256(concat([0], leaf));
    for (let d = path.length - 1; d >= 0; d--) {  // from the deepest sibling up; bit d of the key, top bit first
      const right = (key[d >> 3] >> (7 - (d & 7))) & 1;
      r = await sha256(right ? concat([1], path[d], r) : concat([1], r, path[d]));
    }
    const [index, size, hashes] = member.top_proof;
    const root = await inclusionRoot(encode([SYSTEM_ID, r]), { index, tree_size: size, path: hashes.map((h) => fromHex(h)) });
    if (!equalBytes(root, stateRoot)) throw new Error('the path does not lead to the header\'s state root');
  } catch (e) { throw new VerifyError('bad_state_proof', `the member entry is not under the header's state root: ${e.message}`); }
  if (row === null) throw new VerifyError('not_member', 'the branch was retired');
  return { name: row[0], publicKey: row[1], power: row[2], id: branchIdHex };
}

export function decodeCertificate(bytes) {
  const a = decode(bytes, 24640);
  if (!Array.isArray(a) || a.length !== 4 || !isNat(a[0]) || !isNat(a[1]) || !isBin(a[2], 32) || !Array.isArray(a[3])) throw new DecodeError('a certificate is [height, round, block_hash, signatures]');
  const signatures = a[3].map((p) => {
    if (!Array.isArray(p) || p.length !== 2 || !isBin(p[0], 20) || !isBin(p[1], 64)) throw new DecodeError('a certificate signature is [bin 20, bin 64]');
    return { id: toHex(p[0]), validator: p[0], signature: p[1] };
  });
  for (let i = 1; i < signatures.length; i++) if (!(signatures[i - 1].id < signatures[i].id)) throw new DecodeError('signers must be in strictly ascending order');
  return { height: a[0], round: a[1], blockHash: a[2], signatures };
}

/** Check a commit certificate (§9.3) for (height, block hash) against the set in force.
 * Returns {cert, signers: [{id, name, power, signed, valid}], signedPower, totalPower, quorum};
 * throws VerifyError("bad_certificate") naming what fails. */
export async function checkCertificate(certBytes, genesis, height, blockHash, set = null) {
  let cert;
  try { cert = decodeCertificate(certBytes); } catch (e) { throw new VerifyError('bad_certificate', `certificate does not decode: ${e.message}`); }
  set ??= { validators: genesis.validators, hash: genesis.validatorsHash, totalPower: genesis.totalPower };
  const byId = new Map(cert.signatures.map((s) => [s.id, s]));
  const signers = [];
  let signedPower = 0, problem = null;
  for (const s of cert.signatures) if (!set.validators.some((v) => v.id === s.id)) problem ??= `signer ${s.id.slice(0, 12)} is not a validator`;
  for (const v of set.validators) {
    const s = byId.get(v.id);
    let valid = null;
    if (s) {
      const payload = encode([2, cert.height, cert.round, cert.blockHash, v.branchId]);
      valid = await verifySignature(v.publicKey, signingBytes('vote', genesis.chainId, payload), s.signature);
      if (valid) signedPower += v.power; else problem ??= `the signature of ${v.name} does not verify`;
    }
    signers.push({ id: v.id, name: v.name, power: v.power, signed: !!s, valid });
  }
  const quorum = signedPower * 3 > set.totalPower * 2;
  const result = { cert, signers, signedPower, totalPower: set.totalPower, quorum };
  if (String(cert.height) !== String(height)) problem ??= `certificate is for height ${cert.height}, not ${height}`;
  if (!equalBytes(cert.blockHash, blockHash)) problem ??= 'certificate is for another block hash';
  if (!quorum) problem ??= `signers hold ${signedPower} of ${set.totalPower} power, not more than two thirds`;
  if (problem) throw Object.assign(new VerifyError('bad_certificate', `certificate does not commit this header: ${problem}`), { result });
  return result;
}
