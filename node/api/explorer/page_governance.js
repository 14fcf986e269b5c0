// Governance (PROTOCOL.md §15): proposals with their tallies, decisions and effect heights,
// the validator set in force and the one announced after it, members and chain parameters.
// Each proposal and vote record expands to its proof, verified in the browser; the set a
// decided proposal was tallied against comes from certified set changes (verify.js).

import { get } from './api.js';
import { recordPanel } from './record_view.js';
import { validatorSetAt } from './verify.js';
import { append, card, clear, errorBox, fields, h, hash, link, table } from './ui.js';

export const STATUSES = ['open', 'passed', 'refused', 'expired'];

/** A governance action (§15.2) in words; `nameOf(branch_id)` names a member. */
export function actionWords(a, nameOf = (id) => id) {
  switch (a.kind) {
    case 'admit_member': return `admit member ${a.name}`;
    case 'retire_member': return `retire member ${nameOf(a.branch_id)}`;
    case 'set_power': return `set power of ${nameOf(a.branch_id)} to ${a.power}`;
    case 'rotate_key': return `rotate the key of ${nameOf(a.branch_id)} to ${a.public_key.slice(0, 12)}…`;
    case 'set_param': return `set ${a.name} to ${a.value}`;
    default: return a.kind;
  }
}

/** The tally of §15.5: yes power of the members of `set` ([{branch_id, power}]) against
 * its total; a proposal passes on more than two thirds. */
export function tally(votes, set) {
  const power = new Map(set.map((v) => [v.branch_id, Number(v.power)]));
  const total = [...power.values()].reduce((n, p) => n + p, 0);
  const yes = votes.filter((v) => v.yes && power.has(v.branch_id)).reduce((n, v) => n + power.get(v.branch_id), 0);
  const no = votes.filter((v) => !v.yes && power.has(v.branch_id)).reduce((n, v) => n + power.get(v.branch_id), 0);
  return { yes, no, total, enough: 3 * yes > 2 * total };
}

const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)} %` : '–');

function tallyBar(t) { // widths through the CSSOM: the Content-Security-Policy refuses style attributes
  const yes = h('div.fill.yes'), no = h('div.fill.no');
  yes.style.width = `${t.total ? (100 * t.yes) / t.total : 0}%`;
  no.style.width = `${t.total ? (100 * t.no) / t.total : 0}%`;
  return h('div.tally', { test: 'tally-bar', role: 'img', 'aria-label': `yes ${t.yes} of ${t.total} power, two thirds marked` },
    yes, no, h('div.mark', { title: 'two thirds' }));
}

function statusBadge(p) {
  const cls = { passed: 'ok', refused: 'bad', expired: 'bad', open: 'pending' }[p.status];
  return h(`span.badge.${cls}`, { test: 'status', 'data-status': p.status }, p.reason ? `${p.status}: ${p.reason}` : p.status);
}

/** The set in force for height `height`, certified from the genesis (the block's raw form carries the changes). */
async function setAt(ctx, height, names) {
  const raw = await get(`/v1/blocks/${height}/raw`);
  const set = await validatorSetAt(ctx.trust.genesis, height, raw.set_changes);
  return set.validators.map((v) => ({ branch_id: v.id, power: Number(v.power), name: names(v.id) }));
}

function proposalCard(ctx, p, { set, setLabel, voteRecords, nameOf }) {
  const t = tally(p.votes, set);
  const inSet = new Map(set.map((v) => [v.branch_id, v.power]));
  const heights = [
    ['proposer', link(`#/branch/${p.proposer}`, nameOf(p.proposer))],
    ['submitted', link(`#/block/${p.submitted_height}`, `#${p.submitted_height}`)],
    ['expires', `#${p.expires_height}`],
    p.decided_height ? ['decided', link(`#/block/${p.decided_height}`, `#${p.decided_height}`)] : null,
    p.status === 'passed' ? ['takes effect', h('span', { test: 'effect-height' }, `#${p.decided_height + 2}`, h('span.muted', ' (decided + 2: the set or parameters for that height)'))] : null,
  ];
  const votes = p.votes.map((v) => {
    const rec = voteRecords.get(`${p.id}/${v.branch_id}`);
    return h('tr', { test: 'vote-row', 'data-id': v.branch_id, 'data-vote': v.yes ? 'yes' : 'no' },
      h('td', link(`#/branch/${v.branch_id}`, nameOf(v.branch_id))),
      h('td', { test: 'vote' }, v.yes ? '✔ yes' : '✘ no'),
      h('td', inSet.has(v.branch_id) ? String(inSet.get(v.branch_id)) : h('span.muted', 'not in the set: not counted')),
      h('td', rec ? recordPanel(ctx, rec.hash, { listed: rec.body, label: 'vote record' }) : h('span.muted', 'record not found')));
  });
  return h('section.card.proposal', { test: 'proposal', 'data-id': p.id, 'data-status': p.status },
    h('h3', h('span', { test: 'proposal-name' }, p.name), ' ', statusBadge(p)),
    h('p.action', { test: 'action' }, actionWords(p.action, nameOf)),
    fields(heights.filter(Boolean), { test: 'heights' }),
    h('div', { test: 'tally' },
      tallyBar(t),
      h('p', { test: 'tally-text' }, `yes ${t.yes} of ${t.total} power (${pct(t.yes, t.total)})`, t.no ? `, no ${t.no}` : '',
        `; passing needs more than two thirds (> ${((2 * t.total) / 3).toFixed(2)}): ${t.enough ? '✔ reached' : '✘ not reached'}`),
      h('p.muted', `Counted against ${setLabel}.`)),
    p.votes.length ? table(['voter', 'vote', 'power', 'record'], votes, { test: 'votes' }) : h('p.muted', 'no votes yet'),
    recordPanel(ctx, p.id, { listed: { name: p.name, action: p.action, expires_height: p.expires_height }, label: 'proposal record and proof' }));
}

