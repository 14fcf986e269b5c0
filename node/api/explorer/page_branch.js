// Branches: the list, and one branch's profile, current services with live status
// and equipment, and the timeline of every record it published (each verifiable).

import { get } from './api.js';
import { recordPanel } from './record_view.js';
import { formatFee, formatHours, formatRisk, summary } from './records.js';
import { append, card, clear, fields, h, hash, link, table, time, errorBox } from './ui.js';

export async function branchesPage(root, ctx) {
  const out = h('div');
  append(root, h('h1', 'Branches'), out);
  try {
    const doc = await get('/v1/branches');
    clear(out, table(['branch', 'region', 'role', 'services'], doc.branches.map((b) => h('tr', { test: 'branch-row', 'data-id': b.branch_id },
      h('td', link(`#/branch/${b.branch_id}`, b.profile?.name ?? b.name), h('div.muted', b.name)),
      h('td', b.profile?.region ?? '–'), h('td', b.power ? `validator (power ${b.power})` : 'member'),
      h('td', String(b.num_services))))));
  } catch (e) { clear(out, errorBox(e)); }
  return null;
}

function serviceCard(ctx, s) {
  const o = s.offer, st = s.status;
  return h('section.card.service', { test: 'branch-service', 'data-service': s.service_id },
    h('h3', o.title, ' ', h('span.muted', `${o.category} · ${formatRisk(o.risk_level)} · ${o.ownership}`)),
    fields([
      ['channels', o.channels.join(', ')], ['hours', formatHours(o.hours)],
      ['fees', o.fees.length ? o.fees.map((f) => h('div', formatFee(f))) : 'none'],
      o.ownership === 'consigned' ? ['issuer', o.issuer] : null,
      ['status', h('span', { test: 'live-status' }, st ? `${st.status}${st.wait_minutes ? `, wait ${st.wait_minutes} min` : ''}` : 'no status published')],
      st && st.equipment.length ? ['equipment', h('span', { test: 'equipment' },
        st.equipment.map((e) => h(`span.equip.${e.up ? 'up' : 'down'}`, `${e.equipment_id} ${e.up ? 'up' : 'down'}`)))] : null,
    ]),
    recordPanel(ctx, s.record_hash, { listed: o, label: 'verify: record and proof' }));
}

function timelineItem(ctx, r) {
  return h('li', { test: 'timeline-item', 'data-hash': r.hash },
    h('div.when', time(r.time_ms), ' · block ', link(`#/block/${r.height}`, `#${r.height}`)),
    h('div', h('strong', r.kind), ` ${r.subject} #${r.seq} — ${summary(r.kind, r.body)}`),
    recordPanel(ctx, r.hash, { listed: r.body, label: 'verify' }));
}

export async function branchPage(root, ctx, [branchId]) {
  const top = h('div'), services = h('div', { test: 'services' }), timeline = h('ol.timeline', { test: 'timeline' });
  const more = h('button', { type: 'button', hidden: true }, 'older records');
  append(root, top, services, card('Timeline: every record it published', timeline, more));
  let b;
  try { b = await get(`/v1/branches/${branchId}`); } catch (e) { clear(top, errorBox(e)); return null; }
  const p = b.profile;
  let profileHash = null;
  try { profileHash = (await get('/v1/records', { branch: branchId, kind: 'branch.profile', limit: 1 })).records[0]?.hash ?? null; } catch (e) { /* shown below */ }
  clear(top, h('h1', { test: 'branch-name' }, p?.name ?? b.name),
    card('Profile', p ? fields([
      ['genesis name', b.name], ['branch id', hash(b.branch_id, 40)], ['address', p.address], ['region', h('span', { test: 'region' }, p.region)],
      ['location', `${(p.lat_micro / 1e6).toFixed(4)}, ${(p.lon_micro / 1e6).toFixed(4)}`], ['hours', formatHours(p.hours)],
      ['phone', p.contact_phone || '–'], ['web', p.contact_url || '–'], ['voting power', String(b.power)],
    ], { test: 'profile' }) : h('p.muted', 'no profile published yet'),
    profileHash ? recordPanel(ctx, profileHash, { listed: p, label: 'verify the profile: record and proof' }) : null));
  clear(services, h('h2', `Services on offer (${b.num_services})`),
    b.services.length ? b.services.map((s) => serviceCard(ctx, s)) : h('p.muted', 'none'));
  let cursor = null;
  const page = async () => {
    const doc = await get('/v1/records', { branch: branchId, limit: 50, cursor: cursor ?? undefined });
    timeline.append(...doc.records.map((r) => timelineItem(ctx, r)));
    cursor = doc.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => page().catch((e) => timeline.append(errorBox(e))));
  try { await page(); } catch (e) { timeline.append(errorBox(e)); }
  return ctx.live.on('record', (r) => { // a new record of this branch: show it first
    if (r.branch_id !== branchId || timeline.querySelector(`[data-hash="${r.hash}"]`)) return;
    get(`/v1/records/${r.hash}`).then((doc) => {
      if (doc.status === 'committed') timeline.prepend(timelineItem(ctx, { ...doc.record, height: doc.height }));
    }).catch(() => {});
  });
}
