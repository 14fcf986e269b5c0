// Trust: the genesis file every verification rests on. Shows its hash (compare it with
// the one you trust), lets you paste the genesis file you trust, or the hash you expect.

import { getText } from './api.js';
import { expectHash, useNode, usePasted } from './trust.js';
import { loadGenesis, toHex } from './verify.js';
import { append, card, fields, h, hash, table, time } from './ui.js';

export async function genesisPage(root, ctx) {
  const { trust } = ctx;
  const g = trust.genesis;
  const message = h('p', { test: 'trust-message' });
  const reload = () => { location.reload(); };
  const paste = h('textarea', { rows: 8, test: 'paste-genesis', placeholder: 'paste the genesis.json you trust' });
  const expected = h('input', { size: 66, test: 'expected-hash', value: trust.expected ?? '', placeholder: '64 hex digits' });
  const pasteButton = h('button', { type: 'button', test: 'use-pasted' }, 'verify against this file');
  pasteButton.addEventListener('click', async () => {
    try { await usePasted(paste.value); reload(); } catch (e) { message.textContent = `not a valid genesis file: ${e.message}`; }
  });
  const expectButton = h('button', { type: 'button', test: 'use-expected' }, 'compare');
  expectButton.addEventListener('click', () => {
    try { expectHash(expected.value); reload(); } catch (e) { message.textContent = e.message; }
  });
  const nodeButton = h('button', { type: 'button', test: 'use-node' }, "use the node's genesis file");
  nodeButton.addEventListener('click', () => { useNode(); reload(); });

  let nodeHash = null;
  if (trust.source === 'pasted') {
    try { nodeHash = (await loadGenesis(await getText('/v1/genesis'))).hashHex; } catch (e) { nodeHash = `unreadable (${e.message})`; }
  }
  append(root, h('h1', 'Genesis: what verification trusts'),
    h('p', 'Every "verified" on these pages was checked in this browser against the genesis file below: its validators\' '
      + 'keys sign the block certificates, its members\' keys sign the records. Compare its hash with the one your consortium published.'),
    trust.error ? h('p.error', { test: 'genesis-error' }, `The genesis file could not be used: ${trust.error.message}`) : null,
    g ? card('Genesis in use', fields([
      ['source', trust.source === 'pasted' ? 'pasted by you (this tab)' : 'loaded from this node (GET /v1/genesis)'],
      ['genesis hash', h('code.full', { test: 'genesis-hash-full' }, g.hashHex)],
      trust.expected ? ['you expect', h('span', { test: 'expected-result' }, trust.matches ? '✔ the same hash' : `✘ ${trust.expected}`)] : null,
      nodeHash ? ['the node\'s genesis', h('span', { test: 'node-genesis' }, nodeHash === g.hashHex ? '✔ the same hash' : `✘ differs: ${nodeHash}`)] : null,
      ['chain id', g.chainId], ['genesis time', time(g.genesisTimeMs)],
      ['validator set hash', hash(toHex(g.validatorsHash), 16)], ['total power', String(g.totalPower)],
    ])) : null,
    g ? card('Members', table(['name', 'branch id', 'power', 'public key'], g.members.map((m) => [
      m.name, hash(m.id, 16), m.power ? String(m.power) : 'member', hash(toHex(m.publicKey), 16)]))) : null,
    card('Trust another genesis', message,
      h('p', 'The hash you expect: ', expected, ' ', expectButton),
      h('p', paste), h('p', pasteButton, ' ', trust.source === 'pasted' ? nodeButton : null)));
  return null;
}