/** The set signing the next block beside the one announced after it, differences highlighted. */
export function setTable(doc, nameOf) {
  const now = new Map(doc.validators.map((v) => [v.branch_id, v.power]));
  const next = new Map(doc.next_validators.map((v) => [v.branch_id, v.power]));
  const ids = [...new Set([...now.keys(), ...next.keys()])].sort();
  const total = (m) => [...m.values()].reduce((n, p) => n + p, 0);
  const changed = ids.filter((id) => now.get(id) !== next.get(id)).length;
  return [
    table([`signs #${doc.height + 1}`, 'power now', `power from #${doc.height + 2}`, ''], ids.map((id) => {
      const diff = now.get(id) !== next.get(id);
      return h(`tr${diff ? '.changed' : ''}`, { test: 'set-row', 'data-id': id, 'data-changed': diff ? 'yes' : 'no' },
        h('td', link(`#/branch/${id}`, nameOf(id))),
        h('td', { test: 'power-now' }, now.has(id) ? String(now.get(id)) : '–'),
        h('td', { test: 'power-next' }, next.has(id) ? String(next.get(id)) : '–'),
        h('td', diff ? (!now.has(id) ? 'joins' : !next.has(id) ? 'leaves' : 'power changes') : ''));
    }), { test: 'validator-sets' }),
    h('p.muted', { test: 'set-summary' }, `Total power ${total(now)} now, ${total(next)} next; `
      + (changed ? `${changed} change${changed > 1 ? 's' : ''} announced.` : 'no change announced.')),
  ];
}

function membersTable(doc) {
  return table(['member', 'branch id', 'power', 'flags'], doc.members.map((m) => h('tr', { test: 'member-row', 'data-id': m.branch_id },
    h('td', link(`#/branch/${m.branch_id}`, m.name)), h('td', hash(m.branch_id)), h('td', { test: 'member-power' }, String(m.power)),
    h('td', { test: 'flags' }, [m.jailed ? h('span.badge.bad', 'jailed') : null, m.key_rotated ? h('span.badge.pending', 'key rotated') : null,
      !m.jailed && !m.key_rotated ? '–' : null]))));
}

