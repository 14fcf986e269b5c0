// The one thing the explorer trusts: a genesis file. By default the node's own
// (GET /v1/genesis), with its hash shown for the user to compare with the one they
// trust; or a genesis file the user pastes; optionally the hash they expect, which
// the genesis in use must have. Kept in this tab's sessionStorage.

import { getText } from './api.js';
import { loadGenesis } from './verify.js';

const PASTED = 'branchnet-explorer-genesis';
const EXPECTED = 'branchnet-explorer-expected-hash';

/** {genesis, source: "node" | "pasted", expected, matches, error} */
export async function loadTrust() {
  const pasted = sessionStorage.getItem(PASTED);
  const expected = sessionStorage.getItem(EXPECTED) || null;
  const source = pasted ? 'pasted' : 'node';
  let genesis = null, error = null;
  try {
    genesis = await loadGenesis(pasted ?? await getText('/v1/genesis'));
  } catch (e) { error = e; }
  const matches = genesis && expected ? genesis.hashHex === expected : null;
  return { genesis, source, expected, matches, error, usable: !!genesis && matches !== false };
}

export async function usePasted(text) {
  await loadGenesis(text); // refuse a file that is not a valid genesis before keeping it
  sessionStorage.setItem(PASTED, text);
}

export function useNode() { sessionStorage.removeItem(PASTED); }

export function expectHash(hex) {
  const h = (hex || '').trim().toLowerCase();
  if (h && !/^[0-9a-f]{64}$/.test(h)) throw new Error('a genesis hash is 64 hex digits');
  if (h) sessionStorage.setItem(EXPECTED, h); else sessionStorage.removeItem(EXPECTED);
}

/** A failed report for when no trusted genesis is at hand (nothing can be verified). */
export function untrusted(trust) {
  const message = trust.error ? `no usable genesis: ${trust.error.message}`
    : `the genesis in use has hash ${trust.genesis.hashHex}, not the ${trust.expected} you trust`;
  return { ok: false, reason: 'untrusted_genesis', message, checks: [{ label: 'a trusted genesis', ok: false, detail: message }] };
}
