// Blocks: a live list, and a block page verified in the browser from the block's
// bytes and this node's certificate (GET /v1/blocks/{height}/raw).

import { get } from './api.js';
import { verifyBlock } from './proofs.js';
import { summary } from './records.js';
import { untrusted } from './trust.js';
import { toHex } from './verify.js';
import { append, card, checklist, clear, fields, h, hash, link, table, time, verdict, errorBox } from './ui.js';

const KEEP = 50;

function blockRow(ctx, b) {
  return h('tr', { test: 'block-row', 'data-height': b.height },
    h('td', link(`#/block/${b.height}`, `#${b.height}`)),
    h('td', time(b.time_ms)),
    h('td', { test: 'num-records' }, String(b.num_records)),
    h('td', b.proposer ? ctx.nameOf(b.proposer) : '–'),
    h('td', hash(b.hash)));
}

export async function blocksPage(root, ctx) {
  const body = h('tbody');
  const more = h('button', { type: 'button' }, 'older blocks');
  append(root, h('h1', 'Blocks'), h('div.scroll', h('table', { test: 'blocks' },
    h('thead', h('tr', ['height', 'time', 'records', 'proposer', 'hash'].map((c) => h('th', c)))), body)), more);
  let nextBefore = null;
  const page = async (before) => {
    const doc = await get('/v1/blocks', { before, limit: 20 });
    body.append(...doc.blocks.map((b) => blockRow(ctx, b)));
    nextBefore = doc.next_before;
    more.hidden = !nextBefore;
  };
  more.addEventListener('click', () => page(nextBefore).catch((e) => append(root, errorBox(e))));
  try { await page(); } catch (e) { append(root, errorBox(e)); }
  const topHeight = () => Number(body.firstElementChild?.dataset.height ?? 0);
  return ctx.live.on('block', async (b) => { // the stream has height, hash, time and count; the proposer comes with the list
    if (b.height <= topHeight()) return;
    if (b.height > topHeight() + 1) { // missed while the stream was reconnecting: fetch the gap
      const gap = await get('/v1/blocks', { before: b.height, limit: Math.min(KEEP, b.height - topHeight() - 1) }).catch(() => null);
      for (const g of (gap?.blocks ?? []).reverse()) if (g.height > topHeight()) body.prepend(blockRow(ctx, g));
    }
    if (b.height > topHeight()) body.prepend(blockRow(ctx, b));
    while (body.children.length > KEEP) body.lastElementChild.remove();
  });
}

function headerFields(header, hashHex, nameOf) {
  const x = (v) => (v instanceof Uint8Array ? hash(toHex(v), 16) : String(v));
  return fields([
    ['hash', hash(hashHex, 16)], ['height', String(header.height)], ['round', String(header.round)], ['time', time(header.time_ms)],
    ['chain', header.chain_id], ['previous', header.height > 1 ? link(`#/block/${Number(header.height) - 1}`, x(header.prev_hash)) : x(header.prev_hash)],
    ['records root', x(header.records_root)], ['evidence root', x(header.evidence_root)], ['state root', x(header.state_root)],
    ['validators', x(header.validators_hash)], ['next validators', x(header.next_validators_hash)],
    ['proposer', link(`#/branch/${toHex(header.proposer)}`, nameOf(toHex(header.proposer)))],
  ], { test: 'header' });
}

function certificateTable(cert) {
  if (!cert) return h('p.muted', 'no certificate could be read');
  const needed = Math.floor((cert.totalPower * 2) / 3) + 1;
  return [
    table(['validator', 'power', 'signed', 'signature'], cert.signers.map((s) => h('tr', { test: 'signer-row', 'data-id': s.id },
      h('td', link(`#/branch/${s.id}`, s.name)), h('td', String(s.power)), h('td', s.signed ? 'yes' : 'no'),
      h('td', { test: 'signature' }, s.valid === null ? '–' : s.valid ? '✔ valid' : '✘ invalid'))), { test: 'certificate' }),
    h('p', { test: 'quorum' }, `Signed by ${cert.signedPower} of ${cert.totalPower} power in round ${cert.cert.round}; `
      + `a quorum needs at least ${needed}: ${cert.quorum ? '✔ reached' : '✘ not reached'}.`),
  ];
}

export async function blockPage(root, ctx, [heightText]) {
  const height = Number(heightText);
  const status = h('div');
  append(root, h('h1', `Block #${height}`, ' ', h('span.verdict-slot', verdict(null))),
    h('p.nav', height > 1 ? link(`#/block/${height - 1}`, '← previous') : null, ' ', link(`#/block/${height + 1}`, 'next →')), status);
  let raw;
  try { raw = await get(`/v1/blocks/${height}/raw`); } catch (e) { clear(status, errorBox(e)); clear(root.querySelector('.verdict-slot')); return null; }
  const report = ctx.trust.usable ? await verifyBlock(raw, ctx.trust.genesis, height) : untrusted(ctx.trust);
  clear(root.querySelector('.verdict-slot'), verdict(report));
  const recs = report.records ?? [];
  clear(status,
    card('Verification', h('p.muted', 'Checked here, from the block bytes and the certificate, against the genesis file '
      + `(${ctx.trust.genesis ? ctx.trust.genesis.hashHex.slice(0, 16) : '?'}…).`), checklist(report)),
    report.header ? card('Header', headerFields(report.header, toHex(report.hash), ctx.nameOf)) : null,
    card(`Records (${recs.length})`, recs.length ? table(['#', 'kind', 'branch', 'subject, seq', 'what', 'record'],
      recs.map((r, i) => h('tr', { test: 'record-row', 'data-hash': r.hash },
        h('td', String(i)), h('td', r.kind), h('td', link(`#/branch/${r.branch_id}`, ctx.nameOf(r.branch_id))),
        h('td', `${r.subject} #${r.seq}`), h('td', summary(r.kind, r.body)), h('td', hash(r.hash))))) : h('p.muted', 'no records')),
    card(`Evidence (${report.evidence?.length ?? 0})`, report.evidence?.length
      ? h('ul', report.evidence.map((e) => h('li', `${e.validator.name} ${e.type === 'proposal' ? 'proposed' : 'voted'} twice at height ${e.height}, round ${e.round}: `, e.hashes.map((x) => hash(x || 'nil')))))
      : h('p.muted', 'no evidence')),
    card('Commit certificate', certificateTable(report.certificate)));
  return null;
}