async function allVotes() {
  const out = new Map(); // proposal/branch -> the newest vote record (a later vote replaces an earlier one)
  let cursor;
  for (let i = 0; i < 20; i++) {
    const doc = await get('/v1/records', { kind: 'gov.vote', limit: 100, cursor });
    for (const r of doc.records) {
      const key = `${r.body.proposal}/${r.branch_id}`;
      if (!out.has(key) || out.get(key).seq < r.seq) out.set(key, r);
    }
    cursor = doc.next_cursor;
    if (!cursor) break;
  }
  return out;
}

function throttle(fn, ms) {
  let last = 0, timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); fn(); } else if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}

export async function governancePage(root, ctx, _match, params) {
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : '';
  const select = h('select', { test: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'every status'), STATUSES.map((s) => h('option', { value: s, selected: s === status }, s)));
  select.addEventListener('change', () => { location.hash = select.value ? `#/governance?status=${select.value}` : '#/governance'; });
  const sets = h('div', { test: 'sets' }), members = h('div', { test: 'members' }), paramsEl = h('div', { test: 'params' });
  const list = h('div', { test: 'proposals' }), count = h('p.muted', { test: 'proposal-count' });
  append(root, h('h1', 'Governance'),
    h('div.gov-grid', card('Validator set: now and next', sets), card('Chain parameters in force', paramsEl)),
    card('Members', members),
    h('section', h('h2', 'Proposals'), h('form.filters', h('label', 'status', select)), count, list));

  const cards = new Map(); // proposal id -> {key, el}: unchanged proposals keep their element (and open proof panels)
  const setCache = new Map(); // decided height -> the set in force there
  let doc = null;

  async function refresh() {
    const [d, votes] = await Promise.all([get('/v1/governance', { status: status || undefined }), allVotes()]);
    doc = d;
    const names = new Map(d.members.map((m) => [m.branch_id, m.name]));
    const nameOf = (id) => names.get(id) ?? ctx.nameOf(id);
    clear(sets, setTable(d, nameOf));
    clear(members, membersTable(d));
    clear(paramsEl, fields(Object.entries(d.params).map(([k, v]) => [k, h('span', { test: `param-${k}` }, String(v))])));
    count.textContent = `${d.proposals.length} proposal${d.proposals.length === 1 ? '' : 's'}${status ? ` ${status}` : ''}, newest first.`;
    const els = [];
    for (const p of d.proposals) {
      let set = d.validators, setLabel = `the set in force for the next block (#${d.height + 1}), whose end tallies open proposals`;
      if (p.decided_height) {
        try {
          if (!setCache.has(p.decided_height)) setCache.set(p.decided_height, await setAt(ctx, p.decided_height, nameOf));
          set = setCache.get(p.decided_height);
          setLabel = `the set in force at #${p.decided_height}, when it was decided (certified from the genesis)`;
        } catch (e) {
          setLabel = `the set in force now (the set at #${p.decided_height} could not be verified: ${e.message})`;
        }
      }
      const voteRecs = new Map(p.votes.map((v) => [`${p.id}/${v.branch_id}`, votes.get(`${p.id}/${v.branch_id}`)]));
      const key = JSON.stringify([p, set, setLabel, [...voteRecs.values()].map((r) => r?.hash)]);
      const old = cards.get(p.id);
      const el = old && old.key === key ? old.el : proposalCard(ctx, p, { set, setLabel, voteRecords: voteRecs, nameOf });
      cards.set(p.id, { key, el });
      els.push(el);
    }
    if (els.length) clear(list, els); else clear(list, h('p.muted', { test: 'no-proposals' }, 'no proposals'));
    count.dataset.height = String(d.height);
  }

  const safely = () => refresh().catch((e) => { console.error(e); clear(list, errorBox(e)); });
  await safely();
  const later = throttle(safely, 1000);
  const offs = [
    ctx.live.on('validator_set', later),
    ctx.live.on('record', (r) => { if (r.kind.startsWith('gov.')) later(); }),
    // an open proposal expires at the end of a block without any record
    ctx.live.on('block', (b) => { if (doc?.proposals.some((p) => p.status === 'open' && b.height >= p.expires_height)) later(); }),
  ];
  return () => offs.forEach((off) => off());
}
